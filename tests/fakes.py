"""Test doubles shared by the daemon tests: an in-memory include loader and a log sink."""

from __future__ import annotations

import fnmatch
import posixpath

from twisted.logger import Logger


class MemoryLoader:
    """IncludeLoader over a dict of path -> text, so parsers run without files."""

    def __init__(self, files: dict[str, str]) -> None:
        self.files = dict(files)

    def glob(self, pattern: str) -> list[str]:
        return sorted(p for p in self.files if fnmatch.fnmatch(p, posixpath.normpath(pattern)))

    def read(self, path: str) -> str:
        try:
            return self.files[posixpath.normpath(path)]
        except KeyError:
            raise FileNotFoundError(2, "No such file or directory", path) from None


class LogSink:
    """Collects formatted twisted.logger events for assertions."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.logger = Logger(namespace="pluto", observer=self)

    def __call__(self, event: dict) -> None:
        from twisted.logger import formatEvent

        self.lines.append(formatEvent(event))
