"""IKEv2 under loss, duplication and reordering; cookies (RFC 7296 2.6); charon's captured
IKE_SA_INIT replayed into a responder; hostile datagrams into the receive path."""

from __future__ import annotations

import dataclasses
import os
import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fswan.config.model import Ikev2Policy
from fswan.ike.engine import IkeEngine
from fswan.ike.events import WhackDone
from fswan.ike.halfopen import DdosMode
from fswan.ike.state import StateKind
from fswan.ikev2.constants import GENERIC_HEADER_SIZE, HEADER_SIZE, ExchangeType, NotifyType
from fswan.ikev2.constants import PayloadType
from fswan.ikev2.crypto import _seal
from fswan.ikev2.message import Message, decode_message, encode_payloads, first_type
from fswan.ikev2.payloads import KeyExchange, Nonce, Notify, SecurityAssociation
from fswan.ikev2.sa import IkeSa
from tests.ike_pair import (
    EAST,
    WEST,
    Faults,
    Pair,
    conn,
    lab_secrets,
    make_pair,
    mirrored,
    oriented,
    seeded,
)
from tests.pcap import read_pcap
from tests.unit.test_ikev2_engine import decode, established, exchanges

V2 = {"ikev2": Ikev2Policy.INSIST}
INIT_I, INIT_R, AUTH_I, AUTH_R = range(4)


def v2(**options) -> object:
    return conn(**V2, **options)


def up_once(pair: Pair) -> None:
    (west,), (east,) = pair.west.installed, pair.east.installed
    assert mirrored(west, east)
    assert pair.west.whack_done == [WhackDone("whack", True)]
    for ep in pair.endpoints:
        assert [e.serial for e in ep.isakmp_up] == [1]
        assert ep.engine.counters["internal_error"] == 0
    west_ike, east_ike = established(pair)
    assert west_ike.cookies == east_ike.cookies


# --------------------------------------------------------------------------
# 4. loss, duplication, reordering


@pytest.mark.parametrize(
    "faults, retransmissions",
    [
        (Faults(drop=[INIT_I]), 1),
        (Faults(drop=[INIT_R]), 1),
        (Faults(drop=[AUTH_I]), 1),
        (Faults(drop=[AUTH_R]), 1),
        (Faults(drop=[INIT_I, INIT_I + 1]), 2),
        (Faults(duplicate=range(4)), 0),
        (Faults(delay=[INIT_I]), 0),
        (Faults(delay=[AUTH_I]), 0),
        (Faults(duplicate=[AUTH_I], drop=[AUTH_R]), 0),
    ],
    ids=["INIT_I", "INIT_R", "AUTH_I", "AUTH_R", "INIT_I-twice", "dup-all", "late-INIT_I",
         "late-AUTH_I", "dup-AUTH_I-drop-answer"],
)
def test_comes_up_despite_faults(faults, retransmissions):
    pair = make_pair(v2())
    pair.set_fault(faults)
    pair.initiate()
    pair.run(60)
    up_once(pair)
    assert pair.west.engine.counters["retransmits_sent"] == retransmissions
    assert pair.east.engine.counters["retransmits_sent"] == 0  # a responder never retransmits


def test_lost_ike_auth_answer_is_resent_from_the_responders_cache():
    pair = make_pair(v2())
    pair.set_fault(Faults(drop=[AUTH_R]))
    pair.initiate()
    assert pair.west.installed == [] and len(pair.east.installed) == 1
    pair.run(9.9)
    assert pair.west.installed == []
    pair.run(0.2)  # west's IKE_AUTH retransmission at 10 s
    up_once(pair)
    assert '010 "net" #1: STATE_PARENT_I2: retransmission; will wait 20s for response' \
        in pair.west.lines
    assert pair.east.engine.counters["retransmits_received"] == 1
    _, _, _, dropped, request, answer = pair.wire
    assert answer.data == dropped.data  # the very same bytes, not a new response
    assert request.data == pair.wire[AUTH_I].data
    assert len(pair.east.installed) == 1  # and not processed a second time


def test_duplicate_ike_sa_init_is_answered_again_without_a_new_state():
    pair = make_pair(v2())
    pair.set_fault(Faults(duplicate=[INIT_I]))
    pair.initiate()
    up_once(pair)
    assert pair.east.engine.counters["retransmits_received"] == 1
    answers = [w for w in pair.wire if w.sender == "east"
               and decode(w).header.exchange == ExchangeType.IKE_SA_INIT]
    assert len(answers) == 2 and answers[0].data == answers[1].data
    assert pair.west.engine.counters["duplicates_ignored"] == 1
    assert len(pair.east.engine.table.states) == 2  # one IKE SA, one Child SA


def test_responses_to_nothing_are_ignored():
    pair = make_pair(v2())
    pair.initiate()
    west = pair.west.engine
    before = dict(west.counters)
    for old in (pair.wire[INIT_R], pair.wire[AUTH_R]):  # answers to requests long answered
        west.receive_datagram(old.data, WEST, 500, EAST, 500, pair.now)
    pair.transfer()
    assert west.counters["duplicates_ignored"] == before["duplicates_ignored"] + 2
    assert west.datagrams_to_send() == []
    # a response on SPIs nobody has
    stranger = bytearray(pair.wire[AUTH_R].data)
    stranger[0:8] = bytes(8 * [0x5A])
    west.receive_datagram(bytes(stranger), WEST, 500, EAST, 500, pair.now)
    assert west.counters["unknown_cookie"] == before["unknown_cookie"] + 1
    pair.run(100)
    assert len(pair.west.installed) == 1 and pair.west.deleted == []


def test_a_replayed_old_request_is_answered_from_the_cache_not_reprocessed():
    pair = make_pair(v2(keylife=300.0, rekeymargin=60.0, rekeyfuzz=0))
    pair.initiate()
    pair.run(241)  # a Child SA rekey: CREATE_CHILD_SA (2), Delete (3)
    assert len(pair.east.installed) == 2
    rekey = [w for w in pair.wire if w.sender == "west"
             and decode(w).header.exchange == ExchangeType.CREATE_CHILD_SA][0]
    east = pair.east.engine
    before = east.counters["unexpected"]
    east.receive_datagram(rekey.data, EAST, 500, WEST, 500, pair.now)  # ID 2, expected 4
    pair.transfer()
    assert east.counters["unexpected"] == before + 1
    assert len(pair.east.installed) == 2



def test_an_answer_of_another_exchange_is_not_taken_for_ours():
    """A cleartext 'IKE_AUTH response' to a state still in IKE_SA_INIT (anyone can send
    one: the SPI is on the wire), and an authentic answer of the wrong exchange."""
    pair = make_pair(v2())
    west = pair.west.engine
    west.initiate("net", 0.0, "whack")
    (init,) = west.datagrams_to_send()
    header = decode_message(init.data).header
    forged = Message(dataclasses.replace(header, exchange=ExchangeType.IKE_AUTH,
                                         flags=0x20), ())  # a response, not the initiator
    west.receive_datagram(forged.encode(), WEST, 500, EAST, 500, 0.0)
    assert west.counters["internal_error"] == 0 and west.counters["unexpected"] == 1
    east = pair.east.engine
    east.receive_datagram(init.data, EAST, 500, WEST, 500, 0.0)
    pair.transfer()
    assert len(pair.west.installed) == 1  # the real answer is still taken
    # west checks liveness (INFORMATIONAL, ID 2); east answers with a CREATE_CHILD_SA
    west_ike, east_ike = established(pair)
    wrong = sealed(east_ike, ExchangeType.CREATE_CHILD_SA, 2, True, PayloadType.NONE, b"")
    pair.west.engine.delete_state(2, pair.now)
    pair.west.engine.datagrams_to_send()
    assert west_ike.outstanding == 2
    west.receive_datagram(wrong, WEST, 500, EAST, 500, pair.now)
    assert west.counters["unexpected"] == 2 and west_ike.outstanding == 2
    assert west.counters["internal_error"] == 0

# --------------------------------------------------------------------------
# 9. cookies


def busy(pair: Pair) -> IkeEngine:
    east = pair.east.engine
    east.apply_setup(uniqueids=True, keep_alive=20.0, nat_traversal=True,
                     virtual_private=east.virtual_private, ddos_mode=DdosMode.BUSY)
    assert east.busy
    return east


def test_a_busy_responder_asks_for_a_cookie_and_then_serves():
    pair = make_pair(v2())
    east = busy(pair)
    pair.initiate()
    up_once(pair)
    assert ('002 "net" #1: responder wants a cookie (it is busy): sending IKE_SA_INIT again'
            in pair.west.lines)
    first, demand, second = (decode(w) for w in pair.wire[:3])
    (cookie,) = demand.all(Notify)
    assert cookie.notify_type == NotifyType.COOKIE and demand.payloads == (cookie,)
    assert demand.header.spi_r == bytes(8)
    assert second.payloads[0] == cookie  # the cookie first, as RFC 7296 2.6 says
    assert second.header.spi_i == first.header.spi_i
    assert first.get(Nonce) == second.get(Nonce)
    assert east.counters["cookies_sent"] == east.counters["cookies_verified"] == 1
    assert [x for _, x, _, _ in exchanges(pair)] == [ExchangeType.IKE_SA_INIT] * 4 + [
        ExchangeType.IKE_AUTH] * 2


def test_a_forged_or_stale_cookie_gets_another_cookie_and_no_state():
    pair = make_pair(v2())
    east = busy(pair)
    pair.initiate()
    request = decode(pair.wire[2])  # the request carrying the real cookie
    good = request.payloads[0]
    assert isinstance(good, Notify) and good.notify_type == NotifyType.COOKIE
    forged = dataclasses.replace(good, data=good.data[:-1] + bytes([good.data[-1] ^ 1]))
    stale = Message(dataclasses.replace(request.header, spi_i=bytes(range(1, 9))),
                    request.payloads)  # a real cookie, but for other SPIs
    states = dict(east.table.states)
    for message in (Message(request.header, (forged,) + request.payloads[1:]), stale):
        sent = east.counters["cookies_sent"]
        east.receive_datagram(message.encode(), EAST, 500, WEST, 500, pair.now)
        (answer,) = east.datagrams_to_send()
        reply = decode_message(answer.data)
        (cookie,) = reply.all(Notify)
        assert cookie.notify_type == NotifyType.COOKIE and reply.payloads == (cookie,)
        assert cookie.data != forged.data
        assert reply.header.spi_i == message.header.spi_i
        assert east.counters["cookies_sent"] == sent + 1
        assert east.table.states == states  # nothing kept for it
    assert east.counters["cookies_verified"] == 1


def test_a_cookie_demanded_again_is_ignored_and_the_real_answer_accepted():
    pair = make_pair(v2())
    busy(pair)

    def same_cookie_again(wire):
        if wire.seq == 3:  # east's answer to the request with the cookie: another demand
            return [dataclasses.replace(wire, data=pair.wire[1].data)]
        return [wire]

    pair.set_fault(same_cookie_again)
    pair.initiate()
    assert pair.west.installed == []
    assert any("responder asked again for the cookie we sent" in line
               for line in pair.west.lines)
    pair.set_fault(None)
    pair.run(60)  # the IKE SA was kept: its retransmission gets through
    assert len(pair.west.installed) == 1
    assert pair.west.engine.counters["duplicates_ignored"] == 0


# --------------------------------------------------------------------------
# 10. charon's IKE_SA_INIT into our responder

DATA = Path(__file__).resolve().parent.parent / "data" / "ikev2"


@pytest.mark.parametrize(
    "variant, ike, esp, encr",
    [
        ("cbc", "aes128-sha256-modp2048", "aes128-sha256", 12),
        ("gcm", "aes256gcm16-prfsha256-modp2048", "aes256gcm16", 20),
    ],
)
def test_charons_ike_sa_init_is_answered_with_its_suite(variant, ike, esp, encr):
    (first, *_) = read_pcap(DATA / variant / "wire.pcap")
    assert (first.src, first.dst, first.dport) == (WEST, EAST, 500)
    request = decode_message(first.payload)
    engine = IkeEngine(lab_secrets(), random_bytes=seeded(3))
    engine.add_connection(oriented(v2(ike=ike, esp=esp), EAST))
    engine.receive_datagram(first.payload, EAST, 500, WEST, 500, 0.0)
    (answer,) = engine.datagrams_to_send()
    assert (str(answer.remote_addr), answer.remote_port, answer.local_port) == (WEST, 500, 500)
    reply = decode_message(answer.data)
    assert reply.header.is_response and reply.header.exchange == ExchangeType.IKE_SA_INIT
    assert reply.header.spi_i == request.header.spi_i and reply.header.spi_r != bytes(8)
    (chosen,) = reply.get(SecurityAssociation).proposals  # type: ignore[union-attr]
    (offered,) = request.get(SecurityAssociation).proposals  # type: ignore[union-attr]
    assert chosen.transforms == offered.transforms  # charon offered exactly one of each
    assert chosen.transforms[0].id == encr
    ke = reply.get(KeyExchange)
    assert ke is not None and ke.group == 14 and len(ke.data) == 256
    nonce = reply.get(Nonce)
    assert nonce is not None and len(nonce.data) >= 16
    types = [n.notify_type for n in reply.all(Notify)]
    assert NotifyType.NAT_DETECTION_SOURCE_IP in types
    assert NotifyType.NAT_DETECTION_DESTINATION_IP in types
    (st,) = engine.table.states.values()
    assert isinstance(st, IkeSa) and st.kind is StateKind.PARENT_R1
    assert st.sk is not None and st.icookie == request.header.spi_i
    assert engine.counters["internal_error"] == 0
    lines = [e.text for e in engine.next_events() if hasattr(e, "text")]
    assert "STATE_PARENT_R1: sent IKE_SA_INIT reply" in lines
    # charon's retransmission gets the same answer, not a second state
    engine.receive_datagram(first.payload, EAST, 500, WEST, 500, 1.0)
    (again,) = engine.datagrams_to_send()
    assert again.data == answer.data and len(engine.table.states) == 1


# --------------------------------------------------------------------------
# 11. hostile datagrams: the receive path never raises

#: FSWAN_FUZZ_EXAMPLES=2000 for a longer hunt
SETTINGS = settings(max_examples=int(os.environ.get("FSWAN_FUZZ_EXAMPLES", "30")), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
FAST = {"ike": "aes128-sha256-ecp256", "esp": "aes128-sha256", "dpddelay": 10.0}


def fuzz_pair() -> Pair:
    return make_pair(v2(**FAST), seed=21)


def up_pair() -> Pair:
    pair = fuzz_pair()
    pair.initiate()
    assert len(pair.east.installed) == 1
    return pair


def as_ikev2(data: bytes) -> bytes:
    """A header that claims IKEv2 (byte 17 = 0x20) on whatever follows."""
    data = data.ljust(HEADER_SIZE, b"\0")
    return data[:17] + b"\x20" + data[18:]


def sound(pair: Pair) -> None:
    for ep in pair.endpoints:
        assert ep.engine.counters["internal_error"] == 0, ep.text()
        ep.engine.state_lines(pair.now)
        ep.engine.state_dicts(pair.now)


def sealed(ike: IkeSa, exchange: int, message_id: int, response: bool, first: int,
           plain: bytes) -> bytes:
    """``plain`` (any bytes) as the inner payloads of a message of ``ike``'s keys."""
    assert ike.suite is not None and ike.sk is not None
    sk_length = GENERIC_HEADER_SIZE + ike.suite.sealed_size(len(plain))
    header = dataclasses.replace(ike.header(exchange, message_id, response),
                                 next_payload=PayloadType.SK, length=HEADER_SIZE + sk_length)
    head = header.encode() + struct.pack("!BBH", first, 0, sk_length)
    return head + _seal(ike.suite, ike.sk.sender(ike.original_initiator), head, plain,
                        bytes(ike.suite.iv_size))


def _reference() -> list[tuple[int, int, bytes]]:
    """(exchange, first payload, inner bytes) of every protected request and answer of a
    pair that deletes a Child SA, makes another (PFS) and rekeys its IKE SA."""
    pair = make_pair(v2(**FAST, ikelifetime=100.0, rekeymargin=10.0, rekeyfuzz=0), seed=21)
    keys: dict[bytes, IkeSa] = {}

    def note() -> None:
        for ep in pair.endpoints:
            for state in ep.engine.table.states.values():
                if isinstance(state, IkeSa) and state.sk is not None:
                    keys[ep.name.encode() + state.cookies] = state

    pair.initiate()
    note()
    pair.west.engine.delete_state(2, pair.now)  # INFORMATIONAL Delete
    pair.initiate()  # CREATE_CHILD_SA for a new Child SA (with PFS KE)
    note()
    pair.run(91)  # CREATE_CHILD_SA rekeying the IKE SA, its Delete
    note()
    out = []
    for wire in pair.wire[2:]:
        receiver = "east" if wire.sender == "west" else "west"
        message = keys[receiver.encode() + decode(wire).header.spis].open(wire.data)
        found = (message.header.exchange, first_type(message.payloads),
                 encode_payloads(message.payloads))
        if found not in out:
            out.append(found)
    assert {x for x, _, _ in out} == {ExchangeType.IKE_AUTH, ExchangeType.CREATE_CHILD_SA,
                                      ExchangeType.INFORMATIONAL}
    return out


REFERENCE = _reference()
INNER = st.one_of(
    st.builds(lambda ref, edits: (ref[0], ref[1], _edit(ref[2], edits)),
              st.sampled_from(REFERENCE),
              st.lists(st.tuples(st.integers(0, 2000), st.integers(0, 255)), max_size=4)),
    st.tuples(st.sampled_from(list(ExchangeType)), st.integers(0, 60), st.binary(max_size=200)),
)


def _edit(data: bytes, edits: list[tuple[int, int]]) -> bytes:
    out = bytearray(data)
    for offset, value in edits:
        if out:
            out[offset % len(out)] = value
    return bytes(out)


@SETTINGS
@given(data=st.binary(max_size=300), to=st.sampled_from(["west", "east"]),
       port=st.sampled_from([500, 4500]), established_sas=st.booleans())
def test_random_ikev2_bytes_change_nothing(data, to, port, established_sas):
    pair = up_pair() if established_sas else fuzz_pair()
    ep = pair.west if to == "west" else pair.east
    if established_sas and data[:1] == b"\x01":  # on the SA's own SPIs
        (ike,) = [s for s in ep.engine.table.states.values() if isinstance(s, IkeSa)]
        data = ike.cookies + data[16:]
    payload = as_ikev2(data)
    if port == 4500:
        payload = bytes(4) + payload
    ep.engine.receive_datagram(payload, ep.address, port, EAST if to == "west" else WEST,
                               port, pair.now)
    pair.transfer()
    sound(pair)
    if established_sas:
        pair.run(30)
        sound(pair)
        assert len(pair.west.installed) == 1 and pair.west.deleted == []


@SETTINGS
@given(which=st.integers(0, 3), edits=st.lists(
    st.tuples(st.integers(0, 600), st.integers(0, 255)), min_size=1, max_size=4),
    cut=st.one_of(st.none(), st.integers(0, 600)))
def test_mutated_handshake_messages_into_a_fresh_engine(which, edits, cut):
    reference = up_pair()
    data = bytearray(reference.wire[which].data)
    for offset, value in edits:
        data[offset % len(data)] = value
    if cut is not None:
        data = data[:cut]
    pair = fuzz_pair()
    ep = pair.east if which % 2 == 0 else pair.west
    ep.engine.receive_datagram(as_ikev2(bytes(data)), ep.address, 500,
                               WEST if ep is pair.east else EAST, 500, 0.0)
    pair.transfer()
    sound(pair)
    pair.run(100)
    sound(pair)


@SETTINGS
@given(inner=INNER, response=st.booleans(), mid_offset=st.integers(-1, 1))
def test_authentic_messages_with_hostile_contents(inner, response, mid_offset):
    """Properly sealed (they pass the integrity check) but saying anything at all: as the
    peer's next request, or as the answer to our outstanding one."""
    exchange, first, plain = inner
    pair = up_pair()
    west_ike, east_ike = established(pair)
    if response:
        # west waits for answers: a Delete of its Child SA and a new Child SA queued
        pair.west.engine.delete_state(2, pair.now)
        pair.west.engine.initiate("net", pair.now)
        pair.west.engine.datagrams_to_send()
        assert west_ike.outstanding is not None
        data = sealed(east_ike, exchange, west_ike.outstanding + mid_offset, True, first, plain)
        pair.west.engine.receive_datagram(data, WEST, 500, EAST, 500, pair.now)
    else:
        data = sealed(west_ike, exchange, east_ike.peer_next + mid_offset, False, first, plain)
        pair.east.engine.receive_datagram(data, EAST, 500, WEST, 500, pair.now)
    pair.transfer()
    sound(pair)
    pair.run(200)
    sound(pair)
