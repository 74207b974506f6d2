"""etc/'s road-warrior example (XAUTH PSK server with a pool, Aggressive and Main Mode)
is what ``ipsec checkconfig`` accepts, and means what its comments say."""

from __future__ import annotations

from ipaddress import ip_address
from pathlib import Path

from fswan.cli.ipsec import checkconfig
from fswan.config import roadwarrior as rw
from fswan.config.ids import parse_id
from fswan.config.ipsecconf import parse_config
from fswan.config.secrets import parse_secrets
from tests.ike_pair import oriented

ETC = Path(__file__).resolve().parents[2] / "etc"
CONF = ETC / "ipsec.conf.roadwarrior-xauth"
SECRETS = ETC / "ipsec.secrets.roadwarrior-xauth"


def test_checkconfig_accepts_them(capsys):
    assert checkconfig(["--config", str(CONF), "--secrets", str(SECRETS)]) == 0
    out = capsys.readouterr().out
    for line in ("leftxauthserver=yes", "rightaddresspool=198.51.100.200-198.51.100.220",
                 "modecfgdns=198.51.100.53", "rightid=@[vpngroup]", "aggrmode=yes",
                 "XAUTH alice", "XAUTH bob"):
        assert line in out, line
    assert "not yet supported" not in out and "not loaded" not in out
    assert "password" not in out and "not-secret" not in out


def test_the_conns_are_xauth_and_mode_config_servers():
    config = parse_config(CONF.read_text(), str(CONF))
    assert list(config.conns) == ["xauth-common", "xauth-aggressive", "xauth-main"]
    for name in ("xauth-aggressive", "xauth-main"):
        o = oriented(config.conns[name], "192.0.2.1")
        assert rw.xauth_server(o) and rw.modecfg_server(o)
        assert not rw.xauth_client(o) and not rw.modecfg_client(o)
        pool = rw.address_pool(o)
        assert pool is not None and pool.size == 21 and ip_address("198.51.100.200") in pool
    assert config.conns["xauth-aggressive"].aggrmode and not config.conns["xauth-main"].aggrmode


def test_the_secrets_have_the_group_psk_and_the_users():
    secrets = parse_secrets(SECRETS.read_text(), str(SECRETS))
    group = secrets.find_psk(parse_id("192.0.2.1"), parse_id("@[vpngroup]"))
    assert group is not None and group.location.line == 5
    anyone = secrets.find_psk(parse_id("192.0.2.1"), parse_id("203.0.113.7"))
    assert anyone is not None and anyone.location.line == 7
    assert secrets.find_xauth("alice") == b"alice-example-password"
    assert secrets.find_xauth("bob") == b"bob-example-password"
