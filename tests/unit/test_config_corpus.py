"""A corpus of ipsec.conf files in each flavour's style (tests/data/configs/): each loads with the
right conns, refuses the right conns alone, or fails with the right file:line errors; and the
tolerance rules one by one (host names, %oedefault, ca sections, --help)."""

from __future__ import annotations

import json
from ipaddress import ip_address, ip_network
from pathlib import Path

import pytest

from fswan.cli import ipsec as ipsec_cli
from fswan.cli import whack as whack_cli
from fswan.config.errors import ConfigErrors, ConnRefused
from fswan.config.hostnames import (
    LOOKUP_FAILED,
    ResolveError,
    config_host_names,
    needed_names,
    resolve_hosts,
)
from fswan.config.ipsecconf import load_config, parse_config
from fswan.config.model import AuthBy, Config, DpdAction
from fswan.config.orient import IpsecInterface, OrientationError, orient
from fswan.config.policygroups import implicit_conns
from fswan.config.render import config_to_dict, format_checkconfig
from fswan.loader import FileLoader

CORPUS = Path(__file__).resolve().parents[1] / "data" / "configs"


def load(name: str) -> Config:
    return load_config(str(CORPUS / name), FileLoader())


def errors(name: str) -> list[str]:
    with pytest.raises(ConfigErrors) as info:
        load(name)
    return [str(e).replace(str(CORPUS) + "/", "") for e in info.value.errors]


def refused(config: Config) -> dict[str, str]:
    return {name: refusal.reason for name, refusal in config.refused.items()}


#: file -> (conns loaded, conns refused alone)
LOADS = {
    "freeswan2-psk-site.conf": (
        ["net-to-net", "block", "private", "private-or-clear", "clear-or-private", "clear", "packetdefault"], {}),
    "freeswan2-rsa.conf": (["west-east"], {}),
    "openswan-x509.conf": (["roadwarrior-x509", "psk-peer"], {}),
    "openswan-l2tp.conf": (["L2TP-PSK-NAT", "L2TP-PSK-noNAT"], {}),
    "libreswan-xauth.conf": (["shared", "xauth-psk", "office"], {}),
    "libreswan4.conf": (["branch", "v2-only"], {}),
    "strongswan5.conf": (["site-v1", "site-auth"], {"rw-eap": "rightauth=eap-mschapv2 is not yet supported "
                                                              "(fswan authenticates with psk or RSA keys)"}),
    "strongswan4-pluto.conf": (["home"], {}),
    "ipv6.conf": (["six"], {}),
    "oe.conf": (["private-or-clear", "me-to-anyone"], {}),
    "includes.conf": (["inc-a", "inc-b"], {}),
}

#: file -> its file:line errors
BROKEN = {
    "freeswan1.conf": [
        "freeswan1.conf:6: keyword 'plutoload' was removed in FreeS/WAN 2.0: set auto=add (or route/start) in "
        "each conn instead",
        "freeswan1.conf:7: keyword 'plutostart' was removed in FreeS/WAN 2.0: set auto=start in each conn instead",
    ],
    "placeholder.conf": [
        "placeholder.conf:4: bad value '<Public IP>' for left=: expected an IP address, a host name, "
        "%defaultroute, %any, %any6, %opportunistic, %group or %opportunisticgroup",
    ],
    "prose.conf": [
        "prose.conf:5: unexpected 'Then' at the start of a line: expected 'config setup', 'conn NAME', "
        "'include FILE' or an indented keyword=value",
    ],
}


def test_every_corpus_file_is_covered():
    files = {p.name for p in CORPUS.glob("*.conf")}
    assert files == set(LOADS) | set(BROKEN)


@pytest.mark.parametrize("name", sorted(LOADS))
def test_corpus_file_loads(name):
    config = load(name)
    conns, refusals = LOADS[name]
    assert list(config.conns) == conns
    assert refused(config) == refusals
    for refusal in config.refused.values():
        assert isinstance(refusal, ConnRefused) and refusal.location is not None
        assert refusal in config.warnings
    json.dumps(config_to_dict(config), allow_nan=False)
    text = "\n".join(format_checkconfig(config))
    for conn in refusals:
        assert f'conn "{conn}" not loaded' in text


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_corpus_file_errors(name):
    assert errors(name) == BROKEN[name]


class TestCorpusDetails:
    def test_l2tp(self):
        config = load("openswan-l2tp.conf")
        nat = config.conns["L2TP-PSK-NAT"]
        assert nat.right.virtual is not None and nat.authby is AuthBy.SECRET
        assert nat.dpdaction is DpdAction.CLEAR and nat.left.protoport == (17, 1701)
        assert "sareftrack" in nat.unsupported
        assert set(config.setup.unsupported) == {"protostack", "force_keepalive", "plutorestartoncrash"}

    def test_libreswan4_clamps_and_zeroes(self):
        config = load("libreswan4.conf")
        branch = config.conns["branch"]
        assert branch.ikelifetime == 86400 and branch.left.subnet == ip_network("198.51.100.0/24")
        assert branch.right.host == "branch.example.org" and branch.right.needs_dns

    def test_strongswan_end_auth_maps_onto_authby(self):
        config = load("strongswan5.conf")
        assert config.conns["site-auth"].authby is AuthBy.RSASIG
        assert config.conns["site-v1"].authby is AuthBy.SECRET
        assert config.conns["site-v1"].rekeymargin == 180
        assert config.setup.uniqueids is False
        assert list(config.cas) == ["strongswan"] and config.cas["strongswan"].auto == "add"

    def test_openswan_ca_and_oedefault(self):
        config = load("openswan-x509.conf")
        ca = config.cas["example"]
        assert ca.auto == "add" and ca.settings["cacert"][0] == "cacert.pem"
        assert config.oedefault is not None and config.oedefault.ikelifetime == 7200
        assert implicit_conns(config)["private"].ikelifetime == 7200
        text = "\n".join(format_checkconfig(config))
        assert "ca example" in text and "conn %oedefault" in text

    def test_strongswan4_plutostart_is_not_the_1x_keyword(self):
        assert "plutostart" in load("strongswan4-pluto.conf").setup.unsupported


class TestRefusals:
    def base(self, extra: str) -> str:
        return f"version 2\nconn a\n  left=192.0.2.1\n  right=192.0.2.2\n  auto=add\n{extra}"

    @pytest.mark.parametrize("line, reason", [
        ("  authby=eaponly\n", "authby=eaponly: EAP is IKEv2 only"),
        ("  leftauth=psk\n  rightauth=pubkey\n",
         "leftauth= and rightauth= differ: IKEv1 authenticates both ends the same way"),
        ("  rightauth=eap-mschapv2\n", "rightauth=eap-mschapv2 is not yet supported (fswan authenticates "
         "with psk or RSA keys)"),
        ("  leftsubnet=198.51.100.0/25,198.51.100.128/25\n", None),
        ("  rightsourceip=%poolname\n", "rightsourceip=%poolname: named address pools (strongSwan attr-sql) are not "
         "supported; write the pool as a range or CIDR"),
        ("  authby=ecdsasig\n", "authby=ecdsasig needs a certificate (leftcert=): raw ECDSA keys are "
         "not supported"),
        ("  ike=aes256gcm16-prfsha384-ecp384\n", "ike=aes256gcm16-prfsha384-ecp384: "
         "AES_GCM_16_256-PRF_HMAC_SHA2_384-ECP384: AES_GCM_16 is IKEv2 only, and this conn may use IKEv1 "
         "(set keyexchange=ikev2 or ikev2=insist)"),
        ("  ikev2=propose\n  ike=aes128-sha256-prfsha384-ecp256\n", "ike=aes128-sha256-prfsha384-ecp256: "
         "AES_CBC_128-HMAC_SHA2_256-PRF_HMAC_SHA2_384-ECP256: a PRF other than the hash's HMAC "
         "(PRF_HMAC_SHA2_384) is IKEv2 only, and this conn may use IKEv1 (set keyexchange=ikev2 or ikev2=insist)"),
    ])
    def test_conn_refused_alone(self, line, reason):
        config = parse_config(self.base(line) + "conn b\n  left=192.0.2.1\n  right=192.0.2.3\n  auto=add\n", "x")
        assert list(config.conns) == ["b"]
        if reason is not None:
            assert config.refused["a"].reason == reason

    @pytest.mark.parametrize("ike", ["aes256gcm16-prfsha256-modp2048", "aes_gcm_16_256-prfsha256-ecp256",
                                     "chacha20poly1305-prfsha256-curve25519", "aes128-sha256-prfsha384-ecp256"])
    def test_ikev2_only_proposals_load_on_an_ikev2_only_conn(self, ike):
        config = parse_config(self.base(f"  keyexchange=ikev2\n  ike={ike}\n"), "x")
        assert list(config.conns) == ["a"] and not config.refused

    def test_authby_comma_list(self):
        config = parse_config(self.base("  authby=rsasig,secret\n"), "x")
        assert config.conns["a"].authby is AuthBy.SECRET_OR_RSASIG

    def test_fragments_are_refused_quietly(self):
        config = parse_config("version 2\nconn a\n  auto=add\n  also=b\nconn b\n  authby=eaponly\n"
                              "  left=192.0.2.1\n  right=192.0.2.2\n", "x")
        assert set(config.refused) == {"a", "b"}
        assert [str(w) for w in config.warnings] == [
            'x:6: conn "a" not loaded: authby=eaponly: EAP is IKEv2 only']

    def test_suggestions_only_when_close(self):
        with pytest.raises(ConfigErrors) as info:
            parse_config(self.base("  rightsubnett=10.0.0.0/8\n  closeactoin=x\n  foo=1\n"), "x")
        assert [e.message for e in info.value.errors] == [
            "unknown keyword 'rightsubnett' in conn \"a\"; did you mean 'rightsubnet'?",
            "unknown keyword 'closeactoin' in conn \"a\"; did you mean 'closeaction'?",
            "unknown keyword 'foo' in conn \"a\"",
        ]


class TestHostNames:
    TEXT = ("version 2\nconn a\n  left=192.0.2.1\n  right=vpn.example.com\n  rightnexthop=gw.example.net\n"
            "  rightid=vpn.example.com\n  auto=add\n")

    def test_names_are_listed_and_resolved(self):
        config = parse_config(self.TEXT, "x.conf")
        conn = config.conns["a"]
        assert needed_names(conn) == ["vpn.example.com", "gw.example.net"]
        assert [(c, str(h), str(h.location)) for c, h in config_host_names(config)] == [
            ("a", "right=vpn.example.com", "x.conf:4"),
            ("a", "rightnexthop=gw.example.net", "x.conf:5"),
            ("a", "rightid=vpn.example.com", "x.conf:6"),
        ]
        answers = {"vpn.example.com": [ip_address("2001:db8::9"), ip_address("203.0.113.9")],
                   "gw.example.net": [ip_address("203.0.113.254")]}
        resolved = resolve_hosts(conn, answers)
        # the family follows the other end (IPv4 here)
        assert resolved.right.host == "203.0.113.9" and resolved.right.id == "203.0.113.9"
        assert resolved.right.nexthop == "203.0.113.254" and not resolved.right.needs_dns
        assert needed_names(resolved) == []

    def test_unresolvable_name_refuses_with_plutos_message(self):
        conn = parse_config(self.TEXT, "x.conf").conns["a"]
        with pytest.raises(ResolveError) as info:
            resolve_hosts(conn, {"gw.example.net": [ip_address("203.0.113.254")]})
        assert str(info.value) == (
            f'x.conf:4: "a": right=vpn.example.com: {LOOKUP_FAILED} "vpn.example.com"')

    def test_orient_refuses_an_unresolved_name(self):
        conn = parse_config(self.TEXT, "x.conf").conns["a"]
        iface = IpsecInterface("ipsec0", "eth0", ip_address("192.0.2.1"))
        with pytest.raises(OrientationError) as info:
            orient(conn, [iface], None)
        assert "vpn.example.com is a host name not yet resolved" in str(info.value)

    def test_checkconfig_says_which_names(self):
        lines = format_checkconfig(parse_config(self.TEXT, "x.conf"))
        assert "#\tx.conf:4: conn \"a\": right=vpn.example.com" in lines


class TestHelp:
    @pytest.mark.parametrize("argv", [["checkconfig", "--help"], ["checkconfig", "-h"], ["auto", "-h"],
                                      ["auto", "--help"], ["manual", "-h"], ["eroute", "--help"],
                                      ["look", "-h"], ["rsasigkey", "-h"], ["showhostkey", "-h"],
                                      ["newhostkey", "--help"], ["whack", "-h"]])
    def test_help_prints_usage_and_exits_0(self, argv, capsys):
        assert ipsec_cli.main(argv) == 0
        out = capsys.readouterr()
        assert "Usage" in out.out or "usage" in out.out.lower()
        assert out.err == ""

    def test_whack_help(self, capsys):
        assert whack_cli.main(["-h"]) == 0 and whack_cli.main(["--help"]) == 0
        assert "Usage: whack" in capsys.readouterr().out

    def test_checkconfig_on_the_corpus(self, capsys):
        status = ipsec_cli.main(["checkconfig", "--config", str(CORPUS / "libreswan4.conf"),
                                 "--secrets", "/nonexistent/ipsec.secrets"])
        out = capsys.readouterr()
        assert status == 1 and "cannot read /nonexistent/ipsec.secrets" in out.err
        assert ipsec_cli.main(["checkconfig", "--config", str(CORPUS / "libreswan4.conf")]) == 0
        out = capsys.readouterr().out
        assert "conn v2-only" in out and "\tikev2=insist" in out and "not loaded" not in out
        assert "right=branch.example.org" in out
