"""CREATE_CHILD_SA (RFC 7296 1.3): more Child SAs, Child SA rekeys and IKE SA rekeys.

Initiator: :func:`new_child` (a conn's Child SA over an IKE SA it shares, or the
rekey of one: REKEY_SA names our inbound SPI, the selectors stay those of the old
SA, a fresh DH when the conn wants PFS) and :func:`rekey_ike` (a new IKE SA whose
keys come from the old SK_d, 2.18); the waiting state -- a Child SA in
V2_NEW_CHILD_I1/V2_REKEY_CHILD_I1, or the new IKE SA in V2_REKEY_IKE_I1 --
retransmits the request.  A rekeyed Child SA is installed make-before-break and the
old one deleted (Delete to the peer); a rekeyed IKE SA takes its predecessor's
children and the old one is deleted.  Responder: :func:`in_request`.
"""

from __future__ import annotations

from dataclasses import replace

from fswan.ike import lifecycle
from fswan.ike.dh import GROUPS, DHError, DHKeyPair
from fswan.ike.quick_mode import pfs_group  # Quick Mode's rule: esp='s group, else pfs=yes
from fswan.ike.select import ConnEntry
from fswan.ike.state import MessageDigest, StateKind
from fswan.ike.table import ZERO_COOKIE
from fswan.ikev2 import children, ike_auth, informational, suites
from fswan.ikev2.constants import ExchangeType, NotifyType, ProtocolId, name_of
from fswan.ikev2.crypto import derive_ike_keys, rekey_skeyseed
from fswan.ikev2.exchange import V2Engine, error_notifies, fail, has_payloads
from fswan.ikev2.exchange import request, respond
from fswan.ikev2.message import Message
from fswan.ikev2.payloads import (
    Delete,
    KeyExchange,
    Nonce,
    Notify,
    Payload,
    SecurityAssociation,
    TSi,
    TSr,
)
from fswan.ikev2.sa import ChildSa, IkeSa
from fswan.ikev2.selectors import for_client
from fswan.whackproto import RC

__all__ = ["in_request", "in_response", "new_child", "rekey_ike", "start_pending"]

NONCE_SIZE = 32


def new_child(eng: V2Engine, ike: IkeSa, entry: ConnEntry, whack: object | None,
              replaces: int | None) -> ChildSa:
    old = eng.table.get(replaces)
    rekey = isinstance(old, ChildSa) and old.installed
    kind = StateKind.V2_REKEY_CHILD_I1 if rekey else StateKind.V2_NEW_CHILD_I1
    st = children.new_state(eng, ike, entry, kind, True, whack, replaces if rekey else None)
    group = pfs_group(entry, ike)
    offer = children.offer(eng, entry, ike, group)
    if rekey:
        assert isinstance(old, ChildSa) and old.our_client and old.peer_client
        offer.tsi = for_client(old.our_client, entry.oriented.this.end.protoport)
        offer.tsr = for_client(old.peer_client, entry.oriented.that.end.protoport)
    st.offered_ts = offer
    st.ni_b = eng.random(NONCE_SIZE)
    st.dh = DHKeyPair.generate(GROUPS[group], eng.random) if group is not None else None
    payloads: list[Payload] = []
    if rekey:
        assert isinstance(old, ChildSa)
        payloads.append(Notify(NotifyType.REKEY_SA, protocol=ProtocolId.ESP,
                               spi=old.our_spi.to_bytes(4, "big")))
    sa, *selectors = children.offer_payloads(offer)
    payloads += [sa, Nonce(st.ni_b)]
    if st.dh is not None:
        payloads.append(KeyExchange(st.dh.group.number, st.dh.public_bytes()))
    payloads += selectors
    request(eng, ike, st, lambda _mid: (ExchangeType.CREATE_CHILD_SA, payloads))
    suffix = f" to replace #{replaces}" if rekey else ""
    eng.log_state(st, f"{st.kind.label}: {st.kind.story}{suffix}", RC.NEW_STATE + int(st.kind))
    return st


def start_pending(eng: V2Engine, st: IkeSa) -> None:
    """Conns that waited for this IKE SA (beside the one of its IKE_AUTH) get their Child
    SAs by CREATE_CHILD_SA."""
    pending, st.pending = st.pending, []
    for quick in pending:
        entry = eng.select.get(quick.conn)
        if entry is None:
            eng.out.release(quick.whack, False)
            continue
        new_child(eng, st, entry, quick.whack, quick.replaces)


def _successor_state(eng: V2Engine, old: IkeSa, kind: StateKind, initiator: bool,
                     spi_i: bytes) -> IkeSa:
    """The new IKE SA of a rekey of ``old``: its place, peer, auth and NAT facts (not yet
    in the table: an initiator and a responder are added differently)."""
    st = IkeSa(
        serial=eng.table.next_serial(),
        kind=kind,
        connection=old.connection,
        initiator=initiator,
        icookie=spi_i,
        rcookie=ZERO_COOKIE,
        local_addr=old.local_addr,
        local_port=old.local_port,
        remote_addr=old.remote_addr,
        remote_port=old.remote_port,
        created=eng.now,
        replaces=old.serial,
        peer_id=old.peer_id,
    )
    st.rekey_of = old.serial
    st.auth, st.peer_dpd = old.auth, True
    st.natt, st.nat_us, st.nat_peer = old.natt, old.nat_us, old.nat_peer
    return st


def rekey_ike(eng: V2Engine, entry: ConnEntry, old: IkeSa) -> IkeSa:
    assert old.proposal is not None
    st = _successor_state(eng, old, StateKind.V2_REKEY_IKE_I1, True, eng.table.new_cookie())
    st.offered = tuple(sorted(entry.ike, key=lambda p: p.group != old.proposal.group))  # type: ignore[union-attr]
    eng.table.add_initiator(st)
    st.ni_b = eng.random(NONCE_SIZE)
    st.dh = DHKeyPair.generate(GROUPS[st.offered[0].group], eng.random)
    payloads: list[Payload] = [suites.ike_proposals(st.offered, spi=st.icookie), Nonce(st.ni_b),
                               KeyExchange(st.dh.group.number, st.dh.public_bytes())]
    request(eng, old, st, lambda _mid: (ExchangeType.CREATE_CHILD_SA, payloads))
    eng.log_state(st, f"{st.kind.label}: {st.kind.story} #{old.serial}",
                  RC.NEW_STATE + int(st.kind))
    return st


# --------------------------------------------------------------------------
# the answer to our request


def in_response(eng: V2Engine, ike: IkeSa, owner: object, message: Message,
                md: MessageDigest) -> None:
    if isinstance(owner, IkeSa):
        _ike_rekeyed(eng, ike, owner, message)
        return
    assert isinstance(owner, ChildSa)
    st = owner
    offer = st.offered_ts
    result = children.accept(offer, message.get(SecurityAssociation), message.get(TSi),
                             message.get(TSr), message.all(Notify))
    if isinstance(result, str):
        raise fail(f"CREATE_CHILD_SA refused: {result}")
    proposal, peer_spi, tsi, tsr = result
    shared = b""
    if st.dh is not None:
        ke = message.get(KeyExchange)
        if ke is None or ke.group != st.dh.group.number:
            raise fail("CREATE_CHILD_SA answer without the KE of our PFS group")
        try:
            shared = st.dh.shared_secret(ke.data)
        except DHError as error:
            raise fail(f"CREATE_CHILD_SA answer: bad KE: {error}") from None
        st.dh = None
    nonce = message.get(Nonce)
    if nonce is None:
        raise fail("CREATE_CHILD_SA answer without a nonce")
    if _lost_collision(eng, ike, st, nonce.data, offer.our_spi):
        return
    entry = eng.select[st.conn_name]
    children.install(eng, ike, entry, initiator=True, our_spi=offer.our_spi, peer_spi=peer_spi,
                     proposal=proposal, pfs_group=offer.pfs_group, ours=tsi, peers=tsr,
                     transport=offer.transport, nonce_i=st.ni_b, nonce_r=nonce.data,
                     shared=shared, replaces=st.replaces, st=st)
    old = eng.table.get(st.replaces)
    if isinstance(old, ChildSa):
        eng.log_state(old, f"deleting IPsec SA: replaced by #{st.serial}")
        lifecycle.delete_state(eng, old, "replaced", notify_peer=True)


def _lost_collision(eng: V2Engine, ike: IkeSa, st: ChildSa, nonce_r: bytes, our_spi: int) -> bool:
    """RFC 7296 2.8.1: the peer rekeyed the same Child SA while we did.  Of the two new
    pairs, the one made with the lowest of the four nonces goes, deleted by its maker: if
    that is ours, it is not installed and the peer is told (True); if the peer's, it
    deletes that one and ours stays."""
    if st.replaces is None:
        return False
    sibling = next((c for c in eng.table.children(ike) if isinstance(c, ChildSa)
                    and c is not st and c.replaces == st.replaces and c.installed
                    and not c.initiator), None)
    if sibling is None or min(st.ni_b, nonce_r) > min(sibling.ni_b, sibling.nr_b):
        return False
    eng.log_state(st, f"simultaneous rekey of #{st.replaces}: ours has the lowest nonce and "
                      f"goes; #{sibling.serial}, the peer's, replaces it")
    spi = our_spi.to_bytes(4, "big")
    request(eng, ike, ike, lambda _mid: (ExchangeType.INFORMATIONAL, [Delete(ProtocolId.ESP, (spi,))]))
    eng.out.release_all(st, True)
    eng.table.forget(st)
    eng.table.spis.discard(our_spi)
    return True


def _ike_rekeyed(eng: V2Engine, old: IkeSa, st: IkeSa, message: Message) -> None:
    errors = error_notifies(message)
    if errors:
        raise fail(f"IKE SA rekey refused: {name_of(NotifyType, errors[0].notify_type)}")
    has_payloads(message, SecurityAssociation.TYPE, Nonce.TYPE, KeyExchange.TYPE)
    sa = message.get(SecurityAssociation)
    assert sa is not None
    proposal = suites.accept_ike(sa, st.offered)
    if proposal is None or len(sa.proposals[0].spi) != 8:
        raise fail("IKE SA rekey: the responder chose a proposal we did not offer")
    ke = message.get(KeyExchange)
    assert ke is not None and st.dh is not None
    if ke.group != st.dh.group.number:
        raise fail(f"IKE SA rekey: KE of group {ke.group}, not {st.dh.group.number}")
    st.nr_b = message.get(Nonce).data  # type: ignore[union-attr]
    eng.table.set_rcookie(st, sa.proposals[0].spi)
    st.proposal = proposal
    _rekeyed_keys(old, st, ke.data)
    # RFC 7296 2.8.2: the peer rekeyed this IKE SA too; the new SA made with the lowest
    # of the four nonces goes, deleted by its maker
    sibling = next((x for x in eng.table.states.values() if isinstance(x, IkeSa)
                    and x is not st and x.rekey_of == old.serial and x.kind.established
                    and not x.initiator), None)
    if sibling is not None and min(st.ni_b, st.nr_b) < min(sibling.ni_b, sibling.nr_b):
        eng.log_state(st, f"simultaneous rekey of IKE SA #{old.serial}: ours has the lowest "
                          f"nonce and goes; #{sibling.serial}, the peer's, replaces it")
        informational.delete_ike(eng, st)
        eng.table.forget(st)
        return
    _take_over(eng, sibling or old, st)
    if sibling is not None:
        eng.log_state(sibling, f"simultaneous rekey of IKE SA #{old.serial}: this one has the "
                               f"lowest nonce; the peer deletes it")
    lifecycle.delete_state(eng, old, "replaced", notify_peer=True)


def _rekeyed_keys(old: IkeSa, st: IkeSa, peer_public: bytes) -> None:
    assert old.suite is not None and old.sk is not None and st.dh is not None
    assert st.proposal is not None
    shared = st.dh.shared_secret(peer_public)
    st.dh = None
    st.suite = suites.ike_suite(st.proposal)
    seed = rekey_skeyseed(old.suite.prf, old.sk.sk_d, shared, st.ni_b, st.nr_b)
    st.sk = derive_ike_keys(st.suite, seed, st.ni_b, st.nr_b, st.icookie, st.rcookie)


def _take_over(eng: V2Engine, old: IkeSa, st: IkeSa) -> None:
    """The new IKE SA is established and carries the old one's children, and the
    requests still waiting for the old one's window (a Child SA rekey that fired with
    the IKE SA's, a Delete, a liveness check) go out on the new one."""
    for child in eng.table.children(old):
        eng.table.adopt(child, st)
    ike_auth.established(eng, st, None, None)
    eng.log_state(st, f"IKE SA #{old.serial} rekeyed: its Child SAs now use #{st.serial}")
    old.superseded = True
    waiting, old.queue = old.queue, []
    for serial, build in waiting:
        owner = st if serial == old.serial else eng.table.get(serial)
        if owner is not None:
            request(eng, st, owner, build)


# --------------------------------------------------------------------------
# responder


def in_request(eng: V2Engine, ike: IkeSa, message: Message, md: MessageDigest) -> None:
    has_payloads(message, SecurityAssociation.TYPE, Nonce.TYPE)
    sa = message.get(SecurityAssociation)
    assert sa is not None
    if sa.proposals[0].protocol == ProtocolId.IKE:
        _rekey_ike_request(eng, ike, sa, message, md)
        return
    rekey = message.notify(NotifyType.REKEY_SA)
    old: ChildSa | None = None
    if rekey is not None:
        spi = int.from_bytes(rekey.spi, "big")
        old = next((c for c in eng.table.children(ike)
                    if isinstance(c, ChildSa) and c.installed and c.peer_spi == spi), None)
        if old is None:
            respond(eng, ike, md, ExchangeType.CREATE_CHILD_SA,
                    [Notify(NotifyType.CHILD_SA_NOT_FOUND, protocol=ProtocolId.ESP, spi=rekey.spi)])
            eng.log_state(ike, f"CREATE_CHILD_SA: no Child SA with SPI 0x{spi:08x} to rekey")
            return
    ke = message.get(KeyExchange)
    group = ke.group if ke is not None else None
    if group is not None and group not in GROUPS:
        respond(eng, ike, md, ExchangeType.CREATE_CHILD_SA,
                [Notify(NotifyType.NO_PROPOSAL_CHOSEN)])
        return
    transport = message.notify(NotifyType.USE_TRANSPORT_MODE) is not None
    first = eng.select.get(old.conn_name) if old is not None else None
    choice = children.choose(eng, ike, sa, message.get(TSi), message.get(TSr), transport,
                             group, first=first)
    if not isinstance(choice, children.Choice):
        respond(eng, ike, md, ExchangeType.CREATE_CHILD_SA, [Notify(choice)])
        eng.log_state(ike, f"CREATE_CHILD_SA from {md.peer} refused: {name_of(NotifyType, choice)}")
        return
    nonce_r = eng.random(NONCE_SIZE)
    shared, our_ke = b"", None
    if ke is not None and group is not None:
        dh = DHKeyPair.generate(GROUPS[group], eng.random)
        try:
            shared = dh.shared_secret(ke.data)
        except DHError as error:
            respond(eng, ike, md, ExchangeType.CREATE_CHILD_SA, [Notify(NotifyType.INVALID_SYNTAX)])
            eng.log_state(ike, f"CREATE_CHILD_SA from {md.peer}: bad KE: {error}")
            return
        our_ke = KeyExchange(group, dh.public_bytes())
    our_spi = eng.table.new_spi()
    answer = children.answer_payloads(choice, our_spi)
    payloads: list[Payload] = [answer[0], Nonce(nonce_r)]
    if our_ke is not None:
        payloads.append(our_ke)
    payloads += answer[1:]
    respond(eng, ike, md, ExchangeType.CREATE_CHILD_SA, payloads)
    nonce_i = message.get(Nonce).data  # type: ignore[union-attr]
    children.install(eng, ike, choice.entry, initiator=False, our_spi=our_spi,
                     peer_spi=choice.peer_spi, proposal=choice.proposal, pfs_group=group,
                     ours=choice.tsr, peers=choice.tsi, transport=transport, nonce_i=nonce_i,
                     nonce_r=nonce_r, shared=shared,
                     replaces=old.serial if old is not None else None)


def _rekey_ike_request(eng: V2Engine, ike: IkeSa, sa: SecurityAssociation, message: Message,
                       md: MessageDigest) -> None:
    entry = eng.select[ike.conn_name]
    ke = message.get(KeyExchange)
    picked = suites.choose_ike(sa, entry.ike)
    if picked is None or ke is None:
        respond(eng, ike, md, ExchangeType.CREATE_CHILD_SA, [Notify(NotifyType.NO_PROPOSAL_CHOSEN)])
        raise fail("IKE SA rekey request: no acceptable proposal", delete=False)
    reply, proposal = picked
    if ke.group != proposal.group:
        respond(eng, ike, md, ExchangeType.CREATE_CHILD_SA,
                [Notify(NotifyType.INVALID_KE_PAYLOAD, proposal.group.to_bytes(2, "big"))])
        return
    peer_spi = next((p.spi for p in sa.proposals if p.number == reply.number), b"")
    if len(peer_spi) != 8:
        respond(eng, ike, md, ExchangeType.CREATE_CHILD_SA, [Notify(NotifyType.INVALID_SYNTAX)])
        return
    st = _successor_state(eng, ike, StateKind.PARENT_R1, False, peer_spi)
    st.proposal = proposal
    eng.table.add_responder(st)
    eng.table.set_rcookie(st, eng.table.new_cookie())
    st.ni_b = message.get(Nonce).data  # type: ignore[union-attr]
    st.nr_b = eng.random(NONCE_SIZE)
    st.dh = DHKeyPair.generate(GROUPS[proposal.group], eng.random)
    our_public = st.dh.public_bytes()
    try:
        _rekeyed_keys(ike, st, ke.data)
    except DHError as error:
        eng.table.forget(st)
        respond(eng, ike, md, ExchangeType.CREATE_CHILD_SA, [Notify(NotifyType.INVALID_SYNTAX)])
        eng.log_state(ike, f"IKE SA rekey request: bad KE: {error}")
        return
    respond(eng, ike, md, ExchangeType.CREATE_CHILD_SA, [
        SecurityAssociation((replace(reply, spi=st.rcookie),)), Nonce(st.nr_b),
        KeyExchange(proposal.group, our_public)])
    _take_over(eng, ike, st)
