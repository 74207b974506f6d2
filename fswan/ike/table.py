"""The state table: every negotiation ``#N`` and the indexes that find it (pluto's state.c).

Rules of this module:

* A state is found by what the wire carries: an ISAKMP SA by its cookie pair
  (or, while an initiator waits for the responder's cookie, by ``icookie`` and
  zero), a Quick Mode by cookies and message ID, a half-open responder by the
  initiator's cookie and address.  Each lookup is a dict access, so the cost
  of one datagram does not grow with the number of tunnels.
* Cookies, SPIs and message IDs are allocated here, from the engine's random
  source, never reusing one in use.
* Every state's deadlines (its timer event, DPD, NAT-T keepalive) are in one
  heap, :class:`TimerQueue`, told by the state itself when one changes
  (``State.watcher``); the earliest is found in O(log n).
* Nothing here decides protocol: the engine and its modules add, re-key and
  forget states; the table keeps the indexes true.
"""

from __future__ import annotations

import heapq
from typing import Any, Callable, Iterable

from fswan.config.model import IPAddress
from fswan.ike.state import DEADLINE_FIELDS, Phase1State, Phase2State, State, StateKind

__all__ = ["StateTable", "TimerQueue", "ZERO_COOKIE"]

ZERO_COOKIE = bytes(8)


#: a queued deadline: (when, state serial, which: "dpd" | "event" | "keepalive")
Deadline = tuple[float, int, str]


class TimerQueue:
    """The deadlines of the table's states in one heap, with lazy cancellation.

    A state pushes its deadlines whenever one moves (``changed``); entries are
    never removed then, but checked against the state when they reach the top
    (``first``): an entry whose state is gone or whose deadline moved is
    dropped, and the true deadline, if any, is queued instead.
    """

    def __init__(self) -> None:
        self._heap: list[Deadline] = []
        self._queued: set[Deadline] = set()

    def __len__(self) -> int:
        return len(self._heap)

    def changed(self, st: State) -> None:
        if st.event_at is not None:
            self.push((st.event_at, st.serial, "event"))
        if isinstance(st, Phase1State):
            when = st.dpd_deadline(st.connection.conn.dpdtimeout)
            if when is not None:
                self.push((when, st.serial, "dpd"))
            if st.keepalive_next is not None:
                self.push((st.keepalive_next, st.serial, "keepalive"))
            if st.request_retransmit is not None:
                self.push((st.request_retransmit, st.serial, "request"))

    def push(self, entry: Deadline) -> None:
        if entry not in self._queued:
            self._queued.add(entry)
            heapq.heappush(self._heap, entry)

    def first(self, current: Callable[[int, str], float | None]) -> Deadline | None:
        """The earliest entry still true; ``current(serial, which)`` is that deadline now."""
        heap = self._heap
        while heap:
            entry = heap[0]
            when = current(entry[1], entry[2])
            if when == entry[0]:
                return entry
            self.pop()
            if when is not None:
                self.push((when, entry[1], entry[2]))
        return None

    def pop(self) -> None:
        self._queued.discard(heapq.heappop(self._heap))

    def rebuild(self, states: Iterable[State]) -> None:
        """Only the live deadlines again (stale entries pile up as timers move)."""
        self._heap, self._queued = [], set()
        for st in states:
            self.changed(st)


class StateTable:
    """States by serial, with the wire indexes kept alongside."""

    def __init__(self, random: Callable[[int], bytes]) -> None:
        self._random = random
        #: every live state by serial, in creation order
        self.states: dict[int, State] = {}
        #: ISAKMP SAs by ``icookie + rcookie`` (an initiator by ``icookie + zero`` until answered)
        self.by_cookies: dict[bytes, Phase1State] = {}
        #: Quick Mode states by (cookies, message ID)
        self.by_msgid: dict[tuple[bytes, int], Phase2State] = {}
        #: responders not yet established, by (initiator cookie, peer address)
        self._half_open: dict[tuple[bytes, IPAddress], Phase1State] = {}
        #: cookie halves in use (a new cookie must clash with none)
        self._cookies: set[bytes] = set()
        #: our inbound SPIs in use
        self.spis: set[int] = set()
        #: every state's deadlines
        self.timers = TimerQueue()
        #: states by conn name, by the peer's proven ID and by the peer's address, and
        #: Quick Modes by their ISAKMP SA; each bucket in creation (serial) order
        self._by_conn: dict[str, dict[int, State]] = {}
        self._by_peer: dict[object, dict[int, State]] = {}
        self._by_remote: dict[IPAddress, dict[int, State]] = {}
        self._children: dict[int, dict[int, Phase2State]] = {}
        #: responder states whose peer has not yet shown it receives our messages
        #: (no MI2/AI2 with our cookie yet), oldest first, and by source address
        self._unverified: dict[int, Phase1State] = {}
        self._unverified_by_source: dict[IPAddress, dict[int, Phase1State]] = {}
        #: our Main/Aggressive Modes not yet established
        self._initiating: dict[int, Phase1State] = {}
        self._next_serial = 1

    # -- adding and forgetting ----------------------------------------------------

    def next_serial(self) -> int:
        serial = self._next_serial
        self._next_serial += 1
        return serial

    def add_initiator(self, st: Phase1State) -> None:
        self._add(st)
        self._index(st.icookie + ZERO_COOKIE, st)
        self._initiating[st.serial] = st

    def initiating_count(self) -> int:
        """Our Phase 1 negotiations under way."""
        return len(self._initiating)

    def add_responder(self, st: Phase1State) -> None:
        self._add(st)
        self._half_open.setdefault((st.icookie, st.remote_addr), st)
        self._unverified[st.serial] = st
        self._unverified_by_source.setdefault(st.remote_addr, {})[st.serial] = st

    def _verified(self, st: State) -> None:
        st.quiet = False
        if self._unverified.pop(st.serial, None) is not None:
            self._bucket(self._unverified_by_source, st.remote_addr, st, False)

    def is_unverified(self, st: State) -> bool:
        return st.serial in self._unverified

    def unverified_count(self, source: IPAddress | None = None) -> int:
        if source is None:
            return len(self._unverified)
        return len(self._unverified_by_source.get(source, ()))

    def oldest_unverified(self, source: IPAddress | None = None) -> Phase1State | None:
        bucket = self._unverified if source is None else self._unverified_by_source.get(source)
        return next(iter(bucket.values())) if bucket else None

    def add_quick(self, st: Phase2State) -> None:
        self._add(st)
        self.by_msgid[(st.icookie + st.rcookie, st.message_id)] = st

    def _add(self, st: State) -> None:
        self.states[st.serial] = st
        if len(self.timers) > 4 * len(self.states) + 64:
            self.timers.rebuild(self.states.values())
        st.watcher = self
        self.timers.changed(st)
        self._bucket(self._by_conn, st.conn_name, st, True)
        self._bucket(self._by_peer, st.peer_id, st, True)
        self._bucket(self._by_remote, st.remote_addr, st, True)
        if isinstance(st, Phase2State):
            self._children.setdefault(st.isakmp_serial, {})[st.serial] = st

    def changed(self, st: State, name: str, old: object) -> None:
        """``st``'s watched field ``name`` changed from ``old`` (see ``State.watcher``)."""
        if name in DEADLINE_FIELDS:
            self.timers.changed(st)
        elif name == "connection":
            self._bucket(self._by_conn, old.name, st, False)  # type: ignore[attr-defined]
            self._bucket(self._by_conn, st.conn_name, st, True)
        elif name == "kind":
            if st.kind not in UNVERIFIED_KINDS:
                self._verified(st)
            if st.kind.is_isakmp_established:
                self._initiating.pop(st.serial, None)
        elif name == "peer_id":
            self._bucket(self._by_peer, old, st, False)
            self._bucket(self._by_peer, st.peer_id, st, True)
        else:
            self._bucket(self._by_remote, old, st, False)
            self._bucket(self._by_remote, st.remote_addr, st, True)
            if st.serial in self._unverified:
                self._bucket(self._unverified_by_source, old, st, False)
                self._bucket(self._unverified_by_source, st.remote_addr, st, True)

    @staticmethod
    def _bucket(index: dict, key: object, st: State, present: bool) -> None:
        if key is None:
            return
        if present:
            index.setdefault(key, {})[st.serial] = st
        else:
            bucket = index.get(key)
            if bucket is not None:
                bucket.pop(st.serial, None)
                if not bucket:
                    del index[key]

    def adopt(self, child: Phase2State, parent: Phase1State) -> None:
        """``child`` now rides ``parent`` (IKEv2: the children of a rekeyed IKE SA move)."""
        old = self._children.get(child.isakmp_serial)
        if old is not None:
            old.pop(child.serial, None)
            if not old:
                del self._children[child.isakmp_serial]
        child.isakmp_serial = parent.serial
        if child.serial in self.states:
            self._children.setdefault(parent.serial, {})[child.serial] = child

    def set_rcookie(self, st: Phase1State, rcookie: bytes) -> None:
        self._unindex(st)
        st.rcookie = rcookie
        self._index(st.cookies, st)

    def forget(self, st: State) -> None:
        """Drop ``st`` and its index entries (events and Deletes are the caller's)."""
        if self.states.pop(st.serial, None) is not None:
            self._bucket(self._by_conn, st.conn_name, st, False)
            self._bucket(self._by_peer, st.peer_id, st, False)
            self._bucket(self._by_remote, st.remote_addr, st, False)
        st.watcher = None
        if isinstance(st, Phase2State):
            children = self._children.get(st.isakmp_serial)
            if children is not None:
                children.pop(st.serial, None)
                if not children:
                    del self._children[st.isakmp_serial]
            self.by_msgid.pop((st.icookie + st.rcookie, st.message_id), None)
            p1 = self.isakmp(st.isakmp_serial)
            if p1 is not None:
                p1.message_ids.discard(st.message_id)
                if p1.crypter is not None:
                    p1.crypter.forget(st.message_id)
        elif isinstance(st, Phase1State):
            self._verified(st)
            self._initiating.pop(st.serial, None)
            self._unindex(st)
            key = (st.icookie, st.remote_addr)
            if self._half_open.get(key) is st:
                del self._half_open[key]

    def _index(self, key: bytes, st: Phase1State) -> None:
        self.by_cookies[key] = st
        self._cookies.update(c for c in (key[:8], key[8:]) if c != ZERO_COOKIE)

    def _unindex(self, st: Phase1State) -> None:
        for key in (st.icookie + ZERO_COOKIE, st.cookies):
            if self.by_cookies.get(key) is st:
                del self.by_cookies[key]
                self._cookies.difference_update((key[:8], key[8:]))

    # -- lookups ------------------------------------------------------------------

    def get(self, serial: int | None) -> State | None:
        return self.states.get(serial) if serial is not None else None

    def isakmp(self, serial: int | None) -> Phase1State | None:
        st = self.get(serial)
        return st if isinstance(st, Phase1State) else None

    def __contains__(self, serial: object) -> bool:
        return serial in self.states

    def by_serial(self) -> list[State]:
        return sorted(self.states.values(), key=lambda s: s.serial)

    def half_open_responder(self, icookie: bytes, remote: IPAddress) -> Phase1State | None:
        st = self._half_open.get((icookie, remote))
        if st is None or st.kind.is_isakmp_established:
            return None
        return st

    def isakmp_for_cookies(self, cookies: bytes, waiting_initiator: bool) -> Phase1State | None:
        """The ISAKMP SA of a cookie pair; with ``waiting_initiator``, also our initiator
        that has not yet learnt the responder's cookie."""
        st = self.by_cookies.get(cookies)
        if st is None and waiting_initiator:
            waiting = self.by_cookies.get(cookies[:8] + ZERO_COOKIE)
            if waiting is not None and waiting.initiator:
                st = waiting
        return st

    def of_conn(self, name: str) -> list[State]:
        """The conn's states, oldest first."""
        return _ordered(self._by_conn.get(name))

    def of_peer(self, peer_id: object) -> list[State]:
        """States whose peer proved ``peer_id``, oldest first."""
        return _ordered(self._by_peer.get(peer_id)) if peer_id is not None else []

    def at(self, remote: IPAddress) -> list[State]:
        """States with the peer at ``remote``, oldest first."""
        return _ordered(self._by_remote.get(remote))

    def children(self, p1: Phase1State) -> list[Phase2State]:
        """The Quick Modes negotiated over ``p1``, oldest first."""
        return _ordered(self._children.get(p1.serial))

    def children_of_peer(self, p1: Phase1State) -> list[Phase2State]:
        return [
            s
            for s in self.of_conn(p1.conn_name)
            if isinstance(s, Phase2State)
            and s.remote_addr == p1.remote_addr
            and s.remote_port == p1.remote_port
        ]

    def newest_established(self, name: str, kind: type) -> int:
        serials = [
            s.serial for s in self.of_conn(name) if isinstance(s, kind) and s.kind.established
        ]
        return max(serials) if serials else 0

    def initiating_isakmp(self, name: str) -> Phase1State | None:
        """Our Main/Aggressive Mode for ``name`` still under way, if any."""
        for st in self.of_conn(name):
            if isinstance(st, Phase1State) and st.initiator and not st.kind.established:
                return st
        return None

    # -- allocation ---------------------------------------------------------------

    def _draw(self, size: int) -> bytes:
        return self._random(size)  # the engine's checked source (``IkeEngine.random``)

    def new_cookie(self) -> bytes:
        while True:
            cookie = self._draw(8)
            if cookie != ZERO_COOKIE and cookie not in self._cookies:
                return cookie

    def new_spi(self) -> int:
        while True:
            spi = int.from_bytes(self._draw(4), "big")
            if spi >= 0x100 and spi not in self.spis:
                self.spis.add(spi)
                return spi

    def new_message_id(self, p1: Phase1State) -> int:
        while True:
            message_id = int.from_bytes(self._draw(4), "big")
            if message_id and message_id not in p1.message_ids:
                p1.message_ids.add(message_id)
                return message_id


def _ordered(bucket: dict[int, Any] | None) -> list[Any]:
    """A bucket's states by serial (buckets are filled in serial order, but a state
    that moves between buckets lands at the end)."""
    if not bucket:
        return []
    return [bucket[serial] for serial in sorted(bucket)]


#: responder states that have answered a first message and wait for the second
UNVERIFIED_KINDS = frozenset(
    {StateKind.MAIN_R0, StateKind.MAIN_R1, StateKind.AGGR_R0, StateKind.AGGR_R1, StateKind.PARENT_R1}
)


def is_r0(st: State) -> bool:
    """A responder state that has accepted nothing yet (forgotten, not deleted, on failure)."""
    return st.kind in (StateKind.MAIN_R0, StateKind.AGGR_R0, StateKind.QUICK_R0)
