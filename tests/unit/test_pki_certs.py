"""fswan.pki.certs: loaders (PEM, DER, garbage, encrypted keys) and what a certificate vouches for."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from fswan.pki.certs import (
    PkiError, cert_ids, describe_public_key, load_certificates, load_crl, load_private_key, pluto_time,
    public_key_bits, public_key_curve, public_key_kind, serial_text)
from tests.pki_fixtures import Pki, cert_pem, key_pem, make_pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("ipsec.d"))


def test_pem_one_and_many(pki: Pki, tmp_path: Path) -> None:
    assert load_certificates(str(pki["west"].cert_path)) == [pki["west"].cert]
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(b"junk before\n" + cert_pem(pki.root) + cert_pem(pki.intermediate))
    assert load_certificates(str(bundle)) == [pki.root, pki.intermediate]


def test_der_cert_and_crl(pki: Pki, tmp_path: Path) -> None:
    der = tmp_path / "west.der"
    der.write_bytes(pki["west"].cert.public_bytes(serialization.Encoding.DER))
    assert load_certificates(str(der)) == [pki["west"].cert]
    crl = tmp_path / "root.crl"
    crl.write_bytes(pki.crl.public_bytes(serialization.Encoding.DER))
    assert load_crl(str(crl)) == pki.crl
    assert load_crl(str(pki.crl_path)) == pki.crl


@pytest.mark.parametrize("content, message", [
    (b"", "not a PEM or DER certificate"), (b"\x30\x03\x02\x01\x00", "not a PEM or DER certificate"),
    (b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "not a PEM or DER certificate"),
])
def test_garbage_certificates(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.pem"
    path.write_bytes(content)
    with pytest.raises(PkiError) as err:
        load_certificates(str(path))
    assert str(err.value) == f"{path}: {message}"


def test_missing_files_and_bad_crl(tmp_path: Path) -> None:
    with pytest.raises(PkiError, match=r"nope.pem: No such file"):
        load_certificates(str(tmp_path / "nope.pem"))
    path = tmp_path / "bad.crl"
    path.write_bytes(b"garbage")
    with pytest.raises(PkiError, match="bad.crl: not a PEM or DER CRL"):
        load_crl(str(path))
    with pytest.raises(PkiError, match="not a PEM or DER private key"):
        load_private_key(str(path), None)


def test_private_keys_all_encodings(pki: Pki, tmp_path: Path) -> None:
    rsa_key, ec_key = pki["west"].key, pki["west-ecdsa"].key
    forms = {
        "pkcs8.pem": key_pem(rsa_key),
        "pkcs1.pem": rsa_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                           serialization.NoEncryption()),
        "pkcs1.der": rsa_key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.TraditionalOpenSSL,
                                           serialization.NoEncryption()),
        "sec1.pem": ec_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                         serialization.NoEncryption()),
        "pkcs8.der": ec_key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()),
    }
    for name, data in forms.items():
        (tmp_path / name).write_bytes(data)
        key = load_private_key(str(tmp_path / name), None)
        assert isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey))
    # a passphrase given for a clear key does no harm
    assert isinstance(load_private_key(str(tmp_path / "pkcs8.pem"), b"unused"), rsa.RSAPrivateKey)


def test_encrypted_key(pki: Pki, tmp_path: Path) -> None:
    path = tmp_path / "west.key"
    path.write_bytes(key_pem(pki["west"].key, b"west secret"))
    key = load_private_key(str(path), b"west secret")
    assert isinstance(key, rsa.RSAPrivateKey)
    assert key.private_numbers() == pki["west"].key.private_numbers()  # type: ignore[union-attr]
    with pytest.raises(PkiError, match=r"west.key: private key is encrypted but no passphrase was given"):
        load_private_key(str(path), None)
    with pytest.raises(PkiError, match=r"west.key: cannot decrypt private key: wrong passphrase"):
        load_private_key(str(path), b"guess")


def test_other_key_types_refused(tmp_path: Path) -> None:
    path = tmp_path / "ed.key"
    path.write_bytes(ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    with pytest.raises(PkiError, match="Ed25519 private keys are not supported"):
        load_private_key(str(path), None)


def test_ids_and_key_kinds(pki: Pki) -> None:
    assert cert_ids(pki["west"].cert) == ["C=CH, O=fswan lab, CN=west", "@west"]
    assert cert_ids(pki["carol"].cert) == ["C=CH, O=fswan lab, CN=carol", "@carol", "carol@fswan.lab"]
    assert public_key_kind(pki["west"].cert) == "RSA" and public_key_bits(pki["west"].cert) == 2048
    assert public_key_kind(pki["west-ecdsa"].cert) == "ECDSA"
    assert public_key_curve(pki["west-p384"].cert) == "secp384r1"
    assert describe_public_key(pki["west-ecdsa"].cert) == "ECDSA 256 bits (secp256r1)"
    assert describe_public_key(pki.root) == "RSA 2048 bits"


def test_ip_san() -> None:
    from ipaddress import ip_address

    from tests.pki_fixtures import END_USAGE, make_cert, rsa_key
    now = datetime(2026, 12, 4, 14, 0, tzinfo=timezone.utc)
    cert = make_cert("CN=gw", rsa_key("west"), "CN=ca", rsa_key("root"), 7, now, now, key_usage=END_USAGE,
                     san=[x509.IPAddress(ip_address("192.0.2.1")), x509.IPAddress(ip_address("2001:db8::1"))])
    assert cert_ids(cert) == ["CN=gw", "192.0.2.1", "2001:db8::1"]


def test_formats() -> None:
    assert pluto_time(datetime(2026, 12, 4, 14, 30, tzinfo=timezone.utc)) == "Dec 04 14:30:00 UTC 2026"
    assert pluto_time(datetime(2026, 1, 2, 3, 4, 5)) == "Jan 02 03:04:05 UTC 2026"
    assert serial_text(0x0123) == "01:23" and serial_text(0) == "00" and serial_text(0x80) == "80"
