"""IKEv2 inside the engine: the receive path of an IKEv2 datagram, and what the shared
parts (initiation, timers, lifecycle) hand over for an IKEv2 conn or state.

:class:`Ikev2` is ``IkeEngine.v2`` (the ``V2Hooks`` protocol of
``fswan/ike/context.py``): demux gives it every datagram whose header says major
version 2, ``initiate_entry`` every conn that initiates IKEv2, the timers an IKEv2
state's retransmission limit, rekey and liveness, ``lifecycle.delete_state`` the
Deletes to send.  Receiving, by the header: a first IKE_SA_INIT request (SPIr zero)
goes to :func:`ike_sa_init.in_request`; anything else needs the IKE SA of its SPIs;
a response must answer our outstanding request; a request must be the next one
the peer may send (the one before it is a duplicate and gets our response again).
Nothing a peer sends raises out of here: it is counted and, once, logged.
"""

from __future__ import annotations

from typing import Any

from fswan.ike import lifecycle
from fswan.ike.select import ConnEntry, ids_match
from fswan.ike.state import ExchangeError, MessageDigest, PendingQuick, Phase1State, Phase2State
from fswan.ike.state import State, StateKind
from fswan.ike.table import ZERO_COOKIE
from fswan.ike.timers import MAX_RETRANSMITS, RETRANSMIT_DELAY
from fswan.ikev2 import create_child, fragmentation, ike_auth, ike_sa_init, informational
from fswan.ikev2.constants import ExchangeType, NotifyType
from fswan.ikev2.errors import IntegrityError, MalformedMessage
from fswan.ikev2.exchange import EXCHANGE_NAMES, V2Engine, respond, response_done
from fswan.ikev2.message import Message, decode_message
from fswan.ikev2.payloads import Notify
from fswan.ikev2.sa import ChildSa, IkeSa
from fswan.whackproto import RC

__all__ = ["Ikev2"]


class Ikev2:
    """The engine's IKEv2 part (stateless but for the cookie secret)."""

    def __init__(self) -> None:
        self._cookie_secret = b""

    def cookie_secret(self, eng: V2Engine) -> bytes:
        if not self._cookie_secret:
            self._cookie_secret = eng.random(32)
        return self._cookie_secret

    # -- receiving ------------------------------------------------------------

    def receive(self, eng: Any, data: bytes, local_addr: Any, local_port: int,
                remote_addr: Any, remote_port: int, now: float) -> None:
        peer = f"{remote_addr}:{remote_port}"
        try:
            message = decode_message(data)
        except MalformedMessage as error:
            eng.out.count("malformed")
            eng.out.log(f"packet from {peer}: IKEv2 message: {error}", RC.LOG_SERIOUS)
            return
        header = message.header
        md = MessageDigest(header, list(message.payloads), data, local_addr, local_port,
                           remote_addr, remote_port, now)
        if header.exchange == ExchangeType.IKE_SA_INIT and not header.is_response:
            if header.spi_r != ZERO_COOKIE:
                eng.out.count("unexpected")
                return
            ike_sa_init.in_request(eng, message, md)
            return
        ike = eng.table.by_cookies.get(header.spis)
        if ike is None and header.exchange == ExchangeType.IKE_SA_INIT:
            ike = eng.table.by_cookies.get(header.spi_i + ZERO_COOKIE)
        if not isinstance(ike, IkeSa):
            eng.out.count("unknown_cookie")
            return
        if header.is_initiator == ike.original_initiator:
            eng.out.count("unexpected")  # our own message reflected, or a confused peer
            return
        try:
            if header.is_response:
                self._response(eng, ike, message, md)
            else:
                self._request(eng, ike, message, md)
        except IntegrityError:
            eng.out.count("decrypt_failed")
        except MalformedMessage as error:
            eng.out.count("malformed")
            eng.log_state(ike, f"packet from {peer}: {error}", RC.LOG_SERIOUS)
        except ExchangeError as error:
            eng.count("rejected")
            for line in error.lines:
                eng.log_state(ike, line, error.rc)
            request = not header.is_response
            if request and ike.sk is not None and ike.peer_next <= header.message_id:
                # an authentic request we refuse still gets its answer: the peer's window
                # moves on, and it learns why
                respond(eng, ike, md, header.exchange,
                        [Notify(error.notify or NotifyType.INVALID_SYNTAX)])
            if request and ike.kind.established:
                return  # one refused request; the IKE SA and its Child SAs stay
            if error.delete:
                self._drop(eng, ike, md)

    def _drop(self, eng: Any, ike: IkeSa, md: MessageDigest) -> None:
        """A failed exchange: a Child SA being negotiated goes alone, else the IKE SA."""
        owner = eng.table.get(ike.outstanding_owner) if ike.outstanding is None else None
        if isinstance(owner, ChildSa) and not owner.kind.established:
            lifecycle.delete_state(eng, owner, "negotiation failed", notify_peer=False)
            return
        for child in eng.table.children(ike):
            lifecycle.delete_state(eng, child, "negotiation failed", notify_peer=False)
        eng.out.release_all(ike, False)
        ike.pending = []  # their whacks were just released: not again by delete_state
        lifecycle.delete_state(eng, ike, "negotiation failed", notify_peer=False)

    def _response(self, eng: Any, ike: IkeSa, message: Message, md: MessageDigest) -> None:
        if ike.outstanding != md.header.message_id:
            eng.out.count("duplicates_ignored")
            return
        if md.header.exchange != ike.outstanding_exchange:
            eng.out.count("unexpected")  # not an answer to the request we sent
            return
        owner = eng.table.get(ike.outstanding_owner)
        exchange = md.header.exchange
        if exchange == ExchangeType.IKE_SA_INIT:
            if ike.kind is not StateKind.PARENT_I1:
                return
            # still outstanding until it is accepted: a cleartext answer that is ignored
            # (a cookie demanded again) leaves the request waiting for the real one
            if ike_sa_init.in_response(eng, ike, message, md):
                ike.outstanding = None
                ike_auth.send_request(eng, ike)
            return
        opened = _open(eng, ike, md)
        if opened is None:
            return  # more fragments to come
        message = opened
        ike.outstanding = None
        ike.request_retransmit = None
        if ike.kind.established:
            lifecycle.note_inbound(eng, ike, md)
        try:
            if exchange == ExchangeType.IKE_AUTH and ike.kind is StateKind.PARENT_I2:
                ike_auth.in_response(eng, ike, message, md)
                create_child.start_pending(eng, ike)
            elif exchange == ExchangeType.CREATE_CHILD_SA and owner is not None:
                create_child.in_response(eng, ike, owner, message, md)
            elif exchange == ExchangeType.INFORMATIONAL:
                informational.in_response(eng, ike, message, md)
        finally:
            if ike.serial in eng.table.states:
                response_done(eng, ike)

    def _request(self, eng: Any, ike: IkeSa, message: Message, md: MessageDigest) -> None:
        mid = md.header.message_id
        if mid + 1 == ike.peer_next and ike.last_response is not None:
            eng.out.count("retransmits_received")
            eng.emit(ike, ike.last_response)
            return
        if mid != ike.peer_next:
            eng.out.count("unexpected")
            return
        opened = _open(eng, ike, md)
        if opened is None:
            return  # more fragments to come
        message = opened
        exchange = md.header.exchange
        if exchange == ExchangeType.IKE_AUTH and ike.kind is StateKind.PARENT_R1:
            ike_auth.in_request(eng, ike, message, md)
            return
        if not ike.kind.established:
            eng.out.count("unexpected")
            eng.log_state(ike, f"ignoring {EXCHANGE_NAMES.get(exchange, exchange)} request: "
                               "IKE SA not established")
            return
        lifecycle.note_inbound(eng, ike, md)
        if exchange == ExchangeType.CREATE_CHILD_SA:
            create_child.in_request(eng, ike, message, md)
        elif exchange == ExchangeType.INFORMATIONAL:
            informational.in_request(eng, ike, message, md)
        else:
            respond(eng, ike, md, exchange, [Notify(NotifyType.INVALID_SYNTAX)])

    # -- what the shared parts hand over -----------------------------------------

    def initiate(self, eng: Any, entry: ConnEntry, now: float, whack: object | None,
                 attempt: int, replaces: int | None) -> None:
        """A Child SA over an IKE SA we have with the peer, or queued on one being set up,
        or a new IKE SA (its IKE_AUTH carries this conn's first Child SA)."""
        ike = _usable(eng, entry)
        if ike is not None:
            if ike.kind.established:
                create_child.new_child(eng, ike, entry, whack, replaces)
            else:
                ike.pending.append(PendingQuick(whack, replaces, entry.name))
                if whack is not None and ike.whack is None:
                    ike.whack = whack
            return
        if entry.oriented.that.host is None:
            eng.out.log_conn(entry.name, "cannot initiate connection without knowing peer IP "
                                         "address", RC.NOPEERIP)
            eng.out.release(whack, False)
            return
        ike_sa_init.initiate(eng, entry, now, whack, [PendingQuick(whack, replaces, entry.name)],
                             attempt, None)

    def delete_child(self, eng: Any, ike: Phase1State, child: Phase2State) -> None:
        if isinstance(ike, IkeSa) and ike.kind.established:
            informational.delete_child(eng, ike, child)

    def delete_ike(self, eng: Any, ike: Phase1State) -> None:
        if isinstance(ike, IkeSa):
            informational.delete_ike(eng, ike)

    def liveness(self, eng: Any, ike: Phase1State, now: float, delay: float,
                 timeout: float) -> bool:
        return isinstance(ike, IkeSa) and informational.liveness(eng, ike, now, delay, timeout)

    def replace(self, eng: Any, entry: ConnEntry, st: State, now: float) -> None:
        """Rekey time: a Child SA by CREATE_CHILD_SA over its IKE SA; an IKE SA by its own
        CREATE_CHILD_SA (the children move over)."""
        if isinstance(st, ChildSa):
            ike = eng.table.isakmp(st.isakmp_serial)
            newest = entry.newest_ipsec == st.serial or entry.oriented.that.host is None
            if isinstance(ike, IkeSa) and ike.kind.established and not ike.superseded and newest:
                if not any(c.replaces == st.serial for c in eng.table.children(ike)):
                    create_child.new_child(eng, ike, entry, None, st.serial)
            return
        if isinstance(st, IkeSa) and st.kind.established and not st.superseded:
            if entry.newest_isakmp == st.serial or entry.oriented.that.host is None:
                create_child.rekey_ike(eng, entry, st)

    def retransmit_request(self, eng: Any, ike: Phase1State, now: float) -> None:
        """Our request that an established IKE SA waits for, again (10 s, 20 s), then the
        IKE SA is given up like an unanswered negotiation."""
        ike.request_retransmit = None
        if (not isinstance(ike, IkeSa) or ike.outstanding is None
                or ike.outstanding_owner != ike.serial or ike.last_sent is None):
            return
        if ike.retransmits < MAX_RETRANSMITS:
            ike.retransmits += 1
            delay = RETRANSMIT_DELAY * 2 ** ike.retransmits
            eng.out.count("retransmits_sent")
            name = EXCHANGE_NAMES.get(ExchangeType(ike.outstanding_exchange), "IKEv2")
            eng.log_state(ike, f"{name} request: retransmission; will wait {delay:g}s for "
                               "response",
                          RC.RETRANSMISSION)
            eng.emit(ike, ike.last_sent)
            ike.request_retransmit = now + delay
            return
        entry = eng.select.entries.get(ike.conn_name)
        eng.log_state(ike, f"max number of retransmissions ({MAX_RETRANSMITS}) reached for "
                           "our request: the peer is gone", RC.NORETRANSMISSION)
        if entry is None:
            lifecycle.delete_state(eng, ike, "retransmission limit", notify_peer=False)
        else:
            self.give_up(eng, entry, ike, now)

    def give_up(self, eng: Any, entry: ConnEntry, st: State, now: float) -> None:
        """No answer after the retransmissions: the IKE SA is dead (RFC 7296 2.4); a new
        one is started while ``keyingtries=`` allows."""
        ike: Phase1State | None = None  # the IKE SA that is dead
        if isinstance(st, ChildSa):
            ike = eng.table.isakmp(st.isakmp_serial)
        elif isinstance(st, IkeSa):
            # our IKE SA rekey waits on the old SA's window: that one is dead
            rekeying = st.kind is StateKind.V2_REKEY_IKE_I1
            ike = eng.table.isakmp(st.rekey_of) if rekeying else st
        pending = [q._replace(whack=None) for q in st.pending] if isinstance(st, Phase1State) else []
        eng.out.release_all(st, False)
        if isinstance(st, Phase1State):
            st.pending = []  # released just now: not again by delete_state
        victims = [st] + ([ike] + eng.table.children(ike) if isinstance(ike, IkeSa) else [])
        for victim in sorted(set(victims), key=lambda s: (isinstance(s, Phase1State), -s.serial)):
            lifecycle.delete_state(eng, victim, "retransmission limit", notify_peer=False)
        tries = entry.conn.keyingtries
        attempt = st.attempt + 1 if not st.kind.established and isinstance(st, IkeSa) else 1
        if entry.oriented.that.host is None or (tries and attempt > tries):
            return
        limit = "an unlimited number" if tries == 0 else f"at most {tries}"
        eng.out.log_conn(entry.name, f"starting keying attempt {attempt} of {limit}", RC.COMMENT)
        ike_sa_init.initiate(eng, entry, now, None,
                             pending or [PendingQuick(None, None, entry.name)], attempt, None)


def _open(eng: Any, ike: IkeSa, md: MessageDigest) -> Message | None:
    """The peer's protected message decrypted (whole once its fragments are in), its
    payloads in ``md``; None while fragments are missing."""
    message = fragmentation.open_message(eng, ike, md)
    if message is not None:
        md.payloads = list(message.payloads)
    return message


def _usable(eng: Any, entry: ConnEntry) -> IkeSa | None:
    """An IKE SA (up, or being set up by us) this conn's Child SA can use: the conn's
    newest, or one to the same peer with the same IDs and auth."""
    newest = eng.table.isakmp(entry.newest_isakmp)
    if isinstance(newest, IkeSa) and newest.kind.established and not newest.superseded:
        return newest
    o = entry.oriented
    if o.that.host is None:
        return None
    for st in reversed(eng.table.at(o.that.host)):
        if (isinstance(st, IkeSa) and not st.superseded and st.rekey_of is None
                and st.local_addr == o.this.host and st.connection.this.id == o.this.id
                and st.auth in entry.auths
                and (st.kind.established or st.initiator)
                and (st.peer_id is None and st.connection.that.id == o.that.id
                     or st.peer_id is not None and ids_match(o.that.id, st.peer_id))):
            return st
    return None
