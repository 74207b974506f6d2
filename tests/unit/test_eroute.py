"""KLIPS eroute table: most specific match, magic SAIDs, listing format, cache."""

from __future__ import annotations

import ipaddress

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.packet import raw

from fswan.ipsec.eroute import (
    DROP,
    HOLD,
    MAGIC_SAIDS,
    PASS,
    REJECT,
    TRAP,
    ErouteError,
    ErouteTable,
    parse_target,
)
from fswan.ipsec.sa import Said


def pkt(src: str, dst: str, **kw) -> bytes:
    if ":" in src:
        return raw(IPv6(src=src, dst=dst) / UDP(sport=kw.get("sport", 1), dport=kw.get("dport", 2)))
    if kw.get("tcp"):
        return raw(IP(src=src, dst=dst) / TCP(sport=kw.get("sport", 1), dport=kw.get("dport", 2)))
    return raw(IP(src=src, dst=dst) / UDP(sport=kw.get("sport", 1), dport=kw.get("dport", 2)))


def said(spi: int, dst: str = "192.0.2.2") -> Said:
    return Said("tun", spi, ipaddress.ip_address(dst))


def test_longer_destination_prefix_wins():
    t = ErouteTable()
    wide = t.add("10.0.1.0/24", "10.0.0.0/16", said(0x100))
    narrow = t.add("10.0.1.0/24", "10.0.2.0/24", said(0x200))
    assert t.lookup(pkt("10.0.1.5", "10.0.2.7")) is narrow
    assert t.lookup(pkt("10.0.1.5", "10.0.3.7")) is wide
    assert t.lookup(pkt("10.0.9.5", "10.0.2.7")) is None


def test_destination_length_beats_source_length():
    t = ErouteTable()
    by_dst = t.add("0.0.0.0/0", "10.0.2.0/24", said(0x100))
    by_src = t.add("10.0.1.5/32", "10.0.0.0/16", said(0x200))
    assert t.lookup(pkt("10.0.1.5", "10.0.2.7")) is by_dst
    assert t.lookup(pkt("10.0.1.5", "10.0.3.7")) is by_src


def test_then_longer_source_prefix_wins():
    t = ErouteTable()
    anyone = t.add("0.0.0.0/0", "10.0.2.0/24", DROP)
    ours = t.add("10.0.1.0/24", "10.0.2.0/24", said(0x200))
    host = t.add("10.0.1.5/32", "10.0.2.0/24", PASS)
    assert t.lookup(pkt("10.0.1.5", "10.0.2.7")) is host
    assert t.lookup(pkt("10.0.1.6", "10.0.2.7")) is ours
    assert t.lookup(pkt("172.16.0.1", "10.0.2.7")) is anyone


def test_host_routes_and_default():
    t = ErouteTable()
    default = t.add("0.0.0.0/0", "0.0.0.0/0", TRAP)
    host = t.add("192.0.2.7/32", "198.51.100.9/32", said(0x300))
    assert t.lookup(pkt("192.0.2.7", "198.51.100.9")) is host
    assert t.lookup(pkt("192.0.2.7", "198.51.100.10")) is default


def test_ports_and_protocol_are_more_specific():
    t = ErouteTable()
    all_traffic = t.add("10.0.1.0/24", "10.0.2.0/24", said(0x100))
    web = t.add("10.0.1.0/24", "10.0.2.0/24", PASS, proto=6, dport=80)
    assert t.lookup(pkt("10.0.1.5", "10.0.2.7", tcp=True, dport=80)) is web
    assert t.lookup(pkt("10.0.1.5", "10.0.2.7", tcp=True, dport=81)) is all_traffic
    assert t.lookup(pkt("10.0.1.5", "10.0.2.7", dport=80)) is all_traffic  # UDP, not TCP
    t.delete("10.0.1.0/24", "10.0.2.0/24", proto=6, dport=80)
    assert t.lookup(pkt("10.0.1.5", "10.0.2.7", tcp=True, dport=80)) is all_traffic


def test_ipv6_eroutes_are_separate():
    t = ErouteTable()
    v6 = t.add("2001:db8:1::/48", "2001:db8:2::/48", said(0x600, "2001:db8::2"))
    v4 = t.add("0.0.0.0/0", "0.0.0.0/0", DROP)
    assert t.lookup(pkt("2001:db8:1::5", "2001:db8:2::7")) is v6
    assert t.lookup(pkt("2001:db8:9::5", "2001:db8:2::7")) is None
    assert t.lookup(pkt("10.0.0.1", "10.0.0.2")) is v4
    with pytest.raises(ErouteError):
        t.add("0.0.0.0/0", "::/0", DROP)


def test_not_ip_packets_match_nothing():
    t = ErouteTable()
    t.add("0.0.0.0/0", "0.0.0.0/0", PASS)
    for bad in (b"", b"\x45" * 19, b"\x60" * 39, b"\x50" * 60, b"\x00" * 60):
        assert t.lookup(bad) is None


def test_cache_follows_changes():
    t = ErouteTable()
    wide = t.add("0.0.0.0/0", "10.0.0.0/8", said(0x100))
    p = pkt("10.0.1.5", "10.0.2.7")
    assert t.lookup(p) is wide
    assert t.lookup(p) is wide  # now cached
    narrow = t.add("0.0.0.0/0", "10.0.2.0/24", said(0x200))
    assert t.lookup(p) is narrow
    t.delete("0.0.0.0/0", "10.0.2.0/24")
    assert t.lookup(p) is wide
    t.delete("0.0.0.0/0", "10.0.0.0/8")
    assert t.lookup(p) is None
    t.add("0.0.0.0/0", "0.0.0.0/0", DROP)
    assert t.lookup(p) is not None  # a cached miss is forgotten too


def test_cache_is_bounded():
    t = ErouteTable(cache_size=16)
    t.add("0.0.0.0/0", "0.0.0.0/0", DROP)
    for i in range(100):
        t.lookup(pkt(f"10.0.0.{i}", "10.1.1.1"))
    assert len(t._cache) <= 16


def test_replace_keeps_the_object_and_returns_the_held_packet():
    t = ErouteTable()
    e = t.add("10.0.1.0/24", "10.0.2.0/24", HOLD)
    e.held = b"last packet"
    p = pkt("10.0.1.5", "10.0.2.7")
    assert t.lookup(p) is e
    same, held = t.replace("10.0.1.0/24", "10.0.2.0/24", "tun0x130@192.0.2.2")
    assert same is e and held == b"last packet"
    assert e.said == said(0x130) and e.magic is None and e.held is None
    assert t.lookup(p) is e


def test_add_duplicate_and_missing_are_errors():
    t = ErouteTable()
    t.add("10.0.1.0/24", "10.0.2.0/24", TRAP)
    with pytest.raises(ErouteError, match="already exists"):
        t.add("10.0.1.0/24", "10.0.2.0/24", DROP)
    with pytest.raises(ErouteError, match="not found"):
        t.delete("10.0.1.0/24", "10.0.3.0/24")
    with pytest.raises(ErouteError, match="not found"):
        t.replace("10.0.1.0/24", "10.0.3.0/24", DROP)
    with pytest.raises(ErouteError):
        t.add("10.0.1.0/24", "not a net", DROP)


def test_targets():
    assert all(parse_target(m) == m for m in MAGIC_SAIDS)
    assert parse_target("tun0x130@192.0.2.2") == said(0x130)
    expected = Said("esp", 0xA1B2C3D4, ipaddress.ip_address("192.0.2.2"))
    assert parse_target("esp.a1b2c3d4@192.0.2.2") == expected
    for bad in ("%bogus", "ah0x100@192.0.2.2", "tun0x130", 17):
        with pytest.raises(ErouteError):
            parse_target(bad)


def test_hold_for_makes_a_host_hold_or_converts_a_host_trap():
    t = ErouteTable()
    t.add("10.0.1.0/24", "10.0.2.0/24", TRAP)
    src, dst = int(ipaddress.ip_address("10.0.1.5")), int(ipaddress.ip_address("10.0.2.7"))
    hold = t.hold_for(4, src, dst)
    assert (str(hold.src), str(hold.dst), hold.said) == ("10.0.1.5/32", "10.0.2.7/32", HOLD)
    assert t.lookup(pkt("10.0.1.5", "10.0.2.7")) is hold
    assert t.hold_for(4, src, dst) is hold
    oe = t.add("10.0.1.5/32", "10.0.3.3/32", TRAP)
    assert t.hold_for(4, src, int(ipaddress.ip_address("10.0.3.3"))) is oe and oe.magic == HOLD


def test_listing_format():
    t = ErouteTable()
    t.add("10.0.1.0/24", "10.0.2.0/24", "tun0x130@192.0.2.2").count = 12
    t.add("0.0.0.0/0", "192.0.2.7/32", HOLD)
    t.add("10.0.1.0/24", "10.0.9.0/24", REJECT, proto=6, sport=0, dport=25)
    t.add("10.0.1.5/32", "10.0.8.0/24", "esp0x1f00@192.0.2.3", proto=17, sport=500)
    assert t.listing() == [
        "0          0.0.0.0/0          -> 192.0.2.7/32       => %hold",
        "12         10.0.1.0/24        -> 10.0.2.0/24        => tun0x130@192.0.2.2",
        "0          10.0.1.0/24        -> 10.0.9.0/24:25     => %reject:6",
        "0          10.0.1.5/32:500    -> 10.0.8.0/24        => esp0x1f00@192.0.2.3:17",
    ]


def test_many_prefix_lengths_still_most_specific():
    t = ErouteTable()
    for length in range(8, 33):
        net = ipaddress.ip_network(f"10.0.0.0/{length}")
        t.add("0.0.0.0/0", net, said(0x1000 + length))
    e = t.lookup(pkt("172.16.0.1", "10.0.0.0"))
    assert e.dst.prefixlen == 32
    e = t.lookup(pkt("172.16.0.1", "10.0.0.255"))
    assert e.dst.prefixlen == 24
    assert len(t) == 25
