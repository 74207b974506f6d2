"""The metrics endpoint scraped with a real HTTP client while a tunnel carries traffic (root).

Two fswan gateways in namespaces of this test's own (``fswan-mtr-*``); west runs with
``--metrics 127.0.0.1:9577`` (its namespace's loopback: nothing else can reach it),
east with ``metrics=`` in its config.  ``urllib.request`` inside each namespace scrapes
``/metrics`` during a ping flood through the tunnel and again once it is over; the
per-conn bytes and packets, the drops and the pump's counters then equal what
``ipsec look`` shows, and the states and handshakes what ``whack --globalstatus`` says.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from tests.lab.lab import FswanDaemon, build_lab_chain, delete_namespaces, sh, wait_for

NS = {"wc": "fswan-mtr-wc", "wg": "fswan-mtr-wg", "eg": "fswan-mtr-eg", "ec": "fswan-mtr-ec"}
SECRETS = '192.0.2.1 192.0.2.2 : PSK "fswan-metrics-lab-psk"\n'
PORT = 9577


def conf(setup: str = "") -> str:
    return f"""\
version 2
config setup
	interfaces="ipsec0=wan0"
{setup}
conn net
	authby=secret
	left=192.0.2.1
	leftsubnet=198.51.100.0/25
	right=192.0.2.2
	rightsubnet=203.0.113.0/25
	ike=aes128-sha2_256-modp2048
	esp=aes_gcm128
	auto=add
"""


def build() -> None:
    build_lab_chain(NS)


SCRAPE = f"""
import sys, urllib.request
with urllib.request.urlopen("http://127.0.0.1:{PORT}/metrics", timeout=5) as answer:
    assert answer.status == 200, answer.status
    assert answer.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    sys.stdout.write(answer.read().decode())
"""


def scrape(ns: str) -> dict[str, float]:
    """The page from inside ``ns``, as {'name{labels}': value} (HELP/TYPE checked)."""
    result = sh("ip", "netns", "exec", ns, sys.executable, "-c", SCRAPE, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    samples: dict[str, float] = {}
    typed: set[str] = set()
    for line in result.stdout.splitlines():
        if line.startswith("# TYPE "):
            typed.add(line.split()[2])
        elif not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            name = key.split("{", 1)[0]
            assert re.sub(r"_(bucket|sum|count)$", "", name) in typed or name in typed, line
            samples[key] = float(value)
    return samples


def look(daemon: FswanDaemon) -> tuple[dict[str, list[int]], dict[str, int], dict[str, int]]:
    """``ipsec look``: per direction [bytes, packets] summed over the SAs, the data
    plane's counters, the pump's counters."""
    text = daemon.cli("ipsec", "look").stdout
    traffic: dict[str, list[int]] = {}
    counters: dict[str, int] = {}
    pump: dict[str, int] = {}
    for line in text.splitlines():
        body = line[4:] if line[:3].isdigit() else line
        sa = re.search(r"dir=(in|out) .*bytes=(\d+) packets=(\d+)", body)
        if sa:
            totals = traffic.setdefault(sa.group(1), [0, 0])
            totals[0] += int(sa.group(2))
            totals[1] += int(sa.group(3))
        elif body.startswith("pump: "):
            pump = {k: int(v) for k, v in (w.split("=") for w in body[6:].split())}
        elif re.fullmatch(r"[^=]+: \d+", body) and " -> " not in body:
            name, count = body.rsplit(": ", 1)
            counters[name] = int(count)
    return traffic, counters, pump


@pytest.fixture
def gateways(tmp_path):
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("needs root and iproute2 (network namespaces)")
    build()
    daemons: list[FswanDaemon] = []
    try:
        west = FswanDaemon(tmp_path / "west", NS["wg"], conf(), SECRETS,
                           ("--metrics", f"127.0.0.1:{PORT}"))
        east = FswanDaemon(tmp_path / "east", NS["eg"], conf(f"\tmetrics=127.0.0.1:{PORT}\n"),
                           SECRETS)
        for daemon in (west, east):
            daemons.append(daemon)
            daemon.start()
        yield west, east
    finally:
        for daemon in daemons:
            daemon.stop()
        delete_namespaces(NS.values())


def test_metrics_match_ipsec_look_while_a_tunnel_carries_traffic(gateways):
    west, east = gateways
    wait_for(lambda: sh("ip", "netns", "exec", NS["wg"], sys.executable, "-c", SCRAPE,
                        check=False).returncode == 0, timeout=10, what="west's metrics endpoint")
    before = scrape(NS["wg"])
    assert before['fswan_connections'] == 1
    assert before['fswan_ike_handshakes_started_total{phase="isakmp"}'] == 0

    result = west.cli("ipsec", "auto", "--up", "net")
    assert result.returncode == 0, result.stdout + west.log() + east.log()
    flood = subprocess.Popen(
        ["ip", "netns", "exec", NS["wc"], "ping", "-q", "-c", "200", "-i", "0.01", "-s", "1000",
         "203.0.113.10"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        during = scrape(NS["wg"])  # scraped while the ping flood runs through the tunnel
        assert during['fswan_ipsec_sas{state="STATE_QUICK_I2"}'] == 1
        output, _ = flood.communicate(timeout=60)
    finally:
        if flood.poll() is None:
            flood.kill()
    assert flood.returncode == 0, output
    assert " 0% packet loss" in output, output

    for daemon, ns, phase_state in ((west, NS["wg"], "STATE_MAIN_I4"),
                                    (east, NS["eg"], "STATE_MAIN_R3")):
        # the host's own stray packets (IPv6 solicitations into ipsec0: "no eroute!") may
        # still be counted: the page lies between an ipsec look before and one after it
        _, counters, pump = look(daemon)
        page = scrape(ns)
        traffic, counters_after, pump_after = look(daemon)
        for direction in ("in", "out"):
            key = f'{{conn="net",direction="{direction}"}}'
            assert page["fswan_conn_bytes_total" + key] == traffic[direction][0], (direction, page)
            assert page["fswan_conn_packets_total" + key] == traffic[direction][1]
            assert traffic[direction][1] >= 200  # the flood went through this SA pair
        for name, count in counters.items():
            family = "events" if name in ("fragmented", "acquire", "%hold", "%pass", "not ESP") \
                else "drops"
            label = "event" if family == "events" else "reason"
            shown = page[f'fswan_dataplane_{family}_total{{{label}="{name}"}}']
            assert count <= shown <= counters_after[name], name
        for name, count in pump.items():
            assert count <= page[f'fswan_pump_total{{counter="{name}"}}'] <= pump_after[name], name
        assert page[f'fswan_isakmp_sas{{state="{phase_state}"}}'] == 1
        assert page['fswan_ike_handshakes_completed_total{phase="isakmp"}'] == 1
        assert page['fswan_ike_handshakes_completed_total{phase="ipsec"}'] == 1
        assert page['fswan_ike_handshake_duration_seconds_count{phase="isakmp"}'] == 1
        document = json.loads(daemon.cli("whack", "--globalstatus", "--json").stdout)
        assert document["handshakes"]["completed"] == {"isakmp": 1, "ipsec": 1}
        assert document["states"]["all"] == 2
        traffic_lines = daemon.cli("whack", "--trafficstatus").stdout.splitlines()
        assert len(traffic_lines) == 1 and traffic_lines[0].startswith('006 #2: "net", type=ESP, ')
        in_bytes = int(re.search(r"inBytes=(\d+)", traffic_lines[0]).group(1))
        assert in_bytes == traffic["in"][0]
