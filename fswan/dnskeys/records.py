"""DNS records that carry IPsec RSA public keys, and the name to ask for an ID.

Three record types have carried FreeS/WAN-style keys over the years:

=========  ================================================================
TXT        FreeS/WAN 1.9x/2.x: ``X-IPsec-Server(PREF)=GATEWAY KEY`` where
           GATEWAY is ``@fqdn`` or an address and KEY the RFC 3110 key in
           base64 (FreeS/WAN wrote it bare, ``AQ...``; ``0s`` is accepted).
           Long records are split into several character-strings, which are
           joined again before parsing.
IPSECKEY   RFC 4025: precedence, gateway type (0 none, 1 IPv4, 2 IPv6,
           3 name), algorithm (2 = RSA), gateway, base64 RFC 3110 key.
KEY        RFC 2535/2537, what FreeS/WAN 1.x published: flags 0x4200
           (authentication only, host key), protocol 4 (IPsec), algorithm 1
           (RSA/MD5); algorithm 5 (RSA/SHA1) and protocol 255 (any) are
           accepted too.
=========  ================================================================

A record only vouches for the owner name's own key when its gateway is that
ID (or absent): a TXT record at ``east.example.`` naming gateway
``192.0.2.9`` delegates to another machine, whose key it is, so
:func:`keys_for` ignores it -- exactly the check pluto made for key lookups.

Which name to ask: ``@fqdn`` -> the forward name, an address -> its reverse
name (``in-addr.arpa.`` / ``ip6.arpa.``); other IDs cannot be looked up.

Pure: dnspython is used for names and rdata classes only; nothing here opens
a socket or reads the clock.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Union, cast

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.reversename
from cryptography.hazmat.primitives.asymmetric import rsa

from fswan.config import keys
from fswan.config.encodings import encode_base64
from fswan.config.ids import IdError, IdKind, Identity, parse_id

if TYPE_CHECKING:  # the rdata classes dnspython picks by type, loaded on demand
    from dns.rdtypes.ANY.KEY import KEY
    from dns.rdtypes.IN.IPSECKEY import IPSECKEY
    from dns.rdtypes.txtbase import TXTBase

__all__ = [
    "TXT_ATTRIBUTE",
    "DEFAULT_PREFERENCE",
    "KEY_FLAGS",
    "KEY_PROTOCOL_IPSEC",
    "KEY_PROTOCOL_ANY",
    "KEY_ALG_RSAMD5",
    "KEY_ALG_RSASHA1",
    "IPSECKEY_ALG_RSA",
    "RecordError",
    "DnsNameError",
    "KeyRecord",
    "query_name",
    "reverse_name",
    "parse_gateway",
    "parse_txt",
    "txt_strings",
    "format_txt",
    "parse_ipseckey",
    "format_ipseckey",
    "parse_key",
    "format_key",
    "parse_rdata",
    "keys_for",
]

TXT_ATTRIBUTE = "X-IPsec-Server"
#: FreeS/WAN always published preference 10.
DEFAULT_PREFERENCE = 10
#: RFC 2535 KEY flags FreeS/WAN used: 0x4000 "no confidentiality" + 0x0200 host key.
KEY_FLAGS = 0x4200
KEY_PROTOCOL_IPSEC = 4
KEY_PROTOCOL_ANY = 255
KEY_ALG_RSAMD5 = 1
KEY_ALG_RSASHA1 = 5
IPSECKEY_ALG_RSA = 2

#: KEY flag bits: "no authentication" (key unusable for us) and the extension bit.
_KEY_FLAG_NOAUTH = 0x8000
_KEY_FLAG_EXTEND = 0x2000
#: the longest character-string a TXT record can hold
_TXT_CHUNK = 255
_TXT_HEAD = re.compile(
    r"\s*" + re.escape(TXT_ATTRIBUTE) + r"\s*\(\s*([0-9]+)\s*\)\s*=\s*(\S+)\s*(.*)\Z",
    re.IGNORECASE | re.DOTALL,
)

IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]
Gateway = Union[Identity, str, None]


class RecordError(ValueError):
    """A record that claims to carry an IPsec key but is malformed; says what is wrong."""


class DnsNameError(ValueError):
    """An ID that has no DNS name to look its key up under."""


@dataclass(frozen=True)
class KeyRecord:
    """One key-carrying record, decoded."""

    #: "TXT", "IPSECKEY" or "KEY"
    kind: str
    #: TXT preference / IPSECKEY precedence (lower is preferred); 0 for KEY
    preference: int
    #: the security gateway the record names; None when it names none
    gateway: Identity | None
    #: the key; None for a TXT record that names a gateway but gives no key
    key: rsa.RSAPublicKey | None

    def binds(self, identity: Identity) -> bool:
        """True if this record's key is the key of ``identity`` (the owner name's ID)."""
        return self.key is not None and (self.gateway is None or self.gateway == identity)


# --------------------------------------------------------------------------
# Names


def reverse_name(address: IPAddress | str) -> dns.name.Name:
    """``2.2.0.192.in-addr.arpa.`` for 192.0.2.2; nibbles under ``ip6.arpa.`` for IPv6."""
    return dns.reversename.from_address(str(ipaddress.ip_address(str(address))))


def query_name(identity: Identity) -> dns.name.Name:
    """The DNS name holding the key of ``identity``; DnsNameError if it has none."""
    if identity.kind is IdKind.FQDN:
        try:
            return dns.name.from_text(identity.value.rstrip(".") + ".")
        except dns.exception.DNSException as exc:
            raise DnsNameError(f"@{identity.value} is not a valid DNS name: {exc}") from None
    if identity.kind in (IdKind.IPV4_ADDR, IdKind.IPV6_ADDR):
        return reverse_name(identity.value)
    raise DnsNameError(
        "can only query DNS for key for ID that is a FQDN, IPV4_ADDR, or IPV6_ADDR"
        f" (not {identity})"
    )


def parse_gateway(text: str) -> Identity:
    """A gateway as FreeS/WAN wrote it: ``@fqdn`` or an IPv4/IPv6 address."""
    try:
        identity = parse_id(text)
    except IdError as exc:
        raise RecordError(f"bad gateway {text!r}: {exc}") from None
    if identity.kind not in (IdKind.FQDN, IdKind.IPV4_ADDR, IdKind.IPV6_ADDR):
        raise RecordError(f"gateway must be @FQDN or an IP address, not {text!r}")
    return identity


def _gateway_identity(gateway: Gateway) -> Identity | None:
    if gateway is None or isinstance(gateway, Identity):
        return gateway
    return parse_gateway(gateway)


def _name_identity(name: dns.name.Name) -> Identity:
    return Identity(IdKind.FQDN, name.to_text(omit_final_dot=True).lower())


def _b64(key: keys.AnyRSAKey) -> str:
    """The RFC 3110 key in bare base64 (``AQ...``), as DNS records carry it."""
    return encode_base64(keys.pubkey_to_rfc3110(key))[2:]


def _key_from_base64(text: str) -> rsa.RSAPublicKey:
    compact = "".join(text.split())
    if compact[:2].lower() != "0s":
        compact = "0s" + compact
    try:
        return keys.parse_rsasigkey(compact)
    except keys.KeyFormatError as exc:
        raise RecordError(f"bad key: {exc}") from None


# --------------------------------------------------------------------------
# TXT


def _joined(strings: Sequence[bytes | str] | str | bytes) -> str:
    if isinstance(strings, (str, bytes)):
        strings = [strings]
    parts = [s.decode("ascii", "replace") if isinstance(s, bytes) else s for s in strings]
    return "".join(parts)


def parse_txt(strings: Sequence[bytes | str] | str | bytes) -> KeyRecord | None:
    """Decode a TXT record (its character-strings); None if it is not ``X-IPsec-Server``."""
    text = _joined(strings)
    if not text.lstrip().lower().startswith(TXT_ATTRIBUTE.lower()):
        return None
    match = _TXT_HEAD.match(text)
    if match is None:
        raise RecordError(
            f"malformed {TXT_ATTRIBUTE} record: expected {TXT_ATTRIBUTE}(PREF)=GATEWAY [KEY]"
        )
    preference = int(match.group(1))
    if preference > 0xFFFF:
        raise RecordError(f"{TXT_ATTRIBUTE} preference {preference} is larger than 65535")
    gateway = parse_gateway(match.group(2))
    rest = match.group(3).strip()
    key = _key_from_base64(rest) if rest else None
    return KeyRecord("TXT", preference, gateway, key)


def txt_strings(
    key: keys.AnyRSAKey, gateway: Gateway, preference: int = DEFAULT_PREFERENCE
) -> list[str]:
    """The character-strings of the TXT record, split as FreeS/WAN did.

    Everything fits one string when it can; otherwise the attribute and
    gateway go alone in the first and the key follows, with a leading space,
    in strings of at most 255 characters, so joining them gives the record.
    """
    identity = _gateway_identity(gateway)
    if identity is None:
        raise RecordError(f"a {TXT_ATTRIBUTE} record needs a gateway (@fqdn or address)")
    head = f"{TXT_ATTRIBUTE}({preference})={identity}"
    body = " " + _b64(key)
    if len(head) + len(body) <= _TXT_CHUNK:
        return [head + body]
    return [head] + [body[i : i + _TXT_CHUNK] for i in range(0, len(body), _TXT_CHUNK)]


def format_txt(
    key: keys.AnyRSAKey, gateway: Gateway, preference: int = DEFAULT_PREFERENCE
) -> str:
    """The TXT rdata in zone-file form: ``"X-IPsec-Server(10)=GW" " AQ..."``."""
    return " ".join(f'"{s}"' for s in txt_strings(key, gateway, preference))


# --------------------------------------------------------------------------
# IPSECKEY (RFC 4025)


def parse_ipseckey(rdata: IPSECKEY) -> KeyRecord | None:
    """Decode an IPSECKEY rdata; None if its key is not RSA (or absent)."""
    if rdata.algorithm != IPSECKEY_ALG_RSA or not rdata.key:
        return None
    gateway_type = rdata.gateway_type
    if gateway_type == 0:
        gateway = None
    elif gateway_type in (1, 2):
        gateway = parse_id(str(rdata.gateway))
    elif gateway_type == 3:
        gateway = _name_identity(rdata.gateway)
    else:
        raise RecordError(f"IPSECKEY gateway type {gateway_type} is unknown")
    try:
        key = keys.pubkey_from_rfc3110(rdata.key)
    except keys.KeyFormatError as exc:
        raise RecordError(f"bad key in IPSECKEY record: {exc}") from None
    return KeyRecord("IPSECKEY", rdata.precedence, gateway, key)


def format_ipseckey(
    key: keys.AnyRSAKey, gateway: Gateway = None, precedence: int = DEFAULT_PREFERENCE
) -> str:
    """The IPSECKEY rdata in zone-file form: ``10 1 2 192.0.2.1 AQ...``."""
    identity = _gateway_identity(gateway)
    if identity is None:
        gateway_type, text = 0, "."
    elif identity.kind is IdKind.IPV4_ADDR:
        gateway_type, text = 1, identity.value
    elif identity.kind is IdKind.IPV6_ADDR:
        gateway_type, text = 2, identity.value
    else:
        gateway_type, text = 3, identity.value + "."
    return f"{precedence} {gateway_type} {IPSECKEY_ALG_RSA} {text} {_b64(key)}"


# --------------------------------------------------------------------------
# KEY (RFC 2535 / 2537)


def parse_key(rdata: KEY) -> KeyRecord | None:
    """Decode a KEY rdata; None if it is not an RSA IPsec authentication key."""
    if rdata.protocol not in (KEY_PROTOCOL_IPSEC, KEY_PROTOCOL_ANY):
        return None
    if rdata.algorithm not in (KEY_ALG_RSAMD5, KEY_ALG_RSASHA1):
        return None
    if rdata.flags & (_KEY_FLAG_NOAUTH | _KEY_FLAG_EXTEND) or not rdata.key:
        return None
    try:
        key = keys.pubkey_from_rfc3110(rdata.key)
    except keys.KeyFormatError as exc:
        raise RecordError(f"bad key in KEY record: {exc}") from None
    return KeyRecord("KEY", 0, None, key)


def format_key(key: keys.AnyRSAKey) -> str:
    """The KEY rdata in zone-file form, ``16896 4 1 AQ...`` (flags 0x4200 in decimal).

    FreeS/WAN printed the flags as ``0x4200``; decimal is what every current
    zone parser (dnspython, NSD, Knot) accepts.
    """
    return f"{KEY_FLAGS} {KEY_PROTOCOL_IPSEC} {KEY_ALG_RSAMD5} {_b64(key)}"


# --------------------------------------------------------------------------
# Sets of records


def parse_rdata(rdata: dns.rdata.Rdata) -> KeyRecord | None:
    """Decode any of the three types; None for records that carry no IPsec key."""
    if rdata.rdtype == dns.rdatatype.TXT:
        return parse_txt(cast("TXTBase", rdata).strings)
    if rdata.rdtype == dns.rdatatype.IPSECKEY:
        return parse_ipseckey(cast("IPSECKEY", rdata))
    if rdata.rdtype == dns.rdatatype.KEY:
        return parse_key(cast("KEY", rdata))
    return None


def keys_for(identity: Identity, records: Iterable[KeyRecord]) -> list[rsa.RSAPublicKey]:
    """The keys the records bind to ``identity``, best preference first, without repeats."""
    bound = sorted((r for r in records if r.binds(identity)), key=lambda r: r.preference)
    found: list[rsa.RSAPublicKey] = []
    for record in bound:
        assert record.key is not None
        if not any(keys.same_public_key(record.key, k) for k in found):
            found.append(record.key)
    return found
