"""The routing plugin against a recording netlink double (the kernel itself: tests/lab)."""

from __future__ import annotations

import errno
from ipaddress import ip_address, ip_network

import pytest
from pyroute2.netlink.exceptions import NetlinkError

from fswan.updown import UpdownFailure, build_context
from fswan.updown.routing import IFF_NOARP, IFF_POINTOPOINT, RTNH_F_ONLINK, RoutingPlugin, split_default
from tests.unit.test_updown_context import oriented, subnet_conn

TUN_FLAGS = IFF_POINTOPOINT | IFF_NOARP | 0x1001
ETHER_FLAGS = 0x1003


class FakeIPRoute:
    """Records route() calls; fails the ones ``errors`` names by (op, dst, dst_len)."""

    def __init__(self, devices: dict[str, tuple[int, int]], errors=None) -> None:
        self.devices = devices
        self.errors = errors or {}
        self.calls: list[tuple[str, dict]] = []

    def __call__(self):
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def link_lookup(self, ifname):
        return [self.devices[ifname][0]] if ifname in self.devices else []

    def get_links(self, index):
        return [{"index": index, "flags": flags} for i, flags in self.devices.values() if i == index]

    def route(self, op, **spec):
        self.calls.append((op, spec))
        code = self.errors.get((op, spec["dst"], spec["dst_len"]))
        if code:
            raise NetlinkError(code)


def tun(errors=None):
    return FakeIPRoute({"ipsec0": (7, TUN_FLAGS)}, errors)


def test_tun_route_is_onlink_via_the_next_hop():
    netlink = tun()
    RoutingPlugin(netlink).route(build_context("route", subnet_conn()))
    assert netlink.calls == [("replace", {
        "family": 2, "dst": "203.0.113.0", "dst_len": 25, "oif": 7, "table": 254,
        "proto": 4, "gateway": "192.0.2.2", "flags": RTNH_F_ONLINK,
    })]


def test_device_with_neighbours_gets_freeswans_plain_route_and_source():
    netlink = FakeIPRoute({"ipsec0": (3, ETHER_FLAGS)})
    conn = oriented(
        {"subnet": ip_network("198.51.100.0/25"), "sourceip": ip_address("198.51.100.1")},
        {"subnet": ip_network("203.0.113.0/25")},
        user_keys={"x-fswan-table": "100"},
    )
    RoutingPlugin(netlink).route(build_context("route", conn))
    assert netlink.calls == [("replace", {
        "family": 2, "dst": "203.0.113.0", "dst_len": 25, "oif": 3, "table": 100,
        "proto": 4, "gateway": "192.0.2.2", "prefsrc": "198.51.100.1",
    })]


def test_default_route_is_split_in_halves():
    assert [str(n) for n in split_default(ip_network("0.0.0.0/0"))] == ["0.0.0.0/1", "128.0.0.0/1"]
    assert [str(n) for n in split_default(ip_network("::/0"))] == ["::/1", "8000::/1"]
    netlink = tun()
    conn = oriented({"subnet": ip_network("198.51.100.0/25")}, {"subnet": ip_network("0.0.0.0/0")})
    RoutingPlugin(netlink).route(build_context("route", conn))
    assert [(op, s["dst"], s["dst_len"]) for op, s in netlink.calls] == [
        ("replace", "0.0.0.0", 1), ("replace", "128.0.0.0", 1)]
    netlink.calls.clear()
    RoutingPlugin(netlink).unroute(build_context("unroute", conn))
    assert [(op, s["dst"], s["dst_len"]) for op, s in netlink.calls] == [
        ("del", "0.0.0.0", 1), ("del", "128.0.0.0", 1)]


V6 = dict(
    left={"host": "2001:db8::1", "subnet": ip_network("2001:db8:1::/64")},
    right={"host": "2001:db8::2", "subnet": ip_network("2001:db8:2::/64")},
)


def test_ipv6_route_on_a_tun_is_a_device_route():
    netlink = tun()
    RoutingPlugin(netlink).route(build_context("route", oriented(**V6)))
    assert netlink.calls == [("replace", {
        "family": 10, "dst": "2001:db8:2::", "dst_len": 64, "oif": 7, "table": 254, "proto": 4,
    })]


def test_ipv6_route_on_a_device_with_neighbours_has_the_gateway():
    netlink = FakeIPRoute({"ipsec0": (3, ETHER_FLAGS)})
    RoutingPlugin(netlink).route(build_context("route", oriented(**V6)))
    assert netlink.calls == [("replace", {
        "family": 10, "dst": "2001:db8:2::", "dst_len": 64, "oif": 3, "table": 254, "proto": 4,
        "gateway": "2001:db8::2",
    })]


def test_failure_names_what_was_attempted():
    netlink = FakeIPRoute({"ipsec0": (3, ETHER_FLAGS)},
                          {("replace", "203.0.113.0", 25): errno.ENETUNREACH})
    with pytest.raises(UpdownFailure) as caught:
        RoutingPlugin(netlink).route(build_context("route", subnet_conn()))
    assert caught.value.describe("route-client") == (
        "route-client failed: ip route replace 203.0.113.0/25 via 192.0.2.2 dev ipsec0: "
        "Network is unreachable"
    )


def test_missing_device():
    with pytest.raises(UpdownFailure) as caught:
        RoutingPlugin(FakeIPRoute({})).route(build_context("route", subnet_conn()))
    assert str(caught.value) == "ip route replace 203.0.113.0/25 via 192.0.2.2 dev ipsec0: No such device"


def test_half_a_split_default_is_never_left_behind():
    netlink = tun({("replace", "128.0.0.0", 1): errno.EINVAL})
    conn = oriented({"subnet": ip_network("198.51.100.0/25")}, {"subnet": ip_network("0.0.0.0/0")})
    with pytest.raises(UpdownFailure, match=r"128\.0\.0\.0/1 via 192\.0\.2\.2 dev ipsec0 onlink: Invalid argument"):
        RoutingPlugin(netlink).route(build_context("route", conn))
    assert [(op, s["dst"]) for op, s in netlink.calls] == [
        ("replace", "0.0.0.0"), ("replace", "128.0.0.0"), ("del", "0.0.0.0")]


def test_unroute_and_prepare_accept_an_absent_route_or_device():
    netlink = tun({("del", "203.0.113.0", 25): errno.ESRCH})
    RoutingPlugin(netlink).unroute(build_context("unroute", subnet_conn()))
    RoutingPlugin(netlink).prepare(build_context("prepare", subnet_conn()))
    assert [op for op, _ in netlink.calls] == ["del", "del"]
    RoutingPlugin(FakeIPRoute({})).unroute(build_context("unroute", subnet_conn()))


def test_unroute_failure_is_reported():
    netlink = tun({("del", "203.0.113.0", 25): errno.EPERM})
    with pytest.raises(UpdownFailure) as caught:
        RoutingPlugin(netlink).unroute(build_context("unroute", subnet_conn()))
    assert str(caught.value) == "ip route del 203.0.113.0/25 dev ipsec0: Operation not permitted"


def test_up_and_down_do_nothing():
    netlink = tun()
    plugin = RoutingPlugin(netlink)
    assert plugin.up(build_context("up", subnet_conn())) is None
    assert plugin.down(build_context("down", subnet_conn())) is None
    assert netlink.calls == []
