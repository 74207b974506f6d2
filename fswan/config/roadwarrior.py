"""Who does XAUTH and Mode Config on an oriented conn, pure.

ipsec.conf says it per end (Libreswan: ``leftxauthserver=``, ``rightmodecfgclient=``,
``rightaddresspool=``) or, in strongSwan's spelling, as our role
(``authby=xauthpsk`` + ``xauth=server``, ``leftsourceip=%config``).  Which end is
ours is known only after orientation, so the IKE engine asks these functions, never
the raw fields: one reading of the keywords for every exchange.

A flag on the other end implies ours where the pair has one meaning: a conn that says
``rightxauthclient=yes`` makes us (left) the XAUTH server, as Libreswan files that set
only one side are meant.  A flag set on our own end always wins over that inference.
"""

from __future__ import annotations

from fswan.config.model import AddressRange
from fswan.config.orient import OrientedConnection

__all__ = [
    "address_pool",
    "modecfg_client",
    "modecfg_server",
    "uses_xauth",
    "xauth_client",
    "xauth_server",
    "xauth_username",
]


def xauth_server(o: OrientedConnection) -> bool:
    """We ask the peer for a user name and password after phase 1."""
    this, that = o.this.end, o.that.end
    if this.xauthserver or o.conn.xauth_role == "server":
        return True
    return that.xauthclient and not this.xauthclient and o.conn.xauth_role is None


def xauth_client(o: OrientedConnection) -> bool:
    """We answer the peer's XAUTH request with :func:`xauth_username` and its XAUTH secret."""
    this, that = o.this.end, o.that.end
    if this.xauthclient or o.conn.xauth_role == "client":
        return True
    return that.xauthserver and not this.xauthserver and o.conn.xauth_role is None


def uses_xauth(o: OrientedConnection) -> bool:
    """Phase 1 of this conn is followed by XAUTH (its authentication methods are the
    XAUTHInit*/XAUTHResp* ones)."""
    return xauth_server(o) or xauth_client(o)


def modecfg_server(o: OrientedConnection) -> bool:
    """We hand the peer an inner address (and DNS servers, domains, a banner)."""
    this, that = o.this.end, o.that.end
    if this.modecfgserver:
        return True
    if this.modecfgclient:
        return False
    return that.modecfgclient or that.addresspool is not None


def modecfg_client(o: OrientedConnection) -> bool:
    """We take an inner address from the peer (``leftmodecfgclient=yes``,
    ``leftsourceip=%config``) and use it as our client in Quick Mode."""
    this, that = o.this.end, o.that.end
    if this.modecfgclient:
        return True
    return that.modecfgserver and not this.modecfgserver


def address_pool(o: OrientedConnection) -> AddressRange | None:
    """The pool a Mode Config server leases from, None when there is none (or we are
    a client).

    Libreswan writes it on the clients' side (``rightaddresspool=`` with
    ``right=%any``), and so does strongSwan (``rightsourceip=`` a range or CIDR);
    the peer's end is read first.  A pool on our own end is accepted as well, as
    Libreswan does, but only while we are not the Mode Config client: then it is the
    pool of a file shared with the server, not ours to hand out.
    """
    if o.that.end.addresspool is not None:
        return o.that.end.addresspool
    if o.this.end.addresspool is not None and not modecfg_client(o):
        return o.this.end.addresspool
    return None


def xauth_username(o: OrientedConnection) -> str | None:
    """The user name we send as XAUTH client: ``leftxauthusername=`` (``leftusername=``)
    of our end, else strongSwan's ``xauth_identity=``; its password is the XAUTH secret
    of that name in ipsec.secrets.  None: unset."""
    return o.this.end.xauthusername or o.conn.xauth_identity
