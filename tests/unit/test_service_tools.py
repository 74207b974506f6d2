"""fswan as a system service, without a daemon: sd_notify, ``ipsec setup``'s pieces
(reload plan, fingerprints, exit codes), ``ipsec verify`` against a planted /proc,
``ipsec barf``'s censoring of planted secrets, and the systemd unit's text."""

from __future__ import annotations

import base64
import os
import socket
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from fswan.cli import barf, ipsec, setup, verify
from fswan.cli.ipsec import check_files
from fswan.config.ipsecconf import parse_config
from fswan.config.orient import DefaultRoute, HostAddress, HostNetwork
from fswan.daemon.service import sd_notify
from ipaddress import ip_address

CONF = """\
version 2
config setup
	interfaces="ipsec0=eth0"

conn net
	authby=secret
	left=192.0.2.1
	leftsubnet=198.51.100.0/25
	right=192.0.2.2
	rightsubnet=203.0.113.0/25
	auto=start

conn host
	authby=secret
	left=192.0.2.1
	right=192.0.2.3
	auto=route

conn spare
	authby=secret
	left=192.0.2.1
	right=192.0.2.4
	auto=ignore
"""
PSK = "unit-planted-psk-xyzzy"


def parse(text: str):
    return parse_config(text, "ipsec.conf")


# --------------------------------------------------------------------------- sd_notify


def test_sd_notify_sends_one_datagram_to_a_path(tmp_path):
    path = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(path)
        assert sd_notify("READY=1\nSTATUS=up", {"NOTIFY_SOCKET": path})
        assert server.recv(4096) == b"READY=1\nSTATUS=up"


def test_sd_notify_abstract_socket():
    name = f"fswan-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind("\0" + name)
        assert sd_notify("STOPPING=1", {"NOTIFY_SOCKET": "@" + name})
        assert server.recv(4096) == b"STOPPING=1"


@pytest.mark.parametrize("environ", [{}, {"NOTIFY_SOCKET": ""}, {"NOTIFY_SOCKET": "relative"},
                                     {"NOTIFY_SOCKET": "/nonexistent/notify"}])
def test_sd_notify_is_quiet_without_a_manager(environ):
    assert sd_notify("READY=1", environ) is False


# --------------------------------------------------------------------------- ipsec setup pieces


def test_fingerprint_ignores_where_a_conn_is_written_not_what_it_is():
    before = parse(CONF)
    moved = parse("# a comment\n\n" + CONF)
    assert setup.conn_fingerprint(before.conns["net"]) == setup.conn_fingerprint(moved.conns["net"])
    changed = parse(CONF.replace("auto=start\n", "auto=start\n\tkeylife=2h\n"))
    assert setup.conn_fingerprint(before.conns["net"]) != setup.conn_fingerprint(changed.conns["net"])


def test_manual_keys_count_but_never_appear_in_the_snapshot(tmp_path):
    manual = """\
version 2
conn m
	left=192.0.2.1
	right=192.0.2.2
	auto=manual
	spi=0x200
	esp=aes128-sha1
	espenckey=0x00112233445566778899aabbccddeeff
	espauthkey=0x00112233445566778899aabbccddeeff00112233
"""
    one, two = parse(manual), parse(manual.replace("0x0011223344556677", "0x0011223344556678", 1))
    assert setup.conn_fingerprint(one.conns["m"]) != setup.conn_fingerprint(two.conns["m"])
    path = tmp_path / "pluto.conns.json"
    setup.write_snapshot(str(path), one)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert "aabbccddeeff" not in path.read_text()
    assert setup.read_snapshot(str(path))["conns"]["m"] == setup.conn_fingerprint(one.conns["m"])


def test_reload_plan():
    config = parse(CONF)
    before = setup.snapshot_of(config)
    # nothing changed: nothing to do
    assert setup.plan_reload(config, ["net", "host"], before) == setup.ReloadPlan()
    edited = parse(CONF.replace("auto=start\n", "auto=start\n\tkeylife=2h\n")
                   .replace("conn host", "conn host2"))
    plan = setup.plan_reload(edited, ["net", "host", "by-hand"], before)
    assert plan.add == ("host2",) and plan.replace == ("net",) and plan.delete == ("host",)
    assert not plan.setup_changed  # by-hand (ipsec auto --add) is left alone
    # no snapshot: every running conn of the file is replaced, nothing deleted
    plan = setup.plan_reload(config, ["net", "host"], None)
    assert plan.replace == ("host", "net") and plan.delete == () and plan.add == ()
    setup_edit = parse(CONF.replace('interfaces="ipsec0=eth0"', 'interfaces="ipsec0=eth1"'))
    assert setup.plan_reload(setup_edit, ["net", "host"], before).setup_changed


def test_auto_requests_follow_start_up():
    config = parse(CONF)
    assert setup.auto_request(config.conns["net"]).command == "initiate"
    assert setup.auto_request(config.conns["net"]).args == {"asynchronous": True}
    assert setup.auto_request(config.conns["host"]).command == "route"


def test_counts_from_status_json():
    document = {
        "connections": [{"name": "a", "routing": "erouted"}, {"name": "b", "routing": "unrouted"}],
        "states": [{"state": "STATE_MAIN_I4"}, {"state": "STATE_QUICK_I2"}, {"state": "STATE_QUICK_R2"}],
    }
    found = setup.counts(document)
    assert found == setup.Counts(conns=2, routed=1, isakmp_sas=1, ipsec_sas=2)
    assert found.text() == "2 conns loaded (1 routed), 1 ISAKMP SA, 2 IPsec SAs"


def test_setup_usage_errors_exit_2(capsys):
    assert setup.main(["frobnicate"]) == 2
    assert "expected one of start, stop" in capsys.readouterr().err
    assert setup.main(["--timeout", "0", "start"]) == 2
    assert setup.main(["--ikeport", "70000", "start"]) == 2
    assert setup.main([]) == 2
    assert setup.main(["--help"]) == 0
    assert "start | stop | restart" in capsys.readouterr().out
    assert ipsec.main(["setup", "-h"]) == 0


def test_status_and_stop_when_not_running(tmp_path, capsys):
    ctlbase = str(tmp_path / "pluto")
    assert setup.main(["--ctlbase", ctlbase, "status"]) == 3
    assert "stopped" in capsys.readouterr().out
    (tmp_path / "pluto.pid").write_text("999999999\n")  # a pid that cannot exist
    assert setup.main(["--ctlbase", ctlbase, "status"]) == 1
    assert "names pid 999999999 (dead)" in capsys.readouterr().out
    assert setup.main(["--ctlbase", ctlbase, "stop"]) == 0
    assert not (tmp_path / "pluto.pid").exists()
    assert setup.main(["--ctlbase", ctlbase, "--config", str(tmp_path / "none.conf"), "reload"]) == 6


def test_start_refuses_a_broken_config_with_file_line(tmp_path, capsys):
    conf = tmp_path / "ipsec.conf"
    conf.write_text("version 2\nconn x\n\tleft=192.0.2.1\n\tright=192.0.2.2\n\tlefsubnet=10.0.0.0/8\n")
    code = setup.main(["--config", str(conf), "--ctlbase", str(tmp_path / "pluto"), "start"])
    assert code == 6
    err = capsys.readouterr().err
    assert f"{conf}:5:" in err and "Traceback" not in err
    assert not (tmp_path / "pluto.pid").exists()


def test_daemon_command_paths():
    paths = setup.Paths("/tmp/x/ipsec.conf", None, "/tmp/x/pluto", None)
    argv = setup.daemon_command(paths, None, ["--nodataplane"])
    assert "--pidfile=/tmp/x/pluto.pid" in argv and "--syslog" in argv
    assert argv[argv.index("fswan"):] == ["fswan", "--config", "/tmp/x/ipsec.conf", "--ctlbase",
                                          "/tmp/x/pluto", "--nodataplane"]
    assert f"--logfile=/tmp/x/log" in setup.daemon_command(paths, "/tmp/x/log", [])


# --------------------------------------------------------------------------- the unit file

UNIT = Path(__file__).resolve().parents[2] / "etc" / "systemd" / "fswan.service"


def unit_values(text: str) -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            values.setdefault(key, []).append(value)
    return values


def test_unit_is_notify_and_hardened_without_breaking_tun():
    values = unit_values(UNIT.read_text())
    assert values["Type"] == ["notify"]
    assert values["CapabilityBoundingSet"] == ["CAP_NET_ADMIN CAP_NET_RAW CAP_NET_BIND_SERVICE"]
    assert values["ProtectSystem"] == ["strict"] and values["NoNewPrivileges"] == ["yes"]
    assert values["RuntimeDirectory"] == ["pluto"]
    assert "/dev/net/tun rw" in values["DeviceAllow"]
    assert "AF_NETLINK" in values["RestrictAddressFamilies"][0]
    # writing rp_filter/accept_local for ipsec0 needs /proc/sys; TUN needs /dev
    assert "ProtectKernelTunables" not in values and "PrivateDevices" not in values
    start = values["ExecStart"][0].split()
    assert start[1:4] == ["--nodaemon", "--pidfile=", "--logfile=-"] and "fswan" in start
    assert "--ctlbase /run/pluto/pluto" in values["ExecStart"][0]
    assert values["ExecReload"][0].endswith("setup reload --config /etc/ipsec.conf --ctlbase /run/pluto/pluto")


def test_render_unit_uses_this_installation():
    text = setup.render_unit(UNIT.read_text(), "/opt/fswan/bin", "/srv/ipsec.conf")
    values = unit_values(text)
    assert values["ExecStart"][0].startswith("/opt/fswan/bin/twistd ")
    assert values["ExecStartPre"][0].startswith("/opt/fswan/bin/ipsec setup prepare --config /srv/ipsec.conf")
    assert "/usr/local/bin" not in text and "/etc/ipsec.conf" not in text.split("[Unit]")[1]


def test_install_unit_writes_the_file(tmp_path, capsys):
    assert setup.main(["install-unit", "--unitdir", str(tmp_path)]) == 0
    written = (tmp_path / "fswan.service").read_text()
    assert unit_values(written)["Type"] == ["notify"]
    assert setup.main(["install-unit", "--stdout"]) == 0
    assert "[Service]" in capsys.readouterr().out
    assert setup.main(["install-unit", "--bogus"]) == 2


# --------------------------------------------------------------------------- ipsec verify


def planted_proc(tmp_path: Path, **knobs: str) -> verify.Host:
    """A /proc with the sysctls given (``net.ipv4.ip_forward="1"``) and no sockets."""
    proc = tmp_path / "proc"
    for name, value in {"net.ipv4.ip_forward": "1", "net.ipv4.conf.all.rp_filter": "0",
                        "net.ipv4.conf.eth0.rp_filter": "0", **knobs}.items():
        path = proc / "sys" / Path(*name.split("."))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(value + "\n")
    (proc / "net").mkdir(parents=True, exist_ok=True)
    header = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
    (proc / "net" / "udp").write_text(header)
    return verify.Host(proc=str(proc), tun=str(tmp_path / "no-tun"))


NETWORK = HostNetwork((HostAddress("eth0", ip_address("192.0.2.1")),),
                      DefaultRoute("eth0", ip_address("192.0.2.254")))


def files(tmp_path: Path, conf: str = CONF, mode: int = 0o600) -> tuple[str, str]:
    (tmp_path / "ipsec.conf").write_text(conf)
    secrets = tmp_path / "ipsec.secrets"
    secrets.write_text(f'192.0.2.1 192.0.2.2 : PSK "{PSK}"\n')
    os.chmod(secrets, mode)
    return str(tmp_path / "ipsec.conf"), str(secrets)


def verdicts(checks: list[verify.Check]) -> dict[str, verify.Verdict]:
    return {c.text: c.verdict for c in checks}


def find(checks, start: str) -> verify.Check:
    return next(c for c in checks if c.text.startswith(start))


def test_verify_good_host(tmp_path):
    conf, _ = files(tmp_path)
    checks = verify.run_checks(conf, None, str(tmp_path / "pluto"), planted_proc(tmp_path), NETWORK)
    assert find(checks, "Checking for IP forwarding").verdict is verify.Verdict.OK
    assert find(checks, "Checking rp_filter on eth0").verdict is verify.Verdict.OK
    assert find(checks, "Checking the configuration").verdict is verify.Verdict.OK
    assert find(checks, "Checking secrets file permissions").verdict is verify.Verdict.OK
    assert find(checks, "Checking that UDP 500 ").verdict is verify.Verdict.OK
    # planted: no TUN device, and no daemon on this ctlbase
    assert find(checks, "Checking for TUN support").verdict is verify.Verdict.FAILED
    assert find(checks, "Checking that pluto is running").verdict is verify.Verdict.FAILED
    for check in checks:
        for line in check.lines()[:1]:
            assert line.endswith(("[OK]", "[FAILED]", "[WARNING]", "[N/A]")), line


def test_verify_flags_planted_breakage(tmp_path):
    conf, _ = files(tmp_path, mode=0o644)
    host = planted_proc(tmp_path, **{"net.ipv4.ip_forward": "0", "net.ipv4.conf.eth0.rp_filter": "1"})
    checks = verify.run_checks(conf, None, str(tmp_path / "pluto"), host, NETWORK)
    rp = find(checks, "Checking rp_filter on eth0")
    assert rp.verdict is verify.Verdict.FAILED and "1: strict" in rp.text
    assert find(checks, "Checking for IP forwarding").verdict is verify.Verdict.FAILED
    mode = find(checks, "Checking secrets file permissions")
    assert mode.verdict is verify.Verdict.FAILED and "mode 0644" in mode.details[0]
    # loose filtering is only a warning; all=1 makes every device strict
    host = planted_proc(tmp_path, **{"net.ipv4.conf.eth0.rp_filter": "2"})
    checks = verify.run_checks(conf, None, str(tmp_path / "pluto"), host, NETWORK)
    assert find(checks, "Checking rp_filter on eth0").verdict is verify.Verdict.WARNING
    host = planted_proc(tmp_path, **{"net.ipv4.conf.all.rp_filter": "1",
                                     "net.ipv4.conf.eth0.rp_filter": "0"})
    checks = verify.run_checks(conf, None, str(tmp_path / "pluto"), host, NETWORK)
    assert find(checks, "Checking rp_filter on eth0").verdict is verify.Verdict.FAILED


def test_verify_host_to_host_needs_no_forwarding(tmp_path):
    conf, _ = files(tmp_path, CONF.replace("\tleftsubnet=198.51.100.0/25\n", "")
                    .replace("\trightsubnet=203.0.113.0/25\n", ""))
    host = planted_proc(tmp_path, **{"net.ipv4.ip_forward": "0"})
    checks = verify.run_checks(conf, None, str(tmp_path / "pluto"), host, NETWORK)
    assert find(checks, "Checking for IP forwarding").verdict is verify.Verdict.OK


def test_verify_config_and_secrets_errors(tmp_path):
    conf, secrets = files(tmp_path, CONF.replace("auto=route", "auto=rout"))
    Path(secrets).write_text('192.0.2.1 : PSK "unterminated\n')
    checks = verify.run_checks(conf, None, str(tmp_path / "pluto"), planted_proc(tmp_path), NETWORK)
    config = find(checks, "Checking the configuration")
    assert config.verdict is verify.Verdict.FAILED and f"{conf}:" in config.details[0]
    secret_check = find(checks, "Checking the secrets")
    assert secret_check.verdict is verify.Verdict.FAILED and f"{secrets}:1:" in secret_check.details[0]


def test_verify_udp_port_owner(tmp_path):
    host = planted_proc(tmp_path)
    row = "   0: 00000000:01F4 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 4242 2\n"
    with open(Path(host.proc) / "net" / "udp", "a") as handle:
        handle.write(row)
    assert verify.udp_port_inodes(host, 500) == [4242]
    pid_dir = Path(host.proc) / "4321"
    (pid_dir / "fd").mkdir(parents=True)
    os.symlink("socket:[4242]", pid_dir / "fd" / "7")
    (pid_dir / "comm").write_text("charon\n")
    context = verify.Context(host, check_files(files(tmp_path)[0]), str(tmp_path / "pluto"))
    check = verify.check_udp_port(context, 500, "IKE")
    assert check.verdict is verify.Verdict.FAILED and "charon (pid 4321)" in check.details[0]
    context.daemon_pid = 4321
    assert verify.check_udp_port(context, 500, "IKE").verdict is verify.Verdict.OK
    assert verify.check_udp_port(context, 4500, "NAT-T").details == ("free",)


def test_verify_exit_status(tmp_path, capsys):
    conf, _ = files(tmp_path)
    assert verify.main(["--config", conf, "--ctlbase", str(tmp_path / "pluto")]) == 1  # no daemon
    out = capsys.readouterr().out
    assert out.startswith("Checking your system to see if IPsec got installed and started correctly:")
    assert "Checking that pluto is running" in out and "[FAILED]" in out
    assert verify.main(["--bogus"]) == 2


def test_version_tuple():
    assert verify.version_tuple("26.10.0rc1") == (26, 10, 0)
    assert verify.version_tuple("47") < verify.version_tuple("48.0.0")


# --------------------------------------------------------------------------- ipsec barf censoring


def rsa_secrets(key: rsa.RSAPrivateKey) -> str:
    numbers = key.private_numbers()
    public = numbers.public_numbers

    def hx(value: int) -> str:  # whole bytes, as ipsec rsasigkey writes them
        return "0x" + value.to_bytes((value.bit_length() + 7) // 8, "big").hex()

    return (f": RSA {{\n\tModulus: {hx(public.n)}\n\tPublicExponent: {hx(public.e)}\n"
            f"\tPrivateExponent: {hx(numbers.d)}\n\tPrime1: {hx(numbers.p)}\n\tPrime2: {hx(numbers.q)}\n"
            f"\tExponent1: {hx(numbers.dmp1)}\n\tExponent2: {hx(numbers.dmq1)}\n"
            f"\tCoefficient: {hx(numbers.iqmp)}\n\t}}\n")


def test_scrubber_censors_every_form_of_planted_secrets(tmp_path):
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    conf, secrets = files(tmp_path)
    Path(secrets).write_text(f'192.0.2.1 192.0.2.2 : PSK "{PSK}"\n' + rsa_secrets(key))
    os.chmod(secrets, 0o600)
    checked = check_files(conf)
    assert not checked.errors
    scrubber = barf.Scrubber.from_files(checked)
    numbers = key.private_numbers()
    d_bytes = numbers.d.to_bytes((numbers.d.bit_length() + 7) // 8, "big")
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    leaks = [PSK, PSK.encode().hex(), base64.b64encode(PSK.encode()).decode(),
             format(numbers.d, "x"), format(numbers.d, "X"), base64.b64encode(d_bytes).decode(),
             format(numbers.p, "x"), str(numbers.q), pem]
    text = "\n".join(f"log line {i}: {leak}" for i, leak in enumerate(leaks)) + "\n" + Path(secrets).read_text()
    clean = scrubber.scrub(text)
    for leak in leaks:
        assert leak not in clean
        for line in leak.splitlines()[1:-2]:  # every full line of the PEM body
            assert line not in clean
    assert format(numbers.p, "x") not in clean.lower()
    assert "PrivateExponent: [sensitive]" in clean
    assert format(numbers.public_numbers.n, "x") in clean  # the modulus is public


def test_barf_report_has_sections_and_no_planted_secret(tmp_path):
    conf, secrets = files(tmp_path, CONF.replace(
        "conn spare", "conn man\n\tleft=192.0.2.1\n\tright=192.0.2.5\n\tauto=manual\n\tspi=0x300\n"
        "\tesp=aes128-sha1\n\tespenckey=0x0f1e2d3c4b5a69788796a5b4c3d2e1f0\n"
        "\tespauthkey=0x1f2e3d4c5b6a79889706a5b4c3d2e1f0a1b2c3d4\n\nconn spare"))
    log = tmp_path / "pluto.log"
    log.write_text(f"updown said {PSK}\nkey 0f1e2d3c4b5a69788796a5b4c3d2e1f0\nlast line\n")
    text = barf.barf(conf, None, str(tmp_path / "pluto"), str(log), 50, planted_proc(tmp_path))
    for section in ("version", "verify", "checkconfig", "status", "eroute", "look", "ip-route",
                    "ip-rule", "ip-route-220", "nftables", "log"):
        assert f"+ _________________________ {section}\n" in text, section
    assert PSK not in text and "0f1e2d3c4b5a69788796a5b4c3d2e1f0" not in text
    assert "1f2e3d4c5b6a79889706a5b4c3d2e1f0a1b2c3d4" not in text
    assert "last line" in text and "Traceback" not in text


def test_barf_cli(tmp_path, capsys):
    conf, _ = files(tmp_path)
    out = tmp_path / "barf.txt"
    assert barf.main(["--config", conf, "--ctlbase", str(tmp_path / "pluto"), "--lines", "3",
                      "--output", str(out)]) == 0
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    assert PSK not in out.read_text()
    assert barf.main(["--lines", "-1"]) == 2
    assert barf.main(["--help"]) == 0
