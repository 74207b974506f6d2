"""IKE identities as written in ipsec.conf (``leftid=``) and ipsec.secrets selectors.

pluto's forms: an address literal (ID_IPV4_ADDR / ID_IPV6_ADDR), ``@fqdn``
(ID_FQDN, taken literally, never resolved), ``user@fqdn`` (ID_USER_FQDN),
``%any`` (matches every peer) and ``%myid`` (the ``myid=`` of config setup).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from ipaddress import ip_address


class IdKind(str, enum.Enum):
    IPV4_ADDR = "ID_IPV4_ADDR"
    IPV6_ADDR = "ID_IPV6_ADDR"
    FQDN = "ID_FQDN"
    USER_FQDN = "ID_USER_FQDN"
    ANY = "%any"
    MYID = "%myid"


class IdError(ValueError):
    """Text that is not an identity; the message says which forms are allowed."""


@dataclass(frozen=True)
class Identity:
    kind: IdKind
    #: canonical text: the address, the FQDN without '@', the user@fqdn
    value: str

    def __str__(self) -> str:
        if self.kind is IdKind.FQDN:
            return "@" + self.value
        return self.value

    @property
    def is_any(self) -> bool:
        return self.kind is IdKind.ANY


ANY_ID = Identity(IdKind.ANY, "%any")


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
