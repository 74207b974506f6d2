"""XAUTH and Mode Config between two engines in memory: a road warrior (west, the XAUTH
and Mode Config client) and a gateway (east, the server with an address pool), in Main
and Aggressive Mode, pull and push; wrong passwords retried then refused; the lease
kept across a reconnect and different for two users; Quick Mode waits for both steps and
uses the leased address as the road warrior's client."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import ip_address, ip_network

import pytest

from fswan.config.model import AddressRange, AuthBy
from fswan.config.secrets import parse_secrets
from fswan.ike.engine import IkeEngine
from fswan.ike.events import (
    ChildSAInstalled,
    VirtualIpAssigned,
    VirtualIpReleased,
    XauthCheckNeeded,
)
from tests.ike_pair import EAST, EAST_NET, LAB_PSK, WEST, Pair, conn, oriented, seeded

POOL = AddressRange(ip_address("198.51.100.200"), ip_address("198.51.100.202"))
SECRETS = f'{WEST} {EAST} : PSK "{LAB_PSK}"\n@alice : XAUTH "alice-password"\n'


def road_warrior_pair(*, aggressive: bool = False, pull: bool = True, user: str = "alice",
                      password_ok: bool = True) -> tuple[Pair, list[XauthCheckNeeded]]:
    base = conn(authby=AuthBy.SECRET, leftsubnet=None, rightsubnet=EAST_NET, aggrmode=aggressive,
                modecfgpull=pull, modecfgdns=(ip_address("203.0.113.53"),),
                modecfgdomains=("example.net",))
    west_conn = replace(base, left=replace(base.left, xauthclient=True, modecfgclient=True,
                                           xauthusername=user),
                        right=replace(base.right, xauthserver=True, modecfgserver=True))
    east_conn = replace(base, left=replace(base.left, xauthclient=True, modecfgclient=True,
                                           addresspool=POOL),
                        right=replace(base.right, xauthserver=True, modecfgserver=True))
    west = IkeEngine(parse_secrets(SECRETS, "/etc/ipsec.secrets"), random_bytes=seeded(1))
    east = IkeEngine(parse_secrets(SECRETS, "/etc/ipsec.secrets"), random_bytes=seeded(2))
    west.add_connection(oriented(west_conn, WEST))
    east.add_connection(oriented(east_conn, EAST))
    pair = Pair(west, east)
    checks: list[XauthCheckNeeded] = []
    answered: set[int] = set()

    def verifier() -> None:
        """The shell's part: the password against ipsec.secrets."""
        for event in pair.east.of(XauthCheckNeeded):
            if id(event) in answered:
                continue
            answered.add(id(event))
            checks.append(event)
            secret = east.select.secrets.find_xauth(event.user)
            east.xauth_checked(event.serial, password_ok and secret == event.password, pair.now)
    pair.verifier = verifier  # type: ignore[attr-defined]
    return pair, checks


def run(pair: Pair) -> None:
    pair.initiate()
    for _ in range(6):
        pair.verifier()  # type: ignore[attr-defined]
        pair.transfer()


@pytest.mark.parametrize("aggressive", [False, True])
@pytest.mark.parametrize("pull", [True, False])
def test_road_warrior_gets_authenticated_and_an_address(aggressive, pull):
    pair, checks = road_warrior_pair(aggressive=aggressive, pull=pull)
    run(pair)
    assert [c.user for c in checks] == ["alice"] and checks[0].password == b"alice-password"
    east_text, west_text = pair.east.text(), pair.west.text()
    assert "XAUTH: User alice: Authentication Successful" in east_text
    assert "XAUTH: Successfully Authenticated" in west_text
    assert "modecfg: received IP address 198.51.100.200, DNS 203.0.113.53, domain example.net" \
        in west_text
    ours = pair.west.of(VirtualIpAssigned)
    assert ours and ours[0].ours and ours[0].address == ip_address("198.51.100.200")
    west_sa, east_sa = pair.west.of(ChildSAInstalled), pair.east.of(ChildSAInstalled)
    assert west_sa and east_sa, west_text + east_text
    assert west_sa[0].local_client == ip_network("198.51.100.200/32")
    assert east_sa[0].remote_client == ip_network("198.51.100.200/32")
    assert east_sa[0].xauth_user == "alice"
    assert "password" not in repr(checks[0])


def test_wrong_password_is_asked_again_then_refused():
    pair, checks = road_warrior_pair(password_ok=False)
    run(pair)
    assert len(checks) == 3
    text = pair.east.text()
    assert "XAUTH: User alice: Authentication Failed: Incorrect Username or Password " \
           "(attempt 3 of 3)" in text
    assert not pair.west.of(ChildSAInstalled) and not pair.east.of(ChildSAInstalled)
    assert not pair.east.of(VirtualIpAssigned)
    assert "XAUTH: Authentication Failed" in pair.west.text()


def test_quick_mode_waits_and_a_reconnect_keeps_the_lease():
    pair, _ = road_warrior_pair()
    run(pair)
    first = pair.east.of(VirtualIpAssigned)[0].address
    pair.west.engine.terminate("net", pair.now)
    pair.transfer()
    assert pair.east.of(VirtualIpReleased)
    run(pair)
    leases = [e.address for e in pair.east.of(VirtualIpAssigned)]
    assert leases == [first, first]


def test_the_pool_hands_out_distinct_addresses_and_runs_out():
    from fswan.ike.addresspool import AddressPool, PoolExhausted
    pool = AddressPool(POOL.first, POOL.last)
    assert [str(pool.lease(k)) for k in ("a", "b", "c")] == [
        "198.51.100.200", "198.51.100.201", "198.51.100.202"]
    with pytest.raises(PoolExhausted):
        pool.lease("d")
    pool.release("b")
    assert str(pool.lease("d")) == "198.51.100.201"
    pool.release("a")
    assert str(pool.lease("a")) == "198.51.100.200"
