"""Certificates in phase 1: CERT and CR payloads (RFC 2408 3.9-3.10, the RFC 4945 profile),
the peer's certificate checked against the trust store, and signatures with a certificate's
key: RSA (PKCS#1 v1.5 over the bare HASH, as with raw keys) and ECDSA (RFC 4754).

Main Mode carries CR payloads beside KE (messages 3 and 4) and CERT payloads beside the
ID and SIG (messages 5 and 6); Aggressive Mode puts both in its three messages.  The
peer's ID must be what its certificate vouches for: the subject DN, or a subjectAltName
(RFC 4945 section 3.1); ``rightca=`` must name a CA of the verified chain.

Pure: the daemon reads the files (``daemon/credentials.py``) and hands the engine the
certificates and a :class:`TrustStore` (``pki.store.CertStore``) whose ``verify`` computes
only; our private key is the ipsec.secrets entry whose key is our certificate's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from ipaddress import ip_address
from typing import Protocol, Sequence, Union

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa, utils

from fswan.config.ids import IdKind, Identity
from fswan.ike import crypto
from fswan.ike.state import ExchangeError
from fswan.isakmp.constants import CertEncoding, NotifyType, OakleyAuth
from fswan.isakmp.payloads import CertPayload, CRPayload
from fswan.pki.dn import DNError, dn_from_der, dn_match, dn_to_der, format_dn, parse_dn
from fswan.pki.store import CertRejected, Verified, issued_by

PrivateKey = Union[rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey]

#: RFC 4754 authentication methods of IKEv1 (ECDSA with SHA-256 on P-256, ...)
ECDSA_256, ECDSA_384, ECDSA_521 = 9, 10, 11
ECDSA_METHODS: dict[str, int] = {"secp256r1": ECDSA_256, "secp384r1": ECDSA_384, "secp521r1": ECDSA_521}
#: method -> (curve name, r and s length in bytes, the hash RFC 4754 ties to it)
_ECDSA: dict[int, tuple[str, int, hashes.HashAlgorithm]] = {
    ECDSA_256: ("secp256r1", 32, hashes.SHA256()),
    ECDSA_384: ("secp384r1", 48, hashes.SHA384()),
    ECDSA_521: ("secp521r1", 66, hashes.SHA512()),
}
SIGNATURE_METHODS = frozenset({int(OakleyAuth.OAKLEY_RSA_SIG), *_ECDSA})
AUTH_NAMES: dict[int, str] = {ECDSA_256: "ECDSA_256", ECDSA_384: "ECDSA_384", ECDSA_521: "ECDSA_521"}

_X509 = CertEncoding.CERT_X509_SIGNATURE
#: more CERT payloads than any real chain has are not read (each is parsed)
MAX_PEER_CERTS = 8


@dataclass(frozen=True)
class Credentials:
    """A conn's certificates and key, as the daemon loaded them."""

    #: ``leftcert=``; None for a conn without a certificate of ours
    cert: x509.Certificate | None = None
    #: intermediate CA certificates sent after ours (the end certificate's issuers below the anchor)
    chain: tuple[x509.Certificate, ...] = ()
    #: ``rightcert=``: the certificate the peer must use
    peer_cert: x509.Certificate | None = None
    #: ``rightca=`` (``%same`` already resolved to our certificate's issuer)
    peer_ca: x509.Name | None = None
    #: ``leftsendcert=``: always, ifasked, never
    sendcert: str = "ifasked"

    @property
    def uses_certificates(self) -> bool:
        return self.cert is not None or self.peer_cert is not None or self.peer_ca is not None


NO_CREDENTIALS = Credentials()


class TrustStore(Protocol):
    """What phase 1 needs of ``pki.store.CertStore``."""

    def verify(self, end: x509.Certificate, intermediates: Sequence[x509.Certificate],
               now: datetime, strict_crl: bool = False) -> Verified: ...

    def ca_names(self) -> list[x509.Name]: ...

    def ca_key_ids(self) -> list[bytes]: ...


def ecdsa_method(key: object) -> int | None:
    """The RFC 4754 method for an EC key (private or public) on a curve it names, else None."""
    curve = getattr(key, "curve", None)
    return ECDSA_METHODS.get(curve.name) if curve is not None else None


def ecdsa_methods(creds: Credentials) -> tuple[int, ...]:
    """The ECDSA method an ``authby=ecdsa`` conn proposes and accepts: the one of our
    certificate's curve (both ends must use that curve's method); all three without one."""
    key = creds.cert.public_key() if creds.cert is not None else None
    method = ecdsa_method(key)
    return (method,) if method is not None else tuple(_ECDSA)


# --------------------------------------------------------------------------
# payloads we send


def cert_requests(creds: Credentials, trust: TrustStore | None) -> list[CRPayload]:
    """CR payloads: the ``rightca=`` DN, else every trust anchor; one empty CR with none."""
    if creds.peer_ca is not None:
        names = [creds.peer_ca]
    else:
        names = trust.ca_names() if trust is not None else []
    if not names:
        return [CRPayload(_X509)]
    return [CRPayload(_X509, dn_to_der(name)) for name in names]


def cert_payloads(creds: Credentials, peer_asked: bool) -> list[CertPayload]:
    """Our certificate and its intermediates, as ``leftsendcert=`` says."""
    if creds.cert is None or creds.sendcert == "never":
        return []
    if creds.sendcert == "ifasked" and not peer_asked:
        return []
    der = serialization.Encoding.DER
    return [CertPayload(_X509, c.public_bytes(der)) for c in (creds.cert, *creds.chain)]


# --------------------------------------------------------------------------
# the peer's certificate


def read_certificates(payloads: Sequence[CertPayload], who: str) -> list[x509.Certificate]:
    """The X.509 certificates of the peer's CERT payloads (others are ignored, as pluto did)."""
    found = []
    for payload in list(payloads)[:MAX_PEER_CERTS]:
        if payload.encoding != _X509:
            continue
        try:
            found.append(x509.load_der_x509_certificate(payload.data))
        except ValueError:
            raise ExchangeError(
                f"{who} sent a CERT payload that is not a DER X.509 certificate",
                notify=NotifyType.INVALID_CERTIFICATE,
            ) from None
    return found


def requested_cas(payloads: Sequence[CRPayload]) -> list[str]:
    """The CA DNs a peer's CR payloads name (for the log); unreadable ones are skipped."""
    names = []
    for payload in payloads:
        if payload.cert_type != _X509 or not payload.authority:
            continue
        try:
            names.append(format_dn(dn_from_der(payload.authority)))
        except DNError:
            continue
    return names


def _end_certificate(certs: Sequence[x509.Certificate], peer: Identity) -> x509.Certificate:
    """The peer's own certificate among those it sent: the one for its ID, else the first
    that is not a CA (the RFC 4945 order puts it first anyway)."""
    for cert in certs:
        if cert_vouches_for(cert, peer):
            return cert
    return certs[0]


def cert_vouches_for(cert: x509.Certificate, peer: Identity) -> bool:
    """RFC 4945 3.1: the ID is the subject DN or one of the subjectAltNames."""
    if peer.kind is IdKind.DER_ASN1_DN:
        try:
            wanted = parse_dn(peer.value)
        except DNError:
            return False
        return dn_match(wanted, cert.subject) == 0
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    if peer.kind is IdKind.FQDN:
        return peer.value in (n.lower().rstrip(".") for n in names.get_values_for_type(x509.DNSName))
    if peer.kind is IdKind.USER_FQDN:
        return peer.value.lower() in (n.lower() for n in names.get_values_for_type(x509.RFC822Name))
    if peer.kind in (IdKind.IPV4_ADDR, IdKind.IPV6_ADDR):
        return ip_address(peer.value) in names.get_values_for_type(x509.IPAddress)
    return False


def subject_identity(cert: x509.Certificate) -> Identity:
    """The certificate's subject as an ID_DER_ASN1_DN identity (``%fromcert``)."""
    return Identity(IdKind.DER_ASN1_DN, format_dn(cert.subject))


def check_peer_certificate(
    trust: TrustStore | None,
    creds: Credentials,
    certs: Sequence[x509.Certificate],
    peer: Identity,
    now: float,
    strict_crl: bool,
) -> tuple[x509.Certificate, list[str]]:
    """The peer's verified end certificate and the log lines of its check.

    ``rightcert=`` pins it (the peer's certificate, if sent, must be that one); otherwise
    the certificate must verify against the trust store, vouch for the peer's ID and, with
    ``rightca=``, come from that CA.  Failures raise ExchangeError with pluto's lines and
    end the negotiation: the message decrypted, so this is the peer's answer, not noise a
    retransmission could repair (the initiator's ``ipsec auto --up`` returns at once)."""
    if creds.peer_cert is not None:
        if certs and not any(c == creds.peer_cert for c in certs):
            raise ExchangeError(
                f"peer '{peer}' sent a certificate other than the one configured (rightcert=)",
                notify=NotifyType.INVALID_CERTIFICATE, delete=True,
            )
        end = creds.peer_cert
        if not cert_vouches_for(end, peer):
            raise _id_mismatch(peer, end)
        return end, []
    if not certs:
        raise ExchangeError(
            f"no certificate received from peer '{peer}' and none configured (rightcert=)",
            notify=NotifyType.AUTHENTICATION_FAILED, delete=True,
        )
    if trust is None:
        raise ExchangeError("no trust anchors loaded (ipsec.d/cacerts)",
                            notify=NotifyType.INVALID_CERTIFICATE, delete=True)
    end = _end_certificate(certs, peer)
    others = [c for c in certs if c is not end]
    moment = datetime.fromtimestamp(now, timezone.utc)
    try:
        verified = trust.verify(end, others, moment, strict_crl)
    except CertRejected as rejected:
        raise ExchangeError(*rejected.lines, notify=NotifyType.INVALID_CERTIFICATE, delete=True) from None
    if not cert_vouches_for(end, peer):
        raise _id_mismatch(peer, end)
    if creds.peer_ca is not None and not issued_by(verified, creds.peer_ca):
        raise ExchangeError(
            f"certificate of '{peer}' is not issued by the CA required (rightca="
            f"'{format_dn(creds.peer_ca)}')",
            notify=NotifyType.INVALID_CERTIFICATE, delete=True,
        )
    lines = [f"certificate of '{format_dn(end.subject)}' verified (issuer "
             f"'{format_dn(end.issuer)}')", *verified.warnings]
    return end, lines


def _id_mismatch(peer: Identity, cert: x509.Certificate) -> ExchangeError:
    return ExchangeError(
        f"peer ID '{peer}' is not the subject nor a subjectAltName of its certificate "
        f"('{format_dn(cert.subject)}')",
        notify=NotifyType.INVALID_ID_INFORMATION, delete=True,
    )


def claimed_issuers(payloads: Sequence[CertPayload]) -> list[x509.Name]:
    """The issuers the peer's certificates name, not yet verified: enough to choose
    among conns by ``rightca=`` before the chain is checked under the chosen one."""
    names = []
    for payload in list(payloads)[:MAX_PEER_CERTS]:
        if payload.encoding != _X509:
            continue
        try:
            names.append(x509.load_der_x509_certificate(payload.data).issuer)
        except ValueError:
            continue
    return names


def ca_allows(creds: Credentials, issuers: Sequence[x509.Name]) -> bool:
    """Whether a conn's ``rightca=`` accepts a chain with these CAs (no ``rightca=``: yes)."""
    if creds.peer_ca is None:
        return True
    return any(dn_match(creds.peer_ca, name) is not None for name in issuers)


# --------------------------------------------------------------------------
# signatures


def sign(key: PrivateKey, method: int, hash_value: bytes) -> bytes:
    """SIG_I/SIG_R over HASH_I/HASH_R with a certificate's key."""
    if method == OakleyAuth.OAKLEY_RSA_SIG:
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ExchangeError("authby=rsasig but our certificate's key is not RSA",
                                notify=NotifyType.AUTHENTICATION_FAILED)
        return crypto.rsa_sign_hash(key, hash_value)
    curve, size, digest = _ECDSA[method]
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != curve:
        raise ExchangeError(f"{AUTH_NAMES[method]} needs a {curve} key for our certificate",
                            notify=NotifyType.AUTHENTICATION_FAILED)
    der = key.sign(hash_value, ec.ECDSA(_prehashed(hash_value)))
    r, s = utils.decode_dss_signature(der)
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


def _prehashed(hash_value: bytes) -> utils.Prehashed:
    """HASH_I/HASH_R is signed as the digest itself (strongSwan's SIGN_ECDSA_WITH_NULL for
    IKEv1), not hashed again; the PRF's output length says which digest it stands for."""
    return utils.Prehashed(_BY_LENGTH.get(len(hash_value), hashes.SHA256()))


_BY_LENGTH: dict[int, hashes.HashAlgorithm] = {
    20: hashes.SHA1(), 32: hashes.SHA256(), 48: hashes.SHA384(), 64: hashes.SHA512()}


def verify(public_key: object, method: int, hash_value: bytes, signature: bytes) -> bool:
    """Whether ``signature`` is the peer's SIG over ``hash_value`` with this key."""
    if method == OakleyAuth.OAKLEY_RSA_SIG:
        return isinstance(public_key, rsa.RSAPublicKey) and crypto.rsa_verify_hash(
            public_key, hash_value, signature)
    if method not in _ECDSA or not isinstance(public_key, ec.EllipticCurvePublicKey):
        return False
    curve, size, digest = _ECDSA[method]
    if public_key.curve.name != curve or len(signature) != 2 * size:
        return False
    r, s = int.from_bytes(signature[:size], "big"), int.from_bytes(signature[size:], "big")
    der = utils.encode_dss_signature(r, s)
    # strongSwan signs the HASH as the digest; RFC 4754 read literally hashes it again
    for algorithm in (ec.ECDSA(_prehashed(hash_value)), ec.ECDSA(digest)):
        try:
            public_key.verify(der, hash_value, algorithm)
        except (InvalidSignature, ValueError):
            continue
        return True
    return False
