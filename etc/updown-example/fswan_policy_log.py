"""An example fswan updown plugin: log every verb, policy-route the peer client.

Copy this file into a ``fswan/plugins`` directory the daemon searches (see
docs/updown.md, "Installing a plugin"), then select it for a conn together
with the routing it should add to::

    conn net
        leftupdown=routing,policy-log
        x-policy-log-table=200          # optional: the table to look up
        x-policy-log-priority=5000      # optional: the rule's priority

On ``route`` it adds the equivalent of
``ip rule add to PEER_CLIENT lookup TABLE priority PRIO`` (TABLE defaults to
the conn's routing table: main, or ``x-fswan-table=``), so traffic for the
peer client finds the tunnel's routes even when they live in a table of
their own; ``unroute`` deletes that rule again.  Like the route, the rule is
about the peer client: the runner calls ``route`` for the first conn to a
client and ``unroute`` after the last.  Every verb is logged through pluto's
log with the conn's prefix.

The module-level ``policy_log`` instance is what ``twisted.plugin`` finds.
"""

from __future__ import annotations

import errno
import socket

from twisted.plugin import IPlugin
from zope.interface import implementer

from fswan.updown.interface import IUpdown, UpdownFailure, UpdownPlugin


@implementer(IPlugin, IUpdown)
class PolicyLogPlugin(UpdownPlugin):
    """Logs each verb; keeps one ``ip rule`` per conn while it is routed."""

    name = "policy-log"

    def _announce(self, ctx) -> None:
        ctx.log(f"policy-log: {ctx.verb} {ctx.my_client} <-> {ctx.peer_client} via {ctx.interface}")

    def _rule(self, ctx) -> dict:
        keys = {k.lower(): v for k, v in ctx.user_keys.items()}
        return {
            "family": socket.AF_INET6 if ctx.peer_client.version == 6 else socket.AF_INET,
            "dst": str(ctx.peer_client.network_address),
            "dst_len": ctx.peer_client.prefixlen,
            "table": int(keys.get("x-policy-log-table", ctx.route_table)),
            "priority": int(keys.get("x-policy-log-priority", 5000)),
        }

    def _describe(self, op: str, rule: dict) -> str:
        return (f"ip rule {op} to {rule['dst']}/{rule['dst_len']} "
                f"lookup {rule['table']} priority {rule['priority']}")

    def _change(self, op: str, ctx) -> None:
        from pyroute2 import IPRoute

        rule = self._rule(ctx)
        with IPRoute() as ipr:
            try:
                ipr.rule(op, **rule)
            except Exception as error:
                code = getattr(error, "code", None)
                if (op == "add" and code == errno.EEXIST) or (op == "del" and code == errno.ENOENT):
                    return  # already as we want it
                raise UpdownFailure(self._describe(op, rule), str(error)) from None

    def prepare(self, ctx) -> None:
        self._announce(ctx)

    def route(self, ctx) -> None:
        self._announce(ctx)
        self._change("add", ctx)

    def unroute(self, ctx) -> None:
        self._announce(ctx)
        self._change("del", ctx)

    def up(self, ctx) -> None:
        self._announce(ctx)

    def down(self, ctx) -> None:
        self._announce(ctx)


policy_log = PolicyLogPlugin()
