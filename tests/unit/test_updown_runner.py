"""The runner: verb order per conn, route sharing, rollback, failures logged not raised."""

from __future__ import annotations

from ipaddress import ip_address, ip_network

from twisted.internet.defer import Deferred, fail
from twisted.internet.task import Clock
from zope.interface import implementer

from fswan.updown import IUpdown, SAFacts, UpdownFailure
from fswan.updown.runner import UpdownRunner
from fswan.whackproto import RC
from tests.unit.test_updown_context import RecordingLog, oriented, subnet_conn


@implementer(IUpdown)
class Recorder:
    """Records (plugin, verb, conn); ``hold`` makes verbs return Deferreds fired by hand."""

    def __init__(self, name="rec", journal=None, hold=False, fail_on=()):
        self.name = name
        self.journal = journal if journal is not None else []
        self.hold = hold
        self.fail_on = set(fail_on)
        self.pending: list[Deferred] = []
        self.contexts = []

    def _do(self, ctx):
        self.journal.append((self.name, ctx.verb, ctx.connection))
        self.contexts.append(ctx)
        if ctx.family in self.fail_on:
            raise UpdownFailure(f"{self.name} {ctx.family}", "refused")
        if self.hold:
            self.pending.append(Deferred())
            return self.pending[-1]
        return None

    prepare = route = unroute = up = down = _do


def fired(d: Deferred):
    box = []
    d.addBoth(box.append)
    assert box, "the runner's Deferred should have fired"
    return box[0]


def make(timeout=60.0):
    log = RecordingLog()
    return UpdownRunner(log, clock=Clock(), timeout=timeout), log


NET = subnet_conn()
NET2 = subnet_conn(name="net2")  # same peer client 203.0.113.0/25, same next hop


def test_route_is_shared_and_unroute_waits_for_the_last_conn():
    runner, log = make()
    rec = Recorder()
    assert fired(runner.run("route", NET, plugins=[rec])) is True
    assert fired(runner.run("route", NET2, plugins=[rec])) is True
    assert rec.journal == [("rec", "route-client", "net")]
    assert runner.route_holders(254, ip_network("203.0.113.0/25")) == ["net", "net2"]
    assert fired(runner.run("unroute", NET, plugins=[rec])) is True
    assert rec.journal[-1][1] == "route-client"  # net2 still routes it
    assert fired(runner.run("unroute", NET2, plugins=[rec])) is True
    assert rec.journal[-1] == ("rec", "unroute-client", "net2")
    assert not runner.is_routed("net") and not runner.is_routed("net2")
    assert log.lines == []


def test_the_plugins_that_routed_a_client_are_the_ones_that_unroute_it():
    runner, _ = make()
    journal: list = []
    first, second = Recorder("first", journal), Recorder("second", journal)
    fired(runner.run("route", NET, plugins=[first]))
    fired(runner.run("route", NET2, plugins=[second]))
    fired(runner.run("unroute", NET, plugins=[first]))
    fired(runner.run("unroute", NET2, plugins=[second]))
    assert journal == [("first", "route-client", "net"), ("first", "unroute-client", "net2")]


def test_route_twice_and_unroute_unrouted_are_no_ops():
    runner, _ = make()
    rec = Recorder()
    fired(runner.run("route", NET, plugins=[rec]))
    fired(runner.run("route", NET, plugins=[rec]))
    assert fired(runner.run("unroute", NET2, plugins=[rec])) is True
    assert [v for _, v, _ in rec.journal] == ["route-client"]


def test_other_tables_are_other_routes():
    runner, _ = make()
    rec = Recorder()
    fired(runner.run("route", NET, plugins=[rec]))
    fired(runner.run("route", subnet_conn(name="t100", user_keys={"x-fswan-table": "100"}), plugins=[rec]))
    assert [c for _, _, c in rec.journal] == ["net", "t100"]


def test_conflicting_route_is_refused_with_plutos_words():
    runner, log = make()
    rec = Recorder()
    fired(runner.run("route", NET, plugins=[rec]))
    other_hop = oriented(
        {"subnet": ip_network("198.51.100.0/25"), "nexthop": "192.0.2.254"},
        {"subnet": ip_network("203.0.113.0/25")}, name="detour",
    )
    assert fired(runner.run("route", other_hop, plugins=[rec])) is False
    assert log.lines == [(RC.LOG_SERIOUS, '"detour": cannot route -- route already in use for "net"')]


def test_prepare_runs_only_while_nobody_routes_the_client():
    runner, _ = make()
    rec = Recorder()
    fired(runner.run("prepare", NET, plugins=[rec]))
    fired(runner.run("route", NET, plugins=[rec]))
    fired(runner.run("prepare", NET2, plugins=[rec]))
    assert [v for _, v, _ in rec.journal] == ["prepare-client", "route-client"]


def test_up_once_per_tunnel_and_down_only_after_up():
    runner, _ = make()
    rec = Recorder()
    assert fired(runner.run("down", NET, plugins=[rec])) is True
    fired(runner.run("up", NET, SAFacts(serial=2), plugins=[rec]))
    fired(runner.run("up", NET, SAFacts(serial=3), plugins=[rec]))  # a rekey
    assert runner.is_up("net")
    fired(runner.run("down", NET, SAFacts(serial=3), plugins=[rec]))
    assert [(v, ctx.serial) for (_, v, _), ctx in zip(rec.journal, rec.contexts)] == [
        ("up-client", 2), ("down-client", 3)]
    assert not runner.is_up("net")


def test_failure_is_logged_and_rolls_back_what_succeeded():
    runner, log = make()
    journal: list = []
    first, second, third = (Recorder("a", journal), Recorder("b", journal, fail_on={"up"}),
                            Recorder("c", journal))
    assert fired(runner.run("up", NET, SAFacts(serial=2), plugins=[first, second, third])) is False
    assert journal == [("a", "up-client", "net"), ("b", "up-client", "net"), ("a", "down-client", "net")]
    assert log.lines == [(RC.LOG_SERIOUS, '"net" #2: up-client failed: b up: refused')]
    assert not runner.is_up("net")


def test_route_failure_leaves_the_client_unrouted():
    runner, log = make()
    bad = Recorder("bad", fail_on={"route"})
    assert fired(runner.run("route", NET, plugins=[bad])) is False
    assert not runner.is_routed("net")
    assert runner.route_holders(254, ip_network("203.0.113.0/25")) == []
    assert log.texts(RC.LOG_SERIOUS) == ['"net": route-client failed: bad route: refused']


def test_teardown_reaches_every_plugin_in_reverse_order():
    runner, log = make()
    journal: list = []
    a, b = Recorder("a", journal, fail_on={"down"}), Recorder("b", journal, fail_on={"down"})
    fired(runner.run("up", NET, plugins=[a, b]))
    assert fired(runner.run("down", NET, plugins=[a, b])) is False
    assert journal[2:] == [("b", "down-client", "net"), ("a", "down-client", "net")]
    assert len(log.texts(RC.LOG_SERIOUS)) == 2


@implementer(IUpdown)
class Broken:
    name = "broken"

    def prepare(self, ctx):
        raise RuntimeError("boom")

    route = unroute = down = prepare

    def up(self, ctx):
        return fail(KeyError("no such thing"))


def test_a_raising_or_failing_plugin_never_reaches_the_caller():
    runner, log = make()
    assert fired(runner.run("route", NET, plugins=[Broken()])) is False
    assert fired(runner.run("up", NET, plugins=[Broken()])) is False
    assert log.texts() == [
        '"net": route-client failed: plugin broken route(): RuntimeError: boom',
        "\"net\": up-client failed: plugin broken up(): KeyError: 'no such thing'",
    ]
    # and the runner keeps serving the same conn
    rec = Recorder()
    assert fired(runner.run("route", NET, plugins=[rec])) is True


def test_verbs_of_one_conn_never_overlap():
    runner, _ = make()
    rec = Recorder(hold=True)
    up = runner.run("up", NET, plugins=[rec])
    down = runner.run("down", NET, plugins=[rec])
    down_result: list = []
    down.addBoth(down_result.append)
    other = runner.run("up", subnet_conn(name="other"), plugins=[rec])
    assert [v for _, v, _ in rec.journal] == ["up-client", "up-client"]  # net's down waits
    assert [c for _, _, c in rec.journal] == ["net", "other"]
    rec.pending[0].callback(None)
    assert fired(up) is True
    assert rec.journal[-1] == ("rec", "down-client", "net")
    assert down_result == []
    rec.pending[2].callback(None)
    rec.pending[1].callback(None)
    assert down_result == [True] and fired(other) is True
    assert runner._conn_locks == {}


def test_a_plugin_that_never_answers_times_out():
    runner, log = make(timeout=30)
    rec = Recorder(hold=True)
    result = runner.run("up", NET, SAFacts(serial=4), plugins=[rec])
    runner.clock.advance(30)
    assert fired(result) is False
    assert log.texts() == ['"net" #4: up-client failed: plugin rec up(): no answer after 30s']
    assert fired(runner.run("down", NET, plugins=[rec])) is True  # never came up


def test_a_conn_that_cannot_have_a_context_is_reported():
    runner, log = make()
    rw = oriented({"subnet": ip_network("198.51.100.0/25")}, {"host": "%any"}, name="rw")
    assert fired(runner.run("route", rw, plugins=[Recorder()])) is False
    assert log.texts() == [
        '"rw": route-client failed: updown context: the peer of "rw" is %any and not connected: no address yet'
    ]
    facts = SAFacts(serial=5, peer_addr=ip_address("203.0.113.50"))
    assert fired(runner.run("route", rw, facts, plugins=[Recorder()])) is True


def test_plugin_output_goes_to_the_log_with_the_conns_prefix():
    @implementer(IUpdown)
    class Talker(Recorder):
        def _do(self, ctx):
            ctx.log(f"hello from {ctx.verb}")

        prepare = route = unroute = up = down = _do

    runner, log = make()
    fired(runner.run("up", NET, SAFacts(serial=7), plugins=[Talker()]))
    assert log.lines == [(RC.LOG, '"net" #7: hello from up-client')]
