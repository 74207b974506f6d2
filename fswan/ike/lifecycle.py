"""The life of an SA after its exchange: established, replaced, deleted.

What happens to the state table when a negotiation completes or an SA goes,
apart from how either is negotiated (that is the exchange modules'):

* established: the conn's newest SA, the replace/expire event (pluto's
  margins and fuzz, see ``engine``'s docstring), DPD and NAT-T keepalives
  armed, queued Quick Modes started, ``IsakmpSAEstablished`` /
  ``ChildSAInstalled`` for the shell, ``uniqueids``;
* deleted: Delete payloads to the peer when asked, ``ChildSADeleted`` /
  ``IsakmpSADeleted``, the conn's newest SA recomputed, waiting whacks released;
* what the peer tells us about its SAs (INITIAL_CONTACT, error notifications,
  Delete payloads) and where it now is (NAT rebinding).
"""

from __future__ import annotations

import ipaddress

from fswan.config import roadwarrior
from fswan.ike import informational, transaction
from fswan.ike.context import SaLifecycle
from fswan.ike.events import (
    ChildSADeleted,
    ChildSAInstalled,
    IsakmpSADeleted,
    IsakmpSAEstablished,
    PeerAddressChanged,
)
from fswan.ike.main_mode import established_details as phase1_details
from fswan.ike.quick_mode import established_details as phase2_details
from fswan.ike.state import MessageDigest, Phase1State, Phase2State, State, StateKind, TimerEvent
from fswan.isakmp.constants import NotifyType, ProtocolId, name_of
from fswan.isakmp.payloads import NotificationPayload
from fswan.whackproto import RC


def announce(eng: SaLifecycle, st: State, suffix: str = "") -> None:
    rc = RC.SUCCESS if st.kind.established else RC.NEW_STATE + int(st.kind)
    eng.out.log_state(st, f"{st.kind.label}: {st.kind.story}{suffix}", rc)


def isakmp_established(eng: SaLifecycle, st: Phase1State, md: MessageDigest | None) -> None:
    now = eng.now
    st.established_at = now
    st.last_inbound = now
    entry = eng.select.entries[st.conn_name]
    entry.newest_isakmp = st.serial
    schedule_replace(eng, st, now)
    announce(eng, st, phase1_details(st))
    assert st.peer_id is not None
    eng.out.event(
        IsakmpSAEstablished(st.conn_name, st.serial, st.remote_addr, st.remote_port, st.peer_id)
    )
    # road warriors of an XAUTH server share one group ID: who they are is the XAUTH user,
    # so uniqueness (and INITIAL_CONTACT) is by user once XAUTH has said it (unique_user)
    shared_id = roadwarrior.xauth_server(st.connection)
    if md is not None:
        for n in md.all(NotificationPayload):
            if n.type == NotifyType.INITIAL_CONTACT and not shared_id:
                initial_contact(eng, st)
            elif n.type != NotifyType.INITIAL_CONTACT:
                eng.out.log_state(st, f"ignoring informational payload, type {name_of(n.type)}")
    if eng.uniqueids and not shared_id:
        unique(eng, st)
    if entry.conn.dpddelay and st.peer_dpd:
        st.dpd_next = now + entry.conn.dpddelay
    if st.nat_us and st.natt is not None and eng.keep_alive > 0:
        st.keepalive_next = now + eng.keep_alive
    if transaction.begin(eng, st):
        after_transaction(eng, st)  # Quick Modes wait for XAUTH / Mode Config
        return
    start_pending(eng, st)


def after_transaction(eng: SaLifecycle, st: Phase1State) -> None:
    """XAUTH / Mode Config moved: on success the waiting Quick Modes start, on failure
    the ISAKMP SA goes (the peer told), its whacks released as failed."""
    tx = st.transaction
    if tx is None or tx.settled:
        return
    if tx.failed is not None:
        tx.settled = True
        eng.out.log_state(st, tx.failed, RC.LOG_SERIOUS)
        if tx.xauth is not None and st.connection.conn.xauthfail == "soft":
            # Libreswan's xauthfail=soft: the ISAKMP SA stays, no IPsec SA is ever allowed
            eng.out.log_state(st, "XAUTH: xauthfail=soft: keeping the ISAKMP SA without IPsec SAs")
            eng.out.release_all(st, False)
            st.pending = []
            return
        delete_state(eng, st, tx.failed, notify_peer=True)
    elif tx.done:
        tx.settled = True
        if eng.uniqueids and st.xauth_user is not None and tx.xauth == "server":
            unique_user(eng, st)
        start_pending(eng, st)


def unique_user(eng: SaLifecycle, st: Phase1State) -> None:
    """uniqueids for an XAUTH server: an older ISAKMP SA of the same conn and user goes
    (the road warrior is back; its group ID says nothing about who it is)."""
    for other in eng.table.of_conn(st.conn_name):
        if (isinstance(other, Phase1State) and other is not st
                and other.xauth_user == st.xauth_user and other.kind.is_isakmp_established):
            eng.out.log_state(other, f"deleting state: user '{st.xauth_user}' has a newer "
                                     f"ISAKMP SA #{st.serial} (uniqueids)")
            for child in eng.table.children(other):
                delete_state(eng, child, "replaced (uniqueids)", notify_peer=True)
            delete_state(eng, other, "replaced (uniqueids)", notify_peer=True)


def start_pending(eng: SaLifecycle, st: Phase1State) -> None:
    """The Quick Modes that waited for this ISAKMP SA, and the whack that started it."""
    now = eng.now
    pending, st.pending = st.pending, []
    whack, st.whack = st.whack, None
    for quick in pending:
        quick_entry = eng.select.get(quick.conn)
        if quick_entry is not None:
            eng.start_quick(quick_entry, st, now, quick.whack, 1, quick.replaces)
        else:
            eng.out.release(quick.whack, False)  # the conn was deleted meanwhile
    if whack is not None and not any(q.whack is whack for q in pending):
        eng.out.release(whack, True)


def ipsec_established(eng: SaLifecycle, st: Phase2State) -> None:
    now = eng.now
    st.established_at = now
    st.installed = True
    entry = eng.select.entries[st.conn_name]
    previous = entry.newest_ipsec if entry.newest_ipsec in eng.table.states else None
    if st.replaces in eng.table.states:
        previous = st.replaces
    entry.newest_ipsec = st.serial
    schedule_replace(eng, st, now)
    p1 = eng.table.get(st.isakmp_serial)
    dpd = "none"
    if isinstance(p1, Phase1State) and p1.peer_dpd:
        dpd = "active" if entry.conn.dpddelay else "passive"
    announce(eng, st, phase2_details(st, p1 if isinstance(p1, Phase1State) else None, dpd))
    assert st.proposal is not None and st.inbound_keys and st.outbound_keys
    assert st.our_client is not None and st.peer_client is not None
    eng.out.event(
        ChildSAInstalled(
            conn=st.conn_name,
            serial=st.serial,
            inbound_spi=st.our_spi,
            outbound_spi=st.peer_spi,
            proposal=st.proposal,
            inbound_keys=st.inbound_keys,
            outbound_keys=st.outbound_keys,
            mode="tunnel" if st.tunnel else "transport",
            udp_encapsulated=st.udp,
            local_addr=st.local_addr,
            local_port=st.local_port,
            remote_addr=st.remote_addr,
            remote_port=st.remote_port,
            local_client=st.our_client,
            remote_client=st.peer_client,
            lifetime_seconds=st.lifetime,
            replaces_serial=previous if previous != st.serial else None,
            xauth_user=p1.xauth_user if isinstance(p1, Phase1State) else None,
            nat_oa=st.nat_oa,
        )
    )
    if st.whack is not None:
        eng.out.release(st.whack, True)
        st.whack = None


def schedule_replace(eng: SaLifecycle, st: State, now: float) -> None:
    conn = st.connection.conn
    life = st.lifetime
    if not conn.rekey:
        st.set_event(TimerEvent.SA_EXPIRE, now + life)
        return
    margin = conn.rekeymargin
    if st.initiator:
        margin += margin * conn.rekeyfuzz / 100.0 * eng.fraction()
    else:
        margin /= 2
    if life > margin:
        st.margin = margin
        st.set_event(TimerEvent.SA_REPLACE, now + life - margin)
    else:
        st.set_event(TimerEvent.SA_EXPIRE, now + life)


def unique(eng: SaLifecycle, st: Phase1State) -> None:
    """uniqueids: older ISAKMP SAs between the same two IDs elsewhere go (with their
    IPsec SAs).

    "Elsewhere" is another address or port (a road warrior back from a new place),
    or another conn that could not have used the older SA (another auth method).
    An older SA with the same peer at the same place that the new SA's conn could
    have used is a parallel one -- both ends initiated at once -- and is left to
    expire: deleting it would take down the Quick Modes riding it.  SAs under
    another ID of ours are other tunnels, as FreeS/WAN's ``same_id`` on both ends."""
    entry = eng.select.get(st.conn_name)
    for other in eng.table.of_peer(st.peer_id):
        if (
            other is st
            or not isinstance(other, Phase1State)
            or other.serial not in eng.table.states
        ):
            continue
        if not other.kind.is_isakmp_established:
            continue
        if other.connection.this.id != st.connection.this.id:
            continue
        same_conn = other.conn_name == st.conn_name
        moved = (other.remote_addr, other.remote_port) != (st.remote_addr, st.remote_port)
        if same_conn and not moved:
            continue
        parallel = (
            entry is not None
            and not moved
            and other.local_addr == st.local_addr
            and other.auth in entry.auths
        )
        if parallel:
            continue
        eng.out.log_state(
            other,
            f"deleting state: peer '{st.peer_id}' has a newer ISAKMP SA #{st.serial} "
            "(uniqueids)",
        )
        for child in eng.table.children_of_peer(other):
            delete_state(eng, child, "replaced (uniqueids)", notify_peer=True)
        delete_state(eng, other, "replaced (uniqueids)", notify_peer=True)


def delete_conn_states(eng: SaLifecycle, name: str, reason: str, notify_peer: bool) -> None:
    states = eng.table.of_conn(name)
    going = {st.serial for st in states if isinstance(st, Phase1State)}
    for st in sorted(states, key=lambda s: -s.serial):
        if isinstance(st, Phase2State):
            # an IKEv2 IKE SA's Delete takes its Child SAs with it: one message, not one each
            alone = not (st.kind.is_v2 and st.isakmp_serial in going)
            delete_state(eng, st, reason, notify_peer and alone)
    for st in sorted(states, key=lambda s: -s.serial):
        if isinstance(st, Phase1State):
            delete_state(eng, st, reason, notify_peer)


def live_isakmp_for(eng: SaLifecycle, st: State) -> Phase1State | None:
    p1 = eng.table.get(getattr(st, "isakmp_serial", 0))
    if isinstance(p1, Phase1State) and p1.kind.is_isakmp_established:
        return p1
    if st.kind.is_v2:  # an IKEv2 Child SA lives and dies with its own IKE SA
        return None
    entry = eng.select.entries.get(st.conn_name)
    if entry is not None:
        newest = eng.table.get(entry.newest_isakmp)
        if (
            isinstance(newest, Phase1State)
            and newest.kind.is_isakmp_established
            and newest.remote_addr == st.remote_addr
        ):
            return newest
    for other in eng.table.at(st.remote_addr):
        if (
            isinstance(other, Phase1State)
            and other.kind.is_isakmp_established
            and other.peer_id == st.peer_id
        ):
            return other
    return None


def delete_state(eng: SaLifecycle, st: State, reason: str, notify_peer: bool) -> None:
    if st.serial not in eng.table.states:
        return
    st.set_event(None, None)
    entry = eng.select.entries.get(st.conn_name)
    if isinstance(st, Phase2State):
        if notify_peer and st.installed:
            p1 = live_isakmp_for(eng, st)
            if p1 is not None and st.kind.is_v2:
                eng.v2.delete_child(eng, p1, st)
            elif p1 is not None and not p1.kind.is_v2:
                informational.delete_ipsec(eng, p1, [st.our_spi])
        eng.table.forget(st)
        eng.table.spis.discard(st.our_spi)
        if st.installed:
            eng.out.event(
                ChildSADeleted(st.conn_name, st.serial, st.our_spi, st.peer_spi, reason)
            )
        if entry is not None and entry.newest_ipsec == st.serial:
            entry.newest_ipsec = eng.table.newest_established(st.conn_name, Phase2State)
    else:
        assert isinstance(st, Phase1State)
        # IKEv1's IPsec SAs outlive their ISAKMP SA; IKEv2's Child SAs go with their IKE SA
        for child in [s for s in eng.table.children(st) if st.kind.is_v2 or not s.kind.established]:
            delete_state(eng, child, reason, notify_peer=False)
        if notify_peer and st.kind.is_isakmp_established:
            if st.kind.is_v2:
                eng.v2.delete_ike(eng, st)
            else:
                informational.delete_isakmp(eng, st)
        transaction.released(eng, st)
        eng.table.forget(st)
        if st.kind not in (StateKind.MAIN_R0, StateKind.AGGR_R0, StateKind.PARENT_R1):
            eng.out.event(IsakmpSADeleted(st.conn_name, st.serial, reason))
        if entry is not None and entry.newest_isakmp == st.serial:
            entry.newest_isakmp = eng.table.newest_established(st.conn_name, Phase1State)
    eng.out.release_all(st, False)


def note_inbound(eng: SaLifecycle, p1: Phase1State, md: MessageDigest) -> None:
    """An authenticated message on an established ISAKMP SA: DPD and NAT rebinding."""
    p1.last_inbound = md.now
    p1.dpd_pending_since = None
    if (md.remote_addr, md.remote_port) == (p1.remote_addr, p1.remote_port):
        if md.local_port != p1.local_port:
            p1.local_port = md.local_port
        return
    old = f"{p1.remote_addr}:{p1.remote_port}"
    old_addr = p1.remote_addr
    p1.remote_addr, p1.remote_port, p1.local_port = (
        md.remote_addr,
        md.remote_port,
        md.local_port,
    )
    children = []
    for st in eng.table.of_conn(p1.conn_name):
        if isinstance(st, Phase2State) and st.peer_id == p1.peer_id:
            st.remote_addr, st.remote_port, st.local_port = (
                md.remote_addr,
                md.remote_port,
                md.local_port,
            )
            if st.peer_client == ipaddress.ip_network(old_addr):
                # a host-only peer's client is its address: it moved along
                st.peer_client = ipaddress.ip_network(md.remote_addr)
            children.append(st.serial)
    eng.out.log_state(p1, f"NAT-T: peer moved from {old} to {md.peer}; following it")
    eng.out.event(
        PeerAddressChanged(
            p1.conn_name, p1.serial, md.remote_addr, md.remote_port, tuple(sorted(children))
        )
    )
    entry = eng.select.entries.get(p1.conn_name)
    if entry is not None and md.remote_addr != old_addr:
        # a new address, not just a new port: the IPsec SAs are bound to the old one,
        # so replace the newest at once over this ISAKMP SA (make before break)
        newest = eng.table.get(entry.newest_ipsec)
        if isinstance(newest, Phase2State) and newest.isakmp_serial == p1.serial:
            eng.start_quick(entry, p1, md.now, None, 1, newest.serial)


def first_contact(eng: SaLifecycle, st: Phase1State) -> bool:
    """True when we hold no other state with this peer (send INITIAL_CONTACT)."""
    peer = st.peer_id if st.peer_id is not None else st.connection.that.id
    if any(other is not st for other in eng.table.at(st.remote_addr)):
        return False
    return peer.is_any or not any(other is not st for other in eng.table.of_peer(peer))


def initial_contact(eng: SaLifecycle, p1: Phase1State) -> None:
    """The peer lost its state: drop what this exchange replaces, everything older we
    hold between the same two identities (strongSwan's rule).  States of that peer
    under another ID of ours belong to other tunnels and stay."""
    ours = p1.connection.this.id
    victims = [
        s
        for s in eng.table.of_peer(p1.peer_id)
        if s is not p1
        and s.serial < p1.serial
        and s.connection.this.id == ours
        and not (isinstance(s, Phase2State) and s.isakmp_serial == p1.serial)
    ]
    if not victims:
        return
    eng.out.log_state(
        p1,
        f"received INITIAL_CONTACT: deleting {len(victims)} older state(s) of "
        f"peer '{p1.peer_id}'",
    )
    for st in sorted(victims, key=lambda s: (isinstance(s, Phase1State), -s.serial)):
        delete_state(eng, st, "INITIAL_CONTACT from peer", notify_peer=False)


def peer_error(eng: SaLifecycle, p1: Phase1State, n: NotificationPayload) -> None:
    """An authenticated error notification: fail what it is about."""
    name = name_of(n.type)
    rc = RC.NOTIFICATION + int(n.type)
    pending = [s for s in eng.table.children(p1) if s.kind is StateKind.QUICK_I1]
    if n.protocol == ProtocolId.ESP and len(n.spi) == 4:
        spi = int.from_bytes(n.spi, "big")
        pending = [s for s in pending if s.our_spi == spi] or pending
    if pending and (n.protocol == ProtocolId.ESP or p1.kind.is_isakmp_established):
        st = min(pending, key=lambda s: s.serial)
        eng.out.log_state(st, f"{st.kind.label}: {name}", rc)
        delete_state(eng, st, f"peer sent {name}", notify_peer=False)
        return
    eng.out.log_state(p1, f"{p1.kind.label}: {name}", rc)
    if not p1.kind.is_isakmp_established:
        delete_state(eng, p1, f"peer sent {name}", notify_peer=False)


def delete_by_cookies(eng: SaLifecycle, p1: Phase1State, cookies: bytes) -> None:
    """A Delete for an ISAKMP SA: this one, or another between the same peer ID."""
    target = eng.table.by_cookies.get(cookies)
    if target is None:
        eng.out.log_state(p1, "ignoring Delete SA payload: ISAKMP SA not found")
        return
    if target is not p1 and (p1.peer_id is None or target.peer_id != p1.peer_id):
        informational.refuse(eng, p1, None, "Delete SA payload for another peer's ISAKMP SA")
        return
    eng.out.log_state(
        target, f"received Delete SA payload: deleting ISAKMP State #{target.serial}"
    )
    delete_state(eng, target, "deleted by peer", notify_peer=False)


def delete_by_spi(eng: SaLifecycle, p1: Phase1State, spi: int) -> None:
    """A Delete for an IPsec SA: only one of the peer this ISAKMP SA authenticated,
    whatever address another peer shares with it (NAT, carrier-grade NAT)."""
    for st in eng.table.of_peer(p1.peer_id):
        if isinstance(st, Phase2State) and st.installed and st.peer_spi == spi:
            eng.out.log_state(st, f"received Delete SA payload: deleting IPSEC State #{st.serial}")
            delete_state(eng, st, "deleted by peer", notify_peer=False)
            return
    if any(isinstance(s, Phase2State) and s.installed and s.peer_spi == spi
           for s in eng.table.at(p1.remote_addr)):
        informational.refuse(eng, p1, None, "Delete SA payload for another peer's IPsec SA")
        return
    eng.out.log_state(p1, f"ignoring Delete SA payload: IPsec SA with SPI 0x{spi:08x} not found")

