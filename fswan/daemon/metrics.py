"""Counters of what happened to IKE and the Prometheus endpoint that shows them.

``IkeStats`` watches the engine's events as the IKE driver routes them (one
call per event, never per ESP packet) and the daemon's log lines (updown
failures): handshakes started, completed and failed by reason, their latency,
rekeys, DPD timeouts.  ``whack --globalstatus`` and the metrics page both read
it.  A handshake starts with its state's first ``1xx`` line, completes with
``IsakmpSAEstablished``/``ChildSAInstalled`` and fails with its deletion, a
retransmission give-up or a notification from the peer; a state the engine
dropped without an event (a refused Quick Mode) is found missing when the
states are next read (``reconcile``).

``render`` is the Prometheus text exposition (version 0.0.4) of ``IkeStats``
plus a ``DaemonCounters`` read at scrape time; ``MetricsService`` serves it
with ``twisted.web`` on the one address configured (``metrics=`` in config
setup or ``twistd fswan --metrics``), never elsewhere.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from ipaddress import ip_address
from typing import Protocol

from twisted.application import service
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import IListeningPort
from twisted.web.resource import Resource
from twisted.web.server import Request, Site

from fswan.daemon.logging import PlutoLog
from fswan.daemon.status import DaemonCounters
from fswan.ike import events as ev
from fswan.ike.state import StateKind
from fswan.isakmp.constants import NotifyType, name_of
from fswan.whackproto import RC

#: handshake latency buckets, seconds (a LAN Main Mode is ~10 ms, a lost packet 10 s)
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
#: handshakes tracked at once; beyond, the oldest is counted as failed ("discarded")
MAX_PENDING = 10000
#: the data plane's counters that are not drops (``ipsec look`` lists them together)
NOT_DROPS = frozenset({"fragmented", "acquire", "%hold", "%pass", "not ESP"})

_FIRST_KINDS = {
    StateKind.MAIN_I1: "isakmp", StateKind.MAIN_R1: "isakmp", StateKind.AGGR_I1: "isakmp",
    StateKind.AGGR_R1: "isakmp", StateKind.QUICK_I1: "ipsec", StateKind.QUICK_R1: "ipsec",
    # IKEv2: the IKE SA's exchanges, and Child SAs by CREATE_CHILD_SA (the first Child SA
    # is made inside IKE_AUTH, with its IKE SA)
    StateKind.PARENT_I1: "isakmp", StateKind.PARENT_R1: "isakmp",
    StateKind.V2_NEW_CHILD_I1: "ipsec", StateKind.V2_REKEY_CHILD_I1: "ipsec",
}
def _notify_name(number: int) -> str:
    try:
        return name_of(NotifyType(number))
    except ValueError:
        return str(number)


_UPDOWN_FAILED = re.compile(r"^((?:prepare|route|unroute|up|down)-(?:host|client)(?:-v6)?) failed: ")


@dataclass
class Histogram:
    """A Prometheus histogram's counts (cumulative only when rendered)."""

    counts: list[int] = field(default_factory=lambda: [0] * len(BUCKETS))
    total: float = 0.0
    count: int = 0

    def observe(self, value: float) -> None:
        for i, bound in enumerate(BUCKETS):
            if value <= bound:
                self.counts[i] += 1
                break
        self.total += value
        self.count += 1


@dataclass
class _Pending:
    phase: str
    started: float
    #: the reason to count if the state disappears without a deletion event
    reason: str = "discarded"


class IkeStats:
    """Handshake, rekey, DPD and updown figures, from events as they pass."""

    def __init__(self) -> None:
        self.started: dict[str, int] = {"isakmp": 0, "ipsec": 0}
        self.completed: dict[str, int] = {"isakmp": 0, "ipsec": 0}
        self.failed: dict[tuple[str, str], int] = {}
        self.latency: dict[str, Histogram] = {"isakmp": Histogram(), "ipsec": Histogram()}
        self.rekeys: dict[str, int] = {"isakmp": 0, "ipsec": 0}
        self.dpd_timeouts: dict[str, int] = {}
        self.updown_failures: dict[tuple[str, str], int] = {}
        self._pending: dict[int, _Pending] = {}
        #: established ISAKMP SAs per conn: a new one beside a live one is a rekey
        self._isakmp: dict[str, set[int]] = {}

    # -- inputs -------------------------------------------------------------

    def on_event(self, event: ev.EngineEvent, now: float) -> None:
        """Every engine event the IKE driver routes."""
        if isinstance(event, ev.LogLine):
            if event.serial is not None:
                self._on_state_line(event, now)
            if event.conn is not None and event.text.startswith("DPD: No response from peer"):
                self.dpd_timeouts[event.conn] = self.dpd_timeouts.get(event.conn, 0) + 1
        elif isinstance(event, ev.IsakmpSAEstablished):
            self._complete(event.serial, now)
            live = self._isakmp.setdefault(event.conn, set())
            if live:
                self.rekeys["isakmp"] += 1
            live.add(event.serial)
        elif isinstance(event, ev.ChildSAInstalled):
            self._complete(event.serial, now)
            if event.replaces_serial is not None:
                self.rekeys["ipsec"] += 1
        elif isinstance(event, ev.IsakmpSADeleted):
            self._fail(event.serial, event.reason)
            gone = self._isakmp.get(event.conn)
            if gone is not None:
                gone.discard(event.serial)
                if not gone:
                    del self._isakmp[event.conn]

    def on_log_line(self, text: str, rc: int, conn: str | None, serial: int | None) -> None:
        """Every daemon log line (``PlutoLog``'s observer): updown failures."""
        if rc != RC.LOG_SERIOUS or conn is None or " failed: " not in text:
            return
        match = _UPDOWN_FAILED.match(text)
        if match is not None:
            key = (conn, match.group(1))
            self.updown_failures[key] = self.updown_failures.get(key, 0) + 1

    def _on_state_line(self, event: ev.LogLine, now: float) -> None:
        serial, rc = event.serial, event.rc
        assert serial is not None
        pending = self._pending.get(serial)
        if pending is None:
            if RC.NEW_STATE <= rc < RC.NOTIFICATION:
                try:
                    phase = _FIRST_KINDS.get(StateKind(rc - RC.NEW_STATE))
                except ValueError:
                    phase = None
                if phase is not None:
                    self._start(serial, phase, now)
            return
        if rc >= RC.NOTIFICATION:
            self._fail(serial, f"peer sent {_notify_name(rc - RC.NOTIFICATION)}")
        elif rc == RC.NORETRANSMISSION:
            self._fail(serial, "retransmission limit")
        elif rc == RC.LOG_SERIOUS or rc >= RC.BADWHACKMESSAGE:
            self._pending[serial] = replace(pending, reason="negotiation failed")

    def _start(self, serial: int, phase: str, now: float) -> None:
        if len(self._pending) >= MAX_PENDING:
            oldest = next(iter(self._pending))
            self._fail(oldest, "discarded")
        self._pending[serial] = _Pending(phase, now)
        self.started[phase] += 1

    def _complete(self, serial: int, now: float) -> None:
        pending = self._pending.pop(serial, None)
        if pending is None:
            return
        self.completed[pending.phase] += 1
        self.latency[pending.phase].observe(max(0.0, now - pending.started))

    def _fail(self, serial: int, reason: str) -> None:
        pending = self._pending.pop(serial, None)
        if pending is None:
            return
        key = (pending.phase, reason)
        self.failed[key] = self.failed.get(key, 0) + 1

    def reconcile(self, live: Iterable[int]) -> None:
        """States the engine dropped without an event count as failed."""
        alive = set(live)
        for serial in [s for s in self._pending if s not in alive]:
            self._fail(serial, self._pending[serial].reason)

    @property
    def pending(self) -> int:
        return len(self._pending)

    def failed_total(self, phase: str) -> int:
        return sum(n for (p, _), n in self.failed.items() if p == phase)


# -- the exposition -------------------------------------------------------------


def escape_label(value: str) -> str:
    """A label value as the text format wants it: backslash, quote and newline escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _number(value: float) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int) or float(value).is_integer():
        return str(int(value))
    return repr(float(value))


class Exposition:
    """Collects families in order; every family has its HELP and TYPE lines."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str,
               samples: Iterable[tuple[Mapping[str, str], float]], suffix: str = "") -> None:
        self.lines.append(f"# HELP {name} {_escape_help(help_text)}")
        self.lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            self.sample(name + suffix, labels, value)

    def sample(self, name: str, labels: Mapping[str, str], value: float) -> None:
        if labels:
            inner = ",".join(f'{k}="{escape_label(str(v))}"' for k, v in labels.items())
            self.lines.append(f"{name}{{{inner}}} {_number(value)}")
        else:
            self.lines.append(f"{name} {_number(value)}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def render(stats: IkeStats, counters: DaemonCounters) -> str:
    """The whole metrics page."""
    out = Exposition()
    v2_child = {StateKind.V2_NEW_CHILD_I1, StateKind.V2_REKEY_CHILD_I1,
                StateKind.V2_ESTABLISHED_CHILD_SA}
    isakmp_kinds = [k for k in StateKind if k.is_phase1 or (k.is_v2 and k not in v2_child)]
    ipsec_kinds = [k for k in StateKind if k.is_quick or k in v2_child]
    by_kind: dict[str, int] = {}
    for state in counters.states:
        by_kind[state.label] = by_kind.get(state.label, 0) + 1
    out.family("fswan_isakmp_sas", "gauge", "ISAKMP (phase 1) states by state",
               (({"state": k.label}, by_kind.get(k.label, 0)) for k in isakmp_kinds))
    out.family("fswan_ipsec_sas", "gauge", "IPsec (Quick Mode) states by state",
               (({"state": k.label}, by_kind.get(k.label, 0)) for k in ipsec_kinds))
    out.family("fswan_connections", "gauge", "connections loaded",
               [({}, counters.connections)])
    out.family("fswan_ike_half_open", "gauge",
               "responder states whose peer has not answered our first reply",
               [({}, counters.half_open)])
    out.family("fswan_ike_busy", "gauge", "1 in busy mode (strangers get one answer)",
               [({}, int(counters.busy))])
    phases = ("isakmp", "ipsec")
    out.family("fswan_ike_handshakes_started_total", "counter", "negotiations started, by phase",
               (({"phase": p}, stats.started[p]) for p in phases))
    out.family("fswan_ike_handshakes_completed_total", "counter",
               "negotiations that established an SA, by phase",
               (({"phase": p}, stats.completed[p]) for p in phases))
    out.family("fswan_ike_handshakes_failed_total", "counter",
               "negotiations that ended without an SA, by phase and reason",
               (({"phase": p, "reason": r}, n) for (p, r), n in sorted(stats.failed.items())))
    out.family("fswan_ike_handshakes_pending", "gauge", "negotiations under way",
               [({}, stats.pending)])
    name = "fswan_ike_handshake_duration_seconds"
    out.family(name, "histogram", "time from a negotiation's first message to its SA", ())
    for phase in phases:
        histogram = stats.latency[phase]
        running = 0
        for bound, count in zip(BUCKETS, histogram.counts):
            running += count
            out.sample(name + "_bucket", {"phase": phase, "le": _number(bound)}, running)
        out.sample(name + "_bucket", {"phase": phase, "le": "+Inf"}, histogram.count)
        out.sample(name + "_sum", {"phase": phase}, histogram.total)
        out.sample(name + "_count", {"phase": phase}, histogram.count)
    out.family("fswan_rekeys_total", "counter", "SAs replaced by a new one, by kind",
               (({"kind": k}, n) for k, n in sorted(stats.rekeys.items())))
    out.family("fswan_dpd_timeouts_total", "counter", "peers DPD declared dead, by conn",
               (({"conn": c}, n) for c, n in sorted(stats.dpd_timeouts.items())))
    out.family("fswan_updown_failures_total", "counter", "updown verbs that failed, by conn and verb",
               (({"conn": c, "verb": v}, n) for (c, v), n in sorted(stats.updown_failures.items())))
    out.family("fswan_ike_messages_total", "counter",
               "what the IKE engine counted (received, malformed, retransmits, DPD, ...)",
               (({"event": k}, n) for k, n in sorted(counters.ike.items())))
    traffic: dict[tuple[str, str], list[int]] = {}
    for sa in counters.sas:
        totals = traffic.setdefault((sa.conn or "", sa.direction), [0, 0])
        totals[0] += sa.bytes
        totals[1] += sa.packets
    out.family("fswan_conn_bytes_total", "counter",
               "bytes carried by a conn's installed SAs (as ipsec look's bytes=; resets on rekey)",
               (({"conn": c, "direction": d}, v[0]) for (c, d), v in sorted(traffic.items())))
    out.family("fswan_conn_packets_total", "counter",
               "packets carried by a conn's installed SAs (as ipsec look's packets=)",
               (({"conn": c, "direction": d}, v[1]) for (c, d), v in sorted(traffic.items())))
    out.family("fswan_dataplane_drops_total", "counter",
               "packets the data plane dropped, by reason as ipsec look names it",
               (({"reason": k}, n) for k, n in counters.dataplane.items() if k not in NOT_DROPS))
    out.family("fswan_dataplane_events_total", "counter",
               "packets held, passed, fragmented or that started keying",
               (({"event": k}, n) for k, n in counters.dataplane.items() if k in NOT_DROPS))
    out.family("fswan_pump_total", "counter", "the packet pump's counters (ipsec look's pump: line)",
               (({"counter": k}, n) for k, n in counters.pump.items()))
    return out.text()


# -- serving it ------------------------------------------------------------------

#: the content type of the text format
CONTENT_TYPE = b"text/plain; version=0.0.4; charset=utf-8"


class MetricsResource(Resource):
    """``/metrics`` (and ``/``): the page, rendered at each scrape."""

    isLeaf = True

    def __init__(self, stats: IkeStats, counters: Callable[[], DaemonCounters]) -> None:
        super().__init__()
        self.stats = stats
        self.counters = counters

    def render_GET(self, request: Request) -> bytes:
        if request.path not in (b"/", b"/metrics"):
            request.setResponseCode(404)
            return b"not found: try /metrics\n"
        counters = self.counters()
        self.stats.reconcile(s.serial for s in counters.states)
        request.setHeader(b"content-type", CONTENT_TYPE)
        return render(self.stats, counters).encode("utf-8")


class TcpReactor(Protocol):
    def listenTCP(self, port: int, factory: Site, backlog: int = 50,
                  interface: str = "") -> IListeningPort: ...


def parse_metrics_address(text: str) -> tuple[str, int]:
    """``ADDR:PORT`` (``[v6]:PORT`` for IPv6) -> (address, port); ValueError says why."""
    host, sep, port = text.strip().rpartition(":")
    if not sep or not host:
        raise ValueError(f"metrics address {text!r}: expected ADDR:PORT such as 127.0.0.1:9577")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        address = ip_address(host)
    except ValueError:
        raise ValueError(f"metrics address {text!r}: {host!r} is not an IP address") from None
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"metrics address {text!r}: port {port!r} is not 0..65535")
    return str(address), int(port)


class QuietSite(Site):
    """A scrape every few seconds is not worth a log line (nor is the factory's start)."""

    noisy = False

    def log(self, request: object) -> None:
        pass


class MetricsService(service.Service):
    """The HTTP endpoint, listening only on the configured address while the daemon runs."""

    def __init__(self, address: tuple[str, int], stats: IkeStats,
                 counters: Callable[[], DaemonCounters], reactor: TcpReactor,
                 log: PlutoLog) -> None:
        self.address = address
        self.site = QuietSite(MetricsResource(stats, counters))
        self.reactor = reactor
        self.log = log
        self.port: IListeningPort | None = None

    def startService(self) -> None:
        super().startService()
        host, port = self.address
        try:
            self.port = self.reactor.listenTCP(port, self.site, interface=host)
        except CannotListenError as error:
            self.log.log(f"cannot serve metrics on {host}:{port}: {error.socketError}",
                         RC.LOG_SERIOUS)
            return
        bound = self.port.getHost()
        self.log.log(f"metrics at http://{_url_host(host)}:{getattr(bound, 'port', port)}/metrics")

    def stopService(self) -> object:
        super().stopService()
        port, self.port = self.port, None
        return port.stopListening() if port is not None else None


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
