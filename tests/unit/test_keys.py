"""RSA keys: RFC 3110 / 0s text, the ``RSA {}`` block, PEM, keyids."""

from __future__ import annotations

import datetime
import functools
import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from fswan.config import keys
from fswan.config.encodings import encode_base64, encode_hex
from fswan.config.keys import KeyFormatError

DATA = Path(__file__).resolve().parent.parent / "data" / "keys"


@functools.cache
def key65537() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(65537, 1024)


@functools.cache
def key3() -> rsa.RSAPrivateKey:
    """FreeS/WAN's rsasigkey forced e=3."""
    return rsa.generate_private_key(3, 1024)


def hexint(value: int) -> str:
    return encode_hex(value.to_bytes((value.bit_length() + 7) // 8, "big"))


def fields(key: rsa.RSAPrivateKey, *names: str) -> str:
    """An RSA block body holding only the named fields."""
    private = key.private_numbers()
    values = {
        "Modulus": private.public_numbers.n,
        "PublicExponent": private.public_numbers.e,
        "PrivateExponent": private.d,
        "Prime1": private.p,
        "Prime2": private.q,
        "Exponent1": private.dmp1,
        "Exponent2": private.dmq1,
        "Coefficient": private.iqmp,
    }
    return "".join(f"\t{name}: {hexint(values[name])}\n" for name in names)


# --------------------------------------------------------------------------
# RFC 3110


class TestRfc3110:
    def test_short_exponent_layout(self) -> None:
        key = key3()
        n = key.public_key().public_numbers().n
        assert keys.pubkey_to_rfc3110(key) == b"\x01\x03" + n.to_bytes(128, "big")

    def test_65537_layout(self) -> None:
        data = keys.pubkey_to_rfc3110(key65537().public_key())
        assert data[:4] == b"\x03\x01\x00\x01"
        assert len(data) == 4 + 128

    def test_long_exponent_uses_three_byte_header(self) -> None:
        n = (1 << 4095) | (1 << 2200) | 1
        e = (1 << 2100) | 1  # 263 bytes: longer than one length byte can say
        public = rsa.RSAPublicNumbers(e, n).public_key()
        data = keys.pubkey_to_rfc3110(public)
        assert data[:3] == b"\x00\x01\x07"
        assert keys.pubkey_from_rfc3110(data).public_numbers() == public.public_numbers()

    @pytest.mark.parametrize("key", [key3, key65537], ids=["e3", "e65537"])
    def test_round_trip(self, key) -> None:
        public = key().public_key()
        data = keys.pubkey_to_rfc3110(public)
        assert keys.pubkey_from_rfc3110(data).public_numbers() == public.public_numbers()

    @pytest.mark.parametrize(
        ("data", "message"),
        [
            (b"", "empty"),
            (b"\x00\x01", "truncated in the exponent length"),
            (b"\x00\x00\x00\x03" + b"\xff" * 64, "zero exponent length"),
            (b"\x01\x03", "no room for the modulus"),
            (b"\x05\x03", "no room for the modulus"),
            (b"\x01\x03" + b"\xff" * 32, "256 bits is too small"),
            (b"\x01\x03" + b"\xff" * 63 + b"\xfe", "modulus is even"),
            (b"\x01\x04" + b"\xff" * 64, "exponent must be odd"),
            (b"\x01\x01" + b"\xff" * 64, "exponent must be odd, at least 3"),
            (b"\x01\x03" + b"\xff" * 1025, "too large"),
        ],
    )
    def test_errors(self, data: bytes, message: str) -> None:
        with pytest.raises(KeyFormatError, match=message):
            keys.pubkey_from_rfc3110(data)


class TestRsasigkey:
    def test_format_is_0s_rfc3110(self) -> None:
        text = keys.format_rsasigkey(key3())
        assert text.startswith("0sAQO") or text.startswith("0sAQP")
        assert text == encode_base64(keys.pubkey_to_rfc3110(key3()))

    def test_0s_and_0x_give_the_same_key(self) -> None:
        data = keys.pubkey_to_rfc3110(key65537())
        from_base64 = keys.parse_rsasigkey(encode_base64(data))
        from_hex = keys.parse_rsasigkey("  " + encode_hex(data) + "\n")
        assert from_base64.public_numbers() == from_hex.public_numbers()
        assert keys.same_public_key(from_base64, key65537())

    def test_round_trip_0s_key_pem(self) -> None:
        text = keys.format_rsasigkey(key65537())
        public = keys.parse_rsasigkey(text)
        pem = keys.public_key_pem(public)
        assert pem.startswith("-----BEGIN PUBLIC KEY-----")
        assert keys.format_rsasigkey(keys.load_public_key(pem)) == text
        assert keys.load_public_key(text).public_numbers() == public.public_numbers()

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ("AQOabc", "must be 0s... .base64. or 0x... .hex."),
            ("0tAQO", "must be 0s"),
            ("0sAQO*", "bad RSA public key: invalid base64"),
            ("0x013", "bad RSA public key: odd number of hex digits"),
            ("0sAQOA", "too small"),
        ],
    )
    def test_errors(self, text: str, message: str) -> None:
        with pytest.raises(KeyFormatError, match=message):
            keys.parse_rsasigkey(text)


class TestKeyId:
    def test_first_nine_base64_characters(self) -> None:
        key = key3()
        assert keys.key_id(key) == keys.format_rsasigkey(key)[2:11]
        assert keys.key_id(key).startswith("AQ")
        assert len(keys.key_id(key)) == 9

    def test_private_and_public_halves_agree(self) -> None:
        assert keys.key_id(key65537()) == keys.key_id(key65537().public_key())


# --------------------------------------------------------------------------
# The lab's real keys (copied from ../shared/lab/conf/pubkey-main)


class TestLabKeys:
    def test_east_private_matches_east_public(self) -> None:
        private = keys.load_private_key((DATA / "east.key").read_text())
        east = keys.load_public_key((DATA / "east.pub").read_text())
        west = keys.load_public_key((DATA / "west.pub").read_text())
        assert private.key_size == 2048
        assert keys.same_public_key(private, east)
        assert not keys.same_public_key(private, west)

    def test_keyids(self) -> None:
        east = keys.load_public_key((DATA / "east.pub").read_text())
        west = keys.load_public_key((DATA / "west.pub").read_text())
        assert keys.key_id(east) == "AwEAAao6e"
        assert keys.key_id(west) == "AwEAAeGZE"

    def test_lab_key_through_rsasigkey_and_block(self) -> None:
        private = keys.load_private_key((DATA / "east.key").read_text())
        text = keys.format_rsasigkey(private)
        assert keys.same_public_key(keys.parse_rsasigkey(text), private)
        block = keys.format_rsa_key_body(private)
        again = keys.parse_rsa_block(block)
        assert again.private_numbers() == private.private_numbers()


# --------------------------------------------------------------------------
# The RSA { } block


class TestFormatBlock:
    def test_layout(self) -> None:
        key = key3()
        body = keys.format_rsa_key_body(
            key, hostname="east.example", date="Sat Apr 15 13:53:22 2000"
        )
        lines = body.splitlines()
        assert lines[0] == "\t# RSA 1024 bits   east.example   Sat Apr 15 13:53:22 2000"
        assert lines[2] == f"\t#pubkey={keys.format_rsasigkey(key)}"
        names = [line.split(":")[0].strip() for line in lines if not line.lstrip().startswith("#")]
        assert names == list(keys.RSA_FIELDS)
        assert "\tPublicExponent: 0x03" in lines
        assert all(line.startswith("\t") for line in lines)
        for line in lines:
            if not line.lstrip().startswith("#"):
                assert line.split(": ")[1].startswith("0x")

    def test_without_bits_comment(self) -> None:
        body = keys.format_rsa_key_body(key3(), bits_comment=False)
        assert "# RSA" not in body
        assert body.startswith("\t#pubkey=0sAQ")

    def test_secret_block_wraps_body(self) -> None:
        text = keys.format_rsa_secret_block(key3(), ids=["@east", "192.0.2.2"])
        assert text.startswith("@east 192.0.2.2 : RSA\t{\n")
        assert "\n\t}\n" in text
        assert keys.format_rsa_secret_block(key3()).startswith(": RSA\t{\n")

    @pytest.mark.parametrize("key", [key3, key65537], ids=["e3", "e65537"])
    def test_round_trip(self, key) -> None:
        body = keys.format_rsa_key_body(key(), hostname="h", date="d")
        assert keys.parse_rsa_block(body).private_numbers() == key().private_numbers()
        braced = "{\n" + body + "}"
        assert keys.parse_rsa_block(braced).private_numbers() == key().private_numbers()


class TestParseBlock:
    def test_missing_crt_fields_are_computed_from_d(self) -> None:
        body = fields(key65537(), "Modulus", "PublicExponent", "PrivateExponent")
        parsed = keys.parse_rsa_block(body)
        assert parsed.private_numbers() == key65537().private_numbers()

    def test_missing_d_and_crt_are_computed_from_primes(self) -> None:
        body = fields(key3(), "Modulus", "PublicExponent", "Prime1", "Prime2")
        parsed = keys.parse_rsa_block(body)
        assert keys.same_public_key(parsed, key3())
        n = parsed.private_numbers()
        assert {n.p, n.q} == {key3().private_numbers().p, key3().private_numbers().q}
        assert (3 * n.d) % math.lcm(n.p - 1, n.q - 1) == 1
        signature = parsed.sign(b"data", padding.PKCS1v15(), hashes.SHA1())
        key3().public_key().verify(signature, b"data", padding.PKCS1v15(), hashes.SHA1())

    def test_one_prime_is_enough(self) -> None:
        body = fields(key65537(), "Modulus", "PublicExponent", "Prime2", "PrivateExponent")
        assert keys.parse_rsa_block(body).private_numbers() == key65537().private_numbers()

    def test_field_names_are_case_insensitive_and_values_may_be_base64(self) -> None:
        numbers = key65537().private_numbers()
        n = numbers.public_numbers.n
        body = (
            f"modulus: {encode_base64(n.to_bytes(128, 'big'))}\n"
            f"PUBLICEXPONENT:0x010001\n"
            f"PrivateExponent : {hexint(numbers.d)}\n"
        )
        assert keys.parse_rsa_block(body).private_numbers() == numbers

    def test_comments_and_pubkey_lines_are_ignored(self) -> None:
        body = (
            "# RSA 1024 bits   host   date\n#pubkey=0sAQNOTAKEY\n"
            + fields(key65537(), "Modulus", "PublicExponent")
            + "  # a comment\n"
            + fields(key65537(), "PrivateExponent").rstrip("\n")
            + "   # trailing comment\n"
        )
        assert keys.parse_rsa_block(body).private_numbers() == key65537().private_numbers()

    @pytest.mark.parametrize(
        ("body", "message"),
        [
            (fields(key3(), "PublicExponent", "PrivateExponent"), "missing Modulus"),
            (fields(key3(), "Modulus", "PrivateExponent"), "missing PublicExponent"),
            (fields(key3(), "Modulus", "PublicExponent"), "needs PrivateExponent or Prime1"),
            (fields(key3(), "Modulus", "Modulus", "PublicExponent"), "Modulus given twice"),
            ("Colour: 0x01\n", "unknown field in RSA key; expected Modulus, PublicExponent"),
            ("Modulus: 0x01\nColour: 0x01\n", "unknown field in RSA key after Modulus"),
            ("0x0102\n", "expected 'Name: value'"),
            ("Modulus:\n", "'Modulus' has no value"),
            (": 0x01\n", "expected 'Name: value'"),
            ("Modulus: 0x123\n", "bad Modulus in RSA key: odd number of hex digits"),
            ("Modulus: 12\n", "bad Modulus in RSA key: expected 0x"),
        ],
    )
    def test_errors(self, body: str, message: str) -> None:
        with pytest.raises(KeyFormatError, match=message):
            keys.parse_rsa_block(body)

    def _tampered(self, name: str, delta: int) -> str:
        numbers = key3().private_numbers()
        values = {
            "Modulus": numbers.public_numbers.n,
            "PublicExponent": numbers.public_numbers.e,
            "PrivateExponent": numbers.d,
            "Prime1": numbers.p,
            "Prime2": numbers.q,
            "Exponent1": numbers.dmp1,
            "Exponent2": numbers.dmq1,
            "Coefficient": numbers.iqmp,
        }
        values[name] += delta
        return "".join(f"{k}: {hexint(v)}\n" for k, v in values.items())

    @pytest.mark.parametrize(
        ("name", "message"),
        [
            ("Prime1", "Modulus is not Prime1 \\* Prime2"),
            ("Prime2", "Modulus is not Prime1 \\* Prime2"),
            ("PrivateExponent", "PrivateExponent does not match the primes"),
            ("Exponent1", "Exponent1 does not match"),
            ("Exponent2", "Exponent2 does not match"),
            ("Coefficient", "Coefficient does not match"),
        ],
    )
    def test_inconsistent_fields(self, name: str, message: str) -> None:
        with pytest.raises(KeyFormatError, match="inconsistent RSA key: " + message):
            keys.parse_rsa_block(self._tampered(name, 2))

    def test_wrong_d_without_primes(self) -> None:
        numbers = key65537().private_numbers()
        body = (
            f"Modulus: {hexint(numbers.public_numbers.n)}\nPublicExponent: 0x010001\n"
            f"PrivateExponent: {hexint(numbers.d + 2)}\n"
        )
        with pytest.raises(KeyFormatError, match="PrivateExponent does not fit"):
            keys.parse_rsa_block(body)

    def test_prime_not_dividing_modulus(self) -> None:
        body = fields(key3(), "Modulus", "PublicExponent") + "Prime1: 0x07\n"
        with pytest.raises(KeyFormatError, match="prime does not divide Modulus"):
            keys.parse_rsa_block(body)

    def test_unclosed_brace(self) -> None:
        with pytest.raises(KeyFormatError, match="no closing"):
            keys.parse_rsa_block("{ Modulus: 0x01")

    def test_errors_never_show_key_material(self) -> None:
        numbers = key3().private_numbers()
        for name in ("Prime1", "PrivateExponent", "Coefficient"):
            with pytest.raises(KeyFormatError) as info:
                keys.parse_rsa_block(self._tampered(name, 2))
            text = str(info.value)
            for value in (numbers.d, numbers.p, numbers.q, numbers.iqmp):
                assert hexint(value)[2:12] not in text
        with pytest.raises(KeyFormatError) as info:
            keys.parse_rsa_block(hexint(numbers.d) + ": 0x01\n")
        assert hexint(numbers.d)[2:12] not in str(info.value)


# --------------------------------------------------------------------------
# PEM


class TestPem:
    def test_pkcs8_and_pkcs1_private(self) -> None:
        key = key65537()
        for fmt in (
            serialization.PrivateFormat.PKCS8,
            serialization.PrivateFormat.TraditionalOpenSSL,
        ):
            pem = key.private_bytes(
                serialization.Encoding.PEM, fmt, serialization.NoEncryption()
            ).decode()
            loaded = keys.load_private_key("# leading text is skipped\n" + pem)
            assert loaded.private_numbers() == key.private_numbers()

    def test_encrypted_private(self) -> None:
        key = key65537()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"hunter2"),
        ).decode()
        assert keys.load_private_key(pem, b"hunter2").private_numbers() == key.private_numbers()
        with pytest.raises(KeyFormatError, match="encrypted and no passphrase"):
            keys.load_private_key(pem)
        with pytest.raises(KeyFormatError, match="passphrase is wrong"):
            keys.load_private_key(pem, b"wrong")

    def test_passphrase_for_plain_key(self) -> None:
        pem = key65537().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        with pytest.raises(KeyFormatError, match="not encrypted but a passphrase"):
            keys.load_private_key(pem, b"x")

    def test_private_block_body_accepted(self) -> None:
        body = keys.format_rsa_key_body(key3())
        assert keys.load_private_key(body).private_numbers() == key3().private_numbers()

    def test_public_formats(self) -> None:
        public = key65537().public_key()
        for fmt in (
            serialization.PublicFormat.SubjectPublicKeyInfo,
            serialization.PublicFormat.PKCS1,
        ):
            pem = public.public_bytes(serialization.Encoding.PEM, fmt).decode()
            assert keys.same_public_key(keys.load_public_key(pem), public)

    def test_certificate(self) -> None:
        key = key65537()
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "east")])
        start = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(1)
            .not_valid_before(start)
            .not_valid_after(start + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256())
        )
        pem = cert.public_bytes(serialization.Encoding.PEM).decode()
        assert keys.same_public_key(keys.load_public_key(pem), key)

    def test_non_rsa_keys_refused(self) -> None:
        ec_key = ec.generate_private_key(ec.SECP256R1())
        private_pem = ec_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        public_pem = ec_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()
        with pytest.raises(KeyFormatError, match="not RSA"):
            keys.load_private_key(private_pem)
        with pytest.raises(KeyFormatError, match="not RSA"):
            keys.load_public_key(public_pem)

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ("-----BEGIN PRIVATE KEY-----\nnonsense\n-----END PRIVATE KEY-----\n", "not a readable PEM private key"),
        ],
    )
    def test_bad_private_pem(self, text: str, message: str) -> None:
        with pytest.raises(KeyFormatError, match=message):
            keys.load_private_key(text)

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ("-----BEGIN PUBLIC KEY-----\nnonsense\n-----END PUBLIC KEY-----\n", "not a readable PEM public key"),
            ("ssh-rsa AAAA", "expected an RSA public key"),
            ("", "expected an RSA public key"),
        ],
    )
    def test_bad_public(self, text: str, message: str) -> None:
        with pytest.raises(KeyFormatError, match=message):
            keys.load_public_key(text)


# --------------------------------------------------------------------------
# Decoders raise only KeyFormatError


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_rfc3110_fuzz(data: bytes) -> None:
    try:
        keys.pubkey_from_rfc3110(data)
    except KeyFormatError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_text_loaders_fuzz(text: str) -> None:
    for load in (keys.parse_rsasigkey, keys.load_public_key, keys.load_private_key):
        try:
            load(text)
        except KeyFormatError:
            pass


@settings(max_examples=150, deadline=None)
@given(st.integers(min_value=0), st.sampled_from("0123456789abcdefx_:# \n"), st.booleans())
def test_mutated_block_fuzz(where: int, char: str, insert: bool) -> None:
    body = keys.format_rsa_key_body(key3())
    pos = where % len(body)
    text = body[:pos] + char + body[pos + (0 if insert else 1):]
    try:
        keys.parse_rsa_block(text)
    except KeyFormatError:
        pass
