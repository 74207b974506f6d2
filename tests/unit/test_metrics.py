"""IkeStats from a real engine pair's events, and the Prometheus text exposition."""

from __future__ import annotations

import re

import pytest

from fswan.daemon.metrics import BUCKETS, IkeStats, escape_label, parse_metrics_address, render
from fswan.daemon.status import DaemonCounters, SaCounters
from fswan.ike import events as ev
from fswan.whackproto import RC
from tests.ike_pair import conn, make_pair

#: a sample line: name, optional {labels}, value
SAMPLE = re.compile(r'^([a-z_:][a-z0-9_:]*)(\{(?:[a-z_]+="(?:[^"\\]|\\.)*",?)*\})? (\S+)$')


def fed(pair) -> tuple[IkeStats, IkeStats]:
    """Stats for each side, fed with every event in order at the pair's times."""
    west, east = IkeStats(), IkeStats()
    for stats, side in ((west, pair.west), (east, pair.east)):
        for event in side.events:
            stats.on_event(event, 0.0)
    return west, east


def test_a_tunnel_is_two_handshakes_started_and_completed_on_each_side():
    pair = make_pair(conn(ike="aes128-sha1-modp2048", esp="aes128-sha1"))
    pair.initiate()
    for stats in fed(pair):
        assert stats.started == {"isakmp": 1, "ipsec": 1}
        assert stats.completed == {"isakmp": 1, "ipsec": 1}
        assert stats.failed == {} and stats.pending == 0
        assert stats.latency["isakmp"].count == 1


def test_a_refused_proposal_is_a_failure_with_the_peers_reason():
    pair = make_pair(conn(ike="aes128-sha1-modp2048", keyingtries=1),
                     conn(ike="3des-md5-modp1024"))
    pair.initiate()
    pair.run(100)
    west, _east = fed(pair)
    assert west.started["isakmp"] == 1
    assert west.failed == {("isakmp", "peer sent NO_PROPOSAL_CHOSEN"): 1}


def test_latency_rekeys_dpd_and_states_dropped_without_an_event():
    stats = IkeStats()
    stats.on_event(ev.LogLine("STATE_MAIN_I1: initiate", RC.NEW_STATE + 4, "net", 1, None), 10.0)
    stats.on_event(ev.IsakmpSAEstablished("net", 1, None, 500, None), 10.2)  # type: ignore[arg-type]
    assert stats.latency["isakmp"].counts[BUCKETS.index(0.25)] == 1
    stats.on_event(ev.LogLine("STATE_MAIN_I1: initiate", RC.NEW_STATE + 4, "net", 3, None), 20.0)
    stats.on_event(ev.IsakmpSAEstablished("net", 3, None, 500, None), 20.0)  # type: ignore[arg-type]
    assert stats.rekeys["isakmp"] == 1  # #3 came while #1 was up
    stats.on_event(ev.LogLine("STATE_QUICK_I1: initiate", RC.NEW_STATE + 17, "net", 5, None), 21.0)
    stats.on_event(ev.LogLine("refused", RC.LOG_SERIOUS, "net", 5, None), 21.0)
    stats.reconcile([1, 3])  # #5 is gone without ChildSADeleted (it was never installed)
    assert stats.failed == {("ipsec", "negotiation failed"): 1}
    stats.on_event(ev.LogLine("DPD: No response from peer - declaring peer dead", RC.LOG_SERIOUS,
                              "net", 3, None), 30.0)
    assert stats.dpd_timeouts == {"net": 1}
    stats.on_log_line("up-client failed: plugin routing: boom", RC.LOG_SERIOUS, "net", 5)
    stats.on_log_line("up-client failed: not serious", RC.LOG, "net", 5)
    assert stats.updown_failures == {("net", "up-client"): 1}


def _parse(text: str) -> dict[str, dict[str, float]]:
    """Check the exposition's grammar; samples by family (HELP/TYPE before any sample)."""
    assert text.endswith("\n")
    families: dict[str, str] = {}
    samples: dict[str, dict[str, float]] = {}
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name = line.split()[2]
            assert name.startswith("fswan_") and name not in families
            families[name] = ""
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            assert name in families and kind in ("counter", "gauge", "histogram")
            families[name] = kind
            continue
        match = SAMPLE.match(line)
        assert match, line
        name = match.group(1)
        base = re.sub(r"_(bucket|sum|count)$", "", name) if name not in families else name
        assert base in families and families[base], line
        samples.setdefault(name, {})[match.group(2) or ""] = float(match.group(3))
    return samples


def test_the_exposition_format():
    pair = make_pair(conn(ike="aes128-sha1-modp2048", esp="aes128-sha1"))
    pair.initiate()
    west, _ = fed(pair)
    counters = DaemonCounters(
        states=tuple(pair.west.engine.snapshot(pair.now)), connections=1, half_open=2, busy=True,
        ike=dict(pair.west.engine.counters), dataplane={"no eroute!": 3, "%hold": 1},
        pump={"tun_read": 9},
        sas=(SaCounters('we"ird\\net\n', "in", 840, 10), SaCounters("net", "out", 84, 1),
             SaCounters("net", "out", 16, 1)),
    )
    samples = _parse(render(west, counters))
    assert samples["fswan_isakmp_sas"]['{state="STATE_MAIN_I4"}'] == 1
    assert samples["fswan_ipsec_sas"]['{state="STATE_QUICK_I2"}'] == 1
    assert samples["fswan_ike_half_open"][""] == 2 and samples["fswan_ike_busy"][""] == 1
    assert samples["fswan_ike_handshakes_completed_total"]['{phase="ipsec"}'] == 1
    buckets = samples["fswan_ike_handshake_duration_seconds_bucket"]
    assert buckets['{phase="isakmp",le="+Inf"}'] == 1
    assert samples["fswan_ike_handshake_duration_seconds_count"]['{phase="isakmp"}'] == 1
    assert samples["fswan_conn_bytes_total"]['{conn="net",direction="out"}'] == 100
    assert samples["fswan_conn_packets_total"]['{conn="net",direction="out"}'] == 2
    assert samples["fswan_conn_bytes_total"]['{conn="we\\"ird\\\\net\\n",direction="in"}'] == 840
    assert samples["fswan_dataplane_drops_total"]['{reason="no eroute!"}'] == 3
    assert samples["fswan_dataplane_events_total"]['{event="%hold"}'] == 1
    assert samples["fswan_pump_total"]['{counter="tun_read"}'] == 9
    assert samples["fswan_ike_messages_total"]['{event="datagrams_sent"}'] > 0


def test_label_escaping_and_addresses():
    assert escape_label('a"b\\c\nd') == 'a\\"b\\\\c\\nd'
    assert parse_metrics_address("127.0.0.1:9577") == ("127.0.0.1", 9577)
    assert parse_metrics_address("[::1]:9577") == ("::1", 9577)
    for bad in ("9577", "localhost:9577", "127.0.0.1:99999", "127.0.0.1:x", ":9577"):
        with pytest.raises(ValueError):
            parse_metrics_address(bad)
