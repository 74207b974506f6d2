"""IKEv1 fragmentation, pure: cutting our big messages, putting the peer's back together.

The extension is Cisco's, spoken by Microsoft, strongSwan and Libreswan (no
RFC; RFC 7383 is IKEv2's own, different scheme):

* Support is announced with the FRAGMENTATION vendor ID, MD5("FRAGMENTATION")
  followed by four capability bytes; 0x80000000 means "Main and Aggressive
  Mode messages".  Windows sends the bare 16 bytes; strongSwan and Libreswan
  send and accept both forms.  A responder announces it only to an initiator
  that did (strongSwan's rule).
* A fragment is an ISAKMP message whose only payload is type 132 (see
  :class:`~fswan.isakmp.payloads.FragmentPayload`).  Its header is the
  original one with the E flag cleared (racoon sets it; it is ignored on
  receipt), its data a piece of the *whole* original message, header and
  encrypted body as they are.  We only cut Main and Aggressive Mode messages,
  whose message ID is 0 anyway, so our headers are what both strongSwan
  (message ID 0, the phase-1 exchange type) and Libreswan (the original
  header) write.  The fragment ID is always 1, as everyone sends it.
* Because every implementation reuses ID 1, a fragment number already held
  with *different* bytes means a new message: the partial one is dropped and
  reassembly restarts (mixing pieces of two messages would only make a
  message that fails to decrypt).

Limits of :class:`Reassembler`, so that a stream of bogus fragments costs a
bounded amount of memory (at most ``MAX_MESSAGES`` partial messages of at
most ``MAX_MESSAGE_SIZE`` bytes, about 4 MiB): numbers 1 to
``MAX_FRAGMENTS``, ``MAX_PER_PEER`` messages per peer address (the peer's
oldest makes way), ``MAX_MESSAGES`` in all (the oldest makes way), and
``REASSEMBLY_TIMEOUT`` seconds of ``now`` (the engine's clock) to complete.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable, Hashable, Iterable, NamedTuple

from fswan.config.model import Fragmentation
from fswan.ike.outbox import Outbox
from fswan.ike.state import Phase1State, State
from fswan.ikev2.sa import IkeSa
from fswan.isakmp.constants import HEADER_SIZE, ExchangeType, Flags, KnownVendor, PayloadType
from fswan.isakmp.errors import MalformedPacket
from fswan.isakmp.message import Header, Message, decode_header, decode_payloads
from fswan.isakmp.payloads import FragmentPayload, VendorIDPayload

__all__ = [
    "DEFAULT_FRAGMENT_SIZE",
    "FRAGMENTATION_VID",
    "MAX_FRAGMENTS",
    "MAX_MESSAGE_SIZE",
    "MIN_FRAGMENT_SIZE",
    "Reassembled",
    "Reassembler",
    "announce",
    "announces_fragmentation",
    "header_of",
    "is_fragment",
    "isakmp_limit",
    "outgoing",
    "parse_fragment",
    "should_announce",
    "should_fragment",
    "split",
    "with_vendor_id",
]

#: capability bit "fragments of Main and Aggressive Mode messages" (racoon's name for it)
CAPABILITY_IKE = 0x80000000
#: the vendor ID we send: strongSwan's and Libreswan's form, with the capability bytes
FRAGMENTATION_VID = KnownVendor.FRAGMENTATION.value + CAPABILITY_IKE.to_bytes(4, "big")
#: what every implementation puts in the fragment ID field
FRAGMENT_ID = 1
#: fragment header: generic payload header (4) + ID (2) + number (1) + flags (1)
FRAGMENT_HEADER_SIZE = 8
#: Libreswan's IKEv1 receiver refuses fragment numbers above 16, so no peer it
#: works with sends more (Windows' largest certificate chains fit); 16 pieces of a
#: 1280-byte datagram carry ~19 KB, four 4096-bit certificates with room to spare
MAX_FRAGMENTS = 16
#: a reassembled message larger than this is not IKEv1 (strongSwan's max_packet is 10000)
MAX_MESSAGE_SIZE = 64 * 1024
#: partial messages one peer address may have under way (a fragmented Main Mode
#: has one at a time; retransmissions and a Quick Mode beside it make a few)
MAX_PER_PEER = 4
#: partial messages in all: the memory bound against spoofed sources
MAX_MESSAGES = 64
#: seconds a partial message may wait for its missing pieces: covers a peer's
#: first retransmissions (strongSwan 4 s and 7.2 s, pluto 10 s and 20 s)
REASSEMBLY_TIMEOUT = 30.0
#: the default size of a whole IP datagram carrying a fragment (strongSwan's
#: ``charon.fragment_size``): the IPv6 minimum MTU, below every usual path MTU
DEFAULT_FRAGMENT_SIZE = 1280
#: the smallest ``ike_fragment_size=``: IP, UDP, non-ESP marker, ISAKMP and
#: fragment headers (76 bytes) leave at least 180 bytes of message per fragment
MIN_FRAGMENT_SIZE = 256

_PHASE1 = (ExchangeType.MAIN_MODE, ExchangeType.AGGRESSIVE)


# ---------------------------------------------------------------------------
# Sending


def isakmp_limit(fragment_size: int, *, ipv6: bool, natt: bool) -> int:
    """The largest ISAKMP message in one datagram of ``fragment_size`` bytes.

    ``fragment_size`` counts the whole IP datagram, as strongSwan's does: IP
    header (20 or 40), UDP header (8) and, on the NAT-T port, the marker (4).
    """
    return fragment_size - (40 if ipv6 else 20) - 8 - (4 if natt else 0)


def split(message: bytes, size: int, fragment_id: int = FRAGMENT_ID) -> list[bytes]:
    """``message`` as wire fragments of at most ``size`` bytes each (ISAKMP, no marker).

    A message that would need more than ``MAX_FRAGMENTS`` pieces is cut in
    that many larger ones: fragments IP then splits beat a message the peer
    refuses.  The same input always gives the same fragments, so a
    retransmission resends exactly what was sent.
    """
    message = bytes(message)
    room = size - HEADER_SIZE - FRAGMENT_HEADER_SIZE
    if room < 1:
        raise ValueError(f"a fragment of {size} bytes has no room for data")
    header = decode_header(message)
    room = max(room, -(-len(message) // MAX_FRAGMENTS))
    pieces = [message[i : i + room] for i in range(0, len(message), room)]
    fragment_header = Header(
        header.icookie,
        header.rcookie,
        header.exchange,
        Flags(header.flags & ~Flags.ENCRYPTION),
        header.message_id,
    )
    return [
        Message(
            fragment_header,
            (FragmentPayload(fragment_id, number, number == len(pieces), piece),),
        ).encode()
        for number, piece in enumerate(pieces, 1)
    ]


def should_fragment(
    setting: Fragmentation, peer_supports: bool, message: bytes, limit: int
) -> bool:
    """Whether ``message`` goes out in fragments (``limit``: :func:`isakmp_limit`).

    Only Main and Aggressive Mode messages are cut; ``force`` cuts them
    whatever the peer said, ``yes`` when it announced support (or sent us
    fragments itself), ``accept`` and ``no`` never.
    """
    if setting not in (Fragmentation.YES, Fragmentation.FORCE) or len(message) <= limit:
        return False
    if len(message) < HEADER_SIZE or message[18] not in _PHASE1:
        return False
    return setting is Fragmentation.FORCE or peer_supports


def should_announce(setting: Fragmentation, initiator: bool, peer_announced: bool) -> bool:
    """Whether our first Main/Aggressive Mode message (or answer) carries the vendor ID."""
    if setting is Fragmentation.NO:
        return False
    return initiator or peer_announced


def with_vendor_id(message: bytes) -> bytes:
    """A clear Main/Aggressive Mode message with our FRAGMENTATION vendor ID appended.

    The exchange modules build their vendor IDs; this adds ours behind them
    at the engine's send path, byte for byte (the last payload's "next" and
    the header's length change, nothing else): no hash covers vendor IDs.
    """
    message = bytes(message)
    header = decode_header(message)
    if header.encrypted or header.exchange not in _PHASE1:
        raise ValueError("only clear Main/Aggressive Mode messages take vendor IDs")
    offset, current, last = HEADER_SIZE, header.next_payload, -1
    while current != PayloadType.NONE:
        last = offset
        current = message[offset]
        offset += int.from_bytes(message[offset + 2 : offset + 4], "big")
    vid = VendorIDPayload(FRAGMENTATION_VID).encode()
    payload = bytes([PayloadType.NONE, 0]) + (4 + len(vid)).to_bytes(2, "big") + vid
    body = bytearray(message[HEADER_SIZE:offset])
    first = int(header.next_payload)
    if last < 0:
        first = PayloadType.VENDOR_ID
    else:
        body[last - HEADER_SIZE] = PayloadType.VENDOR_ID
    length = HEADER_SIZE + len(body) + len(payload)
    new_header = bytearray(message[:HEADER_SIZE])
    new_header[16] = first
    new_header[24:28] = length.to_bytes(4, "big")
    return bytes(new_header) + bytes(body) + payload


def announce(st: State, message: bytes) -> bytes:
    """``message`` with our vendor ID when it is a first Main/Aggressive Mode
    message or its answer (the clear ones with the SA payload) and
    ``fragmentation=`` says so: the engine's send path, for every exchange."""
    if (
        isinstance(st, Phase1State)
        and len(message) > HEADER_SIZE
        and message[16] == PayloadType.SA
        and not message[19] & Flags.ENCRYPTION
        and message[18] in _PHASE1
        and should_announce(st.connection.conn.fragmentation, st.initiator, st.peer_fragmentation)
    ):
        return with_vendor_id(message)
    return message


def for_wire(where: State, message: bytes, fragment_size: int, natt: bool, out: Outbox) -> list[bytes]:
    """``message`` whole or as IKE fragments (the same every time: retransmissions), counted
    and, the first time for an ISAKMP SA, logged."""
    if isinstance(where, IkeSa):  # IKEv2 cuts its own, sealed piece by piece (RFC 7383)
        return where.v2_pieces.get(message, [message])
    if not isinstance(where, Phase1State):
        return [message]
    pieces = outgoing(where, message, fragment_size, natt)
    if len(pieces) > 1:
        out.counters["fragments_sent"] = out.counters.get("fragments_sent", 0) + len(pieces)
        if not where.sent_fragments:
            where.sent_fragments = True
            out.log_state(where, f"sending IKE fragments: a {len(message)}-byte message in "
                          f"{len(pieces)} fragments")
    return pieces


def outgoing(p1: Phase1State, message: bytes, fragment_size: int, natt: bool) -> list[bytes]:
    """What goes on the wire for ``message`` from ``p1``'s ports: itself, or its fragments."""
    limit = isakmp_limit(fragment_size, ipv6=p1.remote_addr.version == 6, natt=natt)
    peer = p1.peer_fragmentation or p1.peer_sent_fragments
    if should_fragment(p1.connection.conn.fragmentation, peer, message, limit):
        return split(message, limit)
    return [message]


# ---------------------------------------------------------------------------
# Receiving


def announces_fragmentation(payloads: Iterable[object]) -> bool:
    """Whether the peer's vendor IDs announce support (strongSwan's test).

    The bare 16 bytes (Windows) count; with capability bytes, the IKE bit must be set.
    """
    prefix = KnownVendor.FRAGMENTATION.value
    for payload in payloads:
        if not isinstance(payload, VendorIDPayload):
            continue
        data = payload.data
        if data == prefix:
            return True
        if len(data) == len(prefix) + 4 and data.startswith(prefix):
            if int.from_bytes(data[len(prefix):], "big") & CAPABILITY_IKE:
                return True
    return False


def is_fragment(message: bytes) -> bool:
    """The datagram (marker stripped) is an IKE fragment: its first payload is type 132."""
    return len(message) > 16 and message[16] == PayloadType.FRAGMENT


def parse_fragment(message: bytes) -> tuple[Header, FragmentPayload]:
    """Header and payload of a fragment; MalformedPacket unless it is exactly that.

    The E flag is ignored (racoon sets it though nothing is encrypted).
    """
    header = decode_header(message)
    payloads = decode_payloads(header.next_payload, message[HEADER_SIZE:], padding_ok=False)
    if len(payloads) != 1 or not isinstance(payloads[0], FragmentPayload):
        raise MalformedPacket(
            "IKE fragment message must hold one IKE fragment payload and nothing else"
        )
    return header, payloads[0]


def header_of(message: bytes) -> Header | None:
    """The ISAKMP header at the start of a reassembled message, or None if there is none."""
    try:
        return decode_header(message, check_length=False)
    except MalformedPacket:
        return None


class Reassembled(NamedTuple):
    """A message put back together."""

    message: bytes
    #: how many fragments it came in
    pieces: int


@dataclass
class _Partial:
    """A message whose pieces are arriving."""

    peer: Hashable
    started: float
    pieces: dict[int, bytes] = field(default_factory=dict)
    #: the number of the piece flagged LAST, once seen
    last: int | None = None
    size: int = 0


class Reassembler:
    """Partial messages by (peer address, cookies, fragment ID), bounded (module doc).

    ``count`` is told what happened to each fragment that did not simply
    join a message: ``fragments_duplicate``, ``fragments_invalid``,
    ``fragments_conflict`` (a new message reusing the ID), ``fragments_too_big``,
    ``fragments_evicted`` (partial messages pushed out by the limits),
    ``fragments_expired``.  The engine's counters take them as they are.
    """

    def __init__(
        self,
        count: Callable[[str], None],
        *,
        max_messages: int = MAX_MESSAGES,
        max_per_peer: int = MAX_PER_PEER,
        timeout: float = REASSEMBLY_TIMEOUT,
    ) -> None:
        self._count = count
        self.max_messages = max_messages
        self.max_per_peer = max_per_peer
        self.timeout = timeout
        self._partial: OrderedDict[Hashable, _Partial] = OrderedDict()
        self._per_peer: dict[Hashable, int] = {}

    def __len__(self) -> int:
        return len(self._partial)

    @property
    def held_bytes(self) -> int:
        """Bytes of pieces held (for tests and status)."""
        return sum(p.size for p in self._partial.values())

    def add(
        self, peer: Hashable, cookies: bytes, fragment: FragmentPayload, now: float
    ) -> Reassembled | None:
        """Take one fragment from ``peer``; the whole message once its last piece is in."""
        self.expire(now)
        number, data = fragment.number, bytes(fragment.data)
        if number > MAX_FRAGMENTS or not data:
            self._count("fragments_invalid")
            return None
        key = (peer, bytes(cookies), fragment.fragment_id)
        partial = self._partial.get(key)
        if partial is None:
            partial = self._start(key, peer, now)
        held = partial.pieces.get(number)
        if held == data:
            self._count("fragments_duplicate")
            return None
        if held is not None or _contradicts(partial, number, fragment.last):
            self._count("fragments_conflict")
            self._drop(key)
            partial = self._start(key, peer, now)
        if partial.size + len(data) > MAX_MESSAGE_SIZE:
            self._count("fragments_too_big")
            self._drop(key)
            return None
        partial.pieces[number] = data
        partial.size += len(data)
        if fragment.last:
            partial.last = number
        if partial.last is None or len(partial.pieces) != partial.last:
            return None
        self._drop(key)
        whole = b"".join(partial.pieces[n] for n in range(1, partial.last + 1))
        return Reassembled(whole, partial.last)

    def expire(self, now: float) -> None:
        """Drop partial messages older than the timeout (oldest are first)."""
        while self._partial:
            key, partial = next(iter(self._partial.items()))
            if now - partial.started < self.timeout:
                break
            self._count("fragments_expired")
            self._drop(key)

    def _start(self, key: Hashable, peer: Hashable, now: float) -> _Partial:
        while self._per_peer.get(peer, 0) >= max(1, self.max_per_peer):
            oldest = next(k for k, p in self._partial.items() if p.peer == peer)
            self._count("fragments_evicted")
            self._drop(oldest)
        while len(self._partial) >= max(1, self.max_messages):
            self._count("fragments_evicted")
            self._drop(next(iter(self._partial)))
        partial = _Partial(peer, now)
        self._partial[key] = partial
        self._per_peer[peer] = self._per_peer.get(peer, 0) + 1
        return partial

    def _drop(self, key: Hashable) -> None:
        partial = self._partial.pop(key)
        left = self._per_peer[partial.peer] - 1
        if left:
            self._per_peer[partial.peer] = left
        else:
            del self._per_peer[partial.peer]


def _contradicts(partial: _Partial, number: int, last: bool) -> bool:
    """A piece that cannot belong with those held: a second, different end, or past the end."""
    if partial.last is not None and (number > partial.last or (last and number != partial.last)):
        return True
    return last and any(n > number for n in partial.pieces)
