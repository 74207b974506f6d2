"""pluto's --status layout, line by line, and the JSON document with the same facts."""

import json
from ipaddress import ip_address, ip_network

from dataclasses import replace

from fswan.config.model import (
    AuthBy, Auto, Connection, ConnType, DpdAction, End, FailureShunt, Ikev2Policy, SetupConfig,
)
from fswan.config.virtual import parse_virtual_subnet
from fswan.config.orient import DefaultRoute, HostAddress, HostNetwork, ipsec_interfaces, orient
from fswan.daemon.status import (
    LoadedConnection,
    StatusSnapshot,
    format_status,
    policy_string,
    status_dict,
    topology,
)

HOST = HostNetwork(
    (HostAddress("eth0", ip_address("192.0.2.1")),),
    DefaultRoute("eth0", ip_address("192.0.2.254")),
)
IFACES, _ = ipsec_interfaces(SetupConfig(), HOST)


def loaded(conn):
    return LoadedConnection(conn, orient(conn, IFACES, HOST.default_route))


NET = Connection(
    name="net",
    left=End(host="192.0.2.1", subnet=ip_network("198.51.100.0/25"), nexthop="192.0.2.254"),
    right=End(host="192.0.2.2", subnet=ip_network("203.0.113.0/25")),
    authby=AuthBy.SECRET,
    auto=Auto.START,
    dpddelay=10.0,
    dpdtimeout=30.0,
    dpdaction=DpdAction.CLEAR,
    ike="aes128-sha1-modp2048",
)


def test_topology_with_clients_and_nexthop():
    assert topology(loaded(NET)) == (
        "198.51.100.0/25===192.0.2.1---192.0.2.254...192.0.2.2===203.0.113.0/25"
    )


def test_topology_host_to_host_with_ids_and_any():
    conn = Connection(
        name="rw",
        left=End(host="192.0.2.1", id="@west.example"),
        right=End(host="%any", id="@roadwarrior"),
    )
    assert topology(loaded(conn)) == "192.0.2.1[@west.example]...%any[@roadwarrior]"


def test_topology_shows_what_a_virtual_peer_may_claim():
    conn = Connection(
        name="rw",
        left=End(host="192.0.2.1", subnet=ip_network("203.0.113.0/25")),
        right=End(host="%any", id="@roadwarrior", virtual=parse_virtual_subnet("vhost:%priv,%no")),
    )
    assert topology(loaded(conn)) == "203.0.113.0/25===192.0.2.1...%any[@roadwarrior]===vhost:%priv,%no"


def test_topology_ikeport_and_protoport():
    conn = Connection(
        name="l2tp",
        left=End(host="192.0.2.1", protoport=(17, 1701)),
        right=End(host="192.0.2.2", ikeport=4500, protoport=(17, 0)),
        type=ConnType.TRANSPORT,
    )
    assert topology(loaded(conn)) == "192.0.2.1:17/1701...192.0.2.2:4500:17/0"


def test_policy_bits_in_plutos_order():
    assert policy_string(NET) == "PSK+ENCRYPT+TUNNEL+PFS+UP+IKEV1_ALLOW+IKEV2_ALLOW"
    assert policy_string(Connection(name="x", left=NET.left, right=NET.right)) == \
        "RSASIG+ENCRYPT+TUNNEL+PFS+IKEV1_ALLOW+IKEV2_ALLOW"
    assert policy_string(replace(NET, ikev2=Ikev2Policy.INSIST)).endswith("+UP+IKEV2_ALLOW+IKEV2_PROPOSE")
    assert policy_string(replace(NET, ikev2=Ikev2Policy.NEVER)).endswith("+UP+IKEV1_ALLOW")
    odd = Connection(
        name="x", left=NET.left, right=NET.right, authby=AuthBy.SECRET_OR_RSASIG,
        pfs=False, rekey=False, type=ConnType.TRANSPORT, failureshunt=FailureShunt.DROP,
    )
    assert policy_string(odd) == "PSK+RSASIG+ENCRYPT+DONTREKEY+IKEV1_ALLOW+IKEV2_ALLOW+failureDROP"
    clear = Connection(name="c", left=NET.left, right=NET.right, type=ConnType.PASSTHROUGH, authby=AuthBy.NEVER)
    assert policy_string(clear) == "PASS"


def test_full_status_layout():
    snapshot = StatusSnapshot(tuple(IFACES), "@west.example", (loaded(NET),))
    assert format_status(snapshot) == [
        "interface ipsec0/eth0 192.0.2.1",
        "%myid = @west.example",
        "debug none",
        "",
        '"net": 198.51.100.0/25===192.0.2.1---192.0.2.254...192.0.2.2===203.0.113.0/25; unrouted',
        '"net":   ike_life: 3600s; ipsec_life: 28800s; rekey_margin: 540s; rekey_fuzz: 100%; keyingtries: 0',
        '"net":   policy: PSK+ENCRYPT+TUNNEL+PFS+UP+IKEV1_ALLOW+IKEV2_ALLOW; prio: 25,25; interface: eth0;',
        '"net":   dpd: action:clear; delay:10s; timeout:30s;',
        '"net":   IKE algorithms wanted: aes128-sha1-modp2048',
        '"net":   newest ISAKMP SA: #0; newest IPsec SA: #0;',
        "",
    ]


def test_connections_sorted_and_unoriented_shown():
    stray = Connection(name="a-stray", left=End(host="203.0.113.5"), right=End(host="203.0.113.6"))
    snapshot = StatusSnapshot(
        tuple(IFACES), None,
        (loaded(NET), LoadedConnection(stray, None, "we have no ipsecN interface for either end of this connection")),
        listening=False,
    )
    lines = format_status(snapshot)
    assert lines[1] == "not listening for IKE messages (whack --listen to start)"
    assert lines[2] == "%myid = (none)"
    first = [line for line in lines if line.startswith('"')]
    assert first[0] == '"a-stray": 203.0.113.5...203.0.113.6; unrouted; unoriented'
    assert '"a-stray":   we have no ipsecN interface for either end of this connection' in lines
    assert lines.index(first[0]) < lines.index(next(l for l in lines if l.startswith('"net"')))


def test_json_carries_the_same_facts():
    snapshot = StatusSnapshot(tuple(IFACES), "@west.example", (loaded(NET),))
    document = json.loads(json.dumps(status_dict(snapshot)))
    assert document["interfaces"] == [{"virtual": "ipsec0", "physical": "eth0", "address": "192.0.2.1"}]
    assert document["myid"] == "@west.example"
    (conn,) = document["connections"]
    assert conn["name"] == "net"
    assert conn["topology"] == topology(loaded(NET))
    assert conn["policy"] == ["PSK", "ENCRYPT", "TUNNEL", "PFS", "UP", "IKEV1_ALLOW", "IKEV2_ALLOW"]
    assert conn["ikev2"] == "permit"
    assert conn["this"] == {
        "host": "192.0.2.1", "id": "192.0.2.1", "client": "198.51.100.0/25",
        "nexthop": "192.0.2.254", "ikeport": 500,
    }
    assert conn["that"]["client"] == "203.0.113.0/25"
    assert conn["dpd"] == {"action": "clear", "delay": 10.0, "timeout": 30.0}
    assert conn["ike_life"] == 3600.0 and conn["ipsec_life"] == 28800.0


def test_half_open_count_and_busy_mode_are_shown_when_there_are_any():
    from dataclasses import replace as _replace

    quiet = StatusSnapshot(interfaces=(), myid=None, connections=())
    assert not any("half-open" in line for line in format_status(quiet))
    flooded = _replace(quiet, half_open=64, busy=True)
    assert "half-open IKE SAs: 64; busy (strangers get one answer)" in format_status(flooded)
    document = status_dict(flooded)
    assert document["half_open"] == 64 and document["busy"] is True
