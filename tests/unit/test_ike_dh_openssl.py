"""DH and RSA through OpenSSL (issue 16): the same bytes as plain big-integer arithmetic.

Python's ``pow`` is the oracle here, inside the tests only: fswan.ike.dh and the RSA
functions of fswan.ike.crypto must not call it on the handshake path.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from fswan.ike import crypto, dh

KEYS = Path(__file__).resolve().parents[1] / "data" / "vectors" / "pubkey-main"
GROUPS = list(dh.MODP_GROUPS.values())


def _no_pow(*args: object) -> int:
    raise AssertionError("big-integer pow() in Python on the handshake path")


@pytest.fixture
def forbid_python_pow(monkeypatch: pytest.MonkeyPatch) -> None:
    """A module global ``pow`` shadows the builtin for that module's code."""
    monkeypatch.setattr(dh, "pow", _no_pow, raising=False)
    monkeypatch.setattr(crypto, "pow", _no_pow, raising=False)


# --------------------------------------------------------------------------
# Diffie-Hellman


@pytest.mark.parametrize("group", GROUPS, ids=str)
def test_fixed_exponent_gives_the_big_integer_results(group: dh.DHGroup) -> None:
    p, n = group.prime, group.length
    peer_x = 0x5EED_0F_7E57_5EED ** 3
    peer = pow(2, peer_x, p).to_bytes(n, "big")
    for x in (2, 12345, 2**(group.exponent_bits - 1) + 99, (p - 1) // 2 - 1):
        pair = dh.DHKeyPair(group, x)
        assert pair.public_bytes() == pow(2, x, p).to_bytes(n, "big")
        assert pair.shared_secret(peer) == pow(2, x * peer_x, p).to_bytes(n, "big")


def test_a_shared_secret_with_a_leading_zero_byte_keeps_its_length() -> None:
    group = dh.MODP1024
    p = group.prime
    peer_x = 0xC0FFEE << 180
    y = pow(2, peer_x, p)
    x = next(x for x in range(2**200, 2**200 + 5000) if pow(y, x, p) < 2**(1024 - 8))
    secret = dh.DHKeyPair(group, x).shared_secret(y.to_bytes(128, "big"))
    assert len(secret) == 128 and secret[0] == 0
    assert secret == pow(y, x, p).to_bytes(128, "big")


@pytest.mark.parametrize("group", GROUPS, ids=str)
def test_two_random_key_pairs_agree(group: dh.DHGroup, forbid_python_pow: None) -> None:
    a = dh.DHKeyPair.generate(group)
    b = dh.DHKeyPair.generate(group)
    assert a.public_bytes() != b.public_bytes()
    assert a.shared_secret(b.public_bytes()) == b.shared_secret(a.public_bytes())


def test_exponent_lengths_are_twice_the_strength_at_least() -> None:
    strength = {2: 80, 5: 96, 14: 112, 15: 128, 16: 152}
    chosen = {g.number: g.exponent_bits for g in GROUPS}
    assert chosen == {2: 256, 5: 256, 14: 225, 15: 275, 16: 325}
    for number, bits in chosen.items():
        assert bits >= 2 * strength[number]


@pytest.mark.parametrize("group", GROUPS, ids=str)
def test_generate_draws_exponent_bits_and_masks_the_rest(group: dh.DHGroup) -> None:
    sizes: list[int] = []

    def all_ones(n: int) -> bytes:
        sizes.append(n)
        return b"\xff" * n

    pair = dh.DHKeyPair.generate(group, all_ones)
    assert sizes == [(group.exponent_bits + 7) // 8]
    x = 2**group.exponent_bits - 1
    assert pair.public_bytes() == pow(2, x, group.prime).to_bytes(group.length, "big")


@pytest.mark.parametrize("group", [dh.MODP1024, dh.MODP2048, dh.MODP4096], ids=str)
@pytest.mark.parametrize("value", ["0", "1", "p-1", "p"])
def test_degenerate_peer_values_are_refused(group: dh.DHGroup, value: str) -> None:
    p = group.prime
    y = {"0": 0, "1": 1, "p-1": p - 1, "p": p}[value]
    pair = dh.DHKeyPair.generate(group)
    with pytest.raises(dh.DHError, match=rf"{group.name} peer public value is out of range"):
        pair.shared_secret(y.to_bytes(group.length, "big"))


def test_exponents_of_q_and_above_are_refused() -> None:
    """y^x would be 1 or p-1 for every peer value: OpenSSL refuses such a Z (a Rust panic)."""
    group = dh.MODP1024
    q = (group.prime - 1) // 2
    for x in (q, q + 1, group.prime - 2):
        with pytest.raises(dh.DHError, match="private exponent out of range"):
            dh.DHKeyPair(group, x)
    dh.DHKeyPair(group, q - 1)


def test_a_non_residue_peer_value_is_used_as_before() -> None:
    """Only the range is checked (as pluto does); no subgroup test refuses p-2."""
    group = dh.MODP2048
    p = group.prime
    pair = dh.DHKeyPair(group, 4242)
    assert pow(p - 2, (p - 1) // 2, p) == p - 1  # p-2 is a non-residue here
    secret = pair.shared_secret((p - 2).to_bytes(256, "big"))
    assert secret == pow(p - 2, 4242, p).to_bytes(256, "big")


# --------------------------------------------------------------------------
# RSA (PKCS#1 v1.5 over the bare hash)


def _lab_key(side: str) -> rsa.RSAPrivateKey:
    key = load_pem_private_key((KEYS / f"{side}.key").read_bytes(), None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


@pytest.fixture(scope="module")
def e3_key() -> rsa.RSAPrivateKey:
    """FreeS/WAN's rsasigkey makes keys with e = 3."""
    return rsa.generate_private_key(public_exponent=3, key_size=2048)


def _raw_sign(key: rsa.RSAPrivateKey, em: bytes) -> bytes:
    """m^d mod n with no blinding and no CRT: the textbook oracle."""
    numbers = key.private_numbers()
    n = numbers.public_numbers.n
    return pow(int.from_bytes(em, "big"), numbers.d, n).to_bytes(len(em), "big")


def _em(h: bytes, k: int = 256) -> bytes:
    return b"\x00\x01" + b"\xff" * (k - len(h) - 3) + b"\x00" + h


HASHES = [hashlib.md5, hashlib.sha1, hashlib.sha256, hashlib.sha384, hashlib.sha512]


def test_the_openssl_route_is_the_one_in_use() -> None:
    assert crypto.RSA_SIGN_BACKEND == "openssl"


@pytest.mark.parametrize("side", ["west", "east"])
@pytest.mark.parametrize("hash_function", HASHES, ids=lambda f: f.__name__)
def test_signature_bytes_equal_the_python_implementation(
    side: str, hash_function, forbid_python_pow: None  # type: ignore[no-untyped-def]
) -> None:
    key = _lab_key(side)
    h = hash_function(b"HASH_I of " + side.encode()).digest()
    sig = crypto.rsa_sign_hash(key, h)
    assert crypto.rsa_verify_hash(key.public_key(), h, sig)
    with pytest.MonkeyPatch.context() as m:  # the oracles may use pow
        m.delitem(vars(crypto), "pow")
        assert sig == crypto._rsa_sign_hash_python(key, h) == _raw_sign(key, _em(h))


def test_round_trip_with_an_e3_key(e3_key: rsa.RSAPrivateKey) -> None:
    h = hashlib.sha1(b"x").digest()
    sig = crypto.rsa_sign_hash(e3_key, h)
    assert sig == _raw_sign(e3_key, _em(h))
    assert crypto.rsa_verify_hash(e3_key.public_key(), h, sig)
    assert not crypto.rsa_verify_hash(e3_key.public_key(), hashlib.sha1(b"y").digest(), sig)


def test_verify_refuses_blocks_that_are_not_exactly_00_01_ff_00_hash() -> None:
    key = _lab_key("west")
    pub = key.public_key()
    h = hashlib.sha1(b"h").digest()
    pad = 256 - 3 - len(h)
    forged = {
        "block type 2": b"\x00\x02" + b"\xff" * pad + b"\x00" + h,
        "a non-FF padding byte": b"\x00\x01" + b"\xff" * 5 + b"\xfe" + b"\xff" * (pad - 6)
        + b"\x00" + h,
        "a DigestInfo": _em(bytes.fromhex("3021300906052b0e03021a05000414") + h),
        "trailing garbage": b"\x00\x01" + b"\xff" * (pad - 4) + b"\x00" + h + b"junk",
        "no zero separator": b"\x00\x01" + b"\xff" * (pad + 1) + h,
    }
    for name, em in forged.items():
        assert len(em) == 256, name
        assert not crypto.rsa_verify_hash(pub, h, _raw_sign(key, em)), name
    good = _raw_sign(key, _em(h))
    assert crypto.rsa_verify_hash(pub, h, good)
    assert not crypto.rsa_verify_hash(pub, h[:16], good)  # a shorter hash is another block
    assert not crypto.rsa_verify_hash(pub, h, good + b"\x00")
    assert not crypto.rsa_verify_hash(pub, h, b"\x00" * 256)
    assert not crypto.rsa_verify_hash(pub, b"x" * 246, good)  # too long for the modulus


def test_sign_refuses_a_hash_too_long_for_the_modulus() -> None:
    with pytest.raises(ValueError, match="RSA modulus too short for this hash"):
        crypto.rsa_sign_hash(_lab_key("west"), b"x" * 246)


def test_python_fallback_gives_the_same_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    key = _lab_key("east")
    h = hashlib.sha256(b"fallback").digest()
    fast = crypto.rsa_sign_hash(key, h)
    monkeypatch.setattr(crypto, "_NO_DIGEST_INFO", None)
    assert crypto.rsa_sign_hash(key, h, lambda n: b"\x07" * n) == fast
    assert crypto.rsa_verify_hash(key.public_key(), h, fast)  # algorithm=None, older API
    assert not crypto.rsa_verify_hash(key.public_key(), h[:-1] + b"\x00", fast)
