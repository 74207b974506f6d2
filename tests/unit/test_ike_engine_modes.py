"""Main Mode, Aggressive Mode and Quick Mode between two engines in memory."""

from __future__ import annotations

from ipaddress import ip_address

import pytest

from fswan.config.model import AuthBy, ConnType
from fswan.ike.engine import IkeEngine
from fswan.ike.events import ChildSAInstalled, Datagram, WhackDone
from fswan.ike.engine import TRANSITIONS
from fswan.ike.state import ESTABLISHED, STORIES, StateKind
from fswan.isakmp.constants import ExchangeType, KnownVendor, OakleyAttr
from fswan.isakmp.message import decode_message
from fswan.isakmp.payloads import SAPayload, VendorIDPayload
from tests.ike_pair import (
    DATA,
    EAST,
    WEST,
    conn,
    lab_secrets,
    make_pair,
    mirrored,
    oriented,
    rsa_pubkey,
    rsa_secrets,
    seeded,
)
from tests.pcap import read_pcap


def check_up(pair, esp=None) -> tuple[ChildSAInstalled, ChildSAInstalled]:
    (west,), (east,) = pair.west.installed, pair.east.installed
    assert mirrored(west, east)
    assert west.local_client == east.remote_client and west.remote_client == east.local_client
    if esp is not None:
        assert (west.proposal.cipher, west.proposal.key_bits, west.proposal.integrity) == esp
    assert pair.west.whack_done == [WhackDone("whack", True)]
    return west, east


# --------------------------------------------------------------------------
# the table itself


def test_every_state_has_a_story_and_every_handler_exists():
    assert set(STORIES) == set(StateKind)
    for kind, transition in TRANSITIONS.items():
        assert callable(transition.handler), kind
        assert not kind.established
    assert set(TRANSITIONS) == {k for k in StateKind if not k.established and not k.is_v2}  # one row each (IKEv2 dispatches by exchange: fswan/ikev2/hooks.py)
    assert StateKind.MAIN_R0 == 3 and StateKind.QUICK_R2 == 20
    assert {k for k in StateKind if k.established} == ESTABLISHED


# --------------------------------------------------------------------------
# PSK Main Mode + Quick Mode


def test_psk_main_and_quick_mode_lines():
    pair = make_pair(conn(ike="aes128-sha1-modp2048", esp="aes128-sha1", pfs=False))
    pair.initiate()
    west, east = check_up(pair, ("aes_cbc", 128, "sha1"))
    assert pair.west.lines == [
        '104 "net" #1: STATE_MAIN_I1: initiate',
        '106 "net" #1: STATE_MAIN_I2: sent MI2, expecting MR2',
        '002 "net" #1: NAT-Traversal: Result using RFC 3947: no NAT detected',
        '108 "net" #1: STATE_MAIN_I3: sent MI3, expecting MR3',
        '004 "net" #1: STATE_MAIN_I4: ISAKMP SA established {auth=PRESHARED_KEY cipher=aes_128 '
        "prf=sha group=MODP2048}",
        '117 "net" #2: STATE_QUICK_I1: initiate',
        f'004 "net" #2: STATE_QUICK_I2: sent QI2, IPsec SA established {{ESP=>0x{west.outbound_spi:08x} '
        f"<0x{west.inbound_spi:08x} xfrm=AES_CBC_128-HMAC_SHA1_96 DPD=passive}}",
    ]
    assert pair.east.lines[-2:] == [
        '118 "net" #2: STATE_QUICK_R1: sent QR1, inbound IPsec SA installed, expecting QI2',
        f'004 "net" #2: STATE_QUICK_R2: IPsec SA established {{ESP=>0x{east.outbound_spi:08x} '
        f"<0x{east.inbound_spi:08x} xfrm=AES_CBC_128-HMAC_SHA1_96 DPD=passive}}",
    ]
    # the whack saw the lines of its initiation
    assert all(line.whack == "whack" for line in pair.west.logs)
    assert west.mode == "tunnel" and not west.udp_encapsulated
    assert (str(west.local_client), str(west.remote_client)) == (
        "198.51.100.0/25",
        "203.0.113.0/25",
    )
    assert west.lifetime_seconds == 8 * 3600 and west.replaces_serial is None
    assert pair.west.engine.newest("net") == (1, 2) == pair.east.engine.newest("net")


@pytest.mark.parametrize(
    "esp, expect",
    [
        ("aes_gcm128", ("aes_gcm_16", 128, None)),
        ("aes_gcm256", ("aes_gcm_16", 256, None)),
        ("aes128-sha1", ("aes_cbc", 128, "sha1")),
        ("aes256-sha2_256", ("aes_cbc", 256, "sha2_256")),
        ("3des-sha1", ("3des_cbc", 192, "sha1")),
    ],
)
@pytest.mark.parametrize("pfs", [True, False])
def test_esp_families(esp, expect, pfs):
    pair = make_pair(conn(ike="aes128-sha1-modp1024", esp=esp, pfs=pfs))
    pair.initiate()
    west, _ = check_up(pair, expect)
    assert (west.proposal.pfs_group == 2) is pfs
    keys = west.outbound_keys
    gcm = expect[0].startswith("aes_gcm")
    assert len(keys.encryption_key) == expect[1] // 8
    assert len(keys.salt) == (4 if gcm else 0)
    assert len(keys.integrity_key) == {None: 0, "sha1": 20, "sha2_256": 32}[expect[2]]
    assert west.inbound_keys != west.outbound_keys


@pytest.mark.parametrize(
    "ike, details",
    [
        ("aes128-sha1-modp2048", "cipher=aes_128 prf=sha group=MODP2048"),
        ("aes256-sha2_256-modp3072", "cipher=aes_256 prf=sha2_256 group=MODP3072"),
        ("3des-md5-modp1024", "cipher=3des prf=md5 group=MODP1024"),
    ],
)
def test_ike_families(ike, details):
    pair = make_pair(conn(ike=ike, esp="aes128-sha1"))
    pair.initiate()
    check_up(pair)
    assert any(details in line for line in pair.west.lines)
    assert any(details in line for line in pair.east.lines)


def test_esp_named_group_overrides_phase1_group():
    pair = make_pair(conn(ike="aes128-sha1-modp2048", esp="aes128-sha1-modp1536", pfs=False))
    pair.initiate()
    west, _ = check_up(pair)
    assert west.proposal.pfs_group == 5
    assert "pfsgroup=MODP1536" in pair.west.lines[-1]


def test_host_to_host_sends_no_client_ids():
    c = conn(leftsubnet=None, rightsubnet=None, esp="aes128-sha1")
    pair = make_pair(c)
    pair.initiate()
    west, east = check_up(pair)
    assert (str(west.local_client), str(west.remote_client)) == ("192.0.2.1/32", "192.0.2.2/32")
    assert (str(east.local_client), str(east.remote_client)) == ("192.0.2.2/32", "192.0.2.1/32")


def test_transport_mode():
    c = conn(leftsubnet=None, rightsubnet=None, type=ConnType.TRANSPORT)
    pair = make_pair(c)
    pair.initiate()
    west, east = check_up(pair)
    assert west.mode == east.mode == "transport"
    assert "ESP/transport=>" in pair.west.lines[-1]


def test_rsa_signatures_main_mode():
    c = conn(
        authby=AuthBy.RSASIG,
        leftid="@west",
        rightid="@east",
        leftrsasigkey=rsa_pubkey("west"),
        rightrsasigkey=rsa_pubkey("east"),
    )
    pair = make_pair(c, west_secrets=rsa_secrets("west"), east_secrets=rsa_secrets("east"))
    pair.initiate()
    check_up(pair)
    assert "auth=RSA_SIG" in pair.west.lines[4]
    assert str(pair.east.isakmp_up[0].peer_id) == "@west"
    assert str(pair.west.isakmp_up[0].peer_id) == "@east"


def test_rsa_wrong_peer_key_fails_authentication():
    good = conn(
        authby=AuthBy.RSASIG,
        leftid="@west",
        rightid="@east",
        leftrsasigkey=rsa_pubkey("west"),
        rightrsasigkey=rsa_pubkey("east"),
    )
    wrong = conn(
        authby=AuthBy.RSASIG,
        leftid="@west",
        rightid="@east",
        leftrsasigkey=rsa_pubkey("east"),
        rightrsasigkey=rsa_pubkey("east"),
    )
    pair = make_pair(
        good, wrong, west_secrets=rsa_secrets("west"), east_secrets=rsa_secrets("east")
    )
    pair.initiate()
    assert "Signature check (on @west) failed (wrong key?)" in pair.east.text()
    assert pair.west.installed == [] and pair.east.installed == []
    pair.run(200)
    assert WhackDone("whack", False) in pair.west.whack_done


def test_wrong_psk_never_comes_up_and_the_whack_is_released():
    from tests.ike_pair import psk_secrets

    pair = make_pair(
        conn(keyingtries=1),
        west_secrets=psk_secrets(f'{WEST} {EAST} : PSK "one"'),
        east_secrets=psk_secrets(f'{WEST} {EAST} : PSK "two"'),
    )
    pair.initiate()
    pair.run(100)
    assert "probable authentication failure (mismatch of preshared secrets?)" in pair.east.text()
    assert pair.west.whack_done == [WhackDone("whack", False)]
    assert "031 " in pair.west.text() and "one" not in pair.west.text() + pair.east.text()
    assert pair.west.engine.get_timer() is None  # keyingtries=1: nothing more to try


def test_no_psk_at_all():
    from tests.ike_pair import psk_secrets

    pair = make_pair(conn(keyingtries=1), west_secrets=psk_secrets(""))
    pair.initiate()
    assert (
        "Can't authenticate: no preshared key found for '192.0.2.1' and '192.0.2.2'"
        in pair.west.text()
    )


# --------------------------------------------------------------------------
# Aggressive Mode


def test_aggressive_mode():
    c = conn(aggrmode=True, ike="aes128-sha1-modp2048,aes256-sha1-modp1024", esp="aes128-sha1")
    pair = make_pair(c)
    pair.initiate()
    check_up(pair)
    assert [line.split(": ", 1)[1] for line in pair.west.lines if "STATE_AGGR" in line] == [
        "STATE_AGGR_I1: initiate",
        "STATE_AGGR_I2: sent AI2, ISAKMP SA established {auth=PRESHARED_KEY cipher=aes_128 "
        "prf=sha group=MODP2048}",
    ]
    assert '113 "net" #1: STATE_AGGR_R1: sent AR1, expecting AI2' in pair.east.lines
    ai1 = decode_message(pair.wire[0].data)
    assert ai1.header.exchange == ExchangeType.AGGRESSIVE
    groups = {
        t.value(OakleyAttr.OAKLEY_GROUP_DESCRIPTION)
        for t in ai1.find(SAPayload).proposals[0].transforms
    }
    assert groups == {14}  # only the first proposal's group: the KE fixes it


def test_aggressive_mode_refused_unless_allowed():
    pair = make_pair(conn(aggrmode=True), conn(aggrmode=False))
    pair.initiate()
    assert (
        "initial Aggressive Mode message received on 192.0.2.2:500 but no connection has "
        "been authorized with policy=PSK+AGGRESSIVE"
    ) in pair.east.text()
    assert pair.east.engine.counters["no_connection"] == 1
    assert pair.wire[-1].sender == "west"  # ignored: no answer


def test_aggressive_mode_rsa():
    c = conn(
        aggrmode=True,
        authby=AuthBy.RSASIG,
        leftid="@west",
        rightid="@east",
        leftrsasigkey=rsa_pubkey("west"),
        rightrsasigkey=rsa_pubkey("east"),
    )
    pair = make_pair(c, west_secrets=rsa_secrets("west"), east_secrets=rsa_secrets("east"))
    pair.initiate()
    check_up(pair)


# --------------------------------------------------------------------------
# status


def test_state_lines_and_dicts():
    pair = make_pair(conn(ike="aes128-sha1-modp2048", esp="aes128-sha1", rekeyfuzz=0))
    pair.initiate()
    west = pair.west.installed[0]
    lines = pair.west.engine.state_lines(pair.now)
    assert lines == [
        '#1: "net" STATE_MAIN_I4 (ISAKMP SA established); EVENT_SA_REPLACE in 3060s; newest ISAKMP',
        '#2: "net" STATE_QUICK_I2 (sent QI2, IPsec SA established); EVENT_SA_REPLACE in 28260s; '
        "newest IPSEC;",
        f'#2: "net" esp.{west.outbound_spi:x}@192.0.2.2 esp.{west.inbound_spi:x}@192.0.2.1',
    ]
    east_lines = pair.east.engine.state_lines(pair.now)
    assert east_lines[0] == (
        '#1: "net" STATE_MAIN_R3 (sent MR3, ISAKMP SA established); '
        "EVENT_SA_REPLACE in 3330s; newest ISAKMP"
    )  # responder: margin/2
    dicts = pair.west.engine.state_dicts(pair.now)
    assert [d["state"] for d in dicts] == ["STATE_MAIN_I4", "STATE_QUICK_I2"]
    assert dicts[1]["inbound_spi"] == f"{west.inbound_spi:08x}" and dicts[1]["newest"]
    assert (
        dicts[0]["peer_id"] == "192.0.2.2"
        and dicts[0]["proposal"] == "AES_CBC_128-HMAC_SHA1-MODP2048"
    )


def test_in_progress_state_line():
    engine = IkeEngine(lab_secrets(), random_bytes=seeded(3))
    engine.add_connection(oriented(conn(), WEST))
    engine.initiate("net", 100.0)
    assert engine.state_lines(103.0) == [
        '#1: "net" STATE_MAIN_I1 (sent MI1, expecting MR1); EVENT_RETRANSMIT in 7s'
    ]
    assert engine.get_timer() == 110.0


def test_unknown_connection_and_unknown_peer():
    engine = IkeEngine(lab_secrets())
    engine.initiate("nope", 0.0, whack="w")
    events = engine.next_events()
    assert events[0].text == 'no connection named "nope"' and events[0].rc == 21
    assert events[-1] == WhackDone("w", False)
    engine.add_connection(oriented(conn(right="%any", rightsubnet=None), WEST))
    engine.initiate("net", 0.0, whack="w")
    events = engine.next_events()
    assert events[0].text == "cannot initiate connection without knowing peer IP address"
    assert events[0].rc == 29 and events[-1] == WhackDone("w", False)


# --------------------------------------------------------------------------
# strongSwan's real bytes


def lab_east() -> IkeEngine:
    engine = IkeEngine(lab_secrets(), random_bytes=seeded(7))
    engine.add_connection(
        oriented(conn("lab", ike="aes128-sha1-modp2048", esp="aes128-sha1"), EAST)
    )
    return engine


def test_strongswan_mm1_gets_our_mr1():
    mm1 = read_pcap(DATA / "psk-main.pcap")[0]
    engine = lab_east()
    engine.receive_datagram(mm1.payload, EAST, 500, mm1.src, mm1.sport, 0.0)
    (reply,) = engine.datagrams_to_send()
    assert reply == Datagram(reply.data, 500, ip_address(WEST), 500, ip_address(EAST))
    mr1 = decode_message(reply.data)
    sent = decode_message(mm1.payload)
    assert mr1.header.icookie == sent.header.icookie and mr1.header.rcookie != bytes(8)
    (proposal,) = mr1.find(SAPayload).proposals
    (transform,) = proposal.transforms
    # the chosen transform is strongSwan's, echoed byte for byte
    assert transform.encode() == sent.find(SAPayload).proposals[0].transforms[0].encode()
    vids = [v.known for v in mr1.find_all(VendorIDPayload)]
    # strongSwan announced IKE fragmentation: we answer with ours (fragmentation=yes)
    assert vids == [KnownVendor.NATT_RFC3947, KnownVendor.DPD, KnownVendor.FRAGMENTATION]
    assert engine.state_lines(0.0) == [
        '#1: "lab" STATE_MAIN_R1 (sent MR1, expecting MI2); EVENT_RETRANSMIT in 10s'
    ]
    # strongSwan retransmitting MM1: we answer with the same MR1
    engine.receive_datagram(mm1.payload, EAST, 500, mm1.src, mm1.sport, 1.0)
    (again,) = engine.datagrams_to_send()
    assert again.data == reply.data and engine.counters["retransmits_received"] == 1


@pytest.mark.parametrize("listen", [EAST, "0.0.0.0"])
def test_strongswan_mm3_gets_our_mr2_with_nat_detected(listen):
    """MM1 then MM3 of the capture, with our responder cookie made the capture's:
    our MR2 answers, and strongSwan's random source NAT-D hash makes us see
    "peer is behind NAT" (its honest destination hash matches us) -- also when
    the shell listens on the wildcard address and cannot tell us ours."""
    packets = read_pcap(DATA / "psk-main.pcap")
    mm1, mm2, mm3 = packets[0], packets[1], packets[2]
    rcookie = decode_message(mm2.payload).header.rcookie
    rest = seeded(7)
    first = [True]

    def random_bytes(size: int) -> bytes:
        if first[0] and size == 8:
            first[0] = False
            return rcookie
        return rest(size)

    engine = IkeEngine(lab_secrets(), random_bytes=random_bytes)
    engine.add_connection(
        oriented(conn("lab", ike="aes128-sha1-modp2048", esp="aes128-sha1"), EAST)
    )
    engine.receive_datagram(mm1.payload, listen, 500, WEST, 500, 0.0)
    assert decode_message(engine.datagrams_to_send()[0].data).header.rcookie == rcookie
    engine.receive_datagram(mm3.payload, listen, 500, WEST, 500, 0.5)
    (mr2,) = engine.datagrams_to_send()
    assert [p.name for p in decode_message(mr2.data).payloads] == ["KE", "Nonce", "NAT-D", "NAT-D"]
    text = [e.text for e in engine.next_events() if hasattr(e, "text")]
    assert "NAT-Traversal: Result using RFC 3947: peer is behind NAT" in text
    assert engine.state_lines(0.5)[0].startswith(
        '#1: "lab" STATE_MAIN_R2 (sent MR2, expecting MI3)'
    )


# --------------------------------------------------------------------------
# hygiene


def test_secrets_never_leak_into_events_or_state():
    from fswan.suites import EspKeys
    from tests.ike_pair import LAB_PSK

    pair = make_pair(conn(esp="aes128-sha1"))
    pair.initiate()
    pair.west.engine.terminate("net", pair.now, whack="t")
    pair.transfer()
    west = pair.west.installed[0]
    secrets = [
        LAB_PSK,
        LAB_PSK.encode().hex(),
        west.inbound_keys.encryption_key.hex(),
        west.outbound_keys.integrity_key.hex(),
    ]
    blob = "\n".join(repr(e) for ep in pair.endpoints for e in ep.events)
    blob += "\n".join(repr(s) for ep in pair.endpoints for s in ep.engine.table.states.values())
    blob += "\n".join(str(d) for ep in pair.endpoints for d in ep.engine.state_dicts(pair.now))
    for secret in secrets:
        assert secret not in blob
    assert repr(west.inbound_keys) == repr(EspKeys(b"", b""))


def test_malformed_and_stray_packets_are_logged_once_and_counted():
    engine = lab_east()
    engine.receive_datagram(b"\x01" * 10, EAST, 500, WEST, 500, 0.0)
    engine.receive_datagram(b"\x00" * 3, EAST, 4500, WEST, 4500, 0.0)
    engine.receive_datagram(b"\xff", EAST, 4500, WEST, 4500, 0.0)
    engine.receive_datagram(b"\x12\x34\x56\x78" + bytes(40), EAST, 4500, WEST, 4500, 0.0)
    mm1 = bytearray(read_pcap(DATA / "psk-main.pcap")[0].payload)
    mm1[28 + 2 : 28 + 4] = (300).to_bytes(2, "big")  # SA payload length beyond the datagram
    engine.receive_datagram(bytes(mm1), EAST, 500, WEST, 500, 0.0)
    texts = [e.text for e in engine.next_events()]
    assert texts == [
        "packet from 192.0.2.1:500: datagram of 10 bytes is shorter than the 28-byte ISAKMP header",
        "packet from 192.0.2.1:4500: datagram of 3 bytes on the NAT-T port is neither IKE nor ESP",
        "packet from 192.0.2.1:500: payload length 300 exceeds remaining 152 bytes in SA payload",
    ]
    counters = engine.counters
    assert (
        counters["malformed"],
        counters["keepalives_received"],
        counters["esp_on_ike_port"],
    ) == (3, 1, 1)
    assert engine.datagrams_to_send() == [] and engine.state_lines(0.0) == []


def test_unknown_cookies_and_clear_informational_are_dropped():
    pair = make_pair(conn())
    pair.initiate()
    mr2 = pair.wire[3]
    data = bytearray(mr2.data)
    data[0] ^= 0xFF  # someone else's cookies
    pair.west.engine.receive_datagram(bytes(data), WEST, 500, EAST, 500, pair.now)
    from fswan.isakmp.constants import ExchangeType, NotifyType
    from fswan.isakmp.message import Header, Message
    from fswan.isakmp.payloads import DeletePayload, NotificationPayload

    st = pair.west.engine.table.states[1]
    fake = Message(
        Header(st.icookie, st.rcookie, ExchangeType.INFORMATIONAL),
        [DeletePayload(3, (bytes(4),)), NotificationPayload(NotifyType.INVALID_SPI)],
    )
    pair.west.engine.receive_datagram(
        fake.encode(), WEST, 4500 if st.local_port == 4500 else 500, EAST, 500, pair.now
    )
    pair.transfer()
    assert pair.west.engine.counters["unknown_cookie"] == 1
    assert pair.west.engine.counters["cleartext_informational"] == 1
    assert "ignoring unencrypted informational payload, type Delete" in pair.west.text()
    assert pair.west.deleted == [] and pair.west.engine.newest("net") == (1, 2)


def test_strongswan_aggressive_mode_message_1_gets_our_ar1():
    ai1 = read_pcap(DATA / "psk-aggressive.pcap")[0]
    from tests.ike_pair import psk_secrets

    secrets = psk_secrets('@west @east : PSK "lab-aggressive-psk-0123456789"\n')
    engine = IkeEngine(secrets, random_bytes=seeded(8))
    lab = conn("lab", aggrmode=True, ike="aes128-sha1-modp2048", leftid="@west", rightid="@east")
    engine.add_connection(oriented(lab, EAST))
    engine.receive_datagram(ai1.payload, EAST, 500, ai1.src, ai1.sport, 0.0)
    (reply,) = engine.datagrams_to_send()
    ar1 = decode_message(reply.data)
    assert ar1.header.exchange == ExchangeType.AGGRESSIVE
    assert [p.name for p in ar1.payloads if p.name != "Vendor ID"] == [
        "SA",
        "KE",
        "Nonce",
        "ID",
        "NAT-D",
        "NAT-D",
        "HASH",
    ]
    assert engine.state_lines(0.0)[0].startswith(
        '#1: "lab" STATE_AGGR_R1 (sent AR1, expecting AI2)'
    )
    # a responder with the wrong idea of the peer's ID refuses in clear
    engine.add_connection(oriented(conn("lab", aggrmode=True, leftid="@somebody"), EAST))
    engine.receive_datagram(b"\x01" + ai1.payload[1:], EAST, 500, WEST, 500, 1.0)
    (refusal,) = engine.datagrams_to_send()
    (notify,) = decode_message(refusal.data).payloads
    assert notify.type == 18  # INVALID_ID_INFORMATION


@pytest.mark.parametrize(
    "west_id, east_id",
    [
        (None, None),  # ID_IPV4_ADDR
        ("@west.example", "@east.example"),  # ID_FQDN
        ("alice@west.example", "bob@east.example"),  # ID_USER_FQDN
    ],
)
def test_identity_forms(west_id, east_id):
    from tests.ike_pair import psk_secrets

    ids = f"{west_id or WEST} {east_id or EAST}"
    secrets = psk_secrets(f'{ids} : PSK "ids-not-secret"\n')
    pair = make_pair(
        conn(leftid=west_id, rightid=east_id), west_secrets=secrets, east_secrets=secrets
    )
    pair.initiate()
    check_up(pair)
    assert str(pair.east.isakmp_up[0].peer_id) == (west_id or WEST)
    assert str(pair.west.isakmp_up[0].peer_id) == (east_id or EAST)
    assert pair.east.engine.state_dicts(pair.now)[0]["peer_id"] == (west_id or WEST)
