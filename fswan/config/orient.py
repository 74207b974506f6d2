"""Orientation: which end of a connection is this host.

pluto decides "us" by matching ``left``/``right`` against the addresses of the
interfaces IPsec runs on (``interfaces=`` in config setup, ``ipsec0`` over the
default-route device by default).  The daemon reads the host's interfaces and
default route (pyroute2) and passes them in here as data, so all of the rules
and messages below are pure and testable.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import ip_address, ip_network

from fswan.config.ids import FROMCERT_ID, IdError, IdKind, Identity, parse_id
from fswan.config.model import (
    DEFAULT_ROUTE,
    DIRECT,
    Connection,
    End,
    IPAddress,
    IPNetwork,
    SetupConfig,
    is_dns_name,
)
from fswan.config.values import is_dn_id

NO_DEFAULT_ROUTE = "no default route, %defaultroute cannot cope!!!"
NO_INTERFACE = "we have no ipsecN interface for either end of this connection"


@dataclass(frozen=True)
class HostAddress:
    """One address configured on one of this host's network devices."""

    interface: str
    address: IPAddress


@dataclass(frozen=True)
class DefaultRoute:
    """The host's IPv4 default route, as the kernel reports it."""

    interface: str
    gateway: IPAddress | None
    #: the route's preferred source, if the kernel names one
    source: IPAddress | None = None


@dataclass(frozen=True)
class HostNetwork:
    """What the daemon read from the kernel: addresses and the default route."""

    addresses: tuple[HostAddress, ...] = ()
    default_route: DefaultRoute | None = None

    def addresses_on(self, interface: str) -> list[IPAddress]:
        return [a.address for a in self.addresses if a.interface == interface]


@dataclass(frozen=True)
class IpsecInterface:
    """pluto's ``interface ipsec0/eth0 192.0.2.1``: a virtual device over a physical one."""

    virtual: str
    physical: str
    address: IPAddress

    def __str__(self) -> str:
        return f"{self.virtual}/{self.physical} {self.address}"


class OrientationError(Exception):
    """This connection cannot be oriented on this host; the message is pluto's."""


def ipsec_interfaces(
    setup: SetupConfig, host: HostNetwork
) -> tuple[list[IpsecInterface], list[str]]:
    """The interfaces IPsec listens on, plus log lines about problems found.

    ``%defaultroute`` puts ``ipsec0`` over the default route's device,
    ``ipsec0=eth1 ipsec1=ppp0`` names them, ``%none`` means none.  Two devices
    carrying the same address make that address unusable, as in pluto.
    """
    messages: list[str] = []
    if setup.interfaces == "%none":
        return [], messages
    if setup.interfaces == DEFAULT_ROUTE:
        if host.default_route is None:
            messages.append(f"interfaces=%defaultroute: {NO_DEFAULT_ROUTE}")
            return [], messages
        pairs: tuple[tuple[str, str], ...] = (("ipsec0", host.default_route.interface),)
    else:
        pairs = setup.interface_map()
    found: list[IpsecInterface] = []
    for virtual, physical in pairs:
        addresses = host.addresses_on(physical)
        if not addresses:
            messages.append(f"{virtual}={physical}: no address on {physical}; ignoring it")
        for address in addresses:
            found.append(IpsecInterface(virtual, physical, address))
    unique: list[IpsecInterface] = []
    for candidate in found:
        clash = next((u for u in unique if u.address == candidate.address), None)
        if clash is None:
            unique.append(candidate)
        elif clash.physical != candidate.physical:
            messages.append(
                f"IP interfaces {clash.physical} and {candidate.physical} "
                f"share address {candidate.address}!"
            )
    return unique, messages


@dataclass(frozen=True)
class OrientedEnd:
    """One end with ``%defaultroute``, ``%direct`` and ``%myid`` resolved."""

    end: End
    #: None for a wildcard peer (``%any`` road warrior) until it connects
    host: IPAddress | None
    #: the next hop towards the other end (``%direct`` resolves to the other host)
    nexthop: IPAddress | None
    id: Identity

    @property
    def client(self) -> IPNetwork | None:
        """The protected net: the subnet, else the host alone."""
        if self.end.subnet is not None:
            return self.end.subnet
        if self.host is None:
            return None
        return ip_network(self.host)

    @property
    def has_client(self) -> bool:
        """pluto's "client" case: a subnet other than the host itself."""
        subnet = self.end.subnet
        if subnet is None:
            return False  # the client is the host alone (or not known yet)
        # compared by parts, not ``subnet == ip_network(host)``, which parses the host's
        # text again (most of what status spent on 10,000 conns)
        host = self.host
        return (host is None or subnet.prefixlen != subnet.max_prefixlen
                or subnet.network_address != host)


@dataclass(frozen=True)
class OrientedConnection:
    """A connection as this host sees it: ``this`` is us, ``that`` the peer."""

    conn: Connection
    this: OrientedEnd
    that: OrientedEnd
    this_is_left: bool
    interface: IpsecInterface

    @property
    def name(self) -> str:
        return self.conn.name


def _resolve_host(end: End, route: DefaultRoute | None, our_addresses: list[IPAddress]) -> IPAddress | None:
    if end.host == "":
        raise OrientationError("left= and right= are both needed to load a conn")
    if end.needs_dns:
        raise OrientationError(
            f"{end.host} is a host name not yet resolved (hostnames.resolve_hosts, when the conn is added)"
        )
    if end.host == DEFAULT_ROUTE:
        if route is None:
            raise OrientationError(NO_DEFAULT_ROUTE)
        if route.source is not None:
            return route.source
        candidates = [a for a in our_addresses if a.version == 4]
        if not candidates:
            raise OrientationError(f"%defaultroute: no address on {route.interface}")
        return candidates[0]
    return end.host_address


def _resolve_id(end: End, host: IPAddress | None, myid: str | None) -> Identity:
    """The end's ID; ``%fromcert`` (also the default of an end with a certificate) stays a
    placeholder until the daemon has read the certificate (``daemon/credentials.py``)."""
    text = end.id
    if text is None:
        if end.cert:
            return FROMCERT_ID
        return parse_id(str(host)) if host is not None else parse_id("%any")
    if is_dns_name(text) and not is_dn_id(text):
        raise OrientationError(f"ID {text} is a host name not yet resolved")
    identity = parse_id(text)
    if identity.kind is IdKind.MYID:
        if not myid:
            raise OrientationError("%myid used but myid= is not set in config setup")
        try:
            return parse_id(myid)
        except IdError as error:
            raise OrientationError(f"myid=: {error}") from None
    return identity


def orient(
    conn: Connection,
    interfaces: list[IpsecInterface],
    route: DefaultRoute | None,
    myid: str | None = None,
) -> OrientedConnection:
    """Decide which end is us; raise OrientationError with pluto's message if none is."""
    routed_addresses = [
        i.address for i in interfaces if route is not None and i.physical == route.interface
    ]
    left_host = _resolve_host(conn.left, route, routed_addresses)
    right_host = _resolve_host(conn.right, route, routed_addresses)
    by_address = {i.address: i for i in interfaces}
    left_iface = by_address.get(left_host) if left_host is not None else None
    right_iface = by_address.get(right_host) if right_host is not None else None
    if left_iface is not None and right_iface is not None:
        raise OrientationError(
            f'both sides of "{conn.name}" are our interfaces '
            f"({left_iface} and {right_iface}); one end must be the peer"
        )
    if left_iface is None and right_iface is None:
        raise OrientationError(NO_INTERFACE)
    this_is_left = left_iface is not None
    ends = [(conn.left, left_host), (conn.right, right_host)]
    (this_end, this_host), (that_end, that_host) = ends if this_is_left else ends[::-1]
    if this_end.virtual is not None:
        ours = "left" if this_is_left else "right"
        raise OrientationError(
            f"{ours}subnet={this_end.virtual} is our own end: vhost:/vnet: say what a peer "
            f"behind NAT may claim, so they belong on the peer's side"
        )
    nexthop = _resolve_nexthop(this_end, that_host, route)
    this = OrientedEnd(this_end, this_host, nexthop, _resolve_id(this_end, this_host, myid))
    that_nexthop = (
        ip_address(that_end.nexthop)
        if not that_end.nexthop.startswith("%") and not is_dns_name(that_end.nexthop)
        else this_host
    )
    that = OrientedEnd(that_end, that_host, that_nexthop, _resolve_id(that_end, that_host, myid))
    interface = left_iface if this_is_left else right_iface
    assert interface is not None
    return OrientedConnection(conn, this, that, this_is_left, interface)


def _resolve_nexthop(
    this_end: End, peer: IPAddress | None, route: DefaultRoute | None
) -> IPAddress | None:
    """Our next hop: as written, the default gateway, or (``%direct``) the peer itself."""
    if this_end.nexthop == DEFAULT_ROUTE or (
        this_end.host == DEFAULT_ROUTE and this_end.nexthop == DIRECT
    ):
        if route is None:
            raise OrientationError(NO_DEFAULT_ROUTE)
        return route.gateway if route.gateway is not None else peer
    if this_end.nexthop == DIRECT:
        return peer
    if is_dns_name(this_end.nexthop):
        raise OrientationError(f"nexthop {this_end.nexthop} is a host name not yet resolved")
    return ip_address(this_end.nexthop)
