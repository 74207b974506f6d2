"""ISAKMP data attributes (RFC 2408 section 3.3).

An attribute is either TV (AF bit set: a 2-byte type and a 2-byte value) or
TLV (AF bit clear: type, 2-byte length, value bytes).  The form is part of
what a peer hashed: the initiator's SA payload goes byte for byte into
HASH_I, so a decoded attribute keeps its form.  An ``int`` value means TV
(or, above 65535, a TLV the encoder builds); a ``bytes`` value means TLV as
received.  :attr:`Attribute.integer` reads either as a number.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from .constants import ATTRIBUTE_AF
from .errors import MalformedPacket


@dataclass(frozen=True)
class Attribute:
    """One data attribute.

    ``type`` is the attribute class without the AF bit (an ``OakleyAttr`` or
    ``IPsecAttr`` member after decoding inside a transform, else an int).
    ``value`` is an int for TV, bytes for TLV.  An int above 65535 is sent as
    a TLV of 4 bytes (or more, in 4-byte steps), as pluto does for lifetimes.
    """

    type: int
    value: int | bytes

    def __post_init__(self) -> None:
        if not 0 <= int(self.type) < ATTRIBUTE_AF:
            raise ValueError(f"attribute type {self.type} does not fit 15 bits")
        if isinstance(self.value, int) and self.value < 0:
            raise ValueError("attribute value must not be negative")
        if isinstance(self.value, (bytes, bytearray)) and len(self.value) > 0xFFFF:
            raise ValueError("TLV attribute value longer than 65535 bytes")

    @property
    def is_tv(self) -> bool:
        """True when this attribute goes on the wire in TV (basic) form."""
        return isinstance(self.value, int) and self.value <= 0xFFFF

    @property
    def integer(self) -> int:
        """The value as a number (big-endian for TLV bytes; 0 when empty)."""
        if isinstance(self.value, int):
            return int(self.value)
        return int.from_bytes(self.value, "big")

    def encode(self) -> bytes:
        if self.is_tv:
            return (int(self.type) | ATTRIBUTE_AF).to_bytes(2, "big") + int(
                self.value
            ).to_bytes(2, "big")
        if isinstance(self.value, int):
            size = max(4, -(-self.value.bit_length() // 32) * 4)
            data = self.value.to_bytes(size, "big")
        else:
            data = bytes(self.value)
        return int(self.type).to_bytes(2, "big") + len(data).to_bytes(2, "big") + data


def encode_attributes(attributes: Iterable[Attribute]) -> bytes:
    return b"".join(a.encode() for a in attributes)


def decode_attributes(data: bytes, where: str = "transform") -> list[Attribute]:
    """Decode a run of attributes that must fill ``data`` exactly.

    ``where`` names the container for error messages.
    """
    attributes: list[Attribute] = []
    offset = 0
    end = len(data)
    while offset < end:
        if end - offset < 4:
            raise MalformedPacket(
                f"attribute header needs 4 bytes, {end - offset} left in {where}"
            )
        word = int.from_bytes(data[offset : offset + 2], "big")
        second = int.from_bytes(data[offset + 2 : offset + 4], "big")
        offset += 4
        if word & ATTRIBUTE_AF:
            attributes.append(Attribute(word & ~ATTRIBUTE_AF, second))
            continue
        if second > end - offset:
            raise MalformedPacket(
                f"attribute {word} length {second} exceeds remaining "
                f"{end - offset} bytes in {where}"
            )
        attributes.append(Attribute(word, bytes(data[offset : offset + second])))
        offset += second
    return attributes
