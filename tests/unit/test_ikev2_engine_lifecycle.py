"""IKEv2 on the clock: Child SA and IKE SA rekeys by CREATE_CHILD_SA (either side, with
and without PFS), liveness checks and dpdaction=."""

from __future__ import annotations

import pytest

from fswan.config.model import DpdAction, Ikev2Policy
from fswan.ike.state import StateKind
from fswan.ikev2.constants import ExchangeType, NotifyType, ProtocolId
from fswan.ikev2.payloads import KeyExchange, SecurityAssociation
from fswan.ikev2.sa import ChildSa, IkeSa
from tests.ike_pair import Pair, conn, make_pair, mirrored
from tests.unit.test_ikev2_engine import decode, exchanges, opened

V2 = {"ikev2": Ikev2Policy.INSIST}
#: a Child SA rekeyed at 240 s (keylife 300 - margin 60, no fuzz), an IKE SA at 540 s
SHORT_CHILD = {"keylife": 300.0, "rekeymargin": 60.0, "rekeyfuzz": 0}
SHORT_IKE = {"ikelifetime": 600.0, "rekeymargin": 60.0, "rekeyfuzz": 0}


def up(west_options: dict, east_options: dict | None = None) -> Pair:
    pair = make_pair(conn(**V2, **west_options),
                     conn(**V2, **(west_options if east_options is None else east_options)))
    pair.initiate()
    assert len(pair.west.installed) == len(pair.east.installed) == 1
    return pair


def ike_sas(pair: Pair, side: str) -> list[IkeSa]:
    ep = pair.west if side == "west" else pair.east
    return sorted((s for s in ep.engine.table.states.values() if isinstance(s, IkeSa)),
                  key=lambda s: s.serial)


def live_children(pair: Pair, side: str) -> list[ChildSa]:
    ep = pair.west if side == "west" else pair.east
    return sorted((s for s in ep.engine.table.states.values() if isinstance(s, ChildSa)),
                  key=lambda s: s.serial)


def requests(pair: Pair, start: int, sender: str, exchange: int) -> list:
    return [w for w in pair.wire[start:] if w.sender == sender and w.data != b"\xff"
            and not decode(w).header.is_response and decode(w).header.exchange == exchange]


def clean(pair: Pair) -> None:
    for ep in pair.endpoints:
        counters = ep.engine.counters
        assert counters["internal_error"] == counters["decrypt_failed"] == 0
        assert counters["duplicates_ignored"] == counters["unexpected"] == 0, ep.text()
        for ike in ike_sas(pair, ep.name):
            assert ike.outstanding is None and not ike.queue


# --------------------------------------------------------------------------
# 5. Child SA rekeys


@pytest.mark.parametrize("pfs", [False, True], ids=["no-pfs", "pfs"])
def test_child_sa_rekey(pfs):
    pair = up({**SHORT_CHILD, "pfs": pfs})
    start = len(pair.wire)
    pair.run(239)
    assert len(pair.wire) == start  # nothing before the margin
    pair.run(2)
    old_w, new_w = pair.west.installed
    old_e, new_e = pair.east.installed
    assert mirrored(new_w, new_e)
    assert new_w.replaces_serial == old_w.serial and new_e.replaces_serial == old_e.serial
    assert new_w.inbound_spi != old_w.inbound_spi and new_w.outbound_spi != old_w.outbound_spi
    assert new_w.inbound_keys != old_w.inbound_keys and new_w.outbound_keys != old_w.outbound_keys
    assert [e.serial for e in pair.west.deleted] == [old_w.serial]
    assert [e.serial for e in pair.east.deleted] == [old_e.serial]
    assert [e.reason for e in pair.west.deleted + pair.east.deleted] == ["replaced",
                                                                         "deleted by peer"]
    assert '136 "net" #3: STATE_V2_REKEY_CHILD_I1: sent CREATE_CHILD_SA request to rekey ' \
        "IPsec SA to replace #2" in pair.west.lines
    assert ('002 "net" #2: received Delete SA payload: deleting IPsec State #2'
            in pair.east.lines)
    # one CREATE_CHILD_SA, one Delete, both over the one IKE SA (message IDs 2 and 3)
    assert exchanges(pair, start) == [
        ("west", ExchangeType.CREATE_CHILD_SA, 2, False),
        ("east", ExchangeType.CREATE_CHILD_SA, 2, True),
        ("west", ExchangeType.INFORMATIONAL, 3, False),
        ("east", ExchangeType.INFORMATIONAL, 3, True),
    ]
    (request,) = requests(pair, start, "west", ExchangeType.CREATE_CHILD_SA)
    message = opened(pair, request)
    rekey = message.notify(NotifyType.REKEY_SA)
    assert rekey is not None and rekey.protocol == ProtocolId.ESP
    assert rekey.spi == old_w.inbound_spi.to_bytes(4, "big")
    assert (message.get(KeyExchange) is not None) == pfs
    assert ("pfsgroup=MODP2048" in pair.west.lines[-2]) == pfs
    assert new_w.proposal == new_e.proposal
    assert [s.serial for s in live_children(pair, "west")] == [3]
    assert pair.west.engine.newest("net") == pair.east.engine.newest("net") == (1, 3)
    clean(pair)


def test_responder_rekeys_the_child_sa_when_its_keylife_is_shorter():
    pair = up({}, SHORT_CHILD)
    start = len(pair.wire)
    pair.run(269)
    assert len(pair.wire) == start  # a responder's margin is half the conn's
    pair.run(2)
    assert exchanges(pair, start)[0] == ("east", ExchangeType.CREATE_CHILD_SA, 0, False)
    old_e, new_e = pair.east.installed
    old_w, new_w = pair.west.installed
    assert mirrored(new_w, new_e) and new_e.replaces_serial == old_e.serial
    assert [e.serial for e in pair.east.deleted] == [old_e.serial]
    assert [e.serial for e in pair.west.deleted] == [old_w.serial]
    clean(pair)


def test_child_sa_rekeys_keep_coming():
    pair = up(SHORT_CHILD)
    pair.run(241 * 4)
    assert len(pair.west.installed) == len(pair.east.installed) == 5
    for a, b in zip(pair.west.installed, pair.east.installed):
        assert mirrored(a, b)
    assert len(live_children(pair, "west")) == len(live_children(pair, "east")) == 1
    clean(pair)


# --------------------------------------------------------------------------
# 5. IKE SA rekeys


def test_ike_sa_rekey_moves_the_children_and_deletes_the_old_sa():
    pair = up({**SHORT_IKE, "keylife": 3000.0})
    (child_w,), (child_e,) = live_children(pair, "west"), live_children(pair, "east")
    (old_e,) = ike_sas(pair, "east")
    start = len(pair.wire)
    pair.run(541)
    (new_w,), (new_e,) = ike_sas(pair, "west"), ike_sas(pair, "east")
    assert new_w.serial == new_e.serial == 3
    assert new_w.kind is new_e.kind is StateKind.V2_ESTABLISHED_IKE_SA
    assert new_w.rekey_of == new_e.rekey_of == 1
    assert new_w.cookies == new_e.cookies and new_w.icookie != decode(pair.wire[0]).header.spi_i
    assert new_w.sk is not None and new_e.sk is not None
    assert new_w.sk.sk_d == new_e.sk.sk_d and new_w.initiator and not new_e.initiator
    # the Child SAs now ride the new IKE SA, untouched
    assert pair.west.engine.table.children(new_w) == [child_w]
    assert pair.east.engine.table.children(new_e) == [child_e]
    assert pair.west.deleted == pair.east.deleted == []
    assert [(e.serial, e.reason) for e in pair.west.isakmp_down] == [(1, "replaced")]
    assert [(e.serial, e.reason) for e in pair.east.isakmp_down] == [(1, "deleted by peer")]
    assert [e.serial for e in pair.west.isakmp_up] == [e.serial for e in pair.east.isakmp_up] \
        == [1, 3]
    assert '002 "net" #3: IKE SA #1 rekeyed: its Child SAs now use #3' in pair.west.lines
    assert '002 "net" #1: received Delete SA payload: deleting IKE SA #1' in pair.east.lines
    (request,) = requests(pair, start, "west", ExchangeType.CREATE_CHILD_SA)
    sa = old_e.open(request.data).get(SecurityAssociation)
    assert sa is not None and sa.proposals[0].protocol == ProtocolId.IKE
    assert sa.proposals[0].spi == new_w.icookie
    assert pair.west.engine.newest("net") == (3, 2)
    # a Child SA rekey over the new IKE SA
    pair.run(3000 - 60 - 541 + 1)
    assert len(pair.west.installed) == len(pair.east.installed) == 2
    assert mirrored(pair.west.installed[1], pair.east.installed[1])
    (child_w,) = live_children(pair, "west")
    assert child_w.isakmp_serial == ike_sas(pair, "west")[0].serial
    assert pair.west.installed[1].replaces_serial == 2
    clean(pair)


def test_responder_rekeys_the_ike_sa_when_its_lifetime_is_shorter():
    pair = up({}, SHORT_IKE)
    start = len(pair.wire)
    pair.run(571)
    assert exchanges(pair, start)[0] == ("east", ExchangeType.CREATE_CHILD_SA, 0, False)
    (new_w,), (new_e,) = ike_sas(pair, "west"), ike_sas(pair, "east")
    assert new_e.initiator and not new_w.initiator  # the rekey's initiator is the new I
    assert len(pair.west.engine.table.children(new_w)) == 1
    assert len(pair.east.engine.table.children(new_e)) == 1
    assert [e.reason for e in pair.east.isakmp_down] == ["replaced"]
    assert [e.reason for e in pair.west.isakmp_down] == ["deleted by peer"]
    # the new IKE SA, whose initiator is east now, carries west's Delete too
    pair.west.engine.terminate("net", pair.now)
    pair.transfer()
    assert pair.west.engine.table.states == pair.east.engine.table.states == {}


def test_ike_and_child_rekeys_from_both_sides_over_time():
    pair = up({**SHORT_IKE, "keylife": 1000.0, "pfs": True},
              {"ikelifetime": 700.0, "rekeymargin": 60.0, "rekeyfuzz": 0, **SHORT_CHILD})
    pair.run(3000)
    for a, b in zip(pair.west.installed, pair.east.installed):
        assert mirrored(a, b)
    assert len(pair.west.installed) >= 8
    (w_ike,), (e_ike,) = ike_sas(pair, "west"), ike_sas(pair, "east")
    assert w_ike.cookies == e_ike.cookies and w_ike.serial > 3
    assert [c.our_spi for c in live_children(pair, "west")] == [
        c.peer_spi for c in live_children(pair, "east")]
    initiators = {w.sender for w in pair.wire[4:] if w.data != b"\xff"
                  and decode(w).header.exchange == ExchangeType.CREATE_CHILD_SA
                  and not decode(w).header.is_response}
    assert initiators == {"west", "east"}
    for ep in pair.endpoints:
        assert ep.engine.counters["internal_error"] == 0


# --------------------------------------------------------------------------
# 6. liveness


DPD = {"dpddelay": 10.0, "dpdtimeout": 30.0}


def test_answered_liveness_checks_keep_everything():
    pair = up(DPD)
    assert "DPD=active" in pair.west.lines[-1]
    start = len(pair.wire)
    pair.run(100)
    assert pair.west.engine.counters["dpd_sent"] >= 9
    empty = requests(pair, start, "west", ExchangeType.INFORMATIONAL)
    assert len(empty) >= 9 and all(opened(pair, w).payloads == () for w in empty[-1:])
    assert pair.west.deleted == pair.east.deleted == []
    assert pair.west.isakmp_down == pair.east.isakmp_down == []
    clean(pair)


@pytest.mark.parametrize("action", list(DpdAction))
def test_silent_peer_is_declared_dead(action):
    pair = up({**DPD, "dpdaction": action}, {})
    pair.silent.add("east")
    pair.run(10)
    assert pair.west.engine.counters["dpd_sent"] == 1
    pair.run(30)  # unanswered for dpdtimeout
    assert '003 "net" #1: DPD: No response from peer - declaring peer dead' in pair.west.lines
    assert [(e.serial, e.reason) for e in pair.west.deleted] == [(2, "peer dead")]
    assert [(e.serial, e.reason) for e in pair.west.isakmp_down] == [(1, "peer dead")]
    assert pair.east.deleted == []  # east heard nothing of it
    restarted = [s for s in ike_sas(pair, "west") if s.serial > 2]
    if action is DpdAction.RESTART:
        assert '002 "net": DPD: dpdaction=restart: restarting connection' in pair.west.lines
        assert [s.kind for s in restarted] == [StateKind.PARENT_I1]
        pair.silent.clear()
        pair.run(30)  # the next retransmission of IKE_SA_INIT gets through
        assert len(pair.west.installed) == len(pair.east.installed) == 2
        assert mirrored(pair.west.installed[1], pair.east.installed[1])
        # east learnt of the restart by INITIAL_CONTACT and dropped the old SAs
        assert [e.serial for e in pair.east.deleted] == [2]
        assert len(ike_sas(pair, "east")) == 1
    else:
        assert restarted == []
        assert pair.west.engine.table.states == {}
        word = "clear: connection cleared" if action is DpdAction.CLEAR else "hold: connection put"
        assert any(f"DPD: dpdaction={word}" in line for line in pair.west.lines)
        pair.silent.clear()
        pair.run(100)
        assert len(pair.west.installed) == 1


def test_liveness_retries_on_the_window_then_gives_up():
    pair = up(DPD, {})
    pair.silent.add("east")
    start = len(pair.wire)
    pair.run(45)
    probes = requests(pair, start, "west", ExchangeType.INFORMATIONAL)
    # one request, sent again while unanswered: the same message ID every time
    assert len(probes) >= 3 and len({decode(w).header.message_id for w in probes}) == 1
    assert len({w.data for w in probes}) == 1
    assert pair.west.engine.table.states == {}


# --------------------------------------------------------------------------
# known bugs (skipped: the fix is outside what this test suite's author may edit)


def test_a_lost_delete_does_not_wedge_the_window():
    from tests.ike_pair import Faults

    pair = up(SHORT_CHILD)
    pair.set_fault(Faults(drop=[2]))  # the rekey's Delete of the old Child SA
    pair.run(1500)
    west_requests = [w for w in pair.wire if w.sender == "west"
                     and decode(w).header.exchange == ExchangeType.CREATE_CHILD_SA
                     and not decode(w).header.is_response]
    assert len(west_requests) >= 5  # west keeps rekeying at 240 s intervals
    clean(pair)


def test_simultaneous_child_rekeys_leave_one_child_sa():
    pair = up(SHORT_CHILD, {**SHORT_CHILD, "rekeymargin": 120.0})  # both at 240 s
    pair.run(241)
    assert len(live_children(pair, "west")) == len(live_children(pair, "east")) == 1


def test_simultaneous_ike_rekeys_leave_one_ike_sa():
    pair = up({**SHORT_IKE, "keylife": 3000.0},
              {**SHORT_IKE, "keylife": 3000.0, "rekeymargin": 120.0})  # both at 540 s
    pair.run(541)
    assert len(ike_sas(pair, "west")) == len(ike_sas(pair, "east")) == 1
