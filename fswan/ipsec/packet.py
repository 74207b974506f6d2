"""IPv4/IPv6 header helpers for the KLIPS data plane.

Rules of this module:

* Pure functions over ``bytes``; no sockets, no clock.  Addresses travel as
  packed bytes or ints (``int.from_bytes``), never as ``ipaddress`` objects on
  the per-packet path: making one costs more than encrypting a small packet.
* Outer headers are built from a per-SA template (:class:`Ipv4Outer`,
  :class:`Ipv6Outer`) whose constant checksum words are summed once, so a
  packet costs one ``struct.pack`` and a few integer additions.
* Fragmentation (RFC 791) happens *before* encryption, on the inner packet, so
  the peer never has to reassemble outer fragments; ICMP "fragmentation
  needed" (RFC 792/1191) and ICMPv6 "packet too big" (RFC 4443) carry the real
  tunnel MTU back to the sender.
"""

from __future__ import annotations

import struct
import sys

__all__ = [
    "IPPROTO_ESP",
    "IPPROTO_ICMP",
    "IPPROTO_ICMPV6",
    "IPPROTO_IPIP",
    "IPPROTO_IPV6",
    "IPPROTO_NONE",
    "IPPROTO_TCP",
    "IPPROTO_UDP",
    "Ipv4Outer",
    "Ipv6Outer",
    "PacketError",
    "adjust_l4_checksum",
    "checksum",
    "checksum_delta",
    "fragment_ipv4",
    "icmp_frag_needed",
    "icmp_unreachable",
    "icmpv6_packet_too_big",
    "icmpv6_unreachable",
    "ip_addresses",
    "ipv4_header",
    "ipv6_header",
    "l4_checksum",
    "recompute_l4_checksum",
    "transport_ports",
    "word_sum",
]

IPPROTO_ICMP = 1
IPPROTO_IPIP = 4
IPPROTO_TCP = 6
IPPROTO_UDP = 17
IPPROTO_IPV6 = 41
IPPROTO_ESP = 50
IPPROTO_ICMPV6 = 58
IPPROTO_NONE = 59
IPPROTO_SCTP = 132

#: IPv4 flags/fragment-offset field bits
IP_DF = 0x4000
IP_MF = 0x2000
IP_OFFMASK = 0x1FFF

DEFAULT_TTL = 64
#: RFC 1812 4.3.2.3: an ICMP error carries as much of the packet as fits in 576 bytes
ICMP_MAX_V4 = 576
#: RFC 4443 2.4 (c): an ICMPv6 error must not exceed the IPv6 minimum MTU
ICMP_MAX_V6 = 1280

_V4 = struct.Struct("!BBHHHBBH4s4s")
_V4_NOADDR = struct.Struct("!BBHHHBBH")
_V6 = struct.Struct("!IHBB16s16s")
_UDP = struct.Struct("!HHHH")
_LITTLE = sys.byteorder == "little"
_PORT_PROTOS = frozenset((IPPROTO_TCP, IPPROTO_UDP, IPPROTO_SCTP))


class PacketError(ValueError):
    """A packet too short or inconsistent to handle."""


def checksum(data: bytes | bytearray | memoryview) -> int:
    """The RFC 1071 Internet checksum of ``data`` (odd lengths padded with a zero byte).

    The one's-complement sum is byte-order independent, so the words are
    summed in native order by C (``memoryview.cast``) and swapped once at the end.
    """
    if len(data) & 1:
        data = bytes(data) + b"\x00"
    total = sum(memoryview(data).cast("H"))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    total = ~total & 0xFFFF
    if _LITTLE:
        total = ((total & 0xFF) << 8) | (total >> 8)
    return total


def _fold(total: int) -> int:
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def word_sum(data: bytes) -> int:
    """The folded one's-complement sum of ``data``'s 16-bit words (not complemented)."""
    total = int.from_bytes(data, "big") % 0xFFFF if data else 0  # 2**16 == 1 (mod 0xFFFF)
    return total or (0xFFFF if any(data) else 0)


def checksum_delta(old: bytes, new: bytes) -> int:
    """What to add to a checksum's complement when the summed bytes ``old`` become
    ``new`` (RFC 1624's HC' = ~(~HC + ~m + m')); 0 when nothing changes."""
    return _fold_sum(word_sum(new) + (~word_sum(old) & 0xFFFF)) % 0xFFFF


def _fold_sum(total: int) -> int:
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


#: where the checksum of a TCP or UDP header is
L4_CHECKSUM_OFFSET = {IPPROTO_TCP: 16, IPPROTO_UDP: 6}


def adjust_l4_checksum(segment: bytes, proto: int, delta: int) -> bytes:
    """A TCP/UDP segment with its checksum moved by ``delta`` (from :func:`checksum_delta`).

    A UDP checksum of zero (none sent, IPv4) stays zero; one that comes out as
    zero is sent as 0xFFFF (RFC 768).  Other protocols and short segments are
    returned as they are."""
    offset = L4_CHECKSUM_OFFSET.get(proto)
    if offset is None or len(segment) < offset + 2:
        return segment
    old = (segment[offset] << 8) | segment[offset + 1]
    if proto == IPPROTO_UDP and old == 0:
        return segment
    new = _fold((~old & 0xFFFF) + delta)
    if proto == IPPROTO_UDP and new == 0:
        new = 0xFFFF
    return segment[:offset] + bytes((new >> 8, new & 0xFF)) + segment[offset + 2:]


def l4_checksum(src: bytes, dst: bytes, proto: int, segment: bytes) -> int:
    """The TCP/UDP checksum of ``segment`` (its checksum field taken as zero) between
    the packed addresses ``src`` and ``dst`` (IPv4 or IPv6 pseudo-header)."""
    offset = L4_CHECKSUM_OFFSET[proto]
    zeroed = segment[:offset] + b"\x00\x00" + segment[offset + 2:]
    if len(src) == 4:
        pseudo = src + dst + bytes((0, proto)) + len(segment).to_bytes(2, "big")
    else:
        pseudo = src + dst + len(segment).to_bytes(4, "big") + bytes((0, 0, 0, proto))
    value = checksum(pseudo + zeroed)
    return (value or 0xFFFF) if proto == IPPROTO_UDP else value


def recompute_l4_checksum(src: bytes, dst: bytes, proto: int, segment: bytes) -> bytes:
    """A TCP/UDP segment with a checksum computed afresh (others unchanged)."""
    offset = L4_CHECKSUM_OFFSET.get(proto)
    if offset is None or len(segment) < offset + 2:
        return segment
    value = l4_checksum(src, dst, proto, segment)
    return segment[:offset] + value.to_bytes(2, "big") + segment[offset + 2:]


def ipv4_header(
    src: bytes,
    dst: bytes,
    proto: int,
    payload_len: int,
    *,
    tos: int = 0,
    ttl: int = DEFAULT_TTL,
    ident: int = 0,
    flags: int = 0,
) -> bytes:
    """A 20-byte IPv4 header with its checksum (``flags`` is the flags/offset field)."""
    hdr = _V4.pack(0x45, tos, 20 + payload_len, ident, flags, ttl, proto, 0, src, dst)
    return hdr[:10] + checksum(hdr).to_bytes(2, "big") + hdr[12:]


def ipv6_header(
    src: bytes,
    dst: bytes,
    next_header: int,
    payload_len: int,
    *,
    tclass: int = 0,
    hlim: int = DEFAULT_TTL,
) -> bytes:
    """A 40-byte IPv6 header (flow label zero)."""
    return _V6.pack((6 << 28) | (tclass << 20), payload_len, next_header, hlim, src, dst)


def _udp6_checksum(src: bytes, dst: bytes, udp: bytes) -> int:
    pseudo = src + dst + len(udp).to_bytes(4, "big") + b"\x00\x00\x00" + bytes((IPPROTO_UDP,))
    value = checksum(pseudo + udp)
    return value or 0xFFFF


class Ipv4Outer:
    """The outer IPv4 (+ optional UDP, RFC 3948) header of one SA.

    TTL is fresh (64 by default): the tunnel is one hop to the inner packet,
    and copying the inner TTL would leak it.  TOS and DF are per packet (the
    ``hidetos`` and DF-copy decisions belong to the caller).
    """

    __slots__ = ("_addrs", "_base", "_proto", "_sport", "_dport", "_ttl", "overhead")

    def __init__(
        self,
        src: bytes,
        dst: bytes,
        *,
        udp_ports: tuple[int, int] | None = None,
        ttl: int = DEFAULT_TTL,
    ) -> None:
        if len(src) != 4 or len(dst) != 4:
            raise ValueError("IPv4 outer header needs 4-byte addresses")
        self._proto = IPPROTO_UDP if udp_ports else IPPROTO_ESP
        self._addrs = src + dst
        self._sport, self._dport = udp_ports or (0, 0)
        self._ttl = ttl
        #: constant part of the header checksum: version/IHL, TTL/protocol, addresses
        self._base = 0x4500 + ((ttl << 8) | self._proto) + sum(struct.unpack("!4H", self._addrs))
        self.overhead = 28 if udp_ports else 20

    def wrap(self, esp: bytes, tos: int, df: bool, ident: int) -> bytes:
        """Outer header(s) + ``esp``: a complete packet for an IP_HDRINCL raw socket."""
        total = self.overhead + len(esp)
        flags = IP_DF if df else 0
        csum = _fold(self._base + tos + total + ident + flags)
        hdr = _V4_NOADDR.pack(0x45, tos, total, ident, flags, self._ttl, self._proto, csum)
        if self._proto == IPPROTO_UDP:
            # RFC 3948 section 2.1: the UDP checksum is sent as zero over IPv4
            udp = _UDP.pack(self._sport, self._dport, total - 20, 0)
            return b"".join((hdr, self._addrs, udp, esp))
        return b"".join((hdr, self._addrs, esp))


class Ipv6Outer:
    """The outer IPv6 (+ optional UDP) header of one SA; hop limit always 64."""

    __slots__ = ("_src", "_dst", "_nh", "_sport", "_dport", "overhead")

    def __init__(self, src: bytes, dst: bytes, *, udp_ports: tuple[int, int] | None = None) -> None:
        if len(src) != 16 or len(dst) != 16:
            raise ValueError("IPv6 outer header needs 16-byte addresses")
        self._src, self._dst = src, dst
        self._nh = IPPROTO_UDP if udp_ports else IPPROTO_ESP
        self._sport, self._dport = udp_ports or (0, 0)
        self.overhead = 48 if udp_ports else 40

    def wrap(self, esp: bytes, tos: int, df: bool, ident: int) -> bytes:
        """Outer header(s) + ``esp`` (``df`` and ``ident`` are IPv4 notions, ignored)."""
        plen = self.overhead - 40 + len(esp)
        first = (6 << 28) | ((tos & 0xFF) << 20)
        hdr = _V6.pack(first, plen, self._nh, DEFAULT_TTL, self._src, self._dst)
        if self._nh == IPPROTO_UDP:
            # the UDP checksum is mandatory over IPv6 (RFC 8200 section 8.1)
            udp = _UDP.pack(self._sport, self._dport, plen, 0) + esp
            csum = _udp6_checksum(self._src, self._dst, udp)
            return b"".join((hdr, udp[:6], csum.to_bytes(2, "big"), udp[8:]))
        return hdr + esp


def ip_addresses(packet: bytes) -> tuple[int, int, int]:
    """(version, source int, destination int) of an IPv4/IPv6 packet."""
    if not packet:
        raise PacketError("empty packet")
    version = packet[0] >> 4
    if version == 4 and len(packet) >= 20:
        return 4, int.from_bytes(packet[12:16], "big"), int.from_bytes(packet[16:20], "big")
    if version == 6 and len(packet) >= 40:
        return 6, int.from_bytes(packet[8:24], "big"), int.from_bytes(packet[24:40], "big")
    raise PacketError(f"not an IPv4/IPv6 packet (version {version}, {len(packet)} bytes)")


def transport_ports(packet: bytes) -> tuple[int, int, int]:
    """(protocol, source port, destination port); ports are 0 when not known.

    Non-first IPv4 fragments and IPv6 packets with extension headers have no
    ports visible: they match only port-less eroutes, as in KLIPS.
    """
    version = packet[0] >> 4
    if version == 4:
        proto = packet[9]
        if int.from_bytes(packet[6:8], "big") & IP_OFFMASK:
            return proto, 0, 0
        off = (packet[0] & 0x0F) * 4
    else:
        proto = packet[6]
        off = 40
    if proto in _PORT_PROTOS and len(packet) >= off + 4:
        sport = int.from_bytes(packet[off:off + 2], "big")
        return proto, sport, int.from_bytes(packet[off + 2:off + 4], "big")
    return proto, 0, 0


# --------------------------------------------------------------------------
# fragmentation


def _copied_options(options: bytes) -> bytes:
    """The options a non-first fragment keeps: those with the copied flag (RFC 791)."""
    out = bytearray()
    i = 0
    while i < len(options):
        kind = options[i]
        if kind == 0:  # end of option list
            break
        if kind == 1:  # no-operation
            i += 1
            continue
        if i + 1 >= len(options):
            break
        length = options[i + 1]
        if length < 2:
            break
        if kind & 0x80:
            out += options[i:i + length]
        i += length
    out += b"\x00" * (-len(out) % 4)
    return bytes(out)


def fragment_ipv4(packet: bytes, mtu: int) -> list[bytes]:
    """Split an IPv4 packet whose DF bit is clear into fragments of at most ``mtu`` bytes.

    Works on packets that are themselves fragments: offsets are kept relative
    to the original datagram and the last piece keeps the original MF bit.
    """
    if len(packet) < 20 or packet[0] >> 4 != 4:
        raise PacketError("not an IPv4 packet")
    ihl = (packet[0] & 0x0F) * 4
    total = int.from_bytes(packet[2:4], "big")
    if ihl < 20 or total < ihl or total > len(packet):
        raise PacketError("bad IPv4 header length")
    field = int.from_bytes(packet[6:8], "big")
    if field & IP_DF:
        raise PacketError("DF set: cannot fragment")
    if total <= mtu:
        return [packet[:total]]
    base_off = field & IP_OFFMASK
    more = field & IP_MF
    header = packet[:ihl]
    later_options = _copied_options(packet[20:ihl])
    payload = memoryview(packet)[ihl:total]
    frags: list[bytes] = []
    pos = 0
    first = True
    while pos < len(payload):
        hdr_len = ihl if first else 20 + len(later_options)
        room = (mtu - hdr_len) & ~7
        if room <= 0:
            raise PacketError(f"MTU {mtu} too small to fragment")
        chunk = payload[pos:pos + room]
        last = pos + len(chunk) >= len(payload)
        flags = (base_off + pos // 8) | (more if last else IP_MF)
        if first:
            hdr = bytearray(header)
        else:
            hdr = bytearray(header[:20]) + later_options
            hdr[0] = 0x40 | (len(hdr) // 4)
        hdr[2:4] = (len(hdr) + len(chunk)).to_bytes(2, "big")
        hdr[6:8] = flags.to_bytes(2, "big")
        hdr[10:12] = b"\x00\x00"
        hdr[10:12] = checksum(hdr).to_bytes(2, "big")
        frags.append(bytes(hdr) + bytes(chunk))
        pos += len(chunk)
        first = False
    return frags


# --------------------------------------------------------------------------
# ICMP errors sent back towards the inner sender


def _icmp4_error(packet: bytes, icmp_type: int, code: int, rest: int, src: bytes) -> bytes:
    if len(packet) < 20:
        raise PacketError("not an IPv4 packet")
    quoted = packet[:ICMP_MAX_V4 - 28]
    body = bytearray(bytes((icmp_type, code, 0, 0)) + rest.to_bytes(4, "big") + quoted)
    body[2:4] = checksum(body).to_bytes(2, "big")
    return ipv4_header(src, packet[12:16], IPPROTO_ICMP, len(body)) + bytes(body)


def icmp_frag_needed(packet: bytes, mtu: int, src: bytes) -> bytes:
    """ICMP type 3 code 4 with the next-hop MTU (RFC 1191 section 4), from ``src`` to the sender."""
    return _icmp4_error(packet, 3, 4, mtu & 0xFFFF, src)


def icmp_unreachable(packet: bytes, code: int, src: bytes) -> bytes:
    """ICMP destination unreachable (``%reject`` uses code 13, communication prohibited)."""
    return _icmp4_error(packet, 3, code, 0, src)


def _icmp6_error(packet: bytes, icmp_type: int, code: int, rest: int, src: bytes) -> bytes:
    if len(packet) < 40:
        raise PacketError("not an IPv6 packet")
    dst = packet[8:24]
    quoted = packet[:ICMP_MAX_V6 - 48]
    body = bytearray(bytes((icmp_type, code, 0, 0)) + rest.to_bytes(4, "big") + quoted)
    pseudo = src + dst + len(body).to_bytes(4, "big") + b"\x00\x00\x00" + bytes((IPPROTO_ICMPV6,))
    body[2:4] = checksum(pseudo + bytes(body)).to_bytes(2, "big")
    return ipv6_header(src, dst, IPPROTO_ICMPV6, len(body), hlim=255) + bytes(body)


def icmpv6_packet_too_big(packet: bytes, mtu: int, src: bytes) -> bytes:
    """ICMPv6 type 2 "packet too big" with ``mtu`` (RFC 4443 section 3.2)."""
    return _icmp6_error(packet, 2, 0, mtu, src)


def icmpv6_unreachable(packet: bytes, code: int, src: bytes) -> bytes:
    """ICMPv6 destination unreachable (code 1: administratively prohibited)."""
    return _icmp6_error(packet, 1, code, 0, src)
