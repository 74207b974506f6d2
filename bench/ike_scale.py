"""The IKE engine at site scale: does the Nth tunnel cost what the first did?

Two engines in memory (``tests/ike_pair.py``'s wire): a hub (west) with N conns,
each to its own peer gateway, and the N peers played by one engine (east) that
answers on N addresses.  Each tunnel is its own ISAKMP SA and IPsec SA pair, so
the hub ends with 2N states.  Hosts and clients are IPv6 documentation
addresses (2001:db8::/32), so N can be 10,000; nothing leaves the process.
Printed (nothing asserted; figures vary with the machine):

* the hub's time per tunnel brought up (Main Mode + Quick Mode as initiator)
  for the first and the last 100 tunnels, and their ratio;
* the hub's ``get_timer``, one due timer (a rekey), and status for all states;
* an initial Main Mode message: what the hub's responder path costs per MM1
  with N conns configured;
* Python heap per tunnel (both ends), from tracemalloc.

Usage: ``python3 bench/ike_scale.py [--tunnels 100 1000 10000] [--pfs]``
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fswan.ike.engine import IkeEngine  # noqa: E402
from ike_handshakes import EngineClock  # noqa: E402
from tests.ike_pair import Pair, Wire, conn, oriented, psk_secrets, seeded  # noqa: E402

SECRETS = ': PSK "scale-bench-not-secret"\n'
HUB = "2001:db8:a::1"


def peer(i: int) -> str:
    return f"2001:db8:e::{i + 1:x}"


class Star(Pair):
    """The hub talks to many addresses, all of them answered by the east engine."""

    def _collect(self) -> list[Wire]:
        out = []
        for ep in self.endpoints:
            for d in ep.engine.datagrams_to_send():
                src = str(d.local_addr) if d.local_addr is not None else ep.address
                out.append(Wire(src, d.local_port, str(d.remote_addr), d.remote_port, d.data,
                                ep.name))
        return out

    def _deliver(self, wire: Wire) -> None:
        ep = self.west if wire.dst == HUB else self.east
        ep.engine.receive_datagram(wire.data, wire.dst, wire.dport, wire.src, wire.sport, self.now)


def tunnel(i: int, pfs: bool):
    return conn(f"t{i}", left=HUB, right=peer(i), leftsubnet=f"2001:db8:1:{i:x}::/64",
                rightsubnet=f"2001:db8:2:{i:x}::/64", pfs=pfs,
                ike="aes128-sha1-modp2048", esp="aes128-sha1")


def build(n: int, pfs: bool) -> Star:
    west = IkeEngine(psk_secrets(SECRETS), random_bytes=seeded(1))
    east = IkeEngine(psk_secrets(SECRETS), random_bytes=seeded(2))
    for i in range(n):
        c = tunnel(i, pfs)
        west.add_connection(oriented(c, HUB))
        east.add_connection(oriented(c, peer(i)))
    return Star(west, east, west_addr=HUB, east_addr=peer(0))


def bring_up(pair: Star, n: int) -> list[float]:
    """The hub's own time for each tunnel."""
    clock = EngineClock(pair.west.engine)  # the hub only: the peers' engine is the bench's
    costs = []
    for i in range(n):
        spent = clock.spent
        pair.now += 0.01  # tunnels come up one after another, so their timers differ
        pair.west.engine.initiate(f"t{i}", pair.now, None)
        pair.transfer()
        costs.append(clock.spent - spent)
    return costs


def timed(function, repeat: int = 5) -> float:
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def mm1_cost(n: int) -> float:
    """One initial Main Mode message from a configured peer, answered by the hub."""
    peer_engine = IkeEngine(psk_secrets(SECRETS), random_bytes=seeded(3))
    hub = IkeEngine(psk_secrets(SECRETS), random_bytes=seeded(4))
    for i in range(n):
        hub.add_connection(oriented(tunnel(i, False), HUB))
    peer_engine.add_connection(oriented(tunnel(n // 2, False), peer(n // 2)))
    runs = []
    for attempt in range(20):
        peer_engine.initiate(f"t{n // 2}", float(attempt), None)
        mm1 = peer_engine.datagrams_to_send()[-1]
        start = time.perf_counter()
        hub.receive_datagram(mm1.data, HUB, 500, peer(n // 2), 500, float(attempt))
        runs.append(time.perf_counter() - start)
        hub.datagrams_to_send()
        hub.next_events()
        peer_engine.terminate(f"t{n // 2}", float(attempt))
        peer_engine.datagrams_to_send()
    return statistics.median(runs)


def run(n: int, pfs: bool, heap: bool = True) -> None:
    """``heap``: measure the heap with tracemalloc (which makes 10,000 tunnels several
    times slower to bring up; the times it leaves are the ratio's, not absolute)."""
    if heap:
        tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    pair = build(n, pfs)
    configured = tracemalloc.get_traced_memory()[0]
    costs = bring_up(pair, n)
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    hub = pair.west.engine
    states = len(hub.table.states)
    up = sum(1 for s in hub.table.states.values() if getattr(s, "installed", False))
    first = statistics.median(costs[:100]) * 1e3
    last = statistics.median(costs[-100:]) * 1e3
    get_timer = timed(hub.get_timer) * 1e3
    status = timed(lambda: hub.state_lines(pair.now), 3) * 1e3
    deadline = hub.get_timer()
    assert deadline is not None
    start = time.perf_counter()
    hub.handle_timer(deadline)
    one_timer = (time.perf_counter() - start) * 1e3
    print(f"{n:6d} tunnels ({states} states on the hub, {up} IPsec SAs installed, "
          f"pfs={'yes' if pfs else 'no'}):")
    print(f"    hub time per tunnel: first 100 {first:.2f} ms, last 100 {last:.2f} ms "
          f"(ratio {last / first:.2f})")
    print(f"    hub: get_timer {get_timer:.3f} ms, one due timer {one_timer:.3f} ms, "
          f"status {status:.1f} ms, an MM1 answered {mm1_cost(n) * 1e3:.2f} ms")
    if heap:
        print(f"    heap: conns {(configured - before) / n / 1024:.1f} KB/tunnel, "
              f"SAs {(after - configured) / n / 1024:.1f} KB/tunnel (both ends)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tunnels", type=int, nargs="+", default=[100, 1000, 10000])
    parser.add_argument("--pfs", action="store_true", help="Quick Mode with PFS (MODP-2048)")
    args = parser.parse_args()
    for n in args.tunnels:
        run(n, args.pfs)


if __name__ == "__main__":
    main()
