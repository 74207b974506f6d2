"""The interop lab: fswan in a namespace against strongSwan's charon in another.

Wraps ``../shared/lab/strongswan-peer.sh`` (namespaces lab-west, lab-east and
their clients; documentation addresses only) and runs ``twistd fswan`` in a
namespace with a config written by the test.  Root is required; without it
the lab tests skip, saying so.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LAB_DIR = Path(os.environ.get("FSWAN_LAB_DIR", REPO.parent / "shared" / "lab"))
SCRIPT = LAB_DIR / "strongswan-peer.sh"
CHARON = Path(os.environ.get("CHARON", "/usr/lib/ipsec/charon"))


def require_lab() -> None:
    if os.geteuid() != 0:
        pytest.skip("lab tests need root (network namespaces, veth)")
    if not SCRIPT.exists():
        pytest.skip(f"no interop lab at {LAB_DIR} (set FSWAN_LAB_DIR)")
    if not CHARON.exists():
        pytest.fail(f"{CHARON} missing: install strongswan-charon (scripts/install-deps.sh)")


def sh(*argv: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(argv)} exited {result.returncode}\n{result.stdout}\n{result.stderr}"
        )
    return result


class Lab:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.daemons: list[FswanDaemon] = []

    def script(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        return sh(str(SCRIPT), *args, check=check, timeout=timeout)

    def up(self) -> None:
        self.script("down", check=False)
        self.script("up")

    def down(self) -> None:
        for daemon in self.daemons:
            daemon.stop()
        self.script("down", check=False)

    def start_peer(self, ns: str, variant: str, side: str) -> None:
        self.script("start-peer", ns, str(LAB_DIR / "conf" / variant / side))

    def swanctl(self, ns: str, *args: str) -> str:
        return self.script("swanctl", ns, *args).stdout

    def charon_log(self, ns: str) -> str:
        path = Path("/tmp/lab-strongswan") / ns / "charon.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def ping(self, count: int = 3) -> subprocess.CompletedProcess:
        return sh("ip", "netns", "exec", "lab-west-client", "ping", "-c", str(count), "-W", "1",
                  "-i", "0.2", "203.0.113.10", check=False)

    def fswan(self, ns: str, conf: str, secrets: str, name: str = "fswan",
              extra_args: tuple[str, ...] = ()) -> FswanDaemon:
        daemon = FswanDaemon(self.workdir / f"{name}-{ns}", ns, conf, secrets, extra_args)
        self.daemons.append(daemon)
        daemon.start()
        return daemon


class FswanDaemon:
    """``twistd -n fswan`` inside a namespace, driven with the real CLIs."""

    def __init__(self, directory: Path, ns: str, conf: str, secrets: str,
                 extra_args: tuple[str, ...] = ()) -> None:
        self.dir = directory
        self.ns = ns
        self.extra_args = tuple(extra_args)
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "ipsec.conf").write_text(conf)
        (self.dir / "ipsec.secrets").write_text(secrets)
        os.chmod(self.dir / "ipsec.secrets", 0o600)
        self.ctlbase = str(self.dir / "pluto")
        self.logfile = self.dir / "pluto.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        twistd = shutil.which("twistd")
        assert twistd, "twistd not on PATH"
        self.process = subprocess.Popen(
            ["ip", "netns", "exec", self.ns, twistd, "-n", "--pidfile=", f"--logfile={self.logfile}",
             "fswan", "-c", str(self.dir / "ipsec.conf"), "--ctlbase", self.ctlbase,
             *self.extra_args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        deadline = time.monotonic() + 20
        while not os.path.exists(self.ctlbase + ".ctl"):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"fswan did not start:\n{self.process.stdout.read()}\n{self.log()}")
            time.sleep(0.05)

    def cli(self, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess:
        tool = shutil.which(argv[0])
        assert tool, f"{argv[0]} not on PATH"
        args = list(argv[1:])
        if argv[0] == "ipsec":
            args = [args[0], "--ctlbase", self.ctlbase, *args[1:]]
        else:
            args = ["--ctlbase", self.ctlbase, *args]
        return sh("ip", "netns", "exec", self.ns, tool, *args, check=False, timeout=timeout)

    def log(self) -> str:
        return self.logfile.read_text(errors="replace") if self.logfile.exists() else ""

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.cli("whack", "--shutdown", timeout=10)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def delete_namespaces(names) -> None:
    for name in names:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


def build_namespaces(names: dict[str, str], links: list[tuple[str, str, str, str]]) -> None:
    """Fresh namespaces (``names``: key -> namespace) with loopback up, joined by veth
    pairs ``(a, b, a's device, b's device)`` that are up; addresses are the caller's."""
    delete_namespaces(names.values())
    for name in names.values():
        sh("ip", "netns", "add", name)
        sh("ip", "-n", name, "link", "set", "lo", "up")
    for a, b, a_if, b_if in links:
        sh("ip", "link", "add", "fswan-tmp0", "netns", names[a], "type", "veth", "peer",
           "name", "fswan-tmp1", "netns", names[b])
        sh("ip", "-n", names[a], "link", "set", "fswan-tmp0", "name", a_if)
        sh("ip", "-n", names[b], "link", "set", "fswan-tmp1", "name", b_if)
        sh("ip", "-n", names[a], "link", "set", a_if, "up")
        sh("ip", "-n", names[b], "link", "set", b_if, "up")


#: client -- gateway == gateway -- client, as the OE and IPv6 tests build them
GATEWAY_CHAIN = [("wc", "wg", "eth0", "lan0"), ("wg", "eg", "wan0", "wan0"),
                 ("eg", "ec", "lan0", "eth0")]


def build_lab_chain(ns: dict[str, str]) -> None:
    """GATEWAY_CHAIN with the lab's IPv4 addresses (198.51.100.10 -- .1 | 192.0.2.1 ==
    192.0.2.2 | 203.0.113.1 -- .10): gateways forward, no reverse-path filter, no
    route between the client nets until a tunnel routes them."""
    build_namespaces(ns, GATEWAY_CHAIN)
    sh("ip", "-n", ns["wc"], "addr", "add", "198.51.100.10/25", "dev", "eth0")
    sh("ip", "-n", ns["wc"], "route", "add", "default", "via", "198.51.100.1")
    sh("ip", "-n", ns["ec"], "addr", "add", "203.0.113.10/25", "dev", "eth0")
    sh("ip", "-n", ns["ec"], "route", "add", "default", "via", "203.0.113.1")
    sh("ip", "-n", ns["wg"], "addr", "add", "198.51.100.1/25", "dev", "lan0")
    sh("ip", "-n", ns["wg"], "addr", "add", "192.0.2.1/24", "dev", "wan0")
    sh("ip", "-n", ns["eg"], "addr", "add", "203.0.113.1/25", "dev", "lan0")
    sh("ip", "-n", ns["eg"], "addr", "add", "192.0.2.2/24", "dev", "wan0")
    for gw in ("wg", "eg"):
        sh("ip", "netns", "exec", ns[gw], "sysctl", "-qw", "net.ipv4.ip_forward=1")
        for knob in ("all", "default", "wan0", "lan0"):
            sh("ip", "netns", "exec", ns[gw], "sysctl", "-qw", f"net.ipv4.conf.{knob}.rp_filter=0")


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.2, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)
