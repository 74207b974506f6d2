"""fswan.pki.store: loading the ipsec.d tree and path validation, one test per fault."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from fswan.pki.certs import PkiError, pluto_time
from fswan.pki.dn import parse_dn
from fswan.pki.store import CertRejected, CertStore, issued_by
from tests.pki_fixtures import (
    CA_USAGE, END_USAGE, ROOT_DN, Pki, cert_pem, make_cert, make_crl, make_pki, rsa_key, usage)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("ipsec.d"))


@pytest.fixture()
def store(pki: Pki) -> CertStore:
    store, warnings = CertStore.load(str(pki.directory))
    assert warnings == []
    return store


def rejected(store: CertStore, end: x509.Certificate, now: datetime,
             intermediates: list[x509.Certificate] | None = None, strict: bool = False) -> list[str]:
    with pytest.raises(CertRejected) as err:
        store.verify(end, intermediates or [], now, strict_crl=strict)
    assert err.value.lines[-1] == "X.509 certificate rejected"
    return err.value.lines


def test_load_tree(pki: Pki, store: CertStore) -> None:
    assert [a.cert for a in store.anchors] == [pki.root]
    assert store.ca_names() == [parse_dn(ROOT_DN)]
    assert [c.crl for c in store.crls] == [pki.crl]
    assert store.resolve_cert_path("west.pem") == str(pki.directory / "certs" / "west.pem")
    assert store.resolve_cert_path("/etc/x.pem") == "/etc/x.pem"
    assert store.load_end_cert("west.pem") == pki["west"].cert
    assert store.load_end_cert(str(pki["west"].cert_path)) is store.load_end_cert("west.pem")
    with pytest.raises(PkiError, match="nope.pem: No such file"):
        store.load_end_cert("nope.pem")


def test_ca_files_and_warnings(pki: Pki, tmp_path: Path) -> None:
    for sub in ("cacerts", "crls"):
        (tmp_path / sub).mkdir()
    (tmp_path / "cacerts" / "root.pem").write_bytes(cert_pem(pki.root))
    (tmp_path / "cacerts" / "west.pem").write_bytes(cert_pem(pki["west"].cert))
    (tmp_path / "cacerts" / "junk.pem").write_bytes(b"junk")
    (tmp_path / "crls" / "junk.crl").write_bytes(b"junk")
    ca_files = [(str(pki.intermediate_path), "/etc/ipsec.conf:12"), ("/nonexistent.pem", "/etc/ipsec.conf:20")]
    now = datetime(2026, 12, 4, 14, 30)
    store, warnings = CertStore.load(str(tmp_path), ca_files, now=now)
    assert warnings == [
        f"{tmp_path}/cacerts/junk.pem: not a PEM or DER certificate",
        f"{tmp_path}/cacerts/west.pem: 'C=CH, O=fswan lab, CN=west' is not a CA certificate, skipped",
        "/etc/ipsec.conf:20: /nonexistent.pem: No such file or directory",
        f"{tmp_path}/crls/junk.crl: not a PEM or DER CRL",
    ]
    assert [a.cert for a in store.anchors] == [pki.root, pki.intermediate]
    assert store.anchors[1].origin == "/etc/ipsec.conf:12"
    assert store.anchors[0].loaded.year == 2026
    # carol through the intermediate as an anchor
    assert store.verify(pki["carol"].cert, [], pki.now).chain == (pki["carol"].cert, pki.intermediate)
    (tmp_path / "cacerts" / "root.pem").unlink()
    assert store.reread_cacerts() == [
        f"{tmp_path}/cacerts/junk.pem: not a PEM or DER certificate",
        f"{tmp_path}/cacerts/west.pem: 'C=CH, O=fswan lab, CN=west' is not a CA certificate, skipped",
        "/etc/ipsec.conf:20: /nonexistent.pem: No such file or directory"]
    assert [a.cert for a in store.anchors] == [pki.intermediate]


def test_good_chains(pki: Pki, store: CertStore) -> None:
    for name in ("west", "east", "west-ecdsa", "east-ecdsa", "west-p384"):
        verified = store.verify(pki[name].cert, [], pki.now)
        assert verified.chain == (pki[name].cert, pki.root) and verified.warnings == ()
    verified = store.verify(pki["carol"].cert, [pki.intermediate, pki.root], pki.now, strict_crl=False)
    assert verified.chain == (pki["carol"].cert, pki.intermediate, pki.root)
    assert verified.issuer_names == [pki.intermediate.subject, pki.root.subject]
    assert issued_by(verified, parse_dn(ROOT_DN)) and issued_by(verified, parse_dn("C=CH, O=*, CN=*"))
    assert not issued_by(verified, parse_dn("C=CH, O=fswan lab, CN=west"))


def test_unknown_issuer(pki: Pki, store: CertStore) -> None:
    assert rejected(store, pki["stranger"].cert, pki.now) == ["issuer cacert not found", "X.509 certificate rejected"]
    # carol without her intermediate
    assert rejected(store, pki["carol"].cert, pki.now)[0] == "issuer cacert not found"


def test_tampered_signature(pki: Pki, store: CertStore) -> None:
    der = bytearray(pki["west"].cert.public_bytes(serialization.Encoding.DER))
    der[-5] ^= 0x01
    assert rejected(store, x509.load_der_x509_certificate(bytes(der)), pki.now)[0] == \
        "certificate signature is invalid"


def test_impostor_issuer_same_name(pki: Pki, store: CertStore) -> None:
    fake_key = rsa_key("impostor")
    fake_root = make_cert(ROOT_DN, fake_key, ROOT_DN, fake_key, 1, pki.now - timedelta(days=1),
                          pki.now + timedelta(days=9), ca=True, key_usage=CA_USAGE)
    victim = make_cert("C=CH, O=fswan lab, CN=west", rsa_key("west"), ROOT_DN, fake_key, 99,
                       pki.now - timedelta(days=1), pki.now + timedelta(days=9), key_usage=END_USAGE)
    # the impostor signed west, but the real root did not sign the impostor
    assert rejected(store, victim, pki.now, [fake_root]) == [
        f"ca certificate '{ROOT_DN}':", "certificate signature is invalid", "X.509 certificate rejected"]


def test_expired_and_not_yet_valid(pki: Pki, store: CertStore) -> None:
    cert = pki["expired"].cert
    assert rejected(store, cert, pki.now)[0] == (
        f"certificate is invalid (valid from {pluto_time(cert.not_valid_before_utc)} "
        f"to {pluto_time(cert.not_valid_after_utc)})")
    early = pki.now - timedelta(days=2)
    assert rejected(store, pki["west"].cert, early)[0].startswith("certificate is invalid (valid from")
    # an expired CA in the chain names itself first
    lines = rejected(store, pki["carol"].cert, pki.now + timedelta(days=1900), [pki.intermediate])
    assert lines[0] == "certificate is invalid (valid from " + pluto_time(pki["carol"].cert.not_valid_before_utc) \
        + " to " + pluto_time(pki["carol"].cert.not_valid_after_utc) + ")"


def test_expired_intermediate(pki: Pki, store: CertStore) -> None:
    key = rsa_key("intermediate")
    old = make_cert(pki.intermediate_dn, key, ROOT_DN, pki.root_key, 2, pki.now - timedelta(days=30),
                    pki.now - timedelta(days=2), ca=True, key_usage=CA_USAGE)
    lines = rejected(store, pki["carol"].cert, pki.now, [old])
    assert lines[0] == f"ca certificate '{pki.intermediate_dn}':"
    assert lines[1].startswith("certificate is invalid (valid from")


def _ca_chain(pki: Pki, *, ca: bool | None = True, path_length: int | None = None,
              key_usage: x509.KeyUsage | None = CA_USAGE) -> x509.Certificate:
    return make_cert("C=CH, O=fswan lab, CN=Sub CA", rsa_key("sub"), ROOT_DN, pki.root_key, 50,
                     pki.now - timedelta(days=1), pki.now + timedelta(days=30), ca=ca,
                     path_length=path_length, key_usage=key_usage)


def _leaf(pki: Pki, issuer: str = "C=CH, O=fswan lab, CN=Sub CA", issuer_key: str = "sub",
          key_usage: x509.KeyUsage | None = END_USAGE, serial: int = 51) -> x509.Certificate:
    return make_cert("C=CH, O=fswan lab, CN=dave", rsa_key("dave"), issuer, rsa_key(issuer_key), serial,
                     pki.now - timedelta(days=1), pki.now + timedelta(days=30), key_usage=key_usage)


def test_ca_without_basic_constraints(pki: Pki, store: CertStore) -> None:
    for sub in (_ca_chain(pki, ca=None), _ca_chain(pki, ca=False)):
        assert rejected(store, _leaf(pki), pki.now, [sub])[0] == \
            "issuer certificate 'C=CH, O=fswan lab, CN=Sub CA' is not a CA (no basicConstraints CA:TRUE)"
    assert store.verify(_leaf(pki), [_ca_chain(pki)], pki.now).chain[1] == _ca_chain(pki)


def test_ca_key_usage_without_cert_sign(pki: Pki, store: CertStore) -> None:
    sub = _ca_chain(pki, key_usage=usage(crl_sign=True, digital_signature=True))
    assert rejected(store, _leaf(pki), pki.now, [sub])[0] == \
        "issuer certificate 'C=CH, O=fswan lab, CN=Sub CA' keyUsage does not allow keyCertSign"
    # no keyUsage at all is fine
    store.verify(_leaf(pki), [_ca_chain(pki, key_usage=None)], pki.now)


def test_path_length_exceeded(pki: Pki, store: CertStore) -> None:
    # root -> Sub CA (pathlen 0) -> Sub-sub CA -> leaf: one CA below Sub CA
    sub = _ca_chain(pki, path_length=0)
    subsub = make_cert("C=CH, O=fswan lab, CN=Subsub CA", rsa_key("subsub"), "C=CH, O=fswan lab, CN=Sub CA",
                       rsa_key("sub"), 52, pki.now - timedelta(days=1), pki.now + timedelta(days=30),
                       ca=True, key_usage=CA_USAGE)
    leaf = _leaf(pki, issuer="C=CH, O=fswan lab, CN=Subsub CA", issuer_key="subsub")
    assert rejected(store, leaf, pki.now, [subsub, sub])[0] == \
        "path length constraint 0 of 'C=CH, O=fswan lab, CN=Sub CA' exceeded"
    assert len(store.verify(leaf, [subsub, _ca_chain(pki, path_length=1)], pki.now).chain) == 4


def test_end_key_usage(pki: Pki, store: CertStore) -> None:
    bad = _leaf(pki, ROOT_DN, "root", key_usage=usage(key_encipherment=True))
    assert rejected(store, bad, pki.now)[0] == \
        "certificate keyUsage allows neither digitalSignature nor nonRepudiation"
    store.verify(_leaf(pki, ROOT_DN, "root", key_usage=usage(non_repudiation=True)), [], pki.now)
    store.verify(_leaf(pki, ROOT_DN, "root", key_usage=None), [], pki.now)


def test_revoked(pki: Pki, store: CertStore) -> None:
    revoked_at = pki.crl.get_revoked_certificate_by_serial_number(0x30)
    assert revoked_at is not None
    assert rejected(store, pki["mallory"].cert, pki.now) == [
        f"certificate was revoked on {pluto_time(revoked_at.revocation_date_utc)}, reason: key compromise",
        "X.509 certificate rejected"]


def test_crl_signed_by_wrong_key_is_ignored(pki: Pki, tmp_path: Path) -> None:
    (tmp_path / "cacerts").mkdir()
    (tmp_path / "crls").mkdir()
    (tmp_path / "cacerts" / "root.pem").write_bytes(cert_pem(pki.root))
    forged = make_crl(ROOT_DN, rsa_key("impostor"), [(0x10, pki.now, None)], pki.now, pki.now + timedelta(days=1))
    (tmp_path / "crls" / "forged.crl").write_bytes(forged.public_bytes(serialization.Encoding.DER))
    store, warnings = CertStore.load(str(tmp_path))
    assert warnings == [] and len(store.crls) == 1
    assert store.verify(pki["west"].cert, [], pki.now).chain[0] == pki["west"].cert
    # and in strict mode it counts as no CRL at all
    assert rejected(store, pki["west"].cert, pki.now, strict=True)[0] == \
        f'no crl from issuer "{ROOT_DN}" found (strict mode)'


def test_overdue_crl(pki: Pki, store: CertStore) -> None:
    later = pki.now + timedelta(days=8)
    due = pluto_time(pki.crl.next_update_utc)  # type: ignore[arg-type]
    line = f'crl update for "{ROOT_DN}" is overdue since {due}'
    assert store.verify(pki["west"].cert, [], later).warnings == (line,)
    assert rejected(store, pki["west"].cert, later, strict=True) == [line, "X.509 certificate rejected"]
    # revoked still wins over overdue
    assert rejected(store, pki["mallory"].cert, later)[0].startswith("certificate was revoked on")


def test_strict_without_crl(pki: Pki, store: CertStore) -> None:
    assert store.verify(pki["west"].cert, [], pki.now, strict_crl=True).warnings == ()
    # carol's issuer (the intermediate) has no CRL
    assert rejected(store, pki["carol"].cert, pki.now, [pki.intermediate], strict=True) == [
        f'no crl from issuer "{pki.intermediate_dn}" found (strict mode)', "X.509 certificate rejected"]
    assert store.verify(pki["carol"].cert, [pki.intermediate], pki.now).chain[-1] == pki.root


def test_newest_crl_wins_and_added_crl(pki: Pki, store: CertStore) -> None:
    newer = make_crl(ROOT_DN, pki.root_key, [], pki.now, pki.now + timedelta(days=1), number=2)
    store.add_crl(newer, "fetched", pki.now)
    store.verify(pki["mallory"].cert, [], pki.now)  # the newer CRL no longer lists mallory
    store.reread_crls()
    assert any(c.path == "fetched" for c in store.crls)


def test_loop_and_length_limit(pki: Pki, store: CertStore) -> None:
    a_key, b_key = rsa_key("loop-a"), rsa_key("loop-b")
    start, stop = pki.now - timedelta(days=1), pki.now + timedelta(days=30)
    a = make_cert("CN=A", a_key, "CN=B", b_key, 60, start, stop, ca=True, key_usage=CA_USAGE)
    b = make_cert("CN=B", b_key, "CN=A", a_key, 61, start, stop, ca=True, key_usage=CA_USAGE)
    leaf = _leaf(pki, "CN=A", "loop-a")
    assert rejected(store, leaf, pki.now, [a, b])[-2] == "issuer cacert not found"
    # a long honest chain of 8 CAs below the root
    prev_dn, prev_key, chain = ROOT_DN, "root", []
    for i in range(8):
        dn = f"CN=CA {i}"
        chain.append(make_cert(dn, rsa_key(f"ca{i}"), prev_dn, rsa_key(prev_key), 70 + i, start, stop,
                               ca=True, key_usage=CA_USAGE))
        prev_dn, prev_key = dn, f"ca{i}"
    assert rejected(store, _leaf(pki, prev_dn, prev_key), pki.now, chain)[0] == \
        "maximum ca path length of 7 levels exceeded"
