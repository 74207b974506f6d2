"""IKEv2 SAs as states of the shared table, and their message windows (RFC 7296 2.1-2.3).

An IKE SA is a :class:`IkeSa` -- a ``Phase1State`` of the engine's one
``StateTable``, its SPIs in the cookie fields -- so the table's indexes,
timers, status, uniqueids and the shell's events serve both versions; a
Child SA is a :class:`ChildSa` (a ``Phase2State``: its ESP fields are what
``lifecycle.ipsec_established`` hands the data plane).

Message IDs, window of one each way:

* our requests: ``next_request`` is the ID of the next one; at most one is
  outstanding (``outstanding``), later ones wait in ``queue`` and go when its
  response arrives.  The state that waits for the answer (the IKE SA itself,
  or a Child SA being negotiated) retransmits it from ``last_sent``;
* the peer's requests: ``peer_next`` is the ID we expect; the response to the
  one before it is kept (``last_response``) and sent again for a duplicate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from fswan.ike.state import Phase1State, Phase2State
from fswan.ikev2.constants import Flags
from fswan.ikev2.crypto import IkeSaKeys, IkeSuite, protect, unprotect
from fswan.ikev2.message import Header, Message
from fswan.ikev2.payloads import Payload

__all__ = ["ChildSa", "IkeSa", "RequestBuilder"]

#: builds a request's payloads for the message ID it gets when its turn comes
RequestBuilder = Callable[[int], tuple[int, list[Payload]]]


@dataclass(eq=False)
class IkeSa(Phase1State):
    """An IKEv2 IKE SA (``icookie``/``rcookie`` are SPIi/SPIr)."""

    suite: IkeSuite | None = None
    sk: IkeSaKeys | None = field(default=None, repr=False)
    #: the IKE_SA_INIT request and response as on the wire (what AUTH signs)
    init_request: bytes = field(default=b"", repr=False)
    init_response: bytes = field(default=b"", repr=False)
    #: the peer's SIGNATURE_HASH_ALGORITHMS (RFC 7427): empty when it sent none
    peer_hashes: frozenset[int] = frozenset()
    #: the COOKIE notification the responder asked us to return
    cookie: bytes = field(default=b"", repr=False)
    #: our requests: next ID, the one outstanding and who waits for it, those queued
    next_request: int = 0
    outstanding: int | None = None
    outstanding_owner: int = 0
    #: the exchange type of the outstanding request (its answer must be of the same)
    outstanding_exchange: int = 0
    queue: list[tuple[int, RequestBuilder]] = field(default_factory=list, repr=False)
    #: the peer's requests: the ID expected next, our last response (for duplicates)
    peer_next: int = 0
    last_response: bytes | None = field(default=None, repr=False)
    #: the first Child SA negotiated inside IKE_AUTH (initiator: what we offered)
    first_child: Any = field(default=None, repr=False)
    #: the IKE SA that this one replaced by a rekey (CREATE_CHILD_SA), if any
    rekey_of: int | None = None
    #: an IKE SA rekey we answered moved our children to the new SA: this one only waits
    #: for the peer's Delete
    superseded: bool = False
    #: RFC 7383: our messages that went in fragments (whole message -> its SKF pieces) and
    #: the peer's fragments being put together, by (message ID, is a response)
    v2_pieces: dict[bytes, list[bytes]] = field(default_factory=dict, repr=False)
    reassembly: dict[tuple[int, bool], dict[int, Any]] = field(default_factory=dict, repr=False)

    @property
    def original_initiator(self) -> bool:
        """The I flag: the IKE SA's initiator (a rekey makes the rekey's initiator it)."""
        return self.initiator

    def header(self, exchange: int, message_id: int, response: bool) -> Header:
        flags = Flags.INITIATOR if self.original_initiator else Flags.NONE
        if response:
            flags |= Flags.RESPONSE
        return Header(self.icookie, self.rcookie, exchange, flags, message_id)

    def seal(self, exchange: int, message_id: int, response: bool, inner: list[Payload],
             iv: bytes) -> bytes:
        """A protected message of ours (SK with our direction's keys)."""
        assert self.suite is not None and self.sk is not None
        return protect(self.suite, self.sk.sender(self.original_initiator),
                       self.header(exchange, message_id, response), inner, iv)

    def open(self, data: bytes) -> Message:
        """The peer's protected message, decrypted (IntegrityError / MalformedMessage)."""
        assert self.suite is not None and self.sk is not None
        return unprotect(self.suite, self.sk.sender(not self.original_initiator), data)


@dataclass(eq=False)
class ChildSa(Phase2State):
    """An IKEv2 Child SA (an ESP pair), or our CREATE_CHILD_SA request for one."""

    #: what we offered in our CREATE_CHILD_SA request (``children.ChildOffer``)
    offered_ts: Any = field(default=None, repr=False)

