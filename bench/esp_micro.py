"""Micro-benchmark of the ESP data path: packets/s for 1400-byte packets.

For each algorithm it times, on one core:

* ``esp encap`` / ``esp decap``: the transform alone (``fswan.ipsec.esp``);
* ``sa encap`` / ``sa decap``: plus sequence numbers, anti-replay and lifetimes;
* ``dp out`` / ``dp in``: the whole sans-IO data plane (eroute lookup, SA,
  output list; inbound arrival check), as the pump calls it.

Prints figures only (no assertions): compare ratios within one run; the
machine is shared and noisy (see ../shared/reference/performance.md).

    python bench/esp_micro.py [--packets N] [--size BYTES] [--repeat R]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fswan.suites import EspKeys, EspProposal  # noqa: E402
from fswan.ipsec.dataplane import DataPlane  # noqa: E402
from fswan.ipsec.packet import ipv4_header  # noqa: E402
from fswan.ipsec.sa import IN, OUT, SecurityAssociation  # noqa: E402

ALGORITHMS = [
    ("aes_gcm_16-128", EspProposal("aes_gcm_16", 128, None)),
    ("aes_gcm_16-256", EspProposal("aes_gcm_16", 256, None)),
    ("aes_cbc-128-sha1_96", EspProposal("aes_cbc", 128, "sha1")),
    ("aes_cbc-256-sha1_96", EspProposal("aes_cbc", 256, "sha1")),
    ("aes_cbc-128-sha2_256_128", EspProposal("aes_cbc", 128, "sha2_256")),
    ("3des-sha1_96", EspProposal("3des_cbc", 192, "sha1")),
]


def keys_for(proposal: EspProposal) -> EspKeys:
    integ = proposal.integrity_algorithm
    return EspKeys(
        os.urandom(proposal.encryption_key_size),
        os.urandom(integ.key_size) if integ else b"",
        os.urandom(proposal.cipher_algorithm.salt_size),
    )


def pair(proposal: EspProposal, keys: EspKeys) -> tuple[SecurityAssociation, SecurityAssociation]:
    common = dict(spi=0x1001, proposal=proposal, keys=keys, mode="tunnel")
    out = SecurityAssociation(direction=OUT, local="192.0.2.1", remote="192.0.2.2",
                              local_client="10.0.1.0/24", remote_client="10.0.2.0/24", **common)
    inn = SecurityAssociation(direction=IN, local="192.0.2.2", remote="192.0.2.1",
                              local_client="10.0.2.0/24", remote_client="10.0.1.0/24", **common)
    return out, inn


def rate(count: int, seconds: float) -> str:
    return f"{count / seconds / 1000:8.1f}k"


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def bench(name: str, proposal: EspProposal, n: int, size: int, repeat: int) -> list[str]:
    keys = keys_for(proposal)
    header = ipv4_header(bytes([10, 0, 1, 5]), bytes([10, 0, 2, 7]), 17, size - 20)
    inner = header + os.urandom(size - 20)
    out, inn = pair(proposal, keys)
    esp_out, esp_in = out.esp, inn.esp

    # transform alone
    def esp_encap() -> None:
        enc = esp_out.encap
        for seq in range(1, n + 1):
            enc(seq, inner, 4)

    packets = [esp_out.encap(seq, inner, 4) for seq in range(1, n + 1)]

    def esp_decap() -> None:
        dec = esp_in.decap
        for p in packets:
            dec(p)

    # SA level (sequence numbers, replay, lifetimes)
    def sa_encap() -> None:
        sa, _ = pair(proposal, keys)
        enc = sa.encap
        for _ in range(n):
            enc(inner, 4, 1.0)

    sa_out, _ = pair(proposal, keys)
    sa_packets = [sa_out.encap(inner, 4, 1.0) for _ in range(n)]

    def sa_decap() -> None:
        _, sa = pair(proposal, keys)
        dec = sa.decap
        for p in sa_packets:
            dec(p, 1.0)

    # the whole data plane
    def dp_out() -> None:
        dp = DataPlane()
        sa, _ = pair(proposal, keys)
        dp.install_sa(sa)
        dp.add_eroute("10.0.1.0/24", "10.0.2.0/24", sa.said)
        outbound = dp.outbound
        net = dp.network
        for i in range(n):
            outbound(inner, 1.0)
            if i & 63 == 63:
                net.clear()

    def dp_in() -> None:
        dp = DataPlane()
        _, sa = pair(proposal, keys)
        dp.install_sa(sa)
        inbound = dp.inbound
        tun = dp.tun
        for i, p in enumerate(sa_packets):
            inbound(p, "192.0.2.1", 0, 1.0)
            if i & 63 == 63:
                tun.clear()
        assert not any(dp.counters.values()), dp.counters

    figures = [best(f, repeat) for f in (esp_encap, esp_decap, sa_encap, sa_decap, dp_out, dp_in)]
    return [name] + [rate(n, t) for t in figures]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packets", type=int, default=20000)
    parser.add_argument("--size", type=int, default=1400)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"packets/s, {args.size}-byte inner packets, best of {args.repeat} x {args.packets}")
    header = ["algorithm", "esp encap", "esp decap", "sa encap", "sa decap", "dp out", "dp in"]
    print(f"{header[0]:<26}" + "".join(f"{h:>11}" for h in header[1:]))
    for name, proposal in ALGORITHMS:
        n = args.packets if proposal.cipher != "3des_cbc" else max(1000, args.packets // 8)
        row = bench(name, proposal, n, args.size, args.repeat)
        print(f"{row[0]:<26}" + "".join(f"{v:>11}" for v in row[1:]), flush=True)


if __name__ == "__main__":
    main()
