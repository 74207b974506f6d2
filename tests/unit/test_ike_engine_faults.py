"""Loss, duplication, reordering, retransmission limits, keying attempts, proposal mismatch."""

from __future__ import annotations

import pytest

from fswan.ike.events import WhackDone
from tests.ike_pair import Faults, conn, make_pair, mirrored

#: the datagrams of one exchange, in the order they go out
MI1, MR1, MI2, MR2, MI3, MR3, QI1, QR1, QI2 = range(9)


def up_once(pair) -> None:
    (west,), (east,) = pair.west.installed, pair.east.installed
    assert mirrored(west, east)
    assert pair.west.whack_done == [WhackDone("whack", True)]
    assert pair.west.engine.newest("net") == (1, 2)


@pytest.mark.parametrize(
    "faults",
    [
        Faults(drop=[MI1]),
        Faults(drop=[MR1]),
        Faults(drop=[MI2, MR2 + 1]),
        Faults(drop=[MI3]),
        Faults(drop=[MR3]),
        Faults(drop=[QI1]),
        Faults(drop=[QR1]),
        Faults(drop=[QI2]),
        Faults(duplicate=range(9)),
        Faults(duplicate=[MI1, MI3, QI1], drop=[MR3 + 2]),
        Faults(delay=[MI2]),
        Faults(delay=[QI1], duplicate=[QR1]),
    ],
    ids=[
        "MI1",
        "MR1",
        "MI2+",
        "MI3",
        "MR3",
        "QI1",
        "QR1",
        "QI2",
        "dup-all",
        "dup-drop",
        "late-MI2",
        "late-QI1",
    ],
)
def test_comes_up_despite_faults(faults):
    pair = make_pair(conn(ike="aes128-sha1-modp2048", esp="aes128-sha1"))
    pair.set_fault(faults)
    pair.initiate()
    pair.run(60)
    up_once(pair)
    assert (
        pair.west.engine.counters["internal_error"]
        == pair.east.engine.counters["internal_error"]
        == 0
    )


def test_lost_reply_is_retransmitted_on_the_clock():
    pair = make_pair(conn())
    pair.set_fault(Faults(drop=[MR1]))
    pair.initiate()
    assert pair.west.installed == []
    pair.run(9.9)
    assert pair.west.installed == []
    pair.run(0.2)  # the 10 s retransmission of MI1 (and east's of MR1) fire
    up_once(pair)
    assert (
        '010 "net" #1: STATE_MAIN_I1: retransmission; will wait 20s for response' in pair.west.lines
    )
    assert pair.east.engine.counters["retransmits_received"] >= 1


def test_duplicate_answered_with_our_reply_not_reprocessed():
    pair = make_pair(conn())
    pair.set_fault(Faults(duplicate=[MI3]))
    pair.initiate()
    up_once(pair)
    assert (
        "retransmitting in response to duplicate packet; already STATE_MAIN_R3" in pair.east.text()
    )
    assert pair.east.engine.counters["retransmits_received"] == 1


def test_quick_mode_overtaking_aggressive_mode_message_3():
    """The lab saw charon process QI1 before AI2; the initiator's retransmission recovers."""
    AI1, AR1, AI2, QI1_ = range(4)
    pair = make_pair(conn(aggrmode=True, ike="aes128-sha1-modp2048"))
    pair.set_fault(Faults(delay=[AI2]))
    pair.initiate()
    assert "ignoring QUICK_MODE request while phase 1 is incomplete" in pair.east.text()
    assert pair.east.installed == []
    pair.run(11)
    up_once(pair)


def test_silence_gives_up_after_two_retransmissions_and_retries_forever():
    pair = make_pair(conn())
    pair.silent = {"east"}
    pair.initiate()
    pair.run(10)
    pair.run(20)
    assert pair.west.whack_done == []
    pair.run(40)
    lines = pair.west.lines
    assert lines[:5] == [
        '104 "net" #1: STATE_MAIN_I1: initiate',
        '010 "net" #1: STATE_MAIN_I1: retransmission; will wait 20s for response',
        '010 "net" #1: STATE_MAIN_I1: retransmission; will wait 40s for response',
        '031 "net" #1: max number of retransmissions (2) reached STATE_MAIN_I1.  No response '
        "(or no acceptable response) to our first IKE message",
        '000 "net" #1: starting keying attempt 2 of an unlimited number, but releasing whack',
    ]
    assert lines[5] == '104 "net" #2: STATE_MAIN_I1: initiate'
    assert pair.west.whack_done == [WhackDone("whack", False)]
    assert pair.west.logs[5].whack is None  # the next attempt runs without the whack
    pair.run(70 * 3)
    assert "starting keying attempt 5 of an unlimited number" in pair.west.text()
    assert pair.west.installed == []


def test_keyingtries_limit():
    pair = make_pair(conn(keyingtries=2))
    pair.silent = {"east"}
    pair.initiate()
    pair.run(70)
    assert "starting keying attempt 2 of at most 2, but releasing whack" in pair.west.text()
    pair.run(70)
    assert "starting keying attempt 3" not in pair.west.text()
    assert pair.west.engine.get_timer() is None
    assert pair.west.engine.state_lines(pair.now) == []


def test_phase1_proposal_mismatch_fails_on_both_sides():
    pair = make_pair(
        conn(ike="aes128-sha1-modp2048", keyingtries=1),
        conn(ike="3des-md5-modp1024,aes256-sha2_256-modp3072"),
    )
    pair.initiate()
    assert pair.east.lines[1:3] == [
        '003 "net" #1: no acceptable Oakley Transform',
        '003 "net" #1: our proposals: 3DES_CBC-HMAC_MD5-MODP1024, AES_CBC_256-HMAC_SHA2_256-MODP3072; '
        "peer proposed: AES_CBC_128-HMAC_SHA1-MODP2048",
    ]
    assert '214 "net" #1: STATE_MAIN_I1: NO_PROPOSAL_CHOSEN' in pair.west.lines
    assert pair.west.whack_done == [WhackDone("whack", False)]
    assert pair.east.engine.state_lines(pair.now) == []  # nothing kept for a refused MI1
    pair.run(100)
    assert pair.west.engine.state_lines(pair.now) == []


def test_phase2_proposal_mismatch_fails_on_both_sides():
    pair = make_pair(conn(esp="aes128-sha1", pfs=False), conn(esp="aes256-sha2_256", pfs=False))
    pair.initiate()
    assert "no acceptable Proposal in IPsec SA" in pair.east.text()
    assert (
        "our proposals: AES_CBC_256-HMAC_SHA2_256_128; peer proposed: AES_CBC_128-HMAC_SHA1_96"
        in pair.east.text()
    )
    assert '214 "net" #2: STATE_QUICK_I1: NO_PROPOSAL_CHOSEN' in pair.west.lines
    assert pair.west.whack_done == [WhackDone("whack", False)]
    assert pair.west.installed == pair.east.installed == []
    # phase 1 survives
    assert pair.west.engine.newest("net") == (1, 0)


def test_pfs_mismatch_is_a_phase2_mismatch():
    pair = make_pair(conn(esp="aes128-sha1", pfs=False), conn(esp="aes128-sha1", pfs=True))
    pair.initiate()
    assert "no acceptable Proposal in IPsec SA" in pair.east.text()
    assert "our proposals: AES_CBC_128-HMAC_SHA1_96-MODP2048" in pair.east.text()


def test_quick_mode_without_matching_subnets():
    pair = make_pair(conn(), conn(rightsubnet="203.0.113.128/25"))
    pair.initiate()
    assert (
        "cannot respond to IPsec SA request because no connection is known for "
        "203.0.113.0/25===192.0.2.2...192.0.2.1===198.51.100.0/25"
    ) in pair.east.text()
    assert '218 "net" #2: STATE_QUICK_I1: INVALID_ID_INFORMATION' in pair.west.lines
