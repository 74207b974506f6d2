"""The firewall plugin's nft conversation, against a scripted nft (real nft: tests/lab)."""

from __future__ import annotations

import json
from dataclasses import replace
from ipaddress import ip_network

import pytest
from twisted.internet.defer import Deferred, succeed

from fswan.updown import UpdownFailure, build_context
from fswan.updown.firewall import FirewallPlugin, nft_error, rule_tag, up_rules
from tests.unit.test_updown_context import oriented, subnet_conn

ABSENT = (b"", b"Error: No such file or directory\nlist table inet fswan\n                ^^^^^\n", 1)
CHAIN = (
    "add chain inet fswan forward { type filter hook forward priority 0; policy accept; }"
)


def listing(*rules: tuple[int, str]) -> tuple[bytes, bytes, int]:
    items = [
        {"metainfo": {"json_schema_version": 1}},
        {"table": {"family": "inet", "name": "fswan", "handle": 1}},
        {"chain": {"family": "inet", "table": "fswan", "name": "forward", "handle": 1}},
    ]
    items += [{"rule": {"family": "inet", "table": "fswan", "chain": "forward", "handle": h,
                        "comment": c, "expr": []}} for h, c in rules]
    return json.dumps({"nftables": items}).encode(), b"", 0


class FakeNft:
    """Answers nft invocations from a queue; records (args, stdin text)."""

    def __init__(self, *answers) -> None:
        self.answers = list(answers)
        self.calls: list[tuple[list[str], str]] = []

    def __call__(self, args, stdin=b""):
        self.calls.append((list(args), stdin.decode()))
        return succeed(self.answers.pop(0) if self.answers else (b"", b"", 0))


def result(d: Deferred):
    box = []
    d.addBoth(box.append)
    assert box, "the Deferred should have fired"
    if hasattr(box[0], "raiseException"):
        box[0].raiseException()
    return box[0]


def test_up_creates_table_chain_and_two_tagged_rules():
    nft = FakeNft(ABSENT)
    result(FirewallPlugin(nft).up(build_context("up", subnet_conn())))
    assert nft.calls[0] == (["-j", "list", "table", "inet", "fswan"], "")
    assert nft.calls[1] == (["-f", "-"], "\n".join([
        "add table inet fswan",
        CHAIN,
        'add rule inet fswan forward ip saddr 198.51.100.0/25 ip daddr 203.0.113.0/25 oifname "ipsec0" '
        'counter accept comment "fswan:net"',
        'add rule inet fswan forward ip saddr 203.0.113.0/25 ip daddr 198.51.100.0/25 iifname "ipsec0" '
        'counter accept comment "fswan:net"',
    ]) + "\n")


def test_up_again_replaces_the_conns_old_rules():
    nft = FakeNft(listing((4, "fswan:net"), (5, "fswan:net"), (6, "fswan:other")))
    result(FirewallPlugin(nft).up(build_context("up", subnet_conn())))
    script = nft.calls[1][1].splitlines()
    assert script[2:4] == ["delete rule inet fswan forward handle 4",
                           "delete rule inet fswan forward handle 5"]
    assert len(script) == 6


def test_protocol_and_ports_and_ipv6():
    conn = oriented(
        {"host": "2001:db8::1", "subnet": ip_network("2001:db8:1::/64"), "protoport": (6, 80)},
        {"host": "2001:db8::2", "subnet": ip_network("2001:db8:2::/64"), "protoport": (6, 0)},
        name="web6",
    )
    assert up_rules(build_context("up", conn)) == [
        'add rule inet fswan forward ip6 saddr 2001:db8:1::/64 ip6 daddr 2001:db8:2::/64 oifname "ipsec0" '
        'meta l4proto 6 th sport 80 counter accept comment "fswan:web6"',
        'add rule inet fswan forward ip6 saddr 2001:db8:2::/64 ip6 daddr 2001:db8:1::/64 iifname "ipsec0" '
        'meta l4proto 6 th dport 80 counter accept comment "fswan:web6"',
    ]


def test_down_deletes_only_this_conns_rules_and_keeps_a_shared_table():
    nft = FakeNft(listing((4, "fswan:net"), (5, "fswan:net"), (6, "fswan:other"), (7, "fswan:net2")))
    result(FirewallPlugin(nft).down(build_context("down", subnet_conn())))
    assert nft.calls[1] == (["-f", "-"], "delete rule inet fswan forward handle 4\n"
                                          "delete rule inet fswan forward handle 5\n")


def test_a_road_warriors_peers_have_rules_of_their_own():
    """Each peer of a %any conn is an instance: one peer's up or down leaves the others' rules."""
    ctx = replace(build_context("down", subnet_conn()), instance="net[203.0.113.0/25]")
    ours, other = rule_tag("net[203.0.113.0/25]"), rule_tag("net[203.0.113.200/32]")
    assert (ours, other) == ("fswan:net[203.0.113.0_25]", "fswan:net[203.0.113.200_32]")
    nft = FakeNft(listing((4, ours), (5, ours), (6, other), (7, other)))
    result(FirewallPlugin(nft).down(ctx))
    assert nft.calls[1] == (["-f", "-"], "delete rule inet fswan forward handle 4\n"
                                          "delete rule inet fswan forward handle 5\n")
    assert f'comment "{ours}"' in up_rules(replace(ctx, verb="up-client"))[0]


def test_down_of_the_last_conn_deletes_the_table():
    nft = FakeNft(listing((4, "fswan:net"), (5, "fswan:net")))
    result(FirewallPlugin(nft).down(build_context("down", subnet_conn())))
    assert nft.calls[1][1].splitlines() == [
        "delete rule inet fswan forward handle 4",
        "delete rule inet fswan forward handle 5",
        "delete table inet fswan",
    ]


def test_down_without_a_table_does_nothing():
    nft = FakeNft(ABSENT)
    result(FirewallPlugin(nft).down(build_context("down", subnet_conn())))
    assert len(nft.calls) == 1


def test_nft_failure_names_the_attempt_and_nfts_error():
    err = (b"/dev/stdin:3:1-60: Error: Could not process rule: Operation not permitted\n"
           b"add rule inet fswan forward ip saddr 198.51.100.0/25\n^^^^^^^^\n")
    nft = FakeNft(ABSENT, (b"", err, 1))
    with pytest.raises(UpdownFailure) as caught:
        result(FirewallPlugin(nft).up(build_context("up", subnet_conn())))
    assert caught.value.describe("up-client") == (
        'up-client failed: nft add rule inet fswan forward 198.51.100.0/25 <-> 203.0.113.0/25 '
        'via ipsec0 comment "fswan:net": Error: Could not process rule: Operation not permitted '
        "(in: add rule inet fswan forward ip saddr 198.51.100.0/25)"
    )


def test_nft_errors_and_tags():
    assert nft_error(b"") == "nft failed without a message"
    assert nft_error(b"something odd\n") == "something odd"
    assert rule_tag('we"ird name') == "fswan:we_ird_name"
    assert rule_tag("rw[1]") == "fswan:rw[1]"


def test_one_nft_conversation_at_a_time():
    pending: list[Deferred] = []

    def slow_nft(args, stdin=b""):
        pending.append(Deferred())
        return pending[-1]

    plugin = FirewallPlugin(slow_nft)
    first = plugin.up(build_context("up", subnet_conn()))
    second = plugin.down(build_context("down", subnet_conn(name="other")))
    assert len(pending) == 1  # the second waits for the first to finish
    pending[0].callback(ABSENT)
    pending[1].callback((b"", b"", 0))
    assert len(pending) == 3  # now the other conn lists the table
    pending[2].callback(ABSENT)
    assert first.called and second.called
