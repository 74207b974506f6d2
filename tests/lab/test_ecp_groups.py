"""Elliptic-curve groups against strongSwan's charon (root, the lab): IKE with ECP256
(group 19) and Quick Mode PFS with ECP384 (group 20), named in ``esp=`` or through
``pfsgroup=``; Curve25519 (group 31, charon's curve25519 plugin) for both.  fswan in
lab-west, charon in lab-east (the lab's psk-main config with its proposals replaced),
either one initiating; charon lists the groups agreed to and a ping crosses client to
client, so the KE encoding (x | y) and the x-only secret are what charon computes."""

from __future__ import annotations

import pytest

from tests.lab.test_interop_matrix import key_and_ping, start_charon_with
from tests.lab.test_strongswan_ike import psk_conf

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
    start_charon_with(lab, tmp_path, proposals, esp_proposals)
    conf = psk_conf(extra).replace("ike=aes128-sha1-modp2048", f"ike={ike}").replace(
        "esp=aes128-sha1", f"esp={esp}")
    assert f"ike={ike}" in conf and f"esp={esp}" in conf and extra in conf
    key_and_ping(lab, conf, initiator, listed)
