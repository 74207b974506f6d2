"""A small lab PKI written as an ipsec.d tree, for the pki unit tests and daemon/lab tests.

``make_pki(directory)`` writes ``cacerts/`` (the root CA), ``certs/`` (end certificates and the
intermediate CA, which peers send), ``private/`` (unencrypted PKCS#8 keys), ``crls/`` (the root's
CRL revoking mallory) and ``other/`` (an unrelated CA nobody trusts).  Serials are fixed, keys
are generated once per process (per label and size), validity is relative to ``now``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Union

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from fswan.pki.dn import parse_dn

PrivateKey = Union[rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey]

ROOT_DN = "C=CH, O=fswan lab, CN=fswan lab Root CA"
INTERMEDIATE_DN = "C=CH, O=fswan lab, CN=fswan lab Intermediate CA"
UNRELATED_DN = "C=CH, O=other lab, CN=other Root CA"


def rsa_key(label: str, bits: int = 2048) -> rsa.RSAPrivateKey:
    """One RSA key per (label, size) per process: generation is the slow part."""
    return _rsa_key(label, bits)


@functools.lru_cache(maxsize=None)
def _rsa_key(label: str, bits: int) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def ec_key(label: str, curve: str = "secp256r1") -> ec.EllipticCurvePrivateKey:
    return _ec_key(label, curve)


@functools.lru_cache(maxsize=None)
def _ec_key(label: str, curve: str) -> ec.EllipticCurvePrivateKey:
    curves: dict[str, ec.EllipticCurve] = {"secp256r1": ec.SECP256R1(), "secp384r1": ec.SECP384R1()}
    return ec.generate_private_key(curves[curve])


def make_cert(subject: str, key: PrivateKey, issuer: str, issuer_key: PrivateKey, serial: int,
              not_before: datetime, not_after: datetime, *, ca: bool | None = False,
              path_length: int | None = None, key_usage: x509.KeyUsage | None = None,
              san: list[x509.GeneralName] | None = None) -> x509.Certificate:
    """A certificate as a test wants it; ``ca=None`` leaves basicConstraints out."""
    builder = (x509.CertificateBuilder()
               .subject_name(parse_dn(subject)).issuer_name(parse_dn(issuer))
               .public_key(key.public_key()).serial_number(serial)
               .not_valid_before(not_before).not_valid_after(not_after)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
    if issuer_key is not key:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
    if ca is not None:
        builder = builder.add_extension(x509.BasicConstraints(ca=ca, path_length=path_length if ca else None),
                                        critical=True)
    if key_usage is not None:
        builder = builder.add_extension(key_usage, critical=True)
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def usage(*, digital_signature: bool = False, non_repudiation: bool = False, key_cert_sign: bool = False,
          crl_sign: bool = False, key_encipherment: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=digital_signature, content_commitment=non_repudiation,
                         key_encipherment=key_encipherment, data_encipherment=False, key_agreement=False,
                         key_cert_sign=key_cert_sign, crl_sign=crl_sign, encipher_only=False,
                         decipher_only=False)


CA_USAGE = usage(key_cert_sign=True, crl_sign=True)
END_USAGE = usage(digital_signature=True)


def make_crl(issuer: str, issuer_key: PrivateKey, revoked: list[tuple[int, datetime, x509.ReasonFlags | None]],
             last_update: datetime, next_update: datetime, number: int = 1) -> x509.CertificateRevocationList:
    builder = (x509.CertificateRevocationListBuilder().issuer_name(parse_dn(issuer))
               .last_update(last_update).next_update(next_update)
               .add_extension(x509.CRLNumber(number), critical=False))
    for serial, when, reason in revoked:
        entry = x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(when)
        if reason is not None:
            entry = entry.add_extension(x509.CRLReason(reason), critical=False)
        builder = builder.add_revoked_certificate(entry.build())
    return builder.sign(issuer_key, hashes.SHA256())


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def key_pem(key: PrivateKey, passphrase: bytes | None = None) -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase) if passphrase else serialization.NoEncryption())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


@dataclass(frozen=True)
class EndCert:
    name: str
    dn: str
    cert: x509.Certificate
    key: PrivateKey
    cert_path: Path
    key_path: Path


@dataclass(frozen=True)
class Pki:
    """Paths, DN texts and objects of the lab PKI (``directory`` is the ipsec.d)."""

    directory: Path
    now: datetime
    root: x509.Certificate
    root_key: rsa.RSAPrivateKey
    root_path: Path
    intermediate: x509.Certificate
    intermediate_key: rsa.RSAPrivateKey
    intermediate_path: Path
    unrelated: x509.Certificate
    unrelated_key: rsa.RSAPrivateKey
    unrelated_path: Path
    crl: x509.CertificateRevocationList
    crl_path: Path
    ends: dict[str, EndCert] = field(default_factory=dict)
    root_dn: str = ROOT_DN
    intermediate_dn: str = INTERMEDIATE_DN
    unrelated_dn: str = UNRELATED_DN

    def __getitem__(self, name: str) -> EndCert:
        return self.ends[name]


#: name -> (serial, key kind, issuer) of the end certificates
END_CERTS: dict[str, tuple[int, str, str]] = {
    "west": (0x10, "rsa", "root"),
    "east": (0x11, "rsa", "root"),
    "west-ecdsa": (0x12, "secp256r1", "root"),
    "east-ecdsa": (0x13, "secp256r1", "root"),
    "west-p384": (0x14, "secp384r1", "root"),
    "carol": (0x20, "rsa", "intermediate"),
    "mallory": (0x30, "rsa", "root"),
    "expired": (0x31, "rsa", "root"),
    "stranger": (0x40, "rsa", "unrelated"),
}


def make_pki(directory: Path, rsa_bits: int = 2048, now: datetime | None = None) -> Pki:
    """Write the lab PKI under ``directory`` (an ipsec.d) and describe it."""
    now = (now or datetime.now(timezone.utc)).replace(microsecond=0)
    for sub in ("cacerts", "certs", "private", "crls", "other"):
        (directory / sub).mkdir(parents=True, exist_ok=True)
    start, stop = now - timedelta(days=1), now + timedelta(days=365)

    root_key = rsa_key("root", rsa_bits)
    root = make_cert(ROOT_DN, root_key, ROOT_DN, root_key, 1, start, now + timedelta(days=3650),
                     ca=True, key_usage=CA_USAGE)
    inter_key = rsa_key("intermediate", rsa_bits)
    inter = make_cert(INTERMEDIATE_DN, inter_key, ROOT_DN, root_key, 2, start, now + timedelta(days=1825),
                      ca=True, path_length=0, key_usage=CA_USAGE)
    other_key = rsa_key("unrelated", rsa_bits)
    other = make_cert(UNRELATED_DN, other_key, UNRELATED_DN, other_key, 3, start, now + timedelta(days=3650),
                      ca=True, key_usage=CA_USAGE)
    issuers: dict[str, tuple[str, PrivateKey]] = {
        "root": (ROOT_DN, root_key), "intermediate": (INTERMEDIATE_DN, inter_key),
        "unrelated": (UNRELATED_DN, other_key)}

    paths = {"root": directory / "cacerts" / "fswan-lab-root.pem",
             "intermediate": directory / "certs" / "fswan-lab-intermediate.pem",
             "unrelated": directory / "other" / "other-root.pem"}
    for which, cert in (("root", root), ("intermediate", inter), ("unrelated", other)):
        paths[which].write_bytes(cert_pem(cert))

    ends: dict[str, EndCert] = {}
    for name, (serial, kind, issuer) in END_CERTS.items():
        key: PrivateKey = rsa_key(name, rsa_bits) if kind == "rsa" else ec_key(name, kind)
        org = "other lab" if issuer == "unrelated" else "fswan lab"
        dn = f"C=CH, O={org}, CN={name}"
        nb, na = (now - timedelta(days=400), now - timedelta(days=35)) if name == "expired" else (start, stop)
        san: list[x509.GeneralName] = [x509.DNSName(name)]
        if name == "carol":
            san.append(x509.RFC822Name("carol@fswan.lab"))
        issuer_dn, issuer_key = issuers[issuer]
        cert = make_cert(dn, key, issuer_dn, issuer_key, serial, nb, na, key_usage=END_USAGE, san=san)
        cert_path = directory / "certs" / f"{name}.pem"
        key_path = directory / "private" / f"{name}.key"
        cert_path.write_bytes(cert_pem(cert))
        key_path.write_bytes(key_pem(key))
        key_path.chmod(0o600)
        ends[name] = EndCert(name, dn, cert, key, cert_path, key_path)

    crl = make_crl(ROOT_DN, root_key, [(0x30, now - timedelta(hours=1), x509.ReasonFlags.key_compromise)],
                   now - timedelta(hours=1), now + timedelta(days=7))
    crl_path = directory / "crls" / "fswan-lab-root.crl"
    crl_path.write_bytes(crl.public_bytes(serialization.Encoding.PEM))
    return Pki(directory=directory, now=now, root=root, root_key=root_key, root_path=paths["root"],
               intermediate=inter, intermediate_key=inter_key, intermediate_path=paths["intermediate"],
               unrelated=other, unrelated_key=other_key, unrelated_path=paths["unrelated"],
               crl=crl, crl_path=crl_path, ends=ends)


def common_name(cert: x509.Certificate) -> str:
    return str(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)
