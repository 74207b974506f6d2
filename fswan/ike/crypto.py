"""The IKEv1 key schedule and the ISAKMP CBC encryption (RFC 2409).

Rules of this module:

* Pure functions over bytes: no I/O, no clock, no Twisted.  Randomness only
  through an injected ``random_bytes`` (RSA blinding in the Python fallback),
  ``os.urandom`` by default.
* No big-integer arithmetic in Python on the handshake path: the RSA private
  and public operations run in OpenSSL (see "RSA signatures" below for the
  routes measured and why this one).
* Every input is the exact wire bytes RFC 2409 names (``Ni_b`` is the nonce
  payload *body*, ``SAi_b`` the SA payload body without its generic header,
  g^x values left-padded to the modulus length); callers never pre-hash.
* The PRF is HMAC over the negotiated hash (RFC 2409 section 4); hashes are
  compared with :func:`constant_time_equal` only.
* Single DES is refused wherever it could be asked for, with pluto's words
  (``OAKLEY_DES_CBC is not supported``).
* No key, IV or plaintext ever appears in a repr or an exception message.

The map (RFC 2409 section 5, appendix B):

=================  ====================================================
SKEYID             PSK: prf(psk, Ni_b | Nr_b); signatures: prf(Ni_b | Nr_b, g^xy)
SKEYID_d / a / e   prf(SKEYID, [previous |] g^xy | CKY-I | CKY-R | 0/1/2)
phase-1 key        SKEYID_e, or K1|K2|... with K1 = prf(SKEYID_e, 0x00),
                   Kn = prf(SKEYID_e, Kn-1) when SKEYID_e is too short
HASH_I / HASH_R    prf(SKEYID, g^xi | g^xr | CKY-I | CKY-R | SAi_b | IDii_b)
                   and prf(SKEYID, g^xr | g^xi | CKY-R | CKY-I | SAi_b | IDir_b)
phase-1 IV         hash(g^xi | g^xr), truncated to the cipher block
phase-2 IV         hash(last phase-1 CBC block | M-ID), truncated
QM HASH(1/2/3)     prf(SKEYID_a, M-ID | rest), (M-ID | Ni_b | rest),
                   (0x00 | M-ID | Ni_b | Nr_b)
KEYMAT             prf(SKEYID_d, [g(qm)^xy |] protocol | SPI | Ni_b | Nr_b),
                   expanded Kn = prf(SKEYID_d, Kn-1 | same seed)
=================  ====================================================
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
from dataclasses import dataclass, field
from typing import Callable, Union

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
from cryptography.hazmat.primitives.ciphers.algorithms import AES
from cryptography.hazmat.primitives.ciphers.modes import CBC

from fswan.suites import (
    DES_IKE_REFUSAL,
    EspKeys,
    EspProposal,
    HashAlgorithm,
    IkeCipherAlgorithm,
    UnsupportedAlgorithm,
    get_hash,
    get_ike_cipher,
    hash_by_id,
    ike_cipher_by_id,
)

try:  # cryptography >= 43 keeps 3DES under "decrepit"
    from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
except ImportError:  # pragma: no cover - older cryptography
    TripleDES = algorithms.TripleDES  # type: ignore[attr-defined,misc]

__all__ = [
    "DecryptError",
    "EspKeys",
    "Phase1Crypter",
    "Phase1Keys",
    "PROTO_IPSEC_ESP",
    "RSA_SIGN_BACKEND",
    "UnsupportedAlgorithm",
    "constant_time_equal",
    "derive_esp_keys",
    "derive_phase1_keys",
    "digest",
    "encryption_key",
    "hash_i",
    "hash_r",
    "informational_hash",
    "keymat",
    "phase1_iv",
    "phase2_iv",
    "prf",
    "qm_hash1",
    "qm_hash2",
    "qm_hash3",
    "rsa_sign_hash",
    "rsa_verify_hash",
    "skeyid_psk",
    "skeyid_sig",
    "split_keymat",
]

RandomBytes = Callable[[int], bytes]
HashLike = Union[HashAlgorithm, str, int]
CipherLike = Union[IkeCipherAlgorithm, str, int]

#: IPsec DOI protocol ID for ESP (RFC 2407 section 4.4.1), the KEYMAT "protocol"
PROTO_IPSEC_ESP = 3


class DecryptError(ValueError):
    """An encrypted ISAKMP body that cannot be decrypted (bad length)."""


# --------------------------------------------------------------------------
# primitives


def _hash(h: HashLike) -> HashAlgorithm:
    if isinstance(h, HashAlgorithm):
        return h
    if isinstance(h, int):
        return hash_by_id(h)
    return get_hash(h)


def _cipher(c: CipherLike) -> IkeCipherAlgorithm:
    if isinstance(c, IkeCipherAlgorithm):
        return c
    if isinstance(c, int):
        return ike_cipher_by_id(c)
    return get_ike_cipher(c)


def prf(h: HashLike, key: bytes, data: bytes) -> bytes:
    """The IKEv1 PRF: HMAC with the negotiated hash (no PRF attribute is ever negotiated)."""
    return hmac.new(key, data, _hash(h).hashlib_name).digest()


def digest(h: HashLike, data: bytes) -> bytes:
    """The plain hash, used only for the IVs (RFC 2409 appendix B)."""
    return hashlib.new(_hash(h).hashlib_name, data).digest()


def constant_time_equal(a: bytes, b: bytes) -> bool:
    """Compare hashes/signatures without leaking where they first differ."""
    return hmac.compare_digest(a, b)


def _mid(message_id: int) -> bytes:
    if not 0 <= message_id <= 0xFFFFFFFF:
        raise ValueError("message ID must fit in 32 bits")
    return struct.pack("!I", message_id)


def _spi(spi: int | bytes) -> bytes:
    if isinstance(spi, int):
        if not 0 <= spi <= 0xFFFFFFFF:
            raise ValueError("SPI must fit in 32 bits")
        return struct.pack("!I", spi)
    return bytes(spi)


# --------------------------------------------------------------------------
# phase 1


def skeyid_psk(h: HashLike, psk: bytes, ni_b: bytes, nr_b: bytes) -> bytes:
    """SKEYID for pre-shared-key authentication: prf(pre-shared-key, Ni_b | Nr_b)."""
    return prf(h, psk, ni_b + nr_b)


def skeyid_sig(h: HashLike, ni_b: bytes, nr_b: bytes, g_xy: bytes) -> bytes:
    """SKEYID for signature authentication: prf(Ni_b | Nr_b, g^xy)."""
    return prf(h, ni_b + nr_b, g_xy)


def encryption_key(h: HashLike, skeyid_e: bytes, length: int) -> bytes:
    """The phase-1 cipher key from SKEYID_e (RFC 2409 appendix B).

    SKEYID_e is used directly when long enough; otherwise it is expanded as
    K1 = prf(SKEYID_e, 0x00), K2 = prf(SKEYID_e, K1), ... and truncated (3DES
    with MD5 or SHA1 needs this).
    """
    if length <= len(skeyid_e):
        return skeyid_e[:length]
    out = b""
    block = prf(h, skeyid_e, b"\x00")
    while True:
        out += block
        if len(out) >= length:
            return out[:length]
        block = prf(h, skeyid_e, block)


@dataclass(frozen=True)
class Phase1Keys:
    """SKEYID and its three children plus the phase-1 cipher key, for one ISAKMP SA."""

    hash: HashAlgorithm
    skeyid: bytes = field(repr=False)
    skeyid_d: bytes = field(repr=False)
    skeyid_a: bytes = field(repr=False)
    skeyid_e: bytes = field(repr=False)
    #: the phase-1 cipher key (Ka in strongSwan's logs)
    enc_key: bytes = field(repr=False)


def derive_phase1_keys(
    h: HashLike,
    skeyid: bytes,
    g_xy: bytes,
    cky_i: bytes,
    cky_r: bytes,
    cipher: CipherLike,
    key_bits: int | None = None,
) -> Phase1Keys:
    """SKEYID_d/a/e (RFC 2409 section 5) and the cipher key of ``key_bits``.

    SKEYID_d = prf(SKEYID, g^xy | CKY-I | CKY-R | 0)
    SKEYID_a = prf(SKEYID, SKEYID_d | g^xy | CKY-I | CKY-R | 1)
    SKEYID_e = prf(SKEYID, SKEYID_a | g^xy | CKY-I | CKY-R | 2)
    """
    hash_alg = _hash(h)
    alg = _cipher(cipher)
    bits = alg.default_key_bits if key_bits is None else key_bits
    if bits not in alg.key_bits:
        raise UnsupportedAlgorithm(f"{alg.log_name} with a {bits}-bit key is not supported")
    if len(cky_i) != 8 or len(cky_r) != 8:
        raise ValueError("ISAKMP cookies are 8 bytes each")
    tail = g_xy + cky_i + cky_r
    skeyid_d = prf(hash_alg, skeyid, tail + b"\x00")
    skeyid_a = prf(hash_alg, skeyid, skeyid_d + tail + b"\x01")
    skeyid_e = prf(hash_alg, skeyid, skeyid_a + tail + b"\x02")
    return Phase1Keys(
        hash_alg, skeyid, skeyid_d, skeyid_a, skeyid_e,
        encryption_key(hash_alg, skeyid_e, bits // 8),
    )


def hash_i(
    h: HashLike, skeyid: bytes, g_xi: bytes, g_xr: bytes, cky_i: bytes, cky_r: bytes,
    sa_i_b: bytes, id_ii_b: bytes,
) -> bytes:
    """HASH_I = prf(SKEYID, g^xi | g^xr | CKY-I | CKY-R | SAi_b | IDii_b)."""
    return prf(h, skeyid, g_xi + g_xr + cky_i + cky_r + sa_i_b + id_ii_b)


def hash_r(
    h: HashLike, skeyid: bytes, g_xi: bytes, g_xr: bytes, cky_i: bytes, cky_r: bytes,
    sa_i_b: bytes, id_ir_b: bytes,
) -> bytes:
    """HASH_R = prf(SKEYID, g^xr | g^xi | CKY-R | CKY-I | SAi_b | IDir_b).

    Arguments come in the same initiator-first order as :func:`hash_i`; the
    swap RFC 2409 asks for happens here.
    """
    return prf(h, skeyid, g_xr + g_xi + cky_r + cky_i + sa_i_b + id_ir_b)


def phase1_iv(h: HashLike, g_xi: bytes, g_xr: bytes, block_size: int) -> bytes:
    """The first phase-1 IV: hash(g^xi | g^xr) truncated to the block size."""
    return digest(h, g_xi + g_xr)[:block_size]


def phase2_iv(h: HashLike, phase1_last_block: bytes, message_id: int, block_size: int) -> bytes:
    """First IV of a Quick Mode / informational exchange: hash(last phase-1 block | M-ID)."""
    return digest(h, phase1_last_block + _mid(message_id))[:block_size]


# --------------------------------------------------------------------------
# phase 2 hashes


def qm_hash1(h: HashLike, skeyid_a: bytes, message_id: int, payloads: bytes) -> bytes:
    """Quick Mode HASH(1) = prf(SKEYID_a, M-ID | SA | Ni [| KE] [| IDci | IDcr]).

    ``payloads`` are the raw payloads after the HASH payload, generic headers
    included, padding excluded.
    """
    return prf(h, skeyid_a, _mid(message_id) + payloads)


def qm_hash2(h: HashLike, skeyid_a: bytes, message_id: int, ni_b: bytes, payloads: bytes) -> bytes:
    """Quick Mode HASH(2) = prf(SKEYID_a, M-ID | Ni_b | SA | Nr [| KE] [| IDci | IDcr])."""
    return prf(h, skeyid_a, _mid(message_id) + ni_b + payloads)


def qm_hash3(h: HashLike, skeyid_a: bytes, message_id: int, ni_b: bytes, nr_b: bytes) -> bytes:
    """Quick Mode HASH(3) = prf(SKEYID_a, 0 | M-ID | Ni_b | Nr_b)."""
    return prf(h, skeyid_a, b"\x00" + _mid(message_id) + ni_b + nr_b)


def informational_hash(h: HashLike, skeyid_a: bytes, message_id: int, payloads: bytes) -> bytes:
    """Informational HASH(1) = prf(SKEYID_a, M-ID | N/D) (RFC 2409 section 5.7)."""
    return prf(h, skeyid_a, _mid(message_id) + payloads)


# --------------------------------------------------------------------------
# KEYMAT


def keymat(
    h: HashLike,
    skeyid_d: bytes,
    protocol: int,
    spi: int | bytes,
    ni_b: bytes,
    nr_b: bytes,
    length: int,
    g_qm_xy: bytes | None = None,
) -> bytes:
    """KEYMAT for one SA direction (RFC 2409 section 5.5), ``length`` bytes.

    The SPI is the one the *receiving* end chose.  With PFS the Quick Mode
    shared secret g(qm)^xy comes first.  Longer output is K1 | K2 | ... with
    Kn = prf(SKEYID_d, Kn-1 | seed).
    """
    seed = (g_qm_xy or b"") + bytes([protocol]) + _spi(spi) + ni_b + nr_b
    out = b""
    block = b""
    while len(out) < length:
        block = prf(h, skeyid_d, block + seed)
        out += block
    return out[:length]


def split_keymat(proposal: EspProposal, material: bytes) -> EspKeys:
    """Split KEYMAT by the proposal's sizes: encryption key [+ salt], integrity key."""
    if len(material) < proposal.keymat_length:
        raise ValueError(
            f"KEYMAT is {len(material)} bytes; {proposal.keymat_length} required for {proposal}"
        )
    enc_len = proposal.encryption_key_size
    salt_len = proposal.cipher_algorithm.salt_size
    integ = proposal.integrity_algorithm
    integ_len = integ.key_size if integ is not None else 0
    return EspKeys(
        encryption_key=material[:enc_len],
        salt=material[enc_len:enc_len + salt_len],
        integrity_key=material[enc_len + salt_len:enc_len + salt_len + integ_len],
    )


def derive_esp_keys(
    h: HashLike,
    skeyid_d: bytes,
    proposal: EspProposal,
    spi: int | bytes,
    ni_b: bytes,
    nr_b: bytes,
    g_qm_xy: bytes | None = None,
) -> EspKeys:
    """KEYMAT for the ESP SA whose receiver chose ``spi``, split for ``proposal``."""
    material = keymat(
        h, skeyid_d, PROTO_IPSEC_ESP, spi, ni_b, nr_b, proposal.keymat_length, g_qm_xy
    )
    return split_keymat(proposal, material)


# --------------------------------------------------------------------------
# ISAKMP CBC with IV chaining


class Phase1Crypter:
    """Encrypts and decrypts the bodies of one ISAKMP SA's messages.

    RFC 2409 appendix B chains CBC across messages: the IV of each message is
    the last ciphertext block of the previous one *in the same exchange*,
    whichever side sent it.  Message ID 0 is the phase-1 chain, started from
    :func:`phase1_iv`.  Every other message ID (Quick Mode, informational)
    starts its own chain from hash(last phase-1 block | M-ID) the first time
    it is used; :meth:`forget` drops a finished exchange's chain.

    A retransmitted peer message must be recognised (by its raw bytes) before
    it reaches :meth:`decrypt`: the chain has already moved past it.

    Bodies are padded with zeros to the block size on encrypt.  On decrypt the
    padding is returned with the plaintext: IKEv1 tolerates any padding, and
    the payload parser stops at the last payload.
    """

    def __init__(self, cipher: CipherLike, key: bytes, h: HashLike, iv: bytes) -> None:
        self.cipher = _cipher(cipher)
        self.hash = _hash(h)
        if len(key) * 8 not in self.cipher.key_bits:
            raise UnsupportedAlgorithm(
                f"{self.cipher.log_name} with a {len(key) * 8}-bit key is not supported"
            )
        if len(iv) != self.cipher.block_size:
            raise ValueError(f"{self.cipher.log_name} IV must be {self.cipher.block_size} bytes")
        self._key = bytes(key)
        self._ivs: dict[int, bytes] = {0: bytes(iv)}
        # one key object for every message of the SA (the modules behind ``algorithms.`` and
        # ``modes.`` look names up in Python on each access)
        self._algorithm = self._make_algorithm()

    @classmethod
    def for_phase1(
        cls, keys: Phase1Keys, cipher: CipherLike, g_xi: bytes, g_xr: bytes
    ) -> "Phase1Crypter":
        """A crypter for a fresh ISAKMP SA, its IV from hash(g^xi | g^xr)."""
        alg = _cipher(cipher)
        return cls(alg, keys.enc_key, keys.hash, phase1_iv(keys.hash, g_xi, g_xr, alg.block_size))

    @property
    def block_size(self) -> int:
        return self.cipher.block_size

    def iv(self, message_id: int = 0) -> bytes:
        """The IV the next message with this ID will use (derived on first use)."""
        current = self._ivs.get(message_id)
        if current is None:
            current = phase2_iv(self.hash, self._ivs[0], message_id, self.block_size)
            self._ivs[message_id] = current
        return current

    def set_iv(self, message_id: int, iv: bytes) -> None:
        """Restore a saved IV, e.g. after a decrypted message failed its HASH check."""
        if len(iv) != self.block_size:
            raise ValueError(f"IV must be {self.block_size} bytes")
        _mid(message_id)
        self._ivs[message_id] = bytes(iv)

    def forget(self, message_id: int) -> None:
        """Drop the chain of a finished Quick Mode / informational exchange."""
        if message_id != 0:
            self._ivs.pop(message_id, None)

    def _make_algorithm(self) -> AES | TripleDES:
        if self.cipher.name == "aes_cbc":
            return AES(self._key)
        if self.cipher.name == "3des_cbc":
            return TripleDES(self._key)
        raise UnsupportedAlgorithm(DES_IKE_REFUSAL)  # pragma: no cover - table only has these

    def encrypt(self, message_id: int, plaintext: bytes) -> bytes:
        """Pad ``plaintext`` with zeros to the block size, encrypt, advance the chain."""
        bs = self.block_size
        padded = plaintext + b"\x00" * (-len(plaintext) % bs)
        if not padded:
            padded = b"\x00" * bs
        encryptor = Cipher(self._algorithm, CBC(self.iv(message_id))).encryptor()
        ciphertext = encryptor.update(padded) + encryptor.finalize()
        self._ivs[message_id] = ciphertext[-bs:]
        return ciphertext

    def decrypt(self, message_id: int, ciphertext: bytes, *, update_iv: bool = True) -> bytes:
        """Decrypt a body (padding included); advance the chain unless ``update_iv`` is False.

        Pass ``update_iv=False`` to check a message before accepting it, then
        :meth:`set_iv` with its last block; or save :meth:`iv` and restore it.
        """
        bs = self.block_size
        if not ciphertext or len(ciphertext) % bs:
            raise DecryptError(
                f"encrypted body is {len(ciphertext)} bytes, not a positive multiple of {bs}"
            )
        decryptor = Cipher(self._algorithm, CBC(self.iv(message_id))).decryptor()
        plaintext = decryptor.update(ciphertext) + decryptor.finalize()
        if update_iv:
            self._ivs[message_id] = ciphertext[-bs:]
        return plaintext

    def __repr__(self) -> str:
        name = f"{self.cipher.log_name}_{len(self._key) * 8}"
        return f"<Phase1Crypter {name} chains={len(self._ivs)}>"


# --------------------------------------------------------------------------
# RSA signatures (IKEv1: PKCS#1 v1.5 padding over the raw hash, no DigestInfo)
#
# RFC 2409 section 5.1 signs HASH_I/HASH_R itself: EM = 00 01 FF..FF 00 || H,
# the PKCS#1 v1.5 type-1 block without the DigestInfo a normal signature wraps
# around H (strongSwan's SIGN_RSA_EMSA_PKCS1_NULL, done by its openssl plugin
# with RSA_private_encrypt(RSA_PKCS1_PADDING); Libreswan signs the bare hash
# through NSS's PK11_Sign with CKM_RSA_PKCS).  The routes measured for RSA-2048
# on the project's 2-vCPU VM (CPython 3.11, cryptography 48 with its OpenSSL
# 4.0; medians, ms per operation):
#
#   sign    sign(H, PKCS1v15(), Prehashed(SHA1())): wraps H in a
#           DigestInfo, another signature that IKEv1 peers refuse       (0.25)
#           Python integers, CRT + blinding (what this module did before)  6.8-7.0
#           ctypes on the system libcrypto 3.0: EVP_PKEY_sign with
#           RSA_PKCS1_PADDING and no digest set (key re-loaded from DER)   0.25
#           cryptography >= 47: sign(H, PKCS1v15(), NoDigestInfo())        0.25
#   verify  Python pow(s, e, n) and compare the whole block                0.145
#           recover_data_from_signature(s, PKCS1v15(), NoDigestInfo())     0.018
#
# ``NoDigestInfo`` (cryptography 47, "PKCS1v15 signing without DigestInfo") is
# exactly this operation in OpenSSL through the public API: as fast as ctypes,
# with no second copy of the private key in another libcrypto, no hand-written
# prototypes and no library search.  OpenSSL blinds the private operation and
# checks a CRT result against the public key before releasing it (the fault
# attack the Python path guarded against by hand).  Verification recovers the
# block's payload in OpenSSL, which insists on 00 01, FF padding up to a single
# 00, and nothing else; the payload must then equal H exactly, so this accepts
# the same signatures as comparing against the whole expected block.
# With an older cryptography (setup.cfg allows >= 41) signing falls back to the
# Python-integer CRT below (``RSA_SIGN_BACKEND`` says which one runs, for the
# daemon to report); verification works through OpenSSL on every version
# (``algorithm=None`` before NoDigestInfo existed).

try:  # cryptography >= 47
    from cryptography.hazmat.primitives.asymmetric.utils import (
        NoDigestInfo as _NoDigestInfoType,
    )
    _NO_DIGEST_INFO: object | None = _NoDigestInfoType()
except ImportError:  # pragma: no cover - older cryptography
    _NO_DIGEST_INFO = None

#: who computes our RSA signatures: "openssl" (cryptography's NoDigestInfo) or
#: "python" (integer CRT, 25-30x slower; an older cryptography)
RSA_SIGN_BACKEND = "openssl" if _NO_DIGEST_INFO is not None else "python"

_PKCS1V15 = padding.PKCS1v15()


def _emsa_pkcs1_null(hash_value: bytes, k: int) -> bytes:
    """EM = 00 01 FF..FF 00 || H, the PKCS#1 v1.5 block without a DigestInfo."""
    if len(hash_value) + 11 > k:
        raise ValueError("RSA modulus too short for this hash")
    return b"\x00\x01" + b"\xff" * (k - len(hash_value) - 3) + b"\x00" + hash_value


def rsa_sign_hash(
    private_key: rsa.RSAPrivateKey, hash_value: bytes, random_bytes: RandomBytes = os.urandom
) -> bytes:
    """Sign HASH_I/HASH_R the IKEv1 way (RSA_EMSA_PKCS1_NULL).

    PKCS#1 v1.5 signatures are deterministic: the bytes depend only on the key
    and the hash.  ``random_bytes`` feeds the blinding of the Python fallback
    only; OpenSSL blinds with its own generator.
    """
    k = (private_key.key_size + 7) // 8
    if len(hash_value) + 11 > k:
        raise ValueError("RSA modulus too short for this hash")
    if _NO_DIGEST_INFO is None:  # pragma: no cover - older cryptography
        return _rsa_sign_hash_python(private_key, hash_value, random_bytes)
    return private_key.sign(hash_value, _PKCS1V15, _NO_DIGEST_INFO)  # type: ignore[arg-type]


def _rsa_sign_hash_python(
    private_key: rsa.RSAPrivateKey, hash_value: bytes, random_bytes: RandomBytes = os.urandom
) -> bytes:
    """The fallback: the raw RSA operation on Python integers.

    CRT with multiplicative blinding (``random_bytes``) against timing
    attacks, and the result is checked against the public key before it leaves
    (a CRT fault would otherwise leak a factor).
    """
    numbers = private_key.private_numbers()
    pub = numbers.public_numbers
    n, e = pub.n, pub.e
    k = (n.bit_length() + 7) // 8
    m = int.from_bytes(_emsa_pkcs1_null(hash_value, k), "big")
    while True:
        r = int.from_bytes(random_bytes(k), "big") % n
        if r > 1:
            try:
                r_inv = pow(r, -1, n)
            except ValueError:  # r shares a factor with n: astronomically unlikely
                continue
            break
    blinded = m * pow(r, e, n) % n
    p, q = numbers.p, numbers.q
    s1 = pow(blinded % p, numbers.dmp1, p)
    s2 = pow(blinded % q, numbers.dmq1, q)
    s = (s2 + q * ((numbers.iqmp * (s1 - s2)) % p)) * r_inv % n
    if pow(s, e, n) != m:
        raise ValueError("RSA signature self-check failed")
    return s.to_bytes(k, "big")


def rsa_verify_hash(public_key: rsa.RSAPublicKey, hash_value: bytes, signature: bytes) -> bool:
    """True when ``signature`` is an RSA_EMSA_PKCS1_NULL signature over ``hash_value``."""
    k = (public_key.key_size + 7) // 8
    if len(signature) != k or len(hash_value) + 11 > k:
        return False
    try:
        recovered = public_key.recover_data_from_signature(
            signature, _PKCS1V15, _NO_DIGEST_INFO  # type: ignore[arg-type]
        )
    except (InvalidSignature, ValueError):
        return False
    return constant_time_equal(recovered, hash_value)
