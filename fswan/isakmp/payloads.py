"""ISAKMP payloads (RFC 2408 section 3, RFC 2407 section 4.6, RFC 3947).

One frozen dataclass per payload.  ``encode()`` returns the payload *body*,
the bytes after the 4-byte generic header; ``decode(body)`` reads one.  The
generic headers (next payload, length) belong to the chain and are written
by :mod:`fswan.isakmp.message`, because a payload's "next payload" field
describes its neighbour, not itself.

Rules every decoder here keeps:

* it raises only :class:`MalformedPacket`, with a message naming the payload
  and the field ("ID_IPV4_ADDR data is 5 bytes, expected 4 in ID payload");
* lengths are checked strictly: nested proposal/transform lengths must add
  up, transform counts must match, attributes must fit, fixed-size ID and
  NAT-OA data must have their size;
* reserved fields are ignored on input and written as zero;
* numbers the enums know become enum members (so logs print names); others
  stay plain ints -- an unknown algorithm is not a parse error.

A payload decoded from the wire remembers its body in ``raw`` (see
:attr:`Payload.wire_body`): HASH_I/HASH_R cover the peer's SA and ID bodies
exactly as sent, which need not be how we would re-encode them.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import Callable, ClassVar, Union

from .attributes import Attribute, decode_attributes, encode_attributes
from .constants import (
    DOI,
    GENERIC_HEADER_SIZE,
    IPSEC_ATTRIBUTE_VALUES,
    OAKLEY_ATTRIBUTE_VALUES,
    TRANSFORM_IDS,
    CertEncoding,
    CfgType,
    IdType,
    IPsecAttr,
    KnownVendor,
    NotifyType,
    OakleyAttr,
    PayloadType,
    ProtocolId,
    Situation,
    coerce,
    identify_vendor,
)
from .errors import MalformedPacket

IPAddress = Union[IPv4Address, IPv6Address]
IPNetwork = Union[IPv4Network, IPv6Network]

#: Names used in error messages and log lines ("ignoring Vendor ID payload").
PAYLOAD_NAMES: dict[int, str] = {
    PayloadType.SA: "SA",
    PayloadType.PROPOSAL: "Proposal",
    PayloadType.TRANSFORM: "Transform",
    PayloadType.KE: "KE",
    PayloadType.ID: "ID",
    PayloadType.CERT: "CERT",
    PayloadType.CR: "CR",
    PayloadType.HASH: "HASH",
    PayloadType.SIG: "SIG",
    PayloadType.NONCE: "Nonce",
    PayloadType.NOTIFICATION: "Notification",
    PayloadType.DELETE: "Delete",
    PayloadType.VENDOR_ID: "Vendor ID",
    PayloadType.ATTRIBUTE: "Attribute",
    PayloadType.NAT_D: "NAT-D",
    PayloadType.NAT_OA: "NAT-OA",
    PayloadType.NAT_D_DRAFT: "NAT-D (draft)",
    PayloadType.NAT_OA_DRAFT: "NAT-OA (draft)",
    PayloadType.FRAGMENT: "IKE fragment",
}


def payload_name(payload_type: int) -> str:
    """Human name of a payload type, for messages ("SA", "type 77")."""
    return PAYLOAD_NAMES.get(int(payload_type), f"type {int(payload_type)}")


def _u16(data: bytes, offset: int) -> int:
    return int.from_bytes(data[offset : offset + 2], "big")


def _u32(data: bytes, offset: int) -> int:
    return int.from_bytes(data[offset : offset + 4], "big")


def _need(body: bytes, size: int, what: str) -> None:
    if len(body) < size:
        raise MalformedPacket(
            f"{what} payload body is {len(body)} bytes, needs at least {size}"
        )


def _generic_header(next_payload: int, body_length: int, what: str) -> bytes:
    total = body_length + GENERIC_HEADER_SIZE
    if total > 0xFFFF:
        raise ValueError(f"{what} is {total} bytes, more than a payload can hold")
    return bytes([int(next_payload), 0]) + total.to_bytes(2, "big")


def _split_chain(
    data: bytes, item_type: int, item: str, container: str
) -> list[bytes]:
    """Split a run of sub-payloads (proposals, transforms) into their bodies.

    Each carries a generic header whose "next" is ``item_type`` or 0 for the
    last one; the run must end exactly at the end of ``data``.
    """
    bodies: list[bytes] = []
    offset = 0
    end = len(data)
    while True:
        remaining = end - offset
        if remaining < GENERIC_HEADER_SIZE:
            if not bodies:
                raise MalformedPacket(f"{container} contains no {item}")
            raise MalformedPacket(
                f"{item} header needs 4 bytes, {remaining} left in {container}"
            )
        next_type = data[offset]
        length = _u16(data, offset + 2)
        if length < GENERIC_HEADER_SIZE:
            raise MalformedPacket(
                f"{item} length {length} is less than its 4-byte header in {container}"
            )
        if length > remaining:
            raise MalformedPacket(
                f"{item} length {length} exceeds remaining {remaining} bytes "
                f"in {container}"
            )
        bodies.append(bytes(data[offset + GENERIC_HEADER_SIZE : offset + length]))
        offset += length
        if next_type == 0:
            break
        if next_type != item_type:
            raise MalformedPacket(
                f"{item} next payload {next_type} is neither 0 nor {int(item_type)} "
                f"in {container}"
            )
    if offset != end:
        raise MalformedPacket(
            f"{end - offset} bytes after the last {item} in {container}"
        )
    return bodies


class Payload:
    """Base of all payloads: ``payload_type`` says what the chain calls it."""

    payload_type: ClassVar[int]

    def encode(self) -> bytes:  # pragma: no cover - overridden
        raise NotImplementedError

    @property
    def wire_body(self) -> bytes:
        """The body as received when decoded from the wire, else ``encode()``.

        Use this for anything hashed over a peer's payload (SAi_b, IDii_b).
        """
        raw = getattr(self, "raw", None)
        return raw if raw is not None else self.encode()

    @property
    def name(self) -> str:
        return payload_name(self.payload_type)


def _raw_field() -> bytes | None:
    return field(default=None, init=False, compare=False, repr=False)  # type: ignore[return-value]


def _set_raw(payload: Payload, body: bytes) -> None:
    object.__setattr__(payload, "raw", bytes(body))


# ---------------------------------------------------------------------------
# SA, Proposal, Transform (RFC 2408 3.4-3.6, RFC 2407 4.6.1)


def _typed_attribute(protocol: int, attribute: Attribute) -> Attribute:
    """Make a transform attribute print by name (type and, if basic, value)."""
    if protocol == ProtocolId.ISAKMP:
        attr_type = coerce(OakleyAttr, attribute.type)
        values = OAKLEY_ATTRIBUTE_VALUES.get(int(attr_type))
    else:
        attr_type = coerce(IPsecAttr, attribute.type)
        values = IPSEC_ATTRIBUTE_VALUES.get(int(attr_type))
    value = attribute.value
    if values is not None and isinstance(value, int):
        value = coerce(values, value)
    return Attribute(attr_type, value)


@dataclass(frozen=True)
class Transform:
    """One transform: an algorithm choice (``id``) plus its attributes.

    ``id`` is read against the proposal's protocol: KEY_IKE for ISAKMP,
    ESP_AES_CBC etc. for ESP.
    """

    number: int
    id: int
    attributes: tuple[Attribute, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "attributes", tuple(self.attributes))

    def attribute(self, attr_type: int) -> Attribute | None:
        """The first attribute of that class, or None."""
        for attribute in self.attributes:
            if attribute.type == attr_type:
                return attribute
        return None

    def value(self, attr_type: int, default: int | None = None) -> int | None:
        """That attribute's value as a number, or ``default``."""
        attribute = self.attribute(attr_type)
        return default if attribute is None else attribute.integer

    def encode(self) -> bytes:
        """Transform body (after its generic header)."""
        return (
            bytes([int(self.number), int(self.id), 0, 0])
            + encode_attributes(self.attributes)
        )

    @classmethod
    def decode(cls, body: bytes, protocol: int = ProtocolId.ISAKMP) -> Transform:
        if len(body) < 4:
            raise MalformedPacket(
                f"transform body is {len(body)} bytes, needs at least 4"
            )
        number, transform_id = body[0], body[1]
        enum = TRANSFORM_IDS.get(int(protocol))
        typed_id = coerce(enum, transform_id) if enum is not None else transform_id
        attributes = decode_attributes(body[4:], f"transform {number}")
        return cls(
            number,
            typed_id,
            tuple(_typed_attribute(protocol, a) for a in attributes),
        )


@dataclass(frozen=True)
class Proposal:
    """One proposal: a protocol, its SPI and the transforms offered for it.

    Proposals sharing a ``number`` are a bundle (e.g. AH and ESP together);
    the SA payload keeps them as a flat, ordered list as on the wire.
    """

    number: int
    protocol: int
    spi: bytes = b""
    transforms: tuple[Transform, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "transforms", tuple(self.transforms))

    def encode(self) -> bytes:
        """Proposal body (after its generic header), transforms included."""
        if len(self.spi) > 0xFF or len(self.transforms) > 0xFF:
            raise ValueError("proposal SPI or transform count does not fit a byte")
        parts = [
            bytes(
                [
                    int(self.number),
                    int(self.protocol),
                    len(self.spi),
                    len(self.transforms),
                ]
            ),
            bytes(self.spi),
        ]
        for index, transform in enumerate(self.transforms):
            last = index == len(self.transforms) - 1
            body = transform.encode()
            next_type = PayloadType.NONE if last else PayloadType.TRANSFORM
            parts.append(_generic_header(next_type, len(body), "transform") + body)
        return b"".join(parts)

    @classmethod
    def decode(cls, body: bytes) -> Proposal:
        if len(body) < 4:
            raise MalformedPacket(f"proposal body is {len(body)} bytes, needs at least 4")
        number, protocol, spi_size, count = body[0], body[1], body[2], body[3]
        where = f"proposal {number}"
        if 4 + spi_size > len(body):
            raise MalformedPacket(
                f"SPI size {spi_size} exceeds remaining {len(body) - 4} bytes in {where}"
            )
        spi = bytes(body[4 : 4 + spi_size])
        typed_protocol = coerce(ProtocolId, protocol)
        bodies = _split_chain(body[4 + spi_size :], PayloadType.TRANSFORM, "transform", where)
        if len(bodies) != count:
            raise MalformedPacket(
                f"{where} announces {count} transforms but holds {len(bodies)}"
            )
        transforms = tuple(Transform.decode(b, typed_protocol) for b in bodies)
        return cls(number, typed_protocol, spi, transforms)


@dataclass(frozen=True)
class SAPayload(Payload):
    """Security Association: DOI, situation and the proposals, in order."""

    payload_type: ClassVar[int] = PayloadType.SA
    proposals: tuple[Proposal, ...] = ()
    doi: int = DOI.IPSEC
    situation: int = Situation.SIT_IDENTITY_ONLY
    raw: bytes | None = _raw_field()

    def __post_init__(self) -> None:
        object.__setattr__(self, "proposals", tuple(self.proposals))

    def encode(self) -> bytes:
        parts = [int(self.doi).to_bytes(4, "big"), int(self.situation).to_bytes(4, "big")]
        for index, proposal in enumerate(self.proposals):
            last = index == len(self.proposals) - 1
            body = proposal.encode()
            next_type = PayloadType.NONE if last else PayloadType.PROPOSAL
            parts.append(_generic_header(next_type, len(body), "proposal") + body)
        return b"".join(parts)

    @classmethod
    def decode(cls, body: bytes) -> SAPayload:
        _need(body, 8, "SA")
        doi = coerce(DOI, _u32(body, 0))
        situation = _u32(body, 4)
        if situation & ~int(Situation.SIT_IDENTITY_ONLY):
            # Secrecy/integrity add label fields to the situation that no
            # IKEv1 implementation we talk to sends (RFC 2407 4.6.1).
            raise MalformedPacket(
                f"situation {situation:#x} (secrecy/integrity labels) not supported",
                NotifyType.SITUATION_NOT_SUPPORTED,
            )
        bodies = _split_chain(body[8:], PayloadType.PROPOSAL, "proposal", "SA payload")
        proposals = tuple(Proposal.decode(b) for b in bodies)
        return cls(proposals, doi, Situation(situation))


# ---------------------------------------------------------------------------
# Opaque-data payloads: KE, Nonce, HASH, SIG, Vendor ID, NAT-D


@dataclass(frozen=True)
class _DataPayload(Payload):
    """A payload whose body is one opaque, non-empty byte string."""

    data: bytes
    raw: bytes | None = _raw_field()

    def encode(self) -> bytes:
        return bytes(self.data)

    @classmethod
    def decode(cls, body: bytes):  # type: ignore[no-untyped-def]
        if not body:
            raise MalformedPacket(f"{payload_name(cls.payload_type)} payload is empty")
        return cls(bytes(body))


@dataclass(frozen=True)
class KEPayload(_DataPayload):
    """Key Exchange: the sender's public Diffie-Hellman value."""

    payload_type: ClassVar[int] = PayloadType.KE


@dataclass(frozen=True)
class NoncePayload(_DataPayload):
    """Nonce (RFC 2409 wants 8 to 256 bytes; the engine checks that)."""

    payload_type: ClassVar[int] = PayloadType.NONCE


@dataclass(frozen=True)
class HashPayload(_DataPayload):
    """HASH: HASH_I/HASH_R or a Quick Mode / Informational HASH(n)."""

    payload_type: ClassVar[int] = PayloadType.HASH


@dataclass(frozen=True)
class SigPayload(_DataPayload):
    """SIG: the RSA signature over HASH_I/HASH_R."""

    payload_type: ClassVar[int] = PayloadType.SIG


@dataclass(frozen=True)
class VendorIDPayload(_DataPayload):
    """Vendor ID: announces an extension (NAT-T, DPD, ...) or a product."""

    payload_type: ClassVar[int] = PayloadType.VENDOR_ID

    @property
    def known(self) -> KnownVendor | None:
        return identify_vendor(self.data)

    @classmethod
    def of(cls, vendor: KnownVendor) -> VendorIDPayload:
        return cls(vendor.value)


@dataclass(frozen=True)
class NATDPayload(Payload):
    """NAT-D: HASH(CKY-I | CKY-R | IP | port); ``draft`` selects type 130."""

    hash: bytes
    draft: bool = False
    raw: bytes | None = _raw_field()

    @property
    def payload_type(self) -> int:  # type: ignore[override]
        return PayloadType.NAT_D_DRAFT if self.draft else PayloadType.NAT_D

    def encode(self) -> bytes:
        return bytes(self.hash)

    @classmethod
    def decode(cls, body: bytes, draft: bool = False) -> NATDPayload:
        if not body:
            raise MalformedPacket("NAT-D payload is empty")
        return cls(bytes(body), draft)


# ---------------------------------------------------------------------------
# Identification (RFC 2408 3.8, RFC 2407 4.6.2)

#: Data sizes of the address ID types; other types are free-form.
_ID_SIZES = {
    IdType.ID_IPV4_ADDR: 4,
    IdType.ID_IPV4_ADDR_SUBNET: 8,
    IdType.ID_IPV4_ADDR_RANGE: 8,
    IdType.ID_IPV6_ADDR: 16,
    IdType.ID_IPV6_ADDR_SUBNET: 32,
    IdType.ID_IPV6_ADDR_RANGE: 32,
}
_V4_TYPES = (IdType.ID_IPV4_ADDR, IdType.ID_IPV4_ADDR_SUBNET, IdType.ID_IPV4_ADDR_RANGE)
_SUBNET_TYPES = (IdType.ID_IPV4_ADDR_SUBNET, IdType.ID_IPV6_ADDR_SUBNET)
_RANGE_TYPES = (IdType.ID_IPV4_ADDR_RANGE, IdType.ID_IPV6_ADDR_RANGE)
_ADDR_TYPES = (IdType.ID_IPV4_ADDR, IdType.ID_IPV6_ADDR)


def _address(data: bytes) -> IPAddress:
    return ipaddress.ip_address(bytes(data))


def _mask_prefix(mask: bytes) -> int | None:
    """Prefix length of a contiguous netmask, None when it has holes."""
    bits = int.from_bytes(mask, "big")
    width = len(mask) * 8
    inverted = ~bits & ((1 << width) - 1)
    if inverted & (inverted + 1):
        return None
    return width - inverted.bit_length()


@dataclass(frozen=True)
class IDPayload(Payload):
    """Identification: Phase 1 peer identity or Quick Mode client selector.

    ``protocol``/``port`` are the IPsec DOI fields (0 = any); ``data`` is the
    identification as on the wire.  Use the class methods to build one and
    the properties to read one.
    """

    payload_type: ClassVar[int] = PayloadType.ID
    id_type: int
    data: bytes
    protocol: int = 0
    port: int = 0
    raw: bytes | None = _raw_field()

    # -- construction helpers ---------------------------------------------

    @classmethod
    def ipv4_addr(cls, address: str | IPv4Address, protocol: int = 0, port: int = 0) -> IDPayload:
        return cls(IdType.ID_IPV4_ADDR, IPv4Address(address).packed, protocol, port)

    @classmethod
    def ipv6_addr(cls, address: str | IPv6Address, protocol: int = 0, port: int = 0) -> IDPayload:
        return cls(IdType.ID_IPV6_ADDR, IPv6Address(address).packed, protocol, port)

    @classmethod
    def ipv4_subnet(cls, network: str | IPv4Network, protocol: int = 0, port: int = 0) -> IDPayload:
        net = IPv4Network(network)
        return cls(
            IdType.ID_IPV4_ADDR_SUBNET,
            net.network_address.packed + net.netmask.packed,
            protocol,
            port,
        )

    @classmethod
    def ipv6_subnet(cls, network: str | IPv6Network, protocol: int = 0, port: int = 0) -> IDPayload:
        net = IPv6Network(network)
        return cls(
            IdType.ID_IPV6_ADDR_SUBNET,
            net.network_address.packed + net.netmask.packed,
            protocol,
            port,
        )

    @classmethod
    def ipv4_range(
        cls, first: str | IPv4Address, last: str | IPv4Address, protocol: int = 0, port: int = 0
    ) -> IDPayload:
        return cls(
            IdType.ID_IPV4_ADDR_RANGE,
            IPv4Address(first).packed + IPv4Address(last).packed,
            protocol,
            port,
        )

    @classmethod
    def ipv6_range(
        cls, first: str | IPv6Address, last: str | IPv6Address, protocol: int = 0, port: int = 0
    ) -> IDPayload:
        return cls(
            IdType.ID_IPV6_ADDR_RANGE,
            IPv6Address(first).packed + IPv6Address(last).packed,
            protocol,
            port,
        )

    @classmethod
    def fqdn(cls, name: str, protocol: int = 0, port: int = 0) -> IDPayload:
        return cls(IdType.ID_FQDN, name.encode("utf-8"), protocol, port)

    @classmethod
    def user_fqdn(cls, name: str, protocol: int = 0, port: int = 0) -> IDPayload:
        return cls(IdType.ID_USER_FQDN, name.encode("utf-8"), protocol, port)

    @classmethod
    def from_address(cls, address: str | IPAddress, protocol: int = 0, port: int = 0) -> IDPayload:
        """ID_IPV4_ADDR or ID_IPV6_ADDR, whichever the address is."""
        addr = ipaddress.ip_address(address)
        if addr.version == 4:
            return cls.ipv4_addr(addr, protocol, port)  # type: ignore[arg-type]
        return cls.ipv6_addr(addr, protocol, port)  # type: ignore[arg-type]

    @classmethod
    def from_network(cls, network: str | IPNetwork, protocol: int = 0, port: int = 0) -> IDPayload:
        """ID_IPV4_ADDR_SUBNET or ID_IPV6_ADDR_SUBNET for a client subnet."""
        net = ipaddress.ip_network(network)
        if net.version == 4:
            return cls.ipv4_subnet(net, protocol, port)  # type: ignore[arg-type]
        return cls.ipv6_subnet(net, protocol, port)  # type: ignore[arg-type]

    # -- reading helpers ---------------------------------------------------

    @property
    def address(self) -> IPAddress:
        """The address of an ID_IPV4_ADDR / ID_IPV6_ADDR."""
        if self.id_type not in _ADDR_TYPES:
            raise TypeError(f"{self.id_type} is not an address ID")
        return _address(self.data)

    @property
    def network(self) -> IPNetwork:
        """The subnet of a *_ADDR_SUBNET ID, or the /32 (/128) of an address ID.

        Host bits under the mask are cleared, as pluto does.
        """
        if self.id_type in _ADDR_TYPES:
            return ipaddress.ip_network(_address(self.data))
        if self.id_type not in _SUBNET_TYPES:
            raise TypeError(f"{self.id_type} is not an address or subnet ID")
        half = len(self.data) // 2
        prefix = _mask_prefix(self.data[half:])
        if prefix is None:
            raise TypeError("non-contiguous netmask")
        return ipaddress.ip_network((_address(self.data[:half]), prefix), strict=False)

    @property
    def range(self) -> tuple[IPAddress, IPAddress]:
        """First and last address of a *_ADDR_RANGE ID."""
        if self.id_type not in _RANGE_TYPES:
            raise TypeError(f"{self.id_type} is not a range ID")
        half = len(self.data) // 2
        return _address(self.data[:half]), _address(self.data[half:])

    @property
    def text(self) -> str:
        """The name of an FQDN / USER_FQDN ID (undecodable bytes escaped)."""
        return self.data.decode("utf-8", "backslashreplace")

    def __str__(self) -> str:
        """Pluto-style rendering: 192.0.2.1, @east, 198.51.100.0/25, a-b."""
        try:
            if self.id_type in _ADDR_TYPES:
                return str(self.address)
            if self.id_type in _SUBNET_TYPES:
                return str(self.network)
            if self.id_type in _RANGE_TYPES:
                first, last = self.range
                return f"{first}-{last}"
        except (TypeError, ValueError):
            pass
        if self.id_type == IdType.ID_FQDN:
            return "@" + self.text
        if self.id_type == IdType.ID_USER_FQDN:
            return self.text
        return f"{self.id_type}:{self.data.hex()}"

    # -- wire ----------------------------------------------------------------

    def encode(self) -> bytes:
        return (
            bytes([int(self.id_type), int(self.protocol)])
            + int(self.port).to_bytes(2, "big")
            + bytes(self.data)
        )

    @classmethod
    def decode(cls, body: bytes) -> IDPayload:
        _need(body, 4, "ID")
        id_type = coerce(IdType, body[0])
        data = bytes(body[4:])
        _check_id_data(id_type, data, "ID payload")
        return cls(id_type, data, body[1], _u16(body, 2))


def _check_id_data(id_type: int, data: bytes, where: str) -> None:
    size = _ID_SIZES.get(id_type)  # type: ignore[call-overload]
    # Fixed-size address data first: the checks below slice by halves.
    if size is not None and len(data) != size:
        raise MalformedPacket(
            f"{id_type} data is {len(data)} bytes, expected {size} in {where}",
            NotifyType.INVALID_ID_INFORMATION,
        )
    if id_type in _SUBNET_TYPES:
        mask = data[len(data) // 2 :]
        if _mask_prefix(mask) is None:
            raise MalformedPacket(
                f"{id_type} netmask {_address(mask)} is not contiguous in {where}",
                NotifyType.INVALID_ID_INFORMATION,
            )
    if id_type in _RANGE_TYPES:
        half = len(data) // 2
        if data[:half] > data[half:]:
            raise MalformedPacket(
                f"{id_type} {_address(data[:half])}-{_address(data[half:])} "
                f"ends before it starts in {where}",
                NotifyType.INVALID_ID_INFORMATION,
            )
    if id_type in (IdType.ID_FQDN, IdType.ID_USER_FQDN) and not data:
        raise MalformedPacket(f"{id_type} is empty in {where}", NotifyType.INVALID_ID_INFORMATION)


# ---------------------------------------------------------------------------
# Certificates (RFC 2408 3.9, 3.10)


@dataclass(frozen=True)
class CertPayload(Payload):
    """CERT: one certificate (or raw key, CRL ...) in ``encoding``."""

    payload_type: ClassVar[int] = PayloadType.CERT
    encoding: int
    data: bytes
    raw: bytes | None = _raw_field()

    def encode(self) -> bytes:
        return bytes([int(self.encoding)]) + bytes(self.data)

    @classmethod
    def decode(cls, body: bytes) -> CertPayload:
        _need(body, 1, "CERT")
        return cls(coerce(CertEncoding, body[0]), bytes(body[1:]))


@dataclass(frozen=True)
class CRPayload(Payload):
    """CR: asks for a certificate of ``cert_type``, optionally from an authority (DN)."""

    payload_type: ClassVar[int] = PayloadType.CR
    cert_type: int
    authority: bytes = b""
    raw: bytes | None = _raw_field()

    def encode(self) -> bytes:
        return bytes([int(self.cert_type)]) + bytes(self.authority)

    @classmethod
    def decode(cls, body: bytes) -> CRPayload:
        _need(body, 1, "CR")
        return cls(coerce(CertEncoding, body[0]), bytes(body[1:]))


# ---------------------------------------------------------------------------
# Notification and Delete (RFC 2408 3.14, 3.15)


@dataclass(frozen=True)
class NotificationPayload(Payload):
    """Notification: ``type`` about the SA named by ``protocol`` and ``spi``.

    Phase 1 notifications about the ISAKMP SA carry the two cookies as a
    16-byte SPI (strongSwan's INITIAL_CONTACT does); DPD carries them too and
    the sequence number as ``data``.
    """

    payload_type: ClassVar[int] = PayloadType.NOTIFICATION
    type: int
    protocol: int = ProtocolId.ISAKMP
    spi: bytes = b""
    data: bytes = b""
    doi: int = DOI.IPSEC
    raw: bytes | None = _raw_field()

    @property
    def is_error(self) -> bool:
        return int(self.type) < 16384

    def encode(self) -> bytes:
        if len(self.spi) > 0xFF:
            raise ValueError("notification SPI longer than 255 bytes")
        return (
            int(self.doi).to_bytes(4, "big")
            + bytes([int(self.protocol), len(self.spi)])
            + int(self.type).to_bytes(2, "big")
            + bytes(self.spi)
            + bytes(self.data)
        )

    @classmethod
    def decode(cls, body: bytes) -> NotificationPayload:
        _need(body, 8, "Notification")
        spi_size = body[5]
        if 8 + spi_size > len(body):
            raise MalformedPacket(
                f"SPI size {spi_size} exceeds remaining {len(body) - 8} bytes "
                "in Notification payload"
            )
        return cls(
            type=coerce(NotifyType, _u16(body, 6)),
            protocol=coerce(ProtocolId, body[4]),
            spi=bytes(body[8 : 8 + spi_size]),
            data=bytes(body[8 + spi_size :]),
            doi=coerce(DOI, _u32(body, 0)),
        )


@dataclass(frozen=True)
class DeletePayload(Payload):
    """Delete: the SAs of ``protocol`` named by ``spis`` are gone.

    ``spi_size`` is explicit because a Delete may list no SPI at all; when
    left as None it is taken from the SPIs (16 for ISAKMP cookie pairs).
    """

    payload_type: ClassVar[int] = PayloadType.DELETE
    protocol: int
    spis: tuple[bytes, ...]
    spi_size: int | None = None
    doi: int = DOI.IPSEC
    raw: bytes | None = _raw_field()

    def __post_init__(self) -> None:
        spis = tuple(bytes(s) for s in self.spis)
        object.__setattr__(self, "spis", spis)
        if self.spi_size is None:
            if spis:
                size = len(spis[0])
            else:
                size = 16 if self.protocol == ProtocolId.ISAKMP else 4
            object.__setattr__(self, "spi_size", size)
        if any(len(s) != self.spi_size for s in spis):
            raise ValueError(f"every SPI in a Delete must be {self.spi_size} bytes")

    def encode(self) -> bytes:
        assert self.spi_size is not None
        return (
            int(self.doi).to_bytes(4, "big")
            + bytes([int(self.protocol), self.spi_size])
            + len(self.spis).to_bytes(2, "big")
            + b"".join(self.spis)
        )

    @classmethod
    def decode(cls, body: bytes) -> DeletePayload:
        _need(body, 8, "Delete")
        spi_size = body[5]
        count = _u16(body, 6)
        rest = body[8:]
        if spi_size * count != len(rest):
            raise MalformedPacket(
                f"{count} SPIs of {spi_size} bytes need {spi_size * count} bytes, "
                f"Delete payload has {len(rest)}"
            )
        spis = tuple(bytes(rest[i * spi_size : (i + 1) * spi_size]) for i in range(count))
        return cls(coerce(ProtocolId, body[4]), spis, spi_size, coerce(DOI, _u32(body, 0)))


# ---------------------------------------------------------------------------
# NAT-OA (RFC 3947 section 5.2)


@dataclass(frozen=True)
class NATOAPayload(Payload):
    """NAT-OA: the original address of a transport-mode peer behind NAT."""

    address: IPAddress
    draft: bool = False
    raw: bytes | None = _raw_field()

    @property
    def payload_type(self) -> int:  # type: ignore[override]
        return PayloadType.NAT_OA_DRAFT if self.draft else PayloadType.NAT_OA

    def encode(self) -> bytes:
        id_type = IdType.ID_IPV4_ADDR if self.address.version == 4 else IdType.ID_IPV6_ADDR
        return bytes([id_type, 0, 0, 0]) + self.address.packed

    @classmethod
    def decode(cls, body: bytes, draft: bool = False) -> NATOAPayload:
        _need(body, 4, "NAT-OA")
        id_type = coerce(IdType, body[0])
        if id_type not in _ADDR_TYPES:
            raise MalformedPacket(
                f"NAT-OA ID type {id_type} is neither ID_IPV4_ADDR nor ID_IPV6_ADDR"
            )
        _check_id_data(id_type, bytes(body[4:]), "NAT-OA payload")
        return cls(_address(body[4:]), draft)


# ---------------------------------------------------------------------------
# IKE fragment (the Cisco/Microsoft extension strongSwan and Libreswan speak)

#: flag of the fragment that ends the message
FRAGMENT_LAST = 0x01


@dataclass(frozen=True)
class FragmentPayload(Payload):
    """One piece of an IKEv1 message too big for the path (payload type 132).

    The body is fragment ID (2 bytes), fragment number (1 byte, from 1),
    flags (1 byte, ``FRAGMENT_LAST``) and the piece itself: bytes of the whole
    original message, header and encrypted body included.  Flag bits other
    than LAST have no known meaning and are ignored, like reserved fields.
    """

    fragment_id: int
    number: int
    last: bool
    data: bytes
    raw: bytes | None = _raw_field()

    payload_type: ClassVar[int] = PayloadType.FRAGMENT

    def encode(self) -> bytes:
        if not 0 <= self.fragment_id <= 0xFFFF or not 1 <= self.number <= 0xFF:
            raise ValueError("fragment ID is 16 bits, fragment number 1..255")
        flags = FRAGMENT_LAST if self.last else 0
        return (
            self.fragment_id.to_bytes(2, "big")
            + bytes([self.number, flags])
            + bytes(self.data)
        )

    @classmethod
    def decode(cls, body: bytes) -> FragmentPayload:
        _need(body, 4, "IKE fragment")
        number = body[2]
        if number == 0:
            raise MalformedPacket("IKE fragment number 0 (numbers start at 1)")
        return cls(_u16(body, 0), number, bool(body[3] & FRAGMENT_LAST), bytes(body[4:]))


# ---------------------------------------------------------------------------
# Attribute (Mode Config / XAUTH, draft-dukes-ike-mode-cfg section 3.2)


@dataclass(frozen=True)
class AttributePayload(Payload):
    """ATTRIBUTE: a Transaction exchange message (REQUEST, REPLY, SET or ACK) and its
    attributes; ``identifier`` pairs a REPLY with its REQUEST, an ACK with its SET."""

    payload_type: ClassVar[int] = PayloadType.ATTRIBUTE
    cfg_type: int
    identifier: int
    attributes: tuple[Attribute, ...] = ()
    raw: bytes | None = _raw_field()

    def encode(self) -> bytes:
        return (
            bytes([int(self.cfg_type), 0])
            + int(self.identifier).to_bytes(2, "big")
            + encode_attributes(self.attributes)
        )

    @classmethod
    def decode(cls, body: bytes) -> AttributePayload:
        _need(body, 4, "Attribute")
        attributes = decode_attributes(bytes(body[4:]), "Attribute payload")
        return cls(coerce(CfgType, body[0]), _u16(body, 2), tuple(attributes))

    def get(self, attr_type: int) -> Attribute | None:
        """The first attribute of this type, or None."""
        return next((a for a in self.attributes if int(a.type) == int(attr_type)), None)


# ---------------------------------------------------------------------------
# Anything else


@dataclass(frozen=True)
class UnknownPayload(Payload):
    """A payload this codec does not parse (Attribute, new types).

    The body is kept so the engine can log "ignoring ... payload" and move on.
    """

    type: int
    body: bytes
    raw: bytes | None = _raw_field()

    @property
    def payload_type(self) -> int:  # type: ignore[override]
        return self.type

    def encode(self) -> bytes:
        return bytes(self.body)


PayloadDecoder = Callable[[bytes], Payload]

#: Decoder per top-level payload type; anything missing is UnknownPayload.
PAYLOAD_DECODERS: dict[int, PayloadDecoder] = {
    PayloadType.SA: SAPayload.decode,
    PayloadType.KE: KEPayload.decode,
    PayloadType.ID: IDPayload.decode,
    PayloadType.CERT: CertPayload.decode,
    PayloadType.CR: CRPayload.decode,
    PayloadType.HASH: HashPayload.decode,
    PayloadType.SIG: SigPayload.decode,
    PayloadType.NONCE: NoncePayload.decode,
    PayloadType.NOTIFICATION: NotificationPayload.decode,
    PayloadType.DELETE: DeletePayload.decode,
    PayloadType.VENDOR_ID: VendorIDPayload.decode,
    PayloadType.NAT_D: NATDPayload.decode,
    PayloadType.NAT_OA: NATOAPayload.decode,
    PayloadType.NAT_D_DRAFT: lambda body: NATDPayload.decode(body, draft=True),
    PayloadType.NAT_OA_DRAFT: lambda body: NATOAPayload.decode(body, draft=True),
    PayloadType.FRAGMENT: FragmentPayload.decode,
    PayloadType.ATTRIBUTE: AttributePayload.decode,
}


def decode_payload(payload_type: int, body: bytes) -> Payload:
    """Decode one top-level payload body of ``payload_type``.

    Proposal and Transform may only appear inside an SA payload.
    """
    if payload_type in (PayloadType.PROPOSAL, PayloadType.TRANSFORM):
        raise MalformedPacket(
            f"{payload_name(payload_type)} payload outside an SA payload",
            NotifyType.INVALID_PAYLOAD_TYPE,
        )
    decoder = PAYLOAD_DECODERS.get(int(payload_type))
    if decoder is None:
        payload: Payload = UnknownPayload(int(payload_type), bytes(body))
    else:
        payload = decoder(bytes(body))
    _set_raw(payload, body)
    return payload


def encode_with_header(payload: Payload, next_payload: int) -> bytes:
    """One payload with its generic header (for chains and hash inputs)."""
    body = payload.encode()
    return _generic_header(next_payload, len(body), payload.name) + body


__all__ = [
    "Attribute",
    "CRPayload",
    "CertPayload",
    "DeletePayload",
    "FRAGMENT_LAST",
    "FragmentPayload",
    "HashPayload",
    "IDPayload",
    "KEPayload",
    "NATDPayload",
    "NATOAPayload",
    "NoncePayload",
    "NotificationPayload",
    "PAYLOAD_DECODERS",
    "PAYLOAD_NAMES",
    "Payload",
    "Proposal",
    "SAPayload",
    "SigPayload",
    "Transform",
    "UnknownPayload",
    "VendorIDPayload",
    "decode_payload",
    "encode_with_header",
    "payload_name",
]

