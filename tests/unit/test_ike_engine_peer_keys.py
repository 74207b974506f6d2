"""Peer keys that do not come from ipsec.conf: ``%dns*`` keys handed in by the shell,
and ``rightrsasigkey2=`` for key rollover."""

from fswan.config.ids import parse_id
from fswan.config.keys import load_public_key
from fswan.config.model import AuthBy
from fswan.ike.events import WhackDone
from tests.ike_pair import KEYS, conn, make_pair, rsa_pubkey, rsa_secrets
from tests.unit.test_ike_engine_modes import check_up


def rsa_conn(**keys):
    options = dict(leftrsasigkey=rsa_pubkey("west"), rightrsasigkey=rsa_pubkey("east"))
    options.update(keys)
    return conn(authby=AuthBy.RSASIG, leftid="@west", rightid="@east", **options)


def public(side: str):
    return load_public_key((KEYS / f"{side}.pub").read_text())


def test_dns_key_unknown_fails_then_key_from_the_shell_works():
    # west only knows east's key through "DNS": rightrsasigkey=%dnsondemand
    west_conn = rsa_conn(rightrsasigkey="%dnsondemand")
    pair = make_pair(west_conn, rsa_conn(), west_secrets=rsa_secrets("west"),
                     east_secrets=rsa_secrets("east"))
    assert pair.west.engine.peer_key_source("net") == "%dnsondemand"
    pair.initiate()
    assert "no RSA public key known for '@east'" in pair.west.text()
    pair.run(200)
    assert WhackDone("whack", False) in pair.west.whack_done

    pair = make_pair(west_conn, rsa_conn(), west_secrets=rsa_secrets("west"),
                     east_secrets=rsa_secrets("east"))
    pair.west.engine.set_peer_keys(parse_id("@east"), [public("west"), public("east")])
    pair.initiate()
    check_up(pair)


def test_dns_keys_of_another_id_are_not_used():
    west_conn = rsa_conn(rightrsasigkey="%dns")
    pair = make_pair(west_conn, rsa_conn(), west_secrets=rsa_secrets("west"),
                     east_secrets=rsa_secrets("east"))
    pair.west.engine.set_peer_keys(parse_id("@someone-else"), [public("east")])
    pair.initiate()
    assert "no RSA public key known for '@east'" in pair.west.text()
    assert pair.west.installed == []


def test_rsasigkey2_rollover():
    # east rolled to a new key: west lists the old (wrong) one first and the new one second
    from dataclasses import replace

    base = rsa_conn(rightrsasigkey=rsa_pubkey("west"))
    west_conn = replace(base, right=replace(base.right, rsasigkey2=rsa_pubkey("east")))
    pair = make_pair(west_conn, rsa_conn(), west_secrets=rsa_secrets("west"),
                     east_secrets=rsa_secrets("east"))
    pair.initiate()
    check_up(pair)
