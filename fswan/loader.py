"""The real-filesystem side of the pure parsers' ``include`` callback.

``fswan.config`` never opens files; the daemon and the CLIs hand it this
loader, so tests can hand it an in-memory one instead.
"""

from __future__ import annotations

import glob as _glob
import os
import stat


class FileLoader:
    """Reads include files and expands include globs on the local filesystem."""

    def glob(self, pattern: str) -> list[str]:
        return sorted(_glob.glob(pattern))

    def read(self, path: str) -> str:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()

    def read_bytes(self, path: str) -> bytes:
        """A certificate or CRL file (DER is binary); at most 1 MiB + 1 is read, which
        ``pki.certs`` refuses as too big."""
        with open(path, "rb") as handle:
            return handle.read((1 << 20) + 1)


def file_mode(path: str) -> int | None:
    """The permission bits of ``path``, or None when it cannot be stat'ed."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return None
