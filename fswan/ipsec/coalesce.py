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
from typing import NamedTuple

from fswan.ipsec.packet import checksum

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


class _RunLayout(NamedTuple):
    """Where, per IP version, a run of TCP segments is read (byte offsets into a packet).

    A tuple so that :func:`tun_frames` unpacks it into locals once per run.
    """

    #: the IP header length
    header: int
    #: three byte ranges every segment must repeat (IPv4: version/IHL and TOS,
    #: DF/offset/TTL/protocol, addresses and ports; IPv6: version/class/flow label,
    #: an empty range, next header/hop limit/addresses/ports)
    rep0_from: int
    rep0_to: int
    rep1_from: int
    rep1_to: int
    rep2_from: int
    rep2_to: int
    #: the IP length field, and the bytes of the packet it leaves out
    length_at: int
    length_excludes: int
    #: the TCP sequence number, ACK (ending with the data offset), flags, window, options
    seq_at: int
    ack_at: int
    flags_at: int
    window_at: int
    window_end: int
    options_at: int


_IPV4 = _RunLayout(20, 0, 2, 6, 10, 12, 24, 2, 0, 24, 28, 33, 34, 36, 40)
_IPV6 = _RunLayout(40, 0, 4, 6, 44, 0, 0, 4, 40, 44, 48, 53, 54, 56, 60)


def _starts_tcp6_run(first: bytes, length: int) -> bool:
    """May a run of IPv6 TCP segments start with ``first``?"""
    return (
        length > 60
        and first[0] >> 4 == 6
        and first[6] == 6  # TCP straight after the fixed header: no extension headers
        and first[53] == _TCP_ACK
        and (first[4] << 8 | first[5]) == length - 40
    )


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
        if i == count or length <= 40:
            append(PLAIN_HEADER + first)
            continue
        if (
            first[0] == 0x45
            and first[9] == 6
            and first[6] == 0x40  # DF, not a fragment (RFC 6864: then the ID means nothing)
            and not first[7]
            and first[33] == _TCP_ACK
            and (first[2] << 8 | first[3]) == length
        ):
            layout = _IPV4
        elif _starts_tcp6_run(first, length):
            layout = _IPV6
        else:
            append(PLAIN_HEADER + first)
            continue
        (header, rep0_from, rep0_to, rep1_from, rep1_to, rep2_from, rep2_to, length_at,
         length_excludes, seq_at, ack_at, flags_at, window_at, window_end, options_at) = layout
        start = header + ((first[ack_at + 4] >> 4) << 2)
        size = length - start
        if size <= 0 or start < options_at:
            append(PLAIN_HEADER + first)
            continue
        # what every following segment must repeat
        same0, same1, same2 = (
            first[rep0_from:rep0_to], first[rep1_from:rep1_to], first[rep2_from:rep2_to]
        )
        ack_offset = first[ack_at:flags_at]
        window = first[window_at:window_end]
        options = first[options_at:start]
        next_seq = (int.from_bytes(first[seq_at:ack_at], "big") + size) & 0xFFFFFFFF
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
                or seg[rep0_from:rep0_to] != same0
                or seg[rep1_from:rep1_to] != same1
                or seg[rep2_from:rep2_to] != same2
                or seg[ack_at:flags_at] != ack_offset
                or seg[window_at:window_end] != window
                or seg[options_at:start] != options
                or (seg[length_at] << 8 | seg[length_at + 1]) != seg_length - length_excludes
                or int.from_bytes(seg[seq_at:ack_at], "big") != next_seq
            ):
                break
            flags = seg[flags_at]
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
        elif header == 20:
            append(_merged4(first, start, size, total, last_flags, payloads))
        else:
            append(_merged6(first, start, size, total, last_flags, payloads))
    return frames


def _pseudo_sum(addresses: bytes, length: int) -> bytes:
    """The TCP pseudo-header sum, folded and not complemented (what CHECKSUM_PARTIAL
    expects in the checksum field); the same for IPv4 and RFC 8200's IPv6 form."""
    pseudo = addresses + b"\0\0\0\x06" + length.to_bytes(4, "big")
    return (~checksum(pseudo) & 0xFFFF).to_bytes(2, "big")


def _merged4(first: bytes, start: int, size: int, total: int, flags: int,
             payloads: list[bytes]) -> bytes:
    """The TCPv4 GSO frame: ``first``'s headers with the new length, flags and checksums."""
    ip = bytearray(first[:20])
    ip[2:4] = total.to_bytes(2, "big")
    ip[10:12] = b"\0\0"
    ip[10:12] = checksum(ip).to_bytes(2, "big")
    header = _VNET.pack(
        VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_TCPV4, start, size, 20, 16
    )
    return b"".join((
        header, ip, first[20:33], bytes((flags,)), first[34:36],
        _pseudo_sum(first[12:20], total - 20), first[38:start], *payloads,
    ))


def _merged6(first: bytes, start: int, size: int, total: int, flags: int,
             payloads: list[bytes]) -> bytes:
    """The TCPv6 GSO frame: ``first``'s headers with the new payload length and flags."""
    tcp_length = total - 40  # at most 65495: the 32-bit length's upper half is zero
    header = _VNET.pack(
        VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_TCPV6, start, size, 40, 16
    )
    return b"".join((
        header, first[:4], tcp_length.to_bytes(2, "big"), first[6:53], bytes((flags,)),
        first[54:56], _pseudo_sum(first[8:40], tcp_length), first[58:start], *payloads,
    ))


def frame_packets(frame: bytes) -> int:
    """How many packets ``frame`` (from :func:`tun_frames`) carries: 1, or its segments."""
    _flags, gso_type, hdr_len, gso_size, _start, _offset = _VNET.unpack_from(frame)
    if not gso_type or not gso_size:
        return 1
    return -(-(len(frame) - VNET_HDR_LEN - hdr_len) // gso_size)
