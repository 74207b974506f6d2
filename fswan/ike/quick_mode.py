"""Quick Mode (RFC 2409 section 5.5): ESP SA pairs under an ISAKMP SA.

::

    QI1* HASH(1), SA, Ni, [KE], [IDci, IDcr]  -->
                                              <--  QR1* HASH(2), SA, Nr, [KE], [IDci, IDcr]
    QI2* HASH(3)                              -->

* PFS (a KE pair in messages 1 and 2) when ``pfs=yes`` or ``esp=`` names a
  group; the group is the one ``esp=`` names, else the phase-1 group.
* IDci/IDcr (ID_IPV4_ADDR_SUBNET, or ID_IPV4_ADDR for a lone host) are sent
  when either end has a client subnet, and left out for host-to-host, in
  which case the clients are the two phase-1 addresses.
* The responder picks the connection whose clients match *exactly* the ones
  proposed (pluto's rule; no narrowing), among those that share the ISAKMP
  SA's peer.
* Encapsulation: tunnel (1) or transport (2); UDP_TUNNEL (3) / UDP_TRANSPORT
  (4) when NAT-T is on and a NAT was seen (or ``encapsulation=yes``); the
  draft numbers 61443/61444 are proposed only when just a draft NAT-T VID
  was negotiated, and accepted from anyone.
* NAT-OA (RFC 3947 section 5.2) in UDP-encapsulated transport mode (L2TP/IPsec
  behind NAT): both ends send two, the initiator's address then the
  responder's, each as the sender sees them; what the peer sent is kept on the
  state (``nat_oa``: its own address, ours) so that the data plane can fix the
  TCP/UDP checksums it computed over those addresses (RFC 3948 section 3.1.2).
  The responder takes the peer's public address as its client for the SA, so
  that the eroute leads to where the peer really is.
* The commit bit is neither set nor required; a peer that sets it is
  tolerated (we do not send CONNECTED).
* The initiator has both directions after QR1 and installs on QUICK_I2; the
  responder computes its keys when it sends QR1 (pluto's "inbound IPsec SA
  installed") but emits the install event on QUICK_R2, once HASH(3) proved
  the initiator holds them, so both directions come out together.
"""

from __future__ import annotations

import ipaddress
from dataclasses import replace

from fswan.config.model import ConnType, Encapsulation, IPAddress, IPNetwork
from fswan.ike import crypto
from fswan.ike.dh import DHError, DHKeyPair, get_group
from fswan.ike.main_mode import NONCE_SIZE, check_nonce
from fswan.ike.natt import NATT_DRAFT, acceptable_modes, encapsulation_mode, read_encapsulation
from fswan.ike.proposals import (
    NoAcceptableProposal,
    accept_esp_reply,
    choose_esp,
    esp_reply_sa,
    esp_sa_payload,
)
from fswan.ike.state import (
    ExchangeError,
    MessageDigest,
    Phase1State,
    Phase2State,
    StateKind,
    Transition,
)
from fswan.ike.context import QuickContext
from fswan.ike.select import ConnEntry
from fswan.isakmp.constants import ExchangeType, Flags, IdType, NotifyType, PayloadType
from fswan.isakmp.message import Header, Message, encode_payloads
from fswan.isakmp.payloads import (
    HashPayload,
    IDPayload,
    KEPayload,
    NATOAPayload,
    NoncePayload,
    SAPayload,
)
from fswan.suites import format_proposal



def client_id(network: IPNetwork, protoport: tuple[int, int] | None = None) -> IDPayload:
    """ID_IPV4_ADDR for a lone host, ID_IPV4_ADDR_SUBNET for a net (v6 alike), carrying
    ``leftprotoport=`` as the ID's protocol and port (0/0 = all traffic)."""
    protocol, port = protoport or (0, 0)
    if network.prefixlen == network.max_prefixlen:
        return IDPayload.from_address(network.network_address, protocol, port)
    return IDPayload.from_network(network, protocol, port)


def protoport_of(payload: IDPayload) -> tuple[int, int]:
    return int(payload.protocol), int(payload.port)


def client_of(payload: IDPayload) -> IPNetwork:
    """The network an IDci/IDcr names; INVALID_ID_INFORMATION for other types."""
    if payload.id_type in (
        IdType.ID_IPV4_ADDR,
        IdType.ID_IPV6_ADDR,
        IdType.ID_IPV4_ADDR_SUBNET,
        IdType.ID_IPV6_ADDR_SUBNET,
    ):
        try:
            return payload.network
        except (TypeError, ValueError):
            pass
    raise ExchangeError(
        f"Quick Mode ID type {payload.id_type} is not supported",
        notify=NotifyType.INVALID_ID_INFORMATION,
    )


def pfs_group(conn: ConnEntry, p1: Phase1State) -> int | None:
    """The PFS group this connection uses, None for no PFS."""
    for proposal in conn.esp:
        if proposal.pfs_group is not None:
            return proposal.pfs_group
    if conn.conn.pfs and p1.proposal is not None:
        return p1.proposal.group
    return None


def wants_udp(conn: ConnEntry, p1: Phase1State) -> bool:
    if p1.natt is None or conn.conn.encapsulation is Encapsulation.NO:
        return False
    return p1.nat_us or p1.nat_peer or conn.conn.encapsulation is Encapsulation.YES


def _same_id(got: IDPayload, sent: IDPayload, nat: set) -> bool:
    """``got`` is the ID we sent, or (``nat``: NAT-OA addresses) that ID with the address
    the peer sees in place of ours: same type, protocol and port."""
    if got.encode() == sent.encode():
        return True
    if not nat or got.id_type != sent.id_type or (got.protocol, got.port) != (sent.protocol, sent.port):
        return False
    try:
        return got.address in nat
    except (ValueError, TypeError):
        return False


def nat_oa_payloads(initiator: IPAddress, responder: IPAddress, p1: Phase1State) -> list:
    """NAT-OAi and NAT-OAr as we see the two ends (type 21, or 131 under a draft NAT-T)."""
    draft = p1.natt == NATT_DRAFT
    return [NATOAPayload(initiator, draft), NATOAPayload(responder, draft)]


def read_nat_oa(
    eng: QuickContext, st: Phase2State, md: MessageDigest, p1: Phase1State, initiator: bool
) -> None:
    """Keep the peer's NAT-OA as (its own address, ours); without it the data plane
    recomputes the checksums instead (what Linux's "checksum unnecessary" amounts to)."""
    found = md.all(NATOAPayload)
    if len(found) < 2:
        eng.log_state(st, f"NAT-Traversal: received {len(found)} NAT-OA payloads in transport "
                          "mode; checksums will be recomputed")
        return
    first, second = found[0].address, found[1].address
    # the order is always (initiator, responder); the peer is the other one
    peer_self, peer_sees_us = (second, first) if initiator else (first, second)
    if peer_self.version != p1.remote_addr.version or peer_sees_us.version != p1.local_addr.version:
        eng.log_state(st, "NAT-Traversal: NAT-OA of another address family ignored")
        return
    st.nat_oa = (peer_self, peer_sees_us)
    eng.log_state(st, f"NAT-Traversal: NAT-OA: the peer's original address is {peer_self} "
                      f"(we see {p1.remote_addr}), ours as it sees it {peer_sees_us}")


def _hash_payload_first(md: MessageDigest, label: str) -> HashPayload:
    if not md.payloads or not isinstance(md.payloads[0], HashPayload):
        raise ExchangeError(
            f"{label} must start with a HASH payload", notify=NotifyType.INVALID_HASH_INFORMATION
        )
    return md.payloads[0]


def _encrypt(p1: Phase1State, message_id: int, payloads: list) -> bytes:
    assert p1.crypter is not None
    body = p1.crypter.encrypt(message_id, encode_payloads(payloads))
    header = Header(
        p1.icookie,
        p1.rcookie,
        ExchangeType.QUICK_MODE,
        Flags.ENCRYPTION,
        message_id,
        next_payload=payloads[0].payload_type,
    )
    return Message(header, encrypted_body=body).encode()


def _skeyid(p1: Phase1State) -> tuple:
    assert p1.keys is not None
    return p1.keys.hash, p1.keys.skeyid_a, p1.keys.skeyid_d


def _derive(st: Phase2State, p1: Phase1State) -> None:
    h, _, skeyid_d = _skeyid(p1)
    assert st.proposal is not None
    st.inbound_keys = crypto.derive_esp_keys(
        h, skeyid_d, st.proposal, st.our_spi, st.ni_b, st.nr_b, st.g_qm_xy
    )
    st.outbound_keys = crypto.derive_esp_keys(
        h, skeyid_d, st.proposal, st.peer_spi, st.ni_b, st.nr_b, st.g_qm_xy
    )


def _shared(st: Phase2State, ke: KEPayload | None, label: str) -> None:
    if st.pfs_group is None:
        if ke is not None:
            raise ExchangeError(
                f"KE payload in {label} but no PFS group was agreed",
                notify=NotifyType.INVALID_PAYLOAD_TYPE,
            )
        return
    if ke is None:
        raise ExchangeError(
            f"missing KE payload in {label} (PFS group agreed)", notify=NotifyType.PAYLOAD_MALFORMED
        )
    assert st.dh is not None
    try:
        st.g_qm_xy = st.dh.shared_secret(ke.data)
    except DHError as error:
        raise ExchangeError(str(error), notify=NotifyType.INVALID_KEY_INFORMATION) from None


def established_details(st: Phase2State, p1: Phase1State | None, dpd: str) -> str:
    """The braces of the established line, e.g.
    ``{ESP/NAT=>0x3400aa06 <0x6e6dd9cc xfrm=AES_CBC_128-HMAC_SHA1_96 NATD=192.0.2.2:4500 DPD=active}``.
    """
    assert st.proposal is not None
    kind = "ESP" + ("/NAT" if st.udp else "") + ("" if st.tunnel else "/transport")
    text = (
        f" {{{kind}=>0x{st.peer_spi:08x} <0x{st.our_spi:08x} "
        f"xfrm={format_proposal(replace(st.proposal, pfs_group=None))}"
    )
    if st.pfs_group is not None:
        text += f" pfsgroup={get_group(st.pfs_group).name}"
    if st.udp:
        text += f" NATD={st.remote_addr}:{st.remote_port}"
    return text + f" DPD={dpd}}}"


# --------------------------------------------------------------------------
# initiator


def initiate(eng: QuickContext, st: Phase2State, p1: Phase1State) -> None:
    """Send QI1 under the established ISAKMP SA ``p1``."""
    conn = eng.select[st.conn_name]
    st.pfs_group = pfs_group(conn, p1)
    st.offered = tuple(p for p in conn.esp if p.pfs_group in (None, st.pfs_group))
    tunnel = conn.conn.type is not ConnType.TRANSPORT
    st.udp = wants_udp(conn, p1)
    st.tunnel = tunnel
    st.encapsulation = encapsulation_mode(tunnel, st.udp, p1.natt)
    st.our_spi = eng.table.new_spi()
    st.ni_b = eng.random(NONCE_SIZE)
    sa = esp_sa_payload(st.offered, st.our_spi, st.encapsulation, conn.conn.keylife, st.pfs_group)
    payloads: list = [sa, NoncePayload(st.ni_b)]
    if st.pfs_group is not None:
        st.dh = DHKeyPair.generate(get_group(st.pfs_group), eng.random_bytes)
        payloads.append(KEPayload(st.dh.public_bytes()))
    st.our_client, st.peer_client = eng.replaced_clients(st) or eng.select.clients(conn, p1)
    this, that = conn.oriented.this, conn.oriented.that
    if (
        this.has_client or that.has_client or this.end.protoport or that.end.protoport
        or st.our_client != ipaddress.ip_network(p1.local_addr)
        or st.peer_client != ipaddress.ip_network(p1.remote_addr)
    ):
        st.id_ci = client_id(st.our_client, this.end.protoport)
        st.id_cr = client_id(st.peer_client, that.end.protoport)
        payloads += [st.id_ci, st.id_cr]
    if st.udp and not tunnel:
        payloads += nat_oa_payloads(p1.local_addr, p1.remote_addr, p1)
    h, skeyid_a, _ = _skeyid(p1)
    hash1 = crypto.qm_hash1(h, skeyid_a, st.message_id, encode_payloads(payloads))
    eng.send(st, _encrypt(p1, st.message_id, [HashPayload(hash1)] + payloads))


def in_r1_out_i2(eng: QuickContext, st: Phase2State, md: MessageDigest) -> None:
    """QR1: check HASH(2) and the choice, derive both directions' keys, send HASH(3)."""
    p1 = eng.isakmp_of(st)
    h, skeyid_a, _ = _skeyid(p1)
    got = _hash_payload_first(md, "QR1")
    expected = crypto.qm_hash2(h, skeyid_a, st.message_id, st.ni_b, md.after_first())
    if not crypto.constant_time_equal(got.data, expected):
        raise ExchangeError(
            "HASH(2) in QR1 does not match", notify=NotifyType.INVALID_HASH_INFORMATION
        )
    eng.note_authentic(p1, md)
    conn = eng.select[st.conn_name]
    try:
        choice = accept_esp_reply(
            md.get(SAPayload),
            st.offered,
            pfs_group=st.pfs_group,
            encapsulation=st.encapsulation,
            our_lifetime=conn.conn.keylife,
        )
    except NoAcceptableProposal as error:
        raise ExchangeError(*error.notes, *error.lines, delete=True) from None
    ids = md.all(IDPayload)
    if st.id_ci is not None:
        # in UDP-encapsulated transport mode a peer may answer with the addresses it sees
        # (strongSwan does: our private address becomes the NAT's), given in its NAT-OA
        nat = {p.address for p in md.all(NATOAPayload)} if st.udp and not st.tunnel else set()
        if (
            len(ids) != 2
            or not _same_id(ids[0], st.id_ci, nat)
            or not _same_id(ids[1], st.id_cr, nat)
        ):
            answer = " and ".join(str(client_of(i)) for i in ids) if len(ids) == 2 else f"{len(ids)} IDs"
            raise ExchangeError(
                f"IDci/IDcr in QR1 differ from what we proposed ({answer} for "
                f"{client_of(st.id_ci)} and {client_of(st.id_cr)})",
                notify=NotifyType.INVALID_ID_INFORMATION,
                delete=True,
            )
    st.nr_b = check_nonce(md.get(NoncePayload))
    _shared(st, md.get(KEPayload), "QR1")
    st.peer_spi = choice.spi
    st.proposal = replace(choice.esp, pfs_group=st.pfs_group)
    st.lifetime = choice.lifetime
    if st.udp and not st.tunnel:
        read_nat_oa(eng, st, md, p1, initiator=True)
    _derive(st, p1)
    hash3 = crypto.qm_hash3(h, skeyid_a, st.message_id, st.ni_b, st.nr_b)
    eng.send_reply(st, md, _encrypt(p1, st.message_id, [HashPayload(hash3)]))


# --------------------------------------------------------------------------
# responder


def in_i1_out_r1(eng: QuickContext, st: Phase2State, md: MessageDigest) -> None:
    """QI1: HASH(1), the connection by exact clients, the ESP choice; answer QR1."""
    p1 = eng.isakmp_of(st)
    h, skeyid_a, _ = _skeyid(p1)
    got = _hash_payload_first(md, "QI1")
    expected = crypto.qm_hash1(h, skeyid_a, st.message_id, md.after_first())
    if not crypto.constant_time_equal(got.data, expected):
        raise ExchangeError(
            "HASH(1) in QI1 does not match", notify=NotifyType.INVALID_HASH_INFORMATION
        )
    eng.note_authentic(p1, md)
    ids = md.all(IDPayload)
    if len(ids) not in (0, 2):
        raise ExchangeError(
            "Quick Mode needs both IDci and IDcr or neither",
            notify=NotifyType.INVALID_ID_INFORMATION,
        )
    if ids:
        peer_client, our_client = client_of(ids[0]), client_of(ids[1])
        peer_pp, our_pp = protoport_of(ids[0]), protoport_of(ids[1])
        st.id_ci, st.id_cr = ids
    else:
        peer_client = ipaddress.ip_network(p1.remote_addr)
        our_client = ipaddress.ip_network(p1.local_addr)
        peer_pp = our_pp = (0, 0)
    conn = eng.select.find_client_connection(p1, our_client, peer_client, our_pp, peer_pp)
    if conn is None:
        raise ExchangeError(
            "cannot respond to IPsec SA request because no connection is known for "
            + eng.select.describe_request(p1, our_client, peer_client, our_pp, peer_pp),
            notify=NotifyType.INVALID_ID_INFORMATION,
        )
    eng.switch_connection(st, conn)
    st.our_client, st.peer_client = our_client, peer_client
    tunnel = conn.conn.type is not ConnType.TRANSPORT
    group = pfs_group(conn, p1)
    modes = (
        acceptable_modes(tunnel, p1.natt)
        if conn.conn.encapsulation is not Encapsulation.NO
        else acceptable_modes(tunnel, None)
    )
    try:
        choice = choose_esp(
            md.get(SAPayload),
            conn.esp,
            pfs_group=group,
            pfs_required=group is not None,
            modes=modes,
            our_lifetime=conn.conn.keylife,
        )
    except NoAcceptableProposal as error:
        raise ExchangeError(
            *error.notes, *error.lines, notify=NotifyType.NO_PROPOSAL_CHOSEN
        ) from None
    for note in choice.notes:
        eng.log_state(st, note)
    st.ni_b = check_nonce(md.get(NoncePayload))
    st.pfs_group = choice.group
    st.proposal = replace(choice.esp, pfs_group=choice.group)
    st.lifetime = choice.lifetime
    st.encapsulation = choice.encapsulation
    st.tunnel, st.udp = read_encapsulation(choice.encapsulation) or (tunnel, False)
    st.peer_spi = choice.spi
    if st.udp and not st.tunnel:
        read_nat_oa(eng, st, md, p1, initiator=False)
        public = ipaddress.ip_network(p1.remote_addr)
        if st.peer_client != public:
            # the peer's packets reach us from its public address, and ours must go there
            eng.log_state(st, f"NAT-Traversal: transport mode: the peer's client {st.peer_client} "
                              f"is reached at its public address {p1.remote_addr}")
            st.peer_client = public
    st.our_spi = eng.table.new_spi()
    st.nr_b = eng.random(NONCE_SIZE)
    if st.pfs_group is not None:
        st.dh = DHKeyPair.generate(get_group(st.pfs_group), eng.random_bytes)
    _shared(st, md.get(KEPayload), "QI1")
    _derive(st, p1)
    payloads: list = [esp_reply_sa(choice, st.our_spi), NoncePayload(st.nr_b)]
    if st.dh is not None:
        payloads.append(KEPayload(st.dh.public_bytes()))
    if ids:
        payloads += [IDPayload(i.id_type, i.data, i.protocol, i.port) for i in ids]
    if st.udp and not st.tunnel:
        payloads += nat_oa_payloads(p1.remote_addr, p1.local_addr, p1)
    hash2 = crypto.qm_hash2(h, skeyid_a, st.message_id, st.ni_b, encode_payloads(payloads))
    eng.send_reply(st, md, _encrypt(p1, st.message_id, [HashPayload(hash2)] + payloads))


def in_i2(eng: QuickContext, st: Phase2State, md: MessageDigest) -> None:
    """QI2: HASH(3) proves the initiator has the keys; the SA pair goes live."""
    p1 = eng.isakmp_of(st)
    h, skeyid_a, _ = _skeyid(p1)
    got = _hash_payload_first(md, "QI2")
    expected = crypto.qm_hash3(h, skeyid_a, st.message_id, st.ni_b, st.nr_b)
    if not crypto.constant_time_equal(got.data, expected):
        raise ExchangeError(
            "HASH(3) in QI2 does not match", notify=NotifyType.INVALID_HASH_INFORMATION
        )
    eng.note_authentic(p1, md)


# --------------------------------------------------------------------------
# the microcode rows of Quick Mode (RFC 2409 section 5.5)

_QM = ExchangeType.QUICK_MODE
_S, _T = StateKind, Transition
_HASH, _SA, _NI = PayloadType.HASH, PayloadType.SA, PayloadType.NONCE

# state: (exchange, encrypted, required payloads, handler, next state, expects a reply)
# fmt: off
TRANSITIONS: dict[StateKind, Transition] = {
    _S.QUICK_R0: _T(_QM, True, (_HASH, _SA, _NI), in_i1_out_r1, _S.QUICK_R1, True),
    _S.QUICK_I1: _T(_QM, True, (_HASH, _SA, _NI), in_r1_out_i2, _S.QUICK_I2, False),
    _S.QUICK_R1: _T(_QM, True, (_HASH,), in_i2, _S.QUICK_R2, False),
}
# fmt: on
