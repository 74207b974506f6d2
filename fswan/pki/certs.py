"""Loading certificates, CRLs and private keys from files, and what a certificate vouches for.

Every failure is a ``PkiError`` whose text starts with the file name, so that the daemon can log it
as it is (``/etc/ipsec.d/certs/west.pem: not a PEM or DER certificate``).  PEM is recognised by
its ``-----BEGIN`` line, anything else is tried as DER.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Union

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa

from fswan.pki.dn import format_dn

PrivateKey = Union[rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey]

#: a certificate, CRL or key file larger than this is not one (and is not read whole)
MAX_FILE_BYTES = 1 << 20


class PkiError(Exception):
    """A file that could not be used; ``str()`` is ``"<path>: <reason>"``."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except OSError as e:
        raise PkiError(path, e.strerror or str(e)) from None
    if len(data) > MAX_FILE_BYTES:
        raise PkiError(path, f"larger than {MAX_FILE_BYTES} bytes")
    return data


def _is_pem(data: bytes) -> bool:
    return b"-----BEGIN " in data


def load_certificates(path: str) -> list[x509.Certificate]:
    """Every certificate in a PEM file (one or more), or the one in a DER file."""
    return parse_certificates(_read(path), path)


def parse_certificates(data: bytes, path: str) -> list[x509.Certificate]:
    """``load_certificates`` of bytes read elsewhere (a loader, a download); ``path`` names them."""
    try:
        if _is_pem(data):
            return x509.load_pem_x509_certificates(data)
        return [x509.load_der_x509_certificate(data)]
    except ValueError:
        raise PkiError(path, "not a PEM or DER certificate") from None


def load_crl(path: str) -> x509.CertificateRevocationList:
    """A CRL from a PEM or DER file."""
    return parse_crl(_read(path), path)


def parse_crl(data: bytes, source: str) -> x509.CertificateRevocationList:
    """A PEM or DER CRL from bytes read elsewhere (``crluri=``); ``source`` names them."""
    if len(data) > MAX_FILE_BYTES:
        raise PkiError(source, f"larger than {MAX_FILE_BYTES} bytes")
    try:
        if _is_pem(data):
            return x509.load_pem_x509_crl(data)
        return x509.load_der_x509_crl(data)
    except ValueError:
        raise PkiError(source, "not a PEM or DER CRL") from None


def load_private_key(path: str, passphrase: bytes | None) -> PrivateKey:
    """An RSA or ECDSA private key (PEM or DER; PKCS#1, PKCS#8 or SEC1; maybe encrypted)."""
    data = _read(path)
    load = serialization.load_pem_private_key if _is_pem(data) else serialization.load_der_private_key
    try:
        try:
            key = load(data, passphrase)
        except TypeError as e:
            if passphrase is None:
                raise PkiError(path, "private key is encrypted but no passphrase was given") from None
            if "not encrypted" not in str(e):
                raise
            key = load(data, None)  # a passphrase for a clear key is harmless, as in pluto
    except ValueError:
        if passphrase is not None:
            raise PkiError(path, "cannot decrypt private key: wrong passphrase, or not a private key") from None
        raise PkiError(path, "not a PEM or DER private key") from None
    except TypeError as e:
        raise PkiError(path, f"cannot load private key: {e}") from None
    except Exception as e:  # e.g. UnsupportedAlgorithm for an exotic cipher or curve
        raise PkiError(path, f"cannot load private key: {e}") from None
    if isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
        return key
    raise PkiError(path, f"{_kind_of(key.public_key())} private keys are not supported (RSA or ECDSA only)")


def _kind_of(key: object) -> str:
    if isinstance(key, rsa.RSAPublicKey):
        return "RSA"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "ECDSA"
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519"
    if isinstance(key, ed448.Ed448PublicKey):
        return "Ed448"
    if isinstance(key, dsa.DSAPublicKey):
        return "DSA"
    return type(key).__name__


def public_key_kind(cert: x509.Certificate) -> str:
    """``"RSA"`` or ``"ECDSA"`` (other kinds by name: ``"Ed25519"``, ``"DSA"``), for auth method checks."""
    return _kind_of(cert.public_key())


def public_key_bits(cert: x509.Certificate) -> int:
    """The key size in bits (modulus for RSA, curve order size for ECDSA), 0 if unknown."""
    key = cert.public_key()
    if isinstance(key, (rsa.RSAPublicKey, ec.EllipticCurvePublicKey, dsa.DSAPublicKey)):
        return key.key_size
    if isinstance(key, ed25519.Ed25519PublicKey):
        return 256
    if isinstance(key, ed448.Ed448PublicKey):
        return 456
    return 0


def public_key_curve(cert: x509.Certificate) -> str | None:
    """The curve name of an ECDSA key (``secp256r1``, ``secp384r1``...), else None."""
    key = cert.public_key()
    return key.curve.name if isinstance(key, ec.EllipticCurvePublicKey) else None


def describe_public_key(cert: x509.Certificate) -> str:
    """``RSA 2048 bits`` or ``ECDSA 256 bits (secp256r1)``, as the listings print it."""
    text = f"{public_key_kind(cert)} {public_key_bits(cert)} bits"
    curve = public_key_curve(cert)
    return f"{text} ({curve})" if curve else text


def cert_ids(cert: x509.Certificate) -> list[str]:
    """The IDs a certificate vouches for, as ipsec.conf writes them: the subject DN, then the
    subjectAltName DNS names (``@host``), emails (``user@host``) and addresses."""
    ids = [format_dn(cert.subject)] if len(cert.subject) else []
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return ids
    for general in san:
        if isinstance(general, x509.DNSName):
            ids.append("@" + general.value)
        elif isinstance(general, x509.RFC822Name):
            ids.append(general.value)
        elif isinstance(general, x509.IPAddress):
            ids.append(str(general.value))
    return ids


def hex_colons(data: bytes) -> str:
    """``01:23:ab``: how pluto prints serials and key IDs."""
    return ":".join(f"{b:02x}" for b in data)


def serial_text(serial: int) -> str:
    """A serial number as pluto prints it (big-endian bytes, colon separated)."""
    return hex_colons(serial.to_bytes(max(1, (serial.bit_length() + 7) // 8), "big"))


def subject_key_id(cert: x509.Certificate) -> bytes | None:
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        return None


def authority_key_id(obj: x509.Certificate | x509.CertificateRevocationList) -> bytes | None:
    try:
        return obj.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
    except x509.ExtensionNotFound:
        return None


def utc(moment: datetime) -> datetime:
    """An aware UTC datetime (a naive one is taken to be UTC already)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def pluto_time(moment: datetime) -> str:
    """``Dec 04 14:30:00 UTC 2026``: pluto's ``%T`` with UTC."""
    t = utc(moment)
    return f"{_MONTHS[t.month - 1]} {t:%d %H:%M:%S} UTC {t.year}"


def pluto_local_time(moment: datetime) -> str:
    """``Dec 04 14:30:00 2026``: the listings' "installed" stamp (printed in UTC, no marker)."""
    t = utc(moment)
    return f"{_MONTHS[t.month - 1]} {t:%d %H:%M:%S} {t.year}"


#: not strftime's %b, which follows the locale
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
