"""Orientation: which end is us, %defaultroute, %direct, %myid and pluto's messages."""

from ipaddress import ip_address, ip_network

import pytest

from fswan.config.model import Connection, End, SetupConfig
from fswan.config.orient import (
    NO_DEFAULT_ROUTE,
    NO_INTERFACE,
    DefaultRoute,
    HostAddress,
    HostNetwork,
    IpsecInterface,
    OrientationError,
    ipsec_interfaces,
    orient,
)

WEST = HostNetwork(
    addresses=(
        HostAddress("lo", ip_address("127.0.0.1")),
        HostAddress("eth0", ip_address("192.0.2.1")),
        HostAddress("eth1", ip_address("198.51.100.1")),
    ),
    default_route=DefaultRoute("eth0", ip_address("192.0.2.254")),
)


def west_interfaces():
    found, problems = ipsec_interfaces(SetupConfig(), WEST)
    assert problems == []
    return found


def net_conn(**left):
    left_end = End(host="192.0.2.1", subnet=ip_network("198.51.100.0/25"), **left)
    right_end = End(host="192.0.2.2", subnet=ip_network("203.0.113.0/25"))
    return Connection(name="net", left=left_end, right=right_end)


def test_defaultroute_interfaces_are_ipsec0_over_the_route_device():
    assert west_interfaces() == [IpsecInterface("ipsec0", "eth0", ip_address("192.0.2.1"))]
    assert str(west_interfaces()[0]) == "ipsec0/eth0 192.0.2.1"


def test_explicit_interfaces_pairs():
    setup = SetupConfig(interfaces="ipsec0=eth0 ipsec1=eth1")
    found, problems = ipsec_interfaces(setup, WEST)
    assert [str(i) for i in found] == ["ipsec0/eth0 192.0.2.1", "ipsec1/eth1 198.51.100.1"]
    assert problems == []


def test_none_interfaces():
    assert ipsec_interfaces(SetupConfig(interfaces="%none"), WEST) == ([], [])


def test_missing_device_is_reported():
    found, problems = ipsec_interfaces(SetupConfig(interfaces="ipsec0=eth9"), WEST)
    assert found == []
    assert problems == ["ipsec0=eth9: no address on eth9; ignoring it"]


def test_shared_address_message_is_plutos():
    host = HostNetwork(
        addresses=(
            HostAddress("eth0", ip_address("192.0.2.1")),
            HostAddress("eth1", ip_address("192.0.2.1")),
        )
    )
    found, problems = ipsec_interfaces(SetupConfig(interfaces="ipsec0=eth0 ipsec1=eth1"), host)
    assert problems == ["IP interfaces eth0 and eth1 share address 192.0.2.1!"]
    assert len(found) == 1


def test_no_default_route_for_defaultroute_interfaces():
    found, problems = ipsec_interfaces(SetupConfig(), HostNetwork(WEST.addresses, None))
    assert found == []
    assert problems == [f"interfaces=%defaultroute: {NO_DEFAULT_ROUTE}"]


def test_left_is_us_and_direct_nexthop_is_the_peer():
    oriented = orient(net_conn(), west_interfaces(), WEST.default_route)
    assert oriented.this_is_left
    assert oriented.this.host == ip_address("192.0.2.1")
    assert oriented.that.host == ip_address("192.0.2.2")
    assert oriented.this.nexthop == ip_address("192.0.2.2")
    assert str(oriented.this.id) == "192.0.2.1"
    assert oriented.this.client == ip_network("198.51.100.0/25")
    assert oriented.this.has_client and oriented.that.has_client
    assert oriented.interface.physical == "eth0"


def test_right_is_us_when_flipped():
    conn = net_conn()
    flipped = Connection(name="net", left=conn.right, right=conn.left)
    oriented = orient(flipped, west_interfaces(), WEST.default_route)
    assert not oriented.this_is_left
    assert oriented.this.host == ip_address("192.0.2.1")


def test_neither_end_is_us():
    conn = Connection(name="x", left=End(host="203.0.113.5"), right=End(host="203.0.113.6"))
    with pytest.raises(OrientationError) as info:
        orient(conn, west_interfaces(), WEST.default_route)
    assert str(info.value) == NO_INTERFACE == "we have no ipsecN interface for either end of this connection"


def test_both_ends_are_us():
    interfaces, _ = ipsec_interfaces(SetupConfig(interfaces="ipsec0=eth0 ipsec1=eth1"), WEST)
    conn = Connection(name="x", left=End(host="192.0.2.1"), right=End(host="198.51.100.1"))
    with pytest.raises(OrientationError, match='both sides of "x" are our interfaces'):
        orient(conn, interfaces, WEST.default_route)


def test_defaultroute_host_takes_address_and_gateway():
    conn = Connection(name="rw", left=End(host="%defaultroute"), right=End(host="203.0.113.9"))
    oriented = orient(conn, west_interfaces(), WEST.default_route)
    assert oriented.this.host == ip_address("192.0.2.1")
    assert oriented.this.nexthop == ip_address("192.0.2.254")


def test_defaultroute_prefers_route_source():
    route = DefaultRoute("eth0", ip_address("192.0.2.254"), ip_address("192.0.2.1"))
    conn = Connection(name="rw", left=End(host="%defaultroute"), right=End(host="203.0.113.9"))
    assert orient(conn, west_interfaces(), route).this.host == ip_address("192.0.2.1")


def test_defaultroute_without_route_is_plutos_message():
    conn = Connection(name="rw", left=End(host="%defaultroute"), right=End(host="203.0.113.9"))
    with pytest.raises(OrientationError, match="no default route, %defaultroute cannot cope!!!"):
        orient(conn, west_interfaces(), None)


def test_explicit_nexthop_and_defaultroute_nexthop():
    oriented = orient(net_conn(nexthop="192.0.2.77"), west_interfaces(), WEST.default_route)
    assert oriented.this.nexthop == ip_address("192.0.2.77")
    oriented = orient(net_conn(nexthop="%defaultroute"), west_interfaces(), WEST.default_route)
    assert oriented.this.nexthop == ip_address("192.0.2.254")


def test_road_warrior_peer_is_any():
    conn = Connection(name="rw", left=End(host="192.0.2.1"), right=End(host="%any", id="@roadwarrior"))
    oriented = orient(conn, west_interfaces(), WEST.default_route)
    assert oriented.that.host is None
    assert str(oriented.that.id) == "@roadwarrior"
    assert oriented.that.client is None


def test_myid_resolution_and_missing_myid():
    conn = net_conn(id="%myid")
    oriented = orient(conn, west_interfaces(), WEST.default_route, myid="@west.example")
    assert str(oriented.this.id) == "@west.example"
    with pytest.raises(OrientationError, match="myid= is not set"):
        orient(conn, west_interfaces(), WEST.default_route, myid=None)


def test_host_only_end_has_no_client():
    conn = Connection(name="h", left=End(host="192.0.2.1"), right=End(host="192.0.2.2"))
    oriented = orient(conn, west_interfaces(), WEST.default_route)
    assert oriented.this.client == ip_network("192.0.2.1/32")
    assert not oriented.this.has_client
