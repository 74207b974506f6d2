"""The Configuration Payload between two engines in memory: a client conn
(``leftsourceip=%config``) gets an address from the gateway's ``rightaddresspool=``,
its Child SA is narrowed to that address, a returning client keeps it, and the lease
goes back to the pool when the IKE SA goes."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import ip_address, ip_network

from fswan.config.model import AddressRange, Ikev2Policy
from fswan.ike.events import VirtualIpAssigned, VirtualIpReleased
from tests.ike_pair import conn, make_pair

POOL = AddressRange(ip_address("198.51.100.200"), ip_address("198.51.100.201"))


def cp_pair(pool: AddressRange | None = POOL):
    west = conn(ikev2=Ikev2Policy.INSIST, leftsubnet=None)
    west = replace(west, left=replace(west.left, modecfgclient=True))
    east = replace(west, left=replace(west.left, addresspool=pool),
                   modecfgdns=(ip_address("203.0.113.53"),))
    return make_pair(west, east)


def test_the_client_gets_an_address_and_its_child_sa_is_narrowed_to_it():
    pair = cp_pair()
    pair.initiate()
    w, e = pair.endpoints
    assert [(v.address, v.ours, v.dns) for v in w.of(VirtualIpAssigned)] == [
        (ip_address("198.51.100.200"), True, (ip_address("203.0.113.53"),))]
    assert [(v.address, v.ours) for v in e.of(VirtualIpAssigned)] == [
        (ip_address("198.51.100.200"), False)]
    assert [(i.local_client, i.remote_client) for i in w.installed] == [
        (ip_network("198.51.100.200/32"), ip_network("203.0.113.0/25"))]
    assert [(i.local_client, i.remote_client) for i in e.installed] == [
        (ip_network("203.0.113.0/25"), ip_network("198.51.100.200/32"))]
    assert "CP: leasing 198.51.100.200 to '192.0.2.1'" in e.text()


def test_the_lease_returns_to_the_pool_and_a_returning_client_keeps_its_address():
    pair = cp_pair()
    pair.initiate()
    pool = pair.east.engine.pools["net"]
    assert pool.in_use == 1
    pair.west.engine.terminate("net", pair.now)
    pair.transfer()
    assert [v.address for v in pair.east.of(VirtualIpReleased)] == [ip_address("198.51.100.200")]
    assert [v.address for v in pair.west.of(VirtualIpReleased)] == [ip_address("198.51.100.200")]
    assert pool.in_use == 0
    pair.initiate(whack="again")
    assert [v.address for v in pair.west.of(VirtualIpAssigned)][-1] == ip_address("198.51.100.200")


def test_no_pool_no_address_no_child_sa():
    pair = cp_pair(pool=None)
    pair.initiate()
    assert not pair.west.installed and not pair.east.installed
    assert "CP: the gateway gave us no IPv4 address" in pair.west.text()
    assert "no rightaddresspool= to give one" in pair.east.text()
    assert "INTERNAL_ADDRESS_FAILURE" in pair.east.text() + pair.west.text()
