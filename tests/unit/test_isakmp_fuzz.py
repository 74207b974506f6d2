"""Property tests: the codec never fails in any way but MalformedPacket.

Inputs are arbitrary bytes, real captured packets with bits flipped or cut
short, and structures built by hypothesis.  For anything that decodes,
encoding is stable: encode(decode(x)) decodes to the same thing and encodes
to the same bytes again.
"""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fswan.isakmp.attributes import Attribute, decode_attributes, encode_attributes
from fswan.isakmp.constants import ExchangeType, Flags, IdType, PayloadType, ProtocolId
from fswan.isakmp.errors import MalformedPacket
from fswan.isakmp.message import (
    Header,
    Message,
    decode_message,
    decode_payloads,
    encode_payloads,
    strip_non_esp_marker,
)
from fswan.isakmp.payloads import (
    PAYLOAD_DECODERS,
    CertPayload,
    CRPayload,
    DeletePayload,
    FragmentPayload,
    HashPayload,
    IDPayload,
    KEPayload,
    NATDPayload,
    NATOAPayload,
    NoncePayload,
    NotificationPayload,
    Proposal,
    SAPayload,
    SigPayload,
    Transform,
    UnknownPayload,
    AttributePayload,
    VendorIDPayload,
    decode_payload,
)
from tests.pcap import read_pcap

DATA = Path(__file__).resolve().parent.parent / "data"

FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    database=None,
)


def _real_messages() -> list[bytes]:
    """Every cleartext-framed IKE message in the lab captures (no ESP)."""
    messages = []
    for name in ("psk-main.pcap", "psk-aggressive.pcap", "pubkey-main-vectors.pcap"):
        for packet in read_pcap(DATA / name):
            data = packet.payload
            if 4500 in (packet.sport, packet.dport):
                if len(data) < 4:
                    continue
                data = strip_non_esp_marker(data)
                if data is None:
                    continue
            messages.append(data)
    return messages


REAL = _real_messages()
# The Main Mode/Aggressive cleartext ones are the interesting parse targets.
CLEARTEXT = [m for m in REAL if not m[19] & Flags.ENCRYPTION]
KNOWN_TYPES = sorted(int(t) for t in PAYLOAD_DECODERS) + [2, 3, 14, 77, 132]


def decodes_or_malformed(data: bytes) -> Message | None:
    try:
        return decode_message(data)
    except MalformedPacket as error:
        assert error.reason and isinstance(error.reason, str)
        return None


def check_stable(message: Message) -> None:
    encoded = message.encode()
    again = decode_message(encoded)
    assert again == message
    assert again.encode() == encoded


# ---------------------------------------------------------------------------
# Arbitrary and mutated input


@FUZZ
@given(st.binary(max_size=400))
def test_arbitrary_bytes(data):
    message = decodes_or_malformed(data)
    if message is not None:
        check_stable(message)


@FUZZ
@given(st.binary(max_size=300))
def test_arbitrary_body_behind_valid_header(body):
    """Random payload chains get past the header checks."""
    for first in (PayloadType.SA, PayloadType.ID, PayloadType.NOTIFICATION, PayloadType.DELETE):
        length = (28 + len(body)).to_bytes(4, "big")
        data = bytes(16) + bytes([first, 0x10, 2, 0]) + bytes(4) + length + body
        message = decodes_or_malformed(data)
        if message is not None:
            check_stable(message)


@FUZZ
@given(st.sampled_from(KNOWN_TYPES), st.binary(max_size=200))
def test_each_payload_decoder(payload_type, body):
    try:
        payload = decode_payload(payload_type, body)
    except MalformedPacket:
        return
    assert payload.raw == body
    again = decode_payload(payload_type, payload.encode())
    assert again == payload
    assert again.encode() == payload.encode()


@FUZZ
@given(st.sampled_from(KNOWN_TYPES), st.binary(max_size=300))
def test_decrypted_bodies(first, body):
    try:
        payloads = decode_payloads(first, body)
    except MalformedPacket:
        return
    if payloads:
        assert decode_payloads(payloads[0].payload_type, encode_payloads(payloads)) == payloads


@FUZZ
@given(st.binary(max_size=120))
def test_attributes(data):
    try:
        attributes = decode_attributes(data)
    except MalformedPacket:
        return
    assert encode_attributes(attributes) == data  # TV/TLV form is preserved


@FUZZ
@given(st.sampled_from(CLEARTEXT), st.data())
def test_bit_flips_in_real_packets(packet, data):
    mutated = bytearray(packet)
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(mutated) - 1))
        mutated[position] ^= 1 << data.draw(st.integers(0, 7))
    message = decodes_or_malformed(bytes(mutated))
    if message is not None:
        check_stable(message)


@FUZZ
@given(st.sampled_from(CLEARTEXT), st.data())
def test_byte_overwrites_in_real_packets(packet, data):
    """Lengths and counts set to arbitrary values, mostly."""
    mutated = bytearray(packet)
    position = data.draw(st.integers(0, len(mutated) - 1))
    mutated[position] = data.draw(st.integers(0, 255))
    message = decodes_or_malformed(bytes(mutated))
    if message is not None:
        check_stable(message)


@FUZZ
@given(st.sampled_from(REAL), st.data())
def test_truncated_real_packets(packet, data):
    cut = data.draw(st.integers(0, len(packet) - 1))
    truncated = packet[:cut]
    decodes_or_malformed(truncated)
    # a consistent header length over a truncated body: the chain must fail
    if cut >= 28:
        fixed = truncated[:24] + cut.to_bytes(4, "big") + truncated[28:]
        message = decodes_or_malformed(fixed)
        if message is not None:
            check_stable(message)


def test_real_packets_round_trip_exactly():
    assert len(REAL) > 20
    for packet in REAL:
        assert decode_message(packet).encode() == packet


# ---------------------------------------------------------------------------
# Generated structures: decode(encode(x)) == x



def _subnet(address: int, prefix: int, version: int) -> IDPayload:
    if version == 4:
        return IDPayload.ipv4_subnet(IPv4Network((address, prefix), strict=False))
    return IDPayload.ipv6_subnet(IPv6Network((address, prefix), strict=False))


u8 = st.integers(0, 255)
PRINTABLE = st.characters(min_codepoint=33, max_codepoint=126)
u16 = st.integers(0, 0xFFFF)
attributes = st.builds(
    Attribute,
    st.integers(0, 0x7FFF),
    st.one_of(u16, st.binary(max_size=12)),
)
transforms = st.builds(Transform, u8, u8, st.lists(attributes, max_size=4))
proposals = st.builds(
    Proposal,
    u8,
    st.sampled_from([1, 2, 3, 4, 9]),
    st.binary(max_size=8),
    st.lists(transforms, min_size=1, max_size=3),
)
sa_payloads = st.builds(
    SAPayload,
    st.lists(proposals, min_size=1, max_size=3),
    st.sampled_from([0, 1, 7]),
    st.sampled_from([0, 1]),
)
id_payloads = st.one_of(
    st.builds(IDPayload.ipv4_addr, st.builds(IPv4Address, st.integers(0, 2**32 - 1)), u8, u16),
    st.builds(IDPayload.ipv6_addr, st.builds(IPv6Address, st.integers(0, 2**128 - 1)), u8, u16),
    st.builds(_subnet, st.integers(0, 2**32 - 1), st.integers(0, 32), st.just(4)),
    st.builds(_subnet, st.integers(0, 2**128 - 1), st.integers(0, 128), st.just(6)),
    st.builds(
        IDPayload.ipv4_range,
        st.builds(IPv4Address, st.integers(0, 2**31)),
        st.builds(IPv4Address, st.integers(2**31, 2**32 - 1)),
    ),
    st.builds(IDPayload.fqdn, st.text(PRINTABLE, min_size=1, max_size=30)),
    st.builds(
        IDPayload,
        st.sampled_from([IdType.ID_DER_ASN1_DN, IdType.ID_KEY_ID, 200]),
        st.binary(max_size=20),
        u8,
        u16,
    ),
)
spis = st.sampled_from([0, 2, 4, 16]).flatmap(
    lambda size: st.lists(st.binary(min_size=size, max_size=size), max_size=4).map(
        lambda spis: DeletePayload(ProtocolId.ESP, spis, size)
    )
)
nonempty = st.binary(min_size=1, max_size=64)
payloads = st.one_of(
    sa_payloads,
    id_payloads,
    spis,
    st.builds(KEPayload, nonempty),
    st.builds(NoncePayload, nonempty),
    st.builds(HashPayload, nonempty),
    st.builds(SigPayload, nonempty),
    st.builds(VendorIDPayload, nonempty),
    st.builds(NATDPayload, nonempty, st.booleans()),
    st.builds(NATOAPayload, st.builds(IPv4Address, st.integers(0, 2**32 - 1)), st.booleans()),
    st.builds(CertPayload, u8, st.binary(max_size=40)),
    st.builds(CRPayload, u8, st.binary(max_size=40)),
    st.builds(
        NotificationPayload,
        u16,
        u8,
        st.binary(max_size=16),
        st.binary(max_size=16),
        st.sampled_from([0, 1]),
    ),
    st.builds(UnknownPayload, st.sampled_from([77, 133, 255]), st.binary(max_size=20)),
    st.builds(FragmentPayload, u16, st.integers(1, 255), st.booleans(), st.binary(max_size=40)),
    st.builds(
        AttributePayload,
        st.integers(1, 4),
        u16,
        st.lists(
            st.builds(Attribute, st.integers(0, 0x7FFF), st.integers(0, 0xFFFF) | st.binary(max_size=12)),
            max_size=4,
        ).map(tuple),
    ),
)
headers = st.builds(
    Header,
    st.binary(min_size=8, max_size=8),
    st.binary(min_size=8, max_size=8),
    st.sampled_from(
        [ExchangeType.MAIN_MODE, ExchangeType.AGGRESSIVE, ExchangeType.INFORMATIONAL, 99]
    ),
    st.sampled_from([Flags.NONE, Flags.COMMIT, Flags.AUTHENTICATION_ONLY]),
    st.integers(0, 2**32 - 1),
)


@FUZZ
@given(headers, st.lists(payloads, max_size=6))
def test_generated_messages_round_trip(header, payload_list):
    message = Message(header, payload_list)
    data = message.encode()
    decoded = decode_message(data)
    assert decoded.payloads == message.payloads
    assert decoded.header.length == len(data)
    assert decoded.encode() == data
    for original, payload in zip(message.payloads, decoded.payloads):
        assert payload.wire_body == original.encode()


@FUZZ
@given(
    headers,
    st.binary(min_size=1, max_size=64),
    st.sampled_from([PayloadType.HASH, PayloadType.ID]),
)
def test_generated_encrypted_messages(header, body, first):
    data = Message(replace(header, next_payload=first), encrypted_body=body).encode()
    decoded = decode_message(data)
    assert decoded.encrypted_body == body
    assert decoded.header.next_payload == first
    assert decoded.header.flags & Flags.ENCRYPTION
