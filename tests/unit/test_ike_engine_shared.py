"""Many conns to one peer: they share what they can and keep all their tunnels.

A hub starting N conns to one spoke at once (``auto=start`` on both ends after a
restart) must end with N tunnels; INITIAL_CONTACT and uniqueids must only clear
what the new exchange really replaces.
"""

from __future__ import annotations

from fswan.config.secrets import parse_secrets
from fswan.ike.engine import IkeEngine
from fswan.ike.state import Phase1State, Phase2State
from tests.ike_pair import EAST, WEST, Pair, conn, lab_secrets, oriented, seeded


def hub_and_spoke(count: int, **ids) -> Pair:
    west = IkeEngine(lab_secrets(), random_bytes=seeded(11))
    east = IkeEngine(lab_secrets(), random_bytes=seeded(12))
    for i in range(count):
        c = conn(f"t{i}", leftsubnet=f"198.51.100.{i}/32", rightsubnet=f"203.0.113.{i}/32", **ids)
        west.add_connection(oriented(c, WEST))
        east.add_connection(oriented(c, EAST))
    return Pair(west, east)


def tunnels(engine: IkeEngine) -> set[str]:
    return {s.conn_name for s in engine.table.states.values()
            if isinstance(s, Phase2State) and s.installed}


def test_conns_started_together_share_one_main_mode():
    pair = hub_and_spoke(5)
    for i in range(5):
        pair.west.engine.initiate(f"t{i}", 0.0, None)
    pair.transfer()
    assert tunnels(pair.west.engine) == tunnels(pair.east.engine) == {f"t{i}" for i in range(5)}
    isakmp = [s for s in pair.west.engine.table.states.values() if isinstance(s, Phase1State)]
    assert len(isakmp) == 1
    assert sum("STATE_MAIN_I1: initiate" in line for line in pair.west.lines) == 1


def test_both_ends_starting_at_once_keep_every_tunnel():
    pair = hub_and_spoke(6)
    for i in range(6):
        pair.west.engine.initiate(f"t{i}", 0.0, None)
        if i % 2:
            pair.east.engine.initiate(f"t{i}", 0.0, None)
    pair.transfer()
    pair.run(60)
    wanted = {f"t{i}" for i in range(6)}
    assert tunnels(pair.west.engine) == tunnels(pair.east.engine) == wanted
    # two ISAKMP SAs (one each way) live side by side: neither replaced the other
    for ep in pair.endpoints:
        assert "(uniqueids)" not in ep.text()
        assert sum(isinstance(s, Phase1State) and s.kind.is_isakmp_established
                   for s in ep.engine.table.states.values()) == 2


def two_ids_secrets() -> object:
    return parse_secrets(': PSK "two-ids-not-secret"\n', "/etc/ipsec.secrets")


def test_a_hub_with_two_ids_keeps_one_tunnel_when_the_other_restarts():
    # west presents a different ID on each conn to the same spoke: two ISAKMP SAs
    def engines(seed: int):
        west = IkeEngine(two_ids_secrets(), random_bytes=seeded(seed))
        east = IkeEngine(two_ids_secrets(), random_bytes=seeded(seed + 1))
        for name, our_id, i in (("a", "@west-a", 1), ("b", "@west-b", 2)):
            c = conn(name, leftid=our_id, rightid="@east", leftsubnet=f"198.51.100.{i}/32",
                     rightsubnet=f"203.0.113.{i}/32")
            west.add_connection(oriented(c, WEST))
            east.add_connection(oriented(c, EAST))
        return west, east

    west, east = engines(21)
    pair = Pair(west, east)
    pair.initiate("a")
    pair.initiate("b")  # not over a's ISAKMP SA: that one proved @west-a, not @west-b
    assert tunnels(east) == {"a", "b"}
    assert sorted(str(s.peer_id) for s in east.table.states.values()
                  if isinstance(s, Phase1State)) == ["@west-a", "@west-b"]
    # west reboots and brings up "b" first: its INITIAL_CONTACT is about @west-b only
    reborn, _ = engines(41)
    pair.west.engine = reborn
    pair.initiate("b")
    assert "received INITIAL_CONTACT: deleting 2 older state(s) of peer '@west-b'" in pair.east.text()
    assert {d.conn for d in pair.east.deleted} == {"b"}
    assert tunnels(east) == {"a", "b"}  # a's SAs untouched, b's replaced
