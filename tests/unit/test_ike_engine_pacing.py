"""A daemon starting many conns at once paces its Main Modes (MAX_INITIATING under way),
so the peer reads a steady stream instead of dropping a burst; every conn still comes up."""

from __future__ import annotations

from fswan.ike.engine import MAX_INITIATING, IkeEngine
from fswan.ike.state import Phase1State, Phase2State
from tests.ike_pair import EAST, WEST, Pair, conn, oriented, psk_secrets, seeded

SECRETS = ': PSK "pacing-not-secret"\n'
COUNT = MAX_INITIATING * 2 + 5


def test_main_modes_are_paced_and_every_conn_comes_up():
    west = IkeEngine(psk_secrets(SECRETS), random_bytes=seeded(61))
    east = IkeEngine(psk_secrets(SECRETS), random_bytes=seeded(62))
    for i in range(COUNT):
        c = conn(f"t{i}", leftid=f"@w{i}", rightid=f"@e{i}", leftsubnet=f"198.51.100.{i}/32",
                 rightsubnet=f"203.0.113.{i}/32", ike="aes128-sha1-modp2048",
                 esp="aes128-sha1", pfs=False)
        west.add_connection(oriented(c, WEST))
        east.add_connection(oriented(c, EAST))
    pair = Pair(west, east)
    for i in range(COUNT):
        west.initiate(f"t{i}", 0.0, None)
    first_burst = west.datagrams_to_send()
    assert len(first_burst) == MAX_INITIATING  # one MM1 each, the rest wait their turn
    assert sum("initiation queued" in e.text for e in west.next_events()
               if hasattr(e, "text")) == COUNT - MAX_INITIATING
    for d in first_burst:
        east.receive_datagram(d.data, EAST, d.local_port, WEST, d.local_port, 0.0)
    pair.transfer(limit=5000)
    up = {s.conn_name for s in west.table.states.values()
          if isinstance(s, Phase2State) and s.installed}
    assert up == {f"t{i}" for i in range(COUNT)}
    assert all(s.kind.is_isakmp_established for s in west.table.states.values()
               if isinstance(s, Phase1State))
