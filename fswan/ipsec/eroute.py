"""The KLIPS eroute table: (source net, destination net) -> SA or magic SAID.

Rules of this module:

* Most specific first: the longest destination prefix wins, then the
  longest source prefix; among eroutes on the same pair of nets, one with a
  protocol/ports beats one without.  (KLIPS used a radix tree; FreeS/WAN users
  only ever see the "most specific wins" outcome, which this reproduces.)
* Lookup is a dict per (destination length, source length) pair actually in
  use, tried longest first: at most a few dict lookups for real tables and
  never more than 33 x 33 for IPv4.  In front of that sits a per-packet
  cache keyed by the raw address bytes of the packet (``packet[12:20]`` for
  IPv4, ``packet[8:40]`` for IPv6), so steady traffic costs one slice and one
  dict lookup.  Any change to the table empties the cache; the cache is
  bounded so spoofed sources cannot grow it without limit.  While any eroute
  names a protocol or port the cache is bypassed (ports vary per flow).
* The targets are a :class:`~fswan.ipsec.sa.Said` (an SA bundle: the data
  plane resolves it to the outbound SA once and keeps the reference in
  ``Eroute.sa``) or one of the magic SAIDs ``%trap %hold %pass %drop
  %reject``.  ``%hold`` keeps the *last* packet that hit it, as KLIPS did.
* Every eroute counts the packets that matched it; the listing is KLIPS's
  ``/proc/net/ipsec_eroute`` (``ipsec eroute``) layout.
"""

from __future__ import annotations

import ipaddress
from typing import Any, Iterator, Union

from fswan.ipsec.packet import transport_ports
from fswan.ipsec.sa import Said

__all__ = [
    "DROP",
    "HOLD",
    "MAGIC_SAIDS",
    "PASS",
    "REJECT",
    "TRAP",
    "Eroute",
    "ErouteError",
    "ErouteTable",
    "parse_target",
]

TRAP = "%trap"
HOLD = "%hold"
PASS = "%pass"
DROP = "%drop"
REJECT = "%reject"
MAGIC_SAIDS = (TRAP, HOLD, PASS, DROP, REJECT)

IPNetwork = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]
Target = Union[Said, str]

_MISS = object()


class ErouteError(ValueError):
    """An eroute operation that cannot be done (exists already, not found, bad nets)."""


def parse_target(target: Target) -> Target:
    """A Said, a magic SAID string, or SAID text (``tun0x130@192.0.2.2``) made a Said."""
    if isinstance(target, Said):
        return target
    if target in MAGIC_SAIDS:
        return target
    if isinstance(target, str):
        try:
            return Said.parse(target)
        except ValueError as exc:
            raise ErouteError(
                f"bad SAID {target!r}: one of {' '.join(MAGIC_SAIDS)} or esp0xSPI@dst"
            ) from exc
    raise ErouteError(f"bad eroute target {target!r}")


class Eroute:
    """One eroute; mutable in place so cached references stay valid across ``replace``."""

    __slots__ = (
        "src", "dst", "proto", "sport", "dport", "said", "magic", "sa", "count", "held", "key",
    )

    def __init__(
        self, src: IPNetwork, dst: IPNetwork, said: Target, proto: int, sport: int, dport: int
    ) -> None:
        self.src = src
        self.dst = dst
        self.proto = proto
        self.sport = sport
        self.dport = dport
        self.said: Target = said
        #: the magic SAID string, or None for an SA eroute
        self.magic: str | None = said if isinstance(said, str) else None
        #: the resolved outbound SA (set by the data plane), None for magic eroutes
        self.sa: Any = None
        self.count = 0
        #: the last packet held by a %hold eroute
        self.held: bytes | None = None
        self.key = _key(src, dst, proto, sport, dport)

    def set_target(self, said: Target) -> None:
        self.said = said
        self.magic = said if isinstance(said, str) else None
        self.sa = None

    @property
    def specificity(self) -> int:
        return (self.proto != 0) + (self.sport != 0) + (self.dport != 0)

    def matches_ports(self, proto: int, sport: int, dport: int) -> bool:
        return (
            (self.proto == 0 or self.proto == proto)
            and (self.sport == 0 or self.sport == sport)
            and (self.dport == 0 or self.dport == dport)
        )

    def line(self) -> str:
        """``count src -> dst => SAID[:proto]``, as ``/proc/net/ipsec_eroute``."""
        src = f"{self.src}:{self.sport}" if self.sport else str(self.src)
        dst = f"{self.dst}:{self.dport}" if self.dport else str(self.dst)
        proto = f":{self.proto}" if self.proto else ""
        return f"{self.count:<10d} {src:<18s} -> {dst:<18s} => {self.said}{proto}"

    def __repr__(self) -> str:
        return f"<Eroute {self.line().strip()}>"


def _key(src: IPNetwork, dst: IPNetwork, proto: int, sport: int, dport: int) -> tuple[Any, ...]:
    return (src.version, src, dst, proto, sport, dport)


def _network(value: Any) -> IPNetwork:
    try:
        return ipaddress.ip_network(value, strict=False)
    except ValueError as exc:
        raise ErouteError(str(exc)) from None


class _Group:
    """All eroutes of one family with the same (destination, source) prefix lengths."""

    __slots__ = ("dlen", "slen", "dmask", "smask", "table")

    def __init__(self, dlen: int, slen: int, dmask: int, smask: int) -> None:
        self.dlen, self.slen, self.dmask, self.smask = dlen, slen, dmask, smask
        #: (destination net int, source net int) -> eroutes, most specific first
        self.table: dict[tuple[int, int], list[Eroute]] = {}


class ErouteTable:
    """The eroute table with its lookup cache."""

    def __init__(self, cache_size: int = 8192) -> None:
        self._entries: dict[tuple[Any, ...], Eroute] = {}
        self._groups: dict[int, list[_Group]] = {4: [], 6: []}
        self._cache: dict[bytes, Eroute | None] = {}
        self._cache_size = cache_size
        #: eroutes naming a protocol or port (the cache is off while any exist)
        self._with_ports = 0

    # ------------------------------------------------------------------
    # changes

    def add(
        self, src: Any, dst: Any, said: Target, *, proto: int = 0, sport: int = 0, dport: int = 0
    ) -> Eroute:
        """Add an eroute; one on the same nets and ports already is an error."""
        src_net, dst_net = _network(src), _network(dst)
        if src_net.version != dst_net.version:
            raise ErouteError(f"eroute {src_net} -> {dst_net} mixes address families")
        e = Eroute(src_net, dst_net, parse_target(said), proto, sport, dport)
        if e.key in self._entries:
            raise ErouteError(f"eroute {src_net} -> {dst_net} already exists")
        self._entries[e.key] = e
        group = self._group(src_net.version, dst_net, src_net)
        nets = (int(dst_net.network_address), int(src_net.network_address))
        bucket = group.table.setdefault(nets, [])
        bucket.append(e)
        bucket.sort(key=lambda x: -x.specificity)
        if e.specificity:
            self._with_ports += 1
        self._cache.clear()
        return e

    def replace(
        self, src: Any, dst: Any, said: Target, *, proto: int = 0, sport: int = 0, dport: int = 0
    ) -> tuple[Eroute, bytes | None]:
        """Point an existing eroute elsewhere; returns it and the packet it was holding."""
        e = self.get(src, dst, proto=proto, sport=sport, dport=dport)
        if e is None:
            raise ErouteError(f"eroute {_network(src)} -> {_network(dst)} not found")
        held, e.held = e.held, None
        e.set_target(parse_target(said))
        return e, held

    def delete(
        self, src: Any, dst: Any, *, proto: int = 0, sport: int = 0, dport: int = 0
    ) -> Eroute:
        """Remove an eroute and return it (its ``held`` packet is the caller's to release)."""
        e = self.get(src, dst, proto=proto, sport=sport, dport=dport)
        if e is None:
            raise ErouteError(f"eroute {_network(src)} -> {_network(dst)} not found")
        self._remove(e)
        return e

    def clear(self) -> None:
        self._entries.clear()
        self._groups = {4: [], 6: []}
        self._cache.clear()
        self._with_ports = 0

    def _remove(self, e: Eroute) -> None:
        del self._entries[e.key]
        groups = self._groups[e.src.version]
        for i, group in enumerate(groups):
            if group.dlen == e.dst.prefixlen and group.slen == e.src.prefixlen:
                key = (int(e.dst.network_address), int(e.src.network_address))
                bucket = group.table[key]
                bucket.remove(e)
                if not bucket:
                    del group.table[key]
                if not group.table:
                    del groups[i]
                break
        if e.specificity:
            self._with_ports -= 1
        self._cache.clear()

    def _group(self, version: int, dst: IPNetwork, src: IPNetwork) -> _Group:
        groups = self._groups[version]
        for group in groups:
            if group.dlen == dst.prefixlen and group.slen == src.prefixlen:
                return group
        group = _Group(dst.prefixlen, src.prefixlen, int(dst.netmask), int(src.netmask))
        groups.append(group)
        groups.sort(key=lambda g: (-g.dlen, -g.slen))
        return group

    # ------------------------------------------------------------------
    # lookups

    def get(
        self, src: Any, dst: Any, *, proto: int = 0, sport: int = 0, dport: int = 0
    ) -> Eroute | None:
        """The eroute on exactly these nets and ports."""
        return self._entries.get(_key(_network(src), _network(dst), proto, sport, dport))

    def lookup(self, packet: bytes) -> Eroute | None:
        """The eroute for an IPv4/IPv6 packet, or None (no eroute, or not an IP packet)."""
        if not packet:
            return None
        version = packet[0] >> 4
        if version == 4:
            if len(packet) < 20:
                return None
            key = packet[12:20]
        elif version == 6:
            if len(packet) < 40:
                return None
            key = packet[8:40]
        else:
            return None
        if self._with_ports:
            half = len(key) >> 1
            return self.match(
                version,
                int.from_bytes(key[:half], "big"),
                int.from_bytes(key[half:], "big"),
                *transport_ports(packet),
            )
        e = self._cache.get(key, _MISS)
        if e is not _MISS:
            return e  # type: ignore[return-value]
        half = len(key) >> 1
        e = self.match(
            version, int.from_bytes(key[:half], "big"), int.from_bytes(key[half:], "big")
        )
        if len(self._cache) >= self._cache_size:
            self._cache.clear()
        self._cache[key] = e
        return e

    def match(
        self, version: int, src: int, dst: int, proto: int = 0, sport: int = 0, dport: int = 0
    ) -> Eroute | None:
        """The most specific eroute covering (src, dst[, proto, ports]), addresses as ints."""
        for group in self._groups.get(version, ()):
            bucket = group.table.get((dst & group.dmask, src & group.smask))
            if bucket is not None:
                for e in bucket:
                    if e.matches_ports(proto, sport, dport):
                        return e
        return None

    def hold_for(self, version: int, src: int, dst: int) -> Eroute:
        """The host-to-host %hold eroute a %trap makes for (src, dst); existing ones are reused.

        When the trap itself is host-to-host it becomes the hold (same key).
        """
        bits = 32 if version == 4 else 128
        src_net = ipaddress.ip_network((src, bits))
        dst_net = ipaddress.ip_network((dst, bits))
        e = self.get(src_net, dst_net)
        if e is None:
            return self.add(src_net, dst_net, HOLD)
        if e.magic != HOLD:
            e.set_target(HOLD)
        return e

    # ------------------------------------------------------------------

    def __iter__(self) -> Iterator[Eroute]:
        def order(e: Eroute) -> tuple[Any, ...]:
            return (e.src.version, e.src.network_address, e.src.prefixlen,
                    e.dst.network_address, e.dst.prefixlen, e.proto, e.sport, e.dport)

        return iter(sorted(self._entries.values(), key=order))

    def __len__(self) -> int:
        return len(self._entries)

    def listing(self) -> list[str]:
        """The ``ipsec eroute`` lines."""
        return [e.line() for e in self]
