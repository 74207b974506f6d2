"""IKEv2 cryptography, pure, through ``cryptography``: the PRF and prf+,
SKEYSEED and the IKE SA's seven keys (RFC 7296 2.13-2.14, 2.18), the
signed octets and the PSK AUTH (2.15), and the SK/SKF payloads (3.14,
RFC 5282 for AES-GCM, RFC 7383 for fragments).

Randomness is an argument (an IV, or a ``random(n)`` callable) so that the
same inputs give the same bytes in tests.  Rules for the engine:

* :class:`IntegrityError` from :func:`unprotect`/:func:`unprotect_fragment`
  means "drop silently": nothing in the SK body is authenticated yet, so a
  short body, a bad ICV/tag or impossible padding are all the same to us;
* :class:`MalformedMessage` from the same calls is about the cleartext
  header chain or the (authenticated) inner payloads: those may be
  answered (INVALID_SYNTAX, UNSUPPORTED_CRITICAL_PAYLOAD).
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from dataclasses import dataclass, replace
from typing import Callable, Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from .constants import (
    GENERIC_HEADER_SIZE,
    HEADER_SIZE,
    KEY_PAD,
    EncrId,
    IntegId,
    PayloadType,
    PrfId,
    TransformType,
)
from .errors import IntegrityError, MalformedMessage
from .message import Header, Message, decode_message, decode_payloads, encode_generic, encode_payloads, first_type
from .payloads import Encrypted, EncryptedFragment, Payload, Proposal

# ---------------------------------------------------------------------------
# PRF and prf+

_PRF_HASH: dict[int, str] = {
    PrfId.HMAC_MD5: "md5",
    PrfId.HMAC_SHA1: "sha1",
    PrfId.HMAC_SHA2_256: "sha256",
    PrfId.HMAC_SHA2_384: "sha384",
    PrfId.HMAC_SHA2_512: "sha512",
}

#: integrity transform -> (hash, key bytes, ICV bytes)
_INTEG: dict[int, tuple[str, int, int]] = {
    IntegId.HMAC_MD5_96: ("md5", 16, 12),
    IntegId.HMAC_SHA1_96: ("sha1", 20, 12),
    IntegId.HMAC_SHA2_256_128: ("sha256", 32, 16),
    IntegId.HMAC_SHA2_384_192: ("sha384", 48, 24),
    IntegId.HMAC_SHA2_512_256: ("sha512", 64, 32),
}

#: AEAD encryption transform -> ICV bytes
_GCM_ICV = {EncrId.AES_GCM_8: 8, EncrId.AES_GCM_12: 12, EncrId.AES_GCM_16: 16}
_AEAD_SALT = 4  #: RFC 5282 / 7634: the key material's last 4 bytes
_AEAD_IV = 8


def _hmac(algorithm: str, key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, algorithm).digest()


def prf_size(prf_id: int) -> int:
    """The PRF's output length, which is also SK_d's and SK_p's length."""
    return hashlib.new(_prf_hash(prf_id)).digest_size


def _prf_hash(prf_id: int) -> str:
    try:
        return _PRF_HASH[prf_id]
    except KeyError:
        raise ValueError(f"unsupported PRF {prf_id}") from None


def prf(prf_id: int, key: bytes, data: bytes) -> bytes:
    """prf(K, S) of RFC 7296: HMAC with the negotiated hash (any key length)."""
    return _hmac(_prf_hash(prf_id), key, data)


def prf_plus(prf_id: int, key: bytes, seed: bytes, length: int) -> bytes:
    """prf+(K, S) = T1 | T2 | ..., Tn = prf(K, Tn-1 | S | n), n at most 255."""
    out, block, counter = b"", b"", 1
    while len(out) < length:
        if counter > 255:
            raise ValueError(f"prf+ cannot make {length} bytes")
        block = prf(prf_id, key, block + seed + bytes([counter]))
        out += block
        counter += 1
    return out[:length]


# ---------------------------------------------------------------------------
# The negotiated suite and the IKE SA's keys


@dataclass(frozen=True)
class IkeSuite:
    """What the IKE SA's chosen proposal fixes for its keys and SK."""

    encr: int  #: EncrId
    key_bits: int  #: the cipher key length (the Key Length attribute)
    prf: int  #: PrfId
    integ: int = IntegId.NONE  #: NONE for AEAD ciphers

    def __post_init__(self) -> None:
        _prf_hash(self.prf)
        if self.encr == EncrId.AES_CBC:
            if self.integ not in _INTEG:
                raise ValueError(f"AES-CBC needs a supported integrity transform, not {self.integ}")
        elif self.encr in _GCM_ICV or self.encr == EncrId.CHACHA20_POLY1305:
            if self.integ != IntegId.NONE:
                raise ValueError("an AEAD cipher takes no integrity transform")
        else:
            raise ValueError(f"unsupported encryption transform {self.encr}")
        allowed = (256,) if self.encr == EncrId.CHACHA20_POLY1305 else (128, 192, 256)
        if self.key_bits not in allowed:
            raise ValueError(f"key length {self.key_bits} not in {allowed}")

    @classmethod
    def from_proposal(cls, proposal: Proposal) -> IkeSuite:
        """The suite of a chosen proposal (one transform of each type)."""
        found: dict[int, tuple[int, int | None]] = {}
        for transform in proposal.transforms:
            found.setdefault(transform.type, (transform.id, transform.key_length))
        encr, key_bits = found.get(TransformType.ENCR, (0, None))
        prf_id = found.get(TransformType.PRF, (0, None))[0]
        integ = found.get(TransformType.INTEG, (IntegId.NONE, None))[0]
        if key_bits is None:
            key_bits = 256 if encr == EncrId.CHACHA20_POLY1305 else 0
        return cls(encr, key_bits, prf_id, integ)

    @property
    def aead(self) -> bool:
        return self.encr != EncrId.AES_CBC

    @property
    def encr_key_size(self) -> int:
        """SK_e's length: the cipher key, plus the salt for AEAD."""
        return self.key_bits // 8 + (_AEAD_SALT if self.aead else 0)

    @property
    def integ_key_size(self) -> int:
        return _INTEG[self.integ][1] if not self.aead else 0

    @property
    def icv_size(self) -> int:
        if self.encr == EncrId.CHACHA20_POLY1305:
            return 16
        return _GCM_ICV[EncrId(self.encr)] if self.aead else _INTEG[self.integ][2]

    @property
    def iv_size(self) -> int:
        return _AEAD_IV if self.aead else 16

    @property
    def block_size(self) -> int:
        return 1 if self.aead else 16

    def sealed_size(self, plain: int) -> int:
        """IV + ciphertext (with padding and pad length) + ICV for ``plain`` bytes."""
        padded = -(-(plain + 1) // self.block_size) * self.block_size
        return self.iv_size + padded + self.icv_size

    def max_plain(self, sealed: int) -> int:
        """The most inner bytes that fit a body of ``sealed`` bytes."""
        room = sealed - self.iv_size - self.icv_size
        return (room // self.block_size) * self.block_size - 1


@dataclass(frozen=True, repr=False)
class SkKeys:
    """The keys that protect one direction: SK_e and SK_a of one sender."""

    encryption: bytes
    integrity: bytes = b""

    def __repr__(self) -> str:
        return "SkKeys(<hidden>)"


@dataclass(frozen=True, repr=False)
class IkeSaKeys:
    """SK_d, SK_ai, SK_ar, SK_ei, SK_er, SK_pi, SK_pr (RFC 7296 2.14)."""

    sk_d: bytes
    sk_ai: bytes
    sk_ar: bytes
    sk_ei: bytes
    sk_er: bytes
    sk_pi: bytes
    sk_pr: bytes

    def __repr__(self) -> str:
        return "IkeSaKeys(<hidden>)"

    def sender(self, initiator: bool) -> SkKeys:
        """The keys of messages sent by the original initiator (or not)."""
        if initiator:
            return SkKeys(self.sk_ei, self.sk_ai)
        return SkKeys(self.sk_er, self.sk_ar)

    def sk_p(self, initiator: bool) -> bytes:
        return self.sk_pi if initiator else self.sk_pr


def skeyseed(prf_id: int, nonce_i: bytes, nonce_r: bytes, shared: bytes) -> bytes:
    """SKEYSEED = prf(Ni | Nr, g^ir) for a new IKE SA."""
    return prf(prf_id, nonce_i + nonce_r, shared)


def rekey_skeyseed(prf_id: int, old_sk_d: bytes, shared: bytes, nonce_i: bytes, nonce_r: bytes) -> bytes:
    """SKEYSEED = prf(SK_d (old), g^ir (new) | Ni | Nr) for an IKE SA rekey (2.18)."""
    return prf(prf_id, old_sk_d, shared + nonce_i + nonce_r)


def derive_ike_keys(
    suite: IkeSuite, seed_key: bytes, nonce_i: bytes, nonce_r: bytes, spi_i: bytes, spi_r: bytes
) -> IkeSaKeys:
    """The seven keys = prf+(SKEYSEED, Ni | Nr | SPIi | SPIr), cut in order."""
    sizes = [
        prf_size(suite.prf),
        suite.integ_key_size,
        suite.integ_key_size,
        suite.encr_key_size,
        suite.encr_key_size,
        prf_size(suite.prf),
        prf_size(suite.prf),
    ]
    stream = prf_plus(suite.prf, seed_key, nonce_i + nonce_r + spi_i + spi_r, sum(sizes))
    keys, offset = [], 0
    for size in sizes:
        keys.append(stream[offset : offset + size])
        offset += size
    return IkeSaKeys(*keys)


def child_keymat(prf_id: int, sk_d: bytes, nonce_i: bytes, nonce_r: bytes, length: int, shared: bytes = b"") -> bytes:
    """KEYMAT = prf+(SK_d, [g^ir (new) |] Ni | Nr) for a Child SA (2.17)."""
    return prf_plus(prf_id, sk_d, shared + nonce_i + nonce_r, length)


# ---------------------------------------------------------------------------
# AUTH (2.15)


def signed_octets(prf_id: int, message: bytes, peer_nonce: bytes, sk_p: bytes, id_body: bytes) -> bytes:
    """RealMessage | Nonce(other side) | prf(SK_px, IDx').

    ``message`` is our first message (IKE_SA_INIT request or response) as
    sent, ``id_body`` our ID payload without its generic header.
    """
    return message + peer_nonce + prf(prf_id, sk_p, id_body)


def psk_auth(prf_id: int, secret: bytes, octets: bytes) -> bytes:
    """AUTH = prf(prf(Shared Secret, "Key Pad for IKEv2"), <SignedOctets>)."""
    return prf(prf_id, prf(prf_id, secret, KEY_PAD), octets)


def verify_psk_auth(prf_id: int, secret: bytes, octets: bytes, received: bytes) -> bool:
    """Whether the peer's AUTH data is right, compared in constant time."""
    return hmac.compare_digest(psk_auth(prf_id, secret, octets), received)


# ---------------------------------------------------------------------------
# SK and SKF payloads


def _seal(suite: IkeSuite, keys: SkKeys, head: bytes, inner: bytes, iv: bytes) -> bytes:
    """IV | ciphertext | ICV, where ``head`` is every byte before the IV."""
    if len(iv) != suite.iv_size:
        raise ValueError(f"IV of {len(iv)} bytes, not {suite.iv_size}")
    pad = (-(len(inner) + 1)) % suite.block_size
    plain = inner + bytes(pad) + bytes([pad])
    if suite.aead:
        key, salt = keys.encryption[:-_AEAD_SALT], keys.encryption[-_AEAD_SALT:]
        if suite.encr == EncrId.CHACHA20_POLY1305:
            return iv + ChaCha20Poly1305(key).encrypt(salt + iv, plain, head)
        gcm = Cipher(algorithms.AES(key), modes.GCM(salt + iv)).encryptor()
        gcm.authenticate_additional_data(head)
        sealed = gcm.update(plain) + gcm.finalize()
        return iv + sealed + gcm.tag[: suite.icv_size]
    encryptor = Cipher(algorithms.AES(keys.encryption), modes.CBC(iv)).encryptor()
    body = iv + encryptor.update(plain) + encryptor.finalize()
    digest, _, icv = _INTEG[suite.integ]
    return body + _hmac(digest, keys.integrity, head + body)[:icv]


def _open(suite: IkeSuite, keys: SkKeys, head: bytes, body: bytes) -> bytes:
    """The inner payload bytes of a sealed body, padding removed."""
    size = len(body) - suite.iv_size - suite.icv_size
    if size < 1 or size % suite.block_size:
        shape = f"{suite.iv_size}+n*{suite.block_size}+{suite.icv_size}"
        raise IntegrityError(f"encrypted body of {len(body)} bytes is not {shape}")
    iv = body[: suite.iv_size]
    icv = body[len(body) - suite.icv_size :]
    cipher_text = body[suite.iv_size : len(body) - suite.icv_size]
    if suite.aead:
        key, salt = keys.encryption[:-_AEAD_SALT], keys.encryption[-_AEAD_SALT:]
        try:
            if suite.encr == EncrId.CHACHA20_POLY1305:
                plain = ChaCha20Poly1305(key).decrypt(salt + iv, cipher_text + icv, head)
            else:
                gcm = Cipher(algorithms.AES(key), modes.GCM(salt + iv, icv, min_tag_length=len(icv))).decryptor()
                gcm.authenticate_additional_data(head)
                plain = gcm.update(cipher_text) + gcm.finalize()
        except InvalidTag:
            raise IntegrityError("AEAD tag mismatch") from None
    else:
        digest, _, _ = _INTEG[suite.integ]
        expected = _hmac(digest, keys.integrity, head + body[: len(body) - suite.icv_size])[: suite.icv_size]
        if not hmac.compare_digest(expected, icv):
            raise IntegrityError("ICV mismatch")
        decryptor = Cipher(algorithms.AES(keys.encryption), modes.CBC(iv)).decryptor()
        plain = decryptor.update(cipher_text) + decryptor.finalize()
    pad = plain[-1]
    if pad + 1 > len(plain):
        raise IntegrityError(f"pad length {pad} in {len(plain)} decrypted bytes")
    return plain[: len(plain) - pad - 1]


def _clear_part(cleartext: Sequence[Payload], last_next: int) -> bytes:
    """Cleartext payloads before an SK/SKF, the last one naming it."""
    parts = []
    for index, payload in enumerate(cleartext):
        following = cleartext[index + 1].payload_type if index + 1 < len(cleartext) else last_next
        parts.append(encode_generic(payload, following))
    return b"".join(parts)


def protect(
    suite: IkeSuite,
    keys: SkKeys,
    header: Header,
    inner: Sequence[Payload],
    iv: bytes,
    cleartext: Sequence[Payload] = (),
) -> bytes:
    """A whole datagram: header, cleartext payloads, and SK holding ``inner``."""
    plain = encode_payloads(inner)
    clear = _clear_part(cleartext, PayloadType.SK)
    sk_length = GENERIC_HEADER_SIZE + suite.sealed_size(len(plain))
    first = cleartext[0].payload_type if cleartext else PayloadType.SK
    out_header = replace(header, next_payload=first, length=HEADER_SIZE + len(clear) + sk_length)
    head = out_header.encode() + clear + struct.pack("!BBH", first_type(inner), 0, sk_length)
    return head + _seal(suite, keys, head, plain, iv)


def _head_of(data: bytes, body: bytes) -> bytes:
    """Everything before the IV: the SK/SKF payload is the datagram's end."""
    return data[: len(data) - len(body)]


def unprotect(suite: IkeSuite, keys: SkKeys, data: bytes) -> Message:
    """The message with its SK payload replaced by the payloads inside."""
    message = decode_message(data)
    sk = message.encrypted
    if not isinstance(sk, Encrypted):
        raise MalformedMessage("no encrypted payload", "message")
    plain = _open(suite, keys, _head_of(data, sk.body), sk.body)
    inner = decode_payloads(sk.first_payload, plain, "encrypted payload", inside_sk=True)
    return Message(message.header, message.payloads[:-1] + inner)


@dataclass(frozen=True)
class Fragment:
    """One opened SKF: its place and its share of the inner payload bytes."""

    number: int
    total: int
    first_payload: int  #: non-zero in fragment 1 only
    plain: bytes


def protect_fragments(
    suite: IkeSuite,
    keys: SkKeys,
    header: Header,
    inner: Sequence[Payload],
    max_message: int,
    random: Callable[[int], bytes],
) -> list[bytes]:
    """``inner`` cut into SKF messages of at most ``max_message`` bytes each.

    ``max_message`` is the IKE message size (the caller takes off IP, UDP
    and the non-ESP marker); fragments share the header's message ID.
    """
    plain = encode_payloads(inner)
    overhead = HEADER_SIZE + GENERIC_HEADER_SIZE + EncryptedFragment.HEADER
    chunk = suite.max_plain(max_message - overhead)
    if chunk < 1:
        raise ValueError(f"fragments of {max_message} bytes leave no room for data")
    pieces = [plain[i : i + chunk] for i in range(0, len(plain), chunk)] or [b""]
    if len(pieces) > 0xFFFF:
        raise ValueError("too many fragments")
    out = []
    for number, piece in enumerate(pieces, 1):
        length = GENERIC_HEADER_SIZE + EncryptedFragment.HEADER + suite.sealed_size(len(piece))
        first = first_type(inner) if number == 1 else PayloadType.NONE
        hdr = replace(header, next_payload=PayloadType.SKF, length=HEADER_SIZE + length)
        head = hdr.encode() + struct.pack("!BBHHH", first, 0, length, number, len(pieces))
        out.append(head + _seal(suite, keys, head, piece, random(suite.iv_size)))
    return out


def unprotect_fragment(suite: IkeSuite, keys: SkKeys, data: bytes) -> tuple[Header, Fragment]:
    """One SKF message opened: its header and its fragment."""
    message = decode_message(data)
    skf = message.encrypted
    if not isinstance(skf, EncryptedFragment) or len(message.payloads) != 1:
        raise MalformedMessage("a fragment message holds exactly one SKF payload", "message")
    plain = _open(suite, keys, _head_of(data, skf.body), skf.body)
    return message.header, Fragment(skf.number, skf.total, skf.first_payload, plain)


def reassemble(header: Header, fragments: Sequence[Fragment]) -> Message:
    """The message a complete set of fragments carries (RFC 7383 2.6)."""
    by_number = {f.number: f for f in fragments}
    total = fragments[0].total if fragments else 0
    if not total or any(f.total != total for f in fragments) or sorted(by_number) != list(range(1, total + 1)):
        raise MalformedMessage("incomplete or inconsistent set of fragments", "fragments")
    plain = b"".join(by_number[n].plain for n in range(1, total + 1))
    inner = decode_payloads(by_number[1].first_payload, plain, "reassembled message", inside_sk=True)
    return Message(header, inner)
