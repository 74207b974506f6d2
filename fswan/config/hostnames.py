"""Host names in ipsec.conf, resolved through DNS when a conn is added (pure).

FreeS/WAN let ``left=``/``right=``, ``leftnexthop=``/``rightnexthop=`` and a
bare-word ``leftid=`` name a host (``vpn.example.com``): ``ipsec auto --add``
looked the name up and handed pluto the address; a name that did not resolve
stopped that one conn with whack's ``does not look numeric and name lookup
failed``.  The parser keeps such names as written (``End.needs_dns``); this
module says which names a conn needs (``host_names``) and, given the answers
the daemon got (dnspython, off the reactor), builds the conn with addresses in
(``resolve_hosts``).  Nothing here does I/O.

The daemon's part (``fswan/daemon``), when it adds a conn from the config:

1. ``names = needed_names(conn)``; if empty, add the conn as before.
2. Otherwise look each name up off the reactor (A, then AAAA when left/right
   are IPv6 or A gave nothing), giving ``answers: {name: [addresses]}`` (an
   empty list, or no entry, for a name that did not resolve).
3. ``resolve_hosts(conn, answers)`` -> the conn to orient and add; a
   ``ResolveError`` refuses that conn alone: log ``str(error)`` (file:line and
   pluto's text) with ``RC.NOPEERIP`` and go on with the others.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from fswan.config.errors import ConfigError, Location
from fswan.config.model import Config, Connection, End, IPAddress, is_dns_name

#: whack's text for a name that does not resolve (``ttoaddr``), printed with the name
LOOKUP_FAILED = "does not look numeric and name lookup failed"


@dataclass(frozen=True)
class HostName:
    """One name a conn needs resolved."""

    #: the keyword it was written with: ``left``, ``rightnexthop``, ``leftid`` ...
    keyword: str
    #: the name, as ``values.parse_host`` keeps it (lower case, no trailing dot)
    name: str
    location: Location | None = None

    def __str__(self) -> str:
        return f"{self.keyword}={self.name}"


class ResolveError(ConfigError):
    """A conn whose host name did not resolve: pluto's message, with where it was written."""


def _fields(end: End) -> list[tuple[str, str | None]]:
    return [("", end.host), ("nexthop", end.nexthop), ("id", end.id)]


def host_names(conn: Connection) -> list[HostName]:
    """Every name ``conn`` needs resolved, in left, right order (host, nexthop, id)."""
    found: list[HostName] = []
    for side in ("left", "right"):
        end: End = getattr(conn, side)
        for suffix, value in _fields(end):
            if value is not None and is_dns_name(value):
                keyword = side + suffix
                location = conn.settings.get(keyword, ("", None))[1]
                found.append(HostName(keyword, value, location))
    return found


def needed_names(conn: Connection) -> list[str]:
    """The distinct names to look up for ``conn`` (what the daemon queries)."""
    return list(dict.fromkeys(h.name for h in host_names(conn)))


def config_host_names(config: Config) -> list[tuple[str, HostName]]:
    """(conn name, name) for every conn of ``config`` that needs DNS: what ``ipsec
    checkconfig`` says it would resolve."""
    return [(name, host) for name, conn in config.conns.items() for host in host_names(conn)]


def _pick(addresses: Sequence[IPAddress], family: int | None) -> IPAddress | None:
    """The first address of the wanted family (any family when None)."""
    for address in addresses:
        if family is None or address.version == family:
            return address
    return None


def resolve_hosts(conn: Connection, answers: Mapping[str, Sequence[IPAddress]]) -> Connection:
    """``conn`` with every host name replaced by its address from ``answers``.

    The family follows the other end when that is an address (an IPv6 peer gets
    our AAAA); a bare-word ID becomes the address ID of its name.  Raise
    ``ResolveError`` (pluto's text, file:line) for the first name without an
    answer of a usable family."""
    families = {side: _family(getattr(conn, side)) for side in ("left", "right")}
    ends: dict[str, End] = {}
    for side, other in (("left", "right"), ("right", "left")):
        end: End = getattr(conn, side)
        changes: dict[str, Any] = {}
        for suffix, value in _fields(end):
            if value is None or not is_dns_name(value):
                continue
            keyword = side + suffix
            wanted = families[side] or families[other]
            address = _pick(answers.get(value, ()), wanted)
            if address is None:
                location = conn.settings.get(keyword, ("", None))[1]
                raise ResolveError(f'"{conn.name}": {keyword}={value}: {LOOKUP_FAILED} "{value}"', location)
            changes["host" if suffix == "" else suffix] = str(address)
        ends[side] = replace(end, **changes) if changes else end
    return replace(conn, left=ends["left"], right=ends["right"])


def _family(end: End) -> int | None:
    address = end.host_address
    return address.version if address is not None else None
