"""The IKE sockets and the reactor side of the sans-IO IKE engine.

``IkeDriver`` is the only place the engine meets Twisted: UDP datagrams and
timer expiries go in with ``reactor.seconds()`` as ``now``; after every input
the driver sends what the engine queued, routes its events (log lines to the
log and to the attached whack, SA events to the kernel side), and re-arms one
``callLater`` for the engine's next deadline.

One UDP socket per interface address and port (500 and 4500, as pluto), so a
received datagram's local address is known for NAT-D.  On 4500 the first
word tells IKE (the zero non-ESP marker) from ESP-in-UDP, which belongs to
the data plane.

Debug lines (``PlutoLog.debug_line``, only for the categories that are on, each
behind one set-membership test): datagrams in and out (``raw``), their ISAKMP
headers and clear payload chains (``parsing``/``emitting``), NAT-T keepalives
and floats (``natt``), SA events (``lifecycle``, ``klips``, ``crypt``: the
algorithms, never a key), key lookups (``dns``), OE client checks (``oppo``),
DPD probes counted by the engine (``dpd``).  Every engine event also goes to the
``IkeStats`` the driver is given (handshakes, rekeys, DPD timeouts).
"""

from __future__ import annotations

import socket
import sys
from collections import deque
from collections.abc import Callable
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import Protocol, cast

from twisted.application import service
from twisted.internet import defer
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import IDelayedCall, IReadDescriptor
from twisted.internet.protocol import DatagramProtocol
from twisted.python.failure import Failure
from zope.interface import implementer

from fswan.config.orient import IpsecInterface
from fswan.daemon.dns import DnsKeyFetcher
from fswan.daemon.interfaces import Clock
from fswan.daemon.logging import PlutoLog, Reply
from fswan.daemon.metrics import IkeStats
from fswan.daemon.peerkeys import PeerKeys
from fswan.daemon.xauth import XauthChecks
from fswan.daemon.pump import UdpSocket, enlarge_buffers
from fswan.ike import events as ev
from fswan.ike.engine import IkeEngine
from fswan.isakmp.constants import name_of
from fswan.isakmp.errors import MalformedPacket
from fswan.isakmp.message import (
    HEADER_SIZE,
    NON_ESP_MARKER,
    NattKind,
    classify_natt,
    decode_header,
    decode_payloads,
)
from fswan.isakmp.payloads import payload_name
from fswan.whackproto import RC

Address = IPv4Address | IPv6Address
#: (our address, UDP port) of one bound IKE socket
PortKey = tuple[Address, int]
#: ESP-in-UDP datagrams read in one wake-up: (data, peer host, peer port)
EspBatch = list[tuple[bytes, str, int]]


class UdpPort(Protocol):
    """A bound UDP port (``twisted.internet.udp.Port``) as the driver uses it."""

    def write(self, datagram: bytes, addr: tuple[str, int]) -> None: ...
    def stopListening(self) -> object: ...


class IkeReactor(Clock, Protocol):
    """The reactor as the driver uses it: a clock, one timer, UDP ports and readers."""

    def listenUDP(self, port: int, protocol: DatagramProtocol, interface: str = "",
                  maxPacketSize: int = 8192) -> UdpPort: ...
    def addReader(self, reader: IReadDescriptor) -> None: ...
    def removeReader(self, reader: IReadDescriptor) -> None: ...


class EspInput(Protocol):
    """The data plane as the driver sees it (``daemon.pump.Pump``): where ESP-in-UDP
    read from our 4500 sockets goes, and who sends ESP-in-UDP from those sockets."""

    def inbound_udp(self, data: bytes, host: str, port: int) -> None: ...
    def inbound_udp_batch(self, batch: EspBatch) -> None: ...
    def set_udp_sockets(self, sockets: list[UdpSocket]) -> None: ...


def _ignore(event: ev.EngineEvent) -> None:
    pass


def _nothing() -> None:
    pass


SO_BINDTODEVICE = getattr(socket, "SO_BINDTODEVICE", 25)
SOL_UDP = getattr(socket, "SOL_UDP", 17)
#: linux/udp.h: deliver coalesced datagrams of a flow as one read, segment size in a cmsg
UDP_GRO = getattr(socket, "UDP_GRO", 104)
_GRO_CMSG_SPACE = socket.CMSG_SPACE(4)


#: IKE datagrams handled in one reactor turn before the rest wait for the next turn
#: (about 0.2 ms each: the data plane's readers are served every few milliseconds)
IKE_TURN_BUDGET = 32
#: IKE datagrams waiting at most; beyond, the oldest first message is dropped
IKE_QUEUE_CAP = 4096


class IkePort(DatagramProtocol):
    """One bound UDP socket: hands IKE datagrams to the driver."""

    noisy = False

    def __init__(self, driver: IkeDriver, local_addr: Address, local_port: int, natt: bool) -> None:
        self.driver = driver
        self.local_addr = local_addr
        self.local_port = local_port
        self.natt = natt

    def datagramReceived(self, data: bytes, addr: tuple[str, int]) -> None:
        if self.natt:
            kind = classify_natt(data)
            if kind is NattKind.KEEPALIVE:
                self.driver.count("natt_keepalives_received")
                if self.driver.log.debugging("natt"):
                    self.driver.log.debug_line("natt", f"NAT-T keepalive from {addr[0]}:{addr[1]}")
                return
            if kind is NattKind.ESP:
                self.driver.esp_in_udp(data, self, addr)
                return
        self.driver.receive(data, self, addr)  # IKE; a malformed one is the engine's to count


@implementer(IReadDescriptor)
class NattReader:
    """Reads a 4500 port's socket in place of Twisted's ``udp.Port``: drains it until
    EAGAIN, hands IKE (zero marker) and keepalives to the port's protocol one by one,
    and all ESP-in-UDP of the wake-up to the data plane in one batch (one flush).

    The socket asks for ``UDP_GRO``: a burst of equal-size datagrams from one peer
    (a UDP GSO send, or the NIC's GRO) arrives as one read, cut back into datagrams
    here by the segment size the kernel reports.
    """

    def __init__(self, port: UdpPort, on_batch: Callable[[EspBatch], None],
                 budget: int = 2048) -> None:
        self.port = port
        self.protocol: DatagramProtocol = getattr(port, "protocol")
        self.sock: socket.socket = getattr(port, "socket")
        self.on_batch = on_batch
        self.budget = budget
        try:
            self.sock.setsockopt(SOL_UDP, UDP_GRO, 1)
            self.gro = True
        except OSError:  # kernels before 5.0: one datagram per read, as before
            self.gro = False

    def fileno(self) -> int:
        return self.sock.fileno()

    def doRead(self) -> None:
        batch: list[tuple[bytes, str, int]] = []
        if self.gro:
            self._drain_gro(batch)
        else:
            self._drain(batch)
        if batch:
            self.on_batch(batch)

    def _drain(self, batch: EspBatch) -> None:
        recvfrom = self.sock.recvfrom
        for _ in range(self.budget):
            try:
                data, addr = recvfrom(65535)
            except BlockingIOError:
                break
            except OSError:  # an ICMP error reported on the socket: keep reading
                continue
            self._sort(data, addr, batch)

    def _drain_gro(self, batch: EspBatch) -> None:
        recvmsg = self.sock.recvmsg
        for _ in range(self.budget):
            try:
                data, ancillary, _flags, addr = recvmsg(65535, _GRO_CMSG_SPACE)
            except BlockingIOError:
                break
            except OSError:
                continue
            if ancillary:
                level, kind, value = ancillary[0]
                if level == SOL_UDP and kind == UDP_GRO:
                    size = int.from_bytes(value[:4], sys.byteorder)
                    if 0 < size < len(data):
                        for offset in range(0, len(data), size):
                            self._sort(data[offset:offset + size], addr, batch)
                        continue
            self._sort(data, addr, batch)

    def _sort(self, data: bytes, addr: tuple[str, int], batch: EspBatch) -> None:
        # classify_natt's ESP rule, inline: this runs for every ESP-in-UDP packet
        if len(data) >= 8 and data[:4] != NON_ESP_MARKER:
            batch.append((data, addr[0], addr[1]))
        else:  # (host, port) as udp.Port gives it (IPv6: without flow info and scope)
            self.protocol.datagramReceived(data, addr[:2])

    def connectionLost(self, reason: Failure) -> None:
        pass

    def logPrefix(self) -> str:
        return "natt"


class IkeDriver(service.Service):
    """Feeds the engine from sockets, whack and timers; routes its outputs.

    A child service of the daemon: the UDP sockets are bound when it starts
    (``open_ports`` before that only says which) and closed when it stops.
    The driver answers ``PeerKeyNeeded`` itself through its :class:`PeerKeys`
    (given a fetcher) and ``XauthCheckNeeded`` through its :class:`XauthChecks`;
    everything else it does not handle goes to the callbacks it is constructed
    with: SA events and the after-step check to the data plane's ``Tunnels``,
    ``ClientCheckNeeded`` to ``Opportunism``.
    """

    def __init__(
        self,
        engine: IkeEngine,
        log: PlutoLog,
        reactor: IkeReactor,
        on_child_sa: Callable[[ev.EngineEvent], None] = _ignore,
        ike_port: int = 500,
        natt_port: int = 4500,
        *,
        fetcher: DnsKeyFetcher | None = None,
        on_client_check: Callable[[ev.ClientCheckNeeded], None] | None = None,
        after_step: Callable[[], None] = _nothing,
        esp: EspInput | None = None,
        stats: IkeStats | None = None,
    ) -> None:
        self.engine = engine
        #: handshake/rekey/DPD figures fed with every engine event; None: not kept
        self.stats = stats
        #: the engine's DPD counters when last looked at (``dpd`` debugging)
        self._dpd_seen = (0, 0)
        self.log = log
        self.reactor = reactor
        self.on_child_sa = on_child_sa
        #: answers PeerKeyNeeded from DNS; None: no lookups (the engine is told "no keys")
        self.peer_keys = PeerKeys(fetcher, self) if fetcher is not None else None
        #: answers ClientCheckNeeded (``daemon.oe.Opportunism``); None: refuse at once
        self.on_client_check = on_client_check
        #: answers XauthCheckNeeded through the conn's ``xauthby=`` verifier
        self.xauth = XauthChecks(self, log, clock=reactor)
        self.ike_port = ike_port
        self.natt_port = natt_port
        #: the interfaces to listen on (``open_ports``), bound while the service runs
        self.interfaces: list[IpsecInterface] = []
        self.ports: dict[PortKey, UdpPort] = {}
        self.whacks: dict[int, tuple[Reply, defer.Deferred[bool]]] = {}
        self.timer: IDelayedCall | None = None
        self.counters: dict[str, int] = {}
        #: the data plane (``Pump``): ESP-in-UDP in; None: dropped.  With it the 4500
        #: sockets are read by a draining ``NattReader`` instead of ``udp.Port``
        self.esp = esp
        #: called after every engine step (on-demand keying watches for give-ups)
        self.after_step = after_step
        #: (address, port) -> physical device the socket is bound to
        self.devices: dict[PortKey, str] = {}
        self.natt_readers: dict[PortKey, NattReader] = {}
        #: IKE datagrams handled in this reactor turn, those waiting for the next turns,
        #: and the call that starts the next turn
        self._handled = 0
        self._inbox: deque[tuple[bytes, IkePort, tuple[str, int]]] = deque()
        self._turn: IDelayedCall | None = None

    # -- the service ----------------------------------------------------------

    def privilegedStartService(self) -> None:
        """Bind before twistd sheds privileges (ports 500/4500), as Twisted's own servers do."""
        super().privilegedStartService()
        self._bind()

    def startService(self) -> None:
        super().startService()
        self._bind()
        if self.esp is not None:
            self.esp.set_udp_sockets(self.natt_sockets())

    def stopService(self) -> None:
        super().stopService()
        self.close_ports()
        if self._turn is not None and self._turn.active():
            self._turn.cancel()
        self._turn = None
        self._inbox.clear()

    # -- sockets ------------------------------------------------------------

    def open_ports(self, interfaces: list[IpsecInterface]) -> None:
        """Listen on 500 and 4500 on every interface address (IPv4 and IPv6): bound at
        once while the service runs, else when it starts.

        IPv6 link-local addresses are left out: they need a scope, and no
        gateway is configured by one."""
        self.interfaces = list(interfaces)
        if self.running:
            self._bind()

    def _bind(self) -> None:
        """Bind what ``interfaces`` asks for and is not bound yet, unbind the rest."""
        physical = {i.address: i.physical for i in self.interfaces}
        wanted = {(i.address, port) for i in self.interfaces if not i.address.is_link_local
                  for port in (self.ike_port, self.natt_port)}
        for key in sorted(set(self.ports) - wanted, key=str):
            self._drop_reader(key)
            self.ports.pop(key).stopListening()
            self.devices.pop(key, None)
        for address, port in sorted(wanted - set(self.ports), key=str):
            protocol = IkePort(self, address, port, natt=(port == self.natt_port))
            try:
                listening = self.reactor.listenUDP(port, protocol, interface=str(address))
            except CannotListenError as error:
                self.log.log(f"cannot listen on {address}:{port}: {error.socketError}", RC.LOG_SERIOUS)
                continue
            self.ports[(address, port)] = listening
            self._bind_device(listening, physical[address], (address, port))
            # a burst of first messages (a hub starting its conns, a peer's reboot) is
            # read, not dropped: the default ~200 KiB holds some 700 datagrams
            enlarge_buffers(getattr(listening, "socket", None))
        self._drain_natt()

    def _drain_natt(self) -> None:
        """Put a draining ``NattReader`` on every 4500 socket (with a data plane)."""
        esp = self.esp
        if esp is None:
            return
        for key, listening in self.ports.items():
            if key[1] != self.natt_port or key in self.natt_readers:
                continue
            if getattr(listening, "socket", None) is None or not hasattr(self.reactor, "addReader"):
                continue
            reader = NattReader(listening, esp.inbound_udp_batch)
            self.reactor.removeReader(cast(IReadDescriptor, listening))
            self.reactor.addReader(reader)
            self.natt_readers[key] = reader

    def _drop_reader(self, key: PortKey) -> None:
        reader = self.natt_readers.pop(key, None)
        if reader is not None:
            self.reactor.removeReader(reader)

    def _bind_device(self, listening: UdpPort, device: str, key: PortKey) -> None:
        """Keep IKE and ESP-in-UDP on the physical device: a host-to-host conn routes the
        peer into ipsec0, which would otherwise capture our own packets to it."""
        sock = getattr(listening, "socket", None)
        if sock is None:
            return
        try:
            sock.setsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, device.encode() + b"\0")
        except OSError as error:
            self.log.log(f"cannot bind {key[0]}:{key[1]} to {device}: {error.strerror}",
                         RC.LOG_SERIOUS)
            return
        self.devices[key] = device

    def natt_sockets(self) -> list[UdpSocket]:
        """The bound 4500 sockets, for the pump's direct ESP-in-UDP sends."""
        return [getattr(p, "socket") for (a, n), p in sorted(self.ports.items(), key=str)
                if n == self.natt_port and getattr(p, "socket", None) is not None]

    def natt_socket(self, local_addr: Address) -> UdpSocket | None:
        """Our 4500 socket on ``local_addr``, if bound."""
        return getattr(self.ports.get((local_addr, self.natt_port)), "socket", None)

    def close_ports(self) -> None:
        for key in list(self.natt_readers):
            self._drop_reader(key)
        for port in self.ports.values():
            port.stopListening()
        self.ports.clear()

    def count(self, what: str) -> None:
        self.counters[what] = self.counters.get(what, 0) + 1

    # -- inputs ---------------------------------------------------------------

    def now(self) -> float:
        return self.reactor.seconds()

    def receive(self, data: bytes, port: IkePort, addr: tuple[str, int]) -> None:
        """One IKE datagram: handled now while this reactor turn's budget lasts, else
        queued for the next turns, so a flood never keeps the pump's readers waiting."""
        if self._handled < IKE_TURN_BUDGET and not self._inbox:
            self._handled += 1
            self._arm_turn()
            self._handle(data, port, addr)
            return
        if len(self._inbox) >= IKE_QUEUE_CAP:
            self._shed()
        self._inbox.append((data, port, addr))
        self._arm_turn()

    def _handle(self, data: bytes, port: IkePort, addr: tuple[str, int]) -> None:
        if self.log.debug:
            self._debug_datagram("received", "parsing", data, port.natt,
                                 f"from {addr[0]}:{addr[1]} on {port.local_addr}:{port.local_port}")
        self.engine.receive_datagram(
            data, port.local_addr, port.local_port, ip_address(addr[0]), addr[1], self.now()
        )
        self.pump()

    def _arm_turn(self) -> None:
        if self._turn is None:
            self._turn = self.reactor.callLater(0, self._next_turn)

    def _next_turn(self) -> None:
        """A new reactor turn: the budget starts again, the queue is worked off first."""
        self._turn = None
        self._handled = 0
        while self._inbox and self._handled < IKE_TURN_BUDGET:
            self._handled += 1
            self._handle(*self._inbox.popleft())
        if self._inbox or self._handled:
            self._arm_turn()

    def _shed(self) -> None:
        """The queue is full: the oldest first message (a stranger's, as likely as not)
        goes; when there is none, the oldest of all."""
        for i, (data, port, _addr) in enumerate(self._inbox):
            start = 4 if port.natt else 0
            if data[start + 8:start + 16] == bytes(8):  # responder cookie zero
                del self._inbox[i]
                break
        else:
            self._inbox.popleft()
        self.count("ike_queue_shed")

    def esp_in_udp(self, data: bytes, port: IkePort, addr: tuple[str, int]) -> None:
        """ESP-in-UDP belongs to the data plane; without one it is counted and dropped."""
        if self.esp is None:
            self.count("esp_in_udp_dropped")
            return
        self.esp.inbound_udp(data, addr[0], addr[1])

    def initiate(self, name: str, whack: Reply | None,
                 asynchronous: bool = False) -> defer.Deferred[bool] | None:
        """Start keying; the Deferred fires when the engine releases the whack."""
        done = self._attach(whack) if whack is not None and not asynchronous else None
        self.engine.initiate(name, self.now(), whack if done is not None else None)
        self.pump()
        return done

    def terminate(self, name: str, whack: Reply | None) -> None:
        """Deletes happen at once: the whack sees the lines of this one step."""
        if whack is not None:
            self._attach(whack)
        self.engine.terminate(name, self.now(), whack)
        self.pump()
        if whack is not None:
            self.detach(whack)

    def _attach(self, whack: Reply) -> defer.Deferred[bool]:
        done: defer.Deferred[bool] = defer.Deferred()
        self.whacks[id(whack)] = (whack, done)
        return done

    def detach(self, whack: Reply) -> None:
        """The whack hung up: stop writing to it, keep keying."""
        entry = self.whacks.pop(id(whack), None)
        if entry is not None and not entry[1].called:
            entry[1].callback(False)

    def _timer_fired(self) -> None:
        self.timer = None
        self.engine.handle_timer(self.now())
        self.pump()

    # -- outputs --------------------------------------------------------------

    def pump(self) -> None:
        """Send queued datagrams, route events, re-arm the timer."""
        while True:  # routing an event may hand the engine more work (a held message)
            datagrams = self.engine.datagrams_to_send()
            events = self.engine.next_events()
            if not datagrams and not events:
                break
            for datagram in datagrams:
                self._send(datagram)
            for event in events:
                self._route(event)
        deadline = self.engine.get_timer()
        if self.timer is not None and self.timer.active():
            self.timer.cancel()
        self.timer = None
        if deadline is not None:
            self.timer = self.reactor.callLater(max(0.0, deadline - self.now()), self._timer_fired)
        if "dpd" in self.log.debug:
            self._debug_dpd()
        self.after_step()

    def _send(self, datagram: ev.Datagram) -> None:
        local = getattr(datagram, "local_addr", None)
        port = self.ports.get((local, datagram.local_port)) if local is not None else None
        if port is None:
            port = next((p for (a, n), p in self.ports.items() if n == datagram.local_port), None)
        if port is None:
            self.count("sent_without_socket")
            return
        if self.log.debug:
            where = f"to {datagram.remote_addr}:{datagram.remote_port} from port {datagram.local_port}"
            if datagram.data == b"\xff":
                self.log.debug_line("natt", f"sending NAT-T keepalive {where}")
            else:
                self._debug_datagram("sending", "emitting", datagram.data,
                                     datagram.local_port == self.natt_port, where)
        port.write(datagram.data, (str(datagram.remote_addr), datagram.remote_port))

    def _route(self, event: ev.EngineEvent) -> None:
        if self.stats is not None:
            self.stats.on_event(event, self.now())
        if self.log.debug and not isinstance(event, (ev.LogLine, ev.WhackDone)):
            self._debug_event(event)
        if isinstance(event, ev.LogLine):
            whack = None
            if event.whack is not None and id(event.whack) in self.whacks:
                whack = self.whacks[id(event.whack)][0]
            self.log.log(event.text, event.rc, event.conn, event.serial, reply=whack)
        elif isinstance(event, ev.WhackDone):
            entry = self.whacks.pop(id(event.whack), None)
            if entry is not None and not entry[1].called:
                entry[1].callback(event.ok)
        elif isinstance(event, ev.ClientCheckNeeded):
            if self.on_client_check is not None:
                self.on_client_check(event)
            else:
                self.engine.client_checked(event.check, self.now())
        elif isinstance(event, ev.PeerKeyNeeded):
            if self.peer_keys is not None:
                self.peer_keys.needed(event)
            else:
                self.engine.set_peer_keys(event.identity, [], self.now())
        elif isinstance(event, ev.XauthCheckNeeded):
            self.xauth.needed(event)
        else:
            self.on_child_sa(event)

    # -- debug lines (only called while some category is on) -----------------------

    def _debug_datagram(self, verb: str, category: str, data: bytes, natt: bool,
                        where: str) -> None:
        """``raw``: the datagram as bytes; ``parsing``/``emitting``: its ISAKMP header
        and, in clear, its payload chain (names only)."""
        log = self.log
        if log.debugging("raw"):
            log.debug_line("raw", f"{verb} {len(data)} bytes {where}")
            for offset in range(0, len(data), 16):
                log.debug_line("raw", "  " + " ".join(f"{b:02x}" for b in data[offset:offset + 16]))
        if not log.debugging(category):
            return
        body = data[4:] if natt and data[:4] == NON_ESP_MARKER else data
        try:
            header = decode_header(body, check_length=False)
        except MalformedPacket as error:
            log.debug_line(category, f"{verb} {where}: not an ISAKMP message ({error})")
            return
        chain = "encrypted"
        if not header.encrypted:
            try:
                payloads = decode_payloads(header.next_payload, body[HEADER_SIZE:header.length])
                chain = " ".join(payload_name(p.payload_type) for p in payloads) or "none"
            except MalformedPacket as error:
                chain = f"malformed ({error})"
        log.debug_line(category, (
            f"{verb} ISAKMP message {where}: icookie {header.icookie.hex()} rcookie "
            f"{header.rcookie.hex()} exchange {name_of(header.exchange)} flags "
            f"{int(header.flags):#x} message ID {header.message_id:#010x} length "
            f"{header.length}; payloads: {chain}"))

    def _debug_event(self, event: ev.EngineEvent) -> None:
        log = self.log
        if isinstance(event, (ev.IsakmpSAEstablished, ev.IsakmpSADeleted)):
            if log.debugging("lifecycle"):
                what = (f"ISAKMP SA established with {event.remote_addr}:{event.remote_port} "
                        f"as '{event.peer_id}'" if isinstance(event, ev.IsakmpSAEstablished)
                        else f"ISAKMP SA deleted: {event.reason}")
                log.debug_line("lifecycle", what, event.conn, event.serial)
        elif isinstance(event, ev.ChildSAInstalled):
            if log.debugging("klips") or log.debugging("lifecycle"):
                log.debug_line("klips" if log.debugging("klips") else "lifecycle", (
                    f"installing SA pair: inbound {event.inbound_spi:#010x} outbound "
                    f"{event.outbound_spi:#010x} {event.mode} {event.local_client} <=> "
                    f"{event.remote_client} via {event.remote_addr}:{event.remote_port}"
                    + (" (ESP-in-UDP)" if event.udp_encapsulated else "")
                    + (f" replacing #{event.replaces_serial}" if event.replaces_serial else "")),
                    event.conn, event.serial)
            if log.debugging("crypt"):  # the algorithms; the keys never leave EspKeys
                log.debug_line("crypt", f"ESP transform {event.proposal}; keys not shown",
                               event.conn, event.serial)
        elif isinstance(event, ev.ChildSADeleted):
            category = "klips" if log.debugging("klips") else "lifecycle"
            log.debug_line(category, f"deleting SA pair inbound {event.inbound_spi:#010x} "
                           f"outbound {event.outbound_spi:#010x}: {event.reason}",
                           event.conn, event.serial)
        elif isinstance(event, ev.PeerAddressChanged):
            log.debug_line("natt", f"peer moved to {event.remote_addr}:{event.remote_port}; "
                           f"IPsec SAs {list(event.child_serials)} follow", event.conn, event.serial)
        elif isinstance(event, ev.PeerKeyNeeded):
            log.debug_line("dns", f"fetching the public key of '{event.identity}'",
                           event.conn, event.serial)
        elif isinstance(event, ev.XauthCheckNeeded):  # the password stays out
            log.debug_line("control", f"checking XAUTH user '{event.user}' from {event.peer}",
                           event.conn, event.serial)
        elif isinstance(event, ev.ClientCheckNeeded):
            check = event.check
            log.debug_line("oppo", f"asking DNS whether {check.peer_client} is behind "
                           f"{check.remote_addr} ('{check.peer_id}')", event.conn, event.serial)

    def _debug_dpd(self) -> None:
        counters = self.engine.counters
        sent, received = counters.get("dpd_sent", 0), counters.get("dpd_received", 0)
        before = self._dpd_seen
        self._dpd_seen = (sent, received)
        if sent > before[0]:
            self.log.debug_line("dpd", f"sent {sent - before[0]} R_U_THERE ({sent} in all)")
        if received > before[1]:
            self.log.debug_line("dpd", f"received {received - before[1]} R_U_THERE "
                                f"({received} in all)")
