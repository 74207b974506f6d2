"""ESP transforms (RFC 4303): AES-GCM-16 (RFC 4106), AES-CBC (RFC 3602) and
3DES-CBC (RFC 2451) with HMAC-SHA1-96 (RFC 2404) or HMAC-SHA2-256-128 (RFC 4868).

Rules of this module:

* One transform object per SA direction, built once: the cipher context and
  the keyed HMAC states live as long as the SA.  Nothing per packet builds a
  ``Cipher``, an ``AESGCM`` or an ``hmac`` object (performance.md: ~10x).
* ``encap(seq, payload, next_header)`` returns the ESP packet
  ``SPI | seq | IV | ciphertext | ICV``; ``decap(esp, seq_hi)`` returns
  ``(next_header, payload)`` or raises :class:`EspError` whose ``reason`` is a
  short constant the data plane counts.  Sequence numbers and anti-replay
  belong to the SA (``sa.py``); ``seq_hi`` is the inferred high half when
  extended sequence numbers are in use (RFC 4303 section 2.2.1).
* The ICV is checked, in constant time, before a single byte is decrypted.
  AES-GCM verifies its tag inside the one ``decrypt`` call and releases no
  plaintext when it fails.
* Padding is the RFC 4303 default: bytes 1, 2, 3, ... then Pad Length and
  Next Header, aligning the ciphertext to the cipher block (4 bytes for GCM).
  Received padding contents are not checked (only its length), as in Linux.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from typing import Callable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import BlockCipherAlgorithm, Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from fswan.suites import EspKeys, EspProposal, UnsupportedAlgorithm

try:  # cryptography >= 43 moved 3DES to the "decrepit" namespace
    from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
except ImportError:  # pragma: no cover - older cryptography
    TripleDES = algorithms.TripleDES  # type: ignore[attr-defined,misc]

__all__ = [
    "DROP_ICV",
    "DROP_MALFORMED",
    "DROP_PADDING",
    "AesGcmEsp",
    "CbcHmacEsp",
    "EspError",
    "EspTransform",
    "make_transform",
]

DROP_MALFORMED = "malformed ESP"
DROP_ICV = "ICV failed"
DROP_PADDING = "bad padding"

_M32 = 0xFFFFFFFF
_TRAILERS: dict[tuple[int, int], tuple[bytes, ...]] = {}


class EspError(Exception):
    """A received ESP packet that must be dropped; ``reason`` is the counter name."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _trailers(block: int, next_header: int) -> tuple[bytes, ...]:
    """Padding + Pad Length + Next Header for each ``len(payload) % block``."""
    key = (block, next_header)
    table = _TRAILERS.get(key)
    if table is None:
        out = []
        for rest in range(block):
            pad = -(rest + 2) % block
            out.append(bytes(range(1, pad + 1)) + bytes((pad, next_header)))
        table = _TRAILERS[key] = tuple(out)
    return table


class EspTransform:
    """What every transform offers; see the module rules."""

    #: log name, e.g. ``AES_GCM_16_128`` or ``AES_CBC_128-HMAC_SHA1_96``
    name: str = "?"
    spi: int
    esn: bool
    #: ciphertext alignment (4 for GCM, the cipher block for CBC)
    block_size: int
    iv_size: int
    icv_size: int

    def __init__(self, spi: int, esn: bool) -> None:
        if not 0 <= spi <= _M32:
            raise ValueError(f"SPI {spi:#x} out of range")
        self.spi = spi
        self.esn = esn
        self._spi = spi.to_bytes(4, "big")
        self._tr: dict[int, tuple[bytes, ...]] = {}

    def _trailer_table(self, next_header: int) -> tuple[bytes, ...]:
        table = self._tr[next_header] = _trailers(self.block_size, next_header)
        return table

    def encap(self, seq: int, payload: bytes, next_header: int) -> bytes:  # pragma: no cover
        raise NotImplementedError

    def decap(self, esp: bytes, seq_hi: int = 0) -> tuple[int, bytes]:  # pragma: no cover
        raise NotImplementedError

    def esp_length(self, payload_len: int) -> int:
        """Bytes of the ESP packet carrying ``payload_len`` bytes."""
        padded = payload_len + 2 + (-(payload_len + 2) % self.block_size)
        return 8 + self.iv_size + padded + self.icv_size

    def max_payload(self, space: int) -> int:
        """The largest payload whose ESP packet fits in ``space`` bytes (tunnel MTU sums)."""
        room = space - 8 - self.iv_size - self.icv_size
        return max(0, room // self.block_size * self.block_size - 2)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} spi={self.spi:#x}{' esn' if self.esn else ''}>"


class AesGcmEsp(EspTransform):
    """AES-GCM with a 16-byte ICV (RFC 4106).

    Nonce = 4-byte salt from KEYMAT | 8-byte explicit IV.  The IV is the
    64-bit sequence number: RFC 4106 section 3.1 allows a counter, and the SA
    never reuses a sequence number under one key, so no nonce repeats and no
    random bytes are spent.  AAD = SPI | seq, or SPI | seq-hi | seq-lo with
    ESN (section 5).  This relies on every SA having fresh keys (IKE KEYMAT):
    statically configured keys would restart the counter, and with it the
    nonces, after a restart, so GCM must never be offered for manual keying.
    """

    block_size = 4
    iv_size = 8
    icv_size = 16

    def __init__(self, spi: int, key: bytes, salt: bytes, *, esn: bool = False) -> None:
        super().__init__(spi, esn)
        if len(key) not in (16, 24, 32):
            raise ValueError(f"AES-GCM key must be 16, 24 or 32 bytes, not {len(key)}")
        if len(salt) != 4:
            raise ValueError("AES-GCM salt must be 4 bytes (RFC 4106 section 8.1)")
        self._aead = AESGCM(bytes(key))
        self._salt = bytes(salt)
        self.name = f"AES_GCM_16_{len(key) * 8}"

    def encap(self, seq: int, payload: bytes, next_header: int) -> bytes:
        """SPI | seq | IV (= seq) | ciphertext | tag."""
        iv = seq.to_bytes(8, "big")
        hdr = self._spi + iv[4:]
        tr = self._tr.get(next_header) or self._trailer_table(next_header)
        ct = self._aead.encrypt(
            self._salt + iv,
            b"".join((payload, tr[len(payload) & 3])),
            self._spi + iv if self.esn else hdr,
        )
        return b"".join((hdr, iv, ct))

    def encap_with_iv(self, seq: int, payload: bytes, next_header: int, iv: bytes) -> bytes:
        """Encap with a chosen IV: for known-answer tests only (IV uniqueness is then yours)."""
        hdr = self._spi + (seq & _M32).to_bytes(4, "big")
        aad = self._spi + seq.to_bytes(8, "big") if self.esn else hdr
        pt = bytes(payload) + _trailers(4, next_header)[len(payload) & 3]
        return hdr + iv + self._aead.encrypt(self._salt + iv, pt, aad)

    def decap(self, esp: bytes, seq_hi: int = 0) -> tuple[int, bytes]:
        # header 8 + IV 8 + at least Pad Length and Next Header + tag 16
        if len(esp) < 34:
            raise EspError(DROP_MALFORMED)
        aad = esp[:4] + seq_hi.to_bytes(4, "big") + esp[4:8] if self.esn else esp[:8]
        try:
            pt = self._aead.decrypt(self._salt + esp[8:16], esp[16:], aad)
        except InvalidTag:
            raise EspError(DROP_ICV) from None
        end = len(pt) - 2 - pt[-2]
        if end < 0:
            raise EspError(DROP_PADDING)
        return pt[-1], pt[:end]


class _PrekeyedHmac:
    """HMAC (RFC 2104) with the inner and outer key blocks hashed once per SA.

    Each packet copies the two hashlib states (a memcpy in C) instead of
    re-hashing two key blocks, about twice as fast as ``hmac.digest``.
    """

    __slots__ = ("inner", "outer", "size")

    def __init__(self, hash_name: str, key: bytes, size: int) -> None:
        block = hashlib.new(hash_name).block_size
        if len(key) > block:
            key = hashlib.new(hash_name, key).digest()
        key = bytes(key).ljust(block, b"\x00")
        self.inner = hashlib.new(hash_name, bytes(b ^ 0x36 for b in key))
        self.outer = hashlib.new(hash_name, bytes(b ^ 0x5C for b in key))
        self.size = size

    def mac(self, *parts: bytes | memoryview) -> bytes:
        """The truncated MAC of the concatenated parts (not for the hot path: *args)."""
        h = self.inner.copy()
        for part in parts:
            h.update(part)
        o = self.outer.copy()
        o.update(h.digest())
        return o.digest()[:self.size]


class CbcHmacEsp(EspTransform):
    """AES-CBC or 3DES-CBC with HMAC, encrypt-then-MAC over SPI | seq | IV | ciphertext.

    **One CBC context per SA, and why the IVs it makes are sound.**  A CBC
    encryptor fed whole blocks keeps as its chaining value the last
    ciphertext block C it produced.  Each packet is fed as one block
    N = the sequence number (big-endian, block-sized) followed by the padded
    plaintext.  The first output block X = E_K(N xor C) is sent as the
    packet's IV, and every later block is exactly CBC_K(IV = X, plaintext):
    the peer's ordinary CBC decryptor recovers the plaintext (tested against
    a stock decryptor and scapy).  RFC 3602 asks for an IV an attacker cannot
    predict before choosing plaintext.  X is the block cipher applied to an
    input that has, except with birthday-bound probability (about
    q^2 / 2^(b+1) for q blocks under the key), never been enciphered before,
    so it is pseudorandom to anyone without K: this is NIST SP 800-38A
    appendix C's "encipher a nonce under the same key" method, with the
    previous ciphertext folded into the nonce.  Its bound is the one CBC
    itself lives with (so 3DES SAs want byte lifetimes far below 2^32
    blocks).  The context is only ever fed block-aligned data, so it never
    holds a partial block between packets.

    Decryption uses one long-lived decryptor the same way: feed IV | ciphertext,
    drop the first output block (the IV deciphered against the previous
    packet), keep the rest.  Only data whose ICV verified is ever fed to it.
    """

    def __init__(
        self,
        spi: int,
        cipher: str,
        key: bytes,
        hash_name: str,
        icv_size: int,
        integrity_key: bytes,
        *,
        esn: bool = False,
        random_bytes: Callable[[int], bytes] = os.urandom,
        integrity_name: str = "",
    ) -> None:
        super().__init__(spi, esn)
        algo: BlockCipherAlgorithm
        if cipher == "aes_cbc":
            if len(key) not in (16, 24, 32):
                raise ValueError(f"AES-CBC key must be 16, 24 or 32 bytes, not {len(key)}")
            algo = algorithms.AES(bytes(key))
            label = f"AES_CBC_{len(key) * 8}"
        elif cipher == "3des_cbc":
            if len(key) != 24:
                raise ValueError(f"3DES key must be 24 bytes, not {len(key)}")
            algo = TripleDES(bytes(key))
            label = "3DES_CBC"
        else:
            raise UnsupportedAlgorithm(f"ESP cipher {cipher!r} is not supported by the data plane")
        bs = algo.block_size // 8
        self.block_size = self.iv_size = bs
        self.icv_size = icv_size
        self._algo = algo
        self._enc = Cipher(algo, modes.CBC(random_bytes(bs))).encryptor()
        self._dec = Cipher(algo, modes.CBC(bytes(bs))).decryptor()
        self._mac = _PrekeyedHmac(hash_name, integrity_key, icv_size)
        self._inner = self._mac.inner
        self._outer = self._mac.outer
        self.name = f"{label}-{integrity_name or 'HMAC_' + hash_name.upper()}"

    def encap(self, seq: int, payload: bytes, next_header: int) -> bytes:
        bs = self.block_size
        hdr = self._spi + (seq & _M32).to_bytes(4, "big")
        tr = self._tr.get(next_header) or self._trailer_table(next_header)
        # first output block is the IV (see the class docstring)
        body = self._enc.update(b"".join((seq.to_bytes(bs, "big"), payload, tr[len(payload) % bs])))
        h = self._inner.copy()
        h.update(hdr)
        h.update(body)
        if self.esn:
            h.update((seq >> 32).to_bytes(4, "big"))
        o = self._outer.copy()
        o.update(h.digest())
        return b"".join((hdr, body, o.digest()[:self.icv_size]))

    def encap_with_iv(self, seq: int, payload: bytes, next_header: int, iv: bytes) -> bytes:
        """Encap with a chosen IV (fresh context): for known-answer tests only."""
        hdr = self._spi + (seq & _M32).to_bytes(4, "big")
        bs = self.block_size
        pt = bytes(payload) + _trailers(bs, next_header)[len(payload) % bs]
        enc = Cipher(self._algo, modes.CBC(iv)).encryptor()
        body = iv + enc.update(pt) + enc.finalize()
        tail = ((seq >> 32).to_bytes(4, "big"),) if self.esn else ()
        return hdr + body + self._mac.mac(hdr, body, *tail)

    def decap(self, esp: bytes, seq_hi: int = 0) -> tuple[int, bytes]:
        bs = self.block_size
        icv = self.icv_size
        n = len(esp)
        if n < 8 + bs + bs + icv or (n - 8 - icv) % bs:
            raise EspError(DROP_MALFORMED)
        end = n - icv
        mv = memoryview(esp)
        h = self._inner.copy()
        h.update(mv[:end])
        if self.esn:
            h.update(seq_hi.to_bytes(4, "big"))
        o = self._outer.copy()
        o.update(h.digest())
        if not hmac.compare_digest(o.digest()[:icv], mv[end:]):
            raise EspError(DROP_ICV)
        pt = self._dec.update(mv[8:end])
        stop = len(pt) - 2 - pt[-2]
        if stop < bs:
            raise EspError(DROP_PADDING)
        return pt[-1], pt[bs:stop]


def make_transform(
    proposal: EspProposal,
    keys: EspKeys,
    spi: int,
    *,
    esn: bool = False,
    random_bytes: Callable[[int], bytes] = os.urandom,
) -> EspTransform:
    """The transform for a negotiated proposal and one direction's keys."""
    cipher = proposal.cipher_algorithm
    if cipher.aead:
        if cipher.icv_size != 16:
            raise UnsupportedAlgorithm(f"{cipher.log_name} is not supported by the data plane")
        return AesGcmEsp(spi, keys.encryption_key, keys.salt, esn=esn)
    integ = proposal.integrity_algorithm
    if integ is None:
        raise UnsupportedAlgorithm(f"{cipher.log_name} without integrity is not supported")
    return CbcHmacEsp(
        spi,
        cipher.name,
        keys.encryption_key,
        integ.hashlib_name,
        integ.icv_size,
        keys.integrity_key,
        esn=esn,
        random_bytes=random_bytes,
        integrity_name=integ.log_name,
    )
