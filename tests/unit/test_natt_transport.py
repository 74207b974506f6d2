"""L2TP/IPsec behind NAT: NAT-OA in Quick Mode (RFC 3947 section 5.2) and the inbound
TCP/UDP checksum fix of UDP-encapsulated transport mode (RFC 3948 section 3.1.2)."""

from __future__ import annotations

import random
import struct
from dataclasses import replace
from ipaddress import ip_address

import pytest

from fswan.config.model import ConnType
from fswan.config.virtual import parse_virtual_private
from fswan.ipsec.dataplane import DataPlane
from fswan.ipsec.packet import (
    IPPROTO_TCP,
    IPPROTO_UDP,
    adjust_l4_checksum,
    checksum,
    checksum_delta,
    l4_checksum,
)
from fswan.ipsec.sa import RECOMPUTE, sa_pair_from_child
from fswan.isakmp.payloads import NATOAPayload
from tests.ike_pair import EAST, NAT_PUBLIC, WEST, Nat, conn, make_pair, psk_secrets

PRIVATE, PUBLIC, GATEWAY = (ip_address(a).packed for a in (WEST, NAT_PUBLIC, EAST))


def udp(src: bytes, dst: bytes, sport: int, dport: int, data: bytes, csum: bool = True) -> bytes:
    segment = struct.pack("!HHHH", sport, dport, 8 + len(data), 0) + data
    if not csum:
        return segment
    return segment[:6] + l4_checksum(src, dst, IPPROTO_UDP, segment).to_bytes(2, "big") + segment[8:]


def tcp(src: bytes, dst: bytes, data: bytes) -> bytes:
    segment = struct.pack("!HHIIBBHHH", 40000, 1701, 1, 0, 5 << 4, 0x18, 65535, 0, 0) + data
    return segment[:16] + l4_checksum(src, dst, IPPROTO_TCP, segment).to_bytes(2, "big") + segment[18:]


def valid(src: bytes, dst: bytes, proto: int, segment: bytes) -> bool:
    """The receiver's check: the sum over pseudo-header and segment is all ones."""
    pseudo = src + dst + bytes((0, proto)) + len(segment).to_bytes(2, "big")
    return checksum(pseudo + segment) == 0


# -- the checksum arithmetic, checked against computing it afresh ---------------


def test_l4_checksum_is_rfc_768_and_793():
    segment = udp(PRIVATE, GATEWAY, 1701, 1701, b"l2tp")
    assert valid(PRIVATE, GATEWAY, IPPROTO_UDP, segment)
    assert not valid(PUBLIC, GATEWAY, IPPROTO_UDP, segment)  # what the NAT breaks
    assert valid(PRIVATE, GATEWAY, IPPROTO_TCP, tcp(PRIVATE, GATEWAY, b"x"))


@pytest.mark.parametrize("seed", range(40))
def test_incremental_fix_equals_recomputing(seed):
    rng = random.Random(seed)
    data = rng.randbytes(rng.randrange(0, 300))
    private = bytes([192, 0, 2, rng.randrange(1, 255)])
    delta = checksum_delta(private + GATEWAY, PUBLIC + GATEWAY)
    for proto, segment in ((IPPROTO_UDP, udp(private, GATEWAY, rng.randrange(65536), 1701, data)),
                           (IPPROTO_TCP, tcp(private, GATEWAY, data))):
        fixed = adjust_l4_checksum(segment, proto, delta)
        assert valid(PUBLIC, GATEWAY, proto, fixed)
        assert fixed[:6] == segment[:6] and fixed[8 if proto == IPPROTO_UDP else 18:] == \
            segment[8 if proto == IPPROTO_UDP else 18:]


def test_udp_without_checksum_stays_without():
    segment = udp(PRIVATE, GATEWAY, 1701, 1701, b"no checksum", csum=False)
    assert adjust_l4_checksum(segment, IPPROTO_UDP, checksum_delta(PRIVATE, PUBLIC)) == segment


def test_no_change_means_no_delta_and_other_protocols_untouched():
    assert checksum_delta(PRIVATE + GATEWAY, PRIVATE + GATEWAY) == 0
    icmp = bytes([8, 0, 0, 0, 0, 1, 0, 1])
    assert adjust_l4_checksum(icmp, 1, 1234) == icmp
    assert adjust_l4_checksum(b"\x00" * 5, IPPROTO_UDP, 1234) == b"\x00" * 5  # too short


# -- Quick Mode: NAT-OA both ways -------------------------------------------------

L2TP_SECRETS = psk_secrets(f'{WEST} {EAST} : PSK "l2tp-not-secret"\n{EAST} %any : PSK "l2tp-not-secret"\n')


def l2tp_pair(*, tunnel: bool = False, nat: bool = True):
    """xl2tpd's conns: the client (west, behind a NAPT) and the gateway (east, right=%any,
    leftprotoport=17/1701 rightprotoport=17/%any, rightsubnet=vhost:%priv,%no)."""
    kind = ConnType.TUNNEL if tunnel else ConnType.TRANSPORT
    client = conn("l2tp", leftsubnet=None, rightsubnet=None, type=kind)
    client = replace(client, left=replace(client.left, protoport=(17, 1701)),
                     right=replace(client.right, protoport=(17, 1701)))
    gateway = conn("l2tp", left="%any", leftsubnet="vhost:%priv,%no", rightsubnet=None, type=kind)
    gateway = replace(gateway, left=replace(gateway.left, protoport=(17, 0)),
                      right=replace(gateway.right, protoport=(17, 1701)))
    pair = make_pair(client, gateway, west_secrets=L2TP_SECRETS, east_secrets=L2TP_SECRETS,
                     nat=Nat(WEST, NAT_PUBLIC, {500: 1500, 4500: 14500}) if nat else None)
    pair.east.engine.virtual_private = parse_virtual_private("%v4:192.0.2.0/24")
    pair.initiate("l2tp")
    return pair


def test_transport_behind_nat_exchanges_nat_oa_both_ways():
    pair = l2tp_pair()
    (west,), (east,) = pair.west.installed, pair.east.installed
    assert west.mode == east.mode == "transport" and west.udp_encapsulated
    # each side keeps (the peer's own address, ours) as the peer sees them
    assert east.nat_oa == (ip_address(WEST), ip_address(EAST))
    assert west.nat_oa == (ip_address(EAST), ip_address(NAT_PUBLIC))
    # the gateway's SA leads to the client's public address, not the private one it named
    assert str(east.remote_client) == f"{NAT_PUBLIC}/32" and str(east.local_client) == f"{EAST}/32"
    text = pair.east.text()
    assert (f"NAT-Traversal: NAT-OA: the peer's original address is {WEST} (we see {NAT_PUBLIC}), "
            f"ours as it sees it {EAST}") in text
    assert (f"NAT-Traversal: transport mode: the peer's client {WEST}/32 is reached at its "
            f"public address {NAT_PUBLIC}") in text
    assert "ESP/NAT/transport" in text


def test_tunnel_mode_sends_no_nat_oa():
    pair = l2tp_pair(tunnel=True)
    (east,) = pair.east.installed
    assert east.mode == "tunnel" and east.nat_oa is None
    assert "NAT-OA" not in pair.east.text() + pair.west.text()


def test_nat_oa_payload_is_the_rfc_type():
    assert NATOAPayload(ip_address(WEST)).payload_type == 21
    assert NATOAPayload(ip_address(WEST), draft=True).payload_type == 131


# -- the data plane: the client's datagram reaches the gateway's socket intact ------


def data_planes(pair):
    """Each side's DataPlane with the SA pair its engine installed."""
    planes = []
    for ep in (pair.west, pair.east):
        (child,) = ep.installed
        dp = DataPlane()
        inbound, outbound = sa_pair_from_child(child, now=0.0)
        dp.install_sa(inbound)
        dp.install_sa(outbound)
        planes.append((dp, inbound, outbound))
    return planes


def ipv4(src: bytes, dst: bytes, proto: int, segment: bytes) -> bytes:
    from fswan.ipsec.packet import ipv4_header

    return ipv4_header(src, dst, proto, len(segment)) + segment


@pytest.mark.parametrize("proto", [IPPROTO_UDP, IPPROTO_TCP])
def test_client_to_gateway_checksum_fixed_by_nat_oa(proto):
    pair = l2tp_pair()
    (wdp, _, wout), (edp, ein, _) = data_planes(pair)
    assert ein.csum_fix not in (None, RECOMPUTE)
    data = b"\xc8\x02" + bytes(range(200))  # an L2TP control header and more
    segment = udp(PRIVATE, GATEWAY, 1701, 1701, data) if proto == IPPROTO_UDP else \
        tcp(PRIVATE, GATEWAY, data)
    # the client's kernel computed the checksum over its private address
    assert wdp.outbound(ipv4(PRIVATE, GATEWAY, proto, segment), 1.0, sa=wout) == "ok"
    (kind, esp, addr), = wdp.network
    assert addr == (EAST, 4500)
    # through the NAPT: the gateway sees it come from the public address
    assert edp.inbound(esp, NAT_PUBLIC, 14500, 1.0) == "ok"
    (packet,) = edp.tun
    assert packet[12:16] == PUBLIC and packet[16:20] == GATEWAY and packet[9] == proto
    delivered = packet[20:]
    assert valid(PUBLIC, GATEWAY, proto, delivered)
    assert delivered[20 if proto == IPPROTO_TCP else 8:] == data
    assert edp.counters["NAT-T checksum fixed"] == 1


def test_gateway_to_client_checksum_fixed_too():
    pair = l2tp_pair()
    (wdp, win, _), (edp, _, eout) = data_planes(pair)
    segment = udp(GATEWAY, PUBLIC, 1701, 1701, b"hello client")
    edp.outbound(ipv4(GATEWAY, PUBLIC, IPPROTO_UDP, segment), 1.0, sa=eout)
    (_, esp, addr), = edp.network
    assert addr == (NAT_PUBLIC, 14500)
    assert wdp.inbound(esp, EAST, 4500, 1.0) == "ok"
    (packet,) = wdp.tun
    assert packet[12:16] == GATEWAY and packet[16:20] == PRIVATE
    assert valid(GATEWAY, PRIVATE, IPPROTO_UDP, packet[20:]) and packet[28:] == b"hello client"


def test_without_nat_oa_the_checksum_is_computed_afresh():
    pair = l2tp_pair()
    (wdp, _, wout), (edp, ein, _) = data_planes(pair)
    edp.delete_sa(ein.said, "in")
    child = replace(pair.east.installed[0], nat_oa=None)
    inbound, _ = sa_pair_from_child(child, now=0.0)
    assert inbound.csum_fix == RECOMPUTE
    edp.install_sa(inbound)
    segment = udp(PRIVATE, GATEWAY, 1701, 1701, b"no NAT-OA")
    wdp.outbound(ipv4(PRIVATE, GATEWAY, IPPROTO_UDP, segment), 1.0, sa=wout)
    assert edp.inbound(wdp.network[0][1], NAT_PUBLIC, 14500, 1.0) == "ok"
    assert valid(PUBLIC, GATEWAY, IPPROTO_UDP, edp.tun[0][20:])


def test_no_nat_no_fix():
    """Host-to-host transport without NAT: nothing touched (not even counted)."""
    pair = l2tp_pair(nat=False)
    (child,) = pair.east.installed
    assert not child.udp_encapsulated and child.nat_oa is None
    inbound, _ = sa_pair_from_child(child, now=0.0)
    assert inbound.csum_fix is None
