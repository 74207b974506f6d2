"""``ipsec barf``: one text file an admin can send for support, with no secret in it.

FreeS/WAN's barf dumped everything about the host's IPsec in one go (versions,
``ipsec.conf`` with the secrets censored, ``/proc/net/ipsec_*``, routes,
interfaces, the log) under ``+ ___ section`` headers; "send us the output of
ipsec barf from both gateways" was the first answer on the mailing lists.

Secrets never get in on purpose: the configuration is the ``ipsec checkconfig``
rendering (``config/render.py`` redacts every secret keyword; ipsec.secrets is
described, never copied), and nothing else reads the secrets file.  Because a
log line or a user's updown script could still carry one, the whole text goes
through :class:`Scrubber` at the end, which knows every secret of ipsec.secrets
and ipsec.conf (PSKs, RSA private key fields, manual keys) in the forms they are
written in -- text, hex, base64, ``0x``/``0s``, PEM -- and censors them.
"""

from __future__ import annotations

import argparse
import base64
import importlib.metadata
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from fswan import __version__
from fswan.cli.client import ControlUnavailable
from fswan.cli.ipsec import DEFAULT_CONFIG, CheckedFiles, check_files
from fswan.cli.setup import ask
from fswan.cli.verify import Host, build_parser as verify_parser, requirements, run_checks
from fswan.config.render import SECRET_FIELDS, format_checkconfig
from fswan.whackproto import DEFAULT_CTLBASE, Request

CENSORED = "[sensitive]"
#: shorter secret strings are not censored wherever they appear (they would eat words)
MIN_NEEDLE = 4
#: FreeS/WAN's fswan-independent table for policy routing (OE groups)
GROUP_TABLE = 220
RULE = "+ _________________________"
#: ``key: value`` lines of an ``RSA { }`` block that are private
_PRIVATE_FIELDS = re.compile(
    r"(?im)^(\s*(?:PrivateExponent|Prime1|Prime2|Exponent1|Exponent2|Coefficient)\s*:\s*)\S.*$")
_PEM_PRIVATE = re.compile(
    r"-----BEGIN ([A-Z0-9 ]*PRIVATE KEY)-----.*?(-----END \1-----|\Z)", re.S)
_PSK_VALUE = re.compile(r'(?i)(\b(?:PSK|XAUTH|EAP)\s+)("[^"\n]*"|\'[^\'\n]*\'|0[xXsStT]\S+)')


# --------------------------------------------------------------------------- censoring


def _int_forms(number: int) -> list[str]:
    """How a private integer may be written: hex (bare, ``0x``, whole bytes), base64, decimal."""
    raw = number.to_bytes((number.bit_length() + 7) // 8 or 1, "big")
    hex_text = raw.hex()
    forms = [hex_text, hex_text.lstrip("0"), base64.b64encode(raw).decode().rstrip("=")]
    decimal = str(number)
    if len(decimal) >= 20:
        forms.append(decimal)
    return forms


def _bytes_forms(raw: bytes) -> list[str]:
    forms = [raw.hex(), base64.b64encode(raw).decode().rstrip("="),
             base64.urlsafe_b64encode(raw).decode().rstrip("=")]
    try:
        forms.append(raw.decode("utf-8"))
    except UnicodeDecodeError:
        pass
    return forms


def _rsa_forms(key: rsa.RSAPrivateKey) -> list[str]:
    numbers = key.private_numbers()
    forms: list[str] = []
    for value in (numbers.d, numbers.p, numbers.q, numbers.dmp1, numbers.dmq1, numbers.iqmp):
        forms += _int_forms(value)
    for fmt in (serialization.PrivateFormat.PKCS8, serialization.PrivateFormat.TraditionalOpenSSL):
        der = key.private_bytes(serialization.Encoding.DER, fmt, serialization.NoEncryption())
        forms.append(base64.b64encode(der).decode().rstrip("="))
        pem = key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption())
        # each wrapped line but the last of the base64 body (the last is short, may be public)
        body = [line for line in pem.decode().splitlines() if line and not line.startswith("-----")]
        forms += body[:-1]
    return forms


def _key_text_forms(text: str) -> list[str]:
    """A manual key as written in ipsec.conf (``0x...``, ``0s...``): also its bytes' forms."""
    forms = [text]
    body = text[2:] if text[:2].lower() in ("0x", "0s", "0t") else text
    forms.append(body)
    try:
        if text[:2].lower() == "0x":
            forms += _bytes_forms(bytes.fromhex(body.replace("_", "")))
        elif text[:2].lower() == "0s":
            forms += _bytes_forms(base64.b64decode(body + "=" * (-len(body) % 4)))
    except ValueError:
        pass
    return forms


@dataclass
class Scrubber:
    """Censors known secret values and anything shaped like a secret."""

    needles: list[str] = field(default_factory=list)

    @classmethod
    def from_files(cls, files: CheckedFiles) -> Scrubber:
        forms: list[str] = []
        if files.secrets is not None:
            for secret in files.secrets.entries:
                if isinstance(secret.value, rsa.RSAPrivateKey):
                    forms += _rsa_forms(secret.value)
                elif isinstance(secret.value, ec.EllipticCurvePrivateKey):
                    scalar = secret.value.private_numbers().private_value
                    forms += _bytes_forms(scalar.to_bytes((scalar.bit_length() + 7) // 8, "big"))
                else:
                    forms += _bytes_forms(bytes(secret.value))
        if files.config is not None:
            for conn in files.config.conns.values():
                for part in (conn, conn.left, conn.right):
                    for name in SECRET_FIELDS:
                        value = getattr(part, name, None)
                        if isinstance(value, str) and value:
                            forms += _key_text_forms(value)
        return cls.of(forms)

    @classmethod
    def of(cls, forms: Iterable[str]) -> Scrubber:
        unique = {f for f in forms if len(f) >= MIN_NEEDLE}
        return cls(sorted(unique, key=len, reverse=True))

    def scrub(self, text: str) -> str:
        text = _PEM_PRIVATE.sub(lambda m: f"-----BEGIN {m.group(1)}-----\n{CENSORED}\n"
                                          f"-----END {m.group(1)}-----", text)
        text = _PRIVATE_FIELDS.sub(lambda m: m.group(1) + CENSORED, text)
        text = _PSK_VALUE.sub(lambda m: f'{m.group(1)}"{CENSORED}"', text)
        if self.needles:
            pattern = re.compile("|".join(re.escape(n) for n in self.needles), re.IGNORECASE)
            text = pattern.sub(CENSORED, text)
        return text


# --------------------------------------------------------------------------- sections


def _run(argv: list[str], timeout: float = 15) -> str:
    """A command's output (stdout, then stderr), or why there is none."""
    if shutil.which(argv[0]) is None:
        return f"({argv[0]}: not installed)\n"
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                                stdin=subprocess.DEVNULL, errors="replace")
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"({error})\n"
    text = result.stdout + result.stderr
    if result.returncode != 0:
        text += f"(exit status {result.returncode})\n"
    return text or "(no output)\n"


def _daemon(ctlbase: str, request: Request) -> str:
    try:
        _, lines = ask(ctlbase, request, timeout=30)
    except (ControlUnavailable, OSError) as error:
        return f"({error})\n"
    return "".join(line + "\n" for line in lines)


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except OSError as error:
        return f"({path}: {error.strerror})\n"


def _tail(path: str, lines: int) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return "".join(handle.readlines()[-lines:]) or "(empty)\n"
    except OSError as error:
        return f"({path}: {error.strerror})\n"


def _versions() -> str:
    out = [f"Linux fswan {__version__} (FreeS/WAN-compatible)",
           f"Python {platform.python_version()} ({sys.executable})"]
    for requirement in requirements():
        name = re.split(r"[<>=!~; ]", requirement, maxsplit=1)[0]
        try:
            out.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            out.append(f"{name} (not installed)")
    out.append(" ".join(platform.uname()))
    return "\n".join(out) + "\n"


def _checkconfig(files: CheckedFiles) -> str:
    out = [f"{e}" for e in files.errors]
    if files.config is not None:
        out += format_checkconfig(files.config)
    if files.secrets is not None:
        out.append(f"# secrets from {files.secrets_path} (described, never copied)")
        out += [f"#   {line}" for line in files.secrets.describe()]
    out += [f"# {note}" for note in files.notes]
    return "\n".join(out) + "\n"


def _sysctls(devices: list[str]) -> str:
    out = []
    knobs = ["net/ipv4/ip_forward", "net/ipv6/conf/all/forwarding", "net/ipv4/conf/all/rp_filter"]
    knobs += [f"net/ipv4/conf/{d}/rp_filter" for d in devices]
    for knob in knobs:
        try:
            with open(f"/proc/sys/{knob}", encoding="ascii") as handle:
                value = handle.read().strip()
        except OSError:
            value = "(unreadable)"
        out.append(f"{knob.replace('/', '.')} = {value}")
    return "\n".join(out) + "\n"


def _log(logfile: str | None, lines: int) -> tuple[str, str]:
    if logfile:
        return f"tail -n {lines} {logfile}", _tail(logfile, lines)
    if shutil.which("journalctl") and os.path.isdir("/run/systemd/system"):
        argv = ["journalctl", "--no-pager", "-o", "short-iso", "-n", str(lines), "-u", "fswan.service"]
        text = _run(argv)
        if "-- No entries --" in text or not text.strip():
            argv = ["journalctl", "--no-pager", "-o", "short-iso", "-n", str(lines), "-t", "pluto"]
            text = _run(argv)
        return " ".join(argv), text
    return "(no log)", ("no --logfile given and no journald here: rerun with --logfile F, "
                        "or attach the lines of the system log from pluto\n")


def sections(config_path: str, files: CheckedFiles, ctlbase: str, logfile: str | None, lines: int,
             host: Host) -> Iterator[tuple[str, str, str]]:
    """(section name, the command it shows, its text), in FreeS/WAN barf's order."""
    yield "version", "ipsec --version", _versions()
    checks = run_checks(config_path, files.secrets_path, ctlbase, host)
    yield "verify", "ipsec verify", "".join(line + "\n" for c in checks for line in c.lines())
    yield "checkconfig", "ipsec checkconfig", _checkconfig(files)
    yield "status", "whack --status", _daemon(ctlbase, Request("status"))
    yield "eroute", "ipsec eroute", _daemon(ctlbase, Request("eroute"))
    yield "look", "ipsec look", _daemon(ctlbase, Request("look"))
    yield "ip-addr", "ip -d addr list", _run(["ip", "-d", "addr", "list"])
    yield "ip-link", "ip -s link list", _run(["ip", "-s", "link", "list"])
    yield "ip-route", "ip route list", _run(["ip", "route", "list"])
    yield "ip6-route", "ip -6 route list", _run(["ip", "-6", "route", "list"])
    yield "ip-rule", "ip rule list", _run(["ip", "rule", "list"])
    yield "ip6-rule", "ip -6 rule list", _run(["ip", "-6", "rule", "list"])
    yield (f"ip-route-{GROUP_TABLE}", f"ip route list table {GROUP_TABLE}",
           _run(["ip", "route", "list", "table", str(GROUP_TABLE)]))
    yield (f"ip6-route-{GROUP_TABLE}", f"ip -6 route list table {GROUP_TABLE}",
           _run(["ip", "-6", "route", "list", "table", str(GROUP_TABLE)]))
    devices = sorted(os.listdir("/proc/sys/net/ipv4/conf")) if os.path.isdir("/proc/sys/net/ipv4/conf") else []
    yield "sysctl", "sysctl net.ipv4.ip_forward net.ipv4.conf.*.rp_filter", _sysctls(
        [d for d in devices if d not in ("all", "default")])
    yield "nftables", "nft list table inet fswan", _run(["nft", "list", "table", "inet", "fswan"])
    command, text = _log(logfile, lines)
    yield "log", command, text


def barf(config_path: str, secrets_path: str | None, ctlbase: str, logfile: str | None,
         lines: int, host: Host | None = None) -> str:
    """The whole report, censored."""
    files = check_files(config_path, secrets_path)
    scrubber = Scrubber.from_files(files)
    out = [socket.gethostname(), time.strftime("%a %b %d %H:%M:%S UTC %Y", time.gmtime())]
    for name, command, text in sections(config_path, files, ctlbase, logfile, lines, host or Host()):
        out += [f"{RULE} {name}", "+", f"+ {command}", text.rstrip("\n")]
    out.append(f"{RULE} done")
    return scrubber.scrub("\n".join(out) + "\n")


USAGE = f"""\
Usage: ipsec barf [--config F] [--secrets F] [--ctlbase P] [--logfile F] [--lines N] [--output F]

Everything about this host's fswan in one text for a bug report: versions, ipsec verify,
the configuration (secrets censored), status, eroutes, SAs and counters, interfaces,
routes and rules (and table {GROUP_TABLE}), sysctls, the nftables table inet fswan, and the
last N lines of the log (--logfile F, else journald).  No secret is in it: every value of
ipsec.secrets and every manual key is censored wherever it appears.  --output F writes
the report to F (mode 0600) instead of standard output.
Defaults: --config {DEFAULT_CONFIG}, --ctlbase {DEFAULT_CTLBASE}, --lines 200.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = verify_parser("ipsec barf")
    parser.add_argument("--logfile")
    parser.add_argument("--lines", type=int, default=200)
    parser.add_argument("--output")
    return parser


def main(argv: list[str]) -> int:
    if any(word in ("-h", "--help") for word in argv):
        sys.stdout.write(USAGE)
        return 0
    parser = build_parser()
    try:
        options = parser.parse_args(argv)
        if options.lines < 0:
            raise ValueError("--lines must not be negative")
    except ValueError as error:
        sys.stderr.write(f"ipsec barf: {error}\n")
        return 2
    text = barf(options.config, options.secrets, options.ctlbase, options.logfile, options.lines,
                Host(ikeport=options.ikeport, nattport=options.nattport))
    if options.output is None:
        sys.stdout.write(text)
        return 0
    try:
        fd = os.open(options.output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as error:
        sys.stderr.write(f"ipsec barf: cannot write {options.output}: {error.strerror}\n")
        return 1
    sys.stderr.write(f"ipsec barf: wrote {options.output}\n")
    return 0
