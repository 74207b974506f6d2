"""IKEv2 fragmentation (RFC 7383), pure: big protected messages as SKF pieces.

Both ends announce IKEV2_FRAGMENTATION_SUPPORTED in IKE_SA_INIT (unless
``fragmentation=no``); once both have, a protected message longer than a datagram
of ``ike_fragment_size=`` bytes allows (IP, UDP and the non-ESP marker taken off)
goes as fragments, each sealed on its own -- IKE_AUTH with certificates is the one
that needs it.  The pieces are kept with the whole message they stand for, so a
retransmission sends the same ones (``ike/fragments.for_wire`` asks ``IkeSa.v2_pieces``).
Received fragments are put together per message ID and direction: at most 32
pieces and 64 KiB, a newer message ID drops the pieces of an older one.
"""

from __future__ import annotations

from typing import Protocol

from fswan.config.model import Fragmentation
from fswan.ike.fragments import isakmp_limit
from fswan.ike.state import MessageDigest, State
from fswan.ikev2.constants import NotifyType
from fswan.ikev2.crypto import protect_fragments, reassemble, unprotect_fragment
from fswan.ikev2.errors import MalformedMessage
from fswan.ikev2.message import Message
from fswan.ikev2.payloads import EncryptedFragment, Notify, Payload
from fswan.ikev2.sa import IkeSa

__all__ = ["announce", "open_message", "seal", "supported"]

MAX_PIECES = 32
MAX_BYTES = 64 * 1024
#: whole messages whose pieces are kept (our last request and our last response)
KEPT = 2


class _Engine(Protocol):
    natt_port: int
    fragment_size: int

    def random(self, size: int) -> bytes: ...

    def count(self, name: str) -> None: ...

    def log_state(self, st: State, text: str, rc: int = ...) -> None: ...


def announce(setting: Fragmentation) -> list[Notify]:
    if setting is Fragmentation.NO:
        return []
    return [Notify(NotifyType.IKEV2_FRAGMENTATION_SUPPORTED)]


def supported(message: Message) -> bool:
    return message.notify(NotifyType.IKEV2_FRAGMENTATION_SUPPORTED) is not None


def seal(eng: _Engine, ike: IkeSa, exchange: int, message_id: int, response: bool,
         payloads: list[Payload]) -> bytes:
    """Our protected message (the whole one: what duplicates and retransmissions name),
    its SKF pieces remembered when it must go in fragments."""
    assert ike.suite is not None and ike.sk is not None
    data = ike.seal(exchange, message_id, response, payloads, eng.random(ike.suite.iv_size))
    setting = ike.connection.conn.fragmentation
    natt = ike.local_port == eng.natt_port
    limit = isakmp_limit(eng.fragment_size, ipv6=ike.remote_addr.version == 6, natt=natt)
    if (setting in (Fragmentation.YES, Fragmentation.FORCE) and ike.peer_fragmentation
            and len(data) > limit):
        pieces = protect_fragments(ike.suite, ike.sk.sender(ike.original_initiator),
                                   ike.header(exchange, message_id, response), payloads,
                                   limit, eng.random)
        while len(ike.v2_pieces) >= KEPT:
            ike.v2_pieces.pop(next(iter(ike.v2_pieces)))
        ike.v2_pieces[data] = pieces
        eng.count("fragments_sent")
        if not ike.sent_fragments:
            ike.sent_fragments = True
            eng.log_state(ike, f"sending IKEv2 fragments: a {len(data)}-byte message in "
                               f"{len(pieces)} fragments")
    return data


def open_message(eng: _Engine, ike: IkeSa, md: MessageDigest) -> Message | None:
    """The peer's protected message decrypted -- or, for a fragment, the whole message
    once its last piece is in (None before)."""
    if not any(isinstance(p, EncryptedFragment) for p in md.payloads):
        return ike.open(md.raw)
    assert ike.suite is not None and ike.sk is not None
    header, fragment = unprotect_fragment(ike.suite, ike.sk.sender(not ike.original_initiator),
                                          md.raw)
    eng.count("fragments_received")
    if fragment.total > MAX_PIECES:
        raise MalformedMessage(f"{fragment.total} fragments, more than {MAX_PIECES}", "SKF")
    key = (header.message_id, header.is_response)
    for old in [k for k in ike.reassembly if k[1] == key[1] and k[0] < key[0]]:
        del ike.reassembly[old]
    parts = ike.reassembly.setdefault(key, {})
    parts[fragment.number] = fragment
    if sum(len(p.plain) for p in parts.values()) > MAX_BYTES:
        del ike.reassembly[key]
        raise MalformedMessage(f"fragments of more than {MAX_BYTES} bytes", "SKF")
    if len(parts) < fragment.total:
        return None
    del ike.reassembly[key]
    whole = reassemble(header, list(parts.values()))
    if not ike.peer_sent_fragments:
        ike.peer_sent_fragments = True
        eng.log_state(ike, f"received IKEv2 fragments from {md.peer}: reassembled a message "
                           f"from {fragment.total} fragments")
    return whole
