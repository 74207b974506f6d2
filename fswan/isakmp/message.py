"""ISAKMP messages: the 28-byte header and the payload chain (RFC 2408 3.1-3.2),
plus the RFC 3948 framing of IKE on the NAT-T port.

Pure: bytes in, objects out, and back.  Encryption is not done here: a
message with the E flag decodes to its header and the still-encrypted body;
the engine decrypts and calls :func:`decode_payloads` with the header's
``next_payload``.  Decrypted bodies end in cipher padding (pluto and
strongSwan pad with zeros, RFC 2409 suggests a pad-length byte), so bytes
after the last payload are tolerated there -- and only there: a cleartext
message must end with its last payload.

Length rules: the header length must equal the datagram length (pluto drops
the message otherwise); every generic payload header must be at least 4 and
fit what is left.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Sequence, TypeVar

from .constants import (
    COOKIE_SIZE,
    GENERIC_HEADER_SIZE,
    HEADER_SIZE,
    ISAKMP_MAJOR_VERSION,
    ISAKMP_MINOR_VERSION,
    ExchangeType,
    Flags,
    NotifyType,
    PayloadType,
    coerce,
)
from .errors import MalformedPacket
from .payloads import Payload, decode_payload, encode_with_header, payload_name

P = TypeVar("P", bound=Payload)

# ---------------------------------------------------------------------------
# Header


@dataclass(frozen=True)
class Header:
    """The ISAKMP header.

    ``next_payload`` and ``length`` describe the body; :meth:`Message.encode`
    fills them in, so they only matter on decoded headers (and, for an
    encrypted message, ``next_payload`` names the first payload inside).
    """

    icookie: bytes  #: initiator cookie, 8 bytes
    rcookie: bytes = bytes(COOKIE_SIZE)  #: responder cookie, zero in MM1/AM1
    exchange: int = ExchangeType.MAIN_MODE
    flags: Flags = Flags.NONE
    message_id: int = 0
    next_payload: int = PayloadType.NONE
    length: int = HEADER_SIZE
    major: int = ISAKMP_MAJOR_VERSION
    minor: int = ISAKMP_MINOR_VERSION

    def __post_init__(self) -> None:
        if len(self.icookie) != COOKIE_SIZE or len(self.rcookie) != COOKIE_SIZE:
            raise ValueError("cookies are 8 bytes each")

    @property
    def encrypted(self) -> bool:
        return bool(self.flags & Flags.ENCRYPTION)

    @property
    def cookies(self) -> bytes:
        """CKY-I | CKY-R, the ISAKMP SA's 16-byte SPI."""
        return bytes(self.icookie) + bytes(self.rcookie)

    def encode(self) -> bytes:
        return (
            bytes(self.icookie)
            + bytes(self.rcookie)
            + bytes(
                [
                    int(self.next_payload),
                    (self.major << 4) | self.minor,
                    int(self.exchange),
                    int(self.flags),
                ]
            )
            + int(self.message_id).to_bytes(4, "big")
            + int(self.length).to_bytes(4, "big")
        )


def decode_header(data: bytes, *, check_length: bool = True) -> Header:
    """Decode the ISAKMP header at the start of a datagram.

    With ``check_length`` (the default) the header's length must equal
    ``len(data)``; pass False to read just the header of a longer buffer.
    """
    if len(data) < HEADER_SIZE:
        raise MalformedPacket(
            f"datagram of {len(data)} bytes is shorter than the "
            f"{HEADER_SIZE}-byte ISAKMP header"
        )
    version = data[17]
    major, minor = version >> 4, version & 0x0F
    if major != ISAKMP_MAJOR_VERSION:
        raise MalformedPacket(
            f"ISAKMP version {major}.{minor} not supported",
            NotifyType.INVALID_MAJOR_VERSION,
        )
    if minor > ISAKMP_MINOR_VERSION:
        raise MalformedPacket(
            f"ISAKMP version {major}.{minor} not supported",
            NotifyType.INVALID_MINOR_VERSION,
        )
    length = int.from_bytes(data[24:28], "big")
    if length < HEADER_SIZE:
        raise MalformedPacket(
            f"header length {length} is less than the {HEADER_SIZE}-byte header"
        )
    if check_length and length != len(data):
        raise MalformedPacket(
            f"header length {length} != datagram length {len(data)}",
            NotifyType.UNEQUAL_PAYLOAD_LENGTHS,
        )
    return Header(
        icookie=bytes(data[0:8]),
        rcookie=bytes(data[8:16]),
        next_payload=coerce(PayloadType, data[16]),
        exchange=coerce(ExchangeType, data[18]),
        flags=Flags(data[19]),
        message_id=int.from_bytes(data[20:24], "big"),
        length=length,
        major=major,
        minor=minor,
    )


# ---------------------------------------------------------------------------
# Payload chain


def encode_payloads(payloads: Sequence[Payload]) -> bytes:
    """The chain of payloads with their generic headers, last "next" = 0.

    Also the input for hashes over "the rest of the message" (Quick Mode
    HASH(1) covers ``encode_payloads(payloads[1:])``).
    """
    parts = []
    for index, payload in enumerate(payloads):
        if index + 1 < len(payloads):
            next_type = payloads[index + 1].payload_type
        else:
            next_type = PayloadType.NONE
        parts.append(encode_with_header(payload, next_type))
    return b"".join(parts)


def decode_payloads(
    first_type: int, body: bytes, *, padding_ok: bool = True
) -> list[Payload]:
    """Decode the payload chain starting with ``first_type``.

    For decrypted bodies: bytes after the payload whose "next" is 0 are
    padding and ignored unless ``padding_ok`` is False.
    """
    payloads: list[Payload] = []
    offset = 0
    end = len(body)
    current = int(first_type)
    while current != PayloadType.NONE:
        name = payload_name(current)
        remaining = end - offset
        if remaining < GENERIC_HEADER_SIZE:
            raise MalformedPacket(
                f"{name} payload header needs 4 bytes, {remaining} left in message"
            )
        next_type = body[offset]
        length = int.from_bytes(body[offset + 2 : offset + 4], "big")
        if length < GENERIC_HEADER_SIZE:
            raise MalformedPacket(
                f"payload length {length} is less than the 4-byte generic header "
                f"in {name} payload"
            )
        if length > remaining:
            raise MalformedPacket(
                f"payload length {length} exceeds remaining {remaining} bytes "
                f"in {name} payload"
            )
        payloads.append(
            decode_payload(current, body[offset + GENERIC_HEADER_SIZE : offset + length])
        )
        offset += length
        current = next_type
    if offset != end and not padding_ok:
        raise MalformedPacket(f"{end - offset} bytes after the last payload")
    return payloads


# ---------------------------------------------------------------------------
# Message


@dataclass(frozen=True)
class Message:
    """A header and its ordered payloads, or its encrypted body.

    ``encrypted_body`` is set (and ``payloads`` empty) for a received message
    with the E flag.  To send an encrypted message, build the plaintext with
    :func:`encode_payloads`, pad and encrypt it, then encode
    ``Message(header, encrypted_body=ciphertext)`` with the header's
    ``next_payload`` set to the first payload's type.
    """

    header: Header
    payloads: tuple[Payload, ...] = ()
    encrypted_body: bytes | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "payloads", tuple(self.payloads))

    @property
    def encrypted(self) -> bool:
        return self.encrypted_body is not None

    def encode(self) -> bytes:
        """The datagram: header (next payload, length filled in) and body."""
        header = self.header
        if self.encrypted_body is not None:
            if self.payloads:
                raise ValueError("a message has payloads or an encrypted body, not both")
            body = bytes(self.encrypted_body)
            next_type = header.next_payload
            flags = header.flags | Flags.ENCRYPTION
        else:
            if header.encrypted:
                raise ValueError("E flag set but no encrypted body given")
            body = encode_payloads(self.payloads)
            next_type = self.payloads[0].payload_type if self.payloads else PayloadType.NONE
            flags = header.flags
        length = HEADER_SIZE + len(body)
        return (
            Header(
                header.icookie,
                header.rcookie,
                header.exchange,
                flags,
                header.message_id,
                next_type,
                length,
                header.major,
                header.minor,
            ).encode()
            + body
        )

    def find(self, kind: type[P]) -> P | None:
        """The first payload of that class, or None."""
        for payload in self.payloads:
            if isinstance(payload, kind):
                return payload
        return None

    def find_all(self, kind: type[P]) -> list[P]:
        return [p for p in self.payloads if isinstance(p, kind)]

    @property
    def payload_types(self) -> list[int]:
        return [p.payload_type for p in self.payloads]


def decode_message(data: bytes) -> Message:
    """Decode one ISAKMP datagram (port 500, or 4500 after the marker).

    Cleartext messages are parsed fully; for an encrypted one the payloads
    stay in ``encrypted_body`` for the engine to decrypt.
    """
    data = bytes(data)
    header = decode_header(data)
    body = data[HEADER_SIZE:]
    if header.encrypted:
        if not body:
            raise MalformedPacket("encrypted message has an empty body")
        return Message(header, (), body)
    payloads = decode_payloads(header.next_payload, body, padding_ok=False)
    return Message(header, tuple(payloads))


# ---------------------------------------------------------------------------
# NAT-T framing (RFC 3948 section 2)

#: Prefix of IKE messages on the NAT-T port: a zero "SPI" no ESP packet has.
NON_ESP_MARKER = b"\0\0\0\0"
#: A NAT-keepalive is one 0xFF byte (RFC 3948 2.3).
NATT_KEEPALIVE = b"\xff"


class NattKind(enum.Enum):
    """What a datagram on the NAT-T port carries (RFC 3948 section 2)."""

    #: an IKE message after the 4-byte non-ESP marker
    IKE = "IKE"
    #: an ESP packet (ESP-in-UDP), for the data plane
    ESP = "ESP"
    #: a NAT-keepalive: nothing to answer
    KEEPALIVE = "keepalive"
    #: too short to be ESP and neither of the others
    MALFORMED = "malformed"


def classify_natt(datagram: bytes) -> NattKind:
    """The one rule that sorts a NAT-T port datagram (RFC 3948 sections 2.1-2.3).

    One 0xFF byte is a keepalive; a zero first word (the non-ESP marker) is
    IKE, however short the rest (the IKE decoder judges it); anything else is
    ESP only with at least its SPI and sequence number (8 bytes), the SPI
    then being non-zero, since a zero one is the marker.  The rest, 1 to 7
    bytes, is malformed.  Bytes, bytearrays and memoryviews alike, no copy.
    """
    if datagram == NATT_KEEPALIVE:
        return NattKind.KEEPALIVE
    if datagram[:4] == NON_ESP_MARKER:
        return NattKind.IKE
    if len(datagram) >= 8:
        return NattKind.ESP
    return NattKind.MALFORMED


def is_natt_keepalive(datagram: bytes) -> bool:
    return bytes(datagram) == NATT_KEEPALIVE


def strip_non_esp_marker(datagram: bytes) -> bytes | None:
    """The IKE message inside a NAT-T port datagram, or None for ESP.

    Check :func:`is_natt_keepalive` first: anything shorter than the 4-byte
    marker is neither IKE nor ESP and raises MalformedPacket.
    """
    datagram = bytes(datagram)
    if len(datagram) < len(NON_ESP_MARKER):
        raise MalformedPacket(
            f"datagram of {len(datagram)} bytes on the NAT-T port is neither "
            "IKE nor ESP"
        )
    if datagram[:4] != NON_ESP_MARKER:
        return None
    return datagram[4:]


def add_non_esp_marker(message: bytes) -> bytes:
    """Frame an IKE message for the NAT-T port."""
    return NON_ESP_MARKER + bytes(message)


__all__ = [
    "Header",
    "Message",
    "NATT_KEEPALIVE",
    "NON_ESP_MARKER",
    "NattKind",
    "add_non_esp_marker",
    "classify_natt",
    "decode_header",
    "decode_message",
    "decode_payloads",
    "encode_payloads",
    "is_natt_keepalive",
    "strip_non_esp_marker",
]

