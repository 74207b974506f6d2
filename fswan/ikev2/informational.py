"""INFORMATIONAL (RFC 7296 1.4, 2.4): Deletes, notifications and liveness checks.

* A Delete of Child SAs is answered with a Delete of their other halves, and both
  go; a Delete of the IKE SA takes its Child SAs with it (answered empty).  Only the
  peer's own SAs on this IKE SA are touched.
* Liveness (``dpddelay``/``dpdtimeout``/``dpdaction``): an empty request when the
  peer has been silent -- on IKE and on ESP -- for ``dpddelay``; sent again every
  ``dpddelay`` while unanswered; no answer within ``dpdtimeout`` declares it dead.
* Our Deletes: a Child SA's waits its turn on the window; the IKE SA's goes at once
  (it is the last word on the SA, nothing is sent after it).
"""

from __future__ import annotations

from fswan.ike import lifecycle
from fswan.ike.state import MessageDigest, Phase2State
from fswan.ikev2.constants import ExchangeType, NotifyType, ProtocolId, name_of
from fswan.ikev2.exchange import V2Engine, request, respond
from fswan.ikev2.message import Message
from fswan.ikev2.payloads import Delete, Notify, Payload
from fswan.ikev2.sa import ChildSa, IkeSa

__all__ = ["delete_child", "delete_ike", "in_request", "in_response", "liveness"]


def delete_child(eng: V2Engine, ike: IkeSa, child: Phase2State) -> None:
    spi = child.our_spi.to_bytes(4, "big")
    request(eng, ike, ike, lambda _mid: (ExchangeType.INFORMATIONAL,
                                         [Delete(ProtocolId.ESP, (spi,))]))


def delete_ike(eng: V2Engine, ike: IkeSa) -> None:
    if ike.suite is None or ike.sk is None:
        return
    message_id = ike.next_request
    ike.next_request += 1
    data = ike.seal(ExchangeType.INFORMATIONAL, message_id, False,
                    [Delete(ProtocolId.IKE)], eng.random(ike.suite.iv_size))
    eng.emit(ike, data)


def liveness(eng: V2Engine, ike: IkeSa, now: float, delay: float, timeout: float) -> bool:
    """Probe a silent peer; True when it must be declared dead."""
    if ike.dpd_pending_since is not None and now >= ike.dpd_pending_since + timeout:
        return True
    if ike.dpd_next is None or now < ike.dpd_next:
        return False
    last = ike.last_inbound
    if eng.esp_activity is not None:
        esp = eng.esp_activity.last_esp_arrival(ike.conn_name)
        if esp is not None and esp > last:
            last = esp
    if now - last < delay and ike.dpd_pending_since is None:
        ike.dpd_next = last + delay
        return False
    eng.count("dpd_sent")
    if ike.dpd_pending_since is None:
        ike.dpd_pending_since = now
        if ike.outstanding is None:
            request(eng, ike, ike, lambda _mid: (ExchangeType.INFORMATIONAL, []))
        else:
            _resend_outstanding(eng, ike)
    else:
        _resend_outstanding(eng, ike)
    ike.dpd_next = now + delay
    return False


def _resend_outstanding(eng: V2Engine, ike: IkeSa) -> None:
    owner = eng.table.get(ike.outstanding_owner)
    if owner is not None and owner.last_sent is not None:
        eng.count("retransmits_sent")
        eng.emit(ike, owner.last_sent)


def in_response(eng: V2Engine, ike: IkeSa, message: Message, md: MessageDigest) -> None:
    """An answer to our INFORMATIONAL (a Delete's, or a liveness check's): the peer lives."""
    for n in message.all(Notify):
        if n.is_error:
            eng.log_state(ike, f"INFORMATIONAL response: {name_of(NotifyType, n.notify_type)}")


def in_request(eng: V2Engine, ike: IkeSa, message: Message, md: MessageDigest) -> None:
    if not message.payloads:
        eng.count("dpd_received")  # the peer's liveness check, answered empty below
    answer: list[Payload] = []
    gone: list[ChildSa] = []
    delete_ike_sa = False
    for payload in message.payloads:
        if isinstance(payload, Delete):
            if payload.protocol == ProtocolId.IKE:
                delete_ike_sa = True
            elif payload.protocol in (ProtocolId.ESP, ProtocolId.AH):
                ours = []
                for raw in payload.spis:
                    spi = int.from_bytes(raw, "big")
                    child = next((c for c in eng.table.children(ike) if isinstance(c, ChildSa)
                                  and c.installed and c.peer_spi == spi), None)
                    if child is None:
                        eng.log_state(ike, f"ignoring Delete for Child SA with SPI "
                                           f"0x{spi:08x}: not found")
                        continue
                    gone.append(child)
                    ours.append(child.our_spi.to_bytes(4, "big"))
                if ours:
                    answer.append(Delete(payload.protocol, tuple(ours)))
        elif isinstance(payload, Notify):
            eng.log_state(ike, f"received INFORMATIONAL notification {name_of(NotifyType, payload.notify_type)}")
    respond(eng, ike, md, ExchangeType.INFORMATIONAL, [] if delete_ike_sa else answer)
    for child in gone:
        eng.log_state(child, f"received Delete SA payload: deleting IPsec State #{child.serial}")
        lifecycle.delete_state(eng, child, "deleted by peer", notify_peer=False)
    if delete_ike_sa:
        eng.log_state(ike, f"received Delete SA payload: deleting IKE SA #{ike.serial}")
        lifecycle.delete_state(eng, ike, "deleted by peer", notify_peer=False)
