"""Diffie-Hellman for IKEv1: MODP groups (RFC 2409 section 6, RFC 3526) and the
elliptic-curve groups 19, 20, 21 (RFC 5903) and 31 (RFC 8031), computed by OpenSSL.

Rules of this module:

* Pure: no I/O, no clock.  Randomness comes only from the ``random_bytes``
  callable handed to :meth:`DHKeyPair.generate` (``os.urandom`` by default), so
  tests and the engine can make key generation deterministic.
* Every value that crosses the wire is a big-endian byte string left-padded
  to the modulus length (RFC 2409 section 5: KE data and g^xy are padded with
  zeros; pluto and charon do the same), because the key schedule hashes these
  bytes verbatim.
* A peer public value outside ``2 .. p-2`` is refused: 0, 1 and p-1 force the
  shared secret into a tiny set an attacker can guess (p and above are not
  values at all).
* The private exponent never appears in a repr or an exception message.
* No big-integer arithmetic in Python: both modular exponentiations (g^x when
  a key pair is made, y^x for the shared secret) run in OpenSSL through
  ``cryptography`` (constant-time ``BN_mod_exp_mont_consttime``).

How the keys reach OpenSSL.  We choose the private exponent ourselves (from
``random_bytes``, ``exponent_bits`` long) so that tests can fix it and replay
strongSwan's logged exchanges byte for byte; :class:`DHKeyPair` then loads it
as a PKCS#8 ``dhKeyAgreement`` (PKCS#3) private key built here in DER, and
OpenSSL computes g^x while decoding it.  The peer's value is loaded the same
way as a DER SubjectPublicKeyInfo.  Both templates are assembled from the
group's p and g; no ``DHParameterNumbers(...).parameters()`` /
``DHPublicNumbers(...).public_key()`` is used, because those run ``DH_check``
on the group each time: a primality test that costs ~35 ms for MODP-1024
(which OpenSSL does not know by name).  Measured on the project's 2-vCPU VM
(cryptography 48, its OpenSSL 4.0), MODP-2048: key pair 0.29 ms and shared
secret 0.28 ms this way, against 2.7 ms and 3.4 ms with Python's ``pow`` and
the former 320-bit exponent; loading the peer value costs ~2 microseconds.

Private exponent lengths (``DHGroup.exponent_bits``).  The exponent must carry
at least twice the group's security strength in bits (NIST SP 800-56A Rev. 3
section 5.6.1.1.1: a private key in [1, 2^N - 1] with N >= 2s; van Oorschot and
Wiener's attack on short exponents costs about 2^(N/2)).  Strengths and lengths:

=========  ==============================  ==========  ===================================
group      strength s (bits)               exponent    why this length
=========  ==============================  ==========  ===================================
2  (1024)  80 (NIST SP 800-57 Pt 1, tab. 2)  256       kept: > 2s, and the unit tests
                                                       draw 32 bytes for this group
5  (1536)  ~90 (RFC 3526 section 8: 90-120)  256       above RFC 3526's 180-240 range
14 (2048)  112 (SP 800-56A Rev. 3 app. D)    225       2s = 224; 225 is what OpenSSL 3
                                                       itself picks for this prime (the
                                                       RFC 7919 figures it keeps per
                                                       named group)
15 (3072)  128 (idem)                        275       2s = 256; OpenSSL's 275
16 (4096)  152 (idem)                        325       2s = 304; OpenSSL's 325
=========  ==============================  ==========  ===================================

So for groups 14 and up we use the very length OpenSSL's own
``generate_private_key()`` uses for the same group, while keeping the choice
(and the draw) in our hands.  The exchange costs grow linearly with the
exponent: 225 bits instead of the former 320 saves another ~30% on group 14.

Elliptic-curve groups (:class:`ECPGroup`: 19 = P-256, 20 = P-384, 21 = P-521,
RFC 5903; 31 = Curve25519, RFC 8031) go through ``cryptography``'s ECDH and
X25519.  The wire format, RFC 5903 section 7: the KE payload body is x | y,
each coordinate left-padded to the field size (no 0x04 point-format byte),
and the shared secret g^xy is the x coordinate of the product alone (the
RFC's errata; pluto, Libreswan and charon all hash x only).  A peer point is
refused unless it has exactly the right length and lies on the curve (which
also rules out the point at infinity: it has no affine x | y).  The private
scalar is drawn from ``random_bytes`` (the field size, masked to the order's
bit length) and kept when it lies in ``1 .. n-1``.  For Curve25519 both the
public value and the secret are the 32-byte little-endian u coordinate (RFC
8031 section 2), the private value is the 32 raw bytes (clamped by OpenSSL),
and an all-zero secret (a small-order peer point) is refused.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable, Union

from cryptography.hazmat.primitives.asymmetric import dh as _ossl_dh
from cryptography.hazmat.primitives.asymmetric import ec as _ossl_ec
from cryptography.hazmat.primitives.asymmetric import x25519 as _ossl_x25519
from cryptography.hazmat.primitives.serialization import (
    load_der_private_key,
    load_der_public_key,
)

__all__ = [
    "DHError",
    "DHGroup",
    "DHKeyPair",
    "ECP256",
    "ECP384",
    "ECP521",
    "CURVE25519",
    "ECPGroup",
    "GROUPS",
    "Group",
    "MODP_GROUPS",
    "MODP1024",
    "MODP1536",
    "MODP2048",
    "MODP3072",
    "MODP4096",
    "get_group",
    "group_by_name",
]

RandomBytes = Callable[[int], bytes]


class DHError(ValueError):
    """A Diffie-Hellman value or group that cannot be used."""


def _hex(*chunks: str) -> int:
    return int("".join(chunks), 16)


# The primes are 2^n - 2^(n-64) - 1 + 2^64 * (floor(2^(n-130) * pi) + k), with k
# from RFC 2409 (groups 2) and RFC 3526 (5, 14, 15, 16); tests recompute them.
_MODP1024 = _hex(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74"
    "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437"
    "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED"
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE65381FFFFFFFFFFFFFFFF"
)

_MODP1536 = _hex(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74"
    "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437"
    "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED"
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05"
    "98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB"
    "9ED529077096966D670C354E4ABC9804F1746C08CA237327FFFFFFFFFFFFFFFF"
)

_MODP2048 = _hex(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74"
    "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437"
    "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED"
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05"
    "98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB"
    "9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B"
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718"
    "3995497CEA956AE515D2261898FA051015728E5A8AACAA68FFFFFFFFFFFFFFFF"
)

_MODP3072 = _hex(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74"
    "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437"
    "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED"
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05"
    "98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB"
    "9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B"
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718"
    "3995497CEA956AE515D2261898FA051015728E5A8AAAC42DAD33170D04507A33"
    "A85521ABDF1CBA64ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7"
    "ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864"
    "D87602733EC86A64521F2B18177B200CBBE117577A615D6C770988C0BAD946E2"
    "08E24FA074E5AB3143DB5BFCE0FD108E4B82D120A93AD2CAFFFFFFFFFFFFFFFF"
)

_MODP4096 = _hex(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74"
    "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437"
    "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED"
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05"
    "98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB"
    "9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B"
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718"
    "3995497CEA956AE515D2261898FA051015728E5A8AAAC42DAD33170D04507A33"
    "A85521ABDF1CBA64ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7"
    "ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864"
    "D87602733EC86A64521F2B18177B200CBBE117577A615D6C770988C0BAD946E2"
    "08E24FA074E5AB3143DB5BFCE0FD108E4B82D120A92108011A723C12A787E6D7"
    "88719A10BDBA5B2699C327186AF4E23C1A946834B6150BDA2583E9CA2AD44CE8"
    "DBBBC2DB04DE8EF92E8EFC141FBECAA6287C59474E6BC05D99B2964FA090C3A2"
    "233BA186515BE7ED1F612970CEE2D7AFB81BDD762170481CD0069127D5B05AA9"
    "93B4EA988D8FDDC186FFB7DC90A6C08F4DF435C934063199FFFFFFFFFFFFFFFF"
)


@dataclass(frozen=True)
class DHGroup:
    """One MODP group: its Oakley group number, name and prime (generator 2)."""

    number: int
    name: str
    bits: int
    prime: int = field(repr=False)
    generator: int = 2
    #: private exponent size: at least twice the group's security strength
    #: (the table in the module docstring says which and why)
    exponent_bits: int = 256

    @property
    def length(self) -> int:
        """Bytes in a public value or shared secret (the modulus length)."""
        return (self.bits + 7) // 8

    def __str__(self) -> str:
        return self.name


MODP1024 = DHGroup(2, "MODP1024", 1024, _MODP1024, exponent_bits=256)
MODP1536 = DHGroup(5, "MODP1536", 1536, _MODP1536, exponent_bits=256)
MODP2048 = DHGroup(14, "MODP2048", 2048, _MODP2048, exponent_bits=225)
MODP3072 = DHGroup(15, "MODP3072", 3072, _MODP3072, exponent_bits=275)
MODP4096 = DHGroup(16, "MODP4096", 4096, _MODP4096, exponent_bits=325)

#: the MODP groups by Oakley number, strongest last
MODP_GROUPS: dict[int, DHGroup] = {
    g.number: g for g in (MODP1024, MODP1536, MODP2048, MODP3072, MODP4096)
}


@dataclass(frozen=True)
class ECPGroup:
    """One elliptic-curve group: Oakley number, name, field size and curve."""

    number: int
    name: str
    #: field size in bits (the coordinate length)
    bits: int
    #: ``cryptography``'s curve name (``secp256r1``), or ``x25519``
    curve: str
    #: the order n of the base point (private scalars lie in 1 .. n-1); 0 for x25519
    order: int = field(repr=False, default=0)

    @property
    def coordinate_length(self) -> int:
        """Bytes in one coordinate and in the shared secret."""
        return (self.bits + 7) // 8

    @property
    def length(self) -> int:
        """Bytes in a public value (the KE payload body): x | y, or u for x25519."""
        if self.curve == "x25519":
            return self.coordinate_length
        return 2 * self.coordinate_length

    def __str__(self) -> str:
        return self.name


# The orders are SEC 2 / FIPS 186-4 facts (RFC 5903 section 3 prints them);
# tests check each (n-1)G = -G and that OpenSSL refuses n as a private key.
ECP256 = ECPGroup(19, "ECP256", 256, "secp256r1", _hex(
    "FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551"))
ECP384 = ECPGroup(20, "ECP384", 384, "secp384r1", _hex(
    "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF",
    "581A0DB248B0A77AECEC196ACCC52973"))
ECP521 = ECPGroup(21, "ECP521", 521, "secp521r1", _hex(
    "01FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF",
    "FA51868783BF2F966B7FCC0148F709A5D03BB5C9B8899C47AEBB6FB71E91386409"))
CURVE25519 = ECPGroup(31, "CURVE25519", 256, "x25519")

#: what a DH group may be: MODP or elliptic curve
Group = Union[DHGroup, ECPGroup]

#: every group fswan can compute, by Oakley group number
GROUPS: dict[int, Group] = {
    **MODP_GROUPS,
    **{g.number: g for g in (ECP256, ECP384, ECP521, CURVE25519)},
}

_EC_CURVES: dict[str, _ossl_ec.EllipticCurve] = {
    "secp256r1": _ossl_ec.SECP256R1(),
    "secp384r1": _ossl_ec.SECP384R1(),
    "secp521r1": _ossl_ec.SECP521R1(),
}


def get_group(number: int) -> Group:
    """The group for an Oakley group number; DHError names the supported ones."""
    try:
        return GROUPS[number]
    except KeyError:
        allowed = ", ".join(f"{g.number} ({g.name})" for g in GROUPS.values())
        raise DHError(f"DH group {number} is not supported; supported: {allowed}") from None


def group_by_name(name: str) -> Group:
    """The group for a name like ``modp2048`` or ``ecp256`` (any case)."""
    wanted = name.strip().upper()
    for group in GROUPS.values():
        if group.name == wanted:
            return group
    allowed = ", ".join(g.name.lower() for g in GROUPS.values())
    raise DHError(f"DH group {name!r} is not supported; supported: {allowed}")


# --------------------------------------------------------------------------
# DER templates: the keys as OpenSSL loads them without re-checking the group


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def _der(tag: int, body: bytes) -> bytes:
    return bytes([tag]) + _der_length(len(body)) + body


def _der_integer(value: int) -> bytes:
    """A non-negative INTEGER (a leading zero byte when the top bit is set)."""
    return _der(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))


#: dhKeyAgreement, PKCS #3 (1.2.840.113549.1.3.1)
_DH_KEY_AGREEMENT = _der(0x06, bytes.fromhex("2a864886f70d010301"))
_PKCS8_VERSION = _der_integer(0)

#: (p, g) -> AlgorithmIdentifier { dhKeyAgreement, DHParameter { p, g } }
_algorithm_ids: dict[tuple[int, int], bytes] = {}


def _algorithm_id(group: DHGroup) -> bytes:
    key = (group.prime, group.generator)
    algid = _algorithm_ids.get(key)
    if algid is None:
        params = _der(0x30, _der_integer(group.prime) + _der_integer(group.generator))
        algid = _algorithm_ids[key] = _der(0x30, _DH_KEY_AGREEMENT + params)
    return algid


def _private_key(group: DHGroup, private: int) -> _ossl_dh.DHPrivateKey:
    """OpenSSL's key for exponent ``private`` (it computes g^x while loading)."""
    der = _der(0x30, _PKCS8_VERSION + _algorithm_id(group)
               + _der(0x04, _der_integer(private)))
    try:
        key = load_der_private_key(der, None)
    except ValueError:
        raise DHError(f"{group.name} private key refused by OpenSSL") from None
    if not isinstance(key, _ossl_dh.DHPrivateKey):  # pragma: no cover - the OID says DH
        raise DHError(f"{group.name} private key did not load as a DH key")
    return key


def _public_key(group: DHGroup, y: int) -> _ossl_dh.DHPublicKey:
    """The peer's value as an OpenSSL key (SubjectPublicKeyInfo, no group check)."""
    der = _der(0x30, _algorithm_id(group) + _der(0x03, b"\x00" + _der_integer(y)))
    try:
        key = load_der_public_key(der)
    except ValueError:
        raise DHError(f"{group.name} peer public value refused by OpenSSL") from None
    if not isinstance(key, _ossl_dh.DHPublicKey):  # pragma: no cover - the OID says DH
        raise DHError(f"{group.name} peer public value did not load as a DH key")
    return key


def _ec_private_key(group: ECPGroup, private: int) -> "_ossl_ec.EllipticCurvePrivateKey":
    if not 0 < private < group.order:
        raise DHError(f"{group.name} private scalar out of range")
    try:
        return _ossl_ec.derive_private_key(private, _EC_CURVES[group.curve])
    except ValueError:  # pragma: no cover - the range check above is OpenSSL's
        raise DHError(f"{group.name} private key refused by OpenSSL") from None


def _ec_public_bytes(group: ECPGroup, key: "_ossl_ec.EllipticCurvePublicKey") -> bytes:
    numbers = key.public_numbers()
    size = group.coordinate_length
    return numbers.x.to_bytes(size, "big") + numbers.y.to_bytes(size, "big")


def _ec_peer_key(group: ECPGroup, peer_public: bytes) -> "_ossl_ec.EllipticCurvePublicKey":
    """The peer's x | y as an OpenSSL point, refused unless on the curve."""
    if not any(peer_public):
        # (0, 0) is how some encoders write the point at infinity; it is on no
        # curve here, but say what it is
        raise DHError(f"{group.name} peer public value is the point at infinity")
    try:
        return _ossl_ec.EllipticCurvePublicKey.from_encoded_point(
            _EC_CURVES[group.curve], b"\x04" + peer_public
        )
    except ValueError:
        raise DHError(f"{group.name} peer public value is not a point on the curve") from None


KeyObject = Union[
    _ossl_dh.DHPrivateKey, _ossl_ec.EllipticCurvePrivateKey, _ossl_x25519.X25519PrivateKey
]


class DHKeyPair:
    """Our half of one Diffie-Hellman exchange, MODP or elliptic curve.

    Made with :meth:`generate`; one key pair serves one exchange (a phase-1 KE
    or one PFS Quick Mode), then is dropped.  ``DHKeyPair(group, x)`` takes a
    fixed private value (tests replaying logged exchanges or RFC vectors): the
    exponent for MODP, the scalar for P-256/384/521, the integer of the 32
    little-endian private bytes for Curve25519; the private value then lives
    only inside OpenSSL's key.
    """

    __slots__ = ("group", "_key", "_public")

    group: Group
    _key: KeyObject

    def __init__(self, group: Group, private: int) -> None:
        self.group = group
        if isinstance(group, ECPGroup):
            if group.curve == "x25519":
                if not 0 < private < 1 << 256:
                    raise DHError(f"{group.name} private value out of range")
                x_key = _ossl_x25519.X25519PrivateKey.from_private_bytes(
                    private.to_bytes(32, "little"))
                self._key = x_key
                self._public = x_key.public_key().public_bytes_raw()
            else:
                ec_key = _ec_private_key(group, private)
                self._key = ec_key
                self._public = _ec_public_bytes(group, ec_key.public_key())
            return
        # Below q = (p-1)/2 (every group here is a safe prime): then y^x is never
        # 1 or p-1 for a peer value in 2 .. p-2, the case OpenSSL's derive
        # refuses (SP 800-56A's check of Z), and which cryptography turns into
        # a Rust panic rather than an exception.
        if not 1 < private < (group.prime - 1) // 2:
            raise DHError(f"{group.name} private exponent out of range")
        dh_key = _private_key(group, private)
        self._key = dh_key
        y = dh_key.public_key().public_numbers().y
        self._public = y.to_bytes(group.length, "big")

    @classmethod
    def generate(cls, group: Group, random_bytes: RandomBytes = os.urandom) -> "DHKeyPair":
        """A fresh key pair: an ``exponent_bits`` exponent, or a scalar in 1 .. n-1."""
        if isinstance(group, ECPGroup):
            nbytes = group.coordinate_length
            while True:
                raw = random_bytes(nbytes)
                if len(raw) != nbytes:
                    raise DHError("random source returned the wrong number of bytes")
                if group.curve == "x25519":
                    return cls(group, int.from_bytes(raw, "little") or 1)
                private = int.from_bytes(raw, "big") & ((1 << group.order.bit_length()) - 1)
                if 0 < private < group.order:
                    return cls(group, private)
        nbytes = (group.exponent_bits + 7) // 8
        mask = (1 << group.exponent_bits) - 1
        while True:
            raw = random_bytes(nbytes)
            if len(raw) != nbytes:
                raise DHError("random source returned the wrong number of bytes")
            private = int.from_bytes(raw, "big") & mask
            if private > 1:
                return cls(group, private)

    def public_bytes(self) -> bytes:
        """The KE payload body: g^x mod p left-padded to the modulus length, or
        the point x | y (each coordinate padded to the field size), or u for x25519."""
        return self._public

    def shared_secret(self, peer_public: bytes) -> bytes:
        """g^xy from the peer's KE payload body.

        MODP: the peer value must be exactly the modulus length (RFC 2409
        section 5) and lie in ``2 .. p-2``; the secret is padded to the modulus
        length.  ECP: exactly x | y of a point on the curve; the secret is the
        x coordinate of the product, padded to the field size.
        """
        group = self.group
        if len(peer_public) != group.length:
            raise DHError(
                f"{group.name} peer public value is {len(peer_public)} bytes; "
                f"{group.length} required"
            )
        key = self._key
        if isinstance(key, _ossl_x25519.X25519PrivateKey):
            try:
                secret = key.exchange(_ossl_x25519.X25519PublicKey.from_public_bytes(peer_public))
            except ValueError:
                secret = b""
            if not any(secret):
                raise DHError(f"{group.name} peer public value is a small-order point")
            return secret
        if isinstance(key, _ossl_ec.EllipticCurvePrivateKey):
            assert isinstance(group, ECPGroup)
            peer = _ec_peer_key(group, peer_public)
            try:
                secret = key.exchange(_ossl_ec.ECDH(), peer)
            except ValueError:  # pragma: no cover - a valid point of a prime-order curve
                raise DHError(f"{group.name} shared secret computation failed") from None
            return secret.rjust(group.coordinate_length, b"\x00")
        assert isinstance(group, DHGroup)
        y = int.from_bytes(peer_public, "big")
        if y <= 1 or y >= group.prime - 1:
            raise DHError(f"{group.name} peer public value is out of range (must be 2 .. p-2)")
        try:
            secret = key.exchange(_public_key(group, y))
        except ValueError:
            raise DHError(f"{group.name} shared secret computation failed") from None
        # cryptography pads to len(p) already; RFC 2409 needs it, so make sure
        if len(secret) > group.length:  # pragma: no cover - cannot exceed p
            raise DHError(f"{group.name} shared secret longer than the modulus")
        return secret.rjust(group.length, b"\x00")

    def __repr__(self) -> str:
        return f"<DHKeyPair {self.group.name}>"
