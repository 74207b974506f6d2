"""fswan's proposals (``ike=``/``esp=``, :mod:`fswan.suites`) as IKEv2 SA payloads, and back.

Pure.  The ``ike=``/``esp=`` grammar stays in :mod:`fswan.suites` (one
grammar for both IKE versions); this module maps its names to RFC 7296
transforms and makes the choices of both roles:

* an IKE proposal is ENCR (+ Key Length for AES), PRF, INTEG (none for an
  AEAD cipher, RFC 5282 / RFC 7634) and DH; an ESP proposal is ENCR
  (+ Key Length), INTEG (none for AES-GCM), DH only with PFS, and always
  ESN = NO_ESN (the data plane has 32-bit sequence numbers);
* we send one IKEv2 proposal per fswan proposal, numbered from 1, so that
  our order is our preference;
* as responder we pick the first of *our* proposals that one of the peer's
  proposals allows (a peer proposal may list several transforms of a type;
  each type we need must have a match), and answer with exactly one
  transform per type; the KE payload's group is the caller's business
  (INVALID_KE_PAYLOAD when it is not the chosen proposal's group);
* as initiator we take the responder's one proposal only if it is exactly
  one of ours;
* a transform carrying an attribute other than Key Length is not matched
  (RFC 7296 3.3.6), nor a peer proposal with a transform type we do not
  know unless it offers NONE (0) for it.
"""

from __future__ import annotations

from collections.abc import Sequence

from fswan.ike.crypto import split_keymat
from fswan.ikev2.constants import (
    DhGroup,
    EncrId,
    EsnId,
    IntegId,
    PrfId,
    ProtocolId,
    TransformAttr,
    TransformType,
    coerce,
)
from fswan.ikev2.crypto import IkeSuite
from fswan.ikev2.payloads import Attribute, Proposal, SecurityAssociation, Transform
from fswan.suites import ESP_CIPHERS, IKE_CIPHERS, EspKeys, EspProposal, IkeProposal, ProposalError

__all__ = [
    "accept_esp",
    "accept_ike",
    "child_keys",
    "choose_esp",
    "choose_ike",
    "describe_esp",
    "describe_ike",
    "esp_proposals",
    "ike_proposals",
    "ike_suite",
    "ikev2_usable",
]

#: fswan cipher name -> IKEv2 encryption transform (the same IANA numbers ESP uses)
_ENCR: dict[str, EncrId] = {
    "aes_cbc": EncrId.AES_CBC,
    "3des_cbc": EncrId.TRIPLE_DES,
    "aes_gcm_16": EncrId.AES_GCM_16,
    "aes_gcm_12": EncrId.AES_GCM_12,
    "aes_gcm_8": EncrId.AES_GCM_8,
    "chacha20poly1305": EncrId.CHACHA20_POLY1305,
}
#: hash name -> PRF_HMAC_*
_PRF: dict[str, PrfId] = {
    "md5": PrfId.HMAC_MD5,
    "sha1": PrfId.HMAC_SHA1,
    "sha2_256": PrfId.HMAC_SHA2_256,
    "sha2_384": PrfId.HMAC_SHA2_384,
    "sha2_512": PrfId.HMAC_SHA2_512,
}
#: hash name -> AUTH_HMAC_* truncated as RFC 2403/2404/4868 say (IKE SA and ESP alike)
_INTEG: dict[str, IntegId] = {
    "md5": IntegId.HMAC_MD5_96,
    "sha1": IntegId.HMAC_SHA1_96,
    "sha2_256": IntegId.HMAC_SHA2_256_128,
    "sha2_384": IntegId.HMAC_SHA2_384_192,
    "sha2_512": IntegId.HMAC_SHA2_512_256,
}
#: names in log lines, strongSwan's where the IANA name differs
_ENCR_LOG = {EncrId.TRIPLE_DES: "3DES_CBC"}


# ---------------------------------------------------------------------------
# fswan proposal -> transforms


def _encr(cipher: str, key_bits: int, variable_key: bool) -> Transform:
    """ENCR with a Key Length attribute for variable-key ciphers only (RFC 7634: none for ChaCha)."""
    attributes = (Attribute(TransformAttr.KEY_LENGTH, key_bits),) if variable_key else ()
    return Transform(TransformType.ENCR, _ENCR[cipher], attributes)


def _ike_transforms(p: IkeProposal) -> tuple[Transform, ...]:
    """ENCR, INTEG (not for AEAD), PRF, DH: the order charon sends (order carries no meaning)."""
    found = [_encr(p.cipher, p.key_bits, p.cipher_algorithm.variable_key)]
    if p.integrity is not None:
        found.append(Transform(TransformType.INTEG, _INTEG[p.integrity]))
    found.append(Transform(TransformType.PRF, _PRF[p.prf_hash]))
    found.append(Transform(TransformType.DH, coerce(DhGroup, p.group)))
    return tuple(found)


def _esp_transforms(p: EspProposal, pfs_group: int | None) -> tuple[Transform, ...]:
    found = [_encr(p.cipher, p.key_bits, p.cipher_algorithm.variable_key)]
    if p.integrity is not None:
        found.append(Transform(TransformType.INTEG, _INTEG[p.integrity]))
    if pfs_group is not None:
        found.append(Transform(TransformType.DH, coerce(DhGroup, pfs_group)))
    found.append(Transform(TransformType.ESN, EsnId.NO_ESN))
    return tuple(found)


def ike_suite(p: IkeProposal) -> IkeSuite:
    """What the chosen proposal fixes for SK and the IKE SA's keys."""
    integ = IntegId.NONE if p.integrity is None else _INTEG[p.integrity]
    return IkeSuite(_ENCR[p.cipher], p.key_bits, _PRF[p.prf_hash], integ)


def ikev2_usable(p: IkeProposal) -> bool:
    """IKEv2's SK can run this suite (not 3DES: :class:`IkeSuite` has AES-CBC, GCM, ChaCha)."""
    try:
        ike_suite(p)
    except (KeyError, ValueError):
        return False
    return True


def ike_proposals(proposals: Sequence[IkeProposal], spi: bytes = b"") -> SecurityAssociation:
    """Our IKE SA payload: one proposal per usable IkeProposal, numbered from 1.

    ``spi`` is empty in IKE_SA_INIT, our new 8-byte SPI in a rekey.  Raises
    ProposalError (a ValueError) naming ``ike=`` when no proposal is usable."""
    usable = [p for p in proposals if ikev2_usable(p)]
    if not usable:
        names = ", ".join(str(p) for p in proposals) or "none"
        raise ProposalError(f"ike=: no proposal IKEv2 can use ({names}); "
                            "IKEv2 has AES-CBC, AES-GCM and ChaCha20-Poly1305")
    return SecurityAssociation(tuple(
        Proposal(number, ProtocolId.IKE, spi, _ike_transforms(p))
        for number, p in enumerate(usable, start=1)
    ))


def esp_proposals(proposals: Sequence[EspProposal], spi: int, pfs_group: int | None) -> SecurityAssociation:
    """Our Child SA payload: one ESP proposal per EspProposal, our inbound ``spi``, DH only with PFS."""
    spi_bytes = spi.to_bytes(4, "big")
    return SecurityAssociation(tuple(
        Proposal(number, ProtocolId.ESP, spi_bytes, _esp_transforms(p, pfs_group))
        for number, p in enumerate(proposals, start=1)
    ))


# ---------------------------------------------------------------------------
# matching


def _same(ours: Transform, theirs: Transform) -> bool:
    """Same transform: type, ID and attributes (only Key Length is known; RFC 7296 3.3.6)."""
    if theirs.type != ours.type or theirs.id != ours.id:
        return False
    if any(a.type != TransformAttr.KEY_LENGTH for a in theirs.attributes):
        return False
    return theirs.key_length == ours.key_length


def _allows(offer: Proposal, wanted: tuple[Transform, ...], optional: frozenset[int]) -> bool:
    """The peer's proposal ``offer`` allows exactly ``wanted`` (one per type).

    A type we do not put in ``wanted`` is fine when the peer does not offer it,
    or offers NONE (0) for it; ``optional`` types (ESN) are also fine absent."""
    types = {t.type for t in wanted}
    for transform in wanted:
        offered = offer.transforms_of(TransformType(transform.type))
        if not offered and transform.type in optional:
            continue
        if not any(_same(transform, t) for t in offered):
            return False
    for other in {t.type for t in offer.transforms} - types:
        if not any(t.id == 0 for t in offer.transforms if t.type == other):
            return False
    return True


def _reply(offer: Proposal, wanted: tuple[Transform, ...]) -> Proposal:
    """Our answer to ``offer``: its number, the transforms chosen (ESN only if the peer sent one)."""
    present = {t.type for t in offer.transforms}
    chosen = tuple(t for t in wanted if t.type in present or t.type != TransformType.ESN)
    return Proposal(offer.number, offer.protocol, b"", chosen)


def _exactly(reply: SecurityAssociation, protocol: ProtocolId) -> Proposal | None:
    """The responder's one proposal, with at most one transform of each type; else None."""
    if len(reply.proposals) != 1:
        return None
    proposal = reply.proposals[0]
    kinds = [t.type for t in proposal.transforms]
    if proposal.protocol != protocol or len(kinds) != len(set(kinds)):
        return None
    return proposal


def choose_ike(offered: SecurityAssociation, ours: Sequence[IkeProposal]) -> tuple[Proposal, IkeProposal] | None:
    """Responder: the first of our proposals one of the peer's allows, and the reply proposal.

    The reply has the peer's proposal number, one transform per type and our
    DH group; its SPI is empty (a rekey's caller puts our new SPI in).  None
    when nothing matches (NO_PROPOSAL_CHOSEN)."""
    peer = [p for p in offered.proposals if p.protocol == ProtocolId.IKE]
    for mine in ours:
        if not ikev2_usable(mine):
            continue
        wanted = _ike_transforms(mine)
        for offer in peer:
            if _allows(offer, wanted, frozenset()):
                return _reply(offer, wanted), mine
    return None


def accept_ike(reply: SecurityAssociation, ours: Sequence[IkeProposal]) -> IkeProposal | None:
    """Initiator: the IkeProposal the responder chose, if its one proposal is exactly one of ours."""
    proposal = _exactly(reply, ProtocolId.IKE)
    if proposal is None:
        return None
    for mine in ours:
        if ikev2_usable(mine) and _exact_match(proposal, _ike_transforms(mine)):
            return mine
    return None


def _exact_match(proposal: Proposal, wanted: tuple[Transform, ...], optional: frozenset[int] = frozenset()) -> bool:
    """``proposal`` holds exactly ``wanted`` (``optional`` types may be absent; INTEG/DH may be NONE)."""
    got = {t.type: t for t in proposal.transforms}
    want = {t.type: t for t in wanted}
    for kind, transform in got.items():
        if kind not in want:
            if transform.id != 0:  # INTEG NONE with AEAD, DH NONE without PFS
                return False
        elif not _same(want[kind], transform):
            return False
    return all(kind in got or kind in optional for kind in want)


def choose_esp(
    offered: SecurityAssociation, ours: Sequence[EspProposal], pfs_group: int | None
) -> tuple[Proposal, EspProposal, int] | None:
    """Responder: the first of our ESP proposals one of the peer's allows.

    Returns the reply proposal (its SPI empty: the caller puts our inbound SPI
    in), our EspProposal, and the peer's SPI (its inbound, our outbound).
    With ``pfs_group`` the peer must offer that DH group; without, none (or NONE)."""
    peer = [p for p in offered.proposals if p.protocol == ProtocolId.ESP and len(p.spi) == 4]
    for mine in ours:
        wanted = _esp_transforms(mine, pfs_group)
        for offer in peer:
            if _allows(offer, wanted, frozenset({TransformType.ESN})):
                return _reply(offer, wanted), mine, int.from_bytes(offer.spi, "big")
    return None


def accept_esp(
    reply: SecurityAssociation, ours: Sequence[EspProposal], pfs_group: int | None
) -> tuple[EspProposal, int] | None:
    """Initiator: our EspProposal the responder chose and its SPI, if its one proposal is ours."""
    proposal = _exactly(reply, ProtocolId.ESP)
    if proposal is None or len(proposal.spi) != 4:
        return None
    for mine in ours:
        if _exact_match(proposal, _esp_transforms(mine, pfs_group), frozenset({TransformType.ESN})):
            return mine, int.from_bytes(proposal.spi, "big")
    return None


# ---------------------------------------------------------------------------
# Child SA keys and log names


def child_keys(proposal: EspProposal, keymat: bytes, initiator: bool) -> tuple[EspKeys, EspKeys]:
    """(inbound, outbound) ESP keys from KEYMAT (RFC 7296 2.17).

    KEYMAT is the initiator-to-responder encryption key (for AES-GCM with its
    4-byte salt, RFC 4106), its integrity key, then the same for responder to
    initiator: ``2 * proposal.keymat_length`` bytes."""
    size = proposal.keymat_length
    if len(keymat) < 2 * size:
        raise ValueError(f"KEYMAT is {len(keymat)} bytes; {2 * size} required for {proposal}")
    i_to_r = split_keymat(proposal, keymat[:size])
    r_to_i = split_keymat(proposal, keymat[size:2 * size])
    return (r_to_i, i_to_r) if initiator else (i_to_r, r_to_i)


def _encr_name(cipher: str, key_bits: int, variable_key: bool) -> str:
    encr = _ENCR[cipher]
    name = _ENCR_LOG.get(encr, encr.name)
    return f"{name}_{key_bits}" if variable_key else name


def _group_name(group: int) -> str:
    try:
        return DhGroup(group).name
    except ValueError:
        return f"DH_{group}"


def describe_ike(p: IkeProposal) -> str:
    """strongSwan-style: ``AES_CBC_256/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048``."""
    parts = [_encr_name(p.cipher, p.key_bits, IKE_CIPHERS[p.cipher].variable_key)]
    if p.integrity is not None:
        parts.append(_INTEG[p.integrity].name)
    parts += [f"PRF_{_PRF[p.prf_hash].name}", _group_name(p.group)]
    return "/".join(parts)


def describe_esp(p: EspProposal, pfs_group: int | None) -> str:
    """strongSwan-style: ``AES_GCM_16_256``, ``AES_CBC_128/HMAC_SHA2_256_128/MODP_2048``."""
    parts = [_encr_name(p.cipher, p.key_bits, ESP_CIPHERS[p.cipher].variable_key)]
    if p.integrity is not None:
        parts.append(_INTEG[p.integrity].name)
    if pfs_group is not None:
        parts.append(_group_name(pfs_group))
    return "/".join(parts)
