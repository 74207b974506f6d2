"""Peer keys that do not come from ipsec.conf: ``%dns*`` keys handed in by the shell,
and ``rightrsasigkey2=`` for key rollover."""

from fswan.config.ids import parse_id
from fswan.config.keys import load_public_key
from fswan.config.model import AuthBy
from fswan.ike.events import PeerKeyNeeded, WhackDone
from tests.ike_pair import KEYS, conn, make_pair, rsa_pubkey, rsa_secrets
from tests.unit.test_ike_engine_modes import check_up


def rsa_conn(**keys):
    options = dict(leftrsasigkey=rsa_pubkey("west"), rightrsasigkey=rsa_pubkey("east"))
    options.update(keys)
    return conn(authby=AuthBy.RSASIG, leftid="@west", rightid="@east", **options)


def public(side: str):
    return load_public_key((KEYS / f"{side}.pub").read_text())


def dns_pair(west_key="%dnsondemand", east_key=None):
    west_conn = rsa_conn(rightrsasigkey=west_key)
    east_conn = rsa_conn(leftrsasigkey=east_key) if east_key else rsa_conn()
    return make_pair(west_conn, east_conn, west_secrets=rsa_secrets("west"),
                     east_secrets=rsa_secrets("east"))


def test_initiator_holds_the_message_until_the_shell_brings_the_key():
    pair = dns_pair()
    assert pair.west.engine.peer_key_source("net") == "%dnsondemand"
    pair.initiate()
    (needed,) = pair.west.of(PeerKeyNeeded)
    assert (needed.conn, str(needed.identity)) == ("net", "@east")
    assert "fetching the public key of '@east' (DNS)" in pair.west.text()
    assert pair.west.installed == []
    # the lookup answers (a second key for the ID is fine: any may sign)
    pair.west.engine.set_peer_keys(parse_id("@east"), [public("west"), public("east")], pair.now)
    pair.transfer()
    check_up(pair)


def test_responder_holds_main_mode_3_until_the_key_arrives():
    pair = dns_pair(west_key=rsa_pubkey("east"), east_key="%dnsonload")
    pair.initiate()
    (needed,) = pair.east.of(PeerKeyNeeded)
    assert str(needed.identity) == "@west"
    pair.east.engine.set_peer_keys(parse_id("@west"), [public("west")], pair.now)
    pair.transfer()
    check_up(pair)


def test_failed_lookup_refuses_the_held_message():
    pair = dns_pair()
    pair.initiate()
    pair.west.engine.set_peer_keys(parse_id("@east"), [], pair.now)
    pair.transfer()
    assert "no RSA public key known for '@east'" in pair.west.text()
    pair.run(200)
    assert pair.west.installed == []
    assert WhackDone("whack", False) in pair.west.whack_done
    assert len(pair.west.of(PeerKeyNeeded)) == 1  # a failed ID is not asked for again


def test_dns_keys_of_another_id_are_not_used():
    pair = dns_pair(west_key="%dns")
    pair.west.engine.set_peer_keys(parse_id("@someone-else"), [public("east")])
    pair.initiate()
    assert [str(n.identity) for n in pair.west.of(PeerKeyNeeded)] == ["@east"]
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
