"""IKEv2 in the engine, two engines in memory: authentication, suites, selectors, NAT,
deletes, and IKEv1 beside IKEv2 (tests/ike_pair.py moves the bytes)."""

from __future__ import annotations

from ipaddress import ip_network

import pytest

from fswan.config.model import AuthBy, Ikev2Policy
from fswan.ike.engine import IkeEngine
from fswan.ike.events import WhackDone
from fswan.ike.state import StateKind
from fswan.ikev2.constants import ExchangeType, NotifyType
from fswan.ikev2.message import Message, decode_message
from fswan.ikev2.payloads import Delete, KeyExchange, Notify
from fswan.ikev2.sa import ChildSa, IkeSa
from fswan.isakmp.message import NON_ESP_MARKER
from tests.ike_pair import (
    EAST,
    NAT_PUBLIC,
    WEST,
    Nat,
    Pair,
    Wire,
    conn,
    lab_secrets,
    make_pair,
    mirrored,
    oriented,
    psk_secrets,
    rsa_pubkey,
    rsa_secrets,
    seeded,
)

V2 = {"ikev2": Ikev2Policy.INSIST}


def v2(name: str = "net", **options) -> object:
    return conn(name, **{**V2, **options})


def decode(wire: Wire) -> Message:
    data = wire.data[4:] if wire.data.startswith(NON_ESP_MARKER) else wire.data
    return decode_message(data)


def exchanges(pair: Pair, start: int = 0) -> list[tuple[str, int, int, bool]]:
    """(sender, exchange, message ID, response) of each IKE datagram on the wire."""
    out = []
    for wire in pair.wire[start:]:
        if wire.data == b"\xff":
            continue
        header = decode(wire).header
        out.append((wire.sender, header.exchange, header.message_id, header.is_response))
    return out


def established(pair: Pair, conn_name: str = "net") -> tuple[IkeSa, IkeSa]:
    """West's and east's one established IKE SA of ``conn_name``."""
    found = []
    for ep in pair.endpoints:
        (ike,) = [s for s in ep.engine.table.states.values()
                  if isinstance(s, IkeSa) and s.kind is StateKind.V2_ESTABLISHED_IKE_SA
                  and s.conn_name == conn_name]
        found.append(ike)
    return found[0], found[1]


def opened(pair: Pair, wire: Wire) -> Message:
    """A protected message on the wire, decrypted with the receiving side's IKE SA."""
    ep = pair.east if wire.sender == "west" else pair.west
    header = decode(wire).header
    ike = ep.engine.table.by_cookies[header.spis]
    data = wire.data[4:] if wire.data.startswith(NON_ESP_MARKER) else wire.data
    return ike.open(data)


def up_once(pair: Pair, initiator: str = "west") -> None:
    (west,), (east,) = pair.west.installed, pair.east.installed
    assert mirrored(west, east)
    ep = pair.west if initiator == "west" else pair.east
    assert ep.whack_done == [WhackDone("whack", True)]
    for side in pair.endpoints:
        assert side.engine.counters["internal_error"] == 0
        assert [e.serial for e in side.isakmp_up] == [1]


# --------------------------------------------------------------------------
# 1. authentication, both directions


@pytest.mark.parametrize("initiator", ["west", "east"])
def test_psk_establishes_ike_and_child_sa(initiator):
    pair = make_pair(v2())
    pair.initiate(who=initiator)
    up_once(pair, initiator)
    ini, resp = (pair.west, pair.east) if initiator == "west" else (pair.east, pair.west)
    peer = EAST if initiator == "west" else WEST
    assert ini.lines[:3] == [
        '002 "net" #1: initiating IKEv2 connection',
        f'131 "net" #1: STATE_PARENT_I1: sent IKE_SA_INIT request to {peer}:500',
        '133 "net" #1: STATE_PARENT_I2: sent IKE_AUTH request',
    ]
    for ep in (ini, resp):
        text = ep.text()
        assert '004 "net" #1: STATE_V2_ESTABLISHED_IKE_SA: IKE SA established {auth=PSK ' in text
        assert '004 "net" #2: STATE_V2_ESTABLISHED_CHILD_SA: Child SA established {ESP=>' in text
    assert '132 "net" #1: STATE_PARENT_R1: sent IKE_SA_INIT reply' in resp.lines
    assert resp.whack_done == []
    # four messages, IKE_SA_INIT and IKE_AUTH, on port 500
    assert [(s == ini.name, x, m, r) for s, x, m, r in exchanges(pair)] == [
        (True, ExchangeType.IKE_SA_INIT, 0, False),
        (False, ExchangeType.IKE_SA_INIT, 0, True),
        (True, ExchangeType.IKE_AUTH, 1, False),
        (False, ExchangeType.IKE_AUTH, 1, True),
    ]
    west, east = established(pair)
    assert west.peer_id is not None and west.peer_id.value == EAST
    assert east.peer_id is not None and east.peer_id.value == WEST
    assert west.initiator == (initiator == "west") and east.initiator == (initiator == "east")
    (child,) = pair.west.installed
    assert (child.local_client, child.remote_client) == (
        ip_network("198.51.100.0/25"), ip_network("203.0.113.0/25"))
    assert child.mode == "tunnel" and not child.udp_encapsulated
    assert pair.west.engine.newest("net") == pair.east.engine.newest("net") == (1, 2)


def test_wrong_psk_is_authentication_failed_and_nothing_stays():
    other = psk_secrets(f'{WEST} {EAST} : PSK "not-the-lab-secret-9876543210"\n')
    pair = make_pair(v2(), east_secrets=other)
    pair.initiate()
    assert pair.west.installed == pair.east.installed == []
    assert pair.west.whack_done == [WhackDone("whack", False)]
    assert '003 "net" #1: IKE_AUTH response: AUTHENTICATION_FAILED' in pair.west.lines
    assert any("AUTHENTICATION_FAILED sent" in line for line in pair.east.lines)
    assert pair.west.engine.table.states == pair.east.engine.table.states == {}
    assert pair.west.isakmp_up == pair.east.isakmp_up == []
    pair.run(200)  # no retry: an authentication failure is final
    assert len(pair.wire) == 4


def test_rsa_raw_keys_establish():
    connection = v2(authby=AuthBy.RSASIG, leftrsasigkey=rsa_pubkey("west"),
                    rightrsasigkey=rsa_pubkey("east"))
    pair = make_pair(connection, west_secrets=rsa_secrets("west"),
                     east_secrets=rsa_secrets("east"))
    pair.initiate()
    up_once(pair)
    for ep in pair.endpoints:
        assert "IKE SA established {auth=RSASIG " in ep.text()


def test_rsa_with_the_wrong_peer_key_fails():
    west_view = v2(authby=AuthBy.RSASIG, leftrsasigkey=rsa_pubkey("west"),
                   rightrsasigkey=rsa_pubkey("west"))  # not east's key
    east_view = v2(authby=AuthBy.RSASIG, leftrsasigkey=rsa_pubkey("west"),
                   rightrsasigkey=rsa_pubkey("east"))
    pair = make_pair(west_view, east_view, west_secrets=rsa_secrets("west"),
                     east_secrets=rsa_secrets("east"))
    pair.initiate()
    assert pair.west.installed == []
    assert pair.west.whack_done == [WhackDone("whack", False)]
    assert any("AUTH of peer '192.0.2.2' does not verify" in line for line in pair.west.lines)
    assert pair.west.engine.table.states == {}


# --------------------------------------------------------------------------
# 2. suites


@pytest.mark.parametrize(
    "ike, esp, described, xfrm",
    [
        ("aes256gcm16-prfsha256-modp2048", "aes256gcm16",
         "AES_GCM_16_256/PRF_HMAC_SHA2_256/MODP_2048", "AES_GCM_16_256"),
        ("aes128-sha256-modp2048", "aes128-sha256",
         "AES_CBC_128/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048", "AES_CBC_128-HMAC_SHA2_256_128"),
        ("aes128-sha1-ecp256", "aes128-sha1",
         "AES_CBC_128/HMAC_SHA1_96/PRF_HMAC_SHA1/ECP_256", "AES_CBC_128-HMAC_SHA1_96"),
        ("chacha20poly1305-prfsha256-curve25519", "aes128gcm16",
         "CHACHA20_POLY1305/PRF_HMAC_SHA2_256/CURVE25519", "AES_GCM_16_128"),
        ("aes128-sha256-prfsha384-ecp384", "aes256-sha512",
         "AES_CBC_128/HMAC_SHA2_256_128/PRF_HMAC_SHA2_384/ECP_384", "AES_CBC_256-HMAC_SHA2_512_256"),
    ],
    ids=["gcm", "cbc", "ecp256", "curve25519", "prf-of-its-own"],
)
def test_suites(ike, esp, described, xfrm):
    pair = make_pair(v2(ike=ike, esp=esp))
    pair.initiate()
    up_once(pair)
    for ep in pair.endpoints:
        assert f"IKE SA established {{auth=PSK {described}}}" in ep.text()
        assert f"xfrm={xfrm} " in ep.lines[-1]
    assert pair.west.installed[0].inbound_keys != pair.west.installed[0].outbound_keys


def test_no_common_ike_proposal_is_no_proposal_chosen():
    pair = make_pair(v2(ike="aes128-sha1-modp2048"), v2(ike="aes256-sha256-ecp256"))
    pair.initiate()
    assert pair.west.installed == pair.east.installed == []
    assert pair.west.whack_done == [WhackDone("whack", False)]
    assert '003 "net" #1: IKE_SA_INIT response: NO_PROPOSAL_CHOSEN' in pair.west.lines
    assert any("no proposal chosen (we accept: AES_CBC_256/HMAC_SHA2_256_128/"
               "PRF_HMAC_SHA2_256/ECP_256)" in line for line in pair.east.lines)
    assert pair.east.engine.counters["no_proposal_chosen"] == 1
    assert pair.west.engine.table.states == pair.east.engine.table.states == {}
    answer = decode(pair.wire[1])
    assert [n.notify_type for n in answer.all(Notify)] == [NotifyType.NO_PROPOSAL_CHOSEN]


def test_no_common_esp_proposal_leaves_the_ike_sa_without_child():
    pair = make_pair(v2(esp="aes128-sha1"), v2(esp="aes256gcm16"))
    pair.initiate()
    assert pair.west.installed == pair.east.installed == []
    assert pair.west.whack_done == [WhackDone("whack", False)]
    assert ('003 "net" #1: IKE SA established but its first Child SA was refused: '
            "NO_PROPOSAL_CHOSEN") in pair.west.lines
    established(pair)  # both still have the IKE SA


def test_invalid_ke_payload_makes_the_initiator_retry_with_the_asked_group():
    pair = make_pair(v2(ike="aes128-sha256-modp2048,aes128-sha256-ecp256"),
                     v2(ike="aes128-sha256-ecp256"))
    pair.initiate()
    up_once(pair)
    assert pair.east.engine.counters["invalid_ke_sent"] == 1
    assert ('002 "net" #1: responder wants DH group ECP256: sending IKE_SA_INIT again'
            in pair.west.lines)
    first, refusal, second = (decode(w) for w in pair.wire[:3])
    assert [n.notify_type for n in refusal.all(Notify)] == [NotifyType.INVALID_KE_PAYLOAD]
    assert refusal.all(Notify)[0].data == (19).to_bytes(2, "big")
    assert first.get(KeyExchange).group == 14  # type: ignore[union-attr]
    assert second.get(KeyExchange).group == 19  # type: ignore[union-attr]
    assert first.header.spi_i == second.header.spi_i  # the same IKE SA tries again
    assert "IKE SA established {auth=PSK AES_CBC_128/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/ECP_256}" \
        in pair.west.text()


# --------------------------------------------------------------------------
# 3. traffic selectors


def test_responder_narrows_a_wider_proposal():
    pair = make_pair(v2(leftsubnet="198.51.100.0/24"), v2())
    pair.initiate()
    up_once(pair)
    (west,), (east,) = pair.west.installed, pair.east.installed
    narrowed = ip_network("198.51.100.0/25")
    assert west.local_client == east.remote_client == narrowed
    assert west.remote_client == east.local_client == ip_network("203.0.113.0/25")


def test_disjoint_selectors_are_ts_unacceptable_and_keep_the_ike_sa():
    pair = make_pair(v2(leftsubnet="10.0.0.0/24"), v2())
    pair.initiate()
    assert pair.west.installed == pair.east.installed == []
    assert pair.west.whack_done == [WhackDone("whack", False)]
    assert ('003 "net" #1: IKE SA established but its first Child SA was refused: '
            "TS_UNACCEPTABLE") in pair.west.lines
    assert ('003 "net" #1: IKE SA established without a Child SA: TS_UNACCEPTABLE sent'
            in pair.east.lines)
    west, east = established(pair)
    assert pair.west.engine.table.children(west) == pair.east.engine.table.children(east) == []


def test_a_second_conn_gets_its_child_sa_over_the_same_ike_sa():
    west = IkeEngine(lab_secrets(), random_bytes=seeded(1))
    east = IkeEngine(lab_secrets(), random_bytes=seeded(2))
    for engine, address in ((west, WEST), (east, EAST)):
        engine.add_connection(oriented(v2("net"), address))
        engine.add_connection(oriented(v2("more", leftsubnet="198.51.100.128/25",
                                          rightsubnet="203.0.113.128/25"), address))
    pair = Pair(west, east)
    pair.initiate("net")
    pair.initiate("more")
    assert len(pair.west.installed) == len(pair.east.installed) == 2
    for a, b in zip(pair.west.installed, pair.east.installed):
        assert mirrored(a, b)
    assert {e.conn for e in pair.west.installed} == {"net", "more"}
    # one IKE SA on each side: the second Child SA came by CREATE_CHILD_SA
    assert [x for _, x, _, r in exchanges(pair) if not r] == [
        ExchangeType.IKE_SA_INIT, ExchangeType.IKE_AUTH, ExchangeType.CREATE_CHILD_SA]
    more = [e for e in pair.west.installed if e.conn == "more"][0]
    assert more.local_client == ip_network("198.51.100.128/25")
    assert pair.west.whack_done == [WhackDone("whack", True)] * 2


# --------------------------------------------------------------------------
# 7. deletes


def test_terminate_sends_one_delete_and_the_peer_drops_everything():
    pair = make_pair(v2())
    pair.initiate()
    start = len(pair.wire)
    pair.west.engine.terminate("net", pair.now, "term")
    pair.transfer()
    assert exchanges(pair, start) == [
        ("west", ExchangeType.INFORMATIONAL, 2, False),
        ("east", ExchangeType.INFORMATIONAL, 2, True),
    ]
    assert pair.west.engine.table.states == pair.east.engine.table.states == {}
    assert [(e.serial, e.reason) for e in pair.east.deleted] == [(2, "deleted by peer")]
    assert [(e.serial, e.reason) for e in pair.east.isakmp_down] == [(1, "deleted by peer")]
    assert [(e.serial, e.reason) for e in pair.west.deleted] == [(2, "terminated")]
    assert '002 "net" #1: received Delete SA payload: deleting IKE SA #1' in pair.east.lines
    assert pair.west.whack_done[-1] == WhackDone("term", True)
    pair.run(300)  # nothing comes back
    assert pair.west.installed[-1:] == pair.west.installed[:1]


def test_deleting_a_child_sa_only_deletes_that_child_on_the_peer():
    pair = make_pair(v2())
    pair.initiate()
    start = len(pair.wire)
    assert pair.west.engine.delete_state(2, pair.now)
    pair.transfer()
    request, answer = pair.wire[start:]
    (delete,) = opened(pair, request).all(Delete)
    (child,) = pair.west.installed
    assert delete.spis == (child.inbound_spi.to_bytes(4, "big"),)
    (delete,) = opened(pair, answer).all(Delete)  # the other half, from east
    assert delete.spis == (child.outbound_spi.to_bytes(4, "big"),)
    assert [e.serial for e in pair.east.deleted] == [e.serial for e in pair.west.deleted] == [2]
    west, east = established(pair)
    assert west.outstanding is None  # the answer was matched to the Delete
    assert pair.east.isakmp_down == pair.west.isakmp_down == []
    assert '002 "net" #2: received Delete SA payload: deleting IPsec State #2' in pair.east.lines
    # the IKE SA still carries new Child SAs
    pair.initiate()
    assert len(pair.west.installed) == len(pair.east.installed) == 2
    assert mirrored(pair.west.installed[1], pair.east.installed[1])


def test_the_responder_terminating_deletes_the_initiators_sas():
    pair = make_pair(v2())
    pair.initiate()
    pair.east.engine.terminate("net", pair.now)
    pair.transfer()
    assert pair.west.engine.table.states == pair.east.engine.table.states == {}
    assert [e.reason for e in pair.west.deleted] == ["deleted by peer"]


# --------------------------------------------------------------------------
# 8. NAT


PRIVATE = "198.51.100.130"  # west's address behind the NAPT


def natted_pair(**options) -> Pair:
    secrets = psk_secrets(f'@west {EAST} : PSK "natted-not-secret"\n')
    west = v2(left=PRIVATE, leftid="@west", **options)
    east = v2(left=NAT_PUBLIC, leftid="@west", **options)
    nat = Nat(PRIVATE, NAT_PUBLIC, {500: 1500, 4500: 14500})
    return make_pair(west, east, west_secrets=secrets, east_secrets=secrets,
                     west_addr=PRIVATE, nat=nat)


def test_behind_nat_both_float_to_4500_and_encapsulate():
    pair = natted_pair()
    pair.initiate()
    up_once(pair)
    ports = [(w.sender, w.sport, w.dport) for w in pair.wire]
    assert ports == [("west", 1500, 500), ("east", 500, 1500),
                     ("west", 14500, 4500), ("east", 4500, 14500)]
    assert all(w.data.startswith(NON_ESP_MARKER) for w in pair.wire[2:])
    (west,), (east,) = pair.west.installed, pair.east.installed
    assert west.udp_encapsulated and east.udp_encapsulated
    assert (west.local_port, west.remote_port) == (4500, 4500)
    assert (str(east.remote_addr), east.remote_port) == (NAT_PUBLIC, 14500)
    assert "ESP/NAT=>" in pair.west.lines[-1] and "NATD=192.0.2.3:14500" in pair.east.lines[-1]
    w_ike, e_ike = established(pair)
    assert w_ike.nat_us and not w_ike.nat_peer
    assert e_ike.nat_peer and not e_ike.nat_us


def test_natted_side_sends_keepalives():
    pair = natted_pair()
    pair.initiate()
    pair.run(65)
    keepalives = [w for w in pair.wire if w.data == b"\xff"]
    assert [(w.sender, w.sport, w.dport, w.dst) for w in keepalives] == [
        ("west", 14500, 4500, EAST)] * 3
    assert pair.east.engine.counters["keepalives_received"] == 3


def test_no_nat_no_float_no_encapsulation():
    pair = make_pair(v2())
    pair.initiate()
    assert {(w.sport, w.dport) for w in pair.wire} == {(500, 500)}
    assert not pair.west.installed[0].udp_encapsulated
    pair.run(65)
    assert not [w for w in pair.wire if w.data == b"\xff"]


# --------------------------------------------------------------------------
# 12. IKEv1 and IKEv2 side by side


def test_ikev1_and_ikev2_conns_between_the_same_engines():
    west = IkeEngine(lab_secrets(), random_bytes=seeded(1))
    east = IkeEngine(lab_secrets(), random_bytes=seeded(2))
    old = conn("v1", ike="aes128-sha1-modp2048", esp="aes128-sha1", ikev2=Ikev2Policy.NEVER)
    new = v2("v2", leftsubnet="198.51.100.128/25", rightsubnet="203.0.113.128/25")
    for engine, address in ((west, WEST), (east, EAST)):
        engine.add_connection(oriented(old, address))
        engine.add_connection(oriented(new, address))
    pair = Pair(west, east)
    pair.initiate("v1")
    pair.initiate("v2")
    pair.run(60)
    assert len(pair.west.installed) == len(pair.east.installed) == 2
    for a, b in zip(pair.west.installed, pair.east.installed):
        assert a.conn == b.conn and mirrored(a, b)
    for ep in pair.endpoints:
        kinds = {s.conn_name: s.kind for s in ep.engine.table.states.values()
                 if s.kind.is_isakmp_established}
        assert kinds["v1"] in (StateKind.MAIN_I4, StateKind.MAIN_R3)
        assert kinds["v2"] is StateKind.V2_ESTABLISHED_IKE_SA
        assert len([s for s in ep.engine.table.states.values() if isinstance(s, ChildSa)]) == 1
    assert pair.west.whack_done == [WhackDone("whack", True)] * 2
    # and each goes down on its own
    pair.west.engine.terminate("v2", pair.now)
    pair.transfer()
    for ep in pair.endpoints:
        assert {s.conn_name for s in ep.engine.table.states.values()} == {"v1"}


def test_the_responders_ike_sa_belongs_to_the_conn_of_its_first_child_sa():
    west = IkeEngine(lab_secrets(), random_bytes=seeded(1))
    east = IkeEngine(lab_secrets(), random_bytes=seeded(2))
    old = conn("v1", ike="aes128-sha1-modp2048", esp="aes128-sha1")  # ikev2=permit
    new = v2("v2", leftsubnet="198.51.100.128/25", rightsubnet="203.0.113.128/25")
    for engine, address in ((west, WEST), (east, EAST)):
        engine.add_connection(oriented(old, address))
        engine.add_connection(oriented(new, address))
    pair = Pair(west, east)
    pair.initiate("v1")
    pair.initiate("v2")
    assert len(pair.east.installed) == 2
    (ike,) = [s for s in east.table.states.values() if isinstance(s, IkeSa)]
    assert ike.conn_name == "v2"
    assert east.newest("v1")[0] != ike.serial
