"""The pump's kernel offloads against the real kernel, each in a private network
namespace of a forked child (root): a GSO frame (TCPv4 or TCPv6) written to an
``IFF_VNET_HDR`` TUN is forwarded and cut back into the original segments, and a UDP GSO burst from
the pump arrives through the 4500 reader's ``UDP_GRO`` as the original datagrams."""

from __future__ import annotations

import ctypes
import os
import pickle
import select
import time
import traceback
from typing import Any, Callable

import pytest

from fswan.ipsec.packet import checksum
from fswan.isakmp.message import NON_ESP_MARKER
from tests.unit.test_coalesce import flow, flow6, tcp6_segment, tcp_segment

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="needs root: a private network namespace and TUN devices")

CLONE_NEWNET = 0x40000000


def in_private_netns(work: Callable[..., Any], *args: Any, timeout: float = 20.0) -> Any:
    """``work(*args)`` in a forked child that has unshared a fresh network namespace."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_fd)
            try:
                libc = ctypes.CDLL(None, use_errno=True)
                if libc.unshare(CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNET)")
                payload = pickle.dumps(("ok", work(*args)))
            except BaseException:
                payload = pickle.dumps(("error", traceback.format_exc()))
            with os.fdopen(write_fd, "wb") as out:
                out.write(payload)
        finally:
            os._exit(0)
    os.close(write_fd)
    chunks = []
    deadline = time.monotonic() + timeout
    with os.fdopen(read_fd, "rb") as source:
        while True:
            ready, _, _ = select.select([source], [], [], max(deadline - time.monotonic(), 0))
            if not ready:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
                raise AssertionError(f"child hung for {timeout}s")
            chunk = os.read(source.fileno(), 1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
    os.waitpid(pid, 0)
    status, value = pickle.loads(b"".join(chunks))
    if status != "ok":
        raise AssertionError(f"in the namespace:\n{value}")
    return value


def _forward_through_tuns(batches: list[list[bytes]]) -> list[bytes]:
    """Write ``tun_frames(batch)`` into TUN ``gsoa`` (vnet header), route the
    destinations (198.51.100.0/24, 2001:db8:2::/64) into plain TUN ``gsob`` and read
    the IPv4 packets and IPv6 TCP segments the kernel forwards there."""
    from pyroute2 import IPRoute

    from fswan.daemon.kernel import open_tun
    from fswan.ipsec.coalesce import tun_frames

    for knob in ("ip_forward", "conf/all/rp_filter", "conf/default/rp_filter"):
        with open(f"/proc/sys/net/ipv4/{knob}", "w") as handle:
            handle.write("1" if knob == "ip_forward" else "0")
    with open("/proc/sys/net/ipv6/conf/all/forwarding", "w") as handle:
        handle.write("1")
    fd_in = open_tun("gsoa", 1500, vnet_hdr=True)
    fd_out = open_tun("gsob", 1500)
    with IPRoute() as ipr:
        gsob = ipr.link_lookup(ifname="gsob")[0]
        ipr.route("add", dst="198.51.100.0/24", oif=gsob)
        ipr.route("add", dst="2001:db8:2::/64", oif=gsob)
    written = 0
    for batch in batches:
        for frame in tun_frames(batch):
            os.write(fd_in, frame)
            written += 1
    out: list[bytes] = []
    want = sum(len(b) for b in batches)
    deadline = time.monotonic() + 5
    while len(out) < want and time.monotonic() < deadline:
        if select.select([fd_out], [], [], 0.2)[0]:
            packet = os.read(fd_out, 65535)
            version = packet[0] >> 4
            # not the IPv6 router solicitations and MLD reports of a new link
            if version == 4 or (version == 6 and packet[6] == 6):
                out.append(packet)
    return [written] + out


def forwarded(packet: bytes) -> bytes:
    """``packet`` as the kernel forwards it: TTL one less, header checksum redone."""
    ip = bytearray(packet[:20])
    ip[8] -= 1
    ip[10:12] = b"\0\0"
    ip[10:12] = checksum(ip).to_bytes(2, "big")
    return bytes(ip) + packet[20:]


def forwarded6(packet: bytes) -> bytes:
    """``packet`` (IPv6) as the kernel forwards it: hop limit one less."""
    return packet[:7] + bytes((packet[7] - 1,)) + packet[8:]


def test_the_kernel_cuts_a_gso_frame_back_into_the_segments_that_were_merged():
    run = flow(40)  # one frame of 40 segments
    tail = flow(3, seq=1000 + 40 * 1348, ident=140, last=100, last_flags=0x18)
    alone = tcp_segment(1, b"hello", sport=6000, ident=9)
    batches = [run, tail + [alone]]
    written, *out = in_private_netns(_forward_through_tuns, batches)
    assert written == 3  # two GSO frames and the lonely segment
    assert out == [forwarded(p) for p in run + tail + [alone]]


def test_the_kernel_cuts_an_ipv6_gso_frame_back_into_the_segments_that_were_merged():
    run = flow6(40)  # one TCPv6 frame of 40 segments
    tail = flow6(3, seq=1000 + 40 * 1348, last=100, last_flags=0x18)
    alone = tcp6_segment(1, b"hello", sport=6000)
    batches = [run, tail + [alone]]
    written, *out = in_private_netns(_forward_through_tuns, batches)
    assert written == 3  # two GSO frames and the lonely segment
    assert out == [forwarded6(p) for p in run + tail + [alone]]


def _gso_burst_through_gro(sizes: list[int]) -> dict:
    """Pump UDP GSO sends on lo to a socket read by a NattReader with UDP_GRO."""
    import socket

    from pyroute2 import IPRoute
    from twisted.internet.testing import MemoryReactorClock

    from fswan.daemon.ikeport import NattReader
    from fswan.daemon.pump import Pump
    from fswan.ipsec.dataplane import DataPlane
    from fswan.ipsec.sa import KIND_ESP_UDP

    with IPRoute() as ipr:
        ipr.link("set", index=ipr.link_lookup(ifname="lo")[0], state="up")
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 4500))
    receiver.setblocking(False)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender.bind(("127.0.0.1", 14500))

    class Protocol:
        ike: list = []

        def datagramReceived(self, data, addr):
            self.ike.append((data, addr))

    class Port:
        protocol = Protocol()
        socket = receiver

    batches: list = []
    reader = NattReader(Port(), batches.append)
    pump = Pump(MemoryReactorClock(), DataPlane(), None)
    pump.set_udp_sockets([sender])
    sent = [bytes([0, 0, 0x10, k & 0xFF]) + os.urandom(size - 4) for k, size in enumerate(sizes)]
    ike = NON_ESP_MARKER + b"an IKE message"
    pump._send([(KIND_ESP_UDP, data, ("127.0.0.1", 4500)) for data in sent])
    sender.sendto(ike, ("127.0.0.1", 4500))
    time.sleep(0.2)
    reader.doRead()
    return {
        "gro": reader.gro,
        "gso_sends": pump.counters["gso_sends"],
        "sent": sent,
        "received": [data for batch in batches for data, _host, _port in batch],
        "sources": {(host, port) for batch in batches for _data, host, port in batch},
        "ike": Protocol.ike,
    }


def test_udp_gso_sends_arrive_through_udp_gro_as_the_datagrams_sent():
    sizes = [1400] * 30 + [700] + [120] * 5
    result = in_private_netns(_gso_burst_through_gro, sizes)
    assert result["gro"] is True
    assert result["gso_sends"] == 2
    assert result["received"] == result["sent"]
    assert result["sources"] == {("127.0.0.1", 14500)}
    assert result["ike"] == [(NON_ESP_MARKER + b"an IKE message", ("127.0.0.1", 14500))]
