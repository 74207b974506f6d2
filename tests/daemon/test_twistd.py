"""The real daemon: ``twistd -n fswan`` driven by the real ``whack`` and ``ipsec`` commands.

Orientation uses ``interfaces="ipsec0=lo"`` and ``left=127.0.0.1``, so no
namespace or root is needed and no packet leaves the host.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import time

import pytest

CONF = """\
version 2
config setup
	interfaces="ipsec0=lo"

conn %default
	authby=secret

conn net
	left=127.0.0.1
	leftsubnet=198.51.100.0/25
	right=192.0.2.2
	rightsubnet=203.0.113.0/25
	auto=add

conn rw
	left=127.0.0.1
	right=%any
	rightid=@roadwarrior
"""

SECRETS = '127.0.0.1 192.0.2.2 : PSK "twistd-test-secret-plugh"\n'


def tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} not on PATH: run `pip install -e .` (scripts/install-deps.sh) first")
    return found


def run(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=30)


@pytest.fixture
def daemon(tmp_path):
    (tmp_path / "ipsec.conf").write_text(CONF)
    (tmp_path / "ipsec.secrets").write_text(SECRETS)
    os.chmod(tmp_path / "ipsec.secrets", 0o600)
    ctlbase = str(tmp_path / "run" / "pluto")
    log = tmp_path / "pluto.log"
    process = subprocess.Popen(
        [tool("twistd"), "-n", "--pidfile=", f"--logfile={log}", "fswan", "--nodataplane",
         "-c", str(tmp_path / "ipsec.conf"), "--ctlbase", ctlbase],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    deadline = time.monotonic() + 20
    while not os.path.exists(ctlbase + ".ctl"):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"daemon did not start: {process.stdout.read()} {log.read_text() if log.exists() else ''}")
        time.sleep(0.05)
    yield tmp_path, ctlbase, process, log
    if process.poll() is None:
        process.kill()
        process.wait()


def test_whole_lifecycle(daemon):
    tmp_path, ctlbase, process, log = daemon
    ipsec, whack = tool("ipsec"), tool("whack")
    ctl = ctlbase + ".ctl"
    assert stat.S_IMODE(os.stat(ctl).st_mode) == 0o600

    result = run(ipsec, "auto", "--ctlbase", ctlbase, "--status")
    assert result.returncode == 0, result.stderr
    assert "000 interface ipsec0/lo 127.0.0.1" in result.stdout
    assert '"net": 198.51.100.0/25===127.0.0.1...192.0.2.2===203.0.113.0/25; unrouted' in result.stdout

    result = run(ipsec, "auto", "--ctlbase", ctlbase, "--add", "rw")
    assert result.returncode == 0 and result.stdout == ""  # auto hides 002 lines
    result = run(ipsec, "auto", "--ctlbase", ctlbase, "--verbose", "--add", "rw")
    assert result.returncode == 20 and '020 attempt to redefine connection "rw"' in result.stdout

    (tmp_path / "ipsec.conf").write_text(CONF.replace("\tauto=add\n", "\tauto=add\n\tkeylife=2h\n"))
    result = run(ipsec, "auto", "--ctlbase", ctlbase, "--verbose", "--replace", "net")
    assert result.returncode == 0, result.stdout
    assert '002 added connection description "net"' in result.stdout

    result = run(whack, "--ctlbase", ctlbase, "--status", "--json")
    assert result.returncode == 0
    document = json.loads(result.stdout)
    assert {c["name"]: c["ipsec_life"] for c in document["connections"]} == {"net": 7200.0, "rw": 28800.0}

    result = run(whack, "--ctlbase", ctlbase, "--name", "rw", "--delete")
    assert result.returncode == 0 and '002 "rw": deleting connection' in result.stdout
    result = run(whack, "--ctlbase", ctlbase, "--name", "rw", "--delete")
    assert result.returncode == 21

    (tmp_path / "ipsec.secrets").write_text('127.0.0.1 : PSK "unterminated\n')
    result = run(ipsec, "auto", "--ctlbase", ctlbase, "--verbose", "--rereadsecrets")
    assert result.returncode == 30, result.stdout
    assert f"{tmp_path}/ipsec.secrets:1:" in result.stdout
    (tmp_path / "ipsec.secrets").write_text(SECRETS)
    result = run(whack, "--ctlbase", ctlbase, "--rereadsecrets")
    assert result.returncode == 0, result.stdout

    result = run(ipsec, "auto", "--ctlbase", ctlbase, "--route", "net")
    assert result.returncode == 32 and "without a data plane" in result.stdout

    os.kill(process.pid, signal.SIGHUP)  # admins' "reload": must not kill the daemon
    deadline = time.monotonic() + 10
    while "received SIGHUP: rereading secrets" not in log.read_text():
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.05)
    assert process.poll() is None

    result = run(whack, "--ctlbase", ctlbase, "--shutdown")
    assert result.returncode == 0
    assert process.wait(timeout=20) == 0
    assert not os.path.exists(ctl)
    text = log.read_text()
    assert "Traceback" not in text
    assert "twistd-test-secret-plugh" not in text
    assert 'added connection description "net"' in text


def test_whack_without_daemon(tmp_path):
    result = run(tool("whack"), "--ctlbase", str(tmp_path / "nothing"), "--status")
    assert result.returncode == 1
    assert f'whack: Pluto is not running (no "{tmp_path}/nothing.ctl")' in result.stderr


def test_bad_config_exits_1_with_file_line(tmp_path):
    (tmp_path / "ipsec.conf").write_text("version 2\nconn net\n\tleft=127.0.0.1\n\tright=192.0.2.2\n\tlefsubnet=10.0.0.0/8\n")
    result = subprocess.run(
        [tool("twistd"), "-n", "--pidfile=", "fswan", "-c", str(tmp_path / "ipsec.conf"),
         "--ctlbase", str(tmp_path / "pluto")],
        capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 1
    output = result.stdout + result.stderr
    assert f"{tmp_path}/ipsec.conf:5: unknown keyword 'lefsubnet'" in output
    assert "did you mean 'leftsubnet'" in output
    assert "Traceback" not in output


def test_twistd_help_lists_options():
    result = run(tool("twistd"), "fswan", "--help")
    assert result.returncode == 0
    for option in ("--config", "--secrets", "--ctlbase", "--ikeport"):
        assert option in result.stdout


def test_second_daemon_refuses_to_start(daemon):
    tmp_path, ctlbase, process, log = daemon
    result = subprocess.run(
        [tool("twistd"), "-n", "--pidfile=", "fswan", "-c", str(tmp_path / "ipsec.conf"),
         "--ctlbase", ctlbase],
        capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 1
    assert f"a daemon already answers on {ctlbase}.ctl" in result.stderr
    assert process.poll() is None


def test_checkconfig_cli(tmp_path):
    (tmp_path / "ipsec.conf").write_text(CONF)
    (tmp_path / "ipsec.secrets").write_text(SECRETS)
    os.chmod(tmp_path / "ipsec.secrets", 0o644)
    result = run(tool("ipsec"), "checkconfig", "--config", str(tmp_path / "ipsec.conf"))
    assert result.returncode == 0, result.stderr
    assert "net" in result.stdout
    assert "twistd-test-secret-plugh" not in result.stdout
    assert "readable by group or others" in result.stdout
    result = run(tool("ipsec"), "checkconfig", "--config", str(tmp_path / "ipsec.conf"), "--json")
    document = json.loads(result.stdout)
    assert document["valid"] is True and result.returncode == 0
    (tmp_path / "bad.conf").write_text("version 2\nconn x\n\tleft=127.0.0.1\n\tauto=add\n")
    result = run(tool("ipsec"), "checkconfig", "--config", str(tmp_path / "bad.conf"), "--json")
    document = json.loads(result.stdout)
    assert result.returncode == 1 and document["valid"] is False
    assert document["errors"][0]["line"] == 2 and "right" in document["errors"][0]["message"]
