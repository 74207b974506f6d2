"""fswan against fswan across the lab wire (lab-west <-> lab-east), no NAT: plain ESP mode."""

from __future__ import annotations

import re

CONF = """\
version 2
config setup
	interfaces="ipsec0=wan0"

conn net
	left=192.0.2.1
	leftsubnet=198.51.100.0/25
	right=192.0.2.2
	rightsubnet=203.0.113.0/25
	authby=secret
	ike=aes256-sha2_256-modp3072
	esp=aes_gcm256
	pfs=yes
	dpddelay=5s
	keyingtries=1
	auto=add
"""
SECRETS = '192.0.2.1 192.0.2.2 : PSK "fswan-pair-test-psk"\n'


def test_fswan_pair_main_and_quick_mode_with_pfs(lab):
    west = lab.fswan("lab-west", CONF, SECRETS)
    east = lab.fswan("lab-east", CONF, SECRETS)
    result = west.cli("ipsec", "auto", "--up", "net")
    assert result.returncode == 0, result.stdout + west.log() + east.log()
    assert "STATE_QUICK_I2: sent QI2, IPsec SA established" in result.stdout
    assert "xfrm=AES_GCM_16_256" in result.stdout, result.stdout
    east_status = east.cli("ipsec", "auto", "--status").stdout
    assert re.search(r'#\d+: "net" STATE_QUICK_R2 \(IPsec SA established\)', east_status), east_status
    # no NAT between them: no float to 4500, plain tunnel mode
    assert "NATD" not in result.stdout or "NATD=none" in result.stdout, result.stdout
    # the SPIs each side reports are the other's mirror image
    west_spis = set(re.findall(r"esp\.([0-9a-f]+)@", west.cli("ipsec", "auto", "--status").stdout))
    east_spis = set(re.findall(r"esp\.([0-9a-f]+)@", east_status))
    assert west_spis and west_spis == east_spis

    result = east.cli("ipsec", "auto", "--down", "net")
    assert result.returncode == 0
    from tests.lab.lab import wait_for
    wait_for(lambda: "STATE_QUICK_I2" not in west.cli("ipsec", "auto", "--status").stdout,
             what="west to act on east's Delete payloads")
