"""Unit tests for fswan.ike.crypto and fswan.ike.dh: RFC 2409 formulas, edges, refusals.

The formulas are recomputed here with ``hmac``/``hashlib`` directly, written
the way RFC 2409 states them, so each test is an independent oracle.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import re
import struct

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils

from fswan.ike import crypto, dh
from fswan.suites import (
    DEFAULT_ESP_PROPOSALS,
    EspProposal,
    UnsupportedAlgorithm,
    esp_cipher_by_id,
    get_ike_cipher,
    ike_cipher_by_id,
    parse_esp,
)

HASHLIB = {"md5": "md5", "sha1": "sha1", "sha2_256": "sha256", "sha2_384": "sha384",
           "sha2_512": "sha512"}


def counter_bytes(seed: int = 1):
    """A deterministic random_bytes: 0x01 0x02 ... from ``seed``."""
    state = itertools.count(seed)

    def random_bytes(n: int) -> bytes:
        return bytes(next(state) & 0xFF for _ in range(n))

    return random_bytes


def H(name: str, key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, HASHLIB[name]).digest()


# --------------------------------------------------------------------------
# prf and digests


@pytest.mark.parametrize("name", sorted(HASHLIB))
def test_prf_is_hmac_of_the_negotiated_hash(name: str) -> None:
    assert crypto.prf(name, b"key", b"data") == H(name, b"key", b"data")
    assert crypto.digest(name, b"data") == hashlib.new(HASHLIB[name], b"data").digest()


def test_hash_accepts_aliases_and_oakley_ids() -> None:
    ref = H("sha2_256", b"k", b"d")
    assert crypto.prf("sha256", b"k", b"d") == ref
    assert crypto.prf(4, b"k", b"d") == ref
    assert crypto.prf("sha", b"k", b"d") == H("sha1", b"k", b"d")
    with pytest.raises(UnsupportedAlgorithm):
        crypto.prf(3, b"k", b"d")  # Tiger: not supported


def test_constant_time_equal() -> None:
    assert crypto.constant_time_equal(b"\x01" * 20, b"\x01" * 20)
    assert not crypto.constant_time_equal(b"\x01" * 20, b"\x01" * 19 + b"\x02")
    assert not crypto.constant_time_equal(b"\x01" * 20, b"\x01" * 16)


# --------------------------------------------------------------------------
# SKEYID and the phase-1 key


def test_skeyid_psk_and_sig() -> None:
    ni, nr, gxy = b"\x11" * 16, b"\x22" * 32, b"\x33" * 128
    assert crypto.skeyid_psk("sha1", b"secret", ni, nr) == H("sha1", b"secret", ni + nr)
    assert crypto.skeyid_sig("md5", ni, nr, gxy) == H("md5", ni + nr, gxy)


def test_skeyid_children_follow_rfc2409_section5() -> None:
    skeyid, gxy = b"\x01" * 20, b"\x02" * 256
    ci, cr = b"\xaa" * 8, b"\xbb" * 8
    keys = crypto.derive_phase1_keys("sha1", skeyid, gxy, ci, cr, "aes", 128)
    d = H("sha1", skeyid, gxy + ci + cr + b"\x00")
    a = H("sha1", skeyid, d + gxy + ci + cr + b"\x01")
    e = H("sha1", skeyid, a + gxy + ci + cr + b"\x02")
    assert (keys.skeyid_d, keys.skeyid_a, keys.skeyid_e) == (d, a, e)
    assert keys.enc_key == e[:16]
    assert keys.hash.name == "sha1"


def _appendix_b(name: str, skeyid_e: bytes, length: int) -> bytes:
    k = H(name, skeyid_e, b"\x00")
    out = k
    while len(out) < length:
        k = H(name, skeyid_e, k)
        out += k
    return out[:length]


@pytest.mark.parametrize(
    "hash_name, cipher, bits, expands",
    [
        ("md5", "3des", 192, True),     # 16-byte SKEYID_e, 24-byte key
        ("sha1", "3des", 192, True),    # 20 < 24
        ("sha1", "aes", 256, True),     # 20 < 32
        ("md5", "aes", 192, True),
        ("sha1", "aes", 128, False),
        ("sha2_256", "aes", 256, False),
        ("sha2_512", "3des", 192, False),
    ],
)
def test_encryption_key_appendix_b_expansion(hash_name: str, cipher: str, bits: int,
                                             expands: bool) -> None:
    keys = crypto.derive_phase1_keys(hash_name, b"s" * 16, b"g" * 128, b"i" * 8, b"r" * 8,
                                     cipher, bits)
    assert len(keys.enc_key) == bits // 8
    if expands:
        assert keys.enc_key == _appendix_b(hash_name, keys.skeyid_e, bits // 8)
        assert keys.enc_key[:len(keys.skeyid_e)] != keys.skeyid_e
    else:
        assert keys.enc_key == keys.skeyid_e[:bits // 8]


def test_3des_md5_expansion_by_hand() -> None:
    """K1 = prf(SKEYID_e, 0), K2 = prf(SKEYID_e, K1); key = (K1 | K2)[:24]."""
    skeyid_e = bytes(range(16))
    k1 = hmac.new(skeyid_e, b"\x00", "md5").digest()
    k2 = hmac.new(skeyid_e, k1, "md5").digest()
    assert crypto.encryption_key("md5", skeyid_e, 24) == (k1 + k2)[:24]
    assert crypto.encryption_key("md5", skeyid_e, 16) == skeyid_e


def test_derive_phase1_keys_rejects_bad_inputs() -> None:
    with pytest.raises(UnsupportedAlgorithm):
        crypto.derive_phase1_keys("sha1", b"s", b"g", b"i" * 8, b"r" * 8, "aes", 100)
    with pytest.raises(UnsupportedAlgorithm):
        crypto.derive_phase1_keys("sha1", b"s", b"g", b"i" * 8, b"r" * 8, "3des", 128)
    with pytest.raises(ValueError, match="cookies"):
        crypto.derive_phase1_keys("sha1", b"s", b"g", b"i" * 4, b"r" * 8, "aes", 128)


DES = "OAKLEY_DES_CBC is not supported"


@pytest.mark.parametrize(
    "call",
    [
        lambda: crypto.derive_phase1_keys("sha1", b"s", b"g", b"i" * 8, b"r" * 8, "des"),
        lambda: crypto.derive_phase1_keys("sha1", b"s", b"g", b"i" * 8, b"r" * 8, 1),
        lambda: crypto.derive_phase1_keys("sha1", b"s", b"g", b"i" * 8, b"r" * 8, "des_cbc"),
        lambda: crypto.Phase1Crypter("des", b"k" * 8, "sha1", b"v" * 8),
        lambda: crypto.Phase1Crypter(1, b"k" * 8, "md5", b"v" * 8),
        lambda: get_ike_cipher("DES"),
        lambda: ike_cipher_by_id(1),
    ],
)
def test_single_des_is_refused_with_plutos_words(call) -> None:
    with pytest.raises(UnsupportedAlgorithm) as info:
        call()
    assert str(info.value) == DES


def test_esp_des_and_null_are_refused() -> None:
    with pytest.raises(UnsupportedAlgorithm, match="^ESP_DES is not supported$"):
        esp_cipher_by_id(2)
    with pytest.raises(UnsupportedAlgorithm, match="^ESP_NULL is not supported$"):
        esp_cipher_by_id(11)


# --------------------------------------------------------------------------
# HASH_I / HASH_R / IVs / phase-2 hashes


def test_hash_i_and_hash_r_orders() -> None:
    skeyid = b"K" * 20
    gxi, gxr, ci, cr, sa, idi, idr = b"I" * 4, b"R" * 4, b"c" * 8, b"d" * 8, b"SA", b"ID1", b"ID2"
    assert crypto.hash_i("sha1", skeyid, gxi, gxr, ci, cr, sa, idi) == H(
        "sha1", skeyid, gxi + gxr + ci + cr + sa + idi)
    assert crypto.hash_r("sha1", skeyid, gxi, gxr, ci, cr, sa, idr) == H(
        "sha1", skeyid, gxr + gxi + cr + ci + sa + idr)


def test_ivs_are_truncated_hashes() -> None:
    gxi, gxr = b"\x01" * 128, b"\x02" * 128
    assert crypto.phase1_iv("md5", gxi, gxr, 8) == hashlib.md5(gxi + gxr).digest()[:8]
    assert crypto.phase1_iv("sha1", gxi, gxr, 16) == hashlib.sha1(gxi + gxr).digest()[:16]
    last = b"\x09" * 16
    assert crypto.phase2_iv("sha1", last, 0xA3946D91, 16) == hashlib.sha1(
        last + bytes.fromhex("a3946d91")).digest()[:16]
    with pytest.raises(ValueError):
        crypto.phase2_iv("sha1", last, 1 << 32, 16)


def test_quick_mode_and_informational_hashes() -> None:
    a, mid = b"A" * 20, 0x01020304
    m = struct.pack("!I", mid)
    ni, nr, rest = b"n" * 16, b"N" * 16, b"payloads"
    assert crypto.qm_hash1("sha1", a, mid, rest) == H("sha1", a, m + rest)
    assert crypto.qm_hash2("sha1", a, mid, ni, rest) == H("sha1", a, m + ni + rest)
    assert crypto.qm_hash3("sha1", a, mid, ni, nr) == H("sha1", a, b"\x00" + m + ni + nr)
    assert crypto.informational_hash("sha2_256", a, mid, rest) == H("sha2_256", a, m + rest)


# --------------------------------------------------------------------------
# KEYMAT


def _keymat_oracle(name: str, skeyid_d: bytes, seed: bytes, length: int) -> bytes:
    out, k = b"", b""
    while len(out) < length:
        k = H(name, skeyid_d, k + seed)
        out += k
    return out[:length]


@pytest.mark.parametrize(
    "text, enc, salt, integ, total",
    [
        ("aes_gcm256", 32, 4, 0, 36),
        ("aes_gcm128", 16, 4, 0, 20),
        ("aes256-sha2_256", 32, 0, 32, 64),
        ("aes128-sha2_256", 16, 0, 32, 48),
        ("aes256-sha1", 32, 0, 20, 52),
        ("aes128-sha1", 16, 0, 20, 36),
        ("aes192-sha2_384", 24, 0, 48, 72),
        ("aes128-sha2_512", 16, 0, 64, 80),
        ("3des-sha1", 24, 0, 20, 44),
        ("3des-md5", 24, 0, 16, 40),
    ],
)
def test_keymat_lengths_and_split(text: str, enc: int, salt: int, integ: int, total: int) -> None:
    (proposal,) = parse_esp(text)
    assert proposal.keymat_length == total
    skeyid_d, ni, nr, spi = b"D" * 20, b"i" * 16, b"r" * 24, 0x11223344
    keys = crypto.derive_esp_keys("sha1", skeyid_d, proposal, spi, ni, nr)
    seed = b"\x03" + bytes.fromhex("11223344") + ni + nr
    material = _keymat_oracle("sha1", skeyid_d, seed, total)
    assert keys.encryption_key == material[:enc]
    assert keys.salt == material[enc:enc + salt]
    assert keys.integrity_key == material[enc + salt:]
    assert len(keys.integrity_key) == integ


def test_every_default_esp_proposal_gets_its_keymat() -> None:
    for proposal in DEFAULT_ESP_PROPOSALS:
        keys = crypto.derive_esp_keys("sha2_256", b"D" * 32, proposal, b"\x00\x00\x10\x00",
                                      b"i" * 16, b"r" * 16)
        assert len(keys.encryption_key) + len(keys.salt) + len(keys.integrity_key) == (
            proposal.keymat_length)


def test_keymat_expansion_and_prefix_property() -> None:
    d, ni, nr = b"D" * 16, b"i" * 16, b"r" * 16
    long = crypto.keymat("md5", d, 3, 0x01, ni, nr, 100)
    seed = b"\x03\x00\x00\x00\x01" + ni + nr
    k1 = H("md5", d, seed)
    k2 = H("md5", d, k1 + seed)
    assert long[:32] == k1 + k2
    assert long == _keymat_oracle("md5", d, seed, 100)
    assert crypto.keymat("md5", d, 3, 0x01, ni, nr, 20) == long[:20]


def test_keymat_with_pfs_puts_the_qm_secret_first() -> None:
    d, ni, nr, gqm = b"D" * 20, b"i" * 16, b"r" * 16, b"\x05" * 256
    got = crypto.keymat("sha1", d, 3, b"\xde\xad\xbe\xef", ni, nr, 44, g_qm_xy=gqm)
    seed = gqm + b"\x03\xde\xad\xbe\xef" + ni + nr
    assert got == _keymat_oracle("sha1", d, seed, 44)
    assert got != crypto.keymat("sha1", d, 3, b"\xde\xad\xbe\xef", ni, nr, 44)


def test_split_keymat_refuses_short_material() -> None:
    with pytest.raises(ValueError, match="KEYMAT is 10 bytes; 36 required"):
        crypto.split_keymat(EspProposal("aes_cbc", 128, "sha1"), b"x" * 10)


# --------------------------------------------------------------------------
# Phase1Crypter


def _pair(cipher: str = "aes", key_len: int = 16, hash_name: str = "sha1"):
    bs = 16 if cipher == "aes" else 8
    key, iv = bytes(range(key_len)), bytes(range(100, 100 + bs))
    return crypto.Phase1Crypter(cipher, key, hash_name, iv), crypto.Phase1Crypter(
        cipher, key, hash_name, iv)


@pytest.mark.parametrize("cipher, key_len, bs", [("aes", 16, 16), ("aes", 24, 16),
                                                  ("aes", 32, 16), ("3des", 24, 8)])
def test_crypter_chains_ivs_across_both_directions(cipher: str, key_len: int, bs: int) -> None:
    initiator, responder = _pair(cipher, key_len)
    first_iv = initiator.iv(0)
    c5 = initiator.encrypt(0, b"main mode 5 payloads")
    assert len(c5) % bs == 0
    assert initiator.iv(0) == c5[-bs:] != first_iv
    p5 = responder.decrypt(0, c5)
    assert p5.rstrip(b"\x00") == b"main mode 5 payloads"
    c6 = responder.encrypt(0, b"main mode 6")
    assert initiator.decrypt(0, c6).rstrip(b"\x00") == b"main mode 6"
    assert initiator.iv(0) == responder.iv(0) == c6[-bs:]


def test_crypter_pads_with_zeros_to_the_block() -> None:
    aes, _ = _pair("aes")
    tdes, _ = _pair("3des", 24)
    assert len(aes.encrypt(0, b"x" * 17)) == 32
    assert len(aes.encrypt(0, b"x" * 32)) == 32
    assert len(aes.encrypt(0, b"")) == 16
    assert len(tdes.encrypt(0, b"x" * 17)) == 24
    a, b = _pair("aes")
    assert b.decrypt(0, a.encrypt(0, b"abc")) == b"abc" + b"\x00" * 13


def test_crypter_decrypt_tolerates_any_padding() -> None:
    a, b = _pair("aes")
    body = b"payload" + bytes([0xEE] * 8) + b"\x08"  # non-zero padding, length byte
    assert b.decrypt(0, a.encrypt(0, body)) == body


def test_crypter_phase2_chains_are_per_message_id() -> None:
    a, b = _pair("aes")
    b.decrypt(0, a.encrypt(0, b"mm5"))
    a.decrypt(0, b.encrypt(0, b"mm6"))
    last = a.iv(0)
    mid1, mid2 = 0x11111111, 0x22222222
    assert a.iv(mid1) == hashlib.sha1(last + struct.pack("!I", mid1)).digest()[:16]
    qm1 = a.encrypt(mid1, b"quick mode 1")
    info = a.encrypt(mid2, b"informational")  # its own chain from phase 1
    assert b.decrypt(mid2, info).startswith(b"informational")
    assert b.decrypt(mid1, qm1).startswith(b"quick mode 1")
    qm2 = b.encrypt(mid1, b"quick mode 2")
    assert a.decrypt(mid1, qm2).startswith(b"quick mode 2")
    assert a.iv(mid1) == qm2[-16:]
    assert a.iv(0) == last  # phase-1 chain untouched
    a.forget(mid1)
    assert a.iv(mid1) == hashlib.sha1(last + struct.pack("!I", mid1)).digest()[:16]
    a.forget(0)  # never drops the phase-1 chain
    assert a.iv(0) == last


def test_crypter_keeps_the_iv_when_asked() -> None:
    a, b = _pair("aes")
    before = b.iv(0)
    ct = a.encrypt(0, b"check me first")
    assert b.decrypt(0, ct, update_iv=False).startswith(b"check me first")
    assert b.iv(0) == before
    b.set_iv(0, ct[-16:])
    assert b.iv(0) == a.iv(0)
    with pytest.raises(ValueError):
        b.set_iv(0, b"short")


@pytest.mark.parametrize("size", [0, 15, 17])
def test_crypter_rejects_bad_lengths(size: int) -> None:
    _a, b = _pair("aes")
    with pytest.raises(crypto.DecryptError, match=f"is {size} bytes"):
        b.decrypt(0, b"\x41" * size)


def test_crypter_rejects_bad_key_and_iv() -> None:
    with pytest.raises(UnsupportedAlgorithm):
        crypto.Phase1Crypter("aes", b"k" * 20, "sha1", b"v" * 16)
    with pytest.raises(ValueError, match="IV must be 16 bytes"):
        crypto.Phase1Crypter("aes", b"k" * 16, "sha1", b"v" * 8)


def test_for_phase1_uses_the_keys_and_hash_of_gxi_gxr() -> None:
    keys = crypto.derive_phase1_keys("md5", b"s" * 16, b"g" * 128, b"i" * 8, b"r" * 8, "3des")
    c = crypto.Phase1Crypter.for_phase1(keys, "3des", b"X" * 128, b"Y" * 128)
    assert c.block_size == 8
    assert c.iv(0) == hashlib.md5(b"X" * 128 + b"Y" * 128).digest()[:8]


def test_no_secret_in_reprs() -> None:
    keys = crypto.derive_phase1_keys("sha1", b"s" * 20, b"g" * 128, b"i" * 8, b"r" * 8, "aes")
    text = repr(keys)
    for secret in (keys.skeyid, keys.skeyid_d, keys.skeyid_a, keys.skeyid_e, keys.enc_key):
        assert secret.hex() not in text and repr(secret) not in text
    c = crypto.Phase1Crypter.for_phase1(keys, "aes", b"X", b"Y")
    assert keys.enc_key.hex() not in repr(c) and repr(keys.enc_key) not in repr(c)
    esp = crypto.EspKeys(b"E" * 16, b"I" * 20, b"S" * 4)
    assert "EEEE" not in repr(esp) and "IIII" not in repr(esp) and "SSSS" not in repr(esp)
    pair = dh.DHKeyPair(dh.MODP1024, 0x123456789ABCDEF)
    assert repr(pair) == "<DHKeyPair MODP1024>"


# --------------------------------------------------------------------------
# RSA signatures


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def test_rsa_sign_builds_pkcs1_block_without_digestinfo(rsa_key: rsa.RSAPrivateKey) -> None:
    h = hashlib.sha1(b"HASH_I input").digest()
    sig = crypto.rsa_sign_hash(rsa_key, h, counter_bytes())
    pub = rsa_key.public_key().public_numbers()
    em = pow(int.from_bytes(sig, "big"), pub.e, pub.n).to_bytes(256, "big")
    assert em == b"\x00\x01" + b"\xff" * (256 - 3 - 20) + b"\x00" + h
    assert crypto.rsa_verify_hash(rsa_key.public_key(), h, sig)
    # the DigestInfo form cryptography would build is a different signature
    with pytest.raises(InvalidSignature):
        rsa_key.public_key().verify(sig, h, padding.PKCS1v15(), utils.Prehashed(hashes.SHA1()))


def test_rsa_sign_is_deterministic_whatever_the_blinding(rsa_key: rsa.RSAPrivateKey) -> None:
    h = hashlib.sha256(b"x").digest()
    assert crypto.rsa_sign_hash(rsa_key, h, counter_bytes(1)) == crypto.rsa_sign_hash(
        rsa_key, h, counter_bytes(77))


def test_rsa_verify_rejects(rsa_key: rsa.RSAPrivateKey) -> None:
    pub = rsa_key.public_key()
    h = hashlib.sha1(b"a").digest()
    sig = crypto.rsa_sign_hash(rsa_key, h)
    assert not crypto.rsa_verify_hash(pub, hashlib.sha1(b"b").digest(), sig)
    assert not crypto.rsa_verify_hash(pub, h, sig[1:])
    assert not crypto.rsa_verify_hash(pub, h, b"\xff" * 256)  # >= n
    assert not crypto.rsa_verify_hash(pub, h, bytes([sig[0] ^ 1]) + sig[1:])
    other = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    assert not crypto.rsa_verify_hash(other.public_key(), h, sig)


# --------------------------------------------------------------------------
# Diffie-Hellman


def _pi_times_2_to(bits: int) -> int:
    """floor(pi * 2^bits) by Machin's formula, to check the RFC primes."""
    guard = 32
    one = 1 << (bits + guard)

    def arctan_inv(x: int) -> int:
        total = term = one // x
        n, sign = 3, -1
        while term:
            term //= x * x
            total += sign * (term // n)
            n, sign = n + 2, -sign
        return total

    return (16 * arctan_inv(5) - 4 * arctan_inv(239)) >> guard


@pytest.mark.parametrize(
    "group, number, bits, k",
    [
        (dh.MODP1024, 2, 1024, 129093),
        (dh.MODP1536, 5, 1536, 741804),
        (dh.MODP2048, 14, 2048, 124476),
        (dh.MODP3072, 15, 3072, 1690314),
        (dh.MODP4096, 16, 4096, 240904),
    ],
)
def test_primes_match_the_rfc_definition(
    group: dh.DHGroup, number: int, bits: int, k: int
) -> None:
    """p = 2^n - 2^(n-64) - 1 + 2^64 * (floor(2^(n-130) pi) + k) (RFC 2409 6.2, RFC 3526)."""
    p = 2**bits - 2**(bits - 64) - 1 + 2**64 * (_pi_times_2_to(bits - 130) + k)
    assert group.prime == p
    assert (group.number, group.bits, group.generator) == (number, bits, 2)
    assert group.length == bits // 8
    assert dh.get_group(number) is group
    assert dh.group_by_name(f"modp{bits}") is group


@pytest.mark.parametrize("group", list(dh.MODP_GROUPS.values()), ids=lambda g: g.name)
def test_dh_agreement(group: dh.DHGroup) -> None:
    a = dh.DHKeyPair.generate(group)
    b = dh.DHKeyPair.generate(group)
    assert len(a.public_bytes()) == group.length
    secret = a.shared_secret(b.public_bytes())
    assert secret == b.shared_secret(a.public_bytes())
    assert len(secret) == group.length


def test_dh_generate_uses_the_injected_randomness() -> None:
    group = dh.MODP1024
    a = dh.DHKeyPair.generate(group, counter_bytes(5))
    b = dh.DHKeyPair.generate(group, counter_bytes(5))
    assert a.public_bytes() == b.public_bytes()
    # an all-zero draw (exponent 0) is rejected and drawn again
    draws = iter([b"\x00" * 32, b"\x00" * 31 + b"\x01", b"\x42" * 32])
    c = dh.DHKeyPair.generate(group, lambda n: next(draws))
    expected = dh.DHKeyPair(group, int.from_bytes(b"\x42" * 32, "big"))
    assert c.public_bytes() == expected.public_bytes()


def test_dh_values_are_left_padded() -> None:
    group = dh.MODP1024
    small = dh.DHKeyPair(group, 100)  # 2^100: far shorter than the modulus
    assert small.public_bytes() == (2**100).to_bytes(128, "big")
    peer = (2**3).to_bytes(128, "big")
    assert small.shared_secret(peer) == (2**300).to_bytes(128, "big")


@pytest.mark.parametrize("value", ["zero", "one", "p-1", "p", "p+1", "max"])
def test_dh_rejects_bad_peer_values(value: str) -> None:
    group = dh.MODP1024
    p = group.prime
    y = {"zero": 0, "one": 1, "p-1": p - 1, "p": p, "p+1": p + 1, "max": 2**1024 - 1}[value]
    pair = dh.DHKeyPair(group, 12345)
    with pytest.raises(dh.DHError, match=r"out of range \(must be 2 \.\. p-2\)") as info:
        pair.shared_secret(y.to_bytes(128, "big"))
    assert not re.search(r"[0-9a-fA-F]{16}", str(info.value))  # no value echoed


def test_dh_rejects_wrong_length_and_unknown_groups() -> None:
    pair = dh.DHKeyPair(dh.MODP1024, 12345)
    with pytest.raises(dh.DHError, match="MODP1024 peer public value is 127 bytes; 128 required"):
        pair.shared_secret(b"\x02" * 127)
    with pytest.raises(dh.DHError, match=r"DH group 1 is not supported; supported: 2 \(MOD"):
        dh.get_group(1)
    with pytest.raises(dh.DHError, match="supported: modp1024"):
        dh.group_by_name("ecp224")
    with pytest.raises(dh.DHError):
        dh.DHKeyPair(dh.MODP1024, 1)
