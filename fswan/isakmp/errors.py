"""The one exception the ISAKMP codec raises.

Datagrams come from anyone on the network, so a decoder must never let an
``IndexError`` or ``struct.error`` escape into the engine: every problem in the
bytes becomes a :class:`MalformedPacket` whose message says exactly what was
wrong ("payload length 300 exceeds remaining 120 bytes in SA payload"), ready
for a pluto-style log line.  ``notify`` is the RFC 2408 notify type a peer
would expect in reply (the engine decides whether to send it).
"""

from __future__ import annotations

# Plain numbers (not the NotifyType enum) so this module has no imports and
# can be used by every other codec module without cycles; the values are the
# RFC 2408 section 3.14.1 error types.
PAYLOAD_MALFORMED = 16


class MalformedPacket(Exception):
    """A datagram or decrypted body that does not parse as ISAKMP.

    ``reason`` names the problem precisely; ``notify`` is the notify message
    type (an int, usually ``PAYLOAD_MALFORMED`` = 16) that describes it.
    """

    def __init__(self, reason: str, notify: int = PAYLOAD_MALFORMED) -> None:
        super().__init__(reason)
        self.reason = reason
        self.notify = notify

    def __str__(self) -> str:
        return self.reason

    def __repr__(self) -> str:
        return f"MalformedPacket({self.reason!r}, notify={self.notify})"
