"""What the exchange modules and the engine's parts may use of the engine, as Protocols.

The mode modules (:mod:`~fswan.ike.main_mode`, :mod:`~fswan.ike.aggressive_mode`,
:mod:`~fswan.ike.quick_mode`, :mod:`~fswan.ike.informational`) and the engine's
own parts (:mod:`~fswan.ike.demux`, :mod:`~fswan.ike.timers`,
:mod:`~fswan.ike.lifecycle`) are handed the engine, but typed against the
narrow protocol below of what they actually call.  This module imports no
engine code, so none of them imports ``engine.py``: the dependency runs one
way, from the engine to its parts.
"""

from __future__ import annotations

from typing import Callable, Protocol

from fswan.ike.addresspool import AddressPool
from fswan.ike.events import ClientCheck
from fswan.ike.fragments import Reassembler
from fswan.ike.halfopen import HalfOpenPolicy
from fswan.ike.interfaces import EspActivity
from fswan.ike.outbox import Outbox
from fswan.ike.select import ConnEntry, Connections
from fswan.config.orient import OrientedConnection
from fswan.ike.state import (
    MessageDigest,
    PendingQuick,
    Phase1State,
    Phase2State,
    State,
    StateKind,
)
from fswan.ike.table import StateTable
from fswan.isakmp.message import Message
from fswan.isakmp.payloads import NotificationPayload

__all__ = [
    "EngineParts",
    "V2Hooks",
    "ExchangeContext",
    "InfoContext",
    "Phase1Context",
    "QuickContext",
    "SaLifecycle",
]


class ExchangeContext(Protocol):
    """Every exchange: randomness, logging, sending, the conns."""

    random_bytes: Callable[[int], bytes]
    select: Connections
    table: StateTable
    #: the clock (wall-clock seconds: certificates are checked against it)
    now: float

    def random(self, size: int) -> bytes: ...

    def log_state(self, st: State, text: str, rc: int = ...) -> None: ...

    def send(self, st: State, message: bytes) -> None: ...

    def send_reply(self, st: State, md: MessageDigest, message: bytes) -> None: ...

    def switch_connection(self, st: State, entry: ConnEntry) -> None: ...


class Phase1Context(ExchangeContext, Protocol):
    """Main and Aggressive Mode: NAT-T and the port float, INITIAL_CONTACT."""

    nat_traversal: bool

    def float_ports(self, st: Phase1State) -> None: ...

    def follow_peer(self, st: Phase1State, md: MessageDigest) -> None: ...

    def force_encapsulation(self, st: Phase1State) -> bool: ...

    def first_contact(self, st: Phase1State) -> bool: ...


class QuickContext(ExchangeContext, Protocol):
    """Quick Mode: its ISAKMP SA, a rekey's predecessor."""

    def isakmp_of(self, st: Phase2State) -> Phase1State: ...

    def note_authentic(self, p1: Phase1State, md: MessageDigest) -> None: ...

    def replaced_clients(self, st: Phase2State) -> tuple | None: ...


class InfoContext(Protocol):
    """Informational exchanges: notifications, deletes, DPD."""

    out: Outbox
    table: StateTable
    esp_activity: EspActivity | None
    natt_port: int

    def note_inbound(self, p1: Phase1State, md: MessageDigest) -> None: ...

    def log_state(self, st: State, text: str, rc: int = ...) -> None: ...

    def count(self, name: str) -> None: ...

    def send_oneshot(self, p1: Phase1State, message: bytes) -> None: ...

    def peer_error(self, p1: Phase1State, n: NotificationPayload) -> None: ...

    def initial_contact(self, p1: Phase1State) -> None: ...

    def delete_by_cookies(self, p1: Phase1State, cookies: bytes) -> None: ...

    def delete_by_spi(self, p1: Phase1State, spi: int) -> None: ...


class V2Hooks(Protocol):
    """IKEv2's part of the engine (``fswan/ikev2/hooks.py``), where IKEv1's parts hand
    an IKEv2 state or datagram over: they import no IKEv2 module."""

    def receive(self, eng: "EngineParts", data: bytes, local_addr: object, local_port: int,
                remote_addr: object, remote_port: int, now: float) -> None: ...

    def initiate(self, eng: "EngineParts", entry: ConnEntry, now: float, whack: object | None,
                 attempt: int, replaces: int | None) -> None: ...

    def delete_child(self, eng: "SaLifecycle", ike: Phase1State, child: Phase2State) -> None: ...

    def delete_ike(self, eng: "SaLifecycle", ike: Phase1State) -> None: ...

    def liveness(self, eng: "EngineParts", ike: Phase1State, now: float, delay: float,
                 timeout: float) -> bool: ...

    def replace(self, eng: "EngineParts", entry: ConnEntry, st: State, now: float) -> None: ...

    def give_up(self, eng: "EngineParts", entry: ConnEntry, st: State, now: float) -> None: ...

    def retransmit_request(self, eng: "EngineParts", ike: Phase1State, now: float) -> None: ...


class SaLifecycle(InfoContext, Protocol):
    """What the lifecycle of SAs (established, replaced, deleted) needs to start more work."""

    select: Connections
    uniqueids: bool
    keep_alive: float
    now: float
    #: Mode Config address pools by conn name (``ike/transaction.py``)
    pools: dict[str, AddressPool]

    @property
    def v2(self) -> V2Hooks: ...

    def fraction(self) -> float: ...

    def start_quick(
        self, entry: ConnEntry, p1: Phase1State, now: float, whack: object | None,
        attempt: int, replaces: int | None,
    ) -> Phase2State: ...


class EngineParts(SaLifecycle, Protocol):
    """The receive path and the timers: the exchange driver and (re)initiation."""

    halfopen: HalfOpenPolicy
    reassembler: Reassembler

    @property
    def busy(self) -> bool: ...

    def dispatch(self, st: State, p1: Phase1State, message: Message, md: MessageDigest) -> None: ...

    def start_phase1(
        self, entry: ConnEntry, now: float, whack: object | None,
        pending: list[PendingQuick], attempt: int, replaces: int | None,
    ) -> Phase1State | None: ...

    def initiate_entry(
        self, entry: ConnEntry, now: float, whack: object | None, attempt: int,
        replaces: int | None,
    ) -> None: ...

    def emit(self, st: State, message: bytes) -> None: ...

    def new_phase2(
        self, p1: Phase1State, kind: StateKind, connection: OrientedConnection, now: float,
        message_id: int,
    ) -> Phase2State: ...

    def hold_for_check(self, st: State, check: ClientCheck, md: MessageDigest) -> None: ...
