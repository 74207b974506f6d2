"""ipsec.conf files written for strongSwan and for Libreswan, IKEv2 conns in them as those
daemons' users write them, load into fswan unchanged and come up against charon (root,
the lab): strongSwan's ``keyexchange=ikev2``, ``leftauth=psk``, ``ike=...!`` with its
algorithm names; Libreswan's ``ikev2=insist``, ``ike=aes256-sha2_256;modp2048``,
``phase2alg=``.  A ping crosses each."""

from __future__ import annotations

import pytest

from tests.lab.test_ikev2_lab import bring_up, ping_through, start_charon_v2
from tests.lab.test_strongswan_ike import PSK_SECRETS

STRONGSWAN = """\
config setup
\tcharondebug="ike 2"
\tuniqueids=yes

conn %default
\tkeyexchange=ikev2
\tikelifetime=60m
\tkeylife=20m
\trekeymargin=3m
\tkeyingtries=1

conn net
\tleft=192.0.2.1
\tleftsubnet=198.51.100.0/25
\tleftid=192.0.2.1
\tleftauth=psk
\tright=192.0.2.2
\trightsubnet=203.0.113.0/25
\trightid=192.0.2.2
\trightauth=psk
\tike=aes256-sha256-modp2048!
\tesp=aes256-sha256!
\tdpddelay=30s
\tdpdaction=restart
\tauto=add
"""

LIBRESWAN = """\
config setup
\tprotostack=netkey
\tlogfile=/var/log/pluto.log

conn net
\tleft=192.0.2.1
\tleftsubnet=198.51.100.0/25
\tright=192.0.2.2
\trightsubnet=203.0.113.0/25
\tauthby=secret
\tikev2=insist
\tike=aes256-sha2_256;modp2048
\tphase2alg=aes256-sha2_256
\tauto=add
"""


@pytest.mark.parametrize("initiator", ["fswan", "charon"])
@pytest.mark.parametrize("written_for, conf", [("strongswan", STRONGSWAN), ("libreswan", LIBRESWAN)])
def test_a_foreign_ikev2_conn_comes_up(lab, tmp_path, written_for, conf, initiator):
    start_charon_v2(lab, tmp_path, "aes256-sha256-modp2048", "aes256-sha256")
    west = lab.fswan("lab-west", conf.replace("config setup\n",
                                              'config setup\n\tinterfaces="ipsec0=wan0"\n'),
                     PSK_SECRETS)
    bring_up(lab, west, initiator)
    sas = lab.swanctl("lab-east", "--list-sas")
    assert "IKEv2" in sas and "AES_CBC-256/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048" in sas, sas
    assert "AES_CBC-256/HMAC_SHA2_256_128" in sas, sas
    ping_through(west)
