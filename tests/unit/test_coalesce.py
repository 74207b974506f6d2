"""Software GRO for the TUN (fswan.ipsec.coalesce): merged frames must segment back,
the way the kernel's TSO does, into exactly the packets that went in."""

from __future__ import annotations

import os
import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from fswan.ipsec.coalesce import (
    PLAIN_HEADER,
    VIRTIO_NET_HDR_F_NEEDS_CSUM,
    VIRTIO_NET_HDR_GSO_TCPV4,
    VNET_HDR_LEN,
    tun_frames,
)
from fswan.ipsec.packet import checksum

SRC = bytes([203, 0, 113, 10])
DST = bytes([198, 51, 100, 10])
TIMESTAMPS = bytes([1, 1, 8, 10]) + (123456).to_bytes(4, "big") + (654321).to_bytes(4, "big")


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


def flow(count: int, size: int = 1348, last: int | None = None, seq: int = 1000,
         ident: int = 100, last_flags: int = 0x10) -> list[bytes]:
    packets = []
    for k in range(count):
        length = last if (last is not None and k == count - 1) else size
        flags = last_flags if k == count - 1 else 0x10
        packets.append(tcp_segment(seq, os.urandom(length), ident=ident + k, flags=flags))
        seq += length
    return packets


def segment(frame: bytes) -> list[bytes]:
    """What the kernel does with a frame (TSO in software): the oracle."""
    flags, gso_type, hdr_len, gso_size, csum_start, csum_offset = struct.unpack_from(
        "<BBHHHH", frame)
    packet = frame[VNET_HDR_LEN:]
    if gso_type == 0:
        assert flags == 0
        return [packet]
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


def test_sequence_numbers_wrap():
    packets = flow(4, seq=0xFFFFFFFF - 2000)
    assert len(tun_frames(packets)) == 1
    assert resegmented(tun_frames(packets)) == packets


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["seg", "short", "psh", "gap", "udp", "junk"]), max_size=30),
       st.binary(max_size=60))
def test_any_mix_resegments_to_the_input(kinds, junk):
    packets = []
    seq, ident = 5000, 1
    for kind in kinds:
        if kind == "junk":
            packets.append(junk)
            continue
        size = {"seg": 1000, "short": 300, "psh": 1000, "gap": 1000, "udp": 1000}[kind]
        if kind == "gap":
            seq += 7
        p = tcp_segment(seq, os.urandom(size), ident=ident, flags=0x18 if kind == "psh" else 0x10)
        if kind == "udp":
            p = p[:9] + b"\x11" + p[10:]
        packets.append(p)
        seq += size
        ident += 1
    frames = tun_frames(packets)
    # merged frames segment back exactly, except that the kernel numbers IP IDs from
    # the first segment: our flows' IDs are consecutive, so they match too
    assert resegmented(frames) == packets
