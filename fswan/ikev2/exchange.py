"""What every IKEv2 exchange shares: the engine as it sees it, requests and responses
on an IKE SA's windows, notifications, identities and NAT detection.

The exchange modules (:mod:`~fswan.ikev2.ike_sa_init`, :mod:`~fswan.ikev2.ike_auth`,
:mod:`~fswan.ikev2.create_child`, :mod:`~fswan.ikev2.informational`) build and check
messages; sending goes through :func:`request` (our window: one outstanding, the rest
queued, the waiting state retransmits) and :func:`respond` (the peer's window: the
response kept for a duplicate request).
"""

from __future__ import annotations

import hashlib
import struct
from typing import Protocol

from cryptography import x509

from fswan.config.ids import Identity
from fswan.config.model import IPAddress
from fswan.ike.context import EngineParts
from fswan.ike.main_mode import id_payload, identity_of
from fswan.ike.state import ExchangeError, MessageDigest, Phase1State, State, TimerEvent
from fswan.ike.timers import RETRANSMIT_DELAY
from fswan.ikev2 import fragmentation
from fswan.ikev2.constants import ExchangeType, NotifyType, PayloadType
from fswan.ikev2.message import Message
from fswan.ikev2.payloads import IDi, IDr, Notify, Payload
from fswan.ikev2.sa import IkeSa, RequestBuilder
from fswan.isakmp.payloads import IDPayload

__all__ = [
    "EXCHANGE_NAMES",
    "V2Engine",
    "fail",
    "id_body",
    "nat_hash",
    "peer_identity",
    "request",
    "respond",
    "response_done",
]

EXCHANGE_NAMES = {
    ExchangeType.IKE_SA_INIT: "IKE_SA_INIT",
    ExchangeType.IKE_AUTH: "IKE_AUTH",
    ExchangeType.CREATE_CHILD_SA: "CREATE_CHILD_SA",
    ExchangeType.INFORMATIONAL: "INFORMATIONAL",
}


class V2Engine(EngineParts, Protocol):
    """What the IKEv2 exchanges use of the engine beyond its parts' protocol."""

    ike_port: int
    nat_traversal: bool
    fragment_size: int

    def random(self, size: int) -> bytes: ...

    def log_state(self, st: State, text: str, rc: int = ...) -> None: ...

    def count(self, name: str) -> None: ...

    def first_contact(self, st: Phase1State) -> bool: ...

    def switch_connection(self, st: State, entry: object) -> None: ...


def request(eng: V2Engine, ike: IkeSa, owner: State, build: RequestBuilder) -> None:
    """Send a request on ``ike`` now, or when the outstanding one is answered."""
    if ike.outstanding is not None:
        ike.queue.append((owner.serial, build))
        return
    _send_request(eng, ike, owner, build)


def _send_request(eng: V2Engine, ike: IkeSa, owner: State, build: RequestBuilder) -> None:
    assert ike.suite is not None
    message_id = ike.next_request
    ike.next_request += 1
    exchange, payloads = build(message_id)
    data = fragmentation.seal(eng, ike, exchange, message_id, False, payloads)
    ike.outstanding, ike.outstanding_owner = message_id, owner.serial
    ike.outstanding_exchange = exchange
    owner.last_sent = data
    owner.retransmits = 0
    if not owner.kind.established:
        owner.set_event(TimerEvent.RETRANSMIT, eng.now + RETRANSMIT_DELAY)
    elif owner is ike and (exchange != ExchangeType.INFORMATIONAL or payloads):
        # the established IKE SA's own request (a Delete): its retransmissions have a
        # deadline of their own; a liveness check (empty) is resent by the liveness ticks
        ike.request_retransmit = eng.now + RETRANSMIT_DELAY
    eng.emit(ike, data)


def response_done(eng: V2Engine, ike: IkeSa) -> None:
    """Our outstanding request was answered (the caller cleared ``outstanding`` before
    handling it): the next queued one may go.  A request the handler sent meanwhile
    (the Delete of a rekeyed Child SA) is outstanding now and keeps its place."""
    while ike.queue and ike.outstanding is None:
        serial, build = ike.queue.pop(0)
        owner = eng.table.get(serial)
        if owner is not None and ike.serial in eng.table.states:
            _send_request(eng, ike, owner, build)


def respond(eng: V2Engine, ike: IkeSa, md: MessageDigest, exchange: int,
            payloads: list[Payload]) -> None:
    """Answer the peer's request ``md`` (kept: a duplicate gets it again)."""
    data = fragmentation.seal(eng, ike, exchange, md.header.message_id, True, payloads)
    ike.last_response = data
    ike.peer_next = md.header.message_id + 1
    eng.emit(ike, data)


def fail(*lines: str, notify: int | None = None, delete: bool = True) -> ExchangeError:
    """An exchange that cannot go on (the notify, if any, answers a request)."""
    return ExchangeError(*lines, notify=notify, delete=delete)


def error_notifies(message: Message) -> list[Notify]:
    return [n for n in message.all(Notify) if n.is_error]


# --------------------------------------------------------------------------
# identities


def id_body(identity: Identity, initiator: bool, cert: x509.Certificate | None = None) -> IDi | IDr:
    """Our IDi/IDr: IKEv1's ID payload body with protocol and port zero is IKEv2's (a DN
    that is our certificate's subject goes as the certificate encodes it)."""
    payload = id_payload(identity, cert)
    return (IDi if initiator else IDr)(payload.id_type, payload.data)


def peer_identity(payload: IDi | IDr) -> Identity:
    """The peer's identity (INVALID_ID_INFORMATION-style refusals as ExchangeError)."""
    try:
        return identity_of(IDPayload(payload.id_type, payload.data))
    except ExchangeError as error:
        raise fail(*error.lines, notify=NotifyType.AUTHENTICATION_FAILED) from None


# --------------------------------------------------------------------------
# NAT detection (RFC 7296 2.23): SHA-1(SPIi | SPIr | IP | port)


def nat_hash(spis: bytes, address: IPAddress, port: int) -> bytes:
    return hashlib.sha1(spis + address.packed + struct.pack("!H", port)).digest()


def nat_notifies(spis: bytes, local: IPAddress, local_port: int, remote: IPAddress,
                 remote_port: int) -> list[Notify]:
    return [
        Notify(NotifyType.NAT_DETECTION_SOURCE_IP, nat_hash(spis, local, local_port)),
        Notify(NotifyType.NAT_DETECTION_DESTINATION_IP, nat_hash(spis, remote, remote_port)),
    ]


def note_nat(ike: IkeSa, message: Message, spis: bytes, md: MessageDigest) -> None:
    """What the peer's NAT detection says: ``nat_us`` (our address was changed on the
    way), ``nat_peer`` (its was); ``natt`` set when it sent the notifications at all."""
    sources = [n.data for n in message.all(Notify)
               if n.notify_type == NotifyType.NAT_DETECTION_SOURCE_IP]
    destination = message.notify(NotifyType.NAT_DETECTION_DESTINATION_IP)
    if not sources or destination is None:
        return
    ike.natt = "rfc"
    ike.nat_peer = nat_hash(spis, md.remote_addr, md.remote_port) not in sources
    ike.nat_us = destination.data != nat_hash(spis, ike.local_addr, md.local_port)


def has_payloads(message: Message, *types: int) -> None:
    """Refuse a message without every payload of ``types`` (INVALID_SYNTAX)."""
    present = {p.payload_type for p in message.payloads}
    missing = [PayloadType(t).name for t in types if t not in present]
    if missing:
        raise fail(f"{', '.join(missing)} payload missing", notify=NotifyType.INVALID_SYNTAX)
