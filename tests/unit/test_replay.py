"""Anti-replay window (RFC 4303 section 3.4.3, Appendix A), 32-bit and ESN."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fswan.ipsec.replay import DUPLICATE, MAX_WINDOW, TOO_OLD, ReplayWindow

M32 = 0xFFFFFFFF


def receive(w: ReplayWindow, seq_low: int) -> int:
    """check + update as the SA does after a good ICV; returns the check result."""
    seq = w.check(seq_low)
    if seq >= 0:
        assert w.update(seq)
    return seq


@pytest.mark.parametrize("size", [64, 1024])
def test_window_edges(size):
    w = ReplayWindow(size)
    top = size + 100
    assert receive(w, top) == top
    oldest = top - size + 1
    assert w.check(oldest) == oldest  # right edge of the window: still acceptable
    assert w.check(oldest - 1) == TOO_OLD  # one past it
    assert receive(w, oldest) == oldest
    assert w.check(oldest) == DUPLICATE
    assert receive(w, top - 1) == top - 1
    assert w.check(top) == DUPLICATE
    assert w.check(top + 1) == top + 1


@pytest.mark.parametrize("size", [64, 1024])
def test_duplicates_and_out_of_order(size):
    w = ReplayWindow(size)
    for seq in (5, 3, 9, 4, 1, 2):
        assert receive(w, seq) == seq
    for seq in (1, 2, 3, 4, 5, 9):
        assert w.check(seq) == DUPLICATE
    for seq in (6, 7, 8, 10):
        assert w.check(seq) == seq
    assert not w.update(9)  # update refuses a repeat too


@pytest.mark.parametrize("size", [64, 1024])
def test_far_future_jump(size):
    w = ReplayWindow(size)
    assert receive(w, 10) == 10
    assert receive(w, 10_000_000) == 10_000_000
    assert w.check(10) == TOO_OLD
    assert w.check(10_000_000 - size) == TOO_OLD
    assert w.check(10_000_000 - size + 1) == 10_000_000 - size + 1
    # only the new top is marked after a jump wider than the window
    assert w.bitmap == 1


def test_jump_within_window_keeps_old_marks():
    w = ReplayWindow(64)
    receive(w, 10)
    receive(w, 40)
    assert w.check(10) == DUPLICATE
    assert w.seen(10) and w.seen(40) and not w.seen(11)


def test_sequence_zero_is_never_valid():
    w = ReplayWindow(64)
    assert w.check(0) == TOO_OLD
    receive(w, 3)
    assert w.check(0) == TOO_OLD


def test_check_does_not_move_the_window():
    """check-before-ICV: a forged packet with a huge seq must not advance anything."""
    w = ReplayWindow(64)
    receive(w, 100)
    assert w.check(0xFFFF0000) == 0xFFFF0000  # looks new, but its ICV will fail...
    assert w.top == 100  # ...and nothing moved
    assert w.check(50) == 50
    assert receive(w, 50) == 50


def test_32bit_counter_cannot_wrap():
    w = ReplayWindow(64)
    receive(w, M32)
    assert w.check(1) == TOO_OLD
    assert w.check(M32 - 1) == M32 - 1


@pytest.mark.parametrize("size", [64, 1024])
def test_esn_crosses_into_the_next_subspace(size):
    w = ReplayWindow(size, esn=True)
    receive(w, M32 - 5)
    assert w.top == M32 - 5
    # a low half below the window: it belongs to the next 2^32 subspace (Case A)
    assert w.check(3) == (1 << 32) | 3
    assert receive(w, 3) == (1 << 32) | 3
    assert w.top == (1 << 32) | 3
    # now the window spans both subspaces (Case B): late packets from before the wrap
    assert w.check(M32 - 2) == M32 - 2
    assert receive(w, M32 - 2) == M32 - 2
    assert w.check(M32 - 2) == DUPLICATE
    assert w.check(M32 - 5) == DUPLICATE
    assert w.check(1) == (1 << 32) | 1
    assert w.check(M32 - size - 10) == (1 << 32) | (M32 - size - 10)  # read as far future


def test_esn_case_b_at_the_start_has_no_previous_subspace():
    w = ReplayWindow(64, esn=True)
    receive(w, 5)
    assert w.check(M32 - 3) == M32 - 3  # not subspace -1: a far jump the ICV will judge
    assert w.check(6) == 6


def test_esn_high_halves_keep_counting():
    w = ReplayWindow(64, esn=True)
    seq = (7 << 32) | 20
    w.top = seq - 1
    assert w.check(20) == seq
    w.top = (7 << 32) | 100
    assert w.check(90) == (7 << 32) | 90
    assert w.check(30) == (8 << 32) | 30  # below the window in Case A: next subspace


def test_window_size_limits():
    assert ReplayWindow(MAX_WINDOW).size == 4096
    with pytest.raises(ValueError):
        ReplayWindow(0)
    with pytest.raises(ValueError):
        ReplayWindow(MAX_WINDOW + 1)


def test_max_window_holds_every_bit():
    w = ReplayWindow(4096)
    receive(w, 5000)
    for seq in range(5000 - 4095, 5000):
        assert w.check(seq) == seq
    assert w.check(5000 - 4096) == TOO_OLD
    for seq in range(5000 - 4095, 5000, 7):
        receive(w, seq)
    assert all(w.check(seq) == DUPLICATE for seq in range(5000 - 4095, 5000, 7))


@settings(max_examples=150, deadline=None)
@given(
    size=st.sampled_from([32, 64, 1024]),
    arrivals=st.lists(st.integers(min_value=0, max_value=3000), max_size=200),
)
def test_window_matches_a_naive_model(size, arrivals):
    """Accept iff never accepted before and newer than (highest accepted - size)."""
    w = ReplayWindow(size)
    accepted: set[int] = set()
    top = 0
    for seq in arrivals:
        result = w.check(seq)
        fresh = seq != 0 and seq not in accepted and seq > top - size
        assert (result >= 0) == fresh, (seq, top, result)
        if fresh:
            assert result == seq
            w.update(seq)
            accepted.add(seq)
            top = max(top, seq)
        elif seq != 0 and seq in accepted and seq > top - size:
            assert result == DUPLICATE
        else:
            assert result == TOO_OLD


@settings(max_examples=100, deadline=None)
@given(
    start=st.integers(min_value=1, max_value=(1 << 40)),
    steps=st.lists(st.integers(min_value=-60, max_value=5000), max_size=60),
)
def test_esn_inference_recovers_the_full_number(start, steps):
    """Any sender number within reach of the window is recovered from its low half."""
    w = ReplayWindow(64, esn=True)
    w.top = start
    w.bitmap = 1
    for step in steps:
        seq = w.top + step
        if seq <= 0 or seq <= w.top - 64:
            continue
        result = w.check(seq & M32)
        if w.seen(seq):
            assert result == DUPLICATE
        else:
            assert result == seq
            w.update(seq)
