"""The IKE driver's work per reactor turn is bounded: a flood of IKE datagrams waits its
turn instead of keeping the packet pump's readers (and everything else) waiting."""

from __future__ import annotations

from fswan.daemon.ikeport import IKE_QUEUE_CAP, IKE_TURN_BUDGET, IkeDriver, IkePort
from fswan.daemon.logging import PlutoLog
from tests.fakes import LogSink


class CountingEngine:
    def __init__(self) -> None:
        self.received: list[bytes] = []

    def receive_datagram(self, data, local_addr, local_port, remote_addr, remote_port, now):
        self.received.append(data)

    def datagrams_to_send(self):
        return []

    def next_events(self):
        return []

    def get_timer(self):
        return None


def first_message(i: int) -> bytes:
    return i.to_bytes(8, "big") + bytes(8) + b"\x01\x10\x02\x00" + bytes(8)


def later_message(i: int) -> bytes:
    return i.to_bytes(8, "big") + b"\x07" * 8 + b"\x05\x10\x02\x01" + bytes(8)


class Turns:
    """A reactor's timed calls as its loop runs them: a call made during a turn runs in
    the next turn, after the reactor has polled its sockets (Twisted's runUntilCurrent)."""

    def __init__(self) -> None:
        self.calls: list = []

    def seconds(self) -> float:
        return 0.0

    def callLater(self, delay, function, *args):
        call = Call(function, args)
        self.calls.append(call)
        return call

    def advance(self, _seconds: float) -> None:
        due, self.calls = self.calls, []
        for call in due:
            if call.active():
                call.cancelled = True  # ran
                call.function(*call.args)


class Call:
    def __init__(self, function, args) -> None:
        self.function, self.args, self.cancelled = function, args, False

    def active(self) -> bool:
        return not self.cancelled

    def cancel(self) -> None:
        self.cancelled = True


def driver() -> tuple[IkeDriver, CountingEngine, Turns]:
    clock = Turns()
    engine = CountingEngine()
    return IkeDriver(engine, PlutoLog(LogSink().logger), clock), engine, clock  # type: ignore[arg-type]


def test_one_turn_handles_its_budget_and_the_rest_waits_for_later_turns():
    ike, engine, clock = driver()
    port = IkePort(ike, "192.0.2.1", 500, natt=False)
    for i in range(100):
        ike.receive(first_message(i), port, ("192.0.2.2", 10000 + i))
    assert len(engine.received) == IKE_TURN_BUDGET  # the rest is queued, in order
    turns = 0
    while len(engine.received) < 100:
        clock.advance(0)
        turns += 1
        assert len(engine.received) <= IKE_TURN_BUDGET * (turns + 1)
    assert engine.received == [first_message(i) for i in range(100)]
    assert turns == -(-100 // IKE_TURN_BUDGET) - 1


def test_a_full_queue_sheds_first_messages_before_anything_else():
    ike, engine, clock = driver()
    port = IkePort(ike, "192.0.2.1", 500, natt=False)
    for i in range(IKE_TURN_BUDGET):
        ike.receive(later_message(i), port, ("192.0.2.2", 500))
    ike.receive(later_message(999), port, ("192.0.2.2", 500))  # queued: a real peer's MI3, say
    for i in range(IKE_QUEUE_CAP + 10):
        ike.receive(first_message(i), port, ("192.0.2.9", 20000 + i))
    assert ike.counters["ike_queue_shed"] == 11  # the queue holds IKE_QUEUE_CAP
    for _ in range(IKE_QUEUE_CAP // IKE_TURN_BUDGET + 3):
        clock.advance(0)
    assert later_message(999) in engine.received  # never shed while first messages wait
    assert first_message(10) not in engine.received and first_message(11) in engine.received
