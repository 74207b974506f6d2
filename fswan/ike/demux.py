"""The receive path: a UDP payload → a decoded message → the state it belongs to (pluto's demux.c).

Rules of this module:

* Nothing a peer sends raises out of :func:`receive_datagram`: a malformed
  packet is counted and logged once with the peer's ``ip:port``; an internal
  error is counted, logged with its traceback and the message dropped.
* On the NAT-T port, the 4-byte non-ESP marker is stripped, a keepalive is
  counted, anything else (ESP) is not ours.
* An IKE fragment (``ike/fragments.py``) goes to the reassembler, keyed by
  the peer's address; a finished message takes the path below as if it had
  come whole.  Fragments for cookies we have no state for are dropped, except
  with a zero responder cookie (a fragmented first message).
* Main/Aggressive Mode: a zero responder cookie is a new (or retransmitted)
  first message, answered by a new responder state when some conn may take
  it; otherwise the cookie pair names the ISAKMP SA.  Quick Mode: the cookies
  name an established ISAKMP SA, the message ID the exchange (a new one makes
  a responder state).  Informational: the row of ``informational.ROWS`` for
  its protection.  The state's transition row is then run by the engine.
* Messages waiting for the shell (a peer key from DNS, a client check) are
  held here as received and processed again when it answers.
"""

from __future__ import annotations

import ipaddress
import traceback
from typing import Any, Hashable

from fswan.config.model import IPAddress
from fswan.ike import fragments, informational, lifecycle, transaction
from fswan.ike.context import EngineParts
from fswan.ike.proposals import auth_methods_of
from fswan.ike.state import MessageDigest, Phase1State, StateKind
from fswan.ike.status import AUTH_POLICY
from fswan.ike.table import ZERO_COOKIE
from fswan.ikev2.message import is_ikev2
from fswan.isakmp.constants import ExchangeType, name_of
from fswan.isakmp.errors import MalformedPacket
from fswan.isakmp.message import (
    NON_ESP_MARKER,
    Message,
    NattKind,
    add_non_esp_marker,
    classify_natt,
    decode_message,
)
from fswan.isakmp.payloads import SAPayload
from fswan.whackproto import RC

__all__ = ["HeldMessages", "receive_datagram"]

#: a held datagram: (data as received, local address, local port, remote address, remote port)
HeldDatagram = tuple[bytes, Any, int, Any, int]


class HeldMessages:
    """Datagrams waiting for the shell's answer, by what they wait for."""

    def __init__(self) -> None:
        self._held: dict[Hashable, list[HeldDatagram]] = {}

    def hold(self, key: Hashable, md: MessageDigest, natt_port: int) -> bool:
        """Keep ``md`` as it came off the wire; True when it is the first for ``key``."""
        data = md.raw if md.local_port != natt_port else add_non_esp_marker(md.raw)
        first = key not in self._held
        self._held.setdefault(key, []).append(
            (data, md.local_addr, md.local_port, md.remote_addr, md.remote_port)
        )
        return first

    def release(self, key: Hashable) -> list[HeldDatagram]:
        return self._held.pop(key, [])


#: addresses as the shell hands them (text) -> parsed; cleared when full, so a flood from
#: many sources costs a parse each, as before, and a site's peers cost one lookup
_ADDRESSES: dict[Any, IPAddress] = {}
_ADDRESSES_MAX = 4096


def _address(value: Any) -> IPAddress:
    """``ipaddress.ip_address(value)``, remembered: parsing one costs more than a lookup
    (two a datagram, ~4% of an in-memory handshake)."""
    address = _ADDRESSES.get(value)
    if address is None:
        address = ipaddress.ip_address(value)
        if len(_ADDRESSES) >= _ADDRESSES_MAX:
            _ADDRESSES.clear()
        _ADDRESSES[value] = address
    return address


def receive_datagram(
    eng: EngineParts,
    data: bytes,
    local_addr: Any,
    local_port: int,
    remote_addr: Any,
    remote_port: int,
    now: float,
) -> None:
    """Handle one UDP payload for port 500 or 4500 (still with the non-ESP marker)."""
    eng.now = now
    eng.out.count("datagrams_received")
    peer = f"{remote_addr}:{remote_port}"
    try:
        _receive(
            eng,
            bytes(data),
            _address(local_addr),
            int(local_port),
            _address(remote_addr),
            int(remote_port),
            now,
        )
    except MalformedPacket as error:
        eng.out.count("malformed")
        eng.out.log(f"packet from {peer}: {error.reason}", RC.LOG_SERIOUS)
    except Exception as error:  # never let a datagram take the daemon down
        eng.out.count("internal_error")
        eng.out.log(
            f"packet from {peer}: internal error {type(error).__name__} while "
            "processing; message dropped",
            RC.INTERNALERR,
        )
        for line in traceback.format_exc().rstrip().splitlines():
            eng.out.log(line, RC.INTERNALERR)


def _receive(
    eng: EngineParts,
    data: bytes,
    local_addr: Any,
    local_port: int,
    remote_addr: Any,
    remote_port: int,
    now: float,
) -> None:
    if local_port == eng.natt_port:
        kind = classify_natt(data)
        if kind is NattKind.KEEPALIVE:
            eng.out.count("keepalives_received")
            return
        if kind is NattKind.ESP:
            eng.out.count("esp_on_ike_port")
            return
        if kind is NattKind.MALFORMED:
            raise MalformedPacket(
                f"datagram of {len(data)} bytes on the NAT-T port is neither IKE nor ESP"
            )
        data = data[len(NON_ESP_MARKER):]
    if is_ikev2(data):
        eng.v2.receive(eng, data, local_addr, local_port, remote_addr, remote_port, now)
        return
    pieces = 0
    if fragments.is_fragment(data):
        whole, pieces = _fragment(eng, data, remote_addr, now)
        if whole is None:
            return
        data = whole
    message = decode_message(data)
    md = MessageDigest(
        message.header,
        list(message.payloads),
        data,
        local_addr,
        local_port,
        remote_addr,
        remote_port,
        now,
        fragments=pieces,
    )
    exchange = message.header.exchange
    if exchange in (ExchangeType.MAIN_MODE, ExchangeType.AGGRESSIVE):
        _phase1_message(eng, message, md)
    elif exchange == ExchangeType.QUICK_MODE:
        _quick_message(eng, message, md)
    elif exchange == ExchangeType.TRANSACTION:
        p1 = eng.table.by_cookies.get(md.header.cookies)
        transaction.receive(eng, p1, message, md)
        if p1 is not None:
            lifecycle.after_transaction(eng, p1)
    elif exchange == ExchangeType.INFORMATIONAL:
        header = md.header
        p1 = eng.table.isakmp_for_cookies(header.cookies, header.rcookie == ZERO_COOKIE)
        informational.ROWS[bool(header.encrypted)](eng, p1, message, md)
    else:
        eng.out.count("unexpected")
        eng.out.log(f"packet from {md.peer}: unsupported exchange type {name_of(exchange)}")


def _fragment(
    eng: EngineParts, data: bytes, remote_addr: Any, now: float
) -> tuple[bytes | None, int]:
    """One IKE fragment in; the whole message (and its number of pieces) once complete."""
    header, fragment = fragments.parse_fragment(data)
    eng.out.count("fragments_received")
    if header.rcookie != ZERO_COOKIE and eng.table.isakmp_for_cookies(header.cookies, True) is None:
        eng.out.count("fragments_unknown_cookie")
        return None, 0
    done = eng.reassembler.add(remote_addr, header.cookies, fragment, now)
    if done is None:
        return None, 0
    whole = done.message
    inner = fragments.header_of(whole)
    if inner is None or inner.cookies != header.cookies or fragments.is_fragment(whole):
        eng.out.count("fragments_invalid")
        eng.out.log(
            f"packet from {remote_addr}: reassembled IKE fragments do not make a message "
            "of that ISAKMP SA; dropped"
        )
        return None, 0
    eng.out.count("fragments_reassembled")
    return whole, done.pieces


def _note_fragmentation(eng: EngineParts, st: Phase1State, md: MessageDigest) -> None:
    """What the peer's message says of fragmentation: its vendor ID, or fragments sent."""
    if not md.header.encrypted and fragments.announces_fragmentation(md.payloads):
        st.peer_fragmentation = True
    if md.fragments and not st.peer_sent_fragments:
        st.peer_sent_fragments = True
        eng.out.log_state(
            st, f"received IKE fragments from {md.peer}: reassembled a "
            f"{len(md.raw)}-byte message from {md.fragments} fragments"
        )


def _phase1_message(eng: EngineParts, message: Message, md: MessageDigest) -> None:
    header = md.header
    st: Phase1State | None
    if header.rcookie == ZERO_COOKIE:
        st = eng.table.half_open_responder(header.icookie, md.remote_addr)
        if st is None:
            _new_responder(eng, message, md)
            return
    else:
        st = eng.table.isakmp_for_cookies(header.cookies, waiting_initiator=True)
    if st is None:
        informational.unknown_cookies(eng, md)
        return
    _note_fragmentation(eng, st, md)
    eng.dispatch(st, st, message, md)


def _new_responder(eng: EngineParts, message: Message, md: MessageDigest) -> None:
    header = md.header
    aggressive = header.exchange == ExchangeType.AGGRESSIVE
    mode = "Aggressive" if aggressive else "Main"
    if header.encrypted or header.message_id != 0:
        eng.out.count("unexpected")
        eng.out.log(
            f"packet from {md.peer}: initial {mode} Mode message must be clear "
            "with message ID 0"
        )
        return
    sa = md.get(SAPayload)
    if sa is None:
        eng.out.count("malformed")
        eng.out.log(f"packet from {md.peer}: initial {mode} Mode message has no SA payload")
        return
    if not admit(eng, md, aggressive):
        return
    auths = auth_methods_of(sa)
    candidates = eng.select.responder_candidates(md.local_addr, md.remote_addr, auths, aggressive)
    if not candidates:
        eng.out.count("no_connection")
        policy = "+".join(AUTH_POLICY.get(a, name_of(a)) for a in auths) or "none"
        if aggressive:
            policy += "+AGGRESSIVE"
        eng.out.log(
            f"initial {mode} Mode message received on {md.local_addr}:{md.local_port} "
            f"but no connection has been authorized with policy={policy}"
        )
        return
    host = candidates[0].oriented.this.host
    if md.local_addr.is_unspecified and host is not None:
        # a shell listening on the wildcard address: we are the conn's host
        md.local_addr = host
    st = Phase1State(
        serial=eng.table.next_serial(),
        kind=StateKind.AGGR_R0 if aggressive else StateKind.MAIN_R0,
        connection=candidates[0].oriented,
        initiator=False,
        icookie=header.icookie,
        rcookie=ZERO_COOKIE,
        local_addr=md.local_addr,
        local_port=md.local_port,
        remote_addr=md.remote_addr,
        remote_port=md.remote_port,
        created=md.now,
        aggressive=aggressive,
        quiet=eng.busy,
    )
    eng.table.add_responder(st)
    md.candidates = candidates
    eng.out.log_state(st, f"responding to {mode} Mode from {md.peer}")
    _note_fragmentation(eng, st, md)
    eng.dispatch(st, st, message, md)


def admit(eng: EngineParts, md: MessageDigest, aggressive: bool) -> bool:
    """Room for one more half-open responder state (see ``halfopen``): the oldest
    unverified ones of that source, then overall, make way; an Aggressive Mode
    beyond its rate is dropped."""
    policy, table = eng.halfopen, eng.table
    admitted = True
    if aggressive and not policy.aggressive_allowed(md.remote_addr, md.now):
        policy.note("Aggressive Mode rate-limited")
        eng.out.count("halfopen_refused")
        admitted = False
    else:
        for source, limit in ((md.remote_addr, policy.per_source), (None, policy.max_half_open)):
            while table.unverified_count(source) >= max(1, limit):
                oldest = table.oldest_unverified(source)
                assert oldest is not None
                table.forget(oldest)
                policy.note("oldest unverified dropped")
                policy.under_pressure(md.now)
                eng.out.count("halfopen_reaped")
    line = policy.report(md.now, table.unverified_count())
    if line is not None:
        eng.out.log(line, RC.LOG_SERIOUS)
    return admitted


def _quick_message(eng: EngineParts, message: Message, md: MessageDigest) -> None:
    header = md.header
    p1 = eng.table.by_cookies.get(header.cookies)
    if p1 is None:
        informational.unknown_cookies(eng, md)
        return
    if not p1.kind.is_isakmp_established:
        eng.out.count("unexpected")
        eng.out.log_state(p1, "ignoring QUICK_MODE request while phase 1 is incomplete")
        return
    if not header.encrypted or header.message_id == 0:
        eng.out.count("unexpected")
        eng.out.log_state(
            p1,
            f"packet from {md.peer}: Quick Mode message must be "
            "encrypted with a non-zero message ID",
        )
        return
    st = eng.table.by_msgid.get((header.cookies, header.message_id))
    if st is None and not p1.ready:
        eng.out.count("unexpected")
        eng.out.log_state(p1, f"packet from {md.peer}: Quick Mode refused: XAUTH / Mode Config "
                              "has not finished on this ISAKMP SA")
        return
    if st is None:
        if header.message_id in p1.message_ids:
            eng.out.count("unexpected")
            eng.out.log_state(
                p1,
                f"packet from {md.peer}: Quick Mode message reuses "
                f"message ID {header.message_id:#010x}",
            )
            return
        st = eng.new_phase2(p1, StateKind.QUICK_R0, p1.connection, md.now, header.message_id)
        p1.message_ids.add(header.message_id)
    eng.dispatch(st, p1, message, md)
