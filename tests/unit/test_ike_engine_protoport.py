"""``leftprotoport=``/``rightprotoport=`` travel in the Quick Mode client IDs and select
the conn on the responder exactly as pluto did (port 0 of a protocol = any port)."""

from dataclasses import replace

from fswan.config.model import ConnType
from tests.ike_pair import conn, make_pair


def with_protoport(base, left, right):
    return replace(base, left=replace(base.left, protoport=left),
                   right=replace(base.right, protoport=right))


L2TP = conn(leftsubnet=None, rightsubnet=None, type=ConnType.TRANSPORT)


def test_l2tp_host_to_host_sends_ids_with_protocol_and_port():
    c = with_protoport(L2TP, (17, 1701), (17, 1701))
    pair = make_pair(c)
    pair.initiate()
    (west,), (east,) = pair.west.installed, pair.east.installed
    assert west.outbound_spi == east.inbound_spi
    # host-to-host alone sends no IDs; with a protoport both IDs go out carrying it
    state = pair.west.engine.table.states[west.serial]
    assert (state.id_ci.protocol, state.id_ci.port, state.id_cr.protocol, state.id_cr.port) == (
        17, 1701, 17, 1701)


def test_responder_with_any_port_accepts_a_road_warriors_source_port():
    # the road warrior (west, left) names the source port it really uses; the gateway
    # (east, right) accepts any port of UDP from it: leftprotoport=17/%any
    west = with_protoport(L2TP, (17, 4500), (17, 1701))
    east = with_protoport(L2TP, (17, 0), (17, 1701))
    pair = make_pair(west, east)
    pair.initiate()
    assert len(pair.east.installed) == 1


def test_protoport_mismatch_is_refused_with_plutos_message():
    west = with_protoport(L2TP, (17, 1701), (17, 1701))
    east = with_protoport(L2TP, (6, 80), (6, 80))
    pair = make_pair(west, east)
    pair.initiate()
    assert pair.east.installed == []
    assert ("cannot respond to IPsec SA request because no connection is known for "
            "192.0.2.2:17/1701...192.0.2.1:17/1701") in pair.east.text()


def test_plain_subnet_conn_refuses_ids_with_a_protocol():
    west = with_protoport(conn(), (6, 0), (6, 0))
    pair = make_pair(west, conn())
    pair.initiate()
    assert pair.east.installed == []
    assert "no connection is known for 203.0.113.0/25===192.0.2.2:6/0" in pair.east.text()
