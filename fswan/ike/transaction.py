"""The ISAKMP Transaction exchange (type 6) on an established ISAKMP SA: XAUTH
(draft-ietf-ipsec-isakmp-xauth-06) and Mode Config (draft-dukes-ike-mode-cfg), the
road-warrior steps between phase 1 and the first Quick Mode.

Each exchange is a pair of encrypted messages with one message ID, an ATTRIBUTE
payload behind HASH = prf(SKEYID_a, M-ID | ATTRIBUTE):

    server                                      client
    REQUEST(XAUTH_TYPE, USER_NAME, PASSWORD) -->
                                             <-- REPLY(USER_NAME=alice, PASSWORD=...)
    SET(XAUTH_STATUS=1)                      -->
                                             <-- ACK
    Mode Config, pull (modecfgpull=yes):     <-- REQUEST(INTERNAL_IP4_ADDRESS, DNS, ...)
    REPLY(INTERNAL_IP4_ADDRESS=198.51.100.200, ...) -->
    Mode Config, push:  SET(INTERNAL_IP4_ADDRESS, ...) -->  <-- ACK

Quick Modes wait (``Phase1State.pending``) until every step this conn asks for is done;
a server refuses a Quick Mode on an ISAKMP SA whose client has not finished.  The
password check is the shell's (``XauthCheckNeeded`` -> :meth:`IkeEngine.xauth_checked`):
an ``IXauthVerifier`` plugin may take its time.  Messages are not retransmitted by us;
a peer's retransmitted first message gets our first answer again.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Protocol

from fswan.config import roadwarrior
from fswan.config.model import IPAddress
from fswan.ike import crypto
from fswan.ike.addresspool import AddressPool, PoolExhausted
from fswan.ike.crypto import DecryptError
from fswan.ike.events import VirtualIpAssigned, VirtualIpReleased, XauthCheckNeeded
from fswan.ike.outbox import Outbox
from fswan.ike.select import ConnEntry, Connections
from fswan.ike.state import MessageDigest, Phase1State
from fswan.ike.table import StateTable
from fswan.isakmp.attributes import Attribute
from fswan.isakmp.constants import CfgAttr, CfgType, ExchangeType, Flags
from fswan.isakmp.errors import MalformedPacket
from fswan.isakmp.message import Header, Message, decode_payloads, encode_payloads
from fswan.isakmp.payloads import AttributePayload, HashPayload

#: wrong passwords before the server gives up (pluto's, and what iOS shows as retries)
MAX_XAUTH_ATTEMPTS = 3
XAUTH_TYPE_GENERIC = 0

#: what a Mode Config client asks for
_PULL_ATTRIBUTES = (CfgAttr.INTERNAL_IP4_ADDRESS, CfgAttr.INTERNAL_IP4_NETMASK,
                    CfgAttr.INTERNAL_IP4_DNS, CfgAttr.UNITY_DEF_DOMAIN, CfgAttr.UNITY_BANNER)


class TransactionContext(Protocol):
    """What the Transaction exchange needs of the engine.  It never calls back: the
    caller looks at ``Transaction.done``/``failed`` afterwards (``lifecycle.after_transaction``)."""

    select: Connections
    out: Outbox
    table: StateTable
    now: float
    pools: dict[str, AddressPool]

    def send_oneshot(self, p1: Phase1State, message: bytes) -> None: ...


@dataclass
class Transaction:
    """Where an ISAKMP SA is in XAUTH and Mode Config."""

    #: "server" (we ask), "client" (we answer) or None
    xauth: str | None
    modecfg: str | None
    pull: bool
    xauth_done: bool = False
    modecfg_done: bool = False
    #: why it failed (the ISAKMP SA is then deleted), None while it has not
    failed: str | None = None
    #: ``lifecycle.after_transaction`` has acted on ``done``/``failed``
    settled: bool = False
    #: our first messages waiting for their answer: message ID -> what we sent
    outstanding: dict[int, str] = field(default_factory=dict)
    #: our answers by the message ID of the peer's first message (for its retransmissions)
    answered: dict[int, bytes] = field(default_factory=dict, repr=False)
    attempts: int = 0
    #: the user whose password is being checked, and the message ID of that REPLY
    checking: tuple[str, int] | None = None
    #: the XAUTH_STATUS we sent (server) before its ACK
    status_sent: bool | None = None
    #: the pool lease key (server)
    lease_key: str | None = None
    identifier: int = 0

    @property
    def done(self) -> bool:
        return ((self.xauth is None or self.xauth_done)
                and (self.modecfg is None or self.modecfg_done))


def begin(eng: TransactionContext, p1: Phase1State) -> bool:
    """At phase 1's end: what this conn asks for, and the first message if it is ours.
    True when Quick Modes must wait for the transaction."""
    entry = eng.select.get(p1.conn_name)
    if entry is None:
        return False
    o = entry.oriented
    xauth = "server" if roadwarrior.xauth_server(o) else "client" if roadwarrior.xauth_client(o) else None
    modecfg = ("server" if roadwarrior.modecfg_server(o)
               else "client" if roadwarrior.modecfg_client(o) else None)
    if xauth is None and modecfg is None:
        return False
    tx = Transaction(xauth, modecfg, bool(o.conn.modecfgpull))
    p1.transaction = tx
    if xauth == "server":
        _xauth_request(eng, p1, tx)
    elif xauth is None and modecfg == "server" and not tx.pull:
        _modecfg_set(eng, p1, tx, entry)
    elif xauth is None and modecfg == "client" and tx.pull:
        _modecfg_request(eng, p1, tx)
    return True


# --------------------------------------------------------------------------
# receiving


def receive(eng: TransactionContext, p1: Phase1State | None, message: Message,
            md: MessageDigest) -> None:
    """An encrypted Transaction message: decrypt on its message ID's chain, check the
    HASH, then the step it is."""
    header = md.header
    if p1 is None or p1.crypter is None or p1.keys is None or header.message_id == 0 \
            or not header.encrypted:
        eng.out.count("unexpected")
        eng.out.log(f"packet from {md.peer}: Transaction message without an ISAKMP SA "
                    "that can read it; dropped")
        return
    tx = p1.transaction
    if tx is None or not p1.kind.is_isakmp_established:
        eng.out.count("unexpected")
        eng.out.log_state(p1, f"packet from {md.peer}: unexpected Transaction (Mode Config/"
                              "XAUTH) message: this conn uses neither; dropped")
        return
    msgid = header.message_id
    if msgid in tx.answered:
        eng.out.count("retransmits_received")
        eng.send_oneshot(p1, tx.answered[msgid])
        return
    try:
        plain = p1.crypter.decrypt(msgid, message.encrypted_body or b"")
        md.payloads = decode_payloads(header.next_payload, plain)
    except (DecryptError, MalformedPacket) as error:
        eng.out.count("malformed")
        eng.out.log_state(p1, f"packet from {md.peer}: {error} in Transaction message")
        p1.crypter.forget(msgid)
        return
    if not md.payloads or not isinstance(md.payloads[0], HashPayload):
        eng.out.count("rejected")
        eng.out.log_state(p1, "Transaction message without HASH; ignored")
        return
    expected = crypto.informational_hash(p1.keys.hash, p1.keys.skeyid_a, msgid,
                                         encode_payloads(list(md.payloads[1:])))
    if not crypto.constant_time_equal(md.payloads[0].data, expected):
        eng.out.count("rejected")
        eng.out.log_state(p1, "Transaction HASH does not match; message ignored")
        return
    attrs = next((p for p in md.payloads if isinstance(p, AttributePayload)), None)
    if attrs is None:
        eng.out.count("rejected")
        eng.out.log_state(p1, "Transaction message without ATTRIBUTE payload; ignored")
        return
    p1.last_inbound = eng.now
    kind = attrs.cfg_type
    if kind in (CfgType.ISAKMP_CFG_REPLY, CfgType.ISAKMP_CFG_ACK):
        sent = tx.outstanding.pop(msgid, None)
        p1.crypter.forget(msgid)
        if sent is None:
            eng.out.log_state(p1, f"unexpected {name(kind)} (message ID {msgid:#x}); ignored")
            return
        _answer(eng, p1, tx, sent, attrs, msgid)
    elif kind in (CfgType.ISAKMP_CFG_REQUEST, CfgType.ISAKMP_CFG_SET):
        _first(eng, p1, tx, attrs, msgid)
    else:
        eng.out.log_state(p1, f"Transaction message of type {kind}; ignored")


def name(kind: int) -> str:
    try:
        return CfgType(kind).name
    except ValueError:
        return str(kind)


def _answer(eng: TransactionContext, p1: Phase1State, tx: Transaction, sent: str,
            attrs: AttributePayload, msgid: int) -> None:
    """The peer's REPLY or ACK to what we sent."""
    if sent == "xauth-request":
        user = _text(attrs.get(CfgAttr.XAUTH_USER_NAME))
        password = attrs.get(CfgAttr.XAUTH_USER_PASSWORD)
        if user is None or password is None or not isinstance(password.value, bytes):
            eng.out.log_state(p1, "XAUTH: the client's reply has no user name or password")
            _xauth_verdict(eng, p1, tx, user or "", False)
            return
        tx.checking = (user, msgid)
        eng.out.event(XauthCheckNeeded(p1.conn_name, p1.serial, user, bytes(password.value),
                                       p1.remote_addr))
    elif sent == "xauth-status":
        if tx.status_sent:
            tx.xauth_done = True
            _after_xauth(eng, p1, tx)
        else:
            _fail(tx, "XAUTH: authentication failed")
    elif sent == "modecfg-request":
        _take_address(eng, p1, tx, attrs)
    elif sent == "modecfg-set":
        tx.modecfg_done = True


def _first(eng: TransactionContext, p1: Phase1State, tx: Transaction,
           attrs: AttributePayload, msgid: int) -> None:
    """A REQUEST or SET from the peer: answer it with the same message ID."""
    xauth_attrs = any(int(a.type) in _XAUTH_TYPES for a in attrs.attributes)
    if attrs.cfg_type == CfgType.ISAKMP_CFG_REQUEST and xauth_attrs:
        if tx.xauth != "client":
            _refuse(eng, p1, msgid, "XAUTH request, but this conn is no XAUTH client")
            return
        _send_xauth_reply(eng, p1, tx, attrs, msgid)
    elif attrs.cfg_type == CfgType.ISAKMP_CFG_SET and attrs.get(CfgAttr.XAUTH_STATUS) is not None:
        status = attrs.get(CfgAttr.XAUTH_STATUS)
        ok = status is not None and status.integer == 1
        _reply(eng, p1, tx, msgid, CfgType.ISAKMP_CFG_ACK, attrs.identifier,
               (Attribute(CfgAttr.XAUTH_STATUS, 1 if ok else 0),))
        if tx.xauth != "client":
            return
        if ok:
            eng.out.log_state(p1, "XAUTH: Successfully Authenticated")
            tx.xauth_done = True
            _after_xauth(eng, p1, tx)
        else:
            _fail(tx, "XAUTH: Authentication Failed (the server said so)")
    elif attrs.cfg_type == CfgType.ISAKMP_CFG_REQUEST:
        if tx.modecfg != "server" or (tx.xauth == "server" and not tx.xauth_done):
            _refuse(eng, p1, msgid, "Mode Config request before XAUTH, or to a conn that is "
                                    "no Mode Config server")
            return
        entry = eng.select.get(p1.conn_name)
        if entry is None:
            return
        reply = _lease_attributes(eng, p1, tx, entry, attrs)
        if reply is None:
            _refuse(eng, p1, msgid, "no address left to lend")
            return
        _reply(eng, p1, tx, msgid, CfgType.ISAKMP_CFG_REPLY, attrs.identifier, reply)
        tx.modecfg_done = True
    elif attrs.cfg_type == CfgType.ISAKMP_CFG_SET:
        if tx.modecfg != "client":
            _refuse(eng, p1, msgid, "Mode Config SET, but this conn is no Mode Config client")
            return
        _reply(eng, p1, tx, msgid, CfgType.ISAKMP_CFG_ACK, attrs.identifier,
               tuple(Attribute(a.type, b"") for a in attrs.attributes
                     if int(a.type) == CfgAttr.INTERNAL_IP4_ADDRESS))
        _take_address(eng, p1, tx, attrs)


_XAUTH_TYPES = frozenset(int(t) for t in CfgAttr if t.name.startswith("XAUTH_"))


def _refuse(eng: TransactionContext, p1: Phase1State, msgid: int, why: str) -> None:
    eng.out.count("rejected")
    eng.out.log_state(p1, f"Transaction message refused: {why}")
    if p1.crypter is not None:
        p1.crypter.forget(msgid)


# --------------------------------------------------------------------------
# XAUTH


def _xauth_request(eng: TransactionContext, p1: Phase1State, tx: Transaction) -> None:
    attrs = (Attribute(CfgAttr.XAUTH_TYPE, XAUTH_TYPE_GENERIC),
             Attribute(CfgAttr.XAUTH_USER_NAME, b""), Attribute(CfgAttr.XAUTH_USER_PASSWORD, b""))
    _send_first(eng, p1, tx, "xauth-request", CfgType.ISAKMP_CFG_REQUEST, attrs)
    eng.out.log_state(p1, "XAUTH: Sending Username/Password request (XAUTH_R0)")


def checked(eng: TransactionContext, p1: Phase1State, ok: bool) -> None:
    """The shell's verdict on the password of ``tx.checking``."""
    tx = p1.transaction
    if tx is None or tx.checking is None:
        return
    user, _ = tx.checking
    tx.checking = None
    _xauth_verdict(eng, p1, tx, user, ok)


def _xauth_verdict(eng: TransactionContext, p1: Phase1State, tx: Transaction, user: str,
                   ok: bool) -> None:
    if ok:
        eng.out.log_state(p1, f"XAUTH: User {user}: Authentication Successful")
        p1.xauth_user = user
        tx.status_sent = True
        _send_first(eng, p1, tx, "xauth-status", CfgType.ISAKMP_CFG_SET,
                    (Attribute(CfgAttr.XAUTH_STATUS, 1),))
        return
    tx.attempts += 1
    eng.out.log_state(p1, f"XAUTH: User {user}: Authentication Failed: Incorrect Username or "
                          f"Password (attempt {tx.attempts} of {MAX_XAUTH_ATTEMPTS})")
    if tx.attempts < MAX_XAUTH_ATTEMPTS:
        _xauth_request(eng, p1, tx)
        return
    tx.status_sent = False
    _send_first(eng, p1, tx, "xauth-status", CfgType.ISAKMP_CFG_SET,
                (Attribute(CfgAttr.XAUTH_STATUS, 0),))


def _send_xauth_reply(eng: TransactionContext, p1: Phase1State, tx: Transaction,
                      request: AttributePayload, msgid: int) -> None:
    entry = eng.select.get(p1.conn_name)
    user = roadwarrior.xauth_username(entry.oriented) if entry is not None else None
    password = eng.select.secrets.find_xauth(user) if user else None
    if not user or password is None:
        eng.out.log_state(p1, f"XAUTH: no user name (leftxauthusername=) or no XAUTH secret "
                              f"for '{user or ''}' in ipsec.secrets; answering empty")
    eng.out.log_state(p1, f"XAUTH: Answering XAUTH challenge with user='{user or ''}'")
    answer = []
    for attr in request.attributes:
        kind = int(attr.type)
        if kind == CfgAttr.XAUTH_TYPE:
            answer.append(Attribute(kind, attr.integer))
        elif kind == CfgAttr.XAUTH_USER_NAME:
            answer.append(Attribute(kind, (user or "").encode()))
        elif kind == CfgAttr.XAUTH_USER_PASSWORD:
            answer.append(Attribute(kind, password or b""))
    _reply(eng, p1, tx, msgid, CfgType.ISAKMP_CFG_REPLY, request.identifier, tuple(answer))


def _after_xauth(eng: TransactionContext, p1: Phase1State, tx: Transaction) -> None:
    entry = eng.select.get(p1.conn_name)
    if tx.modecfg == "server" and not tx.pull and entry is not None:
        _modecfg_set(eng, p1, tx, entry)
    elif tx.modecfg == "client" and tx.pull:
        _modecfg_request(eng, p1, tx)


# --------------------------------------------------------------------------
# Mode Config


def _modecfg_request(eng: TransactionContext, p1: Phase1State, tx: Transaction) -> None:
    attrs = tuple(Attribute(kind, b"") for kind in _PULL_ATTRIBUTES)
    _send_first(eng, p1, tx, "modecfg-request", CfgType.ISAKMP_CFG_REQUEST, attrs)
    eng.out.log_state(p1, "modecfg: Sending IP request (MODECFG_I1)")


def _modecfg_set(eng: TransactionContext, p1: Phase1State, tx: Transaction,
                 entry: ConnEntry) -> None:
    attrs = _lease_attributes(eng, p1, tx, entry, None)
    if attrs is None:
        _fail(tx, "modecfg: no address left in the pool")
        return
    _send_first(eng, p1, tx, "modecfg-set", CfgType.ISAKMP_CFG_SET, attrs)


def _pool(eng: TransactionContext, entry: ConnEntry) -> AddressPool | None:
    pool = eng.pools.get(entry.name)
    if pool is None:
        span = roadwarrior.address_pool(entry.oriented)
        if span is None:
            return None
        pool = eng.pools[entry.name] = AddressPool(span.first, span.last)
    return pool


def _lease_attributes(eng: TransactionContext, p1: Phase1State, tx: Transaction,
                      entry: ConnEntry, request: AttributePayload | None
                      ) -> tuple[Attribute, ...] | None:
    """The address (leased for this client) and what else the conn hands out."""
    pool = _pool(eng, entry)
    address: IPAddress | None = None
    if pool is not None:
        key = p1.xauth_user or str(p1.peer_id)
        try:
            address = pool.lease(key) if tx.lease_key is None else pool.leases()[tx.lease_key]
        except PoolExhausted as error:
            eng.out.log_state(p1, f"modecfg: {error}")
            return None
        tx.lease_key = key
    elif entry.oriented.that.end.sourceip is not None:
        address = entry.oriented.that.end.sourceip
    if address is None:
        eng.out.log_state(p1, "modecfg: no rightaddresspool= (or rightsourceip=) to hand out")
        return None
    conn = entry.conn
    attrs = [Attribute(CfgAttr.INTERNAL_IP4_ADDRESS, address.packed),
             Attribute(CfgAttr.INTERNAL_IP4_NETMASK, ipaddress.IPv4Address("255.255.255.255").packed)]
    dns = conn.modecfgdns
    attrs += [Attribute(CfgAttr.INTERNAL_IP4_DNS, d.packed) for d in dns if d.version == 4]
    domains = conn.modecfgdomains
    if domains:
        attrs.append(Attribute(CfgAttr.UNITY_DEF_DOMAIN, domains[0].encode()))
    banner = conn.modecfgbanner
    if banner:
        attrs.append(Attribute(CfgAttr.UNITY_BANNER, banner.encode()))
    subnet = entry.oriented.this.end.subnet
    asked = {int(a.type) for a in request.attributes} if request is not None else set()
    if subnet is not None and subnet.version == 4 and (
            CfgAttr.UNITY_SPLIT_INCLUDE in asked or request is None):
        attrs.append(Attribute(CfgAttr.UNITY_SPLIT_INCLUDE, subnet.network_address.packed
                               + subnet.netmask.packed + bytes(6)))
    if p1.virtual_ip != address:
        p1.virtual_ip, p1.virtual_ip_ours = address, False
        eng.out.log_state(p1, f"modecfg: leasing {address} to '{p1.xauth_user or p1.peer_id}'")
        eng.out.event(VirtualIpAssigned(p1.conn_name, p1.serial, address, False, dns, domains,
                                        banner, p1.xauth_user))
    return tuple(attrs)


def _take_address(eng: TransactionContext, p1: Phase1State, tx: Transaction,
                  attrs: AttributePayload) -> None:
    """The server's REPLY or SET: our inner address, DNS, domain, banner."""
    found = attrs.get(CfgAttr.INTERNAL_IP4_ADDRESS)
    if found is None or not isinstance(found.value, bytes) or len(found.value) != 4:
        _fail(tx, "modecfg: the server gave no IPv4 address")
        return
    address = ipaddress.IPv4Address(found.value)
    dns = tuple(ipaddress.IPv4Address(a.value) for a in attrs.attributes
                if int(a.type) == CfgAttr.INTERNAL_IP4_DNS and isinstance(a.value, bytes)
                and len(a.value) == 4)
    domains = tuple(t for t in (_text(a) for a in attrs.attributes
                                if int(a.type) == CfgAttr.UNITY_DEF_DOMAIN) if t)
    banner = _text(attrs.get(CfgAttr.UNITY_BANNER))
    p1.virtual_ip, p1.virtual_ip_ours = address, True
    eng.out.log_state(p1, f"modecfg: received IP address {address}"
                          + (f", DNS {', '.join(map(str, dns))}" if dns else "")
                          + (f", domain {domains[0]}" if domains else ""))
    eng.out.event(VirtualIpAssigned(p1.conn_name, p1.serial, address, True, dns, domains,
                                    banner, p1.xauth_user))
    tx.modecfg_done = True


def released(eng: TransactionContext, p1: Phase1State) -> None:
    """The ISAKMP SA is gone: its lease back to the pool, its address off ``ipsec0``."""
    tx = p1.transaction
    if p1.virtual_ip is not None:
        eng.out.event(VirtualIpReleased(p1.conn_name, p1.serial, p1.virtual_ip, p1.virtual_ip_ours))
    if tx is not None and tx.lease_key is not None:
        pool = eng.pools.get(p1.conn_name)
        if pool is not None:
            pool.release(tx.lease_key)
        tx.lease_key = None
    if p1.lease_key is not None:  # an IKEv2 CP lease (fswan/ikev2/configuration.py)
        pool = eng.pools.get(p1.conn_name)
        if pool is not None:
            pool.release(p1.lease_key)
        p1.lease_key = None


# --------------------------------------------------------------------------
# messages


def _fail(tx: Transaction, why: str) -> None:
    if tx.failed is None:
        tx.failed = why


def _send_first(eng: TransactionContext, p1: Phase1State, tx: Transaction, what: str,
                kind: CfgType, attrs: tuple[Attribute, ...]) -> None:
    msgid = eng.table.new_message_id(p1)
    tx.identifier = (tx.identifier + 1) & 0xFFFF
    tx.outstanding[msgid] = what
    eng.send_oneshot(p1, _build(p1, msgid, AttributePayload(kind, tx.identifier, attrs), False))


def _reply(eng: TransactionContext, p1: Phase1State, tx: Transaction, msgid: int,
           kind: CfgType, identifier: int, attrs: tuple[Attribute, ...]) -> None:
    message = _build(p1, msgid, AttributePayload(kind, identifier, attrs), True)
    tx.answered[msgid] = message
    eng.send_oneshot(p1, message)


def _build(p1: Phase1State, msgid: int, payload: AttributePayload, last: bool) -> bytes:
    """HASH and the ATTRIBUTE payload, encrypted on ``msgid``'s chain (kept open for the
    answer unless this is the exchange's ``last`` message)."""
    assert p1.keys is not None and p1.crypter is not None
    body = encode_payloads([payload])
    digest = crypto.informational_hash(p1.keys.hash, p1.keys.skeyid_a, msgid, body)
    cipher = p1.crypter.encrypt(msgid, encode_payloads([HashPayload(digest), payload]))
    if last:
        p1.crypter.forget(msgid)
    header = Header(p1.icookie, p1.rcookie, ExchangeType.TRANSACTION, Flags.ENCRYPTION, msgid,
                    next_payload=HashPayload.payload_type)
    return Message(header, encrypted_body=cipher).encode()


def _text(attr: Attribute | None) -> str | None:
    if attr is None or not isinstance(attr.value, bytes):
        return None
    text = attr.value.decode("utf-8", "replace")
    return text if text.isprintable() else text.encode("unicode_escape").decode("ascii")
