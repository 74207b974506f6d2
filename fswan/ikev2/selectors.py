"""Traffic selectors: a conn's clients as TSi/TSr, and narrowing (RFC 7296 2.9).

The data plane's eroutes are networks, so a Child SA's selectors end up as one
network each side.  The responder narrows: of the ranges the initiator
proposes, the first that meets what the conn allows is cut to the common part
(a wider proposal gets the conn's subnet, a narrower one stays itself); a result
that is not one network is refused like no overlap (TS_UNACCEPTABLE).  The
initiator accepts an answer only inside what it proposed.
"""

from __future__ import annotations

import ipaddress
from typing import Sequence

from fswan.config.model import IPNetwork
from fswan.ikev2.payloads import TrafficSelector

__all__ = ["as_network", "contains", "for_client", "narrow"]


def for_client(client: IPNetwork, protoport: tuple[int, int] | None) -> TrafficSelector:
    """A conn end's client (``leftsubnet=``, or its host) and ``leftprotoport=`` as a selector."""
    protocol, port = protoport or (0, 0)
    first, last = (0, 65535) if port == 0 else (port, port)
    return TrafficSelector.from_range(client.network_address, client.broadcast_address,
                                      protocol, first, last)


def _intersect(a: TrafficSelector, b: TrafficSelector) -> TrafficSelector | None:
    if not (a.known and b.known) or a.ts_type != b.ts_type:
        return None
    if a.ip_protocol and b.ip_protocol and a.ip_protocol != b.ip_protocol:
        return None
    # addresses of one family as big-endian bytes of one length: they order as numbers
    start, end = max(a.start_address, b.start_address), min(a.end_address, b.end_address)
    first, last = max(a.start_port, b.start_port), min(a.end_port, b.end_port)
    if start > end or first > last:
        return None
    return TrafficSelector.from_range(ipaddress.ip_address(start), ipaddress.ip_address(end),
                                      a.ip_protocol or b.ip_protocol, first, last)


def narrow(offered: Sequence[TrafficSelector], allowed: TrafficSelector) -> TrafficSelector | None:
    """The responder's answer for one side: the first offered selector's overlap with
    ``allowed`` that is one network, None when there is none."""
    for selector in offered:
        common = _intersect(selector, allowed)
        if common is not None and as_network(common) is not None:
            return common
    return None


def contains(outer: TrafficSelector, inner: TrafficSelector) -> bool:
    """``inner`` lies within ``outer`` (the initiator's check of an answer)."""
    common = _intersect(outer, inner)
    return common is not None and common == _intersect(inner, inner)


def as_network(ts: TrafficSelector) -> IPNetwork | None:
    """The selector's addresses as one network, None when they are not exactly one."""
    if not ts.known:
        return None
    nets: list[IPNetwork] = list(
        ipaddress.summarize_address_range(ts.start, ts.end))  # type: ignore[arg-type,type-var]
    return nets[0] if len(nets) == 1 else None
