"""IKEv2 rekeys that meet on one IKE SA, two engines in memory (tests/ike_pair.py): the
requests waiting on an IKE SA's window when that SA is rekeyed away go out on its
successor, found in the lab (tests/lab/test_ikev2_lab.py, rekeys under iperf3)."""

from __future__ import annotations

from fswan.config.model import Ikev2Policy
from fswan.ike.state import StateKind
from fswan.ikev2.sa import ChildSa, IkeSa
from tests.ike_pair import Pair, conn, make_pair

#: the lab's timers: Child SA rekeyed at 8 s and 16 s, IKE SA at 16 s (one moment)
TIMERS = {"keylife": 16.0, "ikelifetime": 24.0, "rekeymargin": 8.0, "rekeyfuzz": 0}


def kinds(pair: Pair, side: str) -> list[StateKind]:
    ep = pair.west if side == "west" else pair.east
    return [s.kind for s in ep.engine.table.states.values()]


def test_a_child_rekey_queued_behind_an_ike_rekey_goes_out_on_the_new_ike_sa():
    pair = make_pair(conn(ikev2=Ikev2Policy.INSIST, **TIMERS))
    pair.initiate()
    pair.run(17.0)
    # both rekeys fired at 16 s: the IKE SA's went first, the Child SA's waited its turn
    west_log = pair.west.text()
    assert "STATE_V2_REKEY_IKE_I1" in west_log and "rekeyed: its Child SAs now use" in west_log
    assert StateKind.V2_REKEY_CHILD_I1 not in kinds(pair, "west"), west_log
    pair.run(30.0)
    for side in ("west", "east"):
        ep = pair.west if side == "west" else pair.east
        assert ep.live_children(), ep.text()
        table = ep.engine.table
        for st in table.states.values():
            if isinstance(st, ChildSa):
                assert st.kind is StateKind.V2_ESTABLISHED_CHILD_SA, ep.text()
                parent = table.isakmp(st.isakmp_serial)
                assert isinstance(parent, IkeSa) and parent.kind.established, ep.text()


def test_a_child_sa_negotiated_on_an_ike_sa_the_peer_rekeyed_meanwhile_moves_over():
    """West rekeys its Child SA as east rekeys the IKE SA, both at 8 s: west answers
    east's IKE rekey before the answer to its Child SA rekey arrives on the old IKE SA.
    The new Child SA must ride the new IKE SA, not die with the old one's Delete."""
    west = conn(ikev2=Ikev2Policy.INSIST, keylife=16.0, rekeymargin=8.0, rekeyfuzz=0)
    # a responder rekeys at half the margin: 12 - 8 / 2
    east = conn(ikev2=Ikev2Policy.INSIST, ikelifetime=12.0, rekeymargin=8.0, rekeyfuzz=0)
    pair = make_pair(west, east)
    pair.initiate()
    pair.run(9.0)
    for ep in pair.endpoints:
        assert "rekeyed: its Child SAs now use" in ep.text(), ep.text()
    assert "STATE_V2_REKEY_CHILD_I1" in pair.west.text()
    pair.run(1.0)
    for ep in pair.endpoints:
        table = ep.engine.table
        children = [s for s in table.states.values() if isinstance(s, ChildSa)]
        assert children, ep.text()
        for st in children:
            assert st.kind is StateKind.V2_ESTABLISHED_CHILD_SA, ep.text()
            parent = table.isakmp(st.isakmp_serial)
            assert isinstance(parent, IkeSa) and parent.kind.established, ep.text()
            assert not parent.superseded, ep.text()
