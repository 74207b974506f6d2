"""Single-value parsers of ipsec.conf (fswan.config.values)."""

from __future__ import annotations

import base64
from ipaddress import ip_address, ip_network

import pytest

from fswan.config import values
from fswan.config.model import AddressRange
from fswan.config.values import BadValue


def bad(func, *args, **kwargs) -> str:
    with pytest.raises(BadValue) as info:
        func(*args, **kwargs)
    return info.value.detail


class TestBool:
    @pytest.mark.parametrize("text, expected", [("yes", True), ("no", False), ("YES", True), (" no ", False),
                                                ("true", True), ("false", False)])
    def test_yes_no(self, text, expected):
        assert values.parse_bool(text) is expected

    @pytest.mark.parametrize("text", ["maybe", "1", "y", ""])
    def test_other_words(self, text):
        assert bad(values.parse_bool, text) == "expected yes or no"

    def test_message_format(self):
        with pytest.raises(BadValue) as info:
            values.parse_bool("maybe")
        assert info.value.message("pfs", "maybe") == "bad value 'maybe' for pfs=: expected yes or no"


class TestTime:
    @pytest.mark.parametrize(
        "text, seconds",
        [("30s", 30), ("9m", 540), ("1.5h", 5400), ("8h", 28800), ("2d", 172800), ("45", 45),
         ("0", 0), ("0.5m", 30), (".5h", 1800), ("1H", 3600)],
    )
    def test_units(self, text, seconds):
        assert values.parse_time(text) == seconds

    @pytest.mark.parametrize("text", ["1w", "-1s", "h", "1 h", "1.h", "forever", "%forever", "1e3"])
    def test_bad(self, text):
        assert "expected a time such as 30s, 9m, 1.5h, 8h, 2d" in bad(values.parse_time, text)

    def test_forever_only_when_allowed(self):
        assert values.parse_time("%forever", allow_forever=True) == values.FOREVER
        assert "%forever" in bad(values.parse_time, "x", allow_forever=True)

    def test_limits(self):
        assert values.parse_time("24h", maximum=86400) == 86400
        assert bad(values.parse_time, "25h", maximum=86400) == "the maximum is 24h"
        assert bad(values.parse_time, "0", minimum=1) == "the minimum is 1s"

    def test_huge_is_rejected_not_infinite(self):
        bad(values.parse_time, "9" * 400 + "d")

    @pytest.mark.parametrize(
        "seconds, text",
        [(28800, "8h"), (540, "9m"), (90, "90s"), (86400, "1d"), (0, "0s"), (1.5, "1.5s"),
         (values.FOREVER, "%forever")],
    )
    def test_format(self, seconds, text):
        assert values.format_time(seconds) == text


class TestNumbers:
    def test_int(self):
        assert values.parse_int("42") == 42
        assert values.parse_int("0x10") == 16
        assert values.parse_int("0x1_0") == 16
        assert bad(values.parse_int, "4x") == "expected an integer"
        assert bad(values.parse_int, "5", minimum=0, maximum=4) == "out of range: expected an integer from 0 to 4"
        assert bad(values.parse_int, "9" * 5000) == "expected an integer"

    def test_percent(self):
        assert values.parse_percent("100%") == 100
        assert values.parse_percent("50") == 50
        assert bad(values.parse_percent, "-5%") == "expected a percentage such as 100%"
        assert bad(values.parse_percent, "9" * 5000) == "expected a percentage such as 100%"

    def test_keyingtries(self):
        assert values.parse_keyingtries("%forever") == 0
        assert values.parse_keyingtries("0") == 0
        assert values.parse_keyingtries("3") == 3
        assert "%forever" in bad(values.parse_keyingtries, "-1")

    def test_spi(self):
        assert values.parse_spi("0x200") == 0x200
        assert values.parse_spi("256") == 0x100
        assert "reserved" in bad(values.parse_spi, "0xff")
        assert "0x100 to 0xffffffff" in bad(values.parse_spi, "0x100000000")
        assert "0x100 to 0xffffffff" in bad(values.parse_spi, "spi")

    def test_spibase(self):
        assert values.parse_spibase("0x230") == 0x230
        assert "ending in hex digit 0" in bad(values.parse_spibase, "0x231")

    def test_port(self):
        assert values.parse_port("4500") == 4500
        assert bad(values.parse_port, "0") == "expected a UDP port from 1 to 65535"


class TestAddresses:
    @pytest.mark.parametrize(
        "text, host",
        [("10.0.0.1", "10.0.0.1"), ("2001:DB8::1", "2001:db8::1"), ("%defaultroute", "%defaultroute"),
         ("%any", "%any"), ("%any6", "%any"), ("%opportunistic", "%opportunistic"), ("%group", "%group"),
         ("%opportunisticgroup", "%opportunisticgroup")],
    )
    def test_host(self, text, host):
        assert values.parse_host(text) == host

    def test_host_bad(self):
        assert bad(values.parse_host, "%bogus").startswith("expected an IP address, a host name, %defaultroute")
        assert bad(values.parse_host, "10.0.0.256").startswith("expected an IP address")
        for text in ("<Public IP>", "your.ip.here!", "a b", "x" * 300):
            assert bad(values.parse_host, text).startswith("expected an IP address")

    def test_host_names_are_kept_for_dns(self):
        assert values.parse_host("VPN.Example.com.") == "vpn.example.com"
        assert values.parse_host("%oppo") == "%opportunistic"
        with pytest.raises(values.Unrunnable):
            values.parse_host("192.0.2.0/24")
        with pytest.raises(values.Unrunnable):
            values.parse_host("192.0.2.1,192.0.2.2")

    def test_nexthop(self):
        assert values.parse_nexthop("%defaultroute") == "%defaultroute"
        assert values.parse_nexthop("%direct") == "%direct"
        assert values.parse_nexthop("10.1.2.3") == "10.1.2.3"
        assert values.parse_nexthop("gw.example.net") == "gw.example.net"
        assert bad(values.parse_nexthop, "%any") == "expected an IP address, a host name, %defaultroute or %direct"

    def test_address(self):
        assert values.parse_address("::1") == ip_address("::1")
        assert bad(values.parse_address, "nope") == "expected an IPv4 or IPv6 address"

    @pytest.mark.parametrize(
        "text, net",
        [("10.0.0.0/24", "10.0.0.0/24"), ("10.0.0.0/255.255.255.0", "10.0.0.0/24"),
         ("10.1.2.3", "10.1.2.3/32"), ("2001:db8::/32", "2001:db8::/32"), ("0.0.0.0/0", "0.0.0.0/0")],
    )
    def test_subnet(self, text, net):
        assert values.parse_subnet(text) == ip_network(net)

    def test_subnet_host_bits(self):
        adjusted = values.parse_subnet("10.0.0.1/24")
        assert isinstance(adjusted, values.Adjusted)
        assert adjusted.value == ip_network("10.0.0.0/24")
        assert adjusted.note == "has host bits set; using 10.0.0.0/24"

    def test_strongswan_subnet_lists_cannot_run(self):
        for text in ("10.0.0.0/24,10.1.0.0/24", "10.0.0.1[tcp/http]"):
            with pytest.raises(values.Unrunnable):
                values.parse_client(text)
        assert values.parse_client("%dynamic") is None

    def test_subnet_bad(self):
        assert bad(values.parse_subnet, "10.0.0.0/33").startswith("expected a subnet such as 10.0.0.0/24")
        assert "leftsubnet=/rightsubnet= only" in bad(values.parse_subnet, "vhost:%priv,%no")

    def test_protoport(self):
        assert values.parse_protoport("17/1701") == (17, 1701)
        assert values.parse_protoport("udp/l2tp") == (17, 1701)
        assert values.parse_protoport("tcp/%any") == (6, 0)
        assert values.parse_protoport("udp") == (17, 0)
        assert values.parse_protoport("6/0") == (6, 0)
        for text in ("17/70000", "foo/1", "256/1", "udp/nosuch"):
            assert bad(values.parse_protoport, text).startswith("expected protocol/port")


class TestIdsAndKeys:
    @pytest.mark.parametrize("text", ["@gw.example.com", "user@example.com", "10.0.0.1", "%any", "%myid"])
    def test_id(self, text):
        assert values.parse_id_text(f" {text} ") == text

    def test_id_bad(self):
        assert "expected an IP address, @fqdn, user@fqdn" in bad(values.parse_id_text, "gw example")

    @pytest.mark.parametrize("text", ["gw.example.com", "%fromcert", "C=CH, O=Example, CN=gw.example.com",
                                      "/C=CH/O=Example/CN=gw"])
    def test_ids_of_other_flavours(self, text):
        assert values.parse_id_text(text) == text

    def test_strongswan_typed_ids(self):
        assert values.parse_id_text("fqdn:gw.example.com") == "@gw.example.com"
        assert values.parse_id_text("email:road@example.com") == "road@example.com"

    @pytest.mark.parametrize("text", ["keyid:vpngroup", "keyid:#76706e67726f7570", "@#76706e67726f7570",
                                      "@#0x76706e67726f7570", "@[vpngroup]"])
    def test_key_ids_are_kept_as_written(self, text):
        assert values.parse_id_text(text) == text

    @pytest.mark.parametrize("text", ["@#", "@#123", "@#xyz", "keyid:", "@[]", "keyid:#0x"])
    def test_bad_key_ids(self, text):
        assert "key ID" in bad(values.parse_id_text, text)

    def test_sourceip(self):
        assert values.parse_sourceip("192.0.2.1") == ip_address("192.0.2.1")
        for text in ("%config", "%config4", "%modecfg", "%CONFIG6"):
            assert values.parse_sourceip(text) == values.CONFIG_SOURCEIP
        assert values.parse_sourceip("198.51.100.0/28") == AddressRange(
            ip_address("198.51.100.1"), ip_address("198.51.100.14"))
        for text in ("%poolname", "198.51.100.0/28,203.0.113.0/28"):
            with pytest.raises(values.Unrunnable):
                values.parse_sourceip(text)
        assert bad(values.parse_sourceip, "nope") == (
            "expected an IPv4 or IPv6 address, %config, or a pool (range or CIDR)")

    def test_address_range(self):
        pool = values.parse_address_range("198.51.100.200-198.51.100.220")
        assert (pool.first, pool.last, pool.size) == (ip_address("198.51.100.200"), ip_address("198.51.100.220"), 21)
        assert ip_address("198.51.100.210") in pool and ip_address("198.51.100.221") not in pool
        assert ip_address("2001:db8::1") not in pool and pool.address(20) == pool.last
        assert str(pool) == "198.51.100.200-198.51.100.220"
        assert values.parse_address_range(" 198.51.100.7 - 198.51.100.7 ").size == 1
        assert values.parse_address_range("198.51.100.0/31").size == 2
        six = values.parse_address_range("2001:db8::/112")
        assert (six.first, six.size) == (ip_address("2001:db8::1"), 65535)
        assert bad(values.parse_address_range, "198.51.100.9-198.51.100.1") == (
            "198.51.100.9 comes after 198.51.100.1")
        assert bad(values.parse_address_range, "198.51.100.1-2001:db8::1") == (
            "198.51.100.1 and 2001:db8::1 are different address families")
        assert bad(values.parse_address_range, "2001:db8::/111") == (
            "131071 addresses: a pool holds at most 65536")
        assert bad(values.parse_address_range, "198.51.100.1/24") == (
            "has host bits set: give the network address")
        for text in ("nope", "198.51.100.1", "198.51.100.1-x", "1.2.3.4/99"):
            bad(values.parse_address_range, text)
        with pytest.raises(ValueError):
            AddressRange(ip_address("198.51.100.2"), ip_address("198.51.100.1"))

    def test_address_list_and_words(self):
        assert values.parse_address_list("198.51.100.53, 2001:db8::53 198.51.100.54") == (
            ip_address("198.51.100.53"), ip_address("2001:db8::53"), ip_address("198.51.100.54"))
        assert "not an address" in bad(values.parse_address_list, "198.51.100.53 dns.example.net")
        bad(values.parse_address_list, " , ")
        assert values.parse_words("example.net,example.com corp.example") == (
            "example.net", "example.com", "corp.example")
        bad(values.parse_words, ",")

    def test_binary(self):
        assert values.decode_binary("0x0102_0304") == b"\x01\x02\x03\x04"
        assert values.decode_binary("0sAQID") == b"\x01\x02\x03"
        assert values.decode_binary("0tabc") == b"abc"
        for text in ("0x123", "0xzz", "0s!!", "0x", "plain", "0s"):
            bad(values.decode_binary, text)

    def test_manual_key_kept_as_written(self):
        assert values.parse_key("0x01234567_89abcdef") == "0x01234567_89abcdef"

    def test_rsasigkey(self):
        modulus = (1 << 1023) | 0xC3  # a 1024-bit odd number stands in for a modulus
        blob = b"\x01\x03" + modulus.to_bytes(128, "big")
        key = "0s" + base64.b64encode(blob).decode()
        assert values.parse_rsasigkey(key) == key
        assert values.parse_rsasigkey("0x" + blob.hex()) == "0x" + blob.hex()
        long_exponent = b"\x00\x00\x03\x01\x00\x01" + modulus.to_bytes(128, "big")
        assert values.parse_rsasigkey("0s" + base64.b64encode(long_exponent).decode())
        for word in ("%none", "%dns", "%dnsonload", "%dnsondemand", "%cert"):
            assert values.parse_rsasigkey(word) == word

    def test_rsasigkey_bad(self):
        assert "expected an RSA public key" in bad(values.parse_rsasigkey, "AQOx")
        assert "invalid base64" in bad(values.parse_rsasigkey, "0sAQ!O")
        assert "truncated" in bad(values.parse_rsasigkey, "0sAQM=")
        short = "0s" + base64.b64encode(b"\x01\x03" + bytes(range(1, 65))).decode()
        assert "too small (minimum 512)" in bad(values.parse_rsasigkey, short)
        assert "expected an RSA public key" in bad(values.parse_rsasigkey, "%dnsnow")


class TestWords:
    def test_choice(self):
        choices = {"a": "a", "b": "b", "c": "c", "alias": "a"}
        assert values.parse_choice("alias", choices) == "a"
        assert values.parse_choice("B", choices) == "b"
        assert bad(values.parse_choice, "d", choices) == "expected a, b, c or alias"

    def test_names(self):
        assert values.parse_names("a b,c") == ("a", "b", "c")
        assert "bad conn name '1a'" in bad(values.parse_names, "a 1a")

    def test_algs(self):
        assert values.parse_algs("aes256-sha1;modp2048, 3des-md5") == "aes256-sha1;modp2048, 3des-md5"
        assert values.parse_algs("3des-md5-96") == "3des-md5-96"
        bad(values.parse_algs, "aes,,3des")
        bad(values.parse_algs, "aes 3des")

    def test_debug_syslog_interfaces(self):
        assert values.parse_debug("control  parsing") == "control parsing"
        bad(values.parse_debug, "a=b")
        assert values.parse_syslog("Daemon.Error") == "daemon.error"
        assert bad(values.parse_syslog, "daemon") == "expected facility.priority such as daemon.error"
        assert values.parse_interfaces("%none") == "%none"
        assert values.parse_interfaces("ipsec0=eth1  ipsec1=ppp0") == "ipsec0=eth1 ipsec1=ppp0"
        assert "expected %defaultroute, %none or pairs" in bad(values.parse_interfaces, "eth0")
