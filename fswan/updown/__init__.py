"""Updown: what runs when a conn is routed, comes up, goes down (FreeS/WAN's ``_updown``).

Plugins provide :class:`~fswan.updown.interface.IUpdown` and are found with
``twisted.plugin.getPlugins(IUpdown, fswan.plugins)``: the built-ins
(``routing``, ``firewall``) and any a user drops into a ``fswan/plugins``
directory on ``sys.path``.  A conn picks its plugins with ``leftupdown=``
(see :func:`plugins_for` and docs/updown.md); the daemon runs them through
:class:`~fswan.updown.runner.UpdownRunner`.
"""

from __future__ import annotations

from collections.abc import Sequence

from fswan.discovery import named_plugins
from fswan.config.errors import ConfigError
from fswan.config.model import updown_is_command
from fswan.config.orient import OrientedConnection
from fswan.updown.context import SAFacts, UpdownContext, build_context, verb_for
from fswan.updown.interface import VERB_FAMILIES, IUpdown, UpdownFailure, UpdownPlugin

__all__ = [
    "VERB_FAMILIES",
    "IUpdown",
    "SAFacts",
    "UnknownPluginError",
    "UpdownContext",
    "UpdownFailure",
    "UpdownPlugin",
    "build_context",
    "find_plugin",
    "is_command",
    "known_plugins",
    "plugins_for",
    "verb_for",
]

#: the plugins a conn without leftupdown= gets
DEFAULT_PLUGINS = ("routing",)
#: FreeS/WAN's own default command: means "the default plugins" here
_LEGACY_DEFAULT = ("ipsec", "_updown")
_LEGACY_FIREWALL_ARGS = {"ipfwadm", "ipchains", "iptables"}


class UnknownPluginError(ConfigError):
    """``leftupdown=`` names a plugin nobody provides."""


def known_plugins() -> dict[str, IUpdown]:
    """Every discoverable plugin by name; the first found wins (built-ins come first)."""
    return named_plugins(IUpdown)


def find_plugin(name: str) -> IUpdown | None:
    """The plugin called ``name``, or None."""
    return known_plugins().get(name)


is_command = updown_is_command


def plugins_for(
    conn: OrientedConnection, default_names: Sequence[str] = DEFAULT_PLUGINS
) -> list[IUpdown]:
    """The plugins for a conn, from *our* end's ``updown=`` and ``firewall=``.

    * no ``leftupdown=``: ``default_names`` (routing), plus ``firewall`` if
      ``leftfirewall=yes``;
    * ``leftupdown=NAME`` or ``NAME,NAME2``: those plugins in that order, plus
      ``firewall`` if ``leftfirewall=yes``;
    * a command line (``/`` or a space): the legacy script adapter alone, as
      pluto ran only the script (``leftfirewall=`` is the script's business);
      ``ipsec _updown [ipfwadm]``, FreeS/WAN's own default, means the defaults.

    Raises UnknownPluginError (a ConfigError, with file:line when known).
    """
    from fswan.updown.script import ScriptUpdown

    side = "left" if conn.this_is_left else "right"
    end = conn.this.end
    text = (end.updown or "").strip()
    firewall = end.firewall
    words = text.split()
    if words[:2] == list(_LEGACY_DEFAULT) and set(words[2:]) <= _LEGACY_FIREWALL_ARGS:
        firewall = firewall or len(words) > 2
        text = ""
    if text and is_command(text):
        return [ScriptUpdown(text)]
    names = [n.strip() for n in text.split(",") if n.strip()] if text else list(default_names)
    if firewall and "firewall" not in names:
        names.append("firewall")
    known = known_plugins()
    chosen: list[IUpdown] = []
    for name in names:
        plugin = known.get(name)
        if plugin is None:
            raise _unknown(conn, side, text, name, known)
        if plugin not in chosen:
            chosen.append(plugin)
    return chosen


def _unknown(conn: OrientedConnection, side: str, text: str, name: str,
             known: dict[str, IUpdown]) -> UnknownPluginError:
    keyword = f"{side}updown"
    setting = conn.conn.settings.get(keyword)
    location = setting[1] if setting else None
    listing = ", ".join(sorted(known)) or "none installed"
    message = f"no updown plugin named {name!r} (known: {listing})"
    if text:
        message = f"{keyword}={text}: {message}"
    return UnknownPluginError(message, location)
