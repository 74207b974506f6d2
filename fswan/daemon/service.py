"""The daemon as a Twisted ``MultiService``: pluto's table plus its control socket.

Later parts add the IKE ports, the TUN pump and DNS as child services; the
wiring stays here and holds no protocol logic.
"""

from __future__ import annotations

import os
import signal

from twisted.application import service
from twisted.logger import Logger

from fswan.daemon.control import ControlFactory, listen_control
from fswan.daemon.pluto import Pluto
from fswan.whackproto import CTL_SUFFIX

log = Logger(namespace="pluto")


class ControlService(service.Service):
    """Owns the listening control socket for the life of the daemon."""

    def __init__(self, path: str, pluto: Pluto, reactor=None) -> None:
        self.path = path
        self.pluto = pluto
        self.port = None
        if reactor is None:
            from twisted.internet import reactor as default_reactor

            reactor = default_reactor
        self.reactor = reactor

    def startService(self) -> None:
        super().startService()
        factory = ControlFactory(self.pluto, self._shutdown)
        self.port = listen_control(self.reactor, self.path, factory)
        log.info("whack control socket {path} (mode 0600)", path=self.path)

    def stopService(self):
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


class FswanService(service.MultiService):
    """The whole daemon."""

    def __init__(self, pluto: Pluto, ctlbase: str, ikeport: int, reactor=None, pump=None) -> None:
        super().__init__()
        self.pluto = pluto
        #: the TUN <-> ESP pump (``daemon.pump.Pump``), None without a data plane
        self.pump = pump
        self.ctlbase = ctlbase
        self.ikeport = ikeport
        ControlService(ctlbase + CTL_SUFFIX, pluto, reactor).setServiceParent(self)

    def startService(self) -> None:
        log.info("fswan starting (pluto-compatible control at {ctl})", ctl=self.ctlbase + CTL_SUFFIX)
        super().startService()
        if self.pump is not None:
            self.pump.start()
        self.pluto.start_auto()
        self._catch_hangup()

    def _catch_hangup(self) -> None:
        """SIGHUP would otherwise kill the daemon without deleting its SAs; admins send it
        to mean "reload", so it rereads ipsec.secrets (conns change with ipsec auto)."""
        from twisted.internet import reactor

        def hangup(signum, frame) -> None:
            reactor.callFromThread(self._reread_on_hangup)

        try:
            signal.signal(signal.SIGHUP, hangup)
        except ValueError:  # not the main thread (tests): nothing to catch
            pass

    def _reread_on_hangup(self) -> None:
        self.pluto.log.log("received SIGHUP: rereading secrets (whack --shutdown stops the daemon)")
        self.pluto.reread_secrets(None, None)

    def stopService(self):
        if self.pluto.ike is not None:
            for name in list(self.pluto.connections):
                self.pluto.ike.engine.remove_connection(name, self.pluto.ike.now())
            self.pluto.ike.pump()
        if self.pluto.tunnels is not None:
            # down, then SAs and eroutes out, then unroute: routes go before ipsec0 does
            for name in list(self.pluto.connections):
                self.pluto.tunnels.forget(name)
        if self.pluto.ike is not None:
            self.pluto.ike.close_ports()
        if self.pump is not None:
            self.pluto.oe.stop()
            self.pump.stop()
        return super().stopService()
