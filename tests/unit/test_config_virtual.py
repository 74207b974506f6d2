"""virtual_private= and rightsubnet=vhost:/vnet: (fswan.config.virtual): parsing, the
one decision they make, and how ipsec.conf, checkconfig and orientation carry them."""

from __future__ import annotations

from ipaddress import ip_address, ip_network

import pytest

from fswan.config.model import Connection, End
from fswan.config.orient import OrientationError, orient
from fswan.config.render import format_checkconfig
from fswan.config.virtual import (
    VirtualError,
    VirtualPrivate,
    parse_virtual_private,
    parse_virtual_subnet,
)
from tests.unit.test_ipsecconf import errors, parse
from tests.unit.test_orient import WEST, west_interfaces

PRIVATE = parse_virtual_private("%v4:198.51.100.0/24,%v4:!198.51.100.0/26,%v6:2001:db8::/32")
PEER = ip_address("192.0.2.99")


def net(text: str):
    return ip_network(text)


def test_virtual_private_parses_allowed_and_excluded_nets():
    assert PRIVATE == VirtualPrivate(
        (net("198.51.100.0/24"), net("2001:db8::/32")), (net("198.51.100.0/26"),))
    assert str(PRIVATE) == "%v4:198.51.100.0/24,%v6:2001:db8::/32,%v4:!198.51.100.0/26"
    assert parse_virtual_private(str(PRIVATE)) == PRIVATE
    assert parse_virtual_private("%v4:10.0.0.0/8 %v4:192.168.0.0/16").allowed == (
        net("10.0.0.0/8"), net("192.168.0.0/16"))


@pytest.mark.parametrize("text, message", [
    ("10.0.0.0/8", "is not %v4:net/len"),
    ("%v4:10.0.0.1/8", "is not %v4:net/len or %v6:net/len"),
    ("%v4:2001:db8::/32", "the net is not IPv4"),
    ("%v6:10.0.0.0/8", "the net is not IPv6"),
    ("%v5:10.0.0.0/8", "is not %v4:net/len"),
])
def test_virtual_private_errors(text, message):
    with pytest.raises(VirtualError, match=message):
        parse_virtual_private(text)


def test_priv_is_inside_an_allowed_net_and_clear_of_every_excluded_one():
    assert PRIVATE.admits(net("198.51.100.200/32"))
    assert PRIVATE.admits(net("198.51.100.128/25"))
    assert not PRIVATE.admits(net("198.51.100.10/32"))  # excluded
    assert not PRIVATE.admits(net("198.51.100.0/24"))  # overlaps the excluded net
    assert not PRIVATE.admits(net("203.0.113.5/32"))
    assert PRIVATE.admits(net("2001:db8::5/128"))
    assert not VirtualPrivate().admits(net("198.51.100.200/32"))


def test_vhost_and_vnet_lists():
    vhost = parse_virtual_subnet("vhost:%priv,%no")
    assert (vhost.network, vhost.private, vhost.no_nat, vhost.everything) == (False, True, True, False)
    assert str(vhost) == "vhost:%priv,%no"
    assert vhost.allows(net("198.51.100.200/32"), PEER, PRIVATE)
    assert vhost.allows(net("192.0.2.99/32"), PEER, PRIVATE)  # %no: the peer itself
    assert not vhost.allows(net("192.0.2.98/32"), PEER, PRIVATE)
    assert not vhost.allows(net("198.51.100.128/25"), PEER, PRIVATE)  # a net, not a host
    vnet = parse_virtual_subnet("vnet:%priv")
    assert vnet.allows(net("198.51.100.128/25"), PEER, PRIVATE)
    assert not vnet.allows(net("192.0.2.99/32"), PEER, PRIVATE)  # no %no
    explicit = parse_virtual_subnet("vhost:%v4:203.0.113.0/28,%v6:2001:db8:1::/48")
    assert explicit.allows(net("203.0.113.5/32"), PEER, VirtualPrivate())
    assert explicit.allows(net("2001:db8:1::7/128"), PEER, VirtualPrivate())
    assert not explicit.allows(net("203.0.113.16/32"), PEER, VirtualPrivate())
    everything = parse_virtual_subnet("vnet:%all")
    assert everything.allows(net("0.0.0.0/0"), PEER, VirtualPrivate())


@pytest.mark.parametrize("text, message", [
    ("vhost:", "needs at least one of"),
    ("vhost:%private", "'%private' in vhost:"),
    ("vnet:%v4:10.0.0.1/8", "vnet: '%v4:10.0.0.1/8' is not"),
    ("host:%priv", "expected vhost: or vnet:"),
])
def test_vhost_errors(text, message):
    with pytest.raises(VirtualError, match=message):
        parse_virtual_subnet(text)


CONF = """\
version 2
config setup
    virtual_private=%v4:198.51.100.0/24,%v4:!198.51.100.0/26

conn rw
    left=192.0.2.1
    leftsubnet=203.0.113.0/25
    right=%any
    rightsubnet=vhost:%priv,%no
"""


def test_ipsec_conf_carries_both_and_checkconfig_prints_them_back():
    config = parse(CONF)
    assert config.setup.virtual_private == parse_virtual_private(
        "%v4:198.51.100.0/24,%v4:!198.51.100.0/26")
    right = config.conns["rw"].right
    assert right.subnet is None and right.virtual == parse_virtual_subnet("vhost:%priv,%no")
    lines = format_checkconfig(config)
    assert "\tvirtual_private=%v4:198.51.100.0/24,%v4:!198.51.100.0/26" in lines
    assert "\trightsubnet=vhost:%priv,%no" in lines
    assert parse("\n".join(lines) + "\n") .conns["rw"].right.virtual == right.virtual
    assert not config.setup.unsupported


def test_bad_values_are_file_line_errors():
    text = CONF.replace("%v4:!198.51.100.0/26", "198.51.100.0/26").replace("%priv,%no", "%prov")
    found = errors(text)
    assert found[0].startswith("ipsec.conf:3: bad value") and "virtual_private=" in found[0]
    assert found[1].startswith("ipsec.conf:9: bad value") and "'%prov' in vhost:" in found[1]
    assert "leftsubnet=/rightsubnet= only" in errors(
        CONF.replace("    rightsubnet=vhost:%priv,%no\n",
                     "    rightsubnet=198.51.100.0/24\n    rightsubnetwithin=vhost:%priv\n"))[0]


def test_our_own_end_cannot_be_virtual():
    conn = Connection(name="rw", left=End(host="192.0.2.1", virtual=parse_virtual_subnet("vhost:%priv")),
                      right=End(host="%any"))
    with pytest.raises(OrientationError, match="leftsubnet=vhost:%priv is our own end"):
        orient(conn, west_interfaces(), WEST.default_route)
