"""A road-warrior conn (``right=%any``) serving two peers at once (issue 13): each peer
client is an instance with its own eroute, make-before-break and updown verbs, as
pluto's ``"rw"[1]``/``"rw"[2]`` were; status, ``--delete`` and DPD still speak of "rw"."""

from __future__ import annotations

import os
from dataclasses import replace
from ipaddress import ip_address, ip_network

import pytest
from twisted.internet.testing import MemoryReactorClock

from fswan.config.orient import DefaultRoute, HostAddress, HostNetwork
from fswan.daemon.logging import PlutoLog
from fswan.daemon.pluto import Pluto
from fswan.daemon.tunnels import KernelSide
from fswan.ike import events as ev
from fswan.ike.status import StateSnapshot
from fswan.ipsec.dataplane import OK, DataPlane
from fswan.ipsec.kernel import Klips, instance_name
from fswan.ipsec.sa import SoftExpire
from fswan.suites import EspKeys, EspProposal
from fswan.updown.runner import UpdownRunner
from tests.daemon.test_dataplane_glue import FakeIke, packet
from tests.fakes import LogSink, MemoryLoader

GATEWAY = "192.0.2.1"
ALICE, BOB = "192.0.2.20", "192.0.2.30"
LAN = ip_network("203.0.113.0/24")
VIP_A, VIP_B = ip_network("198.51.100.200/32"), ip_network("198.51.100.201/32")
RW_A, RW_B = instance_name("rw", VIP_A), instance_name("rw", VIP_B)
CONF = """\
version 2
config setup
	interfaces="ipsec0=wan0"

conn rw
	left=192.0.2.1
	leftsubnet=203.0.113.0/24
	right=%any
	rightaddresspool=198.51.100.200-198.51.100.250
	authby=secret
	auto=add
"""
HOST = HostNetwork((HostAddress("wan0", ip_address(GATEWAY)),), DefaultRoute("wan0", None))


def child(serial: int, spi: int, peer: str, client, replaces: int | None = None) -> ev.ChildSAInstalled:
    def keys() -> EspKeys:
        return EspKeys(encryption_key=os.urandom(16), integrity_key=b"", salt=os.urandom(4))

    return ev.ChildSAInstalled(
        conn="rw", serial=serial, inbound_spi=spi, outbound_spi=spi + 1,
        proposal=EspProposal("aes_gcm_16", 128, None), inbound_keys=keys(), outbound_keys=keys(),
        mode="tunnel", udp_encapsulated=True, local_addr=ip_address(GATEWAY), local_port=4500,
        remote_addr=ip_address(peer), remote_port=4500, local_client=LAN, remote_client=client,
        lifetime_seconds=3600.0, replaces_serial=replaces,
    )


def deleted(event: ev.ChildSAInstalled, reason: str = "deleted") -> ev.ChildSADeleted:
    return ev.ChildSADeleted("rw", event.serial, event.inbound_spi, event.outbound_spi, reason)


class Verbs:
    """An updown plugin recording (verb, peer, peer client) as a routing plugin sees them."""

    name = "verbs"

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str]] = []
        self.instances: set[str | None] = set()
        self.connections: set[str] = set()

    def _keep(self, ctx) -> None:
        self.seen.append((ctx.verb, str(ctx.peer), str(ctx.peer_client)))
        self.instances.add(ctx.instance)
        self.connections.add(ctx.connection)

    prepare = route = unroute = up = down = _keep


class SnapshotIke(FakeIke):
    """FakeIke whose engine lists the installed IPsec states (for status lines)."""

    def snapshot(self, now):
        return [
            StateSnapshot(serial=serial, connection="rw", isakmp=False, label="STATE_QUICK_R2",
                          number=18, story="IPsec SA established", initiator=False, event=None,
                          event_in=None, local=GATEWAY, remote=peer, peer_id=None, newest=True,
                          spis_line=f"esp.{serial:x}@{peer} esp.{serial:x}@{GATEWAY}")
            for serial, peer in self.installed
        ]


@pytest.fixture
def world(monkeypatch):
    sink = LogSink()
    log = PlutoLog(sink.logger)
    loader = MemoryLoader({"/etc/ipsec.conf": CONF, "/etc/ipsec.secrets": ""})
    clock = MemoryReactorClock()
    verbs = Verbs()
    monkeypatch.setattr("fswan.daemon.tunnels.plugins_for", lambda oriented: [verbs])
    kernel = Klips(DataPlane())
    ike = SnapshotIke([], [], [])
    ike.installed = []  # type: ignore[attr-defined]
    runner = UpdownRunner(log, clock)
    pluto = Pluto("/etc/ipsec.conf", "/etc/ipsec.secrets", loader, lambda: HOST, log,
                  file_mode=lambda p: 0o600, ike=ike, dataplane=KernelSide(kernel, runner, clock))
    pluto.start()
    return pluto, kernel, verbs, ike, sink, runner


def two_peers(pluto):
    a, b = child(2, 0x100, ALICE, VIP_A), child(4, 0x200, BOB, VIP_B)
    pluto.tunnels.on_engine_event(a)
    pluto.tunnels.on_engine_event(b)
    return a, b


def sent_spi(kernel: Klips, dst: str) -> int:
    """The SPI the data plane encrypts a packet to ``dst`` with."""
    dp = kernel.dataplane
    assert dp.outbound(packet(src="203.0.113.10", dst=dst), 1.0) == OK
    return int.from_bytes(dp.network[-1][1][:4], "big")


def test_each_peer_has_its_own_eroute_owned_by_its_own_sa(world):
    pluto, kernel, verbs, *_ = world
    two_peers(pluto)
    assert kernel.owner_of(RW_A) == 2 and kernel.owner_of(RW_B) == 4
    assert len(kernel.dataplane.eroutes) == 2
    # each peer's return traffic goes into its own SA (the bug: both into the last one)
    assert sent_spi(kernel, "198.51.100.200") == 0x101
    assert sent_spi(kernel, "198.51.100.201") == 0x201
    assert verbs.seen == [
        ("prepare-client", ALICE, str(VIP_A)), ("route-client", ALICE, str(VIP_A)),
        ("up-client", ALICE, str(VIP_A)),
        ("prepare-client", BOB, str(VIP_B)), ("route-client", BOB, str(VIP_B)),
        ("up-client", BOB, str(VIP_B)),
    ]
    assert verbs.instances == {RW_A, RW_B}  # what the firewall plugin tags rules with
    assert verbs.connections == {"rw"}  # PLUTO_CONNECTION stays the conn's name
    assert pluto.tunnels.routing("rw") == "erouted"


def test_deleting_one_peer_leaves_the_other_erouted_and_its_updown_alone(world):
    pluto, kernel, verbs, ike, _, runner = world
    a, _ = two_peers(pluto)
    del verbs.seen[:]
    pluto.tunnels.on_engine_event(deleted(a))
    # the peer's own down and unroute, with its address and client (known only from up)
    assert verbs.seen == [("down-client", ALICE, str(VIP_A)), ("unroute-client", ALICE, str(VIP_A))]
    assert kernel.owner_of(RW_A) is None and kernel.owner_of(RW_B) == 4
    assert sent_spi(kernel, "198.51.100.201") == 0x201
    assert len(kernel.dataplane.eroutes) == 1
    assert runner.route_holders(254, VIP_B) == [RW_B] and runner.route_holders(254, VIP_A) == []
    assert pluto.tunnels.routing("rw") == "erouted"
    assert ike.terminated == []


def test_a_rekey_of_one_peer_moves_only_its_eroute(world):
    pluto, kernel, verbs, *_ = world
    a, b = two_peers(pluto)
    del verbs.seen[:]
    a2 = child(6, 0x300, ALICE, VIP_A, replaces=2)
    pluto.tunnels.on_engine_event(a2)
    assert kernel.owner_of(RW_A) == 6 and kernel.owner_of(RW_B) == 4
    assert sent_spi(kernel, "198.51.100.200") == 0x301
    assert sent_spi(kernel, "198.51.100.201") == 0x201
    pluto.tunnels.on_engine_event(deleted(a, "replaced"))
    assert verbs.seen == []  # make before break: no verbs for a rekey
    assert kernel.owner_of(RW_A) == 6 and sorted(kernel.pairs_of(RW_A)) == [6]
    pluto.tunnels.on_engine_event(deleted(a2))
    assert verbs.seen == [("down-client", ALICE, str(VIP_A)), ("unroute-client", ALICE, str(VIP_A))]
    assert kernel.owner_of(RW_B) == 4


def test_status_shows_eroute_owner_for_both_peers(world):
    pluto, kernel, _, ike, *_ = world
    two_peers(pluto)
    ike.installed = [(2, ALICE), (4, BOB)]
    lines = _status(pluto)
    for serial in (2, 4):
        (line,) = [x for x in lines if x.startswith(f'#{serial}: "rw" ') and "esp." in x]
        assert line.endswith("; eroute owner"), line
    (conn,) = [x for x in lines if x.startswith('"rw": ') and "erouted" in x]
    assert conn.endswith("; erouted; eroute owner: #4")


def test_delete_takes_every_peer_down_and_dpd_sees_each_peers_esp(world):
    pluto, kernel, verbs, *_ = world
    two_peers(pluto)
    kernel.pairs_of(RW_A)[2][0].last_used = 7.0
    kernel.pairs_of(RW_B)[4][0].last_used = 9.0
    assert pluto.tunnels.last_esp_arrival("rw") == 9.0
    del verbs.seen[:]
    done = []
    pluto.tunnels.forget("rw").addCallback(done.append)
    assert done == [None]
    assert sorted(verbs.seen) == sorted([
        ("down-client", ALICE, str(VIP_A)), ("unroute-client", ALICE, str(VIP_A)),
        ("down-client", BOB, str(VIP_B)), ("unroute-client", BOB, str(VIP_B)),
    ])
    assert kernel.conns == {} and kernel.instances("rw") == []
    assert len(kernel.dataplane.eroutes) == 0 and len(kernel.dataplane.sad) == 0


def test_nat_rebinding_and_soft_expiry_find_the_peers_instance(world):
    pluto, kernel, _, ike, sink, _ = world
    two_peers(pluto)
    pluto.tunnels.on_engine_event(ev.PeerAddressChanged("rw", 1, ip_address(BOB), 4501, (4,)))
    assert kernel.pairs_of(RW_B)[4][1].sendto == (BOB, 4501)
    assert kernel.pairs_of(RW_A)[2][1].remote_port == 4500
    outbound = kernel.pairs_of(RW_A)[2][1]
    pluto.tunnels.on_dataplane_event(
        SoftExpire(outbound.spi, "out", outbound.said, "time"))
    # the owner of Alice's eroute; initiating "rw" would key another peer's ISAKMP SA
    assert ike.initiated == []
    assert any("reached its soft time limit: the peer rekeys it" in line for line in sink.lines)


def test_a_second_sa_for_the_same_client_is_a_rekey_not_a_new_peer(world):
    """A reconnect given the same lease takes over the instance's eroute, with no new verbs."""
    pluto, kernel, verbs, *_ = world
    a, _ = two_peers(pluto)
    del verbs.seen[:]
    again = replace(child(8, 0x400, ALICE, VIP_A), remote_port=4501)
    pluto.tunnels.on_engine_event(again)
    pluto.tunnels.on_engine_event(deleted(a))
    assert verbs.seen == [] and kernel.owner_of(RW_A) == 8


def _status(pluto):
    lines: list[str] = []

    class Reply:
        def line(self, rc, text):
            lines.append(text)

    pluto.status(False, Reply())
    return lines


def test_an_sa_that_cannot_be_installed_ends_only_that_peer(world):
    """A road warrior's SA the data plane refuses: that IPsec state is deleted, the conn
    (and the other peer's tunnel) stays."""
    pluto, kernel, verbs, ike, sink, runner = world
    a = child(2, 0x100, ALICE, VIP_A)
    pluto.tunnels.on_engine_event(a)
    bad = child(4, 0x100, BOB, VIP_B)  # alice's inbound SPI again: the data plane refuses it
    pluto.tunnels.on_engine_event(bad)
    assert ike.terminated == []
    assert getattr(ike, "deleted_states", []) == [4]
    assert kernel.owner_of(RW_A) == 2 and kernel.owner_of(RW_B) is None
