"""``ipsec setup``, ``ipsec verify`` and ``ipsec barf`` against the real daemon.

The daemon runs on loopback without a data plane (``--nodataplane``) and on
high IKE ports, so no root or namespace is needed and the lab's daemons are not
disturbed; every path (config, secrets, ctlbase, pid file, log) is temporary.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess

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

conn keep
	left=127.0.0.1
	right=192.0.2.3
	auto=add
"""

PSK = "setup-service-planted-psk-42"


def free_udp_ports() -> tuple[int, int]:
    ports = []
    sockets = []
    for _ in range(2):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sockets.append(sock)
        ports.append(sock.getsockname()[1])
    for sock in sockets:
        sock.close()
    return ports[0], ports[1]


@pytest.fixture
def service(tmp_path):
    ipsec = shutil.which("ipsec")
    if ipsec is None:
        pytest.skip("ipsec not on PATH: run scripts/install-deps.sh first")
    (tmp_path / "ipsec.conf").write_text(CONF)
    (tmp_path / "ipsec.secrets").write_text(f'127.0.0.1 192.0.2.2 : PSK "{PSK}"\n')
    os.chmod(tmp_path / "ipsec.secrets", 0o600)
    ikeport, nattport = free_udp_ports()
    common = ["--config", str(tmp_path / "ipsec.conf"), "--ctlbase", str(tmp_path / "run" / "pluto")]

    def setup(*verb: str) -> subprocess.CompletedProcess:
        return subprocess.run([ipsec, "setup", *common, "--logfile", str(tmp_path / "pluto.log"),
                               "--nodataplane", "--ikeport", str(ikeport), "--nattport", str(nattport),
                               *verb], capture_output=True, text=True, timeout=90)

    def tool(*argv: str) -> subprocess.CompletedProcess:
        return subprocess.run([ipsec, *argv[:1], *common, *argv[1:]], capture_output=True,
                              text=True, timeout=90)

    yield tmp_path, setup, tool, (ikeport, nattport)
    setup("stop")


def test_start_status_reload_restart_stop(service):
    tmp_path, setup, tool, _ = service
    pidfile = tmp_path / "run" / "pluto.pid"

    result = setup("start")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ipsec_setup: Starting fswan IPsec" in result.stdout
    assert "started (pid" in result.stdout and "2 conns loaded" in result.stdout
    pid = int(pidfile.read_text())
    assert os.path.exists(tmp_path / "run" / "pluto.ctl")

    again = setup("start")  # LSB: starting a running service succeeds
    assert again.returncode == 0 and "already running" in again.stdout

    result = setup("status")
    assert result.returncode == 0
    assert f"running (pid {pid})" in result.stdout and "2 conns loaded (0 routed), 0 ISAKMP SAs" in result.stdout

    # reload: net changed, keep untouched, extra new; secrets reread
    (tmp_path / "ipsec.conf").write_text(
        CONF.replace("\tauto=add\n", "\tauto=add\n\tkeylife=2h\n", 1)
        + "\nconn extra\n\tleft=127.0.0.1\n\tright=192.0.2.4\n\tauto=add\n")
    result = setup("reload")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "secrets: rereadsecrets ok" in result.stdout
    assert '"extra" new: add ok' in result.stdout and '"net" changed: replace ok' in result.stdout
    assert '"keep"' not in result.stdout
    status = tool("auto", "--status", "--json")
    document = json.loads(status.stdout)
    lives = {c["name"]: c["ipsec_life"] for c in document["connections"]}
    assert lives == {"net": 7200.0, "keep": 28800.0, "extra": 28800.0}
    assert setup("reload").stdout.count("no conn changed") == 1

    # a broken config: reload refuses with file:line and changes nothing
    (tmp_path / "ipsec.conf").write_text(CONF.replace("auto=add", "auto=bogus", 1))
    result = setup("reload")
    assert result.returncode == 6 and f"{tmp_path}/ipsec.conf:" in result.stderr
    (tmp_path / "ipsec.conf").write_text(CONF)

    result = setup("restart")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Stopping fswan IPsec" in result.stdout and "started (pid" in result.stdout
    new_pid = int(pidfile.read_text())
    assert new_pid != pid
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)

    result = setup("stop")
    assert result.returncode == 0 and "stopped" in result.stdout
    with pytest.raises(ProcessLookupError):
        os.kill(new_pid, 0)
    assert not pidfile.exists() and not os.path.exists(tmp_path / "run" / "pluto.ctl")
    assert setup("status").returncode == 3
    assert setup("stop").returncode == 0  # stopping a stopped service succeeds
    assert setup("reload").returncode == 7
    log = (tmp_path / "pluto.log").read_text()
    assert "Traceback" not in log and PSK not in log


def test_verify_and_barf_with_the_daemon_running(service):
    tmp_path, setup, tool, (ikeport, nattport) = service
    assert setup("start").returncode == 0
    pid = int((tmp_path / "run" / "pluto.pid").read_text())
    result = tool("verify", "--ikeport", str(ikeport), "--nattport", str(nattport))
    assert f"Checking that pluto is running (pid {pid})" in result.stdout
    assert f"fswan (pid {pid}) listens" in result.stdout
    lines = [line for line in result.stdout.splitlines() if line.startswith("Checking the")]
    assert all(line.endswith("[OK]") for line in lines), result.stdout

    os.chmod(tmp_path / "ipsec.secrets", 0o644)  # planted: secrets readable by all
    result = tool("verify", "--ikeport", str(ikeport), "--nattport", str(nattport))
    assert result.returncode == 1
    assert "mode 0644" in result.stdout
    os.chmod(tmp_path / "ipsec.secrets", 0o600)

    # a secret that got into a log (the daemon's own log file is twistd's, which writes
    # at its own offset: plant it in a copy)
    leaky = tmp_path / "leaky.log"
    leaky.write_text((tmp_path / "pluto.log").read_text() + f"some updown script echoed {PSK}\n")
    result = tool("barf", "--logfile", str(leaky), "--lines", "400")
    assert result.returncode == 0, result.stderr
    assert '"net": 198.51.100.0/25===127.0.0.1...192.0.2.2===203.0.113.0/25' in result.stdout
    assert "+ _________________________ look" in result.stdout
    assert "some updown script echoed [sensitive]" in result.stdout
    assert PSK not in result.stdout and "Traceback" not in result.stdout
