"""The exceptions the IKEv2 codec raises, and nothing else.

Datagrams come from anyone, so no ``IndexError`` or ``struct.error`` may
escape a decoder: each problem is a :class:`MalformedMessage` that says what
and where, ready for a log line, with the notify type (RFC 7296 3.10.1) the
engine would answer with.  A payload the peer marked critical that we do not
know is its own subclass, since RFC 7296 2.5 wants a different answer.
Decryption failures are an :class:`IntegrityError`: they say nothing about
syntax and are answered with silence (RFC 7296 2.21.2).
"""

from __future__ import annotations

# plain ints: this module imports nothing, so every codec module can use it
INVALID_SYNTAX = 7
UNSUPPORTED_CRITICAL_PAYLOAD = 1


class Ikev2Error(Exception):
    """Base of every codec error."""


class MalformedMessage(Ikev2Error):
    """Bytes that do not parse as IKEv2.

    ``reason`` names the problem, ``where`` the place ("SA payload, proposal
    1, transform 2" or "IKE header"); ``notify`` is the notify type to
    answer with, usually INVALID_SYNTAX.
    """

    def __init__(self, reason: str, where: str = "message", notify: int = INVALID_SYNTAX) -> None:
        super().__init__(reason)
        self.reason = reason
        self.where = where
        self.notify = notify

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.reason!r}, where={self.where!r}, notify={self.notify})"


class UnsupportedCriticalPayload(MalformedMessage):
    """An unknown payload with the Critical bit set (RFC 7296 2.5).

    The engine rejects the whole message and answers with
    UNSUPPORTED_CRITICAL_PAYLOAD carrying ``payload_type`` as its data.
    """

    def __init__(self, payload_type: int, where: str = "message") -> None:
        super().__init__(
            f"unsupported critical payload type {payload_type}", where, UNSUPPORTED_CRITICAL_PAYLOAD
        )
        self.payload_type = payload_type

    @property
    def notify_data(self) -> bytes:
        """The one-octet payload type the notification carries."""
        return bytes([self.payload_type & 0xFF])


class IntegrityError(Ikev2Error):
    """An SK/SKF payload that failed its ICV, tag or padding check.

    Never the peer's syntax error: a forged or damaged message that the
    engine drops without reply.
    """
