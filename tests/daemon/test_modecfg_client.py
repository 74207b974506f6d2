"""Mode Config client in the daemon: the virtual IP on ipsec0 through a fake address
seam, the route's source address and the updown facts (XAUTH user, DNS, domains)."""

from __future__ import annotations

import os
from ipaddress import ip_address, ip_network

import pytest
from twisted.internet.testing import MemoryReactorClock

from fswan.config.orient import DefaultRoute, HostAddress, HostNetwork
from fswan.daemon.logging import PlutoLog
from fswan.daemon.pluto import Pluto
from fswan.daemon.tunnels import KernelSide
from fswan.ike import events as ev
from fswan.ipsec.dataplane import DataPlane
from fswan.ipsec.kernel import Klips
from fswan.suites import EspKeys, EspProposal
from fswan.updown.routing import routes_for
from fswan.updown.runner import UpdownRunner
from tests.daemon.test_dataplane_glue import FakeIke
from tests.fakes import LogSink, MemoryLoader

CLIENT, GATEWAY = "192.0.2.1", "192.0.2.2"
VIP = ip_address("198.51.100.200")
NET = ip_network("203.0.113.0/24")
CONF = """\
version 2
config setup
	interfaces="ipsec0=wan0"

conn rw
	left=192.0.2.1
	leftsourceip=%config
	leftxauthusername=alice
	right=192.0.2.2
	rightsubnet=203.0.113.0/24
	authby=xauthpsk
	auto=add
"""
HOST = HostNetwork((HostAddress("wan0", ip_address(CLIENT)),), DefaultRoute("wan0", None))


class FakeAddresses:
    def __init__(self, fail: bool = False):
        self.calls: list[tuple[str, str, str]] = []
        self.fail = fail

    def add(self, interface, address):
        if self.fail:
            raise OSError(1, "Operation not permitted")
        self.calls.append(("add", interface, str(address)))

    def remove(self, interface, address):
        self.calls.append(("remove", interface, str(address)))


class Contexts:
    """An updown plugin keeping every context it is given."""

    name = "contexts"

    def __init__(self):
        self.seen = []

    def _keep(self, ctx):
        self.seen.append(ctx)

    prepare = route = unroute = up = down = _keep


def child(serial: int = 4) -> ev.ChildSAInstalled:
    def keys():
        return EspKeys(encryption_key=os.urandom(16), integrity_key=b"", salt=os.urandom(4))

    return ev.ChildSAInstalled(
        conn="rw", serial=serial, inbound_spi=0x100, outbound_spi=0x200,
        proposal=EspProposal("aes_gcm_16", 128, None), inbound_keys=keys(), outbound_keys=keys(),
        mode="tunnel", udp_encapsulated=False, local_addr=ip_address(CLIENT), local_port=500,
        remote_addr=ip_address(GATEWAY), remote_port=500, local_client=ip_network(f"{VIP}/32"),
        remote_client=NET, lifetime_seconds=3600.0, replaces_serial=None, xauth_user="alice",
    )


def assigned(**more) -> ev.VirtualIpAssigned:
    return ev.VirtualIpAssigned("rw", 3, VIP, True, **more)


@pytest.fixture
def world(monkeypatch):
    def make(addresses=None):
        sink = LogSink()
        log = PlutoLog(sink.logger)
        loader = MemoryLoader({"/etc/ipsec.conf": CONF, "/etc/ipsec.secrets": ""})
        clock = MemoryReactorClock()
        plugin = Contexts()
        monkeypatch.setattr("fswan.daemon.tunnels.plugins_for", lambda oriented: [plugin])
        pluto = Pluto("/etc/ipsec.conf", "/etc/ipsec.secrets", loader, lambda: HOST, log,
                      file_mode=lambda p: 0o600, ike=FakeIke([], [], []),
                      dataplane=KernelSide(Klips(DataPlane()), UpdownRunner(log, clock), clock,
                                           addresses=addresses))
        pluto.start()
        return pluto.tunnels, plugin, sink
    return make


def test_virtual_ip_goes_on_ipsec0_and_comes_off(world):
    addresses = FakeAddresses()
    tunnels, _, sink = world(addresses)
    tunnels.on_engine_event(assigned(dns=(ip_address("198.51.100.53"),), domains=("example.net",),
                                     banner="Welcome\nto the VPN"))
    assert addresses.calls == [("add", "ipsec0", "198.51.100.200")]
    text = "\n".join(sink.lines)
    assert '"rw" #3: modecfg: virtual IP 198.51.100.200/32 added to ipsec0' in text
    assert '"rw" #3: modecfg: DNS 198.51.100.53, domain example.net' in text
    assert '"rw" #3: modecfg: banner: Welcome to the VPN' in text
    # another SA's release is not ours to act on
    tunnels.on_engine_event(ev.VirtualIpReleased("rw", 3, ip_address("198.51.100.201"), True))
    assert len(addresses.calls) == 1
    tunnels.on_engine_event(ev.VirtualIpReleased("rw", 3, VIP, True))
    assert addresses.calls[1:] == [("remove", "ipsec0", "198.51.100.200")]
    assert tunnels.leases == {}


def test_a_new_address_replaces_the_old_one(world):
    addresses = FakeAddresses()
    tunnels, _, _ = world(addresses)
    tunnels.on_engine_event(assigned())
    tunnels.on_engine_event(ev.VirtualIpAssigned("rw", 7, ip_address("198.51.100.201"), True))
    assert addresses.calls == [("add", "ipsec0", "198.51.100.200"),
                               ("remove", "ipsec0", "198.51.100.200"),
                               ("add", "ipsec0", "198.51.100.201")]


def test_server_side_leases_touch_no_address(world):
    addresses = FakeAddresses()
    tunnels, _, _ = world(addresses)
    tunnels.on_engine_event(ev.VirtualIpAssigned("rw", 3, VIP, False, user="bob"))
    tunnels.on_engine_event(ev.VirtualIpReleased("rw", 3, VIP, False))
    assert addresses.calls == [] and tunnels.leases == {}


def test_a_netlink_failure_is_logged_not_raised(world):
    tunnels, _, sink = world(FakeAddresses(fail=True))
    tunnels.on_engine_event(assigned())
    assert any("cannot add it to ipsec0: [Errno 1] Operation not permitted" in line
               for line in sink.lines)
    assert VIP == tunnels.leases["rw"].address  # still the source for the routes


def test_route_source_and_updown_facts(world):
    tunnels, plugin, _ = world(FakeAddresses())
    tunnels.on_engine_event(assigned(dns=(ip_address("198.51.100.53"), ip_address("198.51.100.54")),
                                     domains=("example.net",)))
    tunnels.on_engine_event(child())
    assert [ctx.family for ctx in plugin.seen] == ["prepare", "route", "up"]
    route = plugin.seen[1]
    assert route.my_sourceip == VIP and route.my_client == ip_network(f"{VIP}/32")
    (spec,) = routes_for(route, point_to_point=True)
    assert spec.source == VIP and str(spec.dst) == "203.0.113.0/24"
    env = plugin.seen[-1].environment()
    assert env["PLUTO_XAUTH_USERNAME"] == "alice" and env["PLUTO_MY_SOURCEIP"] == "198.51.100.200"
    assert env["PLUTO_PEER_DNS_INFO"] == "198.51.100.53 198.51.100.54"
    assert env["PLUTO_PEER_DOMAIN_INFO"] == "example.net" and env["PLUTO_CFG_CLIENT"] == "1"
    tunnels.on_engine_event(ev.ChildSADeleted("rw", 4, 0x100, 0x200, "terminated"))
    down = [ctx for ctx in plugin.seen if ctx.family == "down"][0]
    assert down.xauth_user == "alice" and down.my_sourceip == VIP


def test_without_an_address_seam_the_lease_is_logged(world):
    tunnels, _, sink = world(None)
    tunnels.on_engine_event(assigned())
    assert any(line.endswith('"rw" #3: modecfg: virtual IP 198.51.100.200/32') for line in sink.lines)
