"""Main Mode (RFC 2409 section 5) and the phase-1 pieces Aggressive Mode shares.

Six messages::

    MI1  SA, VIDs                       -->
                                        <--  MR1  SA (one transform), VIDs
    MI2  KE, Ni, [NAT-D, NAT-D]         -->
                                        <--  MR2  KE, Nr, [NAT-D, NAT-D]
    MI3* IDii, HASH_I | SIG_I, [N(IC)]  -->     (port 4500 from here when NATed)
                                        <--  MR3* IDir, HASH_R | SIG_R, [N(IC)]

Handlers are named after pluto's (``main_inI1_outR1`` -> :func:`in_i1_out_r1`)
and called by the engine from the transition table in :mod:`fswan.ike.state`.
They check and build messages; the engine owns the tables, timers and
output queues and is reached only through the helper methods it documents
for this purpose.

Authentication is by pre-shared key or signature: RSA (raw keys or a
certificate's, PKCS#1 v1.5 over the bare HASH, RFC 2409 section 5.1) or ECDSA
(certificates, RFC 4754).  With certificates, CR payloads go beside KE (MI2,
MR2) and CERT payloads beside the ID (MI3, MR3); see :mod:`fswan.ike.certauth`.
Identities are ID_IPV4_ADDR / ID_IPV6_ADDR (protocol 0, port 0, as strongSwan
sends), ID_FQDN for ``@host``, ID_USER_FQDN for ``user@host`` and
ID_DER_ASN1_DN for a DN.

PSK with a road warrior (``right=%any``): the key is needed to decrypt MI3,
which is what carries the peer's ID, so the responder cannot look the key up
by that ID.  Like pluto, it uses the PSK for (our id, %any) -- an entry for
our id alone, ``%any`` or one without selectors -- falling back to one for
the candidate connection's ``rightid`` when that is set.  Once MI3 is
decrypted the connection may switch to a better one for the peer's ID, but
only to one that yields the same PSK.
"""

from __future__ import annotations


from cryptography import x509

from fswan.config.ids import IdError, IdKind, Identity, parse_id
from fswan.ike import certauth, crypto
from fswan.ike.dh import DHError, DHKeyPair
from fswan.ike.natt import detect_nat, natd_payloads, natt_method, our_vendor_ids, reply_vendor_ids
from fswan.ike.proposals import (
    NoAcceptableProposal,
    accept_ike_reply,
    choose_ike,
    ike_reply_sa,
    ike_sa_payload,
)
from fswan.ike.state import (
    ExchangeError,
    KeyPending,
    MessageDigest,
    Phase1State,
    StateKind,
    Transition,
)
from fswan.ike.context import Phase1Context
from fswan.ike.select import base_auth, ids_match, wire_auths
from fswan.isakmp.constants import (
    ExchangeType,
    Flags,
    IdType,
    KnownVendor,
    NotifyType,
    OakleyAuth,
    PayloadType,
    ProtocolId,
)
from fswan.isakmp.message import Header, Message
from fswan.pki.dn import DNError, dn_from_der, dn_to_der, format_dn, parse_dn
from fswan.isakmp.payloads import (
    CertPayload,
    CRPayload,
    HashPayload,
    IDPayload,
    KEPayload,
    NATDPayload,
    NoncePayload,
    NotificationPayload,
    Payload,
    SAPayload,
    SigPayload,
    VendorIDPayload,
)


NONCE_SIZE = 32
AUTH_NAMES: dict[int, str] = {
    OakleyAuth.OAKLEY_PRESHARED_KEY: "PRESHARED_KEY",
    OakleyAuth.OAKLEY_RSA_SIG: "RSA_SIG",
    **certauth.AUTH_NAMES,
}


# --------------------------------------------------------------------------
# identities


def id_payload(identity: Identity, cert: x509.Certificate | None = None) -> IDPayload:
    """Our phase-1 ID payload (protocol 0, port 0).  A DN that is our certificate's
    subject goes as the certificate encodes it, string types and all, so that a peer
    comparing DER bytes finds them equal."""
    if identity.kind is IdKind.DER_ASN1_DN:
        if cert is not None and identity == certauth.subject_identity(cert):
            return IDPayload(IdType.ID_DER_ASN1_DN, cert.subject.public_bytes())
        return IDPayload(IdType.ID_DER_ASN1_DN, dn_to_der(parse_dn(identity.value)))
    if identity.kind in (IdKind.IPV4_ADDR, IdKind.IPV6_ADDR):
        return IDPayload.from_address(identity.value)
    if identity.kind is IdKind.FQDN:
        return IDPayload.fqdn(identity.value)
    if identity.kind is IdKind.USER_FQDN:
        return IDPayload.user_fqdn(identity.value)
    if identity.kind is IdKind.KEY_ID:  # opaque bytes: the iOS/Cisco "group name"
        return IDPayload(IdType.ID_KEY_ID, identity.key_id)
    raise ExchangeError(f"cannot send our ID '{identity}': give this end a specific id=")


def identity_of(payload: IDPayload) -> Identity:
    """The peer's phase-1 ID as an Identity; INVALID_ID_INFORMATION when unusable.

    An ID with a control character (a NUL, an escape sequence) is refused here,
    before it can reach a log line, the status, JSON or an updown script's
    ``PLUTO_PEER_ID``."""
    if payload.id_type in (IdType.ID_FQDN, IdType.ID_USER_FQDN):
        text = payload.text
        if not text.isprintable():
            shown = text.encode("unicode_escape").decode("ascii")
            raise ExchangeError(
                f"peer's {payload.id_type} ID '{shown}' contains non-printable characters",
                notify=NotifyType.INVALID_ID_INFORMATION,
            )
    if payload.id_type == IdType.ID_DER_ASN1_DN:
        try:
            text = format_dn(dn_from_der(payload.data))
        except DNError as error:
            raise ExchangeError(
                f"peer's ID_DER_ASN1_DN ID is unusable: {error}",
                notify=NotifyType.INVALID_ID_INFORMATION,
            ) from None
        if not text.isprintable():
            shown = text.encode("unicode_escape").decode("ascii")
            raise ExchangeError(
                f"peer's ID_DER_ASN1_DN ID '{shown}' contains non-printable characters",
                notify=NotifyType.INVALID_ID_INFORMATION,
            )
        return Identity(IdKind.DER_ASN1_DN, text)
    if payload.id_type == IdType.ID_KEY_ID:
        # any bytes are a key ID; they print as @[text] or @#hex, never raw
        if not payload.data:
            raise ExchangeError(
                "peer's ID_KEY_ID ID is empty", notify=NotifyType.INVALID_ID_INFORMATION
            )
        return Identity(IdKind.KEY_ID, payload.data.hex())
    try:
        if payload.id_type in (IdType.ID_IPV4_ADDR, IdType.ID_IPV6_ADDR):
            return parse_id(str(payload.address))
        if payload.id_type == IdType.ID_FQDN:
            return parse_id("@" + payload.text)
        if payload.id_type == IdType.ID_USER_FQDN:
            text = payload.text
            if "@" not in text:
                raise IdError("ID_USER_FQDN without '@'")
            return parse_id(text)
    except (IdError, TypeError, ValueError) as error:
        raise ExchangeError(
            f"peer's {payload.id_type} ID is unusable: {error}",
            notify=NotifyType.INVALID_ID_INFORMATION,
        ) from None
    raise ExchangeError(
        f"peer's ID type {payload.id_type} is not supported",
        notify=NotifyType.INVALID_ID_INFORMATION,
    )


# --------------------------------------------------------------------------
# phase-1 pieces shared with Aggressive Mode


def read_vendor_ids(st: Phase1State, md: MessageDigest, natt_enabled: bool = True) -> list:
    """Note what the peer's vendor IDs announce (NAT-T flavour, DPD)."""
    known = [v.known for v in md.all(VendorIDPayload)]
    st.natt = natt_method(known) if natt_enabled else None
    st.peer_dpd = KnownVendor.DPD in known
    st.peer_vendors = tuple(str(k) for k in known if k is not None)
    return known


def check_nonce(nonce: NoncePayload) -> bytes:
    if not 8 <= len(nonce.data) <= 256:
        raise ExchangeError(
            f"Nonce is {len(nonce.data)} bytes; 8 to 256 required",
            notify=NotifyType.PAYLOAD_MALFORMED,
        )
    return nonce.data


def make_dh(eng: Phase1Context, st: Phase1State) -> DHKeyPair:
    assert st.proposal is not None
    st.dh = DHKeyPair.generate(st.proposal.dh_group, eng.random_bytes)
    return st.dh


def shared_secret(st: Phase1State, peer_public: bytes) -> bytes:
    assert st.dh is not None
    try:
        return st.dh.shared_secret(peer_public)
    except DHError as error:
        raise ExchangeError(str(error), notify=NotifyType.INVALID_KEY_INFORMATION) from None


def derive_keys(eng: Phase1Context, st: Phase1State) -> None:
    """SKEYID and children, and the phase-1 crypter (RFC 2409 section 5)."""
    assert st.proposal is not None
    h = st.proposal.hash_algorithm
    if st.auth == OakleyAuth.OAKLEY_PRESHARED_KEY:
        if st.psk is None:
            psk = eng.select.psk_for(st)
            if psk is None:
                conn = st.connection
                raise ExchangeError(
                    f"Can't authenticate: no preshared key found for '{conn.this.id}' and "
                    f"'{conn.that.id}'",
                    notify=NotifyType.AUTHENTICATION_FAILED,
                )
            st.psk = psk
        skeyid = crypto.skeyid_psk(h, st.psk, st.ni_b, st.nr_b)
    else:
        skeyid = crypto.skeyid_sig(h, st.ni_b, st.nr_b, st.g_xy)
    st.keys = crypto.derive_phase1_keys(
        h, skeyid, st.g_xy, st.icookie, st.rcookie, st.proposal.cipher, st.proposal.key_bits
    )
    st.crypter = crypto.Phase1Crypter.for_phase1(st.keys, st.proposal.cipher, st.g_xi, st.g_xr)


def our_hash(st: Phase1State, id_b: bytes) -> bytes:
    """HASH_I when we initiated, HASH_R when we responded."""
    assert st.keys is not None
    args = (st.keys.hash, st.keys.skeyid, st.g_xi, st.g_xr, st.icookie, st.rcookie, st.sa_i_b, id_b)
    return crypto.hash_i(*args) if st.initiator else crypto.hash_r(*args)


def peer_hash(st: Phase1State, id_b: bytes) -> bytes:
    """The HASH the peer must have sent (HASH_R for an initiator, HASH_I for a responder)."""
    assert st.keys is not None
    args = (st.keys.hash, st.keys.skeyid, st.g_xi, st.g_xr, st.icookie, st.rcookie, st.sa_i_b, id_b)
    return crypto.hash_r(*args) if st.initiator else crypto.hash_i(*args)


def auth_payload(eng: Phase1Context, st: Phase1State, id_b: bytes) -> HashPayload | SigPayload:
    """HASH_x for PSK, SIG_x (RSA or ECDSA over HASH_x) for signatures."""
    value = our_hash(st, id_b)
    if st.auth == OakleyAuth.OAKLEY_PRESHARED_KEY:
        return HashPayload(value)
    creds = credentials(eng, st)
    if creds.cert is not None:
        secret = eng.select.secrets.find_key_for(creds.cert.public_key())
        if secret is None:
            raise ExchangeError(
                f"unable to locate my private key for {AUTH_NAMES.get(st.auth, st.auth)} "
                f"Signature (no RSA or ECDSA entry in ipsec.secrets holds the key of "
                f"'{certauth.subject_identity(creds.cert)}')",
                notify=NotifyType.AUTHENTICATION_FAILED,
            )
        return SigPayload(certauth.sign(secret.value, st.auth, value))  # type: ignore[arg-type]
    if st.auth != OakleyAuth.OAKLEY_RSA_SIG:
        raise ExchangeError(
            f"unable to locate my private key for {AUTH_NAMES.get(st.auth, st.auth)} Signature",
            notify=NotifyType.AUTHENTICATION_FAILED,
        )
    key = eng.select.our_private_key(st.connection)
    if key is None:
        raise ExchangeError(
            "unable to locate my private key for RSA Signature",
            notify=NotifyType.AUTHENTICATION_FAILED,
        )
    return SigPayload(crypto.rsa_sign_hash(key, value, eng.random_bytes))


def verify_auth(
    eng: Phase1Context, st: Phase1State, md: MessageDigest, id_b: bytes, label: str
) -> None:
    """Check the peer's HASH or SIG over its ID payload body ``id_b``."""
    expected = peer_hash(st, id_b)
    if st.auth == OakleyAuth.OAKLEY_PRESHARED_KEY:
        got = md.get(HashPayload)
        if got is None:
            raise ExchangeError(
                f"missing HASH payload in {label}", notify=NotifyType.PAYLOAD_MALFORMED
            )
        if not crypto.constant_time_equal(got.data, expected):
            raise ExchangeError(
                f"Possible authentication failure: computed hash does not match hash in {label}",
                notify=NotifyType.AUTHENTICATION_FAILED,
            )
        return
    sig = md.get(SigPayload)
    if sig is None:
        raise ExchangeError(f"missing SIG payload in {label}", notify=NotifyType.PAYLOAD_MALFORMED)
    who = st.peer_id if st.peer_id is not None else st.connection.that.id
    creds = credentials(eng, st)
    certs = certauth.read_certificates(md.all(CertPayload), f"peer '{who}'")
    if certs or creds.uses_certificates or st.auth != OakleyAuth.OAKLEY_RSA_SIG:
        end, lines = certauth.check_peer_certificate(
            eng.select.trust, creds, certs, who, eng.now, eng.select.strict_crl
        )
        for line in lines:
            eng.log_state(st, line)
        st.peer_cert = end
        if not certauth.verify(end.public_key(), st.auth, expected, sig.data):
            raise ExchangeError(
                f"Signature check (on {who}) failed (wrong key?)",
                notify=NotifyType.AUTHENTICATION_FAILED,
            )
        return
    keys = eng.select.peer_public_keys(st.connection, st.peer_id)
    if not keys and eng.select.may_fetch_key(st.connection, who):
        raise KeyPending(who)
    if not keys:
        raise ExchangeError(
            f"no RSA public key known for '{who}'", notify=NotifyType.AUTHENTICATION_FAILED
        )
    if not any(crypto.rsa_verify_hash(public, expected, sig.data) for public in keys):
        raise ExchangeError(
            f"Signature check (on {who}) failed (wrong key?)",
            notify=NotifyType.AUTHENTICATION_FAILED,
        )


def credentials(eng: Phase1Context, st: Phase1State) -> certauth.Credentials:
    entry = eng.select.get(st.conn_name)
    return entry.creds if entry is not None else certauth.NO_CREDENTIALS


def note_cert_requests(eng: Phase1Context, st: Phase1State, md: MessageDigest) -> None:
    """A CR from the peer asks for our certificate (``leftsendcert=ifasked``)."""
    requests = md.all(CRPayload)
    if requests and not st.peer_asked_cert:
        st.peer_asked_cert = True
        cas = certauth.requested_cas(requests)
        if cas:
            eng.log_state(st, "peer requests certificates from " + ", ".join(f"'{n}'" for n in cas))


def our_cert_requests(eng: Phase1Context, st: Phase1State) -> list[CRPayload]:
    """CR payloads when we authenticate the peer by a certificate it should send."""
    creds = credentials(eng, st)
    if st.auth not in certauth.SIGNATURE_METHODS or eng.select.nocrsend:
        return []
    if creds.cert is None or creds.peer_cert is not None:
        return []
    return certauth.cert_requests(creds, eng.select.trust)


def our_certs(eng: Phase1Context, st: Phase1State) -> list[CertPayload]:
    if st.auth not in certauth.SIGNATURE_METHODS:
        return []
    return certauth.cert_payloads(credentials(eng, st), st.peer_asked_cert)


def our_natd(st: Phase1State, md: MessageDigest) -> list[NATDPayload]:
    """NAT-D for a message going back where ``md`` came from."""
    if st.natt is None or st.proposal is None:
        return []
    return natd_payloads(
        st.natt,
        st.proposal.hash_algorithm,
        st.icookie,
        st.rcookie,
        (md.remote_addr, md.remote_port),
        (md.local_addr, md.local_port),
    )


def first_natd(eng: Phase1Context, st: Phase1State) -> list[NATDPayload]:
    """NAT-D for a message we send on our own (initiator's MI2): to the state's peer."""
    if st.natt is None or st.proposal is None:
        return []
    return natd_payloads(
        st.natt,
        st.proposal.hash_algorithm,
        st.icookie,
        st.rcookie,
        (st.remote_addr, st.remote_port),
        (st.local_addr, st.local_port),
    )


def read_natd(eng: Phase1Context, st: Phase1State, md: MessageDigest) -> None:
    """Detect NAT from the peer's NAT-D payloads and log the result."""
    if st.natt is None or st.proposal is None:
        return
    received = md.all(NATDPayload)
    if not received:
        eng.log_state(st, "NAT-Traversal: peer announced NAT-T but sent no NAT-D payloads")
        return
    result = detect_nat(
        st.proposal.hash_algorithm,
        st.icookie,
        st.rcookie,
        received,
        (md.local_addr, md.local_port),
        (md.remote_addr, md.remote_port),
    )
    st.nat_us, st.nat_peer = result.us, result.peer
    method = "RFC 3947" if st.natt == "rfc" else "draft-ietf-ipsec-nat-t-ike-02/03"
    eng.log_state(st, f"NAT-Traversal: Result using {method}: {result.describe()}")


def initial_contact(st: Phase1State) -> NotificationPayload:
    return NotificationPayload(NotifyType.INITIAL_CONTACT, ProtocolId.ISAKMP, st.cookies)


def encrypt_phase1(st: Phase1State, exchange: int, payloads: list) -> bytes:
    """A phase-1 message encrypted on the message-ID-0 chain."""
    from fswan.isakmp.message import encode_payloads

    assert st.crypter is not None
    body = st.crypter.encrypt(0, encode_payloads(payloads))
    header = Header(
        st.icookie, st.rcookie, exchange, Flags.ENCRYPTION, 0, next_payload=payloads[0].payload_type
    )
    return Message(header, encrypted_body=body).encode()


def established_details(st: Phase1State) -> str:
    """``{auth=PRESHARED_KEY cipher=aes_128 prf=sha group=MODP2048}``."""
    p = st.proposal
    assert p is not None
    cipher = f"aes_{p.key_bits}" if p.cipher == "aes_cbc" else "3des"
    prf = {"sha1": "sha"}.get(p.hash, p.hash)
    return (
        f" {{auth={AUTH_NAMES.get(st.auth, st.auth)} cipher={cipher} prf={prf} "
        f"group={p.dh_group.name}}}"
    )


# --------------------------------------------------------------------------
# initiator


def initiate(eng: Phase1Context, st: Phase1State) -> None:
    """Send MI1: our SA (every ike= transform, each auth method of the policy) and VIDs."""
    conn = eng.select[st.conn_name]
    st.offered = conn.ike
    sa = ike_sa_payload(conn.ike, wire_auths(conn, True), conn.conn.ikelifetime)
    st.sa_i_b = sa.encode()
    header = Header(st.icookie, st.rcookie, ExchangeType.MAIN_MODE)
    message = Message(header, (sa, *our_vendor_ids(eng.nat_traversal)))
    eng.send(st, message.encode())


def in_r1_out_i2(eng: Phase1Context, st: Phase1State, md: MessageDigest) -> None:
    """MR1: check the responder's choice, then send KE, Ni (and NAT-D)."""
    conn = eng.select[st.conn_name]
    try:
        choice = accept_ike_reply(md.get(SAPayload), st.offered, wire_auths(conn, True), conn.conn.ikelifetime)
    except NoAcceptableProposal as error:
        raise ExchangeError(*error.notes, *error.lines, notify=None) from None
    eng.table.set_rcookie(st, md.header.rcookie)
    st.proposal, st.auth, st.lifetime = choice.ike, base_auth(choice.auth), choice.lifetime
    read_vendor_ids(st, md, eng.nat_traversal)
    make_dh(eng, st)
    assert st.dh is not None
    st.g_xi = st.dh.public_bytes()
    st.ni_b = eng.random(NONCE_SIZE)
    payloads: list[Payload] = [KEPayload(st.g_xi), NoncePayload(st.ni_b)]
    payloads += our_cert_requests(eng, st)
    payloads += first_natd(eng, st)
    header = Header(st.icookie, st.rcookie, ExchangeType.MAIN_MODE)
    eng.send_reply(st, md, Message(header, tuple(payloads)).encode())


def in_r2_out_i3(eng: Phase1Context, st: Phase1State, md: MessageDigest) -> None:
    """MR2: derive the keys, detect NAT (float to 4500), send IDii and HASH_I/SIG_I."""
    st.g_xr = md.get(KEPayload).data
    st.nr_b = check_nonce(md.get(NoncePayload))
    note_cert_requests(eng, st, md)
    st.g_xy = shared_secret(st, st.g_xr)
    derive_keys(eng, st)
    read_natd(eng, st, md)
    if st.nat_us or st.nat_peer or eng.force_encapsulation(st):
        eng.float_ports(st)
    ident = id_payload(st.connection.this.id, credentials(eng, st).cert)
    st.our_id_b = ident.encode()
    payloads: list[Payload] = [ident, *our_certs(eng, st), auth_payload(eng, st, st.our_id_b)]
    if eng.first_contact(st):
        payloads.append(initial_contact(st))
    eng.send_reply(st, md, encrypt_phase1(st, ExchangeType.MAIN_MODE, payloads))


def in_r3(eng: Phase1Context, st: Phase1State, md: MessageDigest) -> None:
    """MR3: the responder's ID must be the one we want, and its HASH_R/SIG_R must verify."""
    ident = md.get(IDPayload)
    peer = identity_of(ident)
    wanted = st.connection.that.id
    if not ids_match(wanted, peer):
        raise ExchangeError(
            f"we require peer to have ID '{wanted}', but peer declares '{peer}'",
            notify=NotifyType.INVALID_ID_INFORMATION,
        )
    st.peer_id = peer
    verify_auth(eng, st, md, ident.wire_body, "MR3")


# --------------------------------------------------------------------------
# responder


def choose_connection_and_transform(
    eng: Phase1Context, st: Phase1State, sa: SAPayload, candidates
) -> tuple:
    """The first candidate conn whose proposals accept one of the peer's transforms.

    The state switches to that conn; if none accepts, the first conn's
    mismatch (both proposal lists) is what the peer's NO_PROPOSAL_CHOSEN logs.
    """
    first_error: NoAcceptableProposal | None = None
    for conn in candidates:
        try:
            choice = choose_ike(sa, conn.ike, wire_auths(conn, False), conn.conn.ikelifetime)
        except NoAcceptableProposal as error:
            first_error = first_error or error
            continue
        for note in choice.notes:
            eng.log_state(st, note)
        eng.switch_connection(st, conn)
        return conn, choice
    assert first_error is not None
    raise ExchangeError(
        *first_error.notes, *first_error.lines, notify=NotifyType.NO_PROPOSAL_CHOSEN
    )


def in_i1_out_r1(eng: Phase1Context, st: Phase1State, md: MessageDigest) -> None:
    """MI1: pick the connection and transform, answer with our cookie, SA and VIDs."""
    sa = md.get(SAPayload)
    conn, choice = choose_connection_and_transform(eng, st, sa, md.candidates)
    eng.table.set_rcookie(st, eng.table.new_cookie())
    st.sa_i_b = sa.wire_body
    st.offered = conn.ike
    st.proposal, st.auth, st.lifetime = choice.ike, base_auth(choice.auth), choice.lifetime
    known = read_vendor_ids(st, md, eng.nat_traversal)
    header = Header(st.icookie, st.rcookie, ExchangeType.MAIN_MODE)
    message = Message(header, (ike_reply_sa(choice), *reply_vendor_ids(known, eng.nat_traversal)))
    eng.send_reply(st, md, message.encode())


def in_i2_out_r2(eng: Phase1Context, st: Phase1State, md: MessageDigest) -> None:
    """MI2: our KE and Nr (and NAT-D); the keys can be derived now."""
    st.g_xi = md.get(KEPayload).data
    st.ni_b = check_nonce(md.get(NoncePayload))
    note_cert_requests(eng, st, md)
    dh = make_dh(eng, st)
    st.g_xy = shared_secret(st, st.g_xi)
    st.g_xr = dh.public_bytes()
    st.nr_b = eng.random(NONCE_SIZE)
    read_natd(eng, st, md)
    derive_keys(eng, st)
    payloads: list[Payload] = [KEPayload(st.g_xr), NoncePayload(st.nr_b)]
    payloads += our_cert_requests(eng, st)
    payloads += our_natd(st, md)
    header = Header(st.icookie, st.rcookie, ExchangeType.MAIN_MODE)
    eng.send_reply(st, md, Message(header, tuple(payloads)).encode())


def in_i3_out_r3(eng: Phase1Context, st: Phase1State, md: MessageDigest) -> None:
    """MI3: the peer's ID picks the final connection; verify, then IDir and HASH_R/SIG_R."""
    ident = md.get(IDPayload)
    peer = identity_of(ident)
    note_cert_requests(eng, st, md)
    issuers = certauth.claimed_issuers(md.all(CertPayload))
    conn = eng.select.refine_connection(st, peer, issuers)
    if conn is None:
        raise ExchangeError(
            f"no suitable connection for peer '{peer}'", notify=NotifyType.INVALID_ID_INFORMATION
        )
    eng.switch_connection(st, conn)
    st.peer_id = peer
    verify_auth(eng, st, md, ident.wire_body, "MI3")
    eng.follow_peer(st, md)
    ident_r = id_payload(st.connection.this.id, credentials(eng, st).cert)
    st.our_id_b = ident_r.encode()
    payloads: list[Payload] = [ident_r, *our_certs(eng, st), auth_payload(eng, st, st.our_id_b)]
    if eng.first_contact(st):
        payloads.append(initial_contact(st))
    eng.send_reply(st, md, encrypt_phase1(st, ExchangeType.MAIN_MODE, payloads))


# --------------------------------------------------------------------------
# the microcode rows of Main Mode (RFC 2409 section 5): the state waiting for a
# message, and the row saying what it accepts, what it runs and where it leads

_MM = ExchangeType.MAIN_MODE
_S, _T = StateKind, Transition
_SA, _KE, _NI, _ID = PayloadType.SA, PayloadType.KE, PayloadType.NONCE, PayloadType.ID

# state: (exchange, encrypted, required payloads, handler, next state, expects a reply)
# fmt: off
TRANSITIONS: dict[StateKind, Transition] = {
    _S.MAIN_R0: _T(_MM, False, (_SA,), in_i1_out_r1, _S.MAIN_R1, True),
    _S.MAIN_I1: _T(_MM, False, (_SA,), in_r1_out_i2, _S.MAIN_I2, True),
    _S.MAIN_R1: _T(_MM, False, (_KE, _NI), in_i2_out_r2, _S.MAIN_R2, True),
    _S.MAIN_I2: _T(_MM, False, (_KE, _NI), in_r2_out_i3, _S.MAIN_I3, True),
    _S.MAIN_R2: _T(_MM, True, (_ID,), in_i3_out_r3, _S.MAIN_R3, False),
    _S.MAIN_I3: _T(_MM, True, (_ID,), in_r3, _S.MAIN_I4, False),
}
# fmt: on
