"""fswan's plugin package: updown plugins are found here with ``twisted.plugin``.

Besides this directory, every ``fswan/plugins`` directory (without an
``__init__.py``) under another ``sys.path`` entry is searched, so a user can
drop a plugin module into e.g. ``/etc/fswan/python/fswan/plugins/`` and put
``/etc/fswan/python`` on the daemon's ``PYTHONPATH`` (see docs/updown.md).
"""

from twisted.plugin import pluginPackagePaths

__path__.extend(pluginPackagePaths(__name__))  # type: ignore[name-defined]  # noqa: F821
__all__: list[str] = []
