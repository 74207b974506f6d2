"""L2TP/IPsec behind NAT (issue 13 item 4), fswan <-> fswan (root, namespaces): fswan in
lab-west is the client behind the lab's NAPT (192.0.2.1 seen as 192.0.2.3), fswan in lab-east
the gateway with the xl2tpd conns as written in the wild.  A UDP datagram to port 1701, its
checksum computed by west's kernel over the private address, must reach a socket on east
intact, and the answer must come back the same way."""

from __future__ import annotations

import subprocess
import sys

from tests.lab.lab import sh, wait_for

GATEWAY_CONF = """\
version 2
config setup
	interfaces="ipsec0=wan0"
	virtual_private=%v4:192.0.2.0/24

conn L2TP-PSK-NAT
	rightsubnet=vhost:%priv,%no
	also=L2TP-PSK-noNAT

conn L2TP-PSK-noNAT
	authby=secret
	pfs=no
	auto=add
	keyingtries=3
	rekey=no
	ikelifetime=8h
	keylife=1h
	type=transport
	left=192.0.2.2
	leftprotoport=17/1701
	right=%any
	rightprotoport=17/%any
	dpddelay=40
	dpdtimeout=130
	dpdaction=clear
"""
CLIENT_CONF = """\
version 2
config setup
	interfaces="ipsec0=wan0"

conn l2tp
	type=transport
	left=192.0.2.1
	leftprotoport=17/1701
	right=192.0.2.2
	rightprotoport=17/1701
	authby=secret
	pfs=no
	keyingtries=1
	auto=add
"""
PSK = "l2tp-nat-lab-psk-0123456789"
GATEWAY_SECRETS = f'192.0.2.2 %any : PSK "{PSK}"\n'
CLIENT_SECRETS = f'192.0.2.1 192.0.2.2 : PSK "{PSK}"\n'

#: east's L2TP "daemon": one datagram in on 1701, its source and bytes printed, echoed back
ECHO = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("192.0.2.2", 1701))
s.settimeout(20)
print("ready", flush=True)
data, peer = s.recvfrom(65535)
print(peer[0], peer[1], data.hex(), flush=True)
s.sendto(b"reply:" + data, peer)
"""
#: west's L2TP client: the kernel computes the UDP checksum over 192.0.2.1
SEND = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("192.0.2.1", 1701))
s.settimeout(10)
s.sendto(bytes.fromhex(sys.argv[1]), ("192.0.2.2", 1701))
data, peer = s.recvfrom(65535)
print(peer[0], peer[1], data.hex(), flush=True)
"""
#: an L2TP SCCRQ-like header and enough bytes to make a checksum error likely
PAYLOAD = bytes.fromhex("c802003c00000000") + bytes(range(256)) * 2


def udp_csum_errors(ns: str) -> int:
    snmp = sh("ip", "netns", "exec", ns, "cat", "/proc/net/snmp").stdout.splitlines()
    names, values = [line.split() for line in snmp if line.startswith("Udp:")][:2]
    return int(values[names.index("InCsumErrors")])


def test_l2tp_transport_mode_behind_napt_reaches_the_gateways_socket_intact(lab):
    lab.script("nat-west", "on")
    east = lab.fswan("lab-east", GATEWAY_CONF, GATEWAY_SECRETS)
    west = lab.fswan("lab-west", CLIENT_CONF, CLIENT_SECRETS)
    up = west.cli("ipsec", "auto", "--up", "l2tp")
    assert up.returncode == 0, up.stdout + west.log() + east.log()
    assert "ESP/NAT/transport" in up.stdout, up.stdout
    log = east.log()
    assert ("NAT-OA: the peer's original address is 192.0.2.1 (we see 192.0.2.3), "
            "ours as it sees it 192.0.2.2") in log, log
    assert "NAT-T: accepting 192.0.2.1/32 as the virtual client of the peer at 192.0.2.3" in log
    assert "the peer's client 192.0.2.1/32 is reached at its public address 192.0.2.3" in log
    assert "NAT-OA: the peer's original address is 192.0.2.2" in west.log()
    wait_for(lambda: "; erouted" in east.cli("ipsec", "auto", "--status").stdout,
             timeout=10, what="east's eroute")
    errors_before = udp_csum_errors("lab-east"), udp_csum_errors("lab-west")

    server = subprocess.Popen(["ip", "netns", "exec", "lab-east", sys.executable, "-c", ECHO],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert server.stdout.readline().strip() == "ready"
        client = sh("ip", "netns", "exec", "lab-west", sys.executable, "-c", SEND, PAYLOAD.hex(),
                    check=False, timeout=30)
        out, err = server.communicate(timeout=30)
    finally:
        if server.poll() is None:
            server.kill()
    # the gateway's socket got the datagram, from the client's public address, intact
    assert out.split() == ["192.0.2.3", "1701", PAYLOAD.hex()], out + err + east.log()
    # and the client got the answer through the SA, from the gateway, intact
    assert client.returncode == 0, client.stdout + client.stderr + west.log()
    assert client.stdout.split() == ["192.0.2.2", "1701", (b"reply:" + PAYLOAD).hex()]
    assert (udp_csum_errors("lab-east"), udp_csum_errors("lab-west")) == errors_before
