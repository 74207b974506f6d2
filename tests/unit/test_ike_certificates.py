"""Certificates in Main and Aggressive Mode between two engines in memory: DN IDs,
%fromcert, CR/CERT payloads, RSA and ECDSA signatures, a chain through an intermediate,
rightca=, and the refusals (revoked, expired, unknown CA, wrong ID) with pluto's lines."""

from __future__ import annotations

from dataclasses import replace

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from fswan.config.model import AuthBy, Connection
from fswan.config.secrets import Secrets, parse_secrets
from fswan.daemon.credentials import CredentialError, resolve
from fswan.ike import certauth
from fswan.ike.engine import IkeEngine
from fswan.ike.main_mode import identity_of
from fswan.ike.state import ExchangeError
from fswan.isakmp.constants import CertEncoding, IdType, NotifyType
from fswan.isakmp.payloads import CertPayload, CRPayload, IDPayload
from fswan.ike.events import ChildSAInstalled
from fswan.isakmp.constants import PayloadType
from fswan.isakmp.message import decode_message
from fswan.pki.store import CertStore
from tests.fakes import MemoryLoader
from tests.ike_pair import EAST, WEST, Pair, conn, mirrored, oriented, seeded
from tests.pki_fixtures import Pki, make_pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("ipsec.d"))


def key_secrets(pki: Pki, name: str) -> Secrets:
    """ipsec.secrets with ``name``'s key file, found in ipsec.d/private."""
    end = pki[name]
    kind = "RSA" if isinstance(end.key, rsa.RSAPrivateKey) else "ECDSA"
    files = {f"/etc/ipsec.d/private/{name}.key": end.key_path.read_text()}
    return parse_secrets(f": {kind} {name}.key\n", "/etc/ipsec.secrets", MemoryLoader(files))


def with_end(c: Connection, side: str, **fields) -> Connection:
    return replace(c, **{side: replace(getattr(c, side), **fields)})


def cert_pair(pki: Pki, west_cert: str, east_cert: str, *, authby=AuthBy.RSASIG,
              west_ends: dict | None = None, east_ends: dict | None = None,
              strict_crl: bool = False, **options) -> Pair:
    """West (left) and east (right) each with its certificate; IDs from the certificates;
    ``*_ends``: more End fields per side of each one's conn (``{"right": {"ca": ...}}``)."""
    store, warnings = CertStore.load(str(pki.directory))
    assert not warnings
    engines = {}
    for me, mine, side, peer, peer_side, address, ends, seed in (
        ("west", west_cert, "left", east_cert, "right", WEST, west_ends, 1),
        ("east", east_cert, "right", west_cert, "left", EAST, east_ends, 2),
    ):
        c = with_end(conn(authby=authby, **options), side, cert=str(pki[mine].cert_path))
        c = with_end(c, peer_side, id=pki[peer].dn)
        for end_side, fields in (ends or {}).items():
            c = with_end(c, end_side, **fields)
        resolved, creds, _ = resolve(oriented(c, address), store)
        engine = IkeEngine(key_secrets(pki, mine), random_bytes=seeded(seed))
        engine.set_trust(store, strict_crl=strict_crl)
        engine.add_connection(resolved, creds)
        engines[me] = engine
    pair = Pair(engines["west"], engines["east"])
    pair.now = pki.now.timestamp() + 60
    return pair


def up(pair: Pair) -> bool:
    installed = [pair.west.of(ChildSAInstalled), pair.east.of(ChildSAInstalled)]
    return all(installed) and mirrored(installed[0][0], installed[1][0])


def payload_types(pair: Pair) -> set[int]:
    """Payload types of every clear phase-1 message that crossed (encrypted ones: none)."""
    found: set[int] = set()
    for wire in pair.wire:
        data = wire.data[4:] if wire.dport == 4500 else wire.data
        message = decode_message(data)
        found |= {p.payload_type for p in message.payloads}
    return found


def test_rsa_certificates_with_dn_ids_from_the_certificates(pki):
    pair = cert_pair(pki, "west", "east")
    pair.initiate()
    assert up(pair), pair.west.text() + pair.east.text()
    text = pair.east.text()
    assert "C=CH, O=fswan lab, CN=west" in text and "verified (issuer 'C=CH, O=fswan lab, CN=fswan lab Root CA')" in text
    assert PayloadType.CR in payload_types(pair)


@pytest.mark.parametrize("aggressive", [False, True])
def test_ecdsa_certificates(pki, aggressive):
    pair = cert_pair(pki, "west-ecdsa", "east-ecdsa", authby=AuthBy.ECDSA, aggrmode=aggressive)
    pair.initiate()
    assert up(pair), pair.west.text() + pair.east.text()
    assert "auth=ECDSA_256" in pair.west.text()


def test_chain_through_the_intermediate_is_sent_and_accepted(pki):
    pair = cert_pair(pki, "carol", "east")
    pair.initiate()
    assert up(pair), pair.west.text() + pair.east.text()
    assert "CN=carol" in pair.east.text()


@pytest.mark.parametrize("who, line", [
    ("mallory", "certificate was revoked on"),
    ("expired", "certificate is invalid (valid from"),
    ("stranger", "issuer cacert not found"),
])
def test_bad_peer_certificates_are_refused(pki, who, line):
    pair = cert_pair(pki, who, "east")
    pair.initiate()
    assert not pair.east.of(ChildSAInstalled)
    text = pair.east.text()
    assert line in text and "X.509 certificate rejected" in text, text


def test_rightca_same_accepts_the_peer_of_our_ca(pki):
    pair = cert_pair(pki, "west", "east", east_ends={"left": {"ca": "%same"}})
    pair.initiate()
    assert up(pair), pair.east.text()


def test_rightca_of_another_ca_refuses_the_peer(pki):
    pair = cert_pair(pki, "west", "east", east_ends={"left": {"ca": pki.unrelated_dn}})
    pair.initiate()
    assert not pair.east.of(ChildSAInstalled)
    assert "no suitable connection for peer 'C=CH, O=fswan lab, CN=west'" in pair.east.text()


def test_peer_id_pattern_with_wildcards(pki):
    pattern = {"left": {"id": "C=CH, O=fswan lab, CN=*"}}
    pair = cert_pair(pki, "west", "east", east_ends=pattern)
    pair.initiate()
    assert up(pair), pair.east.text()


def test_peer_id_the_certificate_does_not_vouch_for(pki):
    pair = cert_pair(pki, "west", "east", west_ends={"left": {"id": "@west.example"}},
                     east_ends={"left": {"id": "@west.example"}})
    pair.initiate()
    assert not pair.east.of(ChildSAInstalled)
    assert "peer ID '@west.example' is not the subject nor a subjectAltName" in pair.east.text()


def test_strict_crl_policy_refuses_without_a_current_crl(pki, tmp_path):
    pair = cert_pair(pki, "carol", "east", strict_crl=True)
    pair.initiate()
    assert not pair.east.of(ChildSAInstalled)
    assert "X.509 certificate rejected" in pair.east.text()


def test_percent_same_without_our_cert_is_a_clear_error(pki):
    store, _ = CertStore.load(str(pki.directory))
    c = with_end(conn(authby=AuthBy.RSASIG), "right", ca="%same")
    with pytest.raises(CredentialError, match="rightca=%same needs leftcert="):
        resolve(oriented(c, WEST), store)


def test_missing_cert_file_names_the_keyword(pki):
    store, _ = CertStore.load(str(pki.directory))
    c = with_end(conn(authby=AuthBy.RSASIG), "left", cert="nosuch.pem")
    with pytest.raises(CredentialError, match="leftcert=nosuch.pem: .*nosuch.pem"):
        resolve(oriented(c, WEST), store)


def test_no_private_key_is_said(pki):
    pair = cert_pair(pki, "west", "east")
    pair.west.engine.set_secrets(parse_secrets("", "/etc/ipsec.secrets"))
    pair.initiate()
    assert "unable to locate my private key for RSA_SIG Signature" in pair.west.text()


def test_initiator_refusing_the_responder_certificate_ends_at_once(pki):
    pair = cert_pair(pki, "west", "mallory")
    pair.initiate()
    assert "certificate was revoked on" in pair.west.text()
    done = pair.west.whack_done
    assert done and not done[-1].ok, pair.west.text()
    assert not pair.west.of(ChildSAInstalled) and not pair.east.of(ChildSAInstalled)


@given(st.binary(max_size=300))
@settings(max_examples=300, deadline=None)
def test_any_dn_id_or_cert_payload_is_accepted_or_refused_never_crashes(data):
    try:
        identity = identity_of(IDPayload(IdType.ID_DER_ASN1_DN, data))
        assert identity.kind.name == "DER_ASN1_DN" and identity.value.isprintable()
    except ExchangeError as error:
        assert error.notify == NotifyType.INVALID_ID_INFORMATION
    try:
        certauth.read_certificates([CertPayload(CertEncoding.CERT_X509_SIGNATURE, data)], "peer")
    except ExchangeError as error:
        assert error.notify == NotifyType.INVALID_CERTIFICATE
    named = certauth.requested_cas([CRPayload(CertEncoding.CERT_X509_SIGNATURE, data)])
    assert len(named) <= 1 and all(isinstance(name, str) for name in named)


def test_sendcert_never_needs_the_peer_to_hold_our_certificate(pki):
    """leftsendcert=never: east sends no CERT, so west must have it as rightcert=."""
    never = {"right": {"sendcert": "never"}}
    pair = cert_pair(pki, "west", "east", east_ends=never)
    pair.initiate()
    assert not pair.west.of(ChildSAInstalled)
    assert "no certificate received from peer 'C=CH, O=fswan lab, CN=east'" in pair.west.text()
    pinned = {"right": {"cert": str(pki["east"].cert_path)}}
    pair = cert_pair(pki, "west", "east", east_ends=never, west_ends=pinned)
    pair.initiate()
    assert up(pair), pair.west.text() + pair.east.text()


def test_sendcert_always_sends_without_a_request(pki):
    """nocrsend on both: no CR crosses; with leftsendcert=always the certificates still go."""
    always = {"left": {"sendcert": "always"}}
    pair = cert_pair(pki, "west", "east", west_ends=always,
                     east_ends={"right": {"sendcert": "always"}})
    for ep in pair.endpoints:
        ep.engine.select.nocrsend = True
    pair.initiate()
    assert up(pair), pair.west.text() + pair.east.text()
    assert PayloadType.CR not in payload_types(pair)
    pair = cert_pair(pki, "west", "east")
    for ep in pair.endpoints:
        ep.engine.select.nocrsend = True
    pair.initiate()
    assert not pair.west.of(ChildSAInstalled) and not pair.east.of(ChildSAInstalled)
