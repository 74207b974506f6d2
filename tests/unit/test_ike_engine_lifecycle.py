"""DPD, rekeying (make before break), expiry, terminate, delete, uniqueids, INITIAL_CONTACT."""

from __future__ import annotations

import pytest

from fswan.config.model import AuthBy, DpdAction
from fswan.config.secrets import parse_secrets
from fswan.ike.engine import IkeEngine
from fswan.ike.events import (
    ChildSADeleted,
    ChildSAInstalled,
    IsakmpSAEstablished,
    WhackDone,
)
from tests.fakes import MemoryLoader
from tests.ike_pair import (
    EAST,
    KEYS,
    WEST,
    Pair,
    conn,
    lab_secrets,
    make_pair,
    mirrored,
    oriented,
    rsa_pubkey,
    seeded,
)


class _Esp:
    """The data plane's EspActivity, reporting what ``arrival`` says."""

    def __init__(self, arrival) -> None:
        self.arrival = arrival

    def last_esp_arrival(self, conn_name: str) -> float | None:
        return self.arrival()


def up(**options) -> Pair:
    pair = make_pair(conn(ike="aes128-sha1-modp2048", esp="aes128-sha1", **options))
    pair.initiate()
    assert len(pair.west.installed) == len(pair.east.installed) == 1
    return pair


# --------------------------------------------------------------------------
# DPD


def test_dpd_probes_are_answered():
    pair = up(dpddelay=10.0, dpdtimeout=30.0)
    assert "DPD=active" in pair.west.lines[-1]
    pair.run(100)
    assert pair.west.engine.counters["dpd_sent"] >= 5
    assert pair.east.engine.counters["dpd_received"] >= 5
    assert pair.west.deleted == pair.east.deleted == []


def test_dpd_probes_only_a_peer_silent_on_ike_and_esp():
    pair = up(dpddelay=10.0, dpdtimeout=30.0)
    pair.west.engine.esp_activity = _Esp(lambda: pair.now)  # ESP keeps arriving
    pair.silent = {"east"}  # and east ignores IKE: no probe, so nothing to time out
    pair.run(100)
    assert pair.west.engine.counters["dpd_sent"] == 0
    assert pair.west.deleted == []
    pair.west.engine.esp_activity = _Esp(lambda: None)  # the ESP stops
    pair.run(9.9)
    assert pair.west.engine.counters["dpd_sent"] == 0  # not idle for dpddelay yet
    pair.run(0.2)
    assert pair.west.engine.counters["dpd_sent"] == 1
    pair.run(30)
    assert '003 "net" #1: DPD: No response from peer - declaring peer dead' in pair.west.lines


def test_dpd_not_sent_without_dpddelay():
    pair = up()
    pair.run(300)
    assert pair.west.engine.counters["dpd_sent"] == pair.east.engine.counters["dpd_sent"] == 0


def test_dpd_dead_peer_clear():
    pair = up(dpddelay=10.0, dpdtimeout=30.0, dpdaction=DpdAction.CLEAR)
    pair.silent = {"east"}
    pair.run(39.9)
    assert pair.west.deleted == []
    pair.run(0.2)  # first unanswered R_U_THERE at 10 s + 30 s timeout
    assert '003 "net" #1: DPD: No response from peer - declaring peer dead' in pair.west.lines
    assert [(d.serial, d.reason) for d in pair.west.deleted] == [(2, "peer dead")]
    assert [(d.serial, d.reason) for d in pair.west.isakmp_down] == [(1, "peer dead")]
    assert '002 "net": DPD: dpdaction=clear: connection cleared' in pair.west.lines
    assert pair.west.engine.state_lines(pair.now) == [] and pair.west.engine.get_timer() is None


def test_dpd_dead_peer_hold():
    pair = up(dpddelay=10.0, dpdtimeout=30.0, dpdaction=DpdAction.HOLD)
    pair.silent = {"east"}
    pair.run(41)
    assert len(pair.west.deleted) == 1 and pair.west.engine.state_lines(pair.now) == []
    assert "DPD: dpdaction=hold" in pair.west.text()


def test_dpd_dead_peer_restart():
    pair = up(dpddelay=10.0, dpdtimeout=30.0, dpdaction=DpdAction.RESTART)
    pair.silent = {"east"}
    pair.run(41)
    assert "DPD: dpdaction=restart: restarting connection" in pair.west.text()
    assert '104 "net" #3: STATE_MAIN_I1: initiate' in pair.west.lines
    pair.silent = set()  # the peer comes back before our retransmissions run out
    pair.run(40)
    assert pair.west.live_children() == {max(s.serial for s in pair.west.installed)}
    assert len(pair.west.installed) == 2


# --------------------------------------------------------------------------
# rekeying


def test_three_ipsec_rekeys_make_before_break_and_an_isakmp_rekey():
    pair = up(ikelifetime=300.0, keylife=100.0, rekeymargin=20.0, rekeyfuzz=0)
    pair.run(330)
    events = pair.west.events
    installs = [e for e in events if isinstance(e, ChildSAInstalled)]
    assert len(installs) >= 4
    for old, new in zip(installs, installs[1:4]):
        assert new.replaces_serial == old.serial
        deleted = [
            i
            for i, e in enumerate(events)
            if isinstance(e, ChildSADeleted) and e.serial == old.serial
        ]
        assert deleted and events.index(new) < deleted[0]  # make before break
    for ours, theirs in zip(installs, pair.east.installed):
        assert mirrored(ours, theirs)
    # the initiator rekeyed 20 s before expiry
    assert "#3: STATE_QUICK_I1: initiate to replace #2" in pair.west.text()
    # the ISAKMP SA was replaced by a new Main Mode 20 s before its expiry, then expired
    isakmp = [e.serial for e in pair.west.of(IsakmpSAEstablished)]
    assert len(isakmp) == 2
    assert "initiating Main Mode to replace #1" in pair.west.text()
    assert [(e.serial, e.reason) for e in pair.west.isakmp_down] == [(1, "expired")]
    assert pair.west.engine.newest("net")[0] == isakmp[1]
    assert pair.east.engine.newest("net")[0] == pair.east.of(IsakmpSAEstablished)[-1].serial
    # once the last replaced pair expires, one IPsec SA pair is left on each side, the same one
    pair.run(15)
    assert len(pair.west.live_children()) == len(pair.east.live_children()) == 1


def test_responder_replaces_at_half_the_margin():
    pair = up(keylife=100.0, rekeymargin=20.0, rekeyfuzz=0)
    assert "EVENT_SA_REPLACE in 80s" in pair.west.engine.state_lines(pair.now)[1]
    assert "EVENT_SA_REPLACE in 90s" in pair.east.engine.state_lines(pair.now)[1]


def test_rekey_fuzz_spreads_the_initiator():
    pair = up(keylife=1000.0, rekeymargin=100.0, rekeyfuzz=100)
    line = pair.west.engine.state_lines(pair.now)[1]
    left = int(line.split("EVENT_SA_REPLACE in ")[1].split("s")[0])
    assert 800 <= left <= 900


def test_rekey_no_only_expires():
    pair = up(keylife=100.0, rekeymargin=20.0, rekey=False)
    assert "EVENT_SA_EXPIRE in 100s" in pair.west.engine.state_lines(pair.now)[1]
    pair.run(101)
    assert len(pair.west.installed) == 1
    assert [d.reason for d in pair.west.deleted] == ["expired"]
    assert "IPsec SA expired" in pair.west.text()


# --------------------------------------------------------------------------
# terminate and delete


def test_terminate_sends_deletes_and_the_peer_deletes():
    pair = up()
    pair.west.engine.terminate("net", pair.now, whack="t")
    pair.transfer()
    assert [(d.serial, d.reason) for d in pair.west.deleted] == [(2, "terminated")]
    assert [(d.serial, d.reason) for d in pair.west.isakmp_down] == [(1, "terminated")]
    assert pair.west.whack_done[-1] == WhackDone("t", True)
    assert '002 "net" #2: received Delete SA payload: deleting IPSEC State #2' in pair.east.lines
    assert '002 "net" #1: received Delete SA payload: deleting ISAKMP State #1' in pair.east.lines
    assert [(d.serial, d.reason) for d in pair.east.deleted] == [(2, "deleted by peer")]
    (east_child,) = pair.east.deleted
    assert east_child.outbound_spi == pair.west.deleted[0].inbound_spi
    assert pair.east.engine.state_lines(pair.now) == pair.west.engine.state_lines(pair.now) == []


def test_remove_connection_deletes_and_forgets():
    pair = up()
    pair.west.engine.remove_connection("net", pair.now)
    pair.transfer()
    assert pair.east.engine.state_lines(pair.now) == []
    pair.west.engine.initiate("net", pair.now, whack="w")
    pair.transfer()
    assert pair.west.whack_done[-1] == WhackDone("w", False)


def test_initiate_again_reuses_the_isakmp_sa():
    pair = up()
    pair.initiate(whack="again")
    assert len(pair.west.installed) == 2 and len(pair.west.isakmp_up) == 1
    assert pair.west.installed[1].replaces_serial == 2
    assert pair.west.whack_done[-1] == WhackDone("again", True)


# --------------------------------------------------------------------------
# INITIAL_CONTACT and uniqueids


def test_initial_contact_from_a_rebooted_peer_clears_old_states():
    pair = up()
    assert pair.west.engine.newest("net") == (1, 2)
    # west reboots: a fresh engine with the same configuration
    reborn = IkeEngine(lab_secrets(), random_bytes=seeded(99))
    reborn.add_connection(oriented(conn(ike="aes128-sha1-modp2048", esp="aes128-sha1"), WEST))
    pair.west.engine = reborn
    pair.west.events.clear()
    pair.initiate()
    assert (
        "received INITIAL_CONTACT: deleting 2 older state(s) of peer '192.0.2.1'"
        in pair.east.text()
    )
    assert [(d.serial, d.reason) for d in pair.east.deleted] == [(2, "INITIAL_CONTACT from peer")]
    assert pair.east.engine.newest("net") == (3, 4)


def mixed_secrets(side: str) -> object:
    loader = MemoryLoader({f"/keys/{side}.key": (KEYS / f"{side}.key").read_text()})
    text = f': RSA "/keys/{side}.key"\n@west @east : PSK "mixed-not-secret"\n'
    return parse_secrets(text, "/etc/ipsec.secrets", loader)


@pytest.mark.parametrize("uniqueids", [True, False])
def test_uniqueids_new_isakmp_sa_replaces_other_conns(uniqueids):
    ids = dict(
        leftid="@west",
        rightid="@east",
        leftrsasigkey=rsa_pubkey("west"),
        rightrsasigkey=rsa_pubkey("east"),
    )
    psk_conn = conn("a", **ids)
    rsa_conn = conn(
        "b",
        authby=AuthBy.RSASIG,
        leftsubnet="198.51.100.128/25",
        rightsubnet="203.0.113.128/25",
        **ids,
    )
    west = IkeEngine(mixed_secrets("west"), random_bytes=seeded(5), uniqueids=uniqueids)
    east = IkeEngine(mixed_secrets("east"), random_bytes=seeded(6), uniqueids=uniqueids)
    for c in (psk_conn, rsa_conn):
        west.add_connection(oriented(c, WEST))
        east.add_connection(oriented(c, EAST))
    pair = Pair(west, east)
    pair.initiate("a")
    pair.initiate("b")  # a second ISAKMP SA (other auth) for the same peer ID
    assert len(pair.east.isakmp_up) == 2
    if uniqueids:
        assert (
            "deleting state: peer '@west' has a newer ISAKMP SA #3 (uniqueids)" in pair.east.text()
        )
        assert [d.conn for d in pair.east.deleted] == ["a"]
        assert [d.conn for d in pair.west.deleted] == ["a"]  # told by Delete payloads
        assert pair.east.engine.newest("a") == (0, 0)
    else:
        assert pair.east.deleted == [] and pair.east.engine.newest("a") == (1, 2)
    assert pair.east.engine.newest("b") == (3, 4)


# --------------------------------------------------------------------------
# whack --deletestate


def test_delete_state_deletes_one_ipsec_sa_and_tells_the_peer():
    pair = up()
    serial = pair.west.installed[0].serial
    assert pair.west.engine.delete_state(serial, pair.now)
    pair.transfer()
    assert [e.serial for e in pair.west.deleted] == [serial]
    assert [e.reason for e in pair.west.deleted] == ["deleted by whack"]
    assert len(pair.east.deleted) == 1  # the peer's Delete payload arrived
    assert pair.west.isakmp_down == []  # the ISAKMP SA stays


def test_delete_state_of_the_isakmp_sa_leaves_its_ipsec_sa():
    pair = up()
    isakmp = pair.west.isakmp_up[0].serial
    assert pair.west.engine.delete_state(isakmp, pair.now)
    pair.transfer()
    assert [e.serial for e in pair.west.isakmp_down] == [isakmp]
    assert pair.west.deleted == [] and len(pair.east.isakmp_down) == 1


def test_delete_state_of_an_unknown_serial_is_false():
    pair = up()
    assert not pair.west.engine.delete_state(999, pair.now)
