"""The SAD: one entry per ESP SA direction, as KLIPS's ``ipsec_sa``.

Rules of this module:

* An SA is built once (transform, replay window, outer-header template,
  selector masks, lifetime thresholds) so that :meth:`SecurityAssociation.encap`
  and :meth:`SecurityAssociation.decap` do a handful of attribute reads and
  integer comparisons around the crypto call.
* Lifetimes (seconds, bytes, packets; soft and hard, any may be absent) are
  checked against one precomputed "next threshold" per kind, so an SA far
  from its limits pays three comparisons per packet.  Crossing a soft limit
  emits :class:`SoftExpire` once (the engine rekeys); crossing a hard limit
  emits :class:`HardExpire` once and the SA refuses all further packets.
* Outbound sequence numbers never cycle (RFC 4303 section 3.3.3): nearing
  2^32 (2^64 with ESN) is a soft expiry with reason ``"sequence"``, reaching
  it a hard one.
* Events are appended to ``sa.events``, a list the data plane shares among
  its SAs; nothing here logs, reads a clock or touches I/O.
* Inbound SAs are found by SPI alone (we chose them, so they are unique):
  one dict lookup.  Outbound SAs are found by SAID (SPI, destination), since
  two peers may pick the same SPI.  A clash is :class:`SAError` with KLIPS's
  words, "SA already in use".
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass
from typing import Any, Iterator, Literal, Union

from fswan.ipsec.esp import EspError, EspTransform, make_transform
from fswan.ipsec.packet import Ipv4Outer, Ipv6Outer, checksum_delta
from fswan.ipsec.replay import DUPLICATE, ReplayWindow
from fswan.suites import EspKeys, EspProposal

__all__ = [
    "DROP_EXPIRED",
    "DROP_REPLAY",
    "DROP_TOO_OLD",
    "IN",
    "KIND_ESP",
    "KIND_ESP_UDP",
    "KIND_IP",
    "OUT",
    "HardExpire",
    "Lifetimes",
    "SADatabase",
    "SAError",
    "Said",
    "SecurityAssociation",
    "SoftExpire",
    "sa_pair_from_child",
]

IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]
IPNetwork = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]

IN = "in"
OUT = "out"

#: what an output datagram is, for the pump (see ``dataplane.py``)
KIND_ESP = 0  #: an ESP packet for a raw IPPROTO_ESP socket, to (peer, 0)
KIND_ESP_UDP = 1  #: an ESP packet for the UDP 4500 socket, to (peer, port) (RFC 3948)
KIND_IP = 2  #: a complete IP packet for an IP_HDRINCL raw socket, to (dst, 0)
#: ``csum_fix`` of an SA whose peer sent no NAT-OA: inbound checksums are computed afresh
RECOMPUTE = -1

DROP_EXPIRED = "SA expired"
DROP_REPLAY = "replayed"
DROP_TOO_OLD = "replay window too old"

#: soft-expire this many sequence numbers before the counter would cycle
SEQ_SOFT_MARGIN = 1 << 20
_INF = math.inf


@dataclass(frozen=True)
class Said:
    """An SA ID: protocol prefix, SPI and the SA's destination (KLIPS ``satot``).

    ``tun`` names a tunnel-mode SA (KLIPS grouped an IPIP SA in front of the
    ESP one), ``esp`` a transport-mode one; both find the same ESP SA here.
    """

    proto: Literal["esp", "tun"]
    spi: int
    dst: IPAddress

    def __str__(self) -> str:
        return f"{self.proto}0x{self.spi:x}@{self.dst}"

    @property
    def dotted(self) -> str:
        """The ``esp.a1b2c3d4@192.0.2.2`` form pluto's status uses."""
        return f"{self.proto}.{self.spi:x}@{self.dst}"

    @classmethod
    def parse(cls, text: str) -> "Said":
        """``tun0x130@192.0.2.2`` or ``esp.130@...`` back into a Said."""
        head, sep, dst = text.partition("@")
        if not sep:
            raise ValueError(f"SAID {text!r} has no @destination")
        for proto in ("esp", "tun"):
            if head.startswith(proto):
                rest = head[3:]
                if rest.startswith("0x"):
                    spi = int(rest[2:], 16)
                elif rest[:1] in (".", ":"):
                    spi = int(rest[1:], 16)
                else:
                    break
                return cls(proto, spi, ipaddress.ip_address(dst))  # type: ignore[arg-type]
        raise ValueError(f"SAID {text!r} is not esp0xSPI@dst or tun0xSPI@dst")


@dataclass(frozen=True)
class Lifetimes:
    """Soft (rekey) and hard (delete) limits; None means unlimited."""

    soft_seconds: float | None = None
    hard_seconds: float | None = None
    soft_bytes: int | None = None
    hard_bytes: int | None = None
    soft_packets: int | None = None
    hard_packets: int | None = None


@dataclass(frozen=True)
class SoftExpire:
    """An SA crossed a soft limit: time to rekey.  Emitted once per SA."""

    spi: int
    direction: str
    said: Said
    #: "time", "bytes", "packets" or "sequence"
    reason: str


@dataclass(frozen=True)
class HardExpire:
    """An SA crossed a hard limit and carries no more packets.  Emitted once per SA."""

    spi: int
    direction: str
    said: Said
    #: "time", "bytes", "packets" or "sequence"
    reason: str


class SAError(ValueError):
    """An SAD operation that cannot be done (clash, unknown SA)."""


def _net(value: Any, default: IPAddress) -> IPNetwork:
    if value is None:
        return ipaddress.ip_network(default)
    return ipaddress.ip_network(value, strict=False)


def _or_inf(value: float | int | None, base: float = 0) -> float:
    return _INF if value is None else base + value


class SecurityAssociation:
    """One direction of an ESP SA: transform, sequence/replay state, limits, counters."""

    __slots__ = (
        "direction", "spi", "said", "local", "remote", "local_port", "remote_port",
        "udp_encap", "mode", "tunnel", "esp", "esn", "replay", "lifetimes", "hidetos",
        "disablearrivalcheck",
        "local_client", "remote_client", "conn", "serial",
        "added", "last_used", "bytes", "packets", "drops", "seq", "seq_max",
        "soft_expired", "dead", "expired_reason", "events",
        "kind", "sendto", "outer", "inner_mtu", "path_mtu", "version",
        "sel_version", "lnet", "lmask", "rnet", "rmask", "nat_oa", "csum_fix",
        "_soft", "_hard", "_check_time", "_check_bytes", "_check_packets", "_check_seq",
    )

    def __init__(
        self,
        *,
        direction: str,
        spi: int,
        local: IPAddress | str,
        remote: IPAddress | str,
        proposal: EspProposal | None = None,
        keys: EspKeys | None = None,
        transform: EspTransform | None = None,
        local_port: int = 500,
        remote_port: int = 500,
        udp_encap: bool = False,
        mode: str = "tunnel",
        local_client: IPNetwork | str | None = None,
        remote_client: IPNetwork | str | None = None,
        lifetimes: Lifetimes = Lifetimes(),
        replay_window: int = 64,
        esn: bool = False,
        hidetos: bool = True,
        disablearrivalcheck: bool = False,
        path_mtu: int = 1500,
        now: float = 0.0,
        conn: str | None = None,
        serial: int | None = None,
        nat_oa: tuple[IPAddress, IPAddress] | None = None,
    ) -> None:
        if direction not in (IN, OUT):
            raise ValueError(f"direction must be {IN!r} or {OUT!r}")
        if mode not in ("tunnel", "transport"):
            raise ValueError("mode must be 'tunnel' or 'transport'")
        self.direction = direction
        self.spi = spi
        self.local = ipaddress.ip_address(local)
        self.remote = ipaddress.ip_address(remote)
        if self.local.version != self.remote.version:
            raise ValueError("local and remote addresses are of different families")
        self.version = self.local.version
        self.local_port = local_port
        self.remote_port = remote_port
        self.udp_encap = udp_encap
        self.mode = mode
        self.tunnel = mode == "tunnel"
        if transform is None:
            if proposal is None or keys is None:
                raise ValueError("an SA needs a transform, or a proposal and keys")
            transform = make_transform(proposal, keys, spi, esn=esn)
        self.esp = transform
        self.esn = transform.esn
        self.replay = ReplayWindow(replay_window, self.esn) if direction == IN else None
        self.lifetimes = lifetimes
        self.hidetos = hidetos
        #: skip the inbound "inner packet must match the selectors" check
        self.disablearrivalcheck = disablearrivalcheck
        self.local_client = _net(local_client, self.local)
        self.remote_client = _net(remote_client, self.remote)
        if self.local_client.version != self.remote_client.version:
            raise ValueError("local and remote clients are of different families")
        self.sel_version = self.local_client.version
        #: selector nets and masks as ints, for the per-packet arrival check
        self.lnet = int(self.local_client.network_address)
        self.lmask = int(self.local_client.netmask)
        self.rnet = int(self.remote_client.network_address)
        self.rmask = int(self.remote_client.netmask)
        self.conn = conn
        self.serial = serial
        #: the peer's NAT-OA (its own address, ours as it sees them), RFC 3947
        self.nat_oa = nat_oa
        #: inbound UDP-encapsulated transport mode (RFC 3948 section 3.1.2): the
        #: checksum delta from the NAT-OA addresses to ours, RECOMPUTE without
        #: NAT-OA, None when the checksums need nothing
        self.csum_fix = self._checksum_fix() if direction == IN else None
        dst = self.remote if direction == OUT else self.local
        self.said = Said("tun" if self.tunnel else "esp", spi, dst)

        self.added = now
        self.last_used: float | None = None
        self.bytes = 0
        self.packets = 0
        self.drops = 0
        self.seq = 0
        self.seq_max = (1 << 64) - 1 if self.esn else (1 << 32) - 1
        self.soft_expired = False
        self.dead = False
        self.expired_reason: str | None = None
        self.events: list[Any] = []

        self.kind = KIND_ESP_UDP if udp_encap else KIND_ESP
        self.sendto = (str(self.remote), remote_port if udp_encap else 0)
        ports = (local_port, remote_port) if udp_encap else None
        if self.version == 4:
            self.outer: Ipv4Outer | Ipv6Outer = Ipv4Outer(
                self.local.packed, self.remote.packed, udp_ports=ports
            )
        else:
            self.outer = Ipv6Outer(self.local.packed, self.remote.packed, udp_ports=ports)
        self.set_path_mtu(path_mtu)

        lt = lifetimes
        self._soft = (
            _or_inf(lt.soft_seconds, now), _or_inf(lt.soft_bytes), _or_inf(lt.soft_packets),
            self.seq_max - SEQ_SOFT_MARGIN if direction == OUT else _INF,
        )
        self._hard = (
            _or_inf(lt.hard_seconds, now), _or_inf(lt.hard_bytes), _or_inf(lt.hard_packets),
            self.seq_max if direction == OUT else _INF,
        )
        self._set_checks()

    # ------------------------------------------------------------------
    # configuration

    def _checksum_fix(self) -> int | None:
        """The peer computed its TCP/UDP checksums over the addresses it knows (its
        private one, ours as it sees us); we rebuild the IP header from the ones we see."""
        if self.tunnel or not self.udp_encap:
            return None
        if self.nat_oa is None:
            return RECOMPUTE
        theirs = b"".join(ipaddress.ip_address(a).packed for a in self.nat_oa)
        if len(theirs) != 2 * len(self.local.packed):
            return RECOMPUTE
        delta = checksum_delta(theirs, self.remote.packed + self.local.packed)
        return delta or None

    def set_path_mtu(self, mtu: int) -> None:
        """Recompute the largest inner packet that fits one outer packet of ``mtu`` bytes."""
        self.path_mtu = mtu
        payload = self.esp.max_payload(mtu - self.outer.overhead)
        # transport mode keeps the original IP header in front of the ESP header
        self.inner_mtu = payload if self.tunnel else payload + (20 if self.version == 4 else 40)

    # ------------------------------------------------------------------
    # per packet

    def encap(self, payload: bytes, next_header: int, now: float) -> bytes | None:
        """The ESP packet for ``payload``, or None when the SA may send no more."""
        if now >= self._check_time:
            self._limits(now)
        if self.dead:
            return None
        seq = self.seq + 1
        self.seq = seq
        data = self.esp.encap(seq, payload, next_header)
        self.bytes += len(payload)
        self.packets += 1
        self.last_used = now
        if (
            self.bytes >= self._check_bytes
            or self.packets >= self._check_packets
            or seq >= self._check_seq
        ):
            self._limits(now)
        return data

    def decap(self, esp: bytes, now: float) -> tuple[int, bytes]:
        """(next header, payload) of an authenticated, fresh packet; else EspError.

        Order per RFC 4303 section 3.4: replay check (read-only), ICV, decrypt,
        then the window moves.
        """
        if now >= self._check_time:
            self._limits(now)
        if self.dead:
            raise EspError(DROP_EXPIRED)
        replay = self.replay  # None on an outbound SA: AttributeError, a caller bug
        seq = replay.check(int.from_bytes(esp[4:8], "big"))  # type: ignore[union-attr]
        if seq < 0:
            raise EspError(DROP_REPLAY if seq == DUPLICATE else DROP_TOO_OLD)
        next_header, payload = self.esp.decap(esp, seq >> 32)
        replay.update(seq)  # type: ignore[union-attr]
        self.bytes += len(payload)
        self.packets += 1
        self.last_used = now
        if self.bytes >= self._check_bytes or self.packets >= self._check_packets:
            self._limits(now)
        return next_header, payload

    def selectors_match(self, version: int, src: int, dst: int) -> bool:
        """KLIPS's tunnel-exit check: inner src in the remote client, dst in ours."""
        return (
            version == self.sel_version
            and src & self.rmask == self.rnet
            and dst & self.lmask == self.lnet
        )

    # ------------------------------------------------------------------
    # lifetimes

    @property
    def next_deadline(self) -> float | None:
        """When the next time-based limit falls due (None: none, or already dead)."""
        if self.dead or self._check_time == _INF:
            return None
        return self._check_time

    def expire(self, now: float) -> None:
        """Apply time limits (the data plane's timer calls this)."""
        if now >= self._check_time:
            self._limits(now)

    def kill(self, reason: str = "deleted") -> None:
        """Make the SA unusable without an event (it was deleted on purpose)."""
        self.dead = True
        self.expired_reason = self.expired_reason or reason

    def _set_checks(self) -> None:
        limits = self._hard if self.soft_expired else tuple(map(min, self._soft, self._hard))
        self._check_time, self._check_bytes, self._check_packets, self._check_seq = limits

    def _crossed(self, limits: tuple[float, float, float, float], now: float) -> str | None:
        if now >= limits[0]:
            return "time"
        if self.bytes >= limits[1]:
            return "bytes"
        if self.packets >= limits[2]:
            return "packets"
        if self.seq >= limits[3]:
            return "sequence"
        return None

    def _limits(self, now: float) -> None:
        if self.dead:
            return
        reason = self._crossed(self._hard, now)
        if reason is not None:
            self.dead = True
            self.expired_reason = reason
            self._check_time = self._check_bytes = self._check_packets = self._check_seq = _INF
            self.events.append(HardExpire(self.spi, self.direction, self.said, reason))
            return
        if not self.soft_expired:
            reason = self._crossed(self._soft, now)
            if reason is not None:
                self.soft_expired = True
                self.events.append(SoftExpire(self.spi, self.direction, self.said, reason))
        self._set_checks()

    # ------------------------------------------------------------------

    def describe(self, now: float) -> str:
        """One ``ipsec spi``-style line for status output."""
        used = "never used" if self.last_used is None else f"used {now - self.last_used:.0f}s ago"
        state = " DEAD" if self.dead else (" soft-expired" if self.soft_expired else "")
        top = self.replay.top if self.replay else 0
        seq = f"seq={self.seq}" if self.direction == OUT else f"top={top}"
        encap = f" natencap={self.remote}:{self.remote_port}" if self.udp_encap else ""
        return (
            f"{self.said} ESP_{self.esp.name}: dir={self.direction} {seq} "
            f"bytes={self.bytes} packets={self.packets} drops={self.drops} "
            f"age={now - self.added:.0f}s {used}{encap}{state}"
        )

    def __repr__(self) -> str:
        dead = " dead" if self.dead else ""
        return f"<SecurityAssociation {self.said} {self.direction} {self.mode}{dead}>"


class SADatabase:
    """Inbound SAs by SPI, outbound SAs by (SPI, destination)."""

    def __init__(self) -> None:
        self.inbound: dict[int, SecurityAssociation] = {}
        self.outbound: dict[tuple[int, IPAddress], SecurityAssociation] = {}

    def add(self, sa: SecurityAssociation) -> None:
        """Install ``sa``; an SPI already in use is an error, as in KLIPS."""
        if sa.direction == IN:
            if sa.spi in self.inbound:
                raise SAError(f"SA:{sa.said} -- SA already in use.  Delete old one first.")
            self.inbound[sa.spi] = sa
        else:
            key = (sa.spi, sa.remote)
            if key in self.outbound:
                raise SAError(f"SA:{sa.said} -- SA already in use.  Delete old one first.")
            self.outbound[key] = sa

    def get(self, said: Said, direction: str | None = None) -> SecurityAssociation | None:
        """The SA for a SAID (outbound first unless ``direction`` says otherwise)."""
        if direction != IN:
            sa = self.outbound.get((said.spi, said.dst))
            if sa is not None or direction == OUT:
                return sa
        sa = self.inbound.get(said.spi)
        if sa is not None and sa.local == said.dst:
            return sa
        return None

    def delete(self, said: Said, direction: str | None = None) -> SecurityAssociation | None:
        """Remove and kill the SA; None if there was none (already expired and purged)."""
        sa = self.get(said, direction)
        if sa is None:
            return None
        self.remove(sa)
        return sa

    def remove(self, sa: SecurityAssociation) -> None:
        if sa.direction == IN:
            if self.inbound.get(sa.spi) is sa:
                del self.inbound[sa.spi]
        elif self.outbound.get((sa.spi, sa.remote)) is sa:
            del self.outbound[(sa.spi, sa.remote)]
        sa.kill()

    def __iter__(self) -> Iterator[SecurityAssociation]:
        yield from list(self.inbound.values())
        yield from list(self.outbound.values())

    def __len__(self) -> int:
        return len(self.inbound) + len(self.outbound)


def sa_pair_from_child(
    child: Any,
    *,
    now: float,
    replay_window: int = 64,
    hidetos: bool = True,
    disablearrivalcheck: bool = False,
    esn: bool = False,
    lifetimes: Lifetimes | None = None,
    path_mtu: int = 1500,
) -> tuple[SecurityAssociation, SecurityAssociation]:
    """(inbound, outbound) SAs for an engine ``ChildSAInstalled`` event (duck-typed).

    Only the hard time lifetime is set by default: pluto rekeys by time
    itself (EVENT_SA_REPLACE), the kernel side only enforces the hard end.
    """
    if lifetimes is None:
        lifetimes = Lifetimes(hard_seconds=child.lifetime_seconds)
    common = dict(
        local=child.local_addr,
        remote=child.remote_addr,
        proposal=child.proposal,
        local_port=child.local_port,
        remote_port=child.remote_port,
        udp_encap=child.udp_encapsulated,
        mode=child.mode,
        local_client=child.local_client,
        remote_client=child.remote_client,
        lifetimes=lifetimes,
        replay_window=replay_window,
        esn=esn,
        hidetos=hidetos,
        disablearrivalcheck=disablearrivalcheck,
        path_mtu=path_mtu,
        now=now,
        conn=child.conn,
        serial=child.serial,
        nat_oa=getattr(child, "nat_oa", None),
    )
    inbound = SecurityAssociation(
        direction=IN, spi=child.inbound_spi, keys=child.inbound_keys, **common
    )
    outbound = SecurityAssociation(
        direction=OUT, spi=child.outbound_spi, keys=child.outbound_keys, **common
    )
    return inbound, outbound
