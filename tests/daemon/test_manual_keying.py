"""``ipsec manual``: SAs straight from ipsec.conf (no IKE), through the control protocol."""

from __future__ import annotations

from ipaddress import ip_address

import pytest

from fswan.ipsec.replay import DUPLICATE
from twisted.internet.testing import MemoryReactorClock, StringTransport

from fswan.config.orient import DefaultRoute, HostAddress, HostNetwork
from fswan.daemon.control import ControlFactory
from fswan.daemon.logging import PlutoLog
from fswan.daemon.manual import ManualError, manual_sa_pair
from fswan.daemon.pluto import Pluto
from fswan.daemon.tunnels import KernelSide
from fswan.ipsec.dataplane import OK, DataPlane
from fswan.ipsec.kernel import Klips
from fswan.updown.runner import UpdownRunner
from fswan.whackproto import RC, Request, parse_line, update_exit_status
from tests.daemon.test_dataplane_glue import Recorder, packet
from tests.fakes import LogSink, MemoryLoader

KEYS = """\
	esp=aes128-sha1
	espenckey=0x0123456789abcdef0123456789abcdef
	espauthkey=0x0123456789abcdef0123456789abcdef01234567
"""
CONF = f"""\
version 2
config setup
	interfaces="ipsec0=wan0"

conn man
	left=192.0.2.1
	leftsubnet=198.51.100.0/25
	right=192.0.2.2
	rightsubnet=203.0.113.0/25
	spi=0x200
{KEYS}	auto=manual

conn clash
	left=192.0.2.1
	leftsubnet=198.51.100.128/25
	right=192.0.2.2
	rightsubnet=203.0.113.128/25
	spi=0x200
{KEYS}
conn gcm
	left=192.0.2.1
	right=192.0.2.2
	spi=0x300
	esp=aes_gcm128
	espenckey=0x0123456789abcdef0123456789abcdef01234567

conn nokey
	left=192.0.2.1
	right=192.0.2.2
	spi=0x400
	esp=aes128-sha1
	espenckey=0x0123456789abcdef0123456789abcdef

conn split
	left=192.0.2.1
	right=192.0.2.2
	leftespspi=0x500
	rightespspi=0x501
	esp=3des-md5
	leftespenckey=0x0123456789abcdef0123456789abcdef0123456789abcdef
	rightespenckey=0xfedcba9876543210fedcba9876543210fedcba9876543210
	espauthkey=0x00112233445566778899aabbccddeeff
"""
HOST = HostNetwork((HostAddress("wan0", ip_address("192.0.2.1")),), DefaultRoute("wan0", None))


class Harness:
    def __init__(self, monkeypatch):
        self.sink = LogSink()
        log = PlutoLog(self.sink.logger)
        loader = MemoryLoader({"/etc/ipsec.conf": CONF, "/etc/ipsec.secrets": ""})
        self.recorder = Recorder()
        monkeypatch.setattr("fswan.daemon.tunnels.plugins_for", lambda o: [self.recorder])
        clock = MemoryReactorClock()
        self.kernel = Klips(DataPlane())
        self.pluto = Pluto("/etc/ipsec.conf", "/etc/ipsec.secrets", loader, lambda: HOST, log,
                           file_mode=lambda p: 0o600,
                           dataplane=KernelSide(self.kernel, UpdownRunner(log, clock), clock))
        self.pluto.start()
        self.factory = ControlFactory(self.pluto, lambda: None)

    def request(self, command, name=None, **args):
        protocol = self.factory.buildProtocol(None)
        transport = StringTransport()
        protocol.makeConnection(transport)
        protocol.dataReceived(Request(command, name, args).encode())
        protocol.connectionLost(None)
        lines = transport.value().decode().splitlines()
        status = 0
        for line in lines:
            rc, _ = parse_line(line)
            status = update_exit_status(status, rc)
        return lines, status


@pytest.fixture
def harness(monkeypatch):
    return Harness(monkeypatch)


def test_auto_manual_conn_keyed_at_start_carries_packets(harness):
    harness.pluto.start_auto()
    k = harness.kernel
    assert k.routing("man") == "erouted"
    assert harness.recorder.verbs == ["prepare-client", "route-client", "up-client"]
    assert [str(sa.said) for sa in k.dataplane.sad] == ["tun0x200@192.0.2.1", "tun0x200@192.0.2.2"]
    assert k.dataplane.outbound(packet(), 1.0) == OK
    lines, status = harness.request("status")
    text = "\n".join(lines)
    assert ('"man": 198.51.100.0/25===192.0.2.1...192.0.2.2===203.0.113.0/25; '
            "erouted; eroute owner: #0") in text
    assert '#0: "man" used 0s ago; tun.200@192.0.2.2 tun.200@192.0.2.1; manually keyed' in text


def test_manual_up_down_through_whack(harness):
    lines, status = harness.request("manual", "split", up=True)
    assert status == 0, lines
    assert any("manually keyed: tun.501@192.0.2.1 tun.500@192.0.2.2 (3DES_CBC-HMAC_MD5_96)" in line
               for line in lines), lines
    lines, status = harness.request("eroute")
    assert any("192.0.2.1/32" in line and "tun0x500@192.0.2.2" in line for line in lines), lines
    lines, status = harness.request("manual", "split", up=False)
    assert status == 0 and harness.kernel.routing("split") == "unrouted"
    assert len(harness.kernel.dataplane.sad) == 0


def test_spi_clash_reported_as_sa_already_in_use(harness):
    assert harness.request("manual", "man", up=True)[1] == 0
    lines, status = harness.request("manual", "clash", up=True)
    assert status == RC.CLASH
    assert any("tun0x200@192.0.2.1 -- SA already in use" in line for line in lines), lines
    assert harness.kernel.routing("clash") == "unrouted"


def test_gcm_refused_with_a_clear_error(harness):
    lines, status = harness.request("manual", "gcm", up=True)
    assert status == RC.BADWHACKMESSAGE
    assert any("AES-GCM cannot be used with manual keys" in line for line in lines), lines
    assert len(harness.kernel.dataplane.sad) == 0


def test_gcm_refused_at_config_time_for_auto_manual(monkeypatch):
    conf = CONF.replace("conn gcm\n", "conn gcm\n\tauto=manual\n")
    sink = LogSink()
    loader = MemoryLoader({"/etc/ipsec.conf": conf, "/etc/ipsec.secrets": ""})
    pluto = Pluto("/etc/ipsec.conf", "/etc/ipsec.secrets", loader, lambda: HOST,
                  PlutoLog(sink.logger), file_mode=lambda p: 0o600)
    pluto.start()
    assert any('"gcm"' in line and "AES-GCM cannot be used with manual keys" in line
               for line in sink.lines), sink.lines


def test_missing_key_named(harness):
    lines, status = harness.request("manual", "nokey", up=True)
    assert status == RC.BADWHACKMESSAGE
    assert any("manual keying needs espauthkey=" in line for line in lines), lines


def test_manual_pair_directions_and_anti_replay_by_default(harness):
    assert harness.request("manual", "split", up=True)[1] == 0  # loads it from the file
    oriented = harness.pluto.connections["split"].oriented
    inbound, outbound = manual_sa_pair(oriented, now=0.0)
    assert (inbound.spi, outbound.spi) == (0x501, 0x500)
    assert str(outbound.said) == "tun0x500@192.0.2.2" and str(inbound.said) == "tun0x501@192.0.2.1"
    # espreplay_window=0 (FreeS/WAN's default) still gets a 64-packet window: a
    # replayed sequence number is refused like on every other SA
    assert inbound.replay.check(1) == 1 and inbound.replay.update(1)
    assert inbound.replay.check(1) == DUPLICATE
    assert inbound.replay.size == 64
    bad = oriented.conn.__class__(**{**oriented.conn.__dict__, "esp": "aes_gcm256"})
    with pytest.raises(ManualError, match="AES-GCM"):
        manual_sa_pair(oriented.__class__(**{**oriented.__dict__, "conn": bad}), now=0.0)
