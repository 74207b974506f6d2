"""PeerKeyNeeded answered from DNS: a fetcher whose answers the test controls."""

from __future__ import annotations

from twisted.internet import defer

from fswan.config.ids import parse_id
from fswan.daemon.dns import DnsKeyError
from fswan.daemon.peerkeys import PeerKeys
from fswan.ike.events import PeerKeyNeeded
from fswan.config.keys import load_public_key
from tests.ike_pair import KEYS, conn, oriented, rsa_pubkey


class FakeFetcher:
    def __init__(self):
        self.asked = []

    def fetch_key(self, identity):
        self.asked.append(identity)
        self.last = defer.Deferred()
        return self.last


class FakeEngine:
    def __init__(self):
        self.given = []

    def set_peer_keys(self, identity, keys, now=None):
        self.given.append((identity, keys, now))


class FakeDriver:
    def __init__(self):
        self.engine = FakeEngine()
        self.pumps = 0

    def now(self):
        return 42.0

    def pump(self):
        self.pumps += 1


def test_keys_found_are_handed_to_the_engine_and_it_is_pumped():
    fetcher, driver = FakeFetcher(), FakeDriver()
    glue = PeerKeys(fetcher, driver)
    east = parse_id("@east")
    glue.needed(PeerKeyNeeded("net", 1, east))
    assert fetcher.asked == [east]
    key = load_public_key((KEYS / "east.pub").read_text())
    fetcher.last.callback([key])
    assert driver.engine.given == [(east, [key], 42.0)] and driver.pumps == 1


def test_failed_lookup_tells_the_engine_with_no_keys():
    fetcher, driver = FakeFetcher(), FakeDriver()
    glue = PeerKeys(fetcher, driver)
    glue.needed(PeerKeyNeeded("net", 1, parse_id("@east")))
    fetcher.last.errback(DnsKeyError("@east", "NXDOMAIN"))
    assert driver.engine.given == [(parse_id("@east"), [], 42.0)]


def test_dnsonload_fetches_when_the_conn_is_added():
    fetcher, driver = FakeFetcher(), FakeDriver()
    glue = PeerKeys(fetcher, driver)
    glue.conn_added(oriented(conn(rightid="@east", rightrsasigkey="%dnsonload"), "192.0.2.1"))
    glue.conn_added(oriented(conn(rightid="@east", rightrsasigkey="%dnsondemand"), "192.0.2.1"))
    glue.conn_added(oriented(conn(rightrsasigkey=rsa_pubkey("east")), "192.0.2.1"))
    assert fetcher.asked == [parse_id("@east")]
