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
    ChildSADeleted,
    ChildSAInstalled,
    VirtualIpAssigned,
    VirtualIpReleased,
    XauthCheckNeeded,
)
from tests.ike_pair import EAST, EAST_NET, LAB_PSK, WEST, Endpoint, Pair, conn, oriented, seeded

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


# --------------------------------------------------------------------------
# one gateway, two road warriors on the same conn

CAROL = "192.0.2.3"


class ThreeWay(Pair):
    """West and carol (road warriors) and east (the gateway) on one wire."""

    def __init__(self, west: IkeEngine, carol: IkeEngine, east: IkeEngine) -> None:
        super().__init__(west, east)
        self.carol = Endpoint("carol", carol, CAROL)

    @property
    def endpoints(self):
        return self.west, self.carol, self.east


def gateway_and_two_road_warriors(clients_rekey: bool = True, **options) -> ThreeWay:
    secrets = (f'%any {EAST} : PSK "{LAB_PSK}"\n@alice : XAUTH "alice-password"\n'
               '@carol : XAUTH "carol-password"\n')
    base = conn(authby=AuthBy.SECRET, leftsubnet=None, rightsubnet=EAST_NET, modecfgpull=True,
                **options)
    engines = {}
    for who, address, user, seed in (("west", WEST, "alice", 1), ("carol", CAROL, "carol", 3)):
        c = replace(base, rekey=clients_rekey,
                    left=replace(base.left, host=address, xauthclient=True, modecfgclient=True,
                                 xauthusername=user))
        engines[who] = IkeEngine(parse_secrets(secrets, "/etc/ipsec.secrets"), random_bytes=seeded(seed))
        engines[who].add_connection(oriented(c, address))
    server = replace(base, left=replace(base.left, host="%any", addresspool=POOL, xauthclient=True,
                                         modecfgclient=True))
    east = IkeEngine(parse_secrets(secrets, "/etc/ipsec.secrets"), random_bytes=seeded(2))
    east.add_connection(oriented(server, EAST))
    net = ThreeWay(engines["west"], engines["carol"], east)
    return net


def answer_passwords(net: ThreeWay) -> None:
    for event in net.east.of(XauthCheckNeeded):
        secret = net.east.engine.select.secrets.find_xauth(event.user)
        net.east.engine.xauth_checked(event.serial, secret == event.password, net.now)
    net.east.events = [e for e in net.east.events if not isinstance(e, XauthCheckNeeded)]
    net.transfer()


def both_up(net: ThreeWay) -> None:
    for who in (net.west, net.carol):
        who.engine.initiate("net", net.now, who.name)
        net.transfer()
        for _ in range(3):
            answer_passwords(net)


def test_two_road_warriors_each_rekeyed_over_their_own_isakmp_sa():
    """Only the gateway rekeys (the clients do not): each peer's IPsec SA is replaced over
    that peer's ISAKMP SA, the older peer's too (not only the conn's newest)."""
    net = gateway_and_two_road_warriors(clients_rekey=False, keylife=600.0, rekeymargin=60.0,
                                        rekeyfuzz=0.0)
    both_up(net)
    leases = {e.user: e.address for e in net.east.of(VirtualIpAssigned)}
    assert leases == {"alice": ip_address("198.51.100.200"), "carol": ip_address("198.51.100.201")}
    net.run(590.0)  # past the gateway's SA_REPLACE (a responder's margin is halved), before expiry
    for who, user in ((net.west, "alice"), (net.carol, "carol")):
        installed = who.of(ChildSAInstalled)
        assert len(installed) >= 2, who.text()
        assert {i.local_client for i in installed} == {ip_network(f"{leases[user]}/32")}
    east = net.east.of(ChildSAInstalled)
    by_peer = {(e.remote_addr, e.remote_client) for e in east}
    assert by_peer == {(ip_address(WEST), ip_network("198.51.100.200/32")),
                       (ip_address(CAROL), ip_network("198.51.100.201/32"))}, net.east.text()


def test_a_silent_road_warrior_is_cleared_alone_and_its_lease_freed():
    """The first peer (not the conn's newest ISAKMP SA) goes silent: DPD finds it, clears
    its SAs alone and gives its address back; the other peer keeps its tunnel."""
    from fswan.config.model import DpdAction

    net = gateway_and_two_road_warriors(dpddelay=10.0, dpdtimeout=30.0, dpdaction=DpdAction.CLEAR)
    both_up(net)
    net.silent.add("west")
    net.run(60.0)
    released = net.east.of(VirtualIpReleased)
    assert [r.address for r in released] == [ip_address("198.51.100.200")], net.east.text()
    assert "DPD: No response from peer - declaring peer dead" in net.east.text()
    deleted = {e.serial for e in net.east.of(ChildSADeleted)}
    carol = {e.serial for e in net.east.of(ChildSAInstalled) if e.remote_addr == ip_address(CAROL)}
    assert carol and not deleted & carol


def test_xauthfail_soft_keeps_the_isakmp_sa_without_ipsec_sas():
    pair, checks = road_warrior_pair(password_ok=False)
    for ep in pair.endpoints:
        entry = ep.engine.select["net"]
        ep.engine.add_connection(replace(entry.oriented, conn=replace(entry.conn, xauthfail="soft")))
    run(pair)
    assert len(checks) == 3
    assert "XAUTH: xauthfail=soft: keeping the ISAKMP SA without IPsec SAs" in pair.east.text()
    assert not pair.east.of(ChildSAInstalled) and not pair.west.of(ChildSAInstalled)
    east_sas = [st for st in pair.east.engine.table.by_serial() if st.kind.is_isakmp_established]
    assert east_sas and not east_sas[0].ready
    pair.west.engine.initiate("net", pair.now, "again")
    pair.transfer()
    assert not pair.east.of(ChildSAInstalled)
