"""Opportunistic-encryption policy groups and FreeS/WAN's implicit conns (pure).

FreeS/WAN 2.x defines six conns itself (ipsec.conf(5) "IMPLICIT CONNS") and
reads one file per policy group from ``ipsec.d/policies/`` beside ipsec.conf:
one CIDR per line, ``#`` comments.  Each CIDR of a group becomes an eroute
from our client net to it whose shunt says what happens to the first packet:
``clear`` passes it, ``block`` rejects it, the three OE groups trap it (so
keying starts; ``clear-or-private`` passes outbound traffic and only answers
incoming OE).  A conn instantiated for one destination is named
``private-or-clear#192.0.2.3``.

This module only parses and computes; the daemon reads the files.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, replace
from ipaddress import ip_address, ip_network
from typing import Any, Mapping

from fswan.config import keywords as kw_table
from fswan.config.errors import ConfigError, ConfigErrors, Location
from fswan.config.ipsecconf import IMPLICIT_CONNS
from fswan.config.keywords import Section
from fswan.config.model import Auto, AuthBy, Config, Connection, ConnType, End, FailureShunt, IPNetwork

#: the policy groups, in FreeS/WAN's order (``ipsec.d/policies/<name>``)
POLICY_GROUPS = ("clear", "clear-or-private", "private-or-clear", "private", "block")
#: groups whose destinations are keyed opportunistically
OE_GROUPS = ("clear-or-private", "private-or-clear", "private")
HOUR = 3600.0

#: the first-packet shunt of each group's eroutes (outbound)
GROUP_SHUNT = {
    "clear": "%pass",
    "clear-or-private": "%pass",
    "private-or-clear": "%trap",
    "private": "%trap",
    "block": "%reject",
}

#: failureshunt= of each OE group (ipsec.conf(5))
_FAILURE = {
    "clear-or-private": FailureShunt.PASSTHROUGH,
    "private-or-clear": FailureShunt.PASSTHROUGH,
    "private": FailureShunt.DROP,
}

#: eroute word for a failure shunt
FAILURE_EROUTE = {
    FailureShunt.PASSTHROUGH: "%pass",
    FailureShunt.DROP: "%drop",
    FailureShunt.REJECT: "%reject",
    FailureShunt.NONE: "%trap",
}


def policies_dir(config_path: str) -> str:
    """``ipsec.d/policies`` beside ipsec.conf (``/etc/ipsec.conf`` -> ``/etc/ipsec.d/policies``)."""
    return posixpath.join(posixpath.dirname(config_path) or ".", "ipsec.d", "policies")


def parse_policy_group(text: str, filename: str) -> tuple[IPNetwork, ...]:
    """One CIDR (or address) per line, ``#`` starts a comment; every bad line is a file:line error."""
    nets: list[IPNetwork] = []
    errors: list[ConfigError] = []
    for number, line in enumerate(text.splitlines(), start=1):
        word = line.split("#", 1)[0].strip()
        if not word:
            continue
        if len(word.split()) != 1:
            errors.append(ConfigError(f'expected one CIDR per line, not "{word}"', Location(filename, number)))
            continue
        try:
            net = ip_network(word, strict=True)
        except ValueError:
            errors.append(ConfigError(f'"{word}" is not a CIDR (address/prefix)', Location(filename, number)))
            continue
        if net not in nets:
            nets.append(net)
    if errors:
        raise ConfigErrors(errors)
    return tuple(nets)


def default_implicit_conn(name: str) -> Connection:
    """FreeS/WAN's built-in definition of implicit conn ``name``."""
    if name not in IMPLICIT_CONNS:
        raise KeyError(name)
    left = End(host="%defaultroute", nexthop="%defaultroute")
    oe = dict(keyingtries=3, ikelifetime=HOUR, keylife=HOUR, rekey=False, auto=Auto.ROUTE)
    if name == "clear":
        return Connection(name, left, End(host="%group"), type=ConnType.PASSTHROUGH,
                          authby=AuthBy.NEVER, auto=Auto.ROUTE)
    if name == "block":
        return Connection(name, left, End(host="%group"), type=ConnType.REJECT,
                          authby=AuthBy.NEVER, auto=Auto.ROUTE)
    if name == "packetdefault":
        left = replace(left, subnet=ip_network("0.0.0.0/0"))
        return Connection(name, left, End(host="%opportunistic"), failureshunt=FailureShunt.PASSTHROUGH,
                          **oe)  # type: ignore[arg-type]
    return Connection(name, left, End(host="%opportunisticgroup"), failureshunt=_FAILURE[name],
                      **oe)  # type: ignore[arg-type]


def _apply(base: Connection, user: Connection) -> Connection:
    """``base`` with every keyword the user's section set (as parsed into ``user``)."""
    conn_changes: dict[str, Any] = {}
    end_changes: dict[str, dict[str, Any]] = {"left": {}, "right": {}}
    for key in user.settings:
        keyword = kw_table.KEYWORDS.get((Section.CONN, key))
        if keyword is None or keyword.model_field is None:
            continue
        if keyword.end:
            end_changes[keyword.side][keyword.model_field] = getattr(
                getattr(user, keyword.side), keyword.model_field)
        else:
            conn_changes[keyword.model_field] = getattr(user, keyword.model_field)
    for side in ("left", "right"):
        # a host written without a nexthop: the parser's nexthop for it, not %defaultroute's
        if side in user.settings and f"{side}nexthop" not in user.settings:
            end_changes[side]["nexthop"] = getattr(user, side).nexthop
    left = replace(base.left, **end_changes["left"])
    right = replace(base.right, **end_changes["right"])
    return replace(base, left=left, right=right, location=user.location, settings=user.settings,
                   user_keys=user.user_keys, unsupported=user.unsupported, **conn_changes)


def implicit_conns(config: Config) -> dict[str, Connection]:
    """The implicit conns in force: built-ins, with ``conn %oedefault`` (Openswan) and then a
    file's redefinition applied on top, and those set ``auto=ignore`` left out."""
    result: dict[str, Connection] = {}
    for name in IMPLICIT_CONNS:
        conn = default_implicit_conn(name)
        if config.oedefault is not None:
            # Openswan's conn %oedefault: the file's defaults for the implicit conns
            # (a redefinition below already has them merged in)
            conn = _apply(conn, config.oedefault)
            conn = replace(conn, name=name)
        user = config.conns.get(name)
        if user is not None:
            if user.auto is Auto.IGNORE and "auto" in user.settings:
                continue
            conn = _apply(conn, user)
        if conn.auto is Auto.IGNORE:
            continue
        result[name] = conn
    return result


def instance_name(group: str, address: Any) -> str:
    """FreeS/WAN's name for the conn instantiated from ``group`` for one peer client."""
    return f"{group}#{ip_address(str(address))}"


def split_instance_name(name: str) -> tuple[str, str] | None:
    """``private#192.0.2.3`` -> (``private``, ``192.0.2.3``); None for an ordinary name."""
    group, sep, address = name.partition("#")
    if not sep or group not in POLICY_GROUPS:
        return None
    return group, address


@dataclass(frozen=True)
class GroupEroute:
    """One policy-group eroute: from our client net to one CIDR of a group."""

    group: str
    source: IPNetwork
    destination: IPNetwork
    #: ``%pass``, ``%trap`` or ``%reject``
    shunt: str


def group_eroutes(
    groups: Mapping[str, tuple[IPNetwork, ...]],
    conns: Mapping[str, Connection],
    our_host: Any,
) -> list[GroupEroute]:
    """The eroutes of every group whose implicit conn is in force, from that conn's
    ``leftsubnet=`` (or our host alone) to each CIDR, most specific destination first."""
    eroutes: list[GroupEroute] = []
    seen: set[tuple[IPNetwork, IPNetwork]] = set()
    host_net = ip_network(str(our_host)) if our_host is not None else None
    for group in POLICY_GROUPS:
        conn = conns.get(group)
        if conn is None:
            continue
        source = conn.left.subnet or host_net
        if source is None:
            continue
        for destination in groups.get(group, ()):
            if destination.version != source.version or (source, destination) in seen:
                continue
            seen.add((source, destination))
            eroutes.append(GroupEroute(group, source, destination, GROUP_SHUNT[group]))
    eroutes.sort(key=lambda e: (-e.destination.prefixlen, POLICY_GROUPS.index(e.group)))
    return eroutes


def group_for(eroutes: list[GroupEroute], source: Any, destination: Any) -> GroupEroute | None:
    """The eroute (most specific destination) covering a packet source -> destination."""
    src, dst = ip_address(str(source)), ip_address(str(destination))
    for eroute in eroutes:
        if src.version == eroute.source.version and src in eroute.source and dst in eroute.destination:
            return eroute
    return None
