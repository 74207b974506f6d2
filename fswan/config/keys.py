"""RSA keys in the forms FreeS/WAN users have on disk, plus PEM.

* Public keys: RFC 3110 (ex-RFC 2537) bytes -- exponent length (one byte, or
  a zero byte then two bytes), exponent, modulus -- written ``0sAQO...`` in
  ``leftrsasigkey=`` and on the ``#pubkey=`` line of ``ipsec rsasigkey``.
* Private keys: the ``: RSA { Modulus: 0x... }`` block of ipsec.secrets, whose
  fields are the PKCS#1 numbers; missing CRT fields are computed, fields that
  disagree are refused, because a wrong key only shows up later as a signature
  the peer rejects.
* PEM (PKCS#1, PKCS#8, SubjectPublicKeyInfo, X.509 certificates) is accepted
  wherever a key is read, since that is what other IKE daemons hand out.

Everything raises :class:`KeyFormatError` (a ``ValueError``) with a message that
names the field at fault but never repeats key material.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any, Union

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from fswan.config.encodings import EncodingError, decode_data, encode_base64, encode_hex

__all__ = [
    "KeyFormatError",
    "MIN_BITS",
    "MAX_BITS",
    "RSA_FIELDS",
    "pubkey_from_rfc3110",
    "pubkey_to_rfc3110",
    "parse_rsasigkey",
    "format_rsasigkey",
    "key_id",
    "same_public_key",
    "rsa_fields_from_tokens",
    "rsa_private_key_from_fields",
    "parse_rsa_block",
    "format_rsa_key_body",
    "format_rsa_secret_block",
    "load_private_key",
    "load_public_key",
    "public_key_pem",
]

AnyRSAKey = Union[rsa.RSAPublicKey, rsa.RSAPrivateKey]

#: pluto's RSA_MIN_OCTETS / RSA_MAX_OCTETS, in bits.
MIN_BITS = 512
MAX_BITS = 8192

#: The fields of an ``RSA {}`` block, in the order ``ipsec rsasigkey`` prints them.
RSA_FIELDS = (
    "Modulus",
    "PublicExponent",
    "PrivateExponent",
    "Prime1",
    "Prime2",
    "Exponent1",
    "Exponent2",
    "Coefficient",
)
_FIELD_BY_LOWER = {name.lower(): name for name in RSA_FIELDS}
_PEM_BEGIN = "-----BEGIN"
_PEM_ERRORS = (ValueError, TypeError, UnsupportedAlgorithm)


class KeyFormatError(ValueError):
    """Text or bytes that are not a usable RSA key; the message says which part."""


# --------------------------------------------------------------------------
# Public keys: RFC 3110 and 0s/0x text


def _int_bytes(value: int) -> bytes:
    return value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big")


def _public_key(e: int, n: int) -> rsa.RSAPublicKey:
    """Build a public key after the checks pluto makes, with our own messages."""
    bits = n.bit_length()
    if bits < MIN_BITS:
        raise KeyFormatError(f"RSA modulus of {bits} bits is too small (minimum {MIN_BITS})")
    if bits > MAX_BITS:
        raise KeyFormatError(f"RSA modulus of {bits} bits is too large (maximum {MAX_BITS})")
    if n % 2 == 0:
        raise KeyFormatError("RSA modulus is even")
    if e < 3 or e % 2 == 0 or e >= n:
        raise KeyFormatError("RSA public exponent must be odd, at least 3 and below the modulus")
    try:
        return rsa.RSAPublicNumbers(e, n).public_key()
    except _PEM_ERRORS:
        raise KeyFormatError("RSA public key rejected by the crypto library") from None


def pubkey_from_rfc3110(data: bytes) -> rsa.RSAPublicKey:
    """Decode RFC 3110 key bytes: exponent length, exponent, modulus."""
    if not data:
        raise KeyFormatError("RFC 3110 key is empty")
    if data[0]:
        elen, start = data[0], 1
    else:
        if len(data) < 3:
            raise KeyFormatError("RFC 3110 key truncated in the exponent length")
        elen, start = int.from_bytes(data[1:3], "big"), 3
        if elen == 0:
            raise KeyFormatError("RFC 3110 key has a zero exponent length")
    if len(data) < start + elen + 1:
        raise KeyFormatError("RFC 3110 key truncated: no room for the modulus")
    e = int.from_bytes(data[start : start + elen], "big")
    n = int.from_bytes(data[start + elen :], "big")
    return _public_key(e, n)


def _public_half(key: AnyRSAKey) -> rsa.RSAPublicKey:
    if isinstance(key, rsa.RSAPrivateKey):
        return key.public_key()
    return key


def pubkey_to_rfc3110(key: AnyRSAKey) -> bytes:
    """Encode the public half of ``key`` as RFC 3110 bytes."""
    numbers = _public_half(key).public_numbers()
    exponent = _int_bytes(numbers.e)
    if len(exponent) <= 255:
        header = bytes([len(exponent)])
    else:
        header = b"\x00" + len(exponent).to_bytes(2, "big")
    return header + exponent + _int_bytes(numbers.n)


def parse_rsasigkey(text: str) -> rsa.RSAPublicKey:
    """Parse a ``leftrsasigkey=`` value: ``0s`` base64 or ``0x`` hex RFC 3110 bytes."""
    text = text.strip()
    if text[:2].lower() not in ("0s", "0x"):
        raise KeyFormatError("an RSA public key must be 0s... (base64) or 0x... (hex)")
    try:
        data = decode_data(text)
    except EncodingError as exc:
        raise KeyFormatError(f"bad RSA public key: {exc}") from None
    return pubkey_from_rfc3110(data)


def format_rsasigkey(key: AnyRSAKey) -> str:
    """The ``0sAQ...`` text for ``leftrsasigkey=`` and ``#pubkey=``."""
    return encode_base64(pubkey_to_rfc3110(key))


def key_id(key: AnyRSAKey) -> str:
    """FreeS/WAN's short keyid: the first 9 base64 characters of the RFC 3110 key."""
    return format_rsasigkey(key)[2:11]


def same_public_key(a: AnyRSAKey, b: AnyRSAKey) -> bool:
    """True when both keys (public or private) have the same public half."""
    return _public_half(a).public_numbers() == _public_half(b).public_numbers()


def public_key_pem(key: AnyRSAKey) -> str:
    """The public half as a SubjectPublicKeyInfo PEM block."""
    return (
        _public_half(key)
        .public_bytes(
            serialization.Encoding.PEM,
            serialization.PublicFormat.SubjectPublicKeyInfo,
        )
        .decode("ascii")
    )


# --------------------------------------------------------------------------
# Private keys: the ``RSA { ... }`` block


def _shown(name: str) -> str:
    """Quote a field name only if it is one we know (anything else may be key material)."""
    canonical = _FIELD_BY_LOWER.get(name.lower())
    return repr(canonical) if canonical else "(unknown)"


def rsa_fields_from_tokens(tokens: Sequence[str]) -> list[tuple[str, str]]:
    """Pair up ``Name: value`` tokens; ``Name:value`` and ``Name : value`` also work."""
    pairs: list[tuple[str, str]] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if ":" in token and token != ":":
            name, _, value = token.partition(":")
            if not name:
                raise KeyFormatError("':' without a field name in RSA key")
            if value:
                i += 1
            elif i + 1 < len(tokens):
                value, i = tokens[i + 1], i + 2
            else:
                raise KeyFormatError(f"RSA key field {_shown(name)} has no value")
        elif i + 1 < len(tokens) and tokens[i + 1] == ":" and token != ":":
            name = token
            if i + 2 >= len(tokens):
                raise KeyFormatError(f"RSA key field {_shown(name)} has no value")
            value, i = tokens[i + 2], i + 3
        else:
            raise KeyFormatError("expected 'Name: value' fields in RSA key")
        pairs.append((name, value))
    return pairs


def rsa_private_key_from_fields(fields: Iterable[tuple[str, str]]) -> rsa.RSAPrivateKey:
    """Build a private key from ``(field name, 0x/0s value)`` pairs; see the module doc."""
    values: dict[str, int] = {}
    for name, text in fields:
        canonical = _FIELD_BY_LOWER.get(name.lower())
        if canonical is None:
            # The name is not echoed: a mangled line may put key material there.
            where = f" after {list(values)[-1]}" if values else ""
            raise KeyFormatError(
                f"unknown field in RSA key{where}; expected {', '.join(RSA_FIELDS)}"
            )
        if canonical in values:
            raise KeyFormatError(f"field {canonical} given twice in RSA key")
        try:
            values[canonical] = int.from_bytes(decode_data(text), "big")
        except EncodingError as exc:
            raise KeyFormatError(f"bad {canonical} in RSA key: {exc}") from None
    return _private_key_from_values(values)


def _private_key_from_values(values: dict[str, int]) -> rsa.RSAPrivateKey:
    for required in ("Modulus", "PublicExponent"):
        if required not in values:
            raise KeyFormatError(f"RSA key is missing {required}")
    n, e = values["Modulus"], values["PublicExponent"]
    _public_key(e, n)
    for name, value in values.items():
        if name != "Modulus" and value >= n:
            raise KeyFormatError(f"RSA key {name} is not smaller than Modulus")
    d = values.get("PrivateExponent")
    p, q = values.get("Prime1"), values.get("Prime2")

    if p is None and q is None:
        if d is None:
            raise KeyFormatError("RSA key needs PrivateExponent or Prime1 and Prime2")
        try:
            p, q = rsa.rsa_recover_prime_factors(n, e, d)
        except _PEM_ERRORS:
            raise KeyFormatError(
                "inconsistent RSA key: PrivateExponent does not fit Modulus and PublicExponent"
            ) from None
        p, q = max(p, q), min(p, q)
    elif p is None or q is None:
        known = p if p is not None else q
        assert known is not None  # one of the two was given: the branch above took neither
        if known <= 1 or n % known:
            raise KeyFormatError("inconsistent RSA key: the prime does not divide Modulus")
        other = n // known
        p, q = (known, other) if p is not None else (other, known)
    assert p is not None and q is not None
    if p <= 1 or q <= 1 or p * q != n:
        raise KeyFormatError("inconsistent RSA key: Modulus is not Prime1 * Prime2")
    if p == q:
        raise KeyFormatError("inconsistent RSA key: Prime1 equals Prime2")

    lam = math.lcm(p - 1, q - 1)
    if d is None:
        try:
            d = pow(e, -1, lam)
        except ValueError:
            raise KeyFormatError(
                "inconsistent RSA key: PublicExponent has no inverse for these primes"
            ) from None
    elif (e * d) % lam != 1 % lam:
        raise KeyFormatError("inconsistent RSA key: PrivateExponent does not match the primes")

    dmp1, dmq1 = d % (p - 1), d % (q - 1)
    try:
        iqmp = pow(q, -1, p)
    except ValueError:
        raise KeyFormatError("inconsistent RSA key: Prime2 has no inverse modulo Prime1") from None
    for name, expected, modulus in (
        ("Exponent1", dmp1, p - 1),
        ("Exponent2", dmq1, q - 1),
        ("Coefficient", iqmp, p),
    ):
        given = values.get(name)
        if given is not None and given % modulus != expected:
            raise KeyFormatError(f"inconsistent RSA key: {name} does not match the primes")

    numbers = rsa.RSAPrivateNumbers(p, q, d, dmp1, dmq1, iqmp, rsa.RSAPublicNumbers(e, n))
    try:
        return numbers.private_key()
    except _PEM_ERRORS:
        raise KeyFormatError("RSA private key rejected by the crypto library") from None


def _block_tokens(text: str) -> list[str]:
    """Whitespace-separated tokens with ``#`` comments (and ``#pubkey=``) removed."""
    tokens: list[str] = []
    for line in text.splitlines():
        for token in line.split():
            if token.startswith("#"):
                break
            tokens.append(token)
    return tokens


def parse_rsa_block(text: str) -> rsa.RSAPrivateKey:
    """Parse the body of an ``RSA { ... }`` block (braces optional)."""
    body = text.strip()
    if body.startswith("{"):
        if not body.endswith("}"):
            raise KeyFormatError("RSA key block has '{' but no closing '}'")
        body = body[1:-1]
    return rsa_private_key_from_fields(rsa_fields_from_tokens(_block_tokens(body)))


def _private_field_values(key: rsa.RSAPrivateKey) -> list[tuple[str, int]]:
    private = key.private_numbers()
    public = private.public_numbers
    return [
        ("Modulus", public.n),
        ("PublicExponent", public.e),
        ("PrivateExponent", private.d),
        ("Prime1", private.p),
        ("Prime2", private.q),
        ("Exponent1", private.dmp1),
        ("Exponent2", private.dmq1),
        ("Coefficient", private.iqmp),
    ]


def format_rsa_key_body(
    key: rsa.RSAPrivateKey,
    bits_comment: bool = True,
    *,
    hostname: str = "",
    date: str = "",
) -> str:
    """The indented lines ``ipsec rsasigkey`` prints: comments, ``#pubkey=``, 0x fields."""
    lines = []
    if bits_comment:
        parts = (f"# RSA {key.key_size} bits", hostname, date)
        lines.append("   ".join(part for part in parts if part))
        lines.append("# for signatures only, UNSAFE FOR ENCRYPTION")
    lines.append(f"#pubkey={format_rsasigkey(key)}")
    for name, value in _private_field_values(key):
        if name == "PrivateExponent":
            lines.append("# everything after this point is secret")
        lines.append(f"{name}: {encode_hex(_int_bytes(value))}")
    return "".join(f"\t{line}\n" for line in lines)


def format_rsa_secret_block(
    key: rsa.RSAPrivateKey,
    bits_comment: bool = True,
    *,
    hostname: str = "",
    date: str = "",
    ids: Sequence[str] = (),
) -> str:
    """A whole ipsec.secrets entry, ``[ids] : RSA {`` ... ``}``, as newhostkey writes it."""
    selectors = " ".join(ids)
    head = f"{selectors} : RSA\t{{\n" if selectors else ": RSA\t{\n"
    tail = "\t}\n# do not change the indenting of that \"}\"\n"
    return head + format_rsa_key_body(key, bits_comment, hostname=hostname, date=date) + tail


# --------------------------------------------------------------------------
# Loading either format


def _check_size(key: AnyRSAKey) -> None:
    if not MIN_BITS <= key.key_size <= MAX_BITS:
        raise KeyFormatError(
            f"RSA key of {key.key_size} bits is outside {MIN_BITS}..{MAX_BITS} bits"
        )


def _pem_bytes(text: str) -> bytes:
    return text[text.index(_PEM_BEGIN) :].encode("utf-8", errors="replace")


def load_private_key(text: str, passphrase: bytes | None = None) -> rsa.RSAPrivateKey:
    """Read a private key: PEM (PKCS#1 or PKCS#8) or an ``RSA {}`` block body."""
    if _PEM_BEGIN not in text:
        return parse_rsa_block(text)
    try:
        key = serialization.load_pem_private_key(_pem_bytes(text), password=passphrase)
    except TypeError:
        if passphrase is None:
            message = "PEM private key is encrypted and no passphrase was given"
        else:
            message = "PEM private key is not encrypted but a passphrase was given"
        raise KeyFormatError(message) from None
    except _PEM_ERRORS:
        raise KeyFormatError(
            "not a readable PEM private key (or the passphrase is wrong)"
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise KeyFormatError(f"PEM private key is not RSA ({type(key).__name__})")
    _check_size(key)
    return key


def load_ec_private_key(text: str, passphrase: bytes | None = None) -> ec.EllipticCurvePrivateKey:
    """Read an ECDSA private key file (PEM: SEC1 ``EC PRIVATE KEY`` or PKCS#8)."""
    if _PEM_BEGIN not in text:
        raise KeyFormatError("expected a PEM EC private key")
    try:
        key = serialization.load_pem_private_key(_pem_bytes(text), password=passphrase)
    except TypeError:
        if passphrase is None:
            raise KeyFormatError("PEM private key is encrypted and no passphrase was given") from None
        raise KeyFormatError("PEM private key is not encrypted but a passphrase was given") from None
    except _PEM_ERRORS:
        raise KeyFormatError("not a readable PEM private key (or the passphrase is wrong)") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise KeyFormatError(f"PEM private key is not an EC key ({type(key).__name__}); use RSA for it")
    return key


def public_key_der(key: Any) -> bytes:
    """SubjectPublicKeyInfo DER of any key's public half: one way to compare keys of any type."""
    public = key.public_key() if hasattr(key, "private_bytes") else key
    der: bytes = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return der


def load_public_key(text: str) -> rsa.RSAPublicKey:
    """Read a public key: ``0s``/``0x`` RFC 3110, PEM public key, or a PEM certificate."""
    stripped = text.strip()
    if stripped[:2].lower() in ("0s", "0x"):
        return parse_rsasigkey(stripped)
    if _PEM_BEGIN not in stripped:
        raise KeyFormatError("expected an RSA public key: 0s..., 0x... or PEM")
    key: PublicKeyTypes
    try:
        if "-----BEGIN CERTIFICATE-----" in stripped:
            key = x509.load_pem_x509_certificate(_pem_bytes(stripped)).public_key()
        else:
            key = serialization.load_pem_public_key(_pem_bytes(stripped))
    except _PEM_ERRORS:
        raise KeyFormatError("not a readable PEM public key or certificate") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise KeyFormatError(f"PEM public key is not RSA ({type(key).__name__})")
    _check_size(key)
    return key
