"""The whack control socket: ``CTLBASE.ctl``, a UNIX stream socket, root only.

One request line per connection (see ``fswan.whackproto``); the reply is
pluto's ``NNN text`` lines, then the daemon closes the connection.  The
protocol only decodes and dispatches: what a command does lives in ``Pluto``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from twisted.internet import defer
from twisted.internet.interfaces import IAddress, IListeningPort
from twisted.internet.protocol import Factory
from twisted.logger import Logger
from twisted.protocols.basic import LineOnlyReceiver
from twisted.python.failure import Failure

from fswan.daemon.pluto import Pluto
from fswan.whackproto import (
    MAX_REQUEST,
    RC,
    BadRequest,
    Request,
    decode_request,
    format_line,
    format_lines,
)

if TYPE_CHECKING:
    from fswan.daemon.service import ControlReactor

log = Logger(namespace="pluto")


class ControlProtocol(LineOnlyReceiver):
    """Serves one whack request."""

    delimiter = b"\n"
    MAX_LENGTH = MAX_REQUEST

    def __init__(self, pluto: Pluto, on_shutdown: Callable[[], None],
                 factory: ControlFactory | None = None) -> None:
        self.pluto = pluto
        self.on_shutdown = on_shutdown
        self.factory = factory
        self.busy = False
        self.shutdown_after_reply = False

    # Reply protocol
    def line(self, rc: int, text: str) -> None:
        if self.transport is not None:
            self.transport.write(format_line(rc, text))

    def line_batch(self, rc: int, texts: list[str]) -> None:
        """Many lines in one write (``logging.BatchReply``)."""
        if self.transport is not None and texts:
            self.transport.write(format_lines(rc, texts))

    def _close(self, result: object = None) -> None:
        if self.transport is not None:
            self.transport.loseConnection()

    def lineReceived(self, line: bytes) -> None:
        if self.busy:
            return
        self.busy = True
        try:
            request = decode_request(line)
        except BadRequest as error:
            self.line(RC.BADWHACKMESSAGE, f"bad request: {error}")
            self._close()
            return
        log = self.pluto.log
        if log.debugging("control"):  # the request's words: commands carry no secrets
            words = " ".join(f"{k}={v}" for k, v in sorted(request.args.items()))
            log.debug_line("control", f"whack request: {request.command}"
                           + (f' "{request.name}"' if request.name else "")
                           + (f" {words}" if words else ""))
        result = defer.maybeDeferred(self.dispatch, request)
        result.addErrback(self._internal_error, request)
        result.addBoth(self._close)

    def connectionLost(self, reason: Failure | None = None) -> None:
        # The reply is flushed once the connection is closed: only then stop.
        if self.pluto.ike is not None:
            self.pluto.ike.detach(self)
        if self.shutdown_after_reply:
            self.on_shutdown()

    def lineLengthExceeded(self, line: bytes) -> None:
        self.line(RC.BADWHACKMESSAGE, f"bad request: longer than {MAX_REQUEST} bytes")
        self._close()

    def _internal_error(self, failure: Failure, request: Request) -> None:
        log.failure("internal error serving whack {command}", failure, command=request.command)
        self.line(RC.INTERNALERR, f"internal error serving {request.command}: {failure.getErrorMessage()}")

    def dispatch(self, request: Request) -> defer.Deferred[bool] | None:
        """Run the verb; a Deferred keeps the connection open until it fires."""
        pluto, args = self.pluto, request.args
        command = request.command
        name = request.name or ""  # decode_request made sure the commands needing one have it
        if command == "initiate":
            return pluto.initiate(name, bool(args.get("asynchronous")), self)
        if command == "route":
            return pluto.route(name, self)
        if command == "unroute":
            return pluto.unroute(name, self)
        if command == "manual":
            return pluto.manual_command(name, bool(args.get("up")), args.get("config"), self)
        if command == "rereadcrls":
            return pluto.reread_crls(self)
        if command == "rereadall":
            return pluto.reread_all(self)
        if command == "status":
            pluto.status(bool(args.get("json")), self)
        elif command == "add":
            return pluto.add(name, args.get("config"), self)
        elif command == "replace":
            return pluto.replace(name, args.get("config"), self)
        elif command == "delete":
            pluto.delete(name, self)
        elif command == "rereadsecrets":
            pluto.reread_secrets(args.get("secrets"), self)
        elif command == "rereadgroups":
            pluto.reread_groups(self)
        elif command in ("listen", "ready"):
            pluto.listen(self)
        elif command == "unlisten":
            pluto.unlisten(self)
        elif command == "shutdown":
            pluto.log.log("shutting down", reply=self)
            self.shutdown_after_reply = True
        elif command == "terminate":
            pluto.terminate(name, self)
        elif command == "eroute":
            pluto.eroute(self)
        elif command == "look":
            pluto.look(self)
        elif command == "trafficstatus":
            pluto.traffic_status(bool(args.get("json")), self)
        elif command == "globalstatus":
            pluto.global_status(bool(args.get("json")), self)
        elif command == "listpubkeys":
            pluto.list_pubkeys(bool(args.get("json")), bool(args.get("utc")), self)
        elif command in ("listcerts", "listcacerts", "listcrls"):
            pluto.list_certificates(command, bool(args.get("json")), self)
        elif command == "rereadcacerts":
            pluto.reread_cacerts(self)
        elif command == "deletestate":
            serial = args.get("serial")
            if not isinstance(serial, int) or isinstance(serial, bool) or serial <= 0:
                self.line(RC.BADWHACKMESSAGE, "bad request: deletestate needs a state number "
                          "(serial) above 0")
                return None
            pluto.delete_state(serial, self)
        elif command == "debug":
            spec = args.get("debug")
            if not isinstance(spec, str):
                self.line(RC.BADWHACKMESSAGE, "bad request: debug needs the categories (debug)")
                return None
            pluto.set_debug(spec, self)
        else:
            raise AssertionError(f"unhandled command {command}")
        return None


class ControlFactory(Factory):
    """Makes one ``ControlProtocol`` per whack connection."""

    noisy = False

    def __init__(self, pluto: Pluto, on_shutdown: Callable[[], None]) -> None:
        self.pluto = pluto
        self.on_shutdown = on_shutdown

    def buildProtocol(self, addr: IAddress | None) -> ControlProtocol:
        return ControlProtocol(self.pluto, self.on_shutdown, self)


def listen_control(reactor: ControlReactor, path: str, factory: ControlFactory) -> IListeningPort:
    """Bind the control socket with mode 0600 from the start (umask), so no one
    else can connect even for an instant; a stale socket file is replaced."""
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, mode=0o755, exist_ok=True)
    old_umask = os.umask(0o177)
    try:
        return reactor.listenUNIX(path, factory, mode=0o600, wantPID=True)
    finally:
        os.umask(old_umask)
