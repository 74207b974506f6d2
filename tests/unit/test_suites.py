"""Tests for fswan.suites: ike=/esp= strings, tables, log names."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fswan.suites import (
    DEFAULT_ESP_PROPOSALS,
    DEFAULT_IKE_PROPOSALS,
    ESP_CIPHERS,
    ESP_INTEGRITY,
    HASHES,
    IKE_CIPHERS,
    EspProposal,
    IkeProposal,
    ProposalError,
    RefusedAlgorithm,
    UnsupportedAlgorithm,
    esp_cipher_by_id,
    esp_integrity_by_id,
    format_proposal,
    format_proposals,
    get_esp_cipher,
    get_esp_integrity,
    get_hash,
    hash_by_id,
    ike_cipher_by_id,
    ikev1_unusable,
    parse_esp,
    parse_ike,
)

I = IkeProposal
E = EspProposal


# --------------------------------------------------------------------------
# ike=


@pytest.mark.parametrize(
    "text, expected",
    [
        ("aes128-sha1-modp2048", (I("aes_cbc", 128, "sha1", 14),)),
        ("aes256-sha2_256-modp2048", (I("aes_cbc", 256, "sha2_256", 14),)),
        ("3des-md5-modp1024", (I("3des_cbc", 192, "md5", 2),)),
        ("aes128-sha1;modp2048", (I("aes_cbc", 128, "sha1", 14),)),  # old Openswan form
        ("aes-sha1-modp1536", (I("aes_cbc", 128, "sha1", 5),)),
        ("AES192-SHA-MODP3072", (I("aes_cbc", 192, "sha1", 15),)),
        ("aes_cbc_256-sha512-modp4096", (I("aes_cbc", 256, "sha2_512", 16),)),
        ("aes-256-sha384-dh14", (I("aes_cbc", 256, "sha2_384", 14),)),
        ("3des_cbc-sha2-modp2048", (I("3des_cbc", 192, "sha2_256", 14),)),
        ("aes128-sha256-modp2048!", (I("aes_cbc", 128, "sha2_256", 14),)),
        (
            " aes128-sha1-modp2048 , 3des-sha1-modp1024 ",
            (I("aes_cbc", 128, "sha1", 14), I("3des_cbc", 192, "sha1", 2)),
        ),
        (
            "aes-sha1",  # aes = 128; no group: 2048, 1536, 1024
            (I("aes_cbc", 128, "sha1", 14), I("aes_cbc", 128, "sha1", 5),
             I("aes_cbc", 128, "sha1", 2)),
        ),
        (
            "aes256-modp2048",  # no hash: sha2_256 then sha1
            (I("aes_cbc", 256, "sha2_256", 14), I("aes_cbc", 256, "sha1", 14)),
        ),
        (
            "aes128-sha1-modp2048,aes128-sha1-modp2048",  # duplicates collapse
            (I("aes_cbc", 128, "sha1", 14),),
        ),
    ],
)
def test_parse_ike(text: str, expected: tuple[IkeProposal, ...]) -> None:
    assert parse_ike(text) == expected


def test_parse_ike_every_combination() -> None:
    ciphers = {"aes128": ("aes_cbc", 128), "aes192": ("aes_cbc", 192),
               "aes256": ("aes_cbc", 256), "3des": ("3des_cbc", 192)}
    hashes = {"md5": "md5", "sha": "sha1", "sha1": "sha1", "sha256": "sha2_256",
              "sha2": "sha2_256", "sha2_256": "sha2_256", "sha384": "sha2_384",
              "sha2_512": "sha2_512"}
    groups = {"modp1024": 2, "modp1536": 5, "modp2048": 14, "modp3072": 15, "modp4096": 16}
    for (c, (cipher, bits)), (h, hash_), (g, number) in itertools.product(
            ciphers.items(), hashes.items(), groups.items()):
        assert parse_ike(f"{c}-{h}-{g}") == (I(cipher, bits, hash_, number),)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("aes256-sha256-modp2048", (I("aes_cbc", 256, "sha2_256", 14),)),
        ("aes256-sha2_256-modp2048", (I("aes_cbc", 256, "sha2_256", 14),)),
        ("aes256-sha2_256;modp2048", (I("aes_cbc", 256, "sha2_256", 14),)),
        ("aes128-sha256-prfsha384-ecp256", (I("aes_cbc", 128, "sha2_256", 19, "sha2_384"),)),
        ("aes128-sha256-prfsha256-ecp256", (I("aes_cbc", 128, "sha2_256", 19),)),  # same PRF: None
        ("aes128-prfsha384-ecp256",  # integrity omitted: sha2_256 then sha1
         (I("aes_cbc", 128, "sha2_256", 19, "sha2_384"), I("aes_cbc", 128, "sha1", 19, "sha2_384"))),
        ("aes256gcm16-prfsha256-modp2048", (I("aes_gcm_16", 256, "sha2_256", 14),)),
        ("aes_gcm_16_256-prfsha256-ecp256", (I("aes_gcm_16", 256, "sha2_256", 19),)),
        ("aes_gcm_16_256-sha2_256-ecp256", (I("aes_gcm_16", 256, "sha2_256", 19),)),  # Libreswan: the PRF
        ("aes_gcm256-prfsha512-dh20", (I("aes_gcm_16", 256, "sha2_512", 20),)),
        ("aes128gcm12-prfsha384-ecp384", (I("aes_gcm_12", 128, "sha2_384", 20),)),
        ("aes_gcm_8-prfsha1-modp2048", (I("aes_gcm_8", 128, "sha1", 14),)),
        ("aes192gcm16-prfsha256-modp3072", (I("aes_gcm_16", 192, "sha2_256", 15),)),
        ("chacha20poly1305-prfsha256-curve25519", (I("chacha20poly1305", 256, "sha2_256", 31),)),
        ("chacha20_poly1305-sha256-x25519", (I("chacha20poly1305", 256, "sha2_256", 31),)),
        ("aes128gcm16-ecp256", (I("aes_gcm_16", 128, "sha2_256", 19), I("aes_gcm_16", 128, "sha1", 19))),
    ],
)
def test_parse_ike_ikev2_forms(text: str, expected: tuple[IkeProposal, ...]) -> None:
    assert parse_ike(text) == expected


def test_ikev2_proposal_properties() -> None:
    gcm = I("aes_gcm_16", 256, "sha2_256", 14)
    assert gcm.aead and gcm.integrity is None and gcm.prf_hash == "sha2_256"
    assert gcm.prf_algorithm is HASHES["sha2_256"] and not gcm.ikev1_usable
    prf = I("aes_cbc", 128, "sha2_256", 19, "sha2_384")
    assert not prf.aead and prf.integrity == "sha2_256" and prf.prf_hash == "sha2_384"
    assert I("aes_cbc", 128, "sha1", 14, "sha1") == I("aes_cbc", 128, "sha1", 14)
    plain = I("aes_cbc", 128, "sha1", 14)
    assert plain.prf is None and plain.prf_hash == "sha1" and plain.integrity == "sha1" and plain.ikev1_usable


def test_ikev1_unusable_says_why() -> None:
    assert ikev1_unusable(DEFAULT_IKE_PROPOSALS) is None
    assert ikev1_unusable(parse_ike("aes128-sha1,aes256gcm16-prfsha256-modp2048")) == (
        "AES_GCM_16_256-PRF_HMAC_SHA2_256-MODP2048: AES_GCM_16 is IKEv2 only")
    assert ikev1_unusable(parse_ike("chacha20poly1305-prfsha256-curve25519")) == (
        "CHACHA20_POLY1305-PRF_HMAC_SHA2_256-CURVE25519: CHACHA20_POLY1305 is IKEv2 only")
    assert ikev1_unusable(parse_ike("aes128-sha256-prfsha384-ecp256")) == (
        "AES_CBC_128-HMAC_SHA2_256-PRF_HMAC_SHA2_384-ECP256: a PRF other than the hash's HMAC "
        "(PRF_HMAC_SHA2_384) is IKEv2 only")


DES_IKE = "OAKLEY_DES_CBC is not supported"


@pytest.mark.parametrize("text", ["des-md5-modp1024", "DES-sha1", "aes128-sha1,des_cbc-md5",
                                  "des56-sha1-modp1536", "aes128-des-modp2048"])
def test_ike_des_is_refused(text: str) -> None:
    with pytest.raises(ProposalError) as info:
        parse_ike(text)
    assert str(info.value) == DES_IKE
    assert isinstance(info.value, UnsupportedAlgorithm)
    assert isinstance(info.value, RefusedAlgorithm)


@pytest.mark.parametrize(
    "text, message",
    [
        ("blowfish-sha1-modp2048",
         "ike='blowfish-sha1-modp2048': unknown IKE encryption algorithm 'blowfish'; "
         "allowed: aes (aes128), aes192, aes256, aes_cbc, 3des; IKEv2 only: aes_gcm"),
        ("aes128-sha7-modp2048",
         "ike='aes128-sha7-modp2048': unknown IKE hash algorithm 'sha7'; allowed: md5, "
         "sha1 (sha), sha2_256 (sha256, sha2), sha2_384 (sha384), sha2_512 (sha512)"),
        ("aes128-sha1-modp768",
         "ike='aes128-sha1-modp768': unknown or unsupported DH group 'modp768'; allowed: "
         "modp1024 (dh2), modp1536 (dh5), modp2048 (dh14), modp3072 (dh15), modp4096 (dh16)"),
        ("aes128-sha1-ecp224", "unknown or unsupported DH group 'ecp224'; allowed: modp1024 (dh2), "
         "modp1536 (dh5), modp2048 (dh14), modp3072 (dh15), modp4096 (dh16), ecp256 (dh19), "
         "ecp384 (dh20), ecp521 (dh21), curve25519 (dh31)"),
        ("aes128-sha1-ecp256bp", "unknown or unsupported DH group 'ecp256bp'"),
        ("aes512-sha1-modp2048",
         "ike='aes512-sha1-modp2048': key length 512 in 'aes512' is not allowed; "
         "allowed: 128, 192, 256"),
        ("3des168-sha1", "key length 168 in '3des168' is not allowed; allowed: 192"),
        ("aes128-sha1-modp2048-extra", "unexpected 'extra' after the DH group"),
        ("aes_gcm128-prfsha1-prfsha256-modp2048", "unknown or unsupported DH group 'prfsha256'"),
        ("aes256gcm16-sha256-prfsha384-modp2048", "an AEAD cipher has no integrity, name its PRF once"),
        ("aes128-sha256-prfmd4", "unknown PRF 'md4'"),
        ("chacha20poly1305_128-prfsha256", "unknown IKE encryption algorithm 'chacha20poly1305_128'"),
        ("aes128-sha1-modp2048-prfsha256", "unexpected 'prfsha256' after the DH group"),
        ("aes128--modp2048", "empty algorithm name"),
        ("aes128-sha1,,3des-sha1", "empty proposal between commas"),
        ("", "ike= is empty"),
        ("   ", "ike= is empty"),
        ("!", "ike= is empty"),
    ],
)
def test_parse_ike_errors_name_the_token_and_what_is_allowed(text: str, message: str) -> None:
    with pytest.raises(ProposalError) as info:
        parse_ike(text)
    assert message in str(info.value)


# --------------------------------------------------------------------------
# esp= / phase2alg=


@pytest.mark.parametrize(
    "text, expected",
    [
        ("aes128-sha1", (E("aes_cbc", 128, "sha1", None),)),
        ("aes256-sha2_256", (E("aes_cbc", 256, "sha2_256", None),)),
        ("aes256-sha256-modp2048", (E("aes_cbc", 256, "sha2_256", 14),)),
        ("3des-sha1", (E("3des_cbc", 192, "sha1", None),)),
        ("3des-md5;modp1024", (E("3des_cbc", 192, "md5", 2),)),
        ("aes-sha", (E("aes_cbc", 128, "sha1", None),)),
        ("aes_gcm256", (E("aes_gcm_16", 256, None, None),)),
        ("aes_gcm128", (E("aes_gcm_16", 128, None, None),)),
        ("aes_gcm", (E("aes_gcm_16", 128, None, None),)),
        ("aes_gcm_256", (E("aes_gcm_16", 256, None, None),)),
        ("aes_gcm16_256", (E("aes_gcm_16", 256, None, None),)),
        ("aes_gcm_c-256", (E("aes_gcm_16", 256, None, None),)),
        ("aes128gcm16", (E("aes_gcm_16", 128, None, None),)),
        ("aes256gcm16-modp2048", (E("aes_gcm_16", 256, None, 14),)),
        ("aes256gcm128", (E("aes_gcm_16", 256, None, None),)),  # strongSwan: ICV in bits
        ("aes128gcm8", (E("aes_gcm_8", 128, None, None),)),
        ("aes_gcm_12_192", (E("aes_gcm_12", 192, None, None),)),
        ("aes_gcm256-null", (E("aes_gcm_16", 256, None, None),)),
        ("aes_gcm256-null-modp3072", (E("aes_gcm_16", 256, None, 15),)),
        (
            "aes256",  # CBC without integrity: sha2_256 then sha1
            (E("aes_cbc", 256, "sha2_256", None), E("aes_cbc", 256, "sha1", None)),
        ),
        (
            "aes_gcm256,aes128-sha1-modp2048,3des-sha1",
            (E("aes_gcm_16", 256, None, None), E("aes_cbc", 128, "sha1", 14),
             E("3des_cbc", 192, "sha1", None)),
        ),
    ],
)
def test_parse_esp(text: str, expected: tuple[EspProposal, ...]) -> None:
    assert parse_esp(text) == expected


@pytest.mark.parametrize("text", ["des-md5", "aes128-sha1,des", "DES_CBC-sha1",
                                  "aes128-des"])
def test_esp_des_is_refused(text: str) -> None:
    with pytest.raises(RefusedAlgorithm, match="^ESP_DES is not supported$"):
        parse_esp(text)


@pytest.mark.parametrize("text", ["null-sha1", "null", "aes128-sha1,null-md5"])
def test_esp_null_cipher_is_refused(text: str) -> None:
    with pytest.raises(RefusedAlgorithm, match="^ESP_NULL is not supported$"):
        parse_esp(text)


@pytest.mark.parametrize(
    "text, message",
    [
        ("aes128-null",
         "esp='aes128-null': integrity 'null' is not allowed with aes_cbc; "
         "only an AEAD cipher (aes_gcm) may go without integrity"),
        ("aes_gcm256-sha1",
         "esp='aes_gcm256-sha1': integrity 'sha1' is not allowed with the AEAD cipher "
         "aes_gcm_16; allowed: null or nothing"),
        ("aes128-sha3", "unknown ESP integrity algorithm 'sha3'; allowed: md5, sha1 (sha)"),
        ("camellia128-sha1", "unknown ESP encryption algorithm 'camellia128'; allowed: aes"),
        ("aes_ctr128-sha1", "unknown ESP encryption algorithm 'aes_ctr128'"),
        ("aes_gcm512", "unknown ESP encryption algorithm 'aes_gcm512'"),
        ("aes128-sha1-modp8192", "unknown or unsupported DH group 'modp8192'"),
        ("aes128-sha1-modp2048-x", "unexpected 'x' after the PFS group"),
        ("aes100-sha1", "key length 100 in 'aes100' is not allowed; allowed: 128, 192, 256"),
        ("", "esp= is empty"),
    ],
)
def test_parse_esp_errors(text: str, message: str) -> None:
    with pytest.raises(ProposalError) as info:
        parse_esp(text)
    assert message in str(info.value)


@given(st.text(alphabet="aesdhmopcgnul0123456789_-,;!3 x", max_size=40))
def test_parsers_raise_only_proposal_errors(text: str) -> None:
    for parse in (parse_ike, parse_esp):
        try:
            result = parse(text)
        except ProposalError:
            continue
        assert result and all(isinstance(p, (IkeProposal, EspProposal)) for p in result)


# --------------------------------------------------------------------------
# defaults and log names


def test_default_sets() -> None:
    assert DEFAULT_IKE_PROPOSALS == parse_ike(
        "aes256-sha2_256-modp2048,aes128-sha2_256-modp2048,aes256-sha1-modp2048,"
        "aes128-sha1-modp2048,aes128-sha1-modp1536,3des-sha1-modp2048,3des-sha1-modp1024"
    )
    assert DEFAULT_ESP_PROPOSALS == parse_esp(
        "aes_gcm256,aes_gcm128,aes256-sha2_256,aes128-sha2_256,aes256-sha1,aes128-sha1,3des-sha1"
    )


@pytest.mark.parametrize(
    "proposal, name",
    [
        (I("aes_cbc", 128, "sha1", 14), "AES_CBC_128-HMAC_SHA1-MODP2048"),
        (I("aes_cbc", 256, "sha2_256", 14), "AES_CBC_256-HMAC_SHA2_256-MODP2048"),
        (I("3des_cbc", 192, "md5", 2), "3DES_CBC-HMAC_MD5-MODP1024"),
        (I("aes_gcm_16", 256, "sha2_256", 14), "AES_GCM_16_256-PRF_HMAC_SHA2_256-MODP2048"),
        (I("chacha20poly1305", 256, "sha2_256", 31), "CHACHA20_POLY1305-PRF_HMAC_SHA2_256-CURVE25519"),
        (I("aes_cbc", 128, "sha2_256", 19, "sha2_384"),
         "AES_CBC_128-HMAC_SHA2_256-PRF_HMAC_SHA2_384-ECP256"),
        (E("aes_cbc", 128, "sha1"), "AES_CBC_128-HMAC_SHA1_96"),
        (E("aes_cbc", 256, "sha2_256", 14), "AES_CBC_256-HMAC_SHA2_256_128-MODP2048"),
        (E("aes_gcm_16", 256, None), "AES_GCM_16_256"),
        (E("3des_cbc", 192, "sha1", 5), "3DES_CBC-HMAC_SHA1_96-MODP1536"),
    ],
)
def test_format_proposal(proposal, name: str) -> None:
    assert format_proposal(proposal) == name
    assert str(proposal) == name


def test_format_proposals() -> None:
    assert format_proposals(parse_esp("aes_gcm128,aes128-sha1")) == (
        "AES_GCM_16_128, AES_CBC_128-HMAC_SHA1_96")


# --------------------------------------------------------------------------
# tables: names <-> RFC numbers


def test_rfc_numbers() -> None:
    assert {c.name: c.oakley_id for c in IKE_CIPHERS.values() if c.ikev1} == {"aes_cbc": 7, "3des_cbc": 5}
    assert {c.name for c in IKE_CIPHERS.values() if c.aead} == {
        "aes_gcm_16", "aes_gcm_12", "aes_gcm_8", "chacha20poly1305"}
    assert {h.name: h.oakley_id for h in HASHES.values()} == {
        "md5": 1, "sha1": 2, "sha2_256": 4, "sha2_384": 5, "sha2_512": 6}
    assert {c.name: c.transform_id for c in ESP_CIPHERS.values()} == {
        "aes_cbc": 12, "3des_cbc": 3, "aes_gcm_16": 20, "aes_gcm_12": 19, "aes_gcm_8": 18}
    assert {a.name: a.auth_id for a in ESP_INTEGRITY.values()} == {
        "md5": 1, "sha1": 2, "sha2_256": 5, "sha2_384": 6, "sha2_512": 7}


def test_lookups_by_id_and_name() -> None:
    assert ike_cipher_by_id(7).name == "aes_cbc" and ike_cipher_by_id(5).block_size == 8
    assert hash_by_id(4).digest_size == 32
    assert esp_cipher_by_id(20).aead and esp_cipher_by_id(20).salt_size == 4
    assert esp_integrity_by_id(5).icv_size == 16 and esp_integrity_by_id(2).key_size == 20
    assert get_hash("sha256") is HASHES["sha2_256"]
    assert get_esp_cipher("aes_gcm") is ESP_CIPHERS["aes_gcm_16"]
    assert get_esp_integrity("sha") is ESP_INTEGRITY["sha1"]
    with pytest.raises(UnsupportedAlgorithm, match="^OAKLEY_DES_CBC is not supported$"):
        ike_cipher_by_id(1)
    with pytest.raises(UnsupportedAlgorithm, match="OAKLEY encryption algorithm 3 is not"):
        ike_cipher_by_id(3)
    with pytest.raises(UnsupportedAlgorithm, match="OAKLEY encryption algorithm 0 is not"):
        ike_cipher_by_id(0)  # the IKEv2-only AEAD ciphers have no Oakley number
    with pytest.raises(UnsupportedAlgorithm, match="ESP authentication algorithm 3 is not"):
        esp_integrity_by_id(3)
    with pytest.raises(UnsupportedAlgorithm, match="^ESP_DES is not supported$"):
        get_esp_cipher("des")
    with pytest.raises(UnsupportedAlgorithm, match="^ESP_NULL is not supported$"):
        get_esp_cipher("null")
    with pytest.raises(UnsupportedAlgorithm, match="allowed: md5, sha1"):
        get_hash("tiger")


def test_proposal_properties() -> None:
    ike = I("aes_cbc", 256, "sha2_256", 14)
    assert ike.key_size == 32 and ike.dh_group.bits == 2048
    assert ike.cipher_algorithm.block_size == 16 and ike.hash_algorithm.digest_size == 32
    esp = E("aes_gcm_16", 128, None)
    assert esp.integrity_algorithm is None and esp.keymat_length == 20
    assert E("aes_cbc", 128, "sha1").keymat_length == 36
