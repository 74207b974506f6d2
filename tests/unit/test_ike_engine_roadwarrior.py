"""Road warriors: a responder with ``%any`` for the peer, told apart by ID."""

from __future__ import annotations

from fswan.config.model import AuthBy
from fswan.ike.engine import IkeEngine
from fswan.ike.events import WhackDone
from tests.ike_pair import (
    EAST,
    EAST_NET,
    NAT_PUBLIC,
    WEST,
    Nat,
    Pair,
    conn,
    make_pair,
    mirrored,
    oriented,
    psk_secrets,
    rsa_pubkey,
    rsa_secrets,
    seeded,
)

#: east's secret for any road warrior (found for (our id, %any))
EAST_RW = psk_secrets(f'{EAST} %any : PSK "rw-not-secret"\n')


def warrior(name: str = "rw", ident: str = "@roadwarrior", **options):
    """West's side: a laptop at 192.0.2.1 with an FQDN ID."""
    options.setdefault("leftsubnet", None)
    return conn(name, leftid=ident, **options)


def gateway(name: str = "rw", ident: str | None = "@roadwarrior", **options):
    """East's side: the peer may be anywhere."""
    options.setdefault("leftsubnet", None)
    return conn(name, left="%any", leftid=ident, **options)


def check_up(pair: Pair) -> None:
    (west,), (east,) = pair.west.installed, pair.east.installed
    assert mirrored(west, east)
    assert str(east.remote_client) == "192.0.2.1/32" and str(east.local_client) == EAST_NET
    assert pair.west.whack_done == [WhackDone("whack", True)]


def test_psk_road_warrior():
    west_secrets = psk_secrets(f'@roadwarrior {EAST} : PSK "rw-not-secret"\n')
    pair = make_pair(warrior(), gateway(), west_secrets=west_secrets, east_secrets=EAST_RW)
    pair.initiate("rw")
    check_up(pair)
    assert str(pair.east.isakmp_up[0].peer_id) == "@roadwarrior"
    assert str(pair.east.isakmp_up[0].remote_addr) == WEST


def test_road_warriors_told_apart_by_id():
    """MI1 cannot say who it is: the first %any conn answers, MI3's ID switches to the right one."""
    west_secrets = psk_secrets(f'@bob {EAST} : PSK "rw-not-secret"\n')
    west = IkeEngine(west_secrets, random_bytes=seeded(1))
    west.add_connection(oriented(warrior("bob", "@bob"), WEST))
    east = IkeEngine(EAST_RW, random_bytes=seeded(2))
    east.add_connection(oriented(gateway("alice", "@alice"), EAST))
    east.add_connection(oriented(gateway("bob", "@bob"), EAST))
    pair = Pair(west, east)
    pair.initiate("bob")
    assert '002 "alice" #1: switched from "alice" to "bob"' in pair.east.lines
    assert [e.conn for e in pair.east.installed] == ["bob"]
    assert east.newest("bob") == (1, 2) and east.newest("alice") == (0, 0)


def test_unknown_road_warrior_id_is_refused():
    west_secrets = psk_secrets(f'@mallory {EAST} : PSK "rw-not-secret"\n')
    pair = make_pair(
        warrior(ident="@mallory", keyingtries=1),
        gateway(),
        west_secrets=west_secrets,
        east_secrets=EAST_RW,
    )
    pair.initiate("rw")
    assert "003 \"rw\" #1: no suitable connection for peer '@mallory'" in pair.east.lines
    assert '218 "rw" #1: STATE_MAIN_I3: INVALID_ID_INFORMATION' in pair.west.lines
    assert pair.west.whack_done == [WhackDone("whack", False)]
    assert pair.west.installed == pair.east.installed == []


def test_no_connection_for_the_proposed_policy():
    pair = make_pair(warrior(), gateway(authby=AuthBy.RSASIG), east_secrets=EAST_RW)
    pair.initiate("rw")
    assert (
        "initial Main Mode message received on 192.0.2.2:500 but no connection has been "
        "authorized with policy=PSK"
    ) in pair.east.text()
    assert pair.east.engine.state_lines(pair.now) == []


def test_rsa_road_warrior():
    west = warrior(
        authby=AuthBy.RSASIG,
        rightid="@east",
        leftrsasigkey=rsa_pubkey("west"),
        rightrsasigkey=rsa_pubkey("east"),
    )
    east = gateway(
        authby=AuthBy.RSASIG,
        rightid="@east",
        leftrsasigkey=rsa_pubkey("west"),
        rightrsasigkey=rsa_pubkey("east"),
    )
    pair = make_pair(west, east, west_secrets=rsa_secrets("west"), east_secrets=rsa_secrets("east"))
    pair.initiate("rw")
    check_up(pair)
    assert "auth=RSA_SIG" in pair.east.text()


def test_aggressive_mode_road_warrior_finds_the_psk_by_id():
    """In Aggressive Mode the ID comes first, so the PSK can be the peer's own."""
    secrets = psk_secrets(f'@roadwarrior {EAST} : PSK "only-for-this-warrior"\n')
    pair = make_pair(
        warrior(aggrmode=True), gateway(aggrmode=True), west_secrets=secrets, east_secrets=secrets
    )
    pair.initiate("rw")
    check_up(pair)


def test_road_warrior_behind_nat():
    private = "198.51.100.130"
    west_secrets = psk_secrets(f'@roadwarrior {EAST} : PSK "rw-not-secret"\n')
    nat = Nat(private, NAT_PUBLIC, {500: 1500, 4500: 14500})
    pair = make_pair(
        warrior(left=private),
        gateway(),
        west_secrets=west_secrets,
        east_secrets=EAST_RW,
        west_addr=private,
        nat=nat,
    )
    pair.initiate("rw")
    (west,), (east,) = pair.west.installed, pair.east.installed
    assert mirrored(west, east) and west.udp_encapsulated and east.udp_encapsulated
    assert (str(east.remote_addr), east.remote_port) == (NAT_PUBLIC, 14500)
    assert str(east.remote_client) == f"{private}/32"  # the warrior's own address, from IDci


def test_lab_style_psk_keyed_by_the_candidates_remote_id():
    """charon's lab config: the secret names @east and @roadwarrior, not %any.

    No (our id, %any) entry exists, so the candidate connection's ``rightid``
    is used for the lookup before MI3 is decrypted."""
    secrets = psk_secrets('@roadwarrior @east : PSK "lab-roadwarrior-psk-0123456789"\n')
    west = warrior(rightid="@east", leftsubnet="198.51.100.0/25")
    east = gateway(rightid="@east", leftsubnet="198.51.100.0/25")
    pair = make_pair(west, east, west_secrets=secrets, east_secrets=secrets)
    pair.initiate("rw")
    (w,), (e,) = pair.west.installed, pair.east.installed
    assert mirrored(w, e) and str(e.remote_client) == "198.51.100.0/25"
