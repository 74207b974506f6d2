"""The sans-IO IKEv1 engine: pluto's state table, dispatch and timers.

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
* Which message a state accepts is the table in :mod:`fswan.ike.state`;
  what a message means is in the mode modules (:mod:`~fswan.ike.main_mode`,
  :mod:`~fswan.ike.aggressive_mode`, :mod:`~fswan.ike.quick_mode`,
  :mod:`~fswan.ike.informational`), which call back only the helper methods
  grouped under "for the mode modules" below.

Timers, all per state as in pluto (one ``EVENT_*`` each), plus DPD and NAT
keepalives per ISAKMP SA:

* EVENT_RETRANSMIT: our last message again after 10 s, then 20 s; after the
  2nd retransmission and 40 s more the attempt is given up.  Initiators then
  start the next keying attempt (``keyingtries``, 0 = forever), releasing
  the whack.
* EVENT_SA_REPLACE: the initiator of an SA rekeys it at ``life -
  rekeymargin * (1 + rekeyfuzz% * r)`` with r uniform in [0, 1); the
  responder schedules ``life - rekeymargin / 2`` (pluto's choice), which
  normally finds the initiator's replacement already made and so only waits
  for expiry.  Only the connection's newest SA is rekeyed.  ISAKMP SAs are
  rekeyed only while the connection has an IPsec SA.  ``rekey=no``:
  EVENT_SA_EXPIRE only.
* EVENT_SA_EXPIRE: the SA is deleted (with a Delete payload to the peer).
  A replaced IPsec SA therefore lives until its own expiry: the new pair is
  installed first (``ChildSAInstalled.replaces_serial``), the old pair
  deleted later -- make before break.

Outputs beyond the issue's list: :class:`~fswan.ike.events.PeerAddressChanged`
when an established peer shows up at a new address/port (NAT rebinding); a new
address (not just a port) also starts a Quick Mode replacing the newest IPsec SA,
which is bound to the old one.
``local_addr`` may be the wildcard address when the shell cannot tell which
address a datagram arrived on; the connection's own host address is used then.
An authenticated error notification (AUTHENTICATION_FAILED,
INVALID_ID_INFORMATION, ...) during phase 1 ends that attempt without a retry.

``uniqueids``: when an ISAKMP SA is established for a peer ID, older ISAKMP
SAs for that ID on *other* connections, or on this connection from another
address/port (a reconnecting road warrior), are deleted with their IPsec
SAs.  Same-connection, same-address older SAs are rekey predecessors and are
left to expire.
"""

from __future__ import annotations

import importlib
import ipaddress
import os
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from cryptography.hazmat.primitives.asymmetric import rsa

from fswan.config.ids import ANY_ID, Identity
from fswan.config.keys import KeyFormatError, load_public_key
from fswan.config.model import AuthBy, ConnType, Encapsulation, IPAddress, IPNetwork
from fswan.config.orient import OrientedConnection
from fswan.config.secrets import Secrets
from fswan.config.virtual import VirtualPrivate
from fswan.ike import informational
from fswan.ike.algorithms import (
    DEFAULT_ESP_PROPOSALS,
    DEFAULT_IKE_PROPOSALS,
    EspProposal,
    IkeProposal,
    parse_esp,
    parse_ike,
)
from fswan.ike.crypto import DecryptError, constant_time_equal
from fswan.ike.events import (
    ChildSADeleted,
    ChildSAInstalled,
    ClientCheck,
    ClientCheckNeeded,
    Datagram,
    IsakmpSADeleted,
    IsakmpSAEstablished,
    LogLine,
    PeerAddressChanged,
    PeerKeyNeeded,
    WhackDone,
)
from fswan.ike.main_mode import established_details as phase1_details
from fswan.ike.main_mode import ids_match
from fswan.ike.interfaces import EspActivity
from fswan.ike.proposals import auth_methods_of
from fswan.ike.quick_mode import established_details as phase2_details
from fswan.ike.state import (
    TRANSITIONS,
    ClientCheckPending,
    ExchangeError,
    KeyPending,
    MessageDigest,
    Phase1State,
    Phase2State,
    State,
    StateKind,
    TimerEvent,
    Transition,
)
from fswan.isakmp.constants import (
    NATT_PORT,
    ExchangeType,
    NotifyType,
    OakleyAuth,
    ProtocolId,
    name_of,
)
from fswan.isakmp.errors import MalformedPacket
from fswan.isakmp.message import (
    Message,
    add_non_esp_marker,
    decode_message,
    decode_payloads,
    is_natt_keepalive,
    strip_non_esp_marker,
)
from fswan.isakmp.payloads import NotificationPayload, SAPayload, payload_name
from fswan.whackproto import RC

__all__ = ["IkeEngine", "MAX_RETRANSMITS", "RETRANSMIT_DELAY"]

#: pluto's MAXIMUM_RETRANSMISSIONS
MAX_RETRANSMITS = 2
#: first retransmission delay; it doubles each time
RETRANSMIT_DELAY = 10.0
#: answers to duplicates of one peer message
MAX_DUPLICATE_REPLIES = 3
ZERO_COOKIE = bytes(8)
_PSK = OakleyAuth.OAKLEY_PRESHARED_KEY
_RSA = OakleyAuth.OAKLEY_RSA_SIG
_AUTH_POLICY = {_PSK: "PSK", _RSA: "RSASIG"}
_COUNTERS = (
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


@dataclass(eq=False)
class _Conn:
    """A connection as the engine runs it: config, parsed proposals, newest SAs."""

    oriented: OrientedConnection
    ike: tuple[IkeProposal, ...]
    esp: tuple[EspProposal, ...]
    newest_isakmp: int = 0
    newest_ipsec: int = 0
    #: the peer's keys from ``rightrsasigkey=``/``rightrsasigkey2=`` (parsed once)
    peer_keys: tuple = ()
    peer_keys_loaded: bool = False

    @property
    def name(self) -> str:
        return self.oriented.name

    @property
    def conn(self):  # noqa: ANN201 - Connection
        return self.oriented.conn

    @property
    def auths(self) -> tuple[int, ...]:
        """Phase-1 authentication methods of the ``authby=`` policy."""
        by = self.conn.authby
        if by is AuthBy.SECRET:
            return (_PSK,)
        if by is AuthBy.RSASIG:
            return (_RSA,)
        if by is AuthBy.SECRET_OR_RSASIG:
            return (_PSK, _RSA)
        return ()


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
        self._secrets = secrets
        self.uniqueids = uniqueids
        #: ``virtual_private=`` of config setup: what ``vhost:%priv`` peers may claim
        self.virtual_private = VirtualPrivate()
        #: the data plane's "when did ESP last arrive on this conn's SAs": DPD probes
        #: only a peer that is silent on IKE *and* ESP (None: no data plane)
        self.esp_activity = esp_activity
        self.random_bytes = random_bytes
        self.ike_port = ike_port
        self.natt_port = natt_port
        self.keep_alive = keep_alive
        #: ``nat_traversal=`` of config setup: announce and use NAT-T
        self.nat_traversal = True
        self.counters: dict[str, int] = {name: 0 for name in _COUNTERS}
        self._conns: dict[str, _Conn] = {}
        #: peer keys by ID from outside ipsec.conf (see set_peer_keys)
        self._dns_keys: dict[Identity, tuple] = {}
        #: IDs whose key lookup failed (their messages are then refused), and
        #: the datagrams held while a lookup runs
        self._key_failed: set[Identity] = set()
        self._held_for_key: dict[Identity, list[tuple]] = {}
        #: ask the shell (ClientCheckNeeded) about Quick Mode clients no conn covers
        self.client_checks = False
        #: datagrams held while the shell checks clients, and its refusals not yet replayed
        self._held_for_check: dict[ClientCheck, list[tuple]] = {}
        self._checks_refused: set[ClientCheck] = set()
        self._states: dict[int, State] = {}
        self._by_cookies: dict[bytes, Phase1State] = {}
        self._by_msgid: dict[tuple[bytes, int], Phase2State] = {}
        self._spis: set[int] = set()
        self._next_serial = 1
        self._datagrams: list[Datagram] = []
        self._events: list[Any] = []
        self._now = 0.0

    # ------------------------------------------------------------------
    # configuration

    def add_connection(self, oriented: OrientedConnection) -> None:
        """Add (or replace the config of) a connection; ProposalError for a bad ike=/esp=."""
        conn = oriented.conn
        ike = parse_ike(conn.ike) if conn.ike else DEFAULT_IKE_PROPOSALS
        esp = parse_esp(conn.esp) if conn.esp else DEFAULT_ESP_PROPOSALS
        entry = _Conn(oriented, tuple(ike), tuple(esp))
        old = self._conns.get(oriented.name)
        if old is not None:
            entry.newest_isakmp, entry.newest_ipsec = old.newest_isakmp, old.newest_ipsec
        self._conns[oriented.name] = entry

    def remove_connection(self, name: str, now: float) -> None:
        """Delete the connection's states (Delete payloads to the peer), then forget it."""
        self._now = now
        if name not in self._conns:
            return
        self._delete_conn_states(name, "connection removed", notify_peer=True)
        del self._conns[name]

    def apply_setup(
        self,
        *,
        uniqueids: bool,
        keep_alive: float,
        nat_traversal: bool,
        virtual_private: VirtualPrivate,
    ) -> None:
        """The ``config setup`` values the engine acts on (at start and on reload)."""
        self.uniqueids = uniqueids
        self.keep_alive = keep_alive
        self.nat_traversal = nat_traversal
        self.virtual_private = virtual_private

    def enable_client_checks(self, enabled: bool) -> None:
        """Ask the shell (ClientCheckNeeded) before refusing a Quick Mode whose clients
        no conn covers: opportunistic encryption's responder instances."""
        self.client_checks = enabled

    def client_checked(self, check: ClientCheck, now: float) -> None:
        """The shell's answer to ClientCheckNeeded: it has added the instance conn
        for ``check`` (or decided not to); the held messages are processed again."""
        held = self._held_for_check.pop(check, [])
        self._checks_refused.add(check)
        try:
            for data, local_addr, local_port, remote_addr, remote_port in held:
                self.receive_datagram(data, local_addr, local_port, remote_addr, remote_port, now)
        finally:
            self._checks_refused.discard(check)

    def set_secrets(self, secrets: Secrets) -> None:
        self._secrets = secrets
        for entry in self._conns.values():
            entry.peer_keys_loaded = False

    def set_peer_keys(self, identity: Identity, keys: list, now: float | None = None) -> None:
        """Public keys for an ID learnt outside ipsec.conf (DNS for ``%dns*`` keys,
        like ``whack --keyid ID --pubkeyrsa``).  An empty list says the lookup
        failed.  Messages held for this ID's key (PeerKeyNeeded) are processed now."""
        if keys:
            self._dns_keys[identity] = tuple(keys)
            self._key_failed.discard(identity)
        else:
            self._dns_keys.pop(identity, None)
            self._key_failed.add(identity)
        held = self._held_for_key.pop(identity, [])
        for data, local_addr, local_port, remote_addr, remote_port in held:
            self.receive_datagram(
                data, local_addr, local_port, remote_addr, remote_port,
                self._now if now is None else now,
            )

    def may_fetch_key(self, oriented: OrientedConnection, identity: Identity) -> bool:
        """True when the conn's peer key comes from DNS and no lookup for it has failed."""
        source = (oriented.that.end.rsasigkey or "").strip()
        return source.startswith("%dns") and identity not in self._key_failed

    def _hold_for_key(self, st: State, identity: Identity, md: MessageDigest) -> None:
        """Keep the message until the shell answers PeerKeyNeeded (one request per ID)."""
        data = md.raw if md.local_port != self.natt_port else add_non_esp_marker(md.raw)
        first = identity not in self._held_for_key
        self._held_for_key.setdefault(identity, []).append(
            (data, md.local_addr, md.local_port, md.remote_addr, md.remote_port)
        )
        self.counters["held_for_key"] += 1
        if first:
            self.log_state(st, f"fetching the public key of '{identity}' (DNS)")
            self._events.append(PeerKeyNeeded(st.conn_name, st.serial, identity))

    def _hold_for_check(self, st: State, check: ClientCheck, md: MessageDigest) -> None:
        """Keep the message until the shell answers ClientCheckNeeded (one request per check)."""
        data = md.raw if md.local_port != self.natt_port else add_non_esp_marker(md.raw)
        first = check not in self._held_for_check
        self._held_for_check.setdefault(check, []).append(
            (data, md.local_addr, md.local_port, md.remote_addr, md.remote_port)
        )
        if first:
            self._events.append(ClientCheckNeeded(st.conn_name, st.serial, check))

    def peer_key_source(self, name: str) -> str | None:
        """``%dns``/``%dnsonload``/``%dnsondemand`` when the conn's peer key comes from DNS."""
        entry = self._conns.get(name)
        if entry is None:
            return None
        text = (entry.oriented.that.end.rsasigkey or "").strip()
        return text if text.startswith("%dns") else None

    # ------------------------------------------------------------------
    # operator commands

    def initiate(self, name: str, now: float, whack: object | None = None) -> None:
        """Bring the connection up: Main (or Aggressive) Mode if needed, then Quick Mode."""
        self._now = now
        entry = self._conns.get(name)
        if entry is None:
            self._events.append(
                LogLine(f'no connection named "{name}"', RC.UNKNOWN_NAME, None, None, whack)
            )
            self._release(whack, False)
            return
        self._initiate(entry, now, whack, attempt=1, replaces=None)

    def terminate(self, name: str, now: float, whack: object | None = None) -> None:
        """Delete the connection's IPsec SAs, then its ISAKMP SAs, telling the peer."""
        self._now = now
        entry = self._conns.get(name)
        if entry is None:
            self._events.append(
                LogLine(f'no connection named "{name}"', RC.UNKNOWN_NAME, None, None, whack)
            )
            self._release(whack, False)
            return
        self._events.append(
            LogLine("terminating SAs using this connection", RC.LOG, name, None, whack)
        )
        self._delete_conn_states(name, "terminated", notify_peer=True)
        self._release(whack, True)

    # ------------------------------------------------------------------
    # outputs

    def datagrams_to_send(self) -> list[Datagram]:
        out, self._datagrams = self._datagrams, []
        self.counters["datagrams_sent"] += len(out)
        return out

    def next_events(self) -> list:
        out, self._events = self._events, []
        return out

    def get_timer(self) -> float | None:
        deadlines = [when for when, _, _ in self._deadlines()]
        return min(deadlines) if deadlines else None

    def newest(self, name: str) -> tuple[int, int]:
        entry = self._conns.get(name)
        if entry is None:
            return (0, 0)
        return (
            entry.newest_isakmp if entry.newest_isakmp in self._states else 0,
            entry.newest_ipsec if entry.newest_ipsec in self._states else 0,
        )

    # ------------------------------------------------------------------
    # received datagrams

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
        self._now = now
        self.counters["datagrams_received"] += 1
        peer = f"{remote_addr}:{remote_port}"
        try:
            self._receive(
                bytes(data),
                ipaddress.ip_address(local_addr),
                int(local_port),
                ipaddress.ip_address(remote_addr),
                int(remote_port),
                now,
            )
        except MalformedPacket as error:
            self.counters["malformed"] += 1
            self._log(f"packet from {peer}: {error.reason}", RC.LOG_SERIOUS)
        except Exception as error:  # never let a datagram take the daemon down
            self.counters["internal_error"] += 1
            self._log(
                f"packet from {peer}: internal error {type(error).__name__} while "
                "processing; message dropped",
                RC.INTERNALERR,
            )

    def _receive(
        self,
        data: bytes,
        local_addr: IPAddress,
        local_port: int,
        remote_addr: IPAddress,
        remote_port: int,
        now: float,
    ) -> None:
        if local_port == self.natt_port:
            if is_natt_keepalive(data):
                self.counters["keepalives_received"] += 1
                return
            inner = strip_non_esp_marker(data)
            if inner is None:
                self.counters["esp_on_ike_port"] += 1
                return
            data = inner
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
        )
        exchange = message.header.exchange
        if exchange in (ExchangeType.MAIN_MODE, ExchangeType.AGGRESSIVE):
            self._phase1_message(message, md)
        elif exchange == ExchangeType.QUICK_MODE:
            self._quick_message(message, md)
        elif exchange == ExchangeType.INFORMATIONAL:
            self._info_message(message, md)
        else:
            self.counters["unexpected"] += 1
            self._log(
                f"packet from {self._peer(md)}: unsupported exchange type " f"{name_of(exchange)}"
            )

    def _peer(self, md: MessageDigest) -> str:
        return f"{md.remote_addr}:{md.remote_port}"

    def _unknown_cookies(self, md: MessageDigest) -> None:
        self.counters["unknown_cookie"] += 1
        self._log(
            f"packet from {self._peer(md)}: no ISAKMP SA for cookies "
            f"{md.header.icookie.hex()}/{md.header.rcookie.hex()}; {name_of(md.header.exchange)} "
            "message dropped"
        )

    def _phase1_message(self, message: Message, md: MessageDigest) -> None:
        header = md.header
        if header.rcookie == ZERO_COOKIE:
            st = self._half_open_responder(header.icookie, md.remote_addr)
            if st is None:
                self._new_responder(message, md)
                return
        else:
            st = self._by_cookies.get(header.cookies)
            if st is None:
                waiting = self._by_cookies.get(header.icookie + ZERO_COOKIE)
                if waiting is not None and waiting.initiator:
                    st = waiting
        if st is None:
            self._unknown_cookies(md)
            return
        self._dispatch(st, st, message, md)

    def _half_open_responder(self, icookie: bytes, remote: IPAddress) -> Phase1State | None:
        for st in self._states.values():
            if (
                isinstance(st, Phase1State)
                and not st.initiator
                and st.icookie == icookie
                and st.remote_addr == remote
                and not st.kind.is_isakmp_established
            ):
                return st
        return None

    def _new_responder(self, message: Message, md: MessageDigest) -> None:
        header = md.header
        aggressive = header.exchange == ExchangeType.AGGRESSIVE
        mode = "Aggressive" if aggressive else "Main"
        if header.encrypted or header.message_id != 0:
            self.counters["unexpected"] += 1
            self._log(
                f"packet from {self._peer(md)}: initial {mode} Mode message must be clear "
                "with message ID 0"
            )
            return
        sa = md.get(SAPayload)
        if sa is None:
            self.counters["malformed"] += 1
            self._log(
                f"packet from {self._peer(md)}: initial {mode} Mode message has no SA payload"
            )
            return
        auths = auth_methods_of(sa)
        candidates = self._responder_candidates(md.local_addr, md.remote_addr, auths, aggressive)
        if not candidates:
            self.counters["no_connection"] += 1
            policy = "+".join(_AUTH_POLICY.get(a, name_of(a)) for a in auths) or "none"
            if aggressive:
                policy += "+AGGRESSIVE"
            self._log(
                f"initial {mode} Mode message received on {md.local_addr}:{md.local_port} "
                f"but no connection has been authorized with policy={policy}"
            )
            return
        if md.local_addr.is_unspecified:
            # a shell listening on the wildcard address: we are the conn's host
            md.local_addr = candidates[0].oriented.this.host  # type: ignore[assignment]
        st = Phase1State(
            serial=self._serial(),
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
        )
        self._states[st.serial] = st
        md.candidates = candidates
        self.log_state(st, f"responding to {mode} Mode from {self._peer(md)}")
        self._dispatch(st, st, message, md)

    def _quick_message(self, message: Message, md: MessageDigest) -> None:
        header = md.header
        p1 = self._by_cookies.get(header.cookies)
        if p1 is None:
            self._unknown_cookies(md)
            return
        if not p1.kind.is_isakmp_established:
            self.counters["unexpected"] += 1
            self.log_state(p1, "ignoring QUICK_MODE request while phase 1 is incomplete")
            return
        if not header.encrypted or header.message_id == 0:
            self.counters["unexpected"] += 1
            self.log_state(
                p1,
                f"packet from {self._peer(md)}: Quick Mode message must be "
                "encrypted with a non-zero message ID",
            )
            return
        st = self._by_msgid.get((header.cookies, header.message_id))
        if st is None:
            if header.message_id in p1.message_ids:
                self.counters["unexpected"] += 1
                self.log_state(
                    p1,
                    f"packet from {self._peer(md)}: Quick Mode message reuses "
                    f"message ID {header.message_id:#010x}",
                )
                return
            st = self._new_phase2(
                p1, StateKind.QUICK_R0, p1.connection, md.now, header.message_id
            )
            p1.message_ids.add(header.message_id)
        self._dispatch(st, p1, message, md)

    def _new_phase2(
        self, p1: Phase1State, kind: StateKind, connection: Any, now: float, message_id: int,
        **more: Any,
    ) -> Phase2State:
        """A Quick Mode state riding on ``p1``: it shares p1's cookies, addresses and peer."""
        st = Phase2State(
            serial=self._serial(),
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
            isakmp_serial=p1.serial,
            message_id=message_id,
            peer_id=p1.peer_id,
            **more,
        )
        self._states[st.serial] = st
        self._by_msgid[(p1.cookies, message_id)] = st
        return st

    def _info_message(self, message: Message, md: MessageDigest) -> None:
        header = md.header
        p1 = self._by_cookies.get(header.cookies)
        if p1 is None and header.rcookie == ZERO_COOKIE:
            waiting = self._by_cookies.get(header.icookie + ZERO_COOKIE)
            p1 = waiting if waiting is not None and waiting.initiator else None
        if not header.encrypted:
            self._clear_informational(p1, md)
            return
        if p1 is None:
            self._unknown_cookies(md)
            return
        if (
            p1.crypter is None
            or header.message_id == 0
            or (header.cookies, header.message_id) in self._by_msgid
        ):
            self.counters["unexpected"] += 1
            self.log_state(
                p1,
                f"packet from {self._peer(md)}: encrypted Informational message "
                "cannot be processed in this state; dropped",
            )
            return
        try:
            plain = p1.crypter.decrypt(header.message_id, message.encrypted_body or b"")
        except DecryptError as error:
            self.counters["decrypt_failed"] += 1
            self.log_state(p1, f"packet from {self._peer(md)}: {error}")
            return
        finally:
            p1.crypter.forget(header.message_id)
        try:
            md.payloads = decode_payloads(header.next_payload, plain)
        except MalformedPacket as error:
            self.counters["malformed"] += 1
            self.log_state(
                p1, f"packet from {self._peer(md)}: {error.reason} in Informational message"
            )
            return
        md.plain = plain
        try:
            informational.verify(p1, md)
        except ExchangeError as error:
            self.counters["rejected"] += 1
            for line in error.lines:
                self.log_state(p1, line, error.rc)
            return
        if p1.kind.is_isakmp_established:
            self._note_inbound(p1, md)
        informational.receive(self, p1, md)

    def _clear_informational(self, p1: Phase1State | None, md: MessageDigest) -> None:
        self.counters["cleartext_informational"] += 1
        notifications = md.all(NotificationPayload)
        if (
            p1 is not None
            and p1.initiator
            and p1.kind in (StateKind.MAIN_I1, StateKind.AGGR_I1)
            and any(n.is_error for n in notifications)
        ):
            for n in notifications:
                self.log_state(
                    p1, f"{p1.kind.label}: {name_of(n.type)}", RC.NOTIFICATION + int(n.type)
                )
            for whack in self._whacks_of(p1):
                self._release(whack, False)
            p1.whack = None
            p1.pending = [(None, replaces) for _, replaces in p1.pending]
            return
        for payload in md.payloads or []:
            kind = (
                name_of(payload.type) if isinstance(payload, NotificationPayload) else payload.name
            )
            self._log(
                f"packet from {self._peer(md)}: ignoring unencrypted informational payload, "
                f"type {kind}"
            )

    # ------------------------------------------------------------------
    # the microcode interpreter

    def _dispatch(self, st: State, p1: Phase1State, message: Message, md: MessageDigest) -> None:
        header = md.header
        if md.local_addr.is_unspecified:
            md.local_addr = st.local_addr
        if st.reply_to is not None and md.raw == st.reply_to:
            self._duplicate(st)
            return
        if st.last_received is not None and md.raw == st.last_received:
            self.counters["duplicates_ignored"] += 1
            return
        transition = TRANSITIONS.get(st.kind)
        if (
            transition is None
            or transition.exchange != header.exchange
            or (transition.encrypted is not None and transition.encrypted != header.encrypted)
        ):
            self.counters["unexpected"] += 1
            self.log_state(
                st,
                f"packet from {self._peer(md)}: unexpected "
                f"{'encrypted ' if header.encrypted else ''}"
                f"{name_of(header.exchange)} message in {st.kind.label}; dropped",
            )
            if st.kind in (StateKind.MAIN_R0, StateKind.AGGR_R0, StateKind.QUICK_R0):
                self._forget_state(st)
            return
        saved_iv = None
        if header.encrypted:
            if p1.crypter is None:
                self.counters["unexpected"] += 1
                self.log_state(
                    st, f"packet from {self._peer(md)}: encrypted message before keys exist"
                )
                return
            saved_iv = p1.crypter.iv(header.message_id)
            try:
                plain = p1.crypter.decrypt(header.message_id, message.encrypted_body or b"")
                md.payloads = decode_payloads(header.next_payload, plain)
            except (DecryptError, MalformedPacket) as error:
                p1.crypter.set_iv(header.message_id, saved_iv)
                self.counters[
                    "decrypt_failed" if isinstance(error, DecryptError) else "malformed"
                ] += 1
                reason = error.reason if isinstance(error, MalformedPacket) else str(error)
                hint = (
                    "probable authentication failure (mismatch of preshared secrets?): "
                    if st.kind.is_phase1
                    else ""
                )
                self.log_state(st, f"packet from {self._peer(md)}: {hint}{reason}", RC.LOG_SERIOUS)
                if st.kind is StateKind.QUICK_R0:
                    self._forget_state(st)
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
            _handler(transition.handler)(self, st, md)
        except ExchangeError as error:
            if saved_iv is not None and p1.crypter is not None:
                p1.crypter.set_iv(md.header.message_id, saved_iv)
            self._fail(st, error, md)
            return
        except KeyPending as pending:
            if saved_iv is not None and p1.crypter is not None:
                p1.crypter.set_iv(md.header.message_id, saved_iv)
            self._hold_for_key(st, pending.identity, md)
            return
        except ClientCheckPending as pending:
            if saved_iv is not None and p1.crypter is not None:
                p1.crypter.set_iv(md.header.message_id, saved_iv)
            self._hold_for_check(st, pending.check, md)
            return
        st.last_received = md.raw
        st.duplicate_replies = 0
        if p1.kind.is_isakmp_established and p1 is not st:
            self._note_inbound(p1, md)
        st.kind = transition.next
        if transition.expects_reply:
            st.retransmits = 0
            st.set_event(TimerEvent.RETRANSMIT, md.now + RETRANSMIT_DELAY)
        else:
            st.set_event(None, None)
        if transition.next.is_isakmp_established:
            assert isinstance(st, Phase1State)
            self._isakmp_established(st, md)
        elif transition.next.is_ipsec_established:
            assert isinstance(st, Phase2State)
            self._ipsec_established(st)
        else:
            self._announce(st)

    def _fail(self, st: State, error: ExchangeError, md: MessageDigest) -> None:
        self.counters["rejected"] += 1
        for line in error.lines:
            self.log_state(st, line, error.rc)
        if error.notify is not None and not st.initiator:
            self._notify_failure(st, error.notify, md)
        if st.kind in (StateKind.MAIN_R0, StateKind.AGGR_R0, StateKind.QUICK_R0):
            self._forget_state(st)
        elif error.delete:
            self._delete_state(st, "negotiation failed", notify_peer=False)

    def _notify_failure(self, st: State, kind: int, md: MessageDigest) -> None:
        """Tell the peer why we refuse: encrypted once keys exist, else in clear."""
        p1 = (
            st if isinstance(st, Phase1State) else self._states.get(getattr(st, "isakmp_serial", 0))
        )
        if isinstance(p1, Phase1State) and p1.crypter is not None:
            if md.header.encrypted and md.header.message_id == 0:
                # The peer's phase-1 chain ended with the message we refused: derive
                # the notification's IV from its last block, then rewind.
                saved = p1.crypter.iv(0)
                p1.crypter.set_iv(0, md.raw[-p1.crypter.block_size :])
                try:
                    informational.notify(self, p1, kind)
                finally:
                    p1.crypter.set_iv(0, saved)
                return
            if isinstance(st, Phase2State):
                spi = b""
                sa = md.get(SAPayload)
                if sa is not None:
                    spis = [
                        p.spi
                        for p in sa.proposals
                        if p.protocol == ProtocolId.ESP and len(p.spi) == 4
                    ]
                    spi = spis[0] if spis else b""
                informational.notify(self, p1, kind, ProtocolId.ESP, spi)
            else:
                informational.notify(self, p1, kind)
            return
        if md.header.exchange in (ExchangeType.MAIN_MODE, ExchangeType.AGGRESSIVE):
            data = informational.clear_notification(md.header, kind)
            if md.local_port == self.natt_port:
                data = add_non_esp_marker(data)
            self._datagrams.append(
                Datagram(data, md.local_port, md.remote_addr, md.remote_port, md.local_addr)
            )

    def _duplicate(self, st: State) -> None:
        self.counters["retransmits_received"] += 1
        if st.duplicate_replies >= MAX_DUPLICATE_REPLIES or st.last_sent is None:
            self.log_state(st, "discarding duplicate packet -- exhausted retransmission")
            return
        st.duplicate_replies += 1
        self.log_state(
            st, f"retransmitting in response to duplicate packet; already {st.kind.label}"
        )
        self._emit(st, st.last_sent)

    def _announce(self, st: State, suffix: str = "") -> None:
        rc = RC.SUCCESS if st.kind.established else RC.NEW_STATE + int(st.kind)
        self.log_state(st, f"{st.kind.label}: {st.kind.story}{suffix}", rc)

    # ------------------------------------------------------------------
    # established

    def _isakmp_established(self, st: Phase1State, md: MessageDigest | None) -> None:
        now = self._now
        st.established_at = now
        st.last_inbound = now
        entry = self._conns[st.conn_name]
        entry.newest_isakmp = st.serial
        self._schedule_replace(st, now)
        self._announce(st, phase1_details(st))
        assert st.peer_id is not None
        self._events.append(
            IsakmpSAEstablished(st.conn_name, st.serial, st.remote_addr, st.remote_port, st.peer_id)
        )
        if md is not None:
            for n in md.all(NotificationPayload):
                if n.type == NotifyType.INITIAL_CONTACT:
                    self.initial_contact(st)
                else:
                    self.log_state(st, f"ignoring informational payload, type {name_of(n.type)}")
        if self.uniqueids:
            self._unique(st)
        if entry.conn.dpddelay and st.peer_dpd:
            st.dpd_next = now + entry.conn.dpddelay
        if st.nat_us and st.natt is not None and self.keep_alive > 0:
            st.keepalive_next = now + self.keep_alive
        pending, st.pending = st.pending, []
        whack, st.whack = st.whack, None
        for pending_whack, replaces in pending:
            self._start_quick(entry, st, now, pending_whack, 1, replaces)
        if whack is not None and not any(w is whack for w, _ in pending):
            self._release(whack, True)

    def _ipsec_established(self, st: Phase2State) -> None:
        now = self._now
        st.established_at = now
        st.installed = True
        entry = self._conns[st.conn_name]
        previous = entry.newest_ipsec if entry.newest_ipsec in self._states else None
        if st.replaces in self._states:
            previous = st.replaces
        entry.newest_ipsec = st.serial
        self._schedule_replace(st, now)
        p1 = self._states.get(st.isakmp_serial)
        dpd = "none"
        if isinstance(p1, Phase1State) and p1.peer_dpd:
            dpd = "active" if entry.conn.dpddelay else "passive"
        self._announce(st, phase2_details(st, p1 if isinstance(p1, Phase1State) else None, dpd))
        assert st.proposal is not None and st.inbound_keys and st.outbound_keys
        assert st.our_client is not None and st.peer_client is not None
        self._events.append(
            ChildSAInstalled(
                conn=st.conn_name,
                serial=st.serial,
                inbound_spi=st.our_spi,
                outbound_spi=st.peer_spi,
                proposal=st.proposal,
                inbound_keys=st.inbound_keys,
                outbound_keys=st.outbound_keys,
                mode="tunnel" if st.tunnel else "transport",
                udp_encapsulated=st.udp,
                local_addr=st.local_addr,
                local_port=st.local_port,
                remote_addr=st.remote_addr,
                remote_port=st.remote_port,
                local_client=st.our_client,
                remote_client=st.peer_client,
                lifetime_seconds=st.lifetime,
                replaces_serial=previous if previous != st.serial else None,
            )
        )
        if st.whack is not None:
            self._release(st.whack, True)
            st.whack = None

    def _schedule_replace(self, st: State, now: float) -> None:
        conn = st.connection.conn
        life = st.lifetime
        if not conn.rekey:
            st.set_event(TimerEvent.SA_EXPIRE, now + life)
            return
        margin = conn.rekeymargin
        if st.initiator:
            margin += margin * conn.rekeyfuzz / 100.0 * self._fraction()
        else:
            margin /= 2
        if life > margin:
            st.margin = margin
            st.set_event(TimerEvent.SA_REPLACE, now + life - margin)
        else:
            st.set_event(TimerEvent.SA_EXPIRE, now + life)

    def _unique(self, st: Phase1State) -> None:
        """uniqueids: older ISAKMP SAs for this peer ID elsewhere go (with their IPsec SAs)."""
        for other in list(self._states.values()):
            if (
                other is st
                or not isinstance(other, Phase1State)
                or other.serial not in self._states
            ):
                continue
            if not other.kind.is_isakmp_established or other.peer_id != st.peer_id:
                continue
            same_conn = other.conn_name == st.conn_name
            moved = (other.remote_addr, other.remote_port) != (st.remote_addr, st.remote_port)
            if same_conn and not moved:
                continue
            self.log_state(
                other,
                f"deleting state: peer '{st.peer_id}' has a newer ISAKMP SA #{st.serial} "
                "(uniqueids)",
            )
            for child in self._children_of_peer(other):
                self._delete_state(child, "replaced (uniqueids)", notify_peer=True)
            self._delete_state(other, "replaced (uniqueids)", notify_peer=True)

    def _children_of_peer(self, p1: Phase1State) -> list[Phase2State]:
        return [
            s
            for s in self._states.values()
            if isinstance(s, Phase2State)
            and s.conn_name == p1.conn_name
            and s.remote_addr == p1.remote_addr
            and s.remote_port == p1.remote_port
        ]

    # ------------------------------------------------------------------
    # initiation

    def _initiate(
        self, entry: _Conn, now: float, whack: object | None, attempt: int, replaces: int | None
    ) -> None:
        p1 = self._usable_isakmp(entry)
        if p1 is not None:
            self._start_quick(entry, p1, now, whack, attempt, replaces)
            return
        if entry.oriented.that.host is None:
            self._events.append(
                LogLine(
                    "cannot initiate connection without knowing peer IP address",
                    RC.NOPEERIP,
                    entry.name,
                    None,
                    whack,
                )
            )
            self._release(whack, False)
            return
        for st in self._states.values():
            if (
                isinstance(st, Phase1State)
                and st.initiator
                and st.conn_name == entry.name
                and not st.kind.established
            ):
                st.pending.append((whack, replaces))
                if whack is not None and st.whack is None:
                    st.whack = whack
                return
        self._start_phase1(entry, now, whack, [(whack, replaces)], attempt, None)

    def _usable_isakmp(self, entry: _Conn) -> Phase1State | None:
        newest = self._states.get(entry.newest_isakmp)
        if isinstance(newest, Phase1State) and newest.kind.is_isakmp_established:
            return newest
        that = entry.oriented.that
        for st in sorted(self._states.values(), key=lambda s: -s.serial):
            if (
                isinstance(st, Phase1State)
                and st.kind.is_isakmp_established
                and st.local_addr == entry.oriented.this.host
                and (that.host is None or st.remote_addr == that.host)
                and st.peer_id is not None
                and ids_match(that.id, st.peer_id)
                and st.auth in entry.auths
                and that.host is not None
            ):
                return st
        return None

    def _start_phase1(
        self,
        entry: _Conn,
        now: float,
        whack: object | None,
        pending: list[tuple[object | None, int | None]],
        attempt: int,
        replaces: int | None,
    ) -> Phase1State:
        from fswan.ike import aggressive_mode, main_mode

        oriented = entry.oriented
        assert oriented.this.host is not None and oriented.that.host is not None
        aggressive = bool(entry.conn.aggrmode)
        st = Phase1State(
            serial=self._serial(),
            kind=StateKind.AGGR_I1 if aggressive else StateKind.MAIN_I1,
            connection=oriented,
            initiator=True,
            icookie=self.new_cookie(),
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
        st.auth = entry.auths[0] if entry.auths else _PSK
        self._states[st.serial] = st
        self._by_cookies[st.icookie + ZERO_COOKIE] = st
        (aggressive_mode if aggressive else main_mode).initiate(self, st)
        self.log_state(st, f"{st.kind.label}: initiate", RC.NEW_STATE + int(st.kind))
        st.set_event(TimerEvent.RETRANSMIT, now + RETRANSMIT_DELAY)
        return st

    def _start_quick(
        self,
        entry: _Conn,
        p1: Phase1State,
        now: float,
        whack: object | None,
        attempt: int,
        replaces: int | None,
    ) -> Phase2State:
        from fswan.ike import quick_mode

        st = self._new_phase2(
            p1, StateKind.QUICK_I1, entry.oriented, now, self.new_message_id(p1),
            whack=whack, attempt=attempt, replaces=replaces,
        )
        quick_mode.initiate(self, st, p1)
        suffix = f" to replace #{replaces}" if replaces else ""
        self.log_state(st, f"{st.kind.label}: initiate{suffix}", RC.NEW_STATE + int(st.kind))
        st.set_event(TimerEvent.RETRANSMIT, now + RETRANSMIT_DELAY)
        return st

    # ------------------------------------------------------------------
    # timers

    def _deadlines(self) -> list[tuple[float, int, str]]:
        out: list[tuple[float, int, str]] = []
        for st in self._states.values():
            if st.event_at is not None:
                out.append((st.event_at, st.serial, "event"))
            if isinstance(st, Phase1State) and st.kind.is_isakmp_established:
                entry = self._conns.get(st.conn_name)
                if entry is not None and entry.conn.dpddelay and st.peer_dpd:
                    when = informational.dpd_deadline(st, entry.conn.dpdtimeout)
                    if when is not None:
                        out.append((when, st.serial, "dpd"))
                if st.keepalive_next is not None:
                    out.append((st.keepalive_next, st.serial, "keepalive"))
        return out

    def handle_timer(self, now: float) -> None:
        """Run every event due at ``now``."""
        self._now = now
        for _ in range(10000):
            due = sorted(d for d in self._deadlines() if d[0] <= now)
            if not due:
                return
            _, serial, kind = due[0]
            st = self._states.get(serial)
            if st is None:
                continue
            if kind == "event":
                self._run_event(st, now)
            elif kind == "dpd":
                assert isinstance(st, Phase1State)
                self._run_dpd(st, now)
            else:
                assert isinstance(st, Phase1State)
                self._run_keepalive(st, now)

    def _run_event(self, st: State, now: float) -> None:
        event = st.event
        st.set_event(None, None)
        if event is TimerEvent.RETRANSMIT:
            self._retransmit(st, now)
        elif event is TimerEvent.SA_REPLACE:
            self._replace(st, now)
        elif event in (TimerEvent.SA_EXPIRE, TimerEvent.SO_DISCARD):
            what = "ISAKMP" if isinstance(st, Phase1State) else "IPsec"
            self.log_state(st, f"{what} SA expired")
            self._delete_state(st, "expired", notify_peer=True)

    def _retransmit(self, st: State, now: float) -> None:
        if st.retransmits < MAX_RETRANSMITS and st.last_sent is not None:
            st.retransmits += 1
            delay = RETRANSMIT_DELAY * 2**st.retransmits
            self.counters["retransmits_sent"] += 1
            self.log_state(
                st,
                f"{st.kind.label}: retransmission; will wait {delay:g}s for response",
                RC.RETRANSMISSION,
            )
            self._emit(st, st.last_sent)
            st.set_event(TimerEvent.RETRANSMIT, now + delay)
            return
        self._give_up(st, now)

    def _give_up(self, st: State, now: float) -> None:
        detail = ""
        if st.kind in (StateKind.MAIN_I1, StateKind.AGGR_I1):
            detail = ".  No response (or no acceptable response) to our first IKE message"
        elif st.kind is StateKind.QUICK_I1:
            detail = (
                ".  No acceptable response to our first Quick Mode message: "
                "perhaps peer likes no proposal"
            )
        self.log_state(
            st,
            f"max number of retransmissions ({MAX_RETRANSMITS}) reached "
            f"{st.kind.label}{detail}",
            RC.NORETRANSMISSION,
        )
        entry = self._conns.get(st.conn_name)
        if not st.initiator or entry is None or st.kind.established:
            self._delete_state(st, "retransmission limit", notify_peer=False)
            return
        whacks = self._whacks_of(st)
        pending = [(None, r) for _, r in st.pending] if isinstance(st, Phase1State) else []
        tries = entry.conn.keyingtries
        retry = tries == 0 or st.attempt < tries
        if retry:
            limit = "an unlimited number" if tries == 0 else f"at most {tries}"
            releasing = ", but releasing whack" if whacks else ""
            self.log_state(
                st, f"starting keying attempt {st.attempt + 1} of {limit}{releasing}", RC.COMMENT
            )
        for whack in whacks:
            self._release(whack, False)
        st.whack = None
        if isinstance(st, Phase1State):
            st.pending = []
        self._delete_state(st, "retransmission limit", notify_peer=False)
        if not retry:
            return
        if isinstance(st, Phase1State):
            self._start_phase1(entry, now, None, pending, st.attempt + 1, st.replaces)
        else:
            self._initiate(entry, now, None, st.attempt + 1, st.replaces)

    def _replace(self, st: State, now: float) -> None:
        entry = self._conns.get(st.conn_name)
        expire_at = (now if st.established_at is None else st.established_at) + st.lifetime
        st.set_event(TimerEvent.SA_EXPIRE, max(expire_at, now))
        if entry is None or not entry.conn.rekey:
            return
        if isinstance(st, Phase2State):
            if entry.newest_ipsec == st.serial:
                self._initiate(entry, now, None, 1, st.serial)
            return
        assert isinstance(st, Phase1State)
        newest_ipsec = self._states.get(entry.newest_ipsec)
        if (
            entry.newest_isakmp == st.serial
            and newest_ipsec is not None
            and entry.oriented.that.host is not None
        ):
            if not any(
                isinstance(s, Phase1State)
                and s.initiator
                and s.conn_name == entry.name
                and not s.kind.established
                for s in self._states.values()
            ):
                self.log_state(
                    st,
                    f"initiating {'Aggressive' if entry.conn.aggrmode else 'Main'} "
                    f"Mode to replace #{st.serial}",
                )
                self._start_phase1(entry, now, None, [], 1, st.serial)

    def _run_dpd(self, p1: Phase1State, now: float) -> None:
        entry = self._conns.get(p1.conn_name)
        if entry is None or not entry.conn.dpddelay or entry.newest_isakmp != p1.serial:
            p1.dpd_next = None
            p1.dpd_pending_since = None
            return
        if informational.dpd_tick(self, p1, now, entry.conn.dpddelay, entry.conn.dpdtimeout):
            self._dpd_dead(entry, p1, now)

    def _dpd_dead(self, entry: _Conn, p1: Phase1State, now: float) -> None:
        from fswan.config.model import DpdAction

        action = entry.conn.dpdaction
        self.log_state(p1, "DPD: No response from peer - declaring peer dead", RC.LOG_SERIOUS)
        remote = p1.remote_addr
        victims = [
            s
            for s in self._states.values()
            if s.conn_name == entry.name and s.remote_addr == remote
        ]
        for st in sorted(victims, key=lambda s: (isinstance(s, Phase1State), -s.serial)):
            self._delete_state(st, "peer dead", notify_peer=False)
        if action is DpdAction.CLEAR:
            self._log_conn(entry.name, "DPD: dpdaction=clear: connection cleared")
        elif action is DpdAction.HOLD:
            self._log_conn(
                entry.name,
                "DPD: dpdaction=hold: connection put on %hold, "
                "waiting for traffic or an operator",
            )
        else:
            self._log_conn(entry.name, "DPD: dpdaction=restart: restarting connection")
            self._initiate(entry, now, None, 1, None)

    def _run_keepalive(self, p1: Phase1State, now: float) -> None:
        entry = self._conns.get(p1.conn_name)
        if entry is None or entry.newest_isakmp != p1.serial or not p1.nat_us:
            p1.keepalive_next = None
            return
        self._datagrams.append(
            Datagram(b"\xff", self.natt_port, p1.remote_addr, p1.remote_port, p1.local_addr)
        )
        self.counters["keepalives_sent"] += 1
        p1.keepalive_next = now + self.keep_alive

    # ------------------------------------------------------------------
    # deleting

    def _delete_conn_states(self, name: str, reason: str, notify_peer: bool) -> None:
        states = [s for s in self._states.values() if s.conn_name == name]
        for st in sorted(states, key=lambda s: -s.serial):
            if isinstance(st, Phase2State):
                self._delete_state(st, reason, notify_peer)
        for st in sorted(states, key=lambda s: -s.serial):
            if isinstance(st, Phase1State):
                self._delete_state(st, reason, notify_peer)

    def _forget_state(self, st: State) -> None:
        """Drop a state that never got anywhere (R0): no events, no Delete."""
        self._states.pop(st.serial, None)
        if isinstance(st, Phase2State):
            self._by_msgid.pop((st.icookie + st.rcookie, st.message_id), None)
            p1 = self._states.get(st.isakmp_serial)
            if isinstance(p1, Phase1State):
                p1.message_ids.discard(st.message_id)
                if p1.crypter is not None:
                    p1.crypter.forget(st.message_id)
        else:
            for key, value in list(self._by_cookies.items()):
                if value is st:
                    del self._by_cookies[key]

    def _live_isakmp_for(self, st: State) -> Phase1State | None:
        p1 = self._states.get(getattr(st, "isakmp_serial", 0))
        if isinstance(p1, Phase1State) and p1.kind.is_isakmp_established:
            return p1
        entry = self._conns.get(st.conn_name)
        if entry is not None:
            newest = self._states.get(entry.newest_isakmp)
            if (
                isinstance(newest, Phase1State)
                and newest.kind.is_isakmp_established
                and newest.remote_addr == st.remote_addr
            ):
                return newest
        for other in self._states.values():
            if (
                isinstance(other, Phase1State)
                and other.kind.is_isakmp_established
                and other.remote_addr == st.remote_addr
                and other.peer_id == st.peer_id
            ):
                return other
        return None

    def _delete_state(self, st: State, reason: str, notify_peer: bool) -> None:
        if st.serial not in self._states:
            return
        st.set_event(None, None)
        entry = self._conns.get(st.conn_name)
        if isinstance(st, Phase2State):
            if notify_peer and st.installed:
                p1 = self._live_isakmp_for(st)
                if p1 is not None:
                    informational.delete_ipsec(self, p1, [st.our_spi])
            self._forget_state(st)
            self._spis.discard(st.our_spi)
            if st.installed:
                self._events.append(
                    ChildSADeleted(st.conn_name, st.serial, st.our_spi, st.peer_spi, reason)
                )
            if entry is not None and entry.newest_ipsec == st.serial:
                entry.newest_ipsec = self._newest_remaining(st.conn_name, Phase2State)
        else:
            assert isinstance(st, Phase1State)
            for child in [
                s
                for s in self._states.values()
                if isinstance(s, Phase2State)
                and s.isakmp_serial == st.serial
                and not s.kind.established
            ]:
                self._delete_state(child, reason, notify_peer=False)
            if notify_peer and st.kind.is_isakmp_established:
                informational.delete_isakmp(self, st)
            self._forget_state(st)
            if st.kind not in (StateKind.MAIN_R0, StateKind.AGGR_R0):
                self._events.append(IsakmpSADeleted(st.conn_name, st.serial, reason))
            if entry is not None and entry.newest_isakmp == st.serial:
                entry.newest_isakmp = self._newest_remaining(st.conn_name, Phase1State)
        for whack in self._whacks_of(st):
            self._release(whack, False)
        st.whack = None

    def _newest_remaining(self, name: str, kind: type) -> int:
        serials = [
            s.serial
            for s in self._states.values()
            if isinstance(s, kind) and s.conn_name == name and s.kind.established
        ]
        return max(serials) if serials else 0

    # ------------------------------------------------------------------
    # for the mode modules (and informational)

    def conn_entry(self, name: str) -> _Conn:
        return self._conns[name]

    def log_state(self, st: State, text: str, rc: int = RC.LOG) -> None:
        self._events.append(LogLine(text, int(rc), st.conn_name, st.serial, st.whack))

    def count(self, name: str) -> None:
        self.counters[name] = self.counters.get(name, 0) + 1

    def random(self, size: int) -> bytes:
        data = self.random_bytes(size)
        if len(data) != size:
            raise ValueError("random source returned the wrong number of bytes")
        return data

    def new_cookie(self) -> bytes:
        while True:
            cookie = self.random(8)
            if cookie != ZERO_COOKIE and not any(
                k.startswith(cookie) or k.endswith(cookie) for k in self._by_cookies
            ):
                return cookie

    def new_spi(self) -> int:
        while True:
            spi = int.from_bytes(self.random(4), "big")
            if spi >= 0x100 and spi not in self._spis:
                self._spis.add(spi)
                return spi

    def new_message_id(self, p1: Phase1State) -> int:
        while True:
            message_id = int.from_bytes(self.random(4), "big")
            if message_id and message_id not in p1.message_ids:
                p1.message_ids.add(message_id)
                return message_id

    def _fraction(self) -> float:
        return int.from_bytes(self.random(4), "big") / 2**32

    def set_rcookie(self, st: Phase1State, rcookie: bytes) -> None:
        for key, value in list(self._by_cookies.items()):
            if value is st:
                del self._by_cookies[key]
        st.rcookie = rcookie
        self._by_cookies[st.cookies] = st

    def send(self, st: State, message: bytes) -> None:
        """The first message of an exchange (retransmitted on timeout)."""
        st.last_sent = message
        st.reply_to = None
        self._emit(st, message)

    def send_reply(self, st: State, md: MessageDigest, message: bytes) -> None:
        """An answer to ``md`` (sent again if ``md`` comes again)."""
        st.last_sent = message
        st.reply_to = md.raw
        self._emit(st, message)

    def send_oneshot(self, p1: Phase1State, message: bytes) -> None:
        """An informational message: sent once, never retransmitted."""
        self._emit(p1, message)

    def _emit(self, st: State, message: bytes) -> None:
        where: State = st
        if isinstance(st, Phase2State):
            p1 = self._states.get(st.isakmp_serial)
            if isinstance(p1, Phase1State):
                where = p1
        data = add_non_esp_marker(message) if where.local_port == self.natt_port else message
        self._datagrams.append(
            Datagram(data, where.local_port, where.remote_addr, where.remote_port, where.local_addr)
        )

    def replaced_clients(self, st: Phase2State) -> tuple[IPNetwork, IPNetwork] | None:
        """(our client, peer client) of the IPsec SA ``st`` replaces, if it is still here:
        a rekey keeps what was negotiated (a NAT'ed peer's virtual address among it)."""
        old = self._states.get(st.replaces) if st.replaces else None
        if isinstance(old, Phase2State) and old.our_client is not None and old.peer_client is not None:
            return old.our_client, old.peer_client
        return None

    def isakmp_of(self, st: Phase2State) -> Phase1State:
        p1 = self._states.get(st.isakmp_serial)
        if not isinstance(p1, Phase1State) or p1.keys is None:
            raise ExchangeError("ISAKMP SA of this Quick Mode is gone", delete=True)
        return p1

    def switch_connection(self, st: State, entry: _Conn) -> None:
        if st.connection is entry.oriented:
            return
        if st.kind not in (StateKind.MAIN_R0, StateKind.AGGR_R0, StateKind.QUICK_R0):
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
            self._note_inbound(p1, md)

    def _note_inbound(self, p1: Phase1State, md: MessageDigest) -> None:
        """An authenticated message on an established ISAKMP SA: DPD and NAT rebinding."""
        p1.last_inbound = md.now
        p1.dpd_pending_since = None
        if (md.remote_addr, md.remote_port) == (p1.remote_addr, p1.remote_port):
            if md.local_port != p1.local_port:
                p1.local_port = md.local_port
            return
        old = f"{p1.remote_addr}:{p1.remote_port}"
        old_addr = p1.remote_addr
        p1.remote_addr, p1.remote_port, p1.local_port = (
            md.remote_addr,
            md.remote_port,
            md.local_port,
        )
        children = []
        for st in self._states.values():
            if (
                isinstance(st, Phase2State)
                and st.conn_name == p1.conn_name
                and st.peer_id == p1.peer_id
            ):
                st.remote_addr, st.remote_port, st.local_port = (
                    md.remote_addr,
                    md.remote_port,
                    md.local_port,
                )
                if st.peer_client == ipaddress.ip_network(old_addr):
                    # a host-only peer's client is its address: it moved along
                    st.peer_client = ipaddress.ip_network(md.remote_addr)
                children.append(st.serial)
        self.log_state(p1, f"NAT-T: peer moved from {old} to {self._peer(md)}; following it")
        self._events.append(
            PeerAddressChanged(
                p1.conn_name, p1.serial, md.remote_addr, md.remote_port, tuple(sorted(children))
            )
        )
        entry = self._conns.get(p1.conn_name)
        if entry is not None and md.remote_addr != old_addr:
            # a new address, not just a new port: the IPsec SAs are bound to the old one,
            # so replace the newest at once over this ISAKMP SA (make before break)
            newest = self._states.get(entry.newest_ipsec)
            if isinstance(newest, Phase2State) and newest.isakmp_serial == p1.serial:
                self._start_quick(entry, p1, md.now, None, 1, newest.serial)

    def first_contact(self, st: Phase1State) -> bool:
        """True when we hold no other state with this peer (send INITIAL_CONTACT)."""
        peer = st.peer_id if st.peer_id is not None else st.connection.that.id
        for other in self._states.values():
            if other is st:
                continue
            if other.remote_addr == st.remote_addr or (
                not peer.is_any and other.peer_id is not None and other.peer_id == peer
            ):
                return False
        return True

    def initial_contact(self, p1: Phase1State) -> None:
        """The peer lost its state: drop everything older we hold for its ID."""
        victims = [
            s
            for s in self._states.values()
            if s is not p1
            and s.serial < p1.serial
            and s.peer_id is not None
            and s.peer_id == p1.peer_id
            and not (isinstance(s, Phase2State) and s.isakmp_serial == p1.serial)
        ]
        if not victims:
            return
        self.log_state(
            p1,
            f"received INITIAL_CONTACT: deleting {len(victims)} older state(s) of "
            f"peer '{p1.peer_id}'",
        )
        for st in sorted(victims, key=lambda s: (isinstance(s, Phase1State), -s.serial)):
            self._delete_state(st, "INITIAL_CONTACT from peer", notify_peer=False)

    def peer_error(self, p1: Phase1State, n: NotificationPayload) -> None:
        """An authenticated error notification: fail what it is about."""
        name = name_of(n.type)
        rc = RC.NOTIFICATION + int(n.type)
        pending = [
            s
            for s in self._states.values()
            if isinstance(s, Phase2State)
            and s.isakmp_serial == p1.serial
            and s.kind is StateKind.QUICK_I1
        ]
        if n.protocol == ProtocolId.ESP and len(n.spi) == 4:
            spi = int.from_bytes(n.spi, "big")
            pending = [s for s in pending if s.our_spi == spi] or pending
        if pending and (n.protocol == ProtocolId.ESP or p1.kind.is_isakmp_established):
            st = min(pending, key=lambda s: s.serial)
            self.log_state(st, f"{st.kind.label}: {name}", rc)
            self._delete_state(st, f"peer sent {name}", notify_peer=False)
            return
        self.log_state(p1, f"{p1.kind.label}: {name}", rc)
        if not p1.kind.is_isakmp_established:
            self._delete_state(p1, f"peer sent {name}", notify_peer=False)

    def delete_by_cookies(self, p1: Phase1State, cookies: bytes) -> None:
        target = self._by_cookies.get(cookies)
        if target is None or (target is not p1 and target.peer_id != p1.peer_id):
            self.log_state(p1, "ignoring Delete SA payload: ISAKMP SA not found")
            return
        self.log_state(
            target, f"received Delete SA payload: deleting ISAKMP State #{target.serial}"
        )
        self._delete_state(target, "deleted by peer", notify_peer=False)

    def delete_by_spi(self, p1: Phase1State, spi: int) -> None:
        for st in sorted(self._states.values(), key=lambda s: s.serial):
            if (
                isinstance(st, Phase2State)
                and st.installed
                and st.peer_spi == spi
                and (st.peer_id == p1.peer_id or st.remote_addr == p1.remote_addr)
            ):
                self.log_state(st, f"received Delete SA payload: deleting IPSEC State #{st.serial}")
                self._delete_state(st, "deleted by peer", notify_peer=False)
                return
        self.log_state(p1, f"ignoring Delete SA payload: IPsec SA with SPI 0x{spi:08x} not found")

    # -- secrets and keys -----------------------------------------------

    def psk_for(self, st: Phase1State) -> bytes | None:
        """The PSK for this negotiation (see main_mode's note on road warriors)."""
        oriented = st.connection
        if st.initiator or st.peer_id is not None:
            peer = st.peer_id if (st.peer_id is not None and not st.initiator) else oriented.that.id
            secret = self._secrets.find_psk(oriented.this.id, peer)
            return None if secret is None else bytes(secret.value)  # type: ignore[arg-type]
        return self._responder_psk(oriented)

    def _responder_psk(self, oriented: OrientedConnection) -> bytes | None:
        that = oriented.that
        if that.host is None or that.id.is_any:
            secret = self._secrets.find_psk(oriented.this.id, ANY_ID)
            if secret is None and not that.id.is_any:
                secret = self._secrets.find_psk(oriented.this.id, that.id)
        else:
            secret = self._secrets.find_psk(oriented.this.id, that.id)
        return None if secret is None else bytes(secret.value)  # type: ignore[arg-type]

    def our_private_key(self, oriented: OrientedConnection) -> rsa.RSAPrivateKey | None:
        public = None
        text = oriented.this.end.rsasigkey or ""
        if text[:2].lower() in ("0s", "0x") or "-----BEGIN" in text:
            try:
                public = load_public_key(text)
            except KeyFormatError:
                public = None
        secret = self._secrets.find_rsa(oriented.this.id, public)
        if secret is None or not isinstance(secret.value, rsa.RSAPrivateKey):
            return None
        return secret.value

    def peer_public_keys(
        self, oriented: OrientedConnection, peer_id: Identity | None = None
    ) -> tuple:
        """Every key the peer may sign with: ``rightrsasigkey=`` and ``rightrsasigkey2=``
        (rollover), or for ``%dns*`` the keys the shell fetched for the peer's ID."""
        entry = self._conns.get(oriented.name)
        if entry is not None and entry.oriented is oriented and entry.peer_keys_loaded:
            configured = entry.peer_keys
        else:
            configured = tuple(
                key
                for key in (
                    _load_key(oriented.that.end.rsasigkey),
                    _load_key(oriented.that.end.rsasigkey2),
                )
                if key is not None
            )
            if entry is not None and entry.oriented is oriented:
                entry.peer_keys, entry.peer_keys_loaded = configured, True
        if (oriented.that.end.rsasigkey or "").startswith("%dns"):
            who = peer_id if peer_id is not None else oriented.that.id
            return configured + self._dns_keys.get(who, ())
        return configured

    # -- connection selection -------------------------------------------

    def _responder_candidates(
        self, local: IPAddress, remote: IPAddress, auths: Iterable[int], aggressive: bool
    ) -> list[_Conn]:
        wanted = set(int(a) for a in auths)
        exact, wild = [], []
        for entry in self._conns.values():
            o = entry.oriented
            if not local.is_unspecified and o.this.host != local:
                continue
            if not wanted & set(entry.auths) or o.this.host is None:
                continue
            if local.is_unspecified and o.this.host.version != remote.version:
                continue
            if entry.conn.type not in (ConnType.TUNNEL, ConnType.TRANSPORT):
                continue
            if aggressive and not entry.conn.aggrmode:
                continue
            if o.that.host == remote:
                exact.append(entry)
            elif o.that.host is None:
                wild.append(entry)
        return exact + wild

    def refine_connection(self, st: Phase1State, peer: Identity) -> _Conn | None:
        """pluto's refine_connection: the best conn for the peer's proven-to-be ID."""
        current = self._conns.get(st.conn_name)
        others = [c for c in self._conns.values() if c is not current]
        best, best_score = None, -1
        for entry in ([current] if current is not None else []) + others:
            o = entry.oriented
            if o.this.host != st.local_addr:
                continue
            if o.that.host is not None and o.that.host != st.remote_addr:
                continue
            if st.auth not in entry.auths or not ids_match(o.that.id, peer):
                continue
            if st.aggressive and not entry.conn.aggrmode:
                continue
            if st.auth == _PSK:
                psk = self._responder_psk(o)
                if psk is None or st.psk is None or not constant_time_equal(psk, st.psk):
                    continue
            score = (2 if o.that.id == peer else 0) + (1 if o.that.host is not None else 0)
            if score > best_score:
                best, best_score = entry, score
        return best

    def clients(self, entry: _Conn, p1: Phase1State) -> tuple[IPNetwork, IPNetwork]:
        """(our client, peer client): subnets, or the phase-1 hosts."""
        o = entry.oriented
        ours = o.this.end.subnet or ipaddress.ip_network(p1.local_addr)
        peers = o.that.end.subnet or ipaddress.ip_network(p1.remote_addr)
        return ours, peers

    def find_client_connection(
        self,
        p1: Phase1State,
        our_client: IPNetwork,
        peer_client: IPNetwork,
        our_protoport: tuple[int, int] = (0, 0),
        peer_protoport: tuple[int, int] = (0, 0),
    ) -> _Conn | None:
        """The conn (sharing this ISAKMP SA's peer) whose clients are exactly these.

        Protocol and port match exactly as pluto's did, except that a conn's
        port 0 (``leftprotoport=17/%any``) accepts any port of that protocol."""
        current = self._conns.get(p1.conn_name)
        others = [c for c in self._conns.values() if c is not current]
        #: a host-only conn that a NAT'ed peer naming its private address missed
        hint: str | None = None
        for entry in ([current] if current is not None else []) + others:
            o = entry.oriented
            if entry is not current:
                if o.this.host != p1.local_addr:
                    continue
                if o.that.host is not None and o.that.host != p1.remote_addr:
                    continue
                if p1.peer_id is None or not ids_match(o.that.id, p1.peer_id):
                    continue
                if p1.auth not in entry.auths:
                    continue
            ours, peers = self.clients(entry, p1)
            if ours != our_client:
                continue
            if not (
                _protoport_matches(o.this.end.protoport, our_protoport)
                and _protoport_matches(o.that.end.protoport, peer_protoport)
            ):
                continue
            virtual = o.that.end.virtual
            if virtual is None:
                if peers == peer_client:
                    return entry
                if o.that.end.subnet is None and p1.nat_peer and hint is None:
                    hint = entry.oriented.conn.name
                continue
            if virtual.allows(peer_client, p1.remote_addr, self.virtual_private):
                # the peer behind NAT names its private address or net (the source of
                # its inner packets), and the conn's vhost:/vnet: list allows it
                if peer_client != peers:
                    self.log_state(
                        p1,
                        f"NAT-T: accepting {peer_client} as the virtual client of the peer "
                        f"at {p1.remote_addr} (subnet={virtual})",
                    )
                return entry
            self.log_state(
                p1,
                f"NAT-T: {peer_client} proposed by the peer at {p1.remote_addr} is not allowed "
                f"by subnet={virtual} of \"{entry.oriented.conn.name}\""
                + ("" if virtual.no_nat or not virtual.private or self.virtual_private.allowed
                   else " (virtual_private= is empty)"),
            )
        if self.client_checks and p1.peer_id is not None:
            check = ClientCheck(p1.local_addr, p1.remote_addr, p1.peer_id, our_client, peer_client)
            if check not in self._checks_refused:
                raise ClientCheckPending(check)
        if hint is not None:
            self.log_state(
                p1,
                f"NAT-T: the peer behind NAT at {p1.remote_addr} names {peer_client} as its "
                f"client; \"{hint}\" accepts only the peer's own address: use "
                f"rightsubnet=vhost:%priv,%no with virtual_private= to allow it",
            )
        return None

    def describe_request(
        self,
        p1: Phase1State,
        our_client: IPNetwork,
        peer_client: IPNetwork,
        our_protoport: tuple[int, int] = (0, 0),
        peer_protoport: tuple[int, int] = (0, 0),
    ) -> str:
        """``203.0.113.0/25===192.0.2.2[@east]:17/1701...192.0.2.1[@west]===198.51.100.0/25``
        (pluto's topology form; ``:proto/port`` only when not 0/0)."""

        def end(client: IPNetwork, host: IPAddress, ident: Identity | None,
                protoport: tuple[int, int], left: bool) -> str:
            text = str(host)
            if ident is not None and str(ident) != str(host):
                text += f"[{ident}]"
            if protoport != (0, 0):
                text += f":{protoport[0]}/{protoport[1]}"
            if client != ipaddress.ip_network(host):
                text = f"{client}==={text}" if left else f"{text}==={client}"
            return text

        return (
            end(our_client, p1.local_addr, p1.connection.this.id, our_protoport, True)
            + "..."
            + end(peer_client, p1.remote_addr, p1.peer_id, peer_protoport, False)
        )

    # ------------------------------------------------------------------
    # status

    def state_lines(self, now: float) -> list[str]:
        """pluto's ``--status`` state lines (without the ``000 `` prefix)."""
        lines = []
        for st in sorted(self._states.values(), key=lambda s: s.serial):
            entry = self._conns.get(st.conn_name)
            parts = [f'#{st.serial}: "{st.conn_name}" {st.kind.label} ({st.kind.story})']
            if st.event is not None and st.event_at is not None:
                parts.append(f"{st.event.value} in {max(0, int(st.event_at - now))}s")
            if isinstance(st, Phase1State):
                if entry is not None and entry.newest_isakmp == st.serial:
                    parts.append("newest ISAKMP")
                lines.append("; ".join(parts))
            else:
                assert isinstance(st, Phase2State)
                if entry is not None and entry.newest_ipsec == st.serial:
                    parts.append("newest IPSEC")
                lines.append("; ".join(parts) + ";")
                if st.installed:
                    lines.append(
                        f'#{st.serial}: "{st.conn_name}" esp.{st.peer_spi:x}@{st.remote_addr} '
                        f"esp.{st.our_spi:x}@{st.local_addr}"
                    )
        return lines

    def state_dicts(self, now: float) -> list[dict]:
        """The same facts as :meth:`state_lines`, for JSON."""
        out = []
        for st in sorted(self._states.values(), key=lambda s: s.serial):
            entry = self._conns.get(st.conn_name)
            item: dict[str, Any] = {
                "serial": st.serial,
                "connection": st.conn_name,
                "state": st.kind.label,
                "state_number": int(st.kind),
                "story": st.kind.story,
                "initiator": st.initiator,
                "event": st.event.value if st.event else None,
                "event_in": (max(0.0, st.event_at - now) if st.event_at is not None else None),
                "local": f"{st.local_addr}:{st.local_port}",
                "remote": f"{st.remote_addr}:{st.remote_port}",
                "peer_id": str(st.peer_id) if st.peer_id is not None else None,
            }
            if isinstance(st, Phase1State):
                item.update(
                    kind="ISAKMP",
                    newest=entry is not None and entry.newest_isakmp == st.serial,
                    icookie=st.icookie.hex(),
                    rcookie=st.rcookie.hex(),
                    proposal=str(st.proposal) if st.proposal else None,
                    auth=_AUTH_POLICY.get(st.auth),
                    aggressive=st.aggressive,
                    nat_traversal=st.natt,
                    nat_local=st.nat_us,
                    nat_remote=st.nat_peer,
                    dpd=bool(st.peer_dpd and entry is not None and entry.conn.dpddelay),
                )
            else:
                assert isinstance(st, Phase2State)
                item.update(
                    kind="IPSEC",
                    newest=entry is not None and entry.newest_ipsec == st.serial,
                    isakmp_serial=st.isakmp_serial,
                    inbound_spi=f"{st.our_spi:08x}",
                    outbound_spi=f"{st.peer_spi:08x}",
                    proposal=str(st.proposal) if st.proposal else None,
                    mode="tunnel" if st.tunnel else "transport",
                    udp_encapsulated=st.udp,
                    local_client=str(st.our_client) if st.our_client else None,
                    remote_client=str(st.peer_client) if st.peer_client else None,
                    installed=st.installed,
                )
            out.append(item)
        return out

    # ------------------------------------------------------------------
    # small helpers

    def _serial(self) -> int:
        serial = self._next_serial
        self._next_serial += 1
        return serial

    def _log(self, text: str, rc: int = RC.LOG) -> None:
        self._events.append(LogLine(text, int(rc), None, None, None))

    def _log_conn(self, name: str, text: str, rc: int = RC.LOG) -> None:
        self._events.append(LogLine(text, int(rc), name, None, None))

    def _whacks_of(self, st: State) -> list[object]:
        found: list[object] = []
        candidates = [st.whack]
        if isinstance(st, Phase1State):
            candidates += [w for w, _ in st.pending]
        for whack in candidates:
            if whack is not None and not any(w is whack for w in found):
                found.append(whack)
        return found

    def _release(self, whack: object | None, ok: bool) -> None:
        if whack is not None:
            self._events.append(WhackDone(whack, ok))


_HANDLERS: dict[str, Callable[..., None]] = {}


def _handler(name: str) -> Callable[..., None]:
    """Resolve ``module.function`` from the transition table (once)."""
    found = _HANDLERS.get(name)
    if found is None:
        module, _, function = name.partition(".")
        found = getattr(importlib.import_module(f"fswan.ike.{module}"), function)
        _HANDLERS[name] = found
    return found


def _load_key(text: str | None):
    """A configured public key, or None for ``%`` words and anything unparsable."""
    if not text or text.startswith("%"):
        return None
    try:
        return load_public_key(text)
    except (KeyFormatError, ValueError):
        return None


def _protoport_matches(wanted: tuple[int, int] | None, got: tuple[int, int]) -> bool:
    protocol, port = wanted or (0, 0)
    return got[0] == protocol and (got[1] == port or (port == 0 and protocol != 0))
