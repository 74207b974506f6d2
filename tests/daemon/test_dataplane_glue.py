"""The data-plane glue without root: Klips eroute bookkeeping, Tunnels on engine and
data-plane events, and the pump over fake descriptors and sockets."""

from __future__ import annotations

import os
import socket
import sys
from dataclasses import dataclass, replace
from ipaddress import ip_address, ip_network

import pytest
from twisted.internet.testing import MemoryReactorClock

from fswan.config.orient import DefaultRoute, HostAddress, HostNetwork
from fswan.daemon.logging import PlutoLog
from fswan.daemon.pluto import Pluto
from fswan.daemon.pump import GSO_MAX_BYTES, GSO_MAX_SEGMENTS, UDP_SEGMENT, Pump
from fswan.daemon.tunnels import KernelSide
from fswan.ike import events as ev
from fswan.ipsec.dataplane import DROP_NO_EROUTE, HELD, OK, Acquire, DataPlane
from fswan.ipsec.eroute import DROP, HOLD, TRAP
from fswan.ipsec.kernel import KernelError, Klips
from fswan.suites import EspKeys, EspProposal
from fswan.updown.runner import UpdownRunner
from tests.fakes import LogSink, MemoryLoader

GCM = EspProposal("aes_gcm_16", 128, None)
WEST, EAST = "192.0.2.1", "192.0.2.2"
NET_W, NET_E = ip_network("198.51.100.0/25"), ip_network("203.0.113.0/25")

CONF = """\
version 2
config setup
	interfaces="ipsec0=wan0"

conn net
	left=192.0.2.1
	leftsubnet=198.51.100.0/25
	right=192.0.2.2
	rightsubnet=203.0.113.0/25
	authby=secret
	failureshunt=drop
	auto=add
"""
HOST = HostNetwork((HostAddress("wan0", ip_address(WEST)),), DefaultRoute("wan0", None))


def keys() -> EspKeys:
    return EspKeys(encryption_key=os.urandom(16), integrity_key=b"", salt=os.urandom(4))


def child(serial: int, spi_in: int, spi_out: int, replaces: int | None = None,
          kin: EspKeys | None = None, kout: EspKeys | None = None, udp: bool = True,
          local: str = WEST, remote: str = EAST, lnet=NET_W, rnet=NET_E) -> ev.ChildSAInstalled:
    return ev.ChildSAInstalled(
        conn="net", serial=serial, inbound_spi=spi_in, outbound_spi=spi_out, proposal=GCM,
        inbound_keys=kin or keys(), outbound_keys=kout or keys(), mode="tunnel",
        udp_encapsulated=udp, local_addr=ip_address(local), local_port=4500,
        remote_addr=ip_address(remote), remote_port=4500, local_client=lnet,
        remote_client=rnet, lifetime_seconds=3600.0, replaces_serial=replaces,
    )


def mirror(event: ev.ChildSAInstalled) -> ev.ChildSAInstalled:
    """The same SA pair as the other gateway sees it."""
    return replace(
        event, inbound_spi=event.outbound_spi, outbound_spi=event.inbound_spi,
        inbound_keys=event.outbound_keys, outbound_keys=event.inbound_keys,
        local_addr=event.remote_addr, remote_addr=event.local_addr,
        local_client=event.remote_client, remote_client=event.local_client,
    )


def packet(src: str = "198.51.100.10", dst: str = "203.0.113.10", size: int = 84) -> bytes:
    from scapy.layers.inet import ICMP, IP
    from scapy.packet import Raw, raw

    return raw(IP(src=src, dst=dst) / ICMP() / Raw(b"x" * (size - 28)))


# -- Klips: eroutes per connection -------------------------------------------------


def sa_pair(event: ev.ChildSAInstalled):
    from fswan.ipsec.sa import sa_pair_from_child

    return sa_pair_from_child(event, now=0.0)


def test_install_points_the_eroute_and_delete_removes_it():
    k = Klips(DataPlane())
    k.install("net", 2, *sa_pair(child(2, 0x100, 0x200)), now=0.0)
    assert k.routing("net") == "erouted" and k.owner_of("net") == 2
    (line,) = k.dataplane.eroute_listing()
    assert "198.51.100.0/25" in line and "tun0x200@192.0.2.2" in line
    assert k.dataplane.outbound(packet(), 1.0) == OK
    k.delete("net", 2, 2.0)
    assert k.dataplane.eroute_listing() == [] and k.routing("net") == "unrouted"
    assert k.dataplane.outbound(packet(), 3.0) == DROP_NO_EROUTE
    assert len(k.dataplane.sad) == 0


def test_rekey_makes_before_it_breaks():
    """The new pair takes the eroute at install; deleting the old pair leaves it alone,
    and not one packet is dropped or sent in clear on the way."""
    k = Klips(DataPlane())
    dp = k.dataplane
    k.install("net", 2, *sa_pair(child(2, 0x100, 0x200)), now=0.0)
    verdicts = [dp.outbound(packet(), 1.0)]
    k.install("net", 4, *sa_pair(child(4, 0x300, 0x400, replaces=2)), now=2.0)
    assert k.owner_of("net") == 4
    verdicts.append(dp.outbound(packet(), 2.5))
    assert dp.network[-1][1][:4] == (0x400).to_bytes(4, "big")  # the new SA carries it
    k.delete("net", 2, 3.0)
    assert k.owner_of("net") == 4 and "tun0x400@192.0.2.2" in dp.eroute_listing()[0]
    verdicts.append(dp.outbound(packet(), 3.5))
    assert verdicts == [OK, OK, OK]
    assert all(kind == 1 for kind, _, _ in dp.network)  # every one ESP-in-UDP, none in clear
    assert dp.counters[DROP_NO_EROUTE] == 0


def test_deleting_the_owner_falls_back_to_the_other_pair():
    k = Klips(DataPlane())
    k.install("net", 2, *sa_pair(child(2, 0x100, 0x200)), now=0.0)
    k.install("net", 4, *sa_pair(child(4, 0x300, 0x400)), now=1.0)
    k.delete("net", 4, 2.0)
    assert k.owner_of("net") == 2 and "tun0x200@" in k.dataplane.eroute_listing()[0]


def test_trap_hold_then_sa_releases_the_held_packet():
    k = Klips(DataPlane())
    dp = k.dataplane
    k.route("net", NET_W, NET_E, 0.0)
    assert k.routing("net") == "prospective erouted"
    assert dp.outbound(packet(), 1.0) == HELD
    (acquire,) = dp.events
    assert k.acquire(acquire) == "net"
    assert k.routing("net") == "erouted HOLD"
    k.install("net", 2, *sa_pair(child(2, 0x100, 0x200)), now=2.0)
    assert k.routing("net") == "erouted"
    assert len(dp.network) == 1  # the held packet went out through the new SA
    assert [e.said for e in dp.eroutes if e.magic == HOLD] == []
    k.delete("net", 2, 3.0)
    assert k.routing("net") == "prospective erouted"
    assert [str(e.said) for e in dp.eroutes] == [TRAP]


def test_keying_failure_installs_the_failure_shunt_or_returns_to_the_trap():
    k = Klips(DataPlane())
    dp = k.dataplane
    k.route("net", NET_W, NET_E, 0.0)
    dp.outbound(packet(), 1.0)
    k.acquire(dp.events.pop())
    k.keying_failed("net", "drop", 2.0)
    assert k.routing("net") == "fail erouted"
    assert DROP in [e.said for e in dp.eroutes]
    assert dp.outbound(packet(), 3.0) == "%drop"
    k.unroute("net", 4.0)
    assert len(dp.eroutes) == 0 and k.routing("net") == "unrouted"
    # failureshunt=none: the hold goes and the trap catches the next packet again
    k.route("net", NET_W, NET_E, 5.0)
    dp.outbound(packet(), 6.0)
    k.acquire(dp.events.pop())
    k.keying_failed("net", "none", 7.0)
    assert k.routing("net") == "prospective erouted"
    assert dp.outbound(packet(), 8.0) == HELD and isinstance(dp.events[-1], Acquire)


def test_unroute_refused_while_an_sa_owns_the_eroute():
    k = Klips(DataPlane())
    k.route("net", NET_W, NET_E, 0.0)
    k.install("net", 2, *sa_pair(child(2, 0x100, 0x200)), now=1.0)
    with pytest.raises(KernelError, match="route busy"):
        k.unroute("net", 2.0)


def test_spi_clash_is_reported_with_klips_words():
    k = Klips(DataPlane())
    k.install("net", 2, *sa_pair(child(2, 0x100, 0x200)), now=0.0)
    with pytest.raises(KernelError, match="SA already in use"):
        k.install("net", 4, *sa_pair(child(4, 0x100, 0x999)), now=1.0)
    assert k.owner_of("net") == 2 and len(k.dataplane.sad) == 2


# -- Tunnels: engine events, acquire, updown ---------------------------------------


@dataclass
class FakeIke:
    """The IkeDriver surface Tunnels uses; states from ``state_dicts`` are scripted."""

    initiated: list
    terminated: list
    states: list
    natt_port: int = 4500
    ports: dict = None  # type: ignore[assignment]
    half_open: int = 0
    busy: bool = False

    def __post_init__(self):
        self.ports = {}
        self.engine = self

    def initiate(self, name, whack, asynchronous=False):
        self.initiated.append(name)

    def terminate(self, name, whack):
        self.terminated.append(name)

    def delete_state(self, serial, now):
        self.deleted_states = getattr(self, "deleted_states", []) + [serial]
        return True

    def pump(self):
        pass

    def state_dicts(self, now):
        return self.states

    def natt_sockets(self):
        return []

    # what Pluto asks of its IKE side (nothing the tests look at)
    def apply_setup(self, **setup):
        pass

    def set_secrets(self, secrets):
        pass

    def open_ports(self, interfaces):
        pass

    def add_connection(self, oriented, creds=None):
        pass

    def set_trust(self, trust, **policy):
        pass

    def now(self):
        return 0.0

    def snapshot(self, now):
        return []

    def newest(self, name):
        return (0, 0)


class Recorder:
    """An IUpdown plugin that records verbs (and can fail ``route``)."""

    name = "recorder"

    def __init__(self, fail_route: bool = False):
        self.verbs: list[str] = []
        self.fail_route = fail_route

    def _record(self, ctx):
        self.verbs.append(ctx.verb)

    def prepare(self, ctx):
        self._record(ctx)

    def route(self, ctx):
        self._record(ctx)
        if self.fail_route:
            from fswan.updown import UpdownFailure

            raise UpdownFailure("ip route replace", "Network is unreachable")

    unroute = up = down = _record


@pytest.fixture
def world(monkeypatch):
    sink = LogSink()
    log = PlutoLog(sink.logger)
    loader = MemoryLoader({"/etc/ipsec.conf": CONF, "/etc/ipsec.secrets": ""})
    clock = MemoryReactorClock()
    recorder = Recorder()
    monkeypatch.setattr("fswan.daemon.tunnels.plugins_for", lambda oriented: [recorder])
    kernel = Klips(DataPlane())
    ike = FakeIke([], [], [])
    pluto = Pluto("/etc/ipsec.conf", "/etc/ipsec.secrets", loader, lambda: HOST, log,
                  file_mode=lambda p: 0o600, ike=ike,
                  dataplane=KernelSide(kernel, UpdownRunner(log, clock), clock))
    pluto.start()
    tunnels = pluto.tunnels
    return tunnels, kernel, recorder, ike, sink, pluto


def test_first_sa_routes_then_up_rekey_is_silent_last_delete_down_unroute(world):
    tunnels, kernel, recorder, ike, sink, _ = world
    tunnels.on_engine_event(child(2, 0x100, 0x200))
    assert recorder.verbs == ["prepare-client", "route-client", "up-client"]
    assert kernel.routing("net") == "erouted"
    tunnels.on_engine_event(child(4, 0x300, 0x400, replaces=2))
    assert recorder.verbs[3:] == [] and kernel.owner_of("net") == 4
    tunnels.on_engine_event(ev.ChildSADeleted("net", 2, 0x100, 0x200, "replaced"))
    assert recorder.verbs[3:] == [] and kernel.owner_of("net") == 4
    tunnels.on_engine_event(ev.ChildSADeleted("net", 4, 0x300, 0x400, "terminated"))
    assert recorder.verbs[3:] == ["down-client", "unroute-client"]
    assert kernel.routing("net") == "unrouted"


def test_esp_arriving_on_a_conns_sas_is_what_dpd_sees_as_activity(world):
    tunnels, kernel, recorder, ike, sink, _ = world
    event = child(2, 0x100, 0x200)
    tunnels.on_engine_event(event)
    assert tunnels.last_esp_arrival("net") is None and tunnels.last_esp_arrival("other") is None
    peer = DataPlane()
    Klips(peer).install("net", 2, *sa_pair(mirror(event)), now=0.0)
    peer.outbound(packet(src="203.0.113.10", dst="198.51.100.10"), 5.0)
    [(_kind, esp, _addr)] = peer.network
    assert kernel.dataplane.inbound(esp, EAST, 4500, 42.0) == OK
    assert tunnels.last_esp_arrival("net") == 42.0


def test_routing_failure_keeps_the_tunnel_down_and_terminates(world):
    tunnels, kernel, recorder, ike, sink, _ = world
    recorder.fail_route = True
    tunnels.on_engine_event(child(2, 0x100, 0x200))
    assert ike.terminated == ["net"]
    assert kernel.routing("net") == "unrouted" and len(kernel.dataplane.sad) == 0
    assert any("routing failed: the tunnel does not come up" in line for line in sink.lines)
    assert "up-client" not in recorder.verbs


def test_route_then_acquire_initiates_once_and_failure_applies_failureshunt(world):
    tunnels, kernel, recorder, ike, sink, pluto = world
    done = []
    tunnels.route("net", None).addCallback(done.append)
    assert done == [True] and recorder.verbs == ["prepare-client", "route-client"]
    assert kernel.routing("net") == "prospective erouted"
    dp = kernel.dataplane
    dp.outbound(packet(), 1.0)
    dp.outbound(packet(src="198.51.100.11"), 1.0)
    for event in list(dp.events):
        tunnels.on_dataplane_event(event)
    assert ike.initiated == ["net"]  # once, although two packets hit the trap
    assert any("initiate on demand from 198.51.100.10:0 to 203.0.113.10:0 proto=1" in line
               for line in sink.lines)
    ike.states = [{"connection": "net", "kind": "ISAKMP", "state_number": 4}]  # MAIN_I1
    tunnels.after_ike_step()
    assert kernel.routing("net") == "erouted HOLD"
    ike.states = []  # the engine gave up
    tunnels.after_ike_step()
    assert kernel.routing("net") == "fail erouted"
    assert any("keying failed: failureshunt=drop installed" in line for line in sink.lines)
    status = "\n".join(_status(pluto))
    assert '"net": 198.51.100.0/25===192.0.2.1...192.0.2.2===203.0.113.0/25; fail erouted' in status


def test_acquire_then_sa_carries_the_held_packet_and_status_shows_traffic(world):
    tunnels, kernel, recorder, ike, sink, pluto = world
    tunnels.route("net", None)
    dp = kernel.dataplane
    dp.outbound(packet(), 1.0)
    tunnels.on_dataplane_event(dp.events.pop())
    tunnels.on_engine_event(child(2, 0x100, 0x200))
    assert len(dp.network) == 1 and kernel.routing("net") == "erouted"
    assert recorder.verbs == ["prepare-client", "route-client", "up-client"]
    status = "\n".join(_status(pluto))
    assert "; erouted; eroute owner: #2" in status
    assert "ipsec0: 1 eroutes, 2 SAs" in status
    # a routed conn keeps its trap (and route) when its SA goes
    tunnels.on_engine_event(ev.ChildSADeleted("net", 2, 0x100, 0x200, "expired"))
    assert kernel.routing("net") == "prospective erouted"
    assert recorder.verbs[3:] == ["down-client"]


def _status(pluto):
    lines = []

    class Reply:
        def line(self, rc, text):
            lines.append(text)

    pluto.status(False, Reply())
    return lines


# -- the pump over fake descriptors -------------------------------------------------


class FakeUdp:
    """A 4500 socket that records datagrams, cutting UDP GSO sends as the kernel would."""

    def __init__(self):
        self.sent: list[tuple[bytes, tuple]] = []
        self.gso_sends: list[int] = []

    def sendto(self, data, addr):
        self.sent.append((data, addr))

    def sendmsg(self, buffers, ancillary, flags, addr):
        [(level, kind, value)] = ancillary
        assert (level, kind) == (socket.SOL_UDP, UDP_SEGMENT)
        size = int.from_bytes(value, sys.byteorder)
        data = b"".join(buffers)
        self.gso_sends.append(len(data))
        for offset in range(0, len(data), size):
            self.sent.append((data[offset:offset + size], addr))


def tun_pair():
    """A datagram socketpair standing in for /dev/net/tun: (pump end, test end)."""
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    for end in (a, b):
        end.setblocking(False)
        end.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
        end.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    return a, b


def test_pump_drains_the_tun_encrypts_sends_and_decrypts_into_the_peer_tun():
    reactor = MemoryReactorClock()
    west_end, west_test = tun_pair()
    east_end, east_test = tun_pair()
    west = Pump(reactor, DataPlane(), west_end.fileno())
    east = Pump(reactor, DataPlane(), east_end.fileno())
    west.start()
    east.start()
    assert any(r.fileno() == west_end.fileno() for r in reactor.getReaders())
    event = child(2, 0x100, 0x200)
    for pump, e in ((west, event), (east, mirror(event))):
        k = Klips(pump.dp)
        k.install("net", 2, *sa_pair(e), now=0.0)
    udp = FakeUdp()
    west.set_udp_sockets([udp])
    packets = [packet(size=84 + i) for i in range(50)]
    for p in packets:
        west_test.send(p)
    west._read_tun()  # one wake-up drains all 50
    assert west.counters["tun_read"] == 50 and len(udp.sent) == 50
    assert all(addr == (EAST, 4500) for _, addr in udp.sent)
    assert west.dp.network == []
    east.inbound_udp_batch([(data, WEST, 4500) for data, _ in udp.sent])
    received = [east_test.recv(65535) for _ in range(50)]
    assert received == packets
    west.stop()
    east.stop()
    assert reactor.getReaders() == []


def _west_pump_with_sa(event=None):
    reactor = MemoryReactorClock()
    end, test = tun_pair()
    pump = Pump(reactor, DataPlane(), end.fileno())
    pump.start()
    Klips(pump.dp).install("net", 2, *sa_pair(event or child(2, 0x100, 0x200)), now=0.0)
    return pump, end, test


def test_equal_esp_in_udp_packets_to_one_peer_leave_as_udp_gso_sends():
    event = child(2, 0x100, 0x200)
    pump, end, test = _west_pump_with_sa(event)
    udp = FakeUdp()
    pump.set_udp_sockets([udp])
    sizes = [500] * 70 + [400] + [500] * 3 + [1200] + [1400] * 50
    for size in sizes:
        test.send(packet(size=size))
    pump._read_tun()
    # a run stops at 64 segments, after a shorter packet, before a longer one, and
    # before 64 KiB
    lengths = [len(data) for data, _ in udp.sent]
    esp = {size: length for size, length in zip(sizes, lengths)}
    assert len(udp.sent) == len(sizes) and pump.counters["sent"] == len(sizes)
    fit = GSO_MAX_BYTES // esp[1400]
    assert udp.gso_sends == [GSO_MAX_SEGMENTS * esp[500], 6 * esp[500] + esp[400],
                             3 * esp[500], fit * esp[1400], (50 - fit) * esp[1400]]
    assert pump.counters["gso_sends"] == 5
    assert lengths[74] == esp[1200]  # the longer one went alone, with sendto
    # every datagram decrypts at the peer, in order
    east_end, east_test = tun_pair()
    east = Pump(MemoryReactorClock(), DataPlane(), east_end.fileno())
    Klips(east.dp).install("net", 2, *sa_pair(mirror(event)), now=0.0)
    east.inbound_udp_batch([(data, WEST, 4500) for data, _ in udp.sent])
    assert [len(east_test.recv(65535)) for _ in sizes] == sizes
    pump.stop()


def test_a_kernel_refusing_udp_gso_turns_it_off_and_nothing_is_lost():
    pump, end, test = _west_pump_with_sa()

    class NoGso(FakeUdp):
        def sendmsg(self, buffers, ancillary, flags, addr):
            raise OSError(5, "Input/output error")  # EIO: no checksum offload

    udp = NoGso()
    pump.set_udp_sockets([udp])
    for _ in range(10):
        test.send(packet(size=500))
    pump._read_tun()
    assert pump.udp_gso is False
    assert len(udp.sent) == 10 and pump.counters["sent"] == 10
    assert pump.counters["send_failed"] == 0 and pump.counters["gso_sends"] == 0
    pump.stop()


def test_pump_hands_acquire_events_on_and_rearms_the_sa_timer():
    reactor = MemoryReactorClock()
    end, test = tun_pair()
    seen = []
    dp = DataPlane()
    pump = Pump(reactor, dp, end.fileno(), on_event=seen.append)
    pump.start()
    dp.add_eroute(NET_W, NET_E, TRAP)
    test.send(packet())
    pump._read_tun()
    assert len(seen) == 1 and isinstance(seen[0], Acquire)
    Klips(dp).install("net", 2, *sa_pair(child(2, 0x100, 0x200)), now=0.0)
    pump.arm_timer()
    assert [c.getTime() for c in reactor.getDelayedCalls()] == [3600.0]
    reactor.advance(3600.0)
    assert len(dp.sad) == 0  # the hard lifetime removed both SAs
    assert any(type(e).__name__ == "HardExpire" for e in seen)
    pump.stop()


def test_pump_counts_send_failures_instead_of_raising():
    reactor = MemoryReactorClock()
    end, test = tun_pair()
    dp = DataPlane()
    pump = Pump(reactor, dp, end.fileno())
    pump.start()
    Klips(dp).install("net", 2, *sa_pair(child(2, 0x100, 0x200)), now=0.0)

    class Full:
        def sendto(self, data, addr):
            raise BlockingIOError(11, "Resource temporarily unavailable")

    pump.set_udp_sockets([Full()])
    test.send(packet())
    pump._read_tun()
    assert pump.counters["send_failed"] == 1 and dp.network == []
    pump.stop()


def test_sa_on_narrower_nets_than_the_trap_leaves_the_trap_in_place():
    k = Klips(DataPlane())
    dp = k.dataplane
    k.route("net", NET_W, NET_E, 0.0)
    narrow = ip_network("198.51.100.0/26")
    k.install("net", 2, *sa_pair(child(2, 0x100, 0x200, lnet=narrow)), now=1.0)
    assert sorted(str(e.said) for e in dp.eroutes) == [TRAP, "tun0x200@192.0.2.2"]
    assert dp.outbound(packet(), 2.0) == OK  # 198.51.100.10 is in the /26
    k.delete("net", 2, 3.0)
    assert [str(e.said) for e in dp.eroutes] == [TRAP]
    assert k.routing("net") == "prospective erouted"
    k.unroute("net", 4.0)
    assert len(dp.eroutes) == 0


def test_a_vnet_pump_writes_merged_frames_and_counts_packets_and_frames():
    from tests.unit.test_coalesce import flow

    reactor = MemoryReactorClock()
    end, test = tun_pair()
    pump = Pump(reactor, DataPlane(), end.fileno(), vnet_hdr=True)
    segments = flow(10)
    pump.dp.tun.extend(segments)
    pump.flush()
    frame = test.recv(65535)
    assert frame[1] == 1 and len(frame) == 10 + 52 + 10 * 1348  # one TCPv4 GSO frame
    assert (pump.counters["tun_written"], pump.counters["tun_frames"]) == (10, 1)
    test.close()  # the device is gone: the write fails, and all ten packets count as lost
    pump.dp.tun.extend(flow(10, seq=99999) + [packet()])
    pump.flush()
    assert pump.counters["tun_write_failed"] == 11 and pump.counters["tun_written"] == 10
    assert pump.dp.tun == []
    pump.stop()
