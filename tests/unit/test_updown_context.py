"""Updown verbs and context: pluto's verb names and the exact PLUTO_* v1.1 environment.

The builders here (``oriented``, ``RecordingLog``) are shared by the other
updown tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import ip_address, ip_network

import pytest

from fswan.config.model import Connection, End, SetupConfig
from fswan.config.orient import (
    DefaultRoute,
    HostAddress,
    HostNetwork,
    ipsec_interfaces,
    orient,
)
from fswan.daemon.logging import PlutoLog, prefixed
from fswan.updown import SAFacts, UpdownFailure, build_context, verb_for
from fswan.updown.context import ADDITION_NAMES, V11_NAMES

WEST = HostNetwork(
    addresses=(
        HostAddress("lo", ip_address("127.0.0.1")),
        HostAddress("eth0", ip_address("192.0.2.1")),
        HostAddress("eth0", ip_address("2001:db8::1")),
    ),
    default_route=DefaultRoute("eth0", ip_address("192.0.2.254")),
)


def oriented(left: dict | None = None, right: dict | None = None, name: str = "net", **conn):
    """Orient a conn on WEST (192.0.2.1 on eth0 under ipsec0); left is us."""
    interfaces = ipsec_interfaces(SetupConfig(interfaces="ipsec0=eth0"), WEST)[0]
    left_end = End(**({"host": "192.0.2.1"} | (left or {})))
    right_end = End(**({"host": "192.0.2.2"} | (right or {})))
    return orient(Connection(name=name, left=left_end, right=right_end, **conn),
                  interfaces, WEST.default_route)


def subnet_conn(**conn):
    return oriented(
        {"subnet": ip_network("198.51.100.0/25")},
        {"subnet": ip_network("203.0.113.0/25")},
        **conn,
    )


class RecordingLog(PlutoLog):
    """PlutoLog that keeps (rc, prefixed line) pairs."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[tuple[int, str]] = []

    def log(self, text, rc=2, conn=None, serial=None, reply=None) -> None:
        self.lines.append((int(rc), prefixed(text, conn, serial)))
        if reply is not None:
            reply.line(rc, prefixed(text, conn, serial))

    def texts(self, rc: int | None = None) -> list[str]:
        return [line for code, line in self.lines if rc is None or code == rc]


# -- verbs -----------------------------------------------------------------------


def test_subnet_conn_verbs_are_client():
    conn = subnet_conn()
    assert [verb_for(f, conn) for f in ("prepare", "route", "unroute", "up", "down")] == [
        "prepare-client", "route-client", "unroute-client", "up-client", "down-client",
    ]


def test_host_conn_verbs_are_host():
    assert verb_for("up", oriented()) == "up-host"


def test_our_subnet_equal_to_our_host_is_still_host():
    conn = oriented({"subnet": ip_network("192.0.2.1/32")}, {"subnet": ip_network("203.0.113.0/25")})
    assert verb_for("route", conn) == "route-host"


def test_suffix_follows_our_end_not_the_peers():
    conn = oriented({"subnet": ip_network("198.51.100.0/25")}, {})
    assert verb_for("route", conn) == "route-client"
    assert verb_for("route", oriented({}, {"subnet": ip_network("203.0.113.0/25")})) == "route-host"


def test_ipv6_gateway_pair_adds_v6():
    client = oriented(
        {"host": "2001:db8::1", "subnet": ip_network("2001:db8:1::/64")},
        {"host": "2001:db8::2", "subnet": ip_network("2001:db8:2::/64")},
    )
    host = oriented({"host": "2001:db8::1"}, {"host": "2001:db8::2"})
    assert verb_for("route", client) == "route-client-v6"
    assert verb_for("down", host) == "down-host-v6"


def test_unknown_verb():
    with pytest.raises(ValueError, match="unknown updown verb 'sideways'"):
        verb_for("sideways", subnet_conn())


# -- the environment -------------------------------------------------------------------


def test_subnet_environment_is_exactly_v11():
    conn = oriented(
        {"subnet": ip_network("198.51.100.0/25"), "id": "@west.example", "protoport": (17, 1701)},
        {"subnet": ip_network("203.0.113.0/25"), "id": "@east.example", "protoport": (17, 0),
         "nexthop": "192.0.2.2"},
    )
    ctx = build_context("route", conn)
    assert ctx.environment() == {
        "PLUTO_VERSION": "1.1",
        "PLUTO_VERB": "route-client",
        "PLUTO_CONNECTION": "net",
        "PLUTO_NEXT_HOP": "192.0.2.2",
        "PLUTO_INTERFACE": "ipsec0",
        "PLUTO_ME": "192.0.2.1",
        "PLUTO_MY_ID": "@west.example",
        "PLUTO_MY_CLIENT": "198.51.100.0/25",
        "PLUTO_MY_CLIENT_NET": "198.51.100.0",
        "PLUTO_MY_CLIENT_MASK": "255.255.255.128",
        "PLUTO_MY_PORT": "1701",
        "PLUTO_MY_PROTOCOL": "17",
        "PLUTO_PEER": "192.0.2.2",
        "PLUTO_PEER_ID": "@east.example",
        "PLUTO_PEER_CLIENT": "203.0.113.0/25",
        "PLUTO_PEER_CLIENT_NET": "203.0.113.0",
        "PLUTO_PEER_CLIENT_MASK": "255.255.255.128",
        "PLUTO_PEER_PORT": "0",
        "PLUTO_PEER_PROTOCOL": "17",
        "PLUTO_PEER_CA": "",
    }
    assert list(ctx.environment()) == list(V11_NAMES)


def test_host_environment_with_defaultroute_nexthop():
    conn = oriented({"nexthop": "%defaultroute"}, {"host": "203.0.113.9"})
    ctx = build_context("up", conn)
    assert ctx.environment() == {
        "PLUTO_VERSION": "1.1",
        "PLUTO_VERB": "up-host",
        "PLUTO_CONNECTION": "net",
        "PLUTO_NEXT_HOP": "192.0.2.254",
        "PLUTO_INTERFACE": "ipsec0",
        "PLUTO_ME": "192.0.2.1",
        "PLUTO_MY_ID": "192.0.2.1",
        "PLUTO_MY_CLIENT": "192.0.2.1/32",
        "PLUTO_MY_CLIENT_NET": "192.0.2.1",
        "PLUTO_MY_CLIENT_MASK": "255.255.255.255",
        "PLUTO_MY_PORT": "0",
        "PLUTO_MY_PROTOCOL": "0",
        "PLUTO_PEER": "203.0.113.9",
        "PLUTO_PEER_ID": "203.0.113.9",
        "PLUTO_PEER_CLIENT": "203.0.113.9/32",
        "PLUTO_PEER_CLIENT_NET": "203.0.113.9",
        "PLUTO_PEER_CLIENT_MASK": "255.255.255.255",
        "PLUTO_PEER_PORT": "0",
        "PLUTO_PEER_PROTOCOL": "0",
        "PLUTO_PEER_CA": "",
    }


def test_ipv6_masks_and_nets():
    conn = oriented(
        {"host": "2001:db8::1", "subnet": ip_network("2001:db8:1::/64")},
        {"host": "2001:db8::2", "subnet": ip_network("2001:db8:2::/48")},
    )
    env = build_context("route", conn).environment()
    assert env["PLUTO_VERB"] == "route-client-v6"
    assert env["PLUTO_NEXT_HOP"] == "2001:db8::2"
    assert env["PLUTO_MY_CLIENT_MASK"] == "ffff:ffff:ffff:ffff::"
    assert env["PLUTO_PEER_CLIENT"] == "2001:db8:2::/48"
    assert env["PLUTO_PEER_CLIENT_NET"] == "2001:db8:2::"
    assert env["PLUTO_PEER_CLIENT_MASK"] == "ffff:ffff:ffff::"


@dataclass(frozen=True)
class FakeChildSA:
    """The fields of the IKE engine's ChildSAInstalled that updown reads."""

    conn: str
    serial: int
    inbound_spi: int
    outbound_spi: int
    udp_encapsulated: bool
    local_addr: object
    local_port: int
    remote_addr: object
    remote_port: int
    local_client: object
    remote_client: object


def test_additions_appear_only_when_known():
    conn = oriented(
        {"subnet": ip_network("198.51.100.0/25"), "sourceip": ip_address("198.51.100.1")},
        {"subnet": ip_network("203.0.113.0/25")},
        user_keys={"x-site": "lab"},
    )
    event = FakeChildSA("net", 2, 0x1000, 0x2000, True, ip_address("192.0.2.1"), 4500,
                        ip_address("198.51.100.200"), 31337, ip_network("198.51.100.0/25"),
                        ip_network("203.0.113.0/25"))
    up = build_context("up", conn, SAFacts.from_event(event, reqid=16384))
    env = up.environment()
    assert {k: env[k] for k in ADDITION_NAMES if k in env} == {
        "PLUTO_MY_SOURCEIP": "198.51.100.1",
        "PLUTO_REQID": "16384",
        "PLUTO_UDP_ENC": "31337",
    }
    assert env["PLUTO_PEER"] == "198.51.100.200"  # the peer as seen behind its NAT
    assert (up.serial, up.spi_in, up.spi_out, up.udp_encapsulated, up.natt_peer_port) == (
        2, 0x1000, 0x2000, True, 31337)
    assert up.physical == "eth0" and dict(up.user_keys) == {"x-site": "lab"}
    down = build_context("down", conn, SAFacts(serial=2, in_bytes=1200, out_bytes=3400,
                                               in_packets=10, out_packets=20))
    env = down.environment()
    assert (env["PLUTO_INBYTES"], env["PLUTO_OUTBYTES"]) == ("1200", "3400")
    assert "PLUTO_UDP_ENC" not in env and "PLUTO_REQID" not in env
    assert (down.in_packets, down.out_packets) == (10, 20)
    # counters are a down-* thing only
    later_up = build_context("up", conn, SAFacts(in_bytes=5))
    assert "PLUTO_INBYTES" not in later_up.environment()


def test_wildcard_peer_needs_facts():
    conn = oriented({"subnet": ip_network("198.51.100.0/25")}, {"host": "%any"}, name="rw")
    with pytest.raises(UpdownFailure) as caught:
        build_context("route", conn)
    assert caught.value.describe("route-client") == (
        'route-client failed: updown context: the peer of "rw" is %any and not connected: no address yet'
    )
    facts = SAFacts(peer_addr=ip_address("203.0.113.50"), peer_id="@roadwarrior")
    env = build_context("up", conn, facts).environment()
    assert (env["PLUTO_PEER"], env["PLUTO_PEER_CLIENT"], env["PLUTO_NEXT_HOP"], env["PLUTO_PEER_ID"]) == (
        "203.0.113.50", "203.0.113.50/32", "203.0.113.50", "@roadwarrior")


def test_route_table_from_user_key():
    assert build_context("route", subnet_conn()).route_table == 254
    assert build_context("route", subnet_conn(user_keys={"x-fswan-table": "100"})).route_table == 100
    with pytest.raises(UpdownFailure, match="x-fswan-table=nowhere: not a routing table"):
        build_context("route", subnet_conn(user_keys={"x-fswan-table": "nowhere"}))


def test_xauth_user_and_mode_config_client():
    """Libreswan's names: PLUTO_XAUTH_USERNAME, the lease as PLUTO_MY_SOURCEIP (the routing
    plugin's source address), PLUTO_PEER_DNS_INFO/DOMAIN_INFO/BANNER, PLUTO_CFG_*."""
    conn = oriented({"modecfgclient": True, "xauthclient": True},
                    {"subnet": ip_network("203.0.113.0/25")}, name="rw")
    facts = SAFacts(serial=3, xauth_user="alice", virtual_ip=ip_address("198.51.100.200"),
                    my_client=ip_network("198.51.100.200/32"),
                    peer_dns=(ip_address("198.51.100.53"), ip_address("198.51.100.54")),
                    peer_domains=("example.net", "corp.example.net"), peer_banner="Hello")
    ctx = build_context("up", conn, facts)
    assert ctx.my_sourceip == ip_address("198.51.100.200")
    env = ctx.environment()
    assert {k: env[k] for k in ADDITION_NAMES if k in env} == {
        "PLUTO_MY_SOURCEIP": "198.51.100.200",
        "PLUTO_XAUTH_USERNAME": "alice",
        "PLUTO_PEER_DNS_INFO": "198.51.100.53 198.51.100.54",
        "PLUTO_PEER_DOMAIN_INFO": "example.net corp.example.net",
        "PLUTO_PEER_BANNER": "Hello",
        "PLUTO_CFG_SERVER": "0",
        "PLUTO_CFG_CLIENT": "1",
    }
    assert env["PLUTO_MY_CLIENT"] == "198.51.100.200/32"


def test_mode_config_server_and_xauth_user_from_the_event():
    conn = oriented({"subnet": ip_network("0.0.0.0/0"), "modecfgserver": True},
                    {"host": "%any"}, name="rw")
    event = FakeChildSA("rw", 4, 0x1000, 0x2000, False, ip_address("192.0.2.1"), 500,
                        ip_address("203.0.113.9"), 500, ip_network("0.0.0.0/0"),
                        ip_network("198.51.100.201/32"))
    assert SAFacts.from_event(event).xauth_user is None  # an event without the field
    facts = SAFacts.from_event(event, xauth_user="bob")
    env = build_context("up", conn, facts).environment()
    assert env["PLUTO_XAUTH_USERNAME"] == "bob"
    assert env["PLUTO_PEER_CLIENT"] == "198.51.100.201/32"
    assert (env["PLUTO_CFG_SERVER"], env["PLUTO_CFG_CLIENT"], env["PLUTO_PEER_DNS_INFO"]) == ("1", "0", "")
    assert "PLUTO_MY_SOURCEIP" not in env


def test_no_mode_config_no_new_variables():
    env = build_context("up", subnet_conn()).environment()
    assert not any(k.startswith(("PLUTO_CFG_", "PLUTO_PEER_DNS", "PLUTO_XAUTH")) for k in env)
