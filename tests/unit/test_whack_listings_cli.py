"""whack's listing, deletestate and debug options become the right requests; debug names."""

from __future__ import annotations

import pytest

from fswan.cli import whack
from fswan.daemon.logging import DEBUG_CATEGORIES, debug_names, parse_debug
from fswan.whackproto import RC, Request, update_exit_status


def requests(*argv: str) -> list[Request]:
    return whack.requests_from(whack.build_parser().parse_args(list(argv)))


def test_listings_and_json():
    assert requests("--trafficstatus", "--json") == [Request("trafficstatus", None, {"json": True})]
    assert requests("--globalstatus") == [Request("globalstatus", None, {})]
    assert requests("--listall", "--utc") == [Request("listpubkeys", None, {"utc": True}),
                                              Request("listcerts", None, {}),
                                              Request("listcacerts", None, {}),
                                              Request("listcrls", None, {})]
    assert requests("--listcrls", "--json", "--rereadcrls") == [
        Request("rereadcrls", None, {}), Request("listcrls", None, {"json": True})]
    assert requests("--rereadall", "--rereadsecrets") == [Request("rereadsecrets", None, {}),
                                                         Request("rereadall", None, {})]
    assert requests("--listpubkeys", "--status") == [Request("listpubkeys", None, {}),
                                                     Request("status", None, {})]


def test_deletestate_takes_pluto_style_numbers():
    assert requests("--deletestate", "#3") == [Request("deletestate", None, {"serial": 3})]
    assert requests("--deletestate", "12") == [Request("deletestate", None, {"serial": 12})]
    for bad in ("0", "x", "-1"):
        with pytest.raises(whack.WhackUsage):
            requests("--deletestate", bad)


def test_debug_options_come_first_and_replace_the_set():
    assert requests("--status", "--debug-raw", "--debug-dns") == [
        Request("debug", None, {"debug": "raw dns"}), Request("status", None, {})]
    assert requests("--debug-none") == [Request("debug", None, {"debug": "none"})]


def test_debug_names():
    assert parse_debug("none") == (frozenset(), [])
    assert parse_debug("all")[0] == frozenset(DEBUG_CATEGORIES)
    assert parse_debug("control, parsing+nattraversal private") == (
        frozenset({"control", "parsing", "natt"}), [])
    assert parse_debug("raw bogus") == (frozenset({"raw"}), ["bogus"])
    assert debug_names({"dns", "raw"}) == "raw+dns" and debug_names(()) == "none"


def test_traffic_lines_do_not_change_the_exit_status():
    assert update_exit_status(0, RC.INFORMATIONAL_TRAFFIC) == 0
    assert update_exit_status(21, RC.INFORMATIONAL) == 21
