"""DNS key records: TXT X-IPsec-Server, IPSECKEY, KEY; names to query; binding to an ID."""

from __future__ import annotations

import functools

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from fswan.config import keys
from fswan.config.ids import parse_id
from fswan.dnskeys import records
from fswan.dnskeys.records import DnsNameError, KeyRecord, RecordError


@functools.cache
def key(n: int = 0) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(3, 1024)


@functools.cache
def big_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(3, 2048)


def b64(k) -> str:
    return keys.format_rsasigkey(k)[2:]


def rdata(rdtype: str, text: str) -> dns.rdata.Rdata:
    return dns.rdata.from_text(dns.rdataclass.IN, rdtype, text)


def wire_round_trip(r: dns.rdata.Rdata) -> dns.rdata.Rdata:
    return dns.rdata.from_wire(r.rdclass, r.rdtype, r.to_wire(), 0, len(r.to_wire()))


def same(a, b) -> bool:
    return keys.same_public_key(a, b)


# --------------------------------------------------------------------------
# Names


class TestNames:
    def test_fqdn_id_is_asked_under_its_forward_name(self):
        assert records.query_name(parse_id("@East.Example")) == dns.name.from_text("east.example.")

    def test_ipv4_id_is_asked_under_in_addr_arpa(self):
        name = records.query_name(parse_id("192.0.2.2"))
        assert name.to_text() == "2.2.0.192.in-addr.arpa."

    def test_ipv6_id_is_asked_under_ip6_arpa_nibbles(self):
        name = records.query_name(parse_id("2001:db8::1"))
        assert name.to_text() == "1." + "0." * 23 + "8.b.d.0.1.0.0.2.ip6.arpa."

    def test_reverse_name_takes_strings_and_addresses(self):
        assert records.reverse_name("198.51.100.53").to_text() == "53.100.51.198.in-addr.arpa."

    @pytest.mark.parametrize("text", ["user@example.net", "%any", "%myid"])
    def test_other_ids_cannot_be_looked_up(self, text):
        with pytest.raises(DnsNameError, match="can only query DNS for key for ID that is a FQDN"):
            records.query_name(parse_id(text))


# --------------------------------------------------------------------------
# TXT


class TestTxt:
    def test_freeswan_form_parses(self):
        record = records.parse_txt(f"X-IPsec-Server(10)=192.0.2.2 {b64(key())}")
        assert record == KeyRecord("TXT", 10, parse_id("192.0.2.2"), record.key)
        assert same(record.key, key())

    def test_0s_prefix_spaces_and_case_are_accepted(self):
        record = records.parse_txt(f"  x-ipsec-server ( 20 ) =  @east.example   0s{b64(key())} ")
        assert record.preference == 20
        assert record.gateway == parse_id("@east.example")
        assert same(record.key, key())

    def test_character_strings_are_joined(self):
        text = f"X-IPsec-Server(10)=@east.example {b64(key())}"
        record = records.parse_txt([text[:30].encode(), text[30:100].encode(), text[100:].encode()])
        assert same(record.key, key())

    def test_whitespace_inside_the_key_is_ignored(self):
        k = b64(key())
        record = records.parse_txt(["X-IPsec-Server(10)=@east.example", " " + k[:50], " " + k[50:]])
        assert same(record.key, key())

    def test_gateway_without_key(self):
        record = records.parse_txt("X-IPsec-Server(5)=@gw.example")
        assert record.key is None and record.gateway == parse_id("@gw.example")
        assert not record.binds(parse_id("@gw.example"))

    def test_other_txt_records_are_not_ours(self):
        assert records.parse_txt("v=spf1 -all") is None
        assert records.parse_txt([b"hello", b"world"]) is None

    @pytest.mark.parametrize(
        "text, message",
        [
            ("X-IPsec-Server 10=@a.example", "malformed"),
            ("X-IPsec-Server(x)=@a.example", "malformed"),
            ("X-IPsec-Server(10)", "malformed"),
            ("X-IPsec-Server(70000)=@a.example", "larger than 65535"),
            ("X-IPsec-Server(10)=user@a.example", "gateway must be @FQDN or an IP address"),
            ("X-IPsec-Server(10)=not-an-id", "bad gateway"),
            ("X-IPsec-Server(10)=@a.example AQ!!", "bad key"),
            ("X-IPsec-Server(10)=@a.example AQID", "bad key"),
        ],
    )
    def test_malformed_records_say_why(self, text, message):
        with pytest.raises(RecordError, match=message):
            records.parse_txt(text)

    def test_format_round_trips_through_dnspython(self):
        text = records.format_txt(key(), "@east.example")
        assert text == f'"X-IPsec-Server(10)=@east.example {b64(key())}"'
        parsed = records.parse_rdata(wire_round_trip(rdata("TXT", text)))
        assert parsed.gateway == parse_id("@east.example")
        assert same(parsed.key, key())

    def test_long_keys_are_split_as_freeswan_did(self):
        strings = records.txt_strings(big_key(), "192.0.2.2", preference=7)
        assert strings[0] == "X-IPsec-Server(7)=192.0.2.2"
        assert all(len(s) <= 255 for s in strings) and len(strings) >= 3
        assert strings[1].startswith(" AQ")
        r = wire_round_trip(rdata("TXT", records.format_txt(big_key(), "192.0.2.2", 7)))
        parsed = records.parse_rdata(r)
        assert parsed.preference == 7 and same(parsed.key, big_key())

    def test_a_gateway_is_required(self):
        with pytest.raises(RecordError, match="needs a gateway"):
            records.txt_strings(key(), None)


# --------------------------------------------------------------------------
# IPSECKEY


class TestIpseckey:
    @pytest.mark.parametrize(
        "gateway, gateway_type, shown",
        [
            (None, 0, "."),
            ("192.0.2.2", 1, "192.0.2.2"),
            ("2001:db8::2", 2, "2001:db8::2"),
            ("@east.example", 3, "east.example."),
        ],
    )
    def test_each_gateway_type_round_trips(self, gateway, gateway_type, shown):
        text = records.format_ipseckey(key(), gateway, precedence=20)
        assert text == f"20 {gateway_type} 2 {shown} {b64(key())}"
        parsed = records.parse_rdata(wire_round_trip(rdata("IPSECKEY", text)))
        assert parsed.kind == "IPSECKEY" and parsed.preference == 20
        assert parsed.gateway == (None if gateway is None else parse_id(gateway))
        assert same(parsed.key, key())

    def test_non_rsa_keys_are_skipped(self):
        assert records.parse_rdata(rdata("IPSECKEY", f"10 0 1 . {b64(key())}")) is None

    def test_bad_rsa_key_is_an_error(self):
        with pytest.raises(RecordError, match="bad key in IPSECKEY"):
            records.parse_rdata(rdata("IPSECKEY", "10 0 2 . AQMB"))


# --------------------------------------------------------------------------
# KEY


class TestKey:
    def test_freeswan_key_record_round_trips(self):
        text = records.format_key(key())
        assert text == f"16896 4 1 {b64(key())}"  # 16896 == 0x4200
        parsed = records.parse_rdata(wire_round_trip(rdata("KEY", text)))
        assert parsed == KeyRecord("KEY", 0, None, parsed.key)
        assert same(parsed.key, key())

    @pytest.mark.parametrize("flags, protocol, algorithm", [(0x4200, 4, 5), (0x0200, 255, 1)])
    def test_rsasha1_and_any_protocol_are_accepted(self, flags, protocol, algorithm):
        parsed = records.parse_rdata(rdata("KEY", f"{flags} {protocol} {algorithm} {b64(key())}"))
        assert same(parsed.key, key())

    @pytest.mark.parametrize(
        "flags, protocol, algorithm",
        [(0x4200, 3, 1), (0x4200, 4, 3), (0x8200, 4, 1), (0x6200, 4, 1)],
    )
    def test_keys_not_for_ipsec_authentication_are_skipped(self, flags, protocol, algorithm):
        text = f"{flags} {protocol} {algorithm} {b64(key())}"
        assert records.parse_rdata(rdata("KEY", text)) is None


# --------------------------------------------------------------------------
# Binding keys to an ID


class TestKeysFor:
    def test_only_records_for_the_id_or_without_gateway_count(self):
        east = parse_id("@east.example")
        found = records.keys_for(
            east,
            [
                KeyRecord("TXT", 10, parse_id("192.0.2.9"), key(1).public_key()),
                KeyRecord("TXT", 20, east, key(2).public_key()),
                KeyRecord("IPSECKEY", 5, None, key(3).public_key()),
                KeyRecord("TXT", 1, east, None),
            ],
        )
        assert [keys.format_rsasigkey(k) for k in found] == [
            keys.format_rsasigkey(key(3)),
            keys.format_rsasigkey(key(2)),
        ]

    def test_repeats_are_dropped(self):
        east = parse_id("@east.example")
        twice = [KeyRecord("TXT", 10, east, key().public_key())] * 2
        assert len(records.keys_for(east, twice)) == 1

    def test_address_gateways_compare_as_addresses(self):
        record = records.parse_txt(f"X-IPsec-Server(10)=2001:DB8:0::2 {b64(key())}")
        assert record.binds(parse_id("2001:db8::2"))


# --------------------------------------------------------------------------
# Fuzz: decoders fail only with RecordError


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_parse_txt_never_crashes(text):
    try:
        records.parse_txt("X-IPsec-Server" + text)
    except RecordError:
        pass


@settings(max_examples=50, deadline=None)
@given(
    preference=st.integers(0, 0xFFFF),
    gateway=st.sampled_from(["@a.example", "192.0.2.1", "2001:db8::1", "@x.y.example.net"]),
)
def test_txt_format_parse_round_trip(preference, gateway):
    parsed = records.parse_txt(records.txt_strings(key(), gateway, preference))
    assert parsed.preference == preference
    assert parsed.gateway == parse_id(gateway)
    assert same(parsed.key, key())
