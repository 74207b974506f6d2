"""Informational exchanges: notifications, Delete payloads and DPD (RFC 2408 4.8, RFC 3706).

Rules of this module:

* Everything we send rides an ISAKMP SA, encrypted, as ``HDR*, HASH(1),
  N/D`` with a fresh message ID and HASH(1) = prf(SKEYID_a, M-ID | N/D)
  (RFC 2409 section 5.7).  The only clear notification is the answer to a
  first message we cannot accept (NO_PROPOSAL_CHOSEN to MI1): no keys yet.
* Received ones must be encrypted and carry a good HASH(1); a clear
  informational is logged and otherwise ignored (anyone can forge it), with
  one exception: an error notification answering our MI1/AI1 is shown to
  the waiting whack (rc 200 + type) -- we still keep retransmitting.
* Deletes: IPsec SAs are named by the SPI the *sender* receives on (its
  inbound, our outbound); ISAKMP SAs by the cookie pair.
* DPD: R_U_THERE / R_U_THERE_ACK notifications with the cookies as SPI and a
  4-byte sequence number.  We answer every R_U_THERE; we send them only when
  ``dpddelay`` is set and the peer sent the DPD vendor ID, after ``dpddelay``
  seconds without an authenticated message from the peer, and declare it
  dead when ``dpdtimeout`` passes with R_U_THEREs unanswered.
"""

from __future__ import annotations

from typing import Callable, Sequence

from fswan.ike import crypto
from fswan.ike.context import InfoContext
from fswan.ike.crypto import DecryptError
from fswan.ike.events import Datagram
from fswan.ike.state import ExchangeError, MessageDigest, Phase1State, Phase2State, State, StateKind
from fswan.isakmp.constants import ExchangeType, Flags, NotifyType, ProtocolId, name_of
from fswan.isakmp.errors import MalformedPacket
from fswan.isakmp.message import (
    Header,
    Message,
    add_non_esp_marker,
    decode_payloads,
    encode_payloads,
)
from fswan.isakmp.payloads import (
    DeletePayload,
    HashPayload,
    NotificationPayload,
    Payload,
    SAPayload,
)
from fswan.whackproto import RC


def build(p1: Phase1State, message_id: int, payloads: Sequence[Payload]) -> bytes:
    """An encrypted informational message: HASH(1) then ``payloads``."""
    assert p1.keys is not None and p1.crypter is not None
    hash1 = crypto.informational_hash(
        p1.keys.hash, p1.keys.skeyid_a, message_id, encode_payloads(list(payloads))
    )
    plain = encode_payloads([HashPayload(hash1), *payloads])
    body = p1.crypter.encrypt(message_id, plain)
    p1.crypter.forget(message_id)
    header = Header(
        p1.icookie,
        p1.rcookie,
        ExchangeType.INFORMATIONAL,
        Flags.ENCRYPTION,
        message_id,
        next_payload=HashPayload.payload_type,
    )
    return Message(header, encrypted_body=body).encode()


def send(eng: InfoContext, p1: Phase1State, payloads: Sequence[Payload]) -> None:
    eng.send_oneshot(p1, build(p1, eng.table.new_message_id(p1), payloads))


def notify(
    eng: InfoContext,
    p1: Phase1State,
    kind: int,
    protocol: int = ProtocolId.ISAKMP,
    spi: bytes | None = None,
    data: bytes = b"",
) -> None:
    """Send one notification over ``p1`` (phase-1 notifications carry the cookies)."""
    if spi is None:
        spi = p1.cookies if protocol == ProtocolId.ISAKMP else b""
    send(eng, p1, [NotificationPayload(kind, protocol, spi, data)])


def delete_ipsec(eng: InfoContext, p1: Phase1State, spis: Sequence[int]) -> None:
    """Tell the peer our inbound ESP SAs are gone."""
    send(eng, p1, [DeletePayload(ProtocolId.ESP, tuple(s.to_bytes(4, "big") for s in spis))])


def delete_isakmp(eng: InfoContext, p1: Phase1State) -> None:
    send(eng, p1, [DeletePayload(ProtocolId.ISAKMP, (p1.cookies,), 16)])


def clear_notification(header: Header, kind: int) -> bytes:
    """The clear answer to a first message (no keys exist yet)."""
    payload = NotificationPayload(kind, ProtocolId.ISAKMP, b"")
    return Message(
        Header(header.icookie, header.rcookie, ExchangeType.INFORMATIONAL), (payload,)
    ).encode()


def notify_refusal(eng: InfoContext, st: State, kind: int, md: MessageDigest) -> None:
    """Tell the peer why we refuse its message: encrypted once keys exist (a refused
    Main Mode message 5 or 6 ends the phase-1 IV chain: the notification's IV comes
    from it), else the clear answer to a first message."""
    p1 = st if isinstance(st, Phase1State) else eng.table.isakmp(getattr(st, "isakmp_serial", 0))
    if p1 is not None and p1.crypter is not None:
        if md.header.encrypted and md.header.message_id == 0:
            # The peer's phase-1 chain ended with the message we refused: derive
            # the notification's IV from its last block, then rewind.
            saved = p1.crypter.iv(0)
            p1.crypter.set_iv(0, md.raw[-p1.crypter.block_size :])
            try:
                notify(eng, p1, kind)
            finally:
                p1.crypter.set_iv(0, saved)
            return
        if isinstance(st, Phase2State):
            spi = b""
            sa = md.get(SAPayload)
            if sa is not None:
                spis = [
                    p.spi
                    for p in sa.proposals
                    if p.protocol == ProtocolId.ESP and len(p.spi) == 4
                ]
                spi = spis[0] if spis else b""
            notify(eng, p1, kind, ProtocolId.ESP, spi)
        else:
            notify(eng, p1, kind)
        return
    if md.header.exchange in (ExchangeType.MAIN_MODE, ExchangeType.AGGRESSIVE):
        data = clear_notification(md.header, kind)
        if md.local_port == eng.natt_port:
            data = add_non_esp_marker(data)
        eng.out.datagram(
            Datagram(data, md.local_port, md.remote_addr, md.remote_port, md.local_addr)
        )


def verify(p1: Phase1State, md: MessageDigest) -> None:
    """Check HASH(1) of a decrypted informational message."""
    assert p1.keys is not None
    if not md.payloads or not isinstance(md.payloads[0], HashPayload):
        raise ExchangeError("informational message without HASH(1) ignored", notify=None, rc=2)
    expected = crypto.informational_hash(
        p1.keys.hash, p1.keys.skeyid_a, md.header.message_id, md.after_first()
    )
    if not crypto.constant_time_equal(md.payloads[0].data, expected):
        raise ExchangeError("informational HASH(1) does not match; message ignored", rc=2)


# --------------------------------------------------------------------------
# receiving


def unknown_cookies(eng: InfoContext, md: MessageDigest) -> None:
    eng.out.count("unknown_cookie")
    eng.out.log(
        f"packet from {md.peer}: no ISAKMP SA for cookies "
        f"{md.header.icookie.hex()}/{md.header.rcookie.hex()}; {name_of(md.header.exchange)} "
        "message dropped"
    )


def receive_protected(
    eng: InfoContext, p1: Phase1State | None, message: Message, md: MessageDigest
) -> None:
    """An encrypted Informational message: decrypt with its own message ID's IV,
    check HASH(1), then act on what it carries."""
    header = md.header
    if p1 is None:
        unknown_cookies(eng, md)
        return
    if (
        p1.crypter is None
        or header.message_id == 0
        or (header.cookies, header.message_id) in eng.table.by_msgid
    ):
        eng.out.count("unexpected")
        eng.out.log_state(
            p1,
            f"packet from {md.peer}: encrypted Informational message "
            "cannot be processed in this state; dropped",
        )
        return
    try:
        plain = p1.crypter.decrypt(header.message_id, message.encrypted_body or b"")
    except DecryptError as error:
        eng.out.count("decrypt_failed")
        eng.out.log_state(p1, f"packet from {md.peer}: {error}")
        return
    finally:
        p1.crypter.forget(header.message_id)
    try:
        md.payloads = decode_payloads(header.next_payload, plain)
    except MalformedPacket as error:
        eng.out.count("malformed")
        eng.out.log_state(p1, f"packet from {md.peer}: {error.reason} in Informational message")
        return
    md.plain = plain
    try:
        verify(p1, md)
    except ExchangeError as error:
        eng.out.count("rejected")
        for line in error.lines:
            eng.out.log_state(p1, line, error.rc)
        return
    if p1.kind.is_isakmp_established:
        eng.note_inbound(p1, md)
    receive(eng, p1, md)


def receive_clear(
    eng: InfoContext, p1: Phase1State | None, message: Message, md: MessageDigest
) -> None:
    """A clear Informational message: anyone can forge one, so it is only logged,
    except an error answering our first message, which the waiting whack sees."""
    eng.out.count("cleartext_informational")
    notifications = md.all(NotificationPayload)
    if (
        p1 is not None
        and p1.initiator
        and p1.kind in (StateKind.MAIN_I1, StateKind.AGGR_I1)
        and any(n.is_error for n in notifications)
    ):
        for n in notifications:
            eng.out.log_state(
                p1, f"{p1.kind.label}: {name_of(n.type)}", RC.NOTIFICATION + int(n.type)
            )
        eng.out.release_all(p1, False)
        p1.pending = [q._replace(whack=None) for q in p1.pending]
        return
    for payload in md.payloads or []:
        kind = (
            name_of(payload.type) if isinstance(payload, NotificationPayload) else payload.name
        )
        eng.out.log(
            f"packet from {md.peer}: ignoring unencrypted informational payload, type {kind}"
        )


def receive(eng: InfoContext, p1: Phase1State, md: MessageDigest) -> None:
    """Act on an informational message whose HASH(1) checked out.

    Before Phase 1 is established HASH(1) proves only that the sender took part
    in the Diffie-Hellman exchange, not who it is (with signatures, anyone can
    get that far): then only an error notification about this very negotiation
    counts (it ends the attempt), and nothing is answered (RFC 2408 section
    5.15, RFC 2409 section 5.7).  Afterwards Deletes and DPD act only on SAs of
    the peer this ISAKMP SA authenticated (``delete_by_spi``/``_cookies``)."""
    if not p1.kind.is_isakmp_established:
        for payload in md.payloads[1:]:
            if isinstance(payload, NotificationPayload) and payload.is_error and _about(p1, payload):
                eng.peer_error(p1, payload)
            else:
                kind = name_of(payload.type) if isinstance(payload, NotificationPayload) else payload.name
                refuse(eng, p1, md, f"{kind} before the peer is authenticated")
        return
    for payload in md.payloads[1:]:
        if isinstance(payload, NotificationPayload):
            _notification(eng, p1, payload)
        elif isinstance(payload, DeletePayload):
            _delete(eng, p1, payload)
        else:
            eng.log_state(p1, f"ignoring informational payload, type {payload.name}")


def _about(p1: Phase1State, n: NotificationPayload) -> bool:
    """A notification about this ISAKMP negotiation: ISAKMP protocol, and the SPI
    (if any) is its cookie pair."""
    return n.protocol in (0, ProtocolId.ISAKMP) and n.spi in (b"", p1.cookies)


def refuse(eng: InfoContext, p1: Phase1State, md: MessageDigest | None, what: str) -> None:
    """Log a refused informational payload, once per kind of refusal and ISAKMP SA."""
    eng.count("informational_refused")
    if what in p1.refusals:
        return
    p1.refusals.add(what)
    sender = f"peer '{p1.peer_id}'" if p1.peer_id is not None else "an unauthenticated peer"
    where = md.peer if md is not None else f"{p1.remote_addr}:{p1.remote_port}"
    eng.log_state(p1, f"ignoring informational payload from {sender} at {where}: {what}")


def _notification(eng: InfoContext, p1: Phase1State, n: NotificationPayload) -> None:
    kind = int(n.type)
    if kind == NotifyType.R_U_THERE:
        if len(n.data) != 4:
            eng.log_state(p1, "R_U_THERE without a 4-byte sequence number ignored")
            return
        eng.count("dpd_received")
        notify(eng, p1, NotifyType.R_U_THERE_ACK, ProtocolId.ISAKMP, p1.cookies, n.data)
    elif kind == NotifyType.R_U_THERE_ACK:
        seq = int.from_bytes(n.data, "big") if len(n.data) == 4 else None
        if seq is None or seq > p1.dpd_seq or p1.dpd_seq - seq > 0x7FFFFFFF:
            eng.log_state(p1, "DPD: R_U_THERE_ACK with an unexpected sequence number ignored")
            return
        p1.dpd_pending_since = None
    elif kind == NotifyType.INITIAL_CONTACT:
        eng.initial_contact(p1)
    elif kind < NotifyType.CONNECTED:
        eng.peer_error(p1, n)
    else:
        eng.log_state(p1, f"ignoring informational payload, type {name_of(n.type)}")


def _delete(eng: InfoContext, p1: Phase1State, d: DeletePayload) -> None:
    if d.protocol == ProtocolId.ISAKMP:
        for spi in d.spis:
            if len(spi) == 16:
                eng.delete_by_cookies(p1, spi)
    elif d.protocol == ProtocolId.ESP:
        for spi in d.spis:
            if len(spi) == 4:
                eng.delete_by_spi(p1, int.from_bytes(spi, "big"))
    else:
        eng.log_state(p1, f"ignoring Delete SA payload for protocol {name_of(d.protocol)}")


# --------------------------------------------------------------------------
# DPD (RFC 3706)


def dpd_tick(eng: InfoContext, p1: Phase1State, now: float, delay: float, timeout: float) -> bool:
    """Probe an idle peer; True when it must be declared dead.

    Idle means nothing from the peer for ``delay``: no IKE message and, when the
    shell reports it (``eng.esp_activity.last_esp_arrival``), no ESP on the conn's SAs either
    (RFC 3706 section 5.5: traffic is proof of liveness, probes are for silence)."""
    if p1.dpd_pending_since is not None and now >= p1.dpd_pending_since + timeout:
        return True
    if p1.dpd_next is not None and now >= p1.dpd_next:
        last = p1.last_inbound
        if eng.esp_activity is not None:
            esp = eng.esp_activity.last_esp_arrival(p1.conn_name)
            if esp is not None and esp > last:
                last = esp
        idle = now - last
        if idle >= delay or p1.dpd_pending_since is not None:
            p1.dpd_seq = (p1.dpd_seq + 1) & 0xFFFFFFFF or 1
            notify(
                eng,
                p1,
                NotifyType.R_U_THERE,
                ProtocolId.ISAKMP,
                p1.cookies,
                p1.dpd_seq.to_bytes(4, "big"),
            )
            eng.count("dpd_sent")
            if p1.dpd_pending_since is None:
                p1.dpd_pending_since = now
            p1.dpd_next = now + delay
        else:
            p1.dpd_next = last + delay
    return False


# --------------------------------------------------------------------------
# the rows: an Informational exchange has no waiting state, so its row is chosen
# by its protection (RFC 2408 section 4.8; RFC 2409 section 5.7)

#: encrypted?: handler(engine, the ISAKMP SA its cookies name or None, message, md)
ROWS: dict[bool, Callable[[InfoContext, Phase1State | None, Message, MessageDigest], None]] = {
    True: receive_protected,
    False: receive_clear,
}
