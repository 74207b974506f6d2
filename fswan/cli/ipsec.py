"""``ipsec``: the FreeS/WAN command front end (``ipsec auto``, ``ipsec checkconfig`` ...)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fswan import __version__
from fswan.cli import whack
from fswan.whackproto import DEFAULT_CTLBASE, RC, Request

if TYPE_CHECKING:  # the parsers are imported where files are read: `ipsec auto` starts faster
    from fswan.config.errors import ConfigError
    from fswan.config.model import Config
    from fswan.config.secrets import Secrets

DEFAULT_CONFIG = "/etc/ipsec.conf"

HELP = f"""\
Usage: ipsec COMMAND [ARGS]

  ipsec auto [--config F] [--ctlbase P] [--verbose] [--asynchronous] [--showonly]
             --add | --delete | --replace | --up | --down | --route | --unroute  CONN
  ipsec auto --status [--json] | --ready | --rereadsecrets | --rereadgroups
             | --rereadcacerts | --rereadcrls | --rereadall
  ipsec auto [--utc] [--json] --listpubkeys | --listcerts | --listcacerts | --listcrls | --listall
  ipsec manual [--config F] [--ctlbase P] --up | --down  CONN   (manual keying, no IKE)
  ipsec eroute [--ctlbase P]   the eroute table (KLIPS /proc/net/ipsec_eroute layout)
  ipsec look [--ctlbase P]     eroutes, SAs and data-plane counters
  ipsec checkconfig [--config F] [--secrets F] [--json]
  ipsec setup [--config F] [--ctlbase P] [--pidfile F] [--logfile F] start | stop | restart | reload | status
  ipsec verify [--config F] [--ctlbase P]   checks of the host, the files and the daemon
  ipsec barf [--config F] [--ctlbase P] [--logfile F] [--lines N]   everything for a bug report
  ipsec whack ...            (the same as `whack ...`)
  ipsec rsasigkey [--e65537] NBITS | newhostkey --output F | showhostkey --left ...
  ipsec --version | --help       ipsec COMMAND --help: that command's usage

Defaults: --config {DEFAULT_CONFIG}, --ctlbase {DEFAULT_CTLBASE}.
"""

#: ``ipsec COMMAND --help`` (and ``-h``): each command's usage, printed with exit status 0
USAGE = {
    "auto": """\
Usage: ipsec auto [--config F] [--ctlbase P] [--verbose] [--asynchronous] [--show] [--showonly]
                  --add | --delete | --replace | --up | --down | --route | --unroute  CONN
       ipsec auto [--ctlbase P] --status [--json] | --ready | --rereadsecrets | --rereadgroups
                  | --rereadcacerts | --rereadcrls | --rereadall
       ipsec auto [--ctlbase P] [--utc] [--json]
                  --listpubkeys | --listcerts | --listcacerts | --listcrls | --listall
""",
    "manual": "Usage: ipsec manual [--config F] [--ctlbase P] [--verbose] --up | --down  CONN\n",
    "eroute": "Usage: ipsec eroute [--ctlbase P]\n",
    "look": "Usage: ipsec look [--ctlbase P]\n",
    "checkconfig": f"""\
Usage: ipsec checkconfig [--config F] [--secrets F] [--json]

Parses ipsec.conf (default {DEFAULT_CONFIG}) and ipsec.secrets (beside it) as the daemon
would and prints the effective configuration: defaults applied, secrets redacted, what
is not yet supported with file:line, conns that cannot run (and why), the host names
the daemon would resolve.  The certificate files named (leftcert=, rightcert=, cacert=,
file crluri=) must exist and parse.  Exit status 0 when the files load, 1 with
file:line errors.
""",
}
HELP_FLAGS = ("-h", "--help")

#: ipsec auto verb -> (request command, needs a conn name)
AUTO_VERBS = {
    "add": ("add", True),
    "delete": ("delete", True),
    "replace": ("replace", True),
    "up": ("initiate", True),
    "down": ("terminate", True),
    "route": ("route", True),
    "unroute": ("unroute", True),
    "status": ("status", False),
    "ready": ("ready", False),
    "rereadsecrets": ("rereadsecrets", False),
    "rereadgroups": ("rereadgroups", False),
    "rereadcacerts": ("rereadcacerts", False),
    "rereadcrls": ("rereadcrls", False),
    "rereadall": ("rereadall", False),
    "listpubkeys": ("listpubkeys", False),
    "listcerts": ("listcerts", False),
    "listcacerts": ("listcacerts", False),
    "listcrls": ("listcrls", False),
    "listall": ("listall", False),
}


@dataclass
class CheckedFiles:
    """ipsec.conf and ipsec.secrets as the daemon would load them (``ipsec checkconfig``,
    ``ipsec setup start``, ``ipsec verify`` and ``ipsec barf`` all read them this way)."""

    secrets_path: str
    config: Config | None = None
    secrets: Secrets | None = None
    config_errors: list[ConfigError] = field(default_factory=list)
    secrets_errors: list[ConfigError] = field(default_factory=list)
    #: certificate, CA and CRL files named that are missing or do not parse (file:line)
    cert_errors: list[ConfigError] = field(default_factory=list)
    #: what is worth saying but loads (no secrets file, its permissions)
    notes: list[str] = field(default_factory=list)
    #: the secrets file is readable by group or others
    secrets_exposed: bool = False

    @property
    def errors(self) -> list[ConfigError]:
        return self.config_errors + self.secrets_errors + self.cert_errors


def default_secrets_path(config_path: str) -> str:
    """ipsec.secrets beside ipsec.conf, as the daemon looks for it."""
    return os.path.join(os.path.dirname(os.path.abspath(config_path)), "ipsec.secrets")


def check_files(config_path: str, secrets_path: str | None = None) -> CheckedFiles:
    """Load both files; every problem is collected, nothing raises.  ``secrets_path``
    None: the file beside the config, whose absence is only a note."""
    from fswan.config.errors import ConfigError, ConfigErrors
    from fswan.config.ipsecconf import load_config
    from fswan.config.secrets import load_secrets, permission_warning
    from fswan.loader import FileLoader, file_mode

    loader = FileLoader()
    checked = CheckedFiles(secrets_path or default_secrets_path(config_path))
    try:
        checked.config = load_config(config_path, loader)
    except ConfigError as error:
        checked.config_errors.extend(error.errors if isinstance(error, ConfigErrors) else [error])
    mode = file_mode(checked.secrets_path)
    if mode is None:
        if secrets_path:
            checked.secrets_errors.append(ConfigError(f"cannot read {checked.secrets_path}"))
        else:
            checked.notes.append(f"no secrets file at {checked.secrets_path}")
    else:
        warning = permission_warning(checked.secrets_path, mode)
        if warning:
            checked.secrets_exposed = True
            checked.notes.append(f"warning: {warning}")
        try:
            checked.secrets = load_secrets(checked.secrets_path, loader)
        except ConfigError as error:
            checked.secrets_errors.extend(error.errors if isinstance(error, ConfigErrors) else [error])
    if checked.config is not None and _names_cert_files(checked.config):
        from fswan.config.certfiles import check_certificate_files

        report = check_certificate_files(checked.config, config_path, loader, checked.secrets,
                                         checked.secrets_path)
        checked.cert_errors.extend(report.errors)
        checked.notes.extend(f"warning: {w}" for w in report.warnings)
    return checked


def _names_cert_files(config: Config) -> bool:
    """Whether there is anything for ``config.certfiles`` to read (it imports cryptography)."""
    return bool(config.cas) or any(c.left.cert or c.right.cert for c in config.conns.values())


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        raise whack.WhackUsage(message)


def auto(argv: list[str]) -> int:
    parser = _Parser(prog="ipsec auto", add_help=False)
    parser.add_argument("--config")
    parser.add_argument("--ctlbase", default=DEFAULT_CTLBASE)
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--asynchronous", action="store_true")
    parser.add_argument("--show", action="store_true")
    parser.add_argument("--showonly", action="store_true")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--utc", action="store_true")
    parser.add_argument("--help", action="store_true")
    for verb in AUTO_VERBS:
        parser.add_argument(f"--{verb}", action="store_true")
    parser.add_argument("conn", nargs="?")
    try:
        options = parser.parse_args(argv)
        if options.help:
            sys.stdout.write(HELP)
            return 0
        verbs = [v for v in AUTO_VERBS if getattr(options, v)]
        if len(verbs) != 1:
            raise whack.WhackUsage("exactly one operation is needed (try ipsec --help)")
        command, needs_name = AUTO_VERBS[verbs[0]]
        if needs_name and not options.conn:
            raise whack.WhackUsage(f"--{verbs[0]} needs a connection name")
        if not needs_name and options.conn:
            raise whack.WhackUsage(f"--{verbs[0]} takes no connection name")
    except whack.WhackUsage as error:
        sys.stderr.write(f"ipsec auto: {error}\n")
        return RC.WHACK_PROBLEM
    args: dict = {}
    if command in ("add", "replace") and options.config:
        args["config"] = os.path.abspath(options.config)
    if command == "initiate" and options.asynchronous:
        args["asynchronous"] = True
    commands = list(whack.LISTALL) if command == "listall" else [command]
    requests = []
    for one in commands:
        extra = dict(args)
        if one in whack.JSON_COMMANDS and options.json:
            extra["json"] = True
        if one == "listpubkeys" and options.utc:
            extra["utc"] = True
        requests.append(Request(one, options.conn if needs_name else None, extra))
    if options.show or options.showonly:
        for request in requests:
            sys.stdout.write(request.encode().decode())
        if options.showonly:
            return 0
    hide = frozenset() if options.verbose else frozenset({RC.LOG})
    return whack.run(requests, options.ctlbase, options.json, hide)


def manual(argv: list[str]) -> int:
    """``ipsec manual --up|--down NAME``: SAs from the conn's spi=/esp=/keys, no IKE."""
    parser = _Parser(prog="ipsec manual", add_help=False)
    parser.add_argument("--config")
    parser.add_argument("--ctlbase", default=DEFAULT_CTLBASE)
    parser.add_argument("--up", action="store_true")
    parser.add_argument("--down", action="store_true")
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("conn", nargs="?")
    try:
        options = parser.parse_args(argv)
        if options.up == options.down or not options.conn:
            raise whack.WhackUsage("usage: ipsec manual [--config F] --up|--down CONN")
    except whack.WhackUsage as error:
        sys.stderr.write(f"ipsec manual: {error}\n")
        return RC.WHACK_PROBLEM
    args: dict = {"up": bool(options.up)}
    if options.config:
        args["config"] = os.path.abspath(options.config)
    hide = frozenset() if options.verbose else frozenset({RC.LOG})
    return whack.run([Request("manual", options.conn, args)], options.ctlbase, False, hide)


def _listing(command: str, argv: list[str]) -> int:
    """``ipsec eroute`` / ``ipsec look``: the daemon's table, one line each."""
    parser = _Parser(prog=f"ipsec {command}", add_help=False)
    parser.add_argument("--ctlbase", default=DEFAULT_CTLBASE)
    try:
        options = parser.parse_args(argv)
    except whack.WhackUsage as error:
        sys.stderr.write(f"ipsec {command}: {error}\n")
        return RC.WHACK_PROBLEM
    return whack.run([Request(command)], options.ctlbase)


def checkconfig(argv: list[str]) -> int:
    from fswan.config.render import config_to_dict, format_checkconfig

    parser = _Parser(prog="ipsec checkconfig", add_help=False)
    parser.add_argument("--config", default=DEFAULT_CONFIG)
    parser.add_argument("--secrets")
    parser.add_argument("--json", action="store_true")
    try:
        options = parser.parse_args(argv)
    except whack.WhackUsage as error:
        sys.stderr.write(f"ipsec checkconfig: {error}\n")
        return 1
    checked = check_files(options.config, options.secrets)
    errors, notes, config, secrets = checked.errors, checked.notes, checked.config, checked.secrets
    secrets_path = checked.secrets_path
    if options.json:
        document = {
            "valid": not errors,
            "errors": [
                {
                    "file": e.location.file if e.location else None,
                    "line": e.location.line if e.location else None,
                    "message": e.message,
                }
                for e in errors
            ],
            "notes": notes,
            "config": config_to_dict(config) if config is not None else None,
            "secrets": secrets.describe() if secrets is not None else None,
        }
        sys.stdout.write(json.dumps(document, indent=2, sort_keys=True) + "\n")
        return 1 if errors else 0
    for problem in errors:
        sys.stderr.write(f"{problem}\n")
    if errors:
        sys.stderr.write(f"ipsec checkconfig: {len(errors)} error(s)\n")
        return 1
    assert config is not None
    for line in format_checkconfig(config):
        sys.stdout.write(line + "\n")
    if secrets is not None:
        sys.stdout.write(f"# secrets from {secrets_path}\n")
        for line in secrets.describe():
            sys.stdout.write(f"#   {line}\n")
    for note in notes:
        sys.stdout.write(f"# {note}\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("--help", "help", "-h"):
        sys.stdout.write(HELP)
        return 0 if argv else 1
    command, rest = argv[0], argv[1:]
    if command in USAGE and any(word in HELP_FLAGS for word in rest):
        sys.stdout.write(USAGE[command])
        return 0
    if command in ("--version", "version"):
        sys.stdout.write(f"Linux fswan {__version__} (FreeS/WAN-compatible)\n")
        return 0
    if command == "auto":
        return auto(rest)
    if command == "checkconfig":
        return checkconfig(rest)
    if command == "manual":
        return manual(rest)
    if command in ("eroute", "look"):
        return _listing(command, rest)
    if command == "whack":
        return whack.main(rest)
    if command in ("setup", "verify", "barf"):
        from importlib import import_module

        return int(import_module(f"fswan.cli.{command}").main(rest))
    if command in ("rsasigkey", "newhostkey", "showhostkey"):
        from fswan.cli import keytools

        return getattr(keytools, f"{command}_main")(rest)
    sys.stderr.write(f"ipsec: unknown command {command!r} (try ipsec --help)\n")
    return 1


if __name__ == "__main__":
    sys.exit(main())
