"""The sans-IO IKEv1 engine: its API to the shell, and the exchange driver.

Rules of this module (aioquic's ``QuicConnection`` contract):

* Three inputs -- operator commands (:meth:`IkeEngine.initiate`,
  :meth:`~IkeEngine.terminate`, ...), received datagrams
  (:meth:`~IkeEngine.receive_datagram`) and timer expiries
  (:meth:`~IkeEngine.handle_timer`) -- and three outputs, drained by the
  shell after every input: :meth:`~IkeEngine.datagrams_to_send`,
  :meth:`~IkeEngine.next_events` and :meth:`~IkeEngine.get_timer`.
  No sockets, no clock (``now`` is an argument), randomness only through the
  injected ``random_bytes``.
* Nothing a peer sends can raise out of ``receive_datagram``: a problem is
  counted in :attr:`IkeEngine.counters` and logged once, naming the peer
  ``ip:port``.  A message that fails its checks leaves the state as it was
  (the CBC chain is rewound), so a good retransmission still works.
* The shell is never called back: what the engine needs of it comes out as
  events (``PeerKeyNeeded``, ``ClientCheckNeeded``: the message is held until
  :meth:`~IkeEngine.set_peer_keys` / :meth:`~IkeEngine.client_checked`), and
  the one thing it reads (ESP activity, for DPD) is an interface passed at
  construction.

The engine's parts, each a module of its own (see ``docs/ARCHITECTURE.md``):
:mod:`~fswan.ike.demux` (datagram → state), :mod:`~fswan.ike.table` (states and
their indexes), :mod:`~fswan.ike.select` (conns, secrets, keys),
:mod:`~fswan.ike.timers` (retransmit, rekey, expiry, DPD, keepalives),
:mod:`~fswan.ike.lifecycle` (established, deleted, what the peer says of its
SAs), :mod:`~fswan.ike.status` (states as data).  What a message means is in
the exchange modules (:mod:`~fswan.ike.main_mode`,
:mod:`~fswan.ike.aggressive_mode`, :mod:`~fswan.ike.quick_mode`,
:mod:`~fswan.ike.informational`), which own their transition rows and see the
engine through the protocols of :mod:`~fswan.ike.context`.  This module runs
the rows (pluto's ``smc[]`` interpreter) and starts exchanges.

``local_addr`` may be the wildcard address when the shell cannot tell which
address a datagram arrived on; the connection's own host address is used then.
An authenticated error notification (AUTHENTICATION_FAILED,
INVALID_ID_INFORMATION, ...) during phase 1 ends that attempt without a retry.
Many conns to one peer: a Quick Mode waits for a Main Mode under way to the
same peer with the same IDs and auth, so conns started together share one ISAKMP
SA.  ``uniqueids`` and INITIAL_CONTACT: see ``lifecycle.unique``/``initial_contact``.
IKEv2 conns and datagrams go to ``self.v2`` (``fswan/ikev2/hooks.py``).
"""

from __future__ import annotations

import os
from typing import Any, Callable

from fswan.config.ids import Identity
from fswan.config.model import Encapsulation, IPNetwork
from fswan.config.orient import OrientedConnection
from fswan.config.secrets import Secrets
from fswan.config.virtual import VirtualPrivate
from fswan.ike import aggressive_mode, demux, fragments, informational, lifecycle, main_mode
from fswan.ike import quick_mode, status, timers, transaction
from fswan.ike.addresspool import AddressPool
from fswan.ike.certauth import NO_CREDENTIALS, Credentials, TrustStore
from fswan.ike.crypto import DecryptError
from fswan.ike.events import (
    ClientCheck,
    ClientCheckNeeded,
    Datagram,
    EngineEvent,
    LogLine,
    PeerKeyNeeded,
)
from fswan.ike.halfopen import BUSY_DISCARD, DdosMode, HalfOpenPolicy
from fswan.ike.interfaces import EspActivity
from fswan.ike.outbox import Outbox
from fswan.ike.select import ConnEntry, Connections, ids_match
from fswan.ike.state import (
    ClientCheckPending,
    ExchangeError,
    KeyPending,
    MessageDigest,
    PendingQuick,
    Phase1State,
    Phase2State,
    State,
    StateKind,
    TimerEvent,
    Transition,
)
from fswan.ike.table import ZERO_COOKIE, StateTable, is_r0
from fswan.ikev2.hooks import Ikev2
from fswan.ike.timers import MAX_RETRANSMITS, RETRANSMIT_DELAY
from fswan.isakmp.constants import NATT_PORT, NotifyType, OakleyAuth, name_of
from fswan.isakmp.errors import MalformedPacket
from fswan.isakmp.message import Message, add_non_esp_marker, decode_payloads
from fswan.isakmp.payloads import NotificationPayload, payload_name
from fswan.whackproto import RC

__all__ = ["IkeEngine", "MAX_RETRANSMITS", "RETRANSMIT_DELAY", "TRANSITIONS"]

#: answers to duplicates of one peer message
MAX_DUPLICATE_REPLIES = 3
#: our Phase 1 negotiations under way at once; more wait their turn, so a daemon
#: starting thousands of conns sends a steady stream, not a burst peers must drop
MAX_INITIATING = 64

#: the microcode: every exchange module's rows, by the state that waits for the message
TRANSITIONS: dict[StateKind, Transition] = {
    **main_mode.TRANSITIONS,
    **aggressive_mode.TRANSITIONS,
    **quick_mode.TRANSITIONS,
}


class IkeEngine:
    """IKEv1 for every connection of one daemon (pluto's state table).

    ``counters`` counts what happened to received datagrams ("malformed",
    "unknown_cookie", "retransmits_received", ...) and a few things sent
    ("retransmits_sent", "keepalives_sent", "dpd_sent").
    """

    def __init__(
        self,
        secrets: Secrets,
        *,
        uniqueids: bool = True,
        random_bytes: Callable[[int], bytes] = os.urandom,
        ike_port: int = 500,
        natt_port: int = NATT_PORT,
        keep_alive: float = 20.0,
        esp_activity: EspActivity | None = None,
    ) -> None:
        self.uniqueids = uniqueids
        self.random_bytes = random_bytes
        self.ike_port = ike_port
        self.natt_port = natt_port
        self.keep_alive = keep_alive
        #: the data plane's "when did ESP last arrive on this conn's SAs": DPD probes
        #: only a peer that is silent on IKE *and* ESP (None: no data plane)
        self.esp_activity = esp_activity
        #: ``nat_traversal=`` of config setup: announce and use NAT-T
        self.nat_traversal = True
        self.out = Outbox()
        self.table = StateTable(self.random)
        self.select = Connections(secrets, self.out)
        #: messages waiting for the shell: a peer key (by ID) or a client check
        self.held = demux.HeldMessages()
        #: how many unverified half-open responder states we keep, and busy mode
        self.halfopen = HalfOpenPolicy()
        #: the peers' IKE fragments being put together; our own are cut to
        #: datagrams of ``fragment_size`` bytes (``ike_fragment_size=``)
        self.reassembler = fragments.Reassembler(self.out.count)
        self.fragment_size = fragments.DEFAULT_FRAGMENT_SIZE
        #: Main Modes waiting for one of the MAX_INITIATING places, by conn in arrival
        #: order: (whack, queued Quick Modes, attempt, replaces)
        self._waiting: dict[str, tuple[object | None, list[PendingQuick], int, int | None]] = {}
        #: the ``now`` of the input being handled
        self.now = 0.0
        self.pools: dict[str, AddressPool] = {}  # Mode Config's, by conn (ike/transaction.py)
        self.v2 = Ikev2()  # IKEv2's exchanges (fswan/ikev2/)

    @property
    def counters(self) -> dict[str, int]:
        return self.out.counters

    @property
    def virtual_private(self) -> VirtualPrivate:
        """``virtual_private=`` of config setup: what ``vhost:%priv`` peers may claim."""
        return self.select.virtual_private

    @virtual_private.setter
    def virtual_private(self, value: VirtualPrivate) -> None:
        self.select.virtual_private = value

    # ------------------------------------------------------------------
    # configuration

    def add_connection(
        self, oriented: OrientedConnection, creds: Credentials = NO_CREDENTIALS
    ) -> None:
        """Add (or replace the config of) a connection; ProposalError for a bad ike=/esp=."""
        self.select.add(oriented, creds)

    def set_trust(self, trust: TrustStore | None, *, strict_crl: bool = False,
                  nocrsend: bool = False) -> None:
        """The trust anchors and CRLs peers' certificates are checked against."""
        self.select.trust = trust
        self.select.strict_crl = strict_crl
        self.select.nocrsend = nocrsend

    def remove_connection(self, name: str, now: float) -> None:
        """Delete the connection's states (Delete payloads to the peer), then forget it."""
        self.now = now
        if name not in self.select:
            return
        lifecycle.delete_conn_states(self, name, "connection removed", notify_peer=True)
        self.select.remove(name)

    def apply_setup(
        self,
        *,
        uniqueids: bool,
        keep_alive: float,
        nat_traversal: bool,
        virtual_private: VirtualPrivate,
        ddos_mode: DdosMode = DdosMode.AUTO,
        ddos_ike_threshold: int = 25000,
        max_halfopen_ike: int = 50000,
        ike_fragment_size: int = fragments.DEFAULT_FRAGMENT_SIZE,
    ) -> None:
        """The ``config setup`` values the engine acts on (at start and on reload)."""
        self.uniqueids = uniqueids
        self.keep_alive = keep_alive
        self.nat_traversal = nat_traversal
        self.virtual_private = virtual_private
        self.halfopen.mode = ddos_mode
        self.halfopen.threshold = ddos_ike_threshold
        self.halfopen.max_half_open = max_halfopen_ike
        self.fragment_size = ike_fragment_size

    @property
    def half_open(self) -> int:
        """Responder states whose peer has not yet answered our first reply."""
        return self.table.unverified_count()

    @property
    def busy(self) -> bool:
        """Busy mode (``halfopen``): strangers get one answer and a short life."""
        return self.halfopen.busy(self.half_open, self.now)

    def set_secrets(self, secrets: Secrets) -> None:
        self.select.set_secrets(secrets)

    def set_peer_keys(self, identity: Identity, keys: list, now: float | None = None) -> None:
        """Public keys for an ID learnt outside ipsec.conf (DNS for ``%dns*`` keys,
        like ``whack --keyid ID --pubkeyrsa``).  An empty list says the lookup
        failed.  Messages held for this ID's key (PeerKeyNeeded) are processed now."""
        self.select.store_peer_keys(identity, keys)
        self._replay(("key", identity), self.now if now is None else now)

    def peer_key_source(self, name: str) -> str | None:
        """``%dns``/``%dnsonload``/``%dnsondemand`` when the conn's peer key comes from DNS."""
        return self.select.peer_key_source(name)

    def enable_client_checks(self, enabled: bool) -> None:
        """Ask the shell (ClientCheckNeeded) before refusing a Quick Mode whose clients
        no conn covers: opportunistic encryption's responder instances."""
        self.select.client_checks = enabled

    @property
    def client_checks(self) -> bool:
        return self.select.client_checks

    def client_checked(self, check: ClientCheck, now: float) -> None:
        """The shell's answer to ClientCheckNeeded: it has added the instance conn
        for ``check`` (or decided not to); the held messages are processed again."""
        self.select.checks_answered.add(check)
        try:
            self._replay(("check", check), now)
        finally:
            self.select.checks_answered.discard(check)

    def xauth_checked(self, serial: int, ok: bool, now: float) -> None:
        """The shell's verdict on an ``XauthCheckNeeded`` password (maybe much later)."""
        self.now = now
        p1 = self.table.isakmp(serial)
        if p1 is not None:
            transaction.checked(self, p1, ok)
            lifecycle.after_transaction(self, p1)

    def _replay(self, key: tuple, now: float) -> None:
        for data, local_addr, local_port, remote_addr, remote_port in self.held.release(key):
            self.receive_datagram(data, local_addr, local_port, remote_addr, remote_port, now)

    def _hold_for_key(self, st: State, identity: Identity, md: MessageDigest) -> None:
        """Keep the message until the shell answers PeerKeyNeeded (one request per ID)."""
        self.out.count("held_for_key")
        if self.held.hold(("key", identity), md, self.natt_port):
            self.log_state(st, f"fetching the public key of '{identity}' (DNS)")
            self.out.event(PeerKeyNeeded(st.conn_name, st.serial, identity))

    def hold_for_check(self, st: State, check: ClientCheck, md: MessageDigest) -> None:
        """Keep the message until the shell answers ClientCheckNeeded (one request per check)."""
        if self.held.hold(("check", check), md, self.natt_port):
            self.out.event(ClientCheckNeeded(st.conn_name, st.serial, check))

    # ------------------------------------------------------------------
    # operator commands

    def initiate(self, name: str, now: float, whack: object | None = None) -> None:
        """Bring the connection up: Main (or Aggressive) Mode if needed, then Quick Mode."""
        self.now = now
        entry = self.select.get(name)
        if entry is None:
            self.out.event(
                LogLine(f'no connection named "{name}"', RC.UNKNOWN_NAME, None, None, whack)
            )
            self.out.release(whack, False)
            return
        self.initiate_entry(entry, now, whack, attempt=1, replaces=None)
        self._start_waiting(now)

    def terminate(self, name: str, now: float, whack: object | None = None) -> None:
        """Delete the connection's IPsec SAs, then its ISAKMP SAs, telling the peer."""
        self.now = now
        if name not in self.select:
            self.out.event(
                LogLine(f'no connection named "{name}"', RC.UNKNOWN_NAME, None, None, whack)
            )
            self.out.release(whack, False)
            return
        self.out.event(LogLine("terminating SAs using this connection", RC.LOG, name, None, whack))
        lifecycle.delete_conn_states(self, name, "terminated", notify_peer=True)
        self.out.release(whack, True)

    def delete_state(self, serial: int, now: float) -> bool:
        """``whack --deletestate N``: delete that one state, telling the peer; as in
        pluto, the IPsec SAs of a deleted ISAKMP SA live on.  False: no such state."""
        self.now = now
        st = self.table.get(serial)
        if st is None:
            return False
        lifecycle.delete_state(self, st, "deleted by whack", notify_peer=True)
        return True

    # ------------------------------------------------------------------
    # inputs and outputs

    def receive_datagram(
        self,
        data: bytes,
        local_addr: Any,
        local_port: int,
        remote_addr: Any,
        remote_port: int,
        now: float,
    ) -> None:
        """Handle one UDP payload for port 500 or 4500 (still with the non-ESP marker)."""
        demux.receive_datagram(self, data, local_addr, local_port, remote_addr, remote_port, now)
        self._start_waiting(now)

    def handle_timer(self, now: float) -> None:
        """Run every event due at ``now``."""
        timers.handle_timer(self, now)
        self._start_waiting(now)

    def get_timer(self) -> float | None:
        return timers.next_timer(self)

    def datagrams_to_send(self) -> list[Datagram]:
        out, self.out.datagrams = self.out.datagrams, []
        self.counters["datagrams_sent"] += len(out)
        return out

    def next_events(self) -> list[EngineEvent]:
        out, self.out.events = self.out.events, []
        return out

    def newest(self, name: str) -> tuple[int, int]:
        entry = self.select.get(name)
        if entry is None:
            return (0, 0)
        return (
            entry.newest_isakmp if entry.newest_isakmp in self.table else 0,
            entry.newest_ipsec if entry.newest_ipsec in self.table else 0,
        )

    def snapshot(self, now: float) -> list[status.StateSnapshot]:
        """Every state as data, for ``--status`` and ``--status --json``."""
        return status.snapshot(self.table, self.select, now)

    def state_lines(self, now: float) -> list[str]:
        """pluto's ``--status`` state lines (without the ``000 `` prefix)."""
        return status.state_lines(self.snapshot(now))

    def state_dicts(self, now: float) -> list[dict]:
        """The same facts as :meth:`state_lines`, for JSON."""
        return status.state_dicts(self.snapshot(now))

    # ------------------------------------------------------------------
    # the microcode interpreter

    def dispatch(self, st: State, p1: Phase1State, message: Message, md: MessageDigest) -> None:
        """Run ``st``'s transition row on ``md`` (decrypting it with ``p1``'s keys)."""
        header = md.header
        if md.local_addr.is_unspecified:
            md.local_addr = st.local_addr
        if st.reply_to is not None and md.raw == st.reply_to:
            self._duplicate(st)
            return
        if st.last_received is not None and md.raw == st.last_received:
            self.count("duplicates_ignored")
            return
        transition = TRANSITIONS.get(st.kind)
        if (
            transition is None
            or transition.exchange != header.exchange
            or (transition.encrypted is not None and transition.encrypted != header.encrypted)
        ):
            self.count("unexpected")
            self.log_state(
                st,
                f"packet from {md.peer}: unexpected "
                f"{'encrypted ' if header.encrypted else ''}"
                f"{name_of(header.exchange)} message in {st.kind.label}; dropped",
            )
            if is_r0(st):
                self.table.forget(st)
            return
        saved_iv = None
        if header.encrypted:
            if p1.crypter is None:
                self.count("unexpected")
                self.log_state(st, f"packet from {md.peer}: encrypted message before keys exist")
                return
            saved_iv = p1.crypter.iv(header.message_id)
            try:
                plain = p1.crypter.decrypt(header.message_id, message.encrypted_body or b"")
                md.payloads = decode_payloads(header.next_payload, plain)
            except (DecryptError, MalformedPacket) as error:
                p1.crypter.set_iv(header.message_id, saved_iv)
                self.count("decrypt_failed" if isinstance(error, DecryptError) else "malformed")
                reason = error.reason if isinstance(error, MalformedPacket) else str(error)
                hint = (
                    "probable authentication failure (mismatch of preshared secrets?): "
                    if st.kind.is_phase1
                    else ""
                )
                self.log_state(st, f"packet from {md.peer}: {hint}{reason}", RC.LOG_SERIOUS)
                if st.kind is StateKind.QUICK_R0:
                    self.table.forget(st)
                return
            md.plain = plain
        self._run(st, p1, transition, md, saved_iv)

    def _run(
        self,
        st: State,
        p1: Phase1State,
        transition: Transition,
        md: MessageDigest,
        saved_iv: bytes | None,
    ) -> None:
        missing = [t for t in transition.required if not md.has(t)]
        try:
            if missing:
                raise ExchangeError(
                    f"missing {payload_name(missing[0])} payload in {st.kind.label} input",
                    notify=NotifyType.PAYLOAD_MALFORMED,
                )
            transition.handler(self, st, md)
        except (ExchangeError, KeyPending, ClientCheckPending) as stop:
            if saved_iv is not None and p1.crypter is not None:
                p1.crypter.set_iv(md.header.message_id, saved_iv)
            if isinstance(stop, ExchangeError):
                self._fail(st, stop, md)
            elif isinstance(stop, KeyPending):
                self._hold_for_key(st, stop.identity, md)
            else:
                self.hold_for_check(st, stop.check, md)
            return
        st.last_received = md.raw
        st.duplicate_replies = 0
        if p1.kind.is_isakmp_established and p1 is not st:
            self.note_inbound(p1, md)
        st.kind = transition.next
        if transition.expects_reply:
            st.retransmits = 0
            if not st.initiator and self.table.is_unverified(st) and self.busy:
                # busy: one answer to a stranger, no retransmissions, a short life
                st.set_event(TimerEvent.SO_DISCARD, md.now + BUSY_DISCARD)
            else:
                st.set_event(TimerEvent.RETRANSMIT, md.now + RETRANSMIT_DELAY)
        else:
            st.set_event(None, None)
        if transition.next.is_isakmp_established:
            assert isinstance(st, Phase1State)
            lifecycle.isakmp_established(self, st, md)
        elif transition.next.is_ipsec_established:
            assert isinstance(st, Phase2State)
            lifecycle.ipsec_established(self, st)
        else:
            lifecycle.announce(self, st)

    def _fail(self, st: State, error: ExchangeError, md: MessageDigest) -> None:
        self.count("rejected")
        for line in error.lines:
            self.log_state(st, line, error.rc)
        if error.notify is not None and not st.initiator:
            informational.notify_refusal(self, st, error.notify, md)
        if is_r0(st):
            self.table.forget(st)
        elif error.delete:
            lifecycle.delete_state(self, st, "negotiation failed", notify_peer=False)

    def _duplicate(self, st: State) -> None:
        self.count("retransmits_received")
        if st.duplicate_replies >= MAX_DUPLICATE_REPLIES or st.last_sent is None:
            self.log_state(st, "discarding duplicate packet -- exhausted retransmission")
            return
        st.duplicate_replies += 1
        self.log_state(
            st, f"retransmitting in response to duplicate packet; already {st.kind.label}"
        )
        self.emit(st, st.last_sent)

    # ------------------------------------------------------------------
    # initiation

    def initiate_entry(
        self, entry: ConnEntry, now: float, whack: object | None, attempt: int,
        replaces: int | None,
    ) -> None:
        """Quick Mode over a usable ISAKMP SA, after the one being negotiated, or after a new
        one; for a conn that initiates IKEv2, a Child SA (``fswan/ikev2/hooks.py``)."""
        if entry.conn.initiates_ikev2:
            return self.v2.initiate(self, entry, now, whack, attempt, replaces)
        p1 = self._usable_isakmp(entry)
        if p1 is not None:  # (after XAUTH / Mode Config if those have not finished)
            if p1.ready:
                self.start_quick(entry, p1, now, whack, attempt, replaces)
            else:
                p1.pending.append(PendingQuick(whack, replaces, entry.name))
            return
        if entry.oriented.that.host is None:
            self.out.event(
                LogLine(
                    "cannot initiate connection without knowing peer IP address",
                    RC.NOPEERIP,
                    entry.name,
                    None,
                    whack,
                )
            )
            self.out.release(whack, False)
            return
        st = self._negotiating_isakmp(entry)
        if st is not None:
            st.pending.append(PendingQuick(whack, replaces, entry.name))
            if whack is not None and st.whack is None:
                st.whack = whack
            return
        self.start_phase1(entry, now, whack, [PendingQuick(whack, replaces, entry.name)],
                          attempt, None)

    def _negotiating_isakmp(self, entry: ConnEntry) -> Phase1State | None:
        """Our Main/Aggressive Mode under way that this conn's Quick Mode can wait for: its
        own, or another conn's to the same peer with the same IDs and auth (pluto's pending)."""
        own = self.table.initiating_isakmp(entry.name)
        if own is not None:
            return own
        o = entry.oriented
        for st in self.table.at(o.that.host) if o.that.host is not None else []:
            if (
                isinstance(st, Phase1State)
                and st.initiator
                and not st.kind.established
                and not st.kind.is_v2
                and st.local_addr == o.this.host
                and st.connection.this.id == o.this.id
                and st.connection.that.id == o.that.id
                and st.auth in entry.auths
                and bool(st.aggressive) == bool(entry.conn.aggrmode)
            ):
                return st
        return None

    def _usable_isakmp(self, entry: ConnEntry) -> Phase1State | None:
        newest = self.table.isakmp(entry.newest_isakmp)
        if newest is not None and newest.kind.is_isakmp_established and not newest.kind.is_v2:
            return newest
        that = entry.oriented.that
        if that.host is None:
            return None
        near = self.table.at(that.host) if that.id.is_any else self.table.of_peer(that.id)
        for st in reversed(near):
            if (
                isinstance(st, Phase1State)
                and st.kind.is_isakmp_established
                and not st.kind.is_v2
                and st.remote_addr == that.host
                and st.local_addr == entry.oriented.this.host
                and st.connection.this.id == entry.oriented.this.id
                and st.peer_id is not None
                and ids_match(that.id, st.peer_id)
                and st.auth in entry.auths
            ):
                return st
        return None

    def start_phase1(
        self,
        entry: ConnEntry,
        now: float,
        whack: object | None,
        pending: list[PendingQuick],
        attempt: int,
        replaces: int | None,
    ) -> Phase1State | None:
        """A new Main (or Aggressive) Mode, or a place in the queue when MAX_INITIATING
        are under way (None)."""
        if self.table.initiating_count() >= MAX_INITIATING:
            waiting = self._waiting.get(entry.name)
            if waiting is not None:
                waiting[1].extend(pending)
                return None
            self._waiting[entry.name] = (whack, list(pending), attempt, replaces)
            self.out.log_conn(entry.name, f"initiation queued: {MAX_INITIATING} Main Modes "
                                          "under way", RC.COMMENT)
            return None
        oriented = entry.oriented
        assert oriented.this.host is not None and oriented.that.host is not None
        aggressive = bool(entry.conn.aggrmode)
        st = Phase1State(
            serial=self.table.next_serial(),
            kind=StateKind.AGGR_I1 if aggressive else StateKind.MAIN_I1,
            connection=oriented,
            initiator=True,
            icookie=self.table.new_cookie(),
            rcookie=ZERO_COOKIE,
            local_addr=oriented.this.host,
            local_port=self.ike_port,
            remote_addr=oriented.that.host,
            remote_port=oriented.that.end.ikeport,
            created=now,
            whack=whack,
            attempt=attempt,
            replaces=replaces,
            aggressive=aggressive,
            pending=list(pending),
        )
        st.auth = entry.auths[0] if entry.auths else OakleyAuth.OAKLEY_PRESHARED_KEY
        self.table.add_initiator(st)
        (aggressive_mode if aggressive else main_mode).initiate(self, st)
        self.log_state(st, f"{st.kind.label}: initiate", RC.NEW_STATE + int(st.kind))
        st.set_event(TimerEvent.RETRANSMIT, now + RETRANSMIT_DELAY)
        return st

    def _start_waiting(self, now: float) -> None:
        """Queued initiations take the places that came free."""
        while self._waiting and self.table.initiating_count() < MAX_INITIATING:
            name = next(iter(self._waiting))
            whack, pending, attempt, replaces = self._waiting.pop(name)
            entry = self.select.get(name)
            if entry is None:  # deleted while it waited
                for quick in pending:
                    self.out.release(quick.whack, False)
                continue
            self.start_phase1(entry, now, whack, pending, attempt, replaces)

    def start_quick(
        self,
        entry: ConnEntry,
        p1: Phase1State,
        now: float,
        whack: object | None,
        attempt: int,
        replaces: int | None,
    ) -> Phase2State:
        st = self.new_phase2(
            p1, StateKind.QUICK_I1, entry.oriented, now, self.table.new_message_id(p1),
            whack=whack, attempt=attempt, replaces=replaces,
        )
        quick_mode.initiate(self, st, p1)
        suffix = f" to replace #{replaces}" if replaces else ""
        self.log_state(st, f"{st.kind.label}: initiate{suffix}", RC.NEW_STATE + int(st.kind))
        st.set_event(TimerEvent.RETRANSMIT, now + RETRANSMIT_DELAY)
        return st

    def new_phase2(
        self, p1: Phase1State, kind: StateKind, connection: OrientedConnection, now: float,
        message_id: int, whack: object | None = None, attempt: int = 1,
        replaces: int | None = None,
    ) -> Phase2State:
        """A Quick Mode state riding on ``p1``: it shares p1's cookies, addresses and peer."""
        st = Phase2State(
            serial=self.table.next_serial(),
            kind=kind,
            connection=connection,
            initiator=kind is StateKind.QUICK_I1,
            icookie=p1.icookie,
            rcookie=p1.rcookie,
            local_addr=p1.local_addr,
            local_port=p1.local_port,
            remote_addr=p1.remote_addr,
            remote_port=p1.remote_port,
            created=now,
            whack=whack,
            attempt=attempt,
            replaces=replaces,
            isakmp_serial=p1.serial,
            message_id=message_id,
            peer_id=p1.peer_id,
        )
        self.table.add_quick(st)
        return st

    # ------------------------------------------------------------------
    # for the exchange modules and the engine's parts (see fswan.ike.context)

    def log_state(self, st: State, text: str, rc: int = RC.LOG) -> None:
        self.out.log_state(st, text, rc)

    def count(self, name: str) -> None:
        self.out.count(name)

    def random(self, size: int) -> bytes:
        data = self.random_bytes(size)
        if len(data) != size:
            raise ValueError("random source returned the wrong number of bytes")
        return data

    def fraction(self) -> float:
        """Uniform in [0, 1): the rekey fuzz."""
        return int.from_bytes(self.random(4), "big") / 2**32

    def send(self, st: State, message: bytes) -> None:
        """The first message of an exchange (retransmitted on timeout)."""
        message = fragments.announce(st, message)
        st.last_sent = message
        st.reply_to = None
        self.emit(st, message)

    def send_reply(self, st: State, md: MessageDigest, message: bytes) -> None:
        """An answer to ``md`` (sent again if ``md`` comes again)."""
        message = fragments.announce(st, message)
        st.last_sent = message
        st.reply_to = md.raw
        self.emit(st, message)

    def send_oneshot(self, p1: Phase1State, message: bytes) -> None:
        """An informational message: sent once, never retransmitted."""
        self.emit(p1, message)

    def emit(self, st: State, message: bytes) -> None:
        """``message`` to the peer of ``st`` (a Quick Mode's from its ISAKMP SA's ports)."""
        where: State = st
        if isinstance(st, Phase2State):
            where = self.table.isakmp(st.isakmp_serial) or st
        natt = where.local_port == self.natt_port
        for piece in fragments.for_wire(where, message, self.fragment_size, natt, self.out):
            data = add_non_esp_marker(piece) if natt else piece
            self.out.datagram(
                Datagram(data, where.local_port, where.remote_addr, where.remote_port, where.local_addr)
            )

    def replaced_clients(self, st: Phase2State) -> tuple[IPNetwork, IPNetwork] | None:
        """(our client, peer client) of the IPsec SA ``st`` replaces, if it is still here:
        a rekey keeps what was negotiated (a NAT'ed peer's virtual address among it)."""
        old = self.table.get(st.replaces) if st.replaces else None
        if isinstance(old, Phase2State) and old.our_client is not None and old.peer_client is not None:
            return old.our_client, old.peer_client
        return None

    def isakmp_of(self, st: Phase2State) -> Phase1State:
        p1 = self.table.isakmp(st.isakmp_serial)
        if p1 is None or p1.keys is None:
            raise ExchangeError("ISAKMP SA of this Quick Mode is gone", delete=True)
        return p1

    def switch_connection(self, st: State, entry: ConnEntry) -> None:
        if st.connection is entry.oriented:
            return
        if not is_r0(st):
            self.log_state(st, f'switched from "{st.conn_name}" to "{entry.name}"')
        st.connection = entry.oriented

    def float_ports(self, st: Phase1State) -> None:
        """NAT-T: move IKE to port 4500 (both ends) from the next message on."""
        if st.local_port != self.natt_port:
            st.local_port = self.natt_port
            st.remote_port = NATT_PORT

    def force_encapsulation(self, st: Phase1State) -> bool:
        return st.natt is not None and st.connection.conn.encapsulation is Encapsulation.YES

    def follow_peer(self, st: Phase1State, md: MessageDigest) -> None:
        """A responder answers where the (authenticated) message came from (NAT-T float)."""
        st.local_port = md.local_port
        st.remote_addr, st.remote_port = md.remote_addr, md.remote_port

    def note_authentic(self, p1: Phase1State, md: MessageDigest) -> None:
        """A Quick Mode handler verified ``md``'s HASH: follow a moved peer before answering."""
        if p1.kind.is_isakmp_established:
            self.note_inbound(p1, md)

    def note_inbound(self, p1: Phase1State, md: MessageDigest) -> None:
        lifecycle.note_inbound(self, p1, md)

    def first_contact(self, st: Phase1State) -> bool:
        return lifecycle.first_contact(self, st)

    def initial_contact(self, p1: Phase1State) -> None:
        lifecycle.initial_contact(self, p1)

    def peer_error(self, p1: Phase1State, n: NotificationPayload) -> None:
        lifecycle.peer_error(self, p1, n)

    def delete_by_cookies(self, p1: Phase1State, cookies: bytes) -> None:
        lifecycle.delete_by_cookies(self, p1, cookies)

    def delete_by_spi(self, p1: Phase1State, spi: int) -> None:
        lifecycle.delete_by_spi(self, p1, spi)
