"""IKEv1 interop: fswan in lab-west against strongSwan's charon in lab-east (root, namespaces).

strongSwan 5.9 with kernel-libipsec forces UDP encapsulation by faking NAT
detection, so every test here also exercises NAT-T (the float to 4500,
encapsulation mode 3).
"""

from __future__ import annotations

import re

import pytest

from fswan.config.keys import format_rsasigkey, load_public_key
from tests.lab.lab import LAB_DIR, wait_for

PSK = "lab-psk-not-secret-0123456789"

NET_PSK = """\
version 2
config setup
	interfaces="ipsec0=wan0"

conn net
	left=192.0.2.1
	leftsubnet=198.51.100.0/25
	right=192.0.2.2
	rightsubnet=203.0.113.0/25
	authby=secret
	ike=aes128-sha1-modp2048
	esp=aes128-sha1
	pfs=no
	dpddelay=10s
	dpdtimeout=30s
	dpdaction=clear
	keyingtries=1
{extra}	auto=add
"""


def psk_conf(extra: str = "") -> str:
    return NET_PSK.format(extra="".join(f"\t{line}\n" for line in extra.splitlines() if line))


PSK_SECRETS = f'192.0.2.1 192.0.2.2 : PSK "{PSK}"\n'


def pubkey_conf() -> str:
    keys = LAB_DIR / "conf" / "pubkey-main" / "west" / "pubkey"
    west = format_rsasigkey(load_public_key((keys / "west.pub").read_text()))
    east = format_rsasigkey(load_public_key((keys / "east.pub").read_text()))
    return f"""\
version 2
config setup
	interfaces="ipsec0=wan0"

conn net
	left=192.0.2.1
	leftid=@west
	leftsubnet=198.51.100.0/25
	leftrsasigkey={west}
	right=192.0.2.2
	rightid=@east
	rightsubnet=203.0.113.0/25
	rightrsasigkey={east}
	authby=rsasig
	ike=aes128-sha1-modp2048
	esp=aes128-sha1
	pfs=no
	keyingtries=1
	auto=add
"""


def pubkey_secrets() -> str:
    key = LAB_DIR / "conf" / "pubkey-main" / "west" / "private" / "west.key"
    return f': RSA "{key}"\n'


def east_sas(lab) -> str:
    return lab.swanctl("lab-east", "--list-sas")


def established(lab) -> bool:
    sas = east_sas(lab)
    return "ESTABLISHED" in sas and "INSTALLED" in sas


def test_psk_main_fswan_initiates_and_down_deletes(lab):
    lab.start_peer("lab-east", "psk-main", "east")
    west = lab.fswan("lab-west", psk_conf(), PSK_SECRETS)
    result = west.cli("ipsec", "auto", "--up", "net")
    assert result.returncode == 0, result.stdout + result.stderr + west.log()
    assert re.search(r'^104 "net" #1: STATE_MAIN_I1: initiate', result.stdout, re.M), result.stdout
    assert re.search(r'^004 "net" #1: STATE_MAIN_I4: ISAKMP SA established', result.stdout, re.M)
    assert re.search(r'^004 "net" #2: STATE_QUICK_I2: sent QI2, IPsec SA established', result.stdout, re.M)
    sas = east_sas(lab)
    assert "ESTABLISHED" in sas and "INSTALLED" in sas, sas
    assert "TUNNEL-in-UDP" in sas and "192.0.2.1[4500]" in sas, sas
    status = west.cli("ipsec", "auto", "--status").stdout
    assert re.search(r'#1: "net" STATE_MAIN_I4 \(ISAKMP SA established\)', status), status
    assert re.search(r'#2: "net" STATE_QUICK_I2 \(sent QI2, IPsec SA established\)', status), status
    assert '"net":   newest ISAKMP SA: #1; newest IPsec SA: #2;' in status

    result = west.cli("ipsec", "auto", "--down", "net")
    assert result.returncode == 0, result.stdout
    wait_for(lambda: "ESTABLISHED" not in east_sas(lab), what="strongSwan to delete the IKE SA")
    assert "INSTALLED" not in east_sas(lab)


def test_psk_main_strongswan_initiates(lab):
    lab.start_peer("lab-east", "psk-main", "east")
    west = lab.fswan("lab-west", psk_conf(), PSK_SECRETS)
    result = lab.script("initiate", "lab-east", "net", "lab", check=False)
    assert result.returncode == 0, result.stdout + result.stderr + west.log()
    assert established(lab)
    status = west.cli("ipsec", "auto", "--status").stdout
    assert "STATE_MAIN_R3" in status and "STATE_QUICK_R2" in status, status


@pytest.mark.parametrize("initiator", ["fswan", "strongswan"])
def test_pubkey_main(lab, initiator):
    lab.start_peer("lab-east", "pubkey-main", "east")
    west = lab.fswan("lab-west", pubkey_conf(), pubkey_secrets())
    if initiator == "fswan":
        result = west.cli("ipsec", "auto", "--up", "net")
        assert result.returncode == 0, result.stdout + west.log()
    else:
        result = lab.script("initiate", "lab-east", "net", "lab", check=False)
        assert result.returncode == 0, result.stdout + result.stderr + west.log()
    assert established(lab), east_sas(lab)
    assert "remote 'west' @ 192.0.2.1[4500]" in east_sas(lab)


def test_dpd_exchanges(lab):
    lab.start_peer("lab-east", "psk-main", "east")
    west = lab.fswan("lab-west", psk_conf(), PSK_SECRETS)
    assert west.cli("ipsec", "auto", "--up", "net").returncode == 0
    # east sends R_U_THERE every 10 s of silence; fswan (dpddelay=10s) too.
    wait_for(lambda: "N(DPD_ACK)" in lab.charon_log("lab-east"), timeout=25,
             what="strongSwan to receive our R_U_THERE_ACK")
    wait_for(lambda: re.search(r"N\(DPD\)", lab.charon_log("lab-east")), timeout=25,
             what="strongSwan to receive our R_U_THERE")
    assert established(lab)


def test_rekey_keeps_child_sa_up(lab):
    lab.start_peer("lab-east", "psk-main", "east")
    west = lab.fswan("lab-west", psk_conf("keylife=20s\nrekeymargin=8s\nrekeyfuzz=0%"), PSK_SECRETS)
    assert west.cli("ipsec", "auto", "--up", "net").returncode == 0
    wait_for(lambda: len(re.findall(r"STATE_QUICK_I2: sent QI2, IPsec SA established", west.log())) >= 4,
             timeout=60, what="three Quick Mode rekeys")
    assert established(lab)
    assert "INSTALLED" in east_sas(lab)


ROADWARRIOR = """\
version 2
config setup
	interfaces="ipsec0=wan0"

conn rw
	left=192.0.2.1
	leftid=@roadwarrior
	leftsubnet=198.51.100.0/25
	right=192.0.2.2
	rightid=@east
	rightsubnet=203.0.113.0/25
	authby=secret
	ike=aes128-sha1-modp2048
	esp=aes128-sha1
	pfs=no
	keyingtries=1
	auto=add
"""


def test_roadwarrior_behind_real_nat(lab):
    """west behind a NAPT (192.0.2.3, 500->1500, 4500->14500): NAT-T for a real reason,
    and keepalives from the NATed side."""
    lab.start_peer("lab-east", "roadwarrior", "east")
    lab.script("nat-west", "on")
    west = lab.fswan("lab-west", ROADWARRIOR, '@roadwarrior @east : PSK "lab-roadwarrior-psk-0123456789"\n')
    result = west.cli("ipsec", "auto", "--up", "rw")
    assert result.returncode == 0, result.stdout + west.log()
    sas = east_sas(lab)
    assert "ESTABLISHED" in sas and "INSTALLED" in sas and "TUNNEL-in-UDP" in sas, sas
    assert "remote 'roadwarrior' @ 192.0.2.3[14500]" in sas, sas
    assert "STATE_QUICK_I2" in west.cli("ipsec", "auto", "--status").stdout


AGGRESSIVE = """\
version 2
config setup
	interfaces="ipsec0=wan0"

conn net
	left=192.0.2.1
	leftid=@west
	leftsubnet=198.51.100.0/25
	right=192.0.2.2
	rightid=@east
	rightsubnet=203.0.113.0/25
	authby=secret
	ike=aes128-sha1-modp2048
	esp=aes128-sha1
	pfs=no
	keyingtries=1
{aggrmode}	auto=add
"""
AGGRESSIVE_SECRETS = '@west @east : PSK "lab-aggressive-psk-0123456789"\n'


def test_aggressive_mode_fswan_initiates(lab):
    lab.start_peer("lab-east", "psk-aggressive", "east")
    west = lab.fswan("lab-west", AGGRESSIVE.format(aggrmode="\taggrmode=yes\n"), AGGRESSIVE_SECRETS)
    result = west.cli("ipsec", "auto", "--up", "net")
    assert result.returncode == 0, result.stdout + west.log()
    assert "STATE_AGGR_I2" in result.stdout, result.stdout
    assert established(lab), east_sas(lab)


def test_aggressive_mode_responder_refuses_unless_enabled(lab):
    lab.start_peer("lab-east", "psk-aggressive", "east")
    west = lab.fswan("lab-west", AGGRESSIVE.format(aggrmode=""), AGGRESSIVE_SECRETS)
    result = lab.script("swanctl", "lab-east", "--initiate", "--child", "net", "--timeout", "3", check=False)
    assert result.returncode != 0
    assert ("initial Aggressive Mode message received on 192.0.2.1:500 but no connection has been"
            " authorized with policy=PSK+AGGRESSIVE") in west.log(), west.log()
    assert "ESTABLISHED" not in east_sas(lab)
    west.stop()
    lab.start_peer("lab-east", "psk-aggressive", "east")  # forget the refused half-open SA
    west = lab.fswan("lab-west", AGGRESSIVE.format(aggrmode="\taggrmode=yes\n"), AGGRESSIVE_SECRETS,
                     name="fswan-aggr")
    result = lab.script("initiate", "lab-east", "net", "lab", check=False, timeout=90)
    assert result.returncode == 0, result.stdout + west.log()
    assert "STATE_AGGR_R2" in west.cli("ipsec", "auto", "--status").stdout
