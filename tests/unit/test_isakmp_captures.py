"""Decode the real strongSwan 5.9.8 exchanges captured in the interop lab.

The pcaps in ``tests/data`` are copies of ``lab/captures/*.pcap`` and of the
known-answer runs ``lab/vectors/{psk,pubkey}-main/wire.pcap`` (renamed
``*-vectors.pcap``).  The decrypted bodies below were copied from those runs'
charon logs ("plain => ..." and "padding => ..." lines), so the same messages
can be checked before and after encryption without any crypto here.

What is asserted are facts of the captures: proposals, vendor IDs, the
NAT-D hashes (charon's first one is honest, the second random, see
lab/README.md), ports, lengths, SPIs, message IDs.
"""

from __future__ import annotations

import hashlib
import socket
import struct
from collections import Counter
from ipaddress import IPv4Network
from pathlib import Path

import pytest

from fswan.isakmp.constants import (
    DOI,
    AuthAlgorithm,
    EncapsulationMode,
    EspTransformId,
    ExchangeType,
    Flags,
    IdType,
    IPsecAttr,
    IsakmpTransformId,
    KnownVendor,
    NotifyType,
    OakleyAttr,
    OakleyAuth,
    OakleyEncryption,
    OakleyGroup,
    OakleyHash,
    OakleyLifeType,
    PayloadType,
    ProtocolId,
    SALifeType,
)
from fswan.isakmp.message import (
    Message,
    decode_message,
    decode_payloads,
    encode_payloads,
    is_natt_keepalive,
    strip_non_esp_marker,
)
from fswan.isakmp.payloads import (
    HashPayload,
    IDPayload,
    KEPayload,
    NATDPayload,
    NoncePayload,
    NotificationPayload,
    SAPayload,
    SigPayload,
    VendorIDPayload,
)
from tests.pcap import UdpPacket, read_pcap

DATA = Path(__file__).resolve().parent.parent / "data"
WEST, EAST, NAT = "192.0.2.1", "192.0.2.2", "192.0.2.3"

STRONGSWAN_VIDS_INITIATOR = [
    KnownVendor.XAUTH,
    KnownVendor.DPD,
    KnownVendor.FRAGMENTATION,
    KnownVendor.NATT_RFC3947,
    KnownVendor.NATT_DRAFT_02_N,
]
STRONGSWAN_VIDS_RESPONDER = STRONGSWAN_VIDS_INITIATOR[:-1]


class Ike:
    """One IKE datagram from a capture, decoded."""

    def __init__(self, packet: UdpPacket, message: Message) -> None:
        self.packet = packet
        self.message = message
        self.header = message.header


def load(name: str) -> tuple[list[Ike], list[UdpPacket], list[UdpPacket]]:
    """(IKE messages, ESP-in-UDP packets, NAT keepalives) of a capture."""
    ike, esp, keepalives = [], [], []
    for packet in read_pcap(DATA / name):
        data = packet.payload
        if 4500 in (packet.sport, packet.dport):
            if is_natt_keepalive(data):
                keepalives.append(packet)
                continue
            data = strip_non_esp_marker(data)
            if data is None:
                esp.append(packet)
                continue
        ike.append(Ike(packet, decode_message(data)))
    return ike, esp, keepalives


def natd(ike: Ike, address: str, port: int) -> bytes:
    """RFC 3947 NAT-D: SHA1(CKY-I | CKY-R | IP | port)."""
    header = ike.header
    return hashlib.sha1(
        header.icookie + header.rcookie + socket.inet_aton(address) + port.to_bytes(2, "big")
    ).digest()


def vendors(message: Message) -> list[KnownVendor | None]:
    return [v.known for v in message.find_all(VendorIDPayload)]


def check_phase1_sa(sa: SAPayload, auth: int = OakleyAuth.OAKLEY_PRESHARED_KEY) -> None:
    """aes128-sha1-modp2048 with the given authentication, 15840 s."""
    assert sa.doi == DOI.IPSEC
    (proposal,) = sa.proposals
    assert (proposal.number, proposal.protocol, proposal.spi) == (1, ProtocolId.ISAKMP, b"")
    (transform,) = proposal.transforms
    assert transform.id == IsakmpTransformId.KEY_IKE
    encryption = transform.value(OakleyAttr.OAKLEY_ENCRYPTION_ALGORITHM)
    assert encryption == OakleyEncryption.OAKLEY_AES_CBC
    assert transform.value(OakleyAttr.OAKLEY_KEY_LENGTH) == 128
    assert transform.value(OakleyAttr.OAKLEY_HASH_ALGORITHM) == OakleyHash.OAKLEY_SHA1
    assert transform.value(OakleyAttr.OAKLEY_GROUP_DESCRIPTION) == OakleyGroup.OAKLEY_GROUP_MODP2048
    assert transform.value(OakleyAttr.OAKLEY_AUTHENTICATION_METHOD) == auth
    assert transform.value(OakleyAttr.OAKLEY_LIFE_TYPE) == OakleyLifeType.OAKLEY_LIFE_SECONDS
    assert transform.value(OakleyAttr.OAKLEY_LIFE_DURATION) == 15840


def check_phase2_sa(sa: SAPayload, spi: bytes) -> None:
    """ESP aes128-sha1, UDP-encapsulated tunnel (mode 3), 3960 s."""
    (proposal,) = sa.proposals
    assert (proposal.protocol, proposal.spi) == (ProtocolId.ESP, spi)
    (transform,) = proposal.transforms
    assert transform.id == EspTransformId.ESP_AES_CBC
    assert transform.value(IPsecAttr.KEY_LENGTH) == 128
    assert transform.value(IPsecAttr.AUTH_ALGORITHM) == AuthAlgorithm.HMAC_SHA1
    assert transform.value(IPsecAttr.ENCAPSULATION_MODE) == EncapsulationMode.UDP_TUNNEL
    assert transform.value(IPsecAttr.SA_LIFE_TYPE) == SALifeType.SA_LIFE_TYPE_SECONDS
    assert transform.value(IPsecAttr.SA_LIFE_DURATION) == 3960


def check_main_mode_1_to_4(ike: list[Ike], west: tuple[str, int], east: tuple[str, int],
                           auth: int = OakleyAuth.OAKLEY_PRESHARED_KEY) -> None:
    mm1, mm2, mm3, mm4 = (i.message for i in ike[:4])
    icookie, rcookie = mm2.header.icookie, mm2.header.rcookie
    # Message 1: SA + vendor IDs, responder cookie still zero.
    assert mm1.header.exchange == ExchangeType.MAIN_MODE
    assert mm1.header.flags == Flags.NONE and mm1.header.message_id == 0
    assert mm1.header.icookie == icookie and mm1.header.rcookie == bytes(8)
    assert mm1.header.length == 180
    assert mm1.payload_types == [PayloadType.SA] + [PayloadType.VENDOR_ID] * 5
    check_phase1_sa(mm1.payloads[0], auth)
    assert vendors(mm1) == STRONGSWAN_VIDS_INITIATOR
    # Message 2: the chosen proposal back, same vendor IDs minus draft-02\n.
    assert rcookie != bytes(8) and mm2.header.length == 160
    assert mm2.payload_types == [PayloadType.SA] + [PayloadType.VENDOR_ID] * 4
    check_phase1_sa(mm2.payloads[0], auth)
    assert vendors(mm2) == STRONGSWAN_VIDS_RESPONDER
    # Messages 3 and 4: KE (MODP2048: 256 bytes), nonce, two NAT-D.
    for index, message in ((2, mm3), (3, mm4)):
        assert message.header.cookies == icookie + rcookie
        assert message.header.length == 372
        assert message.payload_types == [
            PayloadType.KE, PayloadType.NONCE, PayloadType.NAT_D, PayloadType.NAT_D,
        ]
        assert len(message.find(KEPayload).data) == 256
        assert len(message.find(NoncePayload).data) == 32
        dst_hash, src_hash = message.find_all(NATDPayload)
        assert len(dst_hash.hash) == len(src_hash.hash) == 20
        packet = ike[index].packet
        # charon: the destination hash is honest, the source hash random.
        assert dst_hash.hash == natd(ike[index], packet.dst, packet.dport)
        assert src_hash.hash != natd(ike[index], packet.src, packet.sport)
    assert (ike[0].packet.src, ike[0].packet.sport) == west
    assert (ike[1].packet.src, ike[1].packet.sport) == east


def check_encrypted(item: Ike, exchange: int, length: int, first: int) -> None:
    header = item.header
    assert header.exchange == exchange
    assert header.flags & Flags.ENCRYPTION
    assert header.next_payload == first
    assert header.length == length == 28 + len(item.message.encrypted_body)
    assert len(item.message.encrypted_body) % 16 == 0  # AES-CBC blocks
    assert item.message.payloads == ()
    assert 4500 in (item.packet.sport, item.packet.dport)  # floated after MM4


# ---------------------------------------------------------------------------


class TestPskMain:
    ike, esp, keepalives = load("psk-main.pcap")

    def test_counts(self):
        assert len(self.ike) == 9  # MM 1-6, QM 1-3
        assert len(self.esp) == 8  # four pings' worth of ESP-in-UDP
        assert self.keepalives == []

    def test_main_mode_cleartext(self):
        check_main_mode_1_to_4(self.ike, (WEST, 500), (EAST, 500))
        for item in self.ike[:4]:
            assert item.packet.sport == item.packet.dport == 500

    def test_main_mode_5_6_encrypted(self):
        mm5, mm6 = self.ike[4:6]
        check_encrypted(mm5, ExchangeType.MAIN_MODE, 108, PayloadType.ID)
        check_encrypted(mm6, ExchangeType.MAIN_MODE, 76, PayloadType.ID)
        assert mm5.header.message_id == mm6.header.message_id == 0
        assert mm5.header.cookies == self.ike[0].header.icookie + self.ike[1].header.rcookie

    def test_quick_mode_encrypted(self):
        qm = self.ike[6:9]
        for item, length in zip(qm, (188, 188, 60)):
            check_encrypted(item, ExchangeType.QUICK_MODE, length, PayloadType.HASH)
        assert len({q.header.message_id for q in qm}) == 1
        assert qm[0].header.message_id != 0
        assert [q.packet.src for q in qm] == [WEST, EAST, WEST]

    def test_esp_spis(self):
        spis = Counter(p.payload[:4] for p in self.esp)
        assert len(spis) == 2 and set(spis.values()) == {4}
        assert all(p.sport == p.dport == 4500 for p in self.esp)

    def test_round_trip(self):
        for item in self.ike:
            data = strip_non_esp_marker(item.packet.payload) or item.packet.payload
            assert item.message.encode() == data


class TestPskMainIdle:
    """Same tunnel left idle: DPD R_U_THERE / ACK every 10 s, encrypted."""

    ike, esp, keepalives = load("psk-main-idle.pcap")

    def test_phase1(self):
        check_main_mode_1_to_4(self.ike, (WEST, 500), (EAST, 500))

    def test_dpd_informationals(self):
        info = [i for i in self.ike if i.header.exchange == ExchangeType.INFORMATIONAL]
        assert len(info) == 16
        assert len(self.ike) == 9 + 16
        for item in info:
            check_encrypted(item, ExchangeType.INFORMATIONAL, 92, PayloadType.HASH)
            assert item.header.cookies == self.ike[4].header.cookies
        # every exchange has its own random message ID
        assert len({i.header.message_id for i in info}) == 16
        # both peers probe
        assert Counter(i.packet.src for i in info) == {WEST: 8, EAST: 8}


class TestPskAggressive:
    ike, esp, keepalives = load("psk-aggressive.pcap")

    def test_aggressive_1(self):
        am1 = self.ike[0].message
        assert am1.header.exchange == ExchangeType.AGGRESSIVE
        assert am1.header.rcookie == bytes(8) and am1.header.length == 488
        assert am1.payload_types == [
            PayloadType.SA, PayloadType.KE, PayloadType.NONCE, PayloadType.ID,
        ] + [PayloadType.VENDOR_ID] * 5
        check_phase1_sa(am1.find(SAPayload))
        identity = am1.find(IDPayload)
        assert (identity.id_type, identity.data) == (IdType.ID_FQDN, b"west")
        assert str(identity) == "@west"
        assert vendors(am1) == STRONGSWAN_VIDS_INITIATOR

    def test_aggressive_2(self):
        item = self.ike[1]
        am2 = item.message
        assert am2.header.exchange == ExchangeType.AGGRESSIVE and am2.header.length == 540
        assert am2.payload_types == [
            PayloadType.SA, PayloadType.KE, PayloadType.NONCE, PayloadType.ID,
        ] + [PayloadType.VENDOR_ID] * 4 + [PayloadType.NAT_D, PayloadType.NAT_D, PayloadType.HASH]
        check_phase1_sa(am2.find(SAPayload))
        assert str(am2.find(IDPayload)) == "@east"
        assert len(am2.find(HashPayload).data) == 20
        dst_hash, src_hash = am2.find_all(NATDPayload)
        assert dst_hash.hash == natd(item, WEST, 500)
        assert src_hash.hash != natd(item, EAST, 500)

    def test_aggressive_3_and_quick_mode(self):
        am3 = self.ike[2]
        check_encrypted(am3, ExchangeType.AGGRESSIVE, 108, PayloadType.HASH)
        qm = self.ike[3:]
        assert [q.header.exchange for q in qm] == [ExchangeType.QUICK_MODE] * 4
        for q in qm:
            check_encrypted(q, ExchangeType.QUICK_MODE, q.header.length, PayloadType.HASH)
        # QM1 overtook AM3 inside charon and was retransmitted verbatim.
        assert qm[0].packet.payload == qm[1].packet.payload
        assert [q.packet.src for q in qm] == [WEST, WEST, EAST, WEST]
        assert [q.header.length for q in qm] == [188, 188, 188, 60]


class TestRoadwarriorBehindNat:
    """west behind a NAPT (192.0.2.3, 500->1500, 4500->14500)."""

    ike, esp, keepalives = load("rw-behind-nat.pcap")

    def test_phase1_through_nat(self):
        check_main_mode_1_to_4(self.ike, (NAT, 1500), (EAST, 500))
        # east's NAT-D hashes the translated address it sees.
        mm4 = self.ike[3]
        assert mm4.message.find(NATDPayload).hash == natd(mm4, NAT, 1500)

    def test_floated_ports(self):
        floated = self.ike[4:]
        assert len(floated) == 5
        for item in floated:
            assert {(item.packet.src, item.packet.sport), (item.packet.dst, item.packet.dport)} == {
                (NAT, 14500), (EAST, 4500),
            }
        check_encrypted(floated[0], ExchangeType.MAIN_MODE, 108, PayloadType.ID)
        check_encrypted(floated[1], ExchangeType.MAIN_MODE, 76, PayloadType.ID)

    def test_keepalive_and_esp(self):
        assert len(self.keepalives) == 1
        (keepalive,) = self.keepalives
        assert (keepalive.src, keepalive.sport, keepalive.payload) == (NAT, 14500, b"\xff")
        assert len(self.esp) == 6


# ---------------------------------------------------------------------------
# The known-answer runs: wire messages plus their decrypted bodies.

# psk-main: charon's plaintext of each encrypted message, and its padding.
PSK_MM5 = bytes.fromhex(
    "0800000c01000000c0000201"  # ID_IPV4_ADDR 192.0.2.1
    "0b000018" "4f1b9b4a536cd259b38d63ac73524ef530d74d57"  # HASH_I
    "0000001c0000000101106002" "da8d2a71476ea3f077ebf0e5f83ae2ce"  # N(INITIAL_CONTACT)
) + bytes(16)
PSK_MM6 = bytes.fromhex(
    "0800000c01000000c0000202"  # ID_IPV4_ADDR 192.0.2.2
    "00000018" "0cb9ec9cb01a374efa49b1b567ba80da4959403a"  # HASH_R
) + bytes(12)
PSK_QM1 = bytes.fromhex(
    "0100001811d510826bd93d4751bda1e74762c27e8fea8e77"  # HASH(1)
    "0a000034000000010000000100000028010304013400aa06"  # SA, ESP SPI 3400aa06
    "0000001c010c00008006008080050002800400038001000180020f78"
    "05000024c189152ee1e1a247802cbf23075f4ec0ec8eb00a638e793d08880dc20140e6c9"  # Ni
    "0500001004000000c6336400ffffff80"  # IDci 198.51.100.0/25
    "0000001004000000cb007100ffffff80"  # IDcr 203.0.113.0/25
) + bytes(16)
PSK_QM2 = bytes.fromhex(
    "010000181a0b91f6c19a1e94f6a7745e7195239b8ad17c41"  # HASH(2)
    "0a000034000000010000000100000028010304016e6dd9cc"  # SA, ESP SPI 6e6dd9cc
    "0000001c010c00008006008080050002800400038001000180020f78"
    "05000024be0c0568921f6dc22f2ce9307c8c1c9cd3d9d2eb3f48757641d6e62a46deda76"  # Nr
    "0500001004000000c6336400ffffff80"
    "0000001004000000cb007100ffffff80"
) + bytes(16)
PSK_QM3 = bytes.fromhex("00000018f4fb3f1554c058574752bd5d5e69d2df6d617a2e") + bytes(8)

# pubkey-main: RSA signatures (256 bytes) instead of HASH_I/HASH_R.
PUBKEY_MM5 = bytes.fromhex(
    "0900000c0200000077657374"  # ID_FQDN west
    "0b000104"
    "4e1eabb7ddc05563da26413f85ab4c6fdf8985423da3bc895931be99631eda0071d746f47de6"
    "4481b56c20ee47e5b53beabb11328e6f31a4dde3c32e672df6db424a7b8fb80c63d958379a3a"
    "c9848e45073feff27c470ef519974b40bbdadf8ff4a28fe5604f078b2eaab12c6f9d87c79cbd"
    "7a38d58714bbab3e3e14bc3b069bd1fa9c1348d2a167cd474313b893b9d5b28cb29d6010ae0f"
    "3d3939589f5dcdd7ab71a0ee040de9e12a7aaffba9a7576bda005ac5a0205df50be5d3501f23"
    "1c7b283c524e203fc3ecdfb8979865da369085300afb31aa93afb769bd88cf55163c42005a46"
    "201dcd6e552be78a9587dcbfbbe8fe038a259f6fd725d55c461771c6"  # SIG_I
    "0000001c0000000101106002df2c8dc8e1586ee1f944f1f7e54a97b5"  # N(INITIAL_CONTACT)
) + bytes(4)
PUBKEY_MM6 = bytes.fromhex(
    "0900000c0200000065617374"  # ID_FQDN east
    "00000104"
    "9965c4ebcace9da67936483cff942be574739ad983a670ad29d7879aa2153a65859fc418345d"
    "e1fe648bb5691e80fe11007743adea4608e9f35b05d6881db7d3340040b8db332af43e7489e2"
    "303f9b8137a86da5c78eadec8581ba17b34e03954d4db1af815c33b1ad483b467ac0b360c216"
    "a7b81bf72bcd73d1e38fb676740bed18165b5f791a1de91bdf70c3ea7e3f3a1e719428474395"
    "8abbd4f435bd90274115011ff817f850b8cd5c3ad7e823420f6c90b3822e9f2a67acddd3faa9"
    "be5461463219fce9a19cf315674432a58757d25684a3bb291fce0d08c8a0b5e10b96db8b6e63"
    "7b5883a134820f3751f3bc13864c65aa17e8a48d36c1e3f43fc667e1"  # SIG_R
) + bytes(16)


class TestPskMainVectors:
    ike, esp, keepalives = load("psk-main-vectors.pcap")

    def test_phase1_cleartext(self):
        check_main_mode_1_to_4(self.ike, (WEST, 500), (EAST, 500))

    @pytest.mark.parametrize(
        "index, plain, exchange",
        [
            (4, PSK_MM5, ExchangeType.MAIN_MODE),
            (5, PSK_MM6, ExchangeType.MAIN_MODE),
            (6, PSK_QM1, ExchangeType.QUICK_MODE),
            (7, PSK_QM2, ExchangeType.QUICK_MODE),
            (8, PSK_QM3, ExchangeType.QUICK_MODE),
        ],
    )
    def test_ciphertext_matches_plaintext_length(self, index, plain, exchange):
        item = self.ike[index]
        check_encrypted(item, exchange, 28 + len(plain), item.header.next_payload)
        assert len(item.message.encrypted_body) == len(plain)

    def test_main_mode_5(self):
        header = self.ike[4].header
        payloads = decode_payloads(header.next_payload, PSK_MM5)
        identity, hash_i, notify = payloads
        assert identity == IDPayload.ipv4_addr(WEST)  # protocol 0, port 0
        assert len(hash_i.data) == 20 and isinstance(hash_i, HashPayload)
        assert notify == NotificationPayload(
            NotifyType.INITIAL_CONTACT, ProtocolId.ISAKMP, header.cookies
        )

    def test_main_mode_6_zero_padding(self):
        header = self.ike[5].header
        identity, hash_r = decode_payloads(header.next_payload, PSK_MM6)
        assert identity == IDPayload.ipv4_addr(EAST)
        assert hash_r.data.hex() == "0cb9ec9cb01a374efa49b1b567ba80da4959403a"

    def test_quick_mode(self):
        qm1 = decode_payloads(PayloadType.HASH, PSK_QM1)
        qm2 = decode_payloads(PayloadType.HASH, PSK_QM2)
        (qm3,) = decode_payloads(PayloadType.HASH, PSK_QM3)
        expected = [PayloadType.HASH, PayloadType.SA, PayloadType.NONCE]
        expected += [PayloadType.ID, PayloadType.ID]
        assert [p.payload_type for p in qm1] == [p.payload_type for p in qm2] == expected
        check_phase2_sa(qm1[1], bytes.fromhex("3400aa06"))
        check_phase2_sa(qm2[1], bytes.fromhex("6e6dd9cc"))
        for payloads in (qm1, qm2):
            assert len(payloads[2].data) == 32
            assert payloads[3].network == IPv4Network("198.51.100.0/25")
            assert payloads[4].network == IPv4Network("203.0.113.0/25")
            assert (payloads[3].protocol, payloads[3].port) == (0, 0)
        assert isinstance(qm3, HashPayload) and len(qm3.data) == 20
        # The SPIs negotiated are the ones on the ESP packets that follow.
        assert {p.payload[:4] for p in self.esp} == {
            bytes.fromhex("3400aa06"), bytes.fromhex("6e6dd9cc"),
        }

    def test_reencoding_the_plaintext(self):
        """Payloads re-encode to charon's bytes, padding aside."""
        for plain, padding in ((PSK_MM5, 16), (PSK_MM6, 12), (PSK_QM1, 16), (PSK_QM2, 16)):
            first = PayloadType.ID if plain in (PSK_MM5, PSK_MM6) else PayloadType.HASH
            payloads = decode_payloads(first, plain)
            assert encode_payloads(payloads) == plain[:-padding]


class TestPubkeyMainVectors:
    ike, esp, keepalives = load("pubkey-main-vectors.pcap")

    def test_phase1_rsa(self):
        check_main_mode_1_to_4(
            self.ike, (WEST, 500), (EAST, 500), auth=OakleyAuth.OAKLEY_RSA_SIG
        )

    def test_main_mode_5_6(self):
        mm5, mm6 = self.ike[4:6]
        check_encrypted(mm5, ExchangeType.MAIN_MODE, 332, PayloadType.ID)
        check_encrypted(mm6, ExchangeType.MAIN_MODE, 316, PayloadType.ID)
        identity, sig, notify = decode_payloads(mm5.header.next_payload, PUBKEY_MM5)
        assert str(identity) == "@west" and identity.id_type == IdType.ID_FQDN
        assert isinstance(sig, SigPayload) and len(sig.data) == 256  # RSA-2048
        assert notify.type == NotifyType.INITIAL_CONTACT and notify.spi == mm5.header.cookies
        identity, sig = decode_payloads(mm6.header.next_payload, PUBKEY_MM6)
        assert str(identity) == "@east" and len(sig.data) == 256
        assert len(mm5.message.encrypted_body) == len(PUBKEY_MM5)
        assert len(mm6.message.encrypted_body) == len(PUBKEY_MM6)

    def test_quick_mode(self):
        assert [i.header.exchange for i in self.ike[6:]] == [ExchangeType.QUICK_MODE] * 3
        assert len(self.esp) == 4


ALL_CAPTURES = [
    "psk-aggressive.pcap",
    "psk-main-idle.pcap",
    "psk-main-vectors.pcap",
    "psk-main.pcap",
    "pubkey-main-vectors.pcap",
    "rw-behind-nat.pcap",
]


@pytest.mark.parametrize("name", ALL_CAPTURES)
def test_every_ike_packet_decodes_and_round_trips(name):
    ike, esp, _ = load(name)
    assert ike, name
    for item in ike:
        data = strip_non_esp_marker(item.packet.payload)
        if data is None:
            data = item.packet.payload
        assert item.message.encode() == data
        for payload in item.message.payloads:
            assert payload.wire_body == payload.encode()



# ---------------------------------------------------------------------------
# The test helper itself: other link types than the lab's Ethernet.


def _pcap(linktype: int, frames: list[bytes], endian: str = "<") -> bytes:
    out = struct.pack(endian + "IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype)
    for frame in frames:
        out += struct.pack(endian + "IIII", 0, 0, len(frame), len(frame)) + frame
    return out


def _ipv4_udp(payload: bytes, fragment: int = 0) -> bytes:
    udp = (500).to_bytes(2, "big") + (4500).to_bytes(2, "big")
    udp += (8 + len(payload)).to_bytes(2, "big") + b"\x00\x00" + payload
    return (
        b"\x45\x00" + (20 + len(udp)).to_bytes(2, "big") + b"\x00\x01"
        + fragment.to_bytes(2, "big") + b"\x40\x11\x00\x00"
        + socket.inet_aton(WEST) + socket.inet_aton(EAST) + udp
    )


@pytest.mark.parametrize(
    "linktype, prefix",
    [
        (101, b""),  # raw IP
        (113, b"\x00\x00\x00\x01\x00\x06" + bytes(8) + b"\x08\x00"),  # Linux SLL
        (276, b"\x08\x00" + bytes(18)),  # Linux SLL2
        (1, bytes(12) + b"\x81\x00\x00\x05\x08\x00"),  # Ethernet + 802.1Q
    ],
)
@pytest.mark.parametrize("endian", ["<", ">"])
def test_pcap_reader_link_types(linktype, prefix, endian):
    frames = [
        prefix + _ipv4_udp(b"ike"),
        prefix + _ipv4_udp(b"fragment", fragment=0x0010),  # non-first fragment
    ]
    (packet,) = read_pcap(_pcap(linktype, frames, endian))
    assert packet == (WEST, 500, EAST, 4500, b"ike")
