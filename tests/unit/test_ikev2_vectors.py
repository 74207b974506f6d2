"""Known answers from a real strongSwan IKEv2 exchange (tests/data/ikev2/).

Two charon-to-charon runs with a PSK (AES-CBC-128 + HMAC-SHA2-256 + MODP-2048,
and AES-GCM-16-256 + PRF-HMAC-SHA2-256 + MODP-2048), captured on the wire
while both charons logged their secrets.  From the logged DH secret and the
captured nonces and SPIs our SKEYSEED, prf+ and seven keys must equal
charon's; with them we open both IKE_AUTH messages, rebuild the signed
octets and the PSK AUTH, and (for GCM, whose padding is deterministic)
seal the plaintext again to the very bytes charon sent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from fswan.ikev2 import crypto
from fswan.ikev2.constants import AuthMethod, ExchangeType, NotifyType, PayloadType
from fswan.ikev2.message import Message, decode_message, encode_payloads
from fswan.ikev2.payloads import (
    Authentication,
    Encrypted,
    IDi,
    IDr,
    KeyExchange,
    Nonce,
    SecurityAssociation,
    TSi,
    TSr,
)
from tests.pcap import read_pcap

DATA = Path(__file__).resolve().parent.parent / "data" / "ikev2"
PSK = b"lab-psk-not-secret-0123456789"
VARIANTS = ["cbc", "gcm"]
_LABEL = re.compile(r"\] <[^>]*> (\S.*?) => (\d+) bytes")
_DUMP = re.compile(r"\] <[^>]*>\s+\d+: ((?:[0-9A-F]{2} )+)")


def log_dumps(path: Path) -> list[tuple[str, bytes]]:
    """Every labelled hex dump of a charon log, in order."""
    dumps: list[tuple[str, bytes]] = []
    label, size, data = "", 0, b""
    for line in path.read_text().splitlines():
        match = _LABEL.search(line)
        if match:
            label, size, data = match.group(1), int(match.group(2)), b""
            if size == 0:
                dumps.append((label, b""))
            continue
        dump = _DUMP.search(line)
        if dump and label:
            data += bytes.fromhex(dump.group(1))
            if len(data) == size:
                dumps.append((label, data))
                label = ""
    return dumps


def logged(path: Path, label: str) -> list[bytes]:
    return [data for name, data in log_dumps(path) if name == label]


@dataclass(frozen=True)
class Run:
    variant: str
    datagrams: list[bytes]  #: IKE_SA_INIT request/response, IKE_AUTH request/response (marker stripped)
    west: Path
    east: Path

    @property
    def init_i(self) -> Message:
        return decode_message(self.datagrams[0])

    @property
    def init_r(self) -> Message:
        return decode_message(self.datagrams[1])

    def nonces(self) -> tuple[bytes, bytes]:
        ni, nr = self.init_i.get(Nonce), self.init_r.get(Nonce)
        assert ni is not None and nr is not None
        return ni.data, nr.data

    def suite(self) -> crypto.IkeSuite:
        sa = self.init_r.get(SecurityAssociation)
        assert sa is not None
        return crypto.IkeSuite.from_proposal(sa.proposals[0])

    def keys(self) -> crypto.IkeSaKeys:
        ni, nr = self.nonces()
        shared = logged(self.west, "shared Diffie Hellman secret")[0]
        seed = crypto.skeyseed(self.suite().prf, ni, nr, shared)
        header = self.init_r.header
        return crypto.derive_ike_keys(self.suite(), seed, ni, nr, header.spi_i, header.spi_r)


def load(variant: str) -> Run:
    datagrams = []
    for packet in read_pcap(DATA / variant / "wire.pcap"):
        data = packet.payload
        if packet.sport == 4500:
            if data[:4] != bytes(4):
                continue  # ESP in UDP
            data = data[4:]
        datagrams.append(data)
    return Run(variant, datagrams[:4], DATA / variant / "west.log", DATA / variant / "east.log")


@pytest.fixture(params=VARIANTS)
def run(request: pytest.FixtureRequest) -> Run:
    return load(request.param)


def test_the_capture_is_one_exchange(run: Run) -> None:
    kinds = [(decode_message(d).header.exchange, decode_message(d).header.is_response) for d in run.datagrams]
    assert kinds == [
        (ExchangeType.IKE_SA_INIT, False),
        (ExchangeType.IKE_SA_INIT, True),
        (ExchangeType.IKE_AUTH, False),
        (ExchangeType.IKE_AUTH, True),
    ]
    assert run.init_i.header.is_initiator and not run.init_r.header.is_initiator


def test_cleartext_messages_reencode_to_the_same_bytes(run: Run) -> None:
    for data in run.datagrams:
        assert decode_message(data).encode() == data


def test_ike_sa_init_contents(run: Run) -> None:
    message = run.init_i
    ke = message.get(KeyExchange)
    assert ke is not None and ke.group == 14 and len(ke.data) == 256
    assert message.notify(NotifyType.NAT_DETECTION_SOURCE_IP) is not None
    assert message.notify(NotifyType.IKEV2_FRAGMENTATION_SUPPORTED) is not None
    hashes = message.notify(NotifyType.SIGNATURE_HASH_ALGORITHMS)
    assert hashes is not None and hashes.data == bytes.fromhex("0002000300040005")
    suite = run.suite()
    assert suite.aead == (run.variant == "gcm")
    assert suite.key_bits == (256 if run.variant == "gcm" else 128)


def test_skeyseed_and_the_seven_keys_are_strongswans(run: Run) -> None:
    ni, nr = run.nonces()
    shared = logged(run.west, "shared Diffie Hellman secret")[0]
    assert logged(run.east, "shared Diffie Hellman secret")[0] == shared
    assert crypto.skeyseed(run.suite().prf, ni, nr, shared) == logged(run.west, "SKEYSEED")[0]
    keys = run.keys()
    for log in (run.west, run.east):
        assert logged(log, "Sk_d secret") == [keys.sk_d]
        assert logged(log, "Sk_ei secret") == [keys.sk_ei]
        assert logged(log, "Sk_er secret") == [keys.sk_er]
        assert logged(log, "Sk_pi secret") == [keys.sk_pi]
        assert logged(log, "Sk_pr secret") == [keys.sk_pr]
        if run.variant == "cbc":
            assert logged(log, "Sk_ai secret") == [keys.sk_ai]
            assert logged(log, "Sk_ar secret") == [keys.sk_ar]
        else:
            assert keys.sk_ai == keys.sk_ar == b"" and len(keys.sk_ei) == 36


def test_ike_auth_opens_with_the_derived_keys(run: Run) -> None:
    keys, suite = run.keys(), run.suite()
    request = crypto.unprotect(suite, keys.sender(True), run.datagrams[2])
    response = crypto.unprotect(suite, keys.sender(False), run.datagrams[3])
    names = [p.payload_type for p in request.payloads]
    assert names[:3] == [PayloadType.IDI, PayloadType.NOTIFY, PayloadType.IDR]
    assert request.notify(NotifyType.INITIAL_CONTACT) is not None
    assert request.notify(NotifyType.MOBIKE_SUPPORTED) is not None
    assert [p.payload_type for p in response.payloads][:5] == [
        PayloadType.IDR, PayloadType.AUTH, PayloadType.SA, PayloadType.TSI, PayloadType.TSR,
    ]
    tsi, tsr = response.get(TSi), response.get(TSr)
    assert tsi is not None and tsr is not None
    assert (str(tsi.selectors[0].start), str(tsi.selectors[0].end)) == ("198.51.100.0", "198.51.100.127")
    assert (str(tsr.selectors[0].start), str(tsr.selectors[0].end)) == ("203.0.113.0", "203.0.113.127")
    # the plaintext (without padding) is what east logged after decrypting
    sk = decode_message(run.datagrams[2]).encrypted
    assert isinstance(sk, Encrypted)
    east_plain = logged(run.east, "plain")[0]
    assert encode_payloads(request.payloads) == east_plain


def test_wrong_direction_or_damage_is_an_integrity_error(run: Run) -> None:
    keys, suite = run.keys(), run.suite()
    with pytest.raises(crypto.IntegrityError):
        crypto.unprotect(suite, keys.sender(False), run.datagrams[2])
    damaged = bytearray(run.datagrams[3])
    damaged[-20] ^= 1
    with pytest.raises(crypto.IntegrityError):
        crypto.unprotect(suite, keys.sender(False), bytes(damaged))


def test_signed_octets_and_psk_auth_are_strongswans(run: Run) -> None:
    keys, suite = run.keys(), run.suite()
    ni, nr = run.nonces()
    request = crypto.unprotect(suite, keys.sender(True), run.datagrams[2])
    response = crypto.unprotect(suite, keys.sender(False), run.datagrams[3])
    idi, idr = request.get(IDi), response.get(IDr)
    assert idi is not None and idr is not None
    octets_i = crypto.signed_octets(suite.prf, run.datagrams[0], nr, keys.sk_pi, idi.encode_body())
    octets_r = crypto.signed_octets(suite.prf, run.datagrams[1], ni, keys.sk_pr, idr.encode_body())
    west_octets = logged(run.west, "octets = message + nonce + prf(Sk_px, IDx')")
    assert west_octets == [octets_i, octets_r]
    assert logged(run.west, "IDx'") == [idi.encode_body(), idr.encode_body()]
    auth_i = crypto.psk_auth(suite.prf, PSK, octets_i)
    auth_r = crypto.psk_auth(suite.prf, PSK, octets_r)
    assert logged(run.west, "AUTH = prf(prf(secret, keypad), octets)") == [auth_i, auth_r]
    for message, expected in ((request, auth_i), (response, auth_r)):
        auth = message.get(Authentication)
        assert auth is not None and auth.method == AuthMethod.SHARED_KEY_MIC and auth.data == expected
        assert crypto.verify_psk_auth(suite.prf, PSK, octets_i if message is request else octets_r, auth.data)
    assert not crypto.verify_psk_auth(suite.prf, b"wrong", octets_i, auth_i)


def test_child_sa_keymat_is_strongswans(run: Run) -> None:
    keys, suite = run.keys(), run.suite()
    ni, nr = run.nonces()
    enc = 16 if run.variant == "cbc" else 36  # AES-256-GCM key + salt
    integ = 32 if run.variant == "cbc" else 0
    keymat = crypto.child_keymat(suite.prf, keys.sk_d, ni, nr, 2 * (enc + integ))
    assert logged(run.west, "encryption initiator key") == [keymat[:enc]]
    assert logged(run.west, "encryption responder key") == [keymat[enc + integ : 2 * enc + integ]]
    if integ:
        assert logged(run.west, "integrity initiator key") == [keymat[enc : enc + integ]]
        assert logged(run.west, "integrity responder key") == [keymat[2 * enc + integ :]]


def test_gcm_seals_to_the_bytes_charon_sent() -> None:
    run = load("gcm")
    keys, suite = run.keys(), run.suite()
    for index, initiator in ((2, True), (3, False)):
        opened = crypto.unprotect(suite, keys.sender(initiator), run.datagrams[index])
        sk = decode_message(run.datagrams[index]).encrypted
        assert sk is not None
        iv = sk.body[: suite.iv_size]
        again = crypto.protect(suite, keys.sender(initiator), opened.header, opened.payloads, iv)
        assert again == run.datagrams[index]
