"""What the IKE engine asks of its shell, as declared read-only interfaces.

The engine never calls back into the daemon to *do* something (that comes out
as events); the few facts it has to *read* while handling a message or a timer
come through the small protocols below, passed to ``IkeEngine`` at construction.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["EspActivity"]


class EspActivity(Protocol):
    """The data plane's view of inbound ESP, for dead peer detection.

    RFC 3706 probes only a peer that has been silent: ESP arriving on a conn's
    SAs counts as traffic as much as IKE does.
    """

    def last_esp_arrival(self, conn_name: str) -> float | None:
        """When ESP last arrived on any of the conn's IPsec SAs (``now`` units),
        None when never."""
        ...
