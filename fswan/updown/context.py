"""The facts an updown verb is about, and FreeS/WAN's PLUTO_* names for them.

Pure: built from an :class:`~fswan.config.orient.OrientedConnection` (what the
config says, seen from this host) plus :class:`SAFacts` (what IKE learned:
SPIs, the peer's real address behind a NAT, counters).  Plugins read the typed
fields; the legacy script adapter hands ``environment()`` to ``/bin/sh``.

Verb names follow pluto: ``<family>-host`` when our client is our host
address, ``<family>-client`` when it is a subnet, with ``-v6`` appended for an
IPv6 gateway pair (``route-client-v6``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from ipaddress import ip_network
from types import MappingProxyType
from typing import Any

from fswan.config import roadwarrior
from fswan.config.model import IPAddress, IPNetwork
from fswan.config.orient import OrientedConnection
from fswan.updown.interface import VERB_FAMILIES, UpdownFailure

#: the PLUTO_VERSION fswan speaks (FreeS/WAN 1.9x-2.x)
PLUTO_VERSION = "1.1"
#: Linux's main routing table
MAIN_TABLE = 254
#: conn user key choosing the routing table for this conn's routes
TABLE_KEY = "x-fswan-table"
_TABLE_NAMES = {"main": 254, "default": 253, "local": 255}

#: the FreeS/WAN v1.1 variables, in pluto's order (every verb gets all of them)
V11_NAMES = (
    "PLUTO_VERSION",
    "PLUTO_VERB",
    "PLUTO_CONNECTION",
    "PLUTO_NEXT_HOP",
    "PLUTO_INTERFACE",
    "PLUTO_ME",
    "PLUTO_MY_ID",
    "PLUTO_MY_CLIENT",
    "PLUTO_MY_CLIENT_NET",
    "PLUTO_MY_CLIENT_MASK",
    "PLUTO_MY_PORT",
    "PLUTO_MY_PROTOCOL",
    "PLUTO_PEER",
    "PLUTO_PEER_ID",
    "PLUTO_PEER_CLIENT",
    "PLUTO_PEER_CLIENT_NET",
    "PLUTO_PEER_CLIENT_MASK",
    "PLUTO_PEER_PORT",
    "PLUTO_PEER_PROTOCOL",
    "PLUTO_PEER_CA",
)
#: later daemons' variables fswan adds, each only when its fact is known
ADDITION_NAMES = (
    "PLUTO_MY_SOURCEIP",  # Libreswan/strongSwan: leftsourceip=, or our Mode Config virtual IP
    "PLUTO_XAUTH_USERNAME",  # Libreswan: the XAUTH user of the ISAKMP SA
    "PLUTO_PEER_DNS_INFO",  # Libreswan, with Mode Config: DNS servers the gateway gave us
    "PLUTO_PEER_DOMAIN_INFO",  # Libreswan, with Mode Config: its DNS domains
    "PLUTO_PEER_BANNER",  # Libreswan, with Mode Config: its banner
    "PLUTO_CFG_SERVER",  # Libreswan, with Mode Config: 1 when we are the server
    "PLUTO_CFG_CLIENT",  # Libreswan, with Mode Config: 1 when we are the client
    "PLUTO_REQID",  # strongSwan: the kernel policy/SA reqid
    "PLUTO_UDP_ENC",  # strongSwan: set (to the peer's UDP port) only for ESP-in-UDP
    "PLUTO_INBYTES",  # Libreswan: on down-* only, bytes received on the SA
    "PLUTO_OUTBYTES",  # Libreswan: on down-* only, bytes sent on the SA
)


def _ignore(text: str) -> None:
    """The default ``ctx.log``: nowhere (the runner supplies pluto's log)."""


@dataclass(frozen=True)
class SAFacts:
    """What the IKE side knows about the SA a verb concerns; every field optional.

    ``route``/``unroute`` usually have none (routing is about the conn); ``up``
    has the new SA's facts; ``down`` adds the counters.
    """

    #: the Quick Mode state ``#N`` (used for the log prefix)
    serial: int | None = None
    reqid: int | None = None
    #: the SPI the peer sends to us / the SPI we send with
    spi_in: int | None = None
    spi_out: int | None = None
    #: RFC 3948 ESP-in-UDP in use (NAT-T)
    udp_encapsulated: bool = False
    #: the peer as we see it (after any NAT) and its UDP port
    peer_addr: IPAddress | None = None
    peer_port: int | None = None
    #: the identity the peer proved (overrides the configured rightid=)
    peer_id: str | None = None
    #: our address as the SA uses it
    my_addr: IPAddress | None = None
    #: the negotiated client nets (a road warrior's are known only here)
    my_client: IPNetwork | None = None
    peer_client: IPNetwork | None = None
    in_bytes: int | None = None
    out_bytes: int | None = None
    in_packets: int | None = None
    out_packets: int | None = None
    #: the XAUTH user of the ISAKMP SA (``ChildSAInstalled.xauth_user``)
    xauth_user: str | None = None
    #: Mode Config client: the virtual IP we were given (our source address), and the
    #: gateway's DNS servers, domains and banner
    virtual_ip: IPAddress | None = None
    peer_dns: tuple[IPAddress, ...] = ()
    peer_domains: tuple[str, ...] = ()
    peer_banner: str | None = None

    @classmethod
    def from_event(cls, event: Any, **more: Any) -> SAFacts:
        """Facts from an IKE event (``ChildSAInstalled``/``ChildSADeleted``), duck-typed.

        Reading attributes by name keeps this package independent of the IKE
        engine's module layout; ``more`` sets or overrides fields (counters).
        """
        encapsulated = bool(getattr(event, "udp_encapsulated", False))
        values: dict[str, Any] = {
            "serial": getattr(event, "serial", None),
            "spi_in": getattr(event, "inbound_spi", None),
            "spi_out": getattr(event, "outbound_spi", None),
            "udp_encapsulated": encapsulated,
            "peer_addr": getattr(event, "remote_addr", None),
            "peer_port": getattr(event, "remote_port", None) if encapsulated else None,
            "my_addr": getattr(event, "local_addr", None),
            "my_client": getattr(event, "local_client", None),
            "peer_client": getattr(event, "remote_client", None),
            "xauth_user": getattr(event, "xauth_user", None),
        }
        peer_id = getattr(event, "peer_id", None)
        if peer_id is not None:
            values["peer_id"] = str(peer_id)
        values.update(more)
        return cls(**values)


@dataclass(frozen=True)
class UpdownContext:
    """Every fact of one updown call: FreeS/WAN's PLUTO_* set plus later additions."""

    #: the full verb: ``route-client``, ``up-host``, ``down-client-v6`` ...
    verb: str
    connection: str
    #: our next hop towards the peer (``%direct``: the peer itself)
    next_hop: IPAddress
    #: the IPsec device (``ipsec0``) and the physical device under it
    interface: str
    physical: str
    me: IPAddress
    my_id: str
    #: our protected net (our host as /32 or /128 in the host case)
    my_client: IPNetwork
    my_protocol: int
    my_port: int
    peer: IPAddress
    peer_id: str
    peer_client: IPNetwork
    peer_protocol: int
    peer_port: int
    #: the peer's CA (X.509 patch): empty until certificates exist
    peer_ca: str = ""
    #: leftsourceip=, or our Mode Config virtual IP: the source for routed traffic to
    #: the peer client
    my_sourceip: IPAddress | None = None
    #: the XAUTH user name of the ISAKMP SA, when XAUTH ran
    xauth_user: str | None = None
    #: Mode Config: our role (None: the conn has no Mode Config) and what the gateway
    #: gave us besides the address
    modecfg: str | None = None
    peer_dns: tuple[IPAddress, ...] = ()
    peer_domains: tuple[str, ...] = ()
    peer_banner: str | None = None
    serial: int | None = None
    reqid: int | None = None
    spi_in: int | None = None
    spi_out: int | None = None
    udp_encapsulated: bool = False
    #: the peer's UDP port when ESP-in-UDP is used
    natt_peer_port: int | None = None
    #: SA counters (on ``down`` when known)
    in_bytes: int | None = None
    out_bytes: int | None = None
    in_packets: int | None = None
    out_packets: int | None = None
    #: the kernel routing table routes go to (``x-fswan-table=``; main by default)
    route_table: int = MAIN_TABLE
    #: a %any conn's instance for this peer client (``rw[198.51.100.200/32]``, set by the
    #: runner; None: the conn itself): what per-peer state such as firewall rules is keyed by
    instance: str | None = None
    #: the conn's ``x-``/``X_`` keys, read-only
    user_keys: Mapping[str, str] = field(default_factory=dict, compare=False, hash=False)
    #: log one line with the conn's pluto prefix (``"net" #2: ...``)
    log: Callable[[str], None] = field(default=_ignore, compare=False, repr=False)

    @property
    def family(self) -> str:
        """The verb without its suffix: ``route``, ``up`` ..."""
        return self.verb.split("-", 1)[0]

    @property
    def is_host(self) -> bool:
        """pluto's ``-host`` case: our client is our own address."""
        return "-host" in self.verb

    @property
    def is_ipv6(self) -> bool:
        return self.me.version == 6

    def environment(self) -> dict[str, str]:
        """The PLUTO_* variables of this call, as ``_updown`` scripts expect them."""
        env = {
            "PLUTO_VERSION": PLUTO_VERSION,
            "PLUTO_VERB": self.verb,
            "PLUTO_CONNECTION": self.connection,
            "PLUTO_NEXT_HOP": str(self.next_hop),
            "PLUTO_INTERFACE": self.interface,
            "PLUTO_ME": str(self.me),
            "PLUTO_MY_ID": self.my_id,
            "PLUTO_MY_CLIENT": str(self.my_client),
            "PLUTO_MY_CLIENT_NET": str(self.my_client.network_address),
            "PLUTO_MY_CLIENT_MASK": str(self.my_client.netmask),
            "PLUTO_MY_PORT": str(self.my_port),
            "PLUTO_MY_PROTOCOL": str(self.my_protocol),
            "PLUTO_PEER": str(self.peer),
            "PLUTO_PEER_ID": self.peer_id,
            "PLUTO_PEER_CLIENT": str(self.peer_client),
            "PLUTO_PEER_CLIENT_NET": str(self.peer_client.network_address),
            "PLUTO_PEER_CLIENT_MASK": str(self.peer_client.netmask),
            "PLUTO_PEER_PORT": str(self.peer_port),
            "PLUTO_PEER_PROTOCOL": str(self.peer_protocol),
            "PLUTO_PEER_CA": self.peer_ca,
        }
        if self.my_sourceip is not None:
            env["PLUTO_MY_SOURCEIP"] = str(self.my_sourceip)
        if self.xauth_user is not None:
            env["PLUTO_XAUTH_USERNAME"] = self.xauth_user
        if self.modecfg is not None:
            # Libreswan's names and forms: space-separated lists, empty when not given
            env["PLUTO_PEER_DNS_INFO"] = " ".join(str(a) for a in self.peer_dns)
            env["PLUTO_PEER_DOMAIN_INFO"] = " ".join(self.peer_domains)
            env["PLUTO_PEER_BANNER"] = self.peer_banner or ""
            env["PLUTO_CFG_SERVER"] = "1" if self.modecfg == "server" else "0"
            env["PLUTO_CFG_CLIENT"] = "1" if self.modecfg == "client" else "0"
        if self.reqid is not None:
            env["PLUTO_REQID"] = str(self.reqid)
        if self.udp_encapsulated:
            env["PLUTO_UDP_ENC"] = str(self.natt_peer_port if self.natt_peer_port else 4500)
        if self.family == "down":
            if self.in_bytes is not None:
                env["PLUTO_INBYTES"] = str(self.in_bytes)
            if self.out_bytes is not None:
                env["PLUTO_OUTBYTES"] = str(self.out_bytes)
        return env


def verb_for(family: str, oriented: OrientedConnection) -> str:
    """pluto's verb: family, ``-host``/``-client`` from our end, ``-v6`` for IPv6 gateways."""
    if family not in VERB_FAMILIES:
        raise ValueError(f"unknown updown verb {family!r} (known: {', '.join(VERB_FAMILIES)})")
    suffix = "-client" if oriented.this.has_client else "-host"
    if oriented.this.host is not None and oriented.this.host.version == 6:
        suffix += "-v6"
    return family + suffix


def route_table(user_keys: Mapping[str, str]) -> int:
    """The routing table named by ``x-fswan-table=`` (a number, ``main`` or ``default``)."""
    for key, value in user_keys.items():
        if key.lower().replace("_", "-") == TABLE_KEY:
            text = value.strip().lower()
            if text in _TABLE_NAMES:
                return _TABLE_NAMES[text]
            if text.isdigit() and 0 < int(text) < 2**32:
                return int(text)
            raise UpdownFailure(f"{key}={value}", "not a routing table (a number, main or default)")
    return MAIN_TABLE


def build_context(
    family: str,
    oriented: OrientedConnection,
    facts: SAFacts | None = None,
    log: Callable[[str], None] = _ignore,
) -> UpdownContext:
    """The context for one verb of one conn; UpdownFailure when a fact is missing.

    A ``%any`` peer has no address, client or next hop until it connects, so
    its verbs need ``facts`` carrying them (pluto refused to route such a
    template conn, too).
    """
    facts = facts or SAFacts()
    verb = verb_for(family, oriented)
    this, that = oriented.this, oriented.that
    me = facts.my_addr or this.host or oriented.interface.address
    peer = facts.peer_addr or that.host
    if peer is None:
        raise UpdownFailure(
            "updown context", f"the peer of \"{oriented.name}\" is %any and not connected: no address yet"
        )
    my_client = facts.my_client or this.client or ip_network(me)
    peer_client = facts.peer_client or that.client or ip_network(peer)
    next_hop = this.nexthop or peer
    if next_hop.is_unspecified:
        next_hop = peer
    my_proto, my_port = this.end.protoport or (0, 0)
    peer_proto, peer_port = that.end.protoport or (0, 0)
    user_keys = MappingProxyType(dict(oriented.conn.user_keys))
    return UpdownContext(
        verb=verb,
        connection=oriented.name,
        next_hop=next_hop,
        interface=oriented.interface.virtual,
        physical=oriented.interface.physical,
        me=me,
        my_id=str(this.id),
        my_client=my_client,
        my_protocol=my_proto,
        my_port=my_port,
        peer=peer,
        peer_id=facts.peer_id or (str(that.id) if not that.id.is_any else str(peer)),
        peer_client=peer_client,
        peer_protocol=peer_proto,
        peer_port=peer_port,
        my_sourceip=facts.virtual_ip or this.end.sourceip,
        xauth_user=facts.xauth_user,
        modecfg=("client" if roadwarrior.modecfg_client(oriented)
                 else "server" if roadwarrior.modecfg_server(oriented) else None),
        peer_dns=facts.peer_dns,
        peer_domains=facts.peer_domains,
        peer_banner=facts.peer_banner,
        serial=facts.serial,
        reqid=facts.reqid,
        spi_in=facts.spi_in,
        spi_out=facts.spi_out,
        udp_encapsulated=facts.udp_encapsulated,
        natt_peer_port=facts.peer_port if facts.udp_encapsulated else None,
        in_bytes=facts.in_bytes,
        out_bytes=facts.out_bytes,
        in_packets=facts.in_packets,
        out_packets=facts.out_packets,
        route_table=route_table(user_keys),
        user_keys=user_keys,
        log=log,
    )
