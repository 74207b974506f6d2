"""Road warriors: a responder with ``%any`` for the peer, told apart by ID."""

from __future__ import annotations

from fswan.config.model import AuthBy
from fswan.config.virtual import parse_virtual_private
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


PRIVATE = "198.51.100.130"
#: the warriors' home nets: 198.51.100.128/25 (our own 203.0.113.0/25 stays out)
VIRTUAL_PRIVATE = "%v4:198.51.100.128/25,%v4:!198.51.100.192/26"


def behind_nat(gateway_subnet: str | None, virtual_private: str = VIRTUAL_PRIVATE,
               warrior_subnet: str | None = None, private: str = PRIVATE) -> Pair:
    """The warrior at ``private`` behind a NAPT initiates to a gateway whose peer end
    has ``leftsubnet=gateway_subnet``."""
    west_secrets = psk_secrets(f'@roadwarrior {EAST} : PSK "rw-not-secret"\n')
    pair = make_pair(
        warrior(left=private, leftsubnet=warrior_subnet, keyingtries=1),
        gateway(leftsubnet=gateway_subnet),
        west_secrets=west_secrets,
        east_secrets=EAST_RW,
        west_addr=private,
        nat=Nat(private, NAT_PUBLIC, {500: 1500, 4500: 14500}),
    )
    pair.east.engine.virtual_private = parse_virtual_private(virtual_private)
    pair.initiate("rw")
    return pair


def test_road_warrior_behind_nat_with_a_virtual_host():
    pair = behind_nat("vhost:%priv,%no")
    (west,), (east,) = pair.west.installed, pair.east.installed
    assert mirrored(west, east) and west.udp_encapsulated and east.udp_encapsulated
    assert (str(east.remote_addr), east.remote_port) == (NAT_PUBLIC, 14500)
    assert str(east.remote_client) == f"{PRIVATE}/32"  # the warrior's own address, from IDci
    assert (f"NAT-T: accepting {PRIVATE}/32 as the virtual client of the peer at {NAT_PUBLIC} "
            "(subnet=vhost:%priv,%no)") in pair.east.text()


def test_a_host_only_conn_refuses_a_natted_peers_private_address_and_says_why():
    pair = behind_nat(None)
    assert pair.east.installed == [] and pair.west.installed == []
    text = pair.east.text()
    assert "cannot respond to IPsec SA request because no connection is known" in text
    assert (f'NAT-T: the peer behind NAT at {NAT_PUBLIC} names {PRIVATE}/32 as its client; "rw" '
            "accepts only the peer's own address: use rightsubnet=vhost:%priv,%no with "
            "virtual_private= to allow it") in text


def test_virtual_private_decides_what_priv_means():
    # inside an excluded net
    pair = behind_nat("vhost:%priv", private="198.51.100.200")
    assert pair.east.installed == []
    assert (f"NAT-T: 198.51.100.200/32 proposed by the peer at {NAT_PUBLIC} is not allowed by "
            'subnet=vhost:%priv of "rw"') in pair.east.text()
    # no virtual_private at all: %priv admits nothing, and the log says so
    pair = behind_nat("vhost:%priv", virtual_private="")
    assert pair.east.installed == []
    assert "(virtual_private= is empty)" in pair.east.text()
    # an explicit net in the conn's own list
    pair = behind_nat("vhost:%v4:198.51.100.128/30", virtual_private="", private="198.51.100.129")
    assert [str(e.remote_client) for e in pair.east.installed] == ["198.51.100.129/32"]


def test_vnet_admits_a_net_vhost_only_a_host():
    pair = behind_nat("vnet:%priv", warrior_subnet="198.51.100.128/27")
    assert [str(e.remote_client) for e in pair.east.installed] == ["198.51.100.128/27"]
    pair = behind_nat("vhost:%priv", warrior_subnet="198.51.100.128/27")
    assert pair.east.installed == []


def test_no_nat_needs_percent_no():
    """Without NAT the warrior names its public address: %no allows that, %priv alone does not."""
    west_secrets = psk_secrets(f'@roadwarrior {EAST} : PSK "rw-not-secret"\n')
    pair = make_pair(warrior(), gateway(leftsubnet="vhost:%no"), west_secrets=west_secrets,
                     east_secrets=EAST_RW)
    pair.initiate("rw")
    check_up(pair)
    pair = make_pair(warrior(keyingtries=1), gateway(leftsubnet="vhost:%priv"),
                     west_secrets=west_secrets, east_secrets=EAST_RW)
    pair.east.engine.virtual_private = parse_virtual_private(VIRTUAL_PRIVATE)
    pair.initiate("rw")
    assert pair.east.installed == []


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


def test_a_warrior_whose_nat_changes_address_is_rekeyed_at_once_keeping_its_virtual_client():
    west_secrets = psk_secrets(f'@roadwarrior {EAST} : PSK "rw-not-secret"\n')
    pair = make_pair(
        warrior(left=PRIVATE, dpddelay=5.0, dpdtimeout=30.0),
        gateway(leftsubnet="vhost:%priv,%no"),
        west_secrets=west_secrets,
        east_secrets=EAST_RW,
        west_addr=PRIVATE,
        nat=Nat(PRIVATE, NAT_PUBLIC, {500: 1500, 4500: 14500}),
    )
    pair.east.engine.virtual_private = parse_virtual_private(VIRTUAL_PRIVATE)
    pair.initiate("rw")
    (first,) = pair.east.installed
    assert str(first.remote_addr) == NAT_PUBLIC
    pair.nat.public = "203.0.113.77"  # the NAT box got a new public address
    pair.run(12)  # west's DPD probe arrives from there
    text = pair.east.text()
    assert f"NAT-T: peer moved from {NAT_PUBLIC}:14500 to 203.0.113.77:14500; following it" in text
    assert "STATE_QUICK_I1: initiate to replace #2" in text
    second = pair.east.installed[-1]
    assert len(pair.east.installed) == 2 and str(second.remote_addr) == "203.0.113.77"
    assert str(second.remote_client) == f"{PRIVATE}/32"  # the rekey kept the virtual client
    assert mirrored(pair.west.installed[-1], second)
    assert second.replaces_serial == first.serial  # the old pair expires as after any rekey
    assert pair.east.engine.newest("rw")[1] == second.serial
