"""XAUTH and Mode Config keywords (issue 13): the parser's model and the roles
``fswan.config.roadwarrior`` reads from an oriented conn."""

from __future__ import annotations

from ipaddress import ip_address

import pytest

from fswan.config import roadwarrior as rw
from fswan.config.ipsecconf import parse_config
from fswan.config.model import AddressRange, AuthBy
from tests.ike_pair import oriented

GW, PEER = "192.0.2.1", "203.0.113.7"


def config(body: str, extra: str = ""):
    text = f"version 2\n{extra}conn rw\n  left={GW}\n  right=%any\n  authby=secret\n  auto=add\n"
    text += "".join(f"  {line.strip()}\n" for line in body.strip().splitlines())
    return parse_config(text, "ipsec.conf")


def conn(body: str):
    parsed = config(body)
    assert not parsed.refused, parsed.refused
    return parsed.conns["rw"]


def both(body: str):
    """The conn oriented on the gateway (left=GW) and on a client (the other end)."""
    text = f"""version 2
conn rw
  left={GW}
  right={PEER}
  authby=secret
  auto=add
""" + "".join(f"  {line.strip()}\n" for line in body.strip().splitlines())
    c = parse_config(text, "ipsec.conf").conns["rw"]
    return oriented(c, GW), oriented(c, PEER)


class TestParsing:
    def test_defaults(self):
        c = conn("")
        assert (c.left.xauthserver, c.left.xauthclient, c.left.modecfgserver, c.left.modecfgclient) == (
            False, False, False, False)
        assert c.right.addresspool is None and c.right.xauthusername is None
        assert (c.modecfgpull, c.modecfgdns, c.modecfgdomains, c.modecfgbanner) == (False, (), (), None)
        assert (c.xauthby, c.xauthfail, c.xauth_role, c.xauth_identity) == ("file", "hard", None, None)
        assert c.unsupported == ()

    def test_libreswan_server(self):
        c = conn("""
            leftxauthserver=yes
            leftmodecfgserver=yes
            rightxauthclient=yes
            rightmodecfgclient=yes
            rightaddresspool=198.51.100.200-198.51.100.220
            modecfgdns=198.51.100.53,198.51.100.54
            modecfgdns2=198.51.100.55
            modecfgdomain="example.net corp.example.net"
            modecfgbanner="Authorised users only"
            xauthby=alwaysok
            xauthfail=soft
            modecfgpull=yes
        """)
        assert c.left.xauthserver and c.left.modecfgserver and c.right.xauthclient and c.right.modecfgclient
        assert c.right.addresspool == AddressRange(ip_address("198.51.100.200"), ip_address("198.51.100.220"))
        assert c.modecfgdns == tuple(ip_address(f"198.51.100.{n}") for n in (53, 54, 55))
        assert c.modecfgdomains == ("example.net", "corp.example.net")
        assert c.modecfgbanner == "Authorised users only"
        assert (c.xauthby, c.xauthfail, c.modecfgpull) == ("alwaysok", "soft", True)
        assert c.unsupported == ()

    def test_dns_spellings_append_without_repeats(self):
        c = conn("modecfgdns1=198.51.100.53\nmodecfgdns2=198.51.100.54 198.51.100.53")
        assert c.modecfgdns == (ip_address("198.51.100.53"), ip_address("198.51.100.54"))

    @pytest.mark.parametrize("spelling", ["rightxauthusername", "rightusername", "rightxauthname"])
    def test_username_spellings(self, spelling):
        assert conn(f"{spelling}=alice").right.xauthusername == "alice"

    def test_pam_is_not_yet_supported(self):
        c = conn("xauthby=pam")
        assert c.xauthby == "pam" and c.unsupported == ("xauthby",)

    @pytest.mark.parametrize("authby, method", [("xauthpsk", AuthBy.SECRET), ("xauthrsasig", AuthBy.RSASIG)])
    def test_strongswan_authby(self, authby, method):
        c = conn(f"authby={authby}\nxauth=server")
        assert (c.authby, c.xauth_role) == (method, "server")
        assert conn(f"authby={authby}").xauth_role == "client"
        assert conn("xauth=server").xauth_role is None  # without an xauth* authby it means nothing

    def test_strongswan_sourceip(self):
        c = conn("rightsourceip=198.51.100.0/28\nleftsourceip=%config")
        assert c.left.modecfgclient and c.left.sourceip is None
        assert c.right.addresspool == AddressRange(ip_address("198.51.100.1"), ip_address("198.51.100.14"))
        assert c.right.sourceip is None
        explicit = conn("rightsourceip=198.51.100.0/28\nrightaddresspool=198.51.100.100-198.51.100.101")
        assert explicit.right.addresspool.size == 2

    def test_strongswan_modeconfig_and_identity(self):
        assert conn("modeconfig=pull").modecfgpull is True
        assert conn("modeconfig=push").modecfgpull is False
        assert conn("modeconfig=pull\nmodecfgpull=no").modecfgpull is False
        assert conn("xauth_identity=bob").xauth_identity == "bob"

    @pytest.mark.parametrize("line, message", [
        ("rightaddresspool=198.51.100.20-198.51.100.10", "198.51.100.20 comes after 198.51.100.10"),
        ("rightaddresspool=198.51.100.1-2001:db8::1", "different address families"),
        ("modecfgdns=dns.example.net", "is not an address"),
        ("xauthfail=sometimes", "expected hard or soft"),
        ("xauthby=ldap", "expected file, pam or alwaysok"),
    ])
    def test_errors_name_file_and_line(self, line, message):
        from fswan.config.errors import ConfigErrors
        with pytest.raises(ConfigErrors) as info:
            config(line)
        (error,) = info.value.errors
        assert str(error).startswith("ipsec.conf:7: ") and message in str(error)

    def test_refused_sourceip_forms(self):
        parsed = config("rightsourceip=%poolname")
        assert "rw" in parsed.refused and "named address pools" in parsed.refused["rw"].reason


class TestRoles:
    def test_libreswan_pair_both_sides(self):
        gw, client = both("""
            leftxauthserver=yes
            leftmodecfgserver=yes
            rightxauthclient=yes
            rightmodecfgclient=yes
            rightaddresspool=198.51.100.200-198.51.100.220
            rightxauthusername=alice
        """)
        assert rw.xauth_server(gw) and not rw.xauth_client(gw)
        assert rw.modecfg_server(gw) and not rw.modecfg_client(gw)
        assert str(rw.address_pool(gw)) == "198.51.100.200-198.51.100.220"
        assert rw.xauth_client(client) and not rw.xauth_server(client)
        assert rw.modecfg_client(client) and not rw.modecfg_server(client)
        assert rw.address_pool(client) is None  # the shared file's pool is not ours to hand out
        assert rw.xauth_username(client) == "alice" and rw.uses_xauth(client)

    def test_one_side_flag_implies_the_other(self):
        gw, client = both("rightxauthclient=yes\nrightmodecfgclient=yes")
        assert rw.xauth_server(gw) and rw.modecfg_server(gw)
        gw, client = both("leftxauthserver=yes\nleftmodecfgserver=yes")
        assert rw.xauth_client(client) and rw.modecfg_client(client)

    def test_pool_on_the_servers_own_end(self):
        gw, _ = both("leftmodecfgserver=yes\nleftaddresspool=198.51.100.200-198.51.100.201")
        assert rw.address_pool(gw).size == 2

    def test_strongswan_roles(self):
        gw, client = both("authby=xauthpsk\nxauth=server\nrightsourceip=198.51.100.0/29")
        assert rw.xauth_server(gw) and not rw.xauth_client(gw)
        assert rw.modecfg_server(gw) and str(rw.address_pool(gw)) == "198.51.100.1-198.51.100.6"
        # a strongSwan client's own file: xauth= defaults to client, %config on its end
        ours, _ = both("authby=xauthpsk\nxauth_identity=bob\nleftsourceip=%config")
        assert rw.xauth_client(ours) and rw.modecfg_client(ours) and rw.xauth_username(ours) == "bob"
        assert not rw.modecfg_server(ours) and rw.address_pool(ours) is None

    def test_plain_conn_has_no_roles(self):
        gw, client = both("")
        for o in (gw, client):
            assert not (rw.xauth_server(o) or rw.xauth_client(o) or rw.modecfg_server(o)
                        or rw.modecfg_client(o) or rw.uses_xauth(o))
            assert rw.address_pool(o) is None and rw.xauth_username(o) is None
