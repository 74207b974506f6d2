"""Plugins by name: what ``twisted.plugin`` finds in ``fswan.plugins`` for one interface.

Updown plugins (``IUpdown``) and XAUTH verifiers (``IXauthVerifier``) are found the same
way: every object in the drop-in package that provides the interface and has a ``name``;
the first one found under a name wins, so the built-ins, listed first, cannot be shadowed.
"""

from __future__ import annotations

from typing import Any


def named_plugins(interface: Any) -> dict[str, Any]:
    from twisted.plugin import getPlugins

    import fswan.plugins

    found: dict[str, Any] = {}
    for plugin in getPlugins(interface, fswan.plugins):
        name = getattr(plugin, "name", None)
        if isinstance(name, str) and name:
            found.setdefault(name, plugin)
    return found
