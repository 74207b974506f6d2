"""``ipsec verify``: FreeS/WAN's checks of a host, for this design.

FreeS/WAN's verify asked whether KLIPS was in the kernel, pluto was running and
forwarding was on, one line each ending in ``[OK]``, ``[FAILED]`` or
``[WARNING]``.  fswan's kernel part is a TUN device and its firewall nftables,
so the checks are: Python and the dependencies, ``/dev/net/tun``,
``ip_forward``, ``rp_filter`` on the gateway interfaces, UDP 500/4500 free or
held by our daemon, ``nft`` usable, the daemon answering, ipsec.conf and
ipsec.secrets loading, and the secrets file's mode.  Exit status 1 when any
check failed (a warning does not fail).

Every check is a function of a :class:`Host` (where ``/proc`` and the TUN device
are) so tests can point it at a planted tree; nothing here changes the host.
"""

from __future__ import annotations

import argparse
import configparser
import errno
import importlib.metadata
import os
import platform
import re
import shutil
import socket
import struct
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from fswan import __version__
from fswan.cli.ipsec import DEFAULT_CONFIG, CheckedFiles, check_files
from fswan.cli.setup import counts, status_document
from fswan.config.model import Auto, Config
from fswan.config.orient import HostNetwork, ipsec_interfaces
from fswan.config.secrets import permission_warning
from fswan.whackproto import CTL_SUFFIX, DEFAULT_CTLBASE

#: the Python fswan is written for (setup.cfg ``python_requires``)
PYTHON_MINIMUM = (3, 11)
#: install_requires, when neither setup.cfg nor the installed metadata says
FALLBACK_REQUIREMENTS = ("twisted>=23.10", "cryptography>=47", "pyroute2>=0.7",
                         "zope.interface>=6", "dnspython>=2.4")
SETUP_CFG = Path(__file__).resolve().parents[2] / "setup.cfg"
WIDTH = 64


class Verdict(Enum):
    OK = "OK"
    WARNING = "WARNING"
    FAILED = "FAILED"
    #: not applicable here (FreeS/WAN printed ``[N/A]``)
    NA = "N/A"


@dataclass(frozen=True)
class Check:
    """One line of the report, with the reasons beneath it."""

    text: str
    verdict: Verdict
    details: tuple[str, ...] = ()

    def lines(self) -> list[str]:
        return [f"{self.text:<{WIDTH}} [{self.verdict.value}]"] + [f"  {d}" for d in self.details]


@dataclass(frozen=True)
class Host:
    """Where the checks look: the real host unless a test says otherwise."""

    proc: str = "/proc"
    tun: str = "/dev/net/tun"
    ikeport: int = 500
    nattport: int = 4500

    def sysctl(self, name: str) -> str | None:
        """``net.ipv4.ip_forward`` -> its value as text, None if there is no such knob."""
        try:
            with open(os.path.join(self.proc, "sys", *name.split(".")), encoding="ascii") as handle:
                return handle.read().strip()
        except OSError:
            return None


@dataclass
class Context:
    """What the checks share: the files as loaded and the daemon's answer."""

    host: Host
    files: CheckedFiles
    ctlbase: str
    status: dict | None = None
    daemon_pid: int | None = None
    network: HostNetwork | None = None
    problems: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- versions


def requirements() -> list[str]:
    """``install_requires`` of setup.cfg (the checkout), else of the installed package."""
    parser = configparser.ConfigParser()
    try:
        parser.read(SETUP_CFG, encoding="utf-8")
        text = parser.get("options", "install_requires")
        return [line.strip() for line in text.splitlines() if line.strip()]
    except (configparser.Error, OSError):
        pass
    try:
        found = importlib.metadata.requires("fswan") or []
        return [r for r in found if "extra ==" not in r] or list(FALLBACK_REQUIREMENTS)
    except importlib.metadata.PackageNotFoundError:
        return list(FALLBACK_REQUIREMENTS)


def version_tuple(text: str) -> tuple[int, ...]:
    """``26.10.0rc1`` -> (26, 10, 0): enough to compare against a ``>=`` minimum."""
    numbers = []
    for part in text.split("."):
        match = re.match(r"\d+", part)
        if match is None:
            break
        numbers.append(int(match.group()))
    return tuple(numbers)


def check_python() -> Check:
    have = sys.version_info[:3]
    text = f"Checking for Python {'.'.join(map(str, PYTHON_MINIMUM))} or later ({platform.python_version()})"
    if have[:2] >= PYTHON_MINIMUM:
        return Check(text, Verdict.OK)
    return Check(text, Verdict.FAILED, ("fswan needs Python 3.11 or later",))


def check_requirement(requirement: str) -> Check:
    name, _, minimum = requirement.partition(">=")
    name = name.strip()
    try:
        have = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return Check(f"Checking for {name} >= {minimum}", Verdict.FAILED,
                     (f"{name} is not installed (pip install '{requirement}')",))
    text = f"Checking for {name} >= {minimum} ({have})"
    if minimum and version_tuple(have) < version_tuple(minimum):
        return Check(text, Verdict.FAILED, (f"upgrade: pip install '{requirement}'",))
    return Check(text, Verdict.OK)


# --------------------------------------------------------------------------- kernel


def check_tun(host: Host) -> Check:
    text = f"Checking for TUN support ({host.tun})"
    try:
        fd = os.open(host.tun, os.O_RDWR)
    except FileNotFoundError:
        return Check(text, Verdict.FAILED, ("no TUN device: the data plane (ipsec0) needs it; "
                                            "modprobe tun",))
    except OSError as error:
        if error.errno in (errno.EACCES, errno.EPERM):
            return Check(text, Verdict.WARNING, (f"cannot open it as this user ({error.strerror}); "
                                                 "the daemon runs as root",))
        return Check(text, Verdict.FAILED, (f"cannot open it: {error.strerror}",))
    os.close(fd)
    return Check(text, Verdict.OK)


def _needs_forwarding(config: Config | None) -> tuple[bool, bool]:
    """(IPv4, IPv6) forwarding needed: some loaded conn protects a subnet (a
    host-to-host conn only carries this host's own traffic)."""
    if config is None:
        return True, False
    v4 = v6 = False
    for conn in config.conns.values():
        if conn.auto not in (Auto.ADD, Auto.ROUTE, Auto.START, Auto.MANUAL):
            continue
        for end in (conn.left, conn.right):
            if end.subnet is not None:
                if end.subnet.version == 4:
                    v4 = True
                else:
                    v6 = True
            elif end.virtual is not None:
                v4 = True
    return v4, v6


def check_forwarding(context: Context) -> list[Check]:
    checks = []
    v4, v6 = _needs_forwarding(context.files.config)
    for needed, knob in ((v4, "net.ipv4.ip_forward"), (v6, "net.ipv6.conf.all.forwarding")):
        value = context.host.sysctl(knob)
        text = f"Checking for IP forwarding ({knob}={value if value is not None else '?'})"
        if value == "1":
            checks.append(Check(text, Verdict.OK))
        elif not needed:
            if knob.startswith("net.ipv4"):
                checks.append(Check(text, Verdict.OK, ("not needed: no conn protects a subnet",)))
        elif value is None:
            checks.append(Check(text, Verdict.WARNING, ("cannot read it",)))
        else:
            checks.append(Check(text, Verdict.FAILED, (
                "conns protect subnets, so this gateway must forward: "
                f"sysctl -w {knob}=1 (and in /etc/sysctl.d to keep it)",)))
    return checks


def gateway_devices(context: Context) -> list[str]:
    """The physical devices of ``interfaces=`` (``%defaultroute``: the default route's)."""
    config = context.files.config
    if config is None or context.network is None:
        return []
    found, _ = ipsec_interfaces(config.setup, context.network)
    return sorted({i.physical for i in found})


def check_rp_filter(context: Context) -> list[Check]:
    """Strict reverse-path filtering (1) drops what arrives from a peer's client where
    the kernel would route the answer elsewhere; FreeS/WAN's setup wrote
    ``rp_filter=`` of config setup (default 0) to the interfaces it used."""
    config = context.files.config
    wanted = config.setup.rp_filter if config is not None else "0"
    devices = gateway_devices(context)
    if not devices:
        return [Check("Checking rp_filter on the gateway interfaces", Verdict.NA,
                      ("no gateway interface found (interfaces=, default route)",))]
    if wanted == "%unchanged":
        return [Check("Checking rp_filter on the gateway interfaces", Verdict.OK,
                      ("config setup rp_filter=%unchanged: left as it is",))]
    everything = context.host.sysctl("net.ipv4.conf.all.rp_filter") or "0"
    checks = []
    for device in devices:
        own = context.host.sysctl(f"net.ipv4.conf.{device}.rp_filter")
        if own is None:
            checks.append(Check(f"Checking rp_filter on {device}", Verdict.WARNING,
                                (f"cannot read net.ipv4.conf.{device}.rp_filter",)))
            continue
        effective = max(int(own or 0), int(everything or 0))
        text = f"Checking rp_filter on {device} ({effective}: {_rp_words(effective)})"
        if str(effective) == wanted or effective == 0:
            checks.append(Check(text, Verdict.OK))
        elif effective == 1:
            checks.append(Check(text, Verdict.FAILED, (
                f"strict reverse-path filtering (all={everything}, {device}={own}) drops "
                "decrypted traffic routed asymmetrically; config setup rp_filter="
                f"{wanted} asks for {wanted}: sysctl -w net.ipv4.conf.all.rp_filter={wanted} "
                f"net.ipv4.conf.{device}.rp_filter={wanted}",)))
        else:
            checks.append(Check(text, Verdict.WARNING,
                                (f"config setup rp_filter={wanted}; this is {effective}",)))
    return checks


def _rp_words(value: int) -> str:
    return {0: "off", 1: "strict", 2: "loose"}.get(value, "unknown")


# --------------------------------------------------------------------------- sockets


def udp_port_inodes(host: Host, port: int) -> list[int]:
    """Socket inodes bound to local UDP ``port`` (``/proc/net/udp`` and ``udp6``)."""
    inodes = []
    for table in ("udp", "udp6"):
        try:
            with open(os.path.join(host.proc, "net", table), encoding="ascii") as handle:
                rows = handle.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            words = row.split()
            if len(words) < 10:
                continue
            local = words[1]
            if int(local.rpartition(":")[2], 16) == port:
                inodes.append(int(words[9]))
    return inodes


def socket_owners(host: Host, inodes: list[int]) -> dict[int, str]:
    """pid -> command name of the processes holding these socket inodes."""
    wanted = {f"socket:[{inode}]" for inode in inodes}
    owners: dict[int, str] = {}
    try:
        pids = [int(name) for name in os.listdir(host.proc) if name.isdigit()]
    except OSError:
        return owners
    for pid in pids:
        fd_dir = os.path.join(host.proc, str(pid), "fd")
        try:
            links = [os.readlink(os.path.join(fd_dir, fd)) for fd in os.listdir(fd_dir)]
        except OSError:
            continue
        if wanted.intersection(links):
            try:
                with open(os.path.join(host.proc, str(pid), "comm"), encoding="utf-8") as handle:
                    owners[pid] = handle.read().strip()
            except OSError:
                owners[pid] = "?"
    return owners


def check_udp_port(context: Context, port: int, what: str) -> Check:
    text = f"Checking that UDP {port} ({what}) is free or fswan's"
    inodes = udp_port_inodes(context.host, port)
    if not inodes:
        return Check(text, Verdict.OK, ("free",))
    owners = socket_owners(context.host, inodes)
    if context.daemon_pid is not None and context.daemon_pid in owners:
        others = {pid: name for pid, name in owners.items() if pid != context.daemon_pid}
        if not others:
            return Check(text, Verdict.OK, (f"fswan (pid {context.daemon_pid}) listens",))
        owners = others
    if not owners:
        return Check(text, Verdict.WARNING, ("in use by a process this user cannot see "
                                             "(ss -ulpn shows it as root)",))
    named = ", ".join(f"{name} (pid {pid})" for pid, name in sorted(owners.items()))
    return Check(text, Verdict.FAILED, (f"in use by {named}: stop it, or give fswan other "
                                        "ports (--ikeport/--nattport)",))


def check_nftables(context: Context) -> Check:
    config = context.files.config
    needed = config is not None and any(
        end.firewall or "firewall" in (end.updown or "")
        for conn in config.conns.values() for end in (conn.left, conn.right))
    nft = shutil.which("nft")
    problem: str | None = None
    if nft is None:
        problem = "nft is not installed (apt install nftables)"
    else:
        try:
            result = subprocess.run([nft, "list", "tables"], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired) as error:
            problem = f"nft list tables: {error}"
        else:
            if result.returncode != 0:
                problem = f"nft list tables: {result.stderr.strip() or result.returncode}"
    text = "Checking for nftables (nft list tables)"
    if problem is None:
        return Check(text, Verdict.OK)
    if needed:
        return Check(text, Verdict.FAILED, (problem, "conns with leftfirewall=yes need it"))
    return Check(text, Verdict.WARNING, (problem, "only the firewall updown plugin needs it"))


def daemon_pid(ctlbase: str) -> int | None:
    """The pid of the process listening on the control socket (``SO_PEERCRED``), or None."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(5)
    try:
        sock.connect(ctlbase + CTL_SUFFIX)
        raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except OSError:
        return None
    finally:
        sock.close()
    pid, _, _ = struct.unpack("3i", raw)
    return pid or None


def check_daemon(context: Context) -> Check:
    ctl = context.ctlbase + CTL_SUFFIX
    if context.status is None:
        return Check(f"Checking that pluto is running ({ctl})", Verdict.FAILED,
                     ("not answering: ipsec setup start (or systemctl start fswan)",))
    where = f"pid {context.daemon_pid}" if context.daemon_pid else "answering"
    return Check(f"Checking that pluto is running ({where})", Verdict.OK,
                 (counts(context.status).text(),))


# --------------------------------------------------------------------------- files


def check_config(context: Context, config_path: str) -> Check:
    text = f"Checking the configuration ({config_path})"
    if context.files.config is None:
        problems = tuple(str(e) for e in context.files.config_errors)
        return Check(text, Verdict.FAILED, problems or ("does not load",))
    warnings = tuple(str(w) for w in context.files.config.warnings)
    return Check(text, Verdict.WARNING if warnings else Verdict.OK, warnings)


def check_secrets(context: Context) -> list[Check]:
    files = context.files
    text = f"Checking the secrets ({files.secrets_path})"
    checks = []
    if files.secrets_errors:
        checks.append(Check(text, Verdict.FAILED, tuple(str(e) for e in files.secrets_errors)))
    elif files.secrets is None:
        checks.append(Check(text, Verdict.WARNING, (f"no secrets file at {files.secrets_path}",)))
    else:
        checks.append(Check(text, Verdict.OK, (f"{len(files.secrets.entries)} secrets",)))
    paths = list(files.secrets.files) if files.secrets else []
    if os.path.exists(files.secrets_path) and files.secrets_path not in paths:
        paths.insert(0, files.secrets_path)
    exposed = []
    for path in paths:
        try:
            mode = os.stat(path).st_mode
        except OSError:
            continue
        warning = permission_warning(path, mode)
        if warning:
            exposed.append(warning)
    if paths:
        checks.append(Check("Checking secrets file permissions (no group or other access)",
                            Verdict.FAILED if exposed else Verdict.OK, tuple(exposed)))
    return checks


# --------------------------------------------------------------------------- the report


def run_checks(config_path: str, secrets_path: str | None, ctlbase: str,
               host: Host | None = None, network: HostNetwork | None = None) -> list[Check]:
    host = host or Host()
    context = Context(host, check_files(config_path, secrets_path), ctlbase)
    context.status = status_document(ctlbase, timeout=5)
    context.daemon_pid = daemon_pid(ctlbase) if context.status is not None else None
    if network is None:
        try:
            from fswan.daemon.kernel import read_host_network

            network = read_host_network()
        except Exception:  # noqa: BLE001 - no netlink (a sandbox): rp_filter is then N/A
            network = None
    context.network = network
    return list(_checks(context, config_path))


def _checks(context: Context, config_path: str) -> Iterator[Check]:
    yield Check("Version check and ipsec on-path", Verdict.OK,
                (f"Linux fswan {__version__} (FreeS/WAN-compatible), {platform.platform()}",))
    yield check_python()
    for requirement in requirements():
        yield check_requirement(requirement)
    yield check_tun(context.host)
    yield from check_forwarding(context)
    yield from check_rp_filter(context)
    yield check_udp_port(context, context.host.ikeport, "IKE")
    yield check_udp_port(context, context.host.nattport, "NAT-T")
    yield check_nftables(context)
    yield check_config(context, config_path)
    yield from check_secrets(context)
    yield check_daemon(context)


USAGE = f"""\
Usage: ipsec verify [--config F] [--secrets F] [--ctlbase P] [--ikeport N] [--nattport N]

Checks the host, the configuration and the daemon, one line each with [OK],
[WARNING] or [FAILED] (the reasons indented beneath).  Exit status 1 when a
check failed, else 0.  Defaults: --config {DEFAULT_CONFIG}, --ctlbase {DEFAULT_CTLBASE}.
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        raise ValueError(message)


def build_parser(prog: str = "ipsec verify") -> argparse.ArgumentParser:
    """The options verify and barf share (what to look at); a usage error raises ValueError."""
    parser = _Parser(prog=prog, add_help=False)
    parser.add_argument("--config", default=DEFAULT_CONFIG)
    parser.add_argument("--secrets")
    parser.add_argument("--ctlbase", default=DEFAULT_CTLBASE)
    parser.add_argument("--ikeport", type=int, default=500)
    parser.add_argument("--nattport", type=int, default=4500)
    return parser


def main(argv: list[str]) -> int:
    if any(word in ("-h", "--help") for word in argv):
        sys.stdout.write(USAGE)
        return 0
    parser = build_parser()
    try:
        options = parser.parse_args(argv)
    except ValueError as error:
        sys.stderr.write(f"ipsec verify: {error}\n")
        return 2
    checks = run_checks(options.config, options.secrets, options.ctlbase,
                        Host(ikeport=options.ikeport, nattport=options.nattport))
    sys.stdout.write("Checking your system to see if IPsec got installed and started correctly:\n")
    for check in checks:
        for line in check.lines():
            sys.stdout.write(line + "\n")
    return 1 if any(c.verdict is Verdict.FAILED for c in checks) else 0
