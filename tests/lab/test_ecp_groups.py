"""Elliptic-curve groups against strongSwan's charon (root, the lab): IKE with ECP256
(group 19) and Quick Mode PFS with ECP384 (group 20), named in ``esp=`` or through
``pfsgroup=``; Curve25519 (group 31, charon's curve25519 plugin) for both.  fswan in
lab-west, charon in lab-east (the lab's psk-main config with its proposals replaced),
either one initiating; charon lists the groups agreed to and a ping crosses client to
client, so the KE encoding (x | y) and the x-only secret are what charon computes."""

from __future__ import annotations

import shutil

import pytest

from tests.lab.lab import LAB_DIR, wait_for
from tests.lab.test_dataplane_strongswan import client_ping
from tests.lab.test_strongswan_ike import PSK_SECRETS, psk_conf

#: (fswan ike=, esp=, extra conn line) -> (charon proposals, esp_proposals), what swanctl lists
CASES = [
    ("aes128-sha2_256-ecp256", "aes128-sha1-ecp384", "",
     "aes128-sha256-ecp256", "aes128-sha1-ecp384",
     ("AES_CBC-128/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/ECP_256", "AES_CBC-128/HMAC_SHA1_96/ECP_384")),
    ("aes128-sha2_256-ecp256", "aes128-sha1", "pfsgroup=ecp384",
     "aes128-sha256-ecp256", "aes128-sha1-ecp384",
     ("AES_CBC-128/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/ECP_256", "AES_CBC-128/HMAC_SHA1_96/ECP_384")),
    ("aes256-sha2_512-dh21", "aes256-sha2_256-curve25519", "",
     "aes256-sha512-ecp521", "aes256-sha256-curve25519",
     ("AES_CBC-256/HMAC_SHA2_512_256/PRF_HMAC_SHA2_512/ECP_521",
      "AES_CBC-256/HMAC_SHA2_256_128/CURVE_25519")),
]


@pytest.mark.parametrize("initiator", ["fswan", "charon"])
@pytest.mark.parametrize("ike, esp, extra, proposals, esp_proposals, listed", CASES,
                         ids=[f"{c[0]}+{c[1]}{'+' + c[2] if c[2] else ''}" for c in CASES])
def test_ecp_groups_interoperate_with_strongswan(lab, tmp_path, ike, esp, extra, proposals,
                                                 esp_proposals, listed, initiator):
    confdir = tmp_path / "east"
    shutil.copytree(LAB_DIR / "conf" / "psk-main" / "east", confdir)
    swanctl = confdir / "swanctl.conf"
    text = swanctl.read_text()
    for old, new in (("proposals = aes128-sha1-modp2048", f"proposals = {proposals}"),
                     ("esp_proposals = aes128-sha1 ", f"esp_proposals = {esp_proposals} ")):
        assert old in text, old
        text = text.replace(old, new)
    swanctl.write_text(text)
    lab.script("start-peer", "lab-east", str(confdir))
    conf = psk_conf(extra).replace("ike=aes128-sha1-modp2048", f"ike={ike}").replace(
        "esp=aes128-sha1", f"esp={esp}")
    assert f"ike={ike}" in conf and f"esp={esp}" in conf and extra in conf
    west = lab.fswan("lab-west", conf, PSK_SECRETS)
    if initiator == "fswan":
        result = west.cli("ipsec", "auto", "--up", "net")
        out = result.stdout
    else:
        result = lab.script("initiate", "lab-east", "net", "lab", check=False)
        out = result.stdout + result.stderr
    assert result.returncode == 0, out + west.log() + lab.charon_log("lab-east")[-4000:]
    sas = lab.swanctl("lab-east", "--list-sas")
    for suite in listed:
        assert suite in sas, sas
    wait_for(lambda: "; erouted" in west.cli("ipsec", "auto", "--status").stdout, timeout=10,
             what="the eroute")
    ping = client_ping(3)
    assert ping.returncode == 0, ping.stdout + west.log()
