"""Opportunistic encryption between two fswan gateways that know nothing of each other:
their DNS servers (each on its gateway namespace's loopback) publish, at the reverse
names of the clients and gateways, ``X-IPsec-Server(10)=GATEWAY KEY`` records made
the way ``ipsec showhostkey --txt`` makes them.  The first ping between the clients
(listed in private-or-clear) brings the tunnel up; a destination without records is
passed in clear under private-or-clear and dropped under private.

Own namespaces ``fswan-oe-*`` (never the shared ``lab-*``), documentation addresses:
west client 198.51.100.10 --(198.51.100.0/25)-- west gw 192.0.2.1 == east gw 192.0.2.2
(also 192.0.2.3 and 192.0.2.4, without records) --(203.0.113.0/25)-- east client 203.0.113.10.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from fswan.cli import keytools
from fswan.config.ids import parse_id
from fswan.config.keys import load_private_key
from fswan.dnskeys.records import reverse_name
from tests.dnsserver import DnsNamespace, ZoneServer, make_zone
from tests.lab.lab import (
    GATEWAY_CHAIN,
    LAB_DIR,
    FswanDaemon,
    build_namespaces,
    delete_namespaces,
    sh,
    wait_for,
)

PRIVATE = LAB_DIR / "conf" / "pubkey-main"
NS = {"wc": "fswan-oe-wc", "wg": "fswan-oe-wg", "eg": "fswan-oe-eg", "ec": "fswan-oe-ec"}
WEST_GW, EAST_GW = "192.0.2.1", "192.0.2.2"
WEST_CLIENT, EAST_CLIENT = "198.51.100.10", "203.0.113.10"
CLEAR_DST, PRIVATE_DST = "192.0.2.3", "192.0.2.4"


def ns(name: str, *argv: str) -> None:
    sh("ip", "netns", "exec", NS[name], *argv)


def teardown() -> None:
    delete_namespaces(NS.values())


def build() -> None:
    build_namespaces(NS, GATEWAY_CHAIN)
    sh("ip", "-n", NS["wc"], "addr", "add", f"{WEST_CLIENT}/25", "dev", "eth0")
    sh("ip", "-n", NS["wc"], "route", "add", "default", "via", "198.51.100.1")
    sh("ip", "-n", NS["ec"], "addr", "add", f"{EAST_CLIENT}/25", "dev", "eth0")
    sh("ip", "-n", NS["ec"], "route", "add", "default", "via", "203.0.113.1")
    sh("ip", "-n", NS["wg"], "addr", "add", "198.51.100.1/25", "dev", "lan0")
    sh("ip", "-n", NS["wg"], "addr", "add", f"{WEST_GW}/24", "dev", "wan0")
    sh("ip", "-n", NS["eg"], "addr", "add", "203.0.113.1/25", "dev", "lan0")
    for address in (EAST_GW, CLEAR_DST, PRIVATE_DST):
        sh("ip", "-n", NS["eg"], "addr", "add", f"{address}/24", "dev", "wan0")
    for gw, peer_net, nexthop in (("wg", "203.0.113.0/25", EAST_GW), ("eg", "198.51.100.0/25", WEST_GW)):
        ns(gw, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        ns(gw, "sysctl", "-qw", "net.ipv4.conf.all.rp_filter=0")
        ns(gw, "sysctl", "-qw", "net.ipv4.conf.default.rp_filter=0")
        sh("ip", "-n", NS[gw], "route", "add", peer_net, "via", nexthop)


def key_file(side: str) -> Path:
    return PRIVATE / side / "private" / f"{side}.key"


def txt(side: str, gateway: str, owner: str) -> str:
    """What ``ipsec showhostkey --txt --id GATEWAY`` prints for ``side``'s key, at ``owner``."""
    host_key = keytools.HostKey(load_private_key(key_file(side).read_text()).public_key(),
                                "RSA 2048 bits   lab   now")
    return keytools.format_txt_record(host_key, parse_id(gateway), owner)


def zone() -> str:
    return "".join(
        txt(side, gateway, reverse_name(address).to_text())
        for side, gateway, address in (
            ("west", WEST_GW, WEST_GW), ("west", WEST_GW, WEST_CLIENT),
            ("east", EAST_GW, EAST_GW), ("east", EAST_GW, EAST_CLIENT),
        )
    )


def conf(gw: str, client_net: str) -> str:
    return f"""\
version 2
config setup
	interfaces="ipsec0=wan0"

conn private-or-clear
	left={gw}
	leftsubnet={client_net}

conn private
	left={gw}
	leftsubnet={client_net}
"""


@pytest.fixture
def oe_lab(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("lab tests need root (network namespaces, veth)")
    if not key_file("west").exists():
        pytest.skip(f"no lab keys at {PRIVATE} (set FSWAN_LAB_DIR)")
    build()
    servers, daemons = [], []
    try:
        for gw in ("wg", "eg"):
            server = ZoneServer([make_zone("in-addr.arpa", zone())],
                                DnsNamespace(NS[gw], "127.0.0.1").socket(), "127.0.0.1", 53)
            servers.append(server.start())
        for gw, address, client_net, side, groups in (
            ("wg", WEST_GW, "198.51.100.0/25", "west",
             {"private-or-clear": f"203.0.113.0/25\n{CLEAR_DST}/32\n", "private": f"{PRIVATE_DST}/32\n"}),
            ("eg", EAST_GW, "203.0.113.0/25", "east", {"private-or-clear": "198.51.100.0/25\n"}),
        ):
            directory = tmp_path / f"fswan-{NS[gw]}"
            policies = directory / "ipsec.d" / "policies"
            policies.mkdir(parents=True)
            for group, text in groups.items():
                (policies / group).write_text(text)
            daemon = FswanDaemon(directory, NS[gw], conf(address, client_net),
                                 f': RSA "{key_file(side)}"\n',
                                 ("--dnsresolver", "127.0.0.1:53"))
            daemons.append(daemon)
            daemon.start()
            wait_for(lambda: sh("ip", "-n", NS[gw], "link", "show", "ipsec0", check=False).returncode == 0,
                     timeout=10, what="ipsec0")
        # fswan routes the groups' nets into ipsec0 itself (table 220), once its data
        # plane is up (a moment after ipsec0 appears): check it did
        for gw, nets in (("wg", ("203.0.113.0/25", f"{PRIVATE_DST}")), ("eg", ("198.51.100.0/25",))):
            def table_220(ns: str = NS[gw]) -> str:
                return sh("ip", "-n", ns, "route", "show", "table", "220", check=False).stdout

            wait_for(lambda nets=nets, table=table_220: all(f"{net} dev ipsec0" in table()
                                                              for net in nets),
                     timeout=10, what=f"group routes in {NS[gw]}")
        yield daemons
    finally:
        for daemon in daemons:
            daemon.stop()
        for server in servers:
            server.stop()
        teardown()


def ping(destination: str, count: int = 3) -> subprocess.CompletedProcess:
    return sh("ip", "netns", "exec", NS["wc"], "ping", "-c", str(count), "-W", "1", "-i", "0.3",
              destination, check=False, timeout=30)


def test_dns_records_bring_up_oe_and_shunts_follow_the_groups(oe_lab):
    west, east = oe_lab
    # no records: private-or-clear passes in clear, private drops.  (First: once the
    # tunnel is up, east routes the west client into its ipsec0, and 192.0.2.3 is east's.)
    try:
        wait_for(lambda: ping(CLEAR_DST, 1).returncode == 0, timeout=20, what="clear passthrough")
    except AssertionError:
        raise AssertionError(west.log()[-6000:] + west.cli("ipsec", "look").stdout)
    assert ping(PRIVATE_DST, 2).returncode != 0
    eroutes = west.cli("ipsec", "eroute").stdout
    assert re.search(rf"{WEST_CLIENT}/32 +-> {CLEAR_DST}/32 +=> %pass", eroutes), eroutes
    assert re.search(rf"{WEST_CLIENT}/32 +-> {PRIVATE_DST}/32 +=> %drop", eroutes), eroutes
    assert f"failure to fetch key for {PRIVATE_DST} from DNS" in west.log()
    assert "failureshunt=drop installed" in west.log()

    # records on both sides: the first ping brings OE up
    wait_for(lambda: ping(EAST_CLIENT, 1).returncode == 0, timeout=40,
             what="the first ping to bring up OE")
    logs = west.log() + east.log()
    instance = f"private-or-clear#{EAST_CLIENT}"
    assert "initiate on demand from 198.51.100.10:0 to 203.0.113.10:0" in west.log(), logs
    status = west.cli("ipsec", "auto", "--status").stdout
    assert f'"{instance}"' in status and "IPsec SA established" in west.log(), status
    assert f"opportunistic: {WEST_CLIENT} is behind gateway {WEST_GW}" not in east.log()
    assert f"opportunistic: responding for {WEST_CLIENT} behind {WEST_GW}" in east.log(), logs
    assert f'"private-or-clear#{WEST_CLIENT}"' in east.cli("ipsec", "auto", "--status").stdout
    eroutes = west.cli("ipsec", "eroute").stdout
    assert re.search(rf"{WEST_CLIENT}/32 +-> {EAST_CLIENT}/32 +=> tun0x", eroutes), eroutes
    assert ping(EAST_CLIENT, 3).returncode == 0
    assert 'policy group "private": %trap; failureshunt=drop: 192.0.2.4/32' in status

    # shutdown takes the policy-routing rules for the groups' table with it
    for daemon, gw in ((west, "wg"), (east, "eg")):
        assert "lookup 220" in sh("ip", "-n", NS[gw], "rule", "show").stdout
        daemon.stop()
        rules = sh("ip", "-n", NS[gw], "rule", "show").stdout
        assert "lookup 220" not in rules, rules + daemon.log()[-3000:]
