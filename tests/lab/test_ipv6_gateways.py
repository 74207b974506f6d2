"""IKE and ESP over IPv6 (root, namespaces of their own): IPv6 clients behind each gateway,
the tunnel brought up, ping and TCP client to client, nothing of the clients' in clear.
fswan against fswan (raw ESP and ESP-in-UDP) and against strongSwan's charon (the lab's
peer script, started in our east namespace with an IPv6 swanctl.conf; kernel-libipsec
forces ESP-in-UDP), fswan initiating and responding."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.lab.lab import (
    GATEWAY_CHAIN,
    LAB_DIR,
    SCRIPT,
    FswanDaemon,
    build_namespaces,
    delete_namespaces,
    sh,
    wait_for,
)
from tests.lab.test_dataplane_strongswan import Capture, tcp_transfer
from tests.lab.test_dataplane_pair import pump_counters

NS = {"wc": "fswan-v6-wc", "wg": "fswan-v6-wg", "eg": "fswan-v6-eg", "ec": "fswan-v6-ec"}
WEST_GW, EAST_GW = "2001:db8:1::1", "2001:db8:1::2"
WEST_NET, EAST_NET = "2001:db8:a::/64", "2001:db8:b::/64"
WEST_CLIENT, EAST_CLIENT = "2001:db8:a::10", "2001:db8:b::10"
PSK = "fswan-ipv6-lab-psk-0123456789"

CONF = f"""\
version 2
config setup
	interfaces="ipsec0=wan0"

conn v6
	left={WEST_GW}
	leftsubnet={WEST_NET}
	right={EAST_GW}
	rightsubnet={EAST_NET}
	authby=secret
	ike=aes128-sha2_256-modp2048
	esp=aes_gcm128
	pfs=no
	keyingtries=1
	encapsulation={{encapsulation}}
	auto=add
"""


def teardown() -> None:
    delete_namespaces(NS.values())


def build() -> None:
    build_namespaces(NS, GATEWAY_CHAIN)
    for ns, address, device in (("wc", f"{WEST_CLIENT}/64", "eth0"), ("ec", f"{EAST_CLIENT}/64", "eth0"),
                                ("wg", "2001:db8:a::1/64", "lan0"), ("wg", f"{WEST_GW}/64", "wan0"),
                                ("eg", "2001:db8:b::1/64", "lan0"), ("eg", f"{EAST_GW}/64", "wan0")):
        sh("ip", "-n", NS[ns], "-6", "addr", "add", address, "dev", device, "nodad")
    sh("ip", "-n", NS["wc"], "-6", "route", "add", "default", "via", "2001:db8:a::1")
    sh("ip", "-n", NS["ec"], "-6", "route", "add", "default", "via", "2001:db8:b::1")
    for gw in ("wg", "eg"):
        sh("ip", "netns", "exec", NS[gw], "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1")


CHARON_EAST = f"""\
connections {{
    lab {{
        version = 1
        aggressive = no
        local_addrs = {EAST_GW}
        remote_addrs = {WEST_GW}
        proposals = aes128-sha1-modp2048
        local {{
            auth = psk
            id = {EAST_GW}
        }}
        remote {{
            auth = psk
            id = {WEST_GW}
        }}
        children {{
            net {{
                local_ts = {EAST_NET}
                remote_ts = {WEST_NET}
                esp_proposals = aes128-sha1
                mode = tunnel
                start_action = none
            }}
        }}
    }}
}}

secrets {{
    ike-lab {{
        id-west = {WEST_GW}
        id-east = {EAST_GW}
        secret = "{PSK}"
    }}
}}
"""


@pytest.fixture
def v6_lab(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("lab tests need root (network namespaces, veth, TUN)")
    build()
    daemons: list[FswanDaemon] = []
    charon: list[str] = []
    secrets = f'{WEST_GW} {EAST_GW} : PSK "{PSK}"\n'

    def start(encapsulation: str, east: str = "fswan") -> tuple[FswanDaemon, FswanDaemon | None]:
        conf = CONF.format(encapsulation=encapsulation)
        if east == "charon":
            if not SCRIPT.exists():
                pytest.skip(f"no interop lab at {LAB_DIR} (set FSWAN_LAB_DIR)")
            confdir = tmp_path / "charon-east"
            confdir.mkdir()
            (confdir / "swanctl.conf").write_text(CHARON_EAST)
            sh(str(SCRIPT), "start-peer", NS["eg"], str(confdir))
            charon.append(NS["eg"])
            conf = conf.replace("esp=aes_gcm128", "esp=aes128-sha1").replace(
                "aes128-sha2_256-modp2048", "aes128-sha1-modp2048")
        else:
            daemon = FswanDaemon(tmp_path / "eg", NS["eg"], conf, secrets)
            daemon.start()
            daemons.append(daemon)
        west = FswanDaemon(tmp_path / "wg", NS["wg"], conf, secrets)
        west.start()
        daemons.append(west)
        return west, (daemons[0] if east == "fswan" else None)

    try:
        yield start
    finally:
        for daemon in daemons:
            daemon.stop()
        for ns in charon:
            sh(str(SCRIPT), "stop-peer", ns, check=False)
        teardown()


def client(ns: str, *argv: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", "netns", "exec", NS[ns], *argv], capture_output=True, text=True,
                          timeout=timeout)


def check_traffic(tmp_path, logs) -> str:
    """Ping and 4 MB of TCP client to client with tcpdump on west's wire; the capture."""
    with Capture(NS["wg"], str(tmp_path / "wire.pcap")) as capture:
        ping = client("wc", "ping", "-6", "-c", "3", "-W", "2", "-i", "0.2", EAST_CLIENT)
        assert ping.returncode == 0, ping.stdout + logs()
        assert tcp_transfer(4, NS["ec"], EAST_CLIENT, NS["wc"]) == 4 << 20, logs()
    wire = capture.read()
    assert WEST_CLIENT not in wire and EAST_CLIENT not in wire, wire[:2000]
    return wire


@pytest.mark.parametrize("encapsulation", ["no", "yes"])
def test_ipv6_fswan_gateways_carry_ipv6_clients(v6_lab, tmp_path, encapsulation):
    west, east = v6_lab(encapsulation)
    up = west.cli("ipsec", "auto", "--up", "v6")
    assert up.returncode == 0, up.stdout + west.log() + east.log()
    wait_for(lambda: "; erouted" in east.cli("ipsec", "auto", "--status").stdout, timeout=10,
             what="east's eroute")
    wire = check_traffic(tmp_path, lambda: west.log() + east.log())
    if encapsulation == "no":
        assert "ESP(spi=" in wire and "UDP-encap" not in wire, wire[:2000]
    else:
        assert "UDP-encap" in wire, wire[:2000]
    look = west.cli("ipsec", "look").stdout
    assert f"@{EAST_GW}" in look, look
    # east wrote the IPv6 TCP stream into its ipsec0 as GSO frames
    east_pump = pump_counters(east)
    assert 0 < east_pump["tun_frames"] < east_pump["tun_written"], east_pump


@pytest.mark.parametrize("initiator", ["fswan", "charon"])
def test_ipv6_against_strongswan(v6_lab, tmp_path, initiator):
    west, _ = v6_lab("auto", east="charon")

    def logs() -> str:
        path = f"/tmp/lab-strongswan/{NS['eg']}/charon.log"
        return west.log() + (open(path).read() if os.path.exists(path) else "")

    if initiator == "fswan":
        up = west.cli("ipsec", "auto", "--up", "v6")
        assert up.returncode == 0, up.stdout + logs()
    else:
        sh(str(SCRIPT), "initiate", NS["eg"], "net", "lab")
        wait_for(lambda: "; erouted" in west.cli("ipsec", "auto", "--status").stdout,
                 timeout=10, what="west's eroute")
    sas = sh(str(SCRIPT), "swanctl", NS["eg"], "--list-sas").stdout
    assert "ESTABLISHED" in sas and "INSTALLED" in sas, sas
    assert f"{WEST_NET}" in sas or "2001:db8:a::/64" in sas, sas
    wire = check_traffic(tmp_path, logs)
    assert "UDP-encap" in wire, wire[:2000]
