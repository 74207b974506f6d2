"""pluto-style log lines, to the system log and to the whack that asked.

pluto wrote each message to syslog and, while it served a whack command, also
to that whack with an ``rc`` code.  ``PlutoLog`` does the same through
``twisted.logger`` (so ``twistd --syslog`` and ``--logfile`` work) and a
``Reply`` for the current control connection.  Lines about one connection
carry pluto's prefix: ``"net" #3: text`` or ``"net": text``.

Debug lines (pluto's ``| text``) go to the log only for the categories that
are on (``plutodebug=``, ``whack --debug-*``); a call site asks
``log.debugging(category)`` first, so nothing is formatted while they are off.
No debug line carries a secret: keys, PSKs and DH values are never handed here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol, runtime_checkable

from twisted.logger import Logger

from fswan.whackproto import DEBUG_CATEGORIES, RC


class Reply(Protocol):
    """Where a whack command's reply lines go (a control connection)."""

    def line(self, rc: int, text: str) -> None: ...


@runtime_checkable
class BatchReply(Reply, Protocol):
    """A reply that also takes many lines of one code at once (the control connection:
    one write for a whole status instead of one per line)."""

    def line_batch(self, rc: int, texts: list[str]) -> None: ...


def reply_lines(reply: Reply, rc: int, texts: list[str]) -> None:
    """``texts`` as lines of code ``rc``: in one go where ``reply`` can take them so (the
    status of 10,000 tunnels is 90,000 lines), else one by one."""
    if isinstance(reply, BatchReply):
        reply.line_batch(rc, texts)
        return
    for text in texts:
        reply.line(rc, text)


def prefixed(text: str, conn: str | None = None, serial: int | None = None) -> str:
    if conn is None:
        return f"#{serial}: {text}" if serial is not None else text
    if serial is not None:
        return f'"{conn}" #{serial}: {text}'
    return f'"{conn}": {text}'


#: other daemons' names for the same categories (Openswan/Libreswan ``plutodebug=`` lists)
DEBUG_ALIASES = {"nattraversal": "natt", "nat-t": "natt", "pfkey": "klips", "kernel": "klips",
                 "controlmore": "control", "oppoinfo": "oppo"}
#: names accepted and ignored: pluto's ``private`` logged secrets, which fswan never does
DEBUG_IGNORED = ("private",)


class DebugSpecError(ValueError):
    """A ``--debug-NAME`` fswan does not know (the message names the known ones)."""


def parse_debug(text: str) -> tuple[frozenset[str], list[str]]:
    """``plutodebug=`` / ``whack --debug`` words (``none``, ``all``, names, ``+``,
    ``,`` or blank separated) -> (categories, the names not understood)."""
    enabled: set[str] = set()
    unknown: list[str] = []
    for word in text.replace("+", " ").replace(",", " ").lower().split():
        name = DEBUG_ALIASES.get(word, word)
        if name == "none":
            enabled.clear()
        elif name == "all":
            enabled.update(DEBUG_CATEGORIES)
        elif name in DEBUG_CATEGORIES:
            enabled.add(name)
        elif name not in DEBUG_IGNORED:
            unknown.append(word)
    return frozenset(enabled), unknown


def debug_names(categories: Iterable[str]) -> str:
    """pluto's ``debug`` status word: ``none`` or ``raw+crypt+...`` in pluto's order."""
    chosen = set(categories)
    return "+".join(c for c in DEBUG_CATEGORIES if c in chosen) or "none"


#: sees every line (text without prefix, rc, conn, serial) as it is logged: the metrics'
#: updown failures
LineObserver = Callable[[str, int, "str | None", "int | None"], None]


class PlutoLog:
    """One place every daemon message goes through."""

    def __init__(self, logger: Logger | None = None, debug: Iterable[str] = (),
                 observer: LineObserver | None = None) -> None:
        self.logger = logger or Logger(namespace="pluto")
        #: the debug categories that are on; empty: no debug line is even formatted
        self.debug: frozenset[str] = frozenset(debug)
        self.observer = observer

    def set_debug(self, categories: Iterable[str]) -> None:
        """``plutodebug=`` at start, ``whack --debug-*`` at run time."""
        self.debug = frozenset(categories)

    def debugging(self, category: str) -> bool:
        return category in self.debug

    def debug_line(self, category: str, text: str, conn: str | None = None,
                   serial: int | None = None) -> None:
        """pluto's ``| text`` debug line, when ``category`` is on (to the log only)."""
        if category in self.debug:  # at info: twistd's log and syslog keep it
            self.logger.info("{line}", line="| " + prefixed(text, conn, serial))

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
        if self.observer is not None:
            self.observer(text, rc, conn, serial)
