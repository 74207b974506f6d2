"""IKEv2 payloads (RFC 7296 section 3, RFC 7383 for SKF): one frozen
dataclass each, with the body's encoder and decoder.

A payload here is only its body: the 4-byte generic header (next payload,
Critical bit, length) belongs to the chain and lives in ``message.py``.
Decoders take the body and a ``where`` for error messages and raise only
:class:`MalformedMessage`; values a newer peer may send (transform IDs,
notify types, ID types) are kept as plain ints, only the shape is checked.
Encoders trust their (typed) inputs but refuse values that do not fit a
field with ``ValueError``: that is our bug, not the peer's.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import ClassVar

from .constants import (
    NONCE_MAX,
    NONCE_MIN,
    CfgAttr,
    NotifyType,
    PayloadType,
    ProtocolId,
    TransformAttr,
    TransformType,
    TsType,
    coerce,
)
from .errors import MalformedMessage

_LAST_PROPOSAL, _MORE_PROPOSALS = 0, 2
_LAST_TRANSFORM, _MORE_TRANSFORMS = 0, 3
_TV_BIT = 0x8000


def _need(data: bytes, size: int, where: str, what: str) -> None:
    if len(data) < size:
        raise MalformedMessage(f"{what} needs {size} bytes, has {len(data)}", where)


class Payload:
    """Base of every payload: its type number and its body codec."""

    TYPE: ClassVar[int] = PayloadType.NONE

    @property
    def payload_type(self) -> int:
        return self.TYPE

    def chain_next(self, following: int) -> int:
        """What this payload's generic header says comes next.

        The following payload's type, except for SK/SKF, which name the
        first payload inside them (RFC 7296 3.14).
        """
        return following

    def encode_body(self) -> bytes:
        raise NotImplementedError

    @classmethod
    def decode_body(cls, body: bytes, where: str) -> Payload:
        raise NotImplementedError


# ---------------------------------------------------------------------------
# SA (3.3)


@dataclass(frozen=True)
class Attribute:
    """A transform attribute: TV when ``value`` is an int, TLV when bytes."""

    type: int
    value: int | bytes

    def encode(self) -> bytes:
        if isinstance(self.value, int):
            return struct.pack("!HH", _TV_BIT | self.type, self.value)
        return struct.pack("!HH", self.type, len(self.value)) + self.value


@dataclass(frozen=True)
class Transform:
    type: int  #: TransformType
    id: int  #: EncrId, PrfId, IntegId, DhGroup or EsnId
    attributes: tuple[Attribute, ...] = ()

    @property
    def key_length(self) -> int | None:
        """The Key Length attribute, in bits, if present."""
        for attribute in self.attributes:
            if attribute.type == TransformAttr.KEY_LENGTH and isinstance(attribute.value, int):
                return attribute.value
        return None

    def encode(self, last: bool) -> bytes:
        attrs = b"".join(a.encode() for a in self.attributes)
        head = struct.pack(
            "!BBHBBH",
            _LAST_TRANSFORM if last else _MORE_TRANSFORMS,
            0,
            8 + len(attrs),
            self.type,
            0,
            self.id,
        )
        return head + attrs


@dataclass(frozen=True)
class Proposal:
    number: int
    protocol: int  #: ProtocolId
    spi: bytes = b""  #: empty in IKE_SA_INIT, 8 bytes for an IKE rekey, 4 for ESP/AH
    transforms: tuple[Transform, ...] = ()

    def transforms_of(self, ttype: TransformType) -> tuple[Transform, ...]:
        return tuple(t for t in self.transforms if t.type == ttype)

    def encode(self, last: bool) -> bytes:
        if len(self.transforms) > 255:
            raise ValueError("at most 255 transforms in a proposal")
        body = b"".join(t.encode(i == len(self.transforms) - 1) for i, t in enumerate(self.transforms))
        head = struct.pack(
            "!BBHBBBB",
            _LAST_PROPOSAL if last else _MORE_PROPOSALS,
            0,
            8 + len(self.spi) + len(body),
            self.number,
            self.protocol,
            len(self.spi),
            len(self.transforms),
        )
        return head + self.spi + body


def _decode_attributes(data: bytes, where: str) -> tuple[Attribute, ...]:
    attributes: list[Attribute] = []
    offset = 0
    while offset < len(data):
        _need(data[offset:], 4, where, "attribute")
        kind, word = struct.unpack_from("!HH", data, offset)
        offset += 4
        if kind & _TV_BIT:
            attributes.append(Attribute(kind & ~_TV_BIT, word))
            continue
        if offset + word > len(data):
            raise MalformedMessage(f"attribute length {word} exceeds the {len(data) - offset} bytes left", where)
        attributes.append(Attribute(kind, data[offset : offset + word]))
        offset += word
    return tuple(attributes)


def _decode_transform(data: bytes, where: str) -> tuple[Transform, int, int]:
    """One transform, its length and its "last substructure" byte."""
    _need(data, 8, where, "transform")
    last, _, length, ttype, _, tid = struct.unpack_from("!BBHBBH", data)
    if last not in (_LAST_TRANSFORM, _MORE_TRANSFORMS):
        raise MalformedMessage(f"transform substructure type {last}, not 0 or 3", where)
    if length < 8 or length > len(data):
        raise MalformedMessage(f"transform length {length} with {len(data)} bytes left", where)
    attributes = _decode_attributes(data[8:length], where)
    return Transform(ttype, tid, attributes), length, last


def _decode_proposal(data: bytes, where: str) -> tuple[Proposal, int, int]:
    _need(data, 8, where, "proposal")
    last, _, length, number, protocol, spi_size, count = struct.unpack_from("!BBHBBBB", data)
    if last not in (_LAST_PROPOSAL, _MORE_PROPOSALS):
        raise MalformedMessage(f"proposal substructure type {last}, not 0 or 2", where)
    if length < 8 + spi_size or length > len(data):
        raise MalformedMessage(f"proposal length {length} with {len(data)} bytes left", where)
    spi = data[8 : 8 + spi_size]
    rest = data[8 + spi_size : length]
    transforms: list[Transform] = []
    for index in range(count):
        inner = f"{where}, transform {index + 1}"
        if not rest:
            raise MalformedMessage(f"{count} transforms announced, {index} present", where)
        transform, used, more = _decode_transform(rest, inner)
        transforms.append(transform)
        rest = rest[used:]
        if (more == _LAST_TRANSFORM) != (index == count - 1):
            raise MalformedMessage("last-transform mark does not match the transform count", inner)
    if rest:
        raise MalformedMessage(f"{len(rest)} bytes after the last transform", where)
    return Proposal(number, protocol, spi, tuple(transforms)), length, last


@dataclass(frozen=True)
class SecurityAssociation(Payload):
    TYPE: ClassVar[int] = PayloadType.SA
    proposals: tuple[Proposal, ...]

    def encode_body(self) -> bytes:
        count = len(self.proposals)
        return b"".join(p.encode(i == count - 1) for i, p in enumerate(self.proposals))

    @classmethod
    def decode_body(cls, body: bytes, where: str) -> SecurityAssociation:
        proposals: list[Proposal] = []
        rest = body
        while rest:
            proposal, used, more = _decode_proposal(rest, f"{where}, proposal {len(proposals) + 1}")
            proposals.append(proposal)
            rest = rest[used:]
            if more == _LAST_PROPOSAL and rest:
                raise MalformedMessage(f"{len(rest)} bytes after the last proposal", where)
            if more == _MORE_PROPOSALS and not rest:
                raise MalformedMessage("more proposals announced, none present", where)
        if not proposals:
            raise MalformedMessage("SA payload without proposals", where)
        return cls(tuple(proposals))


# ---------------------------------------------------------------------------
# KE, ID, CERT, CERTREQ, AUTH, Nonce (3.4 - 3.9)


@dataclass(frozen=True)
class KeyExchange(Payload):
    TYPE: ClassVar[int] = PayloadType.KE
    group: int  #: DhGroup
    data: bytes

    def encode_body(self) -> bytes:
        return struct.pack("!HH", self.group, 0) + self.data

    @classmethod
    def decode_body(cls, body: bytes, where: str) -> KeyExchange:
        _need(body, 4, where, "KE payload")
        return cls(struct.unpack_from("!H", body)[0], body[4:])


@dataclass(frozen=True)
class _Identification(Payload):
    id_type: int  #: IdType
    data: bytes

    def encode_body(self) -> bytes:
        return bytes([self.id_type, 0, 0, 0]) + self.data

    @classmethod
    def decode_body(cls, body: bytes, where: str) -> _Identification:
        _need(body, 4, where, "ID payload")
        return cls(body[0], body[4:])


@dataclass(frozen=True)
class IDi(_Identification):
    """The initiator's identity; its body is what AUTH's MACedID covers."""

    TYPE: ClassVar[int] = PayloadType.IDI


@dataclass(frozen=True)
class IDr(_Identification):
    TYPE: ClassVar[int] = PayloadType.IDR


@dataclass(frozen=True)
class _TypedBlob(Payload):
    """A one-octet type (encoding) and opaque data: CERT and CERTREQ."""

    encoding: int  #: CertEncoding
    data: bytes

    def encode_body(self) -> bytes:
        return bytes([self.encoding]) + self.data

    @classmethod
    def decode_body(cls, body: bytes, where: str) -> _TypedBlob:
        _need(body, 1, where, "payload")
        return cls(body[0], body[1:])


@dataclass(frozen=True)
class Certificate(_TypedBlob):
    TYPE: ClassVar[int] = PayloadType.CERT


@dataclass(frozen=True)
class CertificateRequest(_TypedBlob):
    """For X.509: concatenated SHA-1 hashes of trusted CAs' public keys."""

    TYPE: ClassVar[int] = PayloadType.CERTREQ


@dataclass(frozen=True)
class Authentication(Payload):
    TYPE: ClassVar[int] = PayloadType.AUTH
    method: int  #: AuthMethod
    data: bytes

    def encode_body(self) -> bytes:
        return bytes([self.method, 0, 0, 0]) + self.data

    @classmethod
    def decode_body(cls, body: bytes, where: str) -> Authentication:
        _need(body, 4, where, "AUTH payload")
        return cls(body[0], body[4:])


def split_digital_signature(data: bytes, where: str = "AUTH payload") -> tuple[bytes, bytes]:
    """RFC 7427 AUTH data (method 14): the DER AlgorithmIdentifier and the
    signature, from ``length (1 octet) | AlgorithmIdentifier | signature``."""
    if not data or len(data) < 1 + data[0] or data[0] == 0:
        raise MalformedMessage("digital signature AUTH data without its AlgorithmIdentifier", where)
    return data[1 : 1 + data[0]], data[1 + data[0] :]


def join_digital_signature(algorithm: bytes, signature: bytes) -> bytes:
    """The inverse of :func:`split_digital_signature`."""
    if not 0 < len(algorithm) < 256:
        raise ValueError("an AlgorithmIdentifier of 1..255 bytes")
    return bytes([len(algorithm)]) + algorithm + signature


@dataclass(frozen=True)
class Nonce(Payload):
    TYPE: ClassVar[int] = PayloadType.NONCE
    data: bytes

    def encode_body(self) -> bytes:
        return self.data

    @classmethod
    def decode_body(cls, body: bytes, where: str) -> Nonce:
        if not NONCE_MIN <= len(body) <= NONCE_MAX:
            raise MalformedMessage(f"nonce of {len(body)} bytes, not {NONCE_MIN}..{NONCE_MAX}", where)
        return cls(body)


# ---------------------------------------------------------------------------
# Notify, Delete, Vendor ID (3.10 - 3.12)


@dataclass(frozen=True)
class Notify(Payload):
    TYPE: ClassVar[int] = PayloadType.NOTIFY
    notify_type: int  #: NotifyType
    data: bytes = b""
    protocol: int = ProtocolId.NONE  #: 0 for IKE SA notifications
    spi: bytes = b""

    @property
    def is_error(self) -> bool:
        return self.notify_type < 16384

    def encode_body(self) -> bytes:
        return struct.pack("!BBH", self.protocol, len(self.spi), self.notify_type) + self.spi + self.data

    @classmethod
    def decode_body(cls, body: bytes, where: str) -> Notify:
        _need(body, 4, where, "Notify payload")
        protocol, spi_size, ntype = struct.unpack_from("!BBH", body)
        _need(body, 4 + spi_size, where, f"Notify payload with a {spi_size}-byte SPI")
        return cls(coerce(NotifyType, ntype), body[4 + spi_size :], protocol, body[4 : 4 + spi_size])


@dataclass(frozen=True)
class Delete(Payload):
    """SPIs of one protocol to delete; none (size 0) for the IKE SA itself."""

    TYPE: ClassVar[int] = PayloadType.DELETE
    protocol: int
    spis: tuple[bytes, ...] = ()

    def encode_body(self) -> bytes:
        size = len(self.spis[0]) if self.spis else 0
        if any(len(spi) != size for spi in self.spis):
            raise ValueError("all SPIs of a Delete payload have one size")
        return struct.pack("!BBH", self.protocol, size, len(self.spis)) + b"".join(self.spis)

    @classmethod
    def decode_body(cls, body: bytes, where: str) -> Delete:
        _need(body, 4, where, "Delete payload")
        protocol, size, count = struct.unpack_from("!BBH", body)
        if len(body) != 4 + size * count:
            raise MalformedMessage(f"{count} SPIs of {size} bytes in {len(body) - 4} bytes", where)
        if count and not size:
            raise MalformedMessage(f"{count} SPIs of size 0", where)
        return cls(protocol, tuple(body[4 + i * size : 4 + (i + 1) * size] for i in range(count)))


@dataclass(frozen=True)
class VendorId(Payload):
    TYPE: ClassVar[int] = PayloadType.VENDOR_ID
    data: bytes

    def encode_body(self) -> bytes:
        return self.data

    @classmethod
    def decode_body(cls, body: bytes, where: str) -> VendorId:
        return cls(body)


# ---------------------------------------------------------------------------
# Traffic selectors (3.13)

_ADDRESS_SIZE = {TsType.IPV4_ADDR_RANGE: 4, TsType.IPV6_ADDR_RANGE: 16}


@dataclass(frozen=True)
class TrafficSelector:
    """An address range with an IP protocol (0 = any) and a port range.

    Addresses are raw bytes (4 or 16) so that every wire value round-trips;
    ``start``/``end`` give them as ``ipaddress`` objects.  A selector of a
    type this codec does not know (FC, security labels) keeps its whole
    body in ``data`` and leaves the other fields at zero.
    """

    ts_type: int = TsType.IPV4_ADDR_RANGE
    ip_protocol: int = 0
    start_port: int = 0
    end_port: int = 65535
    start_address: bytes = bytes(4)
    end_address: bytes = b"\xff" * 4
    data: bytes = b""

    @classmethod
    def from_range(
        cls, start: str | IPv4Address | IPv6Address, end: str | IPv4Address | IPv6Address,
        ip_protocol: int = 0, start_port: int = 0, end_port: int = 65535,
    ) -> TrafficSelector:
        first, last = ip_address(start), ip_address(end)
        if first.version != last.version:
            raise ValueError("a selector's addresses are of one family")
        ts_type = TsType.IPV4_ADDR_RANGE if first.version == 4 else TsType.IPV6_ADDR_RANGE
        return cls(ts_type, ip_protocol, start_port, end_port, first.packed, last.packed)

    @property
    def known(self) -> bool:
        return self.ts_type in _ADDRESS_SIZE

    @property
    def start(self) -> IPv4Address | IPv6Address:
        return ip_address(self.start_address)

    @property
    def end(self) -> IPv4Address | IPv6Address:
        return ip_address(self.end_address)

    def encode(self) -> bytes:
        if not self.known:
            return struct.pack("!BBH", self.ts_type, self.ip_protocol, 4 + len(self.data)) + self.data
        size = _ADDRESS_SIZE[TsType(self.ts_type)]
        if len(self.start_address) != size or len(self.end_address) != size:
            raise ValueError(f"type {self.ts_type} selectors have {size}-byte addresses")
        return (
            struct.pack("!BBHHH", self.ts_type, self.ip_protocol, 8 + 2 * size, self.start_port, self.end_port)
            + self.start_address
            + self.end_address
        )


def _decode_selector(data: bytes, where: str) -> tuple[TrafficSelector, int]:
    _need(data, 4, where, "traffic selector")
    ts_type, protocol, length = struct.unpack_from("!BBH", data)
    if length < 4 or length > len(data):
        raise MalformedMessage(f"selector length {length} with {len(data)} bytes left", where)
    size = _ADDRESS_SIZE.get(coerce(TsType, ts_type))  # type: ignore[call-overload]
    if size is None:
        return TrafficSelector(ts_type, protocol, 0, 0, b"", b"", data[4:length]), length
    if length != 8 + 2 * size:
        raise MalformedMessage(f"type {ts_type} selector of length {length}, not {8 + 2 * size}", where)
    start_port, end_port = struct.unpack_from("!HH", data, 4)
    return (
        TrafficSelector(ts_type, protocol, start_port, end_port, data[8 : 8 + size], data[8 + size : length]),
        length,
    )


@dataclass(frozen=True)
class _TrafficSelectors(Payload):
    selectors: tuple[TrafficSelector, ...]

    def encode_body(self) -> bytes:
        if len(self.selectors) > 255:
            raise ValueError("at most 255 selectors in a TS payload")
        return bytes([len(self.selectors), 0, 0, 0]) + b"".join(s.encode() for s in self.selectors)

    @classmethod
    def decode_body(cls, body: bytes, where: str) -> _TrafficSelectors:
        _need(body, 4, where, "TS payload")
        count, rest = body[0], body[4:]
        selectors: list[TrafficSelector] = []
        for index in range(count):
            selector, used = _decode_selector(rest, f"{where}, selector {index + 1}")
            selectors.append(selector)
            rest = rest[used:]
        if rest:
            raise MalformedMessage(f"{len(rest)} bytes after {count} selectors", where)
        return cls(tuple(selectors))


@dataclass(frozen=True)
class TSi(_TrafficSelectors):
    TYPE: ClassVar[int] = PayloadType.TSI


@dataclass(frozen=True)
class TSr(_TrafficSelectors):
    TYPE: ClassVar[int] = PayloadType.TSR


# ---------------------------------------------------------------------------
# SK and SKF (3.14, RFC 7383 2.5)


@dataclass(frozen=True)
class Encrypted(Payload):
    """The SK payload as it is on the wire: IV | ciphertext | ICV.

    ``first_payload`` is the type of the first payload inside; ``crypto.py``
    opens and seals ``body``.  It must be the last payload of a message.
    """

    TYPE: ClassVar[int] = PayloadType.SK
    first_payload: int
    body: bytes

    def chain_next(self, following: int) -> int:
        return self.first_payload

    def encode_body(self) -> bytes:
        return self.body

    @classmethod
    def decode_body(cls, body: bytes, where: str) -> Encrypted:
        raise AssertionError("the chain decodes SK itself: it needs the next-payload field")


@dataclass(frozen=True)
class EncryptedFragment(Payload):
    """One RFC 7383 fragment: number (from 1) of total, then IV | ct | ICV.

    Only fragment 1 names the first inner payload; the others carry 0.
    """

    TYPE: ClassVar[int] = PayloadType.SKF
    first_payload: int
    number: int
    total: int
    body: bytes

    HEADER: ClassVar[int] = 4  #: fragment number and total, before the IV

    def chain_next(self, following: int) -> int:
        return self.first_payload

    def encode_body(self) -> bytes:
        return struct.pack("!HH", self.number, self.total) + self.body

    @classmethod
    def decode_body(cls, body: bytes, where: str) -> EncryptedFragment:
        raise AssertionError("the chain decodes SKF itself: it needs the next-payload field")

    @classmethod
    def decode_with_next(cls, first: int, body: bytes, where: str) -> EncryptedFragment:
        _need(body, 4, where, "SKF payload")
        number, total = struct.unpack_from("!HH", body)
        if not 1 <= number <= total:
            raise MalformedMessage(f"fragment {number} of {total}", where)
        if number > 1 and first != PayloadType.NONE:
            raise MalformedMessage(f"fragment {number} names a first payload ({first})", where)
        return cls(first, number, total, body[4:])


# ---------------------------------------------------------------------------
# CP (3.15), EAP (3.16)


@dataclass(frozen=True)
class ConfigAttribute:
    type: int  #: CfgAttr
    value: bytes = b""  #: empty in a CFG_REQUEST that only asks

    def encode(self) -> bytes:
        if self.type > 0x7FFF:
            raise ValueError("configuration attribute types are 15 bits")
        return struct.pack("!HH", self.type, len(self.value)) + self.value


@dataclass(frozen=True)
class Configuration(Payload):
    TYPE: ClassVar[int] = PayloadType.CP
    cfg_type: int  #: CfgType
    attributes: tuple[ConfigAttribute, ...] = ()

    def encode_body(self) -> bytes:
        return bytes([self.cfg_type, 0, 0, 0]) + b"".join(a.encode() for a in self.attributes)

    @classmethod
    def decode_body(cls, body: bytes, where: str) -> Configuration:
        _need(body, 4, where, "CP payload")
        attributes: list[ConfigAttribute] = []
        offset = 4
        while offset < len(body):
            _need(body[offset:], 4, where, "configuration attribute")
            kind, length = struct.unpack_from("!HH", body, offset)
            offset += 4
            if offset + length > len(body):
                raise MalformedMessage(f"attribute length {length} exceeds the {len(body) - offset} bytes left", where)
            attributes.append(ConfigAttribute(coerce(CfgAttr, kind & 0x7FFF), body[offset : offset + length]))
            offset += length
        return cls(body[0], tuple(attributes))


@dataclass(frozen=True)
class Eap(Payload):
    """An EAP message, opaque to the codec (RFC 3748 framing not checked)."""

    TYPE: ClassVar[int] = PayloadType.EAP
    data: bytes

    def encode_body(self) -> bytes:
        return self.data

    @classmethod
    def decode_body(cls, body: bytes, where: str) -> Eap:
        return cls(body)


@dataclass(frozen=True)
class UnknownPayload(Payload):
    """A payload type we do not know, sent without the Critical bit: kept
    so that logs can show it, and skipped (RFC 7296 2.5)."""

    type: int
    body: bytes
    critical: bool = False

    @property
    def payload_type(self) -> int:
        return self.type

    def encode_body(self) -> bytes:
        return self.body


#: payload type -> class, for the chain decoder (SK/SKF are special-cased)
PAYLOAD_CLASSES: dict[int, type[Payload]] = {
    cls.TYPE: cls
    for cls in (
        SecurityAssociation, KeyExchange, IDi, IDr, Certificate, CertificateRequest, Authentication,
        Nonce, Notify, Delete, VendorId, TSi, TSr, Encrypted, EncryptedFragment, Configuration, Eap,
    )
}

