"""IKEv2 against strongSwan's charon (root, the lab): fswan in lab-west with
``keyexchange=ikev2``, charon in lab-east with ``version = 2`` (the lab's psk-main
config otherwise).  charon's kernel-libipsec fakes NAT detection in IKEv2 as in
IKEv1, so IKE_AUTH and ESP run on 4500 in UDP.  Each tunnel is proven by a ping
from client to client and by what charon lists."""

from __future__ import annotations

import re
import shutil

import pytest

from tests.lab.lab import LAB_DIR, wait_for
from tests.lab.test_dataplane_strongswan import client_ping
from tests.lab.test_strongswan_ike import PSK_SECRETS, psk_conf


def start_charon_v2(lab, tmp_path, proposals: str = "aes128-sha256-modp2048",
                    esp_proposals: str = "aes128-sha256", extra: dict[str, str] | None = None) -> None:
    """charon in lab-east on the lab's psk-main config made IKEv2 with these proposals."""
    confdir = tmp_path / "east"
    shutil.copytree(LAB_DIR / "conf" / "psk-main" / "east", confdir)
    swanctl = confdir / "swanctl.conf"
    text = swanctl.read_text()
    replacements = {
        "version = 1": "version = 2",
        "proposals = aes128-sha1-modp2048": f"proposals = {proposals}",
        "esp_proposals = aes128-sha1 ": f"esp_proposals = {esp_proposals} ",
        **(extra or {}),
    }
    for old, new in replacements.items():
        assert old in text, old
        text = text.replace(old, new)
    swanctl.write_text(text)
    lab.script("start-peer", "lab-east", str(confdir))


def v2_conf(ike: str = "aes128-sha2_256-modp2048", esp: str = "aes128-sha2_256",
            extra: str = "") -> str:
    conf = psk_conf("keyexchange=ikev2\n" + extra)
    return conf.replace("ike=aes128-sha1-modp2048", f"ike={ike}").replace(
        "esp=aes128-sha1", f"esp={esp}")


def bring_up(lab, west, initiator: str) -> str:
    if initiator == "fswan":
        result = west.cli("ipsec", "auto", "--up", "net")
        out = result.stdout
    else:
        result = lab.script("initiate", "lab-east", "net", "lab", check=False)
        out = result.stdout + result.stderr
    assert result.returncode == 0, out + west.log() + lab.charon_log("lab-east")[-4000:]
    return out


def ping_through(west) -> None:
    wait_for(lambda: "; erouted" in west.cli("ipsec", "auto", "--status").stdout, timeout=10,
             what="the eroute")
    ping = client_ping(3)
    assert ping.returncode == 0, ping.stdout + west.log()


@pytest.mark.parametrize("initiator", ["fswan", "charon"])
def test_psk_tunnel_with_charon(lab, tmp_path, initiator):
    start_charon_v2(lab, tmp_path)
    west = lab.fswan("lab-west", v2_conf(), PSK_SECRETS)
    out = bring_up(lab, west, initiator)
    if initiator == "fswan":
        assert re.search(r'^131 "net" #1: STATE_PARENT_I1: sent IKE_SA_INIT request', out, re.M), out
        assert re.search(r'^004 "net" #1: STATE_V2_ESTABLISHED_IKE_SA: IKE SA established', out, re.M)
        assert re.search(r'^004 "net" #2: STATE_V2_ESTABLISHED_CHILD_SA: Child SA established', out,
                         re.M), out
    sas = lab.swanctl("lab-east", "--list-sas")
    assert "IKEv2" in sas and "ESTABLISHED" in sas and "INSTALLED" in sas, sas
    assert "AES_CBC-128/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048" in sas, sas
    ping_through(west)
    status = west.cli("ipsec", "auto", "--status").stdout
    assert "STATE_V2_ESTABLISHED_IKE_SA" in status and "STATE_V2_ESTABLISHED_CHILD_SA" in status

    result = west.cli("ipsec", "auto", "--down", "net")
    assert result.returncode == 0, result.stdout
    wait_for(lambda: "ESTABLISHED" not in lab.swanctl("lab-east", "--list-sas"),
             what="charon to delete the IKE SA")
