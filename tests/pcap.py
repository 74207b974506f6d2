"""A tiny classic-pcap reader for tests: UDP over IPv4, nothing else.

Enough to replay captured IKE exchanges into the codec and the engine
without scapy or tshark.  Link types: Ethernet (with 802.1Q tags), Linux
cooked capture v1 and v2, and raw IP.  Non-first IPv4 fragments and
anything that is not IPv4/UDP are skipped.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import NamedTuple

LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_RAW_BSD = (12, 14)  # DLT_RAW as some platforms number it
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_LINUX_SLL2 = 276

_ETHERTYPE_IPV4 = 0x0800
_ETHERTYPE_VLAN = (0x8100, 0x88A8)


class UdpPacket(NamedTuple):
    src: str
    sport: int
    dst: str
    dport: int
    payload: bytes


def _ip_packet(linktype: int, frame: bytes) -> bytes | None:
    """The IPv4 packet inside one captured frame, or None."""
    if linktype == LINKTYPE_ETHERNET:
        offset = 12
        ethertype = struct.unpack_from("!H", frame, offset)[0]
        while ethertype in _ETHERTYPE_VLAN:
            offset += 4
            ethertype = struct.unpack_from("!H", frame, offset)[0]
        return frame[offset + 2 :] if ethertype == _ETHERTYPE_IPV4 else None
    if linktype == LINKTYPE_LINUX_SLL:
        ethertype = struct.unpack_from("!H", frame, 14)[0]
        return frame[16:] if ethertype == _ETHERTYPE_IPV4 else None
    if linktype == LINKTYPE_LINUX_SLL2:
        ethertype = struct.unpack_from("!H", frame, 0)[0]
        return frame[20:] if ethertype == _ETHERTYPE_IPV4 else None
    if linktype in (LINKTYPE_RAW, LINKTYPE_IPV4) or linktype in LINKTYPE_RAW_BSD:
        return frame if frame and frame[0] >> 4 == 4 else None
    raise ValueError(f"unsupported pcap link type {linktype}")


def _udp(packet: bytes) -> UdpPacket | None:
    if len(packet) < 20 or packet[0] >> 4 != 4:
        return None
    ihl = (packet[0] & 0x0F) * 4
    total = struct.unpack_from("!H", packet, 2)[0]
    fragment = struct.unpack_from("!H", packet, 6)[0]
    if packet[9] != 17 or fragment & 0x1FFF:
        return None
    packet = packet[:total]
    sport, dport, length = struct.unpack_from("!HHH", packet, ihl)
    src = ".".join(str(b) for b in packet[12:16])
    dst = ".".join(str(b) for b in packet[16:20])
    return UdpPacket(src, sport, dst, dport, bytes(packet[ihl + 8 : ihl + length]))


def read_pcap(source: str | Path | bytes) -> list[UdpPacket]:
    """Every IPv4/UDP packet in a classic pcap file (path or its bytes)."""
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        endian = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        endian = ">"
    else:
        raise ValueError("not a classic pcap file (pcapng is not supported)")
    linktype = struct.unpack_from(endian + "I", data, 20)[0] & 0x0FFFFFFF
    packets = []
    offset = 24
    while offset + 16 <= len(data):
        caplen = struct.unpack_from(endian + "I", data, offset + 8)[0]
        frame = data[offset + 16 : offset + 16 + caplen]
        offset += 16 + caplen
        ip = _ip_packet(linktype, frame)
        if ip is None:
            continue
        udp = _udp(ip)
        if udp is not None:
            packets.append(udp)
    return packets
