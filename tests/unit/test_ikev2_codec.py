"""The IKEv2 wire codec: annotated byte vectors per payload, the chain's
rules (Critical bit, SK last, lengths), and hypothesis on the decoder: it
raises nothing but MalformedMessage, and what decodes re-encodes stably."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fswan.ikev2.constants import (
    CfgAttr,
    CfgType,
    DhGroup,
    EncrId,
    ExchangeType,
    Flags,
    IdType,
    NotifyType,
    PayloadType,
    ProtocolId,
    TransformType,
    TsType,
)
from fswan.ikev2.errors import MalformedMessage, UnsupportedCriticalPayload
from fswan.ikev2.message import Header, Message, decode_message, decode_payloads, encode_payloads, is_ikev2
from fswan.ikev2.payloads import (
    Attribute,
    Authentication,
    Certificate,
    CertificateRequest,
    ConfigAttribute,
    Configuration,
    Delete,
    Eap,
    Encrypted,
    EncryptedFragment,
    IDi,
    IDr,
    KeyExchange,
    Nonce,
    Notify,
    Payload,
    Proposal,
    SecurityAssociation,
    TrafficSelector,
    Transform,
    TSi,
    TSr,
    UnknownPayload,
    VendorId,
    join_digital_signature,
    split_digital_signature,
)
from tests.pcap import read_pcap

DATA = Path(__file__).resolve().parent.parent / "data" / "ikev2"
SPI_I = bytes.fromhex("0102030405060708")
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)


def body(payload: Payload) -> bytes:
    return payload.encode_body()


# ---------------------------------------------------------------------------
# Annotated vectors


def test_header_layout() -> None:
    header = Header(SPI_I, bytes(8), ExchangeType.IKE_AUTH, Flags.INITIATOR | Flags.RESPONSE, 7)
    wire = Message(header, (Nonce(bytes(16)),)).encode()
    assert wire[:28] == (
        SPI_I + bytes(8)
        + bytes([40])  # next payload: Nonce
        + bytes([0x20])  # version 2.0
        + bytes([35])  # IKE_AUTH
        + bytes([0x28])  # I | R
        + (7).to_bytes(4, "big")
        + (28 + 4 + 16).to_bytes(4, "big")
    )
    decoded = decode_message(wire)
    assert decoded.header.is_initiator and decoded.header.is_response
    assert decoded.header.message_id == 7 and decoded.header.spis == SPI_I + bytes(8)
    assert is_ikev2(wire) and not is_ikev2(wire[:17] + b"\x10" + wire[18:])


def test_sa_payload_vector() -> None:
    sa = SecurityAssociation((
        Proposal(1, ProtocolId.IKE, b"", (
            Transform(TransformType.ENCR, EncrId.AES_CBC, (Attribute(14, 128),)),
            Transform(TransformType.DH, DhGroup.MODP_2048),
        )),
        Proposal(2, ProtocolId.ESP, b"\xc0\xff\xee\x01", (Transform(TransformType.ENCR, EncrId.AES_GCM_16, (Attribute(14, 256),)),)),
    ))
    assert body(sa) == bytes.fromhex(
        "02 00 001c 01 01 00 02"  # more proposals, length 28, #1, IKE, no SPI, 2 transforms
        "03 00 000c 01 00 000c 800e0080"  # more transforms, ENCR AES_CBC, key length 128 (TV)
        "00 00 0008 04 00 000e"  # last transform, DH 14
        "00 00 0018 02 03 04 01 c0ffee01"  # last proposal, #2, ESP, 4-byte SPI, 1 transform
        "00 00 000c 01 00 0014 800e0100"  # ENCR AES_GCM_16, 256
    )
    again = SecurityAssociation.decode_body(body(sa), "SA")
    assert again == sa and again.proposals[0].transforms[0].key_length == 128
    assert again.proposals[1].transforms_of(TransformType.ENCR)[0].id == EncrId.AES_GCM_16


@pytest.mark.parametrize(
    "payload, wire",
    [
        (KeyExchange(14, b"\xab" * 4), "000e 0000 abababab"),
        (IDi(IdType.IPV4_ADDR, bytes([192, 0, 2, 1])), "01 000000 c0000201"),
        (IDr(IdType.FQDN, b"east"), "02 000000 65617374"),
        (IDi(IdType.KEY_ID, b"\x01\x02"), "0b 000000 0102"),
        (IDr(IdType.DER_ASN1_DN, b"\x30\x00"), "09 000000 3000"),
        (Certificate(4, b"\x30\x82"), "04 3082"),
        (CertificateRequest(4, b"\x11" * 20), "04" + "11" * 20),
        (Authentication(2, b"\x99" * 4), "02 000000 99999999"),
        (Nonce(b"\x5a" * 16), "5a" * 16),
        (Notify(NotifyType.COOKIE, b"\x01\x02"), "00 00 4006 0102"),
        (Notify(NotifyType.REKEY_SA, b"", ProtocolId.ESP, b"\x11\x22\x33\x44"), "03 04 4009 11223344"),
        (Notify(NotifyType.INVALID_KE_PAYLOAD, b"\x00\x13"), "00 00 0011 0013"),
        (Delete(ProtocolId.IKE), "01 00 0000"),
        (Delete(ProtocolId.ESP, (b"\x00\x00\x00\x01", b"\x00\x00\x00\x02")), "03 04 0002 00000001 00000002"),
        (VendorId(b"strongSwan"), "7374726f6e675377616e"),
        (
            TSi((TrafficSelector.from_range("198.51.100.0", "198.51.100.127", 6, 80, 443),)),
            "01 000000 07 06 0010 0050 01bb c6336400 c633647f",
        ),
        (
            TSr((TrafficSelector.from_range("2001:db8::", "2001:db8::ff"),)),
            "01 000000 08 00 0028 0000 ffff" + "20010db8" + "00" * 12 + "20010db8" + "00" * 11 + "ff",
        ),
        (
            Configuration(CfgType.CFG_REQUEST, (ConfigAttribute(CfgAttr.INTERNAL_IP4_ADDRESS), ConfigAttribute(CfgAttr.INTERNAL_IP4_DNS))),
            "01 000000 0001 0000 0003 0000",
        ),
        (Eap(b"\x01\x02\x00\x05\x01"), "0102000501"),
    ],
)
def test_payload_vectors(payload: Payload, wire: str) -> None:
    data = bytes.fromhex(wire)
    assert body(payload) == data
    assert type(payload).decode_body(data, "test") == payload


def test_traffic_selector_addresses() -> None:
    ts = TrafficSelector.from_range("203.0.113.0", "203.0.113.127")
    assert ts.ts_type == TsType.IPV4_ADDR_RANGE and ts.known
    assert str(ts.start) == "203.0.113.0" and str(ts.end) == "203.0.113.127"
    with pytest.raises(ValueError):
        TrafficSelector.from_range("192.0.2.1", "2001:db8::1")


def test_unknown_selector_type_is_kept() -> None:
    data = bytes.fromhex("01000000 0a 00 0008 deadbeef")
    tsi = TSi.decode_body(data, "TSi")
    assert tsi.selectors[0].ts_type == TsType.SECLABEL and not tsi.selectors[0].known
    assert body(tsi) == data


def test_sk_ends_the_chain_and_names_the_first_inner_payload() -> None:
    header = Header(SPI_I, SPI_I, ExchangeType.IKE_AUTH, Flags.INITIATOR, 1)
    wire = Message(header, (Encrypted(PayloadType.IDI, b"\x00" * 32),)).encode()
    assert wire[16] == PayloadType.SK and wire[28] == PayloadType.IDI
    message = decode_message(wire)
    assert message.encrypted == Encrypted(PayloadType.IDI, b"\x00" * 32)
    with pytest.raises(ValueError):
        Message(header, (Encrypted(35, b""), Nonce(bytes(16)))).encode()


def test_skf_vector() -> None:
    header = Header(SPI_I, SPI_I, ExchangeType.IKE_AUTH, Flags.INITIATOR, 1)
    wire = Message(header, (EncryptedFragment(PayloadType.IDI, 1, 3, b"\x11" * 8),)).encode()
    assert wire[28:36] == bytes.fromhex("23 00 0010 0001 0003")
    assert decode_message(wire).encrypted == EncryptedFragment(PayloadType.IDI, 1, 3, b"\x11" * 8)
    later = Message(header, (EncryptedFragment(0, 2, 3, b""),)).encode()
    assert decode_message(later).encrypted == EncryptedFragment(0, 2, 3, b"")


def test_rfc7427_signature_data() -> None:
    # sha256WithRSAEncryption AlgorithmIdentifier, as RFC 7427 appendix A lists it
    algorithm = bytes.fromhex("300d06092a864886f70d01010b0500")
    data = join_digital_signature(algorithm, b"SIG")
    assert data[0] == 15 and split_digital_signature(data) == (algorithm, b"SIG")
    for bad in (b"", b"\x00abc", b"\x10short"):
        with pytest.raises(MalformedMessage):
            split_digital_signature(bad)


# ---------------------------------------------------------------------------
# Rules of the chain


def chain(*parts: tuple[int, int, bytes]) -> bytes:
    """Generic headers by hand: (next, flags, body) each."""
    return b"".join(bytes([n, f]) + (4 + len(b)).to_bytes(2, "big") + b for n, f, b in parts)


def test_unknown_payload_without_critical_bit_is_kept() -> None:
    data = chain((PayloadType.NONCE, 0, b"xyz"), (0, 0, bytes(16)))
    payloads = decode_payloads(200, data)
    assert payloads == (UnknownPayload(200, b"xyz"), Nonce(bytes(16)))
    assert encode_payloads(payloads) == data


def test_unknown_payload_with_critical_bit_is_refused() -> None:
    data = chain((0, 0x80, b"xyz"))
    with pytest.raises(UnsupportedCriticalPayload) as caught:
        decode_payloads(200, data)
    assert caught.value.payload_type == 200
    assert caught.value.notify == NotifyType.UNSUPPORTED_CRITICAL_PAYLOAD
    assert caught.value.notify_data == b"\xc8"


def test_critical_bit_on_a_known_payload_is_ignored() -> None:
    assert decode_payloads(PayloadType.NONCE, chain((0, 0x80, bytes(16)))) == (Nonce(bytes(16)),)


@pytest.mark.parametrize(
    "first, data, words",
    [
        (PayloadType.NONCE, chain((0, 0, bytes(15))), "nonce of 15 bytes"),
        (PayloadType.NONCE, chain((0, 0, bytes(257))), "nonce of 257 bytes"),
        (PayloadType.NONCE, bytes.fromhex("00000003"), "payload length 3"),
        (PayloadType.NONCE, bytes.fromhex("00000020") + bytes(10), "payload length 32"),
        (PayloadType.NONCE, chain((0, 0, bytes(16))) + b"\x00", "1 bytes after the last payload"),
        (PayloadType.SK, chain((35, 0, b"")) + b"\x00" * 4, "after the encrypted payload"),
        (PayloadType.SA, chain((0, 0, b"")), "without proposals"),
        (PayloadType.SA, chain((0, 0, bytes.fromhex("00000008 01010002"))), "2 transforms announced, 0 present"),
        (PayloadType.SA, chain((0, 0, bytes.fromhex("05000008 01010000"))), "substructure type 5"),
        (PayloadType.DELETE, chain((0, 0, bytes.fromhex("03040002 00000001"))), "2 SPIs of 4 bytes"),
        (PayloadType.TSI, chain((0, 0, bytes.fromhex("01000000 07000010 0000ffff c0000200"))), "selector length 16"),
        (PayloadType.TSI, chain((0, 0, bytes.fromhex("01000000 0700000c 0000ffff c0000200"))), "not 16"),
        (PayloadType.NOTIFY, chain((0, 0, bytes.fromhex("03044009 0011"))), "4-byte SPI"),
        (PayloadType.SKF, chain((35, 0, bytes.fromhex("00020003"))), "names a first payload"),
        (PayloadType.SKF, chain((0, 0, bytes.fromhex("00040003"))), "fragment 4 of 3"),
        (PayloadType.CP, chain((0, 0, bytes.fromhex("01000000 00010008 00"))), "attribute length 8"),
    ],
)
def test_malformed_chains(first: int, data: bytes, words: str) -> None:
    with pytest.raises(MalformedMessage) as caught:
        decode_payloads(first, data)
    assert words in str(caught.value)
    assert caught.value.notify == NotifyType.INVALID_SYNTAX


def test_header_errors() -> None:
    good = Message(Header(SPI_I), (Nonce(bytes(16)),)).encode()
    with pytest.raises(MalformedMessage, match="shorter than the 28-byte header"):
        decode_message(good[:20])
    with pytest.raises(MalformedMessage, match="header length 48, datagram 49"):
        decode_message(good + b"\x00")
    with pytest.raises(MalformedMessage) as caught:
        decode_message(good[:17] + b"\x30" + good[18:])
    assert caught.value.notify == NotifyType.INVALID_MAJOR_VERSION
    assert decode_message(good[:17] + b"\x21" + good[18:]).header.minor == 1  # minor ignored


def test_where_names_the_place() -> None:
    data = chain((PayloadType.SA, 0, bytes(16)), (0, 0, bytes.fromhex("00000008 01010001")))
    with pytest.raises(MalformedMessage) as caught:
        decode_payloads(PayloadType.NONCE, data, "IKE_SA_INIT #0")
    assert caught.value.where.startswith("IKE_SA_INIT #0, payload 2 (SA) at offset 20, proposal 1")


def test_summary_reads_like_strongswan() -> None:
    message = Message(
        Header(SPI_I, flags=Flags.RESPONSE),
        (SecurityAssociation((Proposal(1, 1),)), Notify(NotifyType.COOKIE, b"c")),
    )
    assert message.summary() == "IKE_SA_INIT response 0 [ SA N(COOKIE) ]"


# ---------------------------------------------------------------------------
# Hypothesis


def captured() -> list[bytes]:
    out = []
    for variant in ("cbc", "gcm"):
        for packet in read_pcap(DATA / variant / "wire.pcap"):
            data = packet.payload
            if packet.sport == 4500:
                if data[:4] != bytes(4):
                    continue
                data = data[4:]
            out.append(data)
    return out


REAL = captured()


def stable(data: bytes) -> None:
    """Decoding raises only MalformedMessage; what decodes re-encodes stably."""
    try:
        message = decode_message(data)
    except MalformedMessage:
        return
    again = message.encode()
    assert decode_message(again) == message
    assert decode_message(again).encode() == again


@FUZZ
@given(st.binary(max_size=400))
def test_random_bytes(data: bytes) -> None:
    stable(data)


@FUZZ
@given(st.binary(min_size=28, max_size=28), st.binary(max_size=300))
def test_random_bodies_behind_a_valid_header(head: bytes, rest: bytes) -> None:
    header = bytearray(head)
    header[17] = 0x20
    header[24:28] = (28 + len(rest)).to_bytes(4, "big")
    stable(bytes(header) + rest)


@FUZZ
@given(st.sampled_from(sorted(PayloadType)), st.binary(max_size=200), st.integers(0, 255))
def test_random_payload_bodies(kind: int, data: bytes, flags: int) -> None:
    try:
        payloads = decode_payloads(kind, chain((0, flags, data)))
    except MalformedMessage:
        return
    assert decode_payloads(kind, encode_payloads(payloads)) == payloads


@FUZZ
@given(st.sampled_from(REAL), st.data())
def test_mutated_captures(message: bytes, data: st.DataObject) -> None:
    mutated = bytearray(message)
    for _ in range(data.draw(st.integers(1, 8))):
        index = data.draw(st.integers(0, len(mutated) - 1))
        mutated[index] = data.draw(st.integers(0, 255))
    stable(bytes(mutated))
    cut = data.draw(st.integers(0, len(message)))
    stable(message[:cut])


octets = st.binary(max_size=40)
attributes = st.one_of(
    st.builds(Attribute, st.integers(0, 0x7FFF), st.integers(0, 0xFFFF)),
    st.builds(Attribute, st.integers(0, 0x7FFF), octets),
)
transforms = st.builds(Transform, st.integers(1, 5), st.integers(0, 0xFFFF), st.lists(attributes, max_size=3).map(tuple))
proposals = st.builds(
    Proposal, st.integers(1, 255), st.integers(0, 255), st.sampled_from([b"", b"\x01" * 4, b"\x02" * 8]),
    st.lists(transforms, max_size=4).map(tuple),
)
v4 = st.binary(min_size=4, max_size=4)
v6 = st.binary(min_size=16, max_size=16)
ports = st.integers(0, 0xFFFF)
selectors = st.one_of(
    st.builds(TrafficSelector, st.just(7), st.integers(0, 255), ports, ports, v4, v4),
    st.builds(TrafficSelector, st.just(8), st.integers(0, 255), ports, ports, v6, v6),
)
spi4 = st.binary(min_size=4, max_size=4)
payloads = st.one_of(
    st.builds(SecurityAssociation, st.lists(proposals, min_size=1, max_size=3).map(tuple)),
    st.builds(KeyExchange, st.integers(0, 0xFFFF), octets),
    st.builds(IDi, st.integers(0, 255), octets),
    st.builds(IDr, st.integers(0, 255), octets),
    st.builds(Certificate, st.integers(0, 255), octets),
    st.builds(CertificateRequest, st.integers(0, 255), octets),
    st.builds(Authentication, st.integers(0, 255), octets),
    st.builds(Nonce, st.binary(min_size=16, max_size=64)),
    st.builds(Notify, st.sampled_from(sorted(NotifyType)), octets, st.integers(0, 255), st.sampled_from([b"", b"\x01" * 4])),
    st.builds(Delete, st.integers(0, 255), st.lists(spi4, max_size=3).map(tuple)),
    st.builds(VendorId, octets),
    st.builds(TSi, st.lists(selectors, max_size=3).map(tuple)),
    st.builds(TSr, st.lists(selectors, max_size=3).map(tuple)),
    st.builds(Configuration, st.integers(0, 255), st.lists(st.builds(ConfigAttribute, st.sampled_from(sorted(CfgAttr)), octets), max_size=3).map(tuple)),
    st.builds(Eap, octets),
    st.builds(UnknownPayload, st.integers(49, 52), octets),
)


@FUZZ
@given(
    st.lists(payloads, max_size=6),
    st.sampled_from(sorted(ExchangeType)),
    st.integers(0, 0x38),
    st.integers(0, 2**32 - 1),
    st.one_of(st.none(), st.builds(Encrypted, st.sampled_from([0, 35, 41]), octets)),
)
def test_generated_messages_round_trip(
    items: list[Payload], exchange: int, flags: int, message_id: int, sk: Encrypted | None
) -> None:
    all_payloads = tuple(items) + ((sk,) if sk else ())
    message = Message(Header(SPI_I, bytes(8), exchange, flags, message_id), all_payloads)
    wire = message.encode()
    decoded = decode_message(wire)
    assert decoded.payloads == all_payloads
    assert decoded.header.exchange == exchange and decoded.header.message_id == message_id
    assert decoded.encode() == wire
