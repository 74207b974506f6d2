"""RSA conns whose peer key lives in DNS (``rightrsasigkey=%dnsondemand``/``%dnsonload``):
two fswan gateways across the lab wire, each asking its own authoritative server
(in its namespace, on loopback) for the other's key, published with showhostkey."""

from __future__ import annotations

import re

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from fswan.cli import keytools
from fswan.config.ids import parse_id
from fswan.config.keys import format_rsasigkey, load_private_key
from fswan.dnskeys.records import query_name
from tests.dnsserver import DnsNamespace, ZoneServer, make_zone
from tests.lab.lab import LAB_DIR, wait_for

PRIVATE = LAB_DIR / "conf" / "pubkey-main"


def conf(left_key: str, right_key: str) -> str:
    return f"""\
version 2
config setup
	interfaces="ipsec0=wan0"

conn net
	left=192.0.2.1
	leftid=@west.example
	leftsubnet=198.51.100.0/25
	leftrsasigkey={left_key}
	right=192.0.2.2
	rightid=@east.example
	rightsubnet=203.0.113.0/25
	rightrsasigkey={right_key}
	authby=rsasig
	ike=aes128-sha1-modp2048
	esp=aes_gcm128
	keyingtries=1
	auto=add
"""


def key_of(side: str) -> rsa.RSAPrivateKey:
    return load_private_key((PRIVATE / side / "private" / f"{side}.key").read_text())


def zone_for(side: str) -> str:
    identity = parse_id(f"@{side}.example")
    host_key = keytools.HostKey(key_of(side).public_key(), "RSA 2048 bits   lab   now")
    return keytools.format_txt_record(host_key, identity, query_name(identity).to_text())


@pytest.fixture
def servers(lab):
    """east.example's key served to lab-west, west.example's to lab-east (127.0.0.1:53)."""
    started = []
    for ns, published in (("lab-west", "east"), ("lab-east", "west")):
        server = ZoneServer([make_zone("example", zone_for(published))],
                            DnsNamespace(ns, "127.0.0.1").socket(), "127.0.0.1", 53)
        started.append(server.start())
    yield started
    for server in started:
        server.stop()


def test_peer_keys_from_dns_on_demand_and_on_load(lab, servers):
    secrets = {side: f': RSA "{PRIVATE / side / "private" / f"{side}.key"}"\n'
               for side in ("west", "east")}
    west = lab.fswan("lab-west", conf(format_rsasigkey(key_of("west").public_key()), "%dnsondemand"),
                     secrets["west"], extra_args=("--dnsresolver", "127.0.0.1:53"))
    east = lab.fswan("lab-east", conf("%dnsonload", format_rsasigkey(key_of("east").public_key())),
                     secrets["east"], extra_args=("--dnsresolver", "127.0.0.1:53"))
    result = west.cli("ipsec", "auto", "--up", "net")
    assert result.returncode == 0, result.stdout + west.log() + east.log()
    assert "fetching the public key of '@east.example' (DNS)" in west.log()
    assert re.search(r"STATE_QUICK_I2: sent QI2, IPsec SA established", result.stdout)
    west_server, east_server = servers
    assert west_server.count() >= 1      # west asked for east's key when it needed it
    assert east_server.count() >= 1      # east fetched west's key when the conn was added
    assert "STATE_QUICK_R2" in east.cli("ipsec", "auto", "--status").stdout


def test_key_missing_from_dns_fails_with_plutos_message(lab, servers):
    west = lab.fswan("lab-west", conf(format_rsasigkey(key_of("west").public_key()), "%dnsondemand")
                     .replace("@east.example", "@nobody.example"),
                     f': RSA "{PRIVATE / "west" / "private" / "west.key"}"\n',
                     extra_args=("--dnsresolver", "127.0.0.1:53"))
    lab.fswan(  # the peer, whose key nobody publishes
        "lab-east", conf("%dnsonload", format_rsasigkey(key_of("east").public_key()))
                     .replace("@east.example", "@nobody.example"),
                     f': RSA "{PRIVATE / "east" / "private" / "east.key"}"\n',
                     extra_args=("--dnsresolver", "127.0.0.1:53"))
    assert west.cli("ipsec", "auto", "--asynchronous", "--up", "net").returncode == 0
    wait_for(lambda: "failure to fetch key for @nobody.example from DNS" in west.log(),
             timeout=20, what="the failed DNS lookup to be logged")
    wait_for(lambda: "no RSA public key known for '@nobody.example'" in west.log(),
             timeout=5, what="the held message to be refused")
    assert "IPsec SA established" not in west.log()
