"""IKEv2 against strongSwan's charon (root, the lab): fswan in lab-west with
``keyexchange=ikev2``, charon in lab-east with ``version = 2`` (the lab's configs
otherwise).  charon's kernel-libipsec fakes NAT detection in IKEv2 as in IKEv1, so
IKE_AUTH and ESP run on 4500 in UDP.  Each tunnel is proven by a ping (or TCP) from
client to client and by what charon lists.

Issue 14's interop cases: PSK and RSA raw keys, suites (AES-GCM, AES-CBC+SHA2 with
MODP-2048 and ECP-256), PFS on CREATE_CHILD_SA, narrowing, Child and IKE SA rekeys
under iperf3, liveness (dpdaction clear/restart), fswan behind a real NAPT; the cookie
flood is in ``test_ikev2_lab_cookies.py``, fswan<->fswan and IKEv1 beside IKEv2 in
``test_ikev2_lab_pair.py``."""

from __future__ import annotations

import json
import os
import re
import signal
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.lab.lab import LAB_DIR, sh, wait_for
from tests.lab.test_dataplane_strongswan import client_ping
from tests.lab.test_strongswan_ike import PSK_SECRETS, psk_conf, pubkey_conf, pubkey_secrets


def start_charon_v2(lab, tmp_path, proposals: str = "aes128-sha256-modp2048",
                    esp_proposals: str = "aes128-sha256", extra: dict[str, str] | None = None,
                    variant: str = "psk-main", ns: str = "lab-east") -> None:
    """charon in ``ns`` on the lab's ``variant`` config (east's side) made IKEv2 with these
    proposals; ``extra`` replaces more text in its swanctl.conf."""
    confdir = tmp_path / f"{ns}-{variant}"
    shutil.copytree(LAB_DIR / "conf" / variant / "east", confdir)
    swanctl = confdir / "swanctl.conf"
    text = swanctl.read_text()
    replacements = {
        "version = 1": "version = 2",
        "proposals = aes128-sha1-modp2048": f"proposals = {proposals}",
        **(extra or {}),
    }
    text = re.sub(r"esp_proposals = aes128-sha1\b", f"esp_proposals = {esp_proposals}", text)
    for old, new in replacements.items():
        assert old in text, old
        text = text.replace(old, new)
    swanctl.write_text(text)
    lab.script("start-peer", ns, str(confdir))


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


def rsa_v2_conf(extra: str = "") -> str:
    conf = pubkey_conf().replace("\tauthby=rsasig\n", "\tauthby=rsasig\n\tkeyexchange=ikev2\n")
    return conf.replace("ike=aes128-sha1-modp2048", "ike=aes128-sha2_256-modp2048").replace(
        "esp=aes128-sha1", "esp=aes128-sha2_256").replace("\tauto=add\n", f"{extra}\tauto=add\n")


@pytest.mark.parametrize("initiator", ["fswan", "charon"])
def test_rsa_raw_keys_with_charon(lab, tmp_path, initiator):
    """RSA raw keys (pubkey-main made IKEv2): fswan signs with AUTH method 1 (RSA, SHA-1),
    charon with whatever it picks (RFC 7427 method 14 if it knows we can verify it)."""
    start_charon_v2(lab, tmp_path, variant="pubkey-main")
    west = lab.fswan("lab-west", rsa_v2_conf(), pubkey_secrets())
    bring_up(lab, west, initiator)
    sas = lab.swanctl("lab-east", "--list-sas")
    assert "IKEv2" in sas and "ESTABLISHED" in sas and "INSTALLED" in sas, sas
    assert "remote 'west' @ 192.0.2.1[4500]" in sas, sas
    log = lab.charon_log("lab-east")
    # method 1 (RSA, SHA-1) or RFC 7427 (method 14, RSA with SHA-2): whichever the two agree
    methods = r"(RSA signature|RSA_EMSA_PKCS1_SHA2_\d+)"
    assert re.search(rf"authentication of 'west' with {methods} successful", log), log[-4000:]
    assert re.search(rf"authentication of 'east' \(myself\) with {methods} successful", log)
    ping_through(west)
    status = west.cli("ipsec", "auto", "--status").stdout
    assert "STATE_V2_ESTABLISHED_IKE_SA" in status, status


#: (fswan ike=, esp=, charon proposals, esp_proposals, what swanctl lists)
SUITES = [
    ("aes_gcm_16_256-prfsha256-modp2048", "aes_gcm256", "aes256gcm16-prfsha256-modp2048",
     "aes256gcm16", ("AES_GCM_16-256/PRF_HMAC_SHA2_256/MODP_2048", "AES_GCM_16-256")),
    ("aes256-sha2_256-modp2048", "aes256-sha2_512", "aes256-sha256-modp2048", "aes256-sha512",
     ("AES_CBC-256/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048",
      "AES_CBC-256/HMAC_SHA2_512_256")),
    ("aes128-sha2_256-ecp256", "aes128-sha2_256", "aes128-sha256-ecp256", "aes128-sha256",
     ("AES_CBC-128/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/ECP_256", "AES_CBC-128/HMAC_SHA2_256_128")),
]


@pytest.mark.parametrize("initiator", ["fswan", "charon"])
@pytest.mark.parametrize("ike, esp, proposals, esp_proposals, listed", SUITES,
                         ids=[s[0] for s in SUITES])
def test_suites_with_charon(lab, tmp_path, initiator, ike, esp, proposals, esp_proposals,
                            listed):
    start_charon_v2(lab, tmp_path, proposals, esp_proposals)
    west = lab.fswan("lab-west", v2_conf(ike, esp), PSK_SECRETS)
    bring_up(lab, west, initiator)
    sas = lab.swanctl("lab-east", "--list-sas")
    for suite in listed:
        assert suite in sas, sas
    ping_through(west)


#: charon rekeys its Child SA after 6 s (and lets it live 30 s)
CHARON_CHILD_REKEY = {"rekey_time = 1h": "rekey_time = 6s\n                life_time = 30s\n"
                                         "                rand_time = 0s"}


def child_spis(west) -> set[str]:
    return set(re.findall(r"esp\.([0-9a-f]+)@", west.cli("ipsec", "auto", "--status").stdout))


@pytest.mark.parametrize("rekeyer", ["fswan", "charon"])
def test_pfs_child_rekey_carries_ke(lab, tmp_path, rekeyer):
    """pfs=yes: the first Child SA (in IKE_AUTH) has no DH of its own, its rekey by
    CREATE_CHILD_SA carries KE in MODP-2048 and charon lists the group on the new SA."""
    extra = CHARON_CHILD_REKEY if rekeyer == "charon" else {}
    start_charon_v2(lab, tmp_path, esp_proposals="aes128-sha256-modp2048", extra=extra)
    timers = "keylife=12s\nrekeymargin=6s\nrekeyfuzz=0%\n" if rekeyer == "fswan" else ""
    west = lab.fswan("lab-west", v2_conf(extra=timers).replace("pfs=no", "pfs=yes"),
                     PSK_SECRETS)
    bring_up(lab, west, "fswan")
    first = lab.swanctl("lab-east", "--list-sas")
    assert "ESP:AES_CBC-128/HMAC_SHA2_256_128\n" in first, first
    spis = child_spis(west)
    wait_for(lambda: "ESP:AES_CBC-128/HMAC_SHA2_256_128/MODP_2048" in lab.swanctl(
        "lab-east", "--list-sas"),
             timeout=15, what="a rekeyed Child SA with PFS")
    sas = lab.swanctl("lab-east", "--list-sas")
    assert sas.count("INSTALLED") >= 1, sas
    assert child_spis(west) - spis, west.log()
    log = west.log()
    if rekeyer == "fswan":
        assert "STATE_V2_REKEY_CHILD_I1" in log, log
    else:
        log = lab.charon_log("lab-east")
        assert "activating CHILD_REKEY task" in log, log[-4000:]
    ping_through(west)


def test_charon_proposing_a_wider_selector_gets_it_narrowed(lab, tmp_path):
    """charon initiates for 198.51.100.0/24 behind fswan; fswan's conn allows only
    198.51.100.0/25 and answers with that (RFC 7296 2.9); charon installs the /25."""
    start_charon_v2(lab, tmp_path, extra={"remote_ts = 198.51.100.0/25":
                                          "remote_ts = 198.51.100.0/24"})
    west = lab.fswan("lab-west", v2_conf(), PSK_SECRETS)
    bring_up(lab, west, "charon")
    sas = lab.swanctl("lab-east", "--list-sas")
    assert re.search(r"remote 198\.51\.100\.0/25\n", sas), sas
    assert "198.51.100.0/24" not in sas, sas
    log = lab.charon_log("lab-east")
    assert "TS 203.0.113.0/25 === 198.51.100.0/25" in log, log[-3000:]
    status = west.cli("ipsec", "auto", "--status").stdout
    assert "STATE_V2_ESTABLISHED_CHILD_SA" in status, status
    ping_through(west)


def iperf(seconds: int) -> subprocess.CompletedProcess:
    """iperf3 client to client for ``seconds`` (JSON out)."""
    server = subprocess.Popen(["ip", "netns", "exec", "lab-east-client", "iperf3", "-s", "-1",
                               "-B", "203.0.113.10"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: ":5201" in sh("ip", "netns", "exec", "lab-east-client", "ss",
                                       "-ltn").stdout, timeout=5, what="iperf3 server")
        return sh("ip", "netns", "exec", "lab-west-client", "iperf3", "-c", "203.0.113.10",
                  "-t", str(seconds), "-b", "20M", "-J", check=False, timeout=seconds + 30)
    finally:
        server.kill()
        server.wait()


#: charon rekeys its IKE SA after 14 s and its Child SA after 8 s
CHARON_REKEYS = {
    "rekey_time = 4h": "rekey_time = 14s\n        rand_time = 0s\n        over_time = 30s",
    "rekey_time = 1h": "rekey_time = 8s\n                life_time = 60s\n"
                       "                rand_time = 0s",
}


@pytest.mark.parametrize("rekeyer", ["fswan", "fswan-responder", "charon"])
def test_rekeys_during_iperf_lose_no_connection(lab, tmp_path, rekeyer):
    """Child SA and IKE SA rekeys (by fswan's short lifetimes -- fswan having initiated
    the tunnel, or charon --, or by charon's rekey_time) while iperf3 runs: the TCP
    connection survives, new SPIs come into use."""
    if rekeyer == "fswan":
        start_charon_v2(lab, tmp_path)
        timers = "keylife=16s\nikelifetime=24s\nrekeymargin=8s\nrekeyfuzz=0%\n"
    elif rekeyer == "fswan-responder":
        # a responder's margin is half rekeymargin=: Child SA at 8 s, IKE SA at 12 s
        start_charon_v2(lab, tmp_path)
        timers = "keylife=12s\nikelifetime=16s\nrekeymargin=8s\nrekeyfuzz=0%\n"
    else:
        start_charon_v2(lab, tmp_path, extra=CHARON_REKEYS)
        timers = ""
    west = lab.fswan("lab-west", v2_conf(extra=timers), PSK_SECRETS)
    bring_up(lab, west, "charon" if rekeyer == "fswan-responder" else "fswan")
    ping_through(west)
    spis = child_spis(west)
    result = iperf(26)
    assert result.returncode == 0, result.stdout + result.stderr + west.log()[-4000:]
    report = json.loads(result.stdout)
    received = report["end"]["sum_received"]["bytes"]
    assert received > 10 << 20, report["end"]
    log = west.log()
    if rekeyer.startswith("fswan"):
        # Child SA rekeys at 8, 16 and 24 s, the one at 16 s together with the IKE SA's
        # (whichever goes first, the other waits for the window and must still go out)
        assert log.count("STATE_V2_REKEY_CHILD_I1: sent") >= 3, log
        assert "STATE_V2_REKEY_IKE_I1" in log, log
    else:
        charon = lab.charon_log("lab-east")
        assert "activating CHILD_REKEY task" in charon and "activating IKE_REKEY task" in charon, \
            charon[-4000:]
    assert re.search(r"IKE SA #1 rekeyed: its Child SAs now use #\d+", log), log
    assert not child_spis(west) & spis, west.cli("ipsec", "auto", "--status").stdout
    sas = lab.swanctl("lab-east", "--list-sas")
    assert "ESTABLISHED" in sas and "INSTALLED" in sas, sas
    ping_through(west)


def kill_charon(lab, ns: str) -> None:
    """charon gone without a word (stop-peer's SIGTERM would make it send Deletes)."""
    pid = int((Path("/tmp/lab-strongswan") / ns / "charon.lab.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not Path(f"/proc/{pid}").exists() or
             "zombie" in Path(f"/proc/{pid}/status").read_text(), timeout=5, what="charon gone")
    lab.script("stop-peer", ns)


@pytest.mark.parametrize("action", ["clear", "restart"])
def test_liveness_declares_a_stopped_charon_dead(lab, tmp_path, action):
    """dpddelay/dpdtimeout on an IKEv2 conn are liveness checks (empty INFORMATIONAL
    requests): charon stopped, fswan declares it dead and clears; with restart it keys
    again and the tunnel returns once charon is back."""
    start_charon_v2(lab, tmp_path)
    conf = v2_conf().replace("dpddelay=10s", "dpddelay=2s").replace(
        "dpdtimeout=30s", "dpdtimeout=6s").replace("dpdaction=clear", f"dpdaction={action}")
    west = lab.fswan("lab-west", conf.replace("keyingtries=1", "keyingtries=0"), PSK_SECRETS)
    bring_up(lab, west, "fswan")
    ping_through(west)
    if action == "clear":  # a live charon answers the liveness checks: nothing happens
        wait_for(lambda: counter(west, "dpd_sent") >= 3, timeout=10, what="liveness checks")
        assert "declaring peer dead" not in west.log()
        assert "STATE_V2_ESTABLISHED_CHILD_SA" in west.cli("ipsec", "auto", "--status").stdout
    kill_charon(lab, "lab-east")
    try:
        wait_for(lambda: "DPD: No response from peer - declaring peer dead" in west.log(),
                 timeout=15, what="fswan to declare charon dead")
    except AssertionError:
        raise AssertionError(west.log()[-5000:]) from None
    # logged right after, but the log file may not have it yet
    verdict = ("DPD: dpdaction=clear: connection cleared" if action == "clear"
               else "DPD: dpdaction=restart: restarting connection")
    wait_for(lambda: verdict in west.log(), timeout=5, what=f"'{verdict}' in fswan's log")
    log = west.log()
    status = west.cli("ipsec", "auto", "--status").stdout
    if action == "clear":
        assert "STATE_V2_ESTABLISHED" not in status, status
        assert client_ping(1).returncode != 0
        return
    assert "DPD: dpdaction=restart: restarting connection" in log, log
    assert "STATE_V2_ESTABLISHED" not in status and "STATE_PARENT_I1" in status, status
    start_charon_v2(lab, tmp_path / "again")
    wait_for(lambda: "STATE_V2_ESTABLISHED_CHILD_SA" in west.cli("ipsec", "auto",
                                                                 "--status").stdout,
             timeout=25, what="the tunnel to come back")
    sas = lab.swanctl("lab-east", "--list-sas")
    assert "ESTABLISHED" in sas and "INSTALLED" in sas, sas
    ping_through(west)


def counter(daemon, name: str) -> int:
    """One of ``whack --globalstatus``'s ``total.ike.counters.*`` figures."""
    out = daemon.cli("whack", "--globalstatus").stdout
    found = re.search(rf"total\.ike\.counters\.{name}=(\d+)", out)
    assert found, out
    return int(found.group(1))


ROADWARRIOR_V2 = """\
version 2
config setup
	interfaces="ipsec0=wan0"
	keep_alive=2s

conn rw
	left=192.0.2.1
	leftid=@roadwarrior
	leftsubnet=198.51.100.0/25
	right=192.0.2.2
	rightid=@east
	rightsubnet=203.0.113.0/25
	authby=secret
	keyexchange=ikev2
	ike=aes128-sha2_256-modp2048
	esp=aes128-sha2_256
	keyingtries=1
	auto=add
"""


def test_fswan_behind_a_real_napt(lab, tmp_path):
    """fswan behind the lab's NAPT (192.0.2.3, 500->1500, 4500->14500) initiates to charon's
    road-warrior config made IKEv2: NAT detected for a real reason on our side, ESP in UDP
    through the NAT, and NAT-T keepalives from us."""
    start_charon_v2(lab, tmp_path, variant="roadwarrior")
    lab.script("nat-west", "on")
    west = lab.fswan("lab-west", ROADWARRIOR_V2,
                     '@roadwarrior @east : PSK "lab-roadwarrior-psk-0123456789"\n')
    result = west.cli("ipsec", "auto", "--up", "rw")
    assert result.returncode == 0, result.stdout + west.log() + lab.charon_log("lab-east")[-4000:]
    sas = lab.swanctl("lab-east", "--list-sas")
    assert "IKEv2" in sas and "INSTALLED" in sas and "TUNNEL-in-UDP" in sas, sas
    assert "remote 'roadwarrior' @ 192.0.2.3[14500]" in sas, sas
    log = lab.charon_log("lab-east")
    assert "remote host is behind NAT" in log, log[-4000:]
    ping_through(west)
    before = counter(west, "keepalives_sent")
    wait_for(lambda: counter(west, "keepalives_sent") >= before + 2, timeout=8,
             what="NAT-T keepalives")
    ping_through(west)
