"""Software GRO for the TUN write path: decrypted TCP segments merged into GSO frames.

Every packet written to a TUN device is forwarded (or delivered) by the kernel in
the writer's context, so the receiving gateway pays the forwarding and the far
client's TCP receive once per ``write``.  With the TUN opened ``IFF_VNET_HDR``,
a run of consecutive segments of one TCP flow can be written as one superpacket
with a ``virtio_net_hdr`` saying "TCPv4 (or TCPv6), segment size N": the kernel
forwards it whole (veth and the client's stack take GSO packets) and segments it
only where a device needs it, exactly as a NIC's GRO would have handed it over.

Merged, as Linux's own TCP GRO does, only segments that could have been cut from
one TSO send.  IPv4: without options, with DF (the kernel numbers the IP IDs of
the segments afresh, which RFC 6864 allows only for atomic datagrams), the same
addresses, TOS and TTL.  IPv6: TCP directly after the fixed header (no extension
headers), the same addresses, traffic class, flow label and hop limit, the payload
length matching the packet (there is no ID or DF to care about).  Both: the same
ports, consecutive sequence numbers, identical ACK, window and TCP options, flags
ACK only (the last may add PSH), every payload the size of the first except a
shorter last one, at most 64 KiB and 64 segments.  Anything else is written alone
with an all-zero header.

The merged frame asks the kernel to fill in the TCP checksums
(``VIRTIO_NET_HDR_F_NEEDS_CSUM``, the checksum field holding the pseudo-header
sum, as a TSO sender's stack leaves it: RFC 793's for IPv4, RFC 8200 section
8.1's, with the 32-bit upper-layer length, for IPv6).  The segments were
authenticated by the ESP ICV, so their bytes are what the peer gateway sent;
verifying each one's checksum in Python would cost more than the merge saves
(~3 µs a segment).

UDP is written datagram by datagram on purpose: merged into UDP GSO frames (which
the kernel accepts and cuts back exactly), a receiver without ``UDP_GRO`` pays the
segmentation in its own receive path and read ~10% fewer 64-byte datagrams per
second in bench/esp_throughput.py (34.3 k against 38.5 k, three runs each).

Pure: bytes in, frames out.  The pump calls :func:`tun_frames` once per flush.
"""

from __future__ import annotations

import struct

#: size of ``struct virtio_net_hdr`` (TUN's default ``TUNSETVNETHDRSZ``)
VNET_HDR_LEN = 10
#: the header of a packet written as it is: no GSO, checksum already complete
PLAIN_HEADER = bytes(VNET_HDR_LEN)

VIRTIO_NET_HDR_F_NEEDS_CSUM = 1
VIRTIO_NET_HDR_GSO_TCPV4 = 1
VIRTIO_NET_HDR_GSO_TCPV6 = 4
#: flags, gso_type, hdr_len, gso_size, csum_start, csum_offset (little-endian on
#: every host TUN runs on unless TUNSETVNETBE is used, which we do not)
_VNET = struct.Struct("<BBHHHH")

_TCP_ACK = 0x10
_TCP_ACK_PSH = 0x18
#: a merged IPv4 packet's total length must fit the 16-bit field; the same cap
#: (64 KiB for the whole packet) is kept for IPv6, whose payload length then fits too
_MAX_TOTAL = 65535
_MAX_SEGMENTS = 64


def _fold(total: int) -> int:
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def tun_frames(packets: list[bytes]) -> list[bytes]:
    """``packets`` (plain IP packets, in order) as frames for an ``IFF_VNET_HDR`` TUN.

    Each frame is a ``virtio_net_hdr`` and a packet; runs of mergeable TCP
    segments become one GSO frame.  The order of packets is kept.
    """
    frames: list[bytes] = []
    append = frames.append
    count = len(packets)
    i = 0
    while i < count:
        first = packets[i]
        i += 1
        length = len(first)
        if (
            length <= 40
            or first[0] != 0x45
            or first[9] != 6
            or first[6] != 0x40  # DF, not a fragment (RFC 6864: then the ID means nothing)
            or first[7]
            or first[33] != _TCP_ACK
            or i == count
            or (first[2] << 8 | first[3]) != length
        ):
            # IPv6 is tried only here, off the IPv4 path
            if length > 60 and first[0] >> 4 == 6 and i < count:
                i = _tcp6_run(first, packets, i, count, append)
            else:
                append(PLAIN_HEADER + first)
            continue
        start = 20 + ((first[32] >> 4) << 2)
        size = length - start
        if size <= 0 or start < 40:
            append(PLAIN_HEADER + first)
            continue
        # what every following segment must repeat
        ip_same = first[1]
        frag = first[6:9]  # DF, offset 0, TTL
        flow = first[12:24]
        ack_offset = first[28:33]
        window = first[34:36]
        options = first[40:start]
        next_seq = (int.from_bytes(first[24:28], "big") + size) & 0xFFFFFFFF
        payloads = [first[start:]]
        total = length
        last_flags = _TCP_ACK
        while i < count and len(payloads) < _MAX_SEGMENTS:
            seg = packets[i]
            seg_size = len(seg) - start
            if (
                seg_size <= 0
                or seg_size > size
                or total + seg_size > _MAX_TOTAL
                or seg[0] != 0x45
                or seg[9] != 6
                or seg[1] != ip_same
                or seg[6:9] != frag
                or seg[12:24] != flow
                or seg[28:33] != ack_offset
                or seg[34:36] != window
                or seg[40:start] != options
                or (seg[2] << 8 | seg[3]) != len(seg)
                or int.from_bytes(seg[24:28], "big") != next_seq
            ):
                break
            flags = seg[33]
            if flags != _TCP_ACK and flags != _TCP_ACK_PSH:
                break
            payloads.append(seg[start:])
            total += seg_size
            i += 1
            next_seq = (next_seq + seg_size) & 0xFFFFFFFF
            if flags == _TCP_ACK_PSH or seg_size < size:
                last_flags = flags
                break
        if len(payloads) == 1:
            append(PLAIN_HEADER + first)
            continue
        append(_merged(first, start, size, total, last_flags, payloads))
    return frames


def _merged(first: bytes, start: int, size: int, total: int, flags: int,
            payloads: list[bytes]) -> bytes:
    """The GSO frame: ``first``'s headers with the new length, flags and checksums."""
    ip = bytearray(first[:20])
    ip[2:4] = total.to_bytes(2, "big")
    ip[10:12] = b"\0\0"
    ip_sum = int.from_bytes(ip, "big") % 0xFFFF
    ip[10:12] = (0xFFFF - ip_sum).to_bytes(2, "big")
    tcp_length = total - 20
    # the pseudo-header sum, not complemented: what CHECKSUM_PARTIAL expects
    pseudo = _fold(int.from_bytes(first[12:20], "big") % 0xFFFF + 6 + tcp_length)
    header = _VNET.pack(
        VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_TCPV4, start, size, 20, 16
    )
    tcp = first[20:33] + bytes((flags,)) + first[34:36] + pseudo.to_bytes(2, "big") + first[38:start]
    return b"".join((header, ip, tcp, *payloads))


def _tcp6_run(first: bytes, packets: list[bytes], i: int, count: int, append) -> int:
    """Append ``first`` (an IPv6 packet, ``packets[i]`` the next) merged with the
    segments that follow it, or alone; the index of the first packet not taken."""
    length = len(first)
    if (
        first[6] != 6  # TCP straight after the fixed header: no extension headers
        or first[53] != _TCP_ACK
        or (first[4] << 8 | first[5]) != length - 40
    ):
        append(PLAIN_HEADER + first)
        return i
    start = 40 + ((first[52] >> 4) << 2)
    size = length - start
    if size <= 0 or start < 60:
        append(PLAIN_HEADER + first)
        return i
    # what every following segment must repeat
    version_class_label = first[0:4]
    flow = first[6:44]  # next header, hop limit, addresses, ports
    ack_offset = first[48:53]
    window = first[54:56]
    options = first[60:start]
    next_seq = (int.from_bytes(first[44:48], "big") + size) & 0xFFFFFFFF
    payloads = [first[start:]]
    total = length
    last_flags = _TCP_ACK
    while i < count and len(payloads) < _MAX_SEGMENTS:
        seg = packets[i]
        seg_length = len(seg)
        seg_size = seg_length - start
        if (
            seg_size <= 0
            or seg_size > size
            or total + seg_size > _MAX_TOTAL
            or seg[0:4] != version_class_label
            or seg[6:44] != flow
            or seg[48:53] != ack_offset
            or seg[54:56] != window
            or seg[60:start] != options
            or (seg[4] << 8 | seg[5]) != seg_length - 40
            or int.from_bytes(seg[44:48], "big") != next_seq
        ):
            break
        flags = seg[53]
        if flags != _TCP_ACK and flags != _TCP_ACK_PSH:
            break
        payloads.append(seg[start:])
        total += seg_size
        i += 1
        next_seq = (next_seq + seg_size) & 0xFFFFFFFF
        if flags == _TCP_ACK_PSH or seg_size < size:
            last_flags = flags
            break
    if len(payloads) == 1:
        append(PLAIN_HEADER + first)
    else:
        append(_merged6(first, start, size, total, last_flags, payloads))
    return i


def _merged6(first: bytes, start: int, size: int, total: int, flags: int,
             payloads: list[bytes]) -> bytes:
    """The IPv6 GSO frame: ``first``'s headers with the new payload length and flags,
    the TCP checksum field the pseudo-header sum (RFC 8200 section 8.1)."""
    tcp_length = total - 40  # at most 65495: the 32-bit length's upper half is zero
    pseudo = _fold(int.from_bytes(first[8:40], "big") % 0xFFFF + 6 + tcp_length)
    header = _VNET.pack(
        VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_TCPV6, start, size, 40, 16
    )
    return b"".join((
        header, first[:4], tcp_length.to_bytes(2, "big"), first[6:53], bytes((flags,)),
        first[54:56], pseudo.to_bytes(2, "big"), first[58:start], *payloads,
    ))


def frame_packets(frame: bytes) -> int:
    """How many packets ``frame`` (from :func:`tun_frames`) carries: 1, or its segments."""
    _flags, gso_type, hdr_len, gso_size, _start, _offset = _VNET.unpack_from(frame)
    if not gso_type or not gso_size:
        return 1
    return -(-(len(frame) - VNET_HDR_LEN - hdr_len) // gso_size)
