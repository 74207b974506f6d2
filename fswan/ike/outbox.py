"""What the engine has for its shell: datagrams, events and counters.

Every part of the engine (demux, timers, selection, the exchanges) writes here and
nothing else reaches the shell; :class:`~fswan.ike.engine.IkeEngine` drains it
after each input (``datagrams_to_send``, ``next_events``).
"""

from __future__ import annotations

from fswan.ike.events import Datagram, EngineEvent, LogLine, WhackDone
from fswan.ike.state import Phase1State, State
from fswan.whackproto import RC

__all__ = ["COUNTERS", "Outbox"]

#: what ``IkeEngine.counters`` always has (others appear when first counted)
COUNTERS = (
    "datagrams_received",
    "held_for_key",
    "datagrams_sent",
    "malformed",
    "unknown_cookie",
    "unexpected",
    "retransmits_received",
    "retransmits_sent",
    "duplicates_ignored",
    "decrypt_failed",
    "rejected",
    "no_connection",
    "keepalives_received",
    "keepalives_sent",
    "esp_on_ike_port",
    "cleartext_informational",
    "dpd_sent",
    "dpd_received",
    "internal_error",
)


class Outbox:
    """The engine's outputs in the order things happened, and its counters."""

    def __init__(self) -> None:
        self.datagrams: list[Datagram] = []
        self.events: list[EngineEvent] = []
        self.counters: dict[str, int] = {name: 0 for name in COUNTERS}

    def count(self, name: str) -> None:
        self.counters[name] = self.counters.get(name, 0) + 1

    def event(self, event: EngineEvent) -> None:
        self.events.append(event)

    def datagram(self, datagram: Datagram) -> None:
        self.datagrams.append(datagram)

    def log(self, text: str, rc: int = RC.LOG) -> None:
        self.events.append(LogLine(text, int(rc), None, None, None))

    def log_conn(self, name: str, text: str, rc: int = RC.LOG) -> None:
        self.events.append(LogLine(text, int(rc), name, None, None))

    def log_state(self, st: State, text: str, rc: int = RC.LOG) -> None:
        if not st.quiet:
            self.events.append(LogLine(text, int(rc), st.conn_name, st.serial, st.whack))

    def release(self, whack: object | None, ok: bool) -> None:
        if whack is not None:
            self.events.append(WhackDone(whack, ok))

    def release_all(self, st: State, ok: bool) -> None:
        """Release every whack waiting on ``st`` (its own and those of queued Quick Modes)."""
        for whack in whacks_of(st):
            self.release(whack, ok)
        st.whack = None


def whacks_of(st: State) -> list[object]:
    found: list[object] = []
    candidates = [st.whack]
    if isinstance(st, Phase1State):
        candidates += [q.whack for q in st.pending]
    for whack in candidates:
        if whack is not None and not any(w is whack for w in found):
            found.append(whack)
    return found
