"""virtual_private= and rightsubnet=vnet:/vhost: against strongSwan (root, namespaces):
charon in lab-west is a road warrior behind the lab's real NAPT (192.0.2.3) proposing its
net 198.51.100.0/25; fswan in lab-east accepts it only as its conn's virtual list allows."""

from __future__ import annotations

from tests.lab.lab import wait_for

EAST_CONF = """\
version 2
config setup
	interfaces="ipsec0=wan0"
	virtual_private=%v4:198.51.100.0/24,%v4:!203.0.113.0/24

conn rw
	left=192.0.2.2
	leftid=@east
	leftsubnet=203.0.113.0/25
	right=%any
	rightid=@roadwarrior
	rightsubnet={virtual}
	authby=secret
	ike=aes128-sha1-modp2048
	esp=aes128-sha1
	pfs=no
	auto=add
"""
SECRETS = '@east @roadwarrior : PSK "lab-roadwarrior-psk-0123456789"\n'


def warrior_behind_nat(lab, virtual: str):
    """fswan east with ``rightsubnet=virtual``; charon west initiates through the NAPT."""
    east = lab.fswan("lab-east", EAST_CONF.format(virtual=virtual), SECRETS)
    lab.start_peer("lab-west", "roadwarrior", "west")
    lab.script("nat-west", "on")
    initiate = lab.script("initiate", "lab-west", "net", "lab", check=False)
    return east, initiate


def test_a_natted_warriors_net_inside_virtual_private_is_accepted_and_carries_traffic(lab):
    east, initiate = warrior_behind_nat(lab, "vnet:%priv")
    assert initiate.returncode == 0, initiate.stdout + initiate.stderr + east.log()
    log = east.log()
    assert ("NAT-T: accepting 198.51.100.0/25 as the virtual client of the peer at 192.0.2.3 "
            "(subnet=vnet:%priv)") in log, log
    status = east.cli("ipsec", "auto", "--status").stdout
    assert "STATE_QUICK_R2" in status, status
    wait_for(lambda: "; erouted" in east.cli("ipsec", "auto", "--status").stdout,
             timeout=10, what="east's eroute")
    ping = lab.ping(3)
    assert ping.returncode == 0, ping.stdout + east.log()
    eroute = east.cli("ipsec", "eroute").stdout
    assert "203.0.113.0/25" in eroute and "198.51.100.0/25" in eroute, eroute


def test_a_claim_the_virtual_list_does_not_allow_is_refused_with_the_reason(lab):
    east, initiate = warrior_behind_nat(lab, "vhost:%priv")
    assert initiate.returncode != 0, initiate.stdout
    log = east.log()
    assert ('NAT-T: 198.51.100.0/25 proposed by the peer at 192.0.2.3 is not allowed by '
            'subnet=vhost:%priv of "rw"') in log, log
    assert "cannot respond to IPsec SA request because no connection is known" in log, log
    assert "STATE_QUICK_R2" not in east.cli("ipsec", "auto", "--status").stdout
