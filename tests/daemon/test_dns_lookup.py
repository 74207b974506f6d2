"""DnsKeyFetcher against a scripted resolver: order, binding, TTL cache, failures, timeouts.

(Classes are named ``TestDnskeys...`` so ``pytest -k dnskeys`` selects them.)
The blocking query is replaced by a table and the thread pool by a direct
call (or a Deferred the test fires), and time is a ``task.Clock``; the real
resolver, threads and sockets are exercised in tests/lab/test_dns_server.py.
"""

from __future__ import annotations

import functools

import dns.message
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.resolver
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from twisted.internet import defer, task
from twisted.logger import globalLogPublisher

from fswan.config import keys
from fswan.config.ids import parse_id
from fswan.config.ipsecconf import parse_config
from fswan.daemon.dns import (
    Answer,
    DnsKeyError,
    DnsKeyFetcher,
    DnsKeys,
    KeyCache,
    check_config_names,
)
from fswan.dnskeys import records
from tests.fakes import LogSink

TXT, IPSECKEY, KEY = dns.rdatatype.TXT, dns.rdatatype.IPSECKEY, dns.rdatatype.KEY
EAST = parse_id("@east.example")
EAST_NAME = dns.name.from_text("east.example.")
FAILURE = "failure to fetch key for @east.example from DNS: "
NOTHING = (
    "no X-IPsec-Server TXT, IPSECKEY or KEY record with a key for @east.example at east.example."
)


@functools.cache
def key(n: int = 0) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(3, 1024)


def txt(k, gateway="@east.example", preference=10) -> dns.rdata.Rdata:
    return dns.rdata.from_text("IN", "TXT", records.format_txt(k, gateway, preference))


def ipseckey(k, gateway=None) -> dns.rdata.Rdata:
    return dns.rdata.from_text("IN", "IPSECKEY", records.format_ipseckey(k, gateway))


def keyrr(k) -> dns.rdata.Rdata:
    return dns.rdata.from_text("IN", "KEY", records.format_key(k))


def shown(found) -> list[str]:
    return [keys.format_rsasigkey(k) for k in found]


class FakeDns:
    """A blocking-query stand-in: answers from a table, records what was asked."""

    def __init__(self, table: dict | None = None) -> None:
        self.table = dict(table or {})
        self.asked: list[tuple[dns.name.Name, int, float]] = []

    def __call__(self, name, rdtype, lifetime) -> Answer:
        self.asked.append((name, rdtype, lifetime))
        entry = self.table.get((name, rdtype), Answer((), 0))
        if isinstance(entry, BaseException):
            raise entry
        if callable(entry):
            return entry()
        return entry


def direct(function, *args):
    """The thread pool replaced by a direct call: the Deferred fires at once."""
    return defer.maybeDeferred(function, *args)


class Harness:
    def __init__(self, table=None, timeout=2.0, run_blocking=direct, monotonic=None) -> None:
        self.clock = task.Clock()
        self.dns = FakeDns(table)
        self.lines: list[str] = []
        extra = {"monotonic": monotonic} if monotonic else {}
        self.fetcher = DnsKeyFetcher(
            self.clock,
            timeout=timeout,
            log=self.lines.append,
            query=self.dns,
            run_blocking=run_blocking,
            **extra,
        )

    def fetch(self, identity=EAST):
        results: list = []
        self.fetcher.fetch(identity).addBoth(results.append)
        return results


def result_of(results):
    assert len(results) == 1, "the Deferred has not fired"
    return results[0]


# --------------------------------------------------------------------------
# Which records give the key


class TestDnskeysLookupOrder:
    def test_txt_first_and_stop_there(self):
        h = Harness(
            {
                (EAST_NAME, TXT): Answer((txt(key(1)),), 300),
                (EAST_NAME, KEY): Answer((keyrr(key(2)),), 300),
            }
        )
        found = result_of(h.fetch())
        assert isinstance(found, DnsKeys)
        assert (found.kind, found.name, found.ttl) == ("TXT", EAST_NAME, 300)
        assert shown(found.keys) == shown([key(1)])
        assert [rdtype for _, rdtype, _ in h.dns.asked] == [TXT]
        assert h.lines == []

    def test_then_ipseckey_then_key(self):
        h = Harness({(EAST_NAME, IPSECKEY): Answer((ipseckey(key(3)),), 60)})
        assert result_of(h.fetch()).kind == "IPSECKEY"
        h = Harness({(EAST_NAME, KEY): Answer((keyrr(key(4)),), 60)})
        found = result_of(h.fetch())
        assert found.kind == "KEY" and shown(found.keys) == shown([key(4)])
        assert [rdtype for _, rdtype, _ in h.dns.asked] == [TXT, IPSECKEY, KEY]

    def test_fetch_key_gives_the_list_of_keys(self):
        both = (txt(key(1), preference=20), txt(key(2), preference=5))
        h = Harness({(EAST_NAME, TXT): Answer(both, 300)})
        results = []
        h.fetcher.fetch_key(EAST).addBoth(results.append)
        assert shown(result_of(results)) == shown([key(2), key(1)])

    def test_reverse_name_for_an_address_id(self):
        name = dns.name.from_text("2.2.0.192.in-addr.arpa.")
        h = Harness({(name, TXT): Answer((txt(key(1), "192.0.2.2"),), 300)})
        assert result_of(h.fetch(parse_id("192.0.2.2"))).name == name

    def test_records_for_another_gateway_are_passed_over(self):
        h = Harness(
            {
                (EAST_NAME, TXT): Answer((txt(key(1), "192.0.2.9"),), 300),
                (EAST_NAME, IPSECKEY): Answer((ipseckey(key(2), "@east.example"),), 300),
            }
        )
        found = result_of(h.fetch())
        assert found.kind == "IPSECKEY" and shown(found.keys) == shown([key(2)])

    def test_only_other_gateways_is_a_failure_that_says_so(self):
        h = Harness({(EAST_NAME, TXT): Answer((txt(key(1), "192.0.2.9"),), 300)})
        failure = result_of(h.fetch())
        assert failure.check(DnsKeyError)
        assert "records there give keys for other gateways: 192.0.2.9" in failure.value.reason
        assert h.lines == [FAILURE + failure.value.reason]

    def test_a_malformed_record_does_not_hide_a_good_one(self):
        bad = dns.rdata.from_text("IN", "TXT", '"X-IPsec-Server(10)=@east.example AQ!!"')
        h = Harness({(EAST_NAME, TXT): Answer((bad, txt(key(1))), 300)})
        assert shown(result_of(h.fetch()).keys) == shown([key(1)])

    def test_only_malformed_records_are_reported(self):
        bad = dns.rdata.from_text("IN", "TXT", '"X-IPsec-Server(10)=@east.example AQ!!"')
        h = Harness({(EAST_NAME, TXT): Answer((bad,), 300)})
        reason = result_of(h.fetch()).value.reason
        assert reason.startswith(NOTHING)
        assert "TXT record at east.example.: bad key" in reason


# --------------------------------------------------------------------------
# Cache


class TestDnskeysCache:
    def test_second_fetch_within_ttl_asks_nothing(self):
        h = Harness({(EAST_NAME, TXT): Answer((txt(key(1)),), 300)})
        first = result_of(h.fetch())
        h.clock.advance(299)
        assert result_of(h.fetch()) is first
        assert len(h.dns.asked) == 1 and h.fetcher.queries == 1

    def test_expired_entries_are_fetched_again(self):
        h = Harness({(EAST_NAME, TXT): Answer((txt(key(1)),), 300)})
        h.fetch()
        h.clock.advance(300)
        h.dns.table[(EAST_NAME, TXT)] = Answer((txt(key(2)),), 300)
        assert shown(result_of(h.fetch()).keys) == shown([key(2)])
        assert len(h.dns.asked) == 2

    def test_ttl_zero_is_not_cached(self):
        h = Harness({(EAST_NAME, TXT): Answer((txt(key(1)),), 0)})
        h.fetch()
        h.fetch()
        assert len(h.dns.asked) == 2

    def test_failures_are_not_cached_and_forget_drops_keys(self):
        h = Harness({(EAST_NAME, TXT): dns.resolver.NXDOMAIN()})
        h.fetch()
        h.dns.table[(EAST_NAME, TXT)] = Answer((txt(key(1)),), 300)
        assert isinstance(result_of(h.fetch()), DnsKeys)
        h.fetcher.cache.forget(EAST)
        h.fetch()
        assert len(h.dns.asked) == 3

    def test_max_ttl_caps_long_ttls(self):
        clock = task.Clock()
        cache = KeyCache(clock, max_ttl=60)
        cache.put(DnsKeys(EAST, EAST_NAME, "TXT", (key(1).public_key(),), 86400 * 7))
        clock.advance(59)
        assert cache.get(EAST) is not None
        clock.advance(1)
        assert cache.get(EAST) is None and len(cache) == 0

    def test_concurrent_fetches_share_one_lookup(self):
        pending: list[defer.Deferred] = []
        calls: list = []

        def later(function, *args):
            calls.append((function, args))
            d = defer.Deferred()
            pending.append(d)
            return d

        h = Harness({(EAST_NAME, TXT): Answer((txt(key(1)),), 300)}, run_blocking=later)
        a, b = h.fetch(), h.fetch()
        assert len(calls) == 1 and a == [] and b == []
        function, args = calls[0]
        pending[0].callback(function(*args))
        assert result_of(a) is result_of(b)


# --------------------------------------------------------------------------
# Failures: logged as pluto did, never raised into the reactor


class TestDnskeysFailures:
    @pytest.mark.parametrize(
        "error, reason",
        [
            (dns.resolver.NXDOMAIN(), "no such name east.example. in DNS (NXDOMAIN)"),
            (
                dns.resolver.LifetimeTimeout(timeout=2.0, errors=[]),
                "TXT query for east.example.: no answer from the resolver within 2 s",
            ),
            (
                dns.resolver.NoNameservers(
                    request=dns.message.make_query(EAST_NAME, TXT),
                    errors=[("198.51.100.53", False, 53, "SERVFAIL", None)],
                ),
                "TXT query for east.example. failed: 198.51.100.53 port 53 answered SERVFAIL",
            ),
            (
                dns.resolver.NoNameservers(
                    request=dns.message.make_query(EAST_NAME, TXT),
                    errors=[("Do53:2001:db8::53@53", True, 53, "REFUSED", None)],
                ),
                "TXT query for east.example. failed: 2001:db8::53 port 53 answered REFUSED",
            ),
            (
                dns.resolver.NoResolverConfiguration("no nameservers"),
                "TXT query for east.example. failed: no nameservers",
            ),
            (
                OSError(101, "Network is unreachable"),
                "TXT query for east.example. failed: Network is unreachable",
            ),
        ],
    )
    def test_logged_with_pluto_words(self, error, reason):
        h = Harness({(EAST_NAME, TXT): error})
        failure = result_of(h.fetch())
        assert failure.check(DnsKeyError) and failure.value.reason == reason
        assert h.lines == [FAILURE + reason]
        assert str(failure.value) == h.lines[0]

    def test_nothing_published(self):
        h = Harness()
        failure = result_of(h.fetch())
        assert failure.value.reason == NOTHING

    def test_ids_without_a_dns_name_fail_without_a_query(self):
        h = Harness()
        failure = result_of(h.fetch(parse_id("user@example.net")))
        assert failure.check(DnsKeyError)
        assert h.dns.asked == []
        assert h.lines == [
            "failure to fetch key for user@example.net from DNS: can only query DNS for key for ID"
            " that is a FQDN, IPV4_ADDR, or IPV6_ADDR (not user@example.net)"
        ]

    def test_budget_is_shared_by_the_three_queries(self):
        now = [100.0]

        def slow_txt():
            now[0] += 2.5  # the TXT query used more than the whole budget
            return Answer((), 0)

        h = Harness({(EAST_NAME, TXT): slow_txt}, timeout=2.0, monotonic=lambda: now[0])
        failure = result_of(h.fetch())
        assert failure.value.reason == "no answer from the resolver within 2 s"
        assert [rdtype for _, rdtype, _ in h.dns.asked] == [TXT]
        assert h.dns.asked[0][2] == pytest.approx(2.0)

    def test_backstop_fails_a_hung_lookup_on_the_reactor_clock(self):
        hung: list[defer.Deferred] = []

        def never(function, *args):
            hung.append(defer.Deferred())
            return hung[0]

        h = Harness(timeout=2.0, run_blocking=never)
        results = h.fetch()
        h.clock.advance(2.0)
        assert results == []
        h.clock.advance(0.3)
        failure = result_of(results)
        assert failure.check(DnsKeyError)
        assert h.lines == [FAILURE + "no answer from the resolver within 2 s"]
        hung[0].callback(None)  # the thread finishing late is harmless

    def test_unexpected_errors_are_contained(self):
        h = Harness({(EAST_NAME, TXT): ZeroDivisionError("boom")})
        failure = result_of(h.fetch())
        assert failure.check(DnsKeyError) and "internal error: boom" in failure.value.reason

    def test_default_log_goes_through_the_pluto_logger(self):
        sink = LogSink()
        globalLogPublisher.addObserver(sink)
        try:
            fetcher = DnsKeyFetcher(task.Clock(), query=FakeDns(), run_blocking=direct)
            fetcher.fetch(EAST).addErrback(lambda f: None)
        finally:
            globalLogPublisher.removeObserver(sink)
        assert FAILURE + NOTHING in sink.lines

    def test_timeout_must_be_positive(self):
        with pytest.raises(ValueError):
            DnsKeyFetcher(task.Clock(), timeout=0, query=FakeDns(), log=print)


def test_dnskeys_resolver_address_is_named_in_reasons():
    fetcher = DnsKeyFetcher(
        task.Clock(), resolver=("198.51.100.53", 5353), log=print, run_blocking=direct
    )
    assert fetcher._server_text == "198.51.100.53 port 5353"


# --------------------------------------------------------------------------
# Load-time notes


CONF = """\
version 2
config setup
	myid=@west.example

conn net
	left=192.0.2.1
	leftid=%myid
	right=192.0.2.2
	rightid=@east.example
	rightrsasigkey=%dnsondemand

conn rev
	left=192.0.2.1
	right=10.1.2.3
	rightrsasigkey=%dns

conn pub
	left=2001:db8::1
	right=2001:4860::1
	rightrsasigkey=%dnsonload

conn rw
	left=192.0.2.1
	right=%any
	rightrsasigkey=%dnsondemand

conn user
	left=192.0.2.1
	right=192.0.2.5
	rightid=user@example.net
	rightrsasigkey=%dnsondemand

conn psk
	left=192.0.2.1
	right=192.0.2.6
	authby=secret

conn given
	left=192.0.2.1
	right=192.0.2.7
	rightrsasigkey=0s{key}
"""


class TestDnskeysCheckConfigNames:
    @pytest.fixture
    def config(self):
        return parse_config(CONF.format(key=keys.format_rsasigkey(key(1))[2:]), "ipsec.conf")

    def test_peer_ends(self, config):
        lines = check_config_names(config, local_hosts=["192.0.2.1", "2001:DB8::1"])
        assert lines == [
            '"net": rightrsasigkey=%dnsondemand: the key of @east.example will be fetched from DNS'
            " on demand",
            '"rev": rightrsasigkey=%dns: the key of 10.1.2.3 will be fetched from DNS when the'
            " connection is loaded, from the reverse zone (3.2.1.10.in-addr.arpa.)",
            '"rev": rightrsasigkey=%dns: 10.1.2.3 is not a global address, so its reverse zone'
            " (3.2.1.10.in-addr.arpa.) is rarely one anybody can publish in; give rightid=@fqdn"
            " with the key in forward DNS, or the key itself in rightrsasigkey=",
            '"pub": rightrsasigkey=%dnsonload: the key of 2001:4860::1 will be fetched from DNS'
            " when the connection is loaded, from the reverse zone ("
            + records.reverse_name("2001:4860::1").to_text()
            + ")",
            '"rw": rightrsasigkey=%dnsondemand: the peer\'s ID is not known before it connects'
            " (right=%any, no rightid=); its key can only be fetched from DNS once it has named"
            " itself",
            '"user": rightrsasigkey=%dnsondemand: can only query DNS for key for ID that is a FQDN,'
            " IPV4_ADDR, or IPV6_ADDR (not user@example.net); give rightrsasigkey= the key itself",
        ]

    def test_without_local_hosts_our_end_is_reported_as_a_default(self, config):
        lines = check_config_names(config)
        assert (
            '"net": leftrsasigkey=%dnsondemand (the default): the key of @west.example will be'
            " fetched from DNS on demand"
        ) in lines
        assert not any(line.startswith(('"psk"', '"given": right')) for line in lines)

    def test_myid_unset(self):
        config = parse_config(
            "version 2\nconn x\n\tleft=192.0.2.1\n\tright=192.0.2.2\n\trightid=%myid\n", "c"
        )
        assert check_config_names(config, ["192.0.2.1"]) == [
            '"x": rightrsasigkey=%dnsondemand (the default): cannot fetch the key: rightid=%myid'
            " but myid= is not set in config setup"
        ]
