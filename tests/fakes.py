"""Test doubles shared by the daemon tests: an in-memory include loader and a log sink."""

from __future__ import annotations

import errno
import fnmatch
import os
import posixpath

from twisted.logger import Logger


class MemoryLoader:
    """IncludeLoader/SecretsLoader over a dict of path -> text, so parsers run without files.

    Globs match like glob(3): a wildcard stays within one path component.
    Paths listed in ``unreadable`` are found by globs but cannot be read.
    """

    def __init__(self, files: dict[str, str] | None = None, unreadable: tuple[str, ...] = ()) -> None:
        self.files = dict(files or {})
        self.unreadable = tuple(unreadable)
        #: every pattern asked for, in order
        self.globbed: list[str] = []

    def glob(self, pattern: str) -> list[str]:
        self.globbed.append(pattern)
        parts = posixpath.normpath(pattern).split("/")

        def matches(path: str) -> bool:
            names = path.split("/")
            return len(names) == len(parts) and all(map(fnmatch.fnmatchcase, names, parts))

        return sorted(p for p in {*self.files, *self.unreadable} if matches(p))

    def read(self, path: str) -> str:
        path = posixpath.normpath(path)
        if path in self.unreadable:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), path)
        try:
            return self.files[path]
        except KeyError:
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path) from None


class LogSink:
    """Collects formatted twisted.logger events for assertions."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.logger = Logger(namespace="pluto", observer=self)

    def __call__(self, event: dict) -> None:
        from twisted.logger import formatEvent

        self.lines.append(formatEvent(event))
