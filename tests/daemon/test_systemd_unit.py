"""The shipped systemd unit: ``systemd-analyze verify``, and its ExecStartPre/ExecStart
lines run by hand (as systemd would, with a ``$NOTIFY_SOCKET`` this test listens on)
in a private network namespace on temporary paths: READY=1 arrives once the control
socket answers and ``auto=route`` is done; SIGTERM (systemd's stop) sends STOPPING=1
and removes ``ipsec0``."""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from fswan.cli import setup

UNIT = Path(__file__).resolve().parents[2] / "etc" / "systemd" / "fswan.service"

CONF = """\
version 2
config setup
	interfaces="ipsec0=wan0"

conn net
	authby=secret
	left=192.0.2.1
	leftsubnet=198.51.100.0/25
	right=192.0.2.2
	rightsubnet=203.0.113.0/25
	auto=route
"""


def rendered() -> str:
    return setup.render_unit(UNIT.read_text(), setup.tool_dir())


def directive(text: str, key: str) -> str:
    return next(line.partition("=")[2] for line in text.splitlines() if line.startswith(key + "="))


def test_systemd_analyze_verify(tmp_path):
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze is missing and scripts/install-deps.sh could not install "
                    "the Debian package systemd here (not Debian, or not root)")
    if not os.access(os.path.join(setup.tool_dir(), "twistd"), os.X_OK):
        pytest.skip(f"no twistd in {setup.tool_dir()}: run scripts/install-deps.sh")
    unit = tmp_path / "fswan.service"
    unit.write_text(rendered())
    # --man=no: the man pages need not be installed for the unit to be right
    result = subprocess.run([tool, "verify", "--man=no", str(unit)], capture_output=True,
                            text=True, timeout=60, cwd=tmp_path)
    problems = [line for line in (result.stdout + result.stderr).splitlines() if "fswan.service" in line]
    assert result.returncode == 0 and not problems, result.stdout + result.stderr
    # the shipped file differs only in the tool directory
    shipped = tmp_path / "shipped" / "fswan.service"
    shipped.parent.mkdir()
    shipped.write_text(UNIT.read_text())
    result = subprocess.run([tool, "verify", "--man=no", str(shipped)], capture_output=True,
                            text=True, timeout=60, cwd=tmp_path)
    problems = [line for line in (result.stdout + result.stderr).splitlines()
                if "fswan.service" in line and "is not executable" not in line]
    assert not problems, result.stdout + result.stderr


needs_root = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("ip") is None or not os.path.exists("/dev/net/tun"),
    reason="needs root, iproute2 and /dev/net/tun (a private network namespace and ipsec0)")


def _on_temp_paths(command: str, tmp_path: Path) -> list[str]:
    argv = shlex.split(command)
    return [word.replace("/etc/ipsec.conf", str(tmp_path / "ipsec.conf"))
                .replace("/run/pluto/pluto", str(tmp_path / "run" / "pluto")) for word in argv]


def _receive(sock: socket.socket, wanted: str, deadline: float) -> list[str]:
    messages = []
    while time.monotonic() < deadline:
        sock.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            message = sock.recv(4096).decode()
        except socket.timeout:
            break
        messages.append(message)
        if wanted in message.splitlines():
            return messages
    raise AssertionError(f"no {wanted} among {messages}")


@needs_root
def test_exec_start_by_hand_in_a_namespace(tmp_path):
    ns = f"fswunit{os.getpid()}"
    unit = rendered()
    (tmp_path / "ipsec.conf").write_text(CONF)
    (tmp_path / "ipsec.secrets").write_text('192.0.2.1 192.0.2.2 : PSK "unit-test-psk-quux"\n')
    os.chmod(tmp_path / "ipsec.secrets", 0o600)
    (tmp_path / "run").mkdir(mode=0o700)  # systemd makes RuntimeDirectory=pluto
    subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    subprocess.run(["ip", "netns", "add", ns], check=True)
    process = None
    try:
        for step in (["link", "set", "lo", "up"],
                     ["link", "add", "wan0", "type", "veth", "peer", "name", "wan1"],
                     ["addr", "add", "192.0.2.1/24", "dev", "wan0"], ["link", "set", "wan0", "up"],
                     ["link", "set", "wan1", "up"]):
            subprocess.run(["ip", "-n", ns, *step], check=True)
        pre = subprocess.run(["ip", "netns", "exec", ns,
                              *_on_temp_paths(directive(unit, "ExecStartPre"), tmp_path)],
                             capture_output=True, text=True, timeout=60)
        assert pre.returncode == 0, pre.stdout + pre.stderr
        assert (tmp_path / "run" / "pluto.conns.json").exists()

        notify_path = str(tmp_path / "notify")
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
            notify.bind(notify_path)
            start = _on_temp_paths(directive(unit, "ExecStart"), tmp_path)
            process = subprocess.Popen(["ip", "netns", "exec", ns, *start],
                                       env=dict(os.environ, NOTIFY_SOCKET=notify_path),
                                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            messages = _receive(notify, "READY=1", time.monotonic() + 30)
            assert any("MAINPID=" in m for m in messages)
            # ready means: the control socket answers and auto=route is done
            status = subprocess.run(["ip", "netns", "exec", ns, os.path.join(setup.tool_dir(), "ipsec"),
                                     "auto", "--ctlbase", str(tmp_path / "run" / "pluto"), "--status"],
                                    capture_output=True, text=True, timeout=30)
            assert status.returncode == 0, status.stderr
            assert '"net": 198.51.100.0/25===192.0.2.1...192.0.2.2===203.0.113.0/25; prospective erouted' \
                in status.stdout
            link = subprocess.run(["ip", "-n", ns, "link", "show", "ipsec0"], capture_output=True)
            assert link.returncode == 0

            process.send_signal(signal.SIGTERM)  # systemctl stop (KillMode=mixed: the main pid)
            _receive(notify, "STOPPING=1", time.monotonic() + 30)
            # twistd ends by re-raising the signal after its orderly shutdown: systemd counts
            # death by SIGTERM as a clean exit for a service
            assert process.wait(timeout=30) in (0, -signal.SIGTERM)
        output = process.stdout.read() if process.stdout else ""
        assert "Traceback" not in output and "unit-test-psk-quux" not in output
        link = subprocess.run(["ip", "-n", ns, "link", "show", "ipsec0"], capture_output=True)
        assert link.returncode != 0, "ipsec0 left behind after an orderly stop"
    finally:
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
