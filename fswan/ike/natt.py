"""NAT traversal for IKEv1: RFC 3947 (and the drafts peers still send).

Rules of this module:

* Support is announced with vendor IDs in Main Mode messages 1/2 (Aggressive
  1/2).  We send the RFC 3947 VID and the draft-03, draft-02\\n and draft-02
  ones; the responder answers with the single best one both know.  RFC 3947
  wins over the drafts; draft-00/01 (no port float) are not spoken.
* NAT-D payloads carry HASH(CKY-I | CKY-R | IP | port) with the phase-1 hash:
  first the *destination* of the message (the remote end), then the source
  (ours).  On receipt, a first hash that is not our address means *we* are
  behind a NAT; a source hash matching none of what we see the peer as means
  the *peer* is (strongSwan fakes this on purpose: lab/README.md).
* If a NAT is found either way, IKE moves to port 4500 (with the 4-byte
  non-ESP marker) from Main Mode message 5 / Aggressive message 3 on, and
  Quick Mode asks for UDP encapsulation: RFC values 3/4, the draft values
  61443/61444 only when just a draft was negotiated.
* Keepalives (one 0xFF byte every ``keep_alive`` seconds) are sent only by
  the side that is itself behind the NAT: it is the one holding a mapping open.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

from fswan.config.model import IPAddress
from fswan.ike.crypto import digest
from fswan.isakmp.constants import EncapsulationMode, KnownVendor
from fswan.isakmp.payloads import NATDPayload, VendorIDPayload
from fswan.suites import HashAlgorithm

__all__ = [
    "NATT_RFC",
    "NATT_DRAFT",
    "NatResult",
    "detect_nat",
    "encapsulation_mode",
    "natd_hash",
    "natd_payloads",
    "natt_method",
    "our_vendor_ids",
    "read_encapsulation",
    "reply_vendor_ids",
]

NATT_RFC = "rfc"
NATT_DRAFT = "draft"

#: what we announce as initiator, best first
_OUR_NATT_VIDS = (
    KnownVendor.NATT_RFC3947,
    KnownVendor.NATT_DRAFT_03,
    KnownVendor.NATT_DRAFT_02_N,
    KnownVendor.NATT_DRAFT_02,
)
#: drafts with the port float and non-ESP marker (02 onwards)
_DRAFT_VIDS = (KnownVendor.NATT_DRAFT_03, KnownVendor.NATT_DRAFT_02_N, KnownVendor.NATT_DRAFT_02)


def our_vendor_ids(natt: bool = True) -> list[VendorIDPayload]:
    """Vendor IDs for MM1/AI1: NAT-T (all we speak) and DPD (RFC 3706)."""
    vids = [VendorIDPayload.of(v) for v in _OUR_NATT_VIDS] if natt else []
    vids.append(VendorIDPayload.of(KnownVendor.DPD))
    return vids


def natt_method(vendors: Iterable[KnownVendor | None]) -> str | None:
    """The NAT-T flavour a peer's vendor IDs allow: "rfc", "draft" or None."""
    seen = set(vendors)
    if KnownVendor.NATT_RFC3947 in seen:
        return NATT_RFC
    if any(v in seen for v in _DRAFT_VIDS):
        return NATT_DRAFT
    return None


def reply_vendor_ids(
    vendors: Iterable[KnownVendor | None], natt: bool = True
) -> list[VendorIDPayload]:
    """Vendor IDs for MR1/AR1: the single best NAT-T VID both know, and DPD."""
    seen = set(vendors)
    vids = []
    if natt:
        for vid in _OUR_NATT_VIDS:
            if vid in seen:
                vids.append(VendorIDPayload.of(vid))
                break
    vids.append(VendorIDPayload.of(KnownVendor.DPD))
    return vids


def natd_hash(
    h: HashAlgorithm, icookie: bytes, rcookie: bytes, address: IPAddress, port: int
) -> bytes:
    """HASH(CKY-I | CKY-R | IP | Port) (RFC 3947 section 3.2)."""
    return digest(h, icookie + rcookie + address.packed + port.to_bytes(2, "big"))


def natd_payloads(
    method: str,
    h: HashAlgorithm,
    icookie: bytes,
    rcookie: bytes,
    remote: tuple[IPAddress, int],
    local: tuple[IPAddress, int],
) -> list[NATDPayload]:
    """The two NAT-D payloads: the destination's hash first, then the source's."""
    draft = method == NATT_DRAFT
    return [
        NATDPayload(natd_hash(h, icookie, rcookie, *remote), draft),
        NATDPayload(natd_hash(h, icookie, rcookie, *local), draft),
    ]


@dataclass(frozen=True)
class NatResult:
    """What the NAT-D payloads of one message told us."""

    #: our address/port is not what the peer sent to: we are behind a NAT
    us: bool
    #: the peer's source is not what it said it was: the peer is behind a NAT
    peer: bool

    @property
    def any(self) -> bool:
        return self.us or self.peer

    def describe(self) -> str:
        if self.us and self.peer:
            return "both are behind NAT"
        if self.us:
            return "we are behind NAT"
        if self.peer:
            return "peer is behind NAT"
        return "no NAT detected"


def detect_nat(
    h: HashAlgorithm,
    icookie: bytes,
    rcookie: bytes,
    received: Sequence[NATDPayload],
    local: tuple[IPAddress, int],
    remote: tuple[IPAddress, int],
) -> NatResult:
    """Compare the peer's NAT-D hashes with what we see (RFC 3947 section 3.2).

    ``received[0]`` is the hash of where the peer sent to (us); the rest are
    the addresses it sent from.
    """
    if not received:
        return NatResult(False, False)
    ours = natd_hash(h, icookie, rcookie, *local)
    theirs = natd_hash(h, icookie, rcookie, *remote)
    us = received[0].hash != ours
    peer = all(p.hash != theirs for p in received[1:]) if len(received) > 1 else True
    return NatResult(us, peer)


def encapsulation_mode(tunnel: bool, udp: bool, method: str | None) -> int:
    """The Encapsulation Mode attribute value to propose."""
    if not udp:
        return EncapsulationMode.TUNNEL if tunnel else EncapsulationMode.TRANSPORT
    if method == NATT_DRAFT:
        return (
            EncapsulationMode.UDP_TUNNEL_DRAFT if tunnel else EncapsulationMode.UDP_TRANSPORT_DRAFT
        )
    return EncapsulationMode.UDP_TUNNEL if tunnel else EncapsulationMode.UDP_TRANSPORT


def read_encapsulation(value: int | None) -> tuple[bool, bool] | None:
    """(tunnel, udp) for an Encapsulation Mode value, None if unknown.

    RFC 2407 section 4.5: an absent attribute means transport mode; we are
    stricter and ask callers to treat None as "not acceptable" for tunnels.
    """
    table: dict[int, tuple[bool, bool]] = {
        EncapsulationMode.TUNNEL: (True, False),
        EncapsulationMode.TRANSPORT: (False, False),
        EncapsulationMode.UDP_TUNNEL: (True, True),
        EncapsulationMode.UDP_TRANSPORT: (False, True),
        EncapsulationMode.UDP_TUNNEL_DRAFT: (True, True),
        EncapsulationMode.UDP_TRANSPORT_DRAFT: (False, True),
    }
    if value is None:
        return None
    return table.get(int(value))


def acceptable_modes(tunnel: bool, natt: str | None) -> list[int]:
    """Encapsulation values a responder accepts for a conn of this type.

    Plain tunnel/transport always; the UDP ones (RFC and draft numbers) when
    NAT-T was negotiated in phase 1.
    """
    modes = [EncapsulationMode.TUNNEL if tunnel else EncapsulationMode.TRANSPORT]
    if natt is not None:
        if tunnel:
            modes += [EncapsulationMode.UDP_TUNNEL, EncapsulationMode.UDP_TUNNEL_DRAFT]
        else:
            modes += [EncapsulationMode.UDP_TRANSPORT, EncapsulationMode.UDP_TRANSPORT_DRAFT]
    return [int(m) for m in modes]
