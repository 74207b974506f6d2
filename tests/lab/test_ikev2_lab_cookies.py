"""IKEv2 cookies under a flood (root, the lab): spoofed IKE_SA_INIT requests from many
addresses and ports at fswan in lab-west make it demand cookies (RFC 7296 2.6) -- forced
with ``ddos-mode=busy`` or reached from ``ddos-ike-threshold=`` --, every flood packet gets
at most that one stateless answer, and charon, initiating meanwhile, returns the cookie and
gets its tunnel."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.lab.lab import sh
from tests.lab.test_ikev2_lab import bring_up, counter, ping_through, start_charon_v2, v2_conf
from tests.lab.test_strongswan_ike import PSK_SECRETS

FLOOD = Path(__file__).resolve().parent / "ikev2_flood.py"
#: the flood's source addresses besides charon's own (added to lab-east's wan0)
SPOOFED = ["192.0.2.100", "192.0.2.101", "192.0.2.102"]


@pytest.mark.parametrize("setup", ["ddos-mode=busy", "ddos-ike-threshold=20"])
def test_a_flood_gets_cookie_demands_and_charon_still_gets_in(lab, tmp_path, setup):
    start_charon_v2(lab, tmp_path)
    conf = v2_conf().replace('\tinterfaces="ipsec0=wan0"\n',
                             f'\tinterfaces="ipsec0=wan0"\n\t{setup}\n')
    west = lab.fswan("lab-west", conf, PSK_SECRETS)
    for address in SPOOFED:
        sh("ip", "-n", "lab-east", "addr", "add", f"{address}/24", "dev", "wan0")
    binds = [arg for address in ["192.0.2.2", *SPOOFED] for arg in ("--bind", address)]
    flood = subprocess.Popen(
        ["ip", "netns", "exec", "lab-east", sys.executable, str(FLOOD), "--target", "192.0.2.1",
         *binds, "--count", "3000", "--rate", "1000"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)
    assert flood.poll() is None, flood.communicate()
    out = bring_up(lab, west, "charon")
    flooding_still = flood.poll() is None
    figures, err = flood.communicate(timeout=60)
    assert flood.returncode == 0, err
    counts = json.loads(figures)
    print(f"\n{setup}: flood {counts}; charon keyed during the flood: {flooding_still}; {out}")
    assert flooding_still
    assert counts["replies"] <= counts["sent"] and counts["other"] == 0, counts
    if setup == "ddos-mode=busy":
        assert counts["cookie"] == counts["sent"], counts
    else:
        # state for the first 20 (from charon's address: the others have no conn and are
        # refused without state), then only cookie demands
        assert counts["state"] == 20, counts
        assert counts["cookie"] >= counts["sent"] - 200, counts
    log = lab.charon_log("lab-east")
    assert "generating IKE_SA_INIT request 0 [ N(COOKIE) SA KE No" in log, log[-4000:]
    sas = lab.swanctl("lab-east", "--list-sas")
    assert "ESTABLISHED" in sas and "INSTALLED" in sas, sas
    assert counter(west, "cookies_sent") >= counts["cookie"], west.log()[-3000:]
    assert counter(west, "cookies_verified") >= 1
    ping_through(west)
