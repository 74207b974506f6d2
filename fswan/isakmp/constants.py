"""IKEv1 wire numbers from RFC 2407 (IPsec DOI), 2408 (ISAKMP), 2409 (IKE),
3947/3948 (NAT-T), 3706 (DPD) and the drafts peers still speak.

Every number set is an :class:`IntEnum` whose ``str()`` is the member name, so
a log line can say ``OAKLEY_AES_CBC`` where pluto would; they compare equal to
plain ints, so decoded values can be matched against either.  Decoders keep a
value the enum does not know as a plain ``int`` (see :func:`coerce`): an
unknown algorithm number is the proposal matcher's business, not a parse
error.

Member names follow pluto's spelling with the prefix that makes them
unambiguous in a log line (``ESP_3DES``, ``OAKLEY_SHA1``, ``ID_IPV4_ADDR``).
"""

from __future__ import annotations

import enum
from typing import TypeVar

# ---------------------------------------------------------------------------
# Framing facts

#: ISAKMP version this codec speaks: 1.0 (RFC 2408 section 3.1).
ISAKMP_MAJOR_VERSION = 1
ISAKMP_MINOR_VERSION = 0
#: The fixed ISAKMP header and the generic payload header (RFC 2408 3.1, 3.2).
HEADER_SIZE = 28
GENERIC_HEADER_SIZE = 4
#: Cookie (half of the ISAKMP SA "SPI") size.
COOKIE_SIZE = 8
#: UDP ports: IKE, and NAT-T for IKE and ESP-in-UDP (RFC 3947/3948).
IKE_PORT = 500
NATT_PORT = 4500
#: Data-attribute format bit: set for TV (2-byte value), clear for TLV.
ATTRIBUTE_AF = 0x8000


class NamedIntEnum(enum.IntEnum):
    """An IntEnum that prints as its member name (``OAKLEY_AES_CBC``).

    ``format(x, "d")`` (or any numeric format spec) still gives the number.
    """

    def __str__(self) -> str:
        return self.name

    def __format__(self, spec: str) -> str:
        if spec and spec[-1] in "bcdoxXneEfFgG%":
            return int.__format__(int(self), spec)
        return format(self.name, spec)


E = TypeVar("E", bound=enum.IntEnum)


def coerce(cls: type[E], value: int) -> E | int:
    """``cls(value)`` when the enum knows the number, else the plain int."""
    try:
        return cls(value)
    except ValueError:
        return value


def name_of(value: int) -> str:
    """Name of an enum member, or the decimal number for an unknown value."""
    if isinstance(value, enum.Enum):
        return value.name or str(int(value))
    return str(value)


# ---------------------------------------------------------------------------
# ISAKMP header (RFC 2408 3.1)


class ExchangeType(NamedIntEnum):
    """Exchange types; 32/33 are the IKE (RFC 2409) DOI-specific ones."""

    ISAKMP_XCHG_NONE = 0
    ISAKMP_XCHG_BASE = 1
    ISAKMP_XCHG_IDPROT = 2  # Main Mode
    ISAKMP_XCHG_AO = 3  # Authentication Only
    ISAKMP_XCHG_AGGR = 4  # Aggressive Mode
    ISAKMP_XCHG_INFO = 5  # Informational
    ISAKMP_XCHG_MODE_CFG = 6  # Transaction (draft-dukes-ike-mode-cfg)
    ISAKMP_XCHG_QUICK = 32  # Quick Mode
    ISAKMP_XCHG_NGRP = 33  # New Group Mode

    # Readable aliases (the first name above is what a log prints).
    MAIN_MODE = 2
    AGGRESSIVE = 4
    INFORMATIONAL = 5
    TRANSACTION = 6
    QUICK_MODE = 32


class Flags(enum.IntFlag):
    """Header flag bits (RFC 2408 3.1); unknown bits are kept, not rejected."""

    NONE = 0
    ENCRYPTION = 0x01
    COMMIT = 0x02
    AUTHENTICATION_ONLY = 0x04


class PayloadType(NamedIntEnum):
    """Next-payload numbers (RFC 2408 3.1, RFC 3947 and its drafts)."""

    ISAKMP_NEXT_NONE = 0
    ISAKMP_NEXT_SA = 1
    ISAKMP_NEXT_P = 2  # Proposal: only inside an SA payload
    ISAKMP_NEXT_T = 3  # Transform: only inside a Proposal
    ISAKMP_NEXT_KE = 4
    ISAKMP_NEXT_ID = 5
    ISAKMP_NEXT_CERT = 6
    ISAKMP_NEXT_CR = 7
    ISAKMP_NEXT_HASH = 8
    ISAKMP_NEXT_SIG = 9
    ISAKMP_NEXT_NONCE = 10
    ISAKMP_NEXT_N = 11
    ISAKMP_NEXT_D = 12
    ISAKMP_NEXT_VID = 13
    ISAKMP_NEXT_MODECFG = 14  # Attribute payload (Mode Config / XAuth)
    ISAKMP_NEXT_NATD_RFC = 20  # RFC 3947
    ISAKMP_NEXT_NATOA_RFC = 21  # RFC 3947
    ISAKMP_NEXT_NATD_DRAFTS = 130  # draft-ietf-ipsec-nat-t-ike-02/03
    ISAKMP_NEXT_NATOA_DRAFTS = 131
    ISAKMP_NEXT_IKE_FRAGMENTATION = 132  # Cisco/strongSwan IKE fragments

    # Short aliases for code.
    NONE = 0
    SA = 1
    PROPOSAL = 2
    TRANSFORM = 3
    KE = 4
    ID = 5
    CERT = 6
    CR = 7
    HASH = 8
    SIG = 9
    NONCE = 10
    NOTIFICATION = 11
    DELETE = 12
    VENDOR_ID = 13
    ATTRIBUTE = 14
    NAT_D = 20
    NAT_OA = 21
    NAT_D_DRAFT = 130
    NAT_OA_DRAFT = 131
    FRAGMENT = 132


# ---------------------------------------------------------------------------
# Notifications (RFC 2408 3.14.1, RFC 2407 4.6.3, RFC 3706)


class NotifyType(NamedIntEnum):
    """Notify message types: errors below 16384, status above."""

    INVALID_PAYLOAD_TYPE = 1
    DOI_NOT_SUPPORTED = 2
    SITUATION_NOT_SUPPORTED = 3
    INVALID_COOKIE = 4
    INVALID_MAJOR_VERSION = 5
    INVALID_MINOR_VERSION = 6
    INVALID_EXCHANGE_TYPE = 7
    INVALID_FLAGS = 8
    INVALID_MESSAGE_ID = 9
    INVALID_PROTOCOL_ID = 10
    INVALID_SPI = 11
    INVALID_TRANSFORM_ID = 12
    ATTRIBUTES_NOT_SUPPORTED = 13
    NO_PROPOSAL_CHOSEN = 14
    BAD_PROPOSAL_SYNTAX = 15
    PAYLOAD_MALFORMED = 16
    INVALID_KEY_INFORMATION = 17
    INVALID_ID_INFORMATION = 18
    INVALID_CERT_ENCODING = 19
    INVALID_CERTIFICATE = 20
    CERT_TYPE_UNSUPPORTED = 21
    INVALID_CERT_AUTHORITY = 22
    INVALID_HASH_INFORMATION = 23
    AUTHENTICATION_FAILED = 24
    INVALID_SIGNATURE = 25
    ADDRESS_NOTIFICATION = 26
    NOTIFY_SA_LIFETIME = 27
    CERTIFICATE_UNAVAILABLE = 28
    UNSUPPORTED_EXCHANGE_TYPE = 29
    UNEQUAL_PAYLOAD_LENGTHS = 30

    CONNECTED = 16384
    # IPsec DOI status types (RFC 2407 4.6.3)
    IPSEC_RESPONDER_LIFETIME = 24576
    IPSEC_REPLAY_STATUS = 24577
    IPSEC_INITIAL_CONTACT = 24578
    # Dead Peer Detection (RFC 3706)
    R_U_THERE = 36136
    R_U_THERE_ACK = 36137

    # Aliases
    RESPONDER_LIFETIME = 24576
    REPLAY_STATUS = 24577
    INITIAL_CONTACT = 24578

    @property
    def is_error(self) -> bool:
        return int(self) < 16384


#: First status notification; anything below is an error (RFC 2408 3.14.1).
NOTIFY_STATUS_MIN = 16384


# ---------------------------------------------------------------------------
# Domain of interpretation, situation, protocols (RFC 2407 4.2-4.5)


class DOI(NamedIntEnum):
    ISAKMP_DOI_ISAKMP = 0
    ISAKMP_DOI_IPSEC = 1

    ISAKMP = 0
    IPSEC = 1


class Situation(enum.IntFlag):
    """IPsec DOI situation bits; only SIT_IDENTITY_ONLY is a 4-byte field."""

    SIT_IDENTITY_ONLY = 0x01
    SIT_SECRECY = 0x02
    SIT_INTEGRITY = 0x04


class ProtocolId(NamedIntEnum):
    """Protocol of a proposal, notification or delete (RFC 2407 4.4.1)."""

    PROTO_RESERVED = 0
    PROTO_ISAKMP = 1
    PROTO_IPSEC_AH = 2
    PROTO_IPSEC_ESP = 3
    PROTO_IPCOMP = 4

    ISAKMP = 1
    AH = 2
    ESP = 3
    IPCOMP = 4


# ---------------------------------------------------------------------------
# Transform IDs (RFC 2407 4.4.x, RFC 4106, RFC 4309 ...)


class IsakmpTransformId(NamedIntEnum):
    KEY_IKE = 1


class AhTransformId(NamedIntEnum):
    AH_MD5 = 2
    AH_SHA = 3
    AH_DES = 4
    AH_SHA2_256 = 5
    AH_SHA2_384 = 6
    AH_SHA2_512 = 7
    AH_RIPEMD = 8
    AH_AES_XCBC_MAC = 9
    AH_RSA = 10
    AH_AES_128_GMAC = 11
    AH_AES_192_GMAC = 12
    AH_AES_256_GMAC = 13


class EspTransformId(NamedIntEnum):
    ESP_DES_IV64 = 1
    ESP_DES = 2
    ESP_3DES = 3
    ESP_RC5 = 4
    ESP_IDEA = 5
    ESP_CAST = 6
    ESP_BLOWFISH = 7
    ESP_3IDEA = 8
    ESP_DES_IV32 = 9
    ESP_RC4 = 10
    ESP_NULL = 11
    ESP_AES_CBC = 12  # RFC 3602
    ESP_AES_CTR = 13  # RFC 3686
    ESP_AES_CCM_8 = 14  # RFC 4309
    ESP_AES_CCM_12 = 15
    ESP_AES_CCM_16 = 16
    ESP_AES_GCM_8 = 18  # RFC 4106
    ESP_AES_GCM_12 = 19
    ESP_AES_GCM_16 = 20
    ESP_SEED_CBC = 21
    ESP_CAMELLIA = 22
    ESP_NULL_AUTH_AES_GMAC = 23  # RFC 4543


class IpcompTransformId(NamedIntEnum):
    IPCOMP_OUI = 1
    IPCOMP_DEFLATE = 2
    IPCOMP_LZS = 3
    IPCOMP_LZJH = 4


#: Which transform-ID enum applies to a proposal's protocol.
TRANSFORM_IDS: dict[int, type[NamedIntEnum]] = {
    ProtocolId.ISAKMP: IsakmpTransformId,
    ProtocolId.AH: AhTransformId,
    ProtocolId.ESP: EspTransformId,
    ProtocolId.IPCOMP: IpcompTransformId,
}


# ---------------------------------------------------------------------------
# Phase 1 (Oakley) attributes (RFC 2409 appendix A)


class OakleyAttr(NamedIntEnum):
    """Attribute classes; B = basic (TV), V = variable (TLV)."""

    OAKLEY_ENCRYPTION_ALGORITHM = 1  # B
    OAKLEY_HASH_ALGORITHM = 2  # B
    OAKLEY_AUTHENTICATION_METHOD = 3  # B
    OAKLEY_GROUP_DESCRIPTION = 4  # B
    OAKLEY_GROUP_TYPE = 5  # B
    OAKLEY_GROUP_PRIME = 6  # V
    OAKLEY_GROUP_GENERATOR_ONE = 7  # V
    OAKLEY_GROUP_GENERATOR_TWO = 8  # V
    OAKLEY_GROUP_CURVE_A = 9  # V
    OAKLEY_GROUP_CURVE_B = 10  # V
    OAKLEY_LIFE_TYPE = 11  # B
    OAKLEY_LIFE_DURATION = 12  # V (TV when it fits)
    OAKLEY_PRF = 13  # B
    OAKLEY_KEY_LENGTH = 14  # B
    OAKLEY_FIELD_SIZE = 15  # B
    OAKLEY_GROUP_ORDER = 16  # V


class OakleyEncryption(NamedIntEnum):
    OAKLEY_DES_CBC = 1
    OAKLEY_IDEA_CBC = 2
    OAKLEY_BLOWFISH_CBC = 3
    OAKLEY_RC5_R16_B64_CBC = 4
    OAKLEY_3DES_CBC = 5
    OAKLEY_CAST_CBC = 6
    OAKLEY_AES_CBC = 7  # RFC 3602
    OAKLEY_CAMELLIA_CBC = 8  # RFC 4312


class OakleyHash(NamedIntEnum):
    OAKLEY_MD5 = 1
    OAKLEY_SHA1 = 2
    OAKLEY_TIGER = 3
    OAKLEY_SHA2_256 = 4  # RFC 4868
    OAKLEY_SHA2_384 = 5
    OAKLEY_SHA2_512 = 6


class OakleyAuth(NamedIntEnum):
    OAKLEY_PRESHARED_KEY = 1
    OAKLEY_DSS_SIG = 2
    OAKLEY_RSA_SIG = 3
    OAKLEY_RSA_ENC = 4
    OAKLEY_RSA_REVISED_ENC = 5
    OAKLEY_ECDSA_P256 = 9  # RFC 4754
    OAKLEY_ECDSA_P384 = 10
    OAKLEY_ECDSA_P521 = 11
    # draft-beaulieu-ike-xauth-02 private-use values
    XAUTH_INIT_PRESHARED = 65001
    XAUTH_RESP_PRESHARED = 65002
    XAUTH_INIT_DSS = 65003
    XAUTH_RESP_DSS = 65004
    XAUTH_INIT_RSA = 65005
    XAUTH_RESP_RSA = 65006
    XAUTH_INIT_RSA_ENC = 65007
    XAUTH_RESP_RSA_ENC = 65008
    XAUTH_INIT_RSA_REVISED_ENC = 65009
    XAUTH_RESP_RSA_REVISED_ENC = 65010

    OAKLEY_PSK = 1


class OakleyGroup(NamedIntEnum):
    """Diffie-Hellman groups (RFC 2409, 3526, 5114, 5903, 6932, 8031)."""

    OAKLEY_GROUP_MODP768 = 1
    OAKLEY_GROUP_MODP1024 = 2
    OAKLEY_GROUP_EC2N155 = 3
    OAKLEY_GROUP_EC2N185 = 4
    OAKLEY_GROUP_MODP1536 = 5
    OAKLEY_GROUP_MODP2048 = 14
    OAKLEY_GROUP_MODP3072 = 15
    OAKLEY_GROUP_MODP4096 = 16
    OAKLEY_GROUP_MODP6144 = 17
    OAKLEY_GROUP_MODP8192 = 18
    OAKLEY_GROUP_ECP256 = 19
    OAKLEY_GROUP_ECP384 = 20
    OAKLEY_GROUP_ECP521 = 21
    OAKLEY_GROUP_MODP1024_S160 = 22
    OAKLEY_GROUP_MODP2048_S224 = 23
    OAKLEY_GROUP_MODP2048_S256 = 24
    OAKLEY_GROUP_ECP192 = 25
    OAKLEY_GROUP_ECP224 = 26
    OAKLEY_GROUP_BRAINPOOL_P224 = 27
    OAKLEY_GROUP_BRAINPOOL_P256 = 28
    OAKLEY_GROUP_BRAINPOOL_P384 = 29
    OAKLEY_GROUP_BRAINPOOL_P512 = 30
    OAKLEY_GROUP_CURVE25519 = 31
    OAKLEY_GROUP_CURVE448 = 32


class OakleyGroupType(NamedIntEnum):
    OAKLEY_GROUP_TYPE_MODP = 1
    OAKLEY_GROUP_TYPE_ECP = 2
    OAKLEY_GROUP_TYPE_EC2N = 3


class OakleyLifeType(NamedIntEnum):
    OAKLEY_LIFE_SECONDS = 1
    OAKLEY_LIFE_KILOBYTES = 2


# ---------------------------------------------------------------------------
# Phase 2 (IPsec DOI) attributes (RFC 2407 4.5, RFC 3947 section 5.2)


class IPsecAttr(NamedIntEnum):
    SA_LIFE_TYPE = 1
    SA_LIFE_DURATION = 2  # V (TV when it fits)
    GROUP_DESCRIPTION = 3
    ENCAPSULATION_MODE = 4
    AUTH_ALGORITHM = 5
    KEY_LENGTH = 6
    KEY_ROUNDS = 7
    COMPRESS_DICTIONARY_SIZE = 8
    COMPRESS_PRIVATE_ALGORITHM = 9  # V
    ECN_TUNNEL = 10  # RFC 3168
    EXTENDED_SEQUENCE_NUMBER = 11  # RFC 4304


class SALifeType(NamedIntEnum):
    SA_LIFE_TYPE_SECONDS = 1
    SA_LIFE_TYPE_KBYTES = 2


class EncapsulationMode(NamedIntEnum):
    """Encapsulation modes; 3/4 are RFC 3947, 61443/61444 its drafts."""

    ENCAPSULATION_MODE_TUNNEL = 1
    ENCAPSULATION_MODE_TRANSPORT = 2
    ENCAPSULATION_MODE_UDP_TUNNEL_RFC = 3
    ENCAPSULATION_MODE_UDP_TRANSPORT_RFC = 4
    ENCAPSULATION_MODE_UDP_TUNNEL_DRAFTS = 61443
    ENCAPSULATION_MODE_UDP_TRANSPORT_DRAFTS = 61444

    TUNNEL = 1
    TRANSPORT = 2
    UDP_TUNNEL = 3
    UDP_TRANSPORT = 4
    UDP_TUNNEL_DRAFT = 61443
    UDP_TRANSPORT_DRAFT = 61444


class AuthAlgorithm(NamedIntEnum):
    """IPsec Authentication Algorithm attribute values (RFC 2407 4.5)."""

    AUTH_ALGORITHM_HMAC_MD5 = 1
    AUTH_ALGORITHM_HMAC_SHA1 = 2
    AUTH_ALGORITHM_DES_MAC = 3
    AUTH_ALGORITHM_KPDK = 4
    AUTH_ALGORITHM_HMAC_SHA2_256 = 5  # RFC 4868
    AUTH_ALGORITHM_HMAC_SHA2_384 = 6
    AUTH_ALGORITHM_HMAC_SHA2_512 = 7
    AUTH_ALGORITHM_HMAC_RIPEMD = 8
    AUTH_ALGORITHM_AES_XCBC_MAC = 9
    AUTH_ALGORITHM_SIG_RSA = 10
    AUTH_ALGORITHM_AES_128_GMAC = 11
    AUTH_ALGORITHM_AES_192_GMAC = 12
    AUTH_ALGORITHM_AES_256_GMAC = 13

    HMAC_MD5 = 1
    HMAC_SHA1 = 2
    HMAC_SHA2_256 = 5
    HMAC_SHA2_384 = 6
    HMAC_SHA2_512 = 7


#: Enum for the value of a basic attribute, by attribute class; decoders use
#: it to make transform attributes print as names.
OAKLEY_ATTRIBUTE_VALUES: dict[int, type[NamedIntEnum]] = {
    OakleyAttr.OAKLEY_ENCRYPTION_ALGORITHM: OakleyEncryption,
    OakleyAttr.OAKLEY_HASH_ALGORITHM: OakleyHash,
    OakleyAttr.OAKLEY_AUTHENTICATION_METHOD: OakleyAuth,
    OakleyAttr.OAKLEY_GROUP_DESCRIPTION: OakleyGroup,
    OakleyAttr.OAKLEY_GROUP_TYPE: OakleyGroupType,
    OakleyAttr.OAKLEY_LIFE_TYPE: OakleyLifeType,
}
IPSEC_ATTRIBUTE_VALUES: dict[int, type[NamedIntEnum]] = {
    IPsecAttr.SA_LIFE_TYPE: SALifeType,
    IPsecAttr.GROUP_DESCRIPTION: OakleyGroup,
    IPsecAttr.ENCAPSULATION_MODE: EncapsulationMode,
    IPsecAttr.AUTH_ALGORITHM: AuthAlgorithm,
}


# ---------------------------------------------------------------------------
# Identification (RFC 2407 4.6.2.1) and certificates (RFC 2408 3.9)


class IdType(NamedIntEnum):
    ID_IPV4_ADDR = 1
    ID_FQDN = 2
    ID_USER_FQDN = 3
    ID_IPV4_ADDR_SUBNET = 4
    ID_IPV6_ADDR = 5
    ID_IPV6_ADDR_SUBNET = 6
    ID_IPV4_ADDR_RANGE = 7
    ID_IPV6_ADDR_RANGE = 8
    ID_DER_ASN1_DN = 9
    ID_DER_ASN1_GN = 10
    ID_KEY_ID = 11


class CertEncoding(NamedIntEnum):
    CERT_NONE = 0
    CERT_PKCS7_WRAPPED_X509 = 1
    CERT_PGP = 2
    CERT_DNS_SIGNED_KEY = 3
    CERT_X509_SIGNATURE = 4
    CERT_X509_KEY_EXCHANGE = 5
    CERT_KERBEROS_TOKENS = 6
    CERT_CRL = 7
    CERT_ARL = 8
    CERT_SPKI = 9
    CERT_X509_ATTRIBUTE = 10
    CERT_RAW_RSA = 11  # IANA "Raw RSA Key"


# ---------------------------------------------------------------------------
# Vendor IDs: fixed byte strings peers send to announce extensions


class KnownVendor(enum.Enum):
    """Vendor ID payload contents, as sent on the wire.

    The NAT-T ones are MD5 of the document name (the tests check that); DPD,
    Cisco Unity and XAuth are truncated hashes with a version suffix.
    FRAGMENTATION is MD5("FRAGMENTATION") and may be followed by four bytes
    of capability flags (strongSwan sends ``80000000``), so it is matched as a
    prefix by :func:`identify_vendor`.
    """

    NATT_RFC3947 = bytes.fromhex("4a131c81070358455c5728f20e95452f")
    NATT_DRAFT_00 = bytes.fromhex("4485152d18b6bbcd0be8a8469579ddcc")
    NATT_DRAFT_01 = bytes.fromhex("16f6ca16e4a4066d83821a0f0aeaa862")
    NATT_DRAFT_02 = bytes.fromhex("cd60464335df21f87cfdb2fc68b6a448")
    NATT_DRAFT_02_N = bytes.fromhex("90cb80913ebb696e086381b5ec427b1f")
    NATT_DRAFT_03 = bytes.fromhex("7d9419a65310ca6f2c179d9215529d56")
    DPD = bytes.fromhex("afcad71368a1f1c96b8696fc77570100")  # RFC 3706
    XAUTH = bytes.fromhex("09002689dfd6b712")
    CISCO_UNITY = bytes.fromhex("12f5f28c457168a9702d9fe274cc0100")
    FRAGMENTATION = bytes.fromhex("4048b7d56ebce88525e7de7f00d6c2d3")

    def __str__(self) -> str:
        return self.name


class CfgType(NamedIntEnum):
    """The ATTRIBUTE payload's message type (draft-dukes-ike-mode-cfg section 3.2)."""

    ISAKMP_CFG_REQUEST = 1
    ISAKMP_CFG_REPLY = 2
    ISAKMP_CFG_SET = 3
    ISAKMP_CFG_ACK = 4


class CfgAttr(NamedIntEnum):
    """Mode Config, XAUTH (draft-ietf-ipsec-isakmp-xauth-06) and Cisco Unity attributes."""

    INTERNAL_IP4_ADDRESS = 1
    INTERNAL_IP4_NETMASK = 2
    INTERNAL_IP4_DNS = 3
    INTERNAL_IP4_NBNS = 4
    INTERNAL_ADDRESS_EXPIRY = 5
    INTERNAL_IP4_DHCP = 6
    APPLICATION_VERSION = 7
    INTERNAL_IP6_ADDRESS = 8
    INTERNAL_IP6_NETMASK = 9
    INTERNAL_IP6_DNS = 10
    INTERNAL_IP4_SUBNET = 13
    SUPPORTED_ATTRIBUTES = 14
    XAUTH_TYPE = 16520
    XAUTH_USER_NAME = 16521
    XAUTH_USER_PASSWORD = 16522
    XAUTH_PASSCODE = 16523
    XAUTH_MESSAGE = 16524
    XAUTH_CHALLENGE = 16525
    XAUTH_DOMAIN = 16526
    XAUTH_STATUS = 16527
    XAUTH_NEXT_PIN = 16528
    XAUTH_ANSWER = 16529
    UNITY_BANNER = 28672
    UNITY_SAVE_PASSWD = 28673
    UNITY_DEF_DOMAIN = 28674
    UNITY_SPLITDNS_NAME = 28675
    UNITY_SPLIT_INCLUDE = 28676
    UNITY_NATT_PORT = 28677
    UNITY_LOCAL_LAN = 28678
    UNITY_PFS = 28679
    UNITY_FW_TYPE = 28680
    UNITY_BACKUP_SERVERS = 28681
    UNITY_DDNS_HOSTNAME = 28682


#: The NAT-T vendor IDs, best first (RFC before drafts).
NATT_VENDOR_IDS: tuple[KnownVendor, ...] = (
    KnownVendor.NATT_RFC3947,
    KnownVendor.NATT_DRAFT_03,
    KnownVendor.NATT_DRAFT_02_N,
    KnownVendor.NATT_DRAFT_02,
    KnownVendor.NATT_DRAFT_01,
    KnownVendor.NATT_DRAFT_00,
)

_VENDOR_BY_BYTES = {v.value: v for v in KnownVendor}


def identify_vendor(data: bytes) -> KnownVendor | None:
    """The known extension a Vendor ID announces, or None."""
    known = _VENDOR_BY_BYTES.get(bytes(data))
    if known is not None:
        return known
    fragmentation = KnownVendor.FRAGMENTATION.value
    if len(data) == len(fragmentation) + 4 and data.startswith(fragmentation):
        return KnownVendor.FRAGMENTATION
    return None
