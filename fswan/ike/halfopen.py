"""How many strangers the responder keeps state for: half-open IKE SAs under load.

A Main Mode responder keeps a state from the first message on, before the peer
has shown it can even receive our answer.  Anyone can send MM1s with a forged
source address, so:

* A half-open responder state is *unverified* until the peer's second message
  (MI2) comes back with our responder cookie: only a peer that received our MR1
  can send it (the return-routability check IKEv2 makes with cookies).
* Unverified states are capped in total (``max-halfopen-ike=``) and per source
  address; at a cap the oldest unverified one is dropped for the new one.
  Verified states are never dropped for strangers.
* Busy mode (Libreswan's ``ddos-mode=``: ``auto`` is busy from
  ``ddos-ike-threshold=`` half-open states on, and for :data:`PRESSURE_WINDOW`
  after a cap had to drop a state; ``busy`` always; ``unlimited`` never): MR1
  is sent once, not retransmitted, to an unverified peer, and its
  state is discarded after :data:`BUSY_DISCARD` seconds instead of waiting
  through the retransmissions (~70 s) -- one reply per MM1, whatever it claims
  to come from.
* Aggressive Mode makes the responder compute DH and sign at the first message:
  new AM1s are rate-limited per source address and in total.
* What was dropped is counted and logged once per :data:`REPORT_INTERVAL`, not
  per packet.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from fswan.config.model import IPAddress

__all__ = ["BUSY_DISCARD", "DdosMode", "HalfOpenPolicy", "REPORT_INTERVAL", "TokenBucket"]

#: seconds an unverified responder state lives in busy mode
BUSY_DISCARD = 10.0
#: seconds between two summaries of what the policy dropped
REPORT_INTERVAL = 10.0
#: seconds ``auto`` stays busy after a cap dropped a state: longer than a stranger's
#: state would wait for its retransmissions (10 s + 20 s), so none of them is answered twice
PRESSURE_WINDOW = 30.0
#: unverified half-open states one source address may hold (a hub bringing up its
#: conns to us at once stays below it; a flood from one address does not)
PER_SOURCE_LIMIT = 1024
#: new Aggressive Mode exchanges answered per second (burst), per source and in total
AGGRESSIVE_PER_SOURCE = (2.0, 10.0)
AGGRESSIVE_TOTAL = (50.0, 100.0)
#: sources whose Aggressive Mode rate is remembered at most (then forgotten at once)
AGGRESSIVE_SOURCES = 65536


class DdosMode(str, enum.Enum):
    """``ddos-mode=`` of config setup (Libreswan's values)."""

    AUTO = "auto"
    BUSY = "busy"
    UNLIMITED = "unlimited"


@dataclass
class TokenBucket:
    """``rate`` per second, up to ``burst`` at once."""

    rate: float
    burst: float
    tokens: float = -1.0
    at: float = 0.0

    def take(self, now: float) -> bool:
        if self.tokens < 0:
            self.tokens, self.at = self.burst, now
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


@dataclass
class HalfOpenPolicy:
    """The responder's limits and what they dropped since the last report."""

    mode: DdosMode = DdosMode.AUTO
    #: half-open states from which ``auto`` is busy (Libreswan's default)
    threshold: int = 25000
    #: unverified half-open states kept at most (Libreswan's default)
    max_half_open: int = 50000
    per_source: int = PER_SOURCE_LIMIT
    dropped: dict[str, int] = field(default_factory=dict)
    last_report: float | None = None
    #: a cap dropped a state: busy (in ``auto``) until then
    pressure_until: float = float("-inf")
    _aggressive_total: TokenBucket = field(default_factory=lambda: TokenBucket(*AGGRESSIVE_TOTAL))
    _aggressive_by_source: dict[IPAddress, TokenBucket] = field(default_factory=dict)

    def busy(self, half_open: int, now: float) -> bool:
        if self.mode is DdosMode.BUSY:
            return True
        return self.mode is DdosMode.AUTO and (half_open >= self.threshold
                                               or now < self.pressure_until)

    def under_pressure(self, now: float) -> None:
        """A cap dropped a state: someone sends more first messages than we keep."""
        self.pressure_until = now + PRESSURE_WINDOW

    def aggressive_allowed(self, source: IPAddress, now: float) -> bool:
        """May a new Aggressive Mode exchange from ``source`` cost us DH and a signature?"""
        bucket = self._aggressive_by_source.get(source)
        if bucket is None:
            if len(self._aggressive_by_source) >= AGGRESSIVE_SOURCES:
                self._aggressive_by_source.clear()  # forget idle sources rather than grow
            bucket = self._aggressive_by_source[source] = TokenBucket(*AGGRESSIVE_PER_SOURCE)
        return bucket.take(now) and self._aggressive_total.take(now)

    def note(self, what: str) -> None:
        self.dropped[what] = self.dropped.get(what, 0) + 1

    def report(self, now: float, half_open: int) -> str | None:
        """The summary line due at ``now``, if any (then the counts start again)."""
        if not self.dropped:
            return None
        if self.last_report is not None and now - self.last_report < REPORT_INTERVAL:
            return None
        self.last_report = now
        parts = ", ".join(f"{what}: {count}" for what, count in sorted(self.dropped.items()))
        self.dropped = {}
        state = "busy" if self.busy(half_open, now) else "not busy"
        return f"half-open IKE SAs: {half_open} ({state}); in the last interval {parts}"
