"""fswan.pki.listing: --listcerts, --listcacerts, --listcrls in pluto's layout."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from fswan.pki.certs import hex_colons, subject_key_id
from fswan.pki.listing import list_cacerts, list_certs, list_crls
from fswan.pki.store import CertStore
from tests.pki_fixtures import make_crl, make_pki

NOW = datetime(2026, 12, 4, 14, 30, tzinfo=timezone.utc)


def test_listings(tmp_path: Path) -> None:
    pki = make_pki(tmp_path, now=NOW)
    store, _ = CertStore.load(str(tmp_path), now=NOW)
    root_kid = hex_colons(subject_key_id(pki.root) or b"")
    west_kid = hex_colons(subject_key_id(pki["west"].cert) or b"")
    assert list_certs(store, NOW) == []
    store.load_end_cert("west.pem", now=NOW)
    assert list_certs(store, NOW) == [
        "List of X.509 End Certificates:",
        "",
        "Dec 04 14:30:00 2026, count: 1",
        "       subject: 'C=CH, O=fswan lab, CN=west'",
        "       altNames: west",
        "       issuer:  'C=CH, O=fswan lab, CN=fswan lab Root CA'",
        "       serial:   10",
        "       validity: not before Dec 03 14:30:00 UTC 2026 ok",
        "                 not after  Dec 04 14:30:00 UTC 2027 ok",
        "       pubkey:   RSA 2048 bits",
        f"       subjkey:  {west_kid}",
        f"       authkey:  {root_kid}",
    ]
    assert list_cacerts(store, NOW) == [
        "List of X.509 CA Certificates:",
        "",
        "Dec 04 14:30:00 2026, count: 1",
        "       subject: 'C=CH, O=fswan lab, CN=fswan lab Root CA'",
        "       issuer:  'C=CH, O=fswan lab, CN=fswan lab Root CA'",
        "       serial:   01",
        "       validity: not before Dec 03 14:30:00 UTC 2026 ok",
        "                 not after  Dec 01 14:30:00 UTC 2036 ok",
        "       pubkey:   RSA 2048 bits",
        f"       subjkey:  {root_kid}",
    ]
    store.add_crl(make_crl(pki.root_dn, pki.root_key, [(0x31, NOW, None), (0x0123, NOW, None)], NOW,
                           NOW + timedelta(days=30), number=2), "extra", NOW)
    assert list_crls(store, NOW + timedelta(days=10)) == [
        "List of X.509 CRLs:",
        "",
        "Dec 04 14:30:00 2026, revoked certs: 1",
        "       issuer:  'C=CH, O=fswan lab, CN=fswan lab Root CA'",
        "       crlnumber: 01",
        "       revoked:  30, Dec 04 13:30:00 UTC 2026, key compromise",
        "       updates:  this Dec 04 13:30:00 UTC 2026",
        "                 next Dec 11 14:30:00 UTC 2026 expired",
        "Dec 04 14:30:00 2026, revoked certs: 2",
        "       issuer:  'C=CH, O=fswan lab, CN=fswan lab Root CA'",
        "       crlnumber: 02",
        "       revoked:  31, Dec 04 14:30:00 UTC 2026, unspecified",
        "                 01:23, Dec 04 14:30:00 UTC 2026, unspecified",
        "       updates:  this Dec 04 14:30:00 UTC 2026",
        "                 next Jan 03 14:30:00 UTC 2027 ok",
    ]


def test_validity_words(tmp_path: Path) -> None:
    make_pki(tmp_path, now=NOW)
    store, _ = CertStore.load(str(tmp_path), now=NOW)
    store.load_end_cert("expired.pem", now=NOW)
    store.load_end_cert("east.pem", now=NOW)
    lines = list_certs(store, NOW)
    assert "                 not after  Oct 30 14:30:00 UTC 2026 expired" in lines
    soon = list_certs(store, NOW + timedelta(days=360))
    assert "                 not after  Dec 04 14:30:00 UTC 2027 ok (expires in 5 days)" in soon
    early = list_certs(store, NOW - timedelta(days=2))
    assert "       validity: not before Dec 03 14:30:00 UTC 2026 fatal (not valid yet)" in early
    assert list_crls(store, NOW)[-1] == "                 next Dec 11 14:30:00 UTC 2026 ok (expires in 7 days)"
