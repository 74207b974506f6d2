"""Diffie-Hellman MODP groups for IKEv1 (RFC 2409 section 6, RFC 3526).

Rules of this module:

* Pure: no I/O, no clock.  Randomness comes only from the ``random_bytes``
  callable handed to :meth:`DHKeyPair.generate` (``os.urandom`` by default), so
  tests and the engine can make key generation deterministic.
* Every value that crosses the wire is a big-endian byte string left-padded
  to the modulus length (RFC 2409 section 5: KE data and g^xy are padded with
  zeros), because the key schedule hashes these bytes verbatim.
* A peer public value outside ``2 .. p-2`` is refused: 0, 1 and p-1 force the
  shared secret into a tiny set an attacker can guess.
* The private exponent never appears in a repr or an exception message.

Python ints and ``pow()`` are used: simple and fast enough (a 2048-bit
exchange costs about a millisecond).  They are not constant-time; a future
version may move to a constant-time backend behind the same API.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable

__all__ = [
    "DHError",
    "DHGroup",
    "DHKeyPair",
    "GROUPS",
    "MODP1024",
    "MODP1536",
    "MODP2048",
    "MODP3072",
    "MODP4096",
    "get_group",
    "group_by_name",
]

RandomBytes = Callable[[int], bytes]


class DHError(ValueError):
    """A Diffie-Hellman value or group that cannot be used."""


def _hex(*chunks: str) -> int:
    return int("".join(chunks), 16)


# The primes are 2^n - 2^(n-64) - 1 + 2^64 * (floor(2^(n-130) * pi) + k), with k
# from RFC 2409 (groups 2) and RFC 3526 (5, 14, 15, 16); tests recompute them.
_MODP1024 = _hex(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74"
    "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437"
    "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED"
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE65381FFFFFFFFFFFFFFFF"
)

_MODP1536 = _hex(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74"
    "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437"
    "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED"
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05"
    "98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB"
    "9ED529077096966D670C354E4ABC9804F1746C08CA237327FFFFFFFFFFFFFFFF"
)

_MODP2048 = _hex(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74"
    "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437"
    "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED"
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05"
    "98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB"
    "9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B"
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718"
    "3995497CEA956AE515D2261898FA051015728E5A8AACAA68FFFFFFFFFFFFFFFF"
)

_MODP3072 = _hex(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74"
    "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437"
    "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED"
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05"
    "98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB"
    "9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B"
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718"
    "3995497CEA956AE515D2261898FA051015728E5A8AAAC42DAD33170D04507A33"
    "A85521ABDF1CBA64ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7"
    "ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864"
    "D87602733EC86A64521F2B18177B200CBBE117577A615D6C770988C0BAD946E2"
    "08E24FA074E5AB3143DB5BFCE0FD108E4B82D120A93AD2CAFFFFFFFFFFFFFFFF"
)

_MODP4096 = _hex(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74"
    "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437"
    "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED"
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05"
    "98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB"
    "9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B"
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718"
    "3995497CEA956AE515D2261898FA051015728E5A8AAAC42DAD33170D04507A33"
    "A85521ABDF1CBA64ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7"
    "ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864"
    "D87602733EC86A64521F2B18177B200CBBE117577A615D6C770988C0BAD946E2"
    "08E24FA074E5AB3143DB5BFCE0FD108E4B82D120A92108011A723C12A787E6D7"
    "88719A10BDBA5B2699C327186AF4E23C1A946834B6150BDA2583E9CA2AD44CE8"
    "DBBBC2DB04DE8EF92E8EFC141FBECAA6287C59474E6BC05D99B2964FA090C3A2"
    "233BA186515BE7ED1F612970CEE2D7AFB81BDD762170481CD0069127D5B05AA9"
    "93B4EA988D8FDDC186FFB7DC90A6C08F4DF435C934063199FFFFFFFFFFFFFFFF"
)


@dataclass(frozen=True)
class DHGroup:
    """One MODP group: its Oakley group number, name and prime (generator 2)."""

    number: int
    name: str
    bits: int
    prime: int = field(repr=False)
    generator: int = 2
    #: private exponent size: at least twice the group's symmetric strength
    #: (RFC 3526 section 8 estimates), rounded up generously
    exponent_bits: int = 256

    @property
    def length(self) -> int:
        """Bytes in a public value or shared secret (the modulus length)."""
        return (self.bits + 7) // 8

    def __str__(self) -> str:
        return self.name


MODP1024 = DHGroup(2, "MODP1024", 1024, _MODP1024, exponent_bits=256)
MODP1536 = DHGroup(5, "MODP1536", 1536, _MODP1536, exponent_bits=256)
MODP2048 = DHGroup(14, "MODP2048", 2048, _MODP2048, exponent_bits=320)
MODP3072 = DHGroup(15, "MODP3072", 3072, _MODP3072, exponent_bits=384)
MODP4096 = DHGroup(16, "MODP4096", 4096, _MODP4096, exponent_bits=512)

#: Oakley group number -> group, strongest last
GROUPS: dict[int, DHGroup] = {
    g.number: g for g in (MODP1024, MODP1536, MODP2048, MODP3072, MODP4096)
}


def get_group(number: int) -> DHGroup:
    """The group for an Oakley group number; DHError names the supported ones."""
    try:
        return GROUPS[number]
    except KeyError:
        allowed = ", ".join(f"{g.number} ({g.name})" for g in GROUPS.values())
        raise DHError(f"DH group {number} is not supported; supported: {allowed}") from None


def group_by_name(name: str) -> DHGroup:
    """The group for a name like ``modp2048`` (any case)."""
    wanted = name.strip().upper()
    for group in GROUPS.values():
        if group.name == wanted:
            return group
    allowed = ", ".join(g.name.lower() for g in GROUPS.values())
    raise DHError(f"DH group {name!r} is not supported; supported: {allowed}")


class DHKeyPair:
    """Our half of one Diffie-Hellman exchange.

    Made with :meth:`generate`; one key pair serves one exchange (a phase-1 KE
    or one PFS Quick Mode), then is dropped.
    """

    __slots__ = ("group", "_private", "_public")

    def __init__(self, group: DHGroup, private: int) -> None:
        if not 1 < private < group.prime - 1:
            raise DHError(f"{group.name} private exponent out of range")
        self.group = group
        self._private = private
        self._public = pow(group.generator, private, group.prime)

    @classmethod
    def generate(cls, group: DHGroup, random_bytes: RandomBytes = os.urandom) -> "DHKeyPair":
        """A fresh key pair with an ``exponent_bits`` private exponent."""
        nbytes = (group.exponent_bits + 7) // 8
        mask = (1 << group.exponent_bits) - 1
        while True:
            raw = random_bytes(nbytes)
            if len(raw) != nbytes:
                raise DHError("random source returned the wrong number of bytes")
            private = int.from_bytes(raw, "big") & mask
            if private > 1:
                return cls(group, private)

    def public_bytes(self) -> bytes:
        """g^x mod p, left-padded to the modulus length (the KE payload body)."""
        return self._public.to_bytes(self.group.length, "big")

    def shared_secret(self, peer_public: bytes) -> bytes:
        """g^xy from the peer's KE payload body, left-padded to the modulus length.

        The peer value must be exactly the modulus length (RFC 2409 section 5)
        and lie in ``2 .. p-2``.
        """
        group = self.group
        if len(peer_public) != group.length:
            raise DHError(
                f"{group.name} peer public value is {len(peer_public)} bytes; "
                f"{group.length} required"
            )
        y = int.from_bytes(peer_public, "big")
        if y <= 1 or y >= group.prime - 1:
            raise DHError(f"{group.name} peer public value is out of range (must be 2 .. p-2)")
        return pow(y, self._private, group.prime).to_bytes(group.length, "big")

    def __repr__(self) -> str:
        return f"<DHKeyPair {self.group.name}>"
