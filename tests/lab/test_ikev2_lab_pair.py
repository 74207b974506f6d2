"""IKEv2 between two fswan daemons, and IKEv1 next to IKEv2 in one daemon (root, the lab).

* fswan in lab-west and in lab-east, both ``keyexchange=ikev2``, no NAT between them: the
  NAT detection is honest on both sides, so ESP goes raw (protocol 50), and client
  traffic crosses.
* One fswan daemon with an IKEv1 conn and an IKEv2 conn up at once against charon,
  which has one connection of each version: the lab's client nets for IKEv1, a second
  pair of client nets (198.51.100.128/25 and 203.0.113.128/25 added to the lab) for IKEv2.
"""

from __future__ import annotations

import re

import pytest

from tests.lab.lab import sh, wait_for
from tests.lab.test_dataplane_pair import SECRETS, conf, status
from tests.lab.test_dataplane_strongswan import (
    Capture,
    assert_no_clear_client_traffic,
    client_ping,
    tcp_transfer,
)
from tests.lab.test_strongswan_ike import PSK, PSK_SECRETS


@pytest.mark.parametrize("initiator", ["west", "east"])
def test_fswan_pair_over_ikev2_with_raw_esp(lab, tmp_path, initiator):
    text = conf("keyexchange=ikev2\ndpddelay=5s")
    west = lab.fswan("lab-west", text, SECRETS)
    east = lab.fswan("lab-east", text, SECRETS)
    up = (west if initiator == "west" else east).cli("ipsec", "auto", "--up", "net")
    assert up.returncode == 0, up.stdout + west.log() + east.log()
    assert "STATE_V2_ESTABLISHED_CHILD_SA: Child SA established" in up.stdout, up.stdout
    assert re.search(r"\{ESP=>0x[0-9a-f]+ <0x[0-9a-f]+ xfrm=AES_GCM_16_128", up.stdout), up.stdout
    for daemon in (west, east):
        wait_for(lambda: "; erouted" in status(daemon), timeout=10, what="both eroutes")
        text = status(daemon)
        assert "STATE_V2_ESTABLISHED_IKE_SA" in text and "STATE_V2_ESTABLISHED_CHILD_SA" in text
    with Capture("lab-west", str(tmp_path / "wire.pcap")) as capture:
        ping = client_ping(3)
        assert ping.returncode == 0, ping.stdout + west.log() + east.log()
        assert tcp_transfer(4) == 4 << 20
    assert_no_clear_client_traffic(capture)
    wire = capture.read()
    assert "ESP(spi=" in wire and "UDP-encap" not in wire, wire[:2000]
    assert "4500" not in capture.read("udp"), capture.read("udp")[:2000]  # no float either
    west_spis = set(re.findall(r"esp\.([0-9a-f]+)@", status(west)))
    east_spis = set(re.findall(r"esp\.([0-9a-f]+)@", status(east)))
    assert west_spis and west_spis == east_spis
    down = east.cli("ipsec", "auto", "--down", "net")
    assert down.returncode == 0, down.stdout
    wait_for(lambda: "STATE_V2" not in status(west), what="west to act on east's Delete")


CHARON_BOTH = f"""\
connections {{
    v1 {{
        version = 1
        local_addrs = 192.0.2.2
        remote_addrs = 192.0.2.1
        proposals = aes128-sha1-modp2048
        local {{
            auth = psk
            id = 192.0.2.2
        }}
        remote {{
            auth = psk
            id = 192.0.2.1
        }}
        children {{
            net {{
                local_ts = 203.0.113.0/25
                remote_ts = 198.51.100.0/25
                esp_proposals = aes128-sha1
            }}
        }}
    }}
    v2 {{
        version = 2
        local_addrs = 192.0.2.2
        remote_addrs = 192.0.2.1
        proposals = aes128-sha256-modp2048
        local {{
            auth = psk
            id = 192.0.2.2
        }}
        remote {{
            auth = psk
            id = 192.0.2.1
        }}
        children {{
            net2 {{
                local_ts = 203.0.113.128/25
                remote_ts = 198.51.100.128/25
                esp_proposals = aes128-sha256
            }}
        }}
    }}
}}

secrets {{
    ike-lab {{
        id-west = 192.0.2.1
        id-east = 192.0.2.2
        secret = "{PSK}"
    }}
}}
"""

FSWAN_BOTH = """\
version 2
config setup
	interfaces="ipsec0=wan0"

conn v1
	left=192.0.2.1
	leftsubnet=198.51.100.0/25
	right=192.0.2.2
	rightsubnet=203.0.113.0/25
	authby=secret
	keyexchange=ikev1
	ike=aes128-sha1-modp2048
	esp=aes128-sha1
	pfs=no
	keyingtries=1
	auto=add

conn v2
	left=192.0.2.1
	leftsubnet=198.51.100.128/25
	right=192.0.2.2
	rightsubnet=203.0.113.128/25
	authby=secret
	keyexchange=ikev2
	ike=aes128-sha2_256-modp2048
	esp=aes128-sha2_256
	pfs=no
	keyingtries=1
	auto=add
"""


def second_client_nets() -> None:
    """198.51.100.128/25 behind lab-west and 203.0.113.128/25 behind lab-east, on the
    same client namespaces (.129 the gateways, .130 the clients)."""
    for gateway, client, net in (("lab-west", "lab-west-client", "198.51.100"),
                                 ("lab-east", "lab-east-client", "203.0.113")):
        sh("ip", "-n", gateway, "addr", "add", f"{net}.129/25", "dev", "lan0")
        sh("ip", "-n", client, "addr", "add", f"{net}.130/25", "dev", "eth0")


@pytest.mark.parametrize("initiator", ["fswan", "charon"])
def test_an_ikev1_and_an_ikev2_conn_up_at_once(lab, tmp_path, initiator):
    second_client_nets()
    confdir = tmp_path / "east"
    confdir.mkdir()
    (confdir / "swanctl.conf").write_text(CHARON_BOTH)
    lab.script("start-peer", "lab-east", str(confdir))
    west = lab.fswan("lab-west", FSWAN_BOTH, PSK_SECRETS)
    for conn, child in (("v1", "net"), ("v2", "net2")):
        if initiator == "fswan":
            result = west.cli("ipsec", "auto", "--up", conn)
        else:
            result = lab.script("initiate", "lab-east", child, conn, check=False)
        assert result.returncode == 0, result.stdout + result.stderr + west.log()
    sas = lab.swanctl("lab-east", "--list-sas")
    assert re.search(r"^v1: #\d+, ESTABLISHED, IKEv1", sas, re.M), sas
    assert re.search(r"^v2: #\d+, ESTABLISHED, IKEv2", sas, re.M), sas
    assert sas.count("INSTALLED") == 2, sas
    assert re.search(r"remote 198\.51\.100\.128/25", sas), sas
    text = west.cli("ipsec", "auto", "--status").stdout
    v1 = "STATE_MAIN_I4" if initiator == "fswan" else "STATE_MAIN_R3"
    assert re.search(rf'"v1" {v1}', text) and re.search(r'"v2" STATE_V2_ESTABLISHED_IKE_SA',
                                                          text), text
    wait_for(lambda: west.cli("ipsec", "auto", "--status").stdout.count("; erouted") == 2,
             timeout=10, what="both eroutes")
    ping = client_ping(3)
    assert ping.returncode == 0, ping.stdout + west.log()
    ping2 = sh("ip", "netns", "exec", "lab-west-client", "ping", "-c", "3", "-W", "2", "-i", "0.2",
               "-I", "198.51.100.130", "203.0.113.130", check=False)
    assert ping2.returncode == 0, ping2.stdout + west.log()
    sas = lab.swanctl("lab-east", "--list-sas")
    assert len(re.findall(r"in  [0-9a-f]+,\s+[1-9]\d* bytes", sas)) == 2, sas  # both carried
