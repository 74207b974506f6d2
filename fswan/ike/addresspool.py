"""The addresses a Mode Config server hands out (``rightaddresspool=``), pure.

A lease is keyed by who holds it (the XAUTH user, else the peer's ID), so a client
that reconnects gets the address it had: a key keeps its last address while nobody
else needs it, and new keys get never-used addresses first, then the ones released
longest ago.  Two ISAKMP SAs of the same key (a client reconnecting before its old SA
is gone) share the address and count as two holders.
"""

from __future__ import annotations

from collections import OrderedDict
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import Union

IPAddress = Union[IPv4Address, IPv6Address]


class PoolExhausted(Exception):
    """Every address of the pool is leased."""


class AddressPool:
    def __init__(self, first: IPAddress, last: IPAddress) -> None:
        if first.version != last.version or int(first) > int(last):
            raise ValueError(f"bad address range {first}-{last}")
        self.first, self.last = first, last
        self._next_fresh = int(first)
        #: key -> (address, holders) of current leases
        self._leases: dict[str, tuple[IPAddress, int]] = {}
        self._taken: set[int] = set()
        #: released addresses, oldest first, with the key that last held each
        self._free: OrderedDict[int, str] = OrderedDict()

    @property
    def size(self) -> int:
        return int(self.last) - int(self.first) + 1

    @property
    def in_use(self) -> int:
        return len(self._taken)

    def leases(self) -> dict[str, IPAddress]:
        return {key: address for key, (address, _) in self._leases.items()}

    def lease(self, key: str) -> IPAddress:
        """The address for ``key`` (its current or last one when possible)."""
        held = self._leases.get(key)
        if held is not None:
            self._leases[key] = (held[0], held[1] + 1)
            return held[0]
        value = next((v for v, last in self._free.items() if last == key), None)
        if value is None and self._next_fresh <= int(self.last):
            value = self._next_fresh
            self._next_fresh += 1
        if value is None and self._free:
            value = next(iter(self._free))
        if value is None:
            raise PoolExhausted(f"address pool {self.first}-{self.last} is exhausted "
                                f"({self.size} leased)")
        self._free.pop(value, None)
        address = ip_address(value)
        self._taken.add(value)
        self._leases[key] = (address, 1)
        return address

    def release(self, key: str) -> None:
        """One holder of ``key``'s lease is gone; the last one frees the address."""
        held = self._leases.get(key)
        if held is None:
            return
        address, holders = held
        if holders > 1:
            self._leases[key] = (address, holders - 1)
            return
        del self._leases[key]
        self._taken.discard(int(address))
        self._free[int(address)] = key
