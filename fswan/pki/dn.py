"""Distinguished names: pluto's text form, a strict DER reader, and pluto's wildcard match.

Text form (``leftid="C=CH, O=Lab, CN=west"``, ``rightca=``): RDNs in ASN.1 order as written,
separated by ``,`` or ``/`` (a leading ``/`` as in ``/C=CH/O=Lab/CN=west`` is allowed), spaces
around names and values ignored, a value either double-quoted or with ``\\`` escaping the next
character.  Attribute names follow the X.509 patch's (and strongSwan's) table, case-insensitive:
notably ``S`` is *surname* and ``SN`` is *serialNumber* (not OpenSSL's ``SN`` = surname), and
``G``/``GN`` is givenName; ``ST`` is the state.  A dotted OID names any other attribute.  ``*``
as a value is a wildcard, meaningful only in patterns (``dn_match``).

``x509.Name`` holds every DN here: cryptography compares, hashes and DER-encodes it.  Only the
decoding of a bare DER Name (an ID_DER_ASN1_DN payload, a CERTREQ's CA) is hand-written, because
cryptography has no public parser for one; it is strict and raises only ``DNError``.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass

from cryptography import x509
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import NameOID, ObjectIdentifier


class DNError(ValueError):
    """Text or DER that is not a distinguished name; the message says what is wrong."""


@dataclass(frozen=True)
class _Attr:
    #: the name format_dn prints, then the other names parse_dn accepts
    names: tuple[str, ...]
    oid: ObjectIdentifier
    #: IA5String when the value is ASCII (RFC 5280 for email and DC), else PrintableString
    ia5: bool = False


_ATTRS: tuple[_Attr, ...] = (
    _Attr(("C", "countryName"), NameOID.COUNTRY_NAME),
    _Attr(("ST", "stateOrProvinceName"), NameOID.STATE_OR_PROVINCE_NAME),
    _Attr(("L", "localityName"), NameOID.LOCALITY_NAME),
    _Attr(("O", "organizationName"), NameOID.ORGANIZATION_NAME),
    _Attr(("OU", "organizationalUnitName"), NameOID.ORGANIZATIONAL_UNIT_NAME),
    _Attr(("CN", "commonName"), NameOID.COMMON_NAME),
    _Attr(("S", "surname"), NameOID.SURNAME),
    _Attr(("SN", "serialNumber"), NameOID.SERIAL_NUMBER),
    _Attr(("G", "GN", "givenName"), NameOID.GIVEN_NAME),
    _Attr(("I", "initials"), NameOID.INITIALS),
    _Attr(("T", "title"), NameOID.TITLE),
    _Attr(("D", "description"), ObjectIdentifier("2.5.4.13")),
    _Attr(("N", "name"), ObjectIdentifier("2.5.4.41")),
    _Attr(("E", "Email", "emailAddress"), NameOID.EMAIL_ADDRESS, ia5=True),
    _Attr(("UN", "unstructuredName"), NameOID.UNSTRUCTURED_NAME, ia5=True),
    _Attr(("UA", "unstructuredAddress"), ObjectIdentifier("1.2.840.113549.1.9.8")),
    _Attr(("DC", "domainComponent"), NameOID.DOMAIN_COMPONENT, ia5=True),
    _Attr(("UID", "userId"), NameOID.USER_ID),
    _Attr(("dnQualifier",), NameOID.DN_QUALIFIER),
    _Attr(("EN", "employeeNumber"), ObjectIdentifier("2.16.840.1.113730.3.1.3")),
    _Attr(("postalCode",), NameOID.POSTAL_CODE),
    _Attr(("street", "streetAddress"), NameOID.STREET_ADDRESS),
    _Attr(("pseudonym",), NameOID.PSEUDONYM),
)
_BY_NAME: dict[str, _Attr] = {n.lower(): a for a in _ATTRS for n in a.names}
_BY_OID: dict[ObjectIdentifier, _Attr] = {a.oid: a for a in _ATTRS}
_DOTTED = re.compile(r"[0-9]+(\.[0-9]+)+\Z")
_PRINTABLE = re.compile(r"[A-Za-z0-9 '()+,\-./:=?]*\Z")
_COUNTRY = re.compile(r"[A-Za-z]{2}\Z")
_SEPARATORS = ",/"

WILDCARD = "*"


def _attribute(key: str, value: str) -> x509.NameAttribute:
    """One attribute from text, with the string type strongSwan would encode it as."""
    spec = _BY_NAME.get(key.lower())
    if spec is not None:
        oid = spec.oid
    elif _DOTTED.match(key):
        try:
            oid = ObjectIdentifier(key)
        except ValueError as e:
            raise DNError(f"bad OID {key!r} in distinguished name: {e}") from None
    else:
        raise DNError(f"unknown attribute {key!r} in distinguished name")
    if value == "":
        raise DNError(f"empty value for {key!r} in distinguished name")
    if oid == NameOID.X500_UNIQUE_IDENTIFIER:
        raise DNError("x500UniqueIdentifier (a BIT STRING) cannot be written as text")
    wildcard = value == WILDCARD
    if oid == NameOID.COUNTRY_NAME and not wildcard and not _COUNTRY.match(value):
        raise DNError(f"country {value!r} is not two letters")
    if spec is not None and spec.ia5 and value.isascii():
        kind = _ASN1Type.IA5String
    elif _PRINTABLE.match(value):
        kind = _ASN1Type.PrintableString
    else:
        kind = _ASN1Type.UTF8String
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # C=* is shorter than a country may be; a pattern only
        return x509.NameAttribute(oid, value, kind, _validate=not wildcard)


def parse_dn(text: str) -> x509.Name:
    """``C=CH, O=Lab, CN=west`` (or ``/C=CH/O=Lab/CN=west``) as an ``x509.Name``, one RDN each."""
    s = text.strip()
    if s.startswith("/"):
        s = s[1:]
    if not s:
        raise DNError("empty distinguished name")
    rdns: list[x509.RelativeDistinguishedName] = []
    pos, end = 0, len(s)
    while True:
        eq = pos
        while eq < end and s[eq] != "=":
            if s[eq] in _SEPARATORS:
                raise DNError(f"missing '=' after {s[pos:eq].strip()!r} in distinguished name")
            eq += 1
        key = s[pos:eq].strip()
        if eq == end:
            raise DNError(f"missing '=' after {key!r} in distinguished name")
        if not key:
            raise DNError(f"missing attribute name before '=' at offset {eq}")
        value, pos = _read_value(s, eq + 1)
        rdns.append(x509.RelativeDistinguishedName([_attribute(key, value)]))
        if pos == end:
            return x509.Name(rdns)
        pos += 1  # the separator
        if not s[pos:].strip():
            raise DNError("distinguished name ends with a separator")


def _read_value(s: str, pos: int) -> tuple[str, int]:
    """The value starting at ``pos`` and the index of the separator after it (or ``len(s)``)."""
    end = len(s)
    while pos < end and s[pos] == " ":
        pos += 1
    out: list[str] = []
    if pos < end and s[pos] == '"':
        pos += 1
        while True:
            if pos >= end:
                raise DNError("unterminated quoted value in distinguished name")
            c = s[pos]
            if c == '"':
                break
            if c == "\\" and pos + 1 < end:
                pos += 1
            out.append(s[pos])
            pos += 1
        pos += 1
        while pos < end and s[pos] == " ":
            pos += 1
        if pos < end and s[pos] not in _SEPARATORS:
            raise DNError(f"text after quoted value {''.join(out)!r} in distinguished name")
        return "".join(out), pos
    significant = 0  # trailing unescaped spaces are not part of the value
    while pos < end and s[pos] not in _SEPARATORS:
        c = s[pos]
        if c == "\\":
            if pos + 1 >= end:
                raise DNError("distinguished name ends with a lone '\\'")
            pos += 1
            out.append(s[pos])
            significant = len(out)
        else:
            out.append(c)
            if c != " ":
                significant = len(out)
        pos += 1
    return "".join(out[:significant]), pos


def _attributes(name: x509.Name) -> list[x509.NameAttribute]:
    """Every attribute in ASN.1 order; a multi-valued RDN counts as its members (as pluto does)."""
    return [attr for rdn in name.rdns for attr in rdn]


def _escape(value: str) -> str:
    out = "".join("\\" + c if c in ',/\\"' else c for c in value)
    if out.startswith(" "):
        out = "\\" + out
    if out.endswith(" ") and len(out) > 1:
        out = out[:-1] + "\\ "
    return out


def attribute_name(oid: ObjectIdentifier) -> str:
    """The short name pluto prints for an attribute type, or its dotted OID."""
    spec = _BY_OID.get(oid)
    return spec.names[0] if spec is not None else oid.dotted_string


def format_dn(name: x509.Name) -> str:
    """``C=CH, O=Lab, CN=west``: pluto's text for a DN; ``parse_dn`` reads it back."""
    parts = []
    for attr in _attributes(name):
        value = attr.value
        text = "#" + value.hex() if isinstance(value, bytes) else _escape(value)
        parts.append(f"{attribute_name(attr.oid)}={text}")
    return ", ".join(parts)


def dn_to_der(name: x509.Name) -> bytes:
    """The DER a DN goes on the wire as (ID_DER_ASN1_DN, CERTREQ)."""
    return name.public_bytes()


def dn_match(pattern: x509.Name, name: x509.Name) -> int | None:
    """pluto's match_dn: the number of ``*`` values used to match (0 = equal), or None.

    The same attribute types must appear in the same order; text compares case-insensitively.
    """
    want, have = _attributes(pattern), _attributes(name)
    if len(want) != len(have):
        return None
    wildcards = 0
    for p, a in zip(want, have):
        if p.oid != a.oid:
            return None
        if p.value == WILDCARD:
            wildcards += 1
            continue
        if isinstance(p.value, str) and isinstance(a.value, str):
            if p.value.casefold() != a.value.casefold():
                return None
        elif p.value != a.value:
            return None
    return wildcards


def has_wildcards(name: x509.Name) -> bool:
    """Whether a DN is a pattern (some value is ``*``)."""
    return any(attr.value == WILDCARD for attr in _attributes(name))


# --- strict DER reader for a bare Name -----------------------------------------------------

#: bounds on what a peer may make us decode: a DN in an ID or CERTREQ payload is far smaller
MAX_DN_DER = 16384
MAX_ATTRIBUTES = 64
_MAX_OID_ARCS = 32

_SEQUENCE, _SET, _OID = 0x30, 0x31, 0x06
_UTF8, _PRINTABLE_T, _T61, _IA5, _UNIVERSAL, _BMP = 0x0C, 0x13, 0x14, 0x16, 0x1C, 0x1E


def _tlv(data: bytes, pos: int, end: int, what: str) -> tuple[int, int, int]:
    """(tag, content start, content end) of the DER element at ``pos``; definite minimal lengths only."""
    if pos + 2 > end:
        raise DNError(f"DN: truncated {what}")
    tag, first = data[pos], data[pos + 1]
    pos += 2
    if tag & 0x1F == 0x1F:
        raise DNError(f"DN: multi-byte tag in {what}")
    if first < 0x80:
        length = first
    elif first == 0x80:
        raise DNError(f"DN: indefinite length in {what}")
    else:
        n = first & 0x7F
        if n > 3:
            raise DNError(f"DN: {what} length of {n} bytes")
        if pos + n > end:
            raise DNError(f"DN: truncated length of {what}")
        raw = data[pos:pos + n]
        if raw[0] == 0:
            raise DNError(f"DN: non-minimal length of {what}")
        length = int.from_bytes(raw, "big")
        if length < 0x80:
            raise DNError(f"DN: non-minimal length of {what}")
        pos += n
    if pos + length > end:
        raise DNError(f"DN: {what} length {length} runs past its container")
    return tag, pos, pos + length


def _oid(body: bytes) -> ObjectIdentifier:
    if not body:
        raise DNError("DN: empty OID")
    arcs: list[int] = []
    value = 0
    fresh = True
    for b in body:
        if fresh and b == 0x80:
            raise DNError("DN: non-minimal OID subidentifier")
        value = (value << 7) | (b & 0x7F)
        fresh = not b & 0x80
        if fresh:
            arcs.append(value)
            value = 0
            if len(arcs) > _MAX_OID_ARCS:
                raise DNError("DN: OID has too many arcs")
    if not fresh:
        raise DNError("DN: truncated OID")
    first = arcs[0]
    head = [0, first] if first < 40 else [1, first - 40] if first < 80 else [2, first - 80]
    dotted = ".".join(str(a) for a in head + arcs[1:])
    try:
        return ObjectIdentifier(dotted)
    except ValueError as e:
        raise DNError(f"DN: bad OID {dotted}: {e}") from None


def _string(tag: int, body: bytes) -> tuple[str, _ASN1Type]:
    try:
        if tag == _PRINTABLE_T:
            # strictly PrintableString excludes '*', '@', '&'... but CAs put them there;
            # accept printable ASCII as pluto and OpenSSL do
            if any(b < 0x20 or b > 0x7E for b in body):
                raise DNError("DN: PrintableString with a non-printable character")
            return body.decode("ascii"), _ASN1Type.PrintableString
        if tag == _UTF8:
            return body.decode("utf-8"), _ASN1Type.UTF8String
        if tag == _IA5:
            return body.decode("ascii"), _ASN1Type.IA5String
        if tag == _T61:
            return body.decode("latin-1"), _ASN1Type.T61String
        if tag == _BMP:
            if len(body) % 2:
                raise DNError("DN: BMPString of odd length")
            return body.decode("utf-16-be"), _ASN1Type.BMPString
        if tag == _UNIVERSAL:
            if len(body) % 4:
                raise DNError("DN: UniversalString length not a multiple of 4")
            return body.decode("utf-32-be"), _ASN1Type.UniversalString
    except UnicodeDecodeError as e:
        raise DNError(f"DN: badly encoded string: {e.reason}") from None
    raise DNError(f"DN: attribute value with tag 0x{tag:02x} is not a string type")


def dn_from_der(data: bytes) -> x509.Name:
    """A DER Name (SEQUENCE OF SET OF SEQUENCE {OID, string}); DNError on anything else."""
    if len(data) > MAX_DN_DER:
        raise DNError(f"DN: {len(data)} bytes is larger than {MAX_DN_DER}")
    tag, pos, end = _tlv(data, 0, len(data), "Name")
    if tag != _SEQUENCE:
        raise DNError(f"DN: Name is tag 0x{tag:02x}, not a SEQUENCE")
    if end != len(data):
        raise DNError(f"DN: {len(data) - end} bytes after the Name")
    rdns: list[x509.RelativeDistinguishedName] = []
    count = 0
    while pos < end:
        tag, set_pos, set_end = _tlv(data, pos, end, "RDN")
        if tag != _SET:
            raise DNError(f"DN: RDN is tag 0x{tag:02x}, not a SET")
        pos = set_end
        if set_pos == set_end:
            raise DNError("DN: empty RDN")
        attrs: list[x509.NameAttribute] = []
        while set_pos < set_end:
            count += 1
            if count > MAX_ATTRIBUTES:
                raise DNError(f"DN: more than {MAX_ATTRIBUTES} attributes")
            tag, a_pos, a_end = _tlv(data, set_pos, set_end, "attribute")
            if tag != _SEQUENCE:
                raise DNError(f"DN: attribute is tag 0x{tag:02x}, not a SEQUENCE")
            set_pos = a_end
            tag, o_pos, o_end = _tlv(data, a_pos, a_end, "attribute type")
            if tag != _OID:
                raise DNError("DN: attribute type is not an OID")
            oid = _oid(data[o_pos:o_end])
            tag, v_pos, v_end = _tlv(data, o_end, a_end, "attribute value")
            if v_end != a_end:
                raise DNError("DN: extra data after an attribute value")
            value, kind = _string(tag, data[v_pos:v_end])
            if "\0" in value:
                raise DNError("DN: NUL character in an attribute value")
            try:
                attrs.append(x509.NameAttribute(oid, value, kind))
            except (ValueError, TypeError) as e:
                raise DNError(f"DN: bad {attribute_name(oid)} attribute: {e}") from None
        try:
            rdns.append(x509.RelativeDistinguishedName(attrs))
        except ValueError as e:  # duplicate attributes in one RDN
            raise DNError(f"DN: bad RDN: {e}") from None
    if not rdns:
        raise DNError("DN: empty Name")
    return x509.Name(rdns)
