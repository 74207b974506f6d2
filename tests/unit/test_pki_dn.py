"""fswan.pki.dn: pluto's DN text, the strict DER reader, wildcard matching."""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from fswan.pki.dn import DNError, dn_from_der, dn_match, dn_to_der, format_dn, has_wildcards, parse_dn


def test_parse_plain_in_asn1_order() -> None:
    name = parse_dn("C=CH, O=Lab, CN=west")
    assert [(a.oid, a.value) for a in name] == [
        (NameOID.COUNTRY_NAME, "CH"), (NameOID.ORGANIZATION_NAME, "Lab"), (NameOID.COMMON_NAME, "west")]
    assert format_dn(name) == "C=CH, O=Lab, CN=west"


@pytest.mark.parametrize("text", [
    "/C=CH/O=Lab/CN=west", "C=CH,O=Lab,CN=west", "  c = CH ,o=Lab,   cn = west  ", 'C=CH, O="Lab", CN=west',
    "C=CH/O=Lab/CN=west",
])
def test_spellings(text: str) -> None:
    assert format_dn(parse_dn(text)) == "C=CH, O=Lab, CN=west"


def test_quotes_and_escapes_keep_separators() -> None:
    name = parse_dn(r'C=CH, O="Lab, Inc.", OU=R\,D, CN=a\/b')
    assert [a.value for a in name] == ["CH", "Lab, Inc.", "R,D", "a/b"]
    text = format_dn(name)
    assert text == r"C=CH, O=Lab\, Inc., OU=R\,D, CN=a\/b"
    assert parse_dn(text) == name


def test_strongswan_attribute_table() -> None:
    name = parse_dn("S=Surname, SN=1234, serialNumber=5, G=Given, GN=Also, ST=Zurich, T=Boss, "
                    "Email=a@b.c, emailAddress=d@e.f, DC=example, UID=jdoe, postalCode=8000, street=Main")
    oids = [a.oid for a in name]
    assert oids == [NameOID.SURNAME, NameOID.SERIAL_NUMBER, NameOID.SERIAL_NUMBER, NameOID.GIVEN_NAME,
                    NameOID.GIVEN_NAME, NameOID.STATE_OR_PROVINCE_NAME, NameOID.TITLE, NameOID.EMAIL_ADDRESS,
                    NameOID.EMAIL_ADDRESS, NameOID.DOMAIN_COMPONENT, NameOID.USER_ID, NameOID.POSTAL_CODE,
                    NameOID.STREET_ADDRESS]
    assert format_dn(name) == ("S=Surname, SN=1234, SN=5, G=Given, G=Also, ST=Zurich, T=Boss, E=a@b.c, "
                               "E=d@e.f, DC=example, UID=jdoe, postalCode=8000, street=Main")
    assert format_dn(parse_dn(format_dn(name))) == format_dn(name)


def test_dotted_oid_and_string_types() -> None:
    name = parse_dn("1.2.3.4=x, CN=Zürich, E=a@b.c, O=Lab")
    assert format_dn(name) == "1.2.3.4=x, CN=Zürich, E=a@b.c, O=Lab"
    types = [a._type for a in name]
    assert types == [_ASN1Type.PrintableString, _ASN1Type.UTF8String, _ASN1Type.IA5String,
                     _ASN1Type.PrintableString]


@pytest.mark.parametrize("text, message", [
    ("", "empty"), ("   ", "empty"), ("/", "empty"), ("CN=", "empty value"), ("C=CH, CN=", "empty value"),
    ("C=CHE", "two letters"), ("C=1X", "two letters"), ("XX=1", "unknown attribute"), ("CN", "missing '='"),
    ("C=CH, west", "missing '='"), ("=x", "missing attribute name"), ('CN="abc', "unterminated"),
    ('CN="a" b', "after quoted"), ("CN=a,", "ends with a separator"), ("CN=a\\", "lone"),
    ("1.2.x=3", "unknown attribute"),
])
def test_errors(text: str, message: str) -> None:
    with pytest.raises(DNError, match=message):
        parse_dn(text)


def test_wildcards() -> None:
    pattern = parse_dn("C=CH, O=*, CN=*")
    assert has_wildcards(pattern) and not has_wildcards(parse_dn("C=CH, CN=x"))
    assert dn_match(pattern, parse_dn("C=CH, O=Lab, CN=west")) == 2
    assert dn_match(parse_dn("C=*, O=Lab, CN=west"), parse_dn("C=CH, O=Lab, CN=west")) == 1
    assert dn_match(parse_dn("c=ch, o=lab, cn=WEST"), parse_dn("C=CH, O=Lab, CN=west")) == 0
    assert dn_match(pattern, parse_dn("C=CH, CN=west")) is None  # fewer RDNs
    assert dn_match(pattern, parse_dn("C=CH, OU=Lab, CN=west")) is None  # other type
    assert dn_match(pattern, parse_dn("C=DE, O=Lab, CN=west")) is None
    assert dn_match(pattern, parse_dn("C=CH, CN=west, O=Lab")) is None  # order counts


def test_der_round_trip_and_known_bytes() -> None:
    name = parse_dn("C=CH, O=Lab, CN=west")
    der = dn_to_der(name)
    assert der.hex() == ("302a"
                         "310b3009060355040613024348"          # C=CH (PrintableString)
                         "310c300a060355040a13034c6162"        # O=Lab
                         "310d300b06035504031304" "77657374")  # CN=west
    back = dn_from_der(der)
    assert back == name and format_dn(back) == "C=CH, O=Lab, CN=west"


def _der(*rdns: bytes) -> bytes:
    body = b"".join(rdns)
    return bytes([0x30, len(body)]) + body


def _rdn(oid: bytes, tag: int, value: bytes) -> bytes:
    attr = bytes([0x06, len(oid)]) + oid + bytes([tag, len(value)]) + value
    seq = bytes([0x30, len(attr)]) + attr
    return bytes([0x31, len(seq)]) + seq


CN = bytes.fromhex("550403")


@pytest.mark.parametrize("tag, raw, text", [
    (0x13, b"west", "west"), (0x0C, "Zürich".encode(), "Zürich"), (0x16, b"a@b", "a@b"),
    (0x14, b"Z\xfcrich", "Zürich"), (0x1E, "Zü".encode("utf-16-be"), "Zü"),
    (0x1C, "Zü".encode("utf-32-be"), "Zü"),
])
def test_der_string_types(tag: int, raw: bytes, text: str) -> None:
    assert [a.value for a in dn_from_der(_der(_rdn(CN, tag, raw)))] == [text]


@pytest.mark.parametrize("data, message", [
    (b"", "truncated"), (b"\x30", "truncated"), (b"\x31\x00", "not a SEQUENCE"), (b"\x30\x00", "empty Name"),
    (b"\x30\x80\x00\x00", "indefinite"), (b"\x30\x81\x05" + bytes(5), "non-minimal"),
    (b"\x30\x00\x00", "after the Name"), (_der(b"\x31\x00"), "empty RDN"),
    (_der(_rdn(CN, 0x04, b"x")), "not a string type"), (_der(_rdn(CN, 0x0C, b"\xff")), "badly encoded"),
    (_der(_rdn(CN, 0x1E, b"\x00")), "odd length"), (_der(_rdn(CN, 0x1C, b"\x00")), "multiple of 4"),
    (_der(_rdn(CN, 0x13, b"a\x01")), "non-printable"), (_der(_rdn(CN, 0x0C, b"a\x00b")), "NUL"),
    (_der(_rdn(bytes.fromhex("550406"), 0x13, b"CHE")), "bad C attribute"),
    (_der(_rdn(b"\x80\x01", 0x13, b"x")), "non-minimal OID"), (_der(_rdn(b"\x55\x84", 0x13, b"x")), "truncated OID"),
    (_der(_rdn(b"", 0x13, b"x")), "empty OID"), (b"\x1f\x01\x00", "multi-byte tag"),
    (b"\x30\x84\x00\x00\x00\x80" + bytes(128), "length of 4 bytes"), (bytes(20000), "larger than"),
])
def test_der_faults(data: bytes, message: str) -> None:
    with pytest.raises(DNError, match=message):
        dn_from_der(data)


def test_der_attribute_limit() -> None:
    many = b"".join(_rdn(CN, 0x13, b"x") for _ in range(65))
    body_len = len(many)
    data = bytes([0x30, 0x82]) + body_len.to_bytes(2, "big") + many
    with pytest.raises(DNError, match="more than 64"):
        dn_from_der(data)


@settings(max_examples=500)
@given(st.binary(max_size=200))
def test_der_random_bytes_only_dnerror(data: bytes) -> None:
    try:
        dn_from_der(data)
    except DNError:
        pass


@settings(max_examples=300)
@given(st.binary(min_size=2, max_size=120))
def test_der_mutated_names_only_dnerror(noise: bytes) -> None:
    der = bytearray(dn_to_der(parse_dn("C=CH, O=Lab, CN=west")))
    for i in range(0, len(noise) - 1, 2):
        der[noise[i] % len(der)] = noise[i + 1]
    try:
        dn_from_der(bytes(der))
    except DNError:
        pass


_KEYS = st.sampled_from(["O", "OU", "CN", "L", "ST", "E", "DC", "SN", "S", "G", "T", "UID", "1.3.6.1.4.1.99"])
_VALUES = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=20).filter(
    lambda v: v.strip() == v and v.strip() != "" and v != "*")


@settings(max_examples=300)
@given(st.lists(st.tuples(_KEYS, _VALUES), min_size=1, max_size=8))
def test_generated_names_round_trip(pairs: list[tuple[str, str]]) -> None:
    text = ", ".join(k + "=" + "".join("\\" + c if c in ',/\\"' else c for c in v) for k, v in pairs)
    name = parse_dn(text)
    assert [a.value for a in name] == [v for _, v in pairs]
    assert parse_dn(format_dn(name)) == name
    assert dn_from_der(dn_to_der(name)) == name
    assert format_dn(dn_from_der(dn_to_der(name))) == format_dn(name)
