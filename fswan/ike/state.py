"""IKEv1 states: their numbers, pluto's story strings, and every transition.

Rules of this module (h11's ``_state.py`` in spirit):

* State numbers are Openswan's (they have Aggressive Mode): ``STATE_MAIN_R0``
  is 3 ... ``STATE_QUICK_R2`` is 20 (Openswan's informational pseudo-states
  21 and 22 are never entered here).  A log line announcing a new state uses
  rc ``100 + number``; established states use rc 4 (SUCCESS) instead.
* :class:`Transition` is one row of the microcode (pluto's ``smc[]``): which
  message a waiting state accepts and where it leads.  Each exchange module
  owns its rows (``main_mode.TRANSITIONS``, ...), naming its handler
  functions directly; the engine merges them into one table.  Established
  states have no row: what they receive (Quick Mode, Informational) starts a
  new exchange instead.  Initiating states (``*_I1``) are entered by an
  operator or a timer, not a message.

The ``Phase1State``/``Phase2State`` records hold one negotiation each (pluto's
``struct state``): keying material lives here, protocol logic does not.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple

from fswan.config.ids import Identity
from fswan.config.model import IPAddress, IPNetwork
from fswan.config.orient import OrientedConnection
from fswan.ike.crypto import Phase1Crypter, Phase1Keys
from fswan.ike.dh import DHKeyPair
from fswan.isakmp.constants import ExchangeType, PayloadType
from fswan.suites import EspKeys, EspProposal, IkeProposal

__all__ = [
    "ESTABLISHED",
    "STORIES",
    "Phase1State",
    "Phase2State",
    "State",
    "StateKind",
    "TimerEvent",
    "Transition",
]


class StateKind(enum.IntEnum):
    """Openswan's state numbers (``enum state_kind``)."""

    MAIN_R0 = 3
    MAIN_I1 = 4
    MAIN_R1 = 5
    MAIN_I2 = 6
    MAIN_R2 = 7
    MAIN_I3 = 8
    MAIN_R3 = 9
    MAIN_I4 = 10
    AGGR_R0 = 11
    AGGR_I1 = 12
    AGGR_R1 = 13
    AGGR_I2 = 14
    AGGR_R2 = 15
    QUICK_R0 = 16
    QUICK_I1 = 17
    QUICK_R1 = 18
    QUICK_I2 = 19
    QUICK_R2 = 20
    # IKEv2 (fswan/ikev2/), Libreswan's names; numbers of our own, after Openswan's
    PARENT_I1 = 31
    PARENT_R1 = 32
    PARENT_I2 = 33
    V2_ESTABLISHED_IKE_SA = 34
    V2_NEW_CHILD_I1 = 35
    V2_REKEY_CHILD_I1 = 36
    V2_REKEY_IKE_I1 = 37
    V2_ESTABLISHED_CHILD_SA = 38

    @property
    def label(self) -> str:
        """``STATE_MAIN_I1``, as pluto prints it."""
        return f"STATE_{self.name}"

    @property
    def story(self) -> str:
        return STORIES[self]

    @property
    def established(self) -> bool:
        return self in ESTABLISHED

    @property
    def is_v2(self) -> bool:
        return self >= StateKind.PARENT_I1

    @property
    def is_phase1(self) -> bool:
        return self <= StateKind.AGGR_R2

    @property
    def is_quick(self) -> bool:
        return StateKind.QUICK_R0 <= self <= StateKind.QUICK_R2

    @property
    def is_isakmp_established(self) -> bool:
        return self in (StateKind.MAIN_R3, StateKind.MAIN_I4, StateKind.AGGR_I2, StateKind.AGGR_R2,
                        StateKind.V2_ESTABLISHED_IKE_SA)

    @property
    def is_ipsec_established(self) -> bool:
        return self in (StateKind.QUICK_I2, StateKind.QUICK_R2, StateKind.V2_ESTABLISHED_CHILD_SA)


#: pluto's ``state_story[]``
STORIES: dict[StateKind, str] = {
    StateKind.MAIN_R0: "expecting MI1",
    StateKind.MAIN_I1: "sent MI1, expecting MR1",
    StateKind.MAIN_R1: "sent MR1, expecting MI2",
    StateKind.MAIN_I2: "sent MI2, expecting MR2",
    StateKind.MAIN_R2: "sent MR2, expecting MI3",
    StateKind.MAIN_I3: "sent MI3, expecting MR3",
    StateKind.MAIN_R3: "sent MR3, ISAKMP SA established",
    StateKind.MAIN_I4: "ISAKMP SA established",
    StateKind.AGGR_R0: "expecting AI1",
    StateKind.AGGR_I1: "sent AI1, expecting AR1",
    StateKind.AGGR_R1: "sent AR1, expecting AI2",
    StateKind.AGGR_I2: "sent AI2, ISAKMP SA established",
    StateKind.AGGR_R2: "ISAKMP SA established",
    StateKind.QUICK_R0: "expecting QI1",
    StateKind.QUICK_I1: "sent QI1, expecting QR1",
    StateKind.QUICK_R1: "sent QR1, inbound IPsec SA installed, expecting QI2",
    StateKind.QUICK_I2: "sent QI2, IPsec SA established",
    StateKind.QUICK_R2: "IPsec SA established",
    StateKind.PARENT_I1: "sent IKE_SA_INIT request",
    StateKind.PARENT_R1: "sent IKE_SA_INIT reply",
    StateKind.PARENT_I2: "sent IKE_AUTH request",
    StateKind.V2_ESTABLISHED_IKE_SA: "IKE SA established",
    StateKind.V2_NEW_CHILD_I1: "sent CREATE_CHILD_SA request for new IPsec SA",
    StateKind.V2_REKEY_CHILD_I1: "sent CREATE_CHILD_SA request to rekey IPsec SA",
    StateKind.V2_REKEY_IKE_I1: "sent CREATE_CHILD_SA request to rekey IKE SA",
    StateKind.V2_ESTABLISHED_CHILD_SA: "Child SA established",
}

#: states whose announcement is rc 4 (SUCCESS) rather than 100 + state
ESTABLISHED: frozenset[StateKind] = frozenset(
    {
        StateKind.MAIN_I4,
        StateKind.MAIN_R3,
        StateKind.AGGR_I2,
        StateKind.AGGR_R2,
        StateKind.QUICK_I2,
        StateKind.QUICK_R2,
        StateKind.V2_ESTABLISHED_IKE_SA,
        StateKind.V2_ESTABLISHED_CHILD_SA,
    }
)


@dataclass(frozen=True)
class Transition:
    """One row of the microcode: what ``state`` accepts and where it goes."""

    #: the exchange the message must belong to
    exchange: ExchangeType
    #: True: must be encrypted; False: must be clear; None: either (AI2)
    encrypted: bool | None
    #: payloads that must be present (HASH vs SIG is checked by the handler)
    required: tuple[PayloadType, ...]
    #: the mode module's function that checks the message and answers it:
    #: ``handler(engine, state, md)``
    handler: Callable[[Any, Any, "MessageDigest"], None]
    #: the state after the handler succeeds
    next: StateKind
    #: True when the handler sends a message that expects an answer (so the
    #: retransmission timer runs in ``next``)
    expects_reply: bool


class TimerEvent(str, enum.Enum):
    """pluto's per-state event kinds (the ``EVENT_`` names print in status)."""

    RETRANSMIT = "EVENT_RETRANSMIT"
    SA_REPLACE = "EVENT_SA_REPLACE"
    SA_EXPIRE = "EVENT_SA_EXPIRE"
    SO_DISCARD = "EVENT_SO_DISCARD"


# --------------------------------------------------------------------------
# state records


class PendingQuick(NamedTuple):
    """A Quick Mode waiting for its ISAKMP SA to be established."""

    #: the whack waiting for it, if any
    whack: object | None
    #: the IPsec SA it replaces (a rekey), if any
    replaces: int | None
    #: the conn it keys
    conn: str


#: fields whose new value may move a state's next deadline (a timer event, the
#: next DPD probe or verdict, the next NAT-T keepalive)
DEADLINE_FIELDS = frozenset({"event_at", "dpd_next", "dpd_pending_since", "keepalive_next",
                             "request_retransmit"})
#: fields the state table indexes states by (besides the wire's cookies and IDs)
INDEXED_FIELDS = frozenset({"connection", "peer_id", "remote_addr", "kind"})
#: what a state's watcher is told about
WATCHED_FIELDS = DEADLINE_FIELDS | INDEXED_FIELDS


@dataclass(eq=False)
class State:
    """What every negotiation has: identity, addressing, timer, retransmission."""

    serial: int
    kind: StateKind
    connection: OrientedConnection
    initiator: bool
    icookie: bytes
    rcookie: bytes
    local_addr: IPAddress
    local_port: int
    remote_addr: IPAddress
    remote_port: int
    created: float
    whack: object | None = None
    #: the one scheduled event and when it fires
    event: TimerEvent | None = None
    event_at: float | None = None
    #: timer-driven retransmissions of ``last_sent`` so far
    retransmits: int = 0
    #: the last message we sent (IKE bytes, without the non-ESP marker)
    last_sent: bytes | None = field(default=None, repr=False)
    #: the peer message ``last_sent`` answered (a duplicate of it is answered again)
    reply_to: bytes | None = field(default=None, repr=False)
    #: the last peer message we accepted (duplicates are recognised by bytes)
    last_received: bytes | None = field(default=None, repr=False)
    #: answers given to duplicates in this state (capped)
    duplicate_replies: int = 0
    #: which keying attempt this is (1 = first)
    attempt: int = 1
    #: serial of the state this one replaces on rekey
    replaces: int | None = None
    established_at: float | None = None
    #: hard lifetime once established (seconds)
    lifetime: float = 0.0
    #: the connection's rekey margin as applied to this state (for status)
    margin: float = 0.0
    #: the peer's proven phase-1 identity (copied to Quick Mode states)
    peer_id: Identity | None = None
    #: log nothing for this state: a stranger answered in busy mode, until it
    #: answers back (a flood must not become a flood of log lines)
    quiet: bool = False
    #: told when one of :data:`WATCHED_FIELDS` changes (``watcher.changed(state, field,
    #: old value)``): the state table, while the state is in it, keeps its indexes
    #: and timer queue true that way
    watcher: Any = field(default=None, repr=False)

    def __setattr__(self, name: str, value: Any) -> None:
        # every field is set through here (the dataclass __init__ too, ~400 times a
        # handshake), so straight into __dict__: no state field is a descriptor
        fields = self.__dict__
        if name in WATCHED_FIELDS:
            watcher = fields.get("watcher")
            if watcher is not None:
                old = fields.get(name)
                fields[name] = value
                if old is not value:
                    watcher.changed(self, name, old)
                return
        fields[name] = value

    @property
    def conn_name(self) -> str:
        return self.connection.name

    @property
    def cookies(self) -> bytes:
        return self.icookie + self.rcookie

    def set_event(self, event: TimerEvent | None, at: float | None) -> None:
        self.event = event
        self.event_at = at


@dataclass(eq=False)
class Phase1State(State):
    """An ISAKMP SA being negotiated or established (Main or Aggressive Mode)."""

    aggressive: bool = False
    #: OAKLEY_PRESHARED_KEY (1) or OAKLEY_RSA_SIG (3)
    auth: int = 1
    #: proposals we offered (initiator) or could accept (responder)
    offered: tuple[IkeProposal, ...] = ()
    proposal: IkeProposal | None = None
    #: the initiator's SA payload body, exactly as on the wire (for HASH_I/R)
    sa_i_b: bytes = field(default=b"", repr=False)
    dh: DHKeyPair | None = field(default=None, repr=False)
    ni_b: bytes = field(default=b"", repr=False)
    nr_b: bytes = field(default=b"", repr=False)
    g_xi: bytes = field(default=b"", repr=False)
    g_xr: bytes = field(default=b"", repr=False)
    g_xy: bytes = field(default=b"", repr=False)
    psk: bytes | None = field(default=None, repr=False)
    keys: Phase1Keys | None = field(default=None, repr=False)
    crypter: Phase1Crypter | None = field(default=None, repr=False)
    #: our ID payload body as sent (IDii_b / IDir_b)
    our_id_b: bytes = field(default=b"", repr=False)
    #: the peer's ID payload body as received (Aggressive Mode checks HASH_I late)
    peer_id_b: bytes = field(default=b"", repr=False)
    #: NAT-T: "rfc", "draft" or None (not negotiated)
    natt: str | None = None
    nat_us: bool = False
    nat_peer: bool = False
    #: the peer sent the RFC 3706 vendor ID
    peer_dpd: bool = False
    dpd_seq: int = 0
    dpd_next: float | None = None
    dpd_pending_since: float | None = None
    last_inbound: float = 0.0
    keepalive_next: float | None = None
    #: IKEv2: when our request that the established IKE SA itself waits for (a Delete) is
    #: sent again (its one event slot holds the rekey); None when there is none
    request_retransmit: float | None = None
    #: Quick Modes to start when this SA is established (for its conn, or for
    #: another conn to the same peer that shares this negotiation)
    pending: list[PendingQuick] = field(default_factory=list)
    #: message IDs used on this SA (RFC 2408: each exchange its own)
    message_ids: set[int] = field(default_factory=set)
    #: vendor IDs the peer sent (names, for status)
    peer_vendors: tuple[str, ...] = ()
    #: IKE fragmentation (``ike/fragments.py``): the peer announced it (vendor ID),
    #: the peer sent us fragments (then we answer in fragments too, as Libreswan
    #: does), we sent fragments (logged once)
    peer_fragmentation: bool = False
    peer_sent_fragments: bool = False
    sent_fragments: bool = False
    #: certificates: the peer sent a CR (``leftsendcert=ifasked``); its verified certificate
    peer_asked_cert: bool = False
    peer_cert: Any = field(default=None, repr=False)
    #: XAUTH and Mode Config after phase 1 (``ike/transaction.py``): progress, the user
    #: the server accepted, the inner address (``virtual_ip_ours``: we are the client)
    transaction: Any = field(default=None, repr=False)
    xauth_user: str | None = None
    #: IKEv2's CP lease key in the conn's pool (IKEv1's lease is its transaction's)
    lease_key: str | None = None
    virtual_ip: Any = None
    virtual_ip_ours: bool = False
    #: informational refusals already logged for this SA (each is logged once)
    refusals: set[str] = field(default_factory=set, repr=False)


    @property
    def ready(self) -> bool:
        """Quick Modes may run: no XAUTH/Mode Config, or it has finished."""
        return self.transaction is None or self.transaction.done

    def dpd_deadline(self, timeout: float) -> float | None:
        """The next DPD moment: a probe, or the verdict on an unanswered one."""
        times = []
        if self.dpd_next is not None:
            times.append(self.dpd_next)
        if self.dpd_pending_since is not None:
            times.append(self.dpd_pending_since + timeout)
        return min(times) if times else None


@dataclass(eq=False)
class Phase2State(State):
    """A Quick Mode negotiation and, once established, the ESP SA pair it made."""

    isakmp_serial: int = 0
    message_id: int = 0
    our_spi: int = 0
    peer_spi: int = 0
    offered: tuple[EspProposal, ...] = ()
    proposal: EspProposal | None = None
    pfs_group: int | None = None
    dh: DHKeyPair | None = field(default=None, repr=False)
    ni_b: bytes = field(default=b"", repr=False)
    nr_b: bytes = field(default=b"", repr=False)
    g_qm_xy: bytes | None = field(default=None, repr=False)
    #: the encapsulation mode number negotiated (1/2/3/4/61443/61444)
    encapsulation: int = 1
    tunnel: bool = True
    udp: bool = False
    our_client: IPNetwork | None = None
    peer_client: IPNetwork | None = None
    #: the ID payloads sent/received (None for host-to-host without IDs)
    id_ci: Any = None
    id_cr: Any = None
    #: RFC 3947 NAT-OA of a UDP-encapsulated transport SA: the peer's own address and
    #: ours as the peer sees them (what its TCP/UDP checksums were computed over)
    nat_oa: tuple[IPAddress, IPAddress] | None = None
    inbound_keys: EspKeys | None = field(default=None, repr=False)
    outbound_keys: EspKeys | None = field(default=None, repr=False)
    installed: bool = False


# --------------------------------------------------------------------------
# what a handler gets and what it may raise


class ExchangeError(Exception):
    """A handler could not accept a message.

    ``lines`` are logged (rc ``rc``); when ``notify`` is set the peer is told
    (in clear before phase-1 keys exist, encrypted afterwards).  The state is
    kept, so a retransmission of a good message can still succeed, unless
    ``delete`` is set.
    """

    def __init__(
        self, *lines: str, notify: int | None = None, rc: int = 3, delete: bool = False
    ) -> None:
        super().__init__(lines[0] if lines else "exchange failed")
        self.lines = list(lines)
        self.notify = notify
        self.rc = rc
        self.delete = delete


class KeyPending(Exception):
    """A handler needs the peer's public key for ``identity``, which the shell has to
    fetch (DNS): the message is held, not refused."""

    def __init__(self, identity: Any) -> None:
        super().__init__(f"waiting for the public key of {identity}")
        self.identity = identity


class ClientCheckPending(Exception):
    """No conn covers a Quick Mode's clients and the shell may know one
    (``events.ClientCheckNeeded``): the message is held, not refused."""

    def __init__(self, check: Any) -> None:
        super().__init__(f"asking about clients {check.our_client} and {check.peer_client}")
        self.check = check


@dataclass(eq=False)
class MessageDigest:
    """One received message, decoded (and decrypted), with where it came from (pluto's ``md``)."""

    header: Any
    payloads: list[Any]
    #: the IKE message as received (no non-ESP marker): duplicate detection
    raw: bytes = field(repr=False)
    local_addr: IPAddress
    local_port: int
    remote_addr: IPAddress
    remote_port: int
    now: float
    #: the decrypted body, padding included (None for clear messages)
    plain: bytes | None = field(default=None, repr=False)
    #: how many IKE fragments the message came in (0: whole)
    fragments: int = 0
    #: responder connection candidates found for a first message (``select.Candidates``:
    #: iterable, truthy when any, indexable)
    candidates: Any = field(default_factory=list)

    @property
    def peer(self) -> str:
        """``ip:port`` of the sender, as log lines name it."""
        return f"{self.remote_addr}:{self.remote_port}"

    def get(self, kind: type) -> Any:
        """The first payload of that class, or None."""
        for payload in self.payloads:
            if isinstance(payload, kind):
                return payload
        return None

    def all(self, kind: type) -> list[Any]:
        return [p for p in self.payloads if isinstance(p, kind)]

    def has(self, payload_type: int) -> bool:
        return any(p.payload_type == payload_type for p in self.payloads)

    def after_first(self) -> bytes:
        """The payload chain after the first payload, padding excluded (HASH(1)/(2) input)."""
        body = self.plain if self.plain is not None else b""
        offset = 0
        current = int(self.header.next_payload)
        first_end = None
        while current != 0 and offset + 4 <= len(body):
            length = int.from_bytes(body[offset + 2 : offset + 4], "big")
            current = body[offset]
            offset += length
            if first_end is None:
                first_end = offset
        return body[first_end or 0 : offset]
