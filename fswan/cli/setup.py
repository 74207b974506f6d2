"""``ipsec setup start|stop|restart|reload|status``: fswan as a system service.

FreeS/WAN's ``ipsec setup`` was the init script: it checked the configuration,
started pluto, waited for it (``ipsec auto --ready``) and brought the ``auto=``
conns up; ``stop`` took everything down again.  Here the daemon acts on
``auto=add|route|start`` itself, so ``start`` is: ``ipsec checkconfig``, twistd in
the background (pidfile, syslog or ``--logfile``), then wait for the daemon's
``READY=1`` -- the sd_notify message a ``Type=notify`` systemd unit waits for,
sent on a private ``$NOTIFY_SOCKET`` once the control socket answers and the
``auto=`` conns are acted on.  ``stop`` is ``whack --shutdown`` (SAs deleted,
routes and ``ipsec0`` removed) and waits for the pid to exit.

Exit statuses are an LSB init script's (:class:`Lsb`), so the command can sit
behind any service manager; ``prepare``, ``reload`` and ``install-unit`` are what
the shipped systemd unit (``etc/systemd/fswan.service``) runs.
"""

from __future__ import annotations

import argparse
import errno
import hashlib
import json
import os
import secrets as random_names
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path

from fswan import __version__
from fswan.cli.client import ControlUnavailable, send_request
from fswan.cli.ipsec import DEFAULT_CONFIG, CheckedFiles, check_files
from fswan.config.model import Auto, Config, Connection
from fswan.config.render import SECRET_FIELDS, connection_to_dict, setup_to_dict
from fswan.whackproto import CTL_SUFFIX, DEFAULT_CTLBASE, RC, Request, parse_line

#: what ``twistd`` is, run by this interpreter (no PATH lookup, no other Python)
RUN_TWISTD = "import sys; sys.argv[0] = 'twistd'; from twisted.scripts.twistd import run; run()"
#: the conns the daemon loads at start (and so the ones reload looks after)
LOADED = (Auto.ADD, Auto.ROUTE, Auto.START, Auto.MANUAL)
#: the unit as shipped: its tool paths are a pip install's on Debian
UNIT_TEMPLATE = Path(__file__).resolve().parents[2] / "etc" / "systemd" / "fswan.service"
UNIT_BINDIR = "/usr/local/bin/"
DEFAULT_UNITDIR = "/etc/systemd/system"
PREFIX = "ipsec_setup:"

USAGE = f"""\
Usage: ipsec setup [OPTIONS] start | stop | restart | reload | force-reload | status
       ipsec setup [OPTIONS] prepare
       ipsec setup install-unit [--unitdir DIR] [--stdout] [--config F]

  start     ipsec checkconfig, then the daemon in the background; waits until it is
            ready (control socket answering, auto=route|start conns acted on)
  stop      orderly shutdown (whack --shutdown: SAs deleted, routes and ipsec0 removed),
            waiting for the daemon to exit
  restart   stop, then start
  reload    ipsec.secrets reread; conns added, changed or removed in ipsec.conf since
            start are added, replaced or deleted (auto= applied again); force-reload: same
  status    running or not, with the conn and SA counts
  prepare   checkconfig and remember the conns (what the systemd unit runs before start)
  install-unit  write the systemd unit for this installation

Options:
  --config F     ipsec.conf (default {DEFAULT_CONFIG})
  --secrets F    ipsec.secrets (default: beside the config)
  --ctlbase P    control socket P.ctl (default {DEFAULT_CTLBASE})
  --pidfile F    the daemon's pid file (default CTLBASE.pid)
  --logfile F    log to F instead of syslog
  --timeout S    seconds to wait for start or stop (default 30)
  --nodataplane, --ikeport N, --nattport N   passed to the daemon (twistd fswan)

Exit status (LSB): 0 success (also: start when running, stop when stopped),
1 generic error, 2 bad usage, 6 configuration errors, 7 not running (reload);
status: 0 running, 1 dead with a pid file left, 3 not running, 4 not answering.
"""


class Lsb(IntEnum):
    """LSB init script exit statuses (``status`` has its own meanings for 1, 3, 4)."""

    OK = 0
    GENERIC = 1
    BAD_ARGS = 2
    NOT_CONFIGURED = 6
    NOT_RUNNING = 7
    STATUS_DEAD_PIDFILE = 1
    STATUS_NOT_RUNNING = 3
    STATUS_UNKNOWN = 4


class SetupUsage(Exception):
    """Bad command line; the message is printed after ``ipsec setup:``."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse would exit 2 with its own text
        raise SetupUsage(message)


@dataclass(frozen=True)
class Paths:
    """Where this daemon's files are: tests point them all at a temporary directory."""

    config: str = DEFAULT_CONFIG
    secrets: str | None = None
    ctlbase: str = DEFAULT_CTLBASE
    pidfile: str | None = None

    @property
    def ctl(self) -> str:
        return self.ctlbase + CTL_SUFFIX

    @property
    def pid_path(self) -> str:
        """pluto kept its pid beside the socket (``CTLBASE.pid``); so does fswan."""
        return self.pidfile or self.ctlbase + ".pid"

    @property
    def snapshot(self) -> str:
        """What ``reload`` compares ipsec.conf with: each loaded conn's fingerprint."""
        return self.ctlbase + ".conns.json"


# --------------------------------------------------------------------------- the daemon's state


def read_pid(path: str) -> int | None:
    """The pid in a pid file, or None (no file, or not a number)."""
    try:
        with open(path, encoding="ascii") as handle:
            return int(handle.read().strip() or "x")
    except (OSError, ValueError):
        return None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def ask(ctlbase: str, request: Request, timeout: float = 10.0) -> tuple[int, list[str]]:
    """One request to the daemon: (whack's exit status, the reply lines).
    Raises ControlUnavailable when nothing answers."""
    lines: list[str] = []
    status = send_request(ctlbase, request, lambda rc, text: lines.append(text), timeout=timeout)
    return status, lines


def status_document(ctlbase: str, timeout: float = 10.0) -> dict | None:
    """``whack --status --json`` as a dict, or None when the daemon does not answer."""
    try:
        _, lines = ask(ctlbase, Request("status", None, {"json": True}), timeout)
    except (ControlUnavailable, OSError):
        return None
    for line in lines:
        rc, body = parse_line(line)
        if rc == RC.COMMENT and body.startswith("{"):
            try:
                document = json.loads(body)
            except ValueError:
                return None
            return document if isinstance(document, dict) else None
    return None


@dataclass(frozen=True)
class Counts:
    """What ``status`` says about a running daemon."""

    conns: int
    routed: int
    isakmp_sas: int
    ipsec_sas: int

    def text(self) -> str:
        return (f"{self.conns} conn{'s' if self.conns != 1 else ''} loaded ({self.routed} routed), "
                f"{self.isakmp_sas} ISAKMP SA{'s' if self.isakmp_sas != 1 else ''}, "
                f"{self.ipsec_sas} IPsec SA{'s' if self.ipsec_sas != 1 else ''}")


def counts(document: dict) -> Counts:
    """Conns and SAs in a ``--status --json`` document (Quick Mode states are IPsec SAs)."""
    conns = [c for c in document.get("connections", []) if isinstance(c, dict)]
    routed = sum(1 for c in conns if str(c.get("routing", "unrouted")) not in ("unrouted", ""))
    states = [s for s in document.get("states", []) if isinstance(s, dict)]
    ipsec = sum(1 for s in states if "QUICK" in str(s.get("state", "")))
    return Counts(len(conns), routed, len(states) - ipsec, ipsec)


# --------------------------------------------------------------------------- fingerprints for reload


def conn_fingerprint(conn: Connection) -> str:
    """A digest of everything that makes the conn what it is, and nothing of where it was
    written (a comment added above it changes line numbers, not the conn).  Manual keys
    count (a new key is a change) but only as part of a SHA-256, never as themselves."""
    document = connection_to_dict(conn)
    for where in ("location", "settings", "unsupported"):
        document.pop(where, None)
    document["unsupported"] = sorted(conn.unsupported)
    keys = [str(getattr(part, name, None)) for part in (conn, conn.left, conn.right)
            for name in sorted(SECRET_FIELDS)]
    text = json.dumps([document, keys], sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def setup_fingerprint(config: Config) -> str:
    document = setup_to_dict(config.setup)
    document.pop("settings", None)
    document.pop("unsupported", None)
    return hashlib.sha256(json.dumps(document, sort_keys=True, default=str).encode()).hexdigest()


def snapshot_of(config: Config) -> dict[str, object]:
    return {
        "setup": setup_fingerprint(config),
        "conns": {name: conn_fingerprint(conn) for name, conn in sorted(config.conns.items())
                  if conn.auto in LOADED},
    }


def write_snapshot(path: str, config: Config) -> None:
    """Record the loaded conns beside the socket (0600; written whole, then renamed)."""
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, mode=0o755, exist_ok=True)
    temporary = f"{path}.{os.getpid()}.tmp"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(snapshot_of(config), handle, sort_keys=True, indent=1)
        handle.write("\n")
    os.replace(temporary, path)


def read_snapshot(path: str) -> dict[str, object] | None:
    try:
        with open(path, encoding="utf-8") as handle:
            document = json.load(handle)
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) else None


@dataclass(frozen=True)
class ReloadPlan:
    """What ``reload`` does to the running daemon's conns, by name."""

    add: tuple[str, ...] = ()
    replace: tuple[str, ...] = ()
    delete: tuple[str, ...] = ()
    #: ``config setup`` differs from what the daemon started with: only a restart applies it
    setup_changed: bool = False


def plan_reload(config: Config, running: Iterable[str], before: dict[str, object] | None) -> ReloadPlan:
    """Compare ipsec.conf (``config``) with the conns the daemon has (``running``) and the
    fingerprints recorded when it started or last reloaded (``before``; None: unknown,
    so every running conn of the file is replaced).  A conn added by hand
    (``ipsec auto --add``) and absent from the file is left alone."""
    running_names = set(running)
    now = snapshot_of(config)
    new = now["conns"]
    assert isinstance(new, dict)
    old = before.get("conns") if before is not None else None
    old_conns = old if isinstance(old, dict) else None
    add = tuple(name for name in sorted(new) if name not in running_names)
    replace = tuple(name for name in sorted(new) if name in running_names
                    and (old_conns is None or old_conns.get(name) != new[name]))
    delete = tuple(name for name in sorted(old_conns or {})
                   if name not in new and name in running_names)
    setup_changed = before is not None and before.get("setup") != now["setup"]
    return ReloadPlan(add, replace, delete, setup_changed)


def auto_request(conn: Connection) -> Request | None:
    """What start-up does to a conn of this ``auto=`` (the daemon's ``start_auto``)."""
    if conn.auto is Auto.ROUTE:
        return Request("route", conn.name)
    if conn.auto is Auto.START:
        return Request("initiate", conn.name, {"asynchronous": True})
    if conn.auto is Auto.MANUAL:
        return Request("manual", conn.name, {"up": True})
    return None


# --------------------------------------------------------------------------- the verbs


def _say(text: str) -> None:
    sys.stdout.write(f"{PREFIX} {text}\n")
    sys.stdout.flush()


def _complain(text: str) -> None:
    sys.stderr.write(f"{PREFIX} {text}\n")
    sys.stderr.flush()


def _check(paths: Paths) -> CheckedFiles | None:
    """checkconfig's verdict: the files, or None after printing file:line errors."""
    checked = check_files(paths.config, paths.secrets)
    for note in checked.notes:
        _complain(note)
    if checked.errors or checked.config is None:
        for problem in checked.errors:
            sys.stderr.write(f"{problem}\n")
        _complain(f"{len(checked.errors)} error(s) in the configuration; "
                  "fix them (ipsec checkconfig) and try again")
        return None
    return checked


def prepare(paths: Paths) -> int:
    """Before the daemon starts: check the files and remember the conns for reload."""
    checked = _check(paths)
    if checked is None or checked.config is None:
        return Lsb.NOT_CONFIGURED
    try:
        write_snapshot(paths.snapshot, checked.config)
    except OSError as error:
        _complain(f"cannot write {paths.snapshot}: {error.strerror}")
        return Lsb.GENERIC
    return Lsb.OK


def _notify_socket() -> tuple[socket.socket, str]:
    """A private ``$NOTIFY_SOCKET`` (abstract, so nothing is left on disk)."""
    name = f"fswan-setup-{os.getpid()}-{random_names.token_hex(6)}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
    sock.bind("\0" + name)
    return sock, "@" + name


def wait_ready(sock: socket.socket, deadline: float,
               still_starting: Callable[[], bool]) -> dict[str, str] | None:
    """The first sd_notify message with ``READY=1`` (its fields), or None when the
    deadline passes or ``still_starting`` says the daemon went away."""
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        readable, _, _ = select.select([sock], [], [], min(remaining, 0.2))
        if not readable:
            if not still_starting():
                return None
            continue
        data = sock.recv(4096)
        fields = dict(line.partition("=")[::2] for line in data.decode("utf-8", "replace").splitlines()
                      if "=" in line)
        if fields.get("READY") == "1":
            return fields


def daemon_command(paths: Paths, logfile: str | None, extra: list[str]) -> list[str]:
    """``twistd fswan`` as a daemon: pid file, syslog (or ``logfile``), our paths."""
    argv = [sys.executable, "-c", RUN_TWISTD, f"--pidfile={paths.pid_path}", "--rundir=/"]
    argv += [f"--logfile={logfile}"] if logfile else ["--syslog", "--prefix=pluto"]
    argv += ["fswan", "--config", paths.config, "--ctlbase", paths.ctlbase]
    if paths.secrets:
        argv += ["--secrets", paths.secrets]
    return argv + extra


def _log_tail(logfile: str | None, lines: int = 15) -> None:
    if not logfile:
        _complain("see the system log (journalctl -t pluto, or /var/log/syslog)")
        return
    try:
        with open(logfile, encoding="utf-8", errors="replace") as handle:
            tail = handle.readlines()[-lines:]
    except OSError:
        return
    _complain(f"last lines of {logfile}:")
    for line in tail:
        sys.stderr.write("  " + line)


def start(paths: Paths, logfile: str | None, extra: list[str], timeout: float) -> int:
    _say(f"Starting fswan IPsec {__version__}...")
    document = status_document(paths.ctlbase, timeout=5)
    if document is not None:
        _say(f"already running (pid {read_pid(paths.pid_path) or '?'}): {counts(document).text()}")
        return Lsb.OK
    code = prepare(paths)
    if code != Lsb.OK:
        return code
    for path in (paths.pid_path, paths.ctl):
        directory = os.path.dirname(os.path.abspath(path))
        os.makedirs(directory, mode=0o755, exist_ok=True)
    if logfile:
        os.makedirs(os.path.dirname(os.path.abspath(logfile)), exist_ok=True)
    sock, address = _notify_socket()
    with sock:
        environment = dict(os.environ, NOTIFY_SOCKET=address)
        argv = daemon_command(paths, logfile, extra)
        try:
            launched = subprocess.run(argv, env=environment, capture_output=True, text=True,
                                      timeout=timeout, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            _complain(f"twistd did not detach within {timeout:g}s")
            return Lsb.GENERIC
        except OSError as error:
            _complain(f"cannot run twistd: {error.strerror}")
            return Lsb.GENERIC
        if launched.returncode != 0:
            for line in (launched.stderr + launched.stdout).splitlines():
                if line.strip():
                    sys.stderr.write(line + "\n")
            _complain(f"the daemon did not start (twistd exit status {launched.returncode})")
            return Lsb.NOT_CONFIGURED if "error(s) in the configuration" in launched.stderr else Lsb.GENERIC

        def still_starting() -> bool:
            pid = read_pid(paths.pid_path)
            return pid is None or pid_alive(pid)

        ready = wait_ready(sock, time.monotonic() + timeout, still_starting)
    pid = read_pid(paths.pid_path)
    if ready is None:
        if pid is not None and pid_alive(pid):
            _complain(f"the daemon (pid {pid}) is running but did not say it was ready "
                      f"within {timeout:g}s; ipsec setup status tells more")
        else:
            _complain("the daemon exited during start-up")
        _log_tail(logfile)
        return Lsb.GENERIC
    document = status_document(paths.ctlbase, timeout=10)
    if document is None:
        _complain(f"the daemon said it was ready but {paths.ctl} does not answer")
        return Lsb.GENERIC
    _say(f"started (pid {ready.get('MAINPID') or pid or '?'}): {counts(document).text()}")
    return Lsb.OK


def _wait_exit(pid: int | None, ctl: str, deadline: float) -> bool:
    """Until the pid is gone (or, without a pid, the control socket)."""
    while time.monotonic() < deadline:
        if pid is not None and not pid_alive(pid):
            return True
        if pid is None and not os.path.exists(ctl):
            return True
        time.sleep(0.1)
    return False


def stop(paths: Paths, timeout: float) -> int:
    pid = read_pid(paths.pid_path)
    alive = pid is not None and pid_alive(pid)
    try:
        ask(paths.ctlbase, Request("shutdown"), timeout=10)
        answered = True
    except (ControlUnavailable, OSError):
        answered = False
    if not answered and not alive:
        _say("fswan is not running")
        if pid is not None:  # a daemon that died left its pid file
            _remove(paths.pid_path)
        return Lsb.OK
    _say("Stopping fswan IPsec...")
    if not answered and pid is not None:
        _complain(f"{paths.ctl} does not answer; sending SIGTERM to pid {pid}")
        _kill(pid, signal.SIGTERM)
    if not _wait_exit(pid if alive else None, paths.ctl, time.monotonic() + timeout):
        if pid is not None and answered:
            _complain(f"pid {pid} still running after {timeout:g}s; sending SIGTERM")
            _kill(pid, signal.SIGTERM)
            if _wait_exit(pid, paths.ctl, time.monotonic() + 5):
                _say("stopped")
                return Lsb.OK
        _complain(f"the daemon{f' (pid {pid})' if pid else ''} did not stop")
        return Lsb.GENERIC
    if pid is not None and read_pid(paths.pid_path) == pid:
        _remove(paths.pid_path)
    _say("stopped")
    return Lsb.OK


def _kill(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except OSError:
        pass


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def status(paths: Paths) -> int:
    pid = read_pid(paths.pid_path)
    document = status_document(paths.ctlbase, timeout=10)
    if document is not None:
        where = f"pid {pid}" if pid is not None and pid_alive(pid) else "no pid file"
        sys.stdout.write(f"fswan IPsec running ({where}), control socket {paths.ctl}\n"
                         f"{counts(document).text()}\n")
        return Lsb.OK
    if pid is not None and pid_alive(pid):
        sys.stdout.write(f"fswan IPsec running (pid {pid}) but {paths.ctl} does not answer\n")
        return Lsb.STATUS_UNKNOWN
    if pid is not None:
        sys.stdout.write(f"fswan IPsec stopped, but {paths.pid_path} names pid {pid} (dead)\n")
        return Lsb.STATUS_DEAD_PIDFILE
    sys.stdout.write("fswan IPsec stopped\n")
    return Lsb.STATUS_NOT_RUNNING


def reload(paths: Paths) -> int:
    """Secrets reread; changed conns replaced, new ones added, removed ones deleted."""
    checked = _check(paths)
    if checked is None or checked.config is None:
        return Lsb.NOT_CONFIGURED
    config = checked.config
    document = status_document(paths.ctlbase)
    if document is None:
        _complain("fswan is not running: nothing to reload")
        return Lsb.NOT_RUNNING
    running = [str(c.get("name")) for c in document.get("connections", []) if isinstance(c, dict)]
    plan = plan_reload(config, running, read_snapshot(paths.snapshot))
    config_path = os.path.abspath(paths.config)
    requests: list[tuple[str, Request]] = [
        ("secrets", Request("rereadsecrets", None, {"secrets": os.path.abspath(paths.secrets)}
                            if paths.secrets else {}))]
    for name in plan.delete:
        requests.append((f'"{name}" removed from the config', Request("delete", name)))
    for verb, names in (("add", plan.add), ("replace", plan.replace)):
        for name in names:
            what = "new" if verb == "add" else "changed"
            requests.append((f'"{name}" {what}', Request(verb, name, {"config": config_path})))
            follow = auto_request(config.conns[name])
            if follow is not None:
                requests.append((f'"{name}" auto={config.conns[name].auto.value}', follow))
    worst = 0
    for why, request in requests:
        try:
            code, lines = ask(paths.ctlbase, request, timeout=60)
        except (ControlUnavailable, OSError) as error:
            _complain(f"lost the daemon during reload: {error}")
            return Lsb.GENERIC
        verdict = "ok" if code == 0 else f"failed (rc {code})"
        _say(f"{why}: {request.command} {verdict}")
        if code != 0:
            for line in lines:
                sys.stderr.write(f"  {line}\n")
            worst = code
    if not (plan.add or plan.replace or plan.delete):
        _say("no conn changed")
    if plan.setup_changed:
        _complain("config setup changed: ipsec setup restart applies it")
    try:
        write_snapshot(paths.snapshot, config)
    except OSError as error:
        _complain(f"cannot write {paths.snapshot}: {error.strerror}")
    return Lsb.OK if worst == 0 else Lsb.GENERIC


# --------------------------------------------------------------------------- the systemd unit


def tool_dir() -> str:
    """Where this installation's ``twistd`` and ``ipsec`` are."""
    beside = os.path.dirname(sys.executable)
    if os.access(os.path.join(beside, "twistd"), os.X_OK) and \
            os.access(os.path.join(beside, "ipsec"), os.X_OK):
        return beside
    found = shutil.which("ipsec")
    return os.path.dirname(os.path.realpath(found)) if found else beside


def render_unit(template: str, bindir: str, config: str = DEFAULT_CONFIG) -> str:
    """The shipped unit with this installation's tool directory and ipsec.conf."""
    text = template.replace(UNIT_BINDIR, bindir.rstrip("/") + "/")
    return text.replace(f"--config {DEFAULT_CONFIG}", f"--config {config}")


def install_unit(argv: list[str]) -> int:
    parser = _Parser(prog="ipsec setup install-unit", add_help=False)
    parser.add_argument("--unitdir", default=DEFAULT_UNITDIR)
    parser.add_argument("--config", default=DEFAULT_CONFIG)
    parser.add_argument("--stdout", action="store_true")
    options = parser.parse_args(argv)
    try:
        template = UNIT_TEMPLATE.read_text(encoding="utf-8")
    except OSError:
        _complain(f"cannot read {UNIT_TEMPLATE}: install-unit needs fswan's source tree "
                  "(pip install -e); copy etc/systemd/fswan.service by hand otherwise")
        return Lsb.GENERIC
    text = render_unit(template, tool_dir(), os.path.abspath(options.config))
    if options.stdout:
        sys.stdout.write(text)
        return Lsb.OK
    target = os.path.join(options.unitdir, "fswan.service")
    try:
        os.makedirs(options.unitdir, exist_ok=True)
        with open(target, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(target, 0o644)
    except OSError as error:
        _complain(f"cannot write {target}: {error.strerror}")
        return Lsb.GENERIC
    _say(f"wrote {target}")
    _say("now: systemctl daemon-reload && systemctl enable --now fswan")
    return Lsb.OK


# --------------------------------------------------------------------------- command line

VERBS = ("start", "stop", "restart", "reload", "force-reload", "status", "prepare")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ipsec setup", add_help=False)
    parser.add_argument("--config", default=DEFAULT_CONFIG)
    parser.add_argument("--secrets")
    parser.add_argument("--ctlbase", default=DEFAULT_CTLBASE)
    parser.add_argument("--pidfile")
    parser.add_argument("--logfile")
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("--nodataplane", action="store_true")
    parser.add_argument("--ikeport", type=int)
    parser.add_argument("--nattport", type=int)
    parser.add_argument("verb", nargs="?")
    return parser


def main(argv: list[str]) -> int:
    if any(word in ("-h", "--help") for word in argv):
        sys.stdout.write(USAGE)
        return Lsb.OK
    if argv[:1] == ["install-unit"]:
        try:
            return install_unit(argv[1:])
        except SetupUsage as error:
            sys.stderr.write(f"ipsec setup install-unit: {error}\n")
            return Lsb.BAD_ARGS
    try:
        options = build_parser().parse_args(argv)
        if options.verb not in VERBS:
            raise SetupUsage(f"expected one of {', '.join(VERBS)}, install-unit"
                             + (f" (not {options.verb!r})" if options.verb else ""))
        if options.timeout <= 0:
            raise SetupUsage("--timeout must be positive")
        for port in (options.ikeport, options.nattport):
            if port is not None and not 1 <= port <= 65535:
                raise SetupUsage(f"port {port} out of range 1..65535")
    except SetupUsage as error:
        sys.stderr.write(f"ipsec setup: {error}\n")
        return Lsb.BAD_ARGS
    # absolute: the daemon runs in / (twistd --rundir=/)
    paths = Paths(os.path.abspath(options.config),
                  os.path.abspath(options.secrets) if options.secrets else None,
                  os.path.abspath(options.ctlbase),
                  os.path.abspath(options.pidfile) if options.pidfile else None)
    extra: list[str] = []
    if options.nodataplane:
        extra.append("--nodataplane")
    for name in ("ikeport", "nattport"):
        if getattr(options, name) is not None:
            extra += [f"--{name}", str(getattr(options, name))]
    logfile = os.path.abspath(options.logfile) if options.logfile else None
    try:
        if options.verb == "start":
            return start(paths, logfile, extra, options.timeout)
        if options.verb == "stop":
            return stop(paths, options.timeout)
        if options.verb == "restart":
            code = stop(paths, options.timeout)
            return code if code != Lsb.OK else start(paths, logfile, extra, options.timeout)
        if options.verb in ("reload", "force-reload"):
            return reload(paths)
        if options.verb == "prepare":
            return prepare(paths)
        return status(paths)
    except OSError as error:
        _complain(f"{error.filename or ''}{': ' if error.filename else ''}"
                  f"{error.strerror or errno.errorcode.get(error.errno or 0, str(error))}")
        return Lsb.GENERIC
