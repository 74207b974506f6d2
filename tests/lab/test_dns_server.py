"""DnsKeyFetcher against a real authoritative server in a network namespace.

The server (tests/dnsserver.py) runs in this process on a socket that lives
in ``fswan-dns-test`` (198.51.100.53 on the namespace's loopback), so the
test can count its queries and switch its faults.  The fetcher runs where a
daemon would: a separate Python process inside the namespace, with the real
reactor, thread pool and dnspython resolver, reporting JSON on stdout.  The
zone is built from ``ipsec showhostkey`` output, so what the tool prints is
what the fetcher finds.

Root is needed for the namespace; without it these tests skip, saying so.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from fswan.cli import keytools
from fswan.config import keys
from fswan.config.ids import parse_id
from fswan.dnskeys.records import query_name
from tests.dnsserver import ADDRESS, PORT, DnsNamespace, Mode, ZoneServer, make_zone

REPO = Path(__file__).resolve().parents[2]

#: The fetcher as the daemon would run it; one process runs a list of jobs.
CLIENT = r"""
import json, sys, time
from twisted.internet import defer, reactor, task
from twisted.python.failure import Failure
from fswan.config import keys
from fswan.config.ids import parse_id
from fswan.dnskeys.records import query_name
from fswan.daemon.dns import DnsKeyError, DnsKeyFetcher

spec = json.loads(sys.argv[1])
log = []
fetcher = DnsKeyFetcher(reactor, resolver=tuple(spec["resolver"]), timeout=spec["timeout"],
                        log=log.append)
ticks = [0]
def tick():
    ticks[0] += 1
task.LoopingCall(tick).start(spec["tick"])

@defer.inlineCallbacks
def main():
    out = []
    for job in spec["jobs"]:
        if job.get("pause"):
            yield task.deferLater(reactor, job["pause"], lambda: None)
        started, ticks_before = time.monotonic(), ticks[0]
        entry = {"id": job["id"]}
        try:
            found = yield fetcher.fetch(parse_id(job["id"]))
            entry.update(kind=found.kind, name=found.name.to_text(), ttl=found.ttl,
                         keys=[keys.format_rsasigkey(k) for k in found.keys])
        except DnsKeyError as exc:
            entry["error"] = exc.reason
        entry.update(elapsed=time.monotonic() - started, ticks=ticks[0] - ticks_before)
        out.append(entry)
    print(json.dumps({"results": out, "log": log, "queries": fetcher.queries}))

def done(result):
    if isinstance(result, Failure):
        sys.stderr.write(result.getTraceback())
    reactor.stop()

reactor.callWhenRunning(lambda: main().addBoth(done))
reactor.run()
"""

NAMES = {
    "txt": "@txt.example",
    "ipseckey": "@ipseckey.example",
    "key": "@key.example",
    "rev-txt": "192.0.2.1",
    "rev-ipseckey": "192.0.2.2",
    "rev-key": "192.0.2.3",
    "rev6-txt": "2001:db8::1",
    "short-ttl": "@short.example",
}


@pytest.fixture(scope="module")
def host_keys() -> dict[str, rsa.RSAPrivateKey]:
    """One small key per published name, so each answer shows which record it came from."""
    return {label: rsa.generate_private_key(3, 1024) for label in NAMES}


def published(label: str, key: rsa.RSAPrivateKey) -> str:
    """The zone lines ``ipsec showhostkey --txt/--ipseckey/--key --id ID`` prints for this name."""
    identity = parse_id(NAMES[label])
    host_key = keytools.HostKey(key, f"RSA {key.key_size} bits   test   now")
    owner = query_name(identity).to_text()
    if label.endswith("ipseckey"):
        return keytools.format_ipseckey_record(host_key, identity, owner)
    if label.endswith("key"):
        return keytools.format_key_record(host_key, owner)
    return keytools.format_txt_record(host_key, identity, owner)


@pytest.fixture(scope="module")
def server(host_keys):
    if os.geteuid() != 0:
        pytest.skip("DNS lab tests need root (they create the network namespace fswan-dns-test)")
    if shutil.which("ip") is None:
        pytest.skip("DNS lab tests need iproute2's ip command")
    forward = "".join(published(label, host_keys[label]) for label in ("txt", "ipseckey", "key"))
    forward += published("short-ttl", host_keys["short-ttl"]).replace("\tIN\t", "\t1\tIN\t")
    reverse4 = "".join(
        published(label, host_keys[label]) for label in ("rev-txt", "rev-ipseckey", "rev-key")
    )
    reverse6 = published("rev6-txt", host_keys["rev6-txt"])
    zones = [
        make_zone("example", forward),
        make_zone("2.0.192.in-addr.arpa", reverse4),
        make_zone("8.b.d.0.1.0.0.2.ip6.arpa", reverse6),
    ]
    namespace = DnsNamespace()
    namespace.up()
    try:
        dns_server = ZoneServer(zones, namespace.socket(), ADDRESS, PORT, namespace).start()
        try:
            yield dns_server
        finally:
            dns_server.stop()
    finally:
        namespace.down()


@pytest.fixture
def dns(server):
    server.reset()
    yield server
    server.reset()


def fetch(server: ZoneServer, jobs: list[dict], timeout: float = 2.0, tick: float = 0.02) -> dict:
    """Run the fetcher in the namespace on ``jobs``; its JSON report."""
    assert server.namespace is not None
    spec = {"resolver": [ADDRESS, PORT], "timeout": timeout, "tick": tick, "jobs": jobs}
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    result = subprocess.run(
        server.namespace.exec_argv(sys.executable, "-c", CLIENT, json.dumps(spec)),
        capture_output=True, text=True, timeout=60, cwd=REPO, env=env,
    )
    assert result.returncode == 0 and result.stdout, (
        f"fetcher process exited {result.returncode}\n{result.stdout}\n{result.stderr}"
    )
    return json.loads(result.stdout.splitlines()[-1])


def shown(key) -> str:
    return keys.format_rsasigkey(key)


class TestDnskeysServer:
    """Named so that ``pytest -k dnskeys`` selects these tests too."""

    def test_each_record_type_forward_and_reverse(self, dns, host_keys):
        labels = ["txt", "ipseckey", "key", "rev-txt", "rev-ipseckey", "rev-key", "rev6-txt"]
        report = fetch(dns, [{"id": NAMES[label]} for label in labels])
        for label, entry in zip(labels, report["results"]):
            assert "error" not in entry, (label, entry)
            assert entry["keys"] == [shown(host_keys[label])], label
            kind = label.rsplit("-", 1)[-1].upper()
            assert entry["kind"] == kind, label
            assert entry["ttl"] == 300
        names = [entry["name"] for entry in report["results"]]
        assert names[3] == "1.2.0.192.in-addr.arpa."
        assert names[6].endswith(".8.b.d.0.1.0.0.2.ip6.arpa.")
        assert report["log"] == []
        # TXT answered at once; IPSECKEY needed 2 queries, KEY 3
        assert dns.count("key.example.") == 3 and dns.count("txt.example.") == 1

    def test_ttl_cache_second_fetch_asks_nothing(self, dns, host_keys):
        report = fetch(dns, [{"id": NAMES["txt"]}, {"id": NAMES["txt"]}])
        first, second = report["results"]
        assert first["keys"] == second["keys"] == [shown(host_keys["txt"])]
        assert dns.count("txt.example.") == 1
        assert report["queries"] == 1

    def test_ttl_expiry_asks_again(self, dns, host_keys):
        report = fetch(dns, [{"id": NAMES["short-ttl"]}, {"id": NAMES["short-ttl"], "pause": 1.2}])
        assert [entry["ttl"] for entry in report["results"]] == [1, 1]
        assert dns.count("short.example.") == 2

    def test_slow_server_times_out_and_the_reactor_keeps_ticking(self, dns):
        dns.mode = Mode.SLOW
        dns.delay = 3.0
        timeout, tick = 1.0, 0.02
        report = fetch(dns, [{"id": NAMES["txt"]}], timeout=timeout, tick=tick)
        entry = report["results"][0]
        assert "no answer from 198.51.100.53 port 53 within 1 s" in entry["error"]
        assert timeout * 0.9 <= entry["elapsed"] < timeout + 0.75
        # the LoopingCall kept running while the lookup waited: the reactor was never blocked
        assert entry["ticks"] >= 0.5 * entry["elapsed"] / tick
        assert report["log"] == [
            f"failure to fetch key for @txt.example from DNS: {entry['error']}"
        ]

    def test_servfail_is_logged_not_fatal(self, dns, host_keys):
        dns.mode = Mode.SERVFAIL
        report = fetch(dns, [{"id": NAMES["txt"]}])
        entry = report["results"][0]
        reason = "TXT query for txt.example. failed: 198.51.100.53 port 53 answered SERVFAIL"
        assert entry["error"] == reason
        assert report["log"] == [f"failure to fetch key for @txt.example from DNS: {reason}"]
        assert entry["elapsed"] < 1.0

    def test_silent_server_is_a_timeout(self, dns):
        dns.mode = Mode.DROP
        report = fetch(dns, [{"id": NAMES["key"]}], timeout=0.5)
        entry = report["results"][0]
        assert "no answer from 198.51.100.53 port 53 within 0.5 s" in entry["error"]
        assert entry["elapsed"] < 0.5 + 0.75
        assert report["log"][0].startswith("failure to fetch key for @key.example from DNS: ")

    def test_unpublished_name_is_nxdomain(self, dns):
        report = fetch(dns, [{"id": "@nobody.example"}, {"id": "192.0.2.99"}])
        assert [entry["error"] for entry in report["results"]] == [
            "no such name nobody.example. in DNS (NXDOMAIN)",
            "no such name 99.2.0.192.in-addr.arpa. in DNS (NXDOMAIN)",
        ]
        assert len(report["log"]) == 2
