"""ID_KEY_ID against strongSwan's charon (root, the lab), both roles: the iOS-style client
that names itself by a group (``keyid:vpngroup``) in Aggressive Mode with a PSK.  Copies of
the lab's psk-aggressive configs with the west identity replaced."""

from __future__ import annotations

import shutil

from tests.lab.lab import LAB_DIR, wait_for
from tests.lab.test_dataplane_strongswan import client_ping
from tests.lab.test_strongswan_ike import AGGRESSIVE

PSK = "lab-aggressive-psk-0123456789"


def charon_conf(lab, tmp_path, side: str) -> None:
    """charon in lab-<side> on the psk-aggressive config, west's identity keyid:vpngroup."""
    confdir = tmp_path / side
    shutil.copytree(LAB_DIR / "conf" / "psk-aggressive" / side, confdir)
    swanctl = confdir / "swanctl.conf"
    text = swanctl.read_text()
    for old, new in (("id = @west", "id = keyid:vpngroup"), ("id-west = @west", "id-west = keyid:vpngroup")):
        assert old in text, old
        text = text.replace(old, new)
    swanctl.write_text(text)
    lab.script("start-peer", f"lab-{side}", str(confdir))


def fswan_conf(leftid: str) -> str:
    return AGGRESSIVE.format(aggrmode="\taggrmode=yes\n").replace("leftid=@west", f"leftid={leftid}")


def test_charon_as_the_group_client_of_fswan(lab, tmp_path):
    """The iOS case: charon in lab-west initiates Aggressive Mode as keyid:vpngroup; fswan,
    the gateway in lab-east, selects its conn and PSK by that key ID (written @[vpngroup] in
    the conn, @#hex in ipsec.secrets) and the tunnel carries a ping."""
    charon_conf(lab, tmp_path, "west")
    east = lab.fswan("lab-east", fswan_conf("@[vpngroup]"),
                     f'@#76706e67726f7570 @east : PSK "{PSK}"\n')
    result = lab.script("initiate", "lab-west", "net", "lab", check=False, timeout=90)
    assert result.returncode == 0, result.stdout + east.log() + lab.charon_log("lab-west")[-3000:]
    status = east.cli("ipsec", "auto", "--status").stdout
    assert "STATE_AGGR_R2" in status and "STATE_QUICK_R2" in status, status
    json_status = east.cli("whack", "--status", "--json").stdout
    assert '"peer_id": "@[vpngroup]"' in json_status, json_status
    wait_for(lambda: "; erouted" in east.cli("ipsec", "auto", "--status").stdout, timeout=10,
             what="the eroute")
    assert client_ping(3).returncode == 0


def test_fswan_answers_with_its_own_key_id(lab, tmp_path):
    """charon in lab-east expects its peer (fswan, lab-west) to be keyid:vpngroup and
    initiates; fswan's AR1 carries ID_KEY_ID, which charon accepts."""
    charon_conf(lab, tmp_path, "east")
    west = lab.fswan("lab-west", fswan_conf("@[vpngroup]"),
                     f'@#76706e67726f7570 @east : PSK "{PSK}"\n')
    result = lab.script("initiate", "lab-east", "net", "lab", check=False, timeout=90)
    assert result.returncode == 0, result.stdout + west.log() + lab.charon_log("lab-east")[-3000:]
    sas = lab.swanctl("lab-east", "--list-sas")
    assert "ESTABLISHED" in sas and "remote 'vpngroup'" in sas, sas
    assert "STATE_AGGR_R2" in west.cli("ipsec", "auto", "--status").stdout


def test_fswan_as_the_group_client_of_charon(lab, tmp_path):
    """fswan in lab-west initiates as keyid:vpngroup (written @#hex); charon in lab-east
    finds the PSK by that key ID and the tunnel carries a ping."""
    charon_conf(lab, tmp_path, "east")
    west = lab.fswan("lab-west", fswan_conf("@#76706e67726f7570"),
                     f'keyid:vpngroup @east : PSK "{PSK}"\n')
    result = west.cli("ipsec", "auto", "--up", "net")
    assert result.returncode == 0, result.stdout + west.log() + lab.charon_log("lab-east")[-3000:]
    assert "STATE_AGGR_I2" in result.stdout, result.stdout
    sas = lab.swanctl("lab-east", "--list-sas")
    assert "ESTABLISHED" in sas and "remote 'vpngroup'" in sas, sas
    wait_for(lambda: "; erouted" in west.cli("ipsec", "auto", "--status").stdout, timeout=10,
             what="the eroute")
    assert client_ping(3).returncode == 0
