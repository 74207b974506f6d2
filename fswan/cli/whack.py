"""``whack``: pluto's control client, over fswan's control socket.

Options follow FreeS/WAN's whack; several may be given at once and run in
pluto's order (delete, listen/unlisten, route/unroute, initiate/terminate,
rereadsecrets/cacerts/crls/all, listings, status, shutdown).
"""

from __future__ import annotations

import argparse
import shlex
import sys

from fswan import __version__
from fswan.cli.client import (
    ControlUnavailable,
    echo_lines,
    flush_out,
    json_lines,
    send_request,
)
from fswan.whackproto import DEBUG_CATEGORIES, DEFAULT_CTLBASE, RC, Request

HELP = f"""\
Usage: whack [--ctlbase PATH] [--optionsfrom FILE] COMMAND...

status:     whack --status [--json]
listings:   whack (--trafficstatus | --globalstatus) [--json]
            whack (--listpubkeys | --listcerts | --listcacerts | --listcrls | --listall)
                  [--utc] [--json]
deletestate: whack --deletestate N
debug:      whack --debug-none | --debug-all | --debug-CATEGORY ...
            (categories: {" ".join(DEBUG_CATEGORIES)})
listen:     whack (--listen | --unlisten)
reread:     whack --rereadsecrets | --rereadcacerts | --rereadcrls | --rereadall
delete:     whack --name NAME --delete
initiation: whack --name NAME (--initiate [--asynchronous] | --terminate)
routing:    whack --name NAME (--route | --unroute)
shutdown:   whack --shutdown
help:       whack [-h | --help] [--version]

Connections are added from ipsec.conf with `ipsec auto --add NAME`.
--ctlbase PATH   control socket is PATH.ctl (default {DEFAULT_CTLBASE})
--json           machine-readable status or listing (one JSON document)
--utc            listing times in UTC
--initiate streams the keying progress (pluto's 1xx/004 lines) and exits 0 only
once the IPsec SA is established; --asynchronous returns at once.
Exit status: 0 on success, 1 if the daemon cannot be reached, else pluto's rc code.
"""

#: pluto's order of operations within one whack message (``--debug-*`` come first)
ORDER = ("deletestate", "delete", "listen", "unlisten", "route", "unroute", "initiate",
         "terminate", "rereadsecrets", "rereadcacerts", "rereadcrls", "rereadall", "listpubkeys",
         "listcerts", "listcacerts", "listcrls", "trafficstatus", "globalstatus", "status",
         "shutdown")
#: operations whose reply can be one JSON document
JSON_COMMANDS = ("status", "trafficstatus", "globalstatus", "listpubkeys", "listcerts",
                 "listcacerts", "listcrls")
#: what ``--listall`` lists (pluto's order; no smart cards)
LISTALL = ("listpubkeys", "listcerts", "listcacerts", "listcrls")


class WhackUsage(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse would exit 2 with its own text
        raise WhackUsage(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="whack", add_help=False)
    parser.add_argument("--ctlbase", default=DEFAULT_CTLBASE)
    parser.add_argument("--optionsfrom", action="append", default=[])
    parser.add_argument("--label")
    parser.add_argument("--name")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--asynchronous", action="store_true")
    parser.add_argument("-h", "--help", action="store_true")
    parser.add_argument("--version", action="store_true")
    parser.add_argument("--utc", action="store_true")
    parser.add_argument("--listall", action="store_true")
    for op in ORDER:
        if op == "deletestate":
            parser.add_argument("--deletestate", type=_serial, metavar="N")
        else:
            parser.add_argument(f"--{op}", action="store_true")
    for name in ("none", "all") + DEBUG_CATEGORIES:
        parser.add_argument(f"--debug-{name}", dest="debug", action="append_const", const=name)
    return parser


def _serial(text: str) -> int:
    """A state number: ``3`` or pluto's ``#3``."""
    word = text[1:] if text.startswith("#") else text
    if not word.isdigit() or int(word) <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a state number such as 3")
    return int(word)


def _expand_optionsfrom(argv: list[str]) -> list[str]:
    """``--optionsfrom FILE`` splices FILE's words into the command line."""
    result: list[str] = []
    index = 0
    while index < len(argv):
        word = argv[index]
        if word == "--optionsfrom" and index + 1 < len(argv):
            try:
                with open(argv[index + 1], encoding="utf-8") as handle:
                    result.extend(shlex.split(handle.read(), comments=True))
            except (OSError, ValueError) as error:
                raise WhackUsage(f"--optionsfrom {argv[index + 1]}: {error}") from None
            index += 2
            continue
        result.append(word)
        index += 1
    return result


def requests_from(options: argparse.Namespace) -> list[Request]:
    requests = []
    if options.debug:
        requests.append(Request("debug", None, {"debug": " ".join(options.debug)}))
    for op in ORDER:
        value = getattr(options, op)
        if op in LISTALL and options.listall:
            value = True
        if value is None or value is False:
            continue
        args: dict = {}
        if op in JSON_COMMANDS and options.json:
            args["json"] = True
        if op == "listpubkeys" and options.utc:
            args["utc"] = True
        if op == "deletestate":
            args["serial"] = value
        if op == "initiate" and options.asynchronous:
            args["asynchronous"] = True
        needs_name = op in ("delete", "route", "unroute", "initiate", "terminate")
        if needs_name and not options.name:
            raise WhackUsage(f"--{op} requires --name")
        requests.append(Request(op, options.name if needs_name else None, args))
    return requests


def run(requests: list[Request], ctlbase: str, as_json: bool = False,
        hide: frozenset[int] = frozenset()) -> int:
    status = 0
    for request in requests:
        on_line = (json_lines() if as_json and request.command in JSON_COMMANDS
                   else echo_lines(hide=hide))
        last: list[tuple[int | None, str]] = [(None, "")]

        def record(rc: int | None, text: str, show=on_line) -> None:
            last[0] = (rc, text)
            show(rc, text)

        try:
            result = send_request(ctlbase, request, record, flush=flush_out())
        except ControlUnavailable as error:
            sys.stderr.write(f"whack: {error}\n")
            return RC.WHACK_PROBLEM
        if result == 0 and _keying_unfinished(request, *last[0]):
            sys.stderr.write("whack: the daemon stopped answering before keying finished\n")
            result = RC.INTERNALERR
        status = result or status
    return status


def _keying_unfinished(request: Request, rc: int | None, text: str) -> bool:
    """A synchronous --initiate that succeeds ends with pluto's ``004 ... IPsec SA
    established`` (IKEv2: ``004 ... Child SA established``); a stream that stops anywhere
    else means pluto went away."""
    if request.command != "initiate" or request.args.get("asynchronous"):
        return False
    return not (rc == RC.SUCCESS and ("IPsec SA established" in text
                                      or "Child SA established" in text))


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        options = build_parser().parse_args(_expand_optionsfrom(argv))
        if options.help or not argv:
            sys.stdout.write(HELP)
            return 0
        if options.version:
            sys.stdout.write(f"fswan whack {__version__}\n")
            return 0
        requests = requests_from(options)
        if not requests:
            raise WhackUsage("no operation given (try --help)")
    except WhackUsage as error:
        sys.stderr.write(f"whack: {error}\n")
        return RC.WHACK_PROBLEM
    return run(requests, options.ctlbase, options.json)


if __name__ == "__main__":
    sys.exit(main())
