"""fswan.ikev2.suites: ike=/esp= proposals as IKEv2 SA payloads, both roles' choices,
Child SA key layout; checked against charon's real exchange in tests/data/ikev2/."""

from __future__ import annotations

from dataclasses import replace

import pytest

from fswan.config.model import Ikev2Policy
from fswan.ike.outbox import Outbox
from fswan.ike.select import Connections
from fswan.ikev2 import crypto
from fswan.ikev2.constants import DhGroup, EncrId, EsnId, IntegId, PrfId, ProtocolId, TransformType
from fswan.ikev2.payloads import Attribute, Proposal, SecurityAssociation, Transform
from fswan.ikev2.suites import (
    accept_esp,
    accept_ike,
    child_keys,
    choose_esp,
    choose_ike,
    describe_esp,
    describe_ike,
    esp_proposals,
    ike_proposals,
    ike_suite,
    ikev2_usable,
)
from fswan.suites import (
    DEFAULT_ESP_PROPOSALS,
    DEFAULT_IKE_PROPOSALS,
    EspProposal,
    IkeProposal,
    ProposalError,
    parse_esp,
    parse_ike,
)
from tests.ike_pair import EAST, conn, oriented, psk_secrets
from tests.unit.test_ikev2_vectors import load, logged

ENCR, PRF, INTEG, DH, ESN = (TransformType.ENCR, TransformType.PRF, TransformType.INTEG,
                             TransformType.DH, TransformType.ESN)


def kinds(proposal: Proposal) -> list[tuple[int, int, int | None]]:
    return [(t.type, t.id, t.key_length) for t in proposal.transforms]


def wire(sa: SecurityAssociation) -> SecurityAssociation:
    """Through the codec, as the peer would see it."""
    return SecurityAssociation.decode_body(sa.encode_body(), "test")


# ---------------------------------------------------------------------------
# building


def test_ike_proposals_map_every_transform() -> None:
    sa = ike_proposals(parse_ike("aes256-sha256-modp2048,aes128-sha1-ecp256,aes128-md5-modp1024,"
                                 "aes192-sha512-modp4096,aes128-sha384-prfsha512-ecp384"))
    assert [p.number for p in sa.proposals] == [1, 2, 3, 4, 5]
    assert all(p.protocol == ProtocolId.IKE and p.spi == b"" for p in sa.proposals)
    assert kinds(sa.proposals[0]) == [(ENCR, EncrId.AES_CBC, 256), (INTEG, IntegId.HMAC_SHA2_256_128, None),
                                      (PRF, PrfId.HMAC_SHA2_256, None), (DH, DhGroup.MODP_2048, None)]
    assert kinds(sa.proposals[1])[1:] == [(INTEG, IntegId.HMAC_SHA1_96, None), (PRF, PrfId.HMAC_SHA1, None),
                                          (DH, DhGroup.ECP_256, None)]
    assert kinds(sa.proposals[2])[1:3] == [(INTEG, IntegId.HMAC_MD5_96, None), (PRF, PrfId.HMAC_MD5, None)]
    assert kinds(sa.proposals[3])[:3] == [(ENCR, EncrId.AES_CBC, 192), (INTEG, IntegId.HMAC_SHA2_512_256, None),
                                          (PRF, PrfId.HMAC_SHA2_512, None)]
    assert kinds(sa.proposals[4])[1:3] == [(INTEG, IntegId.HMAC_SHA2_384_192, None),
                                           (PRF, PrfId.HMAC_SHA2_512, None)]
    assert wire(sa) == sa


def test_aead_ike_proposals_have_no_integ() -> None:
    sa = ike_proposals(parse_ike("aes256gcm16-prfsha256-modp2048,chacha20poly1305-prfsha384-curve25519,"
                                 "aes128gcm8-prfsha256-ecp256"))
    assert kinds(sa.proposals[0]) == [(ENCR, EncrId.AES_GCM_16, 256), (PRF, PrfId.HMAC_SHA2_256, None),
                                      (DH, DhGroup.MODP_2048, None)]
    # RFC 7634: no Key Length attribute for ChaCha20-Poly1305
    assert kinds(sa.proposals[1]) == [(ENCR, EncrId.CHACHA20_POLY1305, None),
                                      (PRF, PrfId.HMAC_SHA2_384, None), (DH, DhGroup.CURVE25519, None)]
    assert sa.proposals[2].transforms[0].id == EncrId.AES_GCM_8


def test_3des_is_skipped_and_nothing_usable_is_an_error() -> None:
    sa = ike_proposals(DEFAULT_IKE_PROPOSALS, spi=bytes(range(8)))
    assert len(sa.proposals) == 5  # the two 3DES defaults left out
    assert all(p.spi == bytes(range(8)) for p in sa.proposals)
    assert not ikev2_usable(IkeProposal("3des_cbc", 192, "sha1", 14))
    with pytest.raises(ProposalError, match="^ike=: no proposal IKEv2 can use"):
        ike_proposals(parse_ike("3des-sha1-modp2048"))
    with pytest.raises(ValueError):
        ike_proposals(())


def test_ike_suite() -> None:
    assert ike_suite(IkeProposal("aes_cbc", 128, "sha2_256", 14)) == crypto.IkeSuite(
        EncrId.AES_CBC, 128, PrfId.HMAC_SHA2_256, IntegId.HMAC_SHA2_256_128)
    gcm = ike_suite(IkeProposal("aes_gcm_16", 256, "sha2_384", 20))
    assert gcm == crypto.IkeSuite(EncrId.AES_GCM_16, 256, PrfId.HMAC_SHA2_384)
    assert gcm.aead and gcm.encr_key_size == 36
    prf = ike_suite(IkeProposal("aes_cbc", 256, "sha1", 14, "sha2_512"))
    assert prf.prf == PrfId.HMAC_SHA2_512 and prf.integ == IntegId.HMAC_SHA1_96


def test_esp_proposals_esn_always_dh_only_with_pfs() -> None:
    sa = esp_proposals(parse_esp("aes128-sha256,aes_gcm256,3des-sha1"), 0x12345678, None)
    assert all(p.protocol == ProtocolId.ESP and p.spi == bytes.fromhex("12345678") for p in sa.proposals)
    assert kinds(sa.proposals[0]) == [(ENCR, EncrId.AES_CBC, 128), (INTEG, IntegId.HMAC_SHA2_256_128, None),
                                      (ESN, EsnId.NO_ESN, None)]
    assert kinds(sa.proposals[1]) == [(ENCR, EncrId.AES_GCM_16, 256), (ESN, EsnId.NO_ESN, None)]
    assert kinds(sa.proposals[2]) == [(ENCR, EncrId.TRIPLE_DES, None), (INTEG, IntegId.HMAC_SHA1_96, None),
                                      (ESN, EsnId.NO_ESN, None)]
    pfs = esp_proposals(parse_esp("aes128-sha256"), 1, 19)
    assert kinds(pfs.proposals[0])[2:] == [(DH, DhGroup.ECP_256, None), (ESN, EsnId.NO_ESN, None)]
    assert wire(pfs) == pfs


# ---------------------------------------------------------------------------
# choosing and accepting


def test_ike_round_trip() -> None:
    ours = parse_ike("aes256-sha256-modp2048,aes256gcm16-prfsha256-ecp256")
    offer = wire(ike_proposals(ours))
    picked = choose_ike(offer, ours)
    assert picked is not None
    reply, proposal = picked
    assert proposal == ours[0] and reply.number == 1 and reply.spi == b""
    assert accept_ike(wire(SecurityAssociation((reply,))), ours) == ours[0]


def test_responder_narrows_to_its_preference() -> None:
    peer = parse_ike("aes128-sha1-modp2048,aes256-sha256-modp2048,aes256gcm16-prfsha256-ecp256")
    ours = parse_ike("aes256gcm16-prfsha256-ecp256,aes256-sha256-modp2048")
    picked = choose_ike(wire(ike_proposals(peer)), ours)
    assert picked is not None
    reply, proposal = picked
    assert proposal == ours[0] and reply.number == 3
    assert kinds(reply) == [(ENCR, EncrId.AES_GCM_16, 256), (PRF, PrfId.HMAC_SHA2_256, None),
                            (DH, DhGroup.ECP_256, None)]


def test_one_peer_proposal_with_many_transforms() -> None:
    """strongSwan's style: every algorithm of a type in one proposal; the reply has one of each."""
    many = Proposal(1, ProtocolId.IKE, b"", (
        Transform(ENCR, EncrId.AES_CBC, (Attribute(14, 128),)),
        Transform(ENCR, EncrId.AES_CBC, (Attribute(14, 256),)),
        Transform(PRF, PrfId.HMAC_SHA2_256), Transform(PRF, PrfId.HMAC_SHA1),
        Transform(INTEG, IntegId.HMAC_SHA1_96), Transform(INTEG, IntegId.HMAC_SHA2_256_128),
        Transform(DH, DhGroup.ECP_256), Transform(DH, DhGroup.MODP_2048),
    ))
    ours = parse_ike("aes256-sha256-modp2048")
    picked = choose_ike(SecurityAssociation((many,)), ours)
    assert picked is not None
    assert kinds(picked[0]) == [(ENCR, EncrId.AES_CBC, 256), (INTEG, IntegId.HMAC_SHA2_256_128, None),
                                (PRF, PrfId.HMAC_SHA2_256, None), (DH, DhGroup.MODP_2048, None)]
    # the initiator takes only exactly one of ours
    assert accept_ike(SecurityAssociation((many,)), ours) is None


@pytest.mark.parametrize("peer, ours", [
    ("aes128-sha256-modp2048", "aes256-sha256-modp2048"),  # key length
    ("aes256-sha1-modp2048", "aes256-sha256-modp2048"),  # PRF and INTEG
    ("aes256-sha256-modp2048", "aes256-sha256-ecp256"),  # DH must be ours exactly
    ("aes256-sha256-prfsha384-modp2048", "aes256-sha256-modp2048"),  # PRF
    ("aes256gcm16-prfsha256-modp2048", "aes256gcm12-prfsha256-modp2048"),  # ICV length
    ("aes256gcm16-prfsha256-modp2048", "aes256-sha256-modp2048"),
])
def test_no_match_is_none(peer: str, ours: str) -> None:
    assert choose_ike(wire(ike_proposals(parse_ike(peer))), parse_ike(ours)) is None
    assert accept_ike(wire(ike_proposals(parse_ike(peer))), parse_ike(ours)) is None


def test_unknown_attribute_or_transform_type_is_not_matched() -> None:
    ours = parse_ike("aes128-sha256-modp2048")
    base = ike_proposals(ours).proposals[0]
    odd_attr = replace(base, transforms=(Transform(ENCR, EncrId.AES_CBC, (Attribute(14, 128), Attribute(99, 1))),
                                         *base.transforms[1:]))
    assert choose_ike(SecurityAssociation((odd_attr,)), ours) is None
    extra = replace(base, transforms=(*base.transforms, Transform(6, 5)))  # RFC 9370 ADDKE, required
    assert choose_ike(SecurityAssociation((extra,)), ours) is None
    optional = replace(base, transforms=(*base.transforms, Transform(6, 5), Transform(6, 0)))
    assert choose_ike(SecurityAssociation((optional,)), ours) is not None


def test_aead_peer_may_send_integ_none() -> None:
    ours = parse_ike("aes256gcm16-prfsha256-modp2048")
    base = ike_proposals(ours).proposals[0]
    with_none = replace(base, transforms=(*base.transforms, Transform(INTEG, IntegId.NONE)))
    picked = choose_ike(SecurityAssociation((with_none,)), ours)
    assert picked is not None and not picked[0].transforms_of(INTEG)
    assert accept_ike(SecurityAssociation((with_none,)), ours) == ours[0]
    with_hmac = replace(base, transforms=(*base.transforms, Transform(INTEG, IntegId.HMAC_SHA1_96)))
    assert choose_ike(SecurityAssociation((with_hmac,)), ours) is None


def test_accept_ike_wants_one_proposal_one_of_each() -> None:
    ours = parse_ike("aes256-sha256-modp2048,aes128-sha256-modp2048")
    offer = ike_proposals(ours)
    assert accept_ike(offer, ours) is None  # two proposals
    one = offer.proposals[1]
    assert accept_ike(SecurityAssociation((one,)), ours) == ours[1]
    doubled = replace(one, transforms=(*one.transforms, Transform(DH, DhGroup.ECP_256)))
    assert accept_ike(SecurityAssociation((doubled,)), ours) is None
    missing = replace(one, transforms=one.transforms[:-1])
    assert accept_ike(SecurityAssociation((missing,)), ours) is None
    esp = replace(one, protocol=ProtocolId.ESP)
    assert accept_ike(SecurityAssociation((esp,)), ours) is None


def test_esp_round_trip_with_spis() -> None:
    ours = parse_esp("aes_gcm256,aes128-sha256")
    offer = wire(esp_proposals(ours, 0xC0FFEE01, None))
    picked = choose_esp(offer, tuple(reversed(ours)), None)
    assert picked is not None
    reply, proposal, peer_spi = picked
    assert proposal == ours[1] and peer_spi == 0xC0FFEE01 and reply.number == 2 and reply.spi == b""
    assert kinds(reply) == [(ENCR, EncrId.AES_CBC, 128), (INTEG, IntegId.HMAC_SHA2_256_128, None),
                            (ESN, EsnId.NO_ESN, None)]
    answer = SecurityAssociation((replace(reply, spi=(0xBEEF0002).to_bytes(4, "big")),))
    assert accept_esp(wire(answer), ours, None) == (ours[1], 0xBEEF0002)


def test_esp_pfs_group_must_match() -> None:
    ours = parse_esp("aes128-sha256")
    with_pfs = wire(esp_proposals(ours, 7, 14))
    assert choose_esp(with_pfs, ours, None) is None  # the peer insists on a DH we do not want
    assert choose_esp(with_pfs, ours, 19) is None
    picked = choose_esp(with_pfs, ours, 14)
    assert picked is not None and picked[0].transforms_of(DH)[0].id == DhGroup.MODP_2048
    assert choose_esp(wire(esp_proposals(ours, 7, None)), ours, 14) is None  # we want PFS, peer offers none
    reply = SecurityAssociation((replace(picked[0], spi=bytes(4)),))
    assert accept_esp(reply, ours, 14) == (ours[0], 0)
    assert accept_esp(reply, ours, None) is None


def test_esp_dh_none_and_missing_esn_are_accepted() -> None:
    ours = parse_esp("aes_gcm128")
    base = esp_proposals(ours, 9, None).proposals[0]
    peer = replace(base, transforms=(base.transforms[0], Transform(DH, DhGroup.NONE)))  # no ESN transform
    picked = choose_esp(SecurityAssociation((peer,)), ours, None)
    assert picked is not None and kinds(picked[0]) == [(ENCR, EncrId.AES_GCM_16, 128)]
    assert accept_esp(SecurityAssociation((peer,)), ours, None) == (ours[0], 9)
    with_esn = replace(base, transforms=(base.transforms[0], Transform(ESN, EsnId.ESN)))
    assert choose_esp(SecurityAssociation((with_esn,)), ours, None) is None  # ESN only: we cannot
    short_spi = replace(base, spi=b"\x01")
    assert choose_esp(SecurityAssociation((short_spi,)), ours, None) is None


def test_defaults_round_trip() -> None:
    picked = choose_esp(wire(esp_proposals(DEFAULT_ESP_PROPOSALS, 1, None)), DEFAULT_ESP_PROPOSALS, None)
    assert picked is not None and picked[1] == DEFAULT_ESP_PROPOSALS[0]
    ike = choose_ike(wire(ike_proposals(DEFAULT_IKE_PROPOSALS)), DEFAULT_IKE_PROPOSALS)
    assert ike is not None and ike[1] == DEFAULT_IKE_PROPOSALS[0]


# ---------------------------------------------------------------------------
# keys and names


def test_child_keys_cbc_layout() -> None:
    proposal = EspProposal("aes_cbc", 128, "sha2_256")
    keymat = bytes(range(96))
    inbound, outbound = child_keys(proposal, keymat, initiator=True)
    # i->r: enc 0..15, integ 16..47; r->i: enc 48..63, integ 64..95
    assert outbound.encryption_key == keymat[0:16] and outbound.integrity_key == keymat[16:48]
    assert inbound.encryption_key == keymat[48:64] and inbound.integrity_key == keymat[64:96]
    assert outbound.salt == b"" == inbound.salt
    assert child_keys(proposal, keymat, initiator=False) == (outbound, inbound)


def test_child_keys_gcm_layout() -> None:
    proposal = EspProposal("aes_gcm_16", 256, None)
    keymat = bytes(range(72))
    inbound, outbound = child_keys(proposal, keymat, initiator=False)
    assert inbound.encryption_key == keymat[0:32] and inbound.salt == keymat[32:36]
    assert outbound.encryption_key == keymat[36:68] and outbound.salt == keymat[68:72]
    assert inbound.integrity_key == b"" == outbound.integrity_key
    with pytest.raises(ValueError, match="KEYMAT is 71 bytes; 72 required"):
        child_keys(proposal, keymat[:71], initiator=True)


def test_describe() -> None:
    assert describe_ike(IkeProposal("aes_cbc", 256, "sha2_256", 14)) == (
        "AES_CBC_256/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048")
    assert describe_ike(IkeProposal("aes_gcm_16", 128, "sha2_384", 19)) == "AES_GCM_16_128/PRF_HMAC_SHA2_384/ECP_256"
    assert describe_ike(IkeProposal("chacha20poly1305", 256, "sha2_256", 31)) == (
        "CHACHA20_POLY1305/PRF_HMAC_SHA2_256/CURVE25519")
    assert describe_ike(IkeProposal("aes_cbc", 128, "sha1", 5, "sha2_512")) == (
        "AES_CBC_128/HMAC_SHA1_96/PRF_HMAC_SHA2_512/MODP_1536")
    assert describe_esp(EspProposal("aes_gcm_16", 256, None), None) == "AES_GCM_16_256"
    assert describe_esp(EspProposal("aes_cbc", 128, "sha2_256"), 14) == "AES_CBC_128/HMAC_SHA2_256_128/MODP_2048"
    assert describe_esp(EspProposal("3des_cbc", 192, "md5"), None) == "3DES_CBC/HMAC_MD5_96"


# ---------------------------------------------------------------------------
# the IKEv1 side refuses IKEv2-only ike= (fswan/ike/select.py)


@pytest.mark.parametrize("policy, refused", [(Ikev2Policy.PERMIT, True), (Ikev2Policy.PROPOSE, True),
                                             (Ikev2Policy.NEVER, True), (Ikev2Policy.INSIST, False)])
def test_connections_refuse_ikev2_only_proposals_for_ikev1(policy: Ikev2Policy, refused: bool) -> None:
    table = Connections(psk_secrets(""), Outbox())
    entry = oriented(conn(ike="aes256gcm16-prfsha256-modp2048", ikev2=policy), EAST)
    if refused:
        with pytest.raises(ProposalError, match="AES_GCM_16 is IKEv2 only"):
            table.add(entry)
    else:
        table.add(entry)
        assert table.entries["net"].ike == parse_ike("aes256gcm16-prfsha256-modp2048")


# ---------------------------------------------------------------------------
# charon's real exchange (tests/data/ikev2/)

#: folder -> (our ike=, our esp=) as in its swanctl.conf
CHARON = {
    "cbc": ("aes128-sha256-modp2048", "aes128-sha256"),
    "gcm": ("aes256gcm16-prfsha256-modp2048", "aes256gcm16"),
}


@pytest.mark.parametrize("variant", sorted(CHARON))
def test_charons_ike_sa_init_offer(variant: str) -> None:
    run = load(variant)
    ike = parse_ike(CHARON[variant][0])
    offer = run.init_i.get(SecurityAssociation)
    assert offer is not None
    # amid our other proposals, the one charon was configured with is chosen
    ours = parse_ike("aes256-sha2_512-ecp521,aes128-sha1-modp1024") + ike
    picked = choose_ike(offer, ours)
    assert picked is not None
    reply, proposal = picked
    assert proposal == ike[0]
    # the responder (charon east) answered with exactly this proposal
    answered = run.init_r.get(SecurityAssociation)
    assert answered is not None and answered.proposals == (reply,)
    assert accept_ike(answered, ike) == ike[0]
    assert ike_suite(proposal) == run.suite()
    # and our own offer for that ike= is what charon sent
    assert ike_proposals(ike) == offer


@pytest.mark.parametrize("variant", sorted(CHARON))
def test_charons_child_sa(variant: str) -> None:
    run = load(variant)
    esp = parse_esp(CHARON[variant][1])
    keys, suite = run.keys(), run.suite()
    request = crypto.unprotect(suite, keys.sender(True), run.datagrams[2])
    response = crypto.unprotect(suite, keys.sender(False), run.datagrams[3])
    offer, answer = request.get(SecurityAssociation), response.get(SecurityAssociation)
    assert offer is not None and answer is not None
    picked = choose_esp(offer, parse_esp("aes256-sha2_512") + esp, None)
    assert picked is not None
    reply, proposal, west_spi = picked
    assert proposal == esp[0] and west_spi == int.from_bytes(offer.proposals[0].spi, "big")
    east_spi = int.from_bytes(answer.proposals[0].spi, "big")
    assert answer.proposals == (replace(reply, spi=east_spi.to_bytes(4, "big")),)
    assert accept_esp(answer, esp, None) == (esp[0], east_spi)
    assert esp_proposals(esp, west_spi, None) == offer
    # the logged SPIs: east's inbound is the one it put in its answer
    text = run.east.read_text()
    assert f"SPIs {east_spi:08x}_i {west_spi:08x}_o" in text

    # Child SA keys: KEYMAT from the logged secrets, split as charon did
    ni, nr = run.nonces()
    keymat = crypto.child_keymat(suite.prf, keys.sk_d, ni, nr, 2 * proposal.keymat_length)
    inbound, outbound = child_keys(proposal, keymat, initiator=True)  # west
    assert [outbound.encryption_key + outbound.salt] == logged(run.west, "encryption initiator key")
    assert [inbound.encryption_key + inbound.salt] == logged(run.west, "encryption responder key")
    if proposal.integrity is not None:
        assert [outbound.integrity_key] == logged(run.west, "integrity initiator key")
        assert [inbound.integrity_key] == logged(run.west, "integrity responder key")
    east_in, east_out = child_keys(proposal, keymat, initiator=False)
    assert (east_in, east_out) == (outbound, inbound)

