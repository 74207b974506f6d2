"""Adding IKEv2 conns to the engine: an ike= IKEv2 cannot run is refused when the conn is
added (ProposalError, which ``ipsec auto --add`` reports), not when it is started."""

from __future__ import annotations

import pytest

from fswan.config.model import Ikev2Policy
from fswan.suites import ProposalError
from tests.ike_pair import conn, make_pair


def test_an_ikev2_conn_with_only_3des_is_refused_when_added():
    with pytest.raises(ProposalError, match="no proposal IKEv2 can use"):
        make_pair(conn(ikev2=Ikev2Policy.INSIST, ike="3des-sha1-modp2048"))


def test_a_permit_conn_with_3des_first_still_keys_over_ikev2_with_its_aes_proposal():
    pair = make_pair(conn(ikev2=Ikev2Policy.PERMIT, ike="3des-sha1-modp2048,aes128-sha1-modp2048"),
                     conn(ikev2=Ikev2Policy.INSIST, ike="aes128-sha1-modp2048"))
    pair.initiate(who="east")
    assert pair.west.installed and pair.east.installed, pair.west.text() + pair.east.text()
    assert "STATE_V2_ESTABLISHED_IKE_SA" in pair.west.text()


def test_an_authentic_request_we_refuse_is_answered_and_the_ike_sa_stays():
    from fswan.ikev2.constants import ExchangeType, NotifyType
    from fswan.ikev2.payloads import Nonce, Notify
    from fswan.ikev2.sa import IkeSa

    pair = make_pair(conn(ikev2=Ikev2Policy.INSIST))
    pair.initiate()
    west = next(s for s in pair.west.engine.table.states.values() if isinstance(s, IkeSa))
    east = next(s for s in pair.east.engine.table.states.values() if isinstance(s, IkeSa))
    # a CREATE_CHILD_SA request without its SA payload, sealed with west's real keys
    data = west.seal(ExchangeType.CREATE_CHILD_SA, west.next_request, False,
                     [Nonce(bytes(32))], bytes(16))
    pair.east.engine.receive_datagram(data, "192.0.2.2", 4500 if east.local_port == 4500 else 500,
                                      "192.0.2.1", west.local_port, pair.now)
    answers = [d for d in pair.east.engine.datagrams_to_send()]
    assert len(answers) == 1
    raw = answers[0].data
    reply = west.open(raw[4:] if answers[0].local_port == 4500 else raw)
    assert [n.notify_type for n in reply.all(Notify)] == [NotifyType.INVALID_SYNTAX]
    assert east.serial in pair.east.engine.table.states and pair.east.installed
    logged = [e.text for e in pair.east.engine.next_events() if hasattr(e, "text")]
    assert any("SA payload missing" in line for line in logged), logged


def test_liveness_checks_are_counted_on_both_sides():
    from fswan.config.model import DpdAction

    pair = make_pair(conn(ikev2=Ikev2Policy.INSIST, dpddelay=10.0, dpdtimeout=30.0,
                          dpdaction=DpdAction.CLEAR))
    pair.initiate()
    pair.run(35)
    sent = pair.west.engine.counters["dpd_sent"] + pair.east.engine.counters["dpd_sent"]
    received = pair.west.engine.counters["dpd_received"] + pair.east.engine.counters["dpd_received"]
    assert sent >= 2 and received == sent
    assert pair.west.installed and not pair.west.deleted


def test_ipv6_gateways_and_clients():
    from ipaddress import ip_network

    from fswan.config.secrets import parse_secrets
    from tests.ike_pair import mirrored

    west, east = "2001:db8::1", "2001:db8::2"
    secrets = parse_secrets(f'{west} {east} : PSK "lab-psk-not-secret-0123456789"\n',
                            "/etc/ipsec.secrets")
    pair = make_pair(conn(ikev2=Ikev2Policy.INSIST, left=west, right=east,
                          leftsubnet="2001:db8:1::/64", rightsubnet="2001:db8:2::/64"),
                     west_secrets=secrets, east_secrets=secrets, west_addr=west, east_addr=east)
    pair.initiate()
    assert pair.west.installed and pair.east.installed, pair.west.text() + pair.east.text()
    assert mirrored(pair.west.installed[0], pair.east.installed[0])
    assert (pair.west.installed[0].local_client, pair.west.installed[0].remote_client) == (
        ip_network("2001:db8:1::/64"), ip_network("2001:db8:2::/64"))


def test_first_messages_no_conn_allows_log_one_line_and_a_summary():
    from fswan.ike.events import LogLine
    from fswan.ikev2.constants import ExchangeType, Flags
    from fswan.ikev2.message import Header, Message
    from fswan.ikev2.payloads import KeyExchange, Nonce
    from fswan.ikev2 import suites
    from fswan.suites import parse_ike

    pair = make_pair(conn(ikev2=Ikev2Policy.INSIST))
    east = pair.east.engine
    offer = suites.ike_proposals(parse_ike("aes128-sha2_256-modp2048"))
    lines = []
    for i in range(200):  # from 200 addresses no conn names, over 100 s
        request = Message(Header(i.to_bytes(8, "big"), bytes(8), ExchangeType.IKE_SA_INIT,
                                 Flags.INITIATOR, 0),
                          (offer, KeyExchange(14, bytes(256)), Nonce(bytes(32)))).encode()
        east.receive_datagram(request, "192.0.2.2", 500, f"203.0.113.{i % 100 + 1}", 500, i * 0.5)
        lines += [e.text for e in east.next_events() if isinstance(e, LogLine)]
        assert len(east.datagrams_to_send()) == 1  # each still gets NO_PROPOSAL_CHOSEN
    whole = [t for t in lines if "no IKEv2 connection has been authorized" in t]
    summaries = [t for t in lines if "IKEv2 IKE_SA_INIT no conn allows" in t]
    # at most one whole line and one summary per REPORT_INTERVAL (10 s) of the 100 s
    assert 1 <= len(whole) <= 11 and 1 <= len(summaries) <= 11, lines
    assert sum(int(t.rsplit(": ", 1)[1]) for t in summaries) >= 180
    assert east.counters["no_connection"] == 200
