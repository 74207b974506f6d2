"""Everything issue 16's "Done when" asks, in one run, against its targets.

Reuses the other IKE benches (imported, not copied):

* ``ike_handshakes``: MODP-2048 / RSA-2048 micro figures, Main Mode + Quick Mode with PFS in
  memory (PSK and RSA), handshakes/s per side, the crypto-only ceiling and the ratio;
* ``ike_scale``: the hub's time per tunnel for the first and the last 100 of N in memory,
  one due timer, and an MM1 answered with 10 and with 10,000 conns configured;
* ``ike_daemons`` (root): two daemons over UDP in namespaces of its own (``PREFIX-w``,
  ``PREFIX-e``) at 1,000 and 10,000 tunnels: bring-up rate, RSS per tunnel, the wall time of
  ``ipsec auto --status``;
* ``ike_flood`` (root): 10,000 spoofed MM1s at 2,000/s to a daemon while a real peer brings
  its tunnel up: replies per MM1, RSS before and after, the tunnel's time.

Prints, asserts nothing; figures vary with the machine (note its load).

    python3 bench/ike_report.py [--quick] [--prefix ikb] [--no-daemons]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import ike_daemons  # noqa: E402
import ike_handshakes  # noqa: E402
import ike_scale  # noqa: E402
from tests.lab.lab import build_namespaces, delete_namespaces, sh  # noqa: E402


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")),
               platform.processor())
    load = os.getloadavg()[0]
    return (f"{time.strftime('%Y-%m-%d')}, {os.cpu_count()} x {cpu}, Python "
            f"{platform.python_version()}, load {load:.2f} at the start")


def in_memory(pairs: int, repeat: int) -> None:
    m = ike_handshakes.micro(repeat)
    dh_side = 2 * m["dh keygen"] + 2 * m["dh shared"]
    ceilings = {"psk": dh_side, "rsa": dh_side + m["rsa sign"] + m["rsa verify"]}
    print(f"== in memory: Main Mode + Quick Mode with PFS ({ike_handshakes.SUITE['ike']}), "
          f"{pairs} pairs x {repeat} runs (medians)")
    print(f"   MODP-2048 keygen {m['dh keygen'] * 1e3:.3f} ms, shared {m['dh shared'] * 1e3:.3f} ms; "
          f"RSA-2048 sign {m['rsa sign'] * 1e3:.3f} ms, verify {m['rsa verify'] * 1e3:.3f} ms")
    for auth in ("psk", "rsa"):
        runs = [ike_handshakes.handshakes(auth, pairs, 1 + 1000 * r) for r in range(repeat)]
        pair = statistics.median(r[0] for r in runs)
        side = max(statistics.median(r[1] for r in runs), statistics.median(r[2] for r in runs))
        ceiling = ceilings[auth]
        print(f"   {auth.upper()}: {1 / side:5.0f} handshakes/s per side (the slower side; "
              f"target >= 250), crypto-only ceiling {1 / ceiling:5.0f}/s per side: "
              f"{ceiling / side:4.0%} of it per side, {2 * ceiling / pair:4.0%} of a pair's "
              f"wall time ({pair * 1e3:.2f} ms, both engines and the in-memory wire; "
              "target >= 50%)")
    print("   IKEv2 beside it (IKE_SA_INIT + IKE_AUTH with the first Child SA, "
          "aes128-sha2_256-modp2048; one DH per side, no PFS exchange):")
    for auth in ("psk", "rsa"):
        v2 = ike_handshakes.v2_figures(auth, pairs, repeat, m)
        print(f"   {auth.upper()}: {1 / v2['side']:5.0f} handshakes/s per side, "
              f"{v2['share']:4.0%} of its crypto-only ceiling, {v2['pair'] * 1e3:.2f} ms per pair")


def at_scale(tunnels: list[int]) -> None:
    print("== in memory, a hub with N tunnels each to its own peer (no PFS): "
          "last 100 vs first 100 tunnels (target <= 1.5)")
    for n in tunnels:
        ike_scale.run(n, pfs=False, heap=False)  # RSS per tunnel: the daemons' figures
    small, large = ike_scale.mm1_cost(10), ike_scale.mm1_cost(10000)
    print(f"   an MM1 answered with 10 conns {small * 1e3:.2f} ms, with 10,000 conns "
          f"{large * 1e3:.2f} ms (ratio {large / small:.2f}; target: the same)")


def daemons(tunnels: list[int], prefix: str) -> None:
    print("== two daemons over UDP, N conns auto=start (PSK, PFS MODP-2048); targets: "
          ">= 150 tunnels/s, <= 20 KiB RSS per tunnel, ipsec auto --status < 1 s")
    for n in tunnels:
        ike_daemons.run(n, prefix)


def flood(prefix: str, count: int = 10000, rate: float = 2000.0) -> None:
    """A flood of MM1s from west's address (other ports) at east, while west keys one tunnel."""
    names = {"w": f"{prefix}-w", "e": f"{prefix}-e"}
    build_namespaces(names, [("w", "e", "wan0", "wan0")])
    sh("ip", "-n", names["w"], "addr", "add", f"{ike_daemons.WEST}/24", "dev", "wan0")
    sh("ip", "-n", names["e"], "addr", "add", f"{ike_daemons.EAST}/24", "dev", "wan0")
    for ns, gateway in ((names["w"], ike_daemons.EAST), (names["e"], ike_daemons.WEST)):
        sh("ip", "-n", ns, "route", "add", "default", "via", gateway)  # %defaultroute
    work = Path(f"/tmp/fswan-ike-report-{os.getpid()}")
    east = ike_daemons.Daemon(work / "east", names["e"], ike_daemons.config(1, "add"))
    west = ike_daemons.Daemon(work / "west", names["w"], ike_daemons.config(1, "add"))
    try:
        east.start()
        west.start()
        time.sleep(1.0)
        rss_before = east.rss_kib()
        flooder = subprocess.Popen(
            ["ip", "netns", "exec", names["w"], sys.executable, str(HERE / "ike_flood.py"),
             "--target", ike_daemons.EAST, "--bind", ike_daemons.WEST, "--count", str(count),
             "--rate", str(rate)], stdout=subprocess.PIPE, text=True)
        time.sleep(1.0)  # in the thick of it
        start = time.monotonic()
        up = sh("ip", "netns", "exec", names["w"], "ipsec", "auto", "--ctlbase", west.ctlbase,
                "--up", "t0", timeout=120, check=False)
        keyed = time.monotonic() - start
        begin = time.monotonic()
        sh("ip", "netns", "exec", names["e"], "whack", "--ctlbase", east.ctlbase, "--status",
           timeout=60)
        status_time = time.monotonic() - begin
        out, _ = flooder.communicate(timeout=count / rate + 60)
        figures = json.loads(out.strip().splitlines()[-1])
        rss_after = east.rss_kib()
        print(f"== {figures['sent']} spoofed MM1s at {rate:.0f}/s from the peer's address "
              f"(other ports) to a daemon: {figures['replies_per_mm1']:.2f} replies per MM1; "
              f"RSS {rss_before / 1024:.1f} -> {rss_after / 1024:.1f} MiB; whack --status "
              f"during it {status_time:.2f} s")
        print(f"   the real peer's tunnel during the flood: "
              f"{'up' if up.returncode == 0 else 'NOT up'} in {keyed:.2f} s (target < 5 s)")
        if up.returncode != 0:
            print("   " + (up.stdout + up.stderr).strip().replace("\n", "\n   "))
    finally:
        west.stop()
        east.stop()
        delete_namespaces(names.values())
        subprocess.run(["rm", "-rf", str(work)], check=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="fewer pairs and runs, 1,000 tunnels only (a smoke run)")
    parser.add_argument("--prefix", default="ikb", help="namespace prefix (default ikb)")
    parser.add_argument("--no-daemons", action="store_true",
                        help="in-memory figures only (no root needed)")
    args = parser.parse_args()
    print(machine())
    in_memory(20 if args.quick else 40, 3 if args.quick else 5)
    at_scale([1000] if args.quick else [1000, 10000])
    if args.no_daemons:
        return
    if os.geteuid() != 0:
        raise SystemExit("the daemon figures need root (network namespaces); --no-daemons")
    daemons([1000] if args.quick else [1000, 10000], args.prefix)
    flood(args.prefix, count=2000 if args.quick else 10000)


if __name__ == "__main__":
    main()
