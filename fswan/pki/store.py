"""The certificate store: trust anchors, CRLs, our end certificates, and path validation.

Trust anchors are ``ipsec.d/cacerts/*`` plus the ``cacert=`` files of ``ca`` sections; CRLs are
``ipsec.d/crls/*`` plus any added with ``add_crl``.  Files are read only by the explicit calls
(``load``, ``reread_*``, ``load_end_cert``); an unreadable one is a warning line, never fatal.  No
clock is read: ``verify`` takes ``now``, and the "installed" stamp of a file is the ``now`` passed
to the loading call or, without one, the file's modification time.

``verify`` builds the path from the peer's certificate up to an anchor and rejects it with
pluto's X.509 wording (``issuer cacert not found``, ``certificate was revoked on ...``,
``X.509 certificate rejected``), which operators grep their logs for.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Sequence

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

from fswan.pki.certs import PkiError, load_certificates, load_crl, pluto_time, utc
from fswan.pki.dn import dn_match, format_dn

#: certificates from the end one up to and including the anchor (pluto's MAX_CA_PATH_LEN)
MAX_CHAIN = 7

#: pluto's crl_reason_names (RFC 5280 CRLReason), by cryptography's flag
REASONS: dict[x509.ReasonFlags, str] = {
    x509.ReasonFlags.unspecified: "unspecified",
    x509.ReasonFlags.key_compromise: "key compromise",
    x509.ReasonFlags.ca_compromise: "ca compromise",
    x509.ReasonFlags.affiliation_changed: "affiliation changed",
    x509.ReasonFlags.superseded: "superseded",
    x509.ReasonFlags.cessation_of_operation: "cessation of operation",
    x509.ReasonFlags.certificate_hold: "certificate hold",
    x509.ReasonFlags.remove_from_crl: "remove from crl",
    x509.ReasonFlags.privilege_withdrawn: "privilege withdrawn",
    x509.ReasonFlags.aa_compromise: "aa compromise",
}


@dataclass(frozen=True)
class StoredCert:
    """A certificate with the file it came from and when that file was loaded."""

    cert: x509.Certificate
    path: str
    loaded: datetime
    #: "file:line" of the ``cacert=`` that named it; "" for ipsec.d files
    origin: str = ""


@dataclass(frozen=True)
class StoredCrl:
    crl: x509.CertificateRevocationList
    path: str
    loaded: datetime
    #: read from ipsec.d/crls (replaced by ``reread_crls``), not added by the daemon
    from_dir: bool = True


class CertRejected(Exception):
    """A peer certificate that does not verify; ``lines`` are pluto's log lines, the last one
    ``X.509 certificate rejected``."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("; ".join(lines))
        self.lines = lines


@dataclass(frozen=True)
class Verified:
    """A certificate path that verified."""

    #: end certificate first, trust anchor last
    chain: tuple[x509.Certificate, ...]
    #: warnings that did not reject it (an overdue CRL when not strict)
    warnings: tuple[str, ...] = ()

    @property
    def end(self) -> x509.Certificate:
        return self.chain[0]

    @property
    def issuer_names(self) -> list[x509.Name]:
        """The subject of every CA in the chain (for ``rightca=``)."""
        return [cert.subject for cert in self.chain[1:]]


def issued_by(verified: Verified, ca: x509.Name) -> bool:
    """Whether ``ca`` (maybe with ``*`` wildcards) names some CA in the verified chain."""
    return any(dn_match(ca, name) is not None for name in verified.issuer_names)


def _mtime(path: str) -> datetime:
    try:
        return datetime.fromtimestamp(os.stat(path).st_mtime, timezone.utc)
    except OSError:
        return datetime.fromtimestamp(0, timezone.utc)


def regular_files(directory: str) -> list[str]:
    """Regular files of a directory, sorted; [] when it does not exist."""
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return []
    paths = (os.path.join(directory, n) for n in names if not n.startswith("."))
    return [p for p in paths if os.path.isfile(p)]


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def is_ca(cert: x509.Certificate) -> bool:
    """basicConstraints CA:TRUE."""
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


def _path_length(cert: x509.Certificate) -> int | None:
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length
    except x509.ExtensionNotFound:
        return None


def _key_usage(cert: x509.Certificate) -> x509.KeyUsage | None:
    try:
        return cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return None


def _signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def _crl_signed_by(crl: x509.CertificateRevocationList, issuer: x509.Certificate) -> bool:
    key = issuer.public_key()
    try:
        return crl.is_signature_valid(key)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


@dataclass
class CertStore:
    """What pluto kept in its authcert and CRL chains, plus the end certificates of our conns."""

    ipsec_d: str
    anchors: list[StoredCert] = field(default_factory=list)
    crls: list[StoredCrl] = field(default_factory=list)
    #: by resolved path
    end_certs: dict[str, StoredCert] = field(default_factory=dict)
    #: (path, "file:line where named") of the ca sections' ``cacert=``
    ca_files: tuple[tuple[str, str], ...] = ()

    @classmethod
    def load(cls, ipsec_d: str, ca_files: Sequence[tuple[str, str]] = (),
             *, now: datetime | None = None) -> tuple[CertStore, list[str]]:
        """The store for an ipsec.d directory, and warning lines for files that were skipped."""
        store = cls(ipsec_d=ipsec_d, ca_files=tuple(ca_files))
        warnings = store.reread_cacerts(now=now) + store.reread_crls(now=now)
        return store, warnings

    @property
    def cacerts_dir(self) -> str:
        return os.path.join(self.ipsec_d, "cacerts")

    @property
    def crls_dir(self) -> str:
        return os.path.join(self.ipsec_d, "crls")

    @property
    def certs_dir(self) -> str:
        return os.path.join(self.ipsec_d, "certs")

    def reread_cacerts(self, *, now: datetime | None = None) -> list[str]:
        """Replace the trust anchors with what the files hold now."""
        warnings: list[str] = []
        anchors: list[StoredCert] = []
        sources = [(p, "") for p in regular_files(self.cacerts_dir)] + list(self.ca_files)
        for path, origin in sources:
            try:
                certs = load_certificates(path)
            except PkiError as e:
                warnings.append(f"{origin}: {e}" if origin else str(e))
                continue
            loaded = utc(now) if now is not None else _mtime(path)
            for cert in certs:
                if not is_ca(cert):
                    warnings.append(f"{origin + ': ' if origin else ''}{path}: "
                                    f"'{format_dn(cert.subject)}' is not a CA certificate, skipped")
                    continue
                if any(_der(a.cert) == _der(cert) for a in anchors):
                    continue
                anchors.append(StoredCert(cert, path, loaded, origin))
        self.anchors = anchors
        return warnings

    def reread_crls(self, *, now: datetime | None = None) -> list[str]:
        """Replace the CRLs of ipsec.d/crls with what the directory holds now (added ones stay)."""
        warnings: list[str] = []
        crls = [c for c in self.crls if not c.from_dir]
        for path in regular_files(self.crls_dir):
            try:
                crl = load_crl(path)
            except PkiError as e:
                warnings.append(str(e))
                continue
            crls.append(StoredCrl(crl, path, utc(now) if now is not None else _mtime(path)))
        self.crls = crls
        return warnings

    def add_crl(self, crl: x509.CertificateRevocationList, path: str, now: datetime) -> None:
        """A CRL obtained otherwise (``crluri=``); it survives ``reread_crls``, and replaces the
        one added before from the same ``path`` (a fetch again is an update, not a second CRL)."""
        self.crls = [c for c in self.crls if c.from_dir or c.path != path]
        self.crls.append(StoredCrl(crl, path, utc(now), from_dir=False))

    def resolve_cert_path(self, name: str) -> str:
        """``leftcert=west.pem`` means ``ipsec.d/certs/west.pem``; an absolute path stays."""
        return name if os.path.isabs(name) else os.path.join(self.certs_dir, name)

    def load_end_cert(self, name: str, *, now: datetime | None = None) -> x509.Certificate:
        """Our certificate for ``leftcert=`` (the first one of the file), loaded once."""
        path = self.resolve_cert_path(name)
        stored = self.end_certs.get(path)
        if stored is None:
            certs = load_certificates(path)
            stored = StoredCert(certs[0], path, utc(now) if now is not None else _mtime(path))
            self.end_certs[path] = stored
        return stored.cert

    def forget_end_certs(self) -> None:
        """Drop the cache, so that the next ``load_end_cert`` reads the files again."""
        self.end_certs.clear()

    def forget_end_cert(self, name: str) -> StoredCert | None:
        """Drop one ``leftcert=`` from the cache (a conn added again reads its file again);
        what was cached, to put back with ``keep_end_cert`` if the file is now unusable."""
        return self.end_certs.pop(self.resolve_cert_path(name), None)

    def keep_end_cert(self, stored: StoredCert) -> None:
        self.end_certs.setdefault(stored.path, stored)

    def set_ca_files(self, ca_files: Sequence[tuple[str, str]]) -> None:
        """The ``cacert=`` files for the next ``reread_cacerts`` (the ca sections read again)."""
        self.ca_files = tuple(ca_files)

    def ca_key_ids(self) -> list[bytes]:
        """SHA-1 of each trust anchor's SubjectPublicKeyInfo: IKEv2's CERTREQ names CAs so."""
        ids: list[bytes] = []
        for anchor in self.anchors:
            spki = anchor.cert.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
            digest = hashlib.sha1(spki).digest()
            if digest not in ids:
                ids.append(digest)
        return ids

    def ca_names(self) -> list[x509.Name]:
        """The subjects of the trust anchors, for CERTREQ payloads."""
        names: list[x509.Name] = []
        for anchor in self.anchors:
            if anchor.cert.subject not in names:
                names.append(anchor.cert.subject)
        return names

    # --- path validation -------------------------------------------------------------------

    def verify(self, end: x509.Certificate, intermediates: Sequence[x509.Certificate], now: datetime,
               strict_crl: bool = False) -> Verified:
        """The path from ``end`` to a trust anchor, checked; ``CertRejected`` with pluto's lines."""
        now = utc(now)
        anchor_ders = {_der(a.cert) for a in self.anchors}
        peers = [c for c in intermediates if _der(c) not in anchor_ders]
        chain: list[x509.Certificate] = [end]
        seen = {_der(end)}
        warnings: list[str] = []
        cert = end
        while True:
            context = [] if cert is end else [f"ca certificate '{format_dn(cert.subject)}':"]
            fault = self._check_validity(cert, now)
            if fault:
                raise CertRejected(context + [fault, "X.509 certificate rejected"])
            if _der(cert) in anchor_ders and cert is not end:
                break
            if len(chain) >= MAX_CHAIN:
                raise CertRejected([f"maximum ca path length of {MAX_CHAIN} levels exceeded",
                                    "X.509 certificate rejected"])
            candidates = [c for c in peers if c.subject == cert.issuer and _der(c) not in seen]
            candidates += [a.cert for a in self.anchors if a.cert.subject == cert.issuer]
            if not candidates:
                raise CertRejected(context + ["issuer cacert not found", "X.509 certificate rejected"])
            issuer = next((c for c in candidates if _signed_by(cert, c)), None)
            if issuer is None:
                raise CertRejected(context + ["certificate signature is invalid",
                                              "X.509 certificate rejected"])
            fault = self._check_issuer(issuer, len(chain) - 1)
            if fault:  # names the issuer itself
                raise CertRejected([fault, "X.509 certificate rejected"])
            lines = self._check_crl(cert, issuer, now, strict_crl)
            if lines and lines[-1] == "X.509 certificate rejected":
                raise CertRejected(context + lines)
            warnings += lines
            seen.add(_der(issuer))
            chain.append(issuer)
            cert = issuer
        fault = self._check_end_usage(end)
        if fault:
            raise CertRejected([fault, "X.509 certificate rejected"])
        return Verified(tuple(chain), tuple(warnings))

    @staticmethod
    def _check_validity(cert: x509.Certificate, now: datetime) -> str | None:
        start, stop = cert.not_valid_before_utc, cert.not_valid_after_utc
        if start <= now <= stop:
            return None
        return f"certificate is invalid (valid from {pluto_time(start)} to {pluto_time(stop)})"

    @staticmethod
    def _check_issuer(issuer: x509.Certificate, below: int) -> str | None:
        """An issuer must be a CA allowed to sign certificates, with ``below`` CAs under it."""
        name = format_dn(issuer.subject)
        if not is_ca(issuer):
            return f"issuer certificate '{name}' is not a CA (no basicConstraints CA:TRUE)"
        usage = _key_usage(issuer)
        if usage is not None and not usage.key_cert_sign:
            return f"issuer certificate '{name}' keyUsage does not allow keyCertSign"
        limit = _path_length(issuer)
        if limit is not None and below > limit:
            return f"path length constraint {limit} of '{name}' exceeded"
        return None

    @staticmethod
    def _check_end_usage(end: x509.Certificate) -> str | None:
        usage = _key_usage(end)
        if usage is None or usage.digital_signature or usage.content_commitment:
            return None
        return "certificate keyUsage allows neither digitalSignature nor nonRepudiation"

    def _crl_for(self, issuer: x509.Certificate) -> x509.CertificateRevocationList | None:
        """The newest CRL of that issuer whose signature verifies with its key (others are ignored)."""
        found = [s.crl for s in self.crls
                 if s.crl.issuer == issuer.subject and _crl_signed_by(s.crl, issuer)]
        if not found:
            return None
        return max(found, key=lambda crl: crl.last_update_utc)

    def _check_crl(self, cert: x509.Certificate, issuer: x509.Certificate, now: datetime,
                   strict: bool) -> list[str]:
        """[] when fine, warning lines, or lines ending in the rejection."""
        crl = self._crl_for(issuer)
        issuer_dn = format_dn(issuer.subject)
        if crl is None:
            if strict:
                return [f'no crl from issuer "{issuer_dn}" found (strict mode)', "X.509 certificate rejected"]
            return []
        revoked = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
        if revoked is not None:
            return [f"certificate was revoked on {pluto_time(revoked.revocation_date_utc)}, "
                    f"reason: {revocation_reason(revoked)}", "X.509 certificate rejected"]
        next_update = crl.next_update_utc
        if next_update is not None and next_update < now:
            line = f'crl update for "{issuer_dn}" is overdue since {pluto_time(next_update)}'
            return [line, "X.509 certificate rejected"] if strict else [line]
        return []

    def is_revoked(self, cert: x509.Certificate, issuer: x509.Certificate) -> x509.RevokedCertificate | None:
        """The CRL entry of a certificate, from its issuer's verified CRL (for listings)."""
        crl = self._crl_for(issuer)
        return None if crl is None else crl.get_revoked_certificate_by_serial_number(cert.serial_number)


def revocation_reason(revoked: x509.RevokedCertificate) -> str:
    """pluto's name for a CRL entry's reason; "unspecified" without the extension."""
    try:
        flag = revoked.extensions.get_extension_for_class(x509.CRLReason).value.reason
    except x509.ExtensionNotFound:
        return "unspecified"
    return REASONS.get(flag, flag.value)
