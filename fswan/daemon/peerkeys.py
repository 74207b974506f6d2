"""Answering the engine's PeerKeyNeeded from DNS (``leftrsasigkey=%dns*``).

The engine holds the message that needs the key; this fetches the key for
that ID off the reactor thread (``DnsKeyFetcher``) and hands the result back
with ``set_peer_keys``, which resumes (or, for a failed lookup, refuses) the
held message.  ``%dnsonload`` keys are fetched when the conn is added, as
pluto did, so the first negotiation does not wait.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric import rsa
from twisted.python.failure import Failure

from fswan.config.ids import Identity
from fswan.config.orient import OrientedConnection
from fswan.daemon.dns import DnsKeyError, DnsKeyFetcher
from fswan.ike.events import PeerKeyNeeded

if TYPE_CHECKING:
    from fswan.daemon.interfaces import KeyAnswers


class PeerKeys:
    """Glue between the engine's key requests and the DNS fetcher."""

    def __init__(self, fetcher: DnsKeyFetcher, driver: KeyAnswers) -> None:
        self.fetcher = fetcher
        self.driver = driver

    def needed(self, event: PeerKeyNeeded) -> None:
        self.fetch(event.identity)

    def conn_added(self, oriented: OrientedConnection) -> None:
        """``%dnsonload``: fetch now, so the key is there when keying starts."""
        if (oriented.that.end.rsasigkey or "").strip() == "%dnsonload":
            if not oriented.that.id.is_any:
                self.fetch(oriented.that.id)

    def fetch(self, identity: Identity) -> None:
        result = self.fetcher.fetch_key(identity)
        result.addCallbacks(self._got, self._failed, callbackArgs=(identity,),
                            errbackArgs=(identity,))

    def _got(self, keys: list[rsa.RSAPublicKey], identity: Identity) -> None:
        self.driver.engine.set_peer_keys(identity, list(keys), self.driver.now())
        self.driver.pump()

    def _failed(self, failure: Failure, identity: Identity) -> None:
        # the fetcher has logged pluto's "failure to fetch key for ... from DNS: ..."
        failure.trap(DnsKeyError)
        self.driver.engine.set_peer_keys(identity, [], self.driver.now())
        self.driver.pump()
