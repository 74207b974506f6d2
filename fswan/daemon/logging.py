"""pluto-style log lines, to the system log and to the whack that asked.

pluto wrote each message to syslog and, while it served a whack command, also
to that whack with an ``rc`` code.  ``PlutoLog`` does the same through
``twisted.logger`` (so ``twistd --syslog`` and ``--logfile`` work) and a
``Reply`` for the current control connection.  Lines about one connection
carry pluto's prefix: ``"net" #3: text`` or ``"net": text``.
"""

from __future__ import annotations

from typing import Protocol

from twisted.logger import Logger

from fswan.whackproto import RC


class Reply(Protocol):
    """Where a whack command's reply lines go (a control connection)."""

    def line(self, rc: int, text: str) -> None: ...


def prefixed(text: str, conn: str | None = None, serial: int | None = None) -> str:
    if conn is None:
        return f"#{serial}: {text}" if serial is not None else text
    if serial is not None:
        return f'"{conn}" #{serial}: {text}'
    return f'"{conn}": {text}'


class PlutoLog:
    """One place every daemon message goes through."""

    def __init__(self, logger: Logger | None = None) -> None:
        self.logger = logger or Logger(namespace="pluto")

    def log(
        self,
        text: str,
        rc: int = RC.LOG,
        conn: str | None = None,
        serial: int | None = None,
        reply: Reply | None = None,
    ) -> None:
        line = prefixed(text, conn, serial)
        if rc in (RC.COMMENT, RC.LOG, RC.SUCCESS) or RC.NEW_STATE <= rc < RC.NOTIFICATION:
            self.logger.info("{line}", line=line)
        else:
            self.logger.warn("{line}", line=line)
        if reply is not None:
            reply.line(rc, line)
