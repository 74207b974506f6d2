"""The routing and firewall plugins against a real kernel, in a namespace of our own.

Root only.  The fixture builds namespace ``fswan-updown-<pid>`` with a TUN
``ipsec0``, a veth ``eth0`` (192.0.2.1/24, 2001:db8::1/64), a veth ``ipsec1``
(a KLIPS-style device with neighbours, 198.51.100.1/24) and an nftables
table ``inet keepme`` that must survive untouched; it deletes all of it
afterwards.  The plugins run through the real runner and reactor in a forked
child that entered the namespace (``run_in_reactor(netns=...)``); what they
did is read back from the kernel with ``ip -j`` and ``nft -j``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
from ipaddress import ip_address, ip_network
from pathlib import Path

import pytest

from fswan.config.orient import IpsecInterface
from fswan.updown import find_plugin
from fswan.updown.runner import UpdownRunner
from fswan.whackproto import RC
from tests.daemon.test_updown_script import run_in_reactor
from tests.unit.test_updown_context import RecordingLog, oriented

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "etc" / "updown-example" / "fswan_policy_log.py"
NS = f"fswan-updown-{os.getpid()}"


def sh(*argv: str, check: bool = True, stdin: str | None = None) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, input=stdin, timeout=20)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} exited {result.returncode}: {result.stderr}")
    return result.stdout


def _delete_namespace() -> None:
    if os.path.exists(f"/run/netns/{NS}"):
        sh("ip", "-n", NS, "link", "del", "ipsec0", check=False)  # a persistent TUN
        sh("ip", "netns", "del", NS, check=False)


@pytest.fixture(scope="module")
def netns():
    if os.geteuid() != 0:
        pytest.skip("needs root: creates a network namespace, a TUN device, veths and nftables tables")
    for tool in ("ip", "nft"):
        if shutil.which(tool) is None:
            pytest.skip(f"needs the {tool} command")
    _delete_namespace()
    try:
        sh("ip", "netns", "add", NS)
        for command in (
            "link set lo up",
            "tuntap add ipsec0 mode tun",
            "link set ipsec0 up",
            "link add eth0 type veth peer name eth0-peer",
            "addr add 192.0.2.1/24 dev eth0",
            "addr add 2001:db8::1/64 dev eth0 nodad",
            "link set eth0 up",
            "link set eth0-peer up",
            "link add ipsec1 type veth peer name ipsec1-peer",
            "addr add 198.51.100.1/24 dev ipsec1",
            "link set ipsec1 up",
            "link set ipsec1-peer up",
        ):
            sh("ip", "-n", NS, *command.split())
        sh("ip", "netns", "exec", NS, "nft", "-f", "-", stdin=(
            "table inet keepme {\n"
            "  chain forward { type filter hook forward priority 10; policy accept; counter; }\n"
            "}\n"
        ))
        yield NS
    finally:
        _delete_namespace()


# -- reading the kernel (inside the namespace) ----------------------------------------


def routes() -> list[tuple]:
    """Routes on ipsec0/ipsec1: (dst, gateway, dev, onlink, prefsrc, table), sorted."""
    found = []
    for family in ("-4", "-6"):
        for r in json.loads(sh("ip", "-j", family, "route", "show", "table", "all") or "[]"):
            if r.get("dev") in ("ipsec0", "ipsec1") and r.get("protocol") != "kernel" and (
                r.get("type", "unicast") == "unicast"
            ):
                found.append((r["dst"], r.get("gateway"), r["dev"], "onlink" in r.get("flags", []),
                              r.get("prefsrc"), r.get("table", "main")))
    return sorted(found)


def rules() -> list[tuple]:
    """Policy rules other than the kernel's defaults: (priority, dst, table)."""
    return [(r["priority"], f"{r.get('dst')}/{r.get('dstlen')}", r.get("table"))
            for r in json.loads(sh("ip", "-j", "rule", "show") or "[]")
            if r["priority"] not in (0, 32766, 32767)]


def ruleset() -> dict:
    """{(family, table): [(chain, comment or None), ...]} from ``nft -j list ruleset``."""
    tables: dict = {}
    for item in json.loads(sh("nft", "-j", "list", "ruleset"))["nftables"]:
        if "table" in item:
            tables.setdefault((item["table"]["family"], item["table"]["name"]), [])
        if "rule" in item:
            rule = item["rule"]
            tables[(rule["family"], rule["table"])].append((rule["chain"], rule.get("comment")))
    return tables


# -- conns ----------------------------------------------------------------------------------

NET = oriented(
    {"subnet": ip_network("198.51.100.0/25"), "sourceip": ip_address("192.0.2.1")},
    {"subnet": ip_network("203.0.113.0/25")},
)
NET2 = oriented({"subnet": ip_network("198.51.100.128/25")}, {"subnet": ip_network("203.0.113.0/25")},
                name="net2")
EVERYTHING = oriented({"subnet": ip_network("198.51.100.0/25")}, {"subnet": ip_network("0.0.0.0/0")},
                      name="everything")
V6 = oriented({"host": "2001:db8::1", "subnet": ip_network("2001:db8:1::/64")},
              {"host": "2001:db8::2", "subnet": ip_network("2001:db8:2::/64")}, name="v6")
OTHER = oriented({"subnet": ip_network("198.51.100.0/26")}, {"subnet": ip_network("203.0.113.128/25")},
                 name="other")


def on_device(conn, device: str, address: str, **left):
    """``conn`` re-oriented onto another IPsec device (and optionally another next hop)."""
    if left:
        conn = oriented({"subnet": conn.this.end.subnet, **left}, {"subnet": conn.that.end.subnet},
                        name=conn.name)
    return dataclasses.replace(conn, interface=IpsecInterface(device, "eth0", ip_address(address)))


# -- the stories (run inside the namespace, in the child) ------------------------------


def routing_story(reactor, plugin_dir: str):
    from twisted.internet.defer import Deferred

    import fswan.plugins

    fswan.plugins.__path__.append(plugin_dir)
    log = RecordingLog()
    runner = UpdownRunner(log, clock=reactor, timeout=10)
    routing = [find_plugin("routing")]
    with_rule = routing + [find_plugin("policy-log")]
    seen: dict = {}

    async def go():
        ok = []
        ok.append(await runner.run("prepare", NET, None, routing))
        ok.append(await runner.run("route", NET, None, with_rule))
        ok.append(await runner.run("route", NET2, None, routing))  # shares 203.0.113.0/25
        seen["shared"], seen["rules"] = routes(), rules()
        ok.append(await runner.run("unroute", NET, None, with_rule))
        seen["one left"], seen["rules after"] = routes(), rules()
        ok.append(await runner.run("unroute", NET2, None, routing))
        seen["none"], seen["none rules"] = routes(), rules()
        ok.append(await runner.run("route", EVERYTHING, None, routing))
        seen["default"] = routes()
        ok.append(await runner.run("unroute", EVERYTHING, None, routing))
        ok.append(await runner.run("route", V6, None, routing))
        seen["v6"] = routes()
        ok.append(await runner.run("unroute", V6, None, routing))
        seen["end"] = routes()
        unreachable = on_device(NET, "ipsec1", "198.51.100.1", nexthop="203.0.113.77")
        ok.append(await runner.run("route", unreachable, None, routing))
        ok.append(await runner.run("route", on_device(OTHER, "ipsec9", "192.0.2.1"), None, routing))
        seen["after failures"] = routes()
        return ok, seen, log.lines

    return Deferred.fromCoroutine(go())


def test_routing_in_a_namespace(netns, tmp_path):
    plugin_dir = tmp_path / "fswan" / "plugins"
    plugin_dir.mkdir(parents=True)
    shutil.copy(EXAMPLE, plugin_dir)
    ok, seen, lines = run_in_reactor(routing_story, str(plugin_dir), netns=netns)
    assert ok == [True] * 9 + [False, False]
    tun = ("203.0.113.0/25", "192.0.2.2", "ipsec0", True, "192.0.2.1", "main")
    assert seen["shared"] == [tun]
    assert seen["rules"] == [(5000, "203.0.113.0/25", "main")]
    assert seen["one left"] == [tun]  # net2 still routes the client
    assert seen["rules after"] == seen["rules"]
    assert seen["none rules"] == []  # removed by the plugins that added it, with net2's unroute
    assert seen["none"] == []
    assert seen["default"] == [
        ("0.0.0.0/1", "192.0.2.2", "ipsec0", True, None, "main"),
        ("128.0.0.0/1", "192.0.2.2", "ipsec0", True, None, "main"),
    ]
    assert seen["v6"] == [("2001:db8:2::/64", None, "ipsec0", False, None, "main")]
    assert seen["end"] == seen["after failures"] == []
    assert [text for rc, text in lines if rc == RC.LOG_SERIOUS] == [
        '"net": route-client failed: ip route replace 203.0.113.0/25 via 203.0.113.77 dev ipsec1: '
        "Network is unreachable",
        '"other": route-client failed: ip route replace 203.0.113.128/25 via 192.0.2.2 dev ipsec9: '
        "No such device",
    ]
    assert [text for rc, text in lines if rc == RC.LOG] == [
        '"net": policy-log: route-client 198.51.100.0/25 <-> 203.0.113.0/25 via ipsec0',
        '"net2": policy-log: unroute-client 198.51.100.128/25 <-> 203.0.113.0/25 via ipsec0',
    ]


def test_a_device_with_neighbours_gets_the_plain_freeswan_route(netns):
    def story(reactor):
        from twisted.internet.defer import Deferred

        runner = UpdownRunner(RecordingLog(), clock=reactor, timeout=10)
        conn = on_device(NET, "ipsec1", "198.51.100.1", nexthop="198.51.100.254")

        async def go():
            ok = await runner.run("route", conn, None, [find_plugin("routing")])
            seen = routes()
            await runner.run("unroute", conn, None, [find_plugin("routing")])
            return ok, seen, routes()

        return Deferred.fromCoroutine(go())

    ok, seen, after = run_in_reactor(story, netns=netns)
    assert ok is True
    assert seen == [("203.0.113.0/25", "198.51.100.254", "ipsec1", False, None, "main")]
    assert after == []


def firewall_story(reactor):
    from twisted.internet.defer import Deferred

    log = RecordingLog()
    runner = UpdownRunner(log, clock=reactor, timeout=10)
    firewall = [find_plugin("firewall")]
    seen: dict = {}

    async def go():
        ok = [await runner.run("up", NET, None, firewall), await runner.run("up", OTHER, None, firewall)]
        seen["both"] = ruleset()
        ok.append(await runner.run("down", NET, None, firewall))
        seen["other"] = ruleset()
        ok.append(await runner.run("down", OTHER, None, firewall))
        seen["none"] = ruleset()
        return ok, seen, log.lines

    return Deferred.fromCoroutine(go())


def test_firewall_in_a_namespace(netns):
    before = ruleset_in(netns)
    ok, seen, lines = run_in_reactor(firewall_story, netns=netns)
    assert ok == [True, True, True, True] and lines == []
    keepme = [("forward", None)]
    assert seen["both"] == {
        ("inet", "keepme"): keepme,
        ("inet", "fswan"): [("forward", "fswan:net")] * 2 + [("forward", "fswan:other")] * 2,
    }
    assert seen["other"] == {("inet", "keepme"): keepme, ("inet", "fswan"): [("forward", "fswan:other")] * 2}
    assert seen["none"] == {("inet", "keepme"): keepme}
    assert ruleset_in(netns) == before


def ruleset_in(ns: str) -> str:
    return sh("ip", "netns", "exec", ns, "nft", "list", "ruleset")


def test_the_namespace_is_ours_alone(netns):
    """Nothing leaked into the test runner's own namespace."""
    links = json.loads(sh("ip", "-j", "link", "show"))
    assert not {"ipsec1-peer", "eth0-peer"} & {link["ifname"] for link in links}
    assert netns in sh("ip", "netns", "list")
