"""IKEv1 and ESP algorithm names, their RFC numbers, and ``ike=``/``esp=`` strings.

A leaf module: the config parser (``ike=``/``esp=`` values), the IKE engine
(SA payloads, the key schedule) and the ESP data plane (transforms, keys) all
read it, so it imports nothing of theirs; only the DH group table of
:mod:`fswan.ike.dh`, itself a leaf (stdlib and ``cryptography``).

Rules of this module:

* Pure data and parsing; no I/O.  The ISAKMP constants module owns the wire
  numbers for everything else; the few numbers the crypto needs (Oakley
  encryption/hash algorithm, ESP transform and authentication algorithm IDs,
  RFC 2409 appendix A, RFC 2407 section 4.4/4.5, RFC 4106, RFC 4868) live in
  the small tables below and are reached *through names*.
* A proposal string (``ike=aes128-sha1-modp2048,3des-md5-modp1024``,
  ``esp=aes_gcm256,aes128-sha1-modp2048``) becomes a tuple of concrete,
  frozen proposals; every element the user left out is expanded from the
  documented defaults, so the engine never guesses.
* Errors are :class:`ProposalError` and say which token is wrong and what is
  allowed.  Single DES anywhere is refused with pluto's own words
  (``OAKLEY_DES_CBC is not supported`` / ``ESP_DES is not supported``), and a
  null ESP cipher likewise: both are refusals, not typos.
* Key material appears in no repr (:class:`EspKeys`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable, Union

from fswan.ike.dh import ECPGroup, GROUPS, Group, MODP_GROUPS

__all__ = [
    "DEFAULT_ESP_PROPOSALS",
    "DEFAULT_IKE_PROPOSALS",
    "ESP_CIPHERS",
    "ESP_INTEGRITY",
    "HASHES",
    "IKE_CIPHERS",
    "IKE_GROUPS_WHEN_OMITTED",
    "HASHES_WHEN_OMITTED",
    "ESP_INTEGRITY_WHEN_OMITTED",
    "EspCipherAlgorithm",
    "EspIntegrityAlgorithm",
    "EspKeys",
    "EspProposal",
    "HashAlgorithm",
    "IkeCipherAlgorithm",
    "IkeProposal",
    "ProposalError",
    "RefusedAlgorithm",
    "UnsupportedAlgorithm",
    "esp_cipher_by_id",
    "esp_integrity_by_id",
    "format_proposal",
    "format_proposals",
    "group_spellings",
    "with_pfs_group",
    "get_esp_cipher",
    "get_esp_integrity",
    "get_hash",
    "get_ike_cipher",
    "hash_by_id",
    "ike_cipher_by_id",
    "ikev1_unusable",
    "parse_esp",
    "parse_ike",
]

DES_IKE_REFUSAL = "OAKLEY_DES_CBC is not supported"
DES_ESP_REFUSAL = "ESP_DES is not supported"
NULL_ESP_REFUSAL = "ESP_NULL is not supported"


class UnsupportedAlgorithm(ValueError):
    """An algorithm fswan does not implement or deliberately refuses (single DES, null)."""


class ProposalError(ValueError):
    """An ``ike=`` or ``esp=`` string that cannot be parsed."""


class RefusedAlgorithm(ProposalError, UnsupportedAlgorithm):
    """A proposal string naming an algorithm fswan refuses on principle (DES, ESP null)."""


# --------------------------------------------------------------------------
# algorithm tables


@dataclass(frozen=True)
class HashAlgorithm:
    """An IKE hash: the PRF is HMAC over it (RFC 2409 section 4)."""

    #: canonical config name (``sha2_256``)
    name: str
    #: Oakley Hash Algorithm attribute value (RFC 2409 appendix A, RFC 4868)
    oakley_id: int
    hashlib_name: str
    digest_size: int
    #: name in logs (``HMAC_SHA2_256``), as pluto prints the PRF
    log_name: str


@dataclass(frozen=True)
class IkeCipherAlgorithm:
    """An IKE SA cipher: CBC (IKEv1 and IKEv2) or AEAD (IKEv2 only, RFC 5282, RFC 7634)."""

    name: str
    #: Oakley Encryption Algorithm attribute value; 0 for the IKEv2-only AEAD ciphers
    oakley_id: int
    log_name: str
    block_size: int
    #: key sizes allowed, in bits
    key_bits: tuple[int, ...]
    default_key_bits: int
    #: carries its own integrity (no INTEG transform); IKEv1 has no such phase-1 cipher
    aead: bool = False

    @property
    def ikev1(self) -> bool:
        """IKEv1 can negotiate it (it has an Oakley number)."""
        return self.oakley_id != 0

    @property
    def variable_key(self) -> bool:
        """True when a Key Length attribute is sent (and printed)."""
        return len(self.key_bits) > 1


@dataclass(frozen=True)
class EspCipherAlgorithm:
    """An ESP cipher; AEAD ciphers (GCM) carry their own integrity."""

    name: str
    #: IPsec DOI ESP transform ID (RFC 2407 section 4.4.4, RFC 4106 section 8.1)
    transform_id: int
    log_name: str
    key_bits: tuple[int, ...]
    default_key_bits: int
    block_size: int
    iv_size: int
    aead: bool = False
    #: AEAD: bytes of KEYMAT after the key that form the nonce salt (RFC 4106 section 8.1)
    salt_size: int = 0
    #: AEAD: ICV length in bytes
    icv_size: int = 0

    @property
    def variable_key(self) -> bool:
        return len(self.key_bits) > 1


@dataclass(frozen=True)
class EspIntegrityAlgorithm:
    """An ESP HMAC with its truncated ICV (RFC 2404, RFC 2403, RFC 4868)."""

    name: str
    #: IPsec DOI Authentication Algorithm attribute value (RFC 2407 section 4.5)
    auth_id: int
    log_name: str
    hashlib_name: str
    key_size: int
    icv_size: int


HASHES: dict[str, HashAlgorithm] = {
    h.name: h
    for h in (
        HashAlgorithm("md5", 1, "md5", 16, "HMAC_MD5"),
        HashAlgorithm("sha1", 2, "sha1", 20, "HMAC_SHA1"),
        HashAlgorithm("sha2_256", 4, "sha256", 32, "HMAC_SHA2_256"),
        HashAlgorithm("sha2_384", 5, "sha384", 48, "HMAC_SHA2_384"),
        HashAlgorithm("sha2_512", 6, "sha512", 64, "HMAC_SHA2_512"),
    )
}

IKE_CIPHERS: dict[str, IkeCipherAlgorithm] = {
    c.name: c
    for c in (
        IkeCipherAlgorithm("aes_cbc", 7, "AES_CBC", 16, (128, 192, 256), 128),
        IkeCipherAlgorithm("3des_cbc", 5, "3DES_CBC", 8, (192,), 192),
        IkeCipherAlgorithm("aes_gcm_16", 0, "AES_GCM_16", 1, (128, 192, 256), 128, aead=True),
        IkeCipherAlgorithm("aes_gcm_12", 0, "AES_GCM_12", 1, (128, 192, 256), 128, aead=True),
        IkeCipherAlgorithm("aes_gcm_8", 0, "AES_GCM_8", 1, (128, 192, 256), 128, aead=True),
        IkeCipherAlgorithm("chacha20poly1305", 0, "CHACHA20_POLY1305", 1, (256,), 256, aead=True),
    )
}

ESP_CIPHERS: dict[str, EspCipherAlgorithm] = {
    c.name: c
    for c in (
        EspCipherAlgorithm("aes_cbc", 12, "AES_CBC", (128, 192, 256), 128, 16, 16),
        EspCipherAlgorithm("3des_cbc", 3, "3DES_CBC", (192,), 192, 8, 8),
        EspCipherAlgorithm(
            "aes_gcm_16", 20, "AES_GCM_16", (128, 192, 256), 128, 4, 8, True, 4, 16
        ),
        EspCipherAlgorithm(
            "aes_gcm_12", 19, "AES_GCM_12", (128, 192, 256), 128, 4, 8, True, 4, 12
        ),
        EspCipherAlgorithm("aes_gcm_8", 18, "AES_GCM_8", (128, 192, 256), 128, 4, 8, True, 4, 8),
    )
}

ESP_INTEGRITY: dict[str, EspIntegrityAlgorithm] = {
    a.name: a
    for a in (
        EspIntegrityAlgorithm("md5", 1, "HMAC_MD5_96", "md5", 16, 12),
        EspIntegrityAlgorithm("sha1", 2, "HMAC_SHA1_96", "sha1", 20, 12),
        EspIntegrityAlgorithm("sha2_256", 5, "HMAC_SHA2_256_128", "sha256", 32, 16),
        EspIntegrityAlgorithm("sha2_384", 6, "HMAC_SHA2_384_192", "sha384", 48, 24),
        EspIntegrityAlgorithm("sha2_512", 7, "HMAC_SHA2_512_256", "sha512", 64, 32),
    )
}

#: config aliases -> canonical hash / integrity names
_HASH_ALIASES: dict[str, str] = {
    "md5": "md5",
    "sha": "sha1",
    "sha1": "sha1",
    "sha2": "sha2_256",
    "sha256": "sha2_256",
    "sha2_256": "sha2_256",
    "sha384": "sha2_384",
    "sha2_384": "sha2_384",
    "sha512": "sha2_512",
    "sha2_512": "sha2_512",
}

#: Oakley IDs of ciphers refused on sight, with the words pluto uses
_REFUSED_IKE_IDS = {1: DES_IKE_REFUSAL}
#: ESP transform IDs refused on sight (1 = ESP_DES_IV64, 2 = ESP_DES, 11 = ESP_NULL)
_REFUSED_ESP_IDS = {1: "ESP_DES_IV64 is not supported", 2: DES_ESP_REFUSAL, 11: NULL_ESP_REFUSAL}


def _is_des(name: str) -> bool:
    return re.fullmatch(r"des(_cbc)?(_?\d+)?", name) is not None


def get_hash(name: str) -> HashAlgorithm:
    """A hash by canonical name or alias (``sha``, ``sha256``...)."""
    canonical = _HASH_ALIASES.get(name.strip().lower())
    if canonical is None:
        raise UnsupportedAlgorithm(
            f"hash algorithm {name!r} is not supported; allowed: {_allowed_hashes()}"
        )
    return HASHES[canonical]


def get_ike_cipher(name: str) -> IkeCipherAlgorithm:
    """A phase-1 cipher by canonical name (``aes_cbc``, ``3des_cbc``) or ``aes``/``3des``."""
    key = name.strip().lower()
    if _is_des(key):
        raise UnsupportedAlgorithm(DES_IKE_REFUSAL)
    key = {"aes": "aes_cbc", "3des": "3des_cbc"}.get(key, key)
    try:
        return IKE_CIPHERS[key]
    except KeyError:
        raise UnsupportedAlgorithm(
            f"IKE encryption algorithm {name!r} is not supported; "
            f"allowed: {', '.join(IKE_CIPHERS)}"
        ) from None


def get_esp_cipher(name: str) -> EspCipherAlgorithm:
    """An ESP cipher by canonical name (``aes_cbc``, ``3des_cbc``, ``aes_gcm_16``...)."""
    key = name.strip().lower()
    if _is_des(key):
        raise UnsupportedAlgorithm(DES_ESP_REFUSAL)
    if key == "null":
        raise UnsupportedAlgorithm(NULL_ESP_REFUSAL)
    key = {"aes": "aes_cbc", "3des": "3des_cbc", "aes_gcm": "aes_gcm_16"}.get(key, key)
    try:
        return ESP_CIPHERS[key]
    except KeyError:
        raise UnsupportedAlgorithm(
            f"ESP encryption algorithm {name!r} is not supported; "
            f"allowed: {', '.join(ESP_CIPHERS)}"
        ) from None


def get_esp_integrity(name: str) -> EspIntegrityAlgorithm:
    """An ESP integrity algorithm by canonical name or alias."""
    canonical = _HASH_ALIASES.get(name.strip().lower())
    if canonical is None:
        raise UnsupportedAlgorithm(
            f"ESP integrity algorithm {name!r} is not supported; allowed: {_allowed_hashes()}"
        )
    return ESP_INTEGRITY[canonical]


def hash_by_id(oakley_id: int) -> HashAlgorithm:
    """The hash for an Oakley Hash Algorithm attribute value."""
    for h in HASHES.values():
        if h.oakley_id == oakley_id:
            return h
    raise UnsupportedAlgorithm(f"OAKLEY hash algorithm {oakley_id} is not supported")


def ike_cipher_by_id(oakley_id: int) -> IkeCipherAlgorithm:
    """The cipher for an Oakley Encryption Algorithm attribute value (1 = DES is refused)."""
    if oakley_id in _REFUSED_IKE_IDS:
        raise UnsupportedAlgorithm(_REFUSED_IKE_IDS[oakley_id])
    for c in IKE_CIPHERS.values():
        if c.ikev1 and c.oakley_id == oakley_id:
            return c
    raise UnsupportedAlgorithm(f"OAKLEY encryption algorithm {oakley_id} is not supported")


def esp_cipher_by_id(transform_id: int) -> EspCipherAlgorithm:
    """The cipher for an ESP transform ID (DES and NULL are refused)."""
    if transform_id in _REFUSED_ESP_IDS:
        raise UnsupportedAlgorithm(_REFUSED_ESP_IDS[transform_id])
    for c in ESP_CIPHERS.values():
        if c.transform_id == transform_id:
            return c
    raise UnsupportedAlgorithm(f"ESP transform {transform_id} is not supported")


def esp_integrity_by_id(auth_id: int) -> EspIntegrityAlgorithm:
    """The integrity algorithm for an IPsec Authentication Algorithm attribute value."""
    for a in ESP_INTEGRITY.values():
        if a.auth_id == auth_id:
            return a
    raise UnsupportedAlgorithm(f"ESP authentication algorithm {auth_id} is not supported")


# --------------------------------------------------------------------------
# proposals


@dataclass(frozen=True)
class IkeProposal:
    """One IKE SA transform set: cipher + key size, hash (and so PRF), DH group.

    IKEv1 (and most IKEv2 proposals): ``hash`` is both the integrity HMAC and
    the PRF's hash, ``prf`` is None.  IKEv2 only: ``prf`` names a different PRF
    hash (``aes128-sha256-prfsha384``); with an AEAD cipher (AES-GCM,
    ChaCha20-Poly1305) there is no integrity (``integrity`` is None) and
    ``hash`` is the PRF's hash.  ``prf`` equal to ``hash`` is stored as None, so
    equal suites compare equal.  :func:`ikev1_unusable` says which IKEv1 cannot do.
    """

    #: canonical cipher name, a key of :data:`IKE_CIPHERS` (``aes_cbc``)
    cipher: str
    key_bits: int
    #: canonical hash name, a key of :data:`HASHES` (``sha1``)
    hash: str
    #: Oakley group number (14 = MODP2048, 19 = ECP256)
    group: int
    #: IKEv2: the PRF's hash when it is not ``hash`` (a key of :data:`HASHES`)
    prf: str | None = None

    def __post_init__(self) -> None:
        if self.prf == self.hash:
            object.__setattr__(self, "prf", None)

    @property
    def cipher_algorithm(self) -> IkeCipherAlgorithm:
        return IKE_CIPHERS[self.cipher]

    @property
    def hash_algorithm(self) -> HashAlgorithm:
        return HASHES[self.hash]

    @property
    def aead(self) -> bool:
        """The cipher authenticates: no integrity transform."""
        return self.cipher_algorithm.aead

    @property
    def prf_hash(self) -> str:
        """The PRF's hash (canonical name): HMAC of it is the PRF."""
        return self.prf or self.hash

    @property
    def prf_algorithm(self) -> HashAlgorithm:
        return HASHES[self.prf_hash]

    @property
    def integrity(self) -> str | None:
        """The integrity HMAC's hash; None for an AEAD cipher."""
        return None if self.aead else self.hash

    @property
    def ikev1_usable(self) -> bool:
        return ikev1_unusable((self,)) is None

    @property
    def dh_group(self) -> Group:
        return GROUPS[self.group]

    @property
    def key_size(self) -> int:
        """Phase-1 encryption key length in bytes."""
        return self.key_bits // 8

    def __str__(self) -> str:
        return format_proposal(self)


@dataclass(frozen=True)
class EspProposal:
    """One ESP transform: cipher + key size, integrity (None for AEAD), PFS group."""

    #: canonical cipher name, a key of :data:`ESP_CIPHERS`
    cipher: str
    key_bits: int
    #: canonical integrity name, a key of :data:`ESP_INTEGRITY`; None for AEAD
    integrity: str | None
    #: Oakley group for PFS; None = not given (the connection's ``pfs=`` decides)
    pfs_group: int | None = None

    @property
    def cipher_algorithm(self) -> EspCipherAlgorithm:
        return ESP_CIPHERS[self.cipher]

    @property
    def integrity_algorithm(self) -> EspIntegrityAlgorithm | None:
        return None if self.integrity is None else ESP_INTEGRITY[self.integrity]

    @property
    def encryption_key_size(self) -> int:
        """Cipher key bytes, not counting an AEAD salt."""
        return self.key_bits // 8

    @property
    def keymat_length(self) -> int:
        """KEYMAT bytes one direction needs: key (+ salt), then integrity key."""
        integ = self.integrity_algorithm
        return (
            self.encryption_key_size
            + self.cipher_algorithm.salt_size
            + (integ.key_size if integ is not None else 0)
        )

    def __str__(self) -> str:
        return format_proposal(self)



@dataclass(frozen=True)
class EspKeys:
    """One direction's ESP keys, split from KEYMAT: cipher key, then integrity key.

    For AES-GCM the 4 bytes after the key are the nonce salt (RFC 4106
    section 8.1) and ``integrity_key`` is empty; for CBC ``salt`` is empty.
    """

    encryption_key: bytes = field(repr=False)
    integrity_key: bytes = field(repr=False)
    salt: bytes = field(default=b"", repr=False)


Proposal = Union[IkeProposal, EspProposal]

#: DH groups proposed when an ``ike=`` element names none (strongest first)
IKE_GROUPS_WHEN_OMITTED: tuple[int, ...] = (14, 5, 2)
#: hashes proposed when an ``ike=`` element names none
HASHES_WHEN_OMITTED: tuple[str, ...] = ("sha2_256", "sha1")
#: integrity proposed when an ``esp=`` element with a CBC cipher names none
ESP_INTEGRITY_WHEN_OMITTED: tuple[str, ...] = ("sha2_256", "sha1")

DEFAULT_IKE_PROPOSALS: tuple[IkeProposal, ...] = (
    IkeProposal("aes_cbc", 256, "sha2_256", 14),
    IkeProposal("aes_cbc", 128, "sha2_256", 14),
    IkeProposal("aes_cbc", 256, "sha1", 14),
    IkeProposal("aes_cbc", 128, "sha1", 14),
    IkeProposal("aes_cbc", 128, "sha1", 5),
    IkeProposal("3des_cbc", 192, "sha1", 14),
    IkeProposal("3des_cbc", 192, "sha1", 2),
)

DEFAULT_ESP_PROPOSALS: tuple[EspProposal, ...] = (
    EspProposal("aes_gcm_16", 256, None),
    EspProposal("aes_gcm_16", 128, None),
    EspProposal("aes_cbc", 256, "sha2_256"),
    EspProposal("aes_cbc", 128, "sha2_256"),
    EspProposal("aes_cbc", 256, "sha1"),
    EspProposal("aes_cbc", 128, "sha1"),
    EspProposal("3des_cbc", 192, "sha1"),
)


def _allowed_hashes() -> str:
    return "md5, sha1 (sha), sha2_256 (sha256, sha2), sha2_384 (sha384), sha2_512 (sha512)"


def _allowed_groups() -> str:
    return ", ".join(f"{g.name.lower()} (dh{g.number})" for g in GROUPS.values())


#: the group names besides ``modpNNNN``/``ecpNNN``/``dhN``: strongSwan's and
#: Libreswan's spellings of Curve25519
_GROUP_ALIASES = {"curve25519": 31, "x25519": 31}


_IKE_CIPHERS_ALLOWED = (
    "aes (aes128), aes192, aes256, aes_cbc, 3des; IKEv2 only: aes_gcm (aes_gcm128, aes_gcm256, "
    "aes256gcm16, aes_gcm_16_256, aes_gcm_8/12/16), chacha20poly1305"
)
_ESP_CIPHERS_ALLOWED = (
    "aes (aes128), aes192, aes256, aes_cbc, 3des, "
    "aes_gcm (aes_gcm128, aes_gcm192, aes_gcm256, aes128gcm16, aes256gcm16, aes_gcm_8/12/16)"
)

_CBC_RE = re.compile(r"(?P<family>aes|3des)(?:_cbc)?_?(?P<bits>\d+)?")
_GCM_LIBRESWAN_RE = re.compile(
    r"aes_gcm(?:_?(?P<icv>8|12|16|a|b|c))?(?:_?(?P<bits>128|192|256))?"
)
_GCM_STRONGSWAN_RE = re.compile(r"aes(?P<bits>128|192|256)?gcm(?P<icv>8|12|16|64|96|128)?")
# modp2048 (both), ecp256 (strongSwan), ecp_256 (Libreswan), dh19 (Libreswan)
_GROUP_RE = re.compile(r"(?:modp_?(?P<modp>\d+)|ecp_?(?P<ecp>\d+)|dh(?P<dh>\d+))")
_CHACHA_RE = re.compile(r"chacha20_?poly1305(?:_?(?P<bits>256))?")
#: strongSwan's PRF tokens (``prfsha256``); Libreswan names the PRF as the hash
_PRF_RE = re.compile(r"prf(?P<hash>[a-z0-9_]+)")
_ICV_NAMES = {"a": 8, "b": 12, "c": 16, "8": 8, "12": 12, "16": 16, "64": 8, "96": 12, "128": 16}


class _Element:
    """One comma-separated element being parsed, for error messages."""

    def __init__(self, kind: str, text: str) -> None:
        self.kind = kind
        self.text = text

    def error(self, message: str) -> ProposalError:
        return ProposalError(f"{self.kind}={self.text!r}: {message}")


def _split_elements(kind: str, text: str) -> list[_Element]:
    if text is None or not text.strip():
        raise ProposalError(f"{kind}= is empty")
    body = text.strip().lower()
    if body.endswith("!"):
        # Openswan's "strict" flag: fswan only ever accepts what is configured.
        body = body[:-1].rstrip()
        if not body:
            raise ProposalError(f"{kind}= is empty")
    elements = []
    for raw in body.split(","):
        raw = raw.strip()
        if not raw:
            raise ProposalError(f"{kind}={text.strip()!r}: empty proposal between commas")
        elements.append(_Element(kind, raw))
    return elements


def _tokens(element: _Element) -> list[str]:
    # Old Openswan form "aes128-sha1;modp2048": ';' introduces the group.
    tokens = [t.strip() for t in element.text.replace(";", "-").split("-")]
    if any(not t for t in tokens):
        raise element.error("empty algorithm name")
    return tokens


def _key_bits(element: _Element, token: str, bits: str | None, allowed: tuple[int, ...],
              default: int) -> int:
    if bits is None:
        return default
    value = int(bits)
    if value not in allowed:
        sizes = ", ".join(str(b) for b in allowed)
        raise element.error(f"key length {value} in {token!r} is not allowed; allowed: {sizes}")
    return value


def _take_key_length(tokens: list[str], index: int) -> tuple[str | None, int]:
    """A bare number after the cipher (``aes-256-sha1``) is its key length."""
    if index < len(tokens) and tokens[index].isdigit():
        return tokens[index], index + 1
    return None, index


def _parse_group(element: _Element, token: str) -> int:
    match = _GROUP_RE.fullmatch(token)
    number = _GROUP_ALIASES.get(token)
    if match and match.group("modp"):
        bits = int(match.group("modp"))
        number = next((g.number for g in MODP_GROUPS.values() if g.bits == bits), None)
    elif match and match.group("ecp"):
        bits = int(match.group("ecp"))
        number = next((g.number for g in GROUPS.values()
                       if isinstance(g, ECPGroup) and g.curve != "x25519" and g.bits == bits),
                      None)
    elif match and match.group("dh"):
        number = int(match.group("dh")) if int(match.group("dh")) in GROUPS else None
    if number is None:
        raise element.error(
            f"unknown or unsupported DH group {token!r}; allowed: {_allowed_groups()}"
        )
    return number


def group_spellings() -> dict[str, str]:
    """Every accepted DH group spelling -> its canonical name (``dh19`` -> ``ecp256``).

    The words ``ike=``/``esp=`` take as their group, for ``pfsgroup=``'s choices."""
    table: dict[str, str] = {}
    for group in GROUPS.values():
        name = group.name.lower()
        table[name] = name
        table[f"dh{group.number}"] = name
        if name.startswith("ecp"):
            table[name.replace("ecp", "ecp_")] = name
    table.update({alias: GROUPS[number].name.lower() for alias, number in _GROUP_ALIASES.items()})
    return table


def with_pfs_group(proposals: Iterable[EspProposal], group: str | None) -> tuple[EspProposal, ...]:
    """``pfsgroup=``: every ESP proposal with that PFS group instead of its own."""
    if group is None:
        return tuple(proposals)
    number = next(g.number for g in GROUPS.values() if g.name.lower() == group_spellings()[group])
    return _dedupe(EspProposal(p.cipher, p.key_bits, p.integrity, number) for p in proposals)


def _looks_like_group(token: str) -> bool:
    return token.startswith(("modp", "dh", "ecp", "curve", "x25519"))


def _dedupe(items: Iterable[Proposal]) -> tuple:
    seen: dict = {}
    for item in items:
        seen.setdefault(item, None)
    return tuple(seen)


def _ike_cipher_match(first: str) -> tuple[IkeCipherAlgorithm, re.Match[str]] | None:
    """The IKE cipher a first token names (CBC, or the AEAD spellings of ``esp=``)."""
    match = _CBC_RE.fullmatch(first)
    if match is not None:
        return IKE_CIPHERS["aes_cbc" if match.group("family") == "aes" else "3des_cbc"], match
    match = _GCM_LIBRESWAN_RE.fullmatch(first) or _GCM_STRONGSWAN_RE.fullmatch(first)
    if match is not None:
        icv = _ICV_NAMES[match.group("icv")] if match.group("icv") else 16
        return IKE_CIPHERS[f"aes_gcm_{icv}"], match
    match = _CHACHA_RE.fullmatch(first)
    if match is not None:
        return IKE_CIPHERS["chacha20poly1305"], match
    return None


def _hash_token(element: _Element, token: str, what: str) -> str:
    if _is_des(token):
        raise RefusedAlgorithm(DES_IKE_REFUSAL)
    if token not in _HASH_ALIASES:
        raise element.error(f"unknown {what} {token!r}; allowed: {_allowed_hashes()}")
    return _HASH_ALIASES[token]


def parse_ike(text: str) -> tuple[IkeProposal, ...]:
    """Parse an ``ike=`` string into concrete IKE SA proposals, in order.

    Each element is ``cipher[keylen][-hash][-prfHASH][-group]``
    (``aes128-sha1-modp2048``, ``3des-md5-modp1024``, old
    ``aes128-sha1;modp2048``).  ``aes`` alone is AES-128; a missing hash
    expands to :data:`HASHES_WHEN_OMITTED` and a missing group to
    :data:`IKE_GROUPS_WHEN_OMITTED`.  IKEv2 only: strongSwan's PRF token
    (``aes128-sha256-prfsha384-ecp256``) and the AEAD ciphers
    (``aes256gcm16-prfsha256-modp2048``, ``aes_gcm_16_256-sha2_256-ecp256``,
    ``chacha20poly1305-prfsha256-curve25519``), whose one hash -- written as a
    hash (Libreswan) or a PRF token (strongSwan) -- is the PRF.
    """
    proposals: list[IkeProposal] = []
    for element in _split_elements("ike", text):
        tokens = _tokens(element)
        first = tokens[0]
        if _is_des(first):
            raise RefusedAlgorithm(DES_IKE_REFUSAL)
        found = _ike_cipher_match(first)
        if found is None:
            raise element.error(
                f"unknown IKE encryption algorithm {first!r}; allowed: {_IKE_CIPHERS_ALLOWED}"
            )
        cipher, match = found
        bits, index = match.groupdict().get("bits"), 1
        if bits is None:
            bits, index = _take_key_length(tokens, index)
        key_bits = _key_bits(element, first, bits, cipher.key_bits, cipher.default_key_bits)

        hashes: tuple[str, ...] = HASHES_WHEN_OMITTED
        prf: str | None = None
        given_hash = False
        if index < len(tokens) and not _looks_like_group(tokens[index]) \
                and _PRF_RE.fullmatch(tokens[index]) is None:
            hashes = (_hash_token(element, tokens[index], "IKE hash algorithm"),)
            given_hash = True
            index += 1
        prf_match = _PRF_RE.fullmatch(tokens[index]) if index < len(tokens) else None
        if prf_match is not None:
            prf = _hash_token(element, prf_match.group("hash"), "PRF")
            index += 1
            if cipher.aead:
                if given_hash:
                    raise element.error(
                        f"{tokens[index - 2]!r} and {tokens[index - 1]!r}: an AEAD cipher has no "
                        "integrity, name its PRF once"
                    )
                hashes, prf = (prf,), None  # AEAD: ``hash`` is the PRF's
        groups: tuple[int, ...] = IKE_GROUPS_WHEN_OMITTED
        if index < len(tokens):
            groups = (_parse_group(element, tokens[index]),)
            index += 1
        if index < len(tokens):
            raise element.error(f"unexpected {tokens[index]!r} after the DH group")
        for h in hashes:
            for g in groups:
                proposals.append(IkeProposal(cipher.name, key_bits, h, g, prf))
    return _dedupe(proposals)


def ikev1_unusable(proposals: Iterable[IkeProposal]) -> str | None:
    """Why IKEv1 cannot negotiate these proposals (the first that it cannot), or None.

    IKEv1's phase 1 has no AEAD cipher, and its PRF is the HMAC of the
    negotiated hash: a proposal with an AEAD cipher or its own PRF is IKEv2 only."""
    for p in proposals:
        if not p.cipher_algorithm.ikev1:
            return f"{format_proposal(p)}: {p.cipher_algorithm.log_name} is IKEv2 only"
        if p.prf is not None:
            return (f"{format_proposal(p)}: a PRF other than the hash's HMAC "
                    f"(PRF_{p.prf_algorithm.log_name}) is IKEv2 only")
    return None


def _parse_esp_cipher(element: _Element, tokens: list[str]) -> tuple[EspCipherAlgorithm, int, int]:
    """The cipher, its key bits, and the index of the next token."""
    first = tokens[0]
    if _is_des(first):
        raise RefusedAlgorithm(DES_ESP_REFUSAL)
    if first == "null" or first.startswith("null_"):
        raise RefusedAlgorithm(NULL_ESP_REFUSAL)
    gcm = _GCM_LIBRESWAN_RE.fullmatch(first) or _GCM_STRONGSWAN_RE.fullmatch(first)
    if gcm is not None:
        icv = _ICV_NAMES[gcm.group("icv")] if gcm.group("icv") else 16
        cipher = ESP_CIPHERS[f"aes_gcm_{icv}"]
    else:
        match = _CBC_RE.fullmatch(first)
        if match is None:
            raise element.error(
                f"unknown ESP encryption algorithm {first!r}; allowed: {_ESP_CIPHERS_ALLOWED}"
            )
        gcm = match
        cipher = ESP_CIPHERS["aes_cbc" if match.group("family") == "aes" else "3des_cbc"]
    bits, index = gcm.group("bits"), 1
    if bits is None:
        bits, index = _take_key_length(tokens, index)
    key_bits = _key_bits(element, first, bits, cipher.key_bits, cipher.default_key_bits)
    return cipher, key_bits, index


def parse_esp(text: str) -> tuple[EspProposal, ...]:
    """Parse an ``esp=`` / ``phase2alg=`` string into concrete ESP proposals, in order.

    Each element is ``cipher[keylen][-integrity][-pfsgroup]``: ``aes128-sha1``,
    ``aes256-sha2_256-modp2048``, ``3des-sha1``, ``aes_gcm256`` (AEAD: no
    integrity, or ``-null``), ``aes128gcm16``.  A CBC cipher without integrity
    expands to :data:`ESP_INTEGRITY_WHEN_OMITTED`.
    """
    proposals: list[EspProposal] = []
    for element in _split_elements("esp", text):
        tokens = _tokens(element)
        cipher, key_bits, index = _parse_esp_cipher(element, tokens)

        integrities: tuple[str | None, ...]
        integrities = (None,) if cipher.aead else ESP_INTEGRITY_WHEN_OMITTED
        if index < len(tokens) and not _looks_like_group(tokens[index]):
            token = tokens[index]
            if _is_des(token):
                raise RefusedAlgorithm(DES_ESP_REFUSAL)
            if token == "null":
                if not cipher.aead:
                    raise element.error(
                        f"integrity 'null' is not allowed with {cipher.name}; "
                        "only an AEAD cipher (aes_gcm) may go without integrity"
                    )
            elif token not in _HASH_ALIASES:
                raise element.error(
                    f"unknown ESP integrity algorithm {token!r}; allowed: {_allowed_hashes()}"
                )
            elif cipher.aead:
                raise element.error(
                    f"integrity {token!r} is not allowed with the AEAD cipher {cipher.name}; "
                    "allowed: null or nothing"
                )
            else:
                integrities = (_HASH_ALIASES[token],)
            index += 1
        pfs_group = None
        if index < len(tokens):
            pfs_group = _parse_group(element, tokens[index])
            index += 1
        if index < len(tokens):
            raise element.error(f"unexpected {tokens[index]!r} after the PFS group")
        for integ in integrities:
            proposals.append(EspProposal(cipher.name, key_bits, integ, pfs_group))
    return _dedupe(proposals)


def format_proposal(proposal: Proposal) -> str:
    """Pluto-style name for logs: ``AES_CBC_128-HMAC_SHA1-MODP2048``, ``AES_GCM_16_256``;
    IKEv2 forms ``AES_GCM_16_256-PRF_HMAC_SHA2_256-MODP2048`` (AEAD: no integrity) and
    ``AES_CBC_128-HMAC_SHA2_256-PRF_HMAC_SHA2_384-ECP_256`` (a PRF of its own)."""
    if isinstance(proposal, IkeProposal):
        cipher = proposal.cipher_algorithm
        enc = f"{cipher.log_name}_{proposal.key_bits}" if cipher.variable_key else cipher.log_name
        parts = [enc]
        if not proposal.aead:
            parts.append(proposal.hash_algorithm.log_name)
        if proposal.aead or proposal.prf is not None:
            parts.append(f"PRF_{proposal.prf_algorithm.log_name}")
        return "-".join([*parts, proposal.dh_group.name])
    esp_cipher = proposal.cipher_algorithm
    name = esp_cipher.log_name
    parts = [f"{name}_{proposal.key_bits}" if esp_cipher.variable_key else name]
    integ = proposal.integrity_algorithm
    if integ is not None:
        parts.append(integ.log_name)
    if proposal.pfs_group is not None:
        parts.append(GROUPS[proposal.pfs_group].name)
    return "-".join(parts)


def format_proposals(proposals: Iterable[Proposal]) -> str:
    """Several proposals for one log line, comma separated."""
    return ", ".join(format_proposal(p) for p in proposals)
