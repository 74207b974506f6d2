"""Opportunistic encryption in the daemon without root: policy-group eroutes, an Acquire
under a group's %trap becoming ``private-or-clear#ADDR`` from DNS TXT records, and the
groups' failure shunts when DNS has nothing."""

from __future__ import annotations

import functools
from ipaddress import ip_address, ip_network

import dns.name
import dns.rdata
import dns.rdatatype
import dns.resolver
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from twisted.internet import defer, task
from twisted.internet.testing import MemoryReactorClock

from fswan.config import keys
from fswan.config.orient import DefaultRoute, HostAddress, HostNetwork
from fswan.daemon.dns import Answer, DnsKeyFetcher
from fswan.daemon.logging import PlutoLog
from fswan.daemon.pluto import Pluto
from fswan.daemon.tunnels import KernelSide
from fswan.dnskeys import records
from fswan.ipsec.dataplane import DataPlane
from fswan.ipsec.eroute import DROP, PASS, REJECT, TRAP
from fswan.ipsec.kernel import Klips
from fswan.updown.runner import UpdownRunner
from tests.fakes import LogSink, MemoryLoader

WEST, EAST = "192.0.2.1", "192.0.2.2"
CONF = """\
version 2
config setup
	interfaces=%defaultroute

conn %default
	keyingtries=%forever

conn private-or-clear
	leftsubnet=198.51.100.0/25
"""
POLICIES = "/etc/ipsec.d/policies/"
GROUP_FILES = {
    POLICIES + "clear": "# in clear\n203.0.113.64/26\n",
    POLICIES + "private-or-clear": "203.0.113.0/24\n",
    POLICIES + "private": "203.0.113.128/25\n",
    POLICIES + "block": "203.0.113.66\n",
}
HOST = HostNetwork((HostAddress("wan0", ip_address(WEST)),),
                   DefaultRoute("wan0", ip_address("192.0.2.254")))


@functools.cache
def east_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(65537, 1024)


def txt(key, gateway: str) -> dns.rdata.Rdata:
    return dns.rdata.from_text("IN", "TXT", records.format_txt(key, gateway, 10))


class FakeEngine:
    def __init__(self) -> None:
        self.added: list = []
        self.removed: list = []
        self.client_checks = False
        self.half_open, self.busy = 0, False
        self.checked: list = []

    def enable_client_checks(self, enabled: bool) -> None:
        self.client_checks = enabled

    def client_checked(self, check, now) -> None:
        self.checked.append(check)

    def add_connection(self, oriented, creds=None) -> None:
        self.added.append(oriented)

    def set_trust(self, trust, **policy) -> None:
        pass

    def remove_connection(self, name, now) -> None:
        self.removed.append(name)

    def state_dicts(self, now):
        return []

    def state_lines(self, now):
        return []

    def newest(self, name):
        return (0, 0)

    def snapshot(self, now):
        return []

    def apply_setup(self, **setup) -> None:
        pass

    def set_secrets(self, secrets) -> None:
        pass


class FakeIke:
    def __init__(self) -> None:
        self.engine = FakeEngine()
        self.initiated: list[str] = []

    def initiate(self, name, whack, asynchronous=False):
        self.initiated.append(name)

    def now(self) -> float:
        return 0.0

    def pump(self) -> None:
        self.pumps = getattr(self, "pumps", 0) + 1

    def open_ports(self, interfaces) -> None:
        pass

    def close_ports(self) -> None:
        pass


class Dns:
    def __init__(self, table: dict) -> None:
        self.table = table
        self.asked: list = []

    def __call__(self, name, rdtype, lifetime) -> Answer:
        self.asked.append(name)
        entry = self.table.get(name)
        if entry is None:
            raise dns.resolver.NXDOMAIN()
        return Answer(tuple(entry), 60)


def packet(src: str, dst: str) -> bytes:
    from scapy.layers.inet import ICMP, IP
    from scapy.packet import raw

    return raw(IP(src=src, dst=dst) / ICMP())


@pytest.fixture
def world(monkeypatch):
    sink = LogSink()
    log = PlutoLog(sink.logger)
    files = {"/etc/ipsec.conf": CONF, "/etc/ipsec.secrets": "", **GROUP_FILES}
    loader = MemoryLoader(files)
    clock = MemoryReactorClock()
    monkeypatch.setattr("fswan.daemon.tunnels.plugins_for", lambda oriented: [])
    kernel = Klips(DataPlane())
    ike = FakeIke()
    table = {records.reverse_name("203.0.113.10"): [txt(east_key(), EAST)]}
    resolver = Dns(table)
    fetcher = DnsKeyFetcher(task.Clock(), log=log.log, query=resolver,
                            run_blocking=lambda f, *a: defer.maybeDeferred(f, *a))
    pluto = Pluto("/etc/ipsec.conf", "/etc/ipsec.secrets", loader, lambda: HOST, log,
                  file_mode=lambda p: 0o600, ike=ike,
                  dataplane=KernelSide(kernel, UpdownRunner(log, clock), clock), fetcher=fetcher)
    pluto.start()
    tunnels = pluto.tunnels
    pluto.start_auto()
    return pluto, tunnels, kernel, ike, sink, resolver, loader


def eroutes(kernel) -> dict:
    return {(str(e.src), str(e.dst)): e.said for e in kernel.dataplane.eroutes}


def deliver(tunnels, kernel, src: str, dst: str) -> None:
    kernel.dataplane.outbound(packet(src, dst), 1.0)
    for event in list(kernel.dataplane.events):
        tunnels.on_dataplane_event(event)
    kernel.dataplane.events.clear()


def test_group_eroutes_from_policy_files(world):
    pluto, tunnels, kernel, ike, sink, _, _ = world
    table = eroutes(kernel)
    assert table[("198.51.100.0/25", "203.0.113.0/24")] == TRAP
    assert table[(f"{WEST}/32", "203.0.113.128/25")] == TRAP
    assert table[(f"{WEST}/32", "203.0.113.64/26")] == PASS
    assert table[(f"{WEST}/32", "203.0.113.66/32")] == REJECT
    assert any('policy groups from "/etc/ipsec.d/policies": clear 1, private-or-clear 1, private 1, '
               "block 1" in line for line in sink.lines)


def test_status_lists_groups(world):
    pluto = world[0]

    class Reply:
        lines: list = []

        def line(self, rc, text):
            self.lines.append(text)

    reply = Reply()
    pluto.status(False, reply)
    assert 'policy group "private-or-clear": %trap; failureshunt=passthrough: 203.0.113.0/24' in reply.lines
    assert 'policy group "block": %reject: 203.0.113.66/32' in reply.lines


def test_acquire_makes_an_instance_from_dns_and_initiates(world):
    pluto, tunnels, kernel, ike, sink, resolver, _ = world
    deliver(tunnels, kernel, "198.51.100.10", "203.0.113.10")
    name = "private-or-clear#203.0.113.10"
    assert ike.initiated == [name]
    assert resolver.asked == [records.reverse_name("203.0.113.10")]
    conn = pluto.connections[name].conn
    assert conn.right.host == EAST and conn.right.id == EAST
    assert conn.right.subnet == ip_network("203.0.113.10/32")
    assert conn.left.subnet == ip_network("198.51.100.10/32")
    assert conn.right.rsasigkey == keys.format_rsasigkey(east_key().public_key())
    assert (conn.keyingtries, conn.rekey) == (3, False)
    assert ike.engine.added[-1].name == name
    assert name in tunnels.keying
    # a second packet does not start a second negotiation
    deliver(tunnels, kernel, "198.51.100.11", "203.0.113.10")
    assert ike.initiated == [name]


def test_no_records_private_or_clear_passes_private_drops(world):
    pluto, tunnels, kernel, ike, sink, _, _ = world
    deliver(tunnels, kernel, "198.51.100.10", "203.0.113.20")
    deliver(tunnels, kernel, WEST, "203.0.113.130")
    assert ike.initiated == []
    table = eroutes(kernel)
    assert table[("198.51.100.10/32", "203.0.113.20/32")] == PASS
    assert table[(f"{WEST}/32", "203.0.113.130/32")] == DROP
    assert pluto.oe.failed == {"private-or-clear#203.0.113.20": "passthrough",
                               "private#203.0.113.130": "drop"}
    assert any("failure to fetch key for 203.0.113.20 from DNS" in line for line in sink.lines)
    assert any("failureshunt=drop installed" in line for line in sink.lines)


def test_rereadgroups_replaces_the_eroutes(world):
    pluto, tunnels, kernel, ike, sink, _, loader = world
    loader.files[POLICIES + "private"] = "# now empty\n"
    loader.files[POLICIES + "block"] = "bad line here\n"

    class Reply:
        lines: list = []

        def line(self, rc, text):
            self.lines.append(text)

    reply = Reply()
    pluto.reread_groups(reply)
    table = eroutes(kernel)
    assert (f"{WEST}/32", "203.0.113.128/25") not in table
    assert (f"{WEST}/32", "203.0.113.66/32") not in table
    assert table[("198.51.100.0/25", "203.0.113.0/24")] == TRAP
    assert any(line.startswith("/etc/ipsec.d/policies/block:1: ") for line in reply.lines)


def check_from(gateway: str, ours: str, peers: str):
    from fswan.config.ids import parse_id
    from fswan.ike.events import ClientCheck

    return ClientCheck(ip_address(WEST), ip_address(gateway), parse_id(gateway),
                       ip_network(ours), ip_network(peers))


def asked(pluto, ike, check):
    """The engine's ClientCheckNeeded for ``check``, answered: the instance the OE
    responder added (or None)."""
    from fswan.ike.events import ClientCheckNeeded

    before = set(pluto.connections)
    pluto.oe.on_client_check(ClientCheckNeeded("private-or-clear", 1, check))
    assert ike.engine.checked[-1] == check
    added = [pluto.connections[n].oriented for n in set(pluto.connections) - before]
    return added[0] if added else None


def test_responder_templates_accept_any_peer_with_dns_keys(world):
    pluto, _, _, ike, _, _, _ = world
    template = pluto.connections["private-or-clear"].conn
    assert template.right.host == "%any" and template.right.rsasigkey == "%dnsondemand"
    assert "private" in pluto.connections and "clear-or-private" not in pluto.connections
    assert ike.engine.client_checks


def test_responder_instance_when_the_peer_client_names_the_peer(world):
    pluto, _, _, ike, sink, _, _ = world
    oriented = asked(pluto, ike, check_from(EAST, "198.51.100.10/32", "203.0.113.10/32"))
    assert oriented.name == "private-or-clear#203.0.113.10"
    conn = oriented.conn
    assert (conn.right.host, conn.right.id, conn.right.rsasigkey) == (EAST, EAST, "%dnsondemand")
    assert conn.right.subnet == ip_network("203.0.113.10/32")
    assert conn.left.subnet == ip_network("198.51.100.10/32")
    assert any("opportunistic: responding for 203.0.113.10 behind 192.0.2.2" in line for line in sink.lines)


def test_responder_refuses_clients_dns_does_not_put_behind_the_peer(world):
    pluto, _, _, ike, _, _, _ = world
    # no records for the client
    assert asked(pluto, ike, check_from(EAST, "198.51.100.10/32", "203.0.113.20/32")) is None
    # records name another gateway
    assert asked(pluto, ike, check_from("192.0.2.9", "198.51.100.10/32", "203.0.113.10/32")) is None
    # not host to host, or not covered by an OE group
    assert asked(pluto, ike, check_from(EAST, "198.51.100.0/25", "203.0.113.10/32")) is None
    assert asked(pluto, ike, check_from(EAST, "198.51.100.10/32", "203.0.113.66/32")) is None


def test_responder_holds_quick_mode_until_dns_answers(world):
    from fswan.ike.events import ClientCheckNeeded

    pluto, _, _, ike, _, resolver, _ = world
    pending: list = []

    def later(function, *args):
        d = defer.Deferred()
        pending.append((d, function, args))
        return d

    pluto.oe.fetcher = DnsKeyFetcher(task.Clock(), query=resolver, run_blocking=later,
                                     log=lambda line: None)
    check = check_from(EAST, "198.51.100.10/32", "203.0.113.10/32")
    pluto.oe.on_client_check(ClientCheckNeeded("private-or-clear", 1, check))
    pluto.oe.on_client_check(ClientCheckNeeded("private-or-clear", 1, check))  # a retransmit
    assert ike.engine.checked == [] and "private-or-clear#203.0.113.10" not in pluto.connections
    d, function, args = pending.pop()
    assert pending == []  # one lookup for both
    pumps = getattr(ike, "pumps", 0)
    d.callback(function(*args))
    assert ike.engine.checked == [check, check] and ike.pumps > pumps  # what it made is sent
    oriented = pluto.connections["private-or-clear#203.0.113.10"].oriented
    assert oriented.name == "private-or-clear#203.0.113.10"
