"""FreeS/WAN's text forms of binary data (``ttodata(3)``).

Keys and secrets are written with a prefix that names their encoding:

=========  ==================================================================
``0x``     hexadecimal; ``_`` may separate digits; an even number of digits
``0s``     base64 (RFC 2045); whitespace inside is ignored
``0t``     the rest of the text, taken literally (UTF-8)
=========  ==================================================================

The prefix letter is case-insensitive, as in ``ttodata``.  Error messages
never repeat the input: these strings are usually secrets.
"""

from __future__ import annotations

import base64
import binascii
import re

__all__ = ["EncodingError", "decode_data", "encode_base64", "encode_hex"]

_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
_BASE64_BODY = re.compile(r"[A-Za-z0-9+/]*={0,2}")


class EncodingError(ValueError):
    """Text that is not valid ``0x``/``0s``/``0t`` data; the message says why."""


def decode_data(text: str) -> bytes:
    """Decode ``0x``/``0s``/``0t`` text to bytes, as FreeS/WAN's ttodata does."""
    if len(text) < 2 or text[0] != "0" or text[1] not in "xXsStT":
        raise EncodingError("expected 0x (hex), 0s (base64) or 0t (text) data")
    kind, body = text[1].lower(), text[2:]
    if kind == "t":
        if not body:
            raise EncodingError("no text after the 0t prefix")
        return body.encode("utf-8", errors="surrogatepass")
    if kind == "x":
        return _decode_hex(body)
    return _decode_base64(body)


def _decode_hex(body: str) -> bytes:
    digits = body.replace("_", "")
    if not digits:
        raise EncodingError("no hex digits after the 0x prefix")
    for position, char in enumerate(body, start=3):
        if char != "_" and char not in _HEX_DIGITS:
            raise EncodingError(f"invalid hex digit at character {position}")
    if len(digits) % 2:
        raise EncodingError(f"odd number of hex digits ({len(digits)}) after 0x")
    return bytes.fromhex(digits)


def _decode_base64(body: str) -> bytes:
    compact = "".join(body.split())
    if not compact:
        raise EncodingError("no base64 digits after the 0s prefix")
    if not _BASE64_BODY.fullmatch(compact):
        raise EncodingError("invalid base64 character or misplaced '=' after 0s")
    if len(compact) % 4:
        raise EncodingError(
            f"base64 length {len(compact)} after 0s is not a multiple of 4"
        )
    try:
        return base64.b64decode(compact, validate=True)
    except binascii.Error:
        raise EncodingError("invalid base64 padding after 0s") from None


def encode_base64(data: bytes) -> str:
    """``0s`` + base64, the form pluto prints RSA public keys in."""
    return "0s" + base64.b64encode(data).decode("ascii")


def encode_hex(data: bytes) -> str:
    """``0x`` + lower-case hex, the form of the fields of an ``RSA {}`` block."""
    return "0x" + data.hex()
