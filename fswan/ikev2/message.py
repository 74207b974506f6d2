"""IKEv2 messages: the 28-byte header and the payload chain (RFC 7296 3.1, 3.2).

Pure: bytes in, objects out, and back.  Decryption is not done here: an SK
(or SKF) payload decodes to its opaque body and the type of the first
payload inside; ``crypto.py`` opens it and hands the plaintext to
:func:`decode_payloads` with that type.

Rules of this module:

* the header's length must equal the datagram's (a shorter or longer one
  is not the message the peer's ICV covers);
* every generic header's length is at least 4 and fits what is left, and
  the chain ends exactly at the end of the message (or, inside SK, where the
  padding starts: the caller strips padding first);
* SK/SKF ends the chain: it must be the last payload;
* the Critical bit: an unknown payload with C set is an
  :class:`UnsupportedCriticalPayload`, without it an :class:`UnknownPayload`
  that the engine skips; for known types C is ignored (RFC 7296 2.5);
* a major version other than 2 is a :class:`MalformedMessage` whose notify is
  INVALID_MAJOR_VERSION; the minor version is ignored.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field, replace
from typing import Sequence, TypeVar

from .constants import (
    GENERIC_HEADER_SIZE,
    HEADER_SIZE,
    IKEV2_MAJOR_VERSION,
    IKEV2_MINOR_VERSION,
    SPI_SIZE,
    ExchangeType,
    Flags,
    NotifyType,
    PayloadType,
    coerce,
    name_of,
)
from .errors import MalformedMessage, UnsupportedCriticalPayload
from .payloads import (
    PAYLOAD_CLASSES,
    Encrypted,
    EncryptedFragment,
    Notify,
    Payload,
    UnknownPayload,
)

P = TypeVar("P", bound=Payload)
_CRITICAL = 0x80
_HEADER = struct.Struct("!8s8sBBBBII")


@dataclass(frozen=True)
class Header:
    """The IKE header.

    ``next_payload`` and ``length`` describe the body: :meth:`Message.encode`
    fills them in, so they matter only on decoded headers.
    """

    spi_i: bytes
    spi_r: bytes = bytes(SPI_SIZE)  #: zero in the first IKE_SA_INIT request
    exchange: int = ExchangeType.IKE_SA_INIT
    flags: int = Flags.NONE
    message_id: int = 0
    next_payload: int = PayloadType.NONE
    length: int = HEADER_SIZE
    major: int = IKEV2_MAJOR_VERSION
    minor: int = IKEV2_MINOR_VERSION

    def __post_init__(self) -> None:
        if len(self.spi_i) != SPI_SIZE or len(self.spi_r) != SPI_SIZE:
            raise ValueError("IKE SPIs are 8 bytes each")

    @property
    def is_initiator(self) -> bool:
        """Sent by the IKE SA's original initiator (the I flag)."""
        return bool(self.flags & Flags.INITIATOR)

    @property
    def is_response(self) -> bool:
        return bool(self.flags & Flags.RESPONSE)

    @property
    def spis(self) -> bytes:
        """SPIi | SPIr, as prf+ and NAT detection use them."""
        return self.spi_i + self.spi_r

    def encode(self) -> bytes:
        return _HEADER.pack(
            self.spi_i,
            self.spi_r,
            self.next_payload,
            (self.major << 4) | (self.minor & 0x0F),
            self.exchange,
            self.flags,
            self.message_id,
            self.length,
        )

    @classmethod
    def decode(cls, data: bytes) -> Header:
        if len(data) < HEADER_SIZE:
            raise MalformedMessage(f"{len(data)} bytes, shorter than the 28-byte header", "IKE header")
        spi_i, spi_r, next_payload, version, exchange, flags, message_id, length = _HEADER.unpack_from(data)
        major, minor = version >> 4, version & 0x0F
        if major != IKEV2_MAJOR_VERSION:
            raise MalformedMessage(
                f"major version {major}", "IKE header", notify=NotifyType.INVALID_MAJOR_VERSION
            )
        return cls(
            spi_i, spi_r, coerce(ExchangeType, exchange), flags, message_id,
            next_payload, length, major, minor,
        )


def is_ikev2(data: bytes) -> bool:
    """Whether a datagram (marker stripped) claims IKE major version 2."""
    return len(data) >= HEADER_SIZE and data[17] >> 4 == IKEV2_MAJOR_VERSION


@dataclass(frozen=True)
class Message:
    """A header and its payloads in order (for a protected message, the
    cleartext payloads and a final SK/SKF)."""

    header: Header
    payloads: tuple[Payload, ...] = field(default_factory=tuple)

    def all(self, kind: type[P]) -> list[P]:
        return [p for p in self.payloads if isinstance(p, kind)]

    def get(self, kind: type[P]) -> P | None:
        """The first payload of that class, if any."""
        for payload in self.payloads:
            if isinstance(payload, kind):
                return payload
        return None

    def notify(self, notify_type: int) -> Notify | None:
        for payload in self.payloads:
            if isinstance(payload, Notify) and payload.notify_type == notify_type:
                return payload
        return None

    @property
    def encrypted(self) -> Encrypted | EncryptedFragment | None:
        last = self.payloads[-1] if self.payloads else None
        return last if isinstance(last, (Encrypted, EncryptedFragment)) else None

    def encode(self) -> bytes:
        body = encode_payloads(self.payloads)
        first = first_type(self.payloads)
        header = replace(self.header, next_payload=first, length=HEADER_SIZE + len(body))
        return header.encode() + body

    def summary(self) -> str:
        """strongSwan-like: ``IKE_SA_INIT request 0 [ SA KE No N(COOKIE) ]``."""
        kind = "response" if self.header.is_response else "request"
        names = " ".join(_short_name(p) for p in self.payloads)
        return f"{name_of(ExchangeType, self.header.exchange)} {kind} {self.header.message_id} [ {names} ]"


def _short_name(payload: Payload) -> str:
    if isinstance(payload, Notify):
        return f"N({name_of(NotifyType, payload.notify_type)})"
    return name_of(PayloadType, payload.payload_type)


def first_type(payloads: Sequence[Payload]) -> int:
    """What a header (or SK) names as the first of these payloads."""
    return payloads[0].payload_type if payloads else PayloadType.NONE


def encode_generic(payload: Payload, next_type: int) -> bytes:
    """One payload with its generic header."""
    body = payload.encode_body()
    length = GENERIC_HEADER_SIZE + len(body)
    if length > 0xFFFF:
        raise ValueError(f"payload of {length} bytes does not fit its length field")
    critical = _CRITICAL if isinstance(payload, UnknownPayload) and payload.critical else 0
    return struct.pack("!BBH", payload.chain_next(next_type), critical, length) + body


def encode_payloads(payloads: Sequence[Payload]) -> bytes:
    """The chain, each generic header naming the next payload's type."""
    parts = []
    for index, payload in enumerate(payloads):
        following = payloads[index + 1].payload_type if index + 1 < len(payloads) else PayloadType.NONE
        if isinstance(payload, (Encrypted, EncryptedFragment)) and index + 1 < len(payloads):
            raise ValueError("SK/SKF must be the last payload")
        parts.append(encode_generic(payload, following))
    return b"".join(parts)


def decode_payloads(first: int, data: bytes, where: str = "message", inside_sk: bool = False) -> tuple[Payload, ...]:
    """The payload chain starting with type ``first``, filling ``data`` exactly."""
    payloads: list[Payload] = []
    kind, offset = first, 0
    while kind != PayloadType.NONE:
        here = f"{where}, payload {len(payloads) + 1} ({name_of(PayloadType, kind)}) at offset {offset}"
        if len(data) - offset < GENERIC_HEADER_SIZE:
            raise MalformedMessage(f"{len(data) - offset} bytes left, no room for a payload header", here)
        next_type, flags, length = struct.unpack_from("!BBH", data, offset)
        if length < GENERIC_HEADER_SIZE or length > len(data) - offset:
            raise MalformedMessage(f"payload length {length} with {len(data) - offset} bytes left", here)
        body = data[offset + GENERIC_HEADER_SIZE : offset + length]
        offset += length
        if kind in (PayloadType.SK, PayloadType.SKF):
            if inside_sk:
                raise MalformedMessage("an encrypted payload inside an encrypted payload", here)
            if offset != len(data):
                raise MalformedMessage(f"{len(data) - offset} bytes after the encrypted payload", here)
            if kind == PayloadType.SK:
                payloads.append(Encrypted(next_type, body))
            else:
                payloads.append(EncryptedFragment.decode_with_next(next_type, body, here))
            return tuple(payloads)
        cls = PAYLOAD_CLASSES.get(kind)
        if cls is None:
            if flags & _CRITICAL:
                raise UnsupportedCriticalPayload(kind, here)
            payloads.append(UnknownPayload(kind, body))
        else:
            payloads.append(cls.decode_body(body, here))
        kind = next_type
    if offset != len(data):
        raise MalformedMessage(f"{len(data) - offset} bytes after the last payload", where)
    return tuple(payloads)


def decode_message(data: bytes) -> Message:
    """A whole datagram (any NAT-T non-ESP marker already stripped)."""
    header = Header.decode(data)
    if header.length != len(data):
        raise MalformedMessage(f"header length {header.length}, datagram {len(data)} bytes", "IKE header")
    where = f"{name_of(ExchangeType, header.exchange)} #{header.message_id}"
    payloads = decode_payloads(header.next_payload, data[HEADER_SIZE:], where)
    return Message(header, payloads)
