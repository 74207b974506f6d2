"""The IKernel seam and KLIPS's per-connection eroute bookkeeping (sans-IO).

``IKernel`` is what the daemon asks of a kernel: SAs in, SAs out, eroutes
moved.  :class:`Klips` provides it over the user-space :class:`DataPlane`
(the TUN pump hosts the packets; a kernel-XFRM provider could replace it).

Rules of this module:

* One eroute per connection, on the connection's client nets, or for a
  connection whose peer is ``%any`` (road warriors) one per peer client: an
  *instance*, keyed ``conn[client]`` (:func:`instance_name`), pluto's
  ``"rw"[1]``.  Its target
  tells the routing story pluto printed: ``%trap`` ("prospective erouted"),
  an SA ("erouted"), a failure shunt ("fail erouted"), or none ("unrouted").
  Host-to-host ``%hold`` eroutes made by a ``%trap`` belong to the trap's
  connection ("erouted HOLD") until its SA comes up or keying fails.
* Make before break: a new SA pair takes the eroute (``replace``, a pointer
  swap in place) *before* the old pair is deleted, and deleting a pair that
  no longer owns the eroute never touches it.  So a rekey neither loses a
  packet nor lets one out in clear.
* Deleting a connection's last pair puts back what was there before it:
  ``%trap`` for a routed connection, nothing otherwise.
* Nothing here does I/O, logs or reads the clock; errors are
  :class:`KernelError` with KLIPS's words.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Union

from zope.interface import Attribute, Interface, implementer

from fswan.ipsec.dataplane import Acquire, DataPlane
from fswan.ipsec.eroute import DROP, HOLD, PASS, REJECT, TRAP, ErouteError
from fswan.ipsec.sa import IN, OUT, Said, SAError, SecurityAssociation

__all__ = [
    "FAILURE_SHUNTS",
    "IKernel",
    "IKernelStatus",
    "KernelError",
    "Klips",
    "ConnEroute",
    "instance_name",
]

IPNetwork = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]
IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]

#: ``failureshunt=`` value -> the magic SAID it installs
FAILURE_SHUNTS = {"passthrough": PASS, "drop": DROP, "reject": REJECT}


def instance_name(conn: str, remote_client: IPNetwork) -> str:
    """The kernel key of a road-warrior conn's instance for one peer client: each peer
    has its own eroute, and its rekey is make-before-break on that eroute only."""
    return f"{conn}[{remote_client}]"


class KernelError(ValueError):
    """A kernel operation that cannot be done; the message is KLIPS's/pluto's."""


class IKernelStatus(Interface):
    """What the daemon reads from a kernel: per-connection eroutes and SA pairs."""

    conns = Attribute("conn name -> ConnEroute: the eroute, its owner, holds and SA pairs")

    def routing(name: str) -> str:
        """pluto's routing story word(s) for the conn line ("prospective erouted", ...)."""

    def owner_of(name: str) -> int | None:
        """The serial of the SA pair the connection's eroute points at, if any."""

    def pairs_of(name: str) -> dict[int, tuple[SecurityAssociation, SecurityAssociation]]:
        """serial -> (inbound SA, outbound SA) of the connection, in installation order."""

    def instances(conn: str) -> list[str]:
        """The kernel names of ``conn``: its own (if held) and its instances' (``instance_name``)."""


class IKernel(IKernelStatus):
    """What the daemon asks of a kernel: SAs in and out, eroutes moved, per connection
    (and what it reads, ``IKernelStatus``)."""

    dataplane = Attribute(
        "The DataPlane behind this kernel: SAD, eroutes (the policy groups' own eroutes are "
        "put there directly), counters and listings."
    )

    def route(
        name: str, local: IPNetwork | str, remote: IPNetwork | str, now: float, target: str = TRAP
    ) -> None:
        """Install the connection's ``%trap`` eroute (``auto=route``, ``--route``), or for a
        shunt conn (type=passthrough/drop/reject) its shunt; KernelError if the nets are taken."""

    def unroute(name: str, now: float) -> None:
        """Remove the connection's trap/hold/shunt eroutes; KernelError if an SA owns it."""

    def install(
        name: str, serial: int, inbound: SecurityAssociation, outbound: SecurityAssociation, now: float, *,
        take_eroute: bool = True, conn: str | None = None,
    ) -> None:
        """Add an SA pair and (``take_eroute``) point the connection's eroute at its outbound SA;
        ``conn``: the connection ``name`` is an instance of (default: ``name`` itself)."""

    def take_eroute(name: str, serial: int, now: float) -> None:
        """Point the connection's eroute at ``serial``'s outbound SA (make before break)."""

    def delete(name: str, serial: int, now: float) -> tuple[SecurityAssociation | None, SecurityAssociation | None]:
        """Remove an SA pair; the eroute falls back to a newer pair, ``%trap`` or nothing.
        Returns the (inbound, outbound) SAs removed, (None, None) if there was no such pair."""

    def acquire(event: Acquire) -> str | None:
        """The connection owning the ``%trap`` an Acquire came from (its hold recorded)."""

    def hold(name: str, src: IPNetwork, dst: IPNetwork) -> None:
        """Record a host-to-host ``%hold`` the connection answers for (an OE instance keying)."""

    def keying_failed(name: str, shunt: str | None, now: float) -> None:
        """Keying gave up: holds become the failure shunt, or the trap catches again."""

    def peer_port_changed(name: str, serial: int, remote: IPAddress, port: int) -> None:
        """NAT rebinding: the pair's outbound ESP-in-UDP goes to the peer's new port (if the
        SA is to ``remote``: an SA to another address is replaced by IKE, not patched)."""

    def forget(name: str, now: float) -> list[tuple[SecurityAssociation, SecurityAssociation]]:
        """Remove every trace of the connection (delete, replace, shutdown); the pairs removed."""


@dataclass
class ConnEroute:
    """One connection's eroute and SA pairs as the kernel holds them."""

    name: str
    #: the connection this is (``name``) or an instance of (``instance_name``)
    conn: str = ""
    local: IPNetwork | None = None
    remote: IPNetwork | None = None
    #: routed with a %trap (auto=route / --route): the trap comes back after the SAs go
    trap: bool = False
    #: the nets of that trap (an SA may carry narrower ones the peer chose)
    trap_nets: tuple[IPNetwork, IPNetwork] | None = None
    #: serial -> (inbound SA, outbound SA), in installation order
    pairs: dict[int, tuple[SecurityAssociation, SecurityAssociation]] = field(default_factory=dict)
    #: the serial whose outbound SA the eroute points at
    owner: int | None = None
    #: host-to-host (src, dst) nets of %hold eroutes made by this conn's trap
    holds: set[tuple[IPNetwork, IPNetwork]] = field(default_factory=set)
    #: the failure shunt installed on those holds, if keying failed
    failed: str | None = None

    def __post_init__(self) -> None:
        if not self.conn:
            self.conn = self.name

    def routing(self) -> str:
        """pluto's routing story word(s) for the conn line."""
        if self.owner is not None:
            return "erouted"
        if self.pairs:
            return "keyed, unrouted"
        if self.failed:
            return "fail erouted"
        if self.holds:
            return "erouted HOLD"
        if self.trap:
            return "prospective erouted"
        return "unrouted"


@implementer(IKernel)
class Klips:
    """IKernel (with IKernelStatus) over the sans-IO :class:`DataPlane`."""

    def __init__(self, dataplane: DataPlane) -> None:
        self.dataplane = dataplane
        self.conns: dict[str, ConnEroute] = {}
        #: the trap eroute's (src, dst) nets -> conn name, for Acquire
        self._traps: dict[tuple[IPNetwork, IPNetwork], str] = {}
        #: conn name -> the names of its instances held (status reads them per conn line)
        self._instances: dict[str, set[str]] = {}

    # -- helpers ----------------------------------------------------------------

    def conn(self, name: str, conn: str | None = None) -> ConnEroute:
        entry = self.conns.get(name)
        if entry is None:
            entry = self.conns[name] = ConnEroute(name, conn or name)
            if entry.conn != name:
                self._instances.setdefault(entry.conn, set()).add(name)
        return entry

    def instances(self, conn: str) -> list[str]:
        own = [conn] if conn in self.conns else []
        return own + sorted(self._instances.get(conn, ()))

    def routing(self, name: str) -> str:
        entry = self.conns.get(name)
        return entry.routing() if entry is not None else "unrouted"

    def _eroute_target(self, entry: ConnEroute) -> object:
        if entry.local is None or entry.remote is None:
            return None
        e = self.dataplane.eroutes.get(entry.local, entry.remote)
        return None if e is None else e.said

    def _claim_nets(self, entry: ConnEroute, local: IPNetwork, remote: IPNetwork) -> None:
        """Refuse an eroute on nets another connection's eroute already uses."""
        for other in self.conns.values():
            if other is not entry and other.local == local and other.remote == remote and (
                other.trap or other.owner is not None
            ):
                raise KernelError(
                    f'cannot route -- eroute {local} -> {remote} already in use for "{other.name}"'
                )

    # -- IKernel ----------------------------------------------------------------

    def route(
        self, name: str, local: IPNetwork | str, remote: IPNetwork | str, now: float,
        target: str = TRAP,
    ) -> None:
        """Install the conn's %trap (or, for type=passthrough/drop/reject, its shunt) eroute."""
        local_net = ipaddress.ip_network(local, strict=False)
        remote_net = ipaddress.ip_network(remote, strict=False)
        entry = self.conn(name)
        if entry.trap:
            return
        self._claim_nets(entry, local_net, remote_net)
        entry.local, entry.remote, entry.trap = local_net, remote_net, True
        entry.trap_nets = (local_net, remote_net)
        if target == TRAP:
            self._traps[(local_net, remote_net)] = name
        else:
            entry.failed = target  # a shunt conn: "fail erouted" is the closest story
        if entry.owner is None:
            try:
                self.dataplane.replace_eroute(local_net, remote_net, target, now=now)
            except ErouteError as error:
                raise KernelError(str(error)) from None

    def unroute(self, name: str, now: float) -> None:
        entry = self.conns.get(name)
        if entry is None:
            return
        if entry.owner is not None:
            raise KernelError("cannot unroute: route busy (an IPsec SA uses it; --down first)")
        self._clear_holds(entry, now)
        if entry.trap_nets is not None:
            self._traps.pop(entry.trap_nets, None)
            self._delete_eroute(*entry.trap_nets, now)
        entry.trap = False
        entry.trap_nets = None
        entry.failed = None
        self._maybe_drop(entry)

    def install(
        self,
        name: str,
        serial: int,
        inbound: SecurityAssociation,
        outbound: SecurityAssociation,
        now: float,
        *,
        take_eroute: bool = True,
        conn: str | None = None,
    ) -> None:
        entry = self.conn(name, conn)
        local = inbound.local_client
        remote = inbound.remote_client
        if entry.owner is None and not entry.trap:
            self._claim_nets(entry, local, remote)
        dp = self.dataplane
        try:
            dp.install_sa(inbound)
        except SAError as error:
            raise KernelError(str(error)) from None
        try:
            dp.install_sa(outbound)
        except SAError as error:
            dp.delete_sa(inbound.said, IN)
            raise KernelError(str(error)) from None
        entry.pairs[serial] = (inbound, outbound)
        if take_eroute:
            self.take_eroute(name, serial, now)

    def take_eroute(self, name: str, serial: int, now: float) -> None:
        """Point the conn's eroute at ``serial``'s outbound SA (the make in make-before-break)."""
        entry = self.conns[name]
        inbound, outbound = entry.pairs[serial]
        local, remote = outbound.local_client, outbound.remote_client
        old = (entry.local, entry.remote)
        if entry.local is not None and old != (local, remote) and old != entry.trap_nets:
            # an earlier SA's eroute on other nets (the peer chose them): it goes
            self._delete_eroute(entry.local, entry.remote, now)  # type: ignore[arg-type]
        entry.local, entry.remote = local, remote
        self.dataplane.replace_eroute(local, remote, outbound.said, now=now)
        entry.owner = serial
        entry.failed = None
        self._clear_holds(entry, now)

    def delete(
        self, name: str, serial: int, now: float
    ) -> tuple[SecurityAssociation | None, SecurityAssociation | None]:
        entry = self.conns.get(name)
        if entry is None or serial not in entry.pairs:
            return None, None
        inbound, outbound = entry.pairs.pop(serial)
        if entry.owner == serial:
            entry.owner = None
            newer = [s for s in entry.pairs if not entry.pairs[s][1].dead]
            if newer:
                self.take_eroute(name, newer[-1], now)
            elif entry.local is not None and entry.remote is not None:
                if entry.trap_nets == (entry.local, entry.remote):
                    self.dataplane.replace_eroute(entry.local, entry.remote, TRAP, now=now)
                else:
                    self._delete_eroute(entry.local, entry.remote, now)
                    if entry.trap_nets is not None:
                        entry.local, entry.remote = entry.trap_nets
        dp = self.dataplane
        dp.delete_sa(outbound.said, OUT)
        dp.delete_sa(inbound.said, IN)
        self._maybe_drop(entry)
        return inbound, outbound

    def acquire(self, event: Acquire) -> str | None:
        name = self._traps.get((event.eroute_src, event.eroute_dst))
        if name is None:
            return None
        bits = event.src.max_prefixlen
        hold = (
            ipaddress.ip_network((int(event.src), bits)),
            ipaddress.ip_network((int(event.dst), bits)),
        )
        self.conns[name].holds.add(hold)
        return name

    def hold(self, name: str, src: IPNetwork, dst: IPNetwork) -> None:
        self.conn(name).holds.add((src, dst))

    def keying_failed(self, name: str, shunt: str | None, now: float) -> None:
        entry = self.conns.get(name)
        if entry is None or not entry.holds or entry.owner is not None:
            return
        target = FAILURE_SHUNTS.get(shunt or "")
        if target is None:
            self._clear_holds(entry, now)
            return
        for src, dst in entry.holds:
            try:
                self.dataplane.replace_eroute(src, dst, target, now=now)
            except ErouteError:
                continue
        entry.failed = target

    def peer_port_changed(self, name: str, serial: int, remote: IPAddress, port: int) -> None:
        entry = self.conns.get(name)
        pair = entry.pairs.get(serial) if entry is not None else None
        if pair is None:
            return
        outbound = pair[1]
        if outbound.remote != remote:
            return
        outbound.remote_port = port
        outbound.sendto = (str(remote), port)

    def forget(self, name: str, now: float) -> list[tuple[SecurityAssociation, SecurityAssociation]]:
        """Drop everything of ``name``; returns the SA pairs removed (for the counters)."""
        entry = self.conns.get(name)
        if entry is None:
            return []
        removed = []
        for serial in list(entry.pairs):
            inbound, outbound = self.delete(name, serial, now)
            if inbound is not None and outbound is not None:
                removed.append((inbound, outbound))
        entry = self.conns.get(name)
        if entry is not None:
            entry.owner = None
            self.unroute(name, now)
        self._drop(name)
        return removed

    # -- internals --------------------------------------------------------------

    def _clear_holds(self, entry: ConnEroute, now: float) -> None:
        """Remove this conn's host-to-host holds (a held packet goes out if it now can)."""
        for src, dst in sorted(entry.holds, key=str):
            e = self.dataplane.eroutes.get(src, dst)
            if e is None:
                continue
            if (src, dst) == entry.trap_nets or (src, dst) == (entry.local, entry.remote):
                # a host-to-host trap became its own hold: put the trap (or the SA) back
                if entry.owner is None and entry.trap and (src, dst) == entry.trap_nets:
                    self.dataplane.replace_eroute(src, dst, TRAP, now=now)
                continue
            if e.magic in (HOLD, PASS, DROP, REJECT):
                self.dataplane.delete_eroute(src, dst, now=now)
        entry.holds.clear()
        entry.failed = None

    def _delete_eroute(self, src: IPNetwork, dst: IPNetwork, now: float) -> None:
        if self.dataplane.eroutes.get(src, dst) is not None:
            self.dataplane.delete_eroute(src, dst, now=now)

    def _maybe_drop(self, entry: ConnEroute) -> None:
        if not entry.pairs and not entry.trap and not entry.holds and entry.owner is None:
            self._drop(entry.name)

    def _drop(self, name: str) -> None:
        entry = self.conns.pop(name, None)
        if entry is None or entry.conn == name:
            return
        names = self._instances.get(entry.conn)
        if names is not None:
            names.discard(name)
            if not names:
                del self._instances[entry.conn]

    # -- listings ---------------------------------------------------------------

    def owner_of(self, name: str) -> int | None:
        entry = self.conns.get(name)
        return entry.owner if entry is not None else None

    def pairs_of(self, name: str) -> dict[int, tuple[SecurityAssociation, SecurityAssociation]]:
        entry = self.conns.get(name)
        return dict(entry.pairs) if entry is not None else {}

    def sa_said_text(self, said: Said) -> str:
        return said.dotted
