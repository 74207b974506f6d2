"""IKEv1 fragmentation: cutting, reassembly and its limits, the vendor ID, two engines."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fswan.config.model import Fragmentation
from fswan.ike import fragments
from fswan.ike.fragments import (
    FRAGMENTATION_VID,
    MAX_FRAGMENTS,
    MAX_MESSAGE_SIZE,
    Reassembler,
    announces_fragmentation,
    parse_fragment,
    split,
    with_vendor_id,
)
from fswan.isakmp.constants import ExchangeType, Flags, KnownVendor, PayloadType
from fswan.isakmp.errors import MalformedPacket
from fswan.isakmp.message import NON_ESP_MARKER, Header, Message, decode_message
from fswan.isakmp.payloads import (
    FragmentPayload,
    KEPayload,
    NoncePayload,
    VendorIDPayload,
)
from tests.ike_pair import Faults, Wire, conn, make_pair

ICOOKIE, RCOOKIE = b"\x11" * 8, b"\x22" * 8
PEER = "192.0.2.2"


def big_message(size: int = 700, *, encrypted: bool = False) -> bytes:
    header = Header(ICOOKIE, RCOOKIE, ExchangeType.MAIN_MODE, Flags.NONE)
    if encrypted:
        body = bytes(range(256)) * (size // 256 + 1)
        return Message(
            Header(ICOOKIE, RCOOKIE, ExchangeType.MAIN_MODE, next_payload=PayloadType.ID),
            encrypted_body=body[: size - 28],
        ).encode()
    return Message(header, (KEPayload(b"\x07" * (size - 28 - 8 - 20)), NoncePayload(b"n" * 16))).encode()


def frag(number: int, data: bytes = b"x", last: bool = False, fid: int = 1) -> FragmentPayload:
    return FragmentPayload(fid, number, last, data)


class Counts(dict):
    def __call__(self, name: str) -> None:
        self[name] = self.get(name, 0) + 1


# ---------------------------------------------------------------------------
# split


class TestSplit:
    def test_pieces_headers_and_flags(self):
        message = big_message(700, encrypted=True)
        wire = split(message, 228)
        assert all(len(w) <= 228 for w in wire) and len(wire) == 4
        pieces = [parse_fragment(w) for w in wire]
        for number, (header, payload) in enumerate(pieces, 1):
            assert header.cookies == ICOOKIE + RCOOKIE
            assert header.exchange == ExchangeType.MAIN_MODE and header.message_id == 0
            assert not header.encrypted  # the E flag stays with the whole message
            assert header.next_payload == PayloadType.FRAGMENT
            assert (payload.fragment_id, payload.number) == (1, number)
            assert payload.last == (number == 4)
        assert b"".join(p.data for _, p in pieces) == message

    def test_same_fragments_every_time(self):
        message = big_message()
        assert split(message, 300) == split(message, 300)

    def test_never_more_than_max_fragments(self):
        message = big_message(5000)
        wire = split(message, 100)
        assert len(wire) == MAX_FRAGMENTS
        assert b"".join(parse_fragment(w)[1].data for w in wire) == message

    def test_no_room(self):
        with pytest.raises(ValueError):
            split(big_message(), 36)

    def test_limit_counts_ip_udp_and_marker(self):
        assert fragments.isakmp_limit(1280, ipv6=False, natt=False) == 1252
        assert fragments.isakmp_limit(1280, ipv6=True, natt=True) == 1228


class TestPolicy:
    MESSAGE = big_message(700)

    @pytest.mark.parametrize(
        "setting, peer, expected",
        [
            (Fragmentation.YES, True, True),
            (Fragmentation.YES, False, False),
            (Fragmentation.FORCE, False, True),
            (Fragmentation.ACCEPT, True, False),
            (Fragmentation.NO, True, False),
        ],
    )
    def test_should_fragment(self, setting, peer, expected):
        assert fragments.should_fragment(setting, peer, self.MESSAGE, 500) is expected
        assert not fragments.should_fragment(setting, peer, self.MESSAGE, 700)

    def test_only_phase1_exchanges(self):
        quick = bytearray(self.MESSAGE)
        quick[18] = ExchangeType.QUICK_MODE
        assert not fragments.should_fragment(Fragmentation.FORCE, True, bytes(quick), 100)

    def test_should_announce(self):
        assert fragments.should_announce(Fragmentation.YES, True, False)
        assert not fragments.should_announce(Fragmentation.YES, False, False)
        assert fragments.should_announce(Fragmentation.ACCEPT, False, True)
        assert not fragments.should_announce(Fragmentation.NO, True, True)


# ---------------------------------------------------------------------------
# the vendor ID


class TestVendorId:
    def test_appended_byte_for_byte(self):
        message = Message(
            Header(ICOOKIE), (NoncePayload(b"n" * 16), VendorIDPayload.of(KnownVendor.DPD))
        ).encode()
        with_vid = with_vendor_id(message)
        decoded = decode_message(with_vid)
        assert with_vid.startswith(message[:16]) and with_vid[28 : len(message) - 20] == message[28:-20]
        assert decoded.payloads[:2] == decode_message(message).payloads
        assert decoded.payloads[2] == VendorIDPayload(FRAGMENTATION_VID)
        assert decoded.payloads[2].known is KnownVendor.FRAGMENTATION

    def test_empty_message(self):
        decoded = decode_message(with_vendor_id(Message(Header(ICOOKIE)).encode()))
        assert decoded.payloads == (VendorIDPayload(FRAGMENTATION_VID),)

    def test_refuses_encrypted(self):
        with pytest.raises(ValueError):
            with_vendor_id(big_message(100, encrypted=True))

    @pytest.mark.parametrize(
        "data, expected",
        [
            (KnownVendor.FRAGMENTATION.value, True),  # Windows: no capabilities
            (FRAGMENTATION_VID, True),
            (KnownVendor.FRAGMENTATION.value + bytes.fromhex("c0000000"), True),  # Cisco
            (KnownVendor.FRAGMENTATION.value + bytes.fromhex("40000000"), False),
            (KnownVendor.FRAGMENTATION.value[:15], False),
            (KnownVendor.DPD.value, False),
        ],
    )
    def test_announces(self, data, expected):
        assert announces_fragmentation([VendorIDPayload(data)]) is expected


# ---------------------------------------------------------------------------
# reassembly


class TestReassembler:
    def test_in_and_out_of_order(self):
        message = big_message(700)
        wire = split(message, 228)
        for order in (list(range(4)), [3, 1, 0, 2]):
            r = Reassembler(Counts())
            results = [r.add(PEER, ICOOKIE + RCOOKIE, parse_fragment(wire[i])[1], 0.0) for i in order]
            assert results[:-1] == [None] * 3
            assert results[-1] == (message, 4)
            assert len(r) == 0 and r.held_bytes == 0

    def test_duplicate_ignored(self):
        counts = Counts()
        r = Reassembler(counts)
        assert r.add(PEER, b"c", frag(1, b"a"), 0.0) is None
        assert r.add(PEER, b"c", frag(1, b"a"), 0.0) is None
        assert counts == {"fragments_duplicate": 1}
        assert r.add(PEER, b"c", frag(2, b"b", last=True), 0.0) == (b"ab", 2)

    def test_different_bytes_start_a_new_message(self):
        counts = Counts()
        r = Reassembler(counts)
        r.add(PEER, b"c", frag(1, b"old"), 0.0)
        r.add(PEER, b"c", frag(2, b"old"), 0.0)
        assert r.add(PEER, b"c", frag(1, b"new"), 0.0) is None
        assert counts == {"fragments_conflict": 1}
        assert r.add(PEER, b"c", frag(2, b"!", last=True), 0.0) == (b"new!", 2)

    @pytest.mark.parametrize(
        "first, second",
        [
            (frag(3, last=True), frag(2, last=True)),  # two different ends
            (frag(3, last=True), frag(4)),  # a piece past the end
            (frag(4), frag(2, last=True)),  # an end before a piece held
        ],
    )
    def test_contradicting_ends_restart(self, first, second):
        counts = Counts()
        r = Reassembler(counts)
        r.add(PEER, b"c", first, 0.0)
        r.add(PEER, b"c", second, 0.0)
        assert counts == {"fragments_conflict": 1} and len(r) == 1

    @pytest.mark.parametrize("bad", [frag(MAX_FRAGMENTS + 1), frag(1, b"")])
    def test_invalid(self, bad):
        counts = Counts()
        r = Reassembler(counts)
        assert r.add(PEER, b"c", bad, 0.0) is None
        assert counts == {"fragments_invalid": 1} and len(r) == 0

    def test_too_big(self):
        counts = Counts()
        r = Reassembler(counts)
        piece = b"z" * (MAX_MESSAGE_SIZE // 4 + 1)
        for number in range(1, 4):
            r.add(PEER, b"c", frag(number, piece), 0.0)
        r.add(PEER, b"c", frag(4, piece), 0.0)
        assert counts == {"fragments_too_big": 1} and len(r) == 0

    def test_keys_are_peer_cookies_and_id(self):
        r = Reassembler(Counts())
        r.add(PEER, b"c", frag(1, b"a"), 0.0)
        r.add("192.0.2.9", b"c", frag(2, b"X", last=True), 0.0)
        r.add(PEER, b"d", frag(2, b"X", last=True), 0.0)
        r.add(PEER, b"c", frag(2, b"X", last=True, fid=2), 0.0)
        assert len(r) == 4
        assert r.add(PEER, b"c", frag(2, b"b", last=True), 0.0) == (b"ab", 2)

    def test_expiry(self):
        counts = Counts()
        r = Reassembler(counts, timeout=30.0)
        r.add(PEER, b"c", frag(1, b"a"), 0.0)
        r.add(PEER, b"d", frag(1, b"a"), 20.0)
        r.expire(31.0)
        assert counts == {"fragments_expired": 1} and len(r) == 1
        # the expired one starts again from nothing
        assert r.add(PEER, b"c", frag(2, b"b", last=True), 31.0) is None

    def test_per_peer_and_total_limits(self):
        counts = Counts()
        r = Reassembler(counts, max_messages=8, max_per_peer=2)
        for i in range(5):
            r.add(PEER, bytes([i]), frag(1), float(i))
        assert len(r) == 2 and counts == {"fragments_evicted": 3}
        for i in range(20):
            r.add(f"198.51.100.{i}", b"c", frag(1), 10.0)
        assert len(r) == 8

    def test_bogus_stream_stays_bounded(self):
        """A million-fragment flood of random garbage from random sources: bounded memory."""
        rng = random.Random(7)
        r = Reassembler(Counts())
        for i in range(20000):
            fragment = frag(rng.randint(1, 20), rng.randbytes(rng.randint(0, 1500)), rng.random() < 0.1,
                            rng.randint(0, 3))
            r.add(f"203.0.113.{rng.randint(0, 200)}", rng.randbytes(2), fragment, i / 1000)
            assert len(r) <= fragments.MAX_MESSAGES
        assert r.held_bytes <= fragments.MAX_MESSAGES * MAX_MESSAGE_SIZE
        assert r.held_bytes <= fragments.MAX_MESSAGES * MAX_FRAGMENTS * 1500


class TestParse:
    def test_more_payloads_refused(self):
        data = Message(
            Header(ICOOKIE, RCOOKIE), (frag(1), NoncePayload(b"n" * 8))
        ).encode()
        with pytest.raises(MalformedPacket, match="one IKE fragment payload"):
            parse_fragment(data)

    def test_encrypted_flag_ignored(self):
        data = bytearray(split(big_message(), 300)[0])
        data[19] |= Flags.ENCRYPTION  # racoon
        assert parse_fragment(bytes(data))[1].number == 1


# ---------------------------------------------------------------------------
# two engines


def fragmented(wire: Wire) -> bool:
    data = wire.data[4:] if wire.data.startswith(NON_ESP_MARKER) else wire.data
    return fragments.is_fragment(data)


def pair_with(west: Fragmentation, east: Fragmentation):
    pair = make_pair(conn(fragmentation=west), conn(fragmentation=east))
    for ep in pair.endpoints:
        ep.engine.fragment_size = 256
    return pair


@pytest.mark.parametrize(
    "west, east",
    [
        (Fragmentation.YES, Fragmentation.YES),
        (Fragmentation.FORCE, Fragmentation.YES),
        (Fragmentation.YES, Fragmentation.FORCE),
        (Fragmentation.FORCE, Fragmentation.ACCEPT),
    ],
)
def test_fragments_both_ways(west, east):
    pair = pair_with(west, east)
    pair.initiate()
    assert pair.west.installed and pair.east.installed
    senders = {w.sender for w in pair.wire if fragmented(w)}
    # ACCEPT never cuts; FORCE and YES (peer announced) do; YES also answers fragments in fragments
    assert senders == ({"west"} if east is Fragmentation.ACCEPT else {"west", "east"})
    for ep in pair.endpoints:
        if ep.name in senders:
            assert "sending IKE fragments: a " in ep.text()
            assert ep.engine.counters["fragments_sent"] >= 2
    assert "received IKE fragments from 192.0.2.1:500: reassembled a " in pair.east.text()
    assert pair.east.engine.counters["fragments_reassembled"] >= 1
    assert all(len(w.data) <= 256 - 28 for w in pair.wire if fragmented(w))


def test_aggressive_mode_answer_in_fragments():
    """The responder's first answer (AR1, with KE) in fragments: the initiator does not
    know the responder's cookie until it has put them together."""
    pair = make_pair(conn(aggrmode=True, fragmentation=Fragmentation.FORCE,
                          ike="aes128-sha1-modp2048"))
    for ep in pair.endpoints:
        ep.engine.fragment_size = 256
    pair.initiate()
    assert pair.west.installed and pair.east.installed
    first_answer = [w for w in pair.wire if w.sender == "east"][0]
    assert fragmented(first_answer)
    assert "received IKE fragments from 192.0.2.2:500" in pair.west.text()


def test_no_vendor_id_no_fragments():
    pair = pair_with(Fragmentation.YES, Fragmentation.NO)
    pair.initiate()
    assert pair.west.installed
    assert not any(fragmented(w) for w in pair.wire)
    mr1 = decode_message(pair.wire[1].data)
    assert KnownVendor.FRAGMENTATION not in [v.known for v in mr1.find_all(VendorIDPayload)]


def test_responder_announces_only_to_an_announcing_initiator():
    pair = pair_with(Fragmentation.NO, Fragmentation.YES)
    pair.initiate()
    assert pair.west.installed and not any(fragmented(w) for w in pair.wire)
    for wire in pair.wire[:2]:
        vids = [v.known for v in decode_message(wire.data).find_all(VendorIDPayload)]
        assert KnownVendor.FRAGMENTATION not in vids


def test_lost_fragment_retransmitted_as_the_same_fragments():
    pair = pair_with(Fragmentation.FORCE, Fragmentation.FORCE)
    pair.initiate()  # learn which datagrams are fragments
    first = [i for i, w in enumerate(pair.wire) if fragmented(w) and w.sender == "west"]
    pair = pair_with(Fragmentation.FORCE, Fragmentation.FORCE)
    pair.set_fault(Faults(drop=[first[1]]))
    pair.initiate()
    pair.run(15.0)
    assert pair.west.installed and pair.east.installed
    sent = [w.data for w in pair.wire if fragmented(w) and w.sender == "west"]
    lost = pair.wire[first[1]].data
    assert sent.count(lost) == 2  # the retransmission is the same fragments


@settings(max_examples=200, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, 20), st.booleans(), st.binary(max_size=60),
                          st.booleans()), max_size=40))
def test_engine_takes_any_fragment_stream(stream):
    """Garbage fragments (zero and known cookies) never raise, never grow without bound."""
    pair = pair_with(Fragmentation.YES, Fragmentation.YES)
    pair.initiate()
    east = pair.east.engine
    cookies = next(iter(east.table.by_cookies))
    for number, last, data, known in stream:
        header = Header(cookies[:8], cookies[8:] if known else bytes(8))
        raw = Message(header, (FragmentPayload(1, max(number, 1), last, data),)).encode()
        east.receive_datagram(raw, "192.0.2.2", 500, "192.0.2.1", 500, pair.now)
        assert len(east.reassembler) <= fragments.MAX_PER_PEER
    assert east.counters["internal_error"] == 0
