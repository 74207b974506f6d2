"""``ipsec setup start``/``restart``/``stop`` bring a tunnel up and down (root, namespaces).

Two fswan gateways in namespaces of this test's own (``fswan-svc-*``), each run by
``ipsec setup`` on temporary paths: west's conn is ``auto=start``, east's
``auto=add``.  After ``start`` the clients ping each other through the tunnel;
``ipsec setup status`` counts the SAs; ``ipsec verify`` passes on a well-set
gateway and flags a strict ``rp_filter`` planted on it; ``restart`` brings the
tunnel back; ``stop`` deletes the SAs (east hears of it) and removes ``ipsec0``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.lab.lab import build_lab_chain, delete_namespaces, sh, wait_for

NS = {"wc": "fswan-svc-wc", "wg": "fswan-svc-wg", "eg": "fswan-svc-eg", "ec": "fswan-svc-ec"}
SECRETS = '192.0.2.1 192.0.2.2 : PSK "fswan-setup-lab-psk"\n'


def conf(auto: str) -> str:
    return f"""\
version 2
config setup
	interfaces="ipsec0=wan0"

conn net
	authby=secret
	left=192.0.2.1
	leftsubnet=198.51.100.0/25
	right=192.0.2.2
	rightsubnet=203.0.113.0/25
	ike=aes128-sha2_256-modp2048
	esp=aes_gcm128
	auto={auto}
"""


def build() -> None:
    build_lab_chain(NS)


class Gateway:
    """One gateway's files, and ``ipsec`` run inside its namespace."""

    def __init__(self, directory: Path, ns: str, auto: str) -> None:
        self.dir, self.ns = directory, ns
        directory.mkdir(parents=True)
        (directory / "ipsec.conf").write_text(conf(auto))
        (directory / "ipsec.secrets").write_text(SECRETS)
        os.chmod(directory / "ipsec.secrets", 0o600)
        self.ctlbase = str(directory / "run" / "pluto")

    def ipsec(self, command: str, *argv: str, timeout: float = 90) -> subprocess.CompletedProcess:
        tool = shutil.which("ipsec")
        assert tool, "ipsec not on PATH"
        extra = ["--logfile", str(self.dir / "pluto.log")] if command == "setup" else []
        return sh("ip", "netns", "exec", self.ns, tool, command, "--config", str(self.dir / "ipsec.conf"),
                  "--ctlbase", self.ctlbase, *extra, *argv, check=False, timeout=timeout)

    def log(self) -> str:
        path = self.dir / "pluto.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def has_ipsec0(self) -> bool:
        return sh("ip", "-n", self.ns, "link", "show", "ipsec0", check=False).returncode == 0


def ping() -> subprocess.CompletedProcess:
    return sh("ip", "netns", "exec", NS["wc"], "ping", "-c", "2", "-W", "1", "-i", "0.3",
              "203.0.113.10", check=False)


@pytest.fixture
def gateways(tmp_path):
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("needs root and iproute2 (network namespaces)")
    build()
    west = Gateway(tmp_path / "west", NS["wg"], "start")
    east = Gateway(tmp_path / "east", NS["eg"], "add")
    try:
        yield west, east
    finally:
        for gateway in (west, east):
            gateway.ipsec("setup", "stop", timeout=60)
        delete_namespaces(NS.values())


def test_setup_brings_the_tunnel_up_and_down(gateways):
    west, east = gateways
    for gateway in (east, west):
        result = gateway.ipsec("setup", "start")
        assert result.returncode == 0, result.stdout + result.stderr + gateway.log()
        assert "started (pid" in result.stdout
    assert west.has_ipsec0() and east.has_ipsec0()

    wait_for(lambda: ping().returncode == 0, timeout=30, what="ping through the tunnel")
    result = west.ipsec("setup", "status")
    assert result.returncode == 0 and "1 conn loaded (1 routed)" in result.stdout, result.stdout
    assert "1 ISAKMP SA, 1 IPsec SA" in result.stdout, result.stdout

    result = west.ipsec("verify")
    assert result.returncode == 0, result.stdout
    assert "Checking rp_filter on wan0 (0: off)" in result.stdout
    sh("ip", "netns", "exec", NS["wg"], "sysctl", "-qw", "net.ipv4.conf.wan0.rp_filter=1")
    result = west.ipsec("verify")
    assert result.returncode == 1 and "Checking rp_filter on wan0 (1: strict)" in result.stdout, result.stdout
    sh("ip", "netns", "exec", NS["wg"], "sysctl", "-qw", "net.ipv4.conf.wan0.rp_filter=0")

    result = west.ipsec("setup", "restart")
    assert result.returncode == 0, result.stdout + result.stderr + west.log()
    wait_for(lambda: ping().returncode == 0, timeout=30, what="ping after restart")

    result = west.ipsec("setup", "stop")
    assert result.returncode == 0 and "stopped" in result.stdout, result.stdout + result.stderr
    assert not west.has_ipsec0(), "ipsec0 left after ipsec setup stop"
    assert west.ipsec("setup", "status").returncode == 3
    # west's Deletes reached east: no IPsec SA left there
    wait_for(lambda: "0 IPsec SAs" in east.ipsec("setup", "status").stdout, timeout=15,
             what="east dropping the SAs west deleted")
    assert ping().returncode != 0

    result = east.ipsec("setup", "stop")
    assert result.returncode == 0 and not east.has_ipsec0()
    for gateway in (west, east):
        assert "Traceback" not in gateway.log() and "fswan-setup-lab-psk" not in gateway.log()
