"""Tunnels: what pluto did between its IKE states, the kernel and ``_updown``.

The IKE engine says an SA pair was installed or deleted; the data plane says
a packet hit a ``%trap`` or an SA crossed a limit.  ``Tunnels`` turns those
into kernel operations (:class:`~fswan.ipsec.kernel.Klips`) and updown verbs
(:class:`~fswan.updown.runner.UpdownRunner`), following docs/updown.md's
table:

==========================================  =====================================
event                                       what happens
==========================================  =====================================
``--route`` / ``auto=route``                ``prepare``, ``route``; then ``%trap``
first SA pair of an unrouted conn           SAs in; ``prepare``, ``route``; eroute
                                            -> SA; ``up``.  A failed ``route``
                                            deletes the pair and terminates the conn
rekey (the conn's eroute has an SA)         SAs in, eroute -> new SA (make before
                                            break); no verbs
a pair deleted                              SAs out; eroute -> newer pair, ``%trap``
                                            or nothing; last pair: ``down`` then
                                            ``unroute`` unless routed with a trap
Acquire from a ``%trap``                    ``initiate`` the owning conn (once)
keying given up while holding               holds -> ``failureshunt=`` or ``%trap``
``--unroute``/``--delete``/shutdown         ``down`` (if up), SAs and eroutes out,
                                            ``unroute``
==========================================  =====================================

A conn whose peer is ``%any`` (a road warrior's server) serves many peers at
once: each peer client is an instance (``kernel.instance_name``, pluto's
``"rw"[1]``) with its own eroute, make-before-break and updown verbs, so the
table above holds per peer.  Status, ``--delete`` and DPD still speak of the
conn.

Nothing here is on the packet path.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol

from twisted.internet import defer

from fswan.config.model import ConnType, IPAddress, SetupConfig
from fswan.config.orient import OrientedConnection
from fswan.daemon.interfaces import Clock, IkeControl
from fswan.daemon.logging import PlutoLog, Reply
from fswan.daemon.pump import DataPlaneEvent, PeerRouting
from fswan.daemon.status import LoadedConnection, SaTraffic
from fswan.ike import events as ev
from fswan.ike.state import StateKind
from fswan.ipsec.dataplane import Acquire, UnknownSPI
from fswan.ipsec.eroute import DROP, PASS, REJECT, TRAP
from fswan.ipsec.kernel import IKernel, IKernelStatus, KernelError, instance_name
from fswan.ipsec.sa import HardExpire, SecurityAssociation, SoftExpire, sa_pair_from_child
from fswan.suites import UnsupportedAlgorithm
from fswan.updown import IUpdown, SAFacts, UnknownPluginError, plugins_for
from fswan.updown.runner import UpdownRunner
from fswan.whackproto import RC

#: conn type -> the eroute ``--route`` installs
_ROUTE_TARGETS = {
    ConnType.TUNNEL: TRAP,
    ConnType.TRANSPORT: TRAP,
    ConnType.PASSTHROUGH: PASS,
    ConnType.DROP: DROP,
    ConnType.REJECT: REJECT,
}


class PumpView(PeerRouting, Protocol):
    """The packet pump as Tunnels and manual keying see it: which socket carries a
    peer's ESP, and the counters ``ipsec look`` shows."""

    @property
    def counters(self) -> Mapping[str, int]: ...


class GroupAcquire(Protocol):
    """Who takes an Acquire no conn's trap owns (``daemon.oe.Opportunism``: a policy group's)."""

    def acquire(self, event: Acquire) -> bool: ...


class VirtualAddresses(Protocol):
    """Addresses on the TUN device: a Mode Config client's virtual IP
    (``daemon.kernel.TunAddresses``).  Both raise on a real failure."""

    def add(self, interface: str, address: IPAddress) -> None: ...
    def remove(self, interface: str, address: IPAddress) -> None: ...


@dataclass(frozen=True)
class KernelSide:
    """The data plane as Pluto is given it (None without one): the kernel, the updown
    runner, the clock, the pump (None in tests without packets), and the TUN
    device's addresses (None: a virtual IP is only logged)."""

    kernel: IKernel
    runner: UpdownRunner
    clock: Clock
    pump: PumpView | None = None
    addresses: VirtualAddresses | None = None


class EspArrivals:
    """The engine's ``EspActivity`` over the kernel: when ESP last arrived on a conn's SAs.

    Exists before the engine (which is given it at construction) and reads the
    kernel's SA pairs, so DPD probes only a peer silent on IKE *and* ESP."""

    def __init__(self, kernel: IKernelStatus) -> None:
        self.kernel = kernel

    def last_esp_arrival(self, conn_name: str) -> float | None:
        seen = [inbound.last_used
                for name in self.kernel.instances(conn_name)
                for inbound, _ in self.kernel.pairs_of(name).values()
                if inbound.last_used is not None]
        return max(seen, default=None)


class Tunnels:
    """Glue between engine events, the kernel (eroutes, SAs) and updown."""

    def __init__(
        self,
        kernel: IKernel,
        runner: UpdownRunner,
        log: PlutoLog,
        clock: Clock,
        lookup: Callable[[str], LoadedConnection | None],
        setup: Callable[[], SetupConfig] = SetupConfig,
        pump: PumpView | None = None,
        ike: IkeControl | None = None,
        opportunism: GroupAcquire | None = None,
        addresses: VirtualAddresses | None = None,
    ) -> None:
        self.kernel = kernel
        self.runner = runner
        self.log = log
        self.clock = clock
        self.lookup = lookup
        self.setup = setup
        self.pump = pump
        #: the IKE driver; None: no IKE (manual keying only)
        self.ike = ike
        #: conns keying because a packet hit their %trap -> when
        self.keying: dict[str, float] = {}
        #: SA pairs whose route is being put in place: serial -> conn
        self._routing: dict[int, str] = {}
        #: installed IPsec SA serial -> its kernel name (the conn's, or its instance's for a
        #: %any peer) and the facts its ``up`` was given (``down`` gets them too)
        self._installed: dict[int, tuple[str, SAFacts]] = {}
        #: Acquires from policy-group traps (``daemon.oe.Opportunism``); None: no OE
        self.opportunism = opportunism
        self.path_mtu: int = kernel.dataplane.path_mtu
        self._arrivals = EspArrivals(kernel)
        #: where a Mode Config client's virtual IP goes (None: nowhere)
        self.addresses = addresses
        #: Mode Config client: each conn's virtual IP and what came with it
        self.leases: dict[str, ev.VirtualIpAssigned] = {}

    # -- helpers ----------------------------------------------------------------

    def now(self) -> float:
        return self.clock.seconds()

    def last_esp_arrival(self, name: str) -> float | None:
        """When ESP last arrived on any of ``name``'s SAs (for the engine's DPD)."""
        return self._arrivals.last_esp_arrival(name)

    def _oriented(self, name: str) -> OrientedConnection | None:
        loaded = self.lookup(name)
        return loaded.oriented if loaded is not None else None

    def _plugins(self, oriented: OrientedConnection, reply: Reply | None) -> list[IUpdown] | None:
        try:
            return plugins_for(oriented)
        except UnknownPluginError as error:
            self.log.log(str(error), RC.LOG_SERIOUS, oriented.name, None, reply)
            return None

    def routing(self, name: str) -> str:
        """The conn line's routing words: "erouted" when any of its instances is."""
        words = [self.kernel.routing(key) for key in self.kernel.instances(name)]
        if "erouted" in words:
            return "erouted"
        return words[0] if words else "unrouted"

    def eroute_owner(self, name: str) -> int | None:
        """The conn line's eroute owner: the newest SA owning one of its instances' eroutes."""
        owners = [self.kernel.owner_of(key) for key in self.kernel.instances(name)]
        return max((o for o in owners if o is not None), default=None)

    @staticmethod
    def _kernel_name(oriented: OrientedConnection, event: ev.ChildSAInstalled) -> str:
        """The conn's own eroute, or for a %any peer its instance for this peer client."""
        if oriented.that.host is not None:
            return oriented.name
        return instance_name(oriented.name, event.remote_client)

    def _kernel_name_of(self, serial: int, conn: str) -> str:
        installed = self._installed.get(serial)
        return installed[0] if installed is not None else conn

    @staticmethod
    def _instance(oriented: OrientedConnection, key: str) -> str | None:
        """What the updown runner keys an instance by (None: the conn itself)."""
        return key if key != oriented.name else None

    # -- engine events ------------------------------------------------------------

    def on_engine_event(self, event: ev.EngineEvent) -> None:
        """Everything the IKE driver does not handle itself (SA events)."""
        if isinstance(event, ev.ChildSAInstalled):
            self.child_installed(event)
        elif isinstance(event, ev.ChildSADeleted):
            self.child_deleted(event)
        elif isinstance(event, ev.PeerAddressChanged):
            self.peer_moved(event)
        elif isinstance(event, ev.VirtualIpAssigned):
            self.virtual_ip_assigned(event)
        elif isinstance(event, ev.VirtualIpReleased):
            self.virtual_ip_released(event)

    # -- Mode Config ----------------------------------------------------------------

    def virtual_ip_assigned(self, event: ev.VirtualIpAssigned) -> None:
        """As client: our virtual IP goes on ``ipsec0`` (/32 or /128), where the routing
        plugin's routes take it as their source (``PLUTO_MY_SOURCEIP``); DNS, domains
        and banner are logged and handed to updown.  As server the engine logs the lease."""
        if not event.ours:
            return
        oriented = self._oriented(event.conn)
        if oriented is None:
            return
        device = oriented.interface.virtual
        old = self.leases.get(event.conn)
        if old is not None and old.address != event.address:
            self._remove_address(device, old)
        self.leases[event.conn] = event
        text = f"modecfg: virtual IP {event.address}/{event.address.max_prefixlen}"
        if self.addresses is not None:
            try:
                self.addresses.add(device, event.address)
            except Exception as error:  # netlink: errno and text; keying goes on
                self.log.log(f"{text}: cannot add it to {device}: {error}", RC.LOG_SERIOUS,
                             event.conn, event.serial)
            else:
                self.log.log(f"{text} added to {device}", RC.LOG, event.conn, event.serial)
        else:
            self.log.log(text, RC.LOG, event.conn, event.serial)
        parts = []
        if event.dns:
            parts.append("DNS " + " ".join(str(a) for a in event.dns))
        if event.domains:
            parts.append(("domain " if len(event.domains) == 1 else "domains ") + " ".join(event.domains))
        if parts:
            self.log.log("modecfg: " + ", ".join(parts), RC.LOG, event.conn, event.serial)
        if event.banner:
            shown = "".join(c if c.isprintable() else " " for c in event.banner).strip()
            self.log.log(f"modecfg: banner: {shown}", RC.LOG, event.conn, event.serial)

    def virtual_ip_released(self, event: ev.VirtualIpReleased) -> None:
        if not event.ours:
            return
        lease = self.leases.get(event.conn)
        if lease is None or lease.address != event.address:
            return
        del self.leases[event.conn]
        oriented = self._oriented(event.conn)
        if oriented is not None:
            self._remove_address(oriented.interface.virtual, lease)

    def _remove_address(self, device: str, lease: ev.VirtualIpAssigned) -> None:
        if self.addresses is None:
            return
        try:
            self.addresses.remove(device, lease.address)
        except Exception as error:
            self.log.log(f"modecfg: cannot remove virtual IP {lease.address} from {device}: {error}",
                         RC.LOG_SERIOUS, lease.conn, lease.serial)
        else:
            self.log.log(f"modecfg: virtual IP {lease.address} removed from {device}", RC.LOG,
                         lease.conn, lease.serial)

    def _lease_facts(self, name: str) -> dict[str, Any]:
        lease = self.leases.get(name)
        if lease is None:
            return {}
        return {"virtual_ip": lease.address, "peer_dns": lease.dns,
                "peer_domains": lease.domains, "peer_banner": lease.banner}

    def _facts(self, event: ev.ChildSAInstalled) -> SAFacts:
        """The SA's updown facts, with our Mode Config lease and what came with it."""
        return SAFacts.from_event(event, **self._lease_facts(event.conn))

    def child_installed(self, event: ev.ChildSAInstalled) -> None:
        name = event.conn
        oriented = self._oriented(name)
        if oriented is None:
            return
        conn = oriented.conn
        now = self.now()
        try:
            inbound, outbound = sa_pair_from_child(
                event,
                now=now,
                hidetos=self.setup().hidetos,
                disablearrivalcheck=conn.disablearrivalcheck,
                path_mtu=self.path_mtu,
            )
        except (ValueError, UnsupportedAlgorithm) as error:
            self._refuse(name, event.serial, f"cannot install IPsec SA: {error}")
            return
        key = self._kernel_name(oriented, event)
        rekey = self.kernel.owner_of(key) is not None
        routed = rekey or self.runner.is_routed(key) or self.kernel.routing(key) != "unrouted"
        try:
            self.kernel.install(key, event.serial, inbound, outbound, now, take_eroute=routed,
                                conn=name)
        except KernelError as error:
            self._refuse(name, event.serial, str(error))
            return
        self._installed[event.serial] = (key, self._facts(event))
        self._steer(event, oriented)
        if routed:
            self.keying.pop(name, None)
            if not rekey:
                self._up(oriented, event, key)
            return
        self._routing[event.serial] = key
        d = self._route_verbs(oriented, self._facts(event), None, self._instance(oriented, key))
        d.addCallback(self._routed_for_sa, oriented, event, key)

    def _steer(self, event: ev.ChildSAInstalled, oriented: OrientedConnection) -> None:
        """Tell the pump which of our sockets carries this peer's ESP."""
        if self.pump is None:
            return
        udp = None
        if self.ike is not None:
            self.pump.set_udp_sockets(self.ike.natt_sockets())
            udp = self.ike.natt_socket(event.local_addr)
        self.pump.route_peer(str(event.remote_addr), udp, oriented.interface.physical)

    def _routed_for_sa(self, ok: bool, oriented: OrientedConnection,
                       event: ev.ChildSAInstalled, key: str) -> None:
        name = oriented.name
        self._routing.pop(event.serial, None)
        if event.serial not in self.kernel.pairs_of(key):
            return  # deleted while the route went in
        if not ok:
            self.kernel.delete(key, event.serial, self.now())
            self._installed.pop(event.serial, None)
            self.log.log(
                "routing failed: the tunnel does not come up; terminating",
                RC.LOG_SERIOUS, name, event.serial,
            )
            self.keying.pop(name, None)
            self._stop_keying(name, event.serial)
            return
        self.kernel.take_eroute(key, event.serial, self.now())
        self.keying.pop(name, None)
        self._up(oriented, event, key)

    def _up(self, oriented: OrientedConnection, event: ev.ChildSAInstalled, key: str) -> None:
        plugins = self._plugins(oriented, None)
        if plugins is not None:
            self.runner.run("up", oriented, self._facts(event), plugins,
                            instance=self._instance(oriented, key))

    def _refuse(self, name: str, serial: int, text: str) -> None:
        self.log.log(text, RC.LOG_SERIOUS, name, serial)
        self._stop_keying(name, serial)

    def _stop_keying(self, name: str, serial: int) -> None:
        """An SA that cannot be used: the conn is terminated -- but for a road-warrior conn
        (``right=%any``) only that peer's IPsec SA goes, the other peers keep theirs."""
        if self.ike is None:
            return
        oriented = self._oriented(name)
        if oriented is not None and oriented.that.host is None:
            self.ike.engine.delete_state(serial, self.ike.now())
            self.ike.pump()
        else:
            self.ike.terminate(name, None)

    def child_deleted(self, event: ev.ChildSADeleted) -> None:
        name = event.conn
        key, up_facts = self._installed.pop(event.serial, (name, None))
        inbound, outbound = self.kernel.delete(key, event.serial, self.now())
        if inbound is None or outbound is None:
            return
        if self.kernel.pairs_of(key):
            return  # a newer pair carries the tunnel
        oriented = self._oriented(name)
        if oriented is None:
            return
        facts = self._down_facts(event.serial, inbound, outbound, up_facts,
                                 spi_in=event.inbound_spi, spi_out=event.outbound_spi,
                                 **self._lease_facts(name))
        self._teardown(oriented, facts, keep_route=self.kernel.routing(key) != "unrouted",
                       instance=self._instance(oriented, key))

    @staticmethod
    def _down_facts(serial: int, inbound: SecurityAssociation, outbound: SecurityAssociation,
                    up_facts: SAFacts | None, **more: Any) -> SAFacts:
        """What ``down`` is told: what its ``up`` was (a road warrior's peer and client are
        known only there) with the pair's counters."""
        counters = dict(serial=serial, in_bytes=inbound.bytes, out_bytes=outbound.bytes,
                        in_packets=inbound.packets, out_packets=outbound.packets, **more)
        if up_facts is None:
            return SAFacts(**counters)
        return replace(up_facts, **counters)

    def _teardown(
        self, oriented: OrientedConnection, facts: SAFacts | None, keep_route: bool,
        reply: Reply | None = None, instance: str | None = None,
    ) -> defer.Deferred:
        plugins = self._plugins(oriented, reply) or []
        d = self.runner.run("down", oriented, facts, plugins, reply, instance=instance)
        if not keep_route:
            d.addCallback(lambda _: self.runner.run("unroute", oriented, facts, plugins, reply,
                                                    instance=instance))
        return d

    def peer_moved(self, event: ev.PeerAddressChanged) -> None:
        """NAT rebinding: the conn's outbound ESP-in-UDP SAs follow the peer's new port.

        A new address is not patched into the SAs (they are named by it): the engine
        replaces them with a Quick Mode at once, and the eroute moves to the new pair
        as after any rekey."""
        for serial in event.child_serials:
            self.kernel.peer_port_changed(self._kernel_name_of(serial, event.conn), serial,
                                          event.remote_addr, event.remote_port)

    # -- data plane events ----------------------------------------------------------

    def on_dataplane_event(self, event: DataPlaneEvent) -> None:
        if isinstance(event, Acquire):
            self.acquire(event)
        elif isinstance(event, SoftExpire):
            self._soft_expire(event)
        elif isinstance(event, HardExpire):
            self._hard_expire(event)
        elif isinstance(event, UnknownSPI):
            self.log.log(
                f"ESP packet with unknown SPI 0x{event.spi:08x} from {event.src}:{event.sport} dropped"
            )

    def acquire(self, event: Acquire) -> None:
        name = self.kernel.acquire(event)
        if name is None:
            # not a conn's trap: a policy group's (opportunistic encryption)?
            if self.opportunism is not None:
                self.opportunism.acquire(event)
            return
        if name in self.keying or self.kernel.pairs_of(name):
            return
        if self.ike is None:
            return
        self.keying[name] = self.now()
        self.log.log(
            f"initiate on demand from {event.src}:0 to {event.dst}:0 proto={event.proto} "
            "because: acquire",
            RC.LOG, name,
        )
        self.ike.initiate(name, None, asynchronous=True)

    def after_ike_step(self) -> None:
        """After every engine step: did on-demand keying give up?"""
        if not self.keying or self.ike is None:
            return
        now = self.now()
        states = None
        for name in list(self.keying):
            if self.kernel.pairs_of(name):
                del self.keying[name]
                continue
            if states is None:
                states = self.ike.engine.state_dicts(now)
            if any(self._in_progress(s) for s in states if s["connection"] == name):
                continue
            del self.keying[name]
            oriented = self._oriented(name)
            shunt = oriented.conn.failureshunt.value if oriented is not None else "none"
            self.kernel.keying_failed(name, shunt, now)
            what = f"failureshunt={shunt} installed" if shunt != "none" else "back to %trap"
            self.log.log(f"keying failed: {what}", RC.LOG_SERIOUS, name)

    @staticmethod
    def _in_progress(state: Mapping[str, object]) -> bool:
        if state.get("kind") == "IPSEC":
            return not state.get("installed")
        number = state.get("state_number")
        if not isinstance(number, int):
            return False
        try:
            return not StateKind(number).established
        except ValueError:
            return False

    def _soft_expire(self, event: SoftExpire) -> None:
        sa = self.kernel.dataplane.sad.get(event.said, event.direction)
        if sa is None or sa.conn is None:
            return
        if self.kernel.owner_of(self._kernel_name_of(sa.serial, sa.conn)) != sa.serial:
            return
        oriented = self._oriented(sa.conn)
        if oriented is not None and oriented.that.host is None:
            # initiating a %any conn would key its newest ISAKMP SA's peer, perhaps another
            self.log.log(
                f"{event.direction}bound SA {event.said.dotted} reached its soft {event.reason} "
                "limit: the peer rekeys it (a %any conn is not initiated)", RC.LOG, sa.conn,
                sa.serial,
            )
            return
        self.log.log(
            f"{event.direction}bound SA {event.said.dotted} reached its soft {event.reason} "
            "limit: rekeying", RC.LOG, sa.conn, sa.serial,
        )
        # The engine offers no "rekey serial N": a fresh initiate makes a new pair,
        # which takes the eroute; the old pair lives until the engine expires it.
        if self.ike is not None:
            self.ike.initiate(sa.conn, None, asynchronous=True)

    def _hard_expire(self, event: HardExpire) -> None:
        sa = self.kernel.dataplane.sad.get(event.said, event.direction)
        conn = sa.conn if sa is not None else None
        self.log.log(
            f"{event.direction}bound SA {event.said.dotted} reached its hard {event.reason} "
            "limit: it carries no more packets", RC.LOG_SERIOUS, conn,
            sa.serial if sa is not None else None,
        )

    # -- operator commands ------------------------------------------------------------

    def _route_verbs(
        self, oriented: OrientedConnection, facts: SAFacts | None, reply: Reply | None,
        instance: str | None = None,
    ) -> defer.Deferred:
        """``prepare`` then ``route``: fires True when the route is in place."""
        plugins = self._plugins(oriented, reply)
        if plugins is None:
            return defer.succeed(False)
        if self.runner.is_routed(instance or oriented.name):
            return defer.succeed(True)

        def after_prepare(ok: bool) -> bool | defer.Deferred[bool]:
            if not ok:
                return False
            return self.runner.run("route", oriented, facts, plugins, reply, instance=instance)

        d = self.runner.run("prepare", oriented, facts, plugins, reply, instance=instance)
        d.addCallback(after_prepare)
        return d

    def route(self, name: str, reply: Reply | None) -> defer.Deferred:
        """``ipsec auto --route``: route, then the conn's ``%trap`` eroute."""
        oriented = self._oriented(name)
        if oriented is None:
            return defer.succeed(False)
        local, remote = oriented.this.client, oriented.that.client
        if remote is None or local is None:
            self.log.log(
                "cannot route template connection (the peer is %any)", RC.ROUTE, name, None, reply
            )
            return defer.succeed(False)
        target = _ROUTE_TARGETS.get(oriented.conn.type, TRAP)

        def routed(ok: bool) -> bool:
            if not ok:
                self.log.log("could not route", RC.ROUTE, name, None, reply)
                return False
            try:
                self.kernel.route(name, local, remote, self.now(), target)
            except KernelError as error:
                self.log.log(str(error), RC.ROUTE, name, None, reply)
                self.runner.run("unroute", oriented, None, self._plugins(oriented, None) or [])
                return False
            return True

        return self._route_verbs(oriented, None, reply).addCallback(routed)

    def unroute(self, name: str, reply: Reply | None) -> defer.Deferred:
        """``ipsec auto --unroute``: the trap eroute out, then the route."""
        oriented = self._oriented(name)
        if oriented is None:
            return defer.succeed(False)
        try:
            self.kernel.unroute(name, self.now())
        except KernelError as error:
            self.log.log(str(error), RC.RTBUSY, name, None, reply)
            return defer.succeed(False)
        self.keying.pop(name, None)
        plugins = self._plugins(oriented, reply) or []
        return self.runner.run("unroute", oriented, None, plugins, reply)

    def forget(self, name: str, reply: Reply | None = None) -> defer.Deferred:
        """The conn goes (delete, replace, shutdown): ``down``, SAs and eroutes out, ``unroute``;
        for a %any conn, of every instance (each peer's route)."""
        oriented = self._oriented(name)
        keys = self.kernel.instances(name)
        if name not in keys and (oriented is None or oriented.that.host is not None):
            keys.insert(0, name)  # a fixed peer's conn: its routes even with no SA
        self.keying.pop(name, None)
        done = []
        for key in keys:
            pairs = self.kernel.pairs_of(key)
            self.kernel.forget(key, self.now())
            up_facts = {serial: self._installed.pop(serial, (key, None))[1] for serial in pairs}
            if oriented is None:
                continue
            facts = None
            if pairs:
                serial = max(pairs)
                facts = self._down_facts(serial, *pairs[serial], up_facts[serial])
            done.append(self._teardown(oriented, facts, keep_route=False, reply=reply,
                                       instance=self._instance(oriented, key)))
        if len(done) == 1:
            return done[0]
        return defer.gatherResults(done).addCallback(lambda _: None)

    # -- status ---------------------------------------------------------------------

    def sa_traffic(self, now: float) -> dict[int, SaTraffic]:
        """Per IPsec state serial: when it was last used and its counters, for the state lines."""
        out = {}
        for entry in self.kernel.conns.values():
            for serial, (inbound, outbound) in entry.pairs.items():
                last = max(x for x in (inbound.last_used, outbound.last_used, -1.0) if x is not None)
                out[serial] = SaTraffic(
                    idle=max(0.0, now - last) if last >= 0 else None,
                    in_bytes=inbound.bytes, in_packets=inbound.packets,
                    out_bytes=outbound.bytes, out_packets=outbound.packets,
                    eroute_owner=entry.owner == serial,
                )
        return out
