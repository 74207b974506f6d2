"""SA payloads: ours, choosing from a peer's, checking a peer's choice (fswan.ike.proposals)."""

from __future__ import annotations

import pytest

from fswan.ike.proposals import (
    NO_IKE_PROPOSAL,
    NO_IPSEC_PROPOSAL,
    NoAcceptableProposal,
    accept_esp_reply,
    accept_ike_reply,
    auth_methods_of,
    choose_esp,
    choose_ike,
    describe_esp_sa,
    esp_reply_sa,
    esp_sa_payload,
    ike_reply_sa,
    ike_sa_payload,
)
from fswan.isakmp.attributes import Attribute
from fswan.isakmp.constants import (
    EncapsulationMode,
    EspTransformId,
    IPsecAttr,
    IsakmpTransformId,
    OakleyAttr,
    OakleyAuth,
    ProtocolId,
)
from fswan.isakmp.payloads import Proposal, SAPayload, Transform
from fswan.suites import EspProposal, IkeProposal, parse_esp, parse_ike
from tests.pcap import read_pcap
from tests.ike_pair import DATA

PSK = OakleyAuth.OAKLEY_PRESHARED_KEY
RSA = OakleyAuth.OAKLEY_RSA_SIG
TUNNEL = EncapsulationMode.TUNNEL


def roundtrip(sa: SAPayload) -> SAPayload:
    """What the peer sees: the SA decoded from our bytes."""
    return SAPayload.decode(sa.encode())


# --------------------------------------------------------------------------
# phase 1


def test_ike_sa_layout_is_one_proposal_with_a_transform_each():
    ours = parse_ike("aes128-sha1-modp2048,3des-md5-modp1024")
    sa = roundtrip(ike_sa_payload(ours, [PSK], 3600))
    (proposal,) = sa.proposals
    assert proposal.protocol == ProtocolId.ISAKMP and proposal.spi == b""
    first, second = proposal.transforms
    assert (first.number, first.id) == (1, IsakmpTransformId.KEY_IKE)
    assert first.value(OakleyAttr.OAKLEY_KEY_LENGTH) == 128
    assert second.value(OakleyAttr.OAKLEY_KEY_LENGTH) is None  # 3DES has a fixed key
    assert second.value(OakleyAttr.OAKLEY_GROUP_DESCRIPTION) == 2
    assert first.value(OakleyAttr.OAKLEY_LIFE_DURATION) == 3600


def test_long_lifetime_goes_out_as_a_variable_attribute_and_comes_back():
    (ours,) = parse_ike("aes128-sha1-modp2048")
    sa = roundtrip(ike_sa_payload([ours], [PSK], 86400 * 2))
    choice = choose_ike(sa, [ours], [PSK], 86400 * 3)
    assert choice.lifetime == 86400 * 2


@pytest.mark.parametrize(
    "text", ["aes128-sha1-modp2048", "aes256-sha2_256-modp3072", "3des-md5-modp1024"]
)
def test_ike_choose_and_accept_round_trip(text):
    ours = parse_ike(text)
    offer = roundtrip(ike_sa_payload(ours, [PSK], 3600))
    choice = choose_ike(offer, ours, [PSK], 3600)
    assert choice.ike == ours[0] and choice.auth == PSK
    reply = roundtrip(ike_reply_sa(choice))
    accepted = accept_ike_reply(reply, ours, [PSK], 3600)
    assert accepted.ike == ours[0]
    # the responder echoes the initiator's transform byte for byte
    assert reply.proposals[0].transforms[0].encode() == offer.proposals[0].transforms[0].encode()


def test_responder_takes_the_peers_order():
    peer = parse_ike("3des-sha1-modp1024,aes128-sha1-modp2048")
    ours = parse_ike("aes128-sha1-modp2048,3des-sha1-modp1024")
    choice = choose_ike(roundtrip(ike_sa_payload(peer, [PSK], 3600)), ours, [PSK], 3600)
    assert choice.ike == peer[0] and choice.transform.number == 1


def test_auth_method_must_be_allowed():
    ours = parse_ike("aes128-sha1-modp2048")
    offer = roundtrip(ike_sa_payload(ours, [RSA], 3600))
    assert auth_methods_of(offer) == [RSA]
    with pytest.raises(NoAcceptableProposal):
        choose_ike(offer, ours, [PSK], 3600)
    assert choose_ike(offer, ours, [PSK, RSA], 3600).auth == RSA


def test_ike_mismatch_names_both_sides():
    ours = parse_ike("aes128-sha1-modp2048,aes256-sha2_256-modp3072")
    peer = parse_ike("3des-md5-modp1024")
    with pytest.raises(NoAcceptableProposal) as caught:
        choose_ike(roundtrip(ike_sa_payload(peer, [PSK], 3600)), ours, [PSK], 3600)
    assert caught.value.lines == [
        NO_IKE_PROPOSAL,
        "our proposals: AES_CBC_128-HMAC_SHA1-MODP2048, AES_CBC_256-HMAC_SHA2_256-MODP3072; "
        "peer proposed: 3DES_CBC-HMAC_MD5-MODP1024",
    ]


def _des_transform(number: int = 1) -> Transform:
    return Transform(
        number,
        IsakmpTransformId.KEY_IKE,
        (
            Attribute(OakleyAttr.OAKLEY_ENCRYPTION_ALGORITHM, 1),  # OAKLEY_DES_CBC
            Attribute(OakleyAttr.OAKLEY_HASH_ALGORITHM, 2),
            Attribute(OakleyAttr.OAKLEY_GROUP_DESCRIPTION, 2),
            Attribute(OakleyAttr.OAKLEY_AUTHENTICATION_METHOD, 1),
        ),
    )


def test_single_des_is_refused_and_skipped():
    ours = parse_ike("aes128-sha1-modp2048")
    good = ike_sa_payload(ours, [PSK], 3600).proposals[0].transforms[0]
    good = Transform(2, good.id, good.attributes)
    offer = roundtrip(SAPayload((Proposal(1, ProtocolId.ISAKMP, b"", (_des_transform(), good)),)))
    choice = choose_ike(offer, ours, [PSK], 3600)
    assert choice.transform.number == 2
    assert choice.notes == ("OAKLEY_DES_CBC is not supported",)
    only_des = roundtrip(SAPayload((Proposal(1, ProtocolId.ISAKMP, b"", (_des_transform(),)),)))
    with pytest.raises(NoAcceptableProposal) as caught:
        choose_ike(only_des, ours, [PSK], 3600)
    assert caught.value.notes == ["OAKLEY_DES_CBC is not supported"]
    assert "peer proposed: OAKLEY_DES_CBC-HMAC_SHA1-MODP1024" in caught.value.lines[1]


def test_ike_lifetime_is_capped_at_ours():
    ours = parse_ike("aes128-sha1-modp2048")
    offer = roundtrip(ike_sa_payload(ours, [PSK], 28800))
    assert choose_ike(offer, ours, [PSK], 3600).lifetime == 3600
    offer = roundtrip(ike_sa_payload(ours, [PSK], 1200))
    assert choose_ike(offer, ours, [PSK], 3600).lifetime == 1200


def test_initiator_rejects_a_transform_it_did_not_offer():
    ours = parse_ike("aes128-sha1-modp2048")
    other = parse_ike("aes256-sha1-modp2048")
    reply = roundtrip(ike_sa_payload(other, [PSK], 3600))
    with pytest.raises(NoAcceptableProposal):
        accept_ike_reply(reply, ours, [PSK], 3600)
    two = roundtrip(ike_sa_payload(ours + ours, [PSK], 3600))
    with pytest.raises(NoAcceptableProposal, match="exactly one"):
        accept_ike_reply(two, ours, [PSK], 3600)


def test_strongswan_mm1_is_acceptable_to_the_lab_configuration():
    mm1 = read_pcap(DATA / "psk-main.pcap")[0].payload
    from fswan.isakmp.message import decode_message

    sa = decode_message(mm1).find(SAPayload)
    choice = choose_ike(sa, parse_ike("aes128-sha1-modp2048"), [PSK], 3600)
    assert choice.ike == IkeProposal("aes_cbc", 128, "sha1", 14)
    assert choice.lifetime == 3600  # strongSwan proposes 15840 s


# --------------------------------------------------------------------------
# phase 2


ESP_FAMILIES = ["aes_gcm128", "aes_gcm256", "aes128-sha1", "aes256-sha2_256", "3des-sha1"]


@pytest.mark.parametrize("text", ESP_FAMILIES)
@pytest.mark.parametrize("group", [None, 14])
def test_esp_choose_and_accept_round_trip(text, group):
    ours = parse_esp(text)
    offer = roundtrip(esp_sa_payload(ours, 0x12345678, TUNNEL, 28800, group))
    choice = choose_esp(
        offer,
        ours,
        pfs_group=group,
        pfs_required=group is not None,
        modes=[TUNNEL],
        our_lifetime=28800,
    )
    assert choice.spi == 0x12345678 and choice.group == group
    assert choice.esp.cipher == ours[0].cipher and choice.esp.integrity == ours[0].integrity
    reply = roundtrip(esp_reply_sa(choice, 0x9ABCDEF0))
    accepted = accept_esp_reply(
        reply, ours, pfs_group=group, encapsulation=TUNNEL, our_lifetime=28800
    )
    assert accepted.spi == 0x9ABCDEF0 and accepted.esp == choice.esp


def test_esp_mismatch_names_both_sides():
    ours = parse_esp("aes256-sha2_256")
    offer = roundtrip(
        esp_sa_payload(parse_esp("aes128-sha1,3des-sha1"), 0x1000, TUNNEL, 3600, None)
    )
    with pytest.raises(NoAcceptableProposal) as caught:
        choose_esp(
            offer, ours, pfs_group=None, pfs_required=False, modes=[TUNNEL], our_lifetime=3600
        )
    assert caught.value.lines == [
        NO_IPSEC_PROPOSAL,
        "our proposals: AES_CBC_256-HMAC_SHA2_256_128; "
        "peer proposed: AES_CBC_128-HMAC_SHA1_96, 3DES_CBC-HMAC_SHA1_96",
    ]


def test_pfs_required_but_not_offered():
    ours = parse_esp("aes128-sha1")
    offer = roundtrip(esp_sa_payload(ours, 0x1000, TUNNEL, 3600, None))
    with pytest.raises(NoAcceptableProposal) as caught:
        choose_esp(offer, ours, pfs_group=14, pfs_required=True, modes=[TUNNEL], our_lifetime=3600)
    assert "AES_CBC_128-HMAC_SHA1_96-MODP2048" in caught.value.lines[1]
    # a peer asking for PFS is welcome even when we do not insist
    offer = roundtrip(esp_sa_payload(ours, 0x1000, TUNNEL, 3600, 14))
    assert (
        choose_esp(
            offer, ours, pfs_group=None, pfs_required=False, modes=[TUNNEL], our_lifetime=3600
        ).group
        == 14
    )


def test_encapsulation_mode_must_be_acceptable():
    ours = parse_esp("aes128-sha1")
    offer = roundtrip(esp_sa_payload(ours, 0x1000, EncapsulationMode.UDP_TUNNEL_DRAFT, 3600, None))
    with pytest.raises(NoAcceptableProposal):
        choose_esp(
            offer, ours, pfs_group=None, pfs_required=False, modes=[TUNNEL], our_lifetime=3600
        )
    choice = choose_esp(
        offer,
        ours,
        pfs_group=None,
        pfs_required=False,
        modes=[TUNNEL, EncapsulationMode.UDP_TUNNEL_DRAFT],
        our_lifetime=3600,
    )
    assert choice.encapsulation == 61443


def test_esp_lifetime_capped_and_des_refused():
    ours = parse_esp("aes128-sha1")
    des = Transform(
        1,
        EspTransformId.ESP_DES,
        (Attribute(IPsecAttr.AUTH_ALGORITHM, 2), Attribute(IPsecAttr.ENCAPSULATION_MODE, 1)),
    )
    good = esp_sa_payload(ours, 0x1000, TUNNEL, 86400, None).proposals[0].transforms[0]
    good = Transform(2, good.id, good.attributes)
    offer = roundtrip(
        SAPayload((Proposal(1, ProtocolId.ESP, bytes.fromhex("00001000"), (des, good)),))
    )
    choice = choose_esp(
        offer, ours, pfs_group=None, pfs_required=False, modes=[TUNNEL], our_lifetime=3600
    )
    assert choice.lifetime == 3600 and choice.notes == ("ESP_DES is not supported",)
    assert describe_esp_sa(offer) == "ESP_DES, AES_CBC_128-HMAC_SHA1_96"


def test_bundles_and_bad_spis_are_skipped():
    ours = parse_esp("aes128-sha1")
    esp = esp_sa_payload(ours, 0x1000, TUNNEL, 3600, None).proposals[0]
    ah = Proposal(1, ProtocolId.AH, bytes(4), (Transform(1, 3),))
    with pytest.raises(NoAcceptableProposal):
        choose_esp(
            roundtrip(SAPayload((esp, ah))),
            ours,
            pfs_group=None,
            pfs_required=False,
            modes=[TUNNEL],
            our_lifetime=3600,
        )
    tiny = Proposal(1, ProtocolId.ESP, bytes.fromhex("00000001"), esp.transforms)
    with pytest.raises(NoAcceptableProposal):
        choose_esp(
            roundtrip(SAPayload((tiny,))),
            ours,
            pfs_group=None,
            pfs_required=False,
            modes=[TUNNEL],
            our_lifetime=3600,
        )


def test_reply_checks():
    ours = parse_esp("aes128-sha1")
    offer = roundtrip(esp_sa_payload(ours, 0x1000, TUNNEL, 3600, 14))
    choice = choose_esp(
        offer, ours, pfs_group=14, pfs_required=True, modes=[TUNNEL], our_lifetime=3600
    )
    reply = roundtrip(esp_reply_sa(choice, 0x2000))
    with pytest.raises(NoAcceptableProposal, match="PFS group"):
        accept_esp_reply(reply, ours, pfs_group=None, encapsulation=TUNNEL, our_lifetime=3600)
    with pytest.raises(NoAcceptableProposal, match="encapsulation"):
        accept_esp_reply(reply, ours, pfs_group=14, encapsulation=3, our_lifetime=3600)
    with pytest.raises(NoAcceptableProposal, match="did not propose"):
        accept_esp_reply(
            reply, parse_esp("aes256-sha1"), pfs_group=14, encapsulation=TUNNEL, our_lifetime=3600
        )
    assert accept_esp_reply(
        reply, ours, pfs_group=14, encapsulation=TUNNEL, our_lifetime=3600
    ).esp == EspProposal("aes_cbc", 128, "sha1", 14)
