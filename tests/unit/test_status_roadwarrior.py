"""Status of road warriors (issue 13): an ISAKMP SA's XAUTH user and Mode Config lease
as a line of their own and in JSON; every other state's lines unchanged."""

from __future__ import annotations

from ipaddress import ip_address

from fswan.daemon.status import StatusSnapshot, state_status_lines
from fswan.ike.status import StateSnapshot, roadwarrior_line, state_dicts, state_lines


def isakmp(serial: int = 3, **more) -> StateSnapshot:
    return StateSnapshot(serial=serial, connection="rw", isakmp=True, label="STATE_MAIN_R3",
                         number=7, story="sent MR3, ISAKMP SA established", initiator=False,
                         event="EVENT_SA_REPLACE", event_in=3300.0, local="192.0.2.1:500",
                         remote="203.0.113.7:500", peer_id="@[vpngroup]", newest=True, **more)


def test_the_line_names_user_and_lease():
    both = isakmp(xauth_user="alice", virtual_ip=ip_address("198.51.100.200"))
    assert roadwarrior_line(both) == '#3: "rw" XAUTHuser=alice, lease=198.51.100.200/32'
    assert roadwarrior_line(isakmp(xauth_user="bob")) == '#3: "rw" XAUTHuser=bob'
    six = isakmp(virtual_ip=ip_address("2001:db8::200"))
    assert roadwarrior_line(six) == '#3: "rw" lease=2001:db8::200/128'
    assert roadwarrior_line(isakmp()) is None


def test_lines_only_for_states_that_have_them():
    plain, rw = isakmp(2), isakmp(xauth_user="alice", virtual_ip=ip_address("198.51.100.200"))
    lines = state_lines([plain, rw])
    assert lines == [
        '#2: "rw" STATE_MAIN_R3 (sent MR3, ISAKMP SA established); EVENT_SA_REPLACE in 3300s; '
        "newest ISAKMP",
        '#3: "rw" STATE_MAIN_R3 (sent MR3, ISAKMP SA established); EVENT_SA_REPLACE in 3300s; '
        "newest ISAKMP",
        '#3: "rw" XAUTHuser=alice, lease=198.51.100.200/32',
    ]
    daemon = state_status_lines(StatusSnapshot(interfaces=(), myid=None, connections=(),
                                               states=(plain, rw)))
    assert daemon == lines


def test_json_has_the_fields():
    (plain, rw) = state_dicts([isakmp(2), isakmp(xauth_user="alice",
                                                 virtual_ip=ip_address("198.51.100.200"))])
    assert (plain["xauth_user"], plain["virtual_ip"]) == (None, None)
    assert (rw["xauth_user"], rw["virtual_ip"]) == ("alice", "198.51.100.200")
