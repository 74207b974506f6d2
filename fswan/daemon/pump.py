"""KLIPS in user space: the reactor side of the TUN <-> ESP packet pump.

The pump hosts the sans-IO :class:`~fswan.ipsec.dataplane.DataPlane` (see its
docstring for the API) and does only I/O:

* the TUN device ``ipsec0`` (plain IPv4/IPv6 packets, ``IFF_NO_PI``) is an
  ``IReadDescriptor``; each wake-up drains every ready packet
  (``os.read`` until EAGAIN, bounded by ``budget`` so IKE is never starved)
  into ``dataplane.outbound``, then flushes once;
* a raw ``IPPROTO_ESP`` socket per physical device and address family,
  drained the same way into ``dataplane.inbound_ip`` (IPv4: the kernel hands
  over the IP header) or ``dataplane.inbound`` (IPv6: ESP only, the source
  from ``recvfrom``);
* ESP-in-UDP arrives on the IKE driver's 4500 socket (the first word tells
  it from IKE) and comes in through :meth:`Pump.inbound_udp`; outbound
  ESP-in-UDP is written straight to that same socket with ``sendto``;
* ``%pass`` packets leave through an ``IPPROTO_RAW`` socket (one per family).

Kernel offloads (performance.md: the system calls, in which the kernel forwards
each packet in the caller's context, are most of a gateway's time):

* the TUN is opened ``IFF_VNET_HDR``: decrypted segments of one TCP flow are
  written as one GSO superpacket (:func:`fswan.ipsec.coalesce.tun_frames`);
* consecutive ESP-in-UDP packets of equal size to one peer leave in one
  ``sendmsg`` with ``UDP_SEGMENT`` (UDP GSO; turned off for good if the kernel
  refuses it), and the 4500 socket reads with ``UDP_GRO``
  (:class:`fswan.daemon.ikeport.NattReader`).

Every socket is bound to the physical device (``SO_BINDTODEVICE``): a
host-to-host conn routes the peer's /32 into ``ipsec0``, which would
otherwise swallow our own ESP and IKE packets to that peer (a loop).

performance.md's lessons are kept: no logging, Deferreds or per-packet
objects on the fast path; one ``now`` per wake-up; outputs flushed in one
pass; events (Acquire, SoftExpire, ...) handed to ``on_event`` after the
batch.
"""

from __future__ import annotations

import errno
import functools
import os
import socket
import sys
from collections.abc import Callable
from typing import Protocol

from twisted.application import service
from twisted.internet.interfaces import IDelayedCall, IReadDescriptor
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from fswan.daemon.interfaces import Clock
from fswan.ipsec.coalesce import VNET_HDR_LEN, frame_packets, tun_frames
from fswan.ipsec.dataplane import DataPlane
from fswan.ipsec.dataplane import Acquire, UnknownSPI
from fswan.ipsec.sa import KIND_ESP, KIND_ESP_UDP, HardExpire, SoftExpire

log = Logger(namespace="fswan.pump")

SO_BINDTODEVICE = getattr(socket, "SO_BINDTODEVICE", 25)
#: packets read per wake-up before the reactor gets a turn (level-triggered: we come back)
DEFAULT_BUDGET = 2048
_READ_SIZE = 65535


#: socket buffers for the ESP sockets: a burst from a fast peer must not overflow
#: while the reactor is busy with the other direction (TCP retransmits otherwise)
SOCKET_BUFFER = 4 << 20
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)
SO_SNDBUFFORCE = getattr(socket, "SO_SNDBUFFORCE", 32)

SOL_UDP = getattr(socket, "SOL_UDP", 17)
#: linux/udp.h: the segment size of a UDP GSO send (cmsg, u16)
UDP_SEGMENT = getattr(socket, "UDP_SEGMENT", 103)
#: segments per GSO send (the kernel's UDP_MAX_SEGMENTS is 64 or more) and bytes
GSO_MAX_SEGMENTS = 64
GSO_MAX_BYTES = 65000
#: errors meaning "this kernel/device cannot do UDP GSO", not "this packet failed"
_NO_GSO = frozenset({errno.EIO, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOPROTOOPT})


def bind_to_device(sock: socket.socket, device: str) -> None:
    """Send and receive only through ``device`` (the loop guard for host-to-host conns)."""
    sock.setsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, device.encode() + b"\0")


#: what the data plane hands the daemon after a batch
DataPlaneEvent = Acquire | SoftExpire | HardExpire | UnknownSPI


class UdpSocket(Protocol):
    """One of the IKE driver's bound 4500 sockets, as the pump sends ESP-in-UDP on it."""

    def sendto(self, data: bytes, address: tuple[str, int], /) -> int: ...
    def sendmsg(self, buffers: list[bytes], ancillary: list[tuple[int, int, bytes]],
                flags: int, address: tuple[str, int], /) -> int: ...
    def setsockopt(self, level: int, option: int, value: int, /) -> None: ...
    def fileno(self) -> int: ...


class PumpReactor(Clock, Protocol):
    """The reactor as the pump uses it: a clock, timers and file descriptors."""

    def addReader(self, reader: IReadDescriptor) -> None: ...
    def removeReader(self, reader: IReadDescriptor) -> None: ...


def enlarge_buffers(sock: object, size: int = SOCKET_BUFFER) -> None:
    """Big receive/send buffers (the FORCE variants pass rmem_max as root); best effort."""
    setsockopt = getattr(sock, "setsockopt", None)
    if setsockopt is None:
        return
    for force, plain in ((SO_RCVBUFFORCE, socket.SO_RCVBUF), (SO_SNDBUFFORCE, socket.SO_SNDBUF)):
        try:
            setsockopt(socket.SOL_SOCKET, force, size)
        except OSError:
            try:
                setsockopt(socket.SOL_SOCKET, plain, size)
            except OSError:
                pass


def _raw_socket(family: int, protocol: int, device: str) -> socket.socket:
    """A non-blocking raw socket of ``protocol`` bound to ``device`` with big buffers."""
    sock = socket.socket(family, socket.SOCK_RAW, protocol)
    try:
        bind_to_device(sock, device)
        enlarge_buffers(sock)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


@implementer(IReadDescriptor)
class _Reader:
    """A file descriptor whose readability calls ``on_read`` (a pump drain loop)."""

    def __init__(self, fileno: int, on_read: Callable[[], None], label: str) -> None:
        self._fileno = fileno
        self.doRead = on_read
        self.label = label

    def fileno(self) -> int:
        return self._fileno

    def connectionLost(self, reason: Failure) -> None:
        pass

    def logPrefix(self) -> str:
        return self.label


class PeerRouting(Protocol):
    """Which of our sockets carries ESP to a peer: chosen when its SAs are installed
    (``Tunnels``, manual keying), read per packet by the pump."""

    def set_udp_sockets(self, sockets: list[UdpSocket]) -> None: ...
    def route_peer(self, peer: str, udp_sock: UdpSocket | None, device: str | None) -> None: ...


class EspSockets:
    """Our sockets that carry ESP: raw ESP per physical device and family, raw IP for
    ``%pass``, and per peer the one to send through.

    Opened before the data plane is built (``hidetos=no`` needs the raw IP socket to
    build outer headers); the pump reads and sends on them, ``Tunnels`` routes peers.
    """

    def __init__(self) -> None:
        #: peer address -> UDP socket to send its ESP-in-UDP from (our 4500 socket)
        self.udp_by_peer: dict[str, UdpSocket] = {}
        self.udp_default: UdpSocket | None = None
        #: physical device -> raw ESP socket (IPv4, IPv6); peer -> the one to send through
        self.esp_socks: dict[str, socket.socket] = {}
        self.esp6_socks: dict[str, socket.socket] = {}
        self.esp_by_peer: dict[str, socket.socket] = {}
        self.raw_ip: socket.socket | None = None
        self.raw_ip6: socket.socket | None = None

    def open_raw(self, devices: list[str]) -> list[str]:
        """Raw ESP (receive + send) and raw IP (``%pass``) sockets bound to ``devices``.

        Returns the problems met (e.g. not root); the pump then carries ESP-in-UDP only.
        """
        problems = []
        for device in devices:
            if device in self.esp_socks:
                continue
            try:
                sock = _raw_socket(socket.AF_INET, socket.IPPROTO_ESP, device)
            except OSError as error:
                problems.append(f"raw ESP socket on {device}: {error.strerror}")
                continue
            self.esp_socks[device] = sock
            try:  # IPv6 may be off on this host: then IPv6 peers get ESP-in-UDP only
                self.esp6_socks[device] = _raw_socket(socket.AF_INET6, socket.IPPROTO_ESP, device)
            except OSError:
                continue
        if self.raw_ip is None and devices:
            try:
                self.raw_ip = _raw_socket(socket.AF_INET, socket.IPPROTO_RAW, devices[0])
            except OSError as error:
                problems.append(f"raw IP socket on {devices[0]}: {error.strerror}")
            try:  # IPPROTO_RAW over IPv6 sends packets with their own header, as over IPv4
                self.raw_ip6 = _raw_socket(socket.AF_INET6, socket.IPPROTO_RAW, devices[0])
            except OSError:
                pass
        return problems

    def set_udp_sockets(self, sockets: list[UdpSocket]) -> None:
        """The IKE driver's 4500 sockets (the first is the default sender)."""
        for sock in sockets:
            if sock is not self.udp_default and sock not in self.udp_by_peer.values():
                enlarge_buffers(sock)
        self.udp_default = sockets[0] if sockets else None

    def route_peer(self, peer: str, udp_sock: UdpSocket | None, device: str | None) -> None:
        """Which of our sockets carries ESP to ``peer`` (chosen at SA install, not per packet)."""
        if udp_sock is not None:
            self.udp_by_peer[peer] = udp_sock
        raw = self.esp6_socks if ":" in peer else self.esp_socks
        if device is not None and device in raw:
            self.esp_by_peer[peer] = raw[device]

    def any_esp(self, peer: str) -> socket.socket | None:
        socks = self.esp6_socks if ":" in peer else self.esp_socks
        return next(iter(socks.values()), None)

    def close(self) -> None:
        raws = [sock for sock in (self.raw_ip, self.raw_ip6) if sock is not None]
        for sock in list(self.esp_socks.values()) + list(self.esp6_socks.values()) + raws:
            sock.close()
        self.esp_socks.clear()
        self.esp6_socks.clear()
        self.esp_by_peer.clear()
        self.raw_ip = self.raw_ip6 = None


class Pump(service.Service):
    """TUN and raw-ESP readers, output flushing and the SA-lifetime timer.

    A child service of the daemon: the readers are added to the reactor in
    ``startService``; ``stopService`` removes them, closes the ESP sockets and
    releases the TUN device.
    """

    def __init__(
        self,
        reactor: PumpReactor,
        dataplane: DataPlane,
        tun_fd: int | None,
        on_event: Callable[[DataPlaneEvent], None] = lambda event: None,
        budget: int = DEFAULT_BUDGET,
        vnet_hdr: bool = False,
        persistent: bool = False,
        sockets: EspSockets | None = None,
    ) -> None:
        self.reactor = reactor
        self.dp = dataplane
        self.tun_fd = tun_fd
        #: the TUN fd speaks ``virtio_net_hdr`` frames (``open_tun(vnet_hdr=True)``)
        self.vnet_hdr = vnet_hdr
        #: the TUN device was made persistent (fail closed on a crash): ``stop`` releases it
        self.persistent = persistent
        #: ESP-in-UDP bursts go out as UDP GSO sends until the kernel refuses one
        self.udp_gso = True
        self.on_event = on_event
        self.budget = budget
        #: the raw ESP/IP sockets and the per-peer choice of socket
        self.sockets = sockets if sockets is not None else EspSockets()
        self.counters: dict[str, int] = {
            "tun_read": 0, "tun_written": 0, "sent": 0, "send_failed": 0,
            "esp_received": 0, "udp_received": 0, "tun_write_failed": 0,
            "gso_sends": 0, "tun_frames": 0,
        }
        self._readers: list[_Reader] = []
        self._timer: IDelayedCall | None = None
        self._started = False

    # -- life -------------------------------------------------------------------

    def startService(self) -> None:
        super().startService()
        self.start()

    def stopService(self) -> None:
        super().stopService()
        self.stop()

    def start(self) -> None:
        """Read the TUN device and the raw ESP sockets; arm the SA-lifetime timer."""
        if self._started:
            return
        self._started = True
        if self.tun_fd is not None:
            self._add_reader(self.tun_fd, self._read_tun, "ipsec0")
        self._read_raw()
        self.arm_timer()

    def _read_raw(self) -> None:
        """Readers for the raw ESP sockets not read yet."""
        reading = {reader.fileno() for reader in self._readers}
        for device, sock in self.sockets.esp_socks.items():
            if sock.fileno() not in reading:
                self._add_reader(sock.fileno(), functools.partial(self._read_esp, sock),
                                 f"esp/{device}")
        for device, sock in self.sockets.esp6_socks.items():
            if sock.fileno() not in reading:
                self._add_reader(sock.fileno(), functools.partial(self._read_esp6, sock),
                                 f"esp6/{device}")

    def stop(self) -> None:
        for reader in self._readers:
            self.reactor.removeReader(reader)
        self._readers.clear()
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        self.sockets.close()
        if self.tun_fd is not None:
            if self.persistent:
                from fswan.daemon.kernel import release_tun

                release_tun(self.tun_fd)
            try:
                os.close(self.tun_fd)
            except OSError:
                pass
            self.tun_fd = None
        self._started = False

    def _add_reader(self, fileno: int, drain: Callable[[], None], label: str) -> None:
        reader = _Reader(fileno, drain, label)
        self._readers.append(reader)
        self.reactor.addReader(reader)

    def open_raw(self, devices: list[str]) -> list[str]:
        """``EspSockets.open_raw``, read at once if the pump runs."""
        problems = self.sockets.open_raw(devices)
        if self._started:
            self._read_raw()
        return problems

    def set_udp_sockets(self, sockets: list[UdpSocket]) -> None:
        self.sockets.set_udp_sockets(sockets)

    def route_peer(self, peer: str, udp_sock: UdpSocket | None, device: str | None) -> None:
        self.sockets.route_peer(peer, udp_sock, device)

    @property
    def raw_ip(self) -> socket.socket | None:
        return self.sockets.raw_ip

    # -- the fast path ------------------------------------------------------------

    def _read_tun(self) -> None:
        fd = self.tun_fd
        if fd is None:
            return
        read = os.read
        outbound = self.dp.outbound
        now = self.reactor.seconds()
        n = 0
        budget = self.budget
        skip = VNET_HDR_LEN if self.vnet_hdr else 0
        while n < budget:
            try:
                packet = read(fd, _READ_SIZE)
            except BlockingIOError:
                break
            except OSError:
                break
            n += 1
            outbound(packet[skip:] if skip else packet, now)
        self.counters["tun_read"] += n
        self.flush()

    def _read_esp(self, sock: socket.socket) -> None:
        recv = sock.recv
        inbound_ip = self.dp.inbound_ip
        now = self.reactor.seconds()
        n = 0
        budget = self.budget
        while n < budget:
            try:
                data = recv(_READ_SIZE)
            except BlockingIOError:
                break
            except OSError:
                break
            n += 1
            inbound_ip(data, now)
        self.counters["esp_received"] += n
        self.flush()

    def _read_esp6(self, sock: socket.socket) -> None:
        """IPv6 raw sockets deliver the ESP header on: the source comes from ``recvfrom``."""
        recvfrom = sock.recvfrom
        inbound = self.dp.inbound
        now = self.reactor.seconds()
        n = 0
        budget = self.budget
        while n < budget:
            try:
                data, addr = recvfrom(_READ_SIZE)
            except BlockingIOError:
                break
            except OSError:
                break
            n += 1
            inbound(data, addr[0], 0, now)
        self.counters["esp_received"] += n
        self.flush()

    def inbound_udp(self, data: bytes, host: str, port: int) -> None:
        """One ESP-in-UDP datagram from the IKE driver's 4500 socket."""
        self.dp.inbound(data, host, port, self.reactor.seconds())
        self.counters["udp_received"] += 1
        self.flush()

    def inbound_udp_batch(self, batch: list[tuple[bytes, str, int]]) -> None:
        """Many ESP-in-UDP datagrams, one flush (a draining UDP reader)."""
        inbound = self.dp.inbound
        now = self.reactor.seconds()
        for data, host, port in batch:
            inbound(data, host, port, now)
        self.counters["udp_received"] += len(batch)
        self.flush()

    def flush(self) -> None:
        """Send what the data plane queued, write decrypted packets, hand events on."""
        dp = self.dp
        network = dp.network
        if network:
            self._send(network)
            network.clear()
        tun = dp.tun
        if tun:
            fd = self.tun_fd
            write = os.write
            frames = tun_frames(tun) if self.vnet_hdr else tun
            bad_frames = bad = 0
            for frame in frames:
                try:
                    write(fd, frame)  # type: ignore[arg-type]
                except (OSError, TypeError):
                    bad_frames += 1
                    bad += frame_packets(frame) if self.vnet_hdr else 1
            self.counters["tun_written"] += len(tun) - bad
            self.counters["tun_frames"] += len(frames) - bad_frames
            if bad:
                self.counters["tun_write_failed"] += bad
            tun.clear()
        if dp.events:
            events = list(dp.events)
            dp.events.clear()
            for event in events:
                try:
                    self.on_event(event)
                except Exception:
                    log.failure("data plane event {event!r}", event=event)
            self.arm_timer()

    def _send(self, network: list) -> None:
        """Send ``dp.network``; runs of equal-size ESP-in-UDP to one peer as one GSO send."""
        sockets = self.sockets
        udp_by_peer = sockets.udp_by_peer
        udp_default = sockets.udp_default
        failed = 0
        count = len(network)
        i = 0
        while i < count:
            kind, data, addr = network[i]
            end = i + 1
            try:
                if kind == KIND_ESP_UDP:
                    sock = udp_by_peer.get(addr[0]) or udp_default
                    if sock is None:
                        raise AttributeError("no ESP-in-UDP socket")
                    if self.udp_gso:
                        size = total = len(data)
                        while end < count and end - i < GSO_MAX_SEGMENTS:
                            next_kind, next_data, next_addr = network[end]
                            length = len(next_data)
                            if (next_kind != KIND_ESP_UDP or next_addr != addr or length > size
                                    or total + length > GSO_MAX_BYTES):
                                break
                            total += length
                            end += 1
                            if length < size:
                                break
                    if end - i > 1:
                        failed += self._send_gso(sock, network, i, end, size, addr)
                    else:
                        sock.sendto(data, addr)
                elif kind == KIND_ESP:
                    (sockets.esp_by_peer.get(addr[0]) or sockets.any_esp(addr[0])).sendto(  # type: ignore[union-attr]
                        data, addr)
                elif ":" in addr[0]:
                    sockets.raw_ip6.sendto(data, addr)  # type: ignore[union-attr]
                else:
                    sockets.raw_ip.sendto(data, addr)  # type: ignore[union-attr]
            except (OSError, AttributeError):  # no socket for it, or the send failed
                failed += end - i
            i = end
        self.counters["sent"] += count - failed
        if failed:
            self.counters["send_failed"] += failed

    def _send_gso(self, sock: UdpSocket, network: list, start: int, end: int, size: int,
                  addr: tuple[str, int]) -> int:
        """``network[start:end]`` in one UDP GSO send; how many packets failed."""
        try:
            sock.sendmsg([b"".join([entry[1] for entry in network[start:end]])],
                         [(SOL_UDP, UDP_SEGMENT, size.to_bytes(2, sys.byteorder))], 0, addr)
            self.counters["gso_sends"] += 1
            return 0
        except OSError as error:
            if error.errno not in _NO_GSO:
                return end - start
            reason = os.strerror(error.errno or 0)
        # this kernel or device cannot segment UDP: plain sends from now on
        self.udp_gso = False
        log.info("UDP GSO unavailable ({reason}): ESP-in-UDP sent packet by packet",
                 reason=reason)
        failed = 0
        for entry in network[start:end]:
            try:
                sock.sendto(entry[1], addr)
            except OSError:
                failed += 1
        return failed

    # -- SA lifetimes -------------------------------------------------------------

    def arm_timer(self) -> None:
        """Re-arm the one timer for the data plane's next time-based SA limit."""
        deadline = self.dp.get_timer()
        if self._timer is not None and self._timer.active():
            if deadline is not None and abs(self._timer.getTime() - deadline) < 1e-6:
                return
            self._timer.cancel()
        self._timer = None
        if deadline is not None and self._started:
            delay = max(0.0, deadline - self.reactor.seconds())
            self._timer = self.reactor.callLater(delay, self._timer_fired)

    def _timer_fired(self) -> None:
        self._timer = None
        self.dp.handle_timer(self.reactor.seconds())
        self.flush()
        self.arm_timer()
