"""Wire vectors for the ISAKMP codec, one class per vector (twisted.names style).

Each vector holds the bytes with a comment per field, the object they decode
to, and is checked both ways: ``decode(bytes) == object`` and
``object.encode() == bytes``.  Vectors marked "capture" are cut from the
strongSwan lab captures in ``tests/data``; the others follow the RFC layouts.
"""

from __future__ import annotations

import hashlib
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fswan.isakmp.attributes import Attribute, decode_attributes, encode_attributes
from fswan.isakmp.constants import (
    CfgAttr,
    CfgType,
    DOI,
    AuthAlgorithm,
    CertEncoding,
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
    Situation,
    AhTransformId,
    coerce,
    identify_vendor,
    name_of,
)
from fswan.isakmp.errors import MalformedPacket
from fswan.isakmp.message import (
    NATT_KEEPALIVE,
    NON_ESP_MARKER,
    Header,
    Message,
    NattKind,
    add_non_esp_marker,
    classify_natt,
    decode_header,
    decode_message,
    decode_payloads,
    encode_payloads,
    is_natt_keepalive,
    strip_non_esp_marker,
)
from fswan.isakmp.payloads import (
    AttributePayload,
    CertPayload,
    CRPayload,
    DeletePayload,
    HashPayload,
    IDPayload,
    KEPayload,
    NATDPayload,
    NATOAPayload,
    NoncePayload,
    NotificationPayload,
    Proposal,
    SAPayload,
    SigPayload,
    Transform,
    FragmentPayload,
    UnknownPayload,
    VendorIDPayload,
    decode_payload,
)

ICOOKIE = bytes.fromhex("da8d2a71476ea3f0")
RCOOKIE = bytes.fromhex("77ebf0e5f83ae2ce")


# ---------------------------------------------------------------------------
# Payload vectors: ``body`` is the payload body after the generic header.


class PhaseOneSA:
    """capture: strongSwan's Main Mode offer, aes128-sha1-modp2048, PSK."""

    payload_type = PayloadType.SA
    body = (
        b"\x00\x00\x00\x01"  # DOI: IPsec
        b"\x00\x00\x00\x01"  # situation: SIT_IDENTITY_ONLY
        # -- proposal
        b"\x00"  # next: none, last proposal
        b"\x00"  # reserved
        b"\x00\x2c"  # proposal length 44
        b"\x01"  # proposal #1
        b"\x01"  # protocol: ISAKMP
        b"\x00"  # SPI size 0
        b"\x01"  # one transform
        # -- transform
        b"\x00"  # next: none, last transform
        b"\x00"  # reserved
        b"\x00\x24"  # transform length 36
        b"\x01"  # transform #1
        b"\x01"  # KEY_IKE
        b"\x00\x00"  # reserved2
        b"\x80\x01\x00\x07"  # TV encryption: AES-CBC
        b"\x80\x0e\x00\x80"  # TV key length: 128
        b"\x80\x02\x00\x02"  # TV hash: SHA1
        b"\x80\x04\x00\x0e"  # TV group: MODP2048
        b"\x80\x03\x00\x01"  # TV auth method: pre-shared key
        b"\x80\x0b\x00\x01"  # TV life type: seconds
        b"\x80\x0c\x3d\xe0"  # TV life duration: 15840
    )
    payload = SAPayload(
        [
            Proposal(
                1,
                ProtocolId.ISAKMP,
                b"",
                [
                    Transform(
                        1,
                        IsakmpTransformId.KEY_IKE,
                        [
                            Attribute(
                                OakleyAttr.OAKLEY_ENCRYPTION_ALGORITHM,
                                OakleyEncryption.OAKLEY_AES_CBC,
                            ),
                            Attribute(OakleyAttr.OAKLEY_KEY_LENGTH, 128),
                            Attribute(OakleyAttr.OAKLEY_HASH_ALGORITHM, OakleyHash.OAKLEY_SHA1),
                            Attribute(
                                OakleyAttr.OAKLEY_GROUP_DESCRIPTION,
                                OakleyGroup.OAKLEY_GROUP_MODP2048,
                            ),
                            Attribute(
                                OakleyAttr.OAKLEY_AUTHENTICATION_METHOD,
                                OakleyAuth.OAKLEY_PRESHARED_KEY,
                            ),
                            Attribute(
                                OakleyAttr.OAKLEY_LIFE_TYPE, OakleyLifeType.OAKLEY_LIFE_SECONDS
                            ),
                            Attribute(OakleyAttr.OAKLEY_LIFE_DURATION, 15840),
                        ],
                    )
                ],
            )
        ],
        DOI.IPSEC,
        Situation.SIT_IDENTITY_ONLY,
    )


class PhaseTwoSA:
    """capture (decrypted QM1): ESP aes128-sha1, UDP-encapsulated tunnel."""

    payload_type = PayloadType.SA
    body = (
        b"\x00\x00\x00\x01"  # DOI: IPsec
        b"\x00\x00\x00\x01"  # situation: SIT_IDENTITY_ONLY
        # -- proposal
        b"\x00\x00"  # next: none; reserved
        b"\x00\x28"  # proposal length 40
        b"\x01"  # proposal #1
        b"\x03"  # protocol: ESP
        b"\x04"  # SPI size 4
        b"\x01"  # one transform
        b"\x34\x00\xaa\x06"  # SPI 0x3400aa06
        # -- transform
        b"\x00\x00"  # next: none; reserved
        b"\x00\x1c"  # transform length 28
        b"\x01"  # transform #1
        b"\x0c"  # ESP_AES_CBC
        b"\x00\x00"  # reserved2
        b"\x80\x06\x00\x80"  # key length: 128
        b"\x80\x05\x00\x02"  # auth algorithm: HMAC-SHA1
        b"\x80\x04\x00\x03"  # encapsulation: UDP tunnel (RFC 3947)
        b"\x80\x01\x00\x01"  # SA life type: seconds
        b"\x80\x02\x0f\x78"  # SA life duration: 3960
    )
    payload = SAPayload(
        [
            Proposal(
                1,
                ProtocolId.ESP,
                bytes.fromhex("3400aa06"),
                [
                    Transform(
                        1,
                        EspTransformId.ESP_AES_CBC,
                        [
                            Attribute(IPsecAttr.KEY_LENGTH, 128),
                            Attribute(IPsecAttr.AUTH_ALGORITHM, AuthAlgorithm.HMAC_SHA1),
                            Attribute(IPsecAttr.ENCAPSULATION_MODE, EncapsulationMode.UDP_TUNNEL),
                            Attribute(IPsecAttr.SA_LIFE_TYPE, SALifeType.SA_LIFE_TYPE_SECONDS),
                            Attribute(IPsecAttr.SA_LIFE_DURATION, 3960),
                        ],
                    )
                ],
            )
        ]
    )


class TwoProposalsSA:
    """Two proposals (AH+ESP bundle as #1, ESP alone as #2), two transforms,
    a TLV lifetime and a kilobyte lifetime."""

    payload_type = PayloadType.SA
    body = (
        b"\x00\x00\x00\x01"  # DOI: IPsec
        b"\x00\x00\x00\x01"  # situation
        # -- proposal 1: AH
        b"\x02\x00"  # next: PROPOSAL; reserved
        b"\x00\x18"  # length 24
        b"\x01\x02\x04\x01"  # #1, AH, SPI size 4, one transform
        b"\x11\x11\x11\x11"  # SPI
        b"\x00\x00\x00\x0c"  # transform: last, length 12
        b"\x01\x03\x00\x00"  # #1, AH_SHA
        b"\x80\x05\x00\x02"  # auth algorithm: HMAC-SHA1
        # -- proposal 1: ESP (same number: bundled with the AH above)
        b"\x02\x00"  # next: PROPOSAL
        b"\x00\x28"  # length 40
        b"\x01\x03\x04\x02"  # #1, ESP, SPI size 4, two transforms
        b"\x22\x22\x22\x22"  # SPI
        b"\x03\x00\x00\x08"  # transform: next TRANSFORM, length 8
        b"\x01\x03\x00\x00"  # #1, ESP_3DES, no attributes
        b"\x00\x00\x00\x14"  # transform: last, length 20
        b"\x02\x14\x00\x00"  # #2, ESP_AES_GCM_16
        b"\x80\x06\x01\x00"  # key length 256
        b"\x00\x02\x00\x04\x00\x01\x51\x80"  # TLV SA life duration: 86400
        # -- proposal 2: ESP
        b"\x00\x00"  # next: none
        b"\x00\x1c"  # length 28
        b"\x02\x03\x04\x01"  # #2, ESP, SPI size 4, one transform
        b"\x33\x33\x33\x33"  # SPI
        b"\x00\x00\x00\x10"  # transform: last, length 16
        b"\x01\x0c\x00\x00"  # #1, ESP_AES_CBC
        b"\x80\x01\x00\x02"  # SA life type: kilobytes
        b"\x80\x05\x00\x05"  # auth algorithm: HMAC-SHA2-256
    )
    payload = SAPayload(
        [
            Proposal(
                1,
                ProtocolId.AH,
                b"\x11" * 4,
                [Transform(1, AhTransformId.AH_SHA, [Attribute(IPsecAttr.AUTH_ALGORITHM, 2)])],
            ),
            Proposal(
                1,
                ProtocolId.ESP,
                b"\x22" * 4,
                [
                    Transform(1, EspTransformId.ESP_3DES),
                    Transform(
                        2,
                        EspTransformId.ESP_AES_GCM_16,
                        [
                            Attribute(IPsecAttr.KEY_LENGTH, 256),
                            Attribute(IPsecAttr.SA_LIFE_DURATION, b"\x00\x01\x51\x80"),
                        ],
                    ),
                ],
            ),
            Proposal(
                2,
                ProtocolId.ESP,
                b"\x33" * 4,
                [
                    Transform(
                        1,
                        EspTransformId.ESP_AES_CBC,
                        [
                            Attribute(IPsecAttr.SA_LIFE_TYPE, SALifeType.SA_LIFE_TYPE_KBYTES),
                            Attribute(IPsecAttr.AUTH_ALGORITHM, AuthAlgorithm.HMAC_SHA2_256),
                        ],
                    )
                ],
            ),
        ]
    )


class KE:
    payload_type = PayloadType.KE
    body = bytes(range(1, 9))  # public DH value (8 bytes here; 256 for MODP2048)
    payload = KEPayload(bytes(range(1, 9)))


class Nonce:
    payload_type = PayloadType.NONCE
    body = b"\xaa" * 16  # Ni/Nr
    payload = NoncePayload(b"\xaa" * 16)


class Hash:
    payload_type = PayloadType.HASH
    body = b"\x01" * 20  # HASH_I (SHA1-sized)
    payload = HashPayload(b"\x01" * 20)


class Sig:
    payload_type = PayloadType.SIG
    body = b"\x5a" * 32  # RSA signature
    payload = SigPayload(b"\x5a" * 32)


class IdIPv4Addr:
    """capture (decrypted MM5): west's phase 1 ID."""

    payload_type = PayloadType.ID
    body = (
        b"\x01"  # ID_IPV4_ADDR
        b"\x00"  # protocol: any
        b"\x00\x00"  # port: any
        b"\xc0\x00\x02\x01"  # 192.0.2.1
    )
    payload = IDPayload.ipv4_addr("192.0.2.1")


class IdIPv4Subnet:
    """capture (decrypted QM1): west's client subnet."""

    payload_type = PayloadType.ID
    body = (
        b"\x04"  # ID_IPV4_ADDR_SUBNET
        b"\x00\x00\x00"  # protocol, port: any
        b"\xc6\x33\x64\x00"  # 198.51.100.0
        b"\xff\xff\xff\x80"  # 255.255.255.128
    )
    payload = IDPayload.ipv4_subnet("198.51.100.0/25")


class IdIPv4Range:
    payload_type = PayloadType.ID
    body = (
        b"\x07"  # ID_IPV4_ADDR_RANGE
        b"\x11"  # protocol: UDP
        b"\x01\xf4"  # port 500
        b"\xcb\x00\x71\x01"  # 203.0.113.1
        b"\xcb\x00\x71\x09"  # 203.0.113.9
    )
    payload = IDPayload.ipv4_range("203.0.113.1", "203.0.113.9", protocol=17, port=500)


class IdFQDN:
    """capture (aggressive mode message 1): @west."""

    payload_type = PayloadType.ID
    body = (
        b"\x02"  # ID_FQDN
        b"\x00\x00\x00"  # protocol, port
        b"west"  # name, no trailing dot, no NUL
    )
    payload = IDPayload.fqdn("west")


class IdUserFQDN:
    payload_type = PayloadType.ID
    body = b"\x03" b"\x00\x00\x00" b"roadwarrior@example.org"  # ID_USER_FQDN, name
    payload = IDPayload.user_fqdn("roadwarrior@example.org")


class IdIPv6Addr:
    payload_type = PayloadType.ID
    body = (
        b"\x05"  # ID_IPV6_ADDR
        b"\x00\x00\x00"  # protocol, port
        b"\x20\x01\x0d\xb8" + b"\x00" * 11 + b"\x01"  # 2001:db8::1
    )
    payload = IDPayload.ipv6_addr("2001:db8::1")


class IdIPv6Subnet:
    payload_type = PayloadType.ID
    body = (
        b"\x06"  # ID_IPV6_ADDR_SUBNET
        b"\x06"  # protocol: TCP
        b"\x00\x00"  # port: any
        b"\x20\x01\x0d\xb8\x00\x01" + b"\x00" * 10  # 2001:db8:1::
        + b"\xff" * 6 + b"\x00" * 10  # /48 mask
    )
    payload = IDPayload.ipv6_subnet("2001:db8:1::/48", protocol=6)


class Cert:
    payload_type = PayloadType.CERT
    body = b"\x04" b"\x30\x82\x01\x00"  # X.509 signature cert; DER (truncated here)
    payload = CertPayload(CertEncoding.CERT_X509_SIGNATURE, b"\x30\x82\x01\x00")


class CertRequest:
    payload_type = PayloadType.CR
    body = b"\x04"  # X.509 signature, any authority
    payload = CRPayload(CertEncoding.CERT_X509_SIGNATURE)


class InitialContact:
    """capture (decrypted MM5): N(INITIAL_CONTACT) with the cookies as SPI."""

    payload_type = PayloadType.NOTIFICATION
    body = (
        b"\x00\x00\x00\x01"  # DOI: IPsec
        b"\x01"  # protocol: ISAKMP
        b"\x10"  # SPI size 16
        b"\x60\x02"  # INITIAL_CONTACT (24578)
        + ICOOKIE  # SPI: CKY-I
        + RCOOKIE  # ... | CKY-R
    )
    payload = NotificationPayload(
        NotifyType.INITIAL_CONTACT, ProtocolId.ISAKMP, ICOOKIE + RCOOKIE
    )


class RUThere:
    """RFC 3706: R_U_THERE with the cookies and a 32-bit sequence number."""

    payload_type = PayloadType.NOTIFICATION
    body = (
        b"\x00\x00\x00\x01"  # DOI: IPsec
        b"\x01\x10"  # ISAKMP, SPI size 16
        b"\x8d\x28"  # R_U_THERE (36136)
        + ICOOKIE
        + RCOOKIE
        + b"\x00\x00\x30\x39"  # sequence number 12345
    )
    payload = NotificationPayload(
        NotifyType.R_U_THERE, ProtocolId.ISAKMP, ICOOKIE + RCOOKIE, b"\x00\x00\x30\x39"
    )


class NoProposalChosen:
    payload_type = PayloadType.NOTIFICATION
    body = (
        b"\x00\x00\x00\x01"  # DOI: IPsec
        b"\x03\x00"  # protocol ESP, no SPI
        b"\x00\x0e"  # NO_PROPOSAL_CHOSEN (14)
    )
    payload = NotificationPayload(NotifyType.NO_PROPOSAL_CHOSEN, ProtocolId.ESP)


class DeleteIsakmp:
    payload_type = PayloadType.DELETE
    body = (
        b"\x00\x00\x00\x01"  # DOI: IPsec
        b"\x01"  # protocol: ISAKMP
        b"\x10"  # SPI size 16
        b"\x00\x01"  # one SPI
        + ICOOKIE
        + RCOOKIE
    )
    payload = DeletePayload(ProtocolId.ISAKMP, [ICOOKIE + RCOOKIE])


class DeleteEsp:
    payload_type = PayloadType.DELETE
    body = (
        b"\x00\x00\x00\x01"  # DOI: IPsec
        b"\x03\x04"  # ESP, SPI size 4
        b"\x00\x02"  # two SPIs
        b"\x6e\x6d\xd9\xcc"  # SPI 1
        b"\x34\x00\xaa\x06"  # SPI 2
    )
    payload = DeletePayload(
        ProtocolId.ESP, [bytes.fromhex("6e6dd9cc"), bytes.fromhex("3400aa06")]
    )


class VendorRFC3947:
    payload_type = PayloadType.VENDOR_ID
    body = bytes.fromhex("4a131c81070358455c5728f20e95452f")  # MD5("RFC 3947")
    payload = VendorIDPayload.of(KnownVendor.NATT_RFC3947)


class NatD:
    """capture (MM3): the destination NAT-D hash."""

    payload_type = PayloadType.NAT_D
    body = bytes.fromhex("60858c1594ed335af95e83fb60603f7ab158f0f8")  # SHA1
    payload = NATDPayload(bytes.fromhex("60858c1594ed335af95e83fb60603f7ab158f0f8"))


class NatDDraft:
    payload_type = PayloadType.NAT_D_DRAFT  # 130, draft-ietf-ipsec-nat-t-ike-02/03
    body = b"\x42" * 16  # MD5-sized hash
    payload = NATDPayload(b"\x42" * 16, draft=True)


class NatOA:
    payload_type = PayloadType.NAT_OA
    body = (
        b"\x01"  # ID_IPV4_ADDR
        b"\x00\x00\x00"  # reserved
        b"\xc0\xa8\x01\x02"  # 192.168.1.2
    )
    payload = NATOAPayload(IPv4Address("192.168.1.2"))


class NatOADraftV6:
    payload_type = PayloadType.NAT_OA_DRAFT
    body = b"\x05" b"\x00\x00\x00" + IPv6Address("fd00::2").packed  # ID_IPV6_ADDR
    payload = NATOAPayload(IPv6Address("fd00::2"), draft=True)


class Fragment:
    payload_type = PayloadType.FRAGMENT  # 132: strongSwan/Libreswan/Cisco IKE fragments
    body = (
        b"\x00\x01"  # fragment ID 1 (what strongSwan and Libreswan always send)
        b"\x02"  # fragment number 2
        b"\x01"  # flags: LAST
        b"\xde\xad\xbe\xef"  # a piece of the original message
    )
    payload = FragmentPayload(1, 2, True, b"\xde\xad\xbe\xef")


class Unknown:
    payload_type = 77  # not assigned in IKEv1
    body = b"\x01\x02\x03"
    payload = UnknownPayload(77, b"\x01\x02\x03")


class ModeConfigAttribute:
    # an XAUTH request: XAUTH_TYPE generic (TV), empty USER_NAME and USER_PASSWORD (TLV)
    payload_type = PayloadType.ATTRIBUTE
    body = bytes.fromhex("01000007" "c0880000" "40890000" "408a0000")
    payload = AttributePayload(CfgType.ISAKMP_CFG_REQUEST, 7, (
        Attribute(CfgAttr.XAUTH_TYPE, 0), Attribute(CfgAttr.XAUTH_USER_NAME, b""),
        Attribute(CfgAttr.XAUTH_USER_PASSWORD, b"")))


PAYLOAD_VECTORS = [
    PhaseOneSA,
    PhaseTwoSA,
    TwoProposalsSA,
    KE,
    Nonce,
    Hash,
    Sig,
    IdIPv4Addr,
    IdIPv4Subnet,
    IdIPv4Range,
    IdFQDN,
    IdUserFQDN,
    IdIPv6Addr,
    IdIPv6Subnet,
    Cert,
    CertRequest,
    InitialContact,
    RUThere,
    NoProposalChosen,
    DeleteIsakmp,
    DeleteEsp,
    VendorRFC3947,
    NatD,
    NatDDraft,
    NatOA,
    NatOADraftV6,
    Fragment,
    Unknown,
    ModeConfigAttribute,
]


@pytest.mark.parametrize("vector", PAYLOAD_VECTORS, ids=lambda v: v.__name__)
class TestPayloadVectors:
    def test_decode(self, vector):
        decoded = decode_payload(vector.payload_type, vector.body)
        assert decoded == vector.payload
        assert type(decoded) is type(vector.payload)
        assert decoded.payload_type == vector.payload_type
        assert decoded.raw == vector.body

    def test_encode(self, vector):
        assert vector.payload.encode() == vector.body

    def test_wire_body(self, vector):
        """Built payloads hash their encoding; decoded ones what was received."""
        assert vector.payload.wire_body == vector.body
        assert decode_payload(vector.payload_type, vector.body).wire_body == vector.body


class TestFragmentPayload:
    """IKE fragments: strict where a wrong value would corrupt a reassembly."""

    def test_number_zero_is_malformed(self):
        with pytest.raises(MalformedPacket, match="fragment number 0"):
            decode_payload(PayloadType.FRAGMENT, b"\x00\x01\x00\x01data")

    @pytest.mark.parametrize("body", [b"", b"\x00", b"\x00\x01\x01"])
    def test_short_body_is_malformed(self, body):
        with pytest.raises(MalformedPacket, match="IKE fragment payload body"):
            decode_payload(PayloadType.FRAGMENT, body)

    def test_unknown_flags_ignored(self):
        payload = decode_payload(PayloadType.FRAGMENT, b"\x00\x07\x03\xfex")
        assert payload == FragmentPayload(7, 3, False, b"x")
        assert payload.encode() == b"\x00\x07\x03\x00x"

    def test_empty_piece_decodes(self):
        # the reassembler, not the codec, refuses pieces that carry nothing
        assert decode_payload(PayloadType.FRAGMENT, b"\x00\x01\x01\x01") == FragmentPayload(
            1, 1, True, b""
        )

    @pytest.mark.parametrize("fields", [(-1, 1), (0x10000, 1), (1, 0), (1, 256)])
    def test_encode_refuses_out_of_range(self, fields):
        with pytest.raises(ValueError):
            FragmentPayload(fields[0], fields[1], False, b"x").encode()

    def test_in_a_message(self):
        header = Header(b"\x11" * 8, b"\x22" * 8, ExchangeType.MAIN_MODE)
        data = Message(header, (FragmentPayload(1, 1, False, b"abc"),)).encode()
        assert data[16] == 132 and len(data) == 28 + 8 + 3
        assert decode_message(data).payloads == (FragmentPayload(1, 1, False, b"abc"),)


class TestDecodedValuesAreNamed:
    """Decoded numbers become enum members so logs print names."""

    def test_phase1_transform(self):
        sa = SAPayload.decode(PhaseOneSA.body)
        transform = sa.proposals[0].transforms[0]
        assert str(transform.id) == "KEY_IKE"
        names = [f"{a.type}={a.value}" for a in transform.attributes]
        assert names == [
            "OAKLEY_ENCRYPTION_ALGORITHM=OAKLEY_AES_CBC",
            "OAKLEY_KEY_LENGTH=128",
            "OAKLEY_HASH_ALGORITHM=OAKLEY_SHA1",
            "OAKLEY_GROUP_DESCRIPTION=OAKLEY_GROUP_MODP2048",
            "OAKLEY_AUTHENTICATION_METHOD=OAKLEY_PRESHARED_KEY",
            "OAKLEY_LIFE_TYPE=OAKLEY_LIFE_SECONDS",
            "OAKLEY_LIFE_DURATION=15840",
        ]
        assert transform.value(OakleyAttr.OAKLEY_LIFE_DURATION) == 15840
        assert transform.value(OakleyAttr.OAKLEY_PRF) is None

    def test_phase2_transform(self):
        transform = SAPayload.decode(PhaseTwoSA.body).proposals[0].transforms[0]
        assert str(transform.id) == "ESP_AES_CBC"
        assert str(transform.attribute(IPsecAttr.ENCAPSULATION_MODE).value) == (
            "ENCAPSULATION_MODE_UDP_TUNNEL_RFC"
        )
        assert str(SAPayload.decode(PhaseTwoSA.body).proposals[0].protocol) == "PROTO_IPSEC_ESP"

    def test_tlv_lifetime_reads_as_number(self):
        transform = SAPayload.decode(TwoProposalsSA.body).proposals[1].transforms[1]
        assert transform.value(IPsecAttr.SA_LIFE_DURATION) == 86400

    def test_unknown_numbers_stay_ints(self):
        body = bytearray(PhaseTwoSA.body)
        body[25] = 0xEE  # transform ID nobody assigned
        transform = SAPayload.decode(bytes(body)).proposals[0].transforms[0]
        assert transform.id == 0xEE and type(transform.id) is int
        assert name_of(transform.id) == "238"


# ---------------------------------------------------------------------------
# Attributes


class TestAttributes:
    def test_tv(self):
        assert Attribute(1, 7).encode() == b"\x80\x01\x00\x07"
        assert decode_attributes(b"\x80\x01\x00\x07") == [Attribute(1, 7)]

    def test_tlv_bytes_kept(self):
        data = b"\x00\x0c\x00\x02\x3d\xe0"  # TLV life duration, 2 bytes
        (attribute,) = decode_attributes(data)
        assert attribute == Attribute(12, b"\x3d\xe0")
        assert attribute.integer == 15840
        assert attribute.encode() == data  # the form survives a round trip

    def test_large_int_becomes_4_byte_tlv(self):
        assert Attribute(12, 86400).encode() == b"\x00\x0c\x00\x04\x00\x01\x51\x80"
        assert Attribute(12, 1 << 40).encode() == b"\x00\x0c\x00\x08" + (1 << 40).to_bytes(8, "big")

    def test_empty_tlv(self):
        assert decode_attributes(b"\x00\x10\x00\x00") == [Attribute(16, b"")]
        assert Attribute(16, b"").integer == 0

    def test_several(self):
        attributes = [Attribute(1, 5), Attribute(6, b"\x01\x02\x03"), Attribute(2, 1)]
        assert decode_attributes(encode_attributes(attributes)) == attributes

    def test_truncated_header(self):
        with pytest.raises(MalformedPacket, match="attribute header needs 4 bytes, 3 left in transform 1"):
            decode_attributes(b"\x80\x01\x00", "transform 1")

    def test_tlv_overflow(self):
        with pytest.raises(MalformedPacket, match="attribute 12 length 8 exceeds remaining 4 bytes"):
            decode_attributes(b"\x00\x0c\x00\x08\x00\x00\x00\x01")

    def test_construction_checks(self):
        with pytest.raises(ValueError):
            Attribute(0x8001, 1)
        with pytest.raises(ValueError):
            Attribute(1, -1)


# ---------------------------------------------------------------------------
# ID helpers


class TestIdHelpers:
    def test_readers(self):
        assert IdIPv4Addr.payload.address == IPv4Address("192.0.2.1")
        assert IdIPv4Addr.payload.network == IPv4Network("192.0.2.1/32")
        assert IdIPv4Subnet.payload.network == IPv4Network("198.51.100.0/25")
        assert IdIPv6Subnet.payload.network == IPv6Network("2001:db8:1::/48")
        assert IdIPv4Range.payload.range == (IPv4Address("203.0.113.1"), IPv4Address("203.0.113.9"))
        assert IdFQDN.payload.text == "west"

    def test_str_like_pluto(self):
        assert str(IdIPv4Addr.payload) == "192.0.2.1"
        assert str(IdIPv4Subnet.payload) == "198.51.100.0/25"
        assert str(IdIPv4Range.payload) == "203.0.113.1-203.0.113.9"
        assert str(IdFQDN.payload) == "@west"
        assert str(IdUserFQDN.payload) == "roadwarrior@example.org"
        assert str(IdIPv6Addr.payload) == "2001:db8::1"
        assert str(IDPayload(IdType.ID_KEY_ID, b"\x01\x02")) == "ID_KEY_ID:0102"

    def test_from_address_and_network(self):
        assert IDPayload.from_address("192.0.2.1") == IdIPv4Addr.payload
        assert IDPayload.from_address("2001:db8::1") == IdIPv6Addr.payload
        assert IDPayload.from_network("198.51.100.0/25") == IdIPv4Subnet.payload
        assert IDPayload.from_network("2001:db8:1::/48", protocol=6) == IdIPv6Subnet.payload

    def test_host_bits_cleared_like_pluto(self):
        payload = IDPayload.decode(b"\x04\x00\x00\x00" b"\xc6\x33\x64\x05" b"\xff\xff\xff\x80")
        assert payload.network == IPv4Network("198.51.100.0/25")

    def test_wrong_reader(self):
        with pytest.raises(TypeError):
            IdFQDN.payload.address


# ---------------------------------------------------------------------------
# Header and messages


class MainModeOneHeader:
    """capture: the header of Main Mode message 1."""

    data = (
        ICOOKIE  # initiator cookie
        + b"\x00" * 8  # responder cookie: not yet known
        + b"\x01"  # next payload: SA
        b"\x10"  # version 1.0
        b"\x02"  # exchange: Identity Protection (Main Mode)
        b"\x00"  # flags: none
        b"\x00\x00\x00\x00"  # message ID 0
        b"\x00\x00\x00\xb4"  # length 180
    )
    header = Header(
        ICOOKIE,
        bytes(8),
        ExchangeType.MAIN_MODE,
        Flags.NONE,
        0,
        PayloadType.SA,
        180,
    )


class QuickModeHeader:
    """capture: Quick Mode message 1 (encrypted, 192 bytes after the marker)."""

    data = (
        ICOOKIE
        + RCOOKIE
        + b"\x08"  # next payload: HASH (first payload inside the ciphertext)
        b"\x10"  # version 1.0
        b"\x20"  # exchange: Quick Mode
        b"\x01"  # flags: encryption
        b"\xa3\x94\x6d\x91"  # message ID
        b"\x00\x00\x00\xbc"  # length 188
    )
    header = Header(
        ICOOKIE,
        RCOOKIE,
        ExchangeType.QUICK_MODE,
        Flags.ENCRYPTION,
        0xA3946D91,
        PayloadType.HASH,
        188,
    )


@pytest.mark.parametrize("vector", [MainModeOneHeader, QuickModeHeader], ids=lambda v: v.__name__)
def test_header_vectors(vector):
    assert decode_header(vector.data, check_length=False) == vector.header
    assert vector.header.encode() == vector.data


class InformationalDelete:
    """A whole cleartext message: Informational carrying one Delete."""

    data = (
        ICOOKIE
        + RCOOKIE
        + b"\x0c"  # next payload: Delete
        b"\x10"  # version 1.0
        b"\x05"  # exchange: Informational
        b"\x00"  # flags
        b"\x12\x34\x56\x78"  # message ID
        b"\x00\x00\x00\x38"  # length 56 = 28 + 28
        # -- Delete payload
        b"\x00\x00"  # next: none; reserved
        b"\x00\x1c"  # length 28
        + DeleteIsakmp.body[:-16]
        + ICOOKIE
        + RCOOKIE
    )
    message = Message(
        Header(ICOOKIE, RCOOKIE, ExchangeType.INFORMATIONAL, Flags.NONE, 0x12345678),
        [DeleteIsakmp.payload],
    )


class TestMessages:
    def test_decode(self):
        message = decode_message(InformationalDelete.data)
        assert message.header.length == 56
        assert message.header.next_payload == PayloadType.DELETE
        assert message.payloads == (DeleteIsakmp.payload,)
        assert message.encrypted_body is None

    def test_encode_fills_in_next_payload_and_length(self):
        assert InformationalDelete.message.encode() == InformationalDelete.data

    def test_chain_order_and_next_fields(self):
        payloads = [Hash.payload, InitialContact.payload, VendorRFC3947.payload]
        chain = encode_payloads(payloads)
        assert chain[0] == PayloadType.NOTIFICATION  # HASH says: next is N
        assert chain[24] == PayloadType.VENDOR_ID  # N says: next is VID
        assert decode_payloads(PayloadType.HASH, chain) == payloads

    def test_encrypted_message(self):
        body = bytes(range(32))
        header = Header(ICOOKIE, RCOOKIE, ExchangeType.QUICK_MODE, Flags.NONE, 7, PayloadType.HASH)
        data = Message(header, encrypted_body=body).encode()
        assert data[19] == Flags.ENCRYPTION  # E flag set by encode
        message = decode_message(data)
        assert message.encrypted and message.encrypted_body == body
        assert message.header.next_payload == PayloadType.HASH
        assert message.header.length == 28 + 32
        assert message.payloads == ()

    def test_padding_tolerated_in_decrypted_bodies(self):
        chain = encode_payloads([Hash.payload]) + b"\x00" * 11 + b"\x0b"  # RFC 2409 style
        assert decode_payloads(PayloadType.HASH, chain) == [Hash.payload]

    def test_padding_rejected_in_cleartext(self):
        data = InformationalDelete.data + b"\x00\x00\x00\x00"
        data = data[:24] + len(data).to_bytes(4, "big") + data[28:]
        with pytest.raises(MalformedPacket, match="4 bytes after the last payload"):
            decode_message(data)

    def test_empty_message(self):
        message = Message(Header(ICOOKIE, RCOOKIE, ExchangeType.INFORMATIONAL))
        assert decode_message(message.encode()) == message

    def test_find(self):
        message = decode_message(InformationalDelete.data)
        assert message.find(DeletePayload) == DeleteIsakmp.payload
        assert message.find(HashPayload) is None
        assert message.find_all(DeletePayload) == [DeleteIsakmp.payload]
        assert message.payload_types == [PayloadType.DELETE]

    def test_inconsistent_encrypted_message(self):
        header = Header(ICOOKIE, RCOOKIE, flags=Flags.ENCRYPTION)
        with pytest.raises(ValueError):
            Message(header, [Hash.payload]).encode()


# ---------------------------------------------------------------------------
# Errors: every decoder raises MalformedPacket with a precise message.


def _datagram(first: int, body: bytes, flags: int = 0, version: int = 0x10) -> bytes:
    return (
        ICOOKIE
        + RCOOKIE
        + bytes([first, version, ExchangeType.MAIN_MODE, flags])
        + b"\x00\x00\x00\x00"
        + (28 + len(body)).to_bytes(4, "big")
        + body
    )


class TestMalformed:
    def test_payload_length_exceeds_remaining(self):
        body = b"\x00\x00\x01\x2c" + b"\x00" * 116  # SA payload claiming 300 bytes
        with pytest.raises(MalformedPacket) as info:
            decode_message(_datagram(PayloadType.SA, body))
        assert str(info.value) == "payload length 300 exceeds remaining 120 bytes in SA payload"
        assert info.value.notify == NotifyType.PAYLOAD_MALFORMED

    def test_ikev2(self):
        with pytest.raises(MalformedPacket) as info:
            decode_message(_datagram(33, b"", version=0x20))
        assert str(info.value) == "ISAKMP version 2.0 not supported"
        assert info.value.notify == NotifyType.INVALID_MAJOR_VERSION

    def test_minor_version(self):
        with pytest.raises(MalformedPacket, match=r"ISAKMP version 1\.1 not supported") as info:
            decode_message(_datagram(0, b"", version=0x11))
        assert info.value.notify == NotifyType.INVALID_MINOR_VERSION

    def test_header_length_mismatch(self):
        data = _datagram(PayloadType.VENDOR_ID, b"\x00\x00\x00\x04" + b"\x00" * 148)
        data = data[:24] + (200).to_bytes(4, "big") + data[28:]
        with pytest.raises(MalformedPacket) as info:
            decode_message(data)
        assert str(info.value) == "header length 200 != datagram length 180"

    def test_header_length_below_28(self):
        data = _datagram(0, b"")[:24] + (20).to_bytes(4, "big")
        with pytest.raises(MalformedPacket, match="header length 20 is less than the 28-byte header"):
            decode_message(data)

    def test_short_datagram(self):
        message = "datagram of 10 bytes is shorter than the 28-byte ISAKMP header"
        with pytest.raises(MalformedPacket, match=message):
            decode_message(b"\x00" * 10)

    def test_generic_header_too_short(self):
        message = "payload length 3 is less than the 4-byte generic header in Vendor ID payload"
        with pytest.raises(MalformedPacket, match=message):
            decode_message(_datagram(PayloadType.VENDOR_ID, b"\x00\x00\x00\x03"))

    def test_truncated_generic_header(self):
        with pytest.raises(MalformedPacket, match="Nonce payload header needs 4 bytes, 2 left"):
            decode_message(_datagram(PayloadType.NONCE, b"\x00\x00"))

    def test_chain_announces_missing_payload(self):
        body = b"\x0a\x00\x00\x08" b"\x01\x02\x03\x04"  # VID says a Nonce follows
        with pytest.raises(MalformedPacket, match="Nonce payload header needs 4 bytes, 0 left"):
            decode_message(_datagram(PayloadType.VENDOR_ID, body))

    def test_empty_encrypted_body(self):
        with pytest.raises(MalformedPacket, match="encrypted message has an empty body"):
            decode_message(_datagram(PayloadType.HASH, b"", flags=1))

    def test_proposal_at_top_level(self):
        with pytest.raises(MalformedPacket, match="Proposal payload outside an SA payload") as info:
            decode_payload(PayloadType.PROPOSAL, b"\x01\x01\x00\x00")
        assert info.value.notify == NotifyType.INVALID_PAYLOAD_TYPE

    @pytest.mark.parametrize(
        "body, message",
        [
            (PhaseOneSA.body[:6], "SA payload body is 6 bytes, needs at least 8"),
            (PhaseOneSA.body[:8], "SA payload contains no proposal"),
            (
                PhaseOneSA.body[:10] + b"\x00\x40" + PhaseOneSA.body[12:],
                "proposal length 64 exceeds remaining 44 bytes in SA payload",
            ),
            (
                PhaseOneSA.body[:10] + b"\x00\x02" + PhaseOneSA.body[12:],
                "proposal length 2 is less than its 4-byte header in SA payload",
            ),
            (
                PhaseOneSA.body + b"\x00\x00",
                "2 bytes after the last proposal in SA payload",
            ),
            (
                b"\x00\x00\x00\x01\x00\x00\x00\x01\x05" + PhaseOneSA.body[9:],
                "proposal next payload 5 is neither 0 nor 2 in SA payload",
            ),
            (
                PhaseOneSA.body[:15] + b"\x02" + PhaseOneSA.body[16:],
                "proposal 1 announces 2 transforms but holds 1",
            ),
            (
                PhaseOneSA.body[:14] + b"\x40" + PhaseOneSA.body[15:],
                "SPI size 64 exceeds remaining 36 bytes in proposal 1",
            ),
            (
                PhaseOneSA.body[:18] + b"\x00\x30" + PhaseOneSA.body[20:],
                "transform length 48 exceeds remaining 36 bytes in proposal 1",
            ),
            (
                PhaseOneSA.body[:18] + b"\x00\x23" + PhaseOneSA.body[20:],
                "1 bytes after the last transform in proposal 1",
            ),
            (
                PhaseOneSA.body[:8]
                + b"\x00\x00\x00\x0e\x01\x01\x00\x01"  # proposal of 14 bytes
                + b"\x00\x00\x00\x06\x01\x01",  # transform of 6 bytes
                "transform body is 2 bytes, needs at least 4",
            ),
        ],
        ids=lambda v: v if isinstance(v, str) else "",
    )
    def test_sa_structure(self, body, message):
        with pytest.raises(MalformedPacket, match=message):
            SAPayload.decode(body)

    def test_attribute_overflows_transform(self):
        body = bytearray(PhaseOneSA.body)
        body[-4:] = b"\x00\x0c\x00\x10"  # life duration turned into a 16-byte TLV
        message = "attribute 12 length 16 exceeds remaining 0 bytes in transform 1"
        with pytest.raises(MalformedPacket, match=message):
            SAPayload.decode(bytes(body))

    def test_secrecy_situation(self):
        body = PhaseOneSA.body[:4] + b"\x00\x00\x00\x03" + PhaseOneSA.body[8:]
        with pytest.raises(MalformedPacket, match="situation 0x3") as info:
            SAPayload.decode(body)
        assert info.value.notify == NotifyType.SITUATION_NOT_SUPPORTED

    @pytest.mark.parametrize(
        "body, message",
        [
            (b"\x01\x00\x00", "ID payload body is 3 bytes, needs at least 4"),
            (b"\x01\x00\x00\x00\xc0\x00\x02", "ID_IPV4_ADDR data is 3 bytes, expected 4 in ID payload"),
            (b"\x04\x00\x00\x00\xc0\x00\x02\x00", "ID_IPV4_ADDR_SUBNET data is 4 bytes, expected 8"),
            (b"\x05\x00\x00\x00" + b"\x00" * 4, "ID_IPV6_ADDR data is 4 bytes, expected 16"),
            (b"\x06\x00\x00\x00" + b"\x00" * 16, "ID_IPV6_ADDR_SUBNET data is 16 bytes, expected 32"),
            (
                b"\x04\x00\x00\x00\xc6\x33\x64\x00\xff\x00\xff\x00",
                "ID_IPV4_ADDR_SUBNET netmask 255.0.255.0 is not contiguous",
            ),
            (
                b"\x07\x00\x00\x00\x0a\x00\x00\x09\x0a\x00\x00\x01",
                "ID_IPV4_ADDR_RANGE 10.0.0.9-10.0.0.1 ends before it starts",
            ),
            (b"\x02\x00\x00\x00", "ID_FQDN is empty"),
        ],
    )
    def test_id(self, body, message):
        with pytest.raises(MalformedPacket, match=message) as info:
            IDPayload.decode(body)
        if "needs at least" not in message:
            assert info.value.notify == NotifyType.INVALID_ID_INFORMATION

    @pytest.mark.parametrize(
        "payload_type, body, message",
        [
            (
                PayloadType.NOTIFICATION,
                b"\x00\x00\x00\x01\x01\x10\x60",
                "Notification payload body is 7 bytes, needs at least 8",
            ),
            (
                PayloadType.NOTIFICATION,
                b"\x00\x00\x00\x01\x01\x10\x60\x02" + b"\x00" * 8,
                "SPI size 16 exceeds remaining 8 bytes in Notification payload",
            ),
            (PayloadType.DELETE, b"\x00\x00\x00\x01\x03\x04\x00", "Delete payload body is 7 bytes"),
            (
                PayloadType.DELETE,
                b"\x00\x00\x00\x01\x03\x04\x00\x02\x01\x02\x03\x04",
                "2 SPIs of 4 bytes need 8 bytes, Delete payload has 4",
            ),
            (PayloadType.NAT_OA, b"\x01\x00\x00", "NAT-OA payload body is 3 bytes"),
            (PayloadType.NAT_OA, b"\x02\x00\x00\x00host", "NAT-OA ID type ID_FQDN is neither"),
            (
                PayloadType.NAT_OA,
                b"\x01\x00\x00\x00\x01\x02",
                "ID_IPV4_ADDR data is 2 bytes, expected 4 in NAT-OA payload",
            ),
            (PayloadType.KE, b"", "KE payload is empty"),
            (PayloadType.NONCE, b"", "Nonce payload is empty"),
            (PayloadType.HASH, b"", "HASH payload is empty"),
            (PayloadType.NAT_D, b"", "NAT-D payload is empty"),
            (PayloadType.CERT, b"", "CERT payload body is 0 bytes, needs at least 1"),
            (PayloadType.CR, b"", "CR payload body is 0 bytes, needs at least 1"),
        ],
    )
    def test_other_payloads(self, payload_type, body, message):
        with pytest.raises(MalformedPacket, match=message):
            decode_payload(payload_type, body)

    def test_repr_and_reason(self):
        error = MalformedPacket("boom", NotifyType.INVALID_SPI)
        assert error.reason == "boom" and str(error) == "boom"
        assert repr(error) == "MalformedPacket('boom', notify=INVALID_SPI)"


class TestReservedFieldsTolerated:
    """RFC 2408 says reserved fields MUST be zero; pluto and we just ignore them."""

    def test_generic_header_reserved(self):
        body = b"\x00\xff\x00\x14" + VendorRFC3947.body
        (payload,) = decode_payloads(PayloadType.VENDOR_ID, body)
        assert payload == VendorRFC3947.payload

    def test_transform_reserved(self):
        body = bytearray(PhaseOneSA.body)
        body[9] = 0x55  # proposal generic header reserved
        body[17] = 0x66  # transform generic header reserved
        body[22:24] = b"\x12\x34"  # transform reserved2
        assert SAPayload.decode(bytes(body)) == PhaseOneSA.payload

    def test_nat_oa_reserved(self):
        assert NATOAPayload.decode(b"\x01\x01\x02\x03\xc0\xa8\x01\x02") == NatOA.payload


# ---------------------------------------------------------------------------
# NAT-T framing (RFC 3948)


class TestNattFraming:
    def test_marker(self):
        ike = InformationalDelete.data
        assert NON_ESP_MARKER == b"\0\0\0\0"
        framed = add_non_esp_marker(ike)
        assert framed == b"\0\0\0\0" + ike
        assert strip_non_esp_marker(framed) == ike

    def test_esp(self):
        esp = bytes.fromhex("6e6dd9cc00000001") + b"\x00" * 32  # SPI, sequence, ...
        assert strip_non_esp_marker(esp) is None

    def test_keepalive(self):
        assert NATT_KEEPALIVE == b"\xff"
        assert is_natt_keepalive(b"\xff")
        assert not is_natt_keepalive(b"\xff\xff")
        assert not is_natt_keepalive(b"\x00\x00\x00\x00")

    def test_too_short(self):
        message = "datagram of 1 bytes on the NAT-T port is neither IKE nor ESP"
        with pytest.raises(MalformedPacket, match=message):
            strip_non_esp_marker(b"\xff")


class TestClassifyNatt:
    """RFC 3948's sorting of a NAT-T port datagram, edge by edge."""

    @pytest.mark.parametrize("datagram, kind", [
        (b"\xff", NattKind.KEEPALIVE),
        (b"\0\0\0\0" + InformationalDelete.data, NattKind.IKE),
        # the marker alone, or with a truncated header: still IKE, for the decoder to refuse
        (b"\0\0\0\0", NattKind.IKE),
        (b"\0\0\0\0\x01", NattKind.IKE),
        # SPI + sequence number is the least ESP there is
        (bytes.fromhex("6e6dd9cc00000001"), NattKind.ESP),
        (bytes.fromhex("6e6dd9cc00000001") + b"\x00" * 32, NattKind.ESP),
        (b"\x00\x00\x00\x01" + b"\x00" * 4, NattKind.ESP),  # the smallest non-zero SPI
        (b"\xff" * 8, NattKind.ESP),
        # neither: too short for ESP, no marker, not one 0xff
        (b"", NattKind.MALFORMED),
        (b"\xff\xff", NattKind.MALFORMED),
        (b"\0\0\0", NattKind.MALFORMED),
        (b"\x6e\x6d\xd9\xcc", NattKind.MALFORMED),
        (bytes.fromhex("6e6dd9cc000000"), NattKind.MALFORMED),
    ])
    def test_kinds(self, datagram, kind):
        assert classify_natt(datagram) is kind
        assert classify_natt(bytearray(datagram)) is kind
        assert classify_natt(memoryview(datagram)) is kind

    @given(st.binary(max_size=40))
    def test_agrees_with_the_framing_helpers(self, datagram):
        kind = classify_natt(datagram)
        assert (kind is NattKind.KEEPALIVE) == is_natt_keepalive(datagram)
        if kind is NattKind.IKE:
            assert strip_non_esp_marker(datagram) == datagram[4:]
        elif kind is NattKind.ESP:
            assert strip_non_esp_marker(datagram) is None
            assert int.from_bytes(datagram[:4], "big") != 0


# ---------------------------------------------------------------------------
# Constants: numbers and vendor IDs are facts worth pinning down.


class TestConstants:
    def test_numbers_from_the_rfcs(self):
        assert (PayloadType.NAT_D, PayloadType.NAT_OA) == (20, 21)
        assert (PayloadType.NAT_D_DRAFT, PayloadType.NAT_OA_DRAFT) == (130, 131)
        assert NotifyType.INITIAL_CONTACT == 24578
        assert (NotifyType.R_U_THERE, NotifyType.R_U_THERE_ACK) == (36136, 36137)
        esp = EspTransformId
        assert (esp.ESP_3DES, esp.ESP_AES_CBC, esp.ESP_AES_GCM_16) == (3, 12, 20)
        assert OakleyEncryption.OAKLEY_DES_CBC == 1 and OakleyEncryption.OAKLEY_AES_CBC == 7
        assert (OakleyAuth.OAKLEY_PRESHARED_KEY, OakleyAuth.OAKLEY_RSA_SIG) == (1, 3)
        assert (EncapsulationMode.UDP_TUNNEL, EncapsulationMode.UDP_TRANSPORT) == (3, 4)
        assert (EncapsulationMode.UDP_TUNNEL_DRAFT, EncapsulationMode.UDP_TRANSPORT_DRAFT) == (61443, 61444)
        assert (AuthAlgorithm.HMAC_SHA1, AuthAlgorithm.HMAC_SHA2_256) == (2, 5)
        assert (ExchangeType.MAIN_MODE, ExchangeType.AGGRESSIVE, ExchangeType.QUICK_MODE) == (2, 4, 32)
        assert (Flags.ENCRYPTION, Flags.COMMIT, Flags.AUTHENTICATION_ONLY) == (1, 2, 4)
        assert DOI.IPSEC == 1 and IsakmpTransformId.KEY_IKE == 1

    def test_names_print(self):
        assert str(OakleyEncryption.OAKLEY_AES_CBC) == "OAKLEY_AES_CBC"
        assert f"{OakleyEncryption.OAKLEY_AES_CBC}" == "OAKLEY_AES_CBC"
        assert f"{OakleyEncryption.OAKLEY_AES_CBC:d}" == "7"
        assert f"{NotifyType.R_U_THERE:>12}" == "   R_U_THERE"
        assert str(ExchangeType.MAIN_MODE) == "ISAKMP_XCHG_IDPROT"
        assert name_of(EspTransformId.ESP_3DES) == "ESP_3DES" and name_of(99) == "99"
        assert coerce(OakleyHash, 2) is OakleyHash.OAKLEY_SHA1 and coerce(OakleyHash, 99) == 99

    def test_notify_classes(self):
        assert NotifyType.NO_PROPOSAL_CHOSEN.is_error
        assert not NotifyType.INITIAL_CONTACT.is_error
        assert NoProposalChosen.payload.is_error and not RUThere.payload.is_error

    @pytest.mark.parametrize(
        "vendor, text",
        [
            (KnownVendor.NATT_RFC3947, b"RFC 3947"),
            (KnownVendor.NATT_DRAFT_00, b"draft-ietf-ipsec-nat-t-ike-00"),
            (KnownVendor.NATT_DRAFT_01, b"draft-ietf-ipsec-nat-t-ike-01"),
            (KnownVendor.NATT_DRAFT_02, b"draft-ietf-ipsec-nat-t-ike-02"),
            (KnownVendor.NATT_DRAFT_02_N, b"draft-ietf-ipsec-nat-t-ike-02\n"),
            (KnownVendor.NATT_DRAFT_03, b"draft-ietf-ipsec-nat-t-ike-03"),
            (KnownVendor.FRAGMENTATION, b"FRAGMENTATION"),
        ],
    )
    def test_vendor_ids_are_md5_of_their_names(self, vendor, text):
        assert vendor.value == hashlib.md5(text).digest()

    def test_truncated_vendor_ids(self):
        """DPD, Unity and XAuth: a truncated MD5 plus a version suffix."""
        xauth = hashlib.md5(b"draft-ietf-ipsra-isakmp-xauth-06.txt").digest()[:8]
        assert KnownVendor.XAUTH.value == xauth
        assert KnownVendor.CISCO_UNITY.value == hashlib.md5(b"CISCO-UNITY").digest()[:14] + b"\x01\x00"
        assert KnownVendor.DPD.value == bytes.fromhex("afcad71368a1f1c96b8696fc77570100")

    def test_identify_vendor(self):
        assert identify_vendor(KnownVendor.DPD.value) is KnownVendor.DPD
        fragmentation = KnownVendor.FRAGMENTATION.value
        assert identify_vendor(fragmentation) is KnownVendor.FRAGMENTATION
        assert identify_vendor(fragmentation + b"\x80\x00\x00\x00") is KnownVendor.FRAGMENTATION
        assert identify_vendor(b"strongSwan") is None
        assert identify_vendor(KnownVendor.DPD.value[:-1]) is None
        assert str(KnownVendor.DPD) == "DPD"
