"""IKEv2 AUTH signatures (RFC 7296 3.8, RFC 4754, RFC 7427), pure.

What is signed is the octets of 2.15 themselves (IKEv1 signed a HASH): RSA with
PKCS#1 v1.5 over SHA-1 (method 1), ECDSA over the curve's hash as r | s (methods
9/10/11), or -- when the peer announced SIGNATURE_HASH_ALGORITHMS -- RFC 7427's
method 14, an AlgorithmIdentifier naming the hash before the signature (ECDSA's
then DER-encoded).  We sign with method 14 and SHA-256 (P-384/P-521 keys: their
own hash) when the peer takes it, else with the classic methods; we accept all of
them.
"""

from __future__ import annotations

import hashlib
from typing import Collection, Union

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

from fswan.ikev2.constants import AuthMethod, HashAlgorithm
from fswan.ikev2.errors import MalformedMessage
from fswan.ikev2.payloads import Authentication, join_digital_signature, split_digital_signature

__all__ = ["OUR_HASHES", "fswan_method", "sign", "verify"]

PrivateKey = Union[rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey]

#: what our SIGNATURE_HASH_ALGORITHMS notification offers
OUR_HASHES = (HashAlgorithm.SHA2_256, HashAlgorithm.SHA2_384, HashAlgorithm.SHA2_512)

_HASHES: dict[int, hashes.HashAlgorithm] = {
    HashAlgorithm.SHA2_256: hashes.SHA256(),
    HashAlgorithm.SHA2_384: hashes.SHA384(),
    HashAlgorithm.SHA2_512: hashes.SHA512(),
}
#: RFC 7427 appendix A: DER AlgorithmIdentifiers (RSA with NULL parameters, ECDSA without)
_RSA_IDS = {
    HashAlgorithm.SHA2_256: bytes.fromhex("300d06092a864886f70d01010b0500"),
    HashAlgorithm.SHA2_384: bytes.fromhex("300d06092a864886f70d01010c0500"),
    HashAlgorithm.SHA2_512: bytes.fromhex("300d06092a864886f70d01010d0500"),
}
_ECDSA_IDS = {
    HashAlgorithm.SHA2_256: bytes.fromhex("300a06082a8648ce3d040302"),
    HashAlgorithm.SHA2_384: bytes.fromhex("300a06082a8648ce3d040303"),
    HashAlgorithm.SHA2_512: bytes.fromhex("300a06082a8648ce3d040304"),
}
_BY_ID = {der: ("rsa", h) for h, der in _RSA_IDS.items()} | {
    der: ("ecdsa", h) for h, der in _ECDSA_IDS.items()}
#: RFC 4754 methods: curve -> (method, bytes of r and of s, hash)
_CURVES: dict[str, tuple[int, int, hashes.HashAlgorithm]] = {
    "secp256r1": (AuthMethod.ECDSA_SHA256_P256, 32, hashes.SHA256()),
    "secp384r1": (AuthMethod.ECDSA_SHA384_P384, 48, hashes.SHA384()),
    "secp521r1": (AuthMethod.ECDSA_SHA512_P521, 66, hashes.SHA512()),
}
_CURVE_HASH = {"secp256r1": HashAlgorithm.SHA2_256, "secp384r1": HashAlgorithm.SHA2_384,
               "secp521r1": HashAlgorithm.SHA2_512}
#: fswan's (IKEv1) auth method numbers, which ConnEntry.auths holds
_RSA_POLICY = 3


def fswan_method(key: object) -> int | None:
    """The ``authby=`` method a key stands for: RSA (3) or its curve's ECDSA (9/10/11)."""
    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        return _RSA_POLICY
    curve = getattr(key, "curve", None)
    return int(_CURVES[curve.name][0]) if curve is not None and curve.name in _CURVES else None


def sign(key: PrivateKey, octets: bytes, peer_hashes: Collection[int]) -> Authentication:
    if isinstance(key, rsa.RSAPrivateKey):
        if HashAlgorithm.SHA2_256 in peer_hashes:
            signature = key.sign(octets, padding.PKCS1v15(), hashes.SHA256())
            return Authentication(AuthMethod.DIGITAL_SIGNATURE, join_digital_signature(
                _RSA_IDS[HashAlgorithm.SHA2_256], signature))
        return Authentication(AuthMethod.RSA_SIG, key.sign(octets, padding.PKCS1v15(), hashes.SHA1()))
    method, size, algorithm = _CURVES[key.curve.name]
    wanted = _CURVE_HASH[key.curve.name]
    if wanted in peer_hashes or HashAlgorithm.SHA2_256 in peer_hashes:
        chosen = wanted if wanted in peer_hashes else HashAlgorithm.SHA2_256
        der = key.sign(octets, ec.ECDSA(_HASHES[chosen]))
        return Authentication(AuthMethod.DIGITAL_SIGNATURE,
                              join_digital_signature(_ECDSA_IDS[chosen], der))
    r, s = utils.decode_dss_signature(key.sign(octets, ec.ECDSA(algorithm)))
    return Authentication(method, r.to_bytes(size, "big") + s.to_bytes(size, "big"))


def verify(public_key: object, auth: Authentication, octets: bytes) -> bool:
    """Whether ``auth`` is a signature over ``octets`` by ``public_key`` (never raises)."""
    try:
        return _verify(public_key, auth, octets)
    except (InvalidSignature, ValueError, MalformedMessage):
        return False


def _verify(public_key: object, auth: Authentication, octets: bytes) -> bool:
    method = auth.method
    if method == AuthMethod.RSA_SIG:
        if not isinstance(public_key, rsa.RSAPublicKey):
            return False
        public_key.verify(auth.data, octets, padding.PKCS1v15(), hashes.SHA1())
        return True
    if method == AuthMethod.DIGITAL_SIGNATURE:
        identifier, signature = split_digital_signature(auth.data)
        kind, hash_id = _BY_ID.get(identifier, ("", 0))
        if kind == "rsa" and isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(signature, octets, padding.PKCS1v15(), _HASHES[hash_id])
            return True
        if kind == "ecdsa" and isinstance(public_key, ec.EllipticCurvePublicKey):
            public_key.verify(signature, octets, ec.ECDSA(_HASHES[hash_id]))
            return True
        return False
    if not isinstance(public_key, ec.EllipticCurvePublicKey):
        return False
    found = _CURVES.get(public_key.curve.name)
    if found is None or found[0] != method or len(auth.data) != 2 * found[1]:
        return False
    size = found[1]
    der = utils.encode_dss_signature(int.from_bytes(auth.data[:size], "big"),
                                     int.from_bytes(auth.data[size:], "big"))
    public_key.verify(der, octets, ec.ECDSA(found[2]))
    return True


def ca_key_hash(spki_der: bytes) -> bytes:
    """A CERTREQ entry: SHA-1 of a CA's SubjectPublicKeyInfo (RFC 7296 3.7)."""
    return hashlib.sha1(spki_der).digest()
