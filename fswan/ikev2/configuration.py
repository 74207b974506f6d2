"""The Configuration Payload in IKE_AUTH (RFC 7296 2.19): a road warrior's virtual IP.

Client (``leftsourceip=%config``): IKE_AUTH carries CP(CFG_REQUEST) for an IPv4
address and DNS servers, and TSi for any address (we do not know ours yet); the
reply's address becomes our client (the gateway narrows TSi to it) and goes on
``ipsec0`` (``VirtualIpAssigned``).  Server (``rightaddresspool=`` or
``rightsourceip=``): the peer gets a lease from the conn's pool -- by its ID, so a
returning peer keeps its address -- with ``modecfgdns=``, and its TSi is narrowed
to that address.  The lease goes back when the IKE SA goes (``transaction.released``).
"""

from __future__ import annotations

import ipaddress

from fswan.config import roadwarrior
from fswan.config.model import IPAddress
from fswan.ike.addresspool import AddressPool, PoolExhausted
from fswan.ike.events import VirtualIpAssigned
from fswan.ike.select import ConnEntry
from fswan.ikev2.constants import CfgAttr, CfgType
from fswan.ikev2.exchange import V2Engine
from fswan.ikev2.message import Message
from fswan.ikev2.payloads import ConfigAttribute, Configuration
from fswan.ikev2.sa import IkeSa

__all__ = ["asked", "request", "serve", "take"]


def request(entry: ConnEntry) -> list[Configuration]:
    """Our CFG_REQUEST, for a conn that gets its address from the gateway."""
    if not roadwarrior.modecfg_client(entry.oriented):
        return []
    return [Configuration(CfgType.CFG_REQUEST, (ConfigAttribute(CfgAttr.INTERNAL_IP4_ADDRESS),
                                                ConfigAttribute(CfgAttr.INTERNAL_IP4_DNS)))]


def _pool(eng: V2Engine, entry: ConnEntry) -> AddressPool | None:
    pools = eng.pools
    pool = pools.get(entry.name)
    if pool is None:
        span = roadwarrior.address_pool(entry.oriented)
        if span is None:
            return None
        pool = pools[entry.name] = AddressPool(span.first, span.last)
    return pool


def asked(message: Message) -> bool:
    """The peer wants an address (a Child SA without one is refused: INTERNAL_ADDRESS_FAILURE)."""
    cp = message.get(Configuration)
    return cp is not None and cp.cfg_type == CfgType.CFG_REQUEST and any(
        a.type == CfgAttr.INTERNAL_IP4_ADDRESS for a in cp.attributes)


def serve(eng: V2Engine, st: IkeSa, entry: ConnEntry, message: Message) -> list[Configuration]:
    """The CFG_REPLY to the peer's CFG_REQUEST (none asked, or none to give: nothing)."""
    if not asked(message):
        return []
    address: IPAddress | None = None
    pool = _pool(eng, entry)
    if pool is not None:
        key = str(st.peer_id)
        try:
            address = pool.lease(key)
        except PoolExhausted as error:
            eng.log_state(st, f"CP: {error}")
            return []
        st.lease_key = key
    elif entry.oriented.that.end.sourceip is not None:
        address = entry.oriented.that.end.sourceip
    if address is None or address.version != 4:
        eng.log_state(st, "CP: the peer asks for an address; no rightaddresspool= to give one")
        return []
    conn = entry.conn
    attrs = [ConfigAttribute(CfgAttr.INTERNAL_IP4_ADDRESS, address.packed)]
    attrs += [ConfigAttribute(CfgAttr.INTERNAL_IP4_DNS, d.packed)
              for d in conn.modecfgdns if d.version == 4]
    subnet = entry.oriented.this.end.subnet
    if subnet is not None and subnet.version == 4:
        attrs.append(ConfigAttribute(CfgAttr.INTERNAL_IP4_SUBNET,
                                     subnet.network_address.packed + subnet.netmask.packed))
    st.virtual_ip, st.virtual_ip_ours = address, False
    eng.log_state(st, f"CP: leasing {address} to '{st.peer_id}'")
    eng.out.event(VirtualIpAssigned(st.conn_name, st.serial, address, False,
                                    tuple(conn.modecfgdns), tuple(conn.modecfgdomains),
                                    conn.modecfgbanner))
    return [Configuration(CfgType.CFG_REPLY, tuple(attrs))]


def take(eng: V2Engine, st: IkeSa, entry: ConnEntry, message: Message) -> bool:
    """The gateway's CFG_REPLY: our inner address (False when we asked and got none)."""
    if not roadwarrior.modecfg_client(entry.oriented):
        return True
    reply = message.get(Configuration)
    found = None
    if reply is not None and reply.cfg_type == CfgType.CFG_REPLY:
        found = next((a.value for a in reply.attributes
                      if a.type == CfgAttr.INTERNAL_IP4_ADDRESS and len(a.value) == 4), None)
    if found is None:
        eng.log_state(st, "CP: the gateway gave us no IPv4 address")
        return False
    address = ipaddress.IPv4Address(found)
    assert reply is not None
    dns = tuple(ipaddress.IPv4Address(a.value) for a in reply.attributes
                if a.type == CfgAttr.INTERNAL_IP4_DNS and len(a.value) == 4)
    st.virtual_ip, st.virtual_ip_ours = address, True
    eng.log_state(st, f"CP: received IP address {address}"
                      + (f", DNS {', '.join(map(str, dns))}" if dns else ""))
    eng.out.event(VirtualIpAssigned(st.conn_name, st.serial, address, True, dns))
    return True
