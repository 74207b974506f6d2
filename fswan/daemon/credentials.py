"""A conn's certificates, read from files when the conn is added (``leftcert=``,
``rightcert=``, ``rightca=``, ``%fromcert``), for the engine's ``certauth``.

The trust store itself (``ipsec.d/cacerts``, ``crls``, the ``cacert=`` of ``ca``
sections) is ``pki.store.CertStore``; this module only turns one oriented conn into
the :class:`~fswan.ike.certauth.Credentials` it negotiates with, with the IDs that
came from its certificates filled in.  Problems are :class:`CredentialError` with a
line that names the keyword and file, so the conn is refused with a reason.
"""

from __future__ import annotations

from dataclasses import replace

from cryptography import x509

from fswan.config.ids import IdKind
from fswan.config.model import AuthBy, Connection
from fswan.config.orient import OrientedConnection, OrientedEnd
from fswan.ike.certauth import NO_CREDENTIALS, Credentials, cert_vouches_for, subject_identity
from fswan.pki.certs import PkiError, load_certificates
from fswan.pki.dn import DNError, format_dn, parse_dn
from fswan.pki.store import CertStore, regular_files

#: intermediates sent after our certificate, at most (a longer chain is a mistake)
MAX_CHAIN = 6


class CredentialError(Exception):
    """Why a conn's certificates cannot be used (the conn is not added)."""


def needs_certificates(conn: Connection) -> bool:
    return (
        conn.authby is AuthBy.ECDSA
        or any(end.cert or end.ca for end in (conn.left, conn.right))
        or any(end.id == "%fromcert" for end in (conn.left, conn.right))
    )


def resolve(
    oriented: OrientedConnection, store: CertStore | None
) -> tuple[OrientedConnection, Credentials, list[str]]:
    """The conn with ``%fromcert`` IDs filled in, its credentials and warning lines."""
    conn = oriented.conn
    if not needs_certificates(conn):
        return oriented, NO_CREDENTIALS, []
    if store is None:
        raise CredentialError("certificates are not available (no ipsec.d)")
    side, peer_side = ("left", "right") if oriented.this_is_left else ("right", "left")
    warnings: list[str] = []
    this, that = oriented.this, oriented.that
    ours = _load(store, this.end.cert, f"{side}cert") if this.end.cert else None
    peer = _load(store, that.end.cert, f"{peer_side}cert") if that.end.cert else None
    this = _with_cert_id(this, ours, f"{side}id", warnings)
    that = _with_cert_id(that, peer, f"{peer_side}id", warnings)
    peer_ca = None
    if that.end.ca:
        if that.end.ca == "%same":
            if ours is None:
                raise CredentialError(f"{peer_side}ca=%same needs {side}cert= (our CA)")
            peer_ca = ours.issuer
        else:
            try:
                peer_ca = parse_dn(that.end.ca)
            except DNError as error:
                raise CredentialError(f"{peer_side}ca={that.end.ca}: {error}") from None
    chain = _intermediates(store, ours) if ours is not None else ()
    creds = Credentials(cert=ours, chain=chain, peer_cert=peer, peer_ca=peer_ca,
                        sendcert=this.end.sendcert)
    return replace(oriented, this=this, that=that), creds, warnings


def _load(store: CertStore, name: str, keyword: str) -> x509.Certificate:
    try:
        return store.load_end_cert(name)
    except PkiError as error:
        raise CredentialError(f"{keyword}={name}: {error}") from None


def _with_cert_id(end: OrientedEnd, cert: x509.Certificate | None, keyword: str,
                  warnings: list[str]) -> OrientedEnd:
    """``%fromcert`` (or no ID with a certificate) becomes the subject DN; an ID given
    that the certificate does not vouch for is said (the peer will refuse it)."""
    if end.id.kind is IdKind.FROMCERT:
        return end if cert is None else replace(end, id=subject_identity(cert))
    if cert is not None and not cert_vouches_for(cert, end.id):
        warnings.append(f"{keyword}='{end.id}' is neither the subject nor a subjectAltName of "
                        f"the certificate ('{format_dn(cert.subject)}')")
    return end


def _intermediates(store: CertStore, cert: x509.Certificate) -> tuple[x509.Certificate, ...]:
    """The CA certificates between ours and a self-signed root, found in the trust
    anchors, in ``ipsec.d/certs`` and after ours in its own file: sent with ours."""
    pool = [a.cert for a in store.anchors]
    for stored in store.end_certs.values():
        try:
            pool += load_certificates(stored.path)[1:]
        except PkiError:
            continue
    for path in regular_files(store.certs_dir):
        try:
            pool += load_certificates(path)
        except PkiError:
            continue
    chain: list[x509.Certificate] = []
    current = cert
    while current.issuer != current.subject and len(chain) < MAX_CHAIN:
        issuer = next((c for c in pool if c.subject == current.issuer and c != current), None)
        if issuer is None or issuer.issuer == issuer.subject:
            break
        chain.append(issuer)
        current = issuer
    return tuple(chain)

