"""IKEv2 cryptography: prf+, the key schedule's lengths, SK and SKF sealing
for every supported suite, and the typed errors on anything damaged.
(The values strongSwan computes are checked in test_ikev2_vectors.py.)"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fswan.ikev2 import crypto
from fswan.ikev2.constants import EncrId, ExchangeType, Flags, IntegId, NotifyType, PayloadType, PrfId, TransformType
from fswan.ikev2.errors import IntegrityError, MalformedMessage
from fswan.ikev2.message import Header, decode_message, encode_payloads
from fswan.ikev2.payloads import (
    Attribute,
    Authentication,
    IDi,
    Notify,
    Proposal,
    Transform,
    TrafficSelector,
    TSi,
    VendorId,
)

SUITES = [
    crypto.IkeSuite(EncrId.AES_CBC, 128, PrfId.HMAC_SHA1, IntegId.HMAC_SHA1_96),
    crypto.IkeSuite(EncrId.AES_CBC, 128, PrfId.HMAC_SHA2_256, IntegId.HMAC_SHA2_256_128),
    crypto.IkeSuite(EncrId.AES_CBC, 192, PrfId.HMAC_SHA2_384, IntegId.HMAC_SHA2_384_192),
    crypto.IkeSuite(EncrId.AES_CBC, 256, PrfId.HMAC_SHA2_512, IntegId.HMAC_SHA2_512_256),
    crypto.IkeSuite(EncrId.AES_GCM_8, 128, PrfId.HMAC_SHA2_256),
    crypto.IkeSuite(EncrId.AES_GCM_12, 192, PrfId.HMAC_SHA2_256),
    crypto.IkeSuite(EncrId.AES_GCM_16, 256, PrfId.HMAC_SHA2_512),
    crypto.IkeSuite(EncrId.CHACHA20_POLY1305, 256, PrfId.HMAC_SHA2_256),
]
HEADER = Header(b"\x11" * 8, b"\x22" * 8, ExchangeType.IKE_AUTH, Flags.INITIATOR, 1)
INNER = (
    IDi(1, bytes([192, 0, 2, 1])),
    Notify(NotifyType.INITIAL_CONTACT),
    Authentication(2, b"\x42" * 32),
    TSi((TrafficSelector.from_range("198.51.100.0", "198.51.100.127"),)),
)
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)


def keys_for(suite: crypto.IkeSuite) -> crypto.IkeSaKeys:
    return crypto.derive_ike_keys(suite, b"seed" * 8, b"n" * 32, b"m" * 32, HEADER.spi_i, HEADER.spi_r)


def test_prf_plus_is_the_rfc_definition() -> None:
    key, seed = b"K" * 20, b"S" * 10

    def h(data: bytes) -> bytes:
        return hmac.new(key, data, hashlib.sha256).digest()

    t1 = h(seed + b"\x01")
    t2 = h(t1 + seed + b"\x02")
    t3 = h(t2 + seed + b"\x03")
    assert crypto.prf_plus(PrfId.HMAC_SHA2_256, key, seed, 70) == (t1 + t2 + t3)[:70]
    assert crypto.prf_plus(PrfId.HMAC_SHA2_256, key, seed, 32 * 255)[-32:] != b""
    with pytest.raises(ValueError):
        crypto.prf_plus(PrfId.HMAC_SHA2_256, key, seed, 32 * 255 + 1)
    with pytest.raises(ValueError):
        crypto.prf(PrfId.AES128_XCBC, key, seed)


def test_skeyseed_and_rekey_skeyseed() -> None:
    ni, nr, gir = b"i" * 16, b"r" * 16, b"g" * 256
    assert crypto.skeyseed(PrfId.HMAC_SHA1, ni, nr, gir) == hmac.new(ni + nr, gir, hashlib.sha1).digest()
    old_d = b"d" * 32
    assert crypto.rekey_skeyseed(PrfId.HMAC_SHA2_256, old_d, gir, ni, nr) == hmac.new(
        old_d, gir + ni + nr, hashlib.sha256
    ).digest()


@pytest.mark.parametrize(
    "suite, sizes",
    [
        (SUITES[0], (20, 20, 16)),
        (SUITES[1], (32, 32, 16)),
        (SUITES[2], (48, 48, 24)),
        (SUITES[3], (64, 64, 32)),
        (SUITES[4], (32, 0, 20)),
        (SUITES[6], (64, 0, 36)),
        (SUITES[7], (32, 0, 36)),
    ],
)
def test_key_lengths_per_transform(suite: crypto.IkeSuite, sizes: tuple[int, int, int]) -> None:
    prf_len, integ_len, encr_len = sizes
    keys = keys_for(suite)
    assert len(keys.sk_d) == len(keys.sk_pi) == len(keys.sk_pr) == prf_len
    assert len(keys.sk_ai) == len(keys.sk_ar) == integ_len
    assert len(keys.sk_ei) == len(keys.sk_er) == encr_len
    stream = crypto.prf_plus(suite.prf, b"seed" * 8, b"n" * 32 + b"m" * 32 + HEADER.spis, 3 * prf_len + 2 * integ_len + 2 * encr_len)
    assert stream.startswith(keys.sk_d + keys.sk_ai + keys.sk_ar + keys.sk_ei)
    assert stream.endswith(keys.sk_pr)
    assert "seed" not in repr(keys) and "<hidden>" in repr(keys.sender(True))


def test_suite_from_proposal_and_refusals() -> None:
    proposal = Proposal(1, 1, b"", (
        Transform(TransformType.ENCR, EncrId.AES_GCM_16, (Attribute(14, 256),)),
        Transform(TransformType.PRF, PrfId.HMAC_SHA2_384),
        Transform(TransformType.DH, 19),
    ))
    assert crypto.IkeSuite.from_proposal(proposal) == crypto.IkeSuite(EncrId.AES_GCM_16, 256, PrfId.HMAC_SHA2_384)
    with pytest.raises(ValueError):
        crypto.IkeSuite(EncrId.AES_CBC, 128, PrfId.HMAC_SHA2_256)  # no integrity
    with pytest.raises(ValueError):
        crypto.IkeSuite(EncrId.AES_GCM_16, 128, PrfId.HMAC_SHA2_256, IntegId.HMAC_SHA2_256_128)
    with pytest.raises(ValueError):
        crypto.IkeSuite(EncrId.AES_CBC, 100, PrfId.HMAC_SHA2_256, IntegId.HMAC_SHA2_256_128)
    with pytest.raises(ValueError):
        crypto.IkeSuite(EncrId.TRIPLE_DES, 192, PrfId.HMAC_SHA2_256, IntegId.HMAC_SHA2_256_128)


@pytest.mark.parametrize("suite", SUITES, ids=lambda s: f"{EncrId(s.encr).name}-{s.key_bits}")
def test_protect_round_trip(suite: crypto.IkeSuite) -> None:
    keys = keys_for(suite).sender(True)
    iv = os.urandom(suite.iv_size)
    wire = crypto.protect(suite, keys, HEADER, INNER, iv, cleartext=(VendorId(b"v"),))
    message = decode_message(wire)
    assert message.header.next_payload == PayloadType.VENDOR_ID
    assert len(wire) == message.header.length
    opened = crypto.unprotect(suite, keys, wire)
    assert opened.payloads == (VendorId(b"v"),) + INNER
    assert opened.header.message_id == 1
    # the other direction's keys, a changed header byte, a flipped ICV bit: all integrity errors
    for bad_keys, data in (
        (keys_for(suite).sender(False), wire),
        (keys, wire[:20] + b"\x02" + wire[21:]),
        (keys, wire[:-1] + bytes([wire[-1] ^ 1])),
    ):
        with pytest.raises(IntegrityError):
            crypto.unprotect(suite, bad_keys, data)


def test_cbc_layout_padding_and_icv() -> None:
    suite = SUITES[1]
    keys = keys_for(suite).sender(False)
    iv = bytes(range(16))
    wire = crypto.protect(suite, keys, HEADER, INNER, iv)
    plain = encode_payloads(INNER)
    padded = -(-(len(plain) + 1) // 16) * 16
    assert len(wire) == 28 + 4 + 16 + padded + 16
    icv = hmac.new(keys.integrity, wire[:-16], hashlib.sha256).digest()[:16]
    assert wire[-16:] == icv


def test_gcm_follows_rfc5282() -> None:
    """Nonce = 4-byte salt from SK_e | 8-byte IV; AAD = IKE header .. SK header."""
    suite = SUITES[6]
    keys = keys_for(suite).sender(True)
    iv = b"\x07" * 8
    wire = crypto.protect(suite, keys, HEADER, INNER, iv)
    head = wire[:32]
    plain = encode_payloads(INNER) + b"\x00"
    expected = AESGCM(keys.encryption[:32]).encrypt(keys.encryption[32:] + iv, plain, head)
    assert wire[32:] == iv + expected


def test_bad_padding_and_short_bodies_are_integrity_errors() -> None:
    suite = SUITES[6]
    keys = keys_for(suite).sender(True)
    head_len = 32
    # a well-tagged body whose pad length points before the start
    iv = b"\x01" * 8
    header = struct.pack("!8s8sBBBBII", HEADER.spi_i, HEADER.spi_r, PayloadType.SK, 0x20, 35, 8, 1, head_len + 8 + 2 + 16)
    sk_head = struct.pack("!BBH", 35, 0, 4 + 8 + 2 + 16)
    sealed = AESGCM(keys.encryption[:32]).encrypt(keys.encryption[32:] + iv, b"\x00\x05", header + sk_head)
    with pytest.raises(IntegrityError, match="pad length 5"):
        crypto.unprotect(suite, keys, header + sk_head + iv + sealed)
    short = struct.pack("!8s8sBBBBII", HEADER.spi_i, HEADER.spi_r, PayloadType.SK, 0x20, 35, 8, 1, 28 + 4 + 10)
    with pytest.raises(IntegrityError):
        crypto.unprotect(suite, keys, short + struct.pack("!BBH", 35, 0, 14) + bytes(10))


def test_inner_syntax_errors_are_malformed_not_integrity() -> None:
    suite = SUITES[1]
    keys = keys_for(suite).sender(True)
    wire = crypto.protect(suite, keys, HEADER, (), b"\x00" * 16)
    assert crypto.unprotect(suite, keys, wire).payloads == ()
    no_sk = HEADER.encode()
    with pytest.raises(MalformedMessage, match="no encrypted payload"):
        crypto.unprotect(suite, keys, no_sk)


@pytest.mark.parametrize("suite", [SUITES[1], SUITES[6]], ids=["cbc", "gcm"])
@pytest.mark.parametrize("size", [100, 128, 200, 1280])
def test_fragments_round_trip(suite: crypto.IkeSuite, size: int) -> None:
    keys = keys_for(suite).sender(True)
    inner = INNER + (VendorId(os.urandom(300)),)
    pieces = crypto.protect_fragments(suite, keys, HEADER, inner, size, os.urandom)
    assert all(len(p) <= size for p in pieces)
    assert len(pieces) > 1 or size == 1280
    opened = [crypto.unprotect_fragment(suite, keys, p) for p in pieces]
    assert [f.number for _, f in opened] == list(range(1, len(pieces) + 1))
    assert opened[0][1].first_payload == PayloadType.IDI
    assert all(f.first_payload == 0 for _, f in opened[1:])
    assert all(h.message_id == 1 for h, _ in opened)
    frags = [f for _, f in reversed(opened)]
    assert crypto.reassemble(HEADER, frags).payloads == inner
    if len(frags) > 1:
        with pytest.raises(MalformedMessage, match="incomplete"):
            crypto.reassemble(HEADER, frags[1:])


def test_fragment_aad_covers_the_fragment_numbers() -> None:
    suite = SUITES[6]
    keys = keys_for(suite).sender(True)
    pieces = crypto.protect_fragments(suite, keys, HEADER, INNER, 90, os.urandom)
    assert len(pieces) >= 3
    piece = pieces[1]
    tampered = piece[:33] + b"\x03" + piece[34:]  # fragment number 2 -> 3
    with pytest.raises(IntegrityError):
        crypto.unprotect_fragment(suite, keys, tampered)
    with pytest.raises(ValueError):
        crypto.protect_fragments(suite, keys, HEADER, INNER, 60, os.urandom)


def test_signed_octets_and_psk_auth() -> None:
    octets = crypto.signed_octets(PrfId.HMAC_SHA2_256, b"MSG", b"NONCE", b"k" * 32, b"\x01\x00\x00\x00\xc0\x00\x02\x01")
    mac = hmac.new(b"k" * 32, b"\x01\x00\x00\x00\xc0\x00\x02\x01", hashlib.sha256).digest()
    assert octets == b"MSGNONCE" + mac
    pad = hmac.new(b"secret", b"Key Pad for IKEv2", hashlib.sha256).digest()
    auth = hmac.new(pad, octets, hashlib.sha256).digest()
    assert crypto.psk_auth(PrfId.HMAC_SHA2_256, b"secret", octets) == auth
    assert crypto.verify_psk_auth(PrfId.HMAC_SHA2_256, b"secret", octets, auth)
    assert not crypto.verify_psk_auth(PrfId.HMAC_SHA2_256, b"secret", octets, auth[:-1])


@FUZZ
@given(st.sampled_from(SUITES), st.binary(max_size=200), st.integers(0, 255))
def test_random_sk_bodies_raise_only_typed_errors(suite: crypto.IkeSuite, body: bytes, first: int) -> None:
    keys = keys_for(suite).sender(True)
    header = HEADER.encode()[:16] + bytes([PayloadType.SK, 0x20, 35, 8]) + b"\x00\x00\x00\x01"
    wire = header + (32 + len(body)).to_bytes(4, "big") + struct.pack("!BBH", first, 0, 4 + len(body)) + body
    try:
        crypto.unprotect(suite, keys, wire)
    except (IntegrityError, MalformedMessage):
        pass


@FUZZ
@given(st.sampled_from(SUITES), st.data())
def test_mutated_sealed_messages_are_refused(suite: crypto.IkeSuite, data: st.DataObject) -> None:
    keys = keys_for(suite).sender(True)
    wire = bytearray(crypto.protect(suite, keys, HEADER, INNER, b"\x05" * suite.iv_size))
    index = data.draw(st.integers(0, len(wire) - 1))
    wire[index] ^= data.draw(st.integers(1, 255))
    with pytest.raises((IntegrityError, MalformedMessage)):
        crypto.unprotect(suite, keys, bytes(wire))
