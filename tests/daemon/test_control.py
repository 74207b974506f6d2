"""The whack control protocol over a fake transport, against a real Pluto table."""

from __future__ import annotations

import json
from ipaddress import ip_address

import pytest
from twisted.internet.testing import StringTransport

from fswan.config.errors import ConfigError, ConfigErrors
from fswan.config.orient import DefaultRoute, HostAddress, HostNetwork
from fswan.daemon.control import ControlFactory
from fswan.daemon.logging import PlutoLog
from fswan.daemon.pluto import Pluto
from fswan.whackproto import RC, Request, parse_line, update_exit_status
from tests.fakes import LogSink, MemoryLoader

CONF = """\
version 2
config setup
	interfaces=%defaultroute

conn %default
	authby=secret

conn net
	left=192.0.2.1
	leftsubnet=198.51.100.0/25
	right=192.0.2.2
	rightsubnet=203.0.113.0/25
	auto=add

conn rw
	left=192.0.2.1
	right=%any
	rightid=@roadwarrior

conn elsewhere
	left=203.0.113.5
	right=203.0.113.6
"""
SECRETS = '192.0.2.1 192.0.2.2 : PSK "control-test-secret-xyzzy"\n'
HOST = HostNetwork(
    (HostAddress("eth0", ip_address("192.0.2.1")),),
    DefaultRoute("eth0", ip_address("192.0.2.254")),
)


class Harness:
    def __init__(self, files=None):
        self.loader = MemoryLoader(files or {"/etc/ipsec.conf": CONF, "/etc/ipsec.secrets": SECRETS})
        self.sink = LogSink()
        self.shutdowns = 0
        self.pluto = Pluto(
            "/etc/ipsec.conf", "/etc/ipsec.secrets", self.loader, lambda: HOST,
            PlutoLog(self.sink.logger), file_mode=lambda path: 0o600 if path in self.loader.files else None,
        )
        self.factory = ControlFactory(self.pluto, self._shutdown)

    def _shutdown(self):
        self.shutdowns += 1

    def request(self, command, name=None, **args) -> tuple[list[str], int]:
        return self.raw(Request(command, name, args).encode())

    def raw(self, data: bytes) -> tuple[list[str], int]:
        protocol = self.factory.buildProtocol(None)
        transport = StringTransport()
        protocol.makeConnection(transport)
        protocol.dataReceived(data)
        assert transport.disconnecting, "the daemon must close after a reply"
        protocol.connectionLost(None)
        lines = transport.value().decode().splitlines()
        status = 0
        for line in lines:
            rc, _ = parse_line(line)
            assert rc is not None, f"reply line without a code: {line!r}"
            status = update_exit_status(status, rc)
        return lines, status


@pytest.fixture
def harness():
    h = Harness()
    h.pluto.start()
    return h


def test_start_adds_auto_add_conns_only(harness):
    assert sorted(harness.pluto.connections) == ["net"]
    assert 'added connection description "net"' in "\n".join(harness.sink.lines)
    assert "adding interface ipsec0/eth0 192.0.2.1" in harness.sink.lines


def test_status_text(harness):
    lines, status = harness.request("status")
    assert status == 0
    assert lines[0] == "000 interface ipsec0/eth0 192.0.2.1"
    assert '000 "net": 198.51.100.0/25===192.0.2.1...192.0.2.2===203.0.113.0/25; unrouted' in lines
    assert all(line.startswith("000") for line in lines)


def test_status_json(harness):
    lines, status = harness.request("status", json=True)
    assert status == 0 and len(lines) == 1
    document = json.loads(parse_line(lines[0])[1])
    assert [c["name"] for c in document["connections"]] == ["net"]
    assert document["connections"][0]["policy"] == ["PSK", "ENCRYPT", "TUNNEL", "PFS", "IKEV1_ALLOW",
                                                    "IKEV2_ALLOW"]


def test_add_delete_and_their_errors(harness):
    lines, status = harness.request("add", "rw")
    assert status == 0 and lines == ['002 added connection description "rw"']
    lines, status = harness.request("add", "rw")
    assert status == RC.DUPNAME and lines == ['020 attempt to redefine connection "rw"']
    lines, status = harness.request("add", "nosuch")
    assert status == RC.UNKNOWN_NAME and lines == ['021 no conn "nosuch" in /etc/ipsec.conf']
    lines, status = harness.request("delete", "rw")
    assert status == 0 and lines == ['002 "rw": deleting connection']
    lines, status = harness.request("delete", "rw")
    assert status == RC.UNKNOWN_NAME and lines == ['021 no connection named "rw"']


def test_add_unorientable_conn_reports_plutos_message(harness):
    lines, status = harness.request("add", "elsewhere")
    assert status == RC.ORIENT
    assert lines == ['022 "elsewhere": we have no ipsecN interface for either end of this connection']
    status_lines, _ = harness.request("status")
    assert any('"elsewhere":' in line and "unoriented" in line for line in status_lines)


def test_replace_rereads_the_file(harness):
    harness.loader.files["/etc/ipsec.conf"] = CONF.replace("\tauto=add\n", "\tauto=add\n\tkeylife=2h\n", 1)
    lines, status = harness.request("replace", "net")
    assert status == 0
    assert lines == ['002 "net": deleting connection', '002 added connection description "net"']
    assert harness.pluto.connections["net"].conn.keylife == 7200


def test_add_from_broken_config_gives_file_line_and_keeps_table(harness):
    harness.loader.files["/etc/other.conf"] = "version 2\nconn x\n\tleft=192.0.2.1\n\tright=192.0.2.2\n\tpfs=maybe\n"
    lines, status = harness.request("add", "x", config="/etc/other.conf")
    assert status == RC.BADWHACKMESSAGE
    assert lines[0].startswith("003 /etc/other.conf:5: ")
    assert "pfs" in lines[0]
    assert lines[-1] == '030 cannot load "x": /etc/other.conf has errors'
    assert "x" not in harness.pluto.connections


def test_rereadsecrets_good_and_bad(harness):
    lines, status = harness.request("rereadsecrets")
    assert status == 0
    assert '002 loading secrets from "/etc/ipsec.secrets"' in lines
    harness.loader.files["/etc/ipsec.secrets"] = ': PKS "leaky-secret-value"\n'
    lines, status = harness.request("rereadsecrets")
    assert status == RC.BADWHACKMESSAGE
    assert any(line.startswith("003 /etc/ipsec.secrets:1: ") for line in lines)
    assert lines[-1].endswith("keeping the 1 secrets loaded before")
    assert "leaky-secret-value" not in "\n".join(lines + harness.sink.lines)
    assert len(harness.pluto.secrets.entries) == 1


def test_secret_never_logged(harness):
    harness.request("rereadsecrets")
    harness.request("status")
    harness.request("status", json=True)
    assert "control-test-secret-xyzzy" not in "\n".join(harness.sink.lines)


def test_unlisten_then_listen_reorients(harness):
    lines, _ = harness.request("unlisten")
    assert lines == ["002 shutting down interface ipsec0/eth0 192.0.2.1"]
    assert harness.pluto.connections["net"].oriented is None
    lines, _ = harness.request("listen")
    assert "002 adding interface ipsec0/eth0 192.0.2.1" in lines
    assert harness.pluto.connections["net"].oriented is not None


@pytest.mark.parametrize("command", ["route", "unroute"])
def test_route_without_a_data_plane_fails_clearly(harness, command):
    lines, status = harness.request(command, "net")
    assert status == RC.INTERNALERR
    assert lines[-1] == f'032 "net": --{command}: this daemon runs without a data plane (no ipsec0)'


def test_bad_requests(harness):
    lines, status = harness.raw(b"garbage\n")
    assert status == RC.BADWHACKMESSAGE and lines == ["030 bad request: request is not a JSON object"]
    lines, status = harness.raw(b'{"version": 1, "command": "status"}\n{"version": 1}\n')
    assert status == 0  # only the first request on a connection is served


def test_shutdown_happens_after_reply(harness):
    lines, status = harness.request("shutdown")
    assert lines == ["002 shutting down"] and status == 0
    assert harness.shutdowns == 1


def test_start_with_bad_config_raises_config_errors():
    h = Harness({"/etc/ipsec.conf": "version 2\nconn x\n\tlefft=1.2.3.4\n", "/etc/ipsec.secrets": ""})
    with pytest.raises(ConfigErrors) as info:
        h.pluto.start()
    messages = [str(e) for e in info.value.errors]
    assert any(m.startswith("/etc/ipsec.conf:3: unknown keyword 'lefft'") for m in messages), messages


def test_unknown_updown_plugin_refuses_the_conn_with_file_line(harness):
    harness.loader.files["/etc/ipsec.conf"] = CONF.replace(
        "conn rw\n", "conn rw\n\tleftupdown=frobnicate\n")
    lines, status = harness.request("add", "rw")
    assert status == RC.BADWHACKMESSAGE
    assert lines[-1].startswith('030 "rw": /etc/ipsec.conf:')
    assert "leftupdown=frobnicate: no updown plugin named 'frobnicate'" in lines[-1]
    assert "rw" not in harness.pluto.connections


def test_unknown_updown_plugin_at_start_is_a_config_error():
    h = Harness({"/etc/ipsec.conf": CONF.replace("\tauto=add\n", "\tauto=add\n\tleftupdown=frobnicate\n"),
                 "/etc/ipsec.secrets": SECRETS})
    with pytest.raises(ConfigError) as info:
        h.pluto.start()
    assert "leftupdown=frobnicate: no updown plugin named 'frobnicate'" in str(info.value)
    assert str(info.value).startswith("/etc/ipsec.conf:")


def test_conns_with_dns_keys_are_announced_at_load():
    conf = CONF.replace("conn %default\n\tauthby=secret\n", "conn %default\n\tauthby=rsasig\n").replace(
        "\trightsubnet=203.0.113.0/25\n", "\trightsubnet=203.0.113.0/25\n\trightid=@east.example\n"
        "\trightrsasigkey=%dnsondemand\n", 1)
    h = Harness({"/etc/ipsec.conf": conf, "/etc/ipsec.secrets": SECRETS})
    h.pluto.start()
    text = "\n".join(h.sink.lines)
    assert ('"net": rightrsasigkey=%dnsondemand: the key of @east.example will be fetched from DNS'
            in text), text
    assert '"net": leftrsasigkey' not in text  # our own end's key is never fetched
