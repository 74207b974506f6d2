"""Child SAs, as IKE_AUTH and CREATE_CHILD_SA both negotiate them (RFC 7296 1.3, 2.9, 2.17).

* :func:`offer`: what an initiator proposes for a conn (SA with our SPI, TSi, TSr,
  USE_TRANSPORT_MODE);
* :func:`choose`: the responder's pick of a conn for the proposed selectors --
  among the conns of this peer, the first whose clients the selectors meet after
  narrowing and whose ``esp=`` the SA allows -- and its answer;
* :func:`accept`: the initiator's check of that answer;
* :func:`install`: the established :class:`~fswan.ikev2.sa.ChildSa` with its keys,
  handed to ``lifecycle.ipsec_established`` like a Quick Mode's SA pair.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, replace
from typing import Sequence

from fswan.config import roadwarrior
from fswan.config.model import ConnType, Encapsulation
from fswan.config.orient import OrientedConnection
from fswan.ike import lifecycle
from fswan.ike.select import ConnEntry, ids_match
from fswan.ike.state import StateKind
from fswan.ikev2 import suites
from fswan.ikev2.constants import NotifyType, name_of
from fswan.ikev2.crypto import child_keymat
from fswan.ikev2.exchange import V2Engine
from fswan.ikev2.payloads import Notify, Payload, Proposal, SecurityAssociation, TrafficSelector, TSi, TSr
from fswan.ikev2.sa import ChildSa, IkeSa
from fswan.ikev2.selectors import as_network, contains, for_client, narrow
from fswan.suites import EspProposal

__all__ = ["ChildOffer", "Choice", "accept", "choose", "install", "new_state", "offer"]


@dataclass
class ChildOffer:
    """What the initiator of a Child SA proposed (kept until the answer)."""

    entry_name: str
    our_spi: int
    proposals: tuple[EspProposal, ...]
    pfs_group: int | None
    tsi: TrafficSelector
    tsr: TrafficSelector
    transport: bool


@dataclass
class Choice:
    """The responder's pick: conn, proposal, the peer's SPI, narrowed selectors."""

    entry: ConnEntry
    proposal: EspProposal
    reply: Proposal
    peer_spi: int
    tsi: TrafficSelector
    tsr: TrafficSelector
    transport: bool


def _clients(o: OrientedConnection, ike: IkeSa) -> tuple[TrafficSelector, TrafficSelector]:
    """(ours, the peer's) selectors of a conn: subnets, else the hosts; a CP address stands
    for its holder's host (any address while a client waits for its own)."""
    ours = o.this.end.subnet or ipaddress.ip_network(ike.local_addr)
    peers = o.that.end.subnet or ipaddress.ip_network(ike.remote_addr)
    if ike.virtual_ip is not None:
        if ike.virtual_ip_ours:
            ours = ipaddress.ip_network(ike.virtual_ip)
        else:
            peers = ipaddress.ip_network(ike.virtual_ip)
    elif roadwarrior.modecfg_client(o):
        ours = ipaddress.ip_network("0.0.0.0/0")
    return for_client(ours, o.this.end.protoport), for_client(peers, o.that.end.protoport)


def offer(eng: V2Engine, entry: ConnEntry, ike: IkeSa, pfs_group: int | None,
          proposals: Sequence[EspProposal] | None = None) -> ChildOffer:
    ours, peers = _clients(entry.oriented, ike)
    return ChildOffer(
        entry.name, eng.table.new_spi(),
        tuple(proposals if proposals is not None else _for_child(entry.esp, pfs_group)),
        pfs_group, ours, peers,
        entry.conn.type is ConnType.TRANSPORT,
    )


def offer_payloads(child: ChildOffer) -> list[Payload]:
    payloads: list[Payload] = [
        suites.esp_proposals(child.proposals, child.our_spi, child.pfs_group),
        TSi((child.tsi,)),
        TSr((child.tsr,)),
    ]
    if child.transport:
        payloads.append(Notify(NotifyType.USE_TRANSPORT_MODE))
    return payloads


def choose(eng: V2Engine, ike: IkeSa, sa: SecurityAssociation | None, tsi: TSi | None,
           tsr: TSr | None, transport: bool, pfs_group: int | None,
           first: ConnEntry | None = None) -> Choice | int:
    """The responder's choice, or the notify type that refuses the Child SA."""
    if sa is None or tsi is None or tsr is None:
        return NotifyType.INVALID_SYNTAX
    candidates = [first] if first is not None else []
    candidates += [e for e in eng.select.for_peer_at(ike.remote_addr, ike.peer_id)
                   if e is not first]
    refusal: int = NotifyType.TS_UNACCEPTABLE
    for entry in candidates:
        o = entry.oriented
        if first is None or entry is not first:
            if not entry.conn.accepts_ikev2 or o.this.host != ike.local_addr:
                continue
            if o.that.host is not None and o.that.host != ike.remote_addr:
                continue
            if ike.peer_id is None or not ids_match(o.that.id, ike.peer_id):
                continue
            if o.this.id != ike.connection.this.id or ike.auth not in entry.auths:
                continue
        if (entry.conn.type is ConnType.TRANSPORT) != transport:
            continue
        ours, peers = _clients(o, ike)
        narrowed_i, narrowed_r = narrow(tsi.selectors, peers), narrow(tsr.selectors, ours)
        if narrowed_i is None or narrowed_r is None:
            continue
        picked = suites.choose_esp(sa, _for_child(entry.esp, pfs_group), pfs_group)
        if picked is None:
            refusal = NotifyType.NO_PROPOSAL_CHOSEN
            continue
        reply, proposal, peer_spi = picked
        return Choice(entry, proposal, reply, peer_spi, narrowed_i, narrowed_r, transport)
    return refusal


def _for_child(proposals: Sequence[EspProposal], pfs_group: int | None) -> tuple[EspProposal, ...]:
    """A conn's ``esp=`` for this Child SA: the DH of its PFS (or none, in IKE_AUTH)."""
    return tuple(replace(p, pfs_group=pfs_group) for p in proposals)


def answer_payloads(choice: Choice, our_spi: int) -> list[Payload]:
    payloads: list[Payload] = [
        SecurityAssociation((replace(choice.reply, spi=our_spi.to_bytes(4, "big")),)),
        TSi((choice.tsi,)),
        TSr((choice.tsr,)),
    ]
    if choice.transport:
        payloads.append(Notify(NotifyType.USE_TRANSPORT_MODE))
    return payloads


def accept(offered: ChildOffer, sa: SecurityAssociation | None, tsi: TSi | None,
           tsr: TSr | None, notifies: Sequence[Notify]) -> tuple[EspProposal, int, TrafficSelector,
                                                                 TrafficSelector] | str:
    """The initiator's check of the answer: (proposal, peer SPI, TSi, TSr) or why not."""
    for n in notifies:
        if n.is_error:
            return name_of(NotifyType, n.notify_type)
    if sa is None or tsi is None or tsr is None:
        return "no SA, TSi or TSr payload in the answer"
    picked = suites.accept_esp(sa, offered.proposals, offered.pfs_group)
    if picked is None:
        return "the responder chose an ESP proposal we did not offer"
    if not tsi.selectors or not tsr.selectors:
        return "empty traffic selectors in the answer"
    got_i, got_r = tsi.selectors[0], tsr.selectors[0]
    if not contains(offered.tsi, got_i) or not contains(offered.tsr, got_r):
        return "the responder's traffic selectors are not within ours"
    if as_network(got_i) is None or as_network(got_r) is None:
        return "the responder's traffic selectors are not one network each"
    transport = any(n.notify_type == NotifyType.USE_TRANSPORT_MODE for n in notifies)
    if transport != offered.transport:
        return "the responder changed the mode (tunnel/transport)"
    return picked[0], picked[1], got_i, got_r


def new_state(eng: V2Engine, ike: IkeSa, entry: ConnEntry, kind: StateKind, initiator: bool,
              whack: object | None, replaces: int | None) -> ChildSa:
    """A Child SA state of ``entry`` riding ``ike`` (its SPIs, addresses, peer), in the table."""
    st = ChildSa(
        serial=eng.table.next_serial(),
        kind=kind,
        connection=entry.oriented,
        initiator=initiator,
        icookie=ike.icookie,
        rcookie=ike.rcookie,
        local_addr=ike.local_addr,
        local_port=ike.local_port,
        remote_addr=ike.remote_addr,
        remote_port=ike.remote_port,
        created=eng.now,
        whack=whack,
        replaces=replaces,
        isakmp_serial=ike.serial,
        peer_id=ike.peer_id,
    )
    eng.table.add_quick(st)
    return st


def install(
    eng: V2Engine, ike: IkeSa, entry: ConnEntry, *, initiator: bool, our_spi: int,
    peer_spi: int, proposal: EspProposal, pfs_group: int | None, ours: TrafficSelector,
    peers: TrafficSelector, transport: bool, nonce_i: bytes, nonce_r: bytes,
    shared: bytes = b"", whack: object | None = None, replaces: int | None = None,
    st: ChildSa | None = None,
) -> ChildSa:
    """The established Child SA: keys from SK_d (and the PFS secret), the data plane told."""
    assert ike.suite is not None and ike.sk is not None
    if st is None:
        st = new_state(eng, ike, entry, StateKind.V2_ESTABLISHED_CHILD_SA, initiator, whack,
                       replaces)
    else:
        st.kind = StateKind.V2_ESTABLISHED_CHILD_SA
        st.local_port, st.remote_addr, st.remote_port = (
            ike.local_port, ike.remote_addr, ike.remote_port)
    conn = entry.conn
    st.our_spi, st.peer_spi = our_spi, peer_spi
    st.ni_b, st.nr_b = nonce_i, nonce_r  # a simultaneous rekey compares them (RFC 7296 2.8.1)
    st.proposal, st.pfs_group = proposal, pfs_group
    st.tunnel = not transport
    st.udp = (ike.natt is not None and conn.encapsulation is not Encapsulation.NO
              and (ike.nat_us or ike.nat_peer or conn.encapsulation is Encapsulation.YES))
    st.encapsulation = (3 if st.tunnel else 4) if st.udp else (1 if st.tunnel else 2)
    st.our_client, st.peer_client = as_network(ours), as_network(peers)
    material = child_keymat(ike.suite.prf, ike.sk.sk_d, nonce_i, nonce_r,
                            2 * proposal.keymat_length, shared)
    st.inbound_keys, st.outbound_keys = suites.child_keys(proposal, material, initiator)
    st.lifetime = conn.keylife
    st.set_event(None, None)
    lifecycle.ipsec_established(eng, st)
    return st
