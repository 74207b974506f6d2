"""Rendering a Config: JSON-able dicts and checkconfig text (defaults, redaction, unsupported)."""

from __future__ import annotations

import json

from fswan.config.errors import Location
from fswan.config.ipsecconf import parse_config
from fswan.config.render import (
    REDACTED,
    config_to_dict,
    connection_to_dict,
    format_checkconfig,
    unsupported_settings,
)

ENC_KEY = "0x0123456789abcdef_02468ace13579bdf_123456789abcdef0"
AUTH_KEY = "0xfeedfacecafebeef_0badc0dedeadbeef"
AH_KEY = "0x5ec7e75ec7e75ec7e75ec7e75ec7e75e"
LEFT_KEY = "0xa1a2a3a4a5a6a7a8"

CONFIG = f"""version 2
config setup
    klipsdebug=all
    x-site=ams

conn %default
    compress=yes

conn manual
    left=192.0.2.1
    leftsubnet=10.1.0.0/16
    right=198.51.100.1
    rightsubnet=10.2.0.0/16
    auto=manual
    spi=0x200
    esp=3des-md5-96
    espenckey={ENC_KEY}
    espauthkey={AUTH_KEY}
    ahkey={AH_KEY}
    leftespenckey={LEFT_KEY}
    leftdns=192.0.2.53
    leftupdown="ipsec _updown --x y"
    x-owner=ops
"""

SECRETS = (ENC_KEY, AUTH_KEY, AH_KEY, LEFT_KEY, "0123456789abcdef", "feedfacecafebeef", "5ec7e75e", "a1a2a3a4")


def parsed():
    return parse_config(CONFIG, "ipsec.conf")


class TestDicts:
    def test_json_serialisable_and_complete(self):
        data = config_to_dict(parsed())
        text = json.dumps(data, allow_nan=False)
        assert json.loads(text) == data
        conn = data["conns"]["manual"]
        assert conn["keylife"] == 28800.0 and conn["keyingtries"] == 0 and conn["pfs"] is True
        assert conn["auto"] == "manual" and conn["spi"] == 0x200
        assert conn["left"]["subnet"] == "10.1.0.0/16" and conn["right"]["host"] == "198.51.100.1"
        assert conn["left"]["updown"] == "ipsec _updown --x y"
        assert conn["location"] == "ipsec.conf:9"
        assert conn["user_keys"] == {"x-owner": "ops"}
        assert data["setup"]["user_keys"] == {"x-site": "ams"}
        assert data["files"] == ["ipsec.conf"]

    def test_secrets_are_redacted(self):
        data = config_to_dict(parsed())
        text = json.dumps(data)
        for secret in SECRETS:
            assert secret not in text
        conn = data["conns"]["manual"]
        assert conn["espenckey"] == REDACTED and conn["espauthkey"] == REDACTED and conn["ahkey"] == REDACTED
        assert conn["left"]["espenckey"] == REDACTED and conn["right"]["espenckey"] is None
        assert conn["settings"]["espenckey"] == {"value": REDACTED, "location": "ipsec.conf:17"}
        assert conn["settings"]["leftespenckey"]["value"] == REDACTED

    def test_unsupported_in_dicts(self):
        data = config_to_dict(parsed())
        assert data["unsupported"] == [
            {"location": "ipsec.conf:3", "section": "config setup", "keyword": "klipsdebug"},
            {"location": "ipsec.conf:7", "section": 'conn "manual"', "keyword": "compress"},
            {"location": "ipsec.conf:19", "section": 'conn "manual"', "keyword": "ahkey"},
            {"location": "ipsec.conf:21", "section": 'conn "manual"', "keyword": "leftdns"},
        ]
        conn = connection_to_dict(parsed().conns["manual"])
        assert {"keyword": "leftdns", "location": "ipsec.conf:21"} in conn["unsupported"]

    def test_unsupported_settings(self):
        assert unsupported_settings(parsed()) == [
            (Location("ipsec.conf", 3), "config setup", "klipsdebug"),
            (Location("ipsec.conf", 7), 'conn "manual"', "compress"),
            (Location("ipsec.conf", 19), 'conn "manual"', "ahkey"),
            (Location("ipsec.conf", 21), 'conn "manual"', "leftdns"),
        ]


class TestCheckconfig:
    def test_defaults_applied(self):
        lines = format_checkconfig(parsed())
        assert lines[0] == "version 2"
        start = lines.index("conn manual")
        block = lines[start:lines.index("", start)]
        for expected in ("\tkeylife=8h", "\trekeymargin=9m", "\trekeyfuzz=100%", "\tkeyingtries=%forever",
                         "\tikelifetime=1h", "\tpfs=yes", "\tauthby=rsasig", "\ttype=tunnel", "\tauto=manual",
                         "\tspi=0x200", "\tleftsubnet=10.1.0.0/16", "\tleftnexthop=%direct",
                         "\trightrsasigkey=%dnsondemand", '\tleftupdown="ipsec _updown --x y"',
                         "\tx-owner=ops", "\t# defined at ipsec.conf:9"):
            assert expected in block
        assert "\tinterfaces=%defaultroute" in lines and "\tuniqueids=yes" in lines

    def test_redaction(self):
        lines = format_checkconfig(parsed())
        text = "\n".join(lines)
        for secret in SECRETS:
            assert secret not in text
        assert f"\tespenckey={REDACTED}" in lines and f"\tleftespenckey={REDACTED}" in lines

    def test_unsupported_listed_with_location(self):
        lines = format_checkconfig(parsed())
        assert "\tcompress=yes\t# not yet supported (ipsec.conf:7)" in lines
        assert "\tklipsdebug=all\t# not yet supported (ipsec.conf:3)" in lines
        tail = lines[lines.index("# not yet supported (parsed and checked, but fswan does not act on them yet):"):]
        assert tail[1:] == [
            "#\tipsec.conf:3: config setup: klipsdebug=all",
            '#\tipsec.conf:7: conn "manual": compress=yes',
            f'#\tipsec.conf:19: conn "manual": ahkey={REDACTED}',
            '#\tipsec.conf:21: conn "manual": leftdns=192.0.2.53',
        ]

    def test_warnings_and_files_shown(self):
        config = parse_config("conn a\n  left=10.0.0.1\n  right=10.0.0.2\n", "x.conf")
        lines = format_checkconfig(config)
        assert "# read: x.conf" in lines
        assert "# warning: x.conf:1: no 'version 2' line at the top; reading the file as FreeS/WAN 2.x" in lines

    def test_round_trip(self):
        source = """version 2
config setup
    interfaces="ipsec0=eth1"
    myid=@gw.example.com
conn %default
    keyingtries=3
conn net
    left=192.0.2.1
    leftsubnet=10.1.0.0/16
    leftid=@west
    leftprotoport=17/1701
    right=%any
    rightprotoport=udp/%any
    authby=psk
    auto=ondemand
    keylife=90m
    dpddelay=30
    ike=aes128-sha1;modp2048
    forceencaps=yes
    x-note="hello world"
conn oe
    also=net
    alsoflip=peer
    type=passthrough
conn peer
    leftsubnet=10.7.0.0/16
    auto=ignore
"""
        first = parse_config(source, "a.conf")
        second = parse_config("\n".join(format_checkconfig(first)) + "\n", "b.conf")

        def comparable(config):
            data = config_to_dict(config)
            for conn in data["conns"].values():
                del conn["settings"], conn["location"]
            del data["setup"]["settings"], data["files"], data["warnings"]
            return data

        assert comparable(second) == comparable(first)
