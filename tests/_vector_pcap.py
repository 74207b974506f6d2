"""Just enough pcap and ISAKMP reading for the known-answer vector tests.

Deliberately independent of ``fswan.isakmp`` (so a codec bug cannot hide a
key-schedule bug) and of ``tests/pcap.py``.  Reads classic little/big-endian
pcap with Ethernet framing, IPv4 + UDP only: what the lab's tcpdump wrote.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Datagram:
    src: str
    sport: int
    dst: str
    dport: int
    payload: bytes


def read_udp(path: Path) -> list[Datagram]:
    """Every IPv4/UDP datagram in a pcap file, in capture order."""
    data = path.read_bytes()
    magic = data[:4]
    if magic == b"\xd4\xc3\xb2\xa1":
        endian = "<"
    elif magic == b"\xa1\xb2\xc3\xd4":
        endian = ">"
    else:
        raise ValueError("not a classic pcap file")
    linktype = struct.unpack(endian + "I", data[20:24])[0]
    if linktype != 1:
        raise ValueError(f"unsupported link type {linktype}")
    out = []
    offset = 24
    while offset + 16 <= len(data):
        incl = struct.unpack(endian + "I", data[offset + 8:offset + 12])[0]
        frame = data[offset + 16:offset + 16 + incl]
        offset += 16 + incl
        if frame[12:14] != b"\x08\x00":
            continue
        ip = frame[14:]
        ihl = (ip[0] & 0x0F) * 4
        total = struct.unpack("!H", ip[2:4])[0]
        if ip[9] != 17:
            continue
        udp = ip[ihl:total]
        sport, dport, ulen = struct.unpack("!HHH", udp[:6])
        src = ".".join(str(b) for b in ip[12:16])
        dst = ".".join(str(b) for b in ip[16:20])
        out.append(Datagram(src, sport, dst, dport, udp[8:ulen]))
    return out


@dataclass(frozen=True)
class Isakmp:
    """An ISAKMP message split into header fields and (possibly encrypted) body."""

    cky_i: bytes
    cky_r: bytes
    next_payload: int
    exchange: int
    flags: int
    message_id: int
    body: bytes

    @property
    def encrypted(self) -> bool:
        return bool(self.flags & 1)


def isakmp_messages(datagrams: list[Datagram]) -> list[Isakmp]:
    """The IKE messages on 500 and 4500 (non-ESP marker stripped), ESP skipped."""
    out = []
    for d in datagrams:
        payload = d.payload
        if 4500 in (d.sport, d.dport):
            if payload[:4] != b"\x00\x00\x00\x00":
                continue  # ESP in UDP
            payload = payload[4:]
        elif 500 not in (d.sport, d.dport):
            continue
        cky_i, cky_r, np_, _ver, xchg, flags, mid, length = struct.unpack(
            "!8s8sBBBBII", payload[:28]
        )
        out.append(Isakmp(cky_i, cky_r, np_, xchg, flags, mid, payload[28:length]))
    return out


def payload_chain(first: int, body: bytes) -> list[tuple[int, bytes]]:
    """(type, whole payload incl. generic header) pairs; trailing padding ignored."""
    out = []
    offset, current = 0, first
    while current != 0:
        nxt, _res, length = struct.unpack("!BBH", body[offset:offset + 4])
        out.append((current, body[offset:offset + length]))
        offset += length
        current = nxt
    return out
