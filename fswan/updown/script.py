"""The legacy adapter: run a FreeS/WAN ``_updown``-style script for every verb.

``leftupdown=/etc/ipsec.d/my-updown arg`` keeps working unchanged: the
command line runs through ``/bin/sh -c`` as pluto's ``popen`` did, with the
PLUTO_VERSION 1.1 variables (plus fswan's additions, see
``fswan.updown.context``) and ``PATH`` as its whole environment.  Its stderr
joins its stdout (pluto's ``2>&1``), and each line it prints is logged with the conn's prefix
(``"net" #2: <line>``); a non-zero exit fails the verb with pluto's words
(``route-client command exited with status 7``).

Unlike pluto, fswan does not stop while the script runs: it is spawned
through the reactor, and the runner keeps one conn's verbs in order.  The
script still must not ask pluto for anything (``ipsec auto ...``) that waits
for the same conn's verbs.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Mapping
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.protocol import ProcessProtocol
from twisted.python.failure import Failure
from zope.interface import implementer

from fswan.updown.context import V11_NAMES, UpdownContext
from fswan.updown.interface import IUpdown, UpdownFailure

#: pluto's command buffer: the assignments plus the command had to fit in it
MAX_COMMAND = 1536
SHELL = "/bin/sh"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#: pluto's popen line began with ``2>&1``: one stream, lines in the order written
MERGE_STDERR = "exec 2>&1\n"
#: longest line logged as one (longer output is split)
MAX_LINE = 4096
#: what FreeS/WAN's default script meant by an exit status
EXIT_HINTS = {7: "incorrect or missing nexthop"}


class ScriptFailure(UpdownFailure):
    """The script failed; logged as pluto did: ``<verb> command <detail>``."""

    def __init__(self, detail: str) -> None:
        super().__init__("command", detail)
        self.detail = detail

    def describe(self, verb: str) -> str:
        return f"{verb} command {self.detail}"


def _quoted(value: str) -> str:
    return "'" + value.replace("'", "'\\''") + "'"


def pluto_command_line(env: Mapping[str, str], command: str) -> str:
    """The line pluto would have handed to ``popen`` (used for its 1536-byte limit)."""
    assignments = " ".join(f"{name}={_quoted(env.get(name, ''))}" for name in V11_NAMES)
    return f"2>&1 {assignments} {command}"


def script_environment(ctx: UpdownContext, path: str | None = None) -> dict[str, str]:
    """What the script sees: the PLUTO_* variables and PATH, nothing else."""
    env = ctx.environment()
    env["PATH"] = path or os.environ.get("PATH") or DEFAULT_PATH
    return env


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (from /proc), parents before their children."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def kill_tree(pid: int) -> None:
    """SIGKILL a timed-out script and whatever it started (a shell's ``sleep``...)."""
    for victim in [pid, *_descendants(pid)]:
        try:
            os.kill(victim, signal.SIGKILL)
        except OSError:  # already gone
            pass


class _ScriptProtocol(ProcessProtocol):
    """Log output line by line; fire ``done`` with None or a ScriptFailure."""

    def __init__(self, log: Callable[[str], None], done: Deferred) -> None:
        self.log = log
        self.done = done
        self.partial = {1: b"", 2: b""}

    def connectionMade(self) -> None:
        assert self.transport is not None  # the process transport comes before this call
        self.transport.closeStdin()  # a daemon's script reads nothing (pluto's had /dev/null)

    def childDataReceived(self, fd: int, data: bytes) -> None:
        buffered = self.partial.get(fd, b"") + data
        *lines, rest = buffered.split(b"\n")
        while len(rest) > MAX_LINE:  # a runaway line is logged in pieces, never hoarded
            lines.append(rest[:MAX_LINE])
            rest = rest[MAX_LINE:]
        self.partial[fd] = rest
        for line in lines:
            self._emit(line)

    def _emit(self, line: bytes) -> None:
        self.log(line.rstrip(b"\r").decode("utf-8", "replace"))

    def processEnded(self, reason: Failure) -> None:
        for fd in sorted(self.partial):
            if self.partial[fd]:
                self._emit(self.partial[fd])
                self.partial[fd] = b""
        if self.done.called:
            return  # cancelled (timed out) before it ended
        code = getattr(reason.value, "exitCode", None)
        signum = getattr(reason.value, "signal", None)
        if code == 0:
            self.done.callback(None)
        elif code is not None:
            detail = f"exited with status {code}"
            if code in EXIT_HINTS:
                detail += f" ({EXIT_HINTS[code]})"
            self.done.errback(ScriptFailure(detail))
        else:
            self.done.errback(ScriptFailure(f"exited with signal {signum}"))


@implementer(IUpdown)
class ScriptUpdown:
    """An ``IUpdown`` running one command line for every verb (not a discoverable plugin)."""

    name = "script"

    def __init__(self, command: str, reactor: Any = None, path: str | None = None) -> None:
        self.command = command
        self._reactor = reactor
        self._path = path

    def __repr__(self) -> str:
        return f"ScriptUpdown({self.command!r})"

    def prepare(self, ctx: UpdownContext) -> Deferred:
        return self.run(ctx)

    def route(self, ctx: UpdownContext) -> Deferred:
        return self.run(ctx)

    def unroute(self, ctx: UpdownContext) -> Deferred:
        return self.run(ctx)

    def up(self, ctx: UpdownContext) -> Deferred:
        return self.run(ctx)

    def down(self, ctx: UpdownContext) -> Deferred:
        return self.run(ctx)

    def run(self, ctx: UpdownContext) -> Deferred:
        """Spawn ``/bin/sh -c COMMAND`` for ``ctx.verb``; fires when it exits.

        Cancelling the Deferred (the runner's timeout) kills the shell.
        """
        env = script_environment(ctx, self._path)
        if len(pluto_command_line(env, self.command)) > MAX_COMMAND:
            raise ScriptFailure("too long!")
        reactor = self._reactor
        if reactor is None:
            from twisted.internet import reactor
        process: list[Any] = []

        def kill(_: Deferred) -> None:
            pid = getattr(process[0], "pid", None) if process else None
            if pid is not None:
                kill_tree(pid)

        done: Deferred = Deferred(canceller=kill)
        protocol = _ScriptProtocol(ctx.log, done)
        process.append(
            reactor.spawnProcess(protocol, SHELL, [SHELL, "-c", MERGE_STDERR + self.command],
                                 env=env, path="/")
        )
        return done
