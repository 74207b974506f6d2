"""IKE_AUTH (RFC 7296 1.2, 2.15): identities, AUTH, the first Child SA, certificates, CP.

AUTH signs our IKE_SA_INIT message, the peer's nonce and prf(SK_p, our ID): with a
PSK it is prf(prf(secret, "Key Pad for IKEv2"), octets) (method 2); with raw RSA keys
or a certificate's RSA/ECDSA key a signature (``signatures.py``: RFC 7427 when the
peer announced SIGNATURE_HASH_ALGORITHMS).  CERT goes as ``leftsendcert=`` says, a
CERTREQ names our trust anchors' keys, and the peer's certificate is checked as in
IKEv1 (``certauth.check_peer_certificate``).  The responder picks the conn by the
proven ID (``rightid=``, ``%any``), the one whose keys verify its AUTH, and the Child
SA's conn by the selectors (:mod:`~fswan.ikev2.children`).  A refused AUTH ends the
IKE SA; a refused Child SA leaves the IKE SA up without it, as RFC 7296 says.
"""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from fswan.config.ids import Identity
from fswan.ike import certauth, lifecycle
from fswan.ike.events import IsakmpSAEstablished
from fswan.ike.select import ConnEntry, ids_match
from fswan.ike.state import ExchangeError, MessageDigest, StateKind
from fswan.ikev2 import children, configuration, signatures, suites
from fswan.ikev2.constants import AuthMethod, ExchangeType, NotifyType, name_of
from fswan.ikev2.crypto import psk_auth, signed_octets, verify_psk_auth
from fswan.ikev2.exchange import (
    V2Engine,
    error_notifies,
    fail,
    has_payloads,
    id_body,
    peer_identity,
    request,
    respond,
)
from fswan.ikev2.message import Message
from fswan.ikev2.payloads import (
    IDi,
    IDr,
    Authentication,
    Certificate,
    CertificateRequest,
    Notify,
    Payload,
    SecurityAssociation,
    TSi,
    TSr,
)
from fswan.ikev2.sa import IkeSa
from fswan.isakmp.payloads import CertPayload
from fswan.whackproto import RC

__all__ = ["in_request", "in_response", "send_request"]

_PSK, _RSA = 1, 3  # fswan's auth method numbers (IKEv1's), as ConnEntry.auths has them
_X509 = 4  # CERT/CERTREQ encoding: X.509 certificate - signature


def _octets(st: IkeSa, initiator: bool, id_body_bytes: bytes) -> bytes:
    """What the AUTH of the original initiator (or responder) covers."""
    assert st.suite is not None and st.sk is not None
    first = st.init_request if initiator else st.init_response
    nonce = st.nr_b if initiator else st.ni_b
    return signed_octets(st.suite.prf, first, nonce, st.sk.sk_p(initiator), id_body_bytes)


def _our_auth(eng: V2Engine, st: IkeSa, entry: ConnEntry, octets: bytes, peer: Identity) -> Authentication:
    """AUTH with the conn's PSK, its certificate's key or its raw RSA key."""
    assert st.suite is not None
    o = entry.oriented
    if st.auth == _PSK:
        secret = eng.select.secrets.find_psk(o.this.id, peer)
        if secret is None:
            raise fail(f"no PSK for '{o.this.id}' and '{peer}' in ipsec.secrets",
                       notify=NotifyType.AUTHENTICATION_FAILED)
        return Authentication(AuthMethod.SHARED_KEY_MIC,
                              psk_auth(st.suite.prf, bytes(secret.value), octets))  # type: ignore[arg-type]
    key = None
    if entry.creds.cert is not None:
        found = eng.select.secrets.find_key_for(entry.creds.cert.public_key())
        key = found.value if found is not None else None
    else:
        key = eng.select.our_private_key(o)
    if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
        raise fail(f"unable to locate my private key for '{o.this.id}' in ipsec.secrets",
                   notify=NotifyType.AUTHENTICATION_FAILED)
    return signatures.sign(key, octets, st.peer_hashes)


def _verify(eng: V2Engine, st: IkeSa, entry: ConnEntry, auth: Authentication, octets: bytes,
            peer: Identity, certs: list[x509.Certificate], why: list[str]) -> bool:
    """Does ``auth`` prove ``peer`` under ``entry``'s policy and keys?  (Reasons it
    does not, worth a log line, are added to ``why``.)"""
    assert st.suite is not None
    o = entry.oriented
    if auth.method == AuthMethod.SHARED_KEY_MIC:
        if _PSK not in entry.auths:
            return False
        secret = eng.select.secrets.find_psk(o.this.id, peer)
        return secret is not None and verify_psk_auth(
            st.suite.prf, bytes(secret.value), octets, auth.data)  # type: ignore[arg-type]
    creds = entry.creds
    if certs or creds.uses_certificates:
        try:
            end, lines = certauth.check_peer_certificate(
                eng.select.trust, creds, certs, peer, eng.now, eng.select.strict_crl)
        except ExchangeError as error:
            why.extend(error.lines)
            return False
        key = end.public_key()
        if signatures.fswan_method(key) not in entry.auths:
            why.append(f"the key of '{peer}''s certificate does not suit authby= of "
                       f'"{entry.name}"')
            return False
        if not signatures.verify(key, auth, octets):
            why.append(f"Signature check (on {peer}) failed (wrong key?)")
            return False
        for line in lines:
            eng.log_state(st, line)
        st.peer_cert = end
        return True
    if _RSA not in entry.auths:
        return False
    for key in eng.select.peer_public_keys(o, peer):
        if signatures.verify(key, auth, octets):
            return True
    why.append(f"Signature check (on {peer}) failed (no raw RSA key of it verifies)")
    return False


def _peer_certs(message: Message, who: str) -> list[x509.Certificate]:
    found = [CertPayload(c.encoding, c.data) for c in message.all(Certificate)]
    try:
        return certauth.read_certificates(found, who)
    except ExchangeError as error:
        raise fail(*error.lines, notify=NotifyType.AUTHENTICATION_FAILED) from None


def cert_requests(eng: V2Engine, entry: ConnEntry) -> list[Payload]:
    """A CERTREQ naming our trust anchors' keys, for a conn that authenticates by signature."""
    if _PSK in entry.auths or eng.select.nocrsend or eng.select.trust is None:
        return []
    ids = eng.select.trust.ca_key_ids()
    return [CertificateRequest(_X509, b"".join(ids))] if ids else []


def _our_certs(entry: ConnEntry, st: IkeSa) -> list[Payload]:
    return [Certificate(c.encoding, c.data)
            for c in certauth.cert_payloads(entry.creds, st.peer_asked_cert)]


# --------------------------------------------------------------------------
# initiator


def send_request(eng: V2Engine, st: IkeSa) -> None:
    """IKE_AUTH request: IDi, [IDr], AUTH, the first Child SA's SA and selectors."""
    entry = eng.select[st.conn_name]
    o = entry.oriented
    idi = id_body(o.this.id, True, entry.creds.cert)
    auth = _our_auth(eng, st, entry, _octets(st, True, idi.encode_body()), o.that.id)
    child = children.offer(eng, entry, st, None)
    st.first_child = child
    payloads: list[Payload] = [idi, *_our_certs(entry, st)]
    if eng.first_contact(st):
        payloads.append(Notify(NotifyType.INITIAL_CONTACT))
    if not o.that.id.is_any and not o.that.id.is_pattern:
        payloads.append(id_body(o.that.id, False))
    payloads.append(auth)
    payloads += cert_requests(eng, entry)
    payloads += configuration.request(entry)
    payloads += children.offer_payloads(child)
    st.kind = StateKind.PARENT_I2
    request(eng, st, st, lambda _mid: (ExchangeType.IKE_AUTH, payloads))
    eng.log_state(st, f"{st.kind.label}: {st.kind.story}", RC.NEW_STATE + int(st.kind))


def in_response(eng: V2Engine, st: IkeSa, message: Message, md: MessageDigest) -> None:
    errors = error_notifies(message)
    if errors and message.get(Authentication) is None:
        raise fail(f"IKE_AUTH response: {name_of(NotifyType, errors[0].notify_type)}")
    has_payloads(message, IDr.TYPE, Authentication.TYPE)
    idr = message.get(IDr)
    auth = message.get(Authentication)
    assert idr is not None and auth is not None
    peer = peer_identity(idr)
    entry = eng.select[st.conn_name]
    if not ids_match(entry.oriented.that.id, peer):
        raise fail(f"we require IKEv2 peer to have ID '{entry.oriented.that.id}', but peer "
                   f"declares '{peer}'")
    why: list[str] = []
    certs = _peer_certs(message, f"peer '{peer}'")
    if not _verify(eng, st, entry, auth, _octets(st, False, idr.encode_body()), peer, certs, why):
        raise fail(*why, f"IKE_AUTH response: AUTH of peer '{peer}' does not verify")
    st.peer_id = peer
    eng.follow_peer(st, md)  # type: ignore[attr-defined]
    established(eng, st, md, message)
    offered = st.first_child
    st.first_child = None
    first = st.pending.pop(0) if st.pending and st.pending[0].conn == st.conn_name else None
    whack, st.whack = st.whack, None
    if whack is None and first is not None:
        whack = first.whack
    result: tuple | str = "the gateway gave no address (CP)"
    if configuration.take(eng, st, entry, message):
        result = children.accept(offered, message.get(SecurityAssociation), message.get(TSi),
                                 message.get(TSr), message.all(Notify))
    if isinstance(result, str):
        eng.log_state(st, f"IKE SA established but its first Child SA was refused: {result}",
                      RC.LOG_SERIOUS)
        eng.out.release(whack, False)
    else:
        proposal, peer_spi, tsi, tsr = result
        children.install(eng, st, entry, initiator=True, our_spi=offered.our_spi,
                         peer_spi=peer_spi, proposal=proposal, pfs_group=None, ours=tsi,
                         peers=tsr, transport=offered.transport, nonce_i=st.ni_b,
                         nonce_r=st.nr_b, whack=whack,
                         replaces=first.replaces if first is not None else None)


# --------------------------------------------------------------------------
# responder


def _candidates(eng: V2Engine, st: IkeSa, peer: Identity, ours: Identity | None) -> list[ConnEntry]:
    current = eng.select.get(st.conn_name)
    found = [current] if current is not None else []
    found += [e for e in eng.select.for_peer_id(peer) if e is not current]
    out = []
    for entry in found:
        o = entry.oriented
        if not entry.conn.accepts_ikev2 or o.this.host != st.local_addr:
            continue
        if o.that.host is not None and o.that.host != st.remote_addr:
            continue
        if not ids_match(o.that.id, peer):
            continue
        if ours is not None and not (o.this.id == ours or ours.is_any):
            continue
        out.append(entry)
    return out


def in_request(eng: V2Engine, st: IkeSa, message: Message, md: MessageDigest) -> None:
    """The initiator's IKE_AUTH: prove it, answer with ours and the Child SA."""
    has_payloads(message, IDi.TYPE, Authentication.TYPE)
    idi, auth = message.get(IDi), message.get(Authentication)
    assert idi is not None and auth is not None
    peer = peer_identity(idi)
    idr = message.get(IDr)
    ours = peer_identity(idr) if idr is not None else None
    octets = _octets(st, True, idi.encode_body())
    certs = _peer_certs(message, f"peer '{peer}'")
    st.peer_asked_cert = bool(message.all(CertificateRequest))
    why: list[str] = []
    entry = next((e for e in _candidates(eng, st, peer, ours)
                  if _verify(eng, st, e, auth, octets, peer, certs, why)), None)
    if entry is None:
        respond(eng, st, md, ExchangeType.IKE_AUTH, [Notify(NotifyType.AUTHENTICATION_FAILED)])
        raise fail(*why, f"IKE_AUTH from {md.peer}: no IKEv2 connection for peer '{peer}' "
                   "whose key proves its AUTH; AUTHENTICATION_FAILED sent")
    eng.switch_connection(st, entry)
    st.auth = _PSK if auth.method == AuthMethod.SHARED_KEY_MIC else next(
        a for a in entry.auths if a != _PSK)
    st.peer_id = peer
    eng.follow_peer(st, md)  # type: ignore[attr-defined]
    idr_ours = id_body(entry.oriented.this.id, False, entry.creds.cert)
    our_auth = _our_auth(eng, st, entry, _octets(st, False, idr_ours.encode_body()), peer)
    transport = message.notify(NotifyType.USE_TRANSPORT_MODE) is not None
    cp = configuration.serve(eng, st, entry, message)
    choice: children.Choice | int = NotifyType.INTERNAL_ADDRESS_FAILURE
    if cp or not configuration.asked(message):
        choice = children.choose(eng, st, message.get(SecurityAssociation), message.get(TSi),
                                 message.get(TSr), transport, None, first=entry)
    if isinstance(choice, children.Choice) and choice.entry is not entry and \
            choice.entry.conn.accepts_ikev2 and _verify(eng, st, choice.entry, auth, octets, peer,
                                                        certs, []):
        # the IKE SA belongs to the conn of its first Child SA (same IDs, keys and auth:
        # what we sent stays true), not to whichever conn answered IKE_SA_INIT
        eng.switch_connection(st, choice.entry)
    payloads: list[Payload] = [idr_ours, *_our_certs(entry, st), our_auth, *cp]
    our_spi = 0
    if isinstance(choice, children.Choice):
        our_spi = eng.table.new_spi()
        payloads += children.answer_payloads(choice, our_spi)
    else:
        payloads.append(Notify(choice))
    respond(eng, st, md, ExchangeType.IKE_AUTH, payloads)
    established(eng, st, md, message)
    if isinstance(choice, children.Choice):
        children.install(eng, st, choice.entry, initiator=False, our_spi=our_spi,
                         peer_spi=choice.peer_spi, proposal=choice.proposal, pfs_group=None,
                         ours=choice.tsr, peers=choice.tsi, transport=transport,
                         nonce_i=st.ni_b, nonce_r=st.nr_b)
    else:
        eng.log_state(st, f"IKE SA established without a Child SA: "
                          f"{NotifyType(choice).name} sent", RC.LOG_SERIOUS)


# --------------------------------------------------------------------------
# both


def details(st: IkeSa) -> str:
    assert st.proposal is not None
    how = "PSK" if st.auth == _PSK else "RSASIG" if st.auth == _RSA else "ECDSA"
    return f" {{auth={how} {suites.describe_ike(st.proposal)}}}"


def established(eng: V2Engine, st: IkeSa, md: MessageDigest | None, message: Message | None) -> None:
    """The IKE SA is up: newest of its conn, rekey/expiry, liveness, keepalives, uniqueids."""
    now = eng.now
    st.kind = StateKind.V2_ESTABLISHED_IKE_SA
    st.retransmits = 0
    st.established_at = now
    st.last_inbound = now
    entry = eng.select.entries[st.conn_name]
    entry.newest_isakmp = st.serial
    st.lifetime = entry.conn.ikelifetime
    lifecycle.schedule_replace(eng, st, now)
    lifecycle.announce(eng, st, details(st))
    assert st.peer_id is not None
    eng.out.event(IsakmpSAEstablished(st.conn_name, st.serial, st.remote_addr, st.remote_port,
                                      st.peer_id))
    if message is not None and message.notify(NotifyType.INITIAL_CONTACT) is not None:
        lifecycle.initial_contact(eng, st)
    if eng.uniqueids:
        lifecycle.unique(eng, st)
    if entry.conn.dpddelay:
        st.dpd_next = now + entry.conn.dpddelay
    if st.nat_us and st.natt is not None and eng.keep_alive > 0:
        st.keepalive_next = now + eng.keep_alive
