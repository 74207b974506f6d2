"""A flood of valid-looking Main Mode first messages, as an attacker on the path would send.

Run inside one of the lab's namespaces, never towards anything else: it sends
COUNT copies of a real MM1 (fresh initiator cookies each) to TARGET:500 at RATE
per second, from PORTS sockets bound to BIND (the configured peer's own address,
other ports), and counts what comes back.  Prints one JSON object:
``{"sent": N, "replies": N, "replies_per_mm1": x, "seconds": s}``.

Used by ``tests/lab/test_ike_flood.py`` and as a load for benchmarks.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import socket
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fswan.config.model import AuthBy, Connection, End  # noqa: E402
from fswan.config.orient import DefaultRoute, IpsecInterface, orient  # noqa: E402
from fswan.config.secrets import parse_secrets  # noqa: E402
from fswan.ike.engine import IkeEngine  # noqa: E402


def main_mode_1(source: str, target: str, ike: str) -> bytes:
    """A first Main Mode message as fswan would send from ``source`` to ``target``."""
    from ipaddress import ip_address

    conn = Connection(name="flood", left=End(host=source), right=End(host=target),
                      authby=AuthBy.SECRET, ike=ike)
    oriented = orient(conn, [IpsecInterface("ipsec0", "eth0", ip_address(source))],
                      DefaultRoute("eth0", None))
    engine = IkeEngine(parse_secrets(': PSK "flood"\n', "/dev/null"))
    engine.add_connection(oriented)
    engine.initiate("flood", 0.0)
    return engine.datagrams_to_send()[0].data


def flood(target: str, bind: str, count: int, rate: float, ports: int, ike: str) -> dict:
    template = main_mode_1(bind, target, ike)
    sockets = []
    for _ in range(ports):
        s = socket.socket(socket.AF_INET6 if ":" in bind else socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((bind, 0))
        s.setblocking(False)
        sockets.append(s)
    replies = 0

    def drain(timeout: float) -> None:
        nonlocal replies
        readable, _, _ = select.select(sockets, [], [], timeout)
        for s in readable:
            while True:
                try:
                    s.recv(65535)
                except BlockingIOError:
                    break
                replies += 1

    start = time.monotonic()
    for i in range(count):
        data = os.urandom(8) + template[8:]
        sockets[i % ports].sendto(data, (target, 500))
        due = start + (i + 1) / rate
        pause = due - time.monotonic()
        drain(max(0.0, pause))
    sent_for = time.monotonic() - start
    end = time.monotonic() + 2.0  # late answers, and retransmissions if any
    while time.monotonic() < end:
        drain(0.1)
    return {"sent": count, "replies": replies, "replies_per_mm1": replies / count,
            "seconds": round(sent_for, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", required=True)
    parser.add_argument("--bind", required=True)
    parser.add_argument("--count", type=int, default=10000)
    parser.add_argument("--rate", type=float, default=2000.0)
    parser.add_argument("--ports", type=int, default=64)
    parser.add_argument("--ike", default="aes128-sha1-modp2048")
    args = parser.parse_args()
    print(json.dumps(flood(args.target, args.bind, args.count, args.rate, args.ports, args.ike)))


if __name__ == "__main__":
    main()
