"""SAD entries: SAIDs, the SPI table, lifetimes, sequence exhaustion, replay order."""

from __future__ import annotations

import ipaddress
import os
from types import SimpleNamespace

import pytest

from fswan.ipsec.esp import DROP_ICV, EspError
from fswan.ipsec.sa import (
    DROP_EXPIRED,
    DROP_REPLAY,
    DROP_TOO_OLD,
    IN,
    KIND_ESP,
    KIND_ESP_UDP,
    OUT,
    SEQ_SOFT_MARGIN,
    HardExpire,
    Lifetimes,
    SADatabase,
    SAError,
    Said,
    SecurityAssociation,
    SoftExpire,
    sa_pair_from_child,
)
from fswan.suites import EspKeys, EspProposal

GCM = EspProposal("aes_gcm_16", 128, None)
CBC = EspProposal("aes_cbc", 128, "sha1")
KEYS_GCM = EspKeys(os.urandom(16), b"", os.urandom(4))
KEYS_CBC = EspKeys(os.urandom(16), os.urandom(20))


def make(direction: str = OUT, spi: int = 0x130, *, proposal=GCM, keys=KEYS_GCM,
         **kw) -> SecurityAssociation:
    local, remote = ("192.0.2.1", "192.0.2.2") if direction == OUT else ("192.0.2.2", "192.0.2.1")
    kw.setdefault("local_client", "10.0.1.0/24" if direction == OUT else "10.0.2.0/24")
    kw.setdefault("remote_client", "10.0.2.0/24" if direction == OUT else "10.0.1.0/24")
    return SecurityAssociation(direction=direction, spi=spi, local=local, remote=remote,
                               proposal=proposal, keys=keys, **kw)


def pair(**kw) -> tuple[SecurityAssociation, SecurityAssociation]:
    return make(OUT, **kw), make(IN, **kw)


def test_said_text_forms():
    s = Said("tun", 0x130, ipaddress.ip_address("192.0.2.2"))
    assert str(s) == "tun0x130@192.0.2.2"
    assert s.dotted == "tun.130@192.0.2.2"
    expected = Said("esp", 0xA1B2C3D4, ipaddress.ip_address("192.0.2.2"))
    assert Said.parse("esp0xa1b2c3d4@192.0.2.2") == expected
    assert Said.parse("tun:1f@2001:db8::1").dst == ipaddress.ip_address("2001:db8::1")
    with pytest.raises(ValueError):
        Said.parse("tun0x130")


def test_said_direction_and_mode():
    out = make(OUT)
    inn = make(IN)
    assert str(out.said) == "tun0x130@192.0.2.2"  # destination = the peer
    assert str(inn.said) == "tun0x130@192.0.2.2"  # destination = us (192.0.2.2 here)
    assert str(make(OUT, mode="transport").said) == "esp0x130@192.0.2.2"


def test_framing_info():
    sa = make(OUT)
    assert sa.kind == KIND_ESP and sa.sendto == ("192.0.2.2", 0)
    sa = make(OUT, udp_encap=True, local_port=4500, remote_port=31337)
    assert sa.kind == KIND_ESP_UDP and sa.sendto == ("192.0.2.2", 31337)


def test_database_spi_clash_is_sa_already_in_use():
    db = SADatabase()
    db.add(make(IN, 0x1000))
    with pytest.raises(SAError, match="SA already in use"):
        db.add(make(IN, 0x1000))
    db.add(make(OUT, 0x1000))
    with pytest.raises(SAError, match="SA already in use"):
        db.add(make(OUT, 0x1000))
    # the same outbound SPI towards another peer is a different SAID
    other = SecurityAssociation(direction=OUT, spi=0x1000, local="192.0.2.1", remote="192.0.2.3",
                                proposal=GCM, keys=KEYS_GCM)
    db.add(other)
    assert len(db) == 3
    assert db.inbound[0x1000].direction == IN
    assert db.get(other.said) is other


def test_database_delete_kills_and_forgets():
    db = SADatabase()
    sa = make(IN, 0x2000)
    db.add(sa)
    assert db.delete(sa.said, IN) is sa
    assert sa.dead and 0x2000 not in db.inbound
    assert db.delete(sa.said, IN) is None
    db.add(make(IN, 0x2000))  # the SPI is free again


def test_roundtrip_and_replay_order():
    out, inn = pair()
    inner = b"\x45" + bytes(59)
    packets = [out.encap(inner, 4, 1.0) for _ in range(3)]
    assert [int.from_bytes(p[4:8], "big") for p in packets] == [1, 2, 3]
    assert inn.decap(packets[1], 2.0) == (4, inner)
    assert inn.decap(packets[0], 2.0) == (4, inner)
    with pytest.raises(EspError) as exc:
        inn.decap(packets[0], 2.0)
    assert exc.value.reason == DROP_REPLAY
    assert inn.packets == 2 and inn.bytes == 120 and inn.last_used == 2.0
    assert out.packets == 3 and out.seq == 3


def test_forged_high_sequence_does_not_advance_the_window():
    out, inn = pair()
    good = out.encap(b"x" * 30, 4, 0.0)
    forged = bytearray(out.encap(b"y" * 30, 4, 0.0))
    forged[4:8] = (0x7FFFFFFF).to_bytes(4, "big")
    with pytest.raises(EspError) as exc:
        inn.decap(bytes(forged), 0.0)
    assert exc.value.reason == DROP_ICV
    assert inn.replay.top == 0
    assert inn.decap(good, 0.0) == (4, b"x" * 30)


def test_old_packets_fall_out_of_the_window():
    out, inn = pair(replay_window=32)
    first = out.encap(b"a", 4, 0.0)
    for _ in range(40):
        inn.decap(out.encap(b"b", 4, 0.0), 0.0)
    with pytest.raises(EspError) as exc:
        inn.decap(first, 0.0)
    assert exc.value.reason == DROP_TOO_OLD


def test_esn_pair_crosses_2_to_the_32():
    out, inn = pair(esn=True, proposal=CBC, keys=KEYS_CBC)
    out.seq = (1 << 32) - 3
    inn.replay.top = (1 << 32) - 4
    inn.replay.bitmap = 1
    for _ in range(6):
        esp = out.encap(b"z" * 20, 4, 0.0)
        assert inn.decap(esp, 0.0) == (4, b"z" * 20)
    assert inn.replay.top == (1 << 32) + 3
    assert not out.dead


@pytest.mark.parametrize("kind,lifetimes,step", [
    ("bytes", Lifetimes(soft_bytes=1000, hard_bytes=2000), lambda sa: sa.encap(b"x" * 100, 4, 0.0)),
    ("packets", Lifetimes(soft_packets=10, hard_packets=20), lambda sa: sa.encap(b"x", 4, 0.0)),
])
def test_soft_then_hard_expiry_once_each(kind, lifetimes, step):
    sa = make(OUT, lifetimes=lifetimes)
    for _ in range(9):
        step(sa)
    assert sa.events == []
    step(sa)  # 10th packet / 1000th byte
    assert sa.events == [SoftExpire(0x130, OUT, sa.said, kind)]
    for _ in range(9):
        step(sa)
    assert len(sa.events) == 1 and not sa.dead
    assert step(sa) is not None  # the packet crossing the hard limit still goes
    assert sa.events[-1] == HardExpire(0x130, OUT, sa.said, kind)
    assert sa.dead and sa.expired_reason == kind
    assert step(sa) is None
    assert len(sa.events) == 2


def test_time_lifetimes_and_deadlines():
    sa = make(OUT, lifetimes=Lifetimes(soft_seconds=50, hard_seconds=60), now=100.0)
    assert sa.next_deadline == 150.0
    sa.expire(149.9)
    assert sa.events == []
    assert sa.encap(b"x", 4, 150.0) is not None
    assert sa.events == [SoftExpire(0x130, OUT, sa.said, "time")]
    assert sa.next_deadline == 160.0
    sa.expire(170.0)
    assert isinstance(sa.events[-1], HardExpire) and sa.dead
    assert sa.next_deadline is None
    assert sa.encap(b"x", 4, 171.0) is None


def test_inbound_hard_expiry_refuses_packets():
    out, inn = pair(lifetimes=Lifetimes(hard_seconds=10))
    esp = out.encap(b"x", 4, 5.0)
    with pytest.raises(EspError) as exc:
        inn.decap(esp, 11.0)
    assert exc.value.reason == DROP_EXPIRED
    assert [type(e) for e in inn.events] == [HardExpire]


def test_sequence_exhaustion_32bit():
    sa = make(OUT)
    sa.seq = (1 << 32) - 1 - SEQ_SOFT_MARGIN - 2
    sa.encap(b"x", 4, 0.0)
    assert sa.events == []
    sa.encap(b"x", 4, 0.0)  # reaches max - margin
    assert sa.events == [SoftExpire(0x130, OUT, sa.said, "sequence")]
    sa.seq = (1 << 32) - 3
    assert sa.encap(b"x", 4, 0.0)[4:8] == b"\xff\xff\xff\xfe"
    esp = sa.encap(b"x", 4, 0.0)
    assert esp[4:8] == b"\xff\xff\xff\xff"  # the last number is used...
    assert sa.events[-1] == HardExpire(0x130, OUT, sa.said, "sequence")
    assert sa.encap(b"x", 4, 0.0) is None  # ...and never cycles
    assert sa.seq == (1 << 32) - 1


def test_sequence_limit_with_esn_is_64bit():
    sa = make(OUT, esn=True)
    sa.seq = (1 << 32) + 5
    assert sa.encap(b"x", 4, 0.0) is not None
    assert sa.events == [] and sa.seq_max == (1 << 64) - 1


def test_selectors():
    inn = make(IN)
    ip = lambda s: int(ipaddress.ip_address(s))  # noqa: E731
    assert inn.selectors_match(4, ip("10.0.1.9"), ip("10.0.2.3"))
    assert not inn.selectors_match(4, ip("10.0.3.9"), ip("10.0.2.3"))
    assert not inn.selectors_match(4, ip("10.0.1.9"), ip("10.0.3.3"))
    assert not inn.selectors_match(6, ip("10.0.1.9"), ip("10.0.2.3"))
    host = SecurityAssociation(direction=IN, spi=1, local="192.0.2.2", remote="192.0.2.1",
                               proposal=GCM, keys=KEYS_GCM)
    assert str(host.local_client) == "192.0.2.2/32" and str(host.remote_client) == "192.0.2.1/32"


@pytest.mark.parametrize("proposal,keys,udp,mtu,expected", [
    (GCM, KEYS_GCM, False, 1500, 1446),  # 1500 - 20 - 8 - 8 - 16 = 1448 -> minus trailer
    (GCM, KEYS_GCM, True, 1500, 1438),  # plus 8 bytes of UDP
    (CBC, KEYS_CBC, False, 1500, 1438),  # 1500 - 20 - 8 - 16 - 12 = 1444 -> 1440 blocks - 2
    (EspProposal("3des_cbc", 192, "sha1"), EspKeys(os.urandom(24), os.urandom(20)),
     False, 1400, 1350),
])
def test_inner_mtu(proposal, keys, udp, mtu, expected):
    sa = make(OUT, proposal=proposal, keys=keys, udp_encap=udp, path_mtu=mtu)
    assert sa.inner_mtu == expected
    outer = sa.outer.overhead + sa.esp.esp_length(expected)
    assert outer <= mtu < sa.outer.overhead + sa.esp.esp_length(expected + 1)


def test_constructor_checks():
    with pytest.raises(ValueError):
        make(direction="sideways")
    with pytest.raises(ValueError):
        make(OUT, mode="beet")
    with pytest.raises(ValueError):
        SecurityAssociation(direction=OUT, spi=1, local="192.0.2.1", remote="2001:db8::1",
                            proposal=GCM, keys=KEYS_GCM)
    with pytest.raises(ValueError):
        SecurityAssociation(direction=OUT, spi=1, local="192.0.2.1", remote="192.0.2.2")


def test_pair_from_engine_child_event():
    child = SimpleNamespace(
        conn="net-net", serial=4, inbound_spi=0x1111, outbound_spi=0x2222, proposal=CBC,
        inbound_keys=KEYS_CBC, outbound_keys=EspKeys(os.urandom(16), os.urandom(20)),
        mode="tunnel", udp_encapsulated=True,
        local_addr=ipaddress.ip_address("192.0.2.1"), local_port=4500,
        remote_addr=ipaddress.ip_address("198.51.100.7"), remote_port=4501,
        local_client=ipaddress.ip_network("10.0.1.0/24"),
        remote_client=ipaddress.ip_network("10.0.2.0/24"),
        lifetime_seconds=28800.0, replaces_serial=None,
    )
    inn, out = sa_pair_from_child(child, now=10.0)
    assert (inn.direction, inn.spi, str(inn.said)) == (IN, 0x1111, "tun0x1111@192.0.2.1")
    assert (out.direction, out.spi, str(out.said)) == (OUT, 0x2222, "tun0x2222@198.51.100.7")
    assert out.sendto == ("198.51.100.7", 4501) and out.kind == KIND_ESP_UDP
    assert out.next_deadline == 10.0 + 28800.0
    assert inn.conn == "net-net" and inn.serial == 4
    assert "ESP_AES_CBC_128-HMAC_SHA1_96" in out.describe(20.0)
