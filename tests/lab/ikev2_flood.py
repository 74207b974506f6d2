"""A flood of IKEv2 IKE_SA_INIT requests from many source addresses and ports (the lab only).

Run inside a lab namespace: COUNT copies of a real IKE_SA_INIT request (fswan's own,
a fresh SPIi each) go to TARGET:500 at RATE per second from PORTS sockets on each of
the BIND addresses; what comes back is counted, and how many answers demand a cookie.
Prints one JSON object: ``{"sent", "replies", "cookie", "refusal", "state", "other"}`` (see
:func:`kind`).
Used by ``tests/lab/test_ikev2_lab_cookies.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import socket
import sys
import time
from ipaddress import ip_address
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from fswan.config.model import AuthBy, Connection, End, Ikev2Policy  # noqa: E402
from fswan.config.orient import DefaultRoute, IpsecInterface, orient  # noqa: E402
from fswan.config.secrets import parse_secrets  # noqa: E402
from fswan.ike.engine import IkeEngine  # noqa: E402
from fswan.ikev2.constants import NotifyType  # noqa: E402
from fswan.ikev2.message import decode_message  # noqa: E402
from fswan.ikev2.payloads import Notify  # noqa: E402


def ike_sa_init(source: str, target: str, ike: str) -> bytes:
    """The first IKE_SA_INIT request fswan would send from ``source`` to ``target``."""
    conn = Connection(name="flood", left=End(host=source), right=End(host=target),
                      authby=AuthBy.SECRET, ike=ike, ikev2=Ikev2Policy.INSIST)
    oriented = orient(conn, [IpsecInterface("ipsec0", "eth0", ip_address(source))],
                      DefaultRoute("eth0", None))
    engine = IkeEngine(parse_secrets(': PSK "flood"\n', "/dev/null"))
    engine.add_connection(oriented)
    engine.initiate("flood", 0.0)
    return engine.datagrams_to_send()[0].data


def kind(data: bytes) -> str:
    """What an answer is: ``cookie`` (a demand), ``refusal`` (an error notify), ``state``
    (an IKE_SA_INIT response with SA and KE: the responder kept state), or ``other``."""
    try:
        message = decode_message(data)
    except Exception:
        return "other"
    notifies = [p.notify_type for p in message.payloads if isinstance(p, Notify)]
    if NotifyType.COOKIE in notifies:
        return "cookie"
    if any(n < 16384 for n in notifies):
        return "refusal"
    return "state" if message.header.spi_r != bytes(8) else "other"


def flood(target: str, binds: list[str], count: int, rate: float, ports: int, ike: str) -> dict:
    template = ike_sa_init(binds[0], target, ike)
    sockets = []
    for bind in binds:
        for _ in range(ports):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind((bind, 0))
            s.setblocking(False)
            sockets.append(s)
    counts = {"sent": count, "replies": 0, "cookie": 0, "refusal": 0, "state": 0, "other": 0}

    def drain(timeout: float) -> None:
        readable, _, _ = select.select(sockets, [], [], timeout)
        for s in readable:
            while True:
                try:
                    data = s.recv(65535)
                except BlockingIOError:
                    break
                counts["replies"] += 1
                counts[kind(data)] += 1

    start = time.monotonic()
    for i in range(count):
        sockets[i % len(sockets)].sendto(os.urandom(8) + template[8:], (target, 500))
        drain(max(0.0, start + (i + 1) / rate - time.monotonic()))
    end = time.monotonic() + 1.0
    while time.monotonic() < end:
        drain(0.1)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", required=True)
    parser.add_argument("--bind", action="append", required=True)
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--ports", type=int, default=16)
    parser.add_argument("--ike", default="aes128-sha2_256-modp2048")
    args = parser.parse_args()
    print(json.dumps(flood(args.target, args.bind, args.count, args.rate, args.ports, args.ike)))


if __name__ == "__main__":
    main()
