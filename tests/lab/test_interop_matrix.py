"""Algorithm interop with strongSwan's charon (root, the lab): for each IKE/ESP suite,
fswan in lab-west and charon in lab-east (the lab's psk-main config with its proposals
replaced) bring the tunnel up, either one initiating; charon reports the suite agreed
to, and a ping crosses client to client.  Catches wrong key lengths, truncations and group
numbers that fswan talking to itself would never notice."""

from __future__ import annotations

import shutil

import pytest

from tests.lab.lab import LAB_DIR, wait_for
from tests.lab.test_dataplane_strongswan import client_ping
from tests.lab.test_strongswan_ike import PSK_SECRETS, psk_conf

#: (fswan ike=, esp=, pfs) -> (charon proposals, esp_proposals), what swanctl must list
SUITES = [
    ("aes256-sha2_256-modp3072", "aes256-sha2_256", "yes",
     "aes256-sha256-modp3072", "aes256-sha256-modp3072",
     ("AES_CBC-256/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_3072",
      "AES_CBC-256/HMAC_SHA2_256_128/MODP_3072")),
    ("aes128-sha2_512-modp4096", "aes_gcm256", "no",
     "aes128-sha512-modp4096", "aes256gcm16",
     ("AES_CBC-128/HMAC_SHA2_512_256/PRF_HMAC_SHA2_512/MODP_4096", "AES_GCM_16-256")),
    ("aes192-sha2_384-modp2048", "aes192-sha2_384", "no",
     "aes192-sha384-modp2048", "aes192-sha384",
     ("AES_CBC-192/HMAC_SHA2_384_192/PRF_HMAC_SHA2_384/MODP_2048",
      "AES_CBC-192/HMAC_SHA2_384_192")),
    ("3des-sha1-modp1536", "3des-md5", "yes",
     "3des-sha1-modp1536", "3des-md5-modp1536",
     ("3DES_CBC/HMAC_SHA1_96/PRF_HMAC_SHA1/MODP_1536", "3DES_CBC/HMAC_MD5_96/MODP_1536")),
    ("aes128-sha1-modp2048", "aes256-sha2_512", "no",
     "aes128-sha1-modp2048", "aes256-sha512",
     ("AES_CBC-128/HMAC_SHA1_96/PRF_HMAC_SHA1/MODP_2048", "AES_CBC-256/HMAC_SHA2_512_256")),
]


def start_charon_with(lab, tmp_path, proposals: str, esp_proposals: str) -> None:
    """charon in lab-east on a copy of the lab's psk-main config with these proposals."""
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


def key_and_ping(lab, conf: str, initiator: str, listed) -> None:
    """fswan in lab-west on ``conf``; the tunnel keyed by ``initiator``; charon lists the
    suites in ``listed``; a ping crosses client to client."""
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


@pytest.mark.parametrize("initiator", ["fswan", "charon"])
@pytest.mark.parametrize("ike, esp, pfs, proposals, esp_proposals, listed", SUITES,
                         ids=[f"{s[0]}+{s[1]}" for s in SUITES])
def test_suite_interoperates_with_strongswan(lab, tmp_path, ike, esp, pfs, proposals,
                                             esp_proposals, listed, initiator):
    start_charon_with(lab, tmp_path, proposals, esp_proposals)
    conf = psk_conf().replace("ike=aes128-sha1-modp2048", f"ike={ike}").replace(
        "esp=aes128-sha1", f"esp={esp}").replace("pfs=no", f"pfs={pfs}")
    key_and_ping(lab, conf, initiator, listed)
