"""ID_KEY_ID identities (the iOS/Cisco "group name"): config, secrets and both Phase 1 modes."""

from __future__ import annotations

from dataclasses import replace

import pytest

from fswan.config.ids import IdError, IdKind, parse_id
from fswan.ike.engine import IkeEngine
from fswan.ike.main_mode import id_payload, identity_of
from fswan.ike.state import ExchangeError
from fswan.isakmp.constants import IdType, NotifyType
from fswan.isakmp.payloads import IDPayload
from tests.ike_pair import (
    EAST,
    EAST_NET,
    WEST,
    Pair,
    conn,
    make_pair,
    mirrored,
    oriented,
    psk_secrets,
    seeded,
)

GROUP = b"vpngroup"


@pytest.mark.parametrize("text", ["@#76706e67726f7570", "@#0x76706E67726F7570", "@[vpngroup]",
                                  "keyid:vpngroup", "keyid:#76706e67726f7570", "KEYID:vpngroup"])
def test_every_spelling_is_one_identity(text):
    identity = parse_id(text)
    assert identity.kind is IdKind.KEY_ID and identity.key_id == GROUP
    assert str(identity) == "@[vpngroup]" and parse_id(str(identity)) == identity


def test_unprintable_key_id_prints_as_hex_and_reads_back():
    identity = parse_id("@#00ff20")
    assert str(identity) == "@#00ff20" and parse_id(str(identity)) == identity
    assert str(parse_id("keyid:a b")) == "@#612062"  # a space is not shown bare


@pytest.mark.parametrize("text", ["@#", "@#abc", "@#zz", "@[]", "keyid:", "keyid:#"])
def test_bad_key_ids_say_why(text):
    with pytest.raises(IdError, match="key ID"):
        parse_id(text)


def test_id_payload_round_trip():
    payload = id_payload(parse_id("@[vpngroup]"))
    assert (payload.id_type, payload.data, payload.protocol, payload.port) == (
        IdType.ID_KEY_ID, GROUP, 0, 0)
    assert identity_of(payload) == parse_id("keyid:vpngroup")


def test_any_bytes_are_a_key_id_but_never_printed_raw():
    identity = identity_of(IDPayload(IdType.ID_KEY_ID, b"\x1b[2Jgroup\x00"))
    assert str(identity) == "@#1b5b324a67726f757000"
    with pytest.raises(ExchangeError) as error:
        identity_of(IDPayload(IdType.ID_KEY_ID, b""))
    assert error.value.notify == NotifyType.INVALID_ID_INFORMATION


def test_secrets_selectors():
    secrets = psk_secrets('@#76706e67726f7570 : PSK "group-secret"\n'
                          'keyid:other 192.0.2.2 : PSK "other"\n')
    first, second = secrets.entries
    assert first.ids == (parse_id("@[vpngroup]"),)
    assert second.ids[0].kind is IdKind.KEY_ID and second.ids[0].key_id == b"other"


def warrior(ident: str, **options):
    return conn("grp", leftid=ident, leftsubnet=None, **options)


def gateway(ident: str, **options):
    return conn("grp", left="%any", leftid=ident, leftsubnet=None, **options)


@pytest.mark.parametrize("aggressive", [True, False])
def test_key_id_road_warrior(aggressive):
    """The client names itself keyid:vpngroup; the gateway wrote @[vpngroup] and keys the PSK
    by @#hex: all one identity.  Aggressive Mode is the iOS case (ID in the first message)."""
    west_secrets = psk_secrets(f'keyid:vpngroup {EAST} : PSK "group-not-secret"\n')
    east_secrets = psk_secrets(
        f'@#76706e67726f7570 {EAST} : PSK "group-not-secret"\n'
        if aggressive else f'{EAST} %any : PSK "group-not-secret"\n')
    pair = make_pair(warrior("keyid:vpngroup", aggrmode=aggressive),
                     gateway("@[vpngroup]", aggrmode=aggressive),
                     west_secrets=west_secrets, east_secrets=east_secrets)
    pair.initiate("grp")
    (west,), (east,) = pair.west.installed, pair.east.installed
    assert mirrored(west, east) and str(east.local_client) == EAST_NET
    assert str(pair.east.isakmp_up[0].peer_id) == "@[vpngroup]"
    assert [d["peer_id"] for d in pair.east.engine.state_dicts(pair.now)] == ["@[vpngroup]"] * 2
    assert [d["peer_id"] for d in pair.west.engine.state_dicts(pair.now)] == [EAST] * 2


def test_aggressive_mode_selects_the_conn_by_key_id():
    """Two %any conns told apart by the group name the client sends in AI1."""
    secrets = psk_secrets(f'keyid:sales {EAST} : PSK "sales-psk"\n'
                          f'keyid:staff {EAST} : PSK "staff-psk"\n')
    west = IkeEngine(secrets, random_bytes=seeded(1))
    west.add_connection(oriented(warrior("keyid:staff", aggrmode=True), WEST))
    east = IkeEngine(secrets, random_bytes=seeded(2))
    for group in ("sales", "staff"):
        east.add_connection(oriented(replace(gateway(f"keyid:{group}", aggrmode=True),
                                             name=group), EAST))
    pair = Pair(west, east)
    pair.initiate("grp")
    assert [e.conn for e in pair.east.installed] == ["staff"]


def test_wrong_group_is_refused():
    west_secrets = psk_secrets(f'keyid:intruders {EAST} : PSK "group-not-secret"\n')
    east_secrets = psk_secrets(f'keyid:vpngroup {EAST} : PSK "group-not-secret"\n')
    pair = make_pair(warrior("keyid:intruders", aggrmode=True, keyingtries=1),
                     gateway("keyid:vpngroup", aggrmode=True),
                     west_secrets=west_secrets, east_secrets=east_secrets)
    pair.initiate("grp")
    assert pair.west.installed == pair.east.installed == []
    assert "@[intruders]" in pair.east.text()
