"""IKE identities as written in ipsec.conf (``leftid=``) and ipsec.secrets selectors.

pluto's forms: an address literal (ID_IPV4_ADDR / ID_IPV6_ADDR), ``@fqdn``
(ID_FQDN, taken literally, never resolved), ``user@fqdn`` (ID_USER_FQDN),
``%any`` (matches every peer) and ``%myid`` (the ``myid=`` of config setup).
With certificates: an X.500 DN (ID_DER_ASN1_DN, ``C=CH, O=Lab, CN=west``; ``*``
as a peer's RDN value matches any value) and ``%fromcert`` (the subject of the
end's certificate, filled in when the certificate is loaded).

ID_KEY_ID (opaque bytes; the "group name" iOS and Cisco clients send in
Aggressive Mode): ``@#hex`` (FreeS/WAN, strongSwan, Libreswan; ``@#0x...`` too),
``@[text]`` (Libreswan's text form) and strongSwan's ``keyid:text`` /
``keyid:#hex``.  The value is the lowercase hex of the bytes, so every
spelling of the same key ID is the same identity; it prints as ``@[text]``
when the bytes are printable ASCII without spaces, else as ``@#hex``, both of
which read back to the same identity.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from ipaddress import ip_address
import re


class IdKind(str, enum.Enum):
    IPV4_ADDR = "ID_IPV4_ADDR"
    IPV6_ADDR = "ID_IPV6_ADDR"
    FQDN = "ID_FQDN"
    USER_FQDN = "ID_USER_FQDN"
    DER_ASN1_DN = "ID_DER_ASN1_DN"
    ANY = "%any"
    MYID = "%myid"
    FROMCERT = "%fromcert"
    KEY_ID = "ID_KEY_ID"


_DN_START = re.compile(r"/?[A-Za-z][A-Za-z0-9.]*\s*=")


class IdError(ValueError):
    """Text that is not an identity; the message says which forms are allowed."""


@dataclass(frozen=True)
class Identity:
    kind: IdKind
    #: canonical text: the address, the FQDN without '@', the user@fqdn,
    #: a key ID's bytes as lowercase hex
    value: str

    def __str__(self) -> str:
        if self.kind is IdKind.FQDN:
            return "@" + self.value
        if self.kind is IdKind.KEY_ID:
            return key_id_text(self.key_id)
        return self.value

    @property
    def key_id(self) -> bytes:
        """An ID_KEY_ID's bytes (what goes on the wire)."""
        return bytes.fromhex(self.value) if self.kind is IdKind.KEY_ID else b""

    @property
    def is_any(self) -> bool:
        return self.kind is IdKind.ANY

    @property
    def is_pattern(self) -> bool:
        """A peer ID that matches more than itself: ``%fromcert`` or a DN with ``*`` values."""
        return self.kind is IdKind.FROMCERT or (
            self.kind is IdKind.DER_ASN1_DN and "*" in self.value
        )


ANY_ID = Identity(IdKind.ANY, "%any")
FROMCERT_ID = Identity(IdKind.FROMCERT, "%fromcert")


def key_id_identity(data: bytes) -> Identity:
    """An ID_KEY_ID identity for these bytes."""
    return Identity(IdKind.KEY_ID, data.hex())


def key_id_text(data: bytes) -> str:
    """How a key ID prints: ``@[name]`` when readable as it stands, else ``@#hex``."""
    if data and all(0x21 <= b <= 0x7E for b in data):
        return "@[" + data.decode("ascii") + "]"
    return "@#" + data.hex()


def _parse_key_id(text: str) -> Identity:
    """``@#hex``, ``@[text]``, ``keyid:#hex`` or ``keyid:text`` as an ID_KEY_ID."""
    if text.startswith("@["):
        body = text[2:-1] if text.endswith("]") else text[2:]
        data = body.encode("utf-8")
    elif text.lower().startswith("keyid:") and not text[6:].startswith("#"):
        data = text[6:].encode("utf-8")
    else:
        digits = text[text.index("#") + 1:]
        if digits[:2].lower() == "0x":
            digits = digits[2:]
        digits = digits.replace("_", "")
        if not re.fullmatch(r"(?:[0-9A-Fa-f]{2})+", digits):
            raise IdError(
                f"bad key ID {text!r}: expected an even number of hex digits after '#'"
            )
        data = bytes.fromhex(digits)
    if not data:
        raise IdError(f"bad key ID {text!r}: it is empty")
    return key_id_identity(data)


def looks_like_dn(text: str) -> bool:
    """An X.500 distinguished name ID: ``C=CH, O=Example, CN=gw`` or ``/C=CH/O=Example``."""
    word = text.strip()
    return "=" in word and not word.startswith("@") and _DN_START.match(word) is not None


def dn_identity(text: str) -> Identity:
    """An ID_DER_ASN1_DN identity in canonical text form; IdError for a bad DN."""
    from fswan.pki.dn import DNError, format_dn, parse_dn

    try:
        return Identity(IdKind.DER_ASN1_DN, format_dn(parse_dn(text)))
    except DNError as error:
        raise IdError(f"bad DN ID {text!r}: {error}") from None


def parse_id(text: str) -> Identity:
    """Parse one identity; raise IdError naming the accepted forms."""
    text = text.strip()
    if not text:
        raise IdError("empty ID")
    if not text.isprintable():  # a NUL or an escape must never reach a log or PLUTO_PEER_ID
        shown = text.encode("unicode_escape").decode("ascii")
        raise IdError(f"bad ID '{shown}': it contains non-printable characters")
    if text in ("%any", "%any6", "0.0.0.0", "::"):
        return ANY_ID
    if text == "%myid":
        return Identity(IdKind.MYID, "%myid")
    if text == "%fromcert":
        return FROMCERT_ID
    if text.startswith(("@#", "@[")) or text.lower().startswith("keyid:"):
        return _parse_key_id(text)
    if looks_like_dn(text):
        return dn_identity(text)
    if text.startswith("@"):
        name = text[1:]
        if not name or any(c.isspace() for c in name):
            raise IdError(f"bad FQDN ID {text!r}: expected @host.example")
        return Identity(IdKind.FQDN, name.rstrip(".").lower())
    if "@" in text:
        user, _, domain = text.rpartition("@")
        if not user or not domain or any(c.isspace() for c in text):
            raise IdError(f"bad user@fqdn ID {text!r}")
        return Identity(IdKind.USER_FQDN, f"{user}@{domain.lower()}")
    try:
        address = ip_address(text)
    except ValueError:
        raise IdError(
            f"bad ID {text!r}: expected an IP address, @fqdn, user@fqdn, %any or %myid"
        ) from None
    kind = IdKind.IPV4_ADDR if address.version == 4 else IdKind.IPV6_ADDR
    return Identity(kind, str(address))
