"""L2TP/IPsec Quick Mode against charon (root, the lab): fswan in lab-west behind the lab's
NAPT proposes UDP-encapsulated transport mode for UDP/1701 with its NAT-OA payloads to
charon in lab-east (a copy of the roadwarrior config as an L2TP gateway).  charon's
kernel-libipsec carries only tunnel mode, so this checks the negotiation: what charon
reads of our NAT-OA and proposal, and what fswan makes of charon's answer."""

from __future__ import annotations

import shutil

from tests.lab.lab import LAB_DIR

CLIENT_CONF = """\
version 2
config setup
	interfaces="ipsec0=wan0"

conn l2tp
	type=transport
	left=192.0.2.1
	leftid=@roadwarrior
	leftprotoport=17/1701
	right=192.0.2.2
	rightid=@east
	rightprotoport=17/1701
	authby=secret
	ike=aes128-sha1-modp2048
	esp=aes128-sha1
	pfs=no
	keyingtries=1
	auto=add
"""
SECRETS = '@roadwarrior @east : PSK "lab-roadwarrior-psk-0123456789"\n'


def charon_l2tp_gateway(lab, tmp_path) -> None:
    confdir = tmp_path / "east"
    shutil.copytree(LAB_DIR / "conf" / "roadwarrior" / "east", confdir)
    swanctl = confdir / "swanctl.conf"
    text = swanctl.read_text()
    for old, new in (("local_ts = 203.0.113.0/25", "local_ts = dynamic[udp/1701]"),
                     ("remote_ts = 198.51.100.0/25", "remote_ts = dynamic[udp]"),
                     ("mode = tunnel", "mode = transport")):
        assert old in text, old
        text = text.replace(old, new)
    swanctl.write_text(text)
    lab.script("start-peer", "lab-east", str(confdir))


def up_behind_napt(lab, tmp_path):
    charon_l2tp_gateway(lab, tmp_path)
    lab.script("nat-west", "on")
    west = lab.fswan("lab-west", CLIENT_CONF, SECRETS)
    result = west.cli("ipsec", "auto", "--up", "l2tp", timeout=90)
    charon = lab.charon_log("lab-east")
    return west, result, charon, result.stdout + west.log() + charon[-6000:]


def test_charon_takes_our_nat_oa_and_answers_with_its_own(lab, tmp_path):
    """Our QI1 (UDP-encapsulated transport, IDs with 17/1701, two NAT-OA) is what charon
    expects: it maps our private address to the one it sees, picks its transport child and
    answers with NAT-OA of its own."""
    west, result, charon, report = up_behind_napt(lab, tmp_path)
    assert "STATE_MAIN_I4" in result.stdout, report
    assert "parsed QUICK_MODE request" in charon and "NAT-OA NAT-OA ]" in charon, report
    assert ("changing received traffic selectors 192.0.2.1/32[udp/l2f]=== 192.0.2.2/32[udp/l2f] "
            "due to NAT") in charon, report
    assert 'found matching child config "net"' in charon, report
    assert "generating QUICK_MODE response" in charon, report


def test_transport_sa_negotiated_with_charon(lab, tmp_path):
    """charon answers with the IDs it sees (our client as the NAT's 192.0.2.3) and its
    NAT-OA; fswan takes that answer and completes Quick Mode in UDP-encapsulated transport
    mode.  charon's kernel-libipsec then cannot install a transport SA ("unsupported
    mode"): the limit of the peer's data plane, the negotiation itself is complete."""
    west, result, charon, report = up_behind_napt(lab, tmp_path)
    assert result.returncode == 0, report
    assert "STATE_QUICK_I2" in result.stdout and "transport" in result.stdout, report
    assert "IDci/IDcr in QR1 differ" not in report
    assert "IPsec SA: unsupported mode" in charon, report
