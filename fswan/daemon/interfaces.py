"""The daemon's internal seams: what one part of the shell needs of another.

``tap.makeService`` builds the parts in dependency order and hands each the
others through its constructor; these Protocols say what a part may use, so a
test can give it a fake and a reader can see the whole contract in one place.
(The kernel seam is the zope interfaces ``IKernel``/``IKernelStatus`` in
``fswan.ipsec.kernel``; the data plane's socket table is ``pump.PeerRouting``.)
"""

from __future__ import annotations

from collections.abc import Callable
from ipaddress import IPv4Address, IPv6Address
from typing import TYPE_CHECKING, Protocol

from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall

from fswan.config.orient import IpsecInterface
from fswan.daemon.logging import Reply
from fswan.ike.engine import IkeEngine

if TYPE_CHECKING:
    from fswan.daemon.peerkeys import PeerKeys
    from fswan.daemon.pump import UdpSocket

__all__ = ["Clock", "IkeControl", "KeyAnswers"]


class Clock(Protocol):
    """The reactor's clock and timers (``IReactorTime``)."""

    def seconds(self) -> float: ...
    def callLater(self, delay: float, callable: Callable[..., object],
                  *args: object) -> IDelayedCall: ...


class KeyAnswers(Protocol):
    """The IKE driver as ``PeerKeys`` sees it: hand the engine a key, then send what it made."""

    @property
    def engine(self) -> IkeEngine: ...
    def now(self) -> float: ...
    def pump(self) -> None: ...


class IkeControl(Protocol):
    """The IKE driver (``daemon.ikeport.IkeDriver``) as Pluto, Tunnels and Opportunism
    see it: the engine, keying started and stopped, whacks attached, outputs sent."""

    @property
    def engine(self) -> IkeEngine: ...
    @property
    def peer_keys(self) -> PeerKeys | None: ...
    def now(self) -> float: ...
    def pump(self) -> None: ...
    def open_ports(self, interfaces: list[IpsecInterface]) -> None: ...
    def close_ports(self) -> None: ...
    def initiate(self, name: str, whack: Reply | None,
                 asynchronous: bool = False) -> defer.Deferred[bool] | None: ...
    def terminate(self, name: str, whack: Reply | None) -> None: ...
    def detach(self, whack: Reply) -> None: ...
    def natt_sockets(self) -> list[UdpSocket]: ...
    def natt_socket(self, local_addr: IPv4Address | IPv6Address) -> UdpSocket | None: ...
