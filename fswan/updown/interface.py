"""The updown seam: what a routing, firewall or user plugin must provide.

FreeS/WAN ran one shell script (``_updown``) for every routing and firewall
change.  fswan keeps the same five verbs but calls Python objects providing
:class:`IUpdown`, found with ``twisted.plugin``; the old script interface lives
on as one more provider (``fswan.updown.script``).  A plugin method gets an
:class:`~fswan.updown.context.UpdownContext` and may return a Deferred; raising
(or a failing Deferred) means the action failed, and :class:`UpdownFailure`
lets it say what it tried and why in pluto's words.
"""

from __future__ import annotations

from typing import Any

from zope.interface import Attribute, Interface

#: the five verb families, in the order a tunnel's life uses them
VERB_FAMILIES = ("prepare", "route", "unroute", "up", "down")


class IUpdown(Interface):
    """One updown provider: routing, firewall, the legacy script adapter, a user plugin.

    Every method takes the verb's :class:`~fswan.updown.context.UpdownContext`
    and returns None or a Deferred.  The runner calls one conn's verbs strictly
    one after another, so a plugin never sees two verbs of the same conn at once
    (verbs of different conns may overlap).
    """

    name = Attribute("The plugin name used in leftupdown= (e.g. 'routing').")

    def prepare(ctx: Any) -> Any:
        """Before a conn's first route: remove stale state left for the peer client."""

    def route(ctx: Any) -> Any:
        """Make traffic for the peer client reach the IPsec device."""

    def unroute(ctx: Any) -> Any:
        """Undo ``route``: the last conn routing that peer client went away."""

    def up(ctx: Any) -> Any:
        """A tunnel's eroute was added (not on rekey): open the firewall, announce it."""

    def down(ctx: Any) -> Any:
        """The tunnel's eroute was deleted: undo ``up``."""


class UpdownFailure(Exception):
    """An updown action failed; ``attempted`` names the action, ``reason`` the cause.

    The runner logs it as ``<verb> failed: <attempted>: <reason>``, e.g.
    ``route-client failed: ip route replace 203.0.113.0/25 via 192.0.2.2 dev
    ipsec0: Network is unreachable``.
    """

    def __init__(self, attempted: str, reason: str) -> None:
        super().__init__(f"{attempted}: {reason}")
        self.attempted = attempted
        self.reason = reason

    def describe(self, verb: str) -> str:
        """The log text for this failure of ``verb`` (e.g. ``up-client``)."""
        return f"{verb} failed: {self.attempted}: {self.reason}"


class UpdownPlugin:
    """A convenience base: every verb does nothing; override the ones you need.

    Subclasses still declare ``@implementer(IPlugin, IUpdown)`` and set ``name``.
    """

    name = "noop"

    def prepare(self, ctx: Any) -> Any:
        return None

    def route(self, ctx: Any) -> Any:
        return None

    def unroute(self, ctx: Any) -> Any:
        return None

    def up(self, ctx: Any) -> Any:
        return None

    def down(self, ctx: Any) -> Any:
        return None
