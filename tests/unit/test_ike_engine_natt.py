"""NAT traversal (RFC 3947): detection, the port float, UDP encapsulation, keepalives, rebinding."""

from __future__ import annotations

import pytest

from fswan.config.model import ConnType, Encapsulation
from fswan.ike.events import PeerAddressChanged
from fswan.isakmp.constants import EncapsulationMode, KnownVendor, PayloadType
from fswan.isakmp.message import NON_ESP_MARKER, Message, decode_message
from fswan.isakmp.payloads import NATDPayload, VendorIDPayload
from tests.ike_pair import (
    EAST,
    NAT_PUBLIC,
    Nat,
    Wire,
    conn,
    make_pair,
    mirrored,
    psk_secrets,
)

PRIVATE = "198.51.100.130"  # west's address behind the NAPT


def natted_pair(**options):
    """West behind a NAPT (500->1500, 4500->14500), east on the outside."""
    secrets = psk_secrets(f'@west {EAST} : PSK "natted-not-secret"\n')
    west = conn(left=PRIVATE, leftid="@west", **options)
    east = conn(left=NAT_PUBLIC, leftid="@west", **options)
    nat = Nat(PRIVATE, NAT_PUBLIC, {500: 1500, 4500: 14500})
    return make_pair(
        west, east, west_secrets=secrets, east_secrets=secrets, west_addr=PRIVATE, nat=nat
    )


def ike(wire: Wire) -> Message:
    data = wire.data[4:] if wire.data.startswith(NON_ESP_MARKER) else wire.data
    return decode_message(data)


def test_vendor_ids_and_natd_in_main_mode():
    pair = make_pair(conn())
    pair.initiate()
    mm1, mr1, mi2, mr2 = (ike(w) for w in pair.wire[:4])
    assert [v.known for v in mm1.find_all(VendorIDPayload)] == [
        KnownVendor.NATT_RFC3947,
        KnownVendor.NATT_DRAFT_03,
        KnownVendor.NATT_DRAFT_02_N,
        KnownVendor.NATT_DRAFT_02,
        KnownVendor.DPD,
        KnownVendor.FRAGMENTATION,
    ]
    assert [v.known for v in mr1.find_all(VendorIDPayload)] == [
        KnownVendor.NATT_RFC3947,
        KnownVendor.DPD,
        KnownVendor.FRAGMENTATION,
    ]
    assert mi2.payload_types[2:] == mr2.payload_types[2:] == [PayloadType.NAT_D] * 2
    # no NAT: everything stays on port 500, ESP is not encapsulated
    assert {(w.sport, w.dport) for w in pair.wire} == {(500, 500)}
    assert not pair.west.installed[0].udp_encapsulated


def test_behind_nat_floats_to_4500_and_encapsulates():
    pair = natted_pair(esp="aes128-sha1")
    pair.initiate()
    (west,), (east,) = pair.west.installed, pair.east.installed
    assert mirrored(west, east)
    assert "NAT-Traversal: Result using RFC 3947: we are behind NAT" in pair.west.text()
    assert "NAT-Traversal: Result using RFC 3947: peer is behind NAT" in pair.east.text()
    ports = [(w.sender, w.sport, w.dport) for w in pair.wire]
    assert ports[:4] == [("west", 1500, 500), ("east", 500, 1500)] * 2
    assert set(ports[4:]) == {("west", 14500, 4500), ("east", 4500, 14500)}
    assert all(w.data.startswith(NON_ESP_MARKER) for w in pair.wire[4:])
    assert west.udp_encapsulated and east.udp_encapsulated and west.mode == "tunnel"
    assert (west.local_port, west.remote_port) == (4500, 4500)
    assert (str(east.remote_addr), east.remote_port) == (NAT_PUBLIC, 14500)
    assert "ESP/NAT=>" in pair.east.lines[-1] and "NATD=192.0.2.3:14500" in pair.east.lines[-1]
    assert pair.east.isakmp_up[0].remote_port == 14500


def test_keepalives_only_from_the_natted_side():
    pair = natted_pair()
    pair.initiate()
    pair.run(65)
    keepalives = [w for w in pair.wire if w.data == b"\xff"]
    assert [(w.sender, w.sport, w.dport, w.dst) for w in keepalives] == [
        ("west", 14500, 4500, EAST)
    ] * 3
    assert pair.east.engine.counters["keepalives_received"] == 3


def test_strongswan_style_fake_nat_makes_us_float():
    """charon's second NAT-D hash is random: we must see the peer behind NAT and float."""
    pair = make_pair(conn())

    def fake_source_hash(wire: Wire) -> list[Wire]:
        if wire.sender == "east" and wire.seq == 3:  # MR2
            message = decode_message(wire.data)
            payloads = list(message.payloads)
            payloads[-1] = NATDPayload(bytes(20))
            wire.data = Message(message.header, payloads).encode()
        return [wire]

    pair.set_fault(fake_source_hash)
    pair.initiate()
    assert "NAT-Traversal: Result using RFC 3947: peer is behind NAT" in pair.west.text()
    assert "NAT-Traversal: Result using RFC 3947: no NAT detected" in pair.east.text()
    (west,), (east,) = pair.west.installed, pair.east.installed
    assert west.udp_encapsulated and east.udp_encapsulated
    assert {(w.sport, w.dport) for w in pair.wire[4:]} == {(4500, 4500)}
    pair.run(60)
    assert not any(w.data == b"\xff" for w in pair.wire)  # neither side is itself NATed


def test_draft_only_peer_gets_draft_numbers():
    pair = natted_pair()

    def strip_rfc_vid(wire: Wire) -> list[Wire]:
        if wire.seq == 0:
            message = decode_message(wire.data)
            payloads = [
                p
                for p in message.payloads
                if not (isinstance(p, VendorIDPayload) and p.known == KnownVendor.NATT_RFC3947)
            ]
            wire.data = Message(message.header, payloads).encode()
        return [wire]

    pair.set_fault(strip_rfc_vid)
    pair.initiate()
    mr1, mi2 = ike(pair.wire[1]), ike(pair.wire[2])
    assert [v.known for v in mr1.find_all(VendorIDPayload)] == [
        KnownVendor.NATT_DRAFT_03,
        KnownVendor.DPD,
        KnownVendor.FRAGMENTATION,
    ]
    assert mi2.payload_types[2:] == [PayloadType.NAT_D_DRAFT] * 2
    assert (
        "NAT-Traversal: Result using draft-ietf-ipsec-nat-t-ike-02/03: we are behind NAT"
        in pair.west.text()
    )
    (west,), (east,) = pair.west.installed, pair.east.installed
    assert west.udp_encapsulated and east.udp_encapsulated
    east_states = pair.east.engine.table.states  # the negotiated number is only on the wire
    assert {s.encapsulation for s in east_states.values() if hasattr(s, "encapsulation")} == {
        EncapsulationMode.UDP_TUNNEL_DRAFT
    }


def test_udp_transport_mode():
    pair = natted_pair(type=ConnType.TRANSPORT, leftsubnet=None, rightsubnet=None)
    pair.initiate()
    (west,), (east,) = pair.west.installed, pair.east.installed
    assert west.mode == east.mode == "transport" and west.udp_encapsulated
    assert {
        s.encapsulation for s in pair.east.engine.table.states.values() if hasattr(s, "encapsulation")
    } == {EncapsulationMode.UDP_TRANSPORT}


@pytest.mark.parametrize(
    "setting, natted, udp",
    [
        (Encapsulation.YES, False, True),
        (Encapsulation.NO, True, False),
    ],
)
def test_encapsulation_setting(setting, natted, udp):
    pair = natted_pair(encapsulation=setting) if natted else make_pair(conn(encapsulation=setting))
    pair.initiate()
    (west,), (east,) = pair.west.installed, pair.east.installed
    assert west.udp_encapsulated is udp and east.udp_encapsulated is udp


def test_nat_rebinding_is_followed():
    pair = natted_pair(dpddelay=5.0, dpdtimeout=30.0)
    pair.initiate()
    pair.nat.ports[4500] = 24500  # the NAT forgot the mapping and made a new one
    pair.run(12)  # DPD probes come from the new port
    (moved,) = pair.east.of(PeerAddressChanged)
    assert (str(moved.remote_addr), moved.remote_port) == (NAT_PUBLIC, 24500)
    assert moved.child_serials == (2,)
    assert (
        "NAT-T: peer moved from 192.0.2.3:14500 to 192.0.2.3:24500; following it"
        in pair.east.text()
    )
    assert pair.wire[-1].dport == 24500  # east now answers on the new mapping
    # the tunnel still works: a new Quick Mode goes through
    pair.initiate()
    assert len(pair.east.installed) == 2 and pair.east.installed[1].remote_port == 24500
    assert pair.west.deleted == []


def test_a_host_to_host_peer_whose_nat_changes_address_is_rekeyed_to_the_new_address():
    pair = natted_pair(leftsubnet=None, rightsubnet=None, dpddelay=5.0, dpdtimeout=30.0)
    pair.initiate()
    (first,) = pair.east.installed
    assert str(first.remote_client) == f"{NAT_PUBLIC}/32"
    pair.nat.public = "203.0.113.77"
    pair.run(12)
    assert "initiate to replace #2" in pair.east.text()
    second = pair.east.installed[-1]
    assert (str(second.remote_addr), str(second.remote_client)) == ("203.0.113.77",
                                                                     "203.0.113.77/32")
    assert mirrored(pair.west.installed[-1], second)


def test_aggressive_mode_behind_nat_floats_at_message_3():
    pair = natted_pair(aggrmode=True, ike="aes128-sha1-modp2048")
    pair.initiate()
    (west,), (east,) = pair.west.installed, pair.east.installed
    assert mirrored(west, east) and west.udp_encapsulated
    ports = [(w.sender, w.sport, w.dport) for w in pair.wire]
    assert ports[:3] == [("west", 1500, 500), ("east", 500, 1500), ("west", 14500, 4500)]
    ar1 = ike(pair.wire[1])
    assert [p.name for p in ar1.payloads if p.name != "Vendor ID"] == [
        "SA",
        "KE",
        "Nonce",
        "ID",
        "NAT-D",
        "NAT-D",
        "HASH",
    ]
