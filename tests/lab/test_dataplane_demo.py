"""The README's first command, ``scripts/demo.sh``, run for real (root): two fswan gateways
in namespaces, a tunnel, a ping and an iperf3 transfer through it, status, teardown."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def test_demo_script_runs_a_real_tunnel():
    if os.geteuid() != 0:
        pytest.skip("the demo needs root (network namespaces, TUN)")
    for tool in ("twistd", "ipsec", "whack", "iperf3", "tcpdump"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not on PATH (scripts/install-deps.sh)")
    env = dict(os.environ, FSWAN_DEMO_SKIP_INSTALL="1")
    result = subprocess.run(["bash", str(REPO / "scripts" / "demo.sh")], capture_output=True,
                            text=True, timeout=120, env=env, stdin=subprocess.DEVNULL)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "3 packets transmitted, 3 received" in output, output
    assert "receiver" in output and "ESP(spi=" in output, output
    assert "; erouted; eroute owner: #2" in output, output
    assert "demo finished" in output
    assert subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.count(
        "fswan-demo") == 0
