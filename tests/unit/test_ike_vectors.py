"""Known-answer tests of the IKEv1 key schedule against real strongSwan runs.

``tests/data/vectors/<variant>/`` holds a copy of the lab's vectors (see its
README): ``wire.pcap`` with a whole Main Mode + Quick Mode exchange, and both
charons' logs with every intermediate secret.  Inputs (cookies, nonces, KE
values, SA and ID payloads, SPIs) are taken from the *wire*; only the DH
shared secret comes from the log (the private exponents are not logged).
Every derived value is compared with what both peers logged, and the
phase-1/phase-2 encryption is checked by decrypting and re-encrypting the
captured messages.  For psk-main the main values are also written out as
literals below, so a broken log parser cannot make the tests vacuous.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import (
    load_pem_private_key,
    load_pem_public_key,
)

from fswan.ike import crypto
from fswan.suites import EspProposal, parse_esp, parse_ike
from tests._vector_pcap import Isakmp, isakmp_messages, payload_chain, read_udp

VECTORS = Path(__file__).resolve().parent.parent / "data" / "vectors"
PSK = b"lab-psk-not-secret-0123456789"

# ISAKMP payload types (RFC 2408 section 3.1), kept local on purpose
SA, KE, ID, HASH, SIG, NONCE, NOTIFY = 1, 4, 5, 8, 9, 10, 11

# --------------------------------------------------------------------------
# strongSwan log parsing: "<label> => N bytes @ 0x..." then hex dump lines

_HEAD = re.compile(r"^\S+ \d+\[\w+\] (?:<[^>]*> )?(?P<label>.*?)\s*=> (?P<n>\d+) bytes @")
_HEX = re.compile(r"^\S+ \d+\[\w+\] (?:<[^>]*> )?\s*\d+: (?P<hex>(?:[0-9A-F]{2} )*[0-9A-F]{2})")


def parse_log(path: Path) -> dict[str, list[bytes]]:
    """Every labelled hex dump in a charon log, label -> values in log order."""
    dumps: dict[str, list[bytes]] = {}
    lines = path.read_text().splitlines()
    i = 0
    while i < len(lines):
        head = _HEAD.match(lines[i])
        i += 1
        if head is None:
            continue
        size = int(head.group("n"))
        data = b""
        while len(data) < size:
            row = _HEX.match(lines[i])
            assert row is not None, f"{path.name}:{i + 1}: hex dump expected"
            data += bytes.fromhex(row.group("hex"))
            i += 1
        assert len(data) == size
        dumps.setdefault(head.group("label"), []).append(data)
    return dumps


@dataclass
class Run:
    """One captured exchange: the wire messages and both logs."""

    name: str
    west: dict[str, list[bytes]]
    east: dict[str, list[bytes]]
    mm: list[Isakmp]
    qm: list[Isakmp]

    def one(self, label: str) -> bytes:
        """A value both peers logged once and identically."""
        (west,) = self.west[label]
        (east,) = self.east[label]
        assert west == east, label
        return west

    @property
    def cky_i(self) -> bytes:
        return self.mm[0].cky_i

    @property
    def cky_r(self) -> bytes:
        return self.mm[1].cky_r


def _load(name: str) -> Run:
    folder = VECTORS / name
    messages = isakmp_messages(read_udp(folder / "wire.pcap"))
    mm = [m for m in messages if m.exchange == 2]
    qm = [m for m in messages if m.exchange == 32]
    assert len(mm) == 6 and len(qm) == 3
    return Run(name, parse_log(folder / "west.log"), parse_log(folder / "east.log"), mm, qm)


@pytest.fixture(scope="module", params=["psk-main", "pubkey-main"])
def run(request: pytest.FixtureRequest) -> Run:
    return _load(request.param)


@pytest.fixture(scope="module")
def psk_run() -> Run:
    return _load("psk-main")


@pytest.fixture(scope="module")
def pubkey_run() -> Run:
    return _load("pubkey-main")


def payloads(first: int, body: bytes) -> list[tuple[int, bytes]]:
    return payload_chain(first, body)


def body_of(chain: list[tuple[int, bytes]], ptype: int) -> bytes:
    """The body (generic header stripped) of the first payload of a type."""
    return next(p for t, p in chain if t == ptype)[4:]


def clear(msg: Isakmp) -> list[tuple[int, bytes]]:
    return payloads(msg.next_payload, msg.body)


@dataclass
class Derived:
    """Everything recomputed from wire inputs and the logged g^xy."""

    ni_b: bytes
    nr_b: bytes
    g_xi: bytes
    g_xr: bytes
    g_xy: bytes
    sa_i_b: bytes
    keys: crypto.Phase1Keys


def derive(run: Run) -> Derived:
    mm1, _mm2, mm3, mm4 = run.mm[:4]
    ni_b, nr_b = body_of(clear(mm3), NONCE), body_of(clear(mm4), NONCE)
    g_xi, g_xr = body_of(clear(mm3), KE), body_of(clear(mm4), KE)
    g_xy = run.one("shared Diffie Hellman secret")
    (ike,) = parse_ike("aes128-sha1-modp2048")
    if run.name.startswith("psk"):
        skeyid = crypto.skeyid_psk(ike.hash, PSK, ni_b, nr_b)
    else:
        skeyid = crypto.skeyid_sig(ike.hash, ni_b, nr_b, g_xy)
    keys = crypto.derive_phase1_keys(
        ike.hash, skeyid, g_xy, run.cky_i, run.cky_r, ike.cipher, ike.key_bits
    )
    return Derived(ni_b, nr_b, g_xi, g_xr, g_xy, body_of(clear(mm1), SA), keys)


def crypter(run: Run, d: Derived) -> crypto.Phase1Crypter:
    return crypto.Phase1Crypter.for_phase1(d.keys, "aes_cbc", d.g_xi, d.g_xr)


# --------------------------------------------------------------------------
# the parser and the capture agree with each other


def test_log_parser_finds_the_key_schedule(run: Run) -> None:
    for label in ("SKEYID", "SKEYID_d", "SKEYID_a", "SKEYID_e", "encryption key Ka",
                  "initial IV", "HASH_I", "HASH_R", "Hash(1)", "Hash(2)", "Hash(3)"):
        assert len(run.one(label)) in (16, 20), label
    assert len(run.one("shared Diffie Hellman secret")) == 256
    assert len(run.west["next IV for MID 0"]) == 2


def test_hash_i_input_is_made_of_wire_values(run: Run) -> None:
    """strongSwan's logged HASH_I input = g^xi | g^xr | CKY-I | CKY-R | SAi_b | IDii_b."""
    d = derive(run)
    (data,) = run.west["HASH_I data"]
    assert data[:256] == d.g_xi
    assert data[256:512] == d.g_xr
    assert data[512:528] == run.cky_i + run.cky_r
    assert data[528:528 + len(d.sa_i_b)] == d.sa_i_b


# --------------------------------------------------------------------------
# phase 1 key schedule


def test_skeyid_and_children(run: Run) -> None:
    keys = derive(run).keys
    assert keys.skeyid == run.one("SKEYID")
    assert keys.skeyid_d == run.one("SKEYID_d")
    assert keys.skeyid_a == run.one("SKEYID_a")
    assert keys.skeyid_e == run.one("SKEYID_e")
    assert keys.enc_key == run.one("encryption key Ka")


def test_psk_main_literal_values(psk_run: Run) -> None:
    """The psk-main schedule, written out (values from the charon logs)."""
    d = derive(psk_run)
    assert psk_run.cky_i.hex() == "da8d2a71476ea3f0"
    assert psk_run.cky_r.hex() == "77ebf0e5f83ae2ce"
    assert d.g_xy[:16].hex() == "458f0f080b38c987cc92c8a3243dd8ea"
    assert d.keys.skeyid.hex() == "bca3b5f70b834b7b86007c8322a43c3e899a2e36"
    assert d.keys.skeyid_d.hex() == "059e8877885754b6b76f630dd6195c6f0b43bb5b"
    assert d.keys.skeyid_a.hex() == "12a1ca55f7833f2355dba7847298b66a13479f59"
    assert d.keys.skeyid_e.hex() == "44fd13330f6a980b4758904bbed1f9464d0903b3"
    # AES-128 with SHA1: SKEYID_e is long enough, the key is its first 16 bytes
    assert d.keys.enc_key.hex() == "44fd13330f6a980b4758904bbed1f946"
    iv = crypto.phase1_iv("sha1", d.g_xi, d.g_xr, 16)
    assert iv.hex() == "65b85c38f5a0ee01b6d1846f56204069"


def test_initial_iv(run: Run) -> None:
    d = derive(run)
    assert crypto.phase1_iv("sha1", d.g_xi, d.g_xr, 16) == run.one("initial IV")
    assert crypter(run, d).iv(0) == run.one("initial IV")


def test_main_mode_5_and_6_decrypt_with_iv_chain(run: Run) -> None:
    d = derive(run)
    c = crypter(run, d)
    mm5, mm6 = run.mm[4], run.mm[5]
    assert mm5.encrypted and mm6.encrypted

    plain5 = c.decrypt(0, mm5.body)
    # west logged the plaintext and the (zero) padding it added before encrypting
    assert plain5 == run.west["plain"][0] + run.west["padding"][0]
    assert run.east["plain"][0] == plain5  # east logs the decrypted body with padding
    assert c.iv(0) == run.west["next IV for MID 0"][0] == mm5.body[-16:]

    plain6 = c.decrypt(0, mm6.body)
    assert plain6 == run.west["plain"][1]
    assert plain6 == run.east["plain"][1] + run.east["padding"][0]
    assert c.iv(0) == run.west["next IV for MID 0"][1] == mm6.body[-16:]


def test_main_mode_reencrypts_to_the_wire_bytes(run: Run) -> None:
    """Both directions share one chain: west's MM5 then east's MM6."""
    d = derive(run)
    c = crypter(run, d)
    assert c.encrypt(0, run.west["plain"][0] + run.west["padding"][0]) == run.mm[4].body
    assert c.encrypt(0, run.east["plain"][1] + run.east["padding"][0]) == run.mm[5].body


def test_hash_i_and_hash_r(run: Run) -> None:
    d = derive(run)
    c = crypter(run, d)
    mm5 = payloads(ID, c.decrypt(0, run.mm[4].body))
    mm6 = payloads(ID, c.decrypt(0, run.mm[5].body))
    id_ii_b, id_ir_b = body_of(mm5, ID), body_of(mm6, ID)
    args = (d.keys.hash, d.keys.skeyid, d.g_xi, d.g_xr, run.cky_i, run.cky_r, d.sa_i_b)
    h_i = crypto.hash_i(*args, id_ii_b)
    h_r = crypto.hash_r(*args, id_ir_b)
    assert h_i == run.one("HASH_I")
    assert h_r == run.one("HASH_R")
    if run.name == "psk-main":
        assert h_i.hex() == "4f1b9b4a536cd259b38d63ac73524ef530d74d57"
        assert h_r.hex() == "0cb9ec9cb01a374efa49b1b567ba80da4959403a"
        assert crypto.constant_time_equal(body_of(mm5, HASH), h_i)
        assert crypto.constant_time_equal(body_of(mm6, HASH), h_r)
        assert [t for t, _ in mm5] == [ID, HASH, NOTIFY]


# --------------------------------------------------------------------------
# phase 2


@dataclass
class QuickMode:
    mid: int
    plain: list[bytes]
    chains: list[list[tuple[int, bytes]]]
    ivs: list[bytes]


def quick_mode(run: Run) -> tuple[Derived, QuickMode]:
    d = derive(run)
    c = crypter(run, d)
    c.decrypt(0, run.mm[4].body)
    c.decrypt(0, run.mm[5].body)
    mid = run.qm[0].message_id
    ivs = [c.iv(mid)]
    plain, chains = [], []
    for msg in run.qm:
        assert msg.message_id == mid and msg.encrypted
        text = c.decrypt(mid, msg.body)
        plain.append(text)
        chains.append(payloads(HASH, text))
        ivs.append(c.iv(mid))
    return d, QuickMode(mid, plain, chains, ivs)


def test_quick_mode_iv_chain(run: Run) -> None:
    d, qm = quick_mode(run)
    logged = run.west[f"next IV for MID {qm.mid}"]
    # first IV = hash(last phase-1 block | M-ID), then each message's last block
    assert qm.ivs[0] == crypto.phase2_iv("sha1", run.mm[5].body[-16:], qm.mid, 16)
    assert qm.ivs == logged
    if run.name == "psk-main":
        assert qm.mid == 2744413585
        assert qm.ivs[0].hex() == "0286bd9fb085a13ffa65ce5d5bb4b8cf"


def test_quick_mode_plaintexts(run: Run) -> None:
    _d, qm = quick_mode(run)
    west, east = run.west, run.east
    # west sent QM1 and QM3 (logged before padding), received QM2
    assert qm.plain[0] == west["plain"][2] + west["padding"][1]
    assert qm.plain[1] == west["plain"][3]
    assert qm.plain[2] == west["plain"][4] + west["padding"][2]
    assert qm.plain[1] == east["plain"][3] + east["padding"][1]


def test_quick_mode_hashes(run: Run) -> None:
    d, qm = quick_mode(run)
    skeyid_a = d.keys.skeyid_a
    qm1, qm2, qm3 = qm.chains
    ni_b, nr_b = body_of(qm1, NONCE), body_of(qm2, NONCE)
    rest1 = b"".join(p for _t, p in qm1[1:])
    rest2 = b"".join(p for _t, p in qm2[1:])
    assert [t for t, _ in qm1] == [HASH, SA, NONCE, ID, ID]

    h1 = crypto.qm_hash1("sha1", skeyid_a, qm.mid, rest1)
    h2 = crypto.qm_hash2("sha1", skeyid_a, qm.mid, ni_b, rest2)
    h3 = crypto.qm_hash3("sha1", skeyid_a, qm.mid, ni_b, nr_b)
    assert h1 == run.one("Hash(1)") == body_of(qm1, HASH)
    assert h2 == run.one("Hash(2)") == body_of(qm2, HASH)
    assert h3 == run.one("Hash(3)") == body_of(qm3, HASH)
    if run.name == "psk-main":
        assert h1.hex() == "11d510826bd93d4751bda1e74762c27e8fea8e77"
        assert h2.hex() == "1a0b91f6c19a1e94f6a7745e7195239b8ad17c41"
        assert h3.hex() == "f4fb3f1554c058574752bd5d5e69d2df6d617a2e"


def _esp_spi(sa_body: bytes) -> bytes:
    """The SPI of the first proposal in an IPsec SA payload body."""
    # DOI(4) situation(4) | proposal: next res len(2) num proto spi_size ntrans | SPI
    spi_size = sa_body[8 + 6]
    assert sa_body[8 + 5] == crypto.PROTO_IPSEC_ESP and spi_size == 4
    return sa_body[16:20]


def test_esp_keys(run: Run) -> None:
    d, qm = quick_mode(run)
    qm1, qm2, _ = qm.chains
    ni_b, nr_b = body_of(qm1, NONCE), body_of(qm2, NONCE)
    spi_from_i, spi_from_r = _esp_spi(body_of(qm1, SA)), _esp_spi(body_of(qm2, SA))
    (esp,) = parse_esp("aes128-sha1")
    assert esp == EspProposal("aes_cbc", 128, "sha1", None)

    # The initiator's outbound SA uses the SPI the responder chose, and vice versa.
    assert run.one("initiator SA seed") == bytes([3]) + spi_from_r + ni_b + nr_b
    assert run.one("responder SA seed") == bytes([3]) + spi_from_i + ni_b + nr_b
    outbound = crypto.derive_esp_keys("sha1", d.keys.skeyid_d, esp, spi_from_r, ni_b, nr_b)
    inbound = crypto.derive_esp_keys("sha1", d.keys.skeyid_d, esp, spi_from_i, ni_b, nr_b)
    assert outbound.encryption_key == run.one("encryption initiator key")
    assert outbound.integrity_key == run.one("integrity initiator key")
    assert inbound.encryption_key == run.one("encryption responder key")
    assert inbound.integrity_key == run.one("integrity responder key")
    assert outbound.salt == inbound.salt == b""

    if run.name == "psk-main":
        assert spi_from_i.hex() == "3400aa06" and spi_from_r.hex() == "6e6dd9cc"
        assert outbound.encryption_key.hex() == "997d8651d35632ec9c4e709cff9718b2"
        assert outbound.integrity_key.hex() == "d8e1ff4d02aad49183b854f399ad4f6f44b366fd"
        assert inbound.encryption_key.hex() == "2aa7b6dc07b6f8dc79037fb7101d23ce"
        assert inbound.integrity_key.hex() == "bfda4520bf446fc1717d832fe9aca9319c1085fe"
        # an int SPI means the same 4 bytes
        again = crypto.derive_esp_keys("sha1", d.keys.skeyid_d, esp, 0x6E6DD9CC, ni_b, nr_b)
        assert again == outbound


# --------------------------------------------------------------------------
# RSA signatures (pubkey-main)


def _keys() -> dict[str, object]:
    folder = VECTORS / "pubkey-main"
    return {
        "west.pub": load_pem_public_key((folder / "west.pub").read_bytes()),
        "east.pub": load_pem_public_key((folder / "east.pub").read_bytes()),
        "west.key": load_pem_private_key((folder / "west.key").read_bytes(), None),
        "east.key": load_pem_private_key((folder / "east.key").read_bytes(), None),
    }


def test_pubkey_main_signatures(pubkey_run: Run) -> None:
    run = pubkey_run
    d = derive(run)
    c = crypter(run, d)
    mm5 = payloads(ID, c.decrypt(0, run.mm[4].body))
    mm6 = payloads(ID, c.decrypt(0, run.mm[5].body))
    assert [t for t, _ in mm5] == [ID, SIG, NOTIFY]
    assert [t for t, _ in mm6] == [ID, SIG]
    sig_i, sig_r = body_of(mm5, SIG), body_of(mm6, SIG)
    assert len(sig_i) == len(sig_r) == 256
    assert body_of(mm5, ID) == bytes([2, 0, 0, 0]) + b"west"  # ID_FQDN @west

    args = (d.keys.hash, d.keys.skeyid, d.g_xi, d.g_xr, run.cky_i, run.cky_r, d.sa_i_b)
    h_i = crypto.hash_i(*args, body_of(mm5, ID))
    h_r = crypto.hash_r(*args, body_of(mm6, ID))
    assert h_i == run.one("HASH_I") and h_r == run.one("HASH_R")

    keys = _keys()
    assert crypto.rsa_verify_hash(keys["west.pub"], h_i, sig_i)
    assert crypto.rsa_verify_hash(keys["east.pub"], h_r, sig_r)
    assert not crypto.rsa_verify_hash(keys["east.pub"], h_i, sig_i)
    assert not crypto.rsa_verify_hash(keys["west.pub"], h_r, sig_i)
    # PKCS#1 v1.5 is deterministic: our signer reproduces charon's bytes exactly,
    # whatever the blinding factor.
    assert crypto.rsa_sign_hash(keys["west.key"], h_i) == sig_i
    assert crypto.rsa_sign_hash(keys["east.key"], h_r, lambda n: b"\x07" * n) == sig_r


def test_pubkey_main_encrypted_bodies_pad_to_the_block(pubkey_run: Run) -> None:
    """MM5 here is 300 bytes of payloads: strongSwan pads 4 bytes, as we do."""
    run = pubkey_run
    d = derive(run)
    (plain,) = run.west["plain"][:1]
    assert len(plain) == 300
    c = crypter(run, d)
    assert c.encrypt(0, plain) == run.mm[4].body  # our zero padding to 304 bytes
