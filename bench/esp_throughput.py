"""Client-to-client throughput through real gateways: fswan vs strongSwan (root).

For each ESP algorithm (AES-GCM-128 and AES-128-CBC + HMAC-SHA1-96), in one run:

* (a) fswan <-> fswan, (b) fswan (west) <-> strongSwan (east),
  (c) strongSwan <-> strongSwan (the lab's charon with kernel-libipsec, both sides);
* iperf3 TCP for ``--seconds`` (10) client to client: Mbit/s (receiver) and the CPU
  each gateway process used (from /proc/PID/stat, % of one core);
* iperf3 UDP with 64-byte payloads, unlimited rate: packets/s delivered to the receiving
  client's eth0 (and, for reference, what the iperf3 server managed to read);
* the ratios a/c and b/c.

Uses ``../shared/lab/strongswan-peer.sh`` for the namespaces (lab-west, lab-east and
their clients); strongSwan's ``esp_proposals`` are adjusted in copies of the lab's
swanctl.conf written to a temporary directory.  Prints figures, asserts nothing.

    sudo python bench/esp_throughput.py [--seconds 10] [--udp-seconds 5] [--alg gcm|cbc]
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
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LAB = Path(os.environ.get("FSWAN_LAB_DIR", REPO.parent / "shared" / "lab"))
SCRIPT = LAB / "strongswan-peer.sh"
STATE = Path(os.environ.get("LAB_STATE_DIR", "/tmp/lab-strongswan"))
PSK = "lab-psk-not-secret-0123456789"
HZ = os.sysconf("SC_CLK_TCK")

#: name -> (fswan esp=, strongSwan esp_proposals)
ALGORITHMS = {
    "gcm": ("aes_gcm128", "aes128gcm16"),
    "cbc": ("aes128-sha1", "aes128-sha1"),
}

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
	ike=aes128-sha1-modp2048
	esp={esp}
	pfs=no
	encapsulation={encapsulation}
	auto=add
"""


def run(*argv: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode:
        raise RuntimeError(f"{' '.join(argv)}: {result.returncode}\n{result.stdout}{result.stderr}")
    return result


def lab(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return run(str(SCRIPT), *args, check=check)


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


class Fswan:
    def __init__(self, ns: str, workdir: Path, esp: str, encapsulation: str = "auto") -> None:
        self.ns = ns
        self.dir = workdir / f"fswan-{ns}"
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "ipsec.conf").write_text(FSWAN_CONF.format(esp=esp, encapsulation=encapsulation))
        (self.dir / "ipsec.secrets").write_text(f'192.0.2.1 192.0.2.2 : PSK "{PSK}"\n')
        os.chmod(self.dir / "ipsec.secrets", 0o600)
        self.ctl = str(self.dir / "pluto")
        twistd = shutil.which("twistd")
        self.process = subprocess.Popen(
            ["ip", "netns", "exec", ns, twistd, "-n", "--pidfile=",
             f"--logfile={self.dir / 'pluto.log'}", "fswan", "-c", str(self.dir / "ipsec.conf"),
             "--ctlbase", self.ctl], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while not os.path.exists(self.ctl + ".ctl"):
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError(f"fswan in {ns} did not start")
            time.sleep(0.05)

    @property
    def pid(self) -> int:
        return self.process.pid

    def up(self) -> None:
        run("ip", "netns", "exec", self.ns, "ipsec", "auto", "--ctlbase", self.ctl, "--up", "net")

    def stop(self) -> None:
        run("ip", "netns", "exec", self.ns, "whack", "--ctlbase", self.ctl, "--shutdown",
            check=False)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def strongswan_conf(workdir: Path, side: str, proposals: str) -> Path:
    """A copy of the lab's psk-main config for ``side`` with our esp_proposals."""
    target = workdir / f"swan-{side}-{proposals}"
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(LAB / "conf" / "psk-main" / side, target)
    conf = target / "swanctl.conf"
    text = conf.read_text().replace("esp_proposals = aes128-sha1", f"esp_proposals = {proposals}")
    conf.write_text(text)
    return target


def charon_pid(ns: str) -> int:
    return int((STATE / ns / "charon.lab.pid").read_text())


def rx_packets(ns: str, device: str = "eth0") -> int:
    """Packets ``device`` in ``ns`` has received (what crossed the tunnel, whether or not the
    iperf3 server, busy on a shared core, managed to read them all)."""
    link = json.loads(run("ip", "-n", ns, "-s", "-j", "link", "show", device).stdout)[0]
    return int(link["stats64"]["rx"]["packets"])


def measure(pids: dict[str, int], seconds: int, udp_seconds: int) -> dict:
    """iperf3 TCP then UDP 64-byte, client west -> server east; CPU per gateway (TCP run)."""
    server = subprocess.Popen(["ip", "netns", "exec", "lab-east-client", "iperf3", "-s", "-B",
                               "203.0.113.10"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    try:
        before = {name: cpu_ticks(pid) for name, pid in pids.items()}
        t0 = time.monotonic()
        tcp = run("ip", "netns", "exec", "lab-west-client", "iperf3", "-c", "203.0.113.10",
                  "-t", str(seconds), "-J", timeout=seconds + 60)
        wall = time.monotonic() - t0
        after = {name: cpu_ticks(pid) for name, pid in pids.items()}
        data = json.loads(tcp.stdout)
        mbits = data["end"]["sum_received"]["bits_per_second"] / 1e6
        retransmits = data["end"]["sum_sent"].get("retransmits", 0)
        cpu = {name: 100.0 * (after[name] - before[name]) / HZ / wall for name in pids}
        pps = iperf_pps = 0.0
        if udp_seconds:
            rx0 = rx_packets("lab-east-client")
            u0 = time.monotonic()
            udp = run("ip", "netns", "exec", "lab-west-client", "iperf3", "-c", "203.0.113.10",
                      "-u", "-l", "64", "-b", "0", "-t", str(udp_seconds), "-J",
                      timeout=udp_seconds + 60, check=False)
            pps = (rx_packets("lab-east-client") - rx0) / (time.monotonic() - u0)
            try:
                end = json.loads(udp.stdout)["end"]["sum"]
                iperf_pps = (end["packets"] - end.get("lost_packets", 0)) / end["seconds"]
            except (ValueError, KeyError):
                iperf_pps = 0.0
    finally:
        server.kill()
        server.wait()
    return {"mbits": mbits, "retransmits": retransmits, "cpu": cpu, "pps": pps,
            "iperf_pps": iperf_pps}


def scenario(name: str, alg: str, workdir: Path, seconds: int, udp_seconds: int,
             encapsulation: str = "auto") -> dict:
    esp, proposals = ALGORITHMS[alg]
    lab("down", check=False)
    lab("up")
    daemons: list[Fswan] = []
    try:
        if name == "fswan-fswan":
            east = Fswan("lab-east", workdir, esp, encapsulation)
            west = Fswan("lab-west", workdir, esp, encapsulation)
            daemons = [west, east]
            west.up()
            pids = {"west fswan": west.pid, "east fswan": east.pid}
        elif name == "fswan-strongswan":
            lab("start-peer", "lab-east", str(strongswan_conf(workdir, "east", proposals)))
            west = Fswan("lab-west", workdir, esp)
            daemons = [west]
            west.up()
            pids = {"west fswan": west.pid, "east charon": charon_pid("lab-east")}
        else:
            lab("start-peer", "lab-east", str(strongswan_conf(workdir, "east", proposals)))
            lab("start-peer", "lab-west", str(strongswan_conf(workdir, "west", proposals)))
            lab("initiate", "lab-west", "net", "lab")
            pids = {"west charon": charon_pid("lab-west"), "east charon": charon_pid("lab-east")}
        ping = run("ip", "netns", "exec", "lab-west-client", "ping", "-c", "2", "-W", "2",
                   "203.0.113.10", check=False)
        if ping.returncode:
            raise RuntimeError(f"{name}/{alg}: no traffic through the tunnel")
        return measure(pids, seconds, udp_seconds)
    finally:
        for daemon in daemons:
            daemon.stop()
        lab("down", check=False)


def median(runs: list[dict]) -> dict:
    """Per figure, the median over the runs (CPU per process too)."""
    def mid(values: list[float]) -> float:
        values = sorted(values)
        return values[len(values) // 2]

    out = {key: mid([r[key] for r in runs]) for key in ("mbits", "retransmits", "pps", "iperf_pps")}
    out["cpu"] = {name: mid([r["cpu"][name] for r in runs]) for name in runs[0]["cpu"]}
    out["runs"] = len(runs)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--udp-seconds", type=int, default=5)
    parser.add_argument("--alg", choices=sorted(ALGORITHMS), action="append")
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--repeat", type=int, default=1,
                        help="run each scenario N times and print the medians")
    parser.add_argument("--encapsulation", choices=("auto", "yes"), default="auto",
                        help="fswan<->fswan with ESP-in-UDP (yes) instead of raw ESP")
    parser.add_argument("--only", choices=("fswan-fswan", "fswan-strongswan",
                                           "strongswan-strongswan"), action="append")
    options = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("needs root (network namespaces)")
    if not SCRIPT.exists():
        sys.exit(f"no lab at {LAB} (set FSWAN_LAB_DIR)")
    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="fswan-bench-") as tmp:
        for alg in options.alg or ["gcm", "cbc"]:
            names = options.only or ["fswan-fswan", "fswan-strongswan", "strongswan-strongswan"]
            for name in names:
                result = median([
                    scenario(name, alg, Path(tmp), options.seconds, options.udp_seconds,
                             options.encapsulation)
                    for _ in range(max(1, options.repeat))
                ])
                results[f"{alg} {name}"] = result
                cpu = ", ".join(f"{k} {v:.0f}%" for k, v in result["cpu"].items())
                print(f"{alg:4s} {name:22s} {result['mbits']:8.1f} Mbit/s  "
                      f"(retransmits {result['retransmits']}; CPU {cpu}); "
                      f"64-byte UDP {result['pps']:7.0f} pps delivered "
                      f"({result['iperf_pps']:.0f} read by iperf3)", flush=True)
            if options.only:
                continue
            a = results[f"{alg} fswan-fswan"]
            b = results[f"{alg} fswan-strongswan"]
            c = results[f"{alg} strongswan-strongswan"]
            if c["mbits"]:
                print(f"{alg:4s} ratios: a/c = {a['mbits'] / c['mbits']:.2f}, "
                      f"b/c = {b['mbits'] / c['mbits']:.2f}", end="")
            if c["pps"]:
                print(f"; pps a/c = {a['pps'] / c['pps']:.2f}, b/c = {b['pps'] / c['pps']:.2f}",
                      end="")
            print(flush=True)
    if options.json:
        Path(options.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
