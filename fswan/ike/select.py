"""Connection and key choice: which conn a negotiation runs under, and with what secrets.

pluto's connections.c for the engine: the responder's search for a conn that
may answer an initial message (``responder_candidates``), the switch once the
peer has proved its ID (``refine_connection``, road warriors), the conn whose
clients a Quick Mode names (``find_client_connection``, with ``virtual_private=``
and, for opportunistic encryption, a question to the shell), and the PSKs and
RSA keys from ipsec.secrets, ipsec.conf and DNS.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

from cryptography.hazmat.primitives.asymmetric import rsa

from fswan.config import roadwarrior
from fswan.config.ids import ANY_ID, IdKind, Identity
from fswan.config.keys import KeyFormatError, load_public_key
from fswan.config.model import AuthBy, Connection, ConnType, IPAddress, IPNetwork
from fswan.config.orient import OrientedConnection
from fswan.config.secrets import Secrets
from fswan.config.virtual import VirtualPrivate
from fswan.ike.certauth import NO_CREDENTIALS, Credentials, TrustStore, ca_allows, ecdsa_methods
from fswan.ike.crypto import constant_time_equal
from fswan.ike.events import ClientCheck
from fswan.ike.outbox import Outbox
from fswan.ike.state import ClientCheckPending, Phase1State
from fswan.ikev2.suites import ike_proposals
from fswan.isakmp.constants import OakleyAuth
from fswan.pki.dn import DNError, dn_match, parse_dn
from fswan.suites import (
    DEFAULT_ESP_PROPOSALS,
    DEFAULT_IKE_PROPOSALS,
    EspProposal,
    IkeProposal,
    ProposalError,
    ikev1_unusable,
    parse_esp,
    parse_ike,
    with_pfs_group,
)

__all__ = ["ConnEntry", "Connections", "ids_match"]

_PSK = OakleyAuth.OAKLEY_PRESHARED_KEY
_RSA = OakleyAuth.OAKLEY_RSA_SIG


class Candidates:
    """Conns in preference order, taken from their source only as far as they are read."""

    def __init__(self, source: Iterator[ConnEntry]) -> None:
        self._source: Iterator[ConnEntry] | None = source
        self._taken: list[ConnEntry] = []

    def _take(self, count: int) -> bool:
        while len(self._taken) < count and self._source is not None:
            entry = next(self._source, None)
            if entry is None:
                self._source = None
            else:
                self._taken.append(entry)
        return len(self._taken) >= count

    def __bool__(self) -> bool:
        return self._take(1)

    def __getitem__(self, index: int) -> ConnEntry:
        if not self._take(index + 1):
            raise IndexError(index)
        return self._taken[index]

    def __iter__(self) -> Iterator[ConnEntry]:
        index = 0
        while self._take(index + 1):
            yield self._taken[index]
            index += 1


def ids_match(wanted: Identity, actual: Identity) -> bool:
    """``rightid=`` (or its %any default) against what the peer declared: ``%fromcert``
    takes any ID (its certificate must vouch for it), a DN with ``*`` values matches
    pluto's way (``pki.dn.dn_match``)."""
    if wanted.is_any or wanted == actual or wanted.kind is IdKind.FROMCERT:
        return True
    if wanted.kind is IdKind.DER_ASN1_DN and actual.kind is IdKind.DER_ASN1_DN:
        try:
            return dn_match(parse_dn(wanted.value), parse_dn(actual.value)) is not None
        except DNError:
            return False
    return False


@dataclass(eq=False)
class ConnEntry:
    """A connection as the engine runs it: config, parsed proposals, newest SAs."""

    oriented: OrientedConnection
    ike: tuple[IkeProposal, ...]
    esp: tuple[EspProposal, ...]
    newest_isakmp: int = 0
    newest_ipsec: int = 0
    #: the peer's keys from ``rightrsasigkey=``/``rightrsasigkey2=`` (parsed once)
    peer_keys: tuple = ()
    peer_keys_loaded: bool = False
    #: certificates and key (``ike/certauth.py``), loaded by the daemon
    creds: Credentials = NO_CREDENTIALS

    @property
    def name(self) -> str:
        return self.oriented.name

    @property
    def conn(self) -> Connection:
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
        if by is AuthBy.ECDSA:
            return ecdsa_methods(self.creds)
        return ()


#: XAUTH auth methods on the wire -> the base method whose keys and HASH/SIG they use;
#: "Init" means the IKE initiator is the XAUTH client (draft-ietf-ipsec-isakmp-xauth-06)
XAUTH_METHODS: dict[int, int] = {
    int(OakleyAuth.XAUTH_INIT_PRESHARED): int(_PSK),
    int(OakleyAuth.XAUTH_RESP_PRESHARED): int(_PSK),
    int(OakleyAuth.XAUTH_INIT_RSA): int(_RSA),
    int(OakleyAuth.XAUTH_RESP_RSA): int(_RSA),
}
_XAUTH_INIT = {int(_PSK): int(OakleyAuth.XAUTH_INIT_PRESHARED), int(_RSA): int(OakleyAuth.XAUTH_INIT_RSA)}
_XAUTH_RESP = {int(_PSK): int(OakleyAuth.XAUTH_RESP_PRESHARED), int(_RSA): int(OakleyAuth.XAUTH_RESP_RSA)}


def wire_auths(entry: ConnEntry, initiator: bool) -> tuple[int, ...]:
    """The auth methods a conn proposes (``initiator``) or accepts: with XAUTH, the
    XAUTHInit*/XAUTHResp* twins of its methods, by who is the XAUTH client."""
    o = entry.oriented
    client, server = roadwarrior.xauth_client(o), roadwarrior.xauth_server(o)
    if not (client or server):
        return entry.auths
    # XAUTHInit* when the IKE initiator is the XAUTH client, XAUTHResp* when the responder is
    table = _XAUTH_INIT if (client if initiator else server) else _XAUTH_RESP
    return tuple(table.get(int(a), int(a)) for a in entry.auths)


def base_auth(method: int) -> int:
    """The method whose keys and HASH/SIG an XAUTH method uses (others: itself)."""
    return XAUTH_METHODS.get(int(method), int(method))


class Connections:
    """The engine's conns (by name) and the secrets and keys they use."""

    def __init__(self, secrets: Secrets, out: Outbox) -> None:
        self.secrets = secrets
        self._out = out
        self.entries: dict[str, ConnEntry] = {}
        #: conns by the peer's host (None: ``%any``) and by the peer's ID, each in the
        #: order of ``entries``: a search looks only where a match can be
        self._by_host: dict[IPAddress | None, dict[str, ConnEntry]] = {}
        self._by_id: dict[Identity, dict[str, ConnEntry]] = {}
        #: when each name was first added (``entries``' order, for ties)
        self._order: dict[str, int] = {}
        #: buckets sorted in that order, until the conns change
        self._sorted: dict[tuple[int, Any], list[ConnEntry]] = {}
        self._added = 0
        #: ``virtual_private=`` of config setup: what ``vhost:%priv`` peers may claim
        self.virtual_private = VirtualPrivate()
        #: certificates: the trust anchors and CRLs (``pki.store.CertStore``), the CRL
        #: policy and ``nocrsend=`` of config setup
        self.trust: TrustStore | None = None
        self.strict_crl = False
        self.nocrsend = False
        #: peer keys by ID from outside ipsec.conf (``IkeEngine.set_peer_keys``)
        self.dns_keys: dict[Identity, tuple] = {}
        #: IDs whose key lookup failed (their messages are then refused)
        self.key_failed: set[Identity] = set()
        #: ask the shell (ClientCheckNeeded) about Quick Mode clients no conn covers
        self.client_checks = False
        #: checks the shell has answered, while their held messages are replayed
        self.checks_answered: set[ClientCheck] = set()

    def add(self, oriented: OrientedConnection, creds: Credentials = NO_CREDENTIALS) -> None:
        """Add (or replace the config of) a connection; ProposalError for a bad ike=/esp=."""
        conn = oriented.conn
        ike = parse_ike(conn.ike) if conn.ike else DEFAULT_IKE_PROPOSALS
        if conn.accepts_ikev1 and (why := ikev1_unusable(ike)) is not None:
            raise ProposalError(f"ike={conn.ike}: {why}")
        if conn.initiates_ikev2:
            ike_proposals(ike)  # ProposalError when none is one IKEv2 can run (3DES only)
        esp = with_pfs_group(parse_esp(conn.esp) if conn.esp else DEFAULT_ESP_PROPOSALS, conn.pfsgroup)
        entry = ConnEntry(oriented, tuple(ike), tuple(esp), creds=creds)
        self._sorted.clear()
        old = self.entries.get(oriented.name)
        if old is not None:
            entry.newest_isakmp, entry.newest_ipsec = old.newest_isakmp, old.newest_ipsec
            self._unindex(old)
        else:
            self._order[oriented.name] = self._added
            self._added += 1
        self.entries[oriented.name] = entry
        self._by_host.setdefault(oriented.that.host, {})[oriented.name] = entry
        self._by_id.setdefault(_id_key(oriented.that.id), {})[oriented.name] = entry

    def remove(self, name: str) -> None:
        entry = self.entries.pop(name, None)
        self._sorted.clear()
        if entry is not None:
            self._unindex(entry)
            del self._order[name]

    def _unindex(self, entry: ConnEntry) -> None:
        _forget(self._by_host, entry.oriented.that.host, entry.name)
        _forget(self._by_id, _id_key(entry.oriented.that.id), entry.name)

    def _in_order(self, *buckets: dict[str, ConnEntry] | None) -> list[ConnEntry]:
        found: dict[str, ConnEntry] = {}
        for bucket in buckets:
            if bucket:
                found.update(bucket)
        order = self._order
        return sorted(found.values(), key=lambda e: order[e.name])

    def _bucket_in_order(self, index: dict[Any, dict[str, ConnEntry]], key: Any) -> list[ConnEntry]:
        """One bucket in ``entries``' order, sorted once per change of the conns."""
        cached = self._sorted.get((id(index), key))
        if cached is None:
            cached = self._sorted[(id(index), key)] = self._in_order(index.get(key))
        return cached

    def for_peer(self, remote: IPAddress) -> list[ConnEntry]:
        """Conns whose peer may be at ``remote``: that host, or ``%any``."""
        return self._in_order(self._by_host.get(remote), self._by_host.get(None))

    def for_peer_id(self, peer: Identity) -> list[ConnEntry]:
        """Conns whose ``rightid=`` accepts ``peer``: that ID, or ``%any``."""
        return self._in_order(self._by_id.get(_id_key(peer)), self._by_id.get(ANY_ID))

    def for_peer_at(self, remote: IPAddress, peer: Identity | None) -> list[ConnEntry]:
        """A superset of the conns for ``peer`` at ``remote``: the smaller of the two
        indexes' candidates (each conn in it still needs both checks)."""
        by_host = len(self._by_host.get(remote, ())) + len(self._by_host.get(None, ()))
        if peer is not None:
            by_id = len(self._by_id.get(_id_key(peer), ())) + len(self._by_id.get(ANY_ID, ()))
            if by_id < by_host:
                return self.for_peer_id(peer)
        return self.for_peer(remote)

    def get(self, name: str) -> ConnEntry | None:
        return self.entries.get(name)

    def __getitem__(self, name: str) -> ConnEntry:
        return self.entries[name]

    def __contains__(self, name: object) -> bool:
        return name in self.entries

    def set_secrets(self, secrets: Secrets) -> None:
        self.secrets = secrets
        for entry in self.entries.values():
            entry.peer_keys_loaded = False

    def store_peer_keys(self, identity: Identity, keys: list) -> None:
        """Keys fetched for an ID (an empty list: the lookup failed)."""
        if keys:
            self.dns_keys[identity] = tuple(keys)
            self.key_failed.discard(identity)
        else:
            self.dns_keys.pop(identity, None)
            self.key_failed.add(identity)

    def may_fetch_key(self, oriented: OrientedConnection, identity: Identity) -> bool:
        """True when the conn's peer key comes from DNS and no lookup for it has failed."""
        source = (oriented.that.end.rsasigkey or "").strip()
        return source.startswith("%dns") and identity not in self.key_failed

    def peer_key_source(self, name: str) -> str | None:
        """``%dns``/``%dnsonload``/``%dnsondemand`` when the conn's peer key comes from DNS."""
        entry = self.entries.get(name)
        if entry is None:
            return None
        text = (entry.oriented.that.end.rsasigkey or "").strip()
        return text if text.startswith("%dns") else None

    # -- secrets and keys -----------------------------------------------

    def psk_for(self, st: Phase1State) -> bytes | None:
        """The PSK for this negotiation (see main_mode's note on road warriors)."""
        oriented = st.connection
        if st.initiator or st.peer_id is not None:
            peer = st.peer_id if (st.peer_id is not None and not st.initiator) else oriented.that.id
            secret = self.secrets.find_psk(oriented.this.id, peer)
            return None if secret is None else bytes(secret.value)  # type: ignore[arg-type]
        return self._responder_psk(oriented)

    def _responder_psk(self, oriented: OrientedConnection) -> bytes | None:
        that = oriented.that
        if that.host is None or that.id.is_any:
            secret = self.secrets.find_psk(oriented.this.id, ANY_ID)
            if secret is None and not that.id.is_any:
                secret = self.secrets.find_psk(oriented.this.id, that.id)
        else:
            secret = self.secrets.find_psk(oriented.this.id, that.id)
        return None if secret is None else bytes(secret.value)  # type: ignore[arg-type]

    def our_private_key(self, oriented: OrientedConnection) -> rsa.RSAPrivateKey | None:
        public = None
        text = oriented.this.end.rsasigkey or ""
        if text[:2].lower() in ("0s", "0x") or "-----BEGIN" in text:
            try:
                public = load_public_key(text)
            except KeyFormatError:
                public = None
        secret = self.secrets.find_rsa(oriented.this.id, public)
        if secret is None or not isinstance(secret.value, rsa.RSAPrivateKey):
            return None
        return secret.value

    def peer_public_keys(
        self, oriented: OrientedConnection, peer_id: Identity | None = None
    ) -> tuple:
        """Every key the peer may sign with: ``rightrsasigkey=`` and ``rightrsasigkey2=``
        (rollover), or for ``%dns*`` the keys the shell fetched for the peer's ID."""
        entry = self.entries.get(oriented.name)
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
            return configured + self.dns_keys.get(who, ())
        return configured

    def responder_candidates(
        self, local: IPAddress, remote: IPAddress, auths: Iterable[int], aggressive: bool,
        ikev2: bool = False,
    ) -> Candidates:
        """The conns that may answer a first message from ``remote``: those naming that
        host first, then ``%any`` ones, each in ``entries``' order.  Lazy: a first
        message usually needs only the first, however many conns share the peer."""
        wanted = set(int(a) for a in auths)
        unspecified = local.is_unspecified

        def matching() -> Iterator[ConnEntry]:
            for bucket in (self._bucket_in_order(self._by_host, remote),
                           self._bucket_in_order(self._by_host, None)):
                for entry in bucket:
                    this = entry.oriented.this.host
                    if this is None or (not unspecified and this != local):
                        continue
                    if not wanted.intersection(wire_auths(entry, False)):
                        continue
                    if unspecified and this.version != remote.version:
                        continue
                    if entry.conn.type not in (ConnType.TUNNEL, ConnType.TRANSPORT):
                        continue
                    if aggressive and not entry.conn.aggrmode:
                        continue
                    if not (entry.conn.accepts_ikev2 if ikev2 else entry.conn.accepts_ikev1):
                        continue
                    yield entry

        return Candidates(matching())

    def refine_connection(
        self, st: Phase1State, peer: Identity, issuers: list | None = None
    ) -> ConnEntry | None:
        """pluto's refine_connection: the best conn for the peer's proven-to-be ID (and,
        with certificates, whose ``rightca=`` is among the ``issuers`` they name)."""
        current = self.entries.get(st.conn_name)
        others = [c for c in self.for_peer_id(peer) if c is not current]
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
            if issuers is not None and not ca_allows(entry.creds, issuers):
                continue
            if st.auth == _PSK:
                psk = self._responder_psk(o)
                if psk is None or st.psk is None or not constant_time_equal(psk, st.psk):
                    continue
            score = (4 if o.that.id == peer else 0) + (1 if o.that.host is not None else 0)
            score += 2 if entry.creds.peer_ca is not None else 0
            if score > best_score:
                best, best_score = entry, score
        return best

    def clients(self, entry: ConnEntry, p1: Phase1State) -> tuple[IPNetwork, IPNetwork]:
        """(our client, peer client): subnets, or the phase-1 hosts; a Mode Config address
        stands for the client's host (ours as client, the peer's as server)."""
        o = entry.oriented
        ours = o.this.end.subnet or ipaddress.ip_network(p1.local_addr)
        peers = o.that.end.subnet or ipaddress.ip_network(p1.remote_addr)
        if p1.virtual_ip is not None:
            if p1.virtual_ip_ours:
                ours = ipaddress.ip_network(p1.virtual_ip)
            else:
                peers = ipaddress.ip_network(p1.virtual_ip)
        return ours, peers

    def find_client_connection(
        self,
        p1: Phase1State,
        our_client: IPNetwork,
        peer_client: IPNetwork,
        our_protoport: tuple[int, int] = (0, 0),
        peer_protoport: tuple[int, int] = (0, 0),
    ) -> ConnEntry | None:
        """The conn (sharing this ISAKMP SA's peer) whose clients are exactly these.

        Protocol and port match exactly as pluto's did, except that a conn's
        port 0 (``leftprotoport=17/%any``) accepts any port of that protocol."""
        current = self.entries.get(p1.conn_name)
        others = [c for c in self.for_peer_at(p1.remote_addr, p1.peer_id) if c is not current]
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
                    self._out.log_state(
                        p1,
                        f"NAT-T: accepting {peer_client} as the virtual client of the peer "
                        f"at {p1.remote_addr} (subnet={virtual})",
                    )
                return entry
            self._out.log_state(
                p1,
                f"NAT-T: {peer_client} proposed by the peer at {p1.remote_addr} is not allowed "
                f"by subnet={virtual} of \"{entry.oriented.conn.name}\""
                + ("" if virtual.no_nat or not virtual.private or self.virtual_private.allowed
                   else " (virtual_private= is empty)"),
            )
        if self.client_checks and p1.peer_id is not None:
            check = ClientCheck(p1.local_addr, p1.remote_addr, p1.peer_id, our_client, peer_client)
            if check not in self.checks_answered:
                raise ClientCheckPending(check)
        if hint is not None:
            self._out.log_state(
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


def _forget(index: dict[Any, dict[str, ConnEntry]], key: Any, name: str) -> None:
    bucket = index.get(key)
    if bucket is not None:
        bucket.pop(name, None)
        if not bucket:
            del index[key]


def _id_key(identity: Identity) -> Identity:
    """Every ``%any`` form under one key, with the patterns (``%fromcert``, DNs with
    ``*``): ``ids_match`` decides for each conn found there."""
    return ANY_ID if identity.is_any or identity.is_pattern else identity


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
