"""whack's listings, --deletestate and --debug-* against two real daemons' tables.

Two ``Pluto``s with real IKE drivers and engines exchange datagrams through a fake
UDP network over ``MemoryReactorClock``s; the control protocol is driven over
``StringTransport`` as whack would.
"""

from __future__ import annotations

import json
from ipaddress import ip_address

import pytest
from twisted.internet.testing import MemoryReactorClock, StringTransport

from fswan.config.orient import DefaultRoute, HostAddress, HostNetwork
from fswan.config.secrets import Secrets
from fswan.daemon.control import ControlFactory
from fswan.daemon.ikeport import IkeDriver
from fswan.daemon.logging import PlutoLog
from fswan.daemon.metrics import IkeStats, render
from fswan.daemon.pluto import Pluto
from fswan.ike.engine import IkeEngine
from fswan.whackproto import RC, Request, parse_line, update_exit_status
from tests.fakes import LogSink, MemoryLoader
from tests.ike_pair import rsa_pubkey

PSK = "listings-test-secret-frobozz"
CONF = """\
version 2
config setup
	interfaces=%defaultroute

conn net
	authby=secret
	left=192.0.2.1
	leftsubnet=198.51.100.0/25
	right=192.0.2.2
	rightsubnet=203.0.113.0/25
	auto=add

conn keyed
	authby=rsasig
	left=192.0.2.1
	right=192.0.2.9
	rightid=@peer.example
	rightrsasigkey={KEY}
	auto=add
"""
CONF = CONF.replace("{KEY}", rsa_pubkey("east"))
KEYID = rsa_pubkey("east")[2:11]
SECRETS = f'192.0.2.1 192.0.2.2 : PSK "{PSK}"\n'


class Network:
    """UDP between the daemons' sockets, delivered when ``flush`` runs."""

    def __init__(self) -> None:
        self.sockets: dict[tuple[str, int], object] = {}
        self.queue: list[tuple[tuple[str, int], bytes, tuple[str, int]]] = []
        self.reactors: list[MemoryReactorClock] = []

    def flush(self) -> None:
        for _ in range(200):
            for reactor in self.reactors:
                reactor.advance(0)
            if not self.queue:
                return
            queue, self.queue = self.queue, []
            for source, data, destination in queue:
                protocol = self.sockets.get(destination)
                if protocol is not None:
                    protocol.datagramReceived(data, source)  # type: ignore[attr-defined]
        raise AssertionError("the daemons never went quiet")


class Port:
    def __init__(self, network: Network, address: tuple[str, int]) -> None:
        self.network, self.address = network, address

    def write(self, data: bytes, addr: tuple[str, int]) -> None:
        self.network.queue.append((self.address, data, addr))

    def stopListening(self) -> None:
        self.network.sockets.pop(self.address, None)


class Reactor(MemoryReactorClock):
    def __init__(self, network: Network) -> None:
        super().__init__()
        self.network = network
        network.reactors.append(self)

    def listenUDP(self, port, protocol, interface="", maxPacketSize=8192):  # type: ignore[override]
        self.network.sockets[(interface, port)] = protocol
        return Port(self.network, (interface, port))


class Daemon:
    def __init__(self, network: Network, address: str) -> None:
        self.sink = LogSink()
        self.stats = IkeStats()
        self.log = PlutoLog(self.sink.logger, observer=self.stats.on_log_line)
        self.reactor = Reactor(network)
        self.reactor.advance(1767225600)  # 2026-01-01: add_time is an epoch time
        engine = IkeEngine(Secrets(entries=(), files=(), warnings=()))
        self.driver = IkeDriver(engine, self.log, self.reactor, stats=self.stats,
                                on_child_sa=lambda event: self.pluto.on_engine_event(event))
        host = HostNetwork((HostAddress("eth0", ip_address(address)),),
                           DefaultRoute("eth0", ip_address("192.0.2.254")))
        loader = MemoryLoader({"/etc/ipsec.conf": CONF, "/etc/ipsec.secrets": SECRETS})
        self.pluto = Pluto("/etc/ipsec.conf", "/etc/ipsec.secrets", loader, lambda: host, self.log,
                           file_mode=lambda path: 0o600, ike=self.driver, stats=self.stats)
        self.factory = ControlFactory(self.pluto, lambda: None)
        self.pluto.start()
        self.driver.startService()

    def request(self, command: str, name: str | None = None, **args) -> tuple[list[str], int]:
        protocol = self.factory.buildProtocol(None)
        transport = StringTransport()
        protocol.makeConnection(transport)
        protocol.dataReceived(Request(command, name, args).encode())
        protocol.connectionLost(None)
        lines = transport.value().decode().splitlines()
        status = 0
        for line in lines:
            rc, _ = parse_line(line)
            assert rc is not None, line
            status = update_exit_status(status, rc)
        return lines, status


@pytest.fixture
def pair():
    network = Network()
    west, east = Daemon(network, "192.0.2.1"), Daemon(network, "192.0.2.2")
    return network, west, east


def up(network: Network, west: Daemon) -> None:
    west.request("initiate", "net", asynchronous=True)
    network.flush()


def test_status_debug_line_is_none_until_debugging_is_switched_on(pair):
    _, west, _ = pair
    lines, _ = west.request("status")
    assert "000 debug none" in lines
    lines, status = west.request("debug", debug="control dns")
    assert status == 0 and lines == ["002 debug control+dns"]
    assert "000 debug control+dns" in west.request("status")[0]
    assert json.loads(parse_line(west.request("status", json=True)[0][0])[1])["debug"] == \
        "control+dns"
    assert any(line.startswith('| whack request: status') for line in west.sink.lines)
    lines, status = west.request("debug", debug="raw bogus")
    assert status == RC.BADWHACKMESSAGE and "bogus" in lines[0]
    west.request("debug", debug="none")
    before = len(west.sink.lines)
    west.request("status")
    assert not any(line.startswith("|") for line in west.sink.lines[before:])


def test_trafficstatus_globalstatus_and_deletestate(pair):
    network, west, east = pair
    assert west.request("trafficstatus") == ([], 0)
    up(network, west)
    lines, status = west.request("trafficstatus")
    assert status == 0
    assert lines == ["006 #2: \"net\", type=ESP, add_time=1767225600, inBytes=0, outBytes=0, "
                     "id='192.0.2.2'"]
    document = json.loads(parse_line(west.request("trafficstatus", json=True)[0][0])[1])
    assert document["traffic"][0]["peer"] == "192.0.2.2:500"
    lines, _ = west.request("globalstatus")
    for wanted in ("000 current.states.all=2", "000 current.states.enumerate.STATE_MAIN_I4=1",
                   "000 total.ike.isakmp.started=1", "000 total.ike.isakmp.completed=1",
                   "000 total.ike.ipsec.completed=1", "000 current.busy=no"):
        assert wanted in lines, wanted
    assert "000 current.states.enumerate.STATE_QUICK_R2=1" in east.request("globalstatus")[0]
    glob = json.loads(parse_line(west.request("globalstatus", json=True)[0][0])[1])
    assert glob["handshakes"]["completed"] == {"isakmp": 1, "ipsec": 1}
    page = render(west.stats, west.pluto.counters())
    assert 'fswan_ike_handshakes_completed_total{phase="ipsec"} 1' in page
    assert 'fswan_ipsec_sas{state="STATE_QUICK_I2"} 1' in page
    assert f'fswan_ike_messages_total{{event="datagrams_sent"}} {glob["ike"]["datagrams_sent"]}' in page

    lines, status = west.request("deletestate", serial=2)
    assert status == 0 and lines == ['002 "net" #2: deleting state (whack --deletestate)']
    network.flush()
    assert west.request("trafficstatus") == ([], 0)
    assert east.request("trafficstatus") == ([], 0)  # the peer got our Delete
    lines, status = west.request("deletestate", serial=99)
    assert status == RC.UNKNOWN_NAME and lines == ["021 no state #99 to delete"]
    lines, status = west.request("deletestate", serial="two")
    assert status == RC.BADWHACKMESSAGE


def test_listpubkeys_lists_the_conns_keys_without_secrets(pair):
    _, west, _ = pair
    lines, status = west.request("listpubkeys", utc=True)
    assert status == 0
    assert lines[:3] == ["000", "000 List of Public Keys:", "000"]
    assert lines[3].endswith(f" RSA Key {KEYID} (no private key), until --- -- --:--:-- ---- ok "
                             "(expires never)")
    assert lines[3].startswith("000 Jan 01 00:00:00 2026 UTC, ")
    assert lines[4] == "000        ID_FQDN '@peer.example'"
    assert lines[5] == f'000        {rsa_pubkey("east")[:12]}... from ipsec.conf "keyed"'
    document = json.loads(parse_line(west.request("listpubkeys", json=True)[0][0])[1])
    assert document["public_keys"][0]["keyid"] == KEYID


def test_debug_all_while_keying_logs_no_secret(pair):
    network, west, east = pair
    for daemon in (west, east):
        daemon.request("debug", debug="all")
    up(network, west)
    text = "\n".join(west.sink.lines + east.sink.lines)
    assert "| received " in text and "| sending " in text  # raw
    assert "payloads: SA Vendor ID" in text and "payloads: KE Nonce" in text  # parsing, emitting
    assert "installing SA pair" in text and "keys not shown" in text  # klips, crypt
    assert "ISAKMP SA established with" in text  # lifecycle
    assert PSK not in text and PSK.encode().hex() not in text


# -- the metrics service in the real graph (tap.makeService) --------------------------

from fswan import tap  # noqa: E402
from fswan.daemon.metrics import MetricsService  # noqa: E402
from tests.daemon.test_wiring import _options, _run, daemon_options  # noqa: E402,F401


def test_metrics_are_off_unless_configured_and_listen_only_where_told(daemon_options, monkeypatch):
    tmp_path, reactor = daemon_options
    service = tap.makeService(_options(tmp_path, "--nodataplane"))
    assert not any(isinstance(child, MetricsService) for child in service)
    service = tap.makeService(_options(tmp_path, "--nodataplane", "--metrics", "127.0.0.1:9577"))
    order = [type(child).__name__ for child in service]
    assert order == ["ControlService", "DnsKeyFetcher", "IkeDriver", "MetricsService",
                     "PlutoService"]
    assert reactor.tcpServers == []  # bound only once started
    stopped = _run(service, monkeypatch)
    assert stopped == list(reversed(order))
    assert [(port, interface) for port, _, _, interface in reactor.tcpServers] == \
        [(9577, "127.0.0.1")]


def test_metrics_from_config_and_bad_addresses(daemon_options, capsys):
    tmp_path, reactor = daemon_options
    conf = tmp_path / "ipsec.conf"
    conf.write_text(conf.read_text() + "\tmetrics=[::1]:9100\n")
    service = tap.makeService(_options(tmp_path, "--nodataplane"))
    metrics = [child for child in service if isinstance(child, MetricsService)]
    assert metrics and metrics[0].address == ("::1", 9100)
    conf.write_text(conf.read_text().replace("[::1]:9100", "localhost:9100"))
    with pytest.raises(SystemExit) as exit_info:
        tap.makeService(_options(tmp_path, "--nodataplane"))
    assert exit_info.value.code == 1
    assert f"{conf}:4: metrics=: metrics address 'localhost:9100'" in capsys.readouterr().err
    with pytest.raises(tap.usage.UsageError, match="--metrics"):
        _options(tmp_path, "--metrics", "9577")
