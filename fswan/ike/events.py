"""What the IKE engine hands back to its shell.

The engine is sans-IO (see ``docs/ARCHITECTURE.md``): it never sends, logs or
installs anything itself.  Everything it wants done comes out of
:meth:`IkeEngine.datagrams_to_send` (``Datagram``) and
:meth:`IkeEngine.next_events` (everything else) as the small frozen
dataclasses below, in the order things happened.  Keys travel in
:class:`~fswan.suites.EspKeys`, whose repr hides them, so printing an
event never leaks a secret.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Union

from fswan.config.ids import Identity
from fswan.config.model import IPAddress, IPNetwork
from fswan.suites import EspKeys, EspProposal

__all__ = [
    "ChildSADeleted",
    "ChildSAInstalled",
    "Datagram",
    "EngineEvent",
    "IsakmpSADeleted",
    "IsakmpSAEstablished",
    "LogLine",
    "PeerAddressChanged",
    "PeerKeyNeeded",
    "ClientCheck",
    "ClientCheckNeeded",
    "WhackDone",
    "XauthCheckNeeded",
    "VirtualIpAssigned",
    "VirtualIpReleased",
]


@dataclass(frozen=True)
class Datagram:
    """One UDP datagram for the shell to send."""

    #: the exact UDP payload; on the NAT-T port the 4-byte non-ESP marker is
    #: already prepended, and a NAT-T keepalive is the single byte ``b"\xff"``
    data: bytes
    #: our UDP port to send from (the engine's ``ike_port`` or ``natt_port``)
    local_port: int
    #: where to send it
    remote_addr: IPAddress
    remote_port: int
    #: our address to send from (the SA's; a multi-homed shell picks its socket
    #: by it), None when any will do
    local_addr: IPAddress | None = None


@dataclass(frozen=True)
class LogLine:
    """A pluto log line: to the log, and to ``whack`` when one is attached.

    ``text`` carries no prefix: the shell adds ``"conn" #serial: `` (see
    ``fswan.daemon.logging.prefixed``) and the ``NNN`` code for whack.
    """

    text: str
    #: pluto rc code (``fswan.whackproto.RC``): 0 comment, 2 log, 3 serious,
    #: 4 success, 10 retransmission, 31 gave up, 100+state new state,
    #: 200+notify a notification
    rc: int
    #: connection name, or None for lines about no particular connection
    conn: str | None
    #: state serial ``#N``, or None
    serial: int | None
    #: the token of the whack attached to this initiation/state, or None
    whack: object | None


@dataclass(frozen=True)
class WhackDone:
    """Release a whack: after the ``004 ... IPsec SA established`` line, or a final failure."""

    #: the token given to ``initiate``/``terminate``
    whack: object
    #: True when what it asked for happened
    ok: bool


@dataclass(frozen=True)
class ChildSAInstalled:
    """A pair of ESP SAs (one per direction) is ready for the data plane.

    The initiator emits it on QUICK_I2; the responder on QUICK_R2 (after
    HASH(3) proved the initiator has both keys), so both directions are
    installed together on each side.
    """

    #: connection name
    conn: str
    #: the Quick Mode state ``#N`` that owns these SAs
    serial: int
    #: the SPI we chose: packets the peer sends to us carry it
    inbound_spi: int
    #: the SPI the peer chose: packets we send carry it
    outbound_spi: int
    #: the negotiated transform
    proposal: EspProposal
    #: keys for inbound_spi (decrypting what the peer sends)
    inbound_keys: EspKeys
    #: keys for outbound_spi (what we send)
    outbound_keys: EspKeys
    #: ESP mode
    mode: Literal["tunnel", "transport"]
    #: True for RFC 3948 ESP-in-UDP (NAT-T negotiated and a NAT detected)
    udp_encapsulated: bool
    #: our address and (for ESP-in-UDP) our UDP port
    local_addr: IPAddress
    local_port: int
    #: the peer's address and port as we see them (after any NAT)
    remote_addr: IPAddress
    remote_port: int
    #: our protected client net (our host /32 for host-to-host)
    local_client: IPNetwork
    #: the peer's protected client net
    remote_client: IPNetwork
    #: hard lifetime of these SAs, seconds
    lifetime_seconds: float
    #: the older Quick Mode state this pair replaces (make-before-break), else None
    replaces_serial: int | None
    #: the XAUTH user of the ISAKMP SA under which it was negotiated (``PLUTO_XAUTH_USERNAME``)
    xauth_user: str | None = None
    #: RFC 3947 NAT-OA of a UDP-encapsulated transport-mode pair: (the peer's own address,
    #: ours) as the peer sees them, for the RFC 3948 section 3.1.2 checksum fix; else None
    nat_oa: tuple[IPAddress, IPAddress] | None = None


@dataclass(frozen=True)
class ChildSADeleted:
    """Both directions of a Quick Mode state's ESP SAs are gone."""

    conn: str
    serial: int
    inbound_spi: int
    outbound_spi: int
    #: why: "expired", "deleted by peer", "terminated", "replaced", "peer dead", ...
    reason: str


@dataclass(frozen=True)
class IsakmpSAEstablished:
    """Phase 1 is up (MAIN_I4, MAIN_R3, AGGR_I2 or AGGR_R2)."""

    conn: str
    serial: int
    #: where the peer is, as we see it (after any NAT, after the NAT-T float)
    remote_addr: IPAddress
    remote_port: int
    #: the identity the peer proved
    peer_id: Identity


@dataclass(frozen=True)
class IsakmpSADeleted:
    """An ISAKMP SA (phase-1 state, established or not) was deleted."""

    conn: str
    serial: int
    reason: str


@dataclass(frozen=True)
class PeerAddressChanged:
    """An established peer now talks from another address/port (NAT rebinding).

    The engine follows it for IKE; the data plane should move the ESP-in-UDP
    SAs of ``child_serials`` to the new address too.
    """

    conn: str
    #: the ISAKMP SA that saw the change
    serial: int
    remote_addr: IPAddress
    remote_port: int
    #: Quick Mode states (ESP SA pairs) with this peer that were updated
    child_serials: tuple[int, ...]


@dataclass(frozen=True)
class PeerKeyNeeded:
    """A message needs the peer's public key from outside ipsec.conf (``%dns*``).

    The engine holds that message; the shell fetches the key (DNS) and calls
    :meth:`~fswan.ike.engine.IkeEngine.set_peer_keys` -- with the keys, or with
    an empty list when the lookup failed -- and the held message is processed.
    """

    conn: str
    serial: int
    #: the ID whose key is wanted (the one the peer proved in its ID payload)
    identity: Identity


@dataclass(frozen=True)
class ClientCheck:
    """A Quick Mode proposal whose clients no loaded conn covers (the question of
    a :class:`ClientCheckNeeded`); hashable, so the shell can answer it by value."""

    #: the ISAKMP SA's addresses and the peer's authenticated ID
    local_addr: IPAddress
    remote_addr: IPAddress
    peer_id: Identity
    #: the clients the peer proposed, from our side: ours, then the peer's
    our_client: IPNetwork
    peer_client: IPNetwork


@dataclass(frozen=True)
class ClientCheckNeeded:
    """No conn has a Quick Mode's clients; the shell may know one (opportunistic
    encryption: the peer client's DNS records name the peer as its gateway).

    Emitted only when the shell asked for it (``IkeEngine.enable_client_checks``).
    The engine holds the message; the shell adds an instance conn (or not) and
    calls :meth:`~fswan.ike.engine.IkeEngine.client_checked`, which processes the
    held message again: found conn, or the usual refusal.
    """

    conn: str
    serial: int
    check: ClientCheck


@dataclass(frozen=True)
class XauthCheckNeeded:
    """An XAUTH client (the peer) answered with a user name and password; the shell
    checks them (an ``IXauthVerifier`` plugin: ipsec.secrets, PAM, RADIUS ...) and calls
    :meth:`~fswan.ike.engine.IkeEngine.xauth_checked` with the verdict, maybe much later.
    The password is never printed (``repr``)."""

    conn: str
    #: the ISAKMP SA ``#N`` the exchange runs on
    serial: int
    user: str
    password: bytes = field(repr=False)
    #: the peer's address, for the verifier's log and its own policies
    peer: IPAddress | None = None


@dataclass(frozen=True)
class VirtualIpAssigned:
    """Mode Config: an inner address for one ISAKMP SA.

    As client: the gateway gave us ``address`` (and DNS servers, domains, a banner);
    the shell puts it on ``ipsec0`` (or gives it to the routing plugin as the source
    address) until :class:`VirtualIpReleased`.  As server: ``address`` was leased to
    the peer from the conn's pool (for the status and the updown context)."""

    conn: str
    serial: int
    address: IPAddress
    #: True when we are the client (we got the address), False when we gave it
    ours: bool
    dns: tuple[IPAddress, ...] = ()
    domains: tuple[str, ...] = ()
    banner: str | None = None
    #: the XAUTH user name the address belongs to, when XAUTH ran
    user: str | None = None


@dataclass(frozen=True)
class VirtualIpReleased:
    """The ISAKMP SA that carried a :class:`VirtualIpAssigned` address is gone."""

    conn: str
    serial: int
    address: IPAddress
    ours: bool


EngineEvent = Union[
    XauthCheckNeeded,
    VirtualIpAssigned,
    VirtualIpReleased,
    PeerKeyNeeded,
    ClientCheckNeeded,
    LogLine,
    WhackDone,
    ChildSAInstalled,
    ChildSADeleted,
    IsakmpSAEstablished,
    IsakmpSADeleted,
    PeerAddressChanged,
]
