"""The sans-IO data plane: two gateways wired back to back, no sockets, explicit time."""

from __future__ import annotations

import ipaddress
import os

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP, IPerror
from scapy.layers.inet6 import ICMPv6PacketTooBig, IPv6
from scapy.layers.ipsec import ESP, SecurityAssociation as ScapySA
from scapy.packet import Raw, raw
from scapy.layers.inet import defragment  # noqa: I001

from fswan.ipsec.dataplane import (
    DROP_ARRIVAL,
    DROP_DUMMY,
    DROP_FRAG_NEEDED,
    DROP_HELD_DISCARDED,
    DROP_NO_EROUTE,
    DROP_NO_SA,
    DROP_TOO_BIG,
    DROP_UNKNOWN_SPI,
    HELD,
    KIND_ESP,
    KIND_ESP_UDP,
    KIND_IP,
    NOT_ESP,
    OK,
    PASSED,
    Acquire,
    DataPlane,
    HardExpire,
    SoftExpire,
    UnknownSPI,
)
from fswan.ipsec.eroute import DROP, HOLD, PASS, REJECT, TRAP
from fswan.ipsec.esp import DROP_ICV
from fswan.ipsec.sa import (
    DROP_EXPIRED,
    DROP_REPLAY,
    IN,
    OUT,
    Lifetimes,
    SAError,
    SecurityAssociation,
)
from fswan.suites import EspKeys, EspProposal

GCM = EspProposal("aes_gcm_16", 128, None)
CBC = EspProposal("aes_cbc", 128, "sha1")
A, B = "192.0.2.1", "192.0.2.2"
NET_A, NET_B = "10.0.1.0/24", "10.0.2.0/24"
SPI_TO_A, SPI_TO_B = 0xA000, 0xB000


def keys_for(proposal: EspProposal) -> EspKeys:
    integ = proposal.integrity_algorithm
    return EspKeys(
        os.urandom(proposal.encryption_key_size),
        os.urandom(integ.key_size) if integ else b"",
        os.urandom(proposal.cipher_algorithm.salt_size),
    )


class Pair:
    """Gateway a (192.0.2.1, 10.0.1.0/24) and b (192.0.2.2, 10.0.2.0/24) with one SA pair."""

    def __init__(self, proposal=GCM, *, udp=False, outer_header=False, mode="tunnel", now=0.0,
                 eroutes=True, clients=(NET_A, NET_B), **sa_kw):
        self.a = DataPlane(outer_header=outer_header)
        self.b = DataPlane(outer_header=outer_header)
        self.k_ab, self.k_ba = k_ab, k_ba = keys_for(proposal), keys_for(proposal)
        ports = dict(local_port=4500, remote_port=4500) if udp else {}
        net_a, net_b = clients
        nets = dict(local_client=net_a, remote_client=net_b) if mode == "tunnel" else {}
        back = dict(local_client=net_b, remote_client=net_a) if mode == "tunnel" else {}
        common = dict(proposal=proposal, mode=mode, udp_encap=udp, now=now, **ports, **sa_kw)
        at_a = dict(local=A, remote=B, **nets, **common)
        at_b = dict(local=B, remote=A, **back, **common)
        self.a_out = SecurityAssociation(direction=OUT, spi=SPI_TO_B, keys=k_ab, **at_a)
        self.a_in = SecurityAssociation(direction=IN, spi=SPI_TO_A, keys=k_ba, **at_a)
        self.b_out = SecurityAssociation(direction=OUT, spi=SPI_TO_A, keys=k_ba, **at_b)
        self.b_in = SecurityAssociation(direction=IN, spi=SPI_TO_B, keys=k_ab, **at_b)
        for sa in (self.a_out, self.a_in):
            self.a.install_sa(sa)
        for sa in (self.b_out, self.b_in):
            self.b.install_sa(sa)
        if eroutes:
            if mode == "tunnel":
                self.a.add_eroute(net_a, net_b, self.a_out.said)
                self.b.add_eroute(net_b, net_a, self.b_out.said)
            else:
                self.a.add_eroute(f"{A}/32", f"{B}/32", self.a_out.said)
                self.b.add_eroute(f"{B}/32", f"{A}/32", self.b_out.said)

    @staticmethod
    def transfer(src: DataPlane, dst: DataPlane, now: float = 0.0) -> list[str]:
        """Deliver everything ``src`` wants to send into ``dst``; the verdicts."""
        verdicts = []
        for kind, data, (host, port) in src.network:
            if kind == KIND_IP:
                verdicts.append(dst.inbound_ip(data, now))
            else:
                sender = A if host == B else B
                verdicts.append(dst.inbound(data, sender, port, now))
        src.network.clear()
        return verdicts


def v4(src="10.0.1.5", dst="10.0.2.7", size=100, **kw) -> bytes:
    return raw(IP(src=src, dst=dst, **kw) / ICMP() / Raw(os.urandom(size)))


def v6(src="2001:db8:1::5", dst="2001:db8:2::7", size=100) -> bytes:
    return raw(IPv6(src=src, dst=dst) / UDP(sport=5, dport=6) / Raw(os.urandom(size)))


# --------------------------------------------------------------------------
# the ordinary paths


@pytest.mark.parametrize("proposal", [GCM, CBC, EspProposal("3des_cbc", 192, "sha1")], ids=str)
@pytest.mark.parametrize("udp", [False, True], ids=["esp", "udp"])
@pytest.mark.parametrize("outer_header", [False, True], ids=["kernel-hdr", "own-hdr"])
def test_tunnel_both_directions(proposal, udp, outer_header):
    p = Pair(proposal, udp=udp, outer_header=outer_header)
    packet = v4()
    assert p.a.outbound(packet, 1.0) == OK
    ((kind, data, addr),) = p.a.network
    if outer_header:
        assert kind == KIND_IP and addr == (B, 4500 if udp else 0)
        outer = IP(data)
        assert (outer.src, outer.dst, outer.proto) == (A, B, 17 if udp else 50)
    else:
        assert kind == (KIND_ESP_UDP if udp else KIND_ESP) and addr == (B, 4500 if udp else 0)
        assert data[:4] == SPI_TO_B.to_bytes(4, "big")
    assert Pair.transfer(p.a, p.b, 1.0) == [OK]
    assert p.b.tun == [packet]
    reply = v4(src="10.0.2.7", dst="10.0.1.5")
    assert p.b.outbound(reply, 2.0) == OK
    assert Pair.transfer(p.b, p.a, 2.0) == [OK]
    assert p.a.tun == [reply]
    assert not any(p.a.counters.values()) and not any(p.b.counters.values())
    assert p.a.eroute_listing() == [f"1          {NET_A:<18} -> {NET_B:<18} => tun0xb000@192.0.2.2"]
    assert p.a_out.packets == 1 and p.a_in.packets == 1 and p.a_in.last_used == 2.0


def test_scapy_peer_receives_our_udp_encapsulated_packets():
    p = Pair(CBC, udp=True, outer_header=True)
    theirs = ScapySA(ESP, spi=SPI_TO_B, crypt_algo="AES-CBC", crypt_key=p.k_ab.encryption_key,
                     auth_algo="HMAC-SHA1-96", auth_key=p.k_ab.integrity_key,
                     tunnel_header=IP(src=A, dst=B), nat_t_header=UDP(sport=4500, dport=4500))
    packet = v4(size=300)
    p.a.outbound(packet, 0.0)
    outer = IP(p.a.network[0][1])
    assert outer[UDP].sport == 4500 and outer[UDP].dport == 4500 and outer[UDP].chksum == 0
    assert raw(theirs.decrypt(outer)) == packet
    # and the other way: scapy's ESP-in-UDP into our inbound_ip
    theirs_out = ScapySA(ESP, spi=SPI_TO_A, crypt_algo="AES-CBC", crypt_key=p.k_ba.encryption_key,
                         auth_algo="HMAC-SHA1-96", auth_key=p.k_ba.integrity_key,
                         tunnel_header=IP(src=B, dst=A), nat_t_header=UDP(sport=4500, dport=4500))
    reply = v4(src="10.0.2.7", dst="10.0.1.5")
    assert p.a.inbound_ip(raw(theirs_out.encrypt(IP(reply), seq_num=1)), 0.0) == OK
    assert p.a.tun == [reply]


def test_ipv6_inner_over_ipv4_tunnel():
    p = Pair(GCM, clients=("2001:db8:1::/48", "2001:db8:2::/48"))
    packet = v6()
    assert p.a.outbound(packet, 0.0) == OK
    assert Pair.transfer(p.a, p.b) == [OK]
    assert p.b.tun == [packet]
    assert p.b.inbound(p.a_out.encap(v4(), 4, 0.0), A, 0, 0.0) == DROP_ARRIVAL  # v4 on a v6 SA


def test_transport_mode_roundtrip():
    p = Pair(CBC, mode="transport")
    original = IP(raw(IP(src=A, dst=B, ttl=9) / TCP(sport=4000, dport=22) / Raw(b"ssh")))
    assert p.a.outbound(raw(original), 0.0) == OK
    ((kind, data, _),) = p.a.network
    assert kind == KIND_ESP
    assert Pair.transfer(p.a, p.b) == [OK]
    delivered = IP(p.b.tun[0])
    assert (delivered.src, delivered.dst, delivered.proto) == (A, B, 6)
    assert raw(delivered[TCP]) == raw(original[TCP])


# --------------------------------------------------------------------------
# outbound policy


def test_no_eroute_is_dropped_and_counted_never_sent():
    p = Pair()
    assert p.a.outbound(v4(dst="10.0.3.7"), 0.0) == DROP_NO_EROUTE
    assert p.a.outbound(v4(src="10.0.9.1"), 0.0) == DROP_NO_EROUTE
    assert p.a.network == [] and p.a.tun == []
    assert p.a.counters[DROP_NO_EROUTE] == 2
    assert p.a.outbound(b"\x45\x00", 0.0) == "malformed packet"
    assert p.a.network == []


def test_trap_acquires_and_holds_the_last_packet_until_the_sa_is_up():
    p = Pair(eroutes=False)
    p.a.add_eroute(NET_A, NET_B, TRAP)
    first, second = v4(size=10), v4(size=20)
    assert p.a.outbound(first, 0.0) == HELD
    ip, net = ipaddress.ip_address, ipaddress.ip_network
    assert p.a.events == [Acquire(ip("10.0.1.5"), ip("10.0.2.7"), 1, net(NET_A), net(NET_B))]
    assert p.a.outbound(second, 0.0) == HELD  # hits the /32 hold: no second acquire
    assert len(p.a.events) == 1
    hold = p.a.eroutes.get("10.0.1.5/32", "10.0.2.7/32")
    assert hold.said == HOLD and hold.held == second  # the LAST packet, as KLIPS
    assert p.a.network == []
    # another host behind the same trap gets its own acquire
    assert p.a.outbound(v4(src="10.0.1.6"), 0.0) == HELD
    assert len(p.a.events) == 2
    # pluto: the SA is up -> replace the trap with the SA, drop the bare hold
    p.a.replace_eroute(NET_A, NET_B, p.a_out.said, now=1.0)
    p.a.delete_eroute("10.0.1.5/32", "10.0.2.7/32", now=1.0)
    assert Pair.transfer(p.a, p.b, 1.0) == [OK]
    assert p.b.tun == [second]


def test_replacing_a_hold_releases_its_packet():
    p = Pair(eroutes=False)
    p.a.add_eroute("10.0.1.5/32", "10.0.2.7/32", TRAP)  # opportunistic: host to host
    packet = v4()
    assert p.a.outbound(packet, 0.0) == HELD
    assert p.a.eroutes.get("10.0.1.5/32", "10.0.2.7/32").said == HOLD
    p.a.replace_eroute("10.0.1.5/32", "10.0.2.7/32", p.a_out.said, now=1.0)
    assert Pair.transfer(p.a, p.b, 1.0) == [OK]
    assert p.b.tun == [packet]


def test_held_packet_discarded_when_the_trap_remains():
    p = Pair(eroutes=False)
    p.a.add_eroute(NET_A, NET_B, TRAP)
    p.a.outbound(v4(), 0.0)
    p.a.delete_eroute("10.0.1.5/32", "10.0.2.7/32", now=1.0)
    assert p.a.counters[DROP_HELD_DISCARDED] == 1
    assert p.a.network == [] and len(p.a.events) == 1


def test_magic_pass_drop_reject():
    p = Pair(eroutes=False)
    p.a.add_eroute(NET_A, "10.0.3.0/24", PASS)
    p.a.add_eroute(NET_A, "10.0.4.0/24", DROP)
    p.a.add_eroute(NET_A, "10.0.5.0/24", REJECT)
    clear = v4(dst="10.0.3.3")
    assert p.a.outbound(clear, 0.0) == PASSED
    assert p.a.network == [(KIND_IP, clear, ("10.0.3.3", 0))]
    assert p.a.outbound(v4(dst="10.0.4.4"), 0.0) == "%drop"
    rejected = v4(dst="10.0.5.5")
    assert p.a.outbound(rejected, 0.0) == "%reject"
    icmp = IP(p.a.tun[0])
    assert (icmp[ICMP].type, icmp[ICMP].code, icmp.dst) == (3, 13, "10.0.1.5")
    assert raw(icmp[IPerror])[:20] == rejected[:20]
    assert len(p.a.network) == 1
    assert [line.split()[0] for line in p.a.eroute_listing()] == ["1", "1", "1"]


def test_eroute_without_its_sa_drops_until_the_sa_exists():
    p = Pair(eroutes=False)
    p.a.add_eroute(NET_A, NET_B, "tun0x4242@192.0.2.2")
    assert p.a.outbound(v4(), 0.0) == DROP_NO_SA
    sa = SecurityAssociation(direction=OUT, spi=0x4242, local=A, remote=B, proposal=GCM,
                             keys=keys_for(GCM))
    p.a.install_sa(sa)
    assert p.a.outbound(v4(), 0.0) == OK
    p.a.delete_sa(sa.said, OUT)
    assert p.a.outbound(v4(), 0.0) == DROP_NO_SA


def test_spi_clash_is_refused():
    p = Pair()
    with pytest.raises(SAError, match="SA already in use"):
        p.a.install_sa(SecurityAssociation(direction=IN, spi=SPI_TO_A, local=A, remote=B,
                                           proposal=GCM, keys=keys_for(GCM)))


# --------------------------------------------------------------------------
# inbound checks


def test_arrival_check_drops_inner_packets_outside_the_selectors():
    p = Pair()
    # b's outbound SA may carry anything it is given; a must refuse what the SA does not cover
    spoofed = v4(src="10.0.9.9", dst="10.0.1.5")
    p.b.outbound(v4(src="10.0.2.7", dst="10.0.1.5"), 0.0)
    data = p.b_out.encap(spoofed, 4, 0.0)
    assert p.a.inbound(data, B, 0, 0.0) == DROP_ARRIVAL
    assert p.a.counters[DROP_ARRIVAL] == 1 and p.a.tun == []
    wrong_dst = p.b_out.encap(v4(src="10.0.2.7", dst="10.0.7.7"), 4, 0.0)
    assert p.a.inbound(wrong_dst, B, 0, 0.0) == DROP_ARRIVAL
    assert Pair.transfer(p.b, p.a) == [OK]  # the legitimate one still gets through
    assert p.a_in.drops == 2


def test_disablearrivalcheck_lets_them_through():
    p = Pair(disablearrivalcheck=True)
    spoofed = v4(src="10.0.9.9", dst="10.0.1.5")
    assert p.a.inbound(p.b_out.encap(spoofed, 4, 0.0), B, 0, 0.0) == OK
    assert p.a.tun == [spoofed]


class _ExplodingDecryptor:
    def update(self, data):  # pragma: no cover - must never run
        raise AssertionError("decrypted before the ICV was checked")


def test_tampered_icv_dropped_before_decrypting_and_window_untouched():
    p = Pair(CBC)
    p.b.outbound(v4(src="10.0.2.7", dst="10.0.1.5"), 0.0)
    ((_, data, _),) = p.b.network
    forged = bytearray(data)
    forged[4:8] = (1000).to_bytes(4, "big")  # a high sequence number...
    forged[-1] ^= 1  # ...and a bad ICV
    real_decryptor = p.a_in.esp._dec
    p.a_in.esp._dec = _ExplodingDecryptor()
    assert p.a.inbound(bytes(forged), B, 0, 0.0) == DROP_ICV
    assert p.a.counters[DROP_ICV] == 1 and p.a.tun == []
    assert p.a_in.replay.top == 0
    p.a_in.esp._dec = real_decryptor
    assert p.a.inbound(data, B, 0, 0.0) == OK
    assert p.a.inbound(data, B, 0, 0.0) == DROP_REPLAY


def test_unknown_spi_counted_and_reported_rate_limited():
    dp = DataPlane(unknown_spi_interval=10.0, unknown_spi_burst=3)
    junk = (0xDEAD).to_bytes(4, "big") + bytes(60)
    for i in range(50):
        assert dp.inbound(junk, "198.51.100.1", 4500, 1.0 + i * 0.01) == DROP_UNKNOWN_SPI
    assert dp.counters[DROP_UNKNOWN_SPI] == 50
    assert dp.events == [UnknownSPI(0xDEAD, "198.51.100.1", 4500)]
    dp.inbound(junk, "198.51.100.1", 4500, 12.0)
    assert len(dp.events) == 2  # interval passed
    # a flood of random SPIs is capped per second
    dp.events.clear()
    for spi in range(1000):
        dp.inbound(spi.to_bytes(4, "big") + bytes(60), "203.0.113.9", 0, 20.5)
    assert len(dp.events) == 3
    assert dp.tun == []


def test_dummy_packets_are_discarded():
    p = Pair()
    assert p.a.inbound(p.b_out.encap(b"", 59, 0.0), B, 0, 0.0) == DROP_DUMMY
    assert p.a.tun == []
    assert p.a.inbound(p.b_out.encap(b"\x00" * 20, 17, 0.0), B, 0, 0.0) == "bad next header"


def test_tfc_padding_after_the_inner_packet_is_trimmed():
    p = Pair()
    packet = v4(src="10.0.2.7", dst="10.0.1.5")
    assert p.a.inbound(p.b_out.encap(packet + b"\x00" * 33, 4, 0.0), B, 0, 0.0) == OK
    assert p.a.tun == [packet]


def test_inbound_ip_sorts_out_what_is_not_esp():
    dp = DataPlane()
    ike = raw(IP(src=B, dst=A) / UDP(sport=4500, dport=4500) / Raw(b"\x00\x00\x00\x00" + bytes(28)))
    keepalive = raw(IP(src=B, dst=A) / UDP(sport=4500, dport=4500) / Raw(b"\xff"))
    icmp = raw(IP(src=B, dst=A) / ICMP())
    assert [dp.inbound_ip(x, 0.0) for x in (ike, keepalive, icmp)] == [NOT_ESP] * 3
    assert dp.inbound_ip(b"\x45", 0.0) == "malformed packet"


# --------------------------------------------------------------------------
# lifetimes


def test_soft_expiry_once_then_hard_makes_the_sa_unusable():
    p = Pair(lifetimes=Lifetimes(soft_packets=3, hard_packets=5))
    verdicts = [p.a.outbound(v4(), float(i)) for i in range(7)]
    assert verdicts == [OK] * 5 + [DROP_EXPIRED] * 2
    kinds = [type(e) for e in p.a.events]
    assert kinds == [SoftExpire, HardExpire]
    assert p.a.events[0].spi == SPI_TO_B and p.a.events[0].reason == "packets"
    assert p.a.counters[DROP_EXPIRED] == 2


def test_time_expiry_through_the_timer():
    p = Pair(lifetimes=Lifetimes(soft_seconds=100, hard_seconds=120), now=1000.0)
    assert p.a.get_timer() == 1100.0
    p.a.handle_timer(1100.0)
    events = sorted((type(e).__name__, e.direction) for e in p.a.events)
    assert events == [("SoftExpire", IN), ("SoftExpire", OUT)]
    assert p.a.get_timer() == 1120.0
    assert p.a.outbound(v4(), 1110.0) == OK
    p.a.handle_timer(1120.0)
    kinds = sorted(type(e).__name__ for e in p.a.events)
    assert kinds == ["HardExpire", "HardExpire", "SoftExpire", "SoftExpire"]
    assert len(p.a.sad) == 0  # purged
    assert p.a.get_timer() is None
    assert p.a.outbound(v4(), 1121.0) == DROP_NO_SA
    assert p.a.delete_sa(p.a_out.said, OUT) is None  # the engine's late delete is harmless


def test_sequence_exhaustion_signals_rekey_then_stops():
    p = Pair()
    p.a_out.seq = (1 << 32) - 1 - (1 << 20) - 1
    assert p.a.outbound(v4(), 0.0) == OK
    assert [(type(e), e.reason) for e in p.a.events] == [(SoftExpire, "sequence")]
    p.a_out.seq = (1 << 32) - 2
    assert p.a.outbound(v4(), 0.0) == OK
    assert [(type(e), e.reason) for e in p.a.events][-1] == (HardExpire, "sequence")
    assert p.a.outbound(v4(), 0.0) == DROP_EXPIRED


# --------------------------------------------------------------------------
# MTU, fragmentation, ICMP


@pytest.mark.parametrize("proposal,expected_mtu", [(GCM, 1446), (CBC, 1438)], ids=["gcm", "cbc"])
def test_fragments_before_encryption_when_df_is_clear(proposal, expected_mtu):
    p = Pair(proposal, outer_header=True)
    assert p.a_out.inner_mtu == expected_mtu
    packet = v4(size=3000, flags=0, id=777)
    assert p.a.outbound(packet, 0.0) == OK
    outer = [IP(data) for _, data, _ in p.a.network]
    assert len(outer) == 3
    assert all(o.len <= 1500 and o.flags == 0 for o in outer)
    assert Pair.transfer(p.a, p.b) == [OK] * 3
    frags = [IP(x) for x in p.b.tun]
    assert all(len(raw(f)) <= expected_mtu for f in frags)
    assert raw(defragment(frags)[0]) == packet
    assert p.a.counters["fragmented"] == 1


@pytest.mark.parametrize("proposal,expected_mtu", [(GCM, 1446), (CBC, 1438)], ids=["gcm", "cbc"])
def test_df_set_gets_icmp_frag_needed_with_the_tunnel_mtu(proposal, expected_mtu):
    p = Pair(proposal)
    fits = v4(size=expected_mtu - 28, flags="DF")
    assert len(fits) == expected_mtu
    assert p.a.outbound(fits, 0.0) == OK
    too_big = v4(size=expected_mtu - 27, flags="DF")
    assert p.a.outbound(too_big, 0.0) == DROP_FRAG_NEEDED
    icmp = IP(p.a.tun[0])
    assert icmp.dst == "10.0.1.5" and icmp.src == A and icmp.ttl == 64
    assert (icmp[ICMP].type, icmp[ICMP].code, icmp[ICMP].nexthopmtu) == (3, 4, expected_mtu)
    assert raw(icmp[IPerror])[:28] == too_big[:28]
    wire = p.a.tun[0]
    rebuilt = IP(wire)
    del rebuilt.chksum, rebuilt[ICMP].chksum
    assert raw(rebuilt) == wire  # both checksums are what scapy computes
    assert len(p.a.network) == 1


def test_path_mtu_change_moves_the_tunnel_mtu():
    p = Pair(GCM)
    p.a.set_path_mtu(1400, peer=B)
    assert p.a_out.inner_mtu == 1346
    assert p.a.outbound(v4(size=1400, flags="DF"), 0.0) == DROP_FRAG_NEEDED
    assert IP(p.a.tun[0])[ICMP].nexthopmtu == 1346


def test_ipv6_too_big_gets_packet_too_big():
    p = Pair(GCM, clients=("2001:db8:1::/48", "2001:db8:2::/48"))
    big = v6(size=1500)
    assert p.a.outbound(big, 0.0) == DROP_TOO_BIG
    icmp = IPv6(p.a.tun[0])
    assert icmp[ICMPv6PacketTooBig].mtu == 1446 and icmp.dst == "2001:db8:1::5"
    chk = icmp[ICMPv6PacketTooBig].cksum
    del icmp[ICMPv6PacketTooBig].cksum
    assert IPv6(raw(icmp))[ICMPv6PacketTooBig].cksum == chk


# --------------------------------------------------------------------------
# outer header: TTL, TOS


@pytest.mark.parametrize("hidetos,expected_tos", [(True, 0), (False, 0xB8)])
def test_hidetos_and_fresh_ttl(hidetos, expected_tos):
    p = Pair(outer_header=True, hidetos=hidetos)
    assert p.a.outbound(v4(tos=0xB8, ttl=3), 0.0) == OK
    outer = IP(p.a.network[0][1])
    assert outer.tos == expected_tos
    assert outer.ttl == 64
    del outer.chksum
    assert IP(raw(outer)).chksum == IP(p.a.network[0][1]).chksum
    # IPv6 inner: the traffic class is what gets copied
    p.a.add_eroute("2001:db8:1::/48", "2001:db8:2::/48", p.a_out.said)
    inner6 = raw(IPv6(src="2001:db8:1::5", dst="2001:db8:2::7", tc=0xB8, hlim=2) / UDP())
    p.a.outbound(inner6, 0.0)
    outer6 = IP(p.a.network[1][1])
    assert outer6.tos == expected_tos and outer6.ttl == 64 and outer6.flags == "DF"


def test_outer_df_copied_from_inner():
    p = Pair(outer_header=True)
    p.a.outbound(v4(flags="DF"), 0.0)
    p.a.outbound(v4(flags=0), 0.0)
    first, second = (IP(d) for _, d, _ in p.a.network)
    assert first.flags == "DF" and second.flags == 0
    assert first.id != second.id


def test_status_lines():
    p = Pair()
    p.a.outbound(v4(), 5.0)
    p.a.outbound(v4(dst="10.9.9.9"), 5.0)
    lines = p.a.status_lines(10.0)
    first = "tun0xb000@192.0.2.2 ESP_AES_GCM_16_128: dir=out seq=1"
    assert any(line.startswith(first) for line in lines)
    assert "no eroute!: 1" in lines
