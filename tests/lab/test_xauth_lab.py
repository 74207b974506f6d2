"""XAUTH and Mode Config against strongSwan's charon (root, the lab).

charon (lab-east) as the iOS/Android-style road warrior: Aggressive Mode, a PSK for the
group ``keyid:vpngroup``, then XAUTH as ``alice`` and a virtual IP (``vips = 0.0.0.0``)
from fswan (lab-west) as XAUTH + Mode Config server with a pool and a DNS server;
charon's ``--list-sas`` shows the pool's address and a ping from that address reaches
the host behind fswan.  The same in Main Mode.  A wrong password is refused with pluto's
message and no SA.  Then the other way round: fswan as XAUTH + Mode Config client of
charon as server (a pool there): fswan's ``ipsec0`` gets the address and a ping from it
crosses to the host behind charon."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.lab.lab import sh, wait_for

GROUP_PSK = "vpngroup-psk-not-secret-0123456789"
PASSWORD = "alice-password-not-secret"
POOL_FIRST = "198.51.100.200"
#: charon's plugin list (the lab template's) plus XAUTH and Mode Config
CHARON_PLUGINS = ("random nonce openssl aes sha1 sha2 hmac gmp gcm kdf pem pkcs1 pkcs8 x509 pubkey "
                  "curve25519 kernel-libipsec kernel-netlink socket-default vici updown "
                  "xauth-generic attr unity")

CHARON_EXTRA = f"""\
charon {{
    load = {CHARON_PLUGINS}
    install_virtual_ip = yes
    i_dont_care_about_security_and_use_aggressive_mode_psk = yes
}}
"""

CHARON_CLIENT = """\
connections {{
    lab {{
        version = 1
        aggressive = {aggressive}
        local_addrs = 192.0.2.2
        remote_addrs = 192.0.2.1
        proposals = aes128-sha1-modp2048
        vips = 0.0.0.0
        local {{
            auth = psk
            id = keyid:vpngroup
        }}
        local-2 {{
            auth = xauth
            xauth_id = alice
        }}
        remote {{
            auth = psk
            id = 192.0.2.1
        }}
        children {{
            net {{
                remote_ts = 198.51.100.0/25
                esp_proposals = aes128-sha1
                mode = tunnel
            }}
        }}
    }}
}}
secrets {{
    ike-group {{
        id-group = keyid:vpngroup
        id-gw = 192.0.2.1
        secret = "{psk}"
    }}
    xauth-alice {{
        id = alice
        secret = "{password}"
    }}
}}
"""

FSWAN_SERVER = f"""\
version 2
config setup
\tinterfaces="ipsec0=wan0"

conn rw
\tleft=192.0.2.1
\tleftsubnet=198.51.100.0/25
\tleftxauthserver=yes
\tleftmodecfgserver=yes
\tright=%any
\trightid=keyid:vpngroup
\trightxauthclient=yes
\trightmodecfgclient=yes
\trightaddresspool={POOL_FIRST}-198.51.100.220
\tmodecfgpull=yes
\tmodecfgdns=203.0.113.53
\tmodecfgdomains=example.net
\tauthby=secret
\taggrmode={{aggrmode}}
\tike=aes128-sha1-modp2048
\tesp=aes128-sha1
\tpfs=no
\tauto=add
"""

FSWAN_SERVER_SECRETS = f'192.0.2.1 keyid:vpngroup : PSK "{GROUP_PSK}"\n@alice : XAUTH "{PASSWORD}"\n'


def charon_client(lab, tmp_path: Path, aggressive: bool, password: str = PASSWORD) -> None:
    confdir = tmp_path / "east"
    (confdir / "strongswan.d").mkdir(parents=True)
    (confdir / "strongswan.d" / "xauth.conf").write_text(CHARON_EXTRA)
    (confdir / "swanctl.conf").write_text(CHARON_CLIENT.format(
        aggressive="yes" if aggressive else "no", psk=GROUP_PSK, password=password))
    lab.script("start-peer", "lab-east", str(confdir))


def east_ping(source: str, count: int = 3):
    return sh("ip", "netns", "exec", "lab-east", "ping", "-c", str(count), "-W", "2", "-i", "0.2",
              "-I", source, "198.51.100.10", check=False)


@pytest.mark.parametrize("aggressive", [True, False], ids=["aggressive", "main"])
def test_charon_road_warrior_gets_xauth_and_an_address_from_fswan(lab, tmp_path, aggressive):
    west = lab.fswan("lab-west", FSWAN_SERVER.format(aggrmode="yes" if aggressive else "no"),
                     FSWAN_SERVER_SECRETS)
    charon_client(lab, tmp_path, aggressive)
    result = lab.script("initiate", "lab-east", "net", "lab", check=False)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out + west.log()[-6000:] + lab.charon_log("lab-east")[-6000:]
    sas = lab.swanctl("lab-east", "--list-sas")
    assert POOL_FIRST in sas, sas
    log = west.log()
    assert "XAUTH: User alice: Authentication Successful" in log, log[-4000:]
    ping = east_ping(POOL_FIRST)
    assert ping.returncode == 0, ping.stdout + west.log()[-3000:]
    status = west.cli("ipsec", "auto", "--status").stdout
    assert "alice" in status and POOL_FIRST in status, status


def test_wrong_password_is_refused(lab, tmp_path):
    west = lab.fswan("lab-west", FSWAN_SERVER.format(aggrmode="yes"), FSWAN_SERVER_SECRETS)
    charon_client(lab, tmp_path, True, password="not-the-password")
    lab.script("initiate", "lab-east", "net", "lab", check=False, timeout=90)
    wait_for(lambda: "Authentication Failed: Incorrect Username or Password (attempt 3 of 3)"
             in west.log(), timeout=30, what="the third refusal")
    assert "ESTABLISHED" not in lab.swanctl("lab-east", "--list-sas") or \
        "INSTALLED" not in lab.swanctl("lab-east", "--list-sas")
    assert re.search(r"XAUTH: User alice: Authentication Failed", west.log())
    assert east_ping(POOL_FIRST, 1).returncode != 0


CHARON_SERVER = """\
connections {{
    rw {{
        version = 1
        aggressive = no
        local_addrs = 192.0.2.2
        remote_addrs = 192.0.2.1
        proposals = aes128-sha1-modp2048
        pools = rw_pool
        local {{
            auth = psk
            id = 192.0.2.2
        }}
        remote {{
            auth = psk
            id = 192.0.2.1
        }}
        remote-2 {{
            auth = xauth
        }}
        children {{
            net {{
                local_ts = 203.0.113.0/25
                esp_proposals = aes128-sha1
                mode = tunnel
            }}
        }}
    }}
}}
pools {{
    rw_pool {{
        addrs = {first}-198.51.100.220
        dns = 203.0.113.53
    }}
}}
secrets {{
    ike-gw {{
        id-a = 192.0.2.1
        id-b = 192.0.2.2
        secret = "{psk}"
    }}
    xauth-alice {{
        id = alice
        secret = "{password}"
    }}
}}
"""

FSWAN_CLIENT = """\
version 2
config setup
\tinterfaces="ipsec0=wan0"

conn rw
\tleft=192.0.2.1
\tleftxauthclient=yes
\tleftmodecfgclient=yes
\tleftxauthusername=alice
\tright=192.0.2.2
\trightsubnet=203.0.113.0/25
\trightxauthserver=yes
\trightmodecfgserver=yes
\tmodecfgpull=yes
\tauthby=secret
\tike=aes128-sha1-modp2048
\tesp=aes128-sha1
\tpfs=no
\tkeyingtries=1
\tauto=add
"""


def test_fswan_road_warrior_of_a_charon_gateway(lab, tmp_path):
    confdir = tmp_path / "east"
    (confdir / "strongswan.d").mkdir(parents=True)
    (confdir / "strongswan.d" / "xauth.conf").write_text(CHARON_EXTRA)
    (confdir / "swanctl.conf").write_text(CHARON_SERVER.format(
        first=POOL_FIRST, psk=GROUP_PSK, password=PASSWORD))
    lab.script("start-peer", "lab-east", str(confdir))
    west = lab.fswan("lab-west", FSWAN_CLIENT,
                     f'192.0.2.1 192.0.2.2 : PSK "{GROUP_PSK}"\n@alice : XAUTH "{PASSWORD}"\n')
    result = west.cli("ipsec", "auto", "--up", "rw")
    assert result.returncode == 0, result.stdout + west.log()[-6000:] + lab.charon_log("lab-east")[-6000:]
    assert "XAUTH: Successfully Authenticated" in west.log()
    wait_for(lambda: POOL_FIRST in sh("ip", "-n", "lab-west", "address", "show", "dev", "ipsec0").stdout,
             timeout=10, what="the pool address on ipsec0")
    sas = lab.swanctl("lab-east", "--list-sas")
    assert POOL_FIRST in sas, sas
    ping = sh("ip", "netns", "exec", "lab-west", "ping", "-c", "3", "-W", "2", "-i", "0.2",
              "-I", POOL_FIRST, "203.0.113.10", check=False)
    assert ping.returncode == 0, ping.stdout + west.log()[-3000:]
    west.cli("ipsec", "auto", "--down", "rw")
    wait_for(lambda: POOL_FIRST not in sh("ip", "-n", "lab-west", "address", "show", "dev",
                                          "ipsec0").stdout, timeout=10, what="the address removed")


def start_second_client(lab, tmp_path: Path, user: str, password: str) -> None:
    """A second charon road warrior in lab-east-client (203.0.113.10), routed through
    lab-east to fswan (lab-west learns the way back)."""
    sh("ip", "-n", "lab-west", "route", "replace", "203.0.113.0/25", "via", "192.0.2.2")
    confdir = tmp_path / "east-client"
    (confdir / "strongswan.d").mkdir(parents=True)
    (confdir / "strongswan.d" / "xauth.conf").write_text(CHARON_EXTRA)
    text = CHARON_CLIENT.format(aggressive="yes", psk=GROUP_PSK, password=password)
    text = text.replace("local_addrs = 192.0.2.2", "local_addrs = 203.0.113.10")
    text = text.replace("xauth_id = alice", f"xauth_id = {user}").replace(
        "id = alice", f"id = {user}").replace("xauth-alice", f"xauth-{user}")
    (confdir / "swanctl.conf").write_text(text)
    lab.script("start-peer", "lab-east-client", str(confdir))


def virtual_ip(lab, ns: str) -> str:
    sas = lab.swanctl(ns, "--list-sas")
    found = re.findall(r"198\.51\.100\.2\d\d", sas)
    assert found, sas + lab.charon_log(ns)[-3000:]
    return found[0]


def test_two_road_warriors_get_two_addresses_and_a_reconnect_the_same(lab, tmp_path):
    west = lab.fswan("lab-west", FSWAN_SERVER.format(aggrmode="yes"),
                     FSWAN_SERVER_SECRETS + '@bob : XAUTH "bob-password-not-secret"\n')
    charon_client(lab, tmp_path, True)
    start_second_client(lab, tmp_path, "bob", "bob-password-not-secret")
    for ns in ("lab-east", "lab-east-client"):
        result = lab.script("initiate", ns, "net", "lab", check=False)
        assert result.returncode == 0, result.stdout + result.stderr + west.log()[-4000:]
    alice, bob = virtual_ip(lab, "lab-east"), virtual_ip(lab, "lab-east-client")
    assert alice != bob, (alice, bob)
    assert east_ping(alice).returncode == 0
    ping = sh("ip", "netns", "exec", "lab-east-client", "ping", "-c", "3", "-W", "2", "-i", "0.2",
              "-I", bob, "198.51.100.10", check=False)
    assert ping.returncode == 0, ping.stdout + west.log()[-3000:]
    # alice goes and comes back: the same address
    lab.swanctl("lab-east", "--terminate", "--ike", "lab")
    wait_for(lambda: alice not in west.cli("ipsec", "auto", "--status").stdout, timeout=10,
             what="alice's lease released")
    result = lab.script("initiate", "lab-east", "net", "lab", check=False)
    assert result.returncode == 0, result.stdout + west.log()[-3000:]
    assert virtual_ip(lab, "lab-east") == alice
    assert east_ping(alice).returncode == 0


CHARON_CERT_CLIENT = """\
connections {{
    lab {{
        version = 1
        aggressive = no
        local_addrs = 192.0.2.2
        remote_addrs = 192.0.2.1
        proposals = aes128-sha1-modp2048
        vips = 0.0.0.0
        local {{
            auth = pubkey
            certs = east.pem
            id = "{east_dn}"
        }}
        local-2 {{
            auth = xauth
            xauth_id = alice
        }}
        remote {{
            auth = pubkey
            id = "{west_dn}"
        }}
        children {{
            net {{
                remote_ts = 198.51.100.0/25
                esp_proposals = aes128-sha1
                mode = tunnel
            }}
        }}
    }}
}}
secrets {{
    xauth-alice {{
        id = alice
        secret = "{password}"
    }}
}}
"""


def test_xauth_after_certificates(lab, tmp_path):
    """XAUTHInitRSA: the road warrior proves its certificate, then its password."""
    import shutil

    from tests.pki_fixtures import make_pki

    pki = make_pki(lab.workdir / "fswan-lab-west" / "ipsec.d")
    conf = FSWAN_SERVER.format(aggrmode="no").replace("\trightid=keyid:vpngroup\n", "\trightid=%fromcert\n\trightca=%same\n").replace(
        "\tauthby=secret\n", "\tauthby=rsasig\n\tleftcert=west.pem\n")
    west = lab.fswan("lab-west", conf, f': RSA west.key\n@alice : XAUTH "{PASSWORD}"\n')
    confdir = tmp_path / "east"
    for sub in ("x509ca", "x509", "private", "strongswan.d"):
        (confdir / sub).mkdir(parents=True)
    shutil.copy(pki.root_path, confdir / "x509ca" / "root.pem")
    shutil.copy(pki["east"].cert_path, confdir / "x509" / "east.pem")
    shutil.copy(pki["east"].key_path, confdir / "private" / "east.key")
    (confdir / "strongswan.d" / "xauth.conf").write_text(CHARON_EXTRA)
    (confdir / "swanctl.conf").write_text(CHARON_CERT_CLIENT.format(
        east_dn=pki["east"].dn, west_dn=pki["west"].dn, password=PASSWORD))
    lab.script("start-peer", "lab-east", str(confdir))
    result = lab.script("initiate", "lab-east", "net", "lab", check=False)
    assert result.returncode == 0, result.stdout + west.log()[-6000:] + lab.charon_log("lab-east")[-6000:]
    log = west.log()
    assert "certificate of 'C=CH, O=fswan lab, CN=east' verified" in log
    assert "XAUTH: User alice: Authentication Successful" in log
    assert POOL_FIRST in lab.swanctl("lab-east", "--list-sas")
    assert east_ping(POOL_FIRST).returncode == 0
