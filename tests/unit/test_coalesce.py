"""Software GRO for the TUN (fswan.ipsec.coalesce): merged frames must segment back,
the way the kernel's TSO does, into exactly the packets that went in (IPv4 and IPv6)."""

from __future__ import annotations

import os
import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from fswan.ipsec.coalesce import (
    PLAIN_HEADER,
    VIRTIO_NET_HDR_F_NEEDS_CSUM,
    VIRTIO_NET_HDR_GSO_TCPV4,
    VIRTIO_NET_HDR_GSO_TCPV6,
    VNET_HDR_LEN,
    frame_packets,
    tun_frames,
)
from fswan.ipsec.packet import checksum

SRC = bytes([203, 0, 113, 10])
DST = bytes([198, 51, 100, 10])
TIMESTAMPS = bytes([1, 1, 8, 10]) + (123456).to_bytes(4, "big") + (654321).to_bytes(4, "big")
SRC6 = bytes.fromhex("20010db8000100000000000000000010")  # 2001:db8:1::10
DST6 = bytes.fromhex("20010db8000200000000000000000010")  # 2001:db8:2::10
#: a hop-by-hop options header holding only PadN, followed by TCP
HOP_BY_HOP = bytes([6, 0, 1, 4, 0, 0, 0, 0])


def tcp_segment(seq: int, payload: bytes, *, ident: int = 1, flags: int = 0x10,
                ack: int = 777, window: int = 501, options: bytes = TIMESTAMPS,
                tos: int = 0, ttl: int = 63, df: bool = True, sport: int = 5201,
                dst: bytes = DST) -> bytes:
    """A well-formed IPv4/TCP segment with correct checksums."""
    offset = (20 + len(options)) // 4
    tcp = bytearray(struct.pack("!HHIIBBHHH", sport, 40000, seq & 0xFFFFFFFF, ack,
                                offset << 4, flags, window, 0, 0) + options + payload)
    pseudo = SRC + dst + struct.pack("!BBH", 0, 6, len(tcp))
    tcp[16:18] = checksum(pseudo + bytes(tcp)).to_bytes(2, "big")
    ip = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, tos, 20 + len(tcp), ident & 0xFFFF,
                               0x4000 if df else 0, ttl, 6, 0, SRC, dst))
    ip[10:12] = checksum(ip).to_bytes(2, "big")
    return bytes(ip + tcp)


def tcp6_segment(seq: int, payload: bytes, *, flags: int = 0x10, ack: int = 777,
                 window: int = 501, options: bytes = TIMESTAMPS, tclass: int = 0,
                 label: int = 0x12345, hop: int = 63, sport: int = 5201,
                 src: bytes = SRC6, dst: bytes = DST6, next_header: int = 6,
                 hop_by_hop: bytes = b"") -> bytes:
    """A well-formed IPv6/TCP segment with a correct checksum (``hop_by_hop``: an
    extension header between the fixed header and TCP)."""
    offset = (20 + len(options)) // 4
    tcp = bytearray(struct.pack("!HHIIBBHHH", sport, 40000, seq & 0xFFFFFFFF, ack,
                                offset << 4, flags, window, 0, 0) + options + payload)
    pseudo = src + dst + struct.pack("!I3xB", len(tcp), 6)
    tcp[16:18] = checksum(pseudo + bytes(tcp)).to_bytes(2, "big")
    ip = struct.pack("!IHBB16s16s", 6 << 28 | tclass << 20 | label,
                     len(hop_by_hop) + len(tcp), 0 if hop_by_hop else next_header,
                     hop, src, dst)
    return ip + hop_by_hop + bytes(tcp)


def flow(count: int, size: int = 1348, last: int | None = None, seq: int = 1000,
         ident: int = 100, last_flags: int = 0x10) -> list[bytes]:
    packets = []
    for k in range(count):
        length = last if (last is not None and k == count - 1) else size
        flags = last_flags if k == count - 1 else 0x10
        packets.append(tcp_segment(seq, os.urandom(length), ident=ident + k, flags=flags))
        seq += length
    return packets


def flow6(count: int, size: int = 1348, last: int | None = None, seq: int = 1000,
          last_flags: int = 0x10, **fields) -> list[bytes]:
    packets = []
    for k in range(count):
        length = last if (last is not None and k == count - 1) else size
        flags = last_flags if k == count - 1 else 0x10
        packets.append(tcp6_segment(seq, os.urandom(length), flags=flags, **fields))
        seq += length
    return packets


def segment(frame: bytes) -> list[bytes]:
    """What the kernel does with a frame (TSO in software): the oracle."""
    flags, gso_type, hdr_len, gso_size, csum_start, csum_offset = struct.unpack_from(
        "<BBHHHH", frame)
    packet = frame[VNET_HDR_LEN:]
    if gso_type == 0:
        assert frame[:VNET_HDR_LEN] == PLAIN_HEADER
        return [packet]
    if gso_type == VIRTIO_NET_HDR_GSO_TCPV6:
        return _segment6(packet, flags, hdr_len, gso_size, csum_start, csum_offset)
    assert (flags, gso_type) == (VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_TCPV4)
    assert (csum_start, csum_offset) == (20, 16)
    assert checksum(packet[:20]) == 0  # the merged header itself is valid IPv4
    assert int.from_bytes(packet[2:4], "big") == len(packet)
    # the checksum field holds the pseudo-header sum for the whole TCP length
    pseudo = SRC + packet[16:20] + struct.pack("!BBH", 0, 6, len(packet) - 20)
    assert int.from_bytes(packet[36:38], "big") == (~checksum(pseudo) & 0xFFFF)
    head, data = packet[:hdr_len], packet[hdr_len:]
    ident = int.from_bytes(head[4:6], "big")
    seq = int.from_bytes(head[24:28], "big")
    out = []
    pieces = [data[k:k + gso_size] for k in range(0, len(data), gso_size)]
    for k, piece in enumerate(pieces):
        last = k == len(pieces) - 1
        tcp = bytearray(head[20:hdr_len] + piece)
        tcp[4:8] = seq.to_bytes(4, "big")
        if not last:
            tcp[13] &= ~0x09  # PSH and FIN only on the last segment
        tcp[16:18] = b"\0\0"
        pseudo = SRC + head[16:20] + struct.pack("!BBH", 0, 6, len(tcp))
        tcp[16:18] = checksum(pseudo + bytes(tcp)).to_bytes(2, "big")
        ip = bytearray(head[:20])
        ip[2:4] = (20 + len(tcp)).to_bytes(2, "big")
        ip[4:6] = ((ident + k) & 0xFFFF).to_bytes(2, "big")
        ip[10:12] = b"\0\0"
        ip[10:12] = checksum(ip).to_bytes(2, "big")
        out.append(bytes(ip + tcp))
        seq = (seq + len(piece)) & 0xFFFFFFFF
    return out


def _segment6(packet: bytes, flags: int, hdr_len: int, gso_size: int, csum_start: int,
              csum_offset: int) -> list[bytes]:
    """The oracle for a TCPv6 frame: the fixed header is copied to every segment
    with its payload length, the TCP header as for IPv4."""
    assert flags == VIRTIO_NET_HDR_F_NEEDS_CSUM
    assert (csum_start, csum_offset) == (40, 16)
    assert packet[0] >> 4 == 6 and packet[6] == 6  # TCP right after the fixed header
    assert int.from_bytes(packet[4:6], "big") == len(packet) - 40
    assert len(packet) <= 65535
    assert hdr_len == 40 + (packet[52] >> 4) * 4
    # RFC 8200 8.1: the pseudo-header sum (32-bit length), folded, not complemented
    pseudo = packet[8:40] + struct.pack("!I3xB", len(packet) - 40, 6)
    assert int.from_bytes(packet[56:58], "big") == (~checksum(pseudo) & 0xFFFF)
    head, data = packet[:hdr_len], packet[hdr_len:]
    seq = int.from_bytes(head[44:48], "big")
    out = []
    pieces = [data[k:k + gso_size] for k in range(0, len(data), gso_size)]
    for k, piece in enumerate(pieces):
        last = k == len(pieces) - 1
        tcp = bytearray(head[40:hdr_len] + piece)
        tcp[4:8] = seq.to_bytes(4, "big")
        if not last:
            tcp[13] &= ~0x09  # PSH and FIN only on the last segment
        tcp[16:18] = b"\0\0"
        pseudo = head[8:40] + struct.pack("!I3xB", len(tcp), 6)
        tcp[16:18] = checksum(pseudo + bytes(tcp)).to_bytes(2, "big")
        ip = bytearray(head[:40])
        ip[4:6] = len(tcp).to_bytes(2, "big")
        out.append(bytes(ip + tcp))
        seq = (seq + len(piece)) & 0xFFFFFFFF
    return out


def resegmented(frames: list[bytes]) -> list[bytes]:
    return [p for frame in frames for p in segment(frame)]


def test_a_run_of_full_segments_becomes_one_gso_frame():
    packets = flow(10)
    frames = tun_frames(packets)
    assert len(frames) == 1
    assert struct.unpack_from("<BBHHHH", frames[0])[1:4] == (VIRTIO_NET_HDR_GSO_TCPV4, 52, 1348)
    assert resegmented(frames) == packets


def test_a_short_last_segment_and_push_end_the_run_and_are_kept():
    packets = flow(5, last=200, last_flags=0x18) + flow(3, seq=1000 + 4 * 1348 + 200, ident=105)
    frames = tun_frames(packets)
    assert len(frames) == 2
    assert frames[0][VNET_HDR_LEN + 33] == 0x18  # PSH kept for the last segment
    assert resegmented(frames) == packets


def test_non_tcp_and_lonely_segments_are_written_plain():
    udp = bytearray(tcp_segment(1, b"x" * 100))
    udp[9] = 17
    lonely = tcp_segment(5, b"y" * 100)
    frames = tun_frames([bytes(udp), lonely, b"\x60" + bytes(50)])
    assert [f[:VNET_HDR_LEN] for f in frames] == [PLAIN_HEADER] * 3
    assert [f[VNET_HDR_LEN:] for f in frames] == [bytes(udp), lonely, b"\x60" + bytes(50)]


def test_order_is_kept_around_a_foreign_packet():
    a = flow(3)
    other = tcp_segment(9, b"z" * 1348, sport=6000, ident=7)
    b = flow(3, seq=1000 + 3 * 1348, ident=103)
    packets = a + [other] + b
    frames = tun_frames(packets)
    assert len(frames) == 3
    assert resegmented(frames) == packets


def test_what_tcp_gro_would_not_merge_is_not_merged():
    base = flow(2)
    cases = {
        "gap in sequence": [base[0], tcp_segment(1000 + 1348 + 1, os.urandom(1348), ident=101)],
        "other ack": [base[0], tcp_segment(1000 + 1348, os.urandom(1348), ident=101, ack=778)],
        "other window": [base[0], tcp_segment(1000 + 1348, os.urandom(1348), ident=101,
                                               window=502)],
        "other options": [base[0], tcp_segment(1000 + 1348, os.urandom(1348), ident=101,
                                                options=TIMESTAMPS[:-1] + b"\x02")],
        "other tos": [base[0], tcp_segment(1000 + 1348, os.urandom(1348), ident=101, tos=4)],
        "other ttl": [base[0], tcp_segment(1000 + 1348, os.urandom(1348), ident=101, ttl=9)],
        "other destination": [base[0], tcp_segment(1000 + 1348, os.urandom(1348), ident=101,
                                                    dst=bytes([198, 51, 100, 11]))],
        "FIN": [base[0], tcp_segment(1000 + 1348, os.urandom(1348), ident=101, flags=0x11)],
        "bigger second": [tcp_segment(1000, os.urandom(600)),
                          tcp_segment(1600, os.urandom(1348), ident=2)],
        "push first": [tcp_segment(1000, os.urandom(1348), flags=0x18),
                       tcp_segment(2348, os.urandom(1348), ident=2)],
        "fragment": [base[0][:6] + b"\x20" + base[0][7:], base[1]],
        "no DF": [tcp_segment(1000, os.urandom(1348), df=False),
                  tcp_segment(2348, os.urandom(1348), ident=2, df=False)],
        "pure ack": [tcp_segment(1000, b""), tcp_segment(1000, b"", ident=2)],
    }
    for name, packets in cases.items():
        frames = tun_frames(packets)
        assert [f[:VNET_HDR_LEN] for f in frames] == [PLAIN_HEADER] * 2, name
        assert [f[VNET_HDR_LEN:] for f in frames] == packets, name


def test_frames_stay_within_64k_and_64_segments():
    packets = flow(100)
    frames = tun_frames(packets)
    assert all(len(f) - VNET_HDR_LEN <= 65535 for f in frames)
    assert len(frames) == 3  # 48 segments of 1348 fit in 64 KiB, then 48, then 4
    assert resegmented(frames) == packets
    small = flow(150, size=100)
    frames = tun_frames(small)
    assert [(len(f) - VNET_HDR_LEN - 52) // 100 for f in frames] == [64, 64, 22]
    assert resegmented(frames) == small


def test_frame_packets_counts_what_a_frame_carries():
    packets = flow(10, last=100) + [tcp_segment(1, b"x", sport=7000)] + flow6(5)
    frames = tun_frames(packets)
    assert [frame_packets(f) for f in frames] == [10, 1, 5]


def test_sequence_numbers_wrap():
    packets = flow(4, seq=0xFFFFFFFF - 2000)
    assert len(tun_frames(packets)) == 1
    assert resegmented(tun_frames(packets)) == packets


def gso_types(frames: list[bytes]) -> list[int]:
    return [frame[1] for frame in frames]


def test_a_run_of_ipv6_segments_becomes_one_tcpv6_gso_frame():
    packets = flow6(10)
    frames = tun_frames(packets)
    assert len(frames) == 1
    assert struct.unpack_from("<BBHHHH", frames[0]) == (
        VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_TCPV6, 72, 1348, 40, 16)
    assert resegmented(frames) == packets


def test_an_ipv6_run_ends_at_a_short_or_pushed_segment_and_keeps_it():
    packets = flow6(5, last=200, last_flags=0x18) + flow6(3, seq=1000 + 4 * 1348 + 200)
    frames = tun_frames(packets)
    assert gso_types(frames) == [VIRTIO_NET_HDR_GSO_TCPV6] * 2
    assert frames[0][VNET_HDR_LEN + 53] == 0x18  # PSH kept for the last segment
    assert resegmented(frames) == packets


def test_ipv4_and_ipv6_runs_side_by_side_stay_apart_and_in_order():
    v4 = flow(3)
    v6 = flow6(4, seq=1000)  # the same ports and sequence numbers, another family
    more_v4 = flow(2, seq=1000 + 3 * 1348, ident=103)
    lonely = tcp6_segment(9, b"z" * 1348, sport=6000)
    packets = v4 + v6 + more_v4 + [lonely]
    frames = tun_frames(packets)
    assert gso_types(frames) == [VIRTIO_NET_HDR_GSO_TCPV4, VIRTIO_NET_HDR_GSO_TCPV6,
                                 VIRTIO_NET_HDR_GSO_TCPV4, 0]
    assert resegmented(frames) == packets


def test_what_tcp_gro_would_not_merge_is_not_merged_in_ipv6_either():
    base = flow6(2)
    second = 1000 + 1348

    def after(**fields):
        return [base[0], tcp6_segment(second, os.urandom(1348), **fields)]

    # a byte beyond what the payload length says (as the size of the first, with it)
    padded_second = tcp6_segment(second, os.urandom(1000)) + b"\0"
    padded_first = tcp6_segment(1000, os.urandom(1347)) + b"\0"
    cases = {
        "other flow label": after(label=0x54321),
        "other traffic class": after(tclass=0x20),
        "other hop limit": after(hop=62),
        "other source": after(src=SRC6[:-1] + b"\x11"),
        "other destination": after(dst=DST6[:-1] + b"\x11"),
        "other port": after(sport=5202),
        "gap in sequence": [base[0], tcp6_segment(second + 1, os.urandom(1348))],
        "other ack": after(ack=778),
        "other window": after(window=502),
        "other options": after(options=TIMESTAMPS[:-1] + b"\x02"),
        "FIN": after(flags=0x11),
        "hop-by-hop header first": [
            tcp6_segment(1000, os.urandom(1348), hop_by_hop=HOP_BY_HOP), base[1]],
        "hop-by-hop header second": after(hop_by_hop=HOP_BY_HOP),
        "hop-by-hop header both": [
            tcp6_segment(1000, os.urandom(1348), hop_by_hop=HOP_BY_HOP),
            tcp6_segment(second, os.urandom(1348), hop_by_hop=HOP_BY_HOP)],
        "udp": [tcp6_segment(1000, os.urandom(1348), next_header=17),
                tcp6_segment(second, os.urandom(1348), next_header=17)],
        "payload length short of the packet": [base[0], padded_second],
        "payload length short of the first": [padded_first, base[1]],
        "next header hop-by-hop, TCP bytes after": [p[:6] + b"\0" + p[7:] for p in base],
        "data offset below 5": [p[:52] + b"\x40" + p[53:] for p in (
            tcp6_segment(1000, os.urandom(1348)),
            tcp6_segment(second + 16, os.urandom(1348)))],
        "bigger second": [tcp6_segment(1000, os.urandom(600)),
                          tcp6_segment(1600, os.urandom(1348))],
        "push first": [tcp6_segment(1000, os.urandom(1348), flags=0x18),
                       tcp6_segment(2348, os.urandom(1348))],
        "pure ack": [tcp6_segment(1000, b""), tcp6_segment(1000, b"")],
        "ipv4 after ipv6": [base[0], tcp_segment(second, os.urandom(1348))],
        "ipv6 after ipv4": [tcp_segment(1000, os.urandom(1348)), base[1]],
    }
    for name, packets in cases.items():
        frames = tun_frames(packets)
        assert [f[:VNET_HDR_LEN] for f in frames] == [PLAIN_HEADER] * 2, name
        assert [f[VNET_HDR_LEN:] for f in frames] == packets, name


def test_truncated_and_odd_ipv6_packets_are_written_plain():
    good = tcp6_segment(1000, os.urandom(100))
    short_offset = good[:52] + b"\x40" + good[53:]  # data offset 4: no TCP header
    packets = [b"\x60" + bytes(60), good[:61], short_offset, good[:60], b"\x60", b""]
    frames = tun_frames(packets)
    assert [f[:VNET_HDR_LEN] for f in frames] == [PLAIN_HEADER] * len(packets)
    assert [f[VNET_HDR_LEN:] for f in frames] == packets


def test_ipv6_frames_stay_within_64k_and_64_segments():
    packets = flow6(100)
    frames = tun_frames(packets)
    assert all(len(f) - VNET_HDR_LEN <= 65535 for f in frames)
    assert len(frames) == 3  # 48 segments of 1348 fit in 64 KiB, then 48, then 4
    assert resegmented(frames) == packets
    small = flow6(150, size=100)
    frames = tun_frames(small)
    assert [(len(f) - VNET_HDR_LEN - 72) // 100 for f in frames] == [64, 64, 22]
    assert resegmented(frames) == small


def test_ipv6_sequence_numbers_wrap_and_any_addresses_checksum():
    packets = flow6(4, seq=0xFFFFFFFF - 2000, src=b"\xff" * 16, dst=b"\xff" * 15 + b"\xfe",
                    label=0xFFFFF, tclass=0xFF)
    frames = tun_frames(packets)
    assert gso_types(frames) == [VIRTIO_NET_HDR_GSO_TCPV6]
    assert resegmented(frames) == packets


KINDS = ["seg", "short", "psh", "gap", "udp", "junk", "ext"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([4, 6]), st.sampled_from(KINDS)), max_size=40),
       st.binary(max_size=80))
def test_any_mix_resegments_to_the_input(kinds, junk):
    packets = []
    seq = {4: 5000, 6: 9000}
    ident = 1
    for family, kind in kinds:
        if kind == "junk":
            packets.append(junk)
            continue
        size = 300 if kind == "short" else 1000
        if kind == "gap":
            seq[family] += 7
        flags = 0x18 if kind == "psh" else 0x10
        if family == 4:
            p = tcp_segment(seq[4], os.urandom(size), ident=ident, flags=flags)
            if kind == "udp":
                p = p[:9] + b"\x11" + p[10:]
            elif kind == "ext":  # the IPv4 counterpart: not DF
                p = tcp_segment(seq[4], os.urandom(size), ident=ident, df=False)
            ident += 1
        else:
            p = tcp6_segment(seq[6], os.urandom(size), flags=flags,
                             next_header=17 if kind == "udp" else 6,
                             hop_by_hop=HOP_BY_HOP if kind == "ext" else b"")
        packets.append(p)
        seq[family] += size
    frames = tun_frames(packets)
    # merged frames segment back exactly, except that the kernel numbers IP IDs from
    # the first segment: our IPv4 flow's IDs are consecutive, so they match too
    assert resegmented(frames) == packets
    # and nothing that could not have been merged was
    for frame in frames:
        if frame[1] == VIRTIO_NET_HDR_GSO_TCPV6:
            assert frame[VNET_HDR_LEN + 6] == 6
