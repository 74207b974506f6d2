"""IKE_SA_INIT (RFC 7296 1.2): SA, KE and nonces in clear, NAT detection, the cookie
challenge (2.6) and INVALID_KE_PAYLOAD (1.2).

Initiator: :func:`initiate` sends the request (PARENT_I1); :func:`in_response` takes
the answer -- a COOKIE or INVALID_KE_PAYLOAD makes it send the request again, a
refusal ends the attempt, an SA and KE give the IKE SA its keys and lead to
IKE_AUTH.  Responder: :func:`in_request` answers a first message with no state at
all when it asks for a cookie or refuses, else with a PARENT_R1 state whose keys
are ready for IKE_AUTH.  A responder never retransmits; a repeated request gets the
same answer again.
"""

from __future__ import annotations

import hashlib
import hmac

from fswan.ike.demux import admit
from fswan.ike.dh import GROUPS, DHError, DHKeyPair
from fswan.ike.events import Datagram
from fswan.ike.select import ConnEntry
from fswan.ike.state import MessageDigest, PendingQuick, TimerEvent
from fswan.ike.table import ZERO_COOKIE
from fswan.ike.timers import RETRANSMIT_DELAY
from fswan.ikev2 import fragmentation, ike_auth, signatures, suites
from fswan.ikev2.constants import ExchangeType, Flags, NotifyType, name_of
from fswan.ikev2.crypto import derive_ike_keys, skeyseed
from fswan.ikev2.exchange import (
    V2Engine,
    error_notifies,
    fail,
    has_payloads,
    nat_notifies,
    note_nat,
)
from fswan.ikev2.message import Header, Message
from fswan.ikev2.payloads import (
    CertificateRequest,
    KeyExchange,
    Nonce,
    Notify,
    Payload,
    SecurityAssociation,
)
from fswan.ikev2.sa import IkeSa
from fswan.ike.state import StateKind
from fswan.isakmp.message import add_non_esp_marker
from fswan.whackproto import RC

__all__ = ["in_request", "in_response", "initiate"]

NONCE_SIZE = 32
#: a responder state that never gets its IKE_AUTH goes after this long
HALF_OPEN_LIFE = 4 * RETRANSMIT_DELAY
#: first messages no conn allows: the first logged whole, the rest in the half-open summary
#: line (a spoofed flood from many addresses must not become a flood of log lines)
NO_CONN = "IKEv2 IKE_SA_INIT no conn allows"


# --------------------------------------------------------------------------
# initiator


def initiate(eng: V2Engine, entry: ConnEntry, now: float, whack: object | None,
             pending: list[PendingQuick], attempt: int, replaces: int | None) -> IkeSa:
    o = entry.oriented
    assert o.this.host is not None and o.that.host is not None
    st = IkeSa(
        serial=eng.table.next_serial(),
        kind=StateKind.PARENT_I1,
        connection=o,
        initiator=True,
        icookie=eng.table.new_cookie(),
        rcookie=ZERO_COOKIE,
        local_addr=o.this.host,
        local_port=eng.ike_port,
        remote_addr=o.that.host,
        remote_port=o.that.end.ikeport,
        created=now,
        whack=whack,
        attempt=attempt,
        replaces=replaces,
        pending=list(pending),
    )
    st.auth = entry.auths[0] if entry.auths else 1
    st.peer_dpd = True  # liveness checks are part of IKEv2
    st.offered = tuple(entry.ike)
    eng.table.add_initiator(st)
    st.ni_b = eng.random(NONCE_SIZE)
    st.dh = DHKeyPair.generate(GROUPS[st.offered[0].group], eng.random)
    eng.log_state(st, "initiating IKEv2 connection")
    _send_request(eng, st)
    eng.log_state(st, f"{st.kind.label}: {st.kind.story} to {st.remote_addr}:{st.remote_port}",
                  RC.NEW_STATE + int(st.kind))
    return st


def _send_request(eng: V2Engine, st: IkeSa) -> None:
    assert st.dh is not None
    payloads: list[Payload] = []
    if st.cookie:
        payloads.append(Notify(NotifyType.COOKIE, st.cookie))
    payloads += [
        suites.ike_proposals(st.offered),
        KeyExchange(st.dh.group.number, st.dh.public_bytes()),
        Nonce(st.ni_b),
    ]
    if eng.nat_traversal:
        payloads += nat_notifies(st.icookie + ZERO_COOKIE, st.local_addr, st.local_port,
                                 st.remote_addr, st.remote_port)
    payloads.append(_hash_algorithms())
    payloads += fragmentation.announce(st.connection.conn.fragmentation)
    data = Message(Header(st.icookie, ZERO_COOKIE, ExchangeType.IKE_SA_INIT, Flags.INITIATOR, 0),
                   tuple(payloads)).encode()
    st.init_request = data
    st.outstanding, st.outstanding_owner, st.next_request = 0, st.serial, 1
    st.outstanding_exchange = ExchangeType.IKE_SA_INIT
    st.last_sent = data
    st.retransmits = 0
    st.set_event(TimerEvent.RETRANSMIT, eng.now + RETRANSMIT_DELAY)
    eng.emit(st, data)


def in_response(eng: V2Engine, st: IkeSa, message: Message, md: MessageDigest) -> bool:
    """The answer to our IKE_SA_INIT; True when the IKE SA has its keys (IKE_AUTH next)."""
    cookie = message.notify(NotifyType.COOKIE)
    if cookie is not None:
        if st.cookie == cookie.data:
            raise fail("responder asked again for the cookie we sent", delete=False)
        eng.log_state(st, "responder wants a cookie (it is busy): sending IKE_SA_INIT again")
        st.cookie = cookie.data
        _send_request(eng, st)
        return False
    invalid_ke = message.notify(NotifyType.INVALID_KE_PAYLOAD)
    if invalid_ke is not None:
        group = int.from_bytes(invalid_ke.data[:2], "big")
        assert st.dh is not None
        if group == st.dh.group.number or group not in {p.group for p in st.offered}:
            raise fail(f"IKE_SA_INIT refused with INVALID_KE_PAYLOAD for group {group}, "
                       "which we did not propose")
        eng.log_state(st, f"responder wants DH group {GROUPS[group].name}: "
                          "sending IKE_SA_INIT again")
        st.dh = DHKeyPair.generate(GROUPS[group], eng.random)
        st.offered = tuple(sorted(st.offered, key=lambda p: p.group != group))
        _send_request(eng, st)
        return False
    errors = error_notifies(message)
    if errors:
        raise fail(f"IKE_SA_INIT response: {name_of(NotifyType, errors[0].notify_type)}",
                   "No acceptable response to our first IKE message")
    has_payloads(message, SecurityAssociation.TYPE, KeyExchange.TYPE, Nonce.TYPE)
    proposal = suites.accept_ike(message.get(SecurityAssociation), st.offered)  # type: ignore[arg-type]
    if proposal is None:
        raise fail("IKE_SA_INIT response: the responder chose a proposal we did not offer")
    ke = message.get(KeyExchange)
    assert ke is not None and st.dh is not None
    if ke.group != proposal.group or ke.group != st.dh.group.number:
        raise fail(f"IKE_SA_INIT response: KE of group {ke.group}, not the chosen "
                   f"{proposal.group}")
    st.proposal = proposal
    st.nr_b = message.get(Nonce).data  # type: ignore[union-attr]
    eng.table.set_rcookie(st, md.header.spi_r)
    st.init_response = md.raw
    st.peer_hashes = _peer_hashes(message)
    st.peer_asked_cert = bool(message.all(CertificateRequest))
    st.peer_fragmentation = fragmentation.supported(message)
    _keys(st, ke.data)
    note_nat(st, message, md.header.spis, md)
    if st.natt is not None and (st.nat_us or st.nat_peer):
        eng.float_ports(st)  # type: ignore[attr-defined]
    return True


# --------------------------------------------------------------------------
# responder


def _cookie(eng: V2Engine, md: MessageDigest, nonce: bytes) -> bytes:
    """RFC 7296 2.6: a version byte | HMAC(secret, Ni | IPi | SPIi)."""
    secret = eng.v2.cookie_secret(eng)  # type: ignore[attr-defined]
    mac = hmac.new(secret, nonce + md.remote_addr.packed + md.header.spi_i, hashlib.sha256)
    return b"\x01" + mac.digest()


def _answer_clear(eng: V2Engine, md: MessageDigest, payloads: list[Payload]) -> None:
    """A stateless answer: a COOKIE demand or a refusal, to where the request came from."""
    header = Header(md.header.spi_i, ZERO_COOKIE, ExchangeType.IKE_SA_INIT, Flags.RESPONSE, 0)
    data = Message(header, tuple(payloads)).encode()
    if md.local_port == eng.natt_port:
        data = add_non_esp_marker(data)
    eng.out.datagram(Datagram(data, md.local_port, md.remote_addr, md.remote_port, md.local_addr))


def in_request(eng: V2Engine, message: Message, md: MessageDigest) -> None:
    """A first IKE_SA_INIT request (SPIr zero)."""
    known = eng.table.half_open_responder(md.header.spi_i, md.remote_addr)
    if known is not None:
        if isinstance(known, IkeSa) and known.init_request == md.raw and known.last_sent:
            eng.count("retransmits_received")
            eng.emit(known, known.last_sent)
        return
    try:
        has_payloads(message, SecurityAssociation.TYPE, KeyExchange.TYPE, Nonce.TYPE)
    except Exception as error:
        eng.count("malformed")
        eng.out.log(f"packet from {md.peer}: IKE_SA_INIT request: {error}")
        return
    nonce = message.get(Nonce).data  # type: ignore[union-attr]
    if eng.busy:
        expected = _cookie(eng, md, nonce)
        got = message.notify(NotifyType.COOKIE)
        if got is None or not hmac.compare_digest(got.data, expected):
            eng.count("cookies_sent")
            _answer_clear(eng, md, [Notify(NotifyType.COOKIE, expected)])
            return
        eng.count("cookies_verified")
    if not admit(eng, md, False):
        return
    candidates = eng.select.responder_candidates(md.local_addr, md.remote_addr, (1, 3, 9, 10, 11),
                                                 False, ikev2=True)
    if not candidates:
        eng.count("no_connection")
        if NO_CONN not in eng.halfopen.dropped:  # one line, then the interval's summary counts
            eng.out.log(f"IKEv2 IKE_SA_INIT request received on {md.local_addr}:{md.local_port} "
                        f"from {md.peer} but no IKEv2 connection has been authorized")
        eng.halfopen.note(NO_CONN)
        _answer_clear(eng, md, [Notify(NotifyType.NO_PROPOSAL_CHOSEN)])
        return
    offered = message.get(SecurityAssociation)
    assert offered is not None
    ke = message.get(KeyExchange)
    assert ke is not None
    chosen = None
    for entry in candidates:
        picked = suites.choose_ike(offered, entry.ike)
        if picked is not None:
            chosen = (entry, picked[0], picked[1])
            break
    if chosen is None:
        eng.count("no_proposal_chosen")
        ours = "; ".join(suites.describe_ike(p) for p in candidates[0].ike)
        eng.out.log(f"IKE_SA_INIT from {md.peer}: no proposal chosen (we accept: {ours})")
        _answer_clear(eng, md, [Notify(NotifyType.NO_PROPOSAL_CHOSEN)])
        return
    entry, reply_proposal, proposal = chosen
    if ke.group != proposal.group:
        eng.count("invalid_ke_sent")
        eng.out.log(f"IKE_SA_INIT from {md.peer}: KE of group {ke.group}; asking for "
                    f"{GROUPS[proposal.group].name} (INVALID_KE_PAYLOAD)")
        _answer_clear(eng, md, [Notify(NotifyType.INVALID_KE_PAYLOAD,
                                       proposal.group.to_bytes(2, "big"))])
        return
    host = entry.oriented.this.host
    if md.local_addr.is_unspecified and host is not None:
        md.local_addr = host
    st = IkeSa(
        serial=eng.table.next_serial(),
        kind=StateKind.PARENT_R1,
        connection=entry.oriented,
        initiator=False,
        icookie=md.header.spi_i,
        rcookie=ZERO_COOKIE,
        local_addr=md.local_addr,
        local_port=md.local_port,
        remote_addr=md.remote_addr,
        remote_port=md.remote_port,
        created=md.now,
        quiet=eng.busy,
    )
    st.peer_dpd = True
    st.proposal = proposal
    st.offered = tuple(entry.ike)
    st.auth = entry.auths[0] if entry.auths else 1
    st.init_request = md.raw
    st.peer_next = 1
    eng.table.add_responder(st)
    eng.table.set_rcookie(st, eng.table.new_cookie())
    eng.log_state(st, f"responding to IKE_SA_INIT from {md.peer}")
    st.ni_b = nonce
    st.nr_b = eng.random(NONCE_SIZE)
    try:
        st.dh = DHKeyPair.generate(GROUPS[proposal.group], eng.random)
        our_public = st.dh.public_bytes()
        _keys(st, ke.data)
    except DHError as error:
        eng.log_state(st, f"IKE_SA_INIT from {md.peer}: bad KE: {error}")
        eng.table.forget(st)
        _answer_clear(eng, md, [Notify(NotifyType.INVALID_SYNTAX)])
        return
    note_nat(st, message, st.cookies[:8] + ZERO_COOKIE, md)
    payloads: list[Payload] = [
        SecurityAssociation((reply_proposal,)),
        KeyExchange(proposal.group, our_public),
        Nonce(st.nr_b),
    ]
    if st.natt is not None:
        payloads += nat_notifies(st.cookies, st.local_addr, st.local_port, st.remote_addr,
                                 st.remote_port)
    payloads += ike_auth.cert_requests(eng, entry)
    st.peer_hashes = _peer_hashes(message)
    if st.peer_hashes:
        payloads.append(_hash_algorithms())
    st.peer_fragmentation = fragmentation.supported(message)
    if st.peer_fragmentation:
        payloads += fragmentation.announce(entry.conn.fragmentation)
    data = Message(Header(st.icookie, st.rcookie, ExchangeType.IKE_SA_INIT, Flags.RESPONSE, 0),
                   tuple(payloads)).encode()
    st.init_response = data
    st.last_sent = data
    st.reply_to = md.raw
    st.set_event(TimerEvent.SO_DISCARD, md.now + HALF_OPEN_LIFE)
    eng.emit(st, data)
    eng.log_state(st, f"{st.kind.label}: {st.kind.story}", RC.NEW_STATE + int(st.kind))


def _hash_algorithms() -> Notify:
    """RFC 7427: the hashes we take in digital signatures (AUTH method 14)."""
    return Notify(NotifyType.SIGNATURE_HASH_ALGORITHMS,
                  b"".join(h.to_bytes(2, "big") for h in signatures.OUR_HASHES))


def _peer_hashes(message: Message) -> frozenset[int]:
    found = message.notify(NotifyType.SIGNATURE_HASH_ALGORITHMS)
    if found is None:
        return frozenset()
    data = found.data
    return frozenset(int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data) - 1, 2))


def _keys(st: IkeSa, peer_public: bytes) -> None:
    """The DH secret, SKEYSEED and the seven keys (DHError for a bad peer value)."""
    assert st.dh is not None and st.proposal is not None
    shared = st.dh.shared_secret(peer_public)
    st.suite = suites.ike_suite(st.proposal)
    seed = skeyseed(st.suite.prf, st.ni_b, st.nr_b, shared)
    st.sk = derive_ike_keys(st.suite, seed, st.ni_b, st.nr_b, st.icookie, st.rcookie)
    st.dh = None  # one use: the secret goes with it
