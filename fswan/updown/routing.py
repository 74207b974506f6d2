"""The routing plugin: send the peer client's traffic into the IPsec device.

FreeS/WAN's ``_updown`` ran ``ip route add PEER_CLIENT via NEXT_HOP dev
ipsec0``.  fswan does the same through netlink (pyroute2), with two changes
the TUN device forces:

* A TUN device has no neighbours, so the kernel refuses a gateway on it
  ("Nexthop has invalid gateway").  On a point-to-point or NOARP device an
  IPv4 route is installed ``onlink``: the next hop stays visible in ``ip
  route`` (as FreeS/WAN users expect) but is never resolved; the data plane
  picks the SA by eroute, not by gateway.  IPv6 refuses an onlink gateway
  that is reachable through another device (the peer usually is, via eth0),
  so there it is a device route (``dev ipsec0``), which means the same on a
  TUN.  On a device with neighbours (a KLIPS-style ``ipsecN`` carrying the
  physical address) the plain FreeS/WAN route is used, and an unreachable
  next hop is reported as the kernel says it.
* ``ip route replace`` rather than ``add``: a stale route left by a crash is
  taken over instead of failing with "File exists".

``0.0.0.0/0`` becomes ``0.0.0.0/1`` + ``128.0.0.0/1`` (``::/0``: ``::/1`` +
``8000::/1``) so the host's default route is eclipsed, never replaced.  The
netlink calls are made directly on the reactor thread: each is one local
round trip (well under a millisecond), cheaper than a thread hop, and it keeps
one conn's route changes in order.  Refcounting (unroute only when the last
conn routing a peer client goes) is the runner's job.
"""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from ipaddress import ip_network
from typing import Any

from twisted.plugin import IPlugin
from zope.interface import implementer

from fswan.config.model import IPAddress, IPNetwork
from fswan.updown.context import MAIN_TABLE, UpdownContext
from fswan.updown.interface import IUpdown, UpdownFailure, UpdownPlugin

IFF_POINTOPOINT = 0x10
IFF_NOARP = 0x80
RTNH_F_ONLINK = 0x4
RTPROT_STATIC = 4


def split_default(net: IPNetwork) -> list[IPNetwork]:
    """A default route as two halves (``0.0.0.0/1``, ``128.0.0.0/1``); anything else as is."""
    if net.prefixlen != 0:
        return [net]
    if net.version == 4:
        return [ip_network("0.0.0.0/1"), ip_network("128.0.0.0/1")]
    return [ip_network("::/1"), ip_network("8000::/1")]


@dataclass(frozen=True)
class RouteSpec:
    """One route as the plugin installs it, and as ``ip route`` would spell it."""

    dst: IPNetwork
    device: str
    gateway: IPAddress | None
    onlink: bool
    source: IPAddress | None
    table: int = MAIN_TABLE

    def describe(self, op: str = "replace") -> str:
        words = ["ip route", op, str(self.dst)]
        if op != "del":
            if self.gateway is not None:
                words.append(f"via {self.gateway}")
        words.append(f"dev {self.device}")
        if op != "del":
            if self.onlink and self.gateway is not None:
                words.append("onlink")
            if self.source is not None:
                words.append(f"src {self.source}")
        if self.table != MAIN_TABLE:
            words.append(f"table {self.table}")
        return " ".join(words)

    def netlink(self, index: int) -> dict[str, Any]:
        """pyroute2 ``route()`` keywords for this route on device ``index``."""
        spec: dict[str, Any] = {
            "family": socket.AF_INET6 if self.dst.version == 6 else socket.AF_INET,
            "dst": str(self.dst.network_address),
            "dst_len": self.dst.prefixlen,
            "oif": index,
            "table": self.table,
        }
        return spec


def routes_for(ctx: UpdownContext, point_to_point: bool) -> list[RouteSpec]:
    """The routes ``route`` installs for ``ctx``: the peer client (split if default)."""
    gateway: IPAddress | None = ctx.next_hop
    if gateway is not None and gateway.version != ctx.peer_client.version:
        # a v6 client over a v4 gateway pair (or the reverse): a device route is all we can say
        gateway = None
    if point_to_point and ctx.peer_client.version == 6:
        # the kernel refuses an IPv6 onlink gateway that is reachable through another device
        # (the usual case: the peer is on eth0's net); on a TUN a device route means the same
        gateway = None
    source = ctx.my_sourceip
    if source is not None and source.version != ctx.peer_client.version:
        source = None
    return [
        RouteSpec(dst, ctx.interface, gateway, point_to_point, source, ctx.route_table)
        for dst in split_default(ctx.peer_client)
    ]


def _strerror(error: BaseException) -> str:
    code = getattr(error, "code", None)
    if isinstance(code, int) and code > 0:
        return os.strerror(code)
    if isinstance(error, OSError) and error.errno:
        return os.strerror(error.errno)
    return str(error) or type(error).__name__


def _default_netlink() -> Any:
    from pyroute2 import IPRoute

    return IPRoute()


@implementer(IPlugin, IUpdown)
class RoutingPlugin(UpdownPlugin):
    """``route``/``unroute`` (and ``prepare``'s stale-route sweep) through netlink."""

    name = "routing"

    def __init__(self, netlink: Callable[[], Any] | None = None) -> None:
        #: makes an ``IPRoute``-like object (a context manager); injectable for tests
        self._netlink = netlink or _default_netlink

    @contextmanager
    def _open(self, attempted: str) -> Iterator[Any]:
        try:
            ipr = self._netlink()
        except Exception as error:
            raise UpdownFailure(attempted, f"cannot open netlink: {_strerror(error)}") from None
        with ipr:
            yield ipr

    @staticmethod
    def _device(ipr: Any, name: str) -> tuple[int, int] | None:
        """(index, flags) of device ``name``, or None if it does not exist."""
        indexes = ipr.link_lookup(ifname=name)
        if not indexes:
            return None
        links = ipr.get_links(indexes[0])
        flags = links[0]["flags"] if links else 0
        return indexes[0], flags

    def route(self, ctx: UpdownContext) -> None:
        """Install (replace) the peer client's route(s) via the IPsec device."""
        first = routes_for(ctx, point_to_point=False)[0]
        with self._open(first.describe()) as ipr:
            device = self._device(ipr, ctx.interface)
            if device is None:
                raise UpdownFailure(first.describe(), os.strerror(errno.ENODEV))
            index, flags = device
            point_to_point = bool(flags & (IFF_POINTOPOINT | IFF_NOARP))
            done: list[RouteSpec] = []
            for spec in routes_for(ctx, point_to_point):
                request = spec.netlink(index)
                request["proto"] = RTPROT_STATIC
                if spec.gateway is not None:
                    request["gateway"] = str(spec.gateway)
                    if spec.onlink:
                        request["flags"] = RTNH_F_ONLINK
                if spec.source is not None:
                    request["prefsrc"] = str(spec.source)
                try:
                    ipr.route("replace", **request)
                except Exception as error:
                    for installed in done:  # leave no half of a split default behind
                        self._delete(ipr, installed, index, quiet=True)
                    raise UpdownFailure(spec.describe(), _strerror(error)) from None
                done.append(spec)

    def unroute(self, ctx: UpdownContext) -> None:
        """Delete the peer client's route(s) on the IPsec device; already gone is fine."""
        self._remove(ctx)

    def prepare(self, ctx: UpdownContext) -> None:
        """Remove a stale route to the peer client on our device (left by a crash)."""
        self._remove(ctx)

    def _remove(self, ctx: UpdownContext) -> None:
        specs = routes_for(ctx, point_to_point=False)
        with self._open(specs[0].describe("del")) as ipr:
            device = self._device(ipr, ctx.interface)
            if device is None:
                return  # routes through a device vanish with it
            failures = []
            for spec in specs:
                try:
                    self._delete(ipr, spec, device[0])
                except UpdownFailure as failure:
                    failures.append(failure)
            if failures:
                raise failures[0]

    @staticmethod
    def _delete(ipr: Any, spec: RouteSpec, index: int, quiet: bool = False) -> None:
        try:
            ipr.route("del", **spec.netlink(index))
        except Exception as error:
            if quiet or getattr(error, "code", None) == errno.ESRCH:
                return
            raise UpdownFailure(spec.describe("del"), _strerror(error)) from None
