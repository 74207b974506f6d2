"""Aggressive Mode (RFC 2409 section 5): phase 1 in three messages.

::

    AI1  SA, KE, Ni, IDii, VIDs                          -->
                                                         <--  AR1  SA, KE, Nr, IDir, VIDs,
                                                                   [NAT-D, NAT-D], HASH_R | SIG_R
    AI2* [NAT-D, NAT-D], HASH_I | SIG_I                  -->   (port 4500 when NATed)

With certificates, AI1 carries CR, AR1 CERT and CR beside SIG_R, AI2 CERT beside
SIG_I.  The identities go in clear and the DH group cannot be negotiated (the KE in
AI1 fixes it), so the initiator offers only the transforms with the first
``ike=`` proposal's group.  A responder refuses Aggressive Mode unless the
connection says ``aggrmode=yes`` (the engine logs and drops AI1 otherwise).
Because the peer's ID arrives in AI1, a road-warrior responder can look the
PSK up by it -- the one advantage of this mode.

AI2 is sent encrypted (as pluto and strongSwan do); a clear AI2 is accepted.
"""

from __future__ import annotations


from fswan.ike.certauth import SIGNATURE_METHODS
from fswan.ike.dh import DHKeyPair
from fswan.ike.main_mode import (
    choose_connection_and_transform,
    NONCE_SIZE,
    auth_payload,
    check_nonce,
    credentials,
    derive_keys,
    encrypt_phase1,
    id_payload,
    identity_of,
    make_dh,
    note_cert_requests,
    our_cert_requests,
    our_certs,
    our_natd,
    read_natd,
    read_vendor_ids,
    shared_secret,
    verify_auth,
)
from fswan.ike.natt import natd_payloads, our_vendor_ids, reply_vendor_ids
from fswan.ike.proposals import (
    NoAcceptableProposal,
    accept_ike_reply,
    ike_reply_sa,
    ike_sa_payload,
)
from fswan.ike.state import ExchangeError, MessageDigest, Phase1State, StateKind, Transition
from fswan.ike.context import Phase1Context
from fswan.ike.select import base_auth, ids_match, wire_auths
from fswan.isakmp.constants import ExchangeType, NotifyType, PayloadType
from fswan.isakmp.message import Header, Message
from fswan.isakmp.payloads import IDPayload, KEPayload, NoncePayload, Payload, SAPayload



def initiate(eng: Phase1Context, st: Phase1State) -> None:
    """Send AI1 with the transforms of the first proposal's DH group only."""
    conn = eng.select[st.conn_name]
    group = conn.ike[0].group
    st.offered = tuple(p for p in conn.ike if p.group == group)
    sa = ike_sa_payload(st.offered, wire_auths(conn, True), conn.conn.ikelifetime)
    st.sa_i_b = sa.encode()
    st.dh = DHKeyPair.generate(st.offered[0].dh_group, eng.random_bytes)
    st.g_xi = st.dh.public_bytes()
    st.ni_b = eng.random(NONCE_SIZE)
    ident = id_payload(st.connection.this.id, credentials(eng, st).cert)
    st.our_id_b = ident.encode()
    payloads: list[Payload] = [sa, KEPayload(st.g_xi), NoncePayload(st.ni_b), ident]
    if any(a in SIGNATURE_METHODS for a in conn.auths):
        st.auth = conn.auths[0]
        payloads += our_cert_requests(eng, st)
    payloads += our_vendor_ids(eng.nat_traversal)
    header = Header(st.icookie, st.rcookie, ExchangeType.AGGRESSIVE)
    eng.send(st, Message(header, tuple(payloads)).encode())


def in_r1_out_i2(eng: Phase1Context, st: Phase1State, md: MessageDigest) -> None:
    """AR1: check choice and HASH_R, detect NAT, send HASH_I (encrypted)."""
    conn = eng.select[st.conn_name]
    try:
        choice = accept_ike_reply(md.get(SAPayload), st.offered, wire_auths(conn, True), conn.conn.ikelifetime)
    except NoAcceptableProposal as error:
        raise ExchangeError(*error.notes, *error.lines) from None
    ident = md.get(IDPayload)
    peer = identity_of(ident)
    wanted = st.connection.that.id
    if not ids_match(wanted, peer):
        raise ExchangeError(
            f"we require peer to have ID '{wanted}', but peer declares '{peer}'",
            notify=NotifyType.INVALID_ID_INFORMATION,
        )
    eng.table.set_rcookie(st, md.header.rcookie)
    st.proposal, st.auth, st.lifetime = choice.ike, base_auth(choice.auth), choice.lifetime
    read_vendor_ids(st, md, eng.nat_traversal)
    st.g_xr = md.get(KEPayload).data
    st.nr_b = check_nonce(md.get(NoncePayload))
    st.g_xy = shared_secret(st, st.g_xr)
    derive_keys(eng, st)
    st.peer_id = peer
    note_cert_requests(eng, st, md)
    verify_auth(eng, st, md, ident.wire_body, "AR1")
    read_natd(eng, st, md)
    if st.nat_us or st.nat_peer or eng.force_encapsulation(st):
        eng.float_ports(st)
    payloads: list[Payload] = []
    if st.natt is not None:
        payloads += natd_payloads(
            st.natt,
            choice.ike.hash_algorithm,
            st.icookie,
            st.rcookie,
            (st.remote_addr, st.remote_port),
            (st.local_addr, st.local_port),
        )
    payloads += our_certs(eng, st)
    payloads.append(auth_payload(eng, st, st.our_id_b))
    eng.send_reply(st, md, encrypt_phase1(st, ExchangeType.AGGRESSIVE, payloads))


def in_i1_out_r1(eng: Phase1Context, st: Phase1State, md: MessageDigest) -> None:
    """AI1: pick a connection by address, policy and the peer's ID; answer with AR1."""
    sa = md.get(SAPayload)
    ident = md.get(IDPayload)
    peer = identity_of(ident)
    candidates = [c for c in md.candidates if ids_match(c.oriented.that.id, peer)]
    candidates.sort(key=lambda c: 0 if c.oriented.that.id == peer else 1)
    if not candidates:
        raise ExchangeError(
            f"no suitable connection for peer '{peer}'", notify=NotifyType.INVALID_ID_INFORMATION
        )
    conn, choice = choose_connection_and_transform(eng, st, sa, candidates)
    st.sa_i_b = sa.wire_body
    st.offered = conn.ike
    st.proposal, st.auth, st.lifetime = choice.ike, base_auth(choice.auth), choice.lifetime
    st.peer_id = peer
    st.peer_id_b = ident.wire_body
    st.g_xi = md.get(KEPayload).data
    st.ni_b = check_nonce(md.get(NoncePayload))
    dh = make_dh(eng, st)
    st.g_xy = shared_secret(st, st.g_xi)
    st.g_xr = dh.public_bytes()
    st.nr_b = eng.random(NONCE_SIZE)
    eng.table.set_rcookie(st, eng.table.new_cookie())
    derive_keys(eng, st)
    known = read_vendor_ids(st, md, eng.nat_traversal)
    note_cert_requests(eng, st, md)
    ident_r = id_payload(st.connection.this.id, credentials(eng, st).cert)
    st.our_id_b = ident_r.encode()
    payloads: list[Payload] = [ike_reply_sa(choice), KEPayload(st.g_xr), NoncePayload(st.nr_b), ident_r]
    payloads += reply_vendor_ids(known, eng.nat_traversal)
    payloads += our_natd(st, md)
    payloads += our_certs(eng, st)
    payloads += our_cert_requests(eng, st)
    payloads.append(auth_payload(eng, st, st.our_id_b))
    header = Header(st.icookie, st.rcookie, ExchangeType.AGGRESSIVE)
    eng.send_reply(st, md, Message(header, tuple(payloads)).encode())


def in_i2(eng: Phase1Context, st: Phase1State, md: MessageDigest) -> None:
    """AI2: NAT-D and the initiator's HASH_I/SIG_I over the ID it sent in AI1."""
    verify_auth(eng, st, md, st.peer_id_b, "AI2")
    read_natd(eng, st, md)
    eng.follow_peer(st, md)


# --------------------------------------------------------------------------
# the microcode rows of Aggressive Mode (RFC 2409 section 5; AI2 may come in
# clear or encrypted)

_AM = ExchangeType.AGGRESSIVE
_S, _T = StateKind, Transition
_SA, _KE, _NI, _ID = PayloadType.SA, PayloadType.KE, PayloadType.NONCE, PayloadType.ID

# state: (exchange, encrypted, required payloads, handler, next state, expects a reply)
# fmt: off
TRANSITIONS: dict[StateKind, Transition] = {
    _S.AGGR_R0: _T(_AM, False, (_SA, _KE, _NI, _ID), in_i1_out_r1, _S.AGGR_R1, True),
    _S.AGGR_I1: _T(_AM, False, (_SA, _KE, _NI, _ID), in_r1_out_i2, _S.AGGR_I2, False),
    _S.AGGR_R1: _T(_AM, None, (), in_i2, _S.AGGR_R2, False),
}
# fmt: on
