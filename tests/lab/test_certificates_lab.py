"""X.509 certificates against strongSwan's charon (root, the lab): fswan in lab-west with
its ipsec.d (cacerts, certs, private, crls) made by ``tests/pki_fixtures.py``, charon in
lab-east with the same PKI's files in its swanctl dirs (x509ca, x509, private).  Either
one initiates; RSA and ECDSA certificates with DN IDs, a chain through an intermediate
CA that fswan sends and one that charon sends, ``rightca=%same``; a revoked and an expired charon certificate are
refused by fswan with pluto's lines and no tunnel comes up.  A ping crosses each tunnel
that does come up."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.lab.lab import wait_for
from tests.lab.test_ike_fragments import charon_confdir, fswan_conf, key_with_fragments
from tests.lab.test_dataplane_strongswan import client_ping
from tests.pki_fixtures import Pki, make_pki

CHARON_CONF = """\
connections {{
    lab {{
        version = 1
        aggressive = no
        local_addrs = 192.0.2.2
        remote_addrs = 192.0.2.1
        proposals = {proposals}
        dpd_delay = 10s
        local {{
            auth = pubkey
            certs = {east}.pem
            id = "{east_dn}"
        }}
        remote {{
            auth = pubkey
            id = "{west_dn}"
        }}
        children {{
            net {{
                local_ts = 203.0.113.0/25
                remote_ts = 198.51.100.0/25
                esp_proposals = aes128-sha1
                mode = tunnel
            }}
        }}
    }}
}}
"""

FSWAN_CONF = """\
version 2
config setup
\tinterfaces="ipsec0=wan0"

conn net
\tleft=192.0.2.1
\tleftsubnet=198.51.100.0/25
\tleftcert={west}.pem
\tright=192.0.2.2
\trightid="{east_dn}"
\trightsubnet=203.0.113.0/25
\tauthby={authby}
\tike={ike}
\tesp=aes128-sha1
\tpfs=no
\tkeyingtries=1
{extra}\tauto=add
"""


def fswan_pki(lab) -> Pki:
    """The PKI written where the fswan daemon of lab-west finds it (ipsec.d beside ipsec.conf)."""
    return make_pki(lab.workdir / "fswan-lab-west" / "ipsec.d")


def start_charon(lab, tmp_path: Path, pki: Pki, east: str, west: str, proposals: str) -> None:
    confdir = charon_certificates(tmp_path / "east", pki, east, west, proposals)
    lab.script("start-peer", "lab-east", str(confdir))


def charon_certificates(confdir: Path, pki: Pki, east: str, west: str, proposals: str) -> Path:
    """A swanctl conf dir for lab-east authenticating with ``east``'s certificate."""
    for sub in ("x509ca", "x509", "private"):
        (confdir / sub).mkdir(parents=True, exist_ok=True)
    shutil.copy(pki.root_path, confdir / "x509ca" / "root.pem")
    shutil.copy(pki.intermediate_path, confdir / "x509ca" / "intermediate.pem")
    shutil.copy(pki[east].cert_path, confdir / "x509" / f"{east}.pem")
    shutil.copy(pki[east].key_path, confdir / "private" / f"{east}.key")
    (confdir / "swanctl.conf").write_text(CHARON_CONF.format(
        proposals=proposals, east=east, east_dn=pki[east].dn, west_dn=pki[west].dn))
    return confdir


def fswan_files(pki: Pki, west: str, east: str, authby: str = "rsasig",
                ike: str = "aes128-sha1-modp2048", extra: str = "") -> tuple[str, str]:
    """(ipsec.conf, ipsec.secrets) of fswan in lab-west with ``west``'s certificate."""
    kind = "ECDSA" if "ecdsa" in west or "p384" in west else "RSA"
    conf = FSWAN_CONF.format(west=west, east_dn=pki[east].dn, authby=authby, ike=ike,
                             extra="".join(f"\t{line}\n" for line in extra.splitlines()))
    return conf, f": {kind} {west}.key\n"


def start_fswan(lab, pki: Pki, west: str, east: str, authby: str = "rsasig",
                ike: str = "aes128-sha1-modp2048", extra: str = ""):
    return lab.fswan("lab-west", *fswan_files(pki, west, east, authby, ike, extra))


def bring_up(lab, daemon, initiator: str):
    if initiator == "fswan":
        result = daemon.cli("ipsec", "auto", "--up", "net")
        return result.returncode, result.stdout
    result = lab.script("initiate", "lab-east", "net", "lab", check=False)
    return result.returncode, result.stdout + result.stderr


def assert_tunnel(lab, daemon, initiator: str) -> None:
    rc, out = bring_up(lab, daemon, initiator)
    assert rc == 0, out + daemon.log()[-6000:] + lab.charon_log("lab-east")[-6000:]
    wait_for(lambda: "; erouted" in daemon.cli("ipsec", "auto", "--status").stdout, timeout=10,
             what="the eroute")
    ping = client_ping(3)
    assert ping.returncode == 0, ping.stdout + daemon.log()[-4000:]


CASES = [
    # (fswan cert, charon cert, authby, ike, charon proposals, extra fswan lines)
    ("west", "east", "rsasig", "aes128-sha1-modp2048", "aes128-sha1-modp2048", ""),
    ("west-ecdsa", "east-ecdsa", "ecdsasig", "aes128-sha2_256-ecp256", "aes128-sha256-ecp256", ""),
    ("carol", "east", "rsasig", "aes128-sha1-modp2048", "aes128-sha1-modp2048", ""),
    ("west", "east", "rsasig", "aes128-sha1-modp2048", "aes128-sha1-modp2048", "rightca=%same"),
    ("west", "carol", "rsasig", "aes128-sha1-modp2048", "aes128-sha1-modp2048", ""),
]


@pytest.mark.parametrize("initiator", ["fswan", "charon"])
@pytest.mark.parametrize("west, east, authby, ike, proposals, extra", CASES,
                         ids=["rsa-dn", "ecdsa", "intermediate", "rightca-same", "peer-intermediate"])
def test_certificates_interoperate_with_strongswan(lab, tmp_path, west, east, authby, ike,
                                                   proposals, extra, initiator):
    pki = fswan_pki(lab)
    start_charon(lab, tmp_path, pki, east, west, proposals)
    daemon = start_fswan(lab, pki, west, east, authby, ike, extra)
    assert_tunnel(lab, daemon, initiator)
    status = daemon.cli("ipsec", "auto", "--status").stdout
    assert "ISAKMP SA established" in status, status
    sas = lab.swanctl("lab-east", "--list-sas")
    assert "ESTABLISHED" in sas and pki[west].dn.split("CN=")[1] in sas, sas


@pytest.mark.parametrize("initiator", ["fswan", "charon"])
@pytest.mark.parametrize("east, line", [
    ("mallory", "certificate was revoked on"),
    ("expired", "certificate is invalid (valid from"),
])
def test_bad_charon_certificate_is_refused(lab, tmp_path, east, line, initiator):
    pki = fswan_pki(lab)
    start_charon(lab, tmp_path, pki, east, "west", "aes128-sha1-modp2048")
    daemon = start_fswan(lab, pki, "west", east)
    bring_up(lab, daemon, initiator)
    wait_for(lambda: "X.509 certificate rejected" in daemon.log(), timeout=15,
             what="the rejection in fswan's log")
    log = daemon.log()
    assert line in log, log[-4000:]
    assert "ISAKMP SA established" not in daemon.cli("ipsec", "auto", "--status").stdout
    assert client_ping(1).returncode != 0


@pytest.mark.parametrize("initiator", ["fswan", "charon"])
def test_4096_bit_certificates_only_through_ike_fragments(lab, tmp_path, initiator):
    """Main Mode messages 5 and 6 carry a 4096-bit certificate and signature (about 2 KB)
    over a 360-byte-MTU wire whose gateways drop IP fragments: only IKE fragments, cut by
    charon (fragmentation = force) and by fswan (fragmentation=yes), get them across."""
    pki = make_pki(lab.workdir / "fswan-lab-west" / "ipsec.d", rsa_bits=4096)
    source = charon_certificates(tmp_path / "cert-east", pki, "east", "west", "aes128-sha1-modp2048")
    conf, secrets = fswan_files(pki, "west", "east")
    daemon = key_with_fragments(lab, charon_confdir(tmp_path, source), fswan_conf(conf, "yes"),
                                secrets, initiator)
    sizes = [int(n) for n in re.findall(r"splitting IKE message \((\d+) bytes\)",
                                        lab.charon_log("lab-east"))]
    assert sizes and max(sizes) > 1500, sizes  # charon's message 5/6: certificate and signature
    assert "certificate of 'C=CH, O=fswan lab, CN=east' verified" in daemon.log()
