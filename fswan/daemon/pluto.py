"""The daemon's connection table and whack commands (pluto's ``rcv_whack``).

``Pluto`` owns what pluto owned before IKE starts: the loaded conns, their
orientation on this host, the secrets, and whether we listen.  It does no
I/O itself: files come through a loader, the host's interfaces through a
callable, and every message goes out through ``PlutoLog`` to the log and to the
whack that asked.  The Twisted control socket (``control.py``) calls it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable

from cryptography.hazmat.primitives.asymmetric import rsa
from twisted.internet import defer

from fswan.config.errors import ConfigError, ConfigErrors
from fswan.config.ids import Identity, IdKind, parse_id
from fswan.config.ipsecconf import IncludeLoader, load_config
from fswan.config.hostnames import ResolveError, needed_names, resolve_hosts
from fswan.config.model import Auto, Config, Connection, IPAddress, SetupConfig
from fswan.config.orient import (
    HostNetwork,
    IpsecInterface,
    OrientationError,
    ipsec_interfaces,
    orient,
)
from fswan.config.secrets import Secrets, load_secrets, permission_warning
from fswan.pki.store import CertStore
from fswan.daemon.dns import DnsKeyFetcher, check_config_names, resolve_names
from fswan.daemon import credentials
from fswan.daemon.certificates import Certificates
from fswan.daemon.crls import CrlFetcher
from fswan.daemon.interfaces import IkeControl
from fswan.config.keys import AnyRSAKey, KeyFormatError, format_rsasigkey, key_id, parse_rsasigkey
from fswan.daemon.logging import (
    DEBUG_CATEGORIES,
    PlutoLog,
    Reply,
    debug_names,
    parse_debug,
    reply_lines,
)
from fswan.daemon.manual import ManualKeying
from fswan.daemon.metrics import IkeStats
from fswan.daemon.oe import Opportunism
from fswan.daemon.pump import DataPlaneEvent
from fswan.daemon.status import (
    DaemonCounters,
    HandshakeFigures,
    LoadedConnection,
    ManualSA,
    PublicKeyEntry,
    SaCounters,
    StatusSnapshot,
    format_status,
    global_status_dict,
    global_status_lines,
    pubkey_dicts,
    pubkey_lines,
    status_dict,
    traffic_dicts,
    traffic_entries,
    traffic_lines,
)
from fswan.daemon.tunnels import KernelSide, Tunnels
from fswan.ike import events as ev
from fswan.ike.halfopen import DdosMode
from fswan.ike.status import StateSnapshot
from fswan.updown import UnknownPluginError, plugins_for
from fswan.whackproto import RC


class Pluto:
    """Connection table plus the whack verbs that act on it.

    Its per-conn parts are built here, on the table: ``Opportunism`` (policy groups,
    OE instances) always, and with a data plane (``dataplane``) ``Tunnels`` (eroutes,
    SAs, updown) and ``ManualKeying``.
    """

    def __init__(
        self,
        config_path: str,
        secrets_path: str,
        loader: IncludeLoader,
        read_host: Callable[[], HostNetwork],
        log: PlutoLog,
        file_mode: Callable[[str], int | None] = lambda path: None,
        ike: IkeControl | None = None,
        dataplane: KernelSide | None = None,
        fetcher: DnsKeyFetcher | None = None,
        stats: IkeStats | None = None,
        crl_fetcher: CrlFetcher | None = None,
    ) -> None:
        self.ike = ike
        #: handshakes, rekeys, DPD timeouts (fed by the IKE driver and the log)
        self.stats = stats if stats is not None else IkeStats()
        #: when each installed IPsec SA pair came up (``--trafficstatus``'s add_time)
        self.sa_added: dict[int, float] = {}
        #: when conns were added and secrets loaded (``--listpubkeys``' installed time)
        self.added_at: dict[str, float] = {}
        self.secrets_loaded_at = 0.0
        self.dns_keys_seen: dict[tuple[str, str], float] = {}
        self.config_path = config_path
        self.secrets_path = secrets_path
        self.loader = loader
        self.read_host = read_host
        self.log = log
        self.file_mode = file_mode
        self.setup = SetupConfig()
        self.connections: dict[str, LoadedConnection] = {}
        self.secrets = Secrets(entries=(), files=(), warnings=())
        #: trust anchors, CRLs and our certificates (``pki``); loaded by ``start``
        self.certificates = Certificates(config_path, log, self._now, self._read_config,
                                         crl_fetcher)
        self.interfaces: list[IpsecInterface] = []
        self.host = HostNetwork()
        self.listening = False
        #: looks up host names of conns (and, through Opportunism, OE records); None: no DNS
        self.fetcher = fetcher
        #: start-up has acted on auto= (a conn added later by DNS is acted on at once)
        self.auto_started = False
        self.shutdown_requested: Callable[[], None] = lambda: None
        #: policy groups and OE instances (``daemon.oe``)
        self.oe = Opportunism(self, log, fetcher, ike)
        #: eroutes, SAs and updown per conn; None: no data plane
        self.tunnels: Tunnels | None = None
        #: ``ipsec manual``; None: no data plane
        self.manual: ManualKeying | None = None
        if dataplane is not None:
            self.tunnels = Tunnels(
                dataplane.kernel, dataplane.runner, log, dataplane.clock, self.connections.get,
                lambda: self.setup, dataplane.pump, ike, self.oe, dataplane.addresses,
            )
            self.manual = ManualKeying(self.tunnels, log)

    # -- start-up ---------------------------------------------------------

    def start(self, config: Config | None = None) -> None:
        """Load everything for a fresh daemon (``config``: already read from
        ``config_path``); ConfigError propagates (exit 1)."""
        if config is None:
            config = self._read_config(self.config_path)
        self.setup = config.setup
        self._load_certificates(config)
        if self.ike is not None:
            self.ike.engine.apply_setup(
                uniqueids=config.setup.uniqueids,
                keep_alive=config.setup.keep_alive,
                nat_traversal=config.setup.nat_traversal,
                virtual_private=config.setup.virtual_private,
                ddos_mode=DdosMode(config.setup.ddos_mode),
                ddos_ike_threshold=config.setup.ddos_ike_threshold,
                max_halfopen_ike=config.setup.max_halfopen_ike,
                ike_fragment_size=config.setup.ike_fragment_size,
            )
        categories, unknown = parse_debug(config.setup.plutodebug)
        self.log.set_debug(categories)
        if unknown:
            where = config.setup.settings.get("plutodebug", ("", None))[1]
            self.log.log(f"{where}: plutodebug: ignoring {', '.join(unknown)} (fswan knows "
                         f"none, all, {', '.join(DEBUG_CATEGORIES)})", RC.LOG_SERIOUS)
        for warning in config.warnings:
            self.log.log(f"warning: {warning}")
        for unsupported in self._unsupported_notes(config):
            self.log.log(unsupported)
        self._set_secrets(self._read_secrets(self.secrets_path))
        self.listen(None)
        # conns whose peer key comes from DNS, said at load as pluto did
        for line in check_config_names(config, [str(i.address) for i in self.interfaces]):
            self.log.log(line)
        for conn in config.conns.values():
            if conn.auto in (Auto.ADD, Auto.ROUTE, Auto.START, Auto.MANUAL):
                self._add_resolving(conn, None, strict=True)
        self.oe.load(config)

    def _load_certificates(self, config: Config) -> None:
        """The trust anchors and CRLs (``daemon.certificates``), given to the engine."""
        store = self.certificates.load(config)
        if self.ike is not None:
            self.ike.engine.set_trust(store, strict_crl=config.setup.strictcrlpolicy == "yes",
                                      nocrsend=config.setup.nocrsend)

    @property
    def pki(self) -> CertStore | None:
        """The certificate store (None before ``start``); the engine holds the same object."""
        return self.certificates.store

    def start_auto(self) -> None:
        """Once the reactor runs, as ``ipsec setup`` did after loading: ``auto=route``
        conns are routed, ``auto=start`` ones initiated, ``auto=manual`` ones keyed."""
        for loaded in list(self.connections.values()):
            self._apply_auto(loaded)
        self.oe.install(None)
        self.auto_started = True

    def _apply_auto(self, loaded: LoadedConnection) -> None:
        if loaded.oriented is None:
            return
        auto = loaded.conn.auto
        if auto is Auto.ROUTE and self.tunnels is not None:
            self.tunnels.route(loaded.name, None)
        elif auto is Auto.START and self.ike:
            self.ike.initiate(loaded.name, None, asynchronous=True)
        elif auto is Auto.MANUAL and self.manual is not None:
            self.manual.up(loaded.oriented, None)

    def stop(self) -> None:
        """Daemon shutdown, before the IKE sockets and the data plane go: every conn
        deleted in the engine (deletes sent, ``down``), then SAs and eroutes out and
        ``unroute`` (routes go before ipsec0 does), then the policy-routing rules."""
        if self.ike is not None:
            for name in list(self.connections):
                self.ike.engine.remove_connection(name, self.ike.now())
            self.ike.pump()
        if self.tunnels is not None:
            for name in list(self.connections):
                self.tunnels.forget(name)
            self.oe.stop()

    # -- events from the engine and the data plane --------------------------

    def on_engine_event(self, event: ev.EngineEvent) -> None:
        """An SA event from the IKE driver: to the data plane's glue, if there is one."""
        if isinstance(event, ev.ChildSAInstalled):
            self.sa_added[event.serial] = self._now()
        elif isinstance(event, ev.ChildSADeleted):
            self.sa_added.pop(event.serial, None)
        if self.tunnels is not None:
            self.tunnels.on_engine_event(event)

    def after_ike_step(self) -> None:
        if self.tunnels is not None:
            self.tunnels.after_ike_step()

    def on_client_check(self, event: ev.ClientCheckNeeded) -> None:
        self.oe.on_client_check(event)

    def on_dataplane_event(self, event: DataPlaneEvent) -> None:
        if self.tunnels is not None:
            self.tunnels.on_dataplane_event(event)

    def _set_secrets(self, secrets: Secrets) -> None:
        myid = parse_id(self.setup.myid) if self.setup.myid else None
        secrets = secrets.with_myid(myid)
        self.secrets = secrets
        self.secrets_loaded_at = self._now()
        if self.ike is not None:
            self.ike.engine.set_secrets(secrets)

    def _unsupported_notes(self, config: Config) -> list[str]:
        notes = []
        for keyword in config.setup.unsupported:
            where = config.setup.settings.get(keyword, ("", None))[1]
            notes.append(f"{where}: config setup: {keyword}= is not yet supported; ignored")
        return notes

    def _read_config(self, path: str) -> Config:
        return load_config(path, self.loader)

    def _read_secrets(self, path: str, reply: Reply | None = None) -> Secrets:
        mode = self.file_mode(path)
        if mode is None:
            self.log.log(f'could not open "{path}": no secrets loaded', RC.LOG_SERIOUS, reply=reply)
            return Secrets(entries=(), files=(), warnings=())
        warning = permission_warning(path, mode)
        if warning:
            self.log.log(f"warning: {warning}", RC.LOG_SERIOUS, reply=reply)
        self.log.log(f'loading secrets from "{path}"', reply=reply)
        secrets = load_secrets(path, self.loader)
        for problem in secrets.warnings:
            self.log.log(f"warning: {problem}", RC.LOG_SERIOUS, reply=reply)
        self.log.log(f"loaded {len(secrets.entries)} secrets", reply=reply)
        return secrets

    # -- interfaces and orientation ---------------------------------------

    def listen(self, reply: Reply | None) -> None:
        """``whack --listen``: rescan interfaces and (re)orient every conn."""
        self.log.log("listening for IKE messages", reply=reply)
        self.host = self.read_host()
        found, problems = ipsec_interfaces(self.setup, self.host)
        for problem in problems:
            self.log.log(problem, RC.LOG_SERIOUS, reply=reply)
        old = set(self.interfaces)
        for iface in found:
            if iface not in old:
                self.log.log(f"adding interface {iface}", reply=reply)
        for iface in self.interfaces:
            if iface not in found:
                self.log.log(f"shutting down interface {iface}", reply=reply)
        self.interfaces = found
        self.listening = True
        if self.ike is not None:
            self.ike.open_ports(found)
        for name, loaded in list(self.connections.items()):
            self._forget_in_engine(name)
            self.connections[name] = self._orient(loaded.conn, reply, quiet=True)
            self._tell_engine(self.connections[name])

    def unlisten(self, reply: Reply | None) -> None:
        for iface in self.interfaces:
            self.log.log(f"shutting down interface {iface}", reply=reply)
        self.interfaces = []
        self.listening = False
        if self.ike is not None:
            self.ike.close_ports()
        for name, loaded in list(self.connections.items()):
            self._forget_in_engine(name)
            self.connections[name] = self._orient(loaded.conn, reply, quiet=True)

    def _tell_engine(self, loaded: LoadedConnection) -> None:
        if self.ike is not None and loaded.oriented is not None and loaded.conn.auto is not Auto.MANUAL:
            self.ike.engine.add_connection(loaded.oriented, loaded.creds)
            peer_keys = getattr(self.ike, "peer_keys", None)  # fakes in tests have none
            if peer_keys is not None:
                peer_keys.conn_added(loaded.oriented)

    def add_instance(self, conn: Connection) -> bool:
        """Add a conn made by the daemon (an OE template or instance), as ``ipsec auto --add``."""
        return self._add(conn, None)

    def drop(self, name: str) -> None:
        """Forget a conn the daemon made (an OE instance or template being replaced)."""
        self._forget_in_engine(name)
        self.connections.pop(name, None)

    def _forget_in_engine(self, name: str) -> None:
        loaded = self.connections.get(name)
        if self.ike is not None and loaded is not None and loaded.oriented is not None:
            self.ike.engine.remove_connection(name, self.ike.now())
            self.ike.pump()

    def _orient(self, conn: Connection, reply: Reply | None, quiet: bool = False) -> LoadedConnection:
        try:
            oriented = orient(conn, self.interfaces, self.host.default_route, self.setup.myid)
        except OrientationError as error:
            if not quiet:
                self.log.log(str(error), RC.ORIENT, conn=conn.name, reply=reply)
            return LoadedConnection(conn, None, str(error))
        try:
            oriented, creds, notes = credentials.resolve(oriented, self.pki)
        except credentials.CredentialError as error:
            self.log.log(str(error), RC.ORIENT, conn=conn.name, reply=reply)
            return LoadedConnection(conn, None, str(error))
        if not quiet:
            for note in notes:
                self.log.log(f"warning: {note}", conn=conn.name, reply=reply)
        return LoadedConnection(conn, oriented, creds=creds)

    # -- whack verbs ------------------------------------------------------

    def _add(self, conn: Connection, reply: Reply | None, strict: bool = False) -> bool:
        """Add one conn; ``strict`` (start-up) raises an unknown updown plugin as a
        config error so the daemon stops with file:line instead of adding it."""
        if conn.name in self.connections:
            self.log.log(f'attempt to redefine connection "{conn.name}"', RC.DUPNAME, reply=reply)
            return False
        loaded = self._orient(conn, reply)
        if loaded.oriented is not None:
            try:
                plugins_for(loaded.oriented)
            except UnknownPluginError as error:
                if strict:
                    raise
                self.log.log(str(error), RC.BADWHACKMESSAGE, conn=conn.name, reply=reply)
                return False
        self.connections[conn.name] = loaded
        if loaded.oriented is None:
            return False
        self.added_at[conn.name] = self._now()
        self._tell_engine(loaded)
        self.log.log(f'added connection description "{conn.name}"', reply=reply)
        for keyword in conn.unsupported:
            where = conn.settings.get(keyword, ("", None))[1]
            self.log.log(
                f"{where}: {keyword}= is not yet supported by fswan; ignored",
                RC.LOG_SERIOUS,
                conn=conn.name,
                reply=reply,
            )
        if conn.auto is Auto.MANUAL:
            from fswan.daemon.manual import ManualError, check_manual

            try:
                check_manual(conn)
            except ManualError as error:
                self.log.log(str(error), RC.BADWHACKMESSAGE, conn=conn.name, reply=reply)
        return True

    def _add_resolving(self, conn: Connection, reply: Reply | None,
                       strict: bool = False) -> defer.Deferred[bool] | None:
        """Add ``conn``, after looking up the host names it was written with
        (``right=vpn.example.com``) off the reactor, as ``ipsec auto --add`` did; a name
        that does not resolve keeps that conn out with pluto's message, the others load."""
        names = needed_names(conn)
        if not names:
            self._add(conn, reply, strict)
            return None
        if self.log.debugging("dns"):
            self.log.debug_line("dns", f"resolving {', '.join(names)}", conn.name)
        if self.fetcher is None:
            self.log.log(f"{', '.join(names)}: cannot look up host names: this daemon has no "
                         "DNS resolver", RC.NOPEERIP, conn=conn.name, reply=reply)
            return None
        self.log.log(f"looking up {', '.join(names)} in DNS", conn=conn.name, reply=reply)
        lookup = resolve_names(self.fetcher, names)
        return lookup.addCallback(self._resolved, conn, reply)

    def _resolved(self, answers: dict[str, list[IPAddress]], conn: Connection,
                  reply: Reply | None) -> bool:
        if self.log.debugging("dns"):
            found = "; ".join(f"{n}: {' '.join(map(str, a)) or 'no address'}"
                              for n, a in sorted(answers.items()))
            self.log.debug_line("dns", f"resolved {found}", conn.name)
        try:
            resolved = resolve_hosts(conn, answers)
        except ResolveError as error:
            self.log.log(str(error), RC.NOPEERIP, conn=conn.name, reply=reply)
            return False
        if not self._add(resolved, reply):
            return False
        if self.auto_started:  # resolved after start-up acted on auto=: act on this one now
            self._apply_auto(self.connections[conn.name])
        return True

    def add(self, name: str, config_path: str | None, reply: Reply) -> defer.Deferred[bool] | None:
        conn = self._conn_from_file(name, config_path, reply)
        if conn is None:
            return None
        if name not in self.connections:
            self.certificates.forget_cert_files(conn)
        return self._add_resolving(conn, reply)

    def replace(self, name: str, config_path: str | None,
                reply: Reply) -> defer.Deferred[bool] | None:
        conn = self._conn_from_file(name, config_path, reply)
        if conn is None:
            return None
        if name in self.connections:
            self._delete(name, reply)
        self.certificates.forget_cert_files(conn)
        return self._add_resolving(conn, reply)

    def _conn_from_file(self, name: str, config_path: str | None, reply: Reply) -> Connection | None:
        path = config_path or self.config_path
        try:
            config = self._read_config(path)
        except ConfigErrors as errors:
            for error in errors.errors:
                self.log.log(str(error), RC.LOG_SERIOUS, reply=reply)
            self.log.log(f'cannot load "{name}": {path} has errors', RC.BADWHACKMESSAGE, reply=reply)
            return None
        except ConfigError as error:
            self.log.log(str(error), RC.LOG_SERIOUS, reply=reply)
            self.log.log(f'cannot load "{name}": {path} has errors', RC.BADWHACKMESSAGE, reply=reply)
            return None
        conn = config.conns.get(name)
        if conn is None:
            refused = config.refused.get(name)
            if refused is not None:  # a conn fswan cannot run: say why, with file:line
                self.log.log(str(refused), RC.BADWHACKMESSAGE, reply=reply)
            else:
                self.log.log(f'no conn "{name}" in {path}', RC.UNKNOWN_NAME, reply=reply)
            return None
        return conn

    def _delete(self, name: str, reply: Reply | None) -> None:
        self.log.log("deleting connection", conn=name, reply=reply)
        self._forget_in_engine(name)
        if self.tunnels is not None:
            if self.manual is not None:
                self.manual.up_conns.discard(name)
            self.tunnels.forget(name, reply)
        del self.connections[name]

    def delete(self, name: str, reply: Reply) -> None:
        if name not in self.connections:
            self.log.log(f'no connection named "{name}"', RC.UNKNOWN_NAME, reply=reply)
            return
        self._delete(name, reply)

    def reread_secrets(self, path: str | None, reply: Reply | None) -> None:
        path = path or self.secrets_path
        self.log.log("forgetting secrets", reply=reply)
        try:
            secrets = self._read_secrets(path, reply)
        except ConfigError as error:
            problems = error.errors if isinstance(error, ConfigErrors) else [error]
            for problem in problems:
                self.log.log(str(problem), RC.LOG_SERIOUS, reply=reply)
            self.log.log(
                f"{path} has errors; keeping the {len(self.secrets.entries)} secrets loaded before",
                RC.BADWHACKMESSAGE,
                reply=reply,
            )
            return
        self._set_secrets(secrets)
        self.secrets_path = path

    def initiate(self, name: str, asynchronous: bool, reply: Reply) -> defer.Deferred[bool] | None:
        """``--up``: stream the keying progress to the whack until the engine releases it."""
        loaded = self._known_oriented(name, reply)
        if loaded is None:
            return None
        if self.ike is None:
            self._no_ike("initiate", name, reply)
            return None
        return self.ike.initiate(name, reply, asynchronous)

    def terminate(self, name: str, reply: Reply) -> None:
        loaded = self._known_oriented(name, reply)
        if loaded is None:
            return
        if self.ike is None:
            return self._no_ike("terminate", name, reply)
        self.ike.terminate(name, reply)

    def _no_ike(self, command: str, name: str, reply: Reply) -> None:
        self.log.log(f"--{command}: this daemon runs without IKE", RC.INTERNALERR, conn=name, reply=reply)

    def _known_oriented(self, name: str, reply: Reply) -> LoadedConnection | None:
        loaded = self.connections.get(name)
        if loaded is None:
            self.log.log(f'no connection named "{name}"', RC.UNKNOWN_NAME, reply=reply)
            return None
        if loaded.oriented is None:
            self.log.log(
                loaded.orientation_error or "cannot orient", RC.ORIENT, conn=name, reply=reply
            )
            return None
        return loaded

    def _no_dataplane(self, command: str, name: str | None, reply: Reply) -> None:
        self.log.log(
            f"--{command}: this daemon runs without a data plane (no {self._virtual()})",
            RC.INTERNALERR, conn=name, reply=reply,
        )

    def _virtual(self) -> str:
        return self.interfaces[0].virtual if self.interfaces else "ipsec0"

    def route(self, name: str, reply: Reply) -> defer.Deferred[bool] | None:
        """``--route``: the conn's %trap eroute and its route into ipsec0."""
        loaded = self._known_oriented(name, reply)
        if loaded is None:
            return None
        if self.tunnels is None:
            self._no_dataplane("route", name, reply)
            return None
        return self.tunnels.route(name, reply)

    def unroute(self, name: str, reply: Reply) -> defer.Deferred[bool] | None:
        loaded = self._known_oriented(name, reply)
        if loaded is None:
            return None
        if self.tunnels is None:
            self._no_dataplane("unroute", name, reply)
            return None
        return self.tunnels.unroute(name, reply)

    def manual_command(
        self, name: str, up: bool, config_path: str | None, reply: Reply
    ) -> defer.Deferred[bool] | None:
        """``ipsec manual --up|--down NAME``: SAs from the conn's keys, no IKE."""
        loaded = self.connections.get(name)
        if loaded is None:
            conn = self._conn_from_file(name, config_path, reply)
            if conn is None:
                return None
            loaded = self._orient(conn, reply)
            if loaded.oriented is None:
                return None
            self.connections[name] = loaded
        if loaded.oriented is None:
            self.log.log(loaded.orientation_error or "cannot orient", RC.ORIENT, conn=name,
                         reply=reply)
            return None
        if self.manual is None:
            self._no_dataplane("up" if up else "down", name, reply)
            return None
        if up:
            return self.manual.up(loaded.oriented, reply)
        return self.manual.down(loaded.oriented, reply)

    def eroute(self, reply: Reply) -> None:
        """``ipsec eroute``: KLIPS's /proc/net/ipsec_eroute lines."""
        if self.tunnels is None:
            return self._no_dataplane("eroute", None, reply)
        for line in self.tunnels.kernel.dataplane.eroute_listing():
            reply.line(RC.COMMENT, line)

    def look(self, reply: Reply) -> None:
        """``ipsec look``: eroutes, SAs and the data plane's counters at a glance."""
        if self.tunnels is None:
            return self._no_dataplane("look", None, reply)
        dp = self.tunnels.kernel.dataplane
        now = self.tunnels.now()
        for line in dp.eroute_listing():
            reply.line(RC.COMMENT, line)
        for line in dp.status_lines(now):
            reply.line(RC.COMMENT, line)
        pump = self.tunnels.pump
        if pump is not None:
            reply.line(RC.COMMENT, "pump: " + " ".join(f"{k}={v}" for k, v in pump.counters.items()))

    # -- status -----------------------------------------------------------

    def snapshot(self) -> StatusSnapshot:
        states: tuple[StateSnapshot, ...] = ()
        newest: dict[str, tuple[int, int]] = {}
        half_open, busy = 0, False
        if self.ike is not None:
            now = self.ike.now()
            engine = self.ike.engine
            states = tuple(engine.snapshot(now))
            newest = {name: engine.newest(name) for name in self.connections}
            half_open, busy = engine.half_open, engine.busy
        snapshot = StatusSnapshot(
            interfaces=tuple(self.interfaces),
            myid=self.setup.myid,
            connections=tuple(self.connections.values()),
            listening=self.listening,
            debug=debug_names(self.log.debug),
            states=states,
            newest=newest,
            half_open=half_open,
            busy=busy,
        )
        if self.tunnels is not None:
            snapshot = self._with_dataplane(snapshot, self.tunnels)
        return snapshot

    def _with_dataplane(self, snapshot: StatusSnapshot, tunnels: Tunnels) -> StatusSnapshot:
        """Routing words, eroute owners, per-SA traffic and the data plane's drops."""
        kernel = tunnels.kernel
        manual = tuple(
            ManualSA(name, entry.pairs[0][1].said.dotted, entry.pairs[0][0].said.dotted)
            for name, entry in sorted(kernel.conns.items())
            if 0 in entry.pairs  # manual keying: no IKE state
        )
        connections = tuple(
            dataclasses.replace(c, routing=tunnels.routing(c.name),
                                eroute_owner=tunnels.eroute_owner(c.name))
            for c in snapshot.connections
        )
        dp = kernel.dataplane
        counters = "; ".join(f"{k}: {v}" for k, v in dp.counters.items() if v)
        kernel_lines = (
            f"{self._virtual()}: {len(dp.eroutes)} eroutes, {len(dp.sad)} SAs; "
            + (counters or "no drops"),
        )
        return dataclasses.replace(
            snapshot, connections=connections, kernel=kernel_lines,
            traffic=tunnels.sa_traffic(tunnels.now()), manual=manual,
        )

    def status(self, as_json: bool, reply: Reply) -> None:
        snapshot = self.snapshot()
        if as_json:
            document = status_dict(snapshot)
            oe = self.oe.status_dict()
            if oe is not None:
                document["opportunistic"] = oe
            reply.line(RC.COMMENT, json.dumps(document, sort_keys=True))
            return
        reply_lines(reply, RC.COMMENT, format_status(snapshot) + self.oe.status_lines())

    # -- listings and run-time debugging ------------------------------------

    def _now(self) -> float:
        return self.ike.now() if self.ike is not None else time.time()

    def traffic_status(self, as_json: bool, reply: Reply) -> None:
        """``whack --trafficstatus``: per installed IPsec SA, Libreswan's ``006`` line."""
        entries = traffic_entries(self.snapshot(), self.sa_added, self._now())
        if as_json:
            reply.line(RC.COMMENT, json.dumps({"traffic": traffic_dicts(entries)}, sort_keys=True))
            return
        for line in traffic_lines(entries):
            reply.line(RC.INFORMATIONAL_TRAFFIC, line)

    def counters(self) -> DaemonCounters:
        """The daemon's figures as data: ``--globalstatus`` and the metrics page."""
        states: tuple[StateSnapshot, ...] = ()
        half_open, busy = 0, False
        ike: dict[str, int] = {}
        if self.ike is not None:
            engine = self.ike.engine
            states = tuple(engine.snapshot(self.ike.now()))
            half_open, busy = engine.half_open, engine.busy
            ike = dict(engine.counters)
        dataplane: dict[str, int] = {}
        pump: dict[str, int] = {}
        sas: tuple[SaCounters, ...] = ()
        if self.tunnels is not None:
            dp = self.tunnels.kernel.dataplane
            dataplane = dict(dp.counters)
            sas = tuple(SaCounters(sa.conn, sa.direction, sa.bytes, sa.packets) for sa in dp.sad)
            if self.tunnels.pump is not None:
                pump = dict(self.tunnels.pump.counters)
        return DaemonCounters(
            states=states, connections=len(self.connections), half_open=half_open, busy=busy,
            ike=ike, dataplane=dataplane, pump=pump, sas=sas, ddos_mode=self.setup.ddos_mode,
            ddos_threshold=self.setup.ddos_ike_threshold,
            max_halfopen=self.setup.max_halfopen_ike,
        )

    def figures(self, counters: DaemonCounters) -> HandshakeFigures:
        stats = self.stats
        stats.reconcile(s.serial for s in counters.states)
        return HandshakeFigures(
            started=dict(stats.started), completed=dict(stats.completed),
            failed=dict(stats.failed), rekeys=dict(stats.rekeys),
            dpd_timeouts=sum(stats.dpd_timeouts.values()),
            updown_failures=sum(stats.updown_failures.values()),
        )

    def global_status(self, as_json: bool, reply: Reply) -> None:
        """``whack --globalstatus``: states by kind, handshakes, failures, drops."""
        counters = self.counters()
        figures = self.figures(counters)
        if as_json:
            document = global_status_dict(counters, figures)
            reply.line(RC.COMMENT, json.dumps(document, sort_keys=True))
            return
        for line in global_status_lines(counters, figures):
            reply.line(RC.COMMENT, line)

    def public_keys(self) -> list[PublicKeyEntry]:
        """The RSA public keys held: peers' and ours from ipsec.conf, peers' from DNS,
        ours from ipsec.secrets (public halves only: nothing secret is listed)."""
        found: dict[tuple[str, str], PublicKeyEntry] = {}
        private_ids = {secret.key_id for secret in self.secrets.entries}

        def add(identity: Identity | None, key: AnyRSAKey, source: str, installed: float) -> None:
            keyid, text, bits = key_id(key), format_rsasigkey(key), key.key_size
            shown = str(identity) if identity is not None else "%any"
            kind = identity.kind.value if identity is not None else "ID_NONE"
            if kind.startswith("%"):
                kind = "ID_NONE"
            entry_key = (shown, keyid)
            if entry_key not in found:
                found[entry_key] = PublicKeyEntry(shown, kind, bits, keyid, text, source,
                                                  keyid in private_ids, installed)

        for name, loaded in sorted(self.connections.items()):
            oriented = loaded.oriented
            if oriented is None:
                continue
            for end in (oriented.this, oriented.that):
                for text in (end.end.rsasigkey, end.end.rsasigkey2):
                    if text and text[:2].lower() in ("0s", "0x"):
                        try:
                            key = parse_rsasigkey(text)
                        except (KeyFormatError, ValueError):
                            continue
                        add(end.id, key, f'ipsec.conf "{name}"', self.added_at.get(name, 0.0))
        if self.ike is not None:
            now = self._now()
            for identity, keys in self.ike.engine.select.dns_keys.items():
                for key in keys:
                    # pluto kept the fetch time; fswan shows when the listing first saw it
                    seen = self.dns_keys_seen.setdefault((str(identity), key_id(key)), now)
                    add(identity, key, "DNS", seen)
        for secret in self.secrets.entries:
            if secret.kind != "RSA":
                continue
            ids: tuple[Identity | None, ...] = secret.ids or (None,)
            value = secret.value
            if not isinstance(value, rsa.RSAPrivateKey):
                continue
            for given in ids:
                shown = None if given is not None and given.kind is IdKind.ANY else given
                add(shown, value.public_key(), "ipsec.secrets", self.secrets_loaded_at)
        return list(found.values())

    def list_pubkeys(self, as_json: bool, utc: bool, reply: Reply) -> None:
        """``whack --listpubkeys``: pluto's layout, keyid and an abbreviated ``0s...``."""
        keys = self.public_keys()
        if as_json:
            reply.line(RC.COMMENT, json.dumps({"public_keys": pubkey_dicts(keys)}, sort_keys=True))
            return
        for line in pubkey_lines(keys, utc):
            reply.line(RC.COMMENT, line)

    # -- certificates: the X.509 patch's listings and rereads ------------------------

    def list_certificates(self, command: str, as_json: bool, reply: Reply) -> None:
        """``--listcerts`` (ours), ``--listcacerts`` (anchors), ``--listcrls``."""
        self.certificates.list(command, as_json, reply)

    def reread_cacerts(self, reply: Reply | None) -> None:
        """``--rereadcacerts``: ``ipsec.d/cacerts`` and the ``cacert=`` of the ``ca`` sections
        (read again from ipsec.conf).  The engine holds the same store: the next certificate
        it checks, and the next CR it sends, use the new anchors."""
        self.certificates.reread_ca_sections(reply)
        self.certificates.reread_cacerts(reply)

    def reread_crls(self, reply: Reply | None) -> defer.Deferred[bool] | None:
        """``--rereadcrls``: ``ipsec.d/crls`` again, then every ``crluri=`` fetched again; the
        whack's reply ends once the last fetch has answered or given up."""
        self.certificates.reread_ca_sections(reply)
        self.certificates.reread_crl_files(reply)
        return self.certificates.fetch_crls(reply)

    def reread_all(self, reply: Reply | None) -> defer.Deferred[bool] | None:
        """``--rereadall``: secrets, CA certificates, CRLs, and each conn's own certificate
        files (``leftcert=``/``rightcert=``: read again, the conn's credentials replaced in
        the engine; its SAs stay up and use them from their next negotiation)."""
        self.reread_secrets(None, reply)
        self.certificates.reread_ca_sections(reply)
        self.certificates.reread_cacerts(reply)
        self.certificates.reread_crl_files(reply)
        self._refresh_credentials(reply)
        return self.certificates.fetch_crls(reply)

    def _refresh_credentials(self, reply: Reply | None) -> None:
        """Each conn with certificates oriented again with its files read again; a conn whose
        files are now unusable keeps what it had (said, with the reason)."""
        store = self.pki
        if store is None:
            return
        before = dict(store.end_certs)
        store.forget_end_certs()
        for name, loaded in list(self.connections.items()):
            if loaded.oriented is None or not credentials.needs_certificates(loaded.conn):
                continue
            fresh = self._orient(loaded.conn, None, quiet=True)
            if fresh.oriented is None:
                self.log.log(f"keeping the certificates loaded before: {fresh.orientation_error}",
                             RC.LOG_SERIOUS, conn=name, reply=reply)
                for end in (loaded.conn.left, loaded.conn.right):
                    old = before.get(store.resolve_cert_path(end.cert)) if end.cert else None
                    if old is not None:
                        store.keep_end_cert(old)
                continue
            if fresh.creds == loaded.creds and fresh.oriented == loaded.oriented:
                continue
            oriented = fresh.oriented
            self.connections[name] = dataclasses.replace(loaded, oriented=oriented, creds=fresh.creds)
            if self.ike is not None and loaded.conn.auto is not Auto.MANUAL:
                self.ike.engine.add_connection(oriented, fresh.creds)
            self.log.log("certificates reloaded", conn=name, reply=reply)

    def delete_state(self, serial: int, reply: Reply) -> None:
        """``whack --deletestate N``: that one state goes (the peer is told)."""
        if self.ike is None:
            self.log.log("--deletestate: this daemon runs without IKE", RC.INTERNALERR,
                         reply=reply)
            return
        known = {s.serial: s.connection for s in self.ike.engine.snapshot(self.ike.now())}
        if serial not in known:
            self.log.log(f"no state #{serial} to delete", RC.UNKNOWN_NAME, reply=reply)
            return
        self.log.log("deleting state (whack --deletestate)", conn=known[serial], serial=serial,
                     reply=reply)
        self.ike.engine.delete_state(serial, self.ike.now())
        self.ike.pump()

    def set_debug(self, spec: str, reply: Reply) -> None:
        """``whack --debug-NAME ...``: as in pluto, the categories given replace those on
        (``none`` clears, ``all`` is every one)."""
        categories, unknown = parse_debug(spec)
        if unknown:
            self.log.log(f"unknown debug category {', '.join(unknown)}; fswan knows none, all, "
                         f"{', '.join(DEBUG_CATEGORIES)}", RC.BADWHACKMESSAGE, reply=reply)
            return
        self.log.set_debug(categories)
        self.log.log(f"debug {debug_names(categories)}", reply=reply)

    def reread_groups(self, reply: Reply) -> None:
        """``ipsec auto --rereadgroups``: the implicit conns and ``ipsec.d/policies`` again."""
        try:
            config = self._read_config(self.config_path)
        except ConfigError as error:
            problems = error.errors if isinstance(error, ConfigErrors) else [error]
            for problem in problems:
                self.log.log(str(problem), RC.LOG_SERIOUS, reply=reply)
            return
        self.oe.reread(config, reply)


def default_secrets_path(config_path: str) -> str:
    """``ipsec.secrets`` beside ``ipsec.conf``, as a packaged /etc layout has it."""
    return os.path.join(os.path.dirname(os.path.abspath(config_path)), "ipsec.secrets")


