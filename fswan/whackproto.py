"""The control protocol between ``whack``/``ipsec`` and the daemon.

Request: one line of JSON, ``{"version": 1, "command": "...", ...}``, sent
over the UNIX stream socket ``CTLBASE.ctl``.  Reply: pluto's lines
``NNN text`` (``%03d`` then a space then text), then the daemon closes the
connection.  The codes are pluto's ``rc_type`` values; a client's exit status
comes from them as whack's did (see ``exit_status``).  A JSON document (for
``--json``) travels as a single ``000`` line.

Commands and their arguments:

==================  ==============================================
``status``          ``json`` (bool)
``add``             ``name``, ``config`` (path; default: the daemon's)
``replace``         ``name``, ``config``
``delete``          ``name``
``rereadsecrets``   ``secrets`` (path; default: the daemon's)
``rereadgroups``    (none) implicit conns and ipsec.d/policies again
``listen``          (none) rescan interfaces, orient conns
``unlisten``        (none)
``ready``           (none) same as listen, as ``ipsec auto --ready``
``shutdown``        (none)
``initiate``        ``name``, ``asynchronous``: streams keying progress
``terminate``       ``name``
``route``           ``name``: %trap eroute + route into ipsec0
``unroute``         ``name``
``eroute``          (none) the eroute table (``ipsec eroute``)
``look``            (none) eroutes, SAs, counters (``ipsec look``)
``manual``          ``name``, ``up`` (bool), ``config``: ``ipsec manual``
``trafficstatus``   ``json`` (bool): per IPsec SA, Libreswan's ``006`` lines
``globalstatus``    ``json`` (bool): counters, states by kind, drops
``listpubkeys``     ``utc`` (bool): the RSA public keys loaded
``listcerts``       ``json`` (bool): our end certificates (``leftcert=``)
``listcacerts``     ``json`` (bool): the trust anchors
``listcrls``        ``json`` (bool): the CRLs (``ipsec.d/crls``, ``crluri=``)
``rereadcacerts``   (none) ``ipsec.d/cacerts`` and the ``ca`` sections' ``cacert=``
``rereadcrls``      (none) ``ipsec.d/crls`` and the ``ca`` sections' ``crluri=``
``rereadall``       (none) secrets, CA certificates, CRLs, conns' certificates
``deletestate``     ``serial`` (int): delete one state ``#N``
``debug``           ``debug`` (``none``, ``all`` or categories, ``+``/space separated)
==================  ==============================================
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from typing import Any

PROTOCOL_VERSION = 1
CTL_SUFFIX = ".ctl"
DEFAULT_CTLBASE = "/run/pluto/pluto"
#: a request line longer than this is refused (a whack message is small)
MAX_REQUEST = 64 * 1024
#: pluto's debug categories, in its order (``--debug-raw`` ...), plus Openswan's natt and dpd:
#: the words of ``whack --debug-NAME``, here so that the CLIs need not import the daemon's log
DEBUG_CATEGORIES = ("raw", "crypt", "parsing", "emitting", "control", "lifecycle", "klips",
                    "dns", "oppo", "natt", "dpd")


class RC(enum.IntEnum):
    """pluto's ``enum rc_type`` (whack.h)."""

    COMMENT = 0
    WHACK_PROBLEM = 1
    LOG = 2
    LOG_SERIOUS = 3
    SUCCESS = 4
    #: Libreswan's informational codes (``--trafficstatus`` lines are ``006``)
    INFORMATIONAL = 5
    INFORMATIONAL_TRAFFIC = 6
    RETRANSMISSION = 10
    DUPNAME = 20
    UNKNOWN_NAME = 21
    ORIENT = 22
    CLASH = 23
    DEAF = 24
    ROUTE = 25
    RTBUSY = 26
    BADID = 27
    NOKEY = 28
    NOPEERIP = 29
    BADWHACKMESSAGE = 30
    NORETRANSMISSION = 31
    INTERNALERR = 32
    OPPOFAILURE = 33
    ENTERSECRET = 40
    NEW_STATE = 100
    NOTIFICATION = 200


COMMANDS = {
    "status": (),
    "add": ("name",),
    "replace": ("name",),
    "delete": ("name",),
    "rereadsecrets": (),
    "rereadgroups": (),
    "listen": (),
    "unlisten": (),
    "ready": (),
    "shutdown": (),
    "initiate": ("name",),
    "terminate": ("name",),
    "route": ("name",),
    "unroute": ("name",),
    "eroute": (),
    "look": (),
    "manual": ("name",),
    "trafficstatus": (),
    "globalstatus": (),
    "listpubkeys": (),
    "listcerts": (),
    "listcacerts": (),
    "listcrls": (),
    "rereadcacerts": (),
    "rereadcrls": (),
    "rereadall": (),
    "deletestate": (),
    "debug": (),
}

#: commands that a later part of fswan implements; the daemon answers them clearly
NOT_YET_IMPLEMENTED: frozenset[str] = frozenset()


class BadRequest(ValueError):
    """A request the daemon cannot parse; answered with RC.BADWHACKMESSAGE."""


@dataclass(frozen=True)
class Request:
    command: str
    name: str | None = None
    args: dict[str, Any] = field(default_factory=dict)

    def encode(self) -> bytes:
        body: dict[str, Any] = {"version": PROTOCOL_VERSION, "command": self.command}
        if self.name is not None:
            body["name"] = self.name
        body.update(self.args)
        return json.dumps(body, sort_keys=True).encode() + b"\n"


def decode_request(line: bytes) -> Request:
    """Parse and check one request line; raise BadRequest saying what is wrong."""
    if len(line) > MAX_REQUEST:
        raise BadRequest(f"request of {len(line)} bytes is too long")
    try:
        body = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise BadRequest("request is not a JSON object") from None
    except RecursionError:  # "[[[[...": nesting deeper than the parser's stack
        raise BadRequest("request nests too deeply") from None
    if not isinstance(body, dict):
        raise BadRequest("request is not a JSON object")
    version = body.pop("version", None)
    if version != PROTOCOL_VERSION:
        raise BadRequest(f"unsupported protocol version {version!r}; expected {PROTOCOL_VERSION}")
    command = body.pop("command", None)
    if not isinstance(command, str) or command not in COMMANDS:
        known = ", ".join(sorted(COMMANDS))
        raise BadRequest(f"unknown command {command!r}; known: {known}")
    name = body.pop("name", None)
    if "name" in COMMANDS[command]:
        if not isinstance(name, str) or not name:
            raise BadRequest(f"command {command!r} needs a connection name")
    elif name is not None and not isinstance(name, str):
        raise BadRequest("name must be a string")
    for key, value in body.items():
        if not isinstance(value, (str, bool, int)) or isinstance(value, float):
            raise BadRequest(f"argument {key!r} must be a string, number or boolean")
    return Request(command, name, body)


def format_line(rc: int, text: str) -> bytes:
    """One reply line; embedded newlines would break the framing, so they become spaces."""
    clean = text.replace("\r", " ").replace("\n", " ")
    return f"{int(rc):03d} {clean}".rstrip(" ").encode("utf-8", "replace") + b"\n"


def format_lines(rc: int, texts: list[str]) -> bytes:
    """Many reply lines of one code: the bytes of ``format_line`` for each, joined."""
    prefix = f"{int(rc):03d} "
    return "".join([
        (prefix + text.replace("\r", " ").replace("\n", " ")).rstrip(" ") + "\n" for text in texts
    ]).encode("utf-8", "replace")


def parse_line(line: str) -> tuple[int | None, str]:
    """Split ``NNN text``; lines without a code give (None, line)."""
    if len(line) >= 3 and line[:3].isdigit() and (len(line) == 3 or line[3] == " "):
        return int(line[:3]), line[4:]
    return None, line


def update_exit_status(status: int, rc: int) -> int:
    """whack's rule: comments, logs and informational lines leave the status alone,
    SUCCESS makes it 0, state changes (1xx) are progress, everything else is the
    failure code."""
    if rc in (RC.COMMENT, RC.WHACK_PROBLEM, RC.LOG, RC.LOG_SERIOUS, RC.INFORMATIONAL,
              RC.INFORMATIONAL_TRAFFIC):
        return status
    if rc == RC.SUCCESS:
        return 0
    if RC.NEW_STATE <= rc < RC.NOTIFICATION:
        return status
    return rc if rc < 256 else 255
