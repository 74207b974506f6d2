"""Timers: retransmission, rekey, expiry, DPD and NAT-T keepalives (pluto's timer.c).

One queue for the whole engine.  Every state has at most one event of its own
(``State.event``/``event_at``: EVENT_RETRANSMIT, EVENT_SA_REPLACE,
EVENT_SA_EXPIRE), and an established ISAKMP SA may have a DPD moment and a
keepalive moment besides; :func:`next_timer` is the earliest of them all and
:func:`handle_timer` runs everything due, earliest first.

* EVENT_RETRANSMIT: our last message again after 10 s, then 20 s; after the
  2nd retransmission and 40 s more the attempt is given up.  Initiators then
  start the next keying attempt (``keyingtries``, 0 = forever), releasing
  the whack.
* EVENT_SA_REPLACE: the newest SA of a conn is rekeyed (an ISAKMP SA only while
  the conn has an IPsec SA); a road-warrior conn's (``right=%any``) IPsec SAs each
  over their own peer's ISAKMP SA; then EVENT_SA_EXPIRE deletes it (make before break).
* DPD (RFC 3706, ``informational.dpd_tick``) and the one-byte NAT-T keepalive.
"""

from __future__ import annotations

from fswan.config.model import DpdAction
from fswan.ike import informational
from fswan.ike.context import EngineParts
from fswan.ike.events import Datagram
from fswan.ike.lifecycle import delete_state
from fswan.ike.select import ConnEntry
from fswan.ike.outbox import whacks_of
from fswan.ike.state import Phase1State, Phase2State, State, StateKind, TimerEvent
from fswan.whackproto import RC

__all__ = ["MAX_RETRANSMITS", "RETRANSMIT_DELAY", "handle_timer", "next_timer"]

#: retransmissions before giving up (pluto: 2, at 10 s then 20 s, then 40 s more)
MAX_RETRANSMITS = 2
#: first retransmission delay; doubled each time
RETRANSMIT_DELAY = 10.0


def _current(eng: EngineParts, serial: int, which: str) -> float | None:
    """The deadline of kind ``which`` that state ``serial`` has now, None when none."""
    st = eng.table.get(serial)
    if st is None:
        return None
    if which == "event":
        return st.event_at
    if not isinstance(st, Phase1State) or not st.kind.is_isakmp_established:
        return None
    if which == "request":
        return st.request_retransmit
    if which == "dpd":
        entry = eng.select.get(st.conn_name)
        if entry is None or not entry.conn.dpddelay or not st.peer_dpd:
            return None
        return st.dpd_deadline(entry.conn.dpdtimeout)
    return st.keepalive_next


def next_timer(eng: EngineParts) -> float | None:
    """When the earliest timer is due, None when nothing is scheduled."""
    first = eng.table.timers.first(lambda serial, which: _current(eng, serial, which))
    return first[0] if first is not None else None


def handle_timer(eng: EngineParts, now: float) -> None:
    """Run every event due at ``now``, earliest first."""
    eng.now = now
    queue = eng.table.timers
    for _ in range(10000):
        first = queue.first(lambda serial, which: _current(eng, serial, which))
        if first is None or first[0] > now:
            return
        queue.pop()
        _, serial, which = first
        st = eng.table.get(serial)
        if st is None:
            continue
        if which == "event":
            run_event(eng, st, now)
        elif which == "dpd":
            assert isinstance(st, Phase1State)
            run_dpd(eng, st, now)
        elif which == "request":
            assert isinstance(st, Phase1State)
            eng.v2.retransmit_request(eng, st, now)
        else:
            assert isinstance(st, Phase1State)
            run_keepalive(eng, st, now)


def run_event(eng: EngineParts, st: State, now: float) -> None:
    event = st.event
    st.set_event(None, None)
    if event is TimerEvent.RETRANSMIT:
        retransmit(eng, st, now)
    elif event is TimerEvent.SA_REPLACE:
        replace(eng, st, now)
    elif event is TimerEvent.SO_DISCARD and eng.table.is_unverified(st):
        eng.table.forget(st)  # busy mode: a stranger that never answered our one reply
        eng.halfopen.note("unverified discarded")
        eng.out.count("halfopen_discarded")
    elif event in (TimerEvent.SA_EXPIRE, TimerEvent.SO_DISCARD):
        what = "ISAKMP" if isinstance(st, Phase1State) else "IPsec"
        eng.out.log_state(st, f"{what} SA expired")
        delete_state(eng, st, "expired", notify_peer=True)


def retransmit(eng: EngineParts, st: State, now: float) -> None:
    if eng.busy and eng.table.is_unverified(st):
        eng.table.forget(st)  # busy mode: no second answer to a stranger
        eng.halfopen.note("unverified discarded")
        eng.out.count("halfopen_discarded")
        return
    if st.retransmits < MAX_RETRANSMITS and st.last_sent is not None:
        st.retransmits += 1
        delay = RETRANSMIT_DELAY * 2**st.retransmits
        eng.out.count("retransmits_sent")
        eng.out.log_state(
            st,
            f"{st.kind.label}: retransmission; will wait {delay:g}s for response",
            RC.RETRANSMISSION,
        )
        eng.emit(st, st.last_sent)
        st.set_event(TimerEvent.RETRANSMIT, now + delay)
        return
    give_up(eng, st, now)


def give_up(eng: EngineParts, st: State, now: float) -> None:
    detail = ""
    if st.kind in (StateKind.MAIN_I1, StateKind.AGGR_I1):
        detail = ".  No response (or no acceptable response) to our first IKE message"
    elif st.kind is StateKind.QUICK_I1:
        detail = (
            ".  No acceptable response to our first Quick Mode message: "
            "perhaps peer likes no proposal"
        )
    eng.out.log_state(
        st,
        f"max number of retransmissions ({MAX_RETRANSMITS}) reached "
        f"{st.kind.label}{detail}",
        RC.NORETRANSMISSION,
    )
    entry = eng.select.entries.get(st.conn_name)
    if st.kind.is_v2 and entry is not None and (st.initiator or st.kind.established):
        eng.v2.give_up(eng, entry, st, now)  # no answer: that IKE SA is dead (RFC 7296 2.4)
        return
    if not st.initiator or entry is None or st.kind.established:
        delete_state(eng, st, "retransmission limit", notify_peer=False)
        return
    releasing = ", but releasing whack" if whacks_of(st) else ""
    pending = [q._replace(whack=None) for q in st.pending] if isinstance(st, Phase1State) else []
    tries = entry.conn.keyingtries
    retry = tries == 0 or st.attempt < tries
    if retry:
        limit = "an unlimited number" if tries == 0 else f"at most {tries}"
        eng.out.log_state(
            st, f"starting keying attempt {st.attempt + 1} of {limit}{releasing}", RC.COMMENT
        )
    eng.out.release_all(st, False)
    if isinstance(st, Phase1State):
        st.pending = []
    delete_state(eng, st, "retransmission limit", notify_peer=False)
    if not retry:
        return
    if isinstance(st, Phase1State):
        eng.start_phase1(entry, now, None, pending, st.attempt + 1, st.replaces)
    else:
        eng.initiate_entry(entry, now, None, st.attempt + 1, st.replaces)


def replace(eng: EngineParts, st: State, now: float) -> None:
    entry = eng.select.entries.get(st.conn_name)
    expire_at = (now if st.established_at is None else st.established_at) + st.lifetime
    st.set_event(TimerEvent.SA_EXPIRE, max(expire_at, now))
    if entry is None or not entry.conn.rekey:
        return
    if st.kind.is_v2:
        eng.v2.replace(eng, entry, st, now)
        return
    if isinstance(st, Phase2State):
        if entry.oriented.that.host is None:
            _replace_road_warrior(eng, entry, st, now)
        elif entry.newest_ipsec == st.serial:
            eng.initiate_entry(entry, now, None, 1, st.serial)
        return
    assert isinstance(st, Phase1State)
    newest_ipsec = eng.table.get(entry.newest_ipsec)
    if (
        entry.newest_isakmp == st.serial
        and newest_ipsec is not None
        and entry.oriented.that.host is not None
    ):
        if eng.table.initiating_isakmp(entry.name) is None:
            eng.out.log_state(
                st,
                f"initiating {'Aggressive' if entry.conn.aggrmode else 'Main'} "
                f"Mode to replace #{st.serial}",
            )
            eng.start_phase1(entry, now, None, [], 1, st.serial)


def _replace_road_warrior(eng: EngineParts, entry: ConnEntry, st: Phase2State, now: float) -> None:
    """A ``right=%any`` conn serves many peers: each IPsec SA is rekeyed over its own
    ISAKMP SA (the conn's newest may be another peer's), if that one is still usable
    and no newer IPsec SA of it has replaced this one."""
    p1 = eng.table.isakmp(st.isakmp_serial)
    if p1 is None or not p1.kind.is_isakmp_established or not p1.ready:
        return
    if any(c.serial > st.serial and c.kind.established and c.replaces == st.serial
           for c in eng.table.children(p1)):
        return
    eng.start_quick(entry, p1, now, None, 1, st.serial)


def run_dpd(eng: EngineParts, p1: Phase1State, now: float) -> None:
    entry = eng.select.entries.get(p1.conn_name)
    # a fixed peer: its newest ISAKMP SA speaks for it; a road-warrior conn: every peer's
    newest_only = entry is not None and entry.oriented.that.host is not None
    if entry is None or not entry.conn.dpddelay or (newest_only and entry.newest_isakmp != p1.serial):
        p1.dpd_next = None
        p1.dpd_pending_since = None
        return
    tick = eng.v2.liveness if p1.kind.is_v2 else informational.dpd_tick
    if tick(eng, p1, now, entry.conn.dpddelay, entry.conn.dpdtimeout):
        dpd_dead(eng, entry, p1, now)


def dpd_dead(eng: EngineParts, entry: ConnEntry, p1: Phase1State, now: float) -> None:
    action = entry.conn.dpdaction
    eng.out.log_state(p1, "DPD: No response from peer - declaring peer dead", RC.LOG_SERIOUS)
    remote = p1.remote_addr
    if entry.oriented.that.host is None:  # one of a road-warrior conn's peers: only its SAs
        victims: list[State] = [p1, *eng.table.children(p1)]
    else:
        victims = [s for s in eng.table.of_conn(entry.name) if s.remote_addr == remote]
    for st in sorted(victims, key=lambda s: (isinstance(s, Phase1State), -s.serial)):
        delete_state(eng, st, "peer dead", notify_peer=False)
    if action is DpdAction.CLEAR:
        eng.out.log_conn(entry.name, "DPD: dpdaction=clear: connection cleared")
    elif action is DpdAction.HOLD:
        eng.out.log_conn(
            entry.name,
            "DPD: dpdaction=hold: connection put on %hold, "
            "waiting for traffic or an operator",
        )
    elif entry.oriented.that.host is None:
        eng.out.log_conn(entry.name, "DPD: dpdaction=restart: the peer is a road warrior; "
                                     "cleared, it will come back")
    else:
        eng.out.log_conn(entry.name, "DPD: dpdaction=restart: restarting connection")
        eng.initiate_entry(entry, now, None, 1, None)


def run_keepalive(eng: EngineParts, p1: Phase1State, now: float) -> None:
    entry = eng.select.entries.get(p1.conn_name)
    if entry is None or entry.newest_isakmp != p1.serial or not p1.nat_us:
        p1.keepalive_next = None
        return
    eng.out.datagram(
        Datagram(b"\xff", eng.natt_port, p1.remote_addr, p1.remote_port, p1.local_addr)
    )
    eng.out.count("keepalives_sent")
    p1.keepalive_next = now + eng.keep_alive

