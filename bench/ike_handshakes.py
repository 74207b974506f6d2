"""IKE handshakes per second in memory, IKEv1 and IKEv2, against the crypto-only ceiling
of the same handshake.

Two engines wired by ``tests/ike_pair.py`` (no sockets): west initiates Main Mode + Quick
Mode with PFS, MODP-2048 for both, aes128-sha1 (IKE and ESP), each pair a fresh pair of
engines; only ``initiate`` and the exchange of datagrams are timed, not building the
engines.  The RSA keys are loaded once for all pairs, as a running daemon holds them.  Twice: pre-shared keys, and RSA-2048 signatures (the lab's west/east keys).
Then the same conns with ``keyexchange=ikev2``: IKE_SA_INIT + IKE_AUTH with its first
Child SA (one DH per side: IKEv2's first Child SA has no PFS exchange of its own), the
signatures RFC 7427's (RSA PKCS#1 v1.5 over SHA-256 of the octets).

Printed (nothing asserted; figures vary with the machine):

* per authentication method: ms per pair (both engines together), pairs/s, and the time
  spent inside each engine (initiator, responder) with its handshakes/s per side;
* the crypto-only ceiling of the same handshake: per side two DH key pairs and two shared
  secrets (the Main Mode KE and the Quick Mode PFS KE), plus one RSA signature and one
  verification with RSA, timed through ``fswan.ike.dh`` / ``fswan.ike.crypto`` as the
  engine calls them; the share of a pair's time that is this crypto;
* the micro figures behind it: MODP-2048 key pair and shared secret, RSA-2048 sign and
  verify (the IKEv1 form: PKCS#1 v1.5 over the bare hash), and, for reference, the same
  operations straight through ``cryptography`` (OpenSSL, which picks its own exponent).

Every figure is the median of ``--repeat`` runs: compare ratios within one run, the
machine is shared and noisy (../shared/reference/performance.md).  Not measured here:
handshakes over real UDP between daemons or against strongSwan (see the lab scripts).

    python3 bench/ike_handshakes.py [--pairs N] [--repeat R]
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import dh as ossl_dh  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils  # noqa: E402
from cryptography.hazmat.primitives.serialization import load_pem_private_key  # noqa: E402

from fswan.config.model import AuthBy, Ikev2Policy  # noqa: E402
from fswan.config.secrets import Secrets  # noqa: E402
from fswan.ike import crypto, dh  # noqa: E402
from fswan.ike.engine import IkeEngine  # noqa: E402
from tests.ike_pair import (  # noqa: E402
    KEYS,
    Pair,
    conn,
    make_pair,
    rsa_pubkey,
    rsa_secrets,
    seeded,
)

SUITE = {"ike": "aes128-sha1-modp2048", "esp": "aes128-sha1", "pfs": True}


class EngineClock:
    """Time spent inside one engine (wraps its entry points)."""

    def __init__(self, engine: IkeEngine) -> None:
        self.spent = 0.0
        for name in ("initiate", "receive_datagram", "handle_timer", "datagrams_to_send",
                     "next_events", "get_timer"):
            setattr(engine, name, self._timed(getattr(engine, name)))

    def _timed(self, method: Callable) -> Callable:
        def timed(*args, **kwargs):  # type: ignore[no-untyped-def]
            start = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                self.spent += time.perf_counter() - start
        return timed


#: the secrets (and so the RSA key objects) are loaded once and shared by every pair, as a
#: running daemon holds them: OpenSSL's first signature with a fresh key object also builds
#: its Montgomery and blinding state (0.59 ms instead of 0.24 ms here)
_SECRETS: dict[str, Secrets] = {}


def _secrets(side: str) -> Secrets:
    if side not in _SECRETS:
        _SECRETS[side] = rsa_secrets(side)
    return _SECRETS[side]


def make(auth: str, seed: int, version: int = 1) -> Pair:
    suite: dict = dict(SUITE)
    if version == 2:
        suite.update(ikev2=Ikev2Policy.INSIST, ike="aes128-sha2_256-modp2048",
                     esp="aes128-sha2_256")
    if auth == "psk":
        return make_pair(conn(**suite), seed=seed)
    c = conn(authby=AuthBy.RSASIG, leftid="@west", rightid="@east",
             leftrsasigkey=rsa_pubkey("west"), rightrsasigkey=rsa_pubkey("east"), **suite)
    return make_pair(c, west_secrets=_secrets("west"), east_secrets=_secrets("east"),
                     seed=seed)


def handshakes(auth: str, pairs: int, seed: int, version: int = 1) -> tuple[float, float, float]:
    """Seconds per pair: both engines, the initiator alone, the responder alone."""
    total = west = east = 0.0
    for i in range(pairs):
        pair = make(auth, seed + i, version)
        wc, ec = EngineClock(pair.west.engine), EngineClock(pair.east.engine)
        start = time.perf_counter()
        pair.initiate()
        total += time.perf_counter() - start
        west += wc.spent
        east += ec.spent
        if not (pair.west.installed and pair.east.installed):
            raise SystemExit(f"{auth}: the tunnel did not come up:\n{pair.west.text()}")
    return total / pairs, west / pairs, east / pairs


def per_op(function: Callable[[], object], count: int, repeat: int) -> float:
    """Median seconds per call over ``repeat`` runs of ``count`` calls."""
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(count):
            function()
        runs.append((time.perf_counter() - start) / count)
    return statistics.median(runs)


def micro(repeat: int) -> dict[str, float]:
    group = dh.MODP2048
    a = dh.DHKeyPair.generate(group)
    b_public = dh.DHKeyPair.generate(group).public_bytes()
    key = load_pem_private_key((KEYS / "west.key").read_bytes(), None)
    assert isinstance(key, rsa.RSAPrivateKey)
    public = key.public_key()
    h = hashlib.sha1(b"HASH_I").digest()
    sig = crypto.rsa_sign_hash(key, h)
    params = ossl_dh.DHParameterNumbers(group.prime, group.generator).parameters()
    ours = params.generate_private_key()
    theirs = params.generate_private_key().public_key()
    figures = {
        "dh keygen": per_op(lambda: dh.DHKeyPair.generate(group), 40, repeat),
        "dh shared": per_op(lambda: a.shared_secret(b_public), 40, repeat),
        "rsa sign": per_op(lambda: crypto.rsa_sign_hash(key, h), 40, repeat),
        "rsa verify": per_op(lambda: crypto.rsa_verify_hash(public, h, sig), 400, repeat),
        "openssl dh keygen": per_op(params.generate_private_key, 40, repeat),
        "openssl dh shared": per_op(lambda: ours.exchange(theirs), 40, repeat),
        "openssl rsa sign (DigestInfo)": per_op(
            lambda: key.sign(h, padding.PKCS1v15(), utils.Prehashed(hashes.SHA1())), 40, repeat),
    }
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=40, help="handshakes per run (default 40)")
    parser.add_argument("--repeat", type=int, default=5, help="runs; medians printed (default 5)")
    args = parser.parse_args()

    m = micro(args.repeat)
    print("micro (MODP-2048, RSA-2048; median per operation):")
    for name, seconds in m.items():
        print(f"    {name:32s} {seconds * 1e3:7.3f} ms  ({1 / seconds:8.0f}/s)")

    dh_side = 2 * m["dh keygen"] + 2 * m["dh shared"]
    ceilings = {"psk": dh_side, "rsa": dh_side + m["rsa sign"] + m["rsa verify"]}
    print(f"\nMain Mode + Quick Mode with PFS ({SUITE['ike']}, esp={SUITE['esp']}), "
          f"{args.pairs} pairs x {args.repeat} runs, in memory:")
    for auth in ("psk", "rsa"):
        runs = [handshakes(auth, args.pairs, 1 + 1000 * r) for r in range(args.repeat)]
        pair_s = statistics.median(r[0] for r in runs)
        west_s = statistics.median(r[1] for r in runs)
        east_s = statistics.median(r[2] for r in runs)
        side_ceiling = ceilings[auth]
        print(f"  {auth.upper()}: {pair_s * 1e3:6.2f} ms per pair, {1 / pair_s:6.1f} pairs/s")
        print(f"      per side: initiator {west_s * 1e3:6.2f} ms ({1 / west_s:6.1f}/s), "
              f"responder {east_s * 1e3:6.2f} ms ({1 / east_s:6.1f}/s)")
        print(f"      crypto-only ceiling: {side_ceiling * 1e3:5.2f} ms per side "
              f"({1 / side_ceiling:6.1f}/s per side), {2 * side_ceiling * 1e3:5.2f} ms per pair; "
              f"crypto is {2 * side_ceiling / pair_s:4.0%} of a pair (= pairs/s as a share "
              f"of the ceiling)")
    print(f"\nIKEv2: IKE_SA_INIT + IKE_AUTH with its Child SA (aes128-sha2_256-modp2048, "
          f"esp=aes128-sha2_256), {args.pairs} pairs x {args.repeat} runs, in memory:")
    for auth, v1 in (("psk", "psk"), ("rsa", "rsa")):
        figures = v2_figures(auth, args.pairs, args.repeat, m)
        print(f"  {auth.upper()}: {figures['pair'] * 1e3:6.2f} ms per pair, "
              f"{1 / figures['side']:6.1f} handshakes/s per side (the slower), "
              f"{figures['share']:4.0%} of its crypto-only ceiling")


def v2_figures(auth: str, pairs: int, repeat: int, m: dict[str, float]) -> dict[str, float]:
    """IKEv2's medians: seconds per pair and per (slower) side, and the ceiling's share."""
    runs = [handshakes(auth, pairs, 1 + 1000 * r, version=2) for r in range(repeat)]
    pair_s = statistics.median(r[0] for r in runs)
    side_s = max(statistics.median(r[1] for r in runs), statistics.median(r[2] for r in runs))
    ceiling = m["dh keygen"] + m["dh shared"]
    if auth == "rsa":
        ceiling += m["rsa sign"] + m["rsa verify"]
    return {"pair": pair_s, "side": side_s, "share": ceiling / side_s}


if __name__ == "__main__":
    main()
