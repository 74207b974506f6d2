"""Opportunistic encryption: policy groups, their eroutes, and OE instances.

FreeS/WAN 2.x's OE as far as fswan has it:

* The implicit conns (``config/policygroups.implicit_conns``) and the group
  files ``ipsec.d/policies/<group>`` are read at start-up and again by
  ``ipsec auto --rereadgroups``; each CIDR becomes an eroute from the group
  conn's client (``leftsubnet=`` or our host) to it: ``%pass`` (clear,
  clear-or-private outbound), ``%reject`` (block) or ``%trap``
  (private-or-clear, private).
* A packet caught by a group's ``%trap`` (an Acquire no conn owns) makes an
  instance ``private-or-clear#203.0.113.10``: the reverse name of the
  destination is asked for ``X-IPsec-Server(10)=GATEWAY KEY``; the instance
  is the group conn with ``right=GATEWAY`` and the key from DNS, clients host
  to host (source/32 -> destination/32, so the responder can check both in
  DNS), added to the engine and initiated.  DNS failure or keying failure
  installs the group's ``failureshunt=`` on the host-to-host hold (``%pass``
  for private-or-clear, ``%drop`` for private).
* Responder: one template per OE group with CIDRs (``right=%any``, the
  peer's key from DNS by its ID) takes Main Mode; in Quick Mode the engine's
  engine asks (``ClientCheckNeeded``) about host-to-host clients no conn
  covers, holding the message; ``on_client_check`` adds an instance when they
  are inside a group and the peer client's reverse TXT names that peer
  (address or ID), and answers ``client_checked`` once DNS has spoken.

Group nets that need the data plane are routed into ``ipsec0`` in table 220,
looked up for packets from our client nets (``_route_groups``).

Not here yet: @FQDN gateways in TXT records, IPv6 OE, and more than one instance
per destination (while one is keying or up, packets from a second local
source to that destination stay on their %hold).
"""

from __future__ import annotations

import ipaddress
import posixpath
from collections.abc import MutableMapping
from dataclasses import replace
from typing import TYPE_CHECKING, Protocol

from fswan.config.errors import ConfigErrors
from fswan.config.ids import IdKind, Identity
from fswan.config.keys import format_rsasigkey
from fswan.config.model import Auto, AuthBy, Config, Connection, ConnType, End
from fswan.config.policygroups import (
    GROUP_SHUNT,
    OE_GROUPS,
    POLICY_GROUPS,
    GroupEroute,
    group_eroutes,
    implicit_conns,
    instance_name,
    parse_policy_group,
    policies_dir,
)
from fswan.config.ipsecconf import IncludeLoader
from fswan.config.model import IPAddress
from fswan.config.orient import IpsecInterface, OrientedConnection
from fswan.daemon.dns import DnsKeyFetcher, fetch_gateways
from fswan.daemon.interfaces import IkeControl
from fswan.daemon.kernel import remove_source_rules, set_device_routes
from fswan.daemon.logging import PlutoLog, Reply
from fswan.daemon.status import LoadedConnection
from fswan.dnskeys.records import KeyRecord
from fswan.ike.events import ClientCheck, ClientCheckNeeded
from fswan.ipsec.dataplane import Acquire
from fswan.ipsec.eroute import DROP, PASS, REJECT, TRAP
from fswan.whackproto import RC

if TYPE_CHECKING:
    from twisted.python.failure import Failure

    from fswan.daemon.tunnels import Tunnels

_TARGETS = {"%pass": PASS, "%trap": TRAP, "%reject": REJECT, "%drop": DROP}
#: what DNS must confirm for a responder instance: (peer client, peer gateway, peer ID)
DnsCheck = tuple[IPAddress, IPAddress, Identity]


class ConnectionHost(Protocol):
    """The conn table OE instances and templates live in (``daemon.pluto.Pluto``)."""

    @property
    def config_path(self) -> str: ...
    @property
    def loader(self) -> IncludeLoader: ...
    @property
    def interfaces(self) -> list[IpsecInterface]: ...
    @property
    def connections(self) -> MutableMapping[str, LoadedConnection]: ...
    @property
    def tunnels(self) -> Tunnels | None: ...
    def add_instance(self, conn: Connection) -> bool: ...
    def drop(self, name: str) -> None: ...


class Opportunism:
    """The daemon's OE state: groups, their eroutes, instances being keyed."""

    def __init__(self, pluto: ConnectionHost, log: PlutoLog, fetcher: DnsKeyFetcher | None = None,
                 ike: IkeControl | None = None) -> None:
        self.pluto = pluto
        self.log = log
        #: DNS lookups of gateways and client records; None: OE lookups fail
        self.fetcher = fetcher
        #: the IKE driver (instances initiated, client checks answered); None: no IKE
        self.ike = ike
        self.groups: dict[str, tuple] = {g: () for g in POLICY_GROUPS}
        self.conns: dict[str, Connection] = {}
        self.eroutes: list[GroupEroute] = []
        self._installed: dict[tuple, GroupEroute] = {}
        #: the group nets routed into ipsec0 (see _route_groups)
        self._routed: set = set()
        #: our client nets with a ``from NET lookup 220`` rule of ours
        self._rule_sources: set = set()
        #: instance name -> group, for instances made from an Acquire
        self.instances: dict[str, str] = {}
        #: instances waiting for DNS
        self.pending: set[str] = set()
        #: instance name -> failure shunt word, once keying or DNS failed
        self.failed: dict[str, str] = {}
        #: responder: (peer client, peer gateway, peer ID) -> DNS names that gateway for it
        self._verified: dict[DnsCheck, bool] = {}
        #: responder: DNS checks under way -> the engine's held client checks waiting for them
        self._checking: dict[DnsCheck, list[ClientCheck]] = {}

    # -- groups -------------------------------------------------------------

    def load(self, config: Config, reply: Reply | None = None) -> None:
        """Implicit conns from ``config``, group files from ``ipsec.d/policies``."""
        self.conns = implicit_conns(config)
        directory = policies_dir(self.pluto.config_path)
        groups: dict[str, tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]] = {}
        for group in POLICY_GROUPS:
            path = posixpath.join(directory, group)
            try:
                text = self.pluto.loader.read(path)
            except (OSError, UnicodeError):
                groups[group] = ()
                continue
            try:
                groups[group] = parse_policy_group(text, path)
            except ConfigErrors as errors:
                for error in errors.errors:
                    self.log.log(f"{error}; policy group {group} not loaded", RC.LOG_SERIOUS, reply=reply)
                groups[group] = ()
        self.groups = groups
        counts = ", ".join(f"{g} {len(groups[g])}" for g in POLICY_GROUPS if groups[g])
        self.log.log(f'policy groups from "{directory}": {counts or "none"}', reply=reply)

    def our_host(self) -> IPAddress | None:
        interfaces = self.pluto.interfaces
        return interfaces[0].address if interfaces else None

    def install(self, reply: Reply | None = None) -> None:
        """Put the groups' eroutes in the kernel (replacing the previous set)."""
        self.eroutes = group_eroutes(self.groups, self.conns, self.our_host())
        tunnels = self.pluto.tunnels
        if tunnels is None:
            return
        self._install_templates()
        kernel = tunnels.kernel
        now = tunnels.now()
        wanted = {(e.source, e.destination): e for e in self.eroutes}
        busy = {entry.trap_nets for entry in kernel.conns.values() if entry.trap_nets is not None}
        busy |= {(entry.local, entry.remote) for entry in kernel.conns.values() if entry.owner is not None}
        for nets in list(self._installed):
            if nets not in wanted and kernel.dataplane.eroutes.get(*nets) is not None:
                kernel.dataplane.delete_eroute(*nets, now=now)
            self._installed.pop(nets, None)
        for nets, eroute in wanted.items():
            if nets in busy:
                self.log.log(f"policy group {eroute.group}: eroute {nets[0]} -> {nets[1]} already in use "
                             "by a conn; left alone", RC.LOG_SERIOUS, reply=reply)
                continue
            kernel.dataplane.replace_eroute(*nets, _TARGETS[eroute.shunt], now=now)
            self._installed[nets] = eroute
        self._route_groups(reply)

    def _route_groups(self, reply: Reply | None) -> None:
        """Route the nets of the groups that need the data plane (everything but
        clear ``%pass``) into ipsec0 for packets from our client nets, so they meet
        the eroutes; the pump's own clear sends are bound to the physical device
        and never take that table, so they cannot loop."""
        interfaces = self.pluto.interfaces
        if not interfaces:
            return
        routed = [e for e in self._installed.values() if e.shunt != "%pass"]
        wanted = {e.destination for e in routed}
        sources = {e.source for e in routed}
        add = sorted(wanted - self._routed, key=str)
        remove = sorted(self._routed - wanted, key=str)
        stale = sorted(self._rule_sources - sources, key=str)
        if not add and not remove and not stale and sources <= self._rule_sources:
            return
        problems = set_device_routes(interfaces[0].virtual, add, remove, sorted(sources, key=str))
        if stale:
            problems += remove_source_rules(stale)
        for problem in problems:
            self.log.log(problem, RC.LOG_SERIOUS, reply=reply)
        self._routed = wanted
        self._rule_sources = sources

    def stop(self) -> None:
        """Daemon shutdown: the policy-routing rules go (the routes go with ipsec0)."""
        if self._rule_sources:
            for problem in remove_source_rules(sorted(self._rule_sources, key=str)):
                self.log.log(problem, RC.LOG_SERIOUS)
        self._rule_sources = set()
        self._routed = set()

    def reread(self, config: Config, reply: Reply | None) -> None:
        """``ipsec auto --rereadgroups``."""
        self.load(config, reply)
        self.install(reply)
        self.log.log(f"{len(self._installed)} policy group eroutes installed", reply=reply)

    # -- initiating on traffic ------------------------------------------------

    def acquire(self, event: Acquire) -> bool:
        """An Acquire no conn's trap owns: a group's? Returns True when handled."""
        group_eroute = self._installed.get((event.eroute_src, event.eroute_dst))
        tunnels = self.pluto.tunnels
        if group_eroute is None or group_eroute.shunt != "%trap" or tunnels is None:
            return False
        name = instance_name(group_eroute.group, event.dst)
        if name in self.pending or name in tunnels.keying or tunnels.kernel.pairs_of(name):
            return True
        bits = event.src.max_prefixlen
        hold = (ipaddress.ip_network((int(event.src), bits)), ipaddress.ip_network((int(event.dst), bits)))
        tunnels.kernel.hold(name, *hold)
        self.instances[name] = group_eroute.group
        self.failed.pop(name, None)
        self.log.log(f"initiate on demand from {event.src}:0 to {event.dst}:0 proto={event.proto} "
                     "because: acquire", RC.LOG, name)
        if self.fetcher is None:
            self._fail(name, "no DNS resolver")
            return True
        self.pending.add(name)
        d = fetch_gateways(self.fetcher, str(event.dst))
        d.addCallbacks(self._found, self._not_found,
                       callbackArgs=(name, group_eroute.group, event.dst, event.src),
                       errbackArgs=(name,))
        return True

    def _found(self, records: list[KeyRecord], name: str, group: str, dst: IPAddress,
               src: IPAddress) -> None:
        self.pending.discard(name)
        # (fetch_gateways gives only records with a gateway and a key)
        record = next((r for r in records if r.gateway is not None and r.key is not None
                       and r.gateway.kind in (IdKind.IPV4_ADDR, IdKind.IPV6_ADDR)), None)
        if record is None or record.gateway is None or record.key is None:
            self._fail(name, "the gateway in DNS is not an address (@FQDN gateways are not supported)")
            return
        conn = self.instance(group, src, dst, record.gateway.value, format_rsasigkey(record.key))
        pluto = self.pluto
        old = pluto.connections.get(name)
        if old is not None:
            pluto.drop(name)
        if not pluto.add_instance(conn) or self.ike is None:
            self._fail(name, "could not add the instance")
            return
        tunnels = pluto.tunnels
        assert tunnels is not None  # an Acquire comes from the data plane
        tunnels.keying[name] = tunnels.now()
        self.log.log(f"opportunistic: {dst} is behind gateway {record.gateway.value}; keying", RC.LOG, name)
        self.ike.initiate(name, None, asynchronous=True)

    def _not_found(self, failure: Failure, name: str) -> None:
        self.pending.discard(name)
        # the fetcher has logged pluto's "failure to fetch key for ... from DNS: ..."
        self._fail(name, f"no key in DNS: {failure.getErrorMessage()}")

    def _fail(self, name: str, reason: str) -> None:
        group = self.instances.get(name, "")
        conn = self.conns.get(group)
        shunt = conn.failureshunt.value if conn is not None else "none"
        tunnels = self.pluto.tunnels
        if tunnels is not None:
            tunnels.kernel.keying_failed(name, shunt, tunnels.now())
        self.failed[name] = shunt
        self.log.log(f"opportunistic keying failed ({reason}): failureshunt={shunt} installed",
                     RC.OPPOFAILURE, name)

    def instance(self, group: str, src: IPAddress, dst: IPAddress, gateway: str, key: str,
                 peer_id: str | None = None) -> Connection:
        """The conn FreeS/WAN instantiated from ``group`` for our client ``src`` and the
        peer's client ``dst`` behind ``gateway``: host to host (each side can check the
        other's client against its reverse DNS records), the host itself when it is the gateway."""
        base = self.conns[group]
        dst_address = ipaddress.ip_address(str(dst))
        src_address = ipaddress.ip_address(str(src))
        subnet = None if dst_address == ipaddress.ip_address(gateway) else ipaddress.ip_network(dst_address)
        right = End(host=gateway, id=peer_id or gateway, subnet=subnet, rsasigkey=key)
        left = replace(base.left, subnet=None if src_address == self.our_host() else
                       ipaddress.ip_network(src_address))
        return replace(base, name=instance_name(group, dst_address), left=left, right=right,
                       type=ConnType.TUNNEL, authby=AuthBy.RSASIG, auto=Auto.ADD, location=None,
                       settings={}, unsupported=())

    # -- responding -------------------------------------------------------------

    def templates(self) -> list[Connection]:
        """Responder templates, one per OE group with CIDRs: any peer (``right=%any``) whose
        key DNS gives for its ID; Quick Mode then instantiates (``responder_client``)."""
        result = []
        for group in OE_GROUPS:
            conn = self.conns.get(group)
            if conn is None or not self.groups.get(group):
                continue
            right = End(host="%any", rsasigkey="%dnsondemand")
            result.append(replace(conn, right=right, type=ConnType.TUNNEL, authby=AuthBy.RSASIG,
                                  auto=Auto.ADD, settings={}, unsupported=()))
        return result

    def _install_templates(self) -> None:
        pluto = self.pluto
        wanted = {t.name: t for t in self.templates()}
        for name in OE_GROUPS:
            loaded = pluto.connections.get(name)
            if loaded is not None and (name not in wanted or loaded.conn != wanted[name]):
                # changed or gone (a template unchanged keeps its ISAKMP SAs)
                pluto.drop(name)
        for name, template in wanted.items():
            if name not in pluto.connections:
                pluto.add_instance(template)
        if self.ike is not None:
            self.ike.engine.enable_client_checks(any(t.name in OE_GROUPS for t in wanted.values()))

    def on_client_check(self, event: ClientCheckNeeded) -> None:
        """The engine's ClientCheckNeeded: add the responder instance when the peer's
        clients are ours to accept, then let the engine process the held Quick Mode."""
        check = event.check
        dns = self._dns_check(check)
        if dns is not None and dns not in self._verified:
            if dns not in self._checking:
                self._checking[dns] = [check]
                self._check_client(dns)
            else:
                self._checking[dns].append(check)
            return  # answered when DNS is
        self._answer(check)

    def _answer(self, check: ClientCheck) -> None:
        self.responder_client(check)
        ike = self.ike
        if ike is not None:
            ike.engine.client_checked(check, ike.now())

    def _group_eroute(self, check: ClientCheck) -> GroupEroute | None:
        """The OE group eroute covering a host-to-host client pair, if any."""
        if check.our_client.num_addresses != 1 or check.peer_client.num_addresses != 1:
            return None
        ours, peer = check.our_client.network_address, check.peer_client.network_address
        return next(
            (e for e in self.eroutes
             if e.group in OE_GROUPS and ours in e.source and peer in e.destination), None)

    @staticmethod
    def _dns_check(check: ClientCheck) -> DnsCheck | None:
        """(peer client, gateway, peer ID) when DNS must say the client is behind the
        peer; None when the peer is its own client."""
        peer = check.peer_client.network_address
        if peer == check.remote_addr:
            return None
        return (peer, check.remote_addr, check.peer_id)

    def responder_client(self, check: ClientCheck) -> OrientedConnection | None:
        """An OE responder instance for these clients, added to the conn table, or None.

        DNS must already have answered for a client that is not the peer itself
        (``on_client_check`` waits for it)."""
        group_eroute = self._group_eroute(check)
        if group_eroute is None:
            return None
        ours, peer = check.our_client.network_address, check.peer_client.network_address
        gateway = check.remote_addr
        dns = self._dns_check(check)
        if dns is not None and not self._verified.get(dns, False):
            self.log.log(f"opportunistic: {peer} is not behind {gateway} according to DNS; "
                         "refusing its IPsec SA request", RC.OPPOFAILURE)
            return None
        conn = self.instance(group_eroute.group, ours, peer, str(gateway), "%dnsondemand",
                             peer_id=str(check.peer_id))
        pluto = self.pluto
        if conn.name in pluto.connections:
            pluto.drop(conn.name)
        if not pluto.add_instance(conn):
            return None
        self.instances[conn.name] = group_eroute.group
        self.log.log(f"opportunistic: responding for {peer} behind {gateway}", RC.LOG, conn.name)
        return pluto.connections[conn.name].oriented

    def _check_client(self, dns: DnsCheck) -> None:
        """Does DNS name the peer's gateway for its client? (X-IPsec-Server at the client's
        reverse name whose gateway is the peer's address or ID.)"""
        peer, gateway, peer_id = dns
        fetcher = self.fetcher

        def done(result: list[KeyRecord] | Failure | None) -> None:
            ok = False
            if isinstance(result, list):
                ok = any(r.gateway == peer_id or (r.gateway is not None and r.gateway.value == str(gateway))
                         for r in result)
            self._verified[dns] = ok
            for check in self._checking.pop(dns, []):
                self._answer(check)
            ike = self.ike
            if ike is not None and not in_step:
                ike.pump()  # answered later, outside the driver's step: send what it made

        in_step = True
        if fetcher is None:
            done(None)
        else:
            fetch_gateways(fetcher, str(peer)).addBoth(done)
        in_step = False

    # -- status -------------------------------------------------------------

    @property
    def active(self) -> bool:
        """Anything to report: a group with CIDRs, or an instance."""
        return any(self.groups.values()) or bool(self.instances)

    def status_lines(self) -> list[str]:
        """Groups and failure shunts for ``--status`` (nothing when OE is unused)."""
        if not self.active:
            return []
        lines = []
        for group in POLICY_GROUPS:
            if group not in self.conns:
                lines.append(f'policy group "{group}": suppressed (auto=ignore)')
                continue
            nets = " ".join(str(n) for n in self.groups.get(group, ())) or "(empty)"
            extra = ""
            if group in OE_GROUPS:
                extra = f"; failureshunt={self.conns[group].failureshunt.value}"
            lines.append(f'policy group "{group}": {GROUP_SHUNT[group]}{extra}: {nets}')
        for name in sorted(self.failed):
            lines.append(f'"{name}": opportunistic keying failed: failureshunt={self.failed[name]}')
        return lines

    def status_dict(self) -> dict[str, object] | None:
        if not self.active:
            return None
        return {
            "groups": {
                g: {"cidrs": [str(n) for n in self.groups.get(g, ())], "shunt": GROUP_SHUNT[g],
                    "enabled": g in self.conns}
                for g in POLICY_GROUPS
            },
            "eroutes": [
                {"group": e.group, "src": str(e.source), "dst": str(e.destination), "shunt": e.shunt}
                for e in self._installed.values()
            ],
            "failed": dict(self.failed),
        }

