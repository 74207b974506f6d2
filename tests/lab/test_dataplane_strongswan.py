"""Real traffic through fswan's data plane against strongSwan (root, namespaces).

fswan runs in lab-west with ``ipsec0`` (TUN) and the pump; strongSwan with
kernel-libipsec in lab-east.  strongSwan forces ESP-in-UDP, so these carry
RFC 3948 ESP on the IKE driver's 4500 socket.
"""

from __future__ import annotations

import re
import subprocess
import time

import pytest

from tests.lab.lab import sh, wait_for
from tests.lab.test_strongswan_ike import PSK_SECRETS, psk_conf


def client_ping(count: int = 3, ns: str = "lab-west-client", dst: str = "203.0.113.10"):
    return sh("ip", "netns", "exec", ns, "ping", "-c", str(count), "-W", "2", "-i", "0.2", dst,
              check=False)


def tcp_transfer(megabytes: int = 4, server_ns: str = "lab-east-client",
                 server_ip: str = "203.0.113.10", client_ns: str = "lab-west-client",
                 port: int = 5201) -> int:
    """Send ``megabytes`` MB client-to-client over TCP; the bytes the server received."""
    server = subprocess.Popen(
        ["ip", "netns", "exec", server_ns, "python3", "-c",
         "import socket,sys\n"
         f"s=socket.socket(socket.AF_INET6 if ':' in '{server_ip}' else socket.AF_INET)\n"
         "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
         f"s.bind(('{server_ip}', {port})); s.listen(1); s.settimeout(30)\n"
         "c,_=s.accept(); c.settimeout(30); n=0\n"
         "while True:\n"
         "    b=c.recv(65536)\n"
         "    if not b: break\n"
         "    n+=len(b)\n"
         "print(n)\n"],
        stdout=subprocess.PIPE, text=True,
    )
    time.sleep(0.4)
    client = sh("ip", "netns", "exec", client_ns, "python3", "-c",
                "import socket\n"
                f"s=socket.create_connection(('{server_ip}', {port}), timeout=20)\n"
                f"s.sendall(b'x' * ({megabytes} << 20)); s.close()\n", check=False, timeout=60)
    out, _ = server.communicate(timeout=60)
    assert client.returncode == 0, client.stderr
    return int(out.strip() or 0)


class Capture:
    """tcpdump on a gateway's wan0 for the length of a ``with`` block."""

    def __init__(self, ns: str, path: str, device: str = "wan0") -> None:
        self.ns, self.path, self.device = ns, path, device

    def __enter__(self) -> "Capture":
        self.process = subprocess.Popen(
            ["ip", "netns", "exec", self.ns, "tcpdump", "-n", "-U", "--immediate-mode", "-s", "200",
             "-i", self.device, "-w", self.path],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        # tcpdump says "listening on ..." once the capture is attached
        seen = []
        while not seen or "listening on" not in seen[-1]:
            line = self.process.stderr.readline()
            assert line, f"tcpdump did not start: {seen}"
            seen.append(line)
        time.sleep(0.2)
        return self

    def __exit__(self, *exc) -> None:
        time.sleep(0.3)
        self.process.terminate()
        self.process.wait(timeout=10)

    def read(self, expression: str = "") -> str:
        argv = ["tcpdump", "-n", "-r", self.path]
        if expression:
            argv.append(expression)
        return sh(*argv, check=False).stdout


def assert_no_clear_client_traffic(capture: Capture) -> None:
    """Neither client's address may appear in a packet header on the wire."""
    clear = capture.read("net 198.51.100.0/25 or net 203.0.113.0/25")
    assert clear.strip() == "", f"client packets in clear on the wire:\n{clear}"
    everything = capture.read()
    assert re.search(r"UDP-encap|ESP\(spi=|udp", everything), everything


@pytest.mark.parametrize("initiator", ["fswan", "strongswan"])
def test_ping_and_tcp_through_fswan_to_strongswan(lab, tmp_path, initiator):
    lab.start_peer("lab-east", "psk-main", "east")
    west = lab.fswan("lab-west", psk_conf(), PSK_SECRETS)
    assert client_ping(1).returncode != 0  # no tunnel, no way through
    if initiator == "fswan":
        result = west.cli("ipsec", "auto", "--up", "net")
        assert result.returncode == 0, result.stdout + west.log()
    else:
        result = lab.script("initiate", "lab-east", "net", "lab", check=False)
        assert result.returncode == 0, result.stdout + result.stderr + west.log()
    try:
        wait_for(lambda: "; erouted" in west.cli("ipsec", "auto", "--status").stdout, timeout=10,
                 what="the eroute")
    except AssertionError:
        raise AssertionError(west.cli("ipsec", "auto", "--status").stdout + west.log()) from None
    with Capture("lab-west", str(tmp_path / "wire.pcap")) as capture:
        ping = client_ping(5)
        assert ping.returncode == 0, ping.stdout + west.log()
        assert tcp_transfer(4) == 4 << 20
    assert_no_clear_client_traffic(capture)
    status = west.cli("ipsec", "auto", "--status").stdout
    assert re.search(r'"net": 198\.51\.100\.0/25===192\.0\.2\.1\.\.\.192\.0\.2\.2===203\.0\.113\.0/25;'
                     r' erouted; eroute owner: #\d+', status), status
    assert re.search(r'#\d+: "net" used \d+s ago; esp\.[0-9a-f]+@192\.0\.2\.2', status), status
    eroute = west.cli("ipsec", "eroute").stdout
    assert re.search(r"198\.51\.100\.0/25\s+-> 203\.0\.113\.0/25\s+=> tun0x[0-9a-f]+@192\.0\.2\.2",
                     eroute), eroute
    # the route went in with the SA and goes with it
    routes = sh("ip", "-n", "lab-west", "route").stdout
    assert "203.0.113.0/25" in routes and "ipsec0" in routes, routes
    assert west.cli("ipsec", "auto", "--down", "net").returncode == 0
    wait_for(lambda: "203.0.113.0/25" not in sh("ip", "-n", "lab-west", "route").stdout,
             timeout=10, what="unroute after the last SA went")
    assert client_ping(1).returncode != 0
