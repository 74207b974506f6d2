"""The sans-IO KLIPS data plane: TUN packets in, ESP out; ESP in, TUN packets out.

API (how the Twisted pump drives it)
====================================

Build one :class:`DataPlane`; the IKE side installs SAs and eroutes in it
(``install_sa``, ``delete_sa``, ``add_eroute``, ``replace_eroute``,
``delete_eroute``).  Then, per wake-up, drain every ready packet::

    dp = DataPlane(path_mtu=1500, outer_header=False)
    send = {KIND_ESP: raw_esp_sock.sendto, KIND_ESP_UDP: udp4500_sock.sendto,
            KIND_IP: raw_hdrincl_sock.sendto}

    # TUN readable
    for packet in drain(tun):                    # IPv4/IPv6 packets, no TUN header
        dp.outbound(packet, now)                 # returns a verdict string (below)
    # raw ESP socket readable (IPv4 raw sockets include the IP header)
    for data in drain(raw_esp):
        dp.inbound_ip(data, now)                 # or dp.inbound(data[ihl:], src, 0, now)
    # UDP 4500 readable: ESP-in-UDP here; IKE and keepalives to the engine (RFC 3948)
    for data, (host, port) in drain(udp4500):
        if classify_natt(data) is NattKind.ESP:             # fswan.isakmp.message
            dp.inbound(data, host, port, now)

    # then flush the outputs (plain lists, cleared by the pump)
    for kind, data, addr in dp.network:          # addr is the SA's preallocated (host, port)
        send[kind](data, addr)
    dp.network.clear()
    for packet in dp.tun:                        # decrypted packets, ICMP errors for local senders
        os.write(tun_fd, packet)
    dp.tun.clear()
    for event in dp.events:                      # Acquire, SoftExpire, HardExpire, UnknownSPI
        engine.kernel_event(event, now)
    dp.events.clear()
    reactor timer: dp.get_timer() -> deadline or None; at the deadline call dp.handle_timer(now)

``outbound``/``inbound`` return :data:`OK` when something went out (to the
network, or to the TUN), or a short reason string (also counted in
``dp.counters``): :data:`HELD`, :data:`PASSED`, ``"no eroute!"``,
``"ICV failed"``, ... .  They never raise on packet content.  Nothing per
packet allocates beyond the output bytes and one tuple.

Control side (``ipsec.kernel.Klips``, the ``IKernel`` provider, calls these, with ``now``)::

    inbound_sa, outbound_sa = sa_pair_from_child(child_sa_installed_event, now=now)
    dp.install_sa(inbound_sa); dp.install_sa(outbound_sa)   # SAError: "SA already in use"
    dp.replace_eroute(local_client, remote_client, outbound_sa.said, now=now)
    dp.add_eroute("10.0.1.0/24", "10.0.2.0/24", TRAP)        # auto=route; magic SAIDs from eroute
    dp.delete_eroute(src, dst, now=now); dp.delete_sa(said, IN)
    dp.eroute_listing()   # ``ipsec eroute`` lines;  dp.status_lines(now): SAs and counters

Output kinds (``dp.network`` entries ``(kind, data, addr)``):

* ``KIND_ESP``: an ESP packet for a raw ``IPPROTO_ESP`` socket to ``(peer, 0)``.
* ``KIND_ESP_UDP``: an ESP packet for the UDP socket bound to 4500, to ``(peer, port)``.
* ``KIND_IP``: a complete IP packet for an ``IP_HDRINCL`` raw socket: every
  ESP packet when the data plane was built with ``outer_header=True`` (the
  outer IPv4/IPv6 header, plus the UDP header for NAT-T, built here: fresh
  TTL 64, TOS zeroed or copied per ``hidetos``, DF copied from the inner
  packet), and ``%pass`` packets, which go out unchanged.  Without
  ``outer_header`` the kernel builds the outer header (TTL 64 and TOS 0 by
  default, i.e. ``hidetos=yes``); ``hidetos=no`` needs ``outer_header=True``.

Paths (``docs/ARCHITECTURE.md``):

* **Outbound**: eroute lookup (one dict hit in steady state) -> SA ->
  too big for the tunnel MTU?  IPv4 with DF clear is fragmented *before*
  encryption; DF set gets ICMP "fragmentation needed" with the real tunnel
  MTU, IPv6 gets ICMPv6 "packet too big", both written back to ``dp.tun`` ->
  ``sa.encap`` -> ``dp.network``.  No eroute: dropped and counted as
  ``no eroute!``, never sent in clear.  ``%trap``: an :class:`Acquire` event
  and a host-to-host ``%hold`` keeping the packet; ``%hold`` keeps the latest
  packet; ``%pass`` sends it in clear; ``%drop`` drops; ``%reject`` drops and
  answers ICMP unreachable (code 13, as KLIPS).  A held packet is sent when
  its ``%hold`` eroute is replaced or deleted and the table then has an SA
  for it.
* **Inbound**: SA by SPI (one dict lookup; unknown SPIs counted and reported
  as :class:`UnknownSPI`, rate limited) -> replay check -> ICV -> decrypt ->
  replay window update -> tunnel mode: the inner packet's addresses must lie
  in the SA's selectors (KLIPS's arrival check) unless the SA has
  ``disablearrivalcheck``; transport mode: a fresh IP header from the SA's
  addresses, and for ESP-in-UDP the TCP/UDP checksum moved from the peer's
  NAT-OA addresses to ours (computed afresh without NAT-OA; RFC 3948 section
  3.1.2) -> ``dp.tun``.  Next header 59 (RFC 4303 dummy
  packets) is discarded silently (counted).
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass
from typing import Any, Union

from fswan.ipsec.eroute import (
    DROP,
    HOLD,
    PASS,
    REJECT,
    TRAP,
    Eroute,
    ErouteTable,
    Target,
    parse_target,
)
from fswan.ipsec.esp import DROP_ICV, DROP_MALFORMED, DROP_PADDING, EspError
from fswan.ipsec.packet import (
    IPPROTO_ESP,
    IPPROTO_IPIP,
    IPPROTO_IPV6,
    IPPROTO_NONE,
    IPPROTO_TCP,
    IPPROTO_UDP,
    PacketError,
    adjust_l4_checksum,
    fragment_ipv4,
    icmp_frag_needed,
    icmp_unreachable,
    icmpv6_packet_too_big,
    icmpv6_unreachable,
    ip_addresses,
    ipv4_header,
    ipv6_header,
    recompute_l4_checksum,
)
from fswan.ipsec.sa import (
    DROP_EXPIRED,
    DROP_REPLAY,
    DROP_TOO_OLD,
    KIND_ESP,
    KIND_ESP_UDP,
    KIND_IP,
    RECOMPUTE,
    HardExpire,
    SADatabase,
    Said,
    SAError,
    SecurityAssociation,
    SoftExpire,
)
from fswan.isakmp.message import NattKind, classify_natt

__all__ = [
    "DROP_ARRIVAL",
    "DROP_BAD_PACKET",
    "DROP_DUMMY",
    "DROP_FRAG_NEEDED",
    "DROP_HELD_DISCARDED",
    "DROP_INNER",
    "DROP_NEXT_HEADER",
    "DROP_NO_EROUTE",
    "DROP_NO_SA",
    "DROP_REJECT",
    "DROP_SHUNT",
    "DROP_TOO_BIG",
    "DROP_UNKNOWN_SPI",
    "HELD",
    "KIND_ESP",
    "KIND_ESP_UDP",
    "KIND_IP",
    "NOT_ESP",
    "OK",
    "PASSED",
    "Acquire",
    "DataPlane",
    "HardExpire",
    "SoftExpire",
    "UnknownSPI",
]

IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]
IPNetwork = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]

_U16 = struct.Struct("!H")
_U32X2 = struct.Struct("!II")

#: verdicts that are not drops
OK = "ok"
HELD = "held"
PASSED = "passed"
NOT_ESP = "not ESP"  #: inbound_ip: IKE on 4500, a NAT-T keepalive, or another protocol

#: drop reasons (counter names) besides those of esp.py and sa.py
DROP_NO_EROUTE = "no eroute!"
DROP_SHUNT = "%drop"
DROP_REJECT = "%reject"
DROP_NO_SA = "eroute has no SA"
DROP_FRAG_NEEDED = "fragmentation needed"
DROP_TOO_BIG = "packet too big"
DROP_BAD_PACKET = "malformed packet"
DROP_UNKNOWN_SPI = "unknown SPI"
DROP_ARRIVAL = "arrival check failed"
DROP_NEXT_HEADER = "bad next header"
DROP_INNER = "malformed inner packet"
DROP_DUMMY = "dummy packet"
DROP_HELD_DISCARDED = "held packet discarded"
#: counted but not drops
COUNT_FRAGMENTED = "fragmented"
COUNT_ACQUIRE = "acquire"
COUNT_HOLD = "%hold"
COUNT_PASS = "%pass"
COUNT_CSUM_FIXED = "NAT-T checksum fixed"

_COUNTERS = (
    DROP_NO_EROUTE, DROP_SHUNT, DROP_REJECT, DROP_NO_SA, DROP_EXPIRED, DROP_FRAG_NEEDED,
    DROP_TOO_BIG, DROP_BAD_PACKET, DROP_UNKNOWN_SPI, DROP_MALFORMED, DROP_ICV, DROP_PADDING,
    DROP_REPLAY, DROP_TOO_OLD, DROP_ARRIVAL, DROP_NEXT_HEADER, DROP_INNER, DROP_DUMMY,
    DROP_HELD_DISCARDED, COUNT_FRAGMENTED, COUNT_ACQUIRE, COUNT_HOLD, COUNT_PASS, NOT_ESP,
    COUNT_CSUM_FIXED,
)


@dataclass(frozen=True)
class Acquire:
    """A packet hit a ``%trap`` eroute: the engine should negotiate (pluto's ACQUIRE)."""

    #: the packet's addresses and transport protocol
    src: IPAddress
    dst: IPAddress
    proto: int
    #: the trap eroute's nets (which connection to initiate)
    eroute_src: IPNetwork
    eroute_dst: IPNetwork


@dataclass(frozen=True)
class UnknownSPI:
    """ESP arrived for an SPI we have no SA for (rate limited per SPI and source)."""

    spi: int
    src: str
    sport: int


def _ntop(packed: bytes) -> str:
    return str(ipaddress.ip_address(packed))


def _transport_payload(sa: SecurityAssociation, packet: bytes) -> tuple[bytes, int] | None:
    """Transport mode: (upper-layer payload, its protocol) that ESP protects, the IP
    header to be rebuilt; None for a packet of the wrong version or inconsistent lengths."""
    version = packet[0] >> 4
    if version != sa.version:
        return None
    if version == 4:
        ihl = (packet[0] & 0x0F) * 4
        total = int.from_bytes(packet[2:4], "big")
        if ihl < 20 or total < ihl or total > len(packet):
            return None
        return packet[ihl:total], packet[9]
    return packet[40:], packet[6]


class DataPlane:
    """SAD + eroute table + the two packet paths.  See the module docstring."""

    def __init__(
        self,
        *,
        path_mtu: int = 1500,
        outer_header: bool = False,
        unknown_spi_interval: float = 10.0,
        unknown_spi_burst: int = 10,
        icmp_source_v4: str | None = None,
        icmp_source_v6: str | None = None,
    ) -> None:
        self.sad = SADatabase()
        self.eroutes = ErouteTable()
        #: (kind, data, addr) datagrams for the pump to send
        self.network: list[tuple[int, bytes, tuple[str, int]]] = []
        #: packets for the TUN device: decrypted inner packets and ICMP errors
        self.tun: list[bytes] = []
        #: Acquire, SoftExpire, HardExpire, UnknownSPI, in order
        self.events: list[Any] = []
        #: drop reasons and other per-packet events -> count
        self.counters: dict[str, int] = dict.fromkeys(_COUNTERS, 0)
        self.path_mtu = path_mtu
        self.outer_header = outer_header
        self.unknown_spi_interval = unknown_spi_interval
        self.unknown_spi_burst = unknown_spi_burst
        self._icmp_v4 = ipaddress.IPv4Address(icmp_source_v4).packed if icmp_source_v4 else None
        self._icmp_v6 = ipaddress.IPv6Address(icmp_source_v6).packed if icmp_source_v6 else None
        self._ident = 0
        self._unknown_seen: dict[tuple[int, str], float] = {}
        self._unknown_window = -1e18
        self._unknown_count = 0
        self._lookup = self.eroutes.lookup

    # ------------------------------------------------------------------
    # SAD and eroute changes (IKernel)

    def install_sa(self, sa: SecurityAssociation) -> None:
        """Add an SA; an SPI clash raises SAError ("SA already in use")."""
        self.sad.add(sa)
        sa.events = self.events
        if sa.path_mtu != self.path_mtu:
            sa.set_path_mtu(self.path_mtu)

    def delete_sa(self, said: Said, direction: str | None = None) -> SecurityAssociation | None:
        """Remove an SA (None if it already expired and was purged)."""
        return self.sad.delete(said, direction)

    def set_path_mtu(self, mtu: int, peer: IPAddress | str | None = None) -> None:
        """Change the path MTU towards one peer (or the default and every SA)."""
        address = None if peer is None else ipaddress.ip_address(peer)
        if address is None:
            self.path_mtu = mtu
        for sa in self.sad:
            if address is None or sa.remote == address:
                sa.set_path_mtu(mtu)

    def add_eroute(
        self, src: Any, dst: Any, said: Target, *, proto: int = 0, sport: int = 0, dport: int = 0
    ) -> Eroute:
        """``ipsec eroute --add``: an error if one exists on the same nets."""
        e = self.eroutes.add(src, dst, said, proto=proto, sport=sport, dport=dport)
        self._attach(e)
        return e

    def replace_eroute(
        self,
        src: Any,
        dst: Any,
        said: Target,
        *,
        now: float,
        proto: int = 0,
        sport: int = 0,
        dport: int = 0,
    ) -> Eroute:
        """``--replace`` (add when absent): a packet held by a %hold goes out if it now can."""
        if self.eroutes.get(src, dst, proto=proto, sport=sport, dport=dport) is None:
            return self.add_eroute(src, dst, said, proto=proto, sport=sport, dport=dport)
        e, held = self.eroutes.replace(src, dst, said, proto=proto, sport=sport, dport=dport)
        self._attach(e)
        if held is not None:
            self._release(held, now)
        return e

    def delete_eroute(
        self, src: Any, dst: Any, *, now: float, proto: int = 0, sport: int = 0, dport: int = 0
    ) -> Eroute:
        """``--del``: a held packet goes out if another eroute now carries it, else is discarded."""
        e = self.eroutes.delete(src, dst, proto=proto, sport=sport, dport=dport)
        if e.held is not None:
            held, e.held = e.held, None
            self._release(held, now)
        return e

    def _attach(self, e: Eroute) -> None:
        if e.magic is None:
            said = e.said
            assert isinstance(said, Said)
            e.sa = self.sad.outbound.get((said.spi, said.dst))

    def _release(self, packet: bytes, now: float) -> None:
        e = self._lookup(packet)
        if e is None or e.magic in (TRAP, HOLD):
            self.counters[DROP_HELD_DISCARDED] += 1
            return
        self.outbound(packet, now)

    # ------------------------------------------------------------------
    # outbound

    def outbound(
        self, packet: bytes, now: float, sa: SecurityAssociation | None = None
    ) -> str:
        """Handle one packet read from the TUN device.

        ``sa`` is only for the fragments of a packet too big for its SA: they
        skip the eroute lookup and leave through that SA, so every ESP packet
        goes out through the one encapsulation tail below.
        """
        if sa is None:
            e = self._lookup(packet)
            if e is None:
                return self._no_eroute(packet)
            e.count += 1
            sa = e.sa
            if sa is None or sa.dead:
                if e.magic is not None:
                    return self._shunt(e, packet)
                sa = self._sa_for(e)
                if sa is None:
                    return self._drop(DROP_NO_SA)
                if sa.dead:
                    return self._drop(DROP_EXPIRED)
            if len(packet) > sa.inner_mtu:
                return self._too_big(sa, packet, now)
        # the per-packet path: every step inlined, no call beyond the encryption
        if sa.tunnel:
            esp = sa.encap(packet, IPPROTO_IPIP if packet[0] < 0x60 else IPPROTO_IPV6, now)
        else:
            inner = _transport_payload(sa, packet)
            if inner is None:
                return self._drop(DROP_BAD_PACKET)
            esp = sa.encap(inner[0], inner[1], now)
        if esp is None:
            return self._drop(DROP_EXPIRED)
        if self.outer_header:
            self._frame(sa, esp, packet)
        else:
            self.network.append((sa.kind, esp, sa.sendto))
        return OK

    def _frame(self, sa: SecurityAssociation, esp: bytes, packet: bytes) -> None:
        """Outer header(s) built here (``outer_header=True``)."""
        b0 = packet[0]
        if b0 < 0x60:
            tos = 0 if sa.hidetos else packet[1]
            df = bool(packet[6] & 0x40)
        else:
            tos = 0 if sa.hidetos else ((b0 & 0x0F) << 4) | (packet[1] >> 4)
            df = True
        self._ident = ident = (self._ident + 1) & 0xFFFF
        self.network.append((KIND_IP, sa.outer.wrap(esp, tos, df, ident), sa.sendto))

    def _no_eroute(self, packet: bytes) -> str:
        try:
            ip_addresses(packet)
        except PacketError:
            return self._drop(DROP_BAD_PACKET)
        return self._drop(DROP_NO_EROUTE)

    def _sa_for(self, e: Eroute) -> SecurityAssociation | None:
        """The SAD's SA for an SA eroute whose SA is unresolved or died (dead or not).

        A live one is cached in the eroute for the next packet; a missing one
        is forgotten.  The caller counts the drop when there is none or it died.
        """
        said = e.said
        assert isinstance(said, Said)
        sa = self.sad.outbound.get((said.spi, said.dst))
        if sa is None:
            e.sa = None
        elif not sa.dead:
            e.sa = sa
        return sa

    def _shunt(self, e: Eroute, packet: bytes) -> str:
        """A packet on a magic SAID's eroute: held, passed in clear, or dropped."""
        magic = e.magic
        if magic == HOLD:
            e.held = packet
            self.counters[COUNT_HOLD] += 1
            return HELD
        if magic == TRAP:
            return self._acquire(e, packet)
        if magic == PASS:
            dst = packet[16:20] if packet[0] < 0x60 else packet[24:40]
            self.network.append((KIND_IP, packet, (_ntop(dst), 0)))
            self.counters[COUNT_PASS] += 1
            return PASSED
        if magic == REJECT:
            icmp = self._icmp(packet, None, unreachable=True)
            if icmp is not None:
                self.tun.append(icmp)
            return self._drop(DROP_REJECT)
        assert magic == DROP
        return self._drop(DROP_SHUNT)

    def _acquire(self, trap: Eroute, packet: bytes) -> str:
        version, src, dst = ip_addresses(packet)
        proto = packet[9] if version == 4 else packet[6]
        hold = self.eroutes.hold_for(version, src, dst)
        hold.held = packet
        make = ipaddress.IPv4Address if version == 4 else ipaddress.IPv6Address
        self.events.append(Acquire(make(src), make(dst), proto, trap.src, trap.dst))
        self.counters[COUNT_ACQUIRE] += 1
        return HELD

    def _too_big(self, sa: SecurityAssociation, packet: bytes, now: float) -> str:
        mtu = sa.inner_mtu
        if packet[0] < 0x60:
            if len(packet) < 20:
                return self._drop(DROP_BAD_PACKET)
            # transport mode cannot carry fragments (RFC 4301 section 7): tell the sender
            if packet[6] & 0x40 or not sa.tunnel:
                icmp = self._icmp(packet, sa, mtu=mtu)
                if icmp is not None:
                    self.tun.append(icmp)
                return self._drop(DROP_FRAG_NEEDED)
            try:
                frags = fragment_ipv4(packet, mtu)
            except PacketError:
                return self._drop(DROP_BAD_PACKET)
            self.counters[COUNT_FRAGMENTED] += 1
            for frag in frags:
                verdict = self.outbound(frag, now, sa)
                if verdict is not OK:
                    return verdict
            return OK
        # IPv6: routers never fragment; the sender must learn the MTU (RFC 8201)
        icmp = self._icmp(packet, sa, mtu=max(mtu, 1280))
        if icmp is not None:
            self.tun.append(icmp)
        return self._drop(DROP_TOO_BIG)

    def _icmp(
        self,
        packet: bytes,
        sa: SecurityAssociation | None,
        *,
        mtu: int = 0,
        unreachable: bool = False,
    ) -> bytes | None:
        """An ICMP error about ``packet`` for its sender, from our address when we have one."""
        ours = sa.local.packed if sa is not None else b""
        try:
            if packet[0] < 0x60:
                src = self._icmp_v4 or (ours if len(ours) == 4 else packet[16:20])
                if unreachable:
                    return icmp_unreachable(packet, 13, src)
                return icmp_frag_needed(packet, mtu, src)
            src = self._icmp_v6 or (ours if len(ours) == 16 else packet[24:40])
            if unreachable:
                return icmpv6_unreachable(packet, 1, src)
            return icmpv6_packet_too_big(packet, mtu, src)
        except PacketError:
            return None

    # ------------------------------------------------------------------
    # inbound

    def inbound(self, esp: bytes, src: str, sport: int, now: float) -> str:
        """Handle one ESP packet (no IP/UDP header) that came from ``src``:``sport``."""
        if len(esp) < 8:
            return self._drop(DROP_MALFORMED)
        sa = self.sad.inbound.get(int.from_bytes(esp[:4], "big"))
        if sa is None:
            return self._unknown_spi(esp, src, sport, now)
        try:
            next_header, inner = sa.decap(esp, now)
        except EspError as exc:
            sa.drops += 1
            return self._drop(exc.reason)
        if not sa.tunnel:
            return self._deliver_transport(sa, next_header, inner)
        if next_header == IPPROTO_IPIP:
            n = len(inner)
            if n < 20 or inner[0] & 0xF0 != 0x40:
                return self._drop(DROP_INNER)
            total = _U16.unpack_from(inner, 2)[0]
            if total < 20 or total > n:
                return self._drop(DROP_INNER)
            if total < n:  # TFC padding after the packet (RFC 4303 section 2.7)
                inner = inner[:total]
            if not sa.disablearrivalcheck:
                src_a, dst_a = _U32X2.unpack_from(inner, 12)
                if (
                    sa.sel_version != 4
                    or src_a & sa.rmask != sa.rnet
                    or dst_a & sa.lmask != sa.lnet
                ):
                    sa.drops += 1
                    return self._drop(DROP_ARRIVAL)
        elif next_header == IPPROTO_IPV6:
            n = len(inner)
            if n < 40 or inner[0] & 0xF0 != 0x60:
                return self._drop(DROP_INNER)
            total = _U16.unpack_from(inner, 4)[0] + 40
            if total > n:
                return self._drop(DROP_INNER)
            if total < n:
                inner = inner[:total]
            if not sa.disablearrivalcheck and not sa.selectors_match(
                6, int.from_bytes(inner[8:24], "big"), int.from_bytes(inner[24:40], "big")
            ):
                sa.drops += 1
                return self._drop(DROP_ARRIVAL)
        elif next_header == IPPROTO_NONE:
            return self._drop(DROP_DUMMY)
        else:
            return self._drop(DROP_NEXT_HEADER)
        self.tun.append(inner)
        return OK

    def _deliver_transport(self, sa: SecurityAssociation, next_header: int, payload: bytes) -> str:
        """Transport mode: a fresh IP header from the SA's addresses in front of the payload.

        Behind a NAT the peer's TCP/UDP checksum covers its private address: moved by
        the NAT-OA delta, or computed afresh without NAT-OA (RFC 3948 section 3.1.2)."""
        if next_header == IPPROTO_NONE:
            return self._drop(DROP_DUMMY)
        fix = sa.csum_fix
        if fix is not None and (next_header == IPPROTO_UDP or next_header == IPPROTO_TCP):
            if fix == RECOMPUTE:
                payload = recompute_l4_checksum(
                    sa.remote.packed, sa.local.packed, next_header, payload)
            else:
                payload = adjust_l4_checksum(payload, next_header, fix)
            self.counters[COUNT_CSUM_FIXED] += 1
        if sa.version == 4:
            hdr = ipv4_header(sa.remote.packed, sa.local.packed, next_header, len(payload))
        else:
            hdr = ipv6_header(sa.remote.packed, sa.local.packed, next_header, len(payload))
        self.tun.append(hdr + payload)
        return OK

    def _unknown_spi(self, esp: bytes, src: str, sport: int, now: float) -> str:
        """Count always; report at most ``burst`` a second, once per interval per (SPI, src)."""
        spi = int.from_bytes(esp[:4], "big")
        if now - self._unknown_window >= 1.0:
            self._unknown_window = now
            self._unknown_count = 0
        if self._unknown_count < self.unknown_spi_burst:
            key = (spi, src)
            last = self._unknown_seen.get(key)
            if last is None or now - last >= self.unknown_spi_interval:
                if len(self._unknown_seen) >= 4096:
                    self._unknown_seen.clear()
                self._unknown_seen[key] = now
                self._unknown_count += 1
                self.events.append(UnknownSPI(spi, src, sport))
        return self._drop(DROP_UNKNOWN_SPI)

    def inbound_ip(self, packet: bytes, now: float) -> str:
        """Handle a whole received IP packet: ESP (protocol 50) or ESP-in-UDP.

        For raw sockets (an IPv4 raw socket delivers the IP header) and tests.
        UDP payloads starting with the 4-byte non-ESP marker (IKE) and NAT-T
        keepalives are not ESP: they belong to the IKE port.
        """
        try:
            version = packet[0] >> 4
            if version == 4:
                ihl = (packet[0] & 0x0F) * 4
                if ihl < 20 or len(packet) < ihl:
                    return self._drop(DROP_BAD_PACKET)
                proto = packet[9]
                src = "%d.%d.%d.%d" % tuple(packet[12:16])
            elif version == 6:
                ihl = 40
                if len(packet) < ihl:
                    return self._drop(DROP_BAD_PACKET)
                proto = packet[6]
                src = _ntop(packet[8:24])
            else:
                return self._drop(DROP_BAD_PACKET)
        except IndexError:
            return self._drop(DROP_BAD_PACKET)
        if proto == IPPROTO_ESP:
            return self.inbound(packet[ihl:], src, 0, now)
        if proto == IPPROTO_UDP and len(packet) >= ihl + 8:
            sport = int.from_bytes(packet[ihl:ihl + 2], "big")
            payload = packet[ihl + 8:]
            if classify_natt(payload) is not NattKind.ESP:
                self.counters[NOT_ESP] += 1
                return NOT_ESP
            return self.inbound(payload, src, sport, now)
        self.counters[NOT_ESP] += 1
        return NOT_ESP

    # ------------------------------------------------------------------
    # timers and status

    def get_timer(self) -> float | None:
        """The next time-based SA limit, or None."""
        deadlines = [d for d in (sa.next_deadline for sa in self.sad) if d is not None]
        return min(deadlines) if deadlines else None

    def handle_timer(self, now: float) -> None:
        """Apply time limits; purge SAs that are dead (their HardExpire is in ``events``)."""
        for sa in self.sad:
            sa.expire(now)
            if sa.dead:
                self.sad.remove(sa)

    def _drop(self, reason: str) -> str:
        self.counters[reason] = self.counters.get(reason, 0) + 1
        return reason

    def eroute_listing(self) -> list[str]:
        """``ipsec eroute`` output."""
        return self.eroutes.listing()

    def status_lines(self, now: float) -> list[str]:
        """SAs (``ipsec spi`` style) and non-zero counters, for ``ipsec auto --status``/barf."""
        lines = [sa.describe(now) for sa in self.sad]
        lines += [f"{name}: {count}" for name, count in self.counters.items() if count]
        return lines

    def sa(self, said: Said | str, direction: str | None = None) -> SecurityAssociation | None:
        """The SA for a SAID (object or ``tun0x...@...`` text)."""
        target = parse_target(said) if isinstance(said, str) else said
        if not isinstance(target, Said):
            raise SAError(f"{said!r} is a magic SAID, not an SA")
        return self.sad.get(target, direction)

