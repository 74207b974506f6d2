"""Host names in ipsec.conf (``right=vpn.example.com``): looked up when the conn is added,
off the reactor; a name that does not resolve keeps that conn out with pluto's message."""

from __future__ import annotations

from ipaddress import ip_address

import dns.name
import dns.rdata
import dns.resolver
from twisted.internet import defer, task

from fswan.config.orient import DefaultRoute, HostAddress, HostNetwork
from fswan.daemon.dns import Answer, DnsKeyFetcher
from fswan.daemon.logging import PlutoLog
from fswan.daemon.pluto import Pluto
from tests.fakes import LogSink, MemoryLoader

WEST = "192.0.2.1"
HOST = HostNetwork((HostAddress("wan0", ip_address(WEST)),),
                   DefaultRoute("wan0", ip_address("192.0.2.254")))
CONF = """\
version 2
config setup
\tinterfaces=%defaultroute

conn office
\tleft=192.0.2.1
\tright=vpn.example.com
\tauthby=secret
\tauto=add

conn lost
\tleft=192.0.2.1
\tright=gone.example.com
\tauthby=secret
\tauto=add

conn numeric
\tleft=192.0.2.1
\tright=192.0.2.7
\tauthby=secret
\tauto=add

conn v2
\tleft=192.0.2.1
\tright=192.0.2.8
\tauthby=eaponly
\tauto=add
"""


class Zone:
    """A DNS that knows vpn.example.com (A and AAAA) and nothing else."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def __call__(self, name, rdtype, lifetime) -> Answer:
        self.asked.append(str(name))
        if name != dns.name.from_text("vpn.example.com"):
            raise dns.resolver.NXDOMAIN()
        text = "192.0.2.9" if rdtype == dns.rdatatype.A else "2001:db8::9"
        return Answer((dns.rdata.from_text("IN", dns.rdatatype.to_text(rdtype), text),), 60)


class Whack:
    def __init__(self) -> None:
        self.lines: list[tuple[int, str]] = []

    def line(self, rc: int, text: str) -> None:
        self.lines.append((rc, text))


def daemon(later: list | None = None) -> tuple[Pluto, LogSink, Zone]:
    sink, zone = LogSink(), Zone()

    def run(function, *args):
        if later is None:
            return defer.maybeDeferred(function, *args)
        d: defer.Deferred = defer.Deferred()
        later.append((d, function, args))
        return d

    fetcher = DnsKeyFetcher(task.Clock(), query=zone, run_blocking=run, log=lambda line: None)
    loader = MemoryLoader({"/etc/ipsec.conf": CONF, "/etc/ipsec.secrets": ""})
    pluto = Pluto("/etc/ipsec.conf", "/etc/ipsec.secrets", loader, lambda: HOST,
                  PlutoLog(sink.logger), file_mode=lambda p: 0o600, fetcher=fetcher)
    return pluto, sink, zone


def test_a_conn_written_with_a_host_name_is_added_with_its_address():
    pluto, sink, zone = daemon()
    pluto.start()
    office = pluto.connections["office"].oriented
    assert office is not None and str(office.that.host) == "192.0.2.9"  # IPv4, like left
    assert "vpn.example.com." in zone.asked
    assert "numeric" in pluto.connections  # no lookup needed, added at once


def test_a_name_that_does_not_resolve_keeps_only_that_conn_out():
    pluto, sink, _zone = daemon()
    pluto.start()
    assert "lost" not in pluto.connections and "office" in pluto.connections
    assert any('right=gone.example.com: does not look numeric and name lookup failed' in line
               for line in sink.lines), sink.lines


def test_the_lookup_runs_off_the_reactor_and_whack_waits_for_it():
    later: list = []
    pluto, sink, _zone = daemon(later)
    pluto.start()
    assert "office" not in pluto.connections  # the lookup has not answered yet
    for d, function, args in later:  # start-up's lookups answer
        d.callback(function(*args))
    later.clear()
    pluto.delete("office", Whack())
    whack = Whack()
    added = pluto.add("office", None, whack)
    assert isinstance(added, defer.Deferred) and not added.called  # the reply stays open
    for d, function, args in later:
        d.callback(function(*args))
    assert added.called and "office" in pluto.connections
    assert any("looking up vpn.example.com in DNS" in text for _, text in whack.lines)


def test_adding_a_refused_conn_says_why():
    pluto, _sink, _zone = daemon()
    pluto.start()
    whack = Whack()
    pluto.add("v2", None, whack)
    assert any('conn "v2" not loaded' in text and "EAP is IKEv2 only" in text
               for _, text in whack.lines), whack.lines
