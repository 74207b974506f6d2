"""Tunnels per second between two real fswan daemons over UDP (root; namespaces of its own).

Two namespaces ``PREFIX-w`` (192.0.2.1) and ``PREFIX-e`` (192.0.2.2) joined by a veth
pair, a daemon in each (``--nodataplane``: this measures the control plane).  West has
N conns with ``auto=start``, each with its own IDs (``@wN``/``@eN``) and clients, so
each is a full Main Mode + Quick Mode (PSK, aes128-sha1-modp2048, PFS MODP-2048);
east has the same conns with ``auto=add``.  Printed (nothing asserted): the time from
west's start until all N IPsec SAs are up and tunnels/s, both daemons' RSS per
tunnel, and how long ``ipsec auto --status`` takes with N tunnels.

Usage: ``python3 bench/ike_daemons.py [--tunnels 1000] [--prefix ikb]``
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from ipaddress import ip_address
from pathlib import Path

ROOT = str(Path(__file__).resolve().parent.parent)
sys.path.insert(0, ROOT)
# twistd (the fswan plugin), whack and ipsec run from this checkout, whatever is installed
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")]))

from tests.lab.lab import build_namespaces, delete_namespaces, sh  # noqa: E402

WEST, EAST = "192.0.2.1", "192.0.2.2"
PSK = "daemon-bench-not-secret"


def config(n: int, auto: str) -> str:
    lines = ['version 2', 'config setup', '\tinterfaces=%defaultroute', '',
             'conn %default', f'\tleft={WEST}', f'\tright={EAST}', '\tauthby=secret',
             '\tike=aes128-sha1-modp2048', '\tesp=aes128-sha1', '\tpfs=yes',
             '\tkeyingtries=%forever', f'\tauto={auto}', '']
    for i in range(n):
        ours = ip_address("198.51.100.0") + i % 256
        theirs = ip_address("203.0.113.0") + i // 256 % 256
        lines += [f"conn t{i}", f"\tleftid=@w{i}", f"\trightid=@e{i}",
                  f"\tleftsubnet={ours}/32", f"\trightsubnet={theirs}/32", ""]
    return "\n".join(lines)


class Daemon:
    def __init__(self, directory: Path, ns: str, conf: str, profile: str | None = None) -> None:
        self.dir, self.ns, self.profile = directory, ns, profile
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "ipsec.conf").write_text(conf)
        (directory / "ipsec.secrets").write_text(f': PSK "{PSK}"\n')
        os.chmod(directory / "ipsec.secrets", 0o600)
        self.ctlbase = str(directory / "pluto")
        self.log = directory / "pluto.log"
        self.process: subprocess.Popen | None = None
        self._read = 0
        self._established = 0

    def start(self) -> float:
        twistd = shutil.which("twistd")
        assert twistd, "twistd not on PATH (bash scripts/install-deps.sh)"
        started = time.monotonic()
        # the log to stdout into our own file: twistd's --logfile rotates at 1 MB, and
        # the count of established SAs is read from the log
        self.process = subprocess.Popen(
            ["ip", "netns", "exec", self.ns, twistd, "-n", "--pidfile=", "--logfile=-",
             *([f"--profile={self.profile}", "--profiler=cprofile", "--savestats"]
               if self.profile else []),
             "fswan", "-c", str(self.dir / "ipsec.conf"), "--ctlbase", self.ctlbase,
             "--nodataplane"], stdout=self.log.open("w"), stderr=subprocess.STDOUT)
        while not os.path.exists(self.ctlbase + ".ctl"):
            if self.process.poll() is not None:
                raise SystemExit(f"daemon in {self.ns} did not start:\n{self.log.read_text()}")
            time.sleep(0.05)
        return started

    def status(self) -> dict:
        out = sh("ip", "netns", "exec", self.ns, "whack", "--ctlbase", self.ctlbase, "--status",
                 "--json", timeout=120).stdout
        return json.loads(out)

    def ipsec_up(self) -> int:
        """IPsec SAs established so far, from what the log has added since the last look
        (asking the daemon for its status that often would cost it more than the tunnels)."""
        with self.log.open("rb") as log:
            log.seek(self._read)
            chunk = log.read()
        cut = chunk.rfind(b"\n") + 1
        self._read += cut
        self._established += chunk[:cut].count(b"IPsec SA established")
        return self._established

    def rss_kib(self) -> int:
        for pid in sh("ip", "netns", "pids", self.ns).stdout.split():
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            if b"twistd" in cmdline and b"fswan" in cmdline:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])
        return 0

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            subprocess.run(["ip", "netns", "exec", self.ns, "whack", "--ctlbase", self.ctlbase,
                            "--shutdown"], capture_output=True, timeout=60)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()


def run(n: int, prefix: str, profile: str | None = None) -> None:
    names = {"w": f"{prefix}-w", "e": f"{prefix}-e"}
    build_namespaces(names, [("w", "e", "wan0", "wan0")])
    sh("ip", "-n", names["w"], "addr", "add", f"{WEST}/24", "dev", "wan0")
    sh("ip", "-n", names["e"], "addr", "add", f"{EAST}/24", "dev", "wan0")
    for ns, gateway in ((names["w"], EAST), (names["e"], WEST)):
        sh("ip", "-n", ns, "route", "add", "default", "via", gateway)
    work = Path(tempfile.mkdtemp(prefix="fswan-ike-bench-"))
    east = Daemon(work / "east", names["e"], config(n, "add"), profile and profile + ".east")
    west = Daemon(work / "west", names["w"], config(n, "start"), profile)
    try:
        east.start()
        rss_east_idle = east.rss_kib()
        started = west.start()
        listening = time.monotonic() - started
        up = 0
        deadline = started + max(120.0, n / 5)
        while up < n and time.monotonic() < deadline:
            time.sleep(0.2)
            up = west.ipsec_up()
        up = sum(1 for s in west.status()["states"]
                 if s.get("kind") == "IPSEC" and s.get("installed"))
        elapsed = time.monotonic() - started
        begin = time.monotonic()
        status = sh("ip", "netns", "exec", names["w"], "ipsec", "auto", "--ctlbase",
                    west.ctlbase, "--status", timeout=300)
        status_time = time.monotonic() - begin
        keying = elapsed - listening
        print(f"{n} tunnels (PSK, aes128-sha1-modp2048, PFS MODP-2048): {up} up {elapsed:.1f} s "
              f"after west's start, which took {listening:.1f} s (config, orientation): "
              f"{up / keying:.0f} tunnels/s keyed, {up / elapsed:.0f}/s from the start")
        print(f"    RSS: west {west.rss_kib() / 1024:.1f} MiB, east {east.rss_kib() / 1024:.1f} MiB "
              f"(east idle with its conns: {rss_east_idle / 1024:.1f} MiB) -> "
              f"{(east.rss_kib() - rss_east_idle) / max(up, 1):.1f} KiB per tunnel on east")
        print(f"    ipsec auto --status with {up} tunnels: {status_time:.2f} s "
              f"({len(status.stdout.splitlines())} lines)")
        for side in (west, east):
            text = side.log.read_text(errors="replace")
            print(f"    {side.ns}: {text.count('retransmission')} retransmissions, "
                  f"{text.count('half-open IKE SAs:')} half-open summaries")
    finally:
        west.stop()
        east.stop()
        delete_namespaces(names.values())
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tunnels", type=int, nargs="+", default=[1000])
    parser.add_argument("--prefix", default="ikb")
    parser.add_argument("--profile", help="cProfile west's daemon into this file (pstats), "
                                          "east's into FILE.east")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("needs root (network namespaces)")
    for n in args.tunnels:
        run(n, args.prefix, args.profile)


if __name__ == "__main__":
    main()
