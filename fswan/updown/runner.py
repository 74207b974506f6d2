"""Running updown verbs for the daemon: in order, refcounted, never fatal.

The IKE engine says *what* happened (an SA pair installed, deleted); pluto
decides which verb that means (see docs/updown.md) and calls
:meth:`UpdownRunner.run`.  The runner

* serialises verbs per connection (a ``DeferredLock`` per conn name), so a
  slow ``up`` script is never overtaken by that conn's ``down``.  A road
  warrior's peers are each an ``instance`` (``kernel.instance_name``): their
  own lock, route and ``up``, so one peer's ``down`` leaves the others';
* keeps pluto's route sharing: ``route`` runs only for the first conn routing
  a peer client (per routing table), ``unroute`` only when the last one goes
  (with the plugins that did the ``route``, whichever conn is last), and
  ``prepare`` only while no conn routes that client.  These decisions and the
  actions behind them hold a per-(table, client) lock too;
* runs ``up`` once per tunnel (a rekey's second ``up`` is a no-op) and
  ``down`` only after an ``up``;
* rolls back a half-done ``route``/``up`` (the plugins that succeeded get
  ``unroute``/``down``), and gives every plugin its ``down``/``unroute``
  even when an earlier one failed (teardown runs in reverse plugin order);
* logs every failure as ``"net" #2: <verb> failed: <what>: <why>`` (RC 3)
  and answers False, so pluto can keep a tunnel down when its route failed.
  A plugin that raises, errbacks or hangs (timeout) never reaches the caller.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from twisted.internet.defer import (
    CancelledError,
    Deferred,
    DeferredLock,
    TimeoutError,
    maybeDeferred,
)
from twisted.logger import Logger

from fswan.config.model import IPNetwork
from fswan.config.orient import OrientedConnection
from fswan.daemon.logging import PlutoLog, Reply
from fswan.updown.context import SAFacts, UpdownContext, build_context, verb_for
from fswan.updown.interface import VERB_FAMILIES, IUpdown, UpdownFailure
from fswan.whackproto import RC

#: (routing table, peer client): what one route is shared by
RouteKey = tuple[int, IPNetwork]

_log = Logger(namespace="fswan.updown")


class UpdownRunner:
    """Calls ``IUpdown`` plugins for pluto; one instance per daemon."""

    def __init__(self, log: PlutoLog, clock: Any = None, timeout: float = 60.0) -> None:
        self.log = log
        if clock is None:
            from twisted.internet import reactor as clock
        self.clock = clock
        #: seconds one plugin call may take before the verb fails
        self.timeout = timeout
        self._conn_locks: dict[str, DeferredLock] = {}
        self._route_locks: dict[RouteKey, DeferredLock] = {}
        #: route key -> {conn name: (interface, next hop)} in routing order
        self._holders: dict[RouteKey, dict[str, tuple[str, str]]] = {}
        self._routed: dict[str, RouteKey] = {}
        #: the plugins that installed each shared route: the ones that will remove it
        self._route_plugins: dict[RouteKey, list[IUpdown]] = {}
        self._up: set[str] = set()

    # -- what the daemon may ask ------------------------------------------------

    def is_routed(self, name: str) -> bool:
        return name in self._routed

    def is_up(self, name: str) -> bool:
        return name in self._up

    def route_holders(self, table: int, peer_client: IPNetwork) -> list[str]:
        """Conns sharing the route to ``peer_client`` in ``table``, first router first."""
        return list(self._holders.get((table, peer_client), {}))

    def run(
        self,
        family: str,
        oriented: OrientedConnection,
        facts: SAFacts | None = None,
        plugins: Sequence[IUpdown] = (),
        reply: Reply | None = None,
        *,
        instance: str | None = None,
    ) -> Deferred:
        """Run verb ``family`` (``prepare``/``route``/``unroute``/``up``/``down``) for a conn
        (``instance``: for that instance of it; the plugins still see the conn's name).

        Fires True when every plugin did its part (or nothing needed doing),
        False after logging why not.  Never errbacks.
        """
        if family not in VERB_FAMILIES:
            raise ValueError(f"unknown updown verb {family!r}")
        name = instance or oriented.name
        lock = self._conn_locks.setdefault(name, DeferredLock())
        done = lock.run(
            lambda: Deferred.fromCoroutine(
                self._run(family, oriented, facts, list(plugins), reply, name))
        )
        done.addErrback(self._internal_error, family, oriented.name, reply)
        done.addBoth(self._forget_lock, self._conn_locks, name, lock)
        return done

    # -- the verbs --------------------------------------------------------------

    async def _run(
        self,
        family: str,
        oriented: OrientedConnection,
        facts: SAFacts | None,
        plugins: list[IUpdown],
        reply: Reply | None,
        name: str,
    ) -> bool:
        """``name``: the conn's or the instance's, what the bookkeeping is keyed by."""
        serial = facts.serial if facts is not None else None
        conn = oriented.name

        def say(text: str) -> None:
            self.log.log(text, RC.LOG, conn, serial, reply)

        try:
            ctx = build_context(family, oriented, facts, say)
        except UpdownFailure as failure:
            self._serious(failure.describe(verb_for(family, oriented)), conn, serial, reply)
            return False
        if name != conn:
            ctx = replace(ctx, instance=name)
        if family in ("prepare", "route", "unroute"):
            key = self._routed.get(name) if family == "unroute" else None
            key = key or (ctx.route_table, ctx.peer_client)
            lock = self._route_locks.setdefault(key, DeferredLock())
            await lock.acquire()
            try:
                verb = getattr(self, f"_{family}")
                return await verb(ctx, key, plugins, reply, name)
            finally:
                lock.release()
                self._forget_lock(None, self._route_locks, key, lock)
        if family == "up":
            return await self._bring_up(ctx, plugins, reply, name)
        return await self._take_down(ctx, plugins, reply, name)

    async def _prepare(self, ctx: UpdownContext, key: RouteKey, plugins: list[IUpdown],
                       reply: Reply | None, name: str) -> bool:
        if self._holders.get(key):
            return True  # routed by a conn: nothing stale to clear
        return await self._forward(ctx, plugins, reply, undo=None)

    async def _route(self, ctx: UpdownContext, key: RouteKey, plugins: list[IUpdown],
                     reply: Reply | None, name: str) -> bool:
        elsewhere = self._routed.get(name)
        if elsewhere is not None and elsewhere != key:
            self._serious(
                f"{ctx.verb} failed: route {key[1]}: \"{name}\" already routes {elsewhere[1]}; "
                "unroute it first", ctx.connection, ctx.serial, reply)
            return False
        holders = self._holders.setdefault(key, {})
        if name in holders:
            return True
        route = (ctx.interface, str(ctx.next_hop))
        if holders:
            owner, owner_route = next(iter(holders.items()))
            if owner_route != route:
                self._serious(f'cannot route -- route already in use for "{owner}"',
                              ctx.connection, ctx.serial, reply)
                self._drop_empty(key)
                return False
            holders[name] = route  # shared: the route is already there
            self._routed[name] = key
            return True
        if not await self._forward(ctx, plugins, reply, undo="unroute"):
            self._drop_empty(key)
            return False
        holders[name] = route
        self._routed[name] = key
        self._route_plugins[key] = plugins
        return True

    async def _unroute(self, ctx: UpdownContext, key: RouteKey, plugins: list[IUpdown],
                       reply: Reply | None, name: str) -> bool:
        if self._routed.get(name) != key:
            return True  # not routed: nothing to undo
        del self._routed[name]
        holders = self._holders.get(key, {})
        holders.pop(name, None)
        if holders:
            return True  # another conn still routes this client
        self._drop_empty(key)
        return await self._backward(ctx, self._route_plugins.pop(key, plugins), reply)

    async def _bring_up(self, ctx: UpdownContext, plugins: list[IUpdown],
                        reply: Reply | None, name: str) -> bool:
        if name in self._up:
            return True  # a rekey: the eroute was replaced, not added
        if not await self._forward(ctx, plugins, reply, undo="down"):
            return False
        self._up.add(name)
        return True

    async def _take_down(self, ctx: UpdownContext, plugins: list[IUpdown],
                         reply: Reply | None, name: str) -> bool:
        if name not in self._up:
            return True
        self._up.discard(name)
        return await self._backward(ctx, plugins, reply)

    # -- calling plugins --------------------------------------------------------

    async def _forward(self, ctx: UpdownContext, plugins: list[IUpdown], reply: Reply | None,
                       undo: str | None) -> bool:
        """Plugins in order; at the first failure, undo the ones that succeeded."""
        for index, plugin in enumerate(plugins):
            problem = await self._call(plugin, ctx.family, ctx)
            if problem is None:
                continue
            self._serious(problem, ctx.connection, ctx.serial, reply)
            if undo is not None and index:
                undo_ctx = replace(ctx, verb=undo + ctx.verb[len(ctx.family):])
                await self._backward(undo_ctx, plugins[:index], reply)
            return False
        return True

    async def _backward(self, ctx: UpdownContext, plugins: list[IUpdown],
                        reply: Reply | None) -> bool:
        """Every plugin in reverse order, whatever the others did."""
        ok = True
        for plugin in reversed(plugins):
            problem = await self._call(plugin, ctx.family, ctx)
            if problem is not None:
                self._serious(problem, ctx.connection, ctx.serial, reply)
                ok = False
        return ok

    async def _call(self, plugin: IUpdown, family: str, ctx: UpdownContext) -> str | None:
        """One plugin method; the failure text to log, or None."""
        label = getattr(plugin, "name", type(plugin).__name__)
        method = getattr(plugin, family, None)
        if method is None:
            return f"{ctx.verb} failed: plugin {label}: has no {family}()"
        call = maybeDeferred(method, ctx)
        call.addTimeout(self.timeout, self.clock)
        try:
            await call
        except UpdownFailure as failure:
            return failure.describe(ctx.verb)
        except (TimeoutError, CancelledError):
            return f"{ctx.verb} failed: plugin {label} {family}(): no answer after {self.timeout:g}s"
        except Exception as error:
            _log.failure("updown plugin {plugin} {verb} raised", plugin=label, verb=ctx.verb)
            return f"{ctx.verb} failed: plugin {label} {family}(): {type(error).__name__}: {error}"
        return None

    # -- bookkeeping ------------------------------------------------------------

    def _serious(self, text: str, name: str, serial: int | None, reply: Reply | None) -> None:
        self.log.log(text, RC.LOG_SERIOUS, name, serial, reply)

    def _drop_empty(self, key: RouteKey) -> None:
        if not self._holders.get(key):
            self._holders.pop(key, None)

    def _internal_error(self, failure: Any, family: str, name: str, reply: Reply | None) -> bool:
        _log.failure("updown runner bug during {verb}", failure, verb=family)
        self._serious(f"{family} failed: internal error: {failure.getErrorMessage()}",
                      name, None, reply)
        return False

    @staticmethod
    def _forget_lock(result: Any, locks: dict, key: Any, lock: DeferredLock) -> Any:
        if not lock.locked and not lock.waiting and locks.get(key) is lock:
            del locks[key]
        return result
