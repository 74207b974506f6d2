"""IKEv2 with certificates, IKEv2 fragments and the Configuration Payload against
strongSwan's charon (root, the lab).

* certificates: the PKI of ``tests/pki_fixtures.py`` (RSA, ECDSA P-256, a chain through an
  intermediate), charon with ``version = 2``; either one initiates, a ping crosses;
* fragments (RFC 7383): 4096-bit certificates over a 360-byte-MTU wire whose gateways drop
  IP fragments: IKE_AUTH only gets across in SKF pieces, cut by charon and by fswan
  (ECP-256, so that IKE_SA_INIT, which is never cut, fits);
* CP: charon as a road warrior (``vips = 0.0.0.0``) gets an address from fswan's
  ``rightaddresspool=`` and pings from it; fswan (``leftsourceip=%config``) gets one from a
  charon gateway's pool, puts it on ``ipsec0`` and pings from it.
"""

from __future__ import annotations

import re

import pytest

from tests.lab.lab import sh, wait_for
from tests.lab.test_certificates_lab import assert_tunnel, charon_certificates, fswan_files, fswan_pki
from tests.lab.test_ike_fragments import charon_confdir, drop_ip_fragments, fswan_conf
from tests.pki_fixtures import make_pki

PSK = "lab-psk-not-secret-0123456789"
POOL_FIRST = "198.51.100.200"


def v2_charon(confdir) -> None:
    swanctl = confdir / "swanctl.conf"
    text = swanctl.read_text()
    assert "version = 1" in text
    swanctl.write_text(text.replace("version = 1", "version = 2"))


CASES = [
    # (fswan cert, charon cert, authby, ike, charon proposals)
    ("west", "east", "rsasig", "aes128-sha2_256-modp2048", "aes128-sha256-modp2048"),
    ("west-ecdsa", "east-ecdsa", "ecdsasig", "aes128-sha2_256-ecp256", "aes128-sha256-ecp256"),
    ("carol", "east", "rsasig", "aes128-sha2_256-modp2048", "aes128-sha256-modp2048"),
]


@pytest.mark.parametrize("initiator", ["fswan", "charon"])
@pytest.mark.parametrize("west, east, authby, ike, proposals", CASES,
                         ids=["rsa", "ecdsa", "intermediate"])
def test_ikev2_certificates_with_charon(lab, tmp_path, west, east, authby, ike, proposals,
                                        initiator):
    pki = fswan_pki(lab)
    confdir = charon_certificates(tmp_path / "east", pki, east, west, proposals)
    v2_charon(confdir)
    lab.script("start-peer", "lab-east", str(confdir))
    conf, secrets = fswan_files(pki, west, east, authby, ike, "keyexchange=ikev2")
    daemon = lab.fswan("lab-west", conf, secrets)
    assert_tunnel(lab, daemon, initiator)
    status = daemon.cli("ipsec", "auto", "--status").stdout
    assert "STATE_V2_ESTABLISHED_IKE_SA" in status and f"CN={east}" in status, status
    assert f"certificate of 'C=CH, O=fswan lab, CN={east}' verified" in daemon.log()
    sas = lab.swanctl("lab-east", "--list-sas")
    assert "IKEv2" in sas and f"CN={west}" in sas, sas


@pytest.mark.parametrize("initiator", ["fswan", "charon"])
def test_ikev2_fragments_carry_4096_bit_certificates(lab, tmp_path, initiator):
    pki = make_pki(lab.workdir / "fswan-lab-west" / "ipsec.d", rsa_bits=4096)
    # ECP-256: IKE_SA_INIT (clear, never cut) must fit the 360-byte wire whole
    source = charon_certificates(tmp_path / "cert-east", pki, "east", "west",
                                 "aes128-sha256-ecp256")
    confdir = charon_confdir(tmp_path, source)  # fragmentation = force, fragment_size
    v2_charon(confdir)
    conf, secrets = fswan_files(pki, "west", "east", ike="aes128-sha2_256-ecp256",
                                extra="keyexchange=ikev2")
    drop_ip_fragments()
    lab.script("start-peer", "lab-east", str(confdir))
    daemon = lab.fswan("lab-west", fswan_conf(conf, "yes"), secrets)
    assert_tunnel(lab, daemon, initiator)
    log = daemon.log()
    assert "sending IKEv2 fragments: a " in log, log[-4000:]
    assert "received IKEv2 fragments from 192.0.2.2" in log, log[-4000:]
    charon = lab.charon_log("lab-east")
    assert re.search(r"splitting IKE message \(\d+ bytes\) into \d+ fragments", charon), charon[-4000:]


FSWAN_GATEWAY = f"""\
version 2
config setup
\tinterfaces="ipsec0=wan0"

conn rw
\tleft=192.0.2.1
\tleftsubnet=198.51.100.0/25
\tright=%any
\trightid=192.0.2.2
\trightaddresspool={POOL_FIRST}-198.51.100.220
\tmodecfgdns=203.0.113.53
\tkeyexchange=ikev2
\tauthby=secret
\tike=aes128-sha2_256-modp2048
\tesp=aes128-sha2_256
\tauto=add
"""

CHARON_ROAD_WARRIOR = """\
connections {
    lab {
        version = 2
        local_addrs = 192.0.2.2
        remote_addrs = 192.0.2.1
        proposals = aes128-sha256-modp2048
        vips = 0.0.0.0
        local {
            auth = psk
            id = 192.0.2.2
        }
        remote {
            auth = psk
            id = 192.0.2.1
        }
        children {
            net {
                remote_ts = 198.51.100.0/25
                esp_proposals = aes128-sha256
            }
        }
    }
}
secrets {
    ike-lab {
        id-a = 192.0.2.1
        id-b = 192.0.2.2
        secret = "%s"
    }
}
""" % PSK

CHARON_EXTRA = """\
charon {
    install_virtual_ip = yes
}
"""


def east_ping(source: str, count: int = 3):
    return sh("ip", "netns", "exec", "lab-east", "ping", "-c", str(count), "-W", "2", "-i", "0.2",
              "-I", source, "198.51.100.10", check=False)


def test_charon_road_warrior_gets_an_address_from_fswan(lab, tmp_path):
    west = lab.fswan("lab-west", FSWAN_GATEWAY, f'192.0.2.1 192.0.2.2 : PSK "{PSK}"\n')
    confdir = tmp_path / "east"
    (confdir / "strongswan.d").mkdir(parents=True)
    (confdir / "strongswan.d" / "vip.conf").write_text(CHARON_EXTRA)
    (confdir / "swanctl.conf").write_text(CHARON_ROAD_WARRIOR)
    lab.script("start-peer", "lab-east", str(confdir))
    result = lab.script("initiate", "lab-east", "net", "lab", check=False)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out + west.log()[-6000:] + lab.charon_log("lab-east")[-6000:]
    sas = lab.swanctl("lab-east", "--list-sas")
    assert POOL_FIRST in sas, sas
    assert f"CP: leasing {POOL_FIRST} to '192.0.2.2'" in west.log()
    ping = east_ping(POOL_FIRST)
    assert ping.returncode == 0, ping.stdout + west.log()[-3000:]
    status = west.cli("ipsec", "auto", "--status").stdout
    assert POOL_FIRST in status, status


CHARON_GATEWAY = """\
connections {
    rw {
        version = 2
        local_addrs = 192.0.2.2
        remote_addrs = 192.0.2.1
        proposals = aes128-sha256-modp2048
        pools = rw_pool
        local {
            auth = psk
            id = 192.0.2.2
        }
        remote {
            auth = psk
            id = 192.0.2.1
        }
        children {
            net {
                local_ts = 203.0.113.0/25
                esp_proposals = aes128-sha256
            }
        }
    }
}
pools {
    rw_pool {
        addrs = %s-198.51.100.220
        dns = 203.0.113.53
    }
}
secrets {
    ike-lab {
        id-a = 192.0.2.1
        id-b = 192.0.2.2
        secret = "%s"
    }
}
""" % (POOL_FIRST, PSK)

FSWAN_ROAD_WARRIOR = """\
version 2
config setup
\tinterfaces="ipsec0=wan0"

conn rw
\tleft=192.0.2.1
\tleftsourceip=%config
\tright=192.0.2.2
\trightsubnet=203.0.113.0/25
\tkeyexchange=ikev2
\tauthby=secret
\tike=aes128-sha2_256-modp2048
\tesp=aes128-sha2_256
\tkeyingtries=1
\tauto=add
"""


def test_fswan_road_warrior_of_a_charon_gateway(lab, tmp_path):
    confdir = tmp_path / "east"
    confdir.mkdir()
    (confdir / "swanctl.conf").write_text(CHARON_GATEWAY)
    lab.script("start-peer", "lab-east", str(confdir))
    west = lab.fswan("lab-west", FSWAN_ROAD_WARRIOR, f'192.0.2.1 192.0.2.2 : PSK "{PSK}"\n')
    result = west.cli("ipsec", "auto", "--up", "rw")
    assert result.returncode == 0, result.stdout + west.log()[-6000:] + lab.charon_log("lab-east")[-6000:]
    assert f"CP: received IP address {POOL_FIRST}, DNS 203.0.113.53" in west.log()
    wait_for(lambda: POOL_FIRST in sh("ip", "-n", "lab-west", "address", "show", "dev", "ipsec0").stdout,
             timeout=10, what="the pool address on ipsec0")
    ping = sh("ip", "netns", "exec", "lab-west", "ping", "-c", "3", "-W", "2", "-i", "0.2",
              "-I", POOL_FIRST, "203.0.113.10", check=False)
    assert ping.returncode == 0, ping.stdout + west.log()[-3000:]
    west.cli("ipsec", "auto", "--down", "rw")
    wait_for(lambda: POOL_FIRST not in sh("ip", "-n", "lab-west", "address", "show", "dev",
                                          "ipsec0").stdout, timeout=10, what="the address removed")
