"""Certificates in IKEv2 between two engines in memory: CERTREQ by CA key hash, CERT,
DN IDs from the certificates, RSA and ECDSA signatures (RFC 7427 method 14 when both
announce SIGNATURE_HASH_ALGORITHMS, the classic methods otherwise), a chain through an
intermediate, rightca=, and refusals with pluto's lines."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from fswan.config.model import AuthBy, Fragmentation, Ikev2Policy
from fswan.ikev2 import signatures
from fswan.ikev2.constants import AuthMethod, HashAlgorithm
from fswan.ikev2.payloads import Authentication
from fswan.ikev2.message import decode_message
from fswan.ikev2.constants import PayloadType
from tests.pki_fixtures import Pki, make_pki
from tests.unit.test_ike_certificates import cert_pair, up

V2 = {"ikev2": Ikev2Policy.INSIST}


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("ipsec.d"))


def clear_payload_types(pair) -> set[int]:
    found: set[int] = set()
    for wire in pair.wire:
        data = wire.data[4:] if wire.dport == 4500 else wire.data
        message = decode_message(data)
        found |= {p.payload_type for p in message.payloads}
    return found


def test_rsa_certificates_with_dn_ids(pki):
    pair = cert_pair(pki, "west", "east", **V2)
    pair.initiate()
    assert up(pair), pair.west.text() + pair.east.text()
    east = pair.east.text()
    assert "STATE_V2_ESTABLISHED_IKE_SA" in east
    assert "verified (issuer 'C=CH, O=fswan lab, CN=fswan lab Root CA')" in east
    assert "peer '192.0.2.1'" not in east and "C=CH, O=fswan lab, CN=west" in east
    # the responder asked for certificates in the clear IKE_SA_INIT answer
    assert PayloadType.CERTREQ in clear_payload_types(pair)


def test_ecdsa_certificates(pki):
    pair = cert_pair(pki, "west-ecdsa", "east-ecdsa", authby=AuthBy.ECDSA, **V2)
    pair.initiate()
    assert up(pair), pair.west.text() + pair.east.text()
    assert "auth=ECDSA" in pair.west.text()


def test_chain_through_an_intermediate(pki):
    pair = cert_pair(pki, "carol", "east", **V2)
    pair.initiate()
    assert up(pair), pair.west.text() + pair.east.text()


@pytest.mark.parametrize("who, line", [
    ("mallory", "certificate was revoked on"),
    ("expired", "certificate is invalid (valid from"),
    ("stranger", "issuer cacert not found"),
])
def test_bad_peer_certificates_are_refused(pki, who, line):
    pair = cert_pair(pki, who, "east", **V2)
    pair.initiate()
    assert not pair.west.installed and not pair.east.installed
    assert "AUTHENTICATION_FAILED" in pair.west.text()
    text = pair.east.text()
    assert line in text and "X.509 certificate rejected" in text, text
    assert not [s for s in pair.east.engine.table.states.values()]


def test_rightca_same_accepts_the_peer_of_our_ca(pki):
    pair = cert_pair(pki, "west", "east", east_ends={"left": {"ca": "%same"}}, **V2)
    pair.initiate()
    assert up(pair), pair.east.text()


@pytest.mark.parametrize("curve", [ec.SECP256R1(), ec.SECP384R1()])
@pytest.mark.parametrize("peer_hashes", [frozenset(), frozenset({HashAlgorithm.SHA2_256})])
def test_ecdsa_signatures_both_forms(curve, peer_hashes):
    key = ec.generate_private_key(curve)
    auth = signatures.sign(key, b"octets", peer_hashes)
    want = AuthMethod.DIGITAL_SIGNATURE if peer_hashes else signatures.fswan_method(key)
    assert auth.method == want
    assert signatures.verify(key.public_key(), auth, b"octets")
    assert not signatures.verify(key.public_key(), auth, b"other octets")


@pytest.mark.parametrize("peer_hashes", [frozenset(), frozenset({HashAlgorithm.SHA2_256})])
def test_rsa_signatures_both_forms(peer_hashes):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    auth = signatures.sign(key, b"octets", peer_hashes)
    assert auth.method == (AuthMethod.DIGITAL_SIGNATURE if peer_hashes else AuthMethod.RSA_SIG)
    assert signatures.verify(key.public_key(), auth, b"octets")
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert not signatures.verify(other.public_key(), auth, b"octets")
    assert not signatures.verify(key.public_key(), Authentication(14, b"\x05garbage"), b"octets")


def test_ike_auth_with_certificates_goes_in_fragments_when_datagrams_are_small(pki):
    pair = cert_pair(pki, "west", "east", **V2)
    for ep in pair.endpoints:
        ep.engine.fragment_size = 576
    pair.initiate()
    assert up(pair), pair.west.text() + pair.east.text()
    assert "sending IKEv2 fragments" in pair.west.text()
    assert "received IKEv2 fragments" in pair.east.text()
    auth = [w.data for w in pair.wire if _exchange(w) == 35]  # IKE_AUTH (IKE_SA_INIT: never cut)
    assert len(auth) > 2 and max(len(d) for d in auth) <= 576 - 28, [len(d) for d in auth]
    assert pair.west.engine.counters["fragments_sent"] >= 1
    assert pair.east.engine.counters["fragments_sent"] >= 1


def test_no_fragments_when_one_side_says_fragmentation_no(pki):
    pair = cert_pair(pki, "west", "east", fragmentation=Fragmentation.NO, **V2)
    for ep in pair.endpoints:
        ep.engine.fragment_size = 576
    pair.initiate()
    assert up(pair), pair.west.text()
    assert "IKEv2 fragments" not in pair.west.text() + pair.east.text()
    assert max(len(w.data) for w in pair.wire if _exchange(w) == 35) > 576


def _exchange(wire) -> int:
    data = wire.data[4:] if wire.dport == 4500 else wire.data
    return data[18]
