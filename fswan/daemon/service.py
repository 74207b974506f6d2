"""The daemon as a Twisted ``MultiService``.

Children, started in this order and stopped in the reverse one (the service
tree gives the shutdown order):

1. ``ControlService``: the whack socket, bound first and closed last;
2. the DNS fetcher, the packet pump (``ipsec0`` and the raw ESP sockets) and the
   IKE driver (UDP 500/4500), and the metrics endpoint when one is configured
   (``daemon.metrics.MetricsService``), as ``tap.makeService`` hands them over;
3. ``PlutoService``: ``auto=route|start|manual`` once all of that runs; at
   shutdown every conn deleted (IKE deletes sent, ``down``/``unroute`` run)
   while the sockets and ``ipsec0`` are still there.

The wiring holds no protocol logic.
"""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import Mapping, Sequence
from types import FrameType
from typing import Protocol, cast

from twisted.application import service
from twisted.internet import defer
from twisted.internet.interfaces import IListeningPort, IReactorFromThreads
from twisted.logger import Logger

from fswan.daemon.control import ControlFactory, listen_control
from fswan.daemon.pluto import Pluto
from fswan.whackproto import CTL_SUFFIX

log = Logger(namespace="pluto")


def sd_notify(state: str, environ: Mapping[str, str] | None = None) -> bool:
    """Tell the service manager about the daemon (systemd's ``Type=notify``): ``state``
    (``READY=1``, ``STOPPING=1``, ``STATUS=...``, one per line) as one datagram to the
    AF_UNIX socket named by ``$NOTIFY_SOCKET`` (a path, or ``@name`` in the abstract
    namespace), as sd_notify(3) does.  False when there is none or it cannot be reached:
    not being under systemd, or it having gone, must never stop the daemon."""
    address = (os.environ if environ is None else environ).get("NOTIFY_SOCKET", "")
    if not address or address[0] not in "/@":
        return False
    if address[0] == "@":
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        try:
            sock.connect(address)
            sock.sendall(state.encode("utf-8"))
        except OSError:
            return False
    return True


class ControlReactor(Protocol):
    """The reactor as the control socket uses it."""

    @property
    def running(self) -> bool: ...
    def stop(self) -> None: ...
    def listenUNIX(self, address: str, factory: ControlFactory, backlog: int = 50,
                   mode: int = 0o666, wantPID: bool = False) -> IListeningPort: ...


class ControlService(service.Service):
    """Owns the listening control socket for the life of the daemon."""

    def __init__(self, path: str, pluto: Pluto, reactor: ControlReactor | None = None) -> None:
        self.path = path
        self.pluto = pluto
        self.port: IListeningPort | None = None
        if reactor is None:
            from twisted.internet import reactor as default_reactor

            reactor = cast(ControlReactor, default_reactor)
        self.reactor = reactor

    def startService(self) -> None:
        super().startService()
        factory = ControlFactory(self.pluto, self._shutdown)
        self.port = listen_control(self.reactor, self.path, factory)
        log.info("whack control socket {path} (mode 0600)", path=self.path)

    def stopService(self) -> defer.Deferred[None] | None:
        super().stopService()
        port, self.port = self.port, None
        if port is None:
            return None
        result = port.stopListening()
        try:
            os.unlink(self.path)
        except OSError:
            pass
        return result

    def _shutdown(self) -> None:
        if self.reactor.running:
            self.reactor.stop()


class PlutoService(service.Service):
    """pluto's table once the sockets run: ``start_auto`` at start, every conn torn
    down at shutdown (before the services added before it stop)."""

    def __init__(self, pluto: Pluto) -> None:
        self.pluto = pluto

    def startService(self) -> None:
        super().startService()
        self.pluto.start_auto()

    def stopService(self) -> None:
        super().stopService()
        self.pluto.stop()


class FswanService(service.MultiService):
    """The whole daemon: the control socket, ``services`` (DNS, pump, IKE), pluto."""

    def __init__(
        self,
        pluto: Pluto,
        ctlbase: str,
        ikeport: int,
        reactor: ControlReactor | None = None,
        services: Sequence[service.IService] = (),
    ) -> None:
        super().__init__()
        self.pluto = pluto
        self.ctlbase = ctlbase
        self.ikeport = ikeport
        ControlService(ctlbase + CTL_SUFFIX, pluto, reactor).setServiceParent(self)
        for child in services:
            child.setServiceParent(self)
        PlutoService(pluto).setServiceParent(self)

    def startService(self) -> None:
        log.info("fswan starting (pluto-compatible control at {ctl})", ctl=self.ctlbase + CTL_SUFFIX)
        super().startService()
        self._catch_hangup()
        # the control socket answers and auto=route|start conns are acted on: ready
        # (``Type=notify``; ``ipsec setup start`` waits for the same message)
        sd_notify(f"READY=1\nSTATUS=pluto ready: {len(self.pluto.connections)} conns, "
                  f"control socket {self.ctlbase + CTL_SUFFIX}\nMAINPID={os.getpid()}")

    def stopService(self) -> defer.Deferred[None] | None:
        sd_notify("STOPPING=1\nSTATUS=pluto shutting down: deleting SAs and routes")
        return super().stopService()

    def _catch_hangup(self) -> None:
        """SIGHUP would otherwise kill the daemon without deleting its SAs; admins send it
        to mean "reload", so it rereads ipsec.secrets (conns change with ipsec auto)."""
        from twisted.internet import reactor

        threads = cast(IReactorFromThreads, reactor)

        def hangup(signum: int, frame: FrameType | None) -> None:
            threads.callFromThread(self._reread_on_hangup)

        try:
            signal.signal(signal.SIGHUP, hangup)
        except ValueError:  # not the main thread (tests): nothing to catch
            pass

    def _reread_on_hangup(self) -> None:
        self.pluto.log.log("received SIGHUP: rereading secrets (whack --shutdown stops the daemon)")
        self.pluto.reread_secrets(None, None)
