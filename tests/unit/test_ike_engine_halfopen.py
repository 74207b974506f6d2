"""A flood of first messages: bounded state, one reply each, and the real peer still served."""

from __future__ import annotations

from ipaddress import ip_address

from fswan.ike.halfopen import PER_SOURCE_LIMIT, DdosMode, TokenBucket
from fswan.ike.state import Phase2State
from tests.ike_pair import EAST, WEST, conn, make_pair

FLOOD_PORT = 10000


def first_message(aggressive: bool = False) -> bytes:
    """A real MM1 (or AM1) of west's, to be replayed with fresh cookies."""
    pair = make_pair(conn(aggrmode=aggressive), seed=77)
    pair.west.engine.initiate("net", 0.0, None)
    (datagram,) = pair.west.engine.datagrams_to_send()
    return datagram.data


def flood(engine, mm1: bytes, count: int, now: float, source=lambda i: WEST, start: int = 0):
    for i in range(start, start + count):
        data = (0xF10D000000000000 + i).to_bytes(8, "big") + mm1[8:]
        engine.receive_datagram(data, EAST, 500, source(i), FLOOD_PORT + i, now)


def test_a_spoofed_flood_from_the_peers_own_address_leaves_its_tunnel_up():
    mm1 = first_message()
    pair = make_pair(conn(), seed=5)
    east = pair.east.engine
    flood(east, mm1, 1000, 0.0)
    pair.initiate()  # the real west, between two waves of the flood
    flood(east, mm1, 1000, 0.5, start=1000)
    pair.transfer()
    assert [s for s in east.table.states.values() if isinstance(s, Phase2State) and s.installed]
    assert east.table.unverified_count(ip_address(WEST)) <= PER_SOURCE_LIMIT
    assert east.counters["halfopen_reaped"] >= 2000 - PER_SOURCE_LIMIT
    assert east.busy  # states had to be dropped: strangers get no second answer
    pair.run(120)
    replies = [w for w in pair.wire if w.sender == "east" and w.dport >= FLOOD_PORT]
    assert len(replies) <= 2000  # one MR1 per MM1 at most: no retransmissions to strangers
    assert east.table.unverified_count() == 0  # the last strangers were discarded too
    summaries = [line for line in pair.east.lines if "half-open IKE SAs:" in line]
    assert 1 <= len(summaries) <= 3, summaries  # once per interval, not per packet


def test_the_total_of_unverified_states_is_capped():
    mm1 = first_message()
    pair = make_pair(conn(), conn(left="%any", leftsubnet=None), seed=6)
    east = pair.east.engine
    east.apply_setup(uniqueids=True, keep_alive=20.0, nat_traversal=True,
                     virtual_private=east.virtual_private, max_halfopen_ike=100)
    flood(east, mm1, 1000, 0.0, source=lambda i: f"203.0.113.{i % 200}")
    assert east.half_open == 100
    # the oldest went first: the newest 100 sources are what is left
    assert east.table.oldest_unverified().remote_port == FLOOD_PORT + 900


def test_not_busy_below_the_threshold_and_unlimited_never_busy():
    mm1 = first_message()
    pair = make_pair(conn(), conn(left="%any", leftsubnet=None), seed=7)
    east = pair.east.engine
    flood(east, mm1, 50, 0.0, source=lambda i: f"203.0.113.{i}")
    assert east.half_open == 50 and not east.busy
    assert east.state_lines(0.0)[0].endswith("EVENT_RETRANSMIT in 10s")  # pluto's normal MR1
    east.apply_setup(uniqueids=True, keep_alive=20.0, nat_traversal=True,
                     virtual_private=east.virtual_private, ddos_mode=DdosMode.BUSY)
    assert east.busy
    east.apply_setup(uniqueids=True, keep_alive=20.0, nat_traversal=True,
                     virtual_private=east.virtual_private, ddos_mode=DdosMode.UNLIMITED,
                     ddos_ike_threshold=10)
    assert not east.busy


def test_aggressive_mode_work_is_rate_limited_per_source():
    am1 = first_message(aggressive=True)
    pair = make_pair(conn(aggrmode=True), seed=8)
    east = pair.east.engine
    flood(east, am1, 50, 0.0)
    answered = east.datagrams_to_send()
    assert 1 <= len(answered) <= 10  # the burst, not 50 DH computations and signatures
    assert east.counters["halfopen_refused"] == 50 - len(answered)


def test_token_bucket_refills_at_its_rate():
    bucket = TokenBucket(rate=2.0, burst=3.0)
    assert [bucket.take(0.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.take(0.5) and not bucket.take(0.5)
