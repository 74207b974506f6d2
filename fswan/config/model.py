"""The connection model: what ipsec.conf says, typed and frozen.

The parser (``ipsecconf``) turns text into these objects with every 2.x
default applied; everything downstream (orientation, the IKE engine, status,
updown) reads only these, never raw strings.  Values keep FreeS/WAN's meaning:
times are seconds, ``keyingtries=0`` means ``%forever``, an ``End`` whose
``subnet`` is ``None`` protects only its host.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address
from typing import Any, Union

from fswan.config.errors import Location
from fswan.config.virtual import VirtualPrivate, VirtualSubnet

IPAddress = Union[IPv4Address, IPv6Address]
IPNetwork = Union[IPv4Network, IPv6Network]

#: Host values that are not an address (``left=`` / ``right=``).
WILDCARD_HOSTS = ("%any", "%opportunistic", "%group", "%opportunisticgroup")
DEFAULT_ROUTE = "%defaultroute"
DIRECT = "%direct"


def updown_is_command(text: str) -> bool:
    """pluto's reading of ``leftupdown=``: a ``/`` or a space makes it a command line
    (a legacy script; ``ipsec _updown ...``, FreeS/WAN's stock one, stands for the
    default plugins); anything else names updown plugins."""
    return "/" in text or any(c.isspace() for c in text.strip())


class ConnType(str, enum.Enum):
    TUNNEL = "tunnel"
    TRANSPORT = "transport"
    PASSTHROUGH = "passthrough"
    DROP = "drop"
    REJECT = "reject"


class Auto(str, enum.Enum):
    IGNORE = "ignore"
    ADD = "add"
    ROUTE = "route"
    START = "start"
    MANUAL = "manual"


class AuthBy(str, enum.Enum):
    SECRET = "secret"
    RSASIG = "rsasig"
    SECRET_OR_RSASIG = "secret|rsasig"
    #: strongSwan's ``ecdsasig``, Libreswan's ``ecdsa``: ECDSA certificates (RFC 4754)
    ECDSA = "ecdsa"
    NEVER = "never"


class FailureShunt(str, enum.Enum):
    NONE = "none"
    PASSTHROUGH = "passthrough"
    DROP = "drop"
    REJECT = "reject"


class DpdAction(str, enum.Enum):
    CLEAR = "clear"
    HOLD = "hold"
    RESTART = "restart"


class Encapsulation(str, enum.Enum):
    """Libreswan's ``encapsulation=``: force UDP encapsulation, forbid it, or follow NAT detection."""

    AUTO = "auto"
    YES = "yes"
    NO = "no"


class Fragmentation(str, enum.Enum):
    """``fragmentation=`` (Libreswan ``ike_frag``, strongSwan): IKEv1 fragments (``ike/fragments.py``).

    yes: announce support, and cut big phase-1 messages when the peer announced
    it; force: cut them whatever the peer said; accept: announce and reassemble,
    never cut (strongSwan); no: announce nothing, never cut.
    """

    YES = "yes"
    NO = "no"
    FORCE = "force"
    ACCEPT = "accept"


class Ikev2Policy(str, enum.Enum):
    """Which IKE version a conn speaks (Libreswan's ``ikev2=`` words).

    never: IKEv1 only; permit: IKEv1 when we initiate, either as responder
    (fswan's default, from ``keyexchange=ike`` or nothing: FreeS/WAN conns keep
    initiating IKEv1); propose: IKEv2 when we initiate, either as responder;
    insist: IKEv2 only (``keyexchange=ikev2``).
    """

    NEVER = "never"
    PERMIT = "permit"
    PROPOSE = "propose"
    INSIST = "insist"


#: most addresses one pool may hold (Libreswan's limit keeps a lease table small)
MAX_POOL_SIZE = 65536


@dataclass(frozen=True)
class AddressRange:
    """A Mode Config address pool (``rightaddresspool=``): ``first`` to ``last`` inclusive.

    Checked when made, so a pool in the model is always usable: one family,
    ``first <= last``, at most :data:`MAX_POOL_SIZE` addresses.
    """

    first: IPAddress
    last: IPAddress

    def __post_init__(self) -> None:
        if self.first.version != self.last.version:
            raise ValueError(f"{self.first} and {self.last} are different address families")
        if int(self.first) > int(self.last):
            raise ValueError(f"{self.first} comes after {self.last}")
        if self.size > MAX_POOL_SIZE:
            raise ValueError(f"{self.size} addresses: a pool holds at most {MAX_POOL_SIZE}")

    @property
    def size(self) -> int:
        return int(self.last) - int(self.first) + 1

    def __contains__(self, address: object) -> bool:
        if not isinstance(address, (IPv4Address, IPv6Address)) or address.version != self.first.version:
            return False
        return int(self.first) <= int(address) <= int(self.last)

    def address(self, index: int) -> IPAddress:
        """The ``index``-th address of the pool (0 = ``first``)."""
        if not 0 <= index < self.size:
            raise IndexError(index)
        return self.first + index

    def __str__(self) -> str:
        return f"{self.first}-{self.last}"


def _address_or_none(text: str) -> IPAddress | None:
    if not text or text.startswith("%"):
        return None
    try:
        return ip_address(text)
    except ValueError:
        return None


def is_dns_name(text: str | None) -> bool:
    """A host/nexthop/ID value that is a DNS name to resolve (not an address, ``%word``,
    ``@fqdn``, ``user@fqdn``, DN or strongSwan's ``keyid:``)."""
    if not text or text.startswith(("%", "@")) or "@" in text or "=" in text or " " in text:
        return False
    if text.lower().startswith("keyid:"):
        return False
    return _address_or_none(text) is None


@dataclass(frozen=True)
class End:
    """One side of a connection as written (``left*`` or ``right*``), defaults applied."""

    #: an address literal, ``%defaultroute``, one of WILDCARD_HOSTS, or a DNS name
    #: (``needs_dns``; ``hostnames.resolve_hosts`` puts the address in when the conn is added)
    host: str
    #: the protected client net; None = the host alone (pluto's "host" case)
    subnet: IPNetwork | None = None
    #: ``subnet=vhost:...``/``vnet:...``: what a peer behind NAT may name as its client
    #: (``subnet`` is then None: the client is known only once the peer proposes it)
    virtual: VirtualSubnet | None = None
    #: ``%direct`` (the peer itself), ``%defaultroute``, an address literal or a DNS name
    nexthop: str = DIRECT
    #: ``leftid=``; None = the host address.  ``@fqdn``, ``user@fqdn``, an address, ``%myid``;
    #: also kept as written: a bare host name (resolved to an address ID), an X.500 DN, ``%fromcert``
    id: str | None = None
    #: ``0s...`` / ``0x...`` key, ``%none``, ``%dns``, ``%dnsonload``, ``%dnsondemand``
    rsasigkey: str = "%dnsondemand"
    rsasigkey2: str | None = None
    #: ``leftupdown=``: None = the default plugin(s); a plugin name or a command line
    updown: str | None = None
    firewall: bool = False
    sourceip: IPAddress | None = None
    ikeport: int = 500
    #: ``leftcert=``: our (or the peer's) certificate file as written
    cert: str | None = None
    #: ``leftca=``: the issuing CA's DN, or ``%same`` (the CA of our own certificate)
    ca: str | None = None
    #: ``leftsendcert=``: always, ifasked (when the peer sent a CR), never
    sendcert: str = "ifasked"
    subnetwithin: IPNetwork | None = None
    #: ``leftprotoport=proto/port`` as (protocol number, port); 0 = any
    protoport: tuple[int, int] | None = None
    #: manual keying, per direction (secrets: never printed)
    espenckey: str | None = field(default=None, repr=False)
    espauthkey: str | None = field(default=None, repr=False)
    ahkey: str | None = field(default=None, repr=False)
    espspi: int | None = None
    ahspi: int | None = None
    #: XAUTH (``leftxauthserver=``/``leftxauthclient=``): this end asks for, or answers with,
    #: a user name and password after phase 1
    xauthserver: bool = False
    xauthclient: bool = False
    #: ``leftxauthusername=`` (``leftusername=``): the name this end sends as XAUTH client
    xauthusername: str | None = None
    #: Mode Config: this end hands out (server) or takes (client, ``leftsourceip=%config``)
    #: an inner address
    modecfgserver: bool = False
    modecfgclient: bool = False
    #: ``leftaddresspool=`` (or strongSwan's ``leftsourceip=`` range/CIDR): addresses for this end's peers
    addresspool: AddressRange | None = None

    @property
    def host_address(self) -> IPAddress | None:
        """The host as an address, or None for ``%defaultroute``, wildcards, unset and DNS names."""
        return _address_or_none(self.host)

    @property
    def needs_dns(self) -> bool:
        """``left=`` is a host name not resolved yet."""
        return is_dns_name(self.host)

    @property
    def is_wildcard(self) -> bool:
        return self.host in WILDCARD_HOSTS


@dataclass(frozen=True)
class Connection:
    """A ``conn NAME`` section with ``also=`` and ``%default`` merged and every default applied."""

    name: str
    left: End
    right: End
    location: Location | None = None
    type: ConnType = ConnType.TUNNEL
    auto: Auto = Auto.IGNORE
    authby: AuthBy = AuthBy.RSASIG
    auth: str = "esp"
    #: ``keyexchange=`` as written (``ike``, ``ikev1``, ``ikev2``); the engine reads ``ikev2``
    keyexchange: str = "ike"
    #: the IKE versions this conn speaks, from ``ikev2=`` or else ``keyexchange=``
    ikev2: Ikev2Policy = Ikev2Policy.PERMIT
    pfs: bool = True
    keylife: float = 8 * 3600.0
    rekey: bool = True
    rekeymargin: float = 9 * 60.0
    rekeyfuzz: int = 100
    #: 0 = ``%forever``
    keyingtries: int = 0
    ikelifetime: float = 3600.0
    compress: bool = False
    disablearrivalcheck: bool = False
    failureshunt: FailureShunt = FailureShunt.NONE
    #: ``ike=`` / ``esp=`` (``phase2alg=``) proposal strings; None = the default set
    ike: str | None = None
    esp: str | None = None
    #: ``pfsgroup=``: the PFS group (canonical name, ``ecp384``) replacing ``esp=``'s; None = as esp=
    pfsgroup: str | None = None
    aggrmode: bool = False
    #: None = DPD off (pluto only runs DPD when ``dpddelay`` is set)
    dpddelay: float | None = None
    dpdtimeout: float = 120.0
    dpdaction: DpdAction = DpdAction.HOLD
    encapsulation: Encapsulation = Encapsulation.AUTO
    fragmentation: Fragmentation = Fragmentation.YES
    #: manual keying
    spi: int | None = None
    spibase: int | None = None
    ah: str | None = None
    espenckey: str | None = field(default=None, repr=False)
    espauthkey: str | None = field(default=None, repr=False)
    ahkey: str | None = field(default=None, repr=False)
    espreplay_window: int = 0
    ahreplay_window: int = 0
    #: Mode Config: the client asks (pull) rather than the server pushing
    modecfgpull: bool = False
    #: what a Mode Config server hands out besides the address
    modecfgdns: tuple[IPAddress, ...] = ()
    modecfgdomains: tuple[str, ...] = ()
    modecfgbanner: str | None = None
    #: how a XAUTH server checks passwords: ``file`` (ipsec.secrets), ``alwaysok``, ``pam``
    xauthby: str = "file"
    #: ``soft``: a failed XAUTH keeps the ISAKMP SA (Libreswan); ``hard``: it is deleted
    xauthfail: str = "hard"
    #: strongSwan's ``authby=xauthpsk|xauthrsasig`` with ``xauth=server|client``: our
    #: (the local end's) XAUTH role, known here before orientation; None = no such authby
    xauth_role: str | None = None
    #: strongSwan's ``xauth_identity=``: the XAUTH user name (client) when no end names one
    xauth_identity: str | None = None
    #: ``x-``/``X_`` keys, kept for plugins
    user_keys: dict[str, str] = field(default_factory=dict, compare=False, hash=False)
    #: keywords set for this conn that fswan parses but does not implement yet
    unsupported: tuple[str, ...] = ()
    #: every keyword as written (after also=/%default), value and where: for checkconfig
    settings: dict[str, tuple[str, Location]] = field(
        default_factory=dict, compare=False, hash=False, repr=False
    )

    @property
    def initiates_ikev2(self) -> bool:
        """We start IKEv2 (not Main/Aggressive Mode) when we initiate."""
        return self.ikev2 in (Ikev2Policy.PROPOSE, Ikev2Policy.INSIST)

    @property
    def accepts_ikev1(self) -> bool:
        """A peer may negotiate this conn with IKEv1."""
        return self.ikev2 is not Ikev2Policy.INSIST

    @property
    def accepts_ikev2(self) -> bool:
        """A peer may negotiate this conn with IKEv2."""
        return self.ikev2 is not Ikev2Policy.NEVER


@dataclass(frozen=True)
class SetupConfig:
    """The ``config setup`` section with 2.x defaults."""

    #: ``interfaces=``: ``%defaultroute``, ``%none`` or pairs like ``ipsec0=eth1``
    interfaces: str = "%defaultroute"
    forwardcontrol: bool = False
    rp_filter: str = "0"
    myid: str | None = None
    syslog: str = "daemon.error"
    klipsdebug: str = "none"
    plutodebug: str = "none"
    plutoopts: str | None = None
    plutostderrlog: str | None = None
    dumpdir: str | None = None
    manualstart: str | None = None
    pluto: bool = True
    plutowait: bool = False
    prepluto: str | None = None
    postpluto: str | None = None
    fragicmp: bool = True
    hidetos: bool = True
    uniqueids: bool = True
    #: X.509: send no CR payloads; ``yes``/``ifuri``/``no`` CRL strictness
    nocrsend: bool = False
    strictcrlpolicy: str = "no"
    overridemtu: int | None = None
    nat_traversal: bool = True
    #: largest IP datagram carrying an IKE fragment (strongSwan's ``charon.fragment_size``)
    ike_fragment_size: int = 1280
    #: NAT-T keepalive interval in seconds (Openswan ``keep_alive=``)
    keep_alive: float = 20.0
    #: ``virtual_private=``: the nets ``vhost:%priv``/``vnet:%priv`` peers may claim
    virtual_private: VirtualPrivate = field(default_factory=VirtualPrivate)
    #: Libreswan's flood settings (``ike/halfopen.py``): busy mode and the half-open cap
    ddos_mode: str = "auto"
    ddos_ike_threshold: int = 25000
    max_halfopen_ike: int = 50000
    #: ``metrics=ADDR:PORT``: where the Prometheus endpoint listens; None: no endpoint
    metrics: str | None = None
    user_keys: dict[str, str] = field(default_factory=dict, compare=False, hash=False)
    unsupported: tuple[str, ...] = ()
    settings: dict[str, tuple[str, Location]] = field(
        default_factory=dict, compare=False, hash=False, repr=False
    )

    def interface_map(self) -> tuple[tuple[str, str], ...]:
        """Explicit ``ipsecN=phys`` pairs; empty for ``%defaultroute`` and ``%none``."""
        if self.interfaces.startswith("%"):
            return ()
        pairs = []
        for word in self.interfaces.split():
            virtual, _, physical = word.partition("=")
            pairs.append((virtual, physical))
        return tuple(pairs)


@dataclass(frozen=True)
class CaSection:
    """A ``ca NAME`` section (X.509 patch, strongSwan, Openswan), as written: parsed and
    listed; used once certificates are supported."""

    name: str
    location: Location | None = None
    #: ``auto=add|ignore`` (default ignore)
    auto: str = "ignore"
    #: ``cacert=`` and the other keywords as written, with where
    settings: dict[str, tuple[str, Location]] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class Config:
    """A whole parsed ipsec.conf."""

    setup: SetupConfig
    #: conns in file order (implicit OE conns are not included here; nor are refused ones)
    conns: dict[str, Connection]
    #: every file that was read, the main one first
    files: tuple[str, ...] = ()
    #: problems that do not stop loading (each with file:line); refusals of loaded conns among them
    warnings: tuple[Any, ...] = ()
    #: conns the file defines that fswan cannot run, name -> ``errors.ConnRefused`` (file:line, why)
    refused: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    #: ``ca NAME`` sections in file order
    cas: dict[str, CaSection] = field(default_factory=dict, compare=False, hash=False)
    #: ``conn %oedefault`` (Openswan): settings applied to the implicit OE conns; None if absent
    oedefault: Connection | None = None
