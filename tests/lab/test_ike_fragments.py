"""IKE fragmentation against strongSwan's charon (root, the lab).

The wire between the gateways gets a small MTU (``WIRE_MTU``) and, in both gateway
namespaces, an nftables rule that drops IP fragments before reassembly: a Main Mode
message with a MODP-2048 KE payload no longer fits one datagram, so the tunnel only
comes up if both sides cut it into IKE fragments.  charon (lab-east) runs the lab's
psk-main config with ``fragmentation = force`` and a small ``charon.fragment_size``;
fswan (lab-west) runs with ``fragmentation=yes`` (it fragments because charon
announced support) or ``force``, and ``ike_fragment_size=`` below the MTU; either
side initiates.  Both logs must show fragments going each way, and a ping crosses.

:func:`key_with_fragments` takes any charon conf dir and fswan conf, so that bigger
messages (4096-bit certificates) can reuse it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.lab.lab import LAB_DIR, sh, wait_for
from tests.lab.test_dataplane_strongswan import client_ping
from tests.lab.test_strongswan_ike import PSK_SECRETS, psk_conf

#: the gateways' wan0 MTU: below an unfragmented MODP-2048 Main Mode message 3/4 (~410 bytes)
WIRE_MTU = 360
#: what both sides may put in one datagram (IP header included), below WIRE_MTU
FRAGMENT_SIZE = 320
GATEWAYS = ("lab-west", "lab-east")

#: IP fragments (more-fragments bit or an offset) are dropped before the kernel reassembles them
NO_IP_FRAGMENTS = """\
table ip fswan_nofrag {
    chain pre {
        type filter hook prerouting priority -450; policy accept;
        ip frag-off & 0x3fff != 0 counter drop
    }
}
"""


def charon_confdir(tmp_path: Path, source: Path | None = None, *,
                   fragment_size: int = FRAGMENT_SIZE) -> Path:
    """A copy of a lab charon conf dir with ``fragmentation = force`` on every
    connection and ``charon.fragment_size`` set (strongswan.d/fragments.conf)."""
    confdir = tmp_path / "east"
    shutil.copytree(source or LAB_DIR / "conf" / "psk-main" / "east", confdir)
    swanctl = confdir / "swanctl.conf"
    text, count = re.subn(r"(\n(\s*)version = 1[^\n]*)", r"\1\n\2fragmentation = force",
                          swanctl.read_text())
    assert count, "no 'version = 1' line to add fragmentation = force to"
    swanctl.write_text(text)
    (confdir / "strongswan.d").mkdir(exist_ok=True)
    (confdir / "strongswan.d" / "fragments.conf").write_text(
        f"charon {{\n    fragment_size = {fragment_size}\n}}\n")
    return confdir


def fswan_conf(conf: str, fragmentation: str, fragment_size: int = FRAGMENT_SIZE) -> str:
    """``conf`` with ``fragmentation=`` on conn net and ``ike_fragment_size=`` in config setup."""
    assert "config setup\n" in conf and "conn net\n" in conf
    return conf.replace("config setup\n", f"config setup\n\tike_fragment_size={fragment_size}\n") \
               .replace("conn net\n", f"conn net\n\tfragmentation={fragmentation}\n")


def drop_ip_fragments(mtu: int = WIRE_MTU) -> None:
    """Small MTU on the gateways' wire and no IP fragment accepted by either gateway."""
    for ns in GATEWAYS:
        sh("ip", "-n", ns, "link", "set", "wan0", "mtu", str(mtu))
        result = subprocess.run(["ip", "netns", "exec", ns, "nft", "-f", "-"],
                                input=NO_IP_FRAGMENTS, capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, result.stderr


def ip_fragments_dropped(ns: str) -> int:
    rules = sh("ip", "netns", "exec", ns, "nft", "list", "table", "ip", "fswan_nofrag").stdout
    match = re.search(r"counter packets (\d+)", rules)
    return int(match.group(1)) if match else 0


def key_with_fragments(lab, confdir: Path, conf: str, secrets: str, initiator: str):
    """charon in lab-east on ``confdir``, fswan in lab-west on ``conf``, IP fragments
    dropped; the tunnel keyed by ``initiator``, fragments seen both ways, a ping through.
    Returns the fswan daemon."""
    drop_ip_fragments()
    lab.script("start-peer", "lab-east", str(confdir))
    west = lab.fswan("lab-west", conf, secrets)
    if initiator == "fswan":
        result = west.cli("ipsec", "auto", "--up", "net")
        out = result.stdout
    else:
        result = lab.script("initiate", "lab-east", "net", "lab", check=False)
        out = result.stdout + result.stderr
    charon = lab.charon_log("lab-east")
    assert result.returncode == 0, out + west.log() + charon[-6000:]
    # charon cut its messages, and put ours back together
    assert re.search(r"splitting IKE message \(\d+ bytes\) into \d+ fragments", charon), charon
    assert "reassembled fragmented IKE message" in charon, charon
    # and fswan said the same from its side
    log = west.log()
    assert "sending IKE fragments: a " in log, log
    assert "received IKE fragments from 192.0.2.2:" in log, log
    wait_for(lambda: "; erouted" in west.cli("ipsec", "auto", "--status").stdout, timeout=10,
             what="the eroute")
    ping = client_ping(3)
    assert ping.returncode == 0, ping.stdout + west.log()
    return west


@pytest.mark.parametrize("initiator", ["fswan", "charon"])
@pytest.mark.parametrize("fragmentation", ["yes", "force"])
def test_main_mode_in_fragments_with_strongswan(lab, tmp_path, fragmentation, initiator):
    confdir = charon_confdir(tmp_path)
    conf = fswan_conf(psk_conf(), fragmentation)
    key_with_fragments(lab, confdir, conf, PSK_SECRETS, initiator)


def test_without_fragments_the_wire_stops_main_mode(lab, tmp_path):
    """The control: fswan with fragmentation=no on the same wire: its Main Mode message 3
    leaves as IP fragments, which east drops, so the cases above pass because of IKE
    fragments, not despite the wire."""
    drop_ip_fragments()
    lab.script("start-peer", "lab-east", str(charon_confdir(tmp_path)))
    west = lab.fswan("lab-west", fswan_conf(psk_conf(), "no"), PSK_SECRETS)
    result = west.cli("ipsec", "auto", "--asynchronous", "--up", "net")
    assert result.returncode == 0, result.stdout + result.stderr
    wait_for(lambda: ip_fragments_dropped("lab-east") > 0, timeout=10, what="dropped IP fragments")
    status = west.cli("ipsec", "auto", "--status").stdout
    assert "STATE_MAIN_I2" in status and "ISAKMP SA established" not in status, status
    assert "sending IKE fragments" not in west.log()
