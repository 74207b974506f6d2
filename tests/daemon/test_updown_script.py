"""The legacy _updown adapter with real scripts through reactor.spawnProcess.

spawnProcess needs a running reactor, and the global reactor cannot be
restarted inside one pytest process.  ``run_in_reactor`` forks, installs a
fresh select reactor in the child, runs one scenario to completion (with a
timeout) and sends the result back pickled; assertions happen in the parent.
The lab test reuses it (with ``netns=``) to run plugins inside a namespace.
"""

from __future__ import annotations

import ctypes
import os
import pickle
import select
import signal
import sys
import textwrap
import time
import traceback
from ipaddress import ip_network
from pathlib import Path
from typing import Any, Callable

from zope.interface import implementer

from fswan.updown import IUpdown, SAFacts, plugins_for
from fswan.updown.runner import UpdownRunner
from fswan.updown.context import build_context
from fswan.updown.script import MAX_COMMAND, pluto_command_line
from fswan.whackproto import RC
from tests.unit.test_updown_context import RecordingLog, oriented

CLONE_NEWNET = 0x40000000


def _enter_netns(name: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            error = ctypes.get_errno()
            raise OSError(error, f"setns {name}: {os.strerror(error)}")
    finally:
        os.close(fd)


def _child(scenario: Callable[..., Any], args: tuple, timeout: float, netns: str | None) -> tuple:
    if netns is not None:
        _enter_netns(netns)
    sys.modules.pop("twisted.internet.reactor", None)
    from twisted.internet import selectreactor

    selectreactor.install()
    from twisted.internet import reactor
    from twisted.internet.defer import maybeDeferred
    from twisted.python.failure import Failure

    box: list = []

    def finish(result: Any) -> None:
        if not box:
            box.append(result)
            reactor.stop()

    def start() -> None:
        maybeDeferred(scenario, reactor, *args).addBoth(finish)

    reactor.callWhenRunning(start)
    reactor.callLater(timeout, finish, RuntimeError(f"scenario still running after {timeout}s"))
    reactor.run()
    result = box[0]
    if isinstance(result, Failure):
        return ("error", result.getTraceback())
    if isinstance(result, BaseException):
        return ("error", repr(result))
    return ("ok", result)


def run_in_reactor(scenario: Callable[..., Any], *args: Any, timeout: float = 20.0,
                   netns: str | None = None) -> Any:
    """``scenario(reactor, *args)`` (a value or Deferred) in a forked child; its result."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        try:
            os.close(read_fd)
            try:
                payload = pickle.dumps(_child(scenario, args, timeout, netns))
            except BaseException:
                payload = pickle.dumps(("error", traceback.format_exc()))
            with os.fdopen(write_fd, "wb") as out:
                out.write(payload)
        finally:
            os._exit(0)
    os.close(write_fd)
    chunks = []
    deadline = time.monotonic() + timeout + 10
    with os.fdopen(read_fd, "rb") as source:
        while True:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([source], [], [], max(left, 0))
            if not ready:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                raise AssertionError(f"scenario child hung for {timeout + 10}s")
            chunk = os.read(source.fileno(), 65536)
            if not chunk:
                break
            chunks.append(chunk)
    os.waitpid(pid, 0)
    if not chunks:
        raise AssertionError("scenario child died without an answer")
    kind, value = pickle.loads(b"".join(chunks))
    if kind == "error":
        raise AssertionError("scenario failed in the child:\n" + value)
    return value


# -- a FreeS/WAN-era script ---------------------------------------------------------

SCRIPT = textwrap.dedent("""\
    #!/bin/sh
    # an _updown in the FreeS/WAN 2.x style: switch on the verb, dump the environment
    case "$PLUTO_VERSION" in
    1.1) ;;
    *) echo "$0: unknown interface version \\`$PLUTO_VERSION'" >&2; exit 2 ;;
    esac
    case "$1" in
    --exit) status=$2 ;;
    *) status=0 ;;
    esac
    case "$PLUTO_VERB" in
    prepare-host|prepare-client) what="nothing stale" ;;
    route-host|route-client) what="route $PLUTO_PEER_CLIENT via $PLUTO_NEXT_HOP dev $PLUTO_INTERFACE" ;;
    unroute-host|unroute-client) what="unroute $PLUTO_PEER_CLIENT" ;;
    up-host|up-client) what="up $PLUTO_MY_CLIENT <-> $PLUTO_PEER_CLIENT" ;;
    down-host|down-client) what="down $PLUTO_MY_CLIENT <-> $PLUTO_PEER_CLIENT" ;;
    *) echo "$0: unknown verb \\`$PLUTO_VERB' or parameter \\`$1'" >&2; exit 1 ;;
    esac
    env > "$(dirname "$0")/env.$PLUTO_VERB"
    echo "$PLUTO_VERB: $what"
    echo "a warning on stderr" >&2
    printf 'no newline at the end'
    exit $status
""")

#: what /bin/sh itself adds to the environment it got
SHELL_VARIABLES = {"PWD", "SHLVL", "_", "OLDPWD"}


def write_script(directory: Path) -> Path:
    path = directory / "updown.sh"
    path.write_text(SCRIPT)
    path.chmod(0o755)
    return path


def read_env(path: Path) -> dict[str, str]:
    env = {}
    for line in path.read_text().splitlines():
        name, _, value = line.partition("=")
        if name not in SHELL_VARIABLES:
            env[name] = value
    return env


def conn_with(command: str, name: str = "net"):
    return oriented(
        {"subnet": ip_network("198.51.100.0/25"), "id": "@west", "updown": command},
        {"subnet": ip_network("203.0.113.0/25"), "id": "@east"},
        name=name,
    )


def _run_verbs(reactor: Any, conn: Any, verbs: list[tuple[str, Any]], extra: list | None = None):
    """Run verbs one after another through a real runner; (results, log lines)."""
    from twisted.internet.defer import Deferred

    log = RecordingLog()
    runner = UpdownRunner(log, clock=reactor, timeout=10)
    plugins = (extra or []) + plugins_for(conn)

    async def go():
        results = []
        for family, facts in verbs:
            results.append(await runner.run(family, conn, facts, plugins))
        return results, log.lines

    return Deferred.fromCoroutine(go())


def test_a_freeswan_script_gets_exactly_the_v11_environment(tmp_path):
    script = write_script(tmp_path)
    conn = conn_with(str(script))
    facts = SAFacts(serial=2)
    results, lines = run_in_reactor(_run_verbs, conn, [("route", None), ("up", facts)])
    assert results == [True, True]
    expected = {
        "PLUTO_VERSION": "1.1",
        "PLUTO_VERB": "route-client",
        "PLUTO_CONNECTION": "net",
        "PLUTO_NEXT_HOP": "192.0.2.2",
        "PLUTO_INTERFACE": "ipsec0",
        "PLUTO_ME": "192.0.2.1",
        "PLUTO_MY_ID": "@west",
        "PLUTO_MY_CLIENT": "198.51.100.0/25",
        "PLUTO_MY_CLIENT_NET": "198.51.100.0",
        "PLUTO_MY_CLIENT_MASK": "255.255.255.128",
        "PLUTO_MY_PORT": "0",
        "PLUTO_MY_PROTOCOL": "0",
        "PLUTO_PEER": "192.0.2.2",
        "PLUTO_PEER_ID": "@east",
        "PLUTO_PEER_CLIENT": "203.0.113.0/25",
        "PLUTO_PEER_CLIENT_NET": "203.0.113.0",
        "PLUTO_PEER_CLIENT_MASK": "255.255.255.128",
        "PLUTO_PEER_PORT": "0",
        "PLUTO_PEER_PROTOCOL": "0",
        "PLUTO_PEER_CA": "",
        "PATH": os.environ["PATH"],
    }
    assert read_env(tmp_path / "env.route-client") == expected
    assert read_env(tmp_path / "env.up-client") == expected | {"PLUTO_VERB": "up-client"}
    assert lines == [
        (RC.LOG, '"net": route-client: route 203.0.113.0/25 via 192.0.2.2 dev ipsec0'),
        (RC.LOG, '"net": a warning on stderr'),
        (RC.LOG, '"net": no newline at the end'),
        (RC.LOG, '"net" #2: up-client: up 198.51.100.0/25 <-> 203.0.113.0/25'),
        (RC.LOG, '"net" #2: a warning on stderr'),
        (RC.LOG, '"net" #2: no newline at the end'),
    ]


def test_additions_reach_the_script_when_known(tmp_path):
    script = write_script(tmp_path)
    conn = conn_with(str(script))
    up = SAFacts(serial=3, reqid=16389, udp_encapsulated=True, peer_port=4500)
    down = SAFacts(serial=3, in_bytes=840, out_bytes=1260)
    results, _ = run_in_reactor(_run_verbs, conn, [("up", up), ("down", down)])
    assert results == [True, True]
    up_env = read_env(tmp_path / "env.up-client")
    assert (up_env["PLUTO_REQID"], up_env["PLUTO_UDP_ENC"]) == ("16389", "4500")
    down_env = read_env(tmp_path / "env.down-client")
    assert (down_env["PLUTO_INBYTES"], down_env["PLUTO_OUTBYTES"]) == ("840", "1260")
    assert "PLUTO_REQID" not in down_env


def test_exit_status_7_is_reported_as_pluto_did(tmp_path):
    script = write_script(tmp_path)
    conn = conn_with(f"{script} --exit 7")
    results, lines = run_in_reactor(_run_verbs, conn, [("route", SAFacts(serial=2))])
    assert results == [False]
    assert lines[-1] == (
        RC.LOG_SERIOUS,
        '"net" #2: route-client command exited with status 7 (incorrect or missing nexthop)',
    )
    assert (RC.LOG, '"net" #2: route-client: route 203.0.113.0/25 via 192.0.2.2 dev ipsec0') in lines


def test_other_statuses_and_signals(tmp_path):
    conn = conn_with("exit 3")
    killed = conn_with("kill -TERM $$", name="killed")
    (first, lines), (second, killed_lines) = run_in_reactor(
        lambda reactor: _both(reactor, [(conn, [("up", None)]), (killed, [("up", None)])]))
    assert first == [False] and second == [False]
    assert lines == [(RC.LOG_SERIOUS, '"net": up-client command exited with status 3')]
    assert killed_lines == [(RC.LOG_SERIOUS, '"killed": up-client command exited with signal 15')]


def _both(reactor, jobs):
    from twisted.internet.defer import gatherResults

    return gatherResults([_run_verbs(reactor, conn, verbs) for conn, verbs in jobs])


def test_command_too_long_is_refused_without_running(tmp_path):
    marker = tmp_path / "ran"
    conn = conn_with(f"touch {marker} # " + "x" * MAX_COMMAND)
    results, lines = run_in_reactor(_run_verbs, conn, [("route", None)])
    assert results == [False]
    assert lines == [(RC.LOG_SERIOUS, '"net": route-client command too long!')]
    assert not marker.exists()


def test_command_of_exactly_the_limit_runs(tmp_path):
    """The limit is pluto's: the v1.1 assignments plus the command, 1536 bytes."""
    marker = tmp_path / "ran"
    conn = conn_with("true")
    base = len(pluto_command_line(build_context("route", conn).environment(), ""))
    command = f"touch {marker} #"
    command += "x" * (MAX_COMMAND - base - len(command))
    results, _ = run_in_reactor(_run_verbs, conn_with(command), [("route", None)])
    assert results == [True] and marker.exists()
    results, lines = run_in_reactor(_run_verbs, conn_with(command + "x"), [("route", None)])
    assert results == [False]
    assert lines == [(RC.LOG_SERIOUS, '"net": route-client command too long!')]


@implementer(IUpdown)
class Exploding:
    name = "exploding"

    def _boom(self, ctx):
        raise RuntimeError(f"exploded on {ctx.verb}")

    prepare = route = unroute = up = down = _boom


@implementer(IUpdown)
class FailingLater:
    name = "failing-later"

    def _later(self, ctx):
        from twisted.internet import reactor
        from twisted.internet.task import deferLater

        from fswan.updown import UpdownFailure

        def refuse():
            raise UpdownFailure("asking the moon", "it said no")

        return deferLater(reactor, 0.01, refuse)

    prepare = route = unroute = up = down = _later


def test_failing_plugins_are_logged_and_the_runner_keeps_serving(tmp_path):
    script = write_script(tmp_path)
    conn = conn_with(str(script))
    results, lines = run_in_reactor(_with_broken, conn)
    assert results == [False, False, True]
    serious = [text for rc, text in lines if rc == RC.LOG_SERIOUS]
    assert serious == [
        '"net" #2: up-client failed: asking the moon: it said no',
        '"net" #2: route-client failed: plugin exploding route(): RuntimeError: exploded on route-client',
    ]
    assert not (tmp_path / "env.up-client").exists()  # the failing plugin came first: no script
    assert (tmp_path / "env.route-client").exists()  # the script ran for the last verb


def _with_broken(reactor, conn):
    from twisted.internet.defer import Deferred

    log = RecordingLog()
    runner = UpdownRunner(log, clock=reactor, timeout=10)
    script = plugins_for(conn)

    async def go():
        return [
            await runner.run("up", conn, SAFacts(serial=2), [FailingLater()] + script),
            await runner.run("route", conn, SAFacts(serial=2), [Exploding()] + script),
            await runner.run("route", conn, None, script),
        ], log.lines

    return Deferred.fromCoroutine(go())


def test_one_conns_scripts_never_overlap(tmp_path):
    """Two verbs queued at once: the second script starts after the first exits."""
    journal = tmp_path / "journal"
    command = f"echo start $PLUTO_VERB >> {journal}; sleep 0.3; echo end $PLUTO_VERB >> {journal}"
    conn = conn_with(command)
    other = conn_with(command.replace("start", "other-start").replace("end", "other-end"), name="other")

    def scenario(reactor):
        from twisted.internet.defer import gatherResults

        runner = UpdownRunner(RecordingLog(), clock=reactor, timeout=10)
        return gatherResults([
            runner.run("up", conn, None, plugins_for(conn)),
            runner.run("down", conn, None, plugins_for(conn)),
            runner.run("up", other, None, plugins_for(other)),
        ])

    started = time.monotonic()
    assert run_in_reactor(scenario) == [True, True, True]
    mine = [line for line in journal.read_text().splitlines() if "other" not in line]
    assert mine == ["start up-client", "end up-client", "start down-client", "end down-client"]
    lines = journal.read_text().splitlines()
    # the other conn was not held back: it started before net's first verb ended
    assert lines.index("other-start up-client") < lines.index("end up-client")
    assert time.monotonic() - started < 5


def _sleepers(tag: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        try:
            if entry.isdigit() and tag.encode() in Path(f"/proc/{entry}/cmdline").read_bytes():
                found.append(int(entry))
        except OSError:
            pass
    return found


def test_a_hanging_script_and_its_children_are_killed_at_the_timeout(tmp_path):
    tag = f"3{os.getpid() % 1000}.25"
    conn = conn_with(f"sleep {tag}; echo never")

    def scenario(reactor):
        log = RecordingLog()
        runner = UpdownRunner(log, clock=reactor, timeout=0.5)
        d = runner.run("up", conn, None, plugins_for(conn))
        return d.addCallback(lambda ok: (ok, log.lines))

    started = time.monotonic()
    ok, lines = run_in_reactor(scenario)
    assert ok is False
    assert lines == [(RC.LOG_SERIOUS, '"net": up-client failed: plugin script up(): no answer after 0.5s')]
    assert time.monotonic() - started < 5
    assert _sleepers(f"sleep\0{tag}") == []
