"""Hostile datagrams at every point of an exchange: nothing escapes, states stay usable.

The exchange is deterministic (seeded randomness), so a reference run gives the
exact bytes -- cookies, message IDs -- that a staged run will have on the wire;
mutating those reaches deep into the handlers instead of stopping at the cookie
lookup.
"""

from __future__ import annotations

from functools import lru_cache

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fswan.isakmp.message import NON_ESP_MARKER
from tests.ike_pair import EAST, WEST, Pair, conn, make_pair, mirrored

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PROBLEMS = (
    "malformed",
    "unknown_cookie",
    "unexpected",
    "retransmits_received",
    "duplicates_ignored",
    "decrypt_failed",
    "rejected",
    "no_connection",
    "esp_on_ike_port",
    "cleartext_informational",
    "keepalives_received",
)


def fresh() -> Pair:
    return make_pair(
        conn(ike="aes128-sha1-modp2048", esp="aes128-sha1", pfs=False, dpddelay=10.0), seed=11
    )


@lru_cache(maxsize=1)
def reference() -> tuple[tuple[str, int, int, bytes], ...]:
    """(sender, source port, destination port, data) of each datagram of a clean run."""
    pair = fresh()
    pair.west.engine.initiate("net", 0.0, "whack")
    while pair.step():
        pass
    assert len(pair.west.installed) == 1
    return tuple((w.sender, w.sport, w.dport, w.data) for w in pair.wire)


def staged(stage: int) -> Pair:
    pair = fresh()
    pair.west.engine.initiate("net", 0.0, "whack")
    pair.step(stage)
    return pair


def consistent(pair: Pair) -> None:
    for ep in pair.endpoints:
        engine = ep.engine
        assert engine.counters["internal_error"] == 0, ep.text()
        lines = engine.state_lines(pair.now)
        assert len(engine.state_dicts(pair.now)) <= len(lines)
        timer = engine.get_timer()
        assert timer is None or timer >= 0


def inject(pair: Pair, to: str, data: bytes, port: int) -> dict[str, int]:
    ep = pair.west if to == "west" else pair.east
    source = EAST if to == "west" else WEST
    before = dict(ep.engine.counters)
    if port == 4500 and not data.startswith(NON_ESP_MARKER):
        data = NON_ESP_MARKER + data
    ep.engine.receive_datagram(data, ep.address, port, source, port, pair.now)
    pair._drain_events()
    return {k: ep.engine.counters[k] - before.get(k, 0) for k in ep.engine.counters}


@SETTINGS
@given(
    stage=st.integers(0, 9),
    data=st.binary(max_size=400),
    to=st.sampled_from(["west", "east"]),
    port=st.sampled_from([500, 4500]),
)
def test_random_bytes_change_nothing(stage, data, to, port):
    pair = staged(stage)
    moved = inject(pair, to, data, port)
    assert moved["datagrams_received"] == 1
    assert sum(moved[k] for k in PROBLEMS) >= 1 or moved["internal_error"] == 0
    consistent(pair)
    pair.run(60)
    consistent(pair)
    (west,), (east,) = pair.west.installed, pair.east.installed
    assert mirrored(west, east)


@SETTINGS
@given(
    stage=st.integers(0, 9),
    which=st.integers(0, 8),
    to=st.sampled_from(["west", "east"]),
    edits=st.lists(st.tuples(st.integers(0, 700), st.integers(0, 255)), min_size=1, max_size=4),
    cut=st.one_of(st.none(), st.integers(0, 700)),
    extra=st.binary(max_size=20),
)
def test_mutated_real_messages(stage, which, to, edits, cut, extra):
    sender, sport, dport, original = reference()[which]
    data = bytearray(original)
    start = 4 if data.startswith(NON_ESP_MARKER) else 0
    for offset, value in edits:
        if len(data) > start:
            data[start + offset % (len(data) - start)] = value
    if cut is not None:
        data = data[: start + cut]
    data += extra
    pair = staged(stage)
    moved = inject(pair, to, bytes(data), dport)
    assert moved["datagrams_received"] == 1
    consistent(pair)
    pair.run(200)
    consistent(pair)


@SETTINGS
@given(stage=st.integers(0, 9), which=st.integers(0, 8))
def test_replayed_real_messages(stage, which):
    """A whole valid message at the wrong moment is a duplicate or out of order, nothing more."""
    sender, sport, dport, data = reference()[which]
    pair = staged(stage)
    inject(pair, "east" if sender == "west" else "west", data, dport)
    consistent(pair)
    pair.run(60)
    consistent(pair)
    (west,), (east,) = pair.west.installed, pair.east.installed
    assert mirrored(west, east)
