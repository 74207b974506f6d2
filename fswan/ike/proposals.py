"""SA payloads: building ours, choosing from a peer's, checking a peer's choice.

Rules of this module:

* Pure: SA payloads in, choices out.  Nothing here logs; a failure raises
  :class:`NoAcceptableProposal` carrying pluto's headline (``no acceptable
  Oakley Transform`` / ``no acceptable Proposal in IPsec SA``) and a second
  line with *both* sides' lists, because a mismatch is only debuggable when
  you can see what each end wanted.  Refusals on principle (single DES) are
  ``notes``: the engine logs them (``OAKLEY_DES_CBC is not supported``) and
  the transform is skipped.
* We propose all our transforms in one proposal (pluto's layout), in the
  order of ``ike=``/``esp=``.  As responder we take the *peer's* order: the
  first of its transforms that equals one of ours wins, and the reply echoes
  that transform byte for byte (RFC 2408 section 4.2).
* Lifetimes are seconds.  A responder accepts a peer's lifetime up to its
  own and caps a longer one locally (pluto's behaviour; the reply still
  echoes the transform as proposed).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Iterable, Sequence

from fswan.ike.dh import GROUPS
from fswan.isakmp.attributes import Attribute
from fswan.isakmp.constants import (
    DOI,
    EncapsulationMode,
    EspTransformId,
    IPsecAttr,
    IsakmpTransformId,
    OakleyAttr,
    OakleyAuth,
    OakleyEncryption,
    OakleyGroup,
    OakleyHash,
    OakleyLifeType,
    ProtocolId,
    SALifeType,
    coerce,
    name_of,
)
from fswan.isakmp.payloads import Proposal, SAPayload, Transform
from fswan.suites import (
    ESP_CIPHERS,
    EspProposal,
    IkeProposal,
    UnsupportedAlgorithm,
    esp_cipher_by_id,
    esp_integrity_by_id,
    format_proposal,
    hash_by_id,
    ike_cipher_by_id,
)

__all__ = [
    "EspChoice",
    "IkeChoice",
    "NoAcceptableProposal",
    "NO_IKE_PROPOSAL",
    "NO_IPSEC_PROPOSAL",
    "accept_esp_reply",
    "accept_ike_reply",
    "auth_methods_of",
    "choose_esp",
    "choose_ike",
    "describe_esp_sa",
    "describe_ike_sa",
    "esp_reply_sa",
    "esp_sa_payload",
    "ike_reply_sa",
    "ike_sa_payload",
]

NO_IKE_PROPOSAL = "no acceptable Oakley Transform"
NO_IPSEC_PROPOSAL = "no acceptable Proposal in IPsec SA"
#: RFC 2407 section 4.5: no SA Life attribute means 28800 seconds
DEFAULT_LIFETIME = 28800.0
_AUTH_NAMES: dict[int, str] = {
    OakleyAuth.OAKLEY_PRESHARED_KEY: "PSK", OakleyAuth.OAKLEY_RSA_SIG: "RSASIG"
}


class NoAcceptableProposal(Exception):
    """Nothing acceptable: ``lines`` are the log lines (headline, then both lists)."""

    def __init__(self, headline: str, ours: str, peers: str, notes: Sequence[str] = ()) -> None:
        super().__init__(headline)
        self.headline = headline
        self.notes = list(notes)
        self.lines = [headline, f"our proposals: {ours}; peer proposed: {peers}"]


@dataclass(frozen=True)
class IkeChoice:
    """The phase-1 transform agreed on."""

    proposal_number: int
    #: the peer's transform exactly as received (echoed in our reply)
    transform: Transform
    ike: IkeProposal
    auth: int
    #: the lifetime we use (capped at ours on the responder)
    lifetime: float
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class EspChoice:
    """The ESP transform agreed on."""

    proposal_number: int
    #: the SPI in the chosen proposal (the initiator's SPI on the responder,
    #: the responder's in a reply)
    spi: int
    transform: Transform
    esp: EspProposal
    lifetime: float
    encapsulation: int
    #: PFS group (None: no PFS)
    group: int | None
    notes: tuple[str, ...] = ()


# --------------------------------------------------------------------------
# phase 1


def _lifetime_attributes(
    life_type_attr: int, duration_attr: int, seconds: float, seconds_value: int
) -> list[Attribute]:
    return [Attribute(life_type_attr, seconds_value), Attribute(duration_attr, int(seconds))]


def ike_transform(number: int, proposal: IkeProposal, auth: int, lifetime: float) -> Transform:
    """One KEY_IKE transform (attribute order as strongSwan sends it)."""
    cipher = proposal.cipher_algorithm
    attributes = [Attribute(OakleyAttr.OAKLEY_ENCRYPTION_ALGORITHM, cipher.oakley_id)]
    if cipher.variable_key:
        attributes.append(Attribute(OakleyAttr.OAKLEY_KEY_LENGTH, proposal.key_bits))
    attributes += [
        Attribute(OakleyAttr.OAKLEY_HASH_ALGORITHM, proposal.hash_algorithm.oakley_id),
        Attribute(OakleyAttr.OAKLEY_GROUP_DESCRIPTION, proposal.group),
        Attribute(OakleyAttr.OAKLEY_AUTHENTICATION_METHOD, int(auth)),
    ]
    attributes += _lifetime_attributes(
        OakleyAttr.OAKLEY_LIFE_TYPE,
        OakleyAttr.OAKLEY_LIFE_DURATION,
        lifetime,
        OakleyLifeType.OAKLEY_LIFE_SECONDS,
    )
    return Transform(number, IsakmpTransformId.KEY_IKE, tuple(attributes))


def ike_sa_payload(
    proposals: Sequence[IkeProposal], auths: Sequence[int], lifetime: float
) -> SAPayload:
    """Our phase-1 SA: one ISAKMP proposal, a transform per (proposal, auth)."""
    transforms: list[Transform] = []
    for auth in auths:
        for proposal in proposals:
            transforms.append(ike_transform(len(transforms) + 1, proposal, auth, lifetime))
    return SAPayload((Proposal(1, ProtocolId.ISAKMP, b"", tuple(transforms)),))


def ike_reply_sa(choice: IkeChoice) -> SAPayload:
    """The responder's SA: the chosen transform, echoed as received."""
    return SAPayload(
        (Proposal(choice.proposal_number, ProtocolId.ISAKMP, b"", (choice.transform,)),)
    )


@dataclass
class _IkeTransform:
    """A peer's phase-1 transform read attribute by attribute."""

    encryption: int | None = None
    key_bits: int | None = None
    hash: int | None = None
    group: int | None = None
    auth: int | None = None
    lifetime: float | None = None
    problems: list[str] = field(default_factory=list)

    def text(self) -> str:
        enc = name_of(coerce(OakleyEncryption, self.encryption)) if self.encryption else "?"
        try:
            cipher = ike_cipher_by_id(self.encryption or 0)
            enc = cipher.log_name
            if cipher.variable_key:
                enc += f"_{self.key_bits or cipher.default_key_bits}"
        except UnsupportedAlgorithm:
            pass
        try:
            integ = hash_by_id(self.hash or 0).log_name
        except UnsupportedAlgorithm:
            integ = name_of(coerce(OakleyHash, self.hash)) if self.hash else "?"
        group = (
            GROUPS[self.group].name
            if self.group in GROUPS
            else (name_of(coerce(OakleyGroup, self.group)) if self.group else "?")
        )
        return f"{enc}-{integ}-{group}"


def _read_lifetime(
    attributes: Iterable[Attribute], type_attr: int, duration_attr: int, seconds_value: int
) -> tuple[float | None, list[str]]:
    """Seconds from LIFE_TYPE/LIFE_DURATION pairs; kilobyte lifetimes are ignored."""
    seconds: float | None = None
    current_type: int | None = None
    problems: list[str] = []
    for attribute in attributes:
        if attribute.type == type_attr:
            current_type = attribute.integer
        elif attribute.type == duration_attr:
            if current_type is None:
                problems.append("life duration without a life type")
            elif current_type == seconds_value:
                seconds = float(attribute.integer)
            current_type = None
    return seconds, problems


def _parse_ike_transform(transform: Transform) -> _IkeTransform:
    parsed = _IkeTransform()
    if transform.id != IsakmpTransformId.KEY_IKE:
        parsed.problems.append(f"transform ID {name_of(transform.id)} is not KEY_IKE")
    for attribute in transform.attributes:
        kind = attribute.type
        if kind == OakleyAttr.OAKLEY_ENCRYPTION_ALGORITHM:
            parsed.encryption = attribute.integer
        elif kind == OakleyAttr.OAKLEY_KEY_LENGTH:
            parsed.key_bits = attribute.integer
        elif kind == OakleyAttr.OAKLEY_HASH_ALGORITHM:
            parsed.hash = attribute.integer
        elif kind == OakleyAttr.OAKLEY_GROUP_DESCRIPTION:
            parsed.group = attribute.integer
        elif kind == OakleyAttr.OAKLEY_AUTHENTICATION_METHOD:
            parsed.auth = attribute.integer
        elif kind in (OakleyAttr.OAKLEY_LIFE_TYPE, OakleyAttr.OAKLEY_LIFE_DURATION):
            continue
        else:
            parsed.problems.append(f"unsupported attribute {name_of(kind)}")
    parsed.lifetime, problems = _read_lifetime(
        transform.attributes,
        OakleyAttr.OAKLEY_LIFE_TYPE,
        OakleyAttr.OAKLEY_LIFE_DURATION,
        OakleyLifeType.OAKLEY_LIFE_SECONDS,
    )
    parsed.problems += problems
    return parsed


def _ike_proposal_of(parsed: _IkeTransform) -> tuple[IkeProposal | None, str | None]:
    """The concrete proposal, or why not; a refusal (DES) comes back as the reason."""
    try:
        cipher = ike_cipher_by_id(parsed.encryption or 0)
        hash_alg = hash_by_id(parsed.hash or 0)
    except UnsupportedAlgorithm as error:
        return None, str(error)
    if parsed.group not in GROUPS:
        return None, f"DH group {name_of(coerce(OakleyGroup, parsed.group or 0))} is not supported"
    bits = parsed.key_bits or cipher.default_key_bits
    if bits not in cipher.key_bits:
        return None, f"{cipher.log_name} with a {bits}-bit key is not supported"
    if parsed.problems:
        return None, parsed.problems[0]
    return IkeProposal(cipher.name, bits, hash_alg.name, parsed.group), None


def _ike_transforms(sa: SAPayload) -> list[tuple[int, Transform]]:
    return [
        (proposal.number, transform)
        for proposal in sa.proposals
        if proposal.protocol == ProtocolId.ISAKMP
        for transform in proposal.transforms
    ]


def describe_ike_sa(sa: SAPayload) -> str:
    """The peer's phase-1 transforms for a log line."""
    texts = []
    for _, transform in _ike_transforms(sa):
        parsed = _parse_ike_transform(transform)
        text = parsed.text()
        if parsed.auth is not None and parsed.auth != OakleyAuth.OAKLEY_PRESHARED_KEY:
            text += f" ({_AUTH_NAMES.get(parsed.auth, name_of(coerce(OakleyAuth, parsed.auth)))})"
        texts.append(text)
    return ", ".join(dict.fromkeys(texts)) or "(none)"


def auth_methods_of(sa: SAPayload) -> list[int]:
    """Authentication methods the peer's phase-1 transforms ask for, in order."""
    methods: list[int] = []
    for _, transform in _ike_transforms(sa):
        value = transform.value(OakleyAttr.OAKLEY_AUTHENTICATION_METHOD)
        if value is not None and value not in methods:
            methods.append(value)
    return methods


def _check_ike_sa(sa: SAPayload, ours: str) -> None:
    if sa.doi != DOI.IPSEC:
        raise NoAcceptableProposal(NO_IKE_PROPOSAL, ours, f"DOI {name_of(sa.doi)}")


def choose_ike(
    sa: SAPayload,
    ours: Sequence[IkeProposal],
    auths: Iterable[int],
    our_lifetime: float,
    *,
    group: int | None = None,
) -> IkeChoice:
    """The first of the peer's transforms that equals one of ours (responder).

    ``group`` restricts the choice to one DH group (Aggressive Mode: the KE
    in message 1 fixes it).
    """
    allowed = set(int(a) for a in auths)
    ours_text = ", ".join(format_proposal(p) for p in ours)
    _check_ike_sa(sa, ours_text)
    notes: list[str] = []
    wanted = set(ours)
    for number, transform in _ike_transforms(sa):
        parsed = _parse_ike_transform(transform)
        proposal, problem = _ike_proposal_of(parsed)
        if proposal is None:
            if problem and "not supported" in problem and problem not in notes:
                notes.append(problem)
            continue
        if parsed.auth not in allowed or proposal not in wanted:
            continue
        if group is not None and proposal.group != group:
            continue
        lifetime = parsed.lifetime if parsed.lifetime else DEFAULT_LIFETIME
        return IkeChoice(
            number, transform, proposal, parsed.auth, min(lifetime, our_lifetime), tuple(notes)
        )
    raise NoAcceptableProposal(NO_IKE_PROPOSAL, ours_text, describe_ike_sa(sa), notes)


def accept_ike_reply(
    sa: SAPayload, offered: Sequence[IkeProposal], auths: Iterable[int], our_lifetime: float
) -> IkeChoice:
    """Check the responder's choice: one transform, one we offered (initiator)."""
    ours_text = ", ".join(format_proposal(p) for p in offered)
    _check_ike_sa(sa, ours_text)
    transforms = _ike_transforms(sa)
    if len(sa.proposals) != 1 or len(transforms) != 1:
        raise NoAcceptableProposal(
            "peer's SA reply must hold exactly one proposal with one transform",
            ours_text,
            describe_ike_sa(sa),
        )
    ((number, transform),) = transforms
    parsed = _parse_ike_transform(transform)
    proposal, problem = _ike_proposal_of(parsed)
    if proposal is None or proposal not in offered or parsed.auth not in set(auths):
        notes = [problem] if problem else []
        raise NoAcceptableProposal(
            "peer chose a transform we did not propose", ours_text, describe_ike_sa(sa), notes
        )
    lifetime = min(parsed.lifetime or DEFAULT_LIFETIME, our_lifetime)
    return IkeChoice(number, transform, proposal, parsed.auth, lifetime)


# --------------------------------------------------------------------------
# phase 2 (ESP)


def esp_transform(
    number: int, proposal: EspProposal, encapsulation: int, lifetime: float, group: int | None
) -> Transform:
    """One ESP transform (attribute order as strongSwan sends it, plus the group)."""
    cipher = proposal.cipher_algorithm
    attributes: list[Attribute] = []
    if cipher.variable_key:
        attributes.append(Attribute(IPsecAttr.KEY_LENGTH, proposal.key_bits))
    integrity = proposal.integrity_algorithm
    if integrity is not None:
        attributes.append(Attribute(IPsecAttr.AUTH_ALGORITHM, integrity.auth_id))
    attributes.append(Attribute(IPsecAttr.ENCAPSULATION_MODE, int(encapsulation)))
    if group is not None:
        attributes.append(Attribute(IPsecAttr.GROUP_DESCRIPTION, int(group)))
    attributes += _lifetime_attributes(
        IPsecAttr.SA_LIFE_TYPE,
        IPsecAttr.SA_LIFE_DURATION,
        lifetime,
        SALifeType.SA_LIFE_TYPE_SECONDS,
    )
    return Transform(number, cipher.transform_id, tuple(attributes))


def esp_sa_payload(
    proposals: Sequence[EspProposal],
    spi: int,
    encapsulation: int,
    lifetime: float,
    group: int | None,
) -> SAPayload:
    """Our Quick Mode SA: one ESP proposal with our SPI, a transform per proposal."""
    transforms = tuple(
        esp_transform(i + 1, p, encapsulation, lifetime, group) for i, p in enumerate(proposals)
    )
    return SAPayload((Proposal(1, ProtocolId.ESP, spi.to_bytes(4, "big"), transforms),))


def esp_reply_sa(choice: EspChoice, our_spi: int) -> SAPayload:
    """The responder's SA: the chosen transform echoed, with our SPI."""
    return SAPayload(
        (
            Proposal(
                choice.proposal_number,
                ProtocolId.ESP,
                our_spi.to_bytes(4, "big"),
                (choice.transform,),
            ),
        )
    )


@dataclass
class _EspTransform:
    esp: EspProposal | None = None
    encapsulation: int | None = None
    group: int | None = None
    lifetime: float | None = None
    problem: str | None = None
    text: str = "?"


def _parse_esp_transform(transform: Transform) -> _EspTransform:
    parsed = _EspTransform()
    key_bits = transform.value(IPsecAttr.KEY_LENGTH)
    auth = transform.value(IPsecAttr.AUTH_ALGORITHM)
    parsed.encapsulation = transform.value(IPsecAttr.ENCAPSULATION_MODE)
    parsed.group = transform.value(IPsecAttr.GROUP_DESCRIPTION)
    parsed.lifetime, problems = _read_lifetime(
        transform.attributes,
        IPsecAttr.SA_LIFE_TYPE,
        IPsecAttr.SA_LIFE_DURATION,
        SALifeType.SA_LIFE_TYPE_SECONDS,
    )
    known = {
        IPsecAttr.KEY_LENGTH,
        IPsecAttr.AUTH_ALGORITHM,
        IPsecAttr.ENCAPSULATION_MODE,
        IPsecAttr.GROUP_DESCRIPTION,
        IPsecAttr.SA_LIFE_TYPE,
        IPsecAttr.SA_LIFE_DURATION,
    }
    for attribute in transform.attributes:
        if attribute.type not in known:
            if attribute.type == IPsecAttr.EXTENDED_SEQUENCE_NUMBER and attribute.integer == 0:
                continue
            problems.append(f"unsupported attribute {name_of(attribute.type)}")
    name = name_of(coerce(EspTransformId, transform.id))
    try:
        cipher = esp_cipher_by_id(int(transform.id))
    except UnsupportedAlgorithm as error:
        parsed.problem = str(error)
        parsed.text = name
        return parsed
    bits = key_bits or cipher.default_key_bits
    integrity = None
    try:
        if auth is not None and not cipher.aead:
            integrity = esp_integrity_by_id(auth)
    except UnsupportedAlgorithm as error:
        parsed.problem = str(error)
    if bits not in cipher.key_bits:
        parsed.problem = f"{cipher.log_name} with a {bits}-bit key is not supported"
    if not cipher.aead and auth is None and parsed.problem is None:
        parsed.problem = f"{cipher.log_name} without an authentication algorithm is not supported"
    if cipher.aead and auth is not None and parsed.problem is None:
        parsed.problem = f"{cipher.log_name} with an authentication algorithm is not supported"
    if problems and parsed.problem is None:
        parsed.problem = problems[0]
    esp = EspProposal(
        cipher.name,
        bits,
        integrity.name if integrity else None,
        parsed.group if parsed.group in GROUPS else None,
    )
    parsed.text = format_proposal(esp)
    if parsed.group is not None and parsed.group not in GROUPS:
        parsed.text += f"-{name_of(coerce(OakleyGroup, parsed.group))}"
        if parsed.problem is None:
            parsed.problem = (
                f"PFS group {name_of(coerce(OakleyGroup, parsed.group))} is not supported"
            )
    if parsed.problem is None:
        parsed.esp = esp
    return parsed


def _esp_proposals(sa: SAPayload) -> list[tuple[Proposal, bool]]:
    """Each proposal with whether it stands alone (a bundle with AH/IPComp does not)."""
    numbers: dict[int, int] = {}
    for proposal in sa.proposals:
        numbers[proposal.number] = numbers.get(proposal.number, 0) + 1
    return [
        (proposal, numbers[proposal.number] == 1)
        for proposal in sa.proposals
        if proposal.protocol == ProtocolId.ESP
    ]


def describe_esp_sa(sa: SAPayload) -> str:
    """The peer's ESP transforms for a log line."""
    texts = [
        _parse_esp_transform(t).text
        for proposal, _ in _esp_proposals(sa)
        for t in proposal.transforms
    ]
    return ", ".join(dict.fromkeys(texts)) or "(none)"


def _describe_ours(ours: Sequence[EspProposal], group: int | None) -> str:
    return ", ".join(
        format_proposal(
            p if p.pfs_group is not None or group is None else replace(p, pfs_group=group)
        )
        for p in ours
    )


def _spi_int(proposal: Proposal) -> int | None:
    if len(proposal.spi) != 4:
        return None
    return int.from_bytes(proposal.spi, "big")


def choose_esp(
    sa: SAPayload,
    ours: Sequence[EspProposal],
    *,
    pfs_group: int | None,
    pfs_required: bool,
    modes: Iterable[int],
    our_lifetime: float,
) -> EspChoice:
    """The first of the peer's ESP transforms that equals one of ours (responder).

    ``pfs_group`` is the group we would use (our ``esp=`` group, else the
    phase-1 group when ``pfs=yes``); a peer asking for PFS with a supported
    group is accepted even when we do not require it.  ``modes`` are the
    encapsulation mode numbers acceptable to the caller.
    """
    allowed_modes = set(int(m) for m in modes)
    ours_text = _describe_ours(ours, pfs_group if pfs_required else None)
    notes: list[str] = []
    if sa.doi != DOI.IPSEC:
        raise NoAcceptableProposal(NO_IPSEC_PROPOSAL, ours_text, f"DOI {name_of(sa.doi)}")
    for proposal, alone in _esp_proposals(sa):
        spi = _spi_int(proposal)
        if not alone or spi is None or spi < 0x100:
            continue
        for transform in proposal.transforms:
            parsed = _parse_esp_transform(transform)
            if parsed.esp is None:
                if (
                    parsed.problem
                    and "not supported" in parsed.problem
                    and parsed.problem not in notes
                ):
                    notes.append(parsed.problem)
                continue
            if parsed.encapsulation not in allowed_modes:
                continue
            group = parsed.group
            if group is None and pfs_required:
                continue
            base = replace(parsed.esp, pfs_group=None)
            match = None
            for candidate in ours:
                if replace(candidate, pfs_group=None) != base:
                    continue
                if group is not None and candidate.pfs_group not in (None, group):
                    continue
                if (
                    group is not None
                    and candidate.pfs_group is None
                    and pfs_required
                    and pfs_group is not None
                    and group != pfs_group
                ):
                    continue
                match = candidate
                break
            if match is None:
                continue
            lifetime = parsed.lifetime if parsed.lifetime else DEFAULT_LIFETIME
            return EspChoice(
                proposal.number,
                spi,
                transform,
                replace(base, pfs_group=group),
                min(lifetime, our_lifetime),
                int(parsed.encapsulation or 0),
                group,
                tuple(notes),
            )
    raise NoAcceptableProposal(NO_IPSEC_PROPOSAL, ours_text, describe_esp_sa(sa), notes)


def accept_esp_reply(
    sa: SAPayload,
    offered: Sequence[EspProposal],
    *,
    pfs_group: int | None,
    encapsulation: int,
    our_lifetime: float,
) -> EspChoice:
    """Check the responder's ESP choice against what we proposed (initiator)."""
    ours_text = _describe_ours(offered, pfs_group)
    proposals = _esp_proposals(sa)
    if len(sa.proposals) != 1 or len(proposals) != 1 or len(proposals[0][0].transforms) != 1:
        raise NoAcceptableProposal(
            "peer's IPsec SA reply must hold exactly one ESP proposal with one transform",
            ours_text,
            describe_esp_sa(sa),
        )
    proposal = proposals[0][0]
    spi = _spi_int(proposal)
    parsed = _parse_esp_transform(proposal.transforms[0])
    problem = None
    if spi is None or spi < 0x100:
        problem = "peer's SPI is invalid"
    elif parsed.esp is None:
        problem = parsed.problem or "unsupported transform"
    elif replace(parsed.esp, pfs_group=None) not in [replace(p, pfs_group=None) for p in offered]:
        problem = "peer chose a transform we did not propose"
    elif parsed.group != pfs_group:
        problem = "peer's PFS group differs from ours"
    elif parsed.encapsulation != encapsulation:
        problem = "peer's encapsulation mode differs from ours"
    if problem is not None:
        raise NoAcceptableProposal(problem, ours_text, describe_esp_sa(sa))
    assert parsed.esp is not None and spi is not None
    lifetime = min(parsed.lifetime or DEFAULT_LIFETIME, our_lifetime)
    return EspChoice(
        proposal.number, spi, proposal.transforms[0], parsed.esp, lifetime, encapsulation, pfs_group
    )


#: every ESP cipher we can negotiate, for callers listing algorithms
SUPPORTED_ESP_CIPHERS = tuple(ESP_CIPHERS)
#: the RFC 3947 and draft encapsulation values, for callers
UDP_MODES = (
    EncapsulationMode.UDP_TUNNEL,
    EncapsulationMode.UDP_TRANSPORT,
    EncapsulationMode.UDP_TUNNEL_DRAFT,
    EncapsulationMode.UDP_TRANSPORT_DRAFT,
)
