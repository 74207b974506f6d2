"""Elliptic-curve DH groups 19, 20, 21 (RFC 5903) and 31 (RFC 8031): vectors, point
checks, the ``ike=``/``esp=``/``pfsgroup=`` spellings, and two engines agreeing."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from fswan.config.ipsecconf import parse_config
from fswan.config.errors import ConfigErrors
from fswan.ike import dh
from fswan.suites import (
    EspProposal,
    IkeProposal,
    ProposalError,
    format_proposal,
    group_spellings,
    parse_esp,
    parse_ike,
    with_pfs_group,
)
from tests.ike_pair import conn, make_pair, mirrored

# --------------------------------------------------------------------------
# RFC 5903 section 8: i, g^i = (gix, giy), r, g^r = (grx, gry), g^ir's x


RFC5903 = {
    19: dict(
        i="C88F01F510D9AC3F70A292DAA2316DE544E9AAB8AFE84049C62A9C57862D1433",
        gix="DAD0B65394221CF9B051E1FECA5787D098DFE637FC90B9EF945D0C3772581180",
        giy="5271A0461CDB8252D61F1C456FA3E59AB1F45B33ACCF5F58389E0577B8990BB3",
        r="C6EF9C5D78AE012A011164ACB397CE2088685D8F06BF9BE0B283AB46476BEE53",
        grx="D12DFB5289C8D4F81208B70270398C342296970A0BCCB74C736FC7554494BF63",
        gry="56FBF3CA366CC23E8157854C13C58D6AAC23F046ADA30F8353E74F33039872AB",
        girx="D6840F6B42F6EDAFD13116E0E12565202FEF8E9ECE7DCE03812464D04B9442DE",
    ),
    20: dict(
        i="099F3C7034D4A2C699884D73A375A67F7624EF7C6B3C0F160647B67414DCE655"
          "E35B538041E649EE3FAEF896783AB194",
        gix="667842D7D180AC2CDE6F74F37551F55755C7645C20EF73E31634FE72B4C55EE6"
            "DE3AC808ACB4BDB4C88732AEE95F41AA",
        giy="9482ED1FC0EEB9CAFC4984625CCFC23F65032149E0E144ADA024181535A0F38E"
            "EB9FCFF3C2C947DAE69B4C634573A81C",
        r="41CB0779B4BDB85D47846725FBEC3C9430FAB46CC8DC5060855CC9BDA0AA2942"
          "E0308312916B8ED2960E4BD55A7448FC",
        grx="E558DBEF53EECDE3D3FCCFC1AEA08A89A987475D12FD950D83CFA41732BC509D"
            "0D1AC43A0336DEF96FDA41D0774A3571",
        gry="DCFBEC7AACF3196472169E838430367F66EEBE3C6E70C416DD5F0C68759DD1FF"
            "F83FA40142209DFF5EAAD96DB9E6386C",
        girx="11187331C279962D93D604243FD592CB9D0A926F422E47187521287E7156C5C4"
             "D603135569B9E9D09CF5D4A270F59746",
    ),
    21: dict(
        i="0037ADE9319A89F4DABDB3EF411AACCCA5123C61ACAB57B5393DCE47608172A0"
          "95AA85A30FE1C2952C6771D937BA9777F5957B2639BAB072462F68C27A57382D4A52",
        gix="0015417E84DBF28C0AD3C278713349DC7DF153C897A1891BD98BAB4357C9ECBE"
            "E1E3BF42E00B8E380AEAE57C2D107564941885942AF5A7F4601723C4195D176CED3E",
        giy="017CAE20B6641D2EEB695786D8C946146239D099E18E1D5A514C739D7CB4A10A"
            "D8A788015AC405D7799DC75E7B7D5B6CF2261A6A7F1507438BF01BEB6CA3926F9582",
        r="0145BA99A847AF43793FDD0E872E7CDFA16BE30FDC780F97BCCC3F078380201E"
          "9C677D600B343757A3BDBF2A3163E4C2F869CCA7458AA4A4EFFC311F5CB151685EB9",
        grx="00D0B3975AC4B799F5BEA16D5E13E9AF971D5E9B984C9F39728B5E5739735A21"
            "9B97C356436ADC6E95BB0352F6BE64A6C2912D4EF2D0433CED2B6171640012D9460F",
        gry="015C68226383956E3BD066E797B623C27CE0EAC2F551A10C2C724D9852077B87"
            "220B6536C5C408A1D2AEBB8E86D678AE49CB57091F4732296579AB44FCD17F0FC56A",
        girx="01144C7D79AE6956BC8EDB8E7C787C4521CB086FA64407F97894E5E6B2D79B04"
             "D1427E73CA4BAA240A34786859810C06B3C715A3A8CC3151F2BEE417996D19F3DDEA",
    ),
}

ECP_GROUPS = (dh.ECP256, dh.ECP384, dh.ECP521)


@pytest.mark.parametrize("number", sorted(RFC5903))
def test_rfc5903_section8_vectors_byte_for_byte(number: int) -> None:
    v = {k: bytes.fromhex(text) for k, text in RFC5903[number].items()}
    group = dh.get_group(number)
    initiator = dh.DHKeyPair(group, int.from_bytes(v["i"], "big"))
    responder = dh.DHKeyPair(group, int.from_bytes(v["r"], "big"))
    # the KE payload body is x | y, no 0x04 prefix
    assert initiator.public_bytes() == v["gix"] + v["giy"]
    assert responder.public_bytes() == v["grx"] + v["gry"]
    # the shared secret is the x coordinate alone
    assert initiator.shared_secret(v["grx"] + v["gry"]) == v["girx"]
    assert responder.shared_secret(v["gix"] + v["giy"]) == v["girx"]


@pytest.mark.parametrize("group", ECP_GROUPS, ids=str)
def test_group_sizes_and_orders(group: dh.ECPGroup) -> None:
    size = {256: 32, 384: 48, 521: 66}[group.bits]
    assert group.coordinate_length == size and group.length == 2 * size
    assert dh.GROUPS[group.number] is group
    assert dh.group_by_name(group.name.lower()) is group
    # the order: (n-1)G = -G, and OpenSSL refuses n itself
    curve = {19: ec.SECP256R1(), 20: ec.SECP384R1(), 21: ec.SECP521R1()}[group.number]
    g = ec.derive_private_key(1, curve).public_key().public_numbers()
    minus_g = ec.derive_private_key(group.order - 1, curve).public_key().public_numbers()
    assert (minus_g.x, minus_g.y) != (g.x, g.y) and minus_g.x == g.x
    with pytest.raises(ValueError):
        ec.derive_private_key(group.order, curve)


@pytest.mark.parametrize("group", ECP_GROUPS + (dh.CURVE25519,), ids=str)
def test_random_key_pairs_agree_and_pad(group: dh.ECPGroup) -> None:
    a, b = dh.DHKeyPair.generate(group), dh.DHKeyPair.generate(group)
    assert len(a.public_bytes()) == group.length
    secret = a.shared_secret(b.public_bytes())
    assert secret == b.shared_secret(a.public_bytes())
    assert len(secret) == group.coordinate_length


def test_generate_draws_the_field_size_and_rejects_out_of_range_scalars() -> None:
    draws = [b"\xff" * 32, b"\x00" * 32, (5).to_bytes(32, "big")]
    asked: list[int] = []

    def source(n: int) -> bytes:
        asked.append(n)
        return draws.pop(0)

    pair = dh.DHKeyPair.generate(dh.ECP256, source)
    assert asked == [32, 32, 32]  # n-1 < 2^256-1 and 0 are both redrawn
    assert pair.public_bytes() == dh.DHKeyPair(dh.ECP256, 5).public_bytes()
    # P-521: 66 bytes, the top 7 bits masked off
    assert dh.DHKeyPair.generate(dh.ECP521, lambda n: b"\xff" + b"\x00" * 64 + b"\x07")
    with pytest.raises(dh.DHError, match="wrong number of bytes"):
        dh.DHKeyPair.generate(dh.ECP384, lambda n: b"\x01" * (n - 1))


@pytest.mark.parametrize("group", ECP_GROUPS, ids=str)
def test_private_scalar_range(group: dh.ECPGroup) -> None:
    for bad in (0, -1, group.order, group.order + 1):
        with pytest.raises(dh.DHError, match=f"{group.name} private scalar out of range"):
            dh.DHKeyPair(group, bad)
    dh.DHKeyPair(group, group.order - 1)


@pytest.mark.parametrize("group", ECP_GROUPS, ids=str)
def test_peer_point_off_the_curve_is_refused(group: dh.ECPGroup) -> None:
    pair = dh.DHKeyPair.generate(group)
    peer = bytearray(dh.DHKeyPair.generate(group).public_bytes())
    peer[-1] ^= 1  # y changed: no longer on the curve
    with pytest.raises(dh.DHError, match=f"{group.name} peer public value is not a point on the curve"):
        pair.shared_secret(bytes(peer))
    # coordinates at or beyond the field prime are not points either
    with pytest.raises(dh.DHError, match="not a point on the curve"):
        pair.shared_secret(b"\xff" * group.length)


@pytest.mark.parametrize("group", ECP_GROUPS, ids=str)
def test_point_at_infinity_is_refused(group: dh.ECPGroup) -> None:
    pair = dh.DHKeyPair.generate(group)
    with pytest.raises(dh.DHError, match=f"{group.name} peer public value is the point at infinity"):
        pair.shared_secret(b"\x00" * group.length)


@pytest.mark.parametrize("group", ECP_GROUPS, ids=str)
def test_peer_point_of_the_wrong_length_is_refused(group: dh.ECPGroup) -> None:
    pair = dh.DHKeyPair.generate(group)
    good = dh.DHKeyPair.generate(group).public_bytes()
    for wrong in (good[:-1], b"\x04" + good, good[: group.coordinate_length]):
        with pytest.raises(dh.DHError, match=f"is {len(wrong)} bytes; {group.length} required"):
            pair.shared_secret(wrong)


def test_curve25519_small_order_point_is_refused() -> None:
    pair = dh.DHKeyPair.generate(dh.CURVE25519)
    with pytest.raises(dh.DHError, match="CURVE25519 peer public value is a small-order point"):
        pair.shared_secret(b"\x00" * 32)
    with pytest.raises(dh.DHError, match="is 33 bytes; 32 required"):
        pair.shared_secret(b"\x09" + b"\x00" * 32)


def test_curve25519_rfc7748_section6_1() -> None:
    # RFC 7748 section 6.1 (RFC 8031 uses X25519 unchanged): Alice's and Bob's keys
    a = bytes.fromhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
    b = bytes.fromhex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb")
    alice = dh.DHKeyPair(dh.CURVE25519, int.from_bytes(a, "little"))
    bob = dh.DHKeyPair(dh.CURVE25519, int.from_bytes(b, "little"))
    assert alice.public_bytes().hex() == (
        "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
    assert bob.public_bytes().hex() == (
        "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")
    shared = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"
    assert alice.shared_secret(bob.public_bytes()).hex() == shared
    assert bob.shared_secret(alice.public_bytes()).hex() == shared


def test_repr_hides_the_private_value() -> None:
    pair = dh.DHKeyPair(dh.ECP256, 0xC88F01F510D9AC3F70A292DAA2316DE544E9AAB8AFE84049C62A9C57862D1433)
    assert repr(pair) == "<DHKeyPair ECP256>"


# --------------------------------------------------------------------------
# the grammar


@pytest.mark.parametrize("spelling, number", [
    ("ecp256", 19), ("ecp_256", 19), ("dh19", 19),
    ("ecp384", 20), ("ecp_384", 20), ("dh20", 20),
    ("ecp521", 21), ("ecp_521", 21), ("dh21", 21),
    ("curve25519", 31), ("x25519", 31), ("dh31", 31),
    ("modp2048", 14), ("dh14", 14), ("modp1024", 2), ("dh2", 2),
    ("ECP256", 19), ("Curve25519", 31),
])
def test_every_group_spelling(spelling: str, number: int) -> None:
    (ike,) = parse_ike(f"aes128-sha2_256-{spelling}")
    assert ike == IkeProposal("aes_cbc", 128, "sha2_256", number)
    (esp,) = parse_esp(f"aes128-sha1-{spelling}")
    assert esp == EspProposal("aes_cbc", 128, "sha1", number)
    assert ike.dh_group is dh.GROUPS[number]
    assert group_spellings()[spelling.lower()] == dh.GROUPS[number].name.lower()
    # the old Openswan ';' form too
    assert parse_ike(f"aes128-sha1;{spelling}")[0].group == number


def test_group_spellings_cover_every_group() -> None:
    table = group_spellings()
    assert set(table.values()) == {g.name.lower() for g in dh.GROUPS.values()}
    assert {k for k, v in table.items() if v == "ecp384"} == {"ecp384", "ecp_384", "dh20"}


@pytest.mark.parametrize("token", ["ecp224", "ecp192", "ecp256bp", "dh28", "dh32", "curve448"])
def test_groups_fswan_lacks_are_refused_naming_the_allowed(token: str) -> None:
    with pytest.raises(ProposalError, match=f"unknown or unsupported DH group '{token}'; allowed: "
                                            r"modp1024 \(dh2\).*ecp256 \(dh19\), ecp384 \(dh20\), "
                                            r"ecp521 \(dh21\), curve25519 \(dh31\)"):
        parse_ike(f"aes128-sha1-{token}")


def test_log_names() -> None:
    assert format_proposal(parse_ike("aes128-sha2_256-ecp256")[0]) == (
        "AES_CBC_128-HMAC_SHA2_256-ECP256")
    assert format_proposal(parse_esp("aes128-sha1-ecp384")[0]) == "AES_CBC_128-HMAC_SHA1_96-ECP384"
    assert format_proposal(parse_esp("aes_gcm256-curve25519")[0]) == "AES_GCM_16_256-CURVE25519"


def test_with_pfs_group_replaces_each_proposals_group() -> None:
    esp = parse_esp("aes128-sha1-modp2048,aes256-sha2_256")
    assert with_pfs_group(esp, None) == esp
    assert [p.pfs_group for p in with_pfs_group(esp, "ecp384")] == [20, 20]
    assert with_pfs_group(parse_esp("aes128-sha1-modp2048,aes128-sha1-modp1536"), "dh19") == (
        EspProposal("aes_cbc", 128, "sha1", 19),)


# --------------------------------------------------------------------------
# ipsec.conf


def _conf(body: str) -> str:
    return ("version 2\nconfig setup\nconn a\n  left=192.0.2.1\n  right=192.0.2.2\n"
            "  authby=secret\n  auto=add\n" + body)


def test_conn_with_ecp_groups_loads() -> None:
    config = parse_config(_conf("  ike=aes128-sha2_256-ecp256\n  esp=aes128-sha1-ecp384\n"), "x")
    assert config.refused == {} and config.conns["a"].ike == "aes128-sha2_256-ecp256"
    assert config.conns["a"].esp == "aes128-sha1-ecp384"
    assert config.conns["a"].pfsgroup is None
    assert "pfsgroup" not in config.conns["a"].unsupported


@pytest.mark.parametrize("written, canonical", [
    ("ecp384", "ecp384"), ("dh20", "ecp384"), ("ecp_384", "ecp384"), ("modp2048", "modp2048"),
    ("dh31", "curve25519"), ("x25519", "curve25519"),
])
def test_pfsgroup_loads_as_its_canonical_name(written: str, canonical: str) -> None:
    config = parse_config(_conf(f"  pfsgroup={written}\n"), "x")
    assert config.conns["a"].pfsgroup == canonical


def test_pfsgroup_names_an_unknown_group_with_file_and_line() -> None:
    with pytest.raises(ConfigErrors, match=r"x:8: bad value 'modp768' for pfsgroup=: expected modp1024"):
        parse_config(_conf("  pfsgroup=modp768\n"), "x")


# --------------------------------------------------------------------------
# two engines


def _up(pair):
    pair.initiate()
    (west,), (east,) = pair.west.installed, pair.east.installed
    assert mirrored(west, east)
    return west, east


def test_two_engines_ecp256_ike_and_ecp384_pfs() -> None:
    pair = make_pair(conn(ike="aes128-sha2_256-ecp256", esp="aes128-sha1-ecp384"))
    west, east = _up(pair)
    assert west.proposal.pfs_group == 20 and east.proposal.pfs_group == 20
    assert west.proposal.integrity == "sha1"
    for side in (pair.west, pair.east):
        assert any("group=ECP256" in line for line in side.lines), side.lines
        assert any("pfsgroup=ECP384" in line for line in side.lines)


def test_two_engines_pfsgroup_overrides_esp() -> None:
    pair = make_pair(conn(ike="aes256-sha2_256-ecp384", esp="aes128-sha1-modp2048",
                          pfsgroup="ecp521"))
    west, east = _up(pair)
    assert west.proposal.pfs_group == 21 and east.proposal.pfs_group == 21


@pytest.mark.parametrize("group", ["ecp521", "curve25519"])
def test_two_engines_other_curves(group: str) -> None:
    pair = make_pair(conn(ike=f"aes128-sha1-{group}", esp=f"aes128-sha2_256-{group}"))
    west, _ = _up(pair)
    assert west.proposal.pfs_group == dh.group_by_name(group).number


def test_pfs_yes_uses_the_ecp_phase1_group() -> None:
    pair = make_pair(conn(ike="aes128-sha2_256-ecp256", esp="aes128-sha1", pfs=True))
    west, east = _up(pair)
    assert west.proposal.pfs_group == 19 == east.proposal.pfs_group
