"""IKEv2 handshake latency: fswan against strongSwan's charon (root; a lab of its own prefix).

One IKE_SA_INIT + IKE_AUTH exchange pair with its first Child SA (PSK,
aes128-sha256-modp2048, ESP aes128-sha256, no PFS), brought up and torn down N times
in a row, in four pairings on the lab's wire (``PREFIX-west`` 192.0.2.1 ==
``PREFIX-east`` 192.0.2.2, made by ``../shared/lab/strongswan-peer.sh`` with
``LAB_PREFIX=PREFIX``, default ``ikv``, never ``lab``, which the test suite uses):

* (c)  charon -> charon: the lab's ``conf/psk-main`` (both sides) copied to a temporary
  directory and made IKEv2 with the suites above; ``initiate PREFIX-west net lab`` then
  ``swanctl --terminate --ike lab``;
* (b1) fswan -> charon: fswan (``keyexchange=ikev2``, the same suites and PSK) in
  PREFIX-west, charon in PREFIX-east; ``ipsec auto --up net`` then ``--down net``;
* (b2) charon -> fswan: the same two, charon in PREFIX-east initiating;
* (a)  fswan -> fswan: a daemon on each side, west initiating.

Each row is run twice, N bring-ups (+ 1 warm-up, not counted) each time:

* "CLI wall": ``time.perf_counter`` around the command: ``initiate`` of the lab script
  (bash, ``swanctl --initiate``) for charon, ``ip netns exec ... ipsec auto --up net``
  for fswan (the interpreter itself, no pyenv shim); charon's rows also show the ms
  ``initiate`` prints (around swanctl alone).  fswan's CLI is a Python process that costs
  tens of ms before it sends anything: the cost of a no-op through each path is printed;
* "socket": the same request from this process straight to the daemon's control socket
  (charon's vici ``initiate``/``terminate``, fswan's whack ``initiate``/``terminate``),
  timed until the answer says the Child SA is up: the daemons without their CLIs.

Between two bring-ups both sides are waited for until neither holds an SA.  Printed:
median and p90 (nearest rank) ms per row and the ratios of the fswan rows to (c); > 1
means slower than charon.  Nothing is asserted; the figures depend on the machine and
its load.  No burst of tunnels at once: charon reuses its IKE SA for the same connection,
so that needs K connections on each side.

    python3 bench/ikev2_vs_charon.py [--runs 30] [--quick] [--prefix ikv]
"""

from __future__ import annotations

import argparse
import math
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = str(Path(__file__).resolve().parent.parent)
sys.path.insert(0, ROOT)
# twistd (the fswan plugin) and the CLIs run from this checkout, whatever is installed
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")]))

from fswan.cli.client import send_request  # noqa: E402
from fswan.whackproto import Request  # noqa: E402

LAB = Path(os.environ.get("FSWAN_LAB_DIR", Path(ROOT).parent / "shared" / "lab"))
SCRIPT = LAB / "strongswan-peer.sh"
PSK = "lab-psk-not-secret-0123456789"

FSWAN_CONF = """\
version 2
config setup
	interfaces="ipsec0=wan0"

conn net
	left=192.0.2.1
	leftsubnet=198.51.100.0/25
	right=192.0.2.2
	rightsubnet=203.0.113.0/25
	authby=secret
	keyexchange=ikev2
	ike=aes128-sha2_256-modp2048
	esp=aes128-sha2_256
	pfs=no
	keyingtries=1
	auto=add
"""


class Failed(RuntimeError):
    pass


def run(*argv: str, check: bool = True, timeout: float = 60,
        env: dict | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env)
    if check and result.returncode:
        raise Failed(f"{' '.join(argv)}: exit {result.returncode}\n{result.stdout}{result.stderr}")
    return result


def timed(*argv: str, **kwargs) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    result = run(*argv, **kwargs)
    return (time.perf_counter() - start) * 1e3, result


class Lab:
    """strongswan-peer.sh with our prefix."""

    def __init__(self, prefix: str, workdir: Path) -> None:
        self.prefix, self.workdir = prefix, workdir
        self.env = {**os.environ, "LAB_PREFIX": prefix}
        self.west, self.east = f"{prefix}-west", f"{prefix}-east"

    def script(self, *args: str, check: bool = True, timeout: float = 60):
        return run(str(SCRIPT), *args, check=check, timeout=timeout, env=self.env)

    def timed(self, *args: str, check: bool = True) -> tuple[float, subprocess.CompletedProcess]:
        return timed(str(SCRIPT), *args, check=check, env=self.env)

    def charon_conf(self, side: str) -> Path:
        """The lab's psk-main for ``side``, IKEv2 with our suites, in the work dir."""
        target = self.workdir / f"charon-{side}"
        if not target.exists():
            shutil.copytree(LAB / "conf" / "psk-main" / side, target)
            conf = target / "swanctl.conf"
            text = conf.read_text()
            for old, new in (("version = 1 ", "version = 2 "),
                             ("proposals = aes128-sha1-modp2048",
                              "proposals = aes128-sha256-modp2048")):
                if old not in text:
                    raise Failed(f"{conf}: no {old!r}")
                text = text.replace(old, new)
            text, count = re.subn(r"esp_proposals = aes128-sha1\b", "esp_proposals = aes128-sha256",
                                  text)
            if count != 1:
                raise Failed(f"{conf}: no esp_proposals = aes128-sha1")
            conf.write_text(text)
        return target

    def start_charon(self, ns: str) -> None:
        self.script("start-peer", ns, str(self.charon_conf("west" if ns == self.west else "east")))

    def charon_idle(self, ns: str) -> bool:
        out = self.script("swanctl", ns, "--list-sas").stdout
        return not re.search(r"^lab: #", out, re.M)

    def vici_socket(self, ns: str) -> str:
        return f"/tmp/{self.prefix}-strongswan/{ns}/run/charon.vici"

    def charon_log(self, ns: str) -> str:
        path = Path(f"/tmp/{self.prefix}-strongswan") / ns / "charon.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""


class Fswan:
    """``twistd -n fswan`` in a namespace (as tests/lab/lab.py starts it)."""

    def __init__(self, ns: str, workdir: Path) -> None:
        self.ns = ns
        self.dir = workdir / f"fswan-{ns}"
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "ipsec.conf").write_text(FSWAN_CONF)
        (self.dir / "ipsec.secrets").write_text(f'192.0.2.1 192.0.2.2 : PSK "{PSK}"\n')
        os.chmod(self.dir / "ipsec.secrets", 0o600)
        self.ctlbase = str(self.dir / "pluto")
        self.logfile = self.dir / "pluto.log"
        twistd = shutil.which("twistd")
        if not twistd:
            raise Failed("twistd not on PATH (bash scripts/install-deps.sh)")
        self.process = subprocess.Popen(
            ["ip", "netns", "exec", ns, twistd, "-n", "--pidfile=", f"--logfile={self.logfile}",
             "fswan", "-c", str(self.dir / "ipsec.conf"), "--ctlbase", self.ctlbase],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while not os.path.exists(self.ctlbase + ".ctl"):
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise Failed(f"fswan in {ns} did not start:\n{self.log()}")
            time.sleep(0.05)

    def log(self) -> str:
        return self.logfile.read_text(errors="replace")[-3000:] if self.logfile.exists() else ""

    def auto(self, *args: str) -> tuple[float, subprocess.CompletedProcess]:
        """``ipsec auto`` timed around the CLI (the interpreter itself, not a pyenv shim)."""
        return timed("ip", "netns", "exec", self.ns, sys.executable, "-m", "fswan.cli.ipsec",
                     "auto", "--ctlbase", self.ctlbase, *args, check=False)

    def request(self, command: str, name: str | None = None) -> tuple[int, list[str]]:
        lines: list[str] = []
        status = send_request(self.ctlbase, Request(command, name),
                              lambda rc, line: lines.append(line), timeout=60)
        return status, lines

    def idle(self) -> bool:
        return not any("STATE_V2" in line for line in self.request("status")[1])

    def stop(self) -> None:
        if self.process.poll() is None:
            run("ip", "netns", "exec", self.ns, sys.executable, "-m", "fswan.cli.whack",
                "--ctlbase", self.ctlbase, "--shutdown", check=False)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def wait_until(predicate, what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise Failed(f"timed out waiting for {what}")
        time.sleep(0.01)


def vici_encode(message: dict[str, str]) -> bytes:
    out = b""
    for key, value in message.items():
        k, v = key.encode(), value.encode()
        out += bytes([3, len(k)]) + k + len(v).to_bytes(2, "big") + v  # KEY_VALUE
    return out


def vici_top(body: bytes) -> dict[str, str]:
    """The top-level key/values of a vici message (sections and lists skipped)."""
    out, depth, i = {}, 0, 0
    while i < len(body):
        kind = body[i]
        i += 1
        if kind in (1, 3, 4):  # SECTION_START, KEY_VALUE, LIST_START: a name
            key = body[i + 1:i + 1 + body[i]].decode()
            i += 1 + body[i]
        if kind in (3, 5):  # KEY_VALUE, LIST_ITEM: a value
            size = int.from_bytes(body[i:i + 2], "big")
            if kind == 3 and depth == 0:
                out[key] = body[i + 2:i + 2 + size].decode(errors="replace")
            i += 2 + size
        depth += {1: 1, 2: -1, 4: 1, 6: -1}.get(kind, 0)
    return out


def recv_exact(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise Failed("vici: connection closed")
        data += chunk
    return data


def vici(socket_path: str, command: str, **message: str) -> dict[str, str]:
    """One vici request (CMD_REQUEST) and its CMD_RESPONSE, as swanctl sends it, without
    swanctl: no process to start, no plugins to load."""
    name = command.encode()
    payload = bytes([0, len(name)]) + name + vici_encode(message)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(60)
        sock.connect(socket_path)
        sock.sendall(len(payload).to_bytes(4, "big") + payload)
        while True:
            body = recv_exact(sock, int.from_bytes(recv_exact(sock, 4), "big"))
            if body[0] == 1:  # CMD_RESPONSE (events, which we do not register for, aside)
                return vici_top(body[1:])
            if body[0] == 2:
                raise Failed(f"vici: unknown command {command}")


ESTABLISHED = "STATE_V2_ESTABLISHED_CHILD_SA: Child SA established"
PRINTED_MS = re.compile(r"rc=0, (\d+) ms")


def charon_initiates(lab: Lab, ns: str, runs: int, responder_idle) -> dict[str, list[float]]:
    """``initiate NS net lab`` + ``swanctl --terminate --ike lab``, ``runs`` + 1 times, then
    the same requests straight to charon's vici socket."""
    wall, printed, sock = [], [], []
    for i in range(runs + 1):
        elapsed, result = lab.timed("initiate", ns, "net", "lab", check=False)
        found = PRINTED_MS.search(result.stderr)
        if result.returncode or not found:
            raise Failed(f"initiate in {ns}: {result.stdout}{result.stderr}")
        if i:
            wall.append(elapsed)
            printed.append(float(found.group(1)))
        lab.script("swanctl", ns, "--terminate", "--ike", "lab", "--timeout", "10")
        wait_until(lambda: lab.charon_idle(ns), f"charon in {ns} to forget the SA")
        wait_until(responder_idle, "the responder to delete the SA")
    path = lab.vici_socket(ns)
    for i in range(runs + 1):
        start = time.perf_counter()
        answer = vici(path, "initiate", child="net", ike="lab", timeout="30000")
        elapsed = (time.perf_counter() - start) * 1e3
        if answer.get("success") != "yes":
            raise Failed(f"vici initiate in {ns}: {answer}")
        if i:
            sock.append(elapsed)
        answer = vici(path, "terminate", ike="lab", timeout="10000")
        if answer.get("success") != "yes":
            raise Failed(f"vici terminate in {ns}: {answer}")
        wait_until(lambda: lab.charon_idle(ns), f"charon in {ns} to forget the SA")
        wait_until(responder_idle, "the responder to delete the SA")
    return {"wall": wall, "printed": printed, "socket": sock}


def fswan_initiates(west: Fswan, runs: int, responder_idle) -> dict[str, list[float]]:
    """``ipsec auto --up net`` / ``--down net`` ``runs`` + 1 times, then the same requests
    straight to the control socket."""
    wall, sock = [], []
    for i in range(runs + 1):
        elapsed, result = west.auto("--up", "net")
        if result.returncode or ESTABLISHED not in result.stdout:
            raise Failed(f"ipsec auto --up: {result.stdout}{result.stderr}\n{west.log()}")
        if i:
            wall.append(elapsed)
        _, result = west.auto("--down", "net")
        if result.returncode:
            raise Failed(f"ipsec auto --down: {result.stdout}{result.stderr}")
        wait_until(west.idle, "fswan to forget the SA")
        wait_until(responder_idle, "the responder to delete the SA")
    for i in range(runs + 1):
        start = time.perf_counter()
        status, lines = west.request("initiate", "net")
        elapsed = (time.perf_counter() - start) * 1e3
        if status or not any(ESTABLISHED in line for line in lines):
            raise Failed("initiate over the control socket: " + "\n".join(lines) + west.log())
        if i:
            sock.append(elapsed)
        west.request("terminate", "net")
        wait_until(west.idle, "fswan to forget the SA")
        wait_until(responder_idle, "the responder to delete the SA")
    return {"wall": wall, "socket": sock}


def noop(argv_runner, runs: int) -> float:
    """Median ms of a request that changes nothing, through the same path."""
    times = []
    for _ in range(runs + 1):
        elapsed, result = argv_runner()
        if result.returncode:
            raise Failed(f"no-op: {result.stdout}{result.stderr}")
        times.append(elapsed)
    return statistics.median(times[1:])


def p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


def bench(prefix: str, runs: int) -> None:
    with tempfile.TemporaryDirectory(prefix="fswan-ikev2-bench-") as tmp:
        lab = Lab(prefix, Path(tmp))
        daemons: list[Fswan] = []
        rows: dict[str, dict[str, list[float]]] = {}
        noops: dict[str, float] = {}
        lab.script("down", check=False)
        lab.script("up")
        try:
            started = time.monotonic()
            # (c) charon -> charon
            lab.start_charon(lab.east)
            lab.start_charon(lab.west)
            rows["c"] = charon_initiates(lab, lab.west, runs, lambda: lab.charon_idle(lab.east))
            noops["charon"] = noop(lambda: lab.timed("swanctl", lab.west, "--stats"), runs)
            lab.script("stop-peer", lab.west)
            # (b1) fswan -> charon, (b2) charon -> fswan
            west = Fswan(lab.west, Path(tmp))
            daemons.append(west)
            rows["b1"] = fswan_initiates(west, runs, lambda: lab.charon_idle(lab.east))
            noops["fswan"] = noop(lambda: west.auto("--status"), runs)
            rows["b2"] = charon_initiates(lab, lab.east, runs, west.idle)
            lab.script("stop-peer", lab.east)
            # (a) fswan -> fswan
            east = Fswan(lab.east, Path(tmp))
            daemons.append(east)
            rows["a"] = fswan_initiates(west, runs, east.idle)
            elapsed = time.monotonic() - started
        except Exception:
            for ns in (lab.west, lab.east):
                sys.stderr.write(f"--- charon log of {ns} (tail)\n{lab.charon_log(ns)}\n")
            for daemon in daemons:
                sys.stderr.write(f"--- fswan log in {daemon.ns} (tail)\n{daemon.log()}\n")
            raise
        finally:
            for daemon in daemons:
                daemon.stop()
            lab.script("down", check=False)
    report(rows, noops, runs, elapsed)


def report(rows: dict, noops: dict[str, float], runs: int, elapsed: float) -> None:
    print(f"IKEv2 IKE_SA_INIT + IKE_AUTH with its Child SA (PSK, aes128-sha256-modp2048, "
          f"ESP aes128-sha256, no PFS): {runs} sequential bring-ups per row and path after "
          f"1 warm-up; ms, median / p90 (load {os.getloadavg()[0]:.2f} at the end, "
          f"{os.cpu_count()} CPUs, {elapsed:.0f} s of runs)")
    print(f"  what a no-op costs through the CLI path: lab script + swanctl --stats "
          f"{noops['charon']:.1f} ms, ipsec auto --status {noops['fswan']:.1f} ms "
          "(a Python process)")

    def fig(values: list[float]) -> str:
        return f"{statistics.median(values):6.1f} / {p90(values):6.1f}"

    names = {"c": "(c)  charon -> charon", "b1": "(b1) fswan  -> charon",
             "b2": "(b2) charon -> fswan ", "a": "(a)  fswan  -> fswan "}
    for key in ("c", "b1", "b2", "a"):
        row = rows[key]
        line = f"  {names[key]}  CLI wall {fig(row['wall'])}   socket {fig(row['socket'])}"
        if "printed" in row:
            line += f"   initiate printed {fig(row['printed'])}"
        print(line)
    print("  ratios to (c), median (p90); > 1 = slower than charon -> charon:")
    c = rows["c"]
    for key in ("a", "b1", "b2"):
        parts = []
        for kind in ("wall", "socket"):
            mine, theirs = rows[key][kind], c[kind]
            parts.append(f"{'CLI wall' if kind == 'wall' else kind} "
                         f"{statistics.median(mine) / statistics.median(theirs):.2f} "
                         f"({p90(mine) / p90(theirs):.2f})")
        print(f"    {key}/c: " + ", ".join(parts))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30, help="bring-ups per row (30)")
    parser.add_argument("--quick", action="store_true", help="5 bring-ups per row")
    parser.add_argument("--prefix", default="ikv",
                        help="the lab's namespace prefix (ikv; never lab: the tests use it)")
    options = parser.parse_args()
    if options.prefix == "lab":
        sys.exit("--prefix lab is the test suite's lab; choose another")
    if os.geteuid() != 0:
        sys.exit("needs root (network namespaces)")
    if not SCRIPT.exists():
        sys.exit(f"no lab at {LAB} (set FSWAN_LAB_DIR)")
    bench(options.prefix, 5 if options.quick else max(1, options.runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
