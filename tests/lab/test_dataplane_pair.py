"""fswan <-> fswan carrying client traffic (root, namespaces): raw ESP and ESP-in-UDP,
auto=route keying on the first packet, a rekey under a running TCP transfer,
host-to-host (the loop guard), and manual keying."""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.lab.lab import sh, wait_for
from tests.lab.test_dataplane_strongswan import (
    Capture,
    assert_no_clear_client_traffic,
    client_ping,
    tcp_transfer,
)

SECRETS = '192.0.2.1 192.0.2.2 : PSK "fswan-dataplane-pair-psk"\n'


def conf(extra: str = "", auto: str = "add", subnets: bool = True, setup: str = "") -> str:
    """One conn "net" for both gateways; ``extra`` lines override the defaults."""
    keys = {
        "left": "192.0.2.1",
        "right": "192.0.2.2",
        "authby": "secret",
        "ike": "aes128-sha2_256-modp2048",
        "esp": "aes_gcm128",
        "pfs": "no",
        "keyingtries": "1",
    }
    if subnets:
        keys.update(leftsubnet="198.51.100.0/25", rightsubnet="203.0.113.0/25")
    for line in extra.splitlines():
        if line.strip():
            key, _, value = line.strip().partition("=")
            keys[key] = value
    keys["auto"] = auto
    body = "".join(f"\t{key}={value}\n" for key, value in keys.items())
    setup_lines = "".join(f"\t{line}\n" for line in setup.splitlines() if line.strip())
    return f'version 2\nconfig setup\n\tinterfaces="ipsec0=wan0"\n{setup_lines}\nconn net\n{body}'



def status(daemon) -> str:
    return daemon.cli("ipsec", "auto", "--status").stdout


@pytest.mark.parametrize("encapsulation", ["no", "yes"])
def test_fswan_pair_ping_tcp_and_no_clear_packets(lab, tmp_path, encapsulation):
    extra = f"encapsulation={encapsulation}"
    west = lab.fswan("lab-west", conf(extra), SECRETS)
    east = lab.fswan("lab-east", conf(extra), SECRETS)
    result = west.cli("ipsec", "auto", "--up", "net")
    assert result.returncode == 0, result.stdout + west.log() + east.log()
    wait_for(lambda: "; erouted" in status(east), timeout=10, what="east's eroute")
    with Capture("lab-west", str(tmp_path / "wire.pcap")) as capture:
        ping = client_ping(5)
        assert ping.returncode == 0, ping.stdout + west.log() + east.log()
        assert tcp_transfer(8) == 8 << 20
    assert_no_clear_client_traffic(capture)
    wire = capture.read()
    if encapsulation == "no":
        assert "ESP(spi=" in wire and "UDP-encap" not in wire, wire[:2000]
    else:
        assert "UDP-encap" in wire and "ESP(spi=" not in wire.replace("UDP-encap: ESP(spi=", ""), \
            wire[:2000]
    look = west.cli("ipsec", "look").stdout
    assert re.search(r"tun0x[0-9a-f]+@192\.0\.2\.2 ESP_AES_GCM_16_128: dir=out", look), look
    # the kernel offloads were used: east wrote the 8 MB as fewer TUN frames than
    # packets (GSO frames), and west's ESP-in-UDP left in UDP GSO sends
    east_pump = pump_counters(east)
    assert 0 < east_pump["tun_frames"] < east_pump["tun_written"], east_pump
    if encapsulation == "yes":
        assert pump_counters(west)["gso_sends"] > 0, pump_counters(west)


def pump_counters(daemon) -> dict[str, int]:
    """The pump's counters from ``ipsec look``'s ``pump:`` line."""
    look = daemon.cli("ipsec", "look").stdout
    line = next(line for line in look.splitlines() if "pump:" in line)
    return {key: int(value) for key, value in re.findall(r"(\w+)=(\d+)", line)}


def test_auto_route_keys_on_the_first_packet(lab):
    east = lab.fswan("lab-east", conf(), SECRETS)
    west = lab.fswan("lab-west", conf(auto="route"), SECRETS)
    wait_for(lambda: "; prospective erouted" in status(west), timeout=10,
             what="west's %trap eroute")
    assert "%trap" in west.cli("ipsec", "eroute").stdout
    ping = client_ping(4)
    assert ping.returncode == 0, ping.stdout + west.log() + east.log()
    text = status(west)
    assert "; erouted; eroute owner: #" in text, text
    assert "initiate on demand from 198.51.100.10:0 to 203.0.113.10:0 proto=1" in west.log()
    # the SA goes, the trap stays (auto=route keeps its route)
    assert west.cli("ipsec", "auto", "--down", "net").returncode == 0
    wait_for(lambda: "; prospective erouted" in status(west), timeout=10, what="the trap back")
    assert "203.0.113.0/25" in sh("ip", "-n", "lab-west", "route").stdout
    assert west.cli("ipsec", "auto", "--unroute", "net").returncode == 0
    assert "; unrouted" in status(west)
    assert "203.0.113.0/25" not in sh("ip", "-n", "lab-west", "route").stdout


def test_auto_route_failure_installs_failureshunt(lab):
    west = lab.fswan("lab-west", conf("failureshunt=drop", auto="route"), SECRETS)
    # nobody answers on east: after the retransmissions the hold becomes %drop.  Shorten the
    # wait by deleting the state with --down once the acquire has started keying.
    wait_for(lambda: "; prospective erouted" in status(west), timeout=10, what="the trap")
    client_ping(1)
    wait_for(lambda: "; erouted HOLD" in status(west), timeout=5, what="the hold")
    west.cli("ipsec", "auto", "--down", "net")
    wait_for(lambda: "; fail erouted" in status(west), timeout=10, what="the failure shunt")
    assert "%drop" in west.cli("ipsec", "eroute").stdout
    assert "keying failed: failureshunt=drop installed" in west.log()


def test_rekey_during_a_tcp_transfer_loses_no_connection(lab):
    extra = "keylife=12s\nrekeymargin=6s\nrekeyfuzz=0%"
    east = lab.fswan("lab-east", conf(extra), SECRETS)
    west = lab.fswan("lab-west", conf(extra), SECRETS)
    assert west.cli("ipsec", "auto", "--up", "net").returncode == 0, west.log() + east.log()
    server = subprocess.Popen(["ip", "netns", "exec", "lab-east-client", "iperf3", "-s", "-1",
                               "-B", "203.0.113.10"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: ":5201" in sh("ip", "netns", "exec", "lab-east-client", "ss", "-ltn").stdout,
                 timeout=5, what="iperf3 server")
        result = sh("ip", "netns", "exec", "lab-west-client", "iperf3", "-c", "203.0.113.10",
                    "-t", "14", "-b", "40M", "-f", "m", check=False, timeout=60)
    finally:
        server.kill()
        server.wait()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "receiver" in result.stdout
    established = re.findall(r"STATE_QUICK_I2: sent QI2, IPsec SA established", west.log())
    assert len(established) >= 2, west.log()
    text = status(west)
    assert "; erouted; eroute owner: #" in text
    dp = west.cli("ipsec", "look").stdout
    assert "no eroute!" not in dp, dp


def test_host_to_host_does_not_loop(lab):
    west = lab.fswan("lab-west", conf(subnets=False), SECRETS)
    east = lab.fswan("lab-east", conf(subnets=False), SECRETS)
    result = west.cli("ipsec", "auto", "--up", "net")
    assert result.returncode == 0, result.stdout + west.log() + east.log()
    routes = sh("ip", "-n", "lab-west", "route").stdout
    assert re.search(r"192\.0\.2\.2 via 192\.0\.2\.2 dev ipsec0", routes), routes
    ping = sh("ip", "netns", "exec", "lab-west", "ping", "-c", "3", "-i", "0.2", "-W", "2",
              "192.0.2.2", check=False)
    assert ping.returncode == 0, ping.stdout + west.log()
    # IKE still works through the host route: a DPD-free rekey of phase 2 by hand
    assert west.cli("ipsec", "auto", "--up", "net").returncode == 0, west.log()
    assert "; erouted" in status(west)


MANUAL = """\
	spi=0x250
	esp=aes128-sha1
	espenckey=0x00112233445566778899aabbccddeeff
	espauthkey=0x00112233445566778899aabbccddeeff00112233
"""


def test_manual_keying_pair_ping(lab):
    text = conf(MANUAL, auto="manual")
    west = lab.fswan("lab-west", text, SECRETS)
    east = lab.fswan("lab-east", text, SECRETS)
    wait_for(lambda: "; erouted" in status(west) and "; erouted" in status(east), timeout=10,
             what="both manual conns up")
    ping = client_ping(3)
    assert ping.returncode == 0, ping.stdout + west.log() + east.log()
    assert "manually keyed" in status(west)
    result = west.cli("ipsec", "manual", "--down", "net")
    assert result.returncode == 0, result.stdout
    assert client_ping(1).returncode != 0
    result = west.cli("ipsec", "manual", "--up", "net")
    assert result.returncode == 0, result.stdout
    # west starts again at sequence number 1: east's SA, which has anti-replay like
    # every SA, refuses that as a replay until east starts fresh SAs too
    assert client_ping(1).returncode != 0
    assert east.cli("ipsec", "manual", "--down", "net").returncode == 0
    assert east.cli("ipsec", "manual", "--up", "net").returncode == 0
    assert client_ping(2).returncode == 0


@pytest.mark.parametrize("hidetos", ["yes", "no"])
def test_hidetos(lab, tmp_path, hidetos):
    """hidetos=yes (the default) zeroes the outer TOS; no copies the inner one."""
    text = conf(setup=f"hidetos={hidetos}")
    west = lab.fswan("lab-west", text, SECRETS)
    east = lab.fswan("lab-east", text, SECRETS)
    assert west.cli("ipsec", "auto", "--up", "net").returncode == 0, west.log() + east.log()
    with Capture("lab-west", str(tmp_path / "tos.pcap")) as capture:
        ping = sh("ip", "netns", "exec", "lab-west-client", "ping", "-c", "2", "-i", "0.2",
                  "-Q", "0x10", "-W", "2", "203.0.113.10", check=False)
        assert ping.returncode == 0, ping.stdout + west.log()
    out = sh("tcpdump", "-n", "-v", "-r", capture.path, "esp and src 192.0.2.1",
             check=False).stdout
    assert "ESP(spi=" in out, capture.read() + west.cli("ipsec", "look").stdout + ping.stdout
    if hidetos == "yes":
        assert "tos 0x10" not in out, out
    else:
        assert "tos 0x10" in out, out


def test_path_mtu_big_packets(lab):
    """ipsec0's MTU leaves room for ESP: DF packets too big get "frag needed" with that
    MTU, others are fragmented and still get through."""
    west = lab.fswan("lab-west", conf(), SECRETS)
    east = lab.fswan("lab-east", conf(), SECRETS)
    assert west.cli("ipsec", "auto", "--up", "net").returncode == 0, west.log() + east.log()
    link = sh("ip", "-n", "lab-west", "link", "show", "ipsec0").stdout
    assert "mtu 1400" in link, link
    big = sh("ip", "netns", "exec", "lab-west-client", "ping", "-c", "1", "-W", "2", "-M", "do",
             "-s", "1450", "203.0.113.10", check=False)
    assert "mtu = 1400" in big.stdout + big.stderr, big.stdout + big.stderr
    fits = sh("ip", "netns", "exec", "lab-west-client", "ping", "-c", "2", "-W", "2", "-M", "do",
              "-s", "1372", "203.0.113.10", check=False)
    assert fits.returncode == 0, fits.stdout
    fragmented = sh("ip", "netns", "exec", "lab-west-client", "ping", "-c", "2", "-W", "2",
                    "-s", "3000", "203.0.113.10", check=False)
    assert fragmented.returncode == 0, fragmented.stdout + west.cli("ipsec", "look").stdout


def test_auto_start_brings_the_tunnel_up_at_load(lab):
    east = lab.fswan("lab-east", conf(), SECRETS)
    west = lab.fswan("lab-west", conf(auto="start"), SECRETS)
    wait_for(lambda: "; erouted; eroute owner: #" in status(west), timeout=15,
             what="auto=start's tunnel")
    ping = client_ping(3)
    assert ping.returncode == 0, ping.stdout + west.log() + east.log()


def test_a_crashed_daemon_fails_closed_and_the_next_one_takes_over(lab, tmp_path):
    """KLIPS kept its eroutes when pluto died; fswan keeps ipsec0 and its routes when the
    daemon dies (SIGKILL), so the clients' traffic is dropped, not sent in clear."""
    east = lab.fswan("lab-east", conf(), SECRETS)
    west = lab.fswan("lab-west", conf(), SECRETS)
    assert west.cli("ipsec", "auto", "--up", "net").returncode == 0, west.log()
    assert client_ping(2).returncode == 0
    west.process.kill()
    west.process.wait()
    routes = sh("ip", "-n", "lab-west", "route").stdout
    assert re.search(r"203\.0\.113\.0/25 .*dev ipsec0", routes), routes
    with Capture("lab-west", str(tmp_path / "wire.pcap")) as capture:
        assert client_ping(3).returncode != 0
    assert_no_clear_client_traffic_or_nothing(capture)
    # a new daemon attaches to the ipsec0 it finds, says so, and carries traffic again
    again = lab.fswan("lab-west", conf(), SECRETS, name="restarted")
    assert "ipsec0 was left by a daemon that did not shut down" in again.log(), again.log()
    up = again.cli("ipsec", "auto", "--up", "net")
    assert up.returncode == 0, up.stdout + again.log() + east.log()
    wait_for(lambda: client_ping(1).returncode == 0, timeout=10, what="traffic after the restart")
    # a clean shutdown takes ipsec0 and its routes away
    again.stop()
    assert sh("ip", "-n", "lab-west", "link", "show", "ipsec0", check=False).returncode != 0
    assert "ipsec0" not in sh("ip", "-n", "lab-west", "route").stdout


def assert_no_clear_client_traffic_or_nothing(capture: Capture) -> None:
    """No client address on the wire (here nothing at all need be seen)."""
    clear = capture.read("net 198.51.100.0/25 or net 203.0.113.0/25")
    assert clear.strip() == "", f"client packets in clear on the wire:\n{clear}"


NAT_SECRETS = '@west @east : PSK "fswan-dataplane-pair-psk"\n'


def test_a_nat_that_changes_its_public_address_is_followed_by_a_rekey(lab):
    """west behind the lab's NAPT (192.0.2.3); the NAT box then comes back as 192.0.2.4
    (its old mappings gone): east sees west's next DPD probe from there, replaces the
    IPsec SAs at once, and traffic flows again."""
    lab.script("nat-west", "on")
    east = lab.fswan("lab-east", conf("leftid=@west\nrightid=@east\nleft=%any\n"), NAT_SECRETS)
    west = lab.fswan("lab-west", conf("leftid=@west\nrightid=@east\ndpddelay=1s\ndpdtimeout=20s"),
                     NAT_SECRETS)
    up = west.cli("ipsec", "auto", "--up", "net")
    assert up.returncode == 0, up.stdout + west.log() + east.log()
    assert client_ping(2).returncode == 0
    assert "esp." in status(east) and "@192.0.2.3" in east.cli("ipsec", "look").stdout
    # the NAT box gets a new public address; its old mappings are gone
    sh("ip", "-n", "lab-west", "addr", "add", "192.0.2.4/24", "dev", "wan0")
    sh("ip", "-n", "lab-west", "addr", "del", "192.0.2.3/24", "dev", "wan0")
    rules = sh("ip", "netns", "exec", "lab-west", "nft", "list", "table", "ip", "lab_nat").stdout
    sh("ip", "netns", "exec", "lab-west", "nft", "delete", "table", "ip", "lab_nat")
    moved = subprocess.run(["ip", "netns", "exec", "lab-west", "nft", "-f", "-"],
                           input=rules.replace("192.0.2.3", "192.0.2.4"), text=True,
                           capture_output=True)
    assert moved.returncode == 0, moved.stderr
    flush = subprocess.run(["ip", "netns", "exec", "lab-west", "python3", "-c",
                            "from pyroute2 import Conntrack; Conntrack().flush()"],
                           capture_output=True, text=True)
    assert flush.returncode == 0, flush.stderr
    wait_for(lambda: "peer moved from 192.0.2.3:14500 to 192.0.2.4:14500" in east.log(),
             timeout=15, what="east noticing the new address")
    assert "initiate to replace" in east.log(), east.log()[-3000:]
    wait_for(lambda: client_ping(1).returncode == 0, timeout=15, what="traffic through the new SA")
    look = east.cli("ipsec", "look").stdout
    assert "@192.0.2.4" in look, look
