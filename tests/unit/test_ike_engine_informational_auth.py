"""Informational exchanges by the book: nobody deletes or probes an SA it did not authenticate for.

The attacks are played with real engines: an attacker that completes Main Mode
messages 1-4 with RSA auth (anyone can: the signatures come in 5 and 6) knows
SKEYID_a and can make a valid HASH(1); peers behind one NAT share an address.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fswan.config.model import AuthBy
from fswan.config.secrets import parse_secrets
from fswan.ike import informational
from fswan.ike.engine import IkeEngine
from fswan.ike.state import Phase1State, Phase2State, StateKind
from fswan.isakmp.constants import NotifyType, ProtocolId
from fswan.isakmp.payloads import DeletePayload, NotificationPayload
from tests.ike_pair import (
    EAST,
    WEST,
    conn,
    oriented,
    rsa_pubkey,
    rsa_secrets,
    seeded,
)

NAT = "192.0.2.3"


@dataclass
class Host:
    """An engine behind an address and port map (a NAPT, or none)."""

    engine: IkeEngine
    private: str
    public: str
    ports: dict[int, int] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)


class Net:
    """Several engines and a responder, datagrams moved until all are quiet."""

    def __init__(self, responder: IkeEngine, address: str) -> None:
        self.responder = Host(responder, address, address)
        self.hosts: list[Host] = []
        self.now = 0.0

    def add(self, host: Host) -> Host:
        self.hosts.append(host)
        return host

    def _behind(self, address: str, port: int) -> tuple[Host, int]:
        """The host a datagram to ``address:port`` reaches, and its own port."""
        for host in self.hosts:
            back = {public: private for private, public in host.ports.items()}
            if host.public == address and (port in back if host.ports else port in (500, 4500)):
                return host, back.get(port, port)
        raise AssertionError(f"nobody at {address}:{port}")

    def run(self, limit: int = 200) -> None:
        for _ in range(limit):
            moved = False
            for host in self.hosts:
                for d in host.engine.datagrams_to_send():
                    moved = True
                    sport = host.ports.get(d.local_port, d.local_port)
                    self.responder.engine.receive_datagram(
                        d.data, self.responder.private, d.remote_port, host.public, sport, self.now)
            for d in self.responder.engine.datagrams_to_send():
                moved = True
                host, port = self._behind(str(d.remote_addr), d.remote_port)
                host.engine.receive_datagram(
                    d.data, host.private, port, self.responder.public, d.local_port, self.now)
            for host in (*self.hosts, self.responder):
                host.lines += [f"{e.text}" for e in host.engine.next_events() if hasattr(e, "text")]
            if not moved:
                return
        raise AssertionError("the engines never stopped talking")


def rsa_conn(name: str, leftid: str, rightid: str, left: str, right: str | None = EAST,
             **more):
    return conn(name, left=left, right=right or "%any", leftid=leftid, rightid=rightid,
                authby=AuthBy.RSASIG, leftsubnet=None, rightsubnet=None,
                leftrsasigkey=rsa_pubkey("west"), rightrsasigkey=rsa_pubkey("east"), **more)


def installed(engine: IkeEngine) -> list[Phase2State]:
    return [s for s in engine.table.states.values() if isinstance(s, Phase2State) and s.installed]


def victim_and_east() -> tuple[Net, Host]:
    """west (the victim) and east with an RSA tunnel up, host to host."""
    east = IkeEngine(rsa_secrets("east"), random_bytes=seeded(31))
    east.add_connection(oriented(
        conn("net", leftid="@west", rightid="@east", authby=AuthBy.RSASIG, leftsubnet=None,
             rightsubnet=None, leftrsasigkey=rsa_pubkey("west"),
             rightrsasigkey=rsa_pubkey("east")), EAST))
    net = Net(east, EAST)
    west = IkeEngine(rsa_secrets("west"), random_bytes=seeded(32))
    west.add_connection(oriented(
        conn("net", leftid="@west", rightid="@east", authby=AuthBy.RSASIG, leftsubnet=None,
             rightsubnet=None, leftrsasigkey=rsa_pubkey("west"),
             rightrsasigkey=rsa_pubkey("east")), WEST))
    victim = net.add(Host(west, WEST, WEST))
    west.initiate("net", 0.0, None)
    net.run()
    assert len(installed(east)) == 1 and len(installed(west)) == 1
    return net, victim


def attacker_after_mm4(net: Net, port: int) -> tuple[Host, Phase1State]:
    """An engine at the victim's address (another source port) that gets through
    MM1-MM4 with east: it has the keys, but cannot sign as @west."""
    attacker = IkeEngine(rsa_secrets("east"), random_bytes=seeded(33))  # not west's key
    attacker.add_connection(oriented(
        conn("net", leftid="@west", rightid="@east", authby=AuthBy.RSASIG, leftsubnet=None,
             rightsubnet=None, leftrsasigkey=rsa_pubkey("west"),
             rightrsasigkey=rsa_pubkey("east")), WEST))
    host = net.add(Host(attacker, WEST, WEST, {500: port, 4500: port + 1}))
    attacker.initiate("net", 1.0, None)
    net.run()
    p1 = next(s for s in attacker.table.states.values() if isinstance(s, Phase1State))
    assert p1.keys is not None and p1.crypter is not None  # it has SKEYID_a
    on_east = [s for s in net.responder.engine.table.states.values()
               if isinstance(s, Phase1State) and s.icookie == p1.icookie]
    assert on_east and not on_east[0].kind.is_isakmp_established  # MI5 failed its signature
    return host, p1


def test_an_unauthenticated_peer_cannot_delete_anothers_ipsec_sa():
    net, victim = victim_and_east()
    east = net.responder.engine
    spi = installed(east)[0].peer_spi  # read off the wire: the SPI of east's ESP to west
    attacker, p1 = attacker_after_mm4(net, 1500)
    informational.delete_ipsec(attacker.engine, p1, [spi])
    net.run()
    assert len(installed(east)) == 1, "the victim's SA was deleted"
    assert any("ignoring informational payload from an unauthenticated peer at 192.0.2.1:150"
               in line and "DELETE" in line.upper() for line in net.responder.lines)
    assert east.counters["informational_refused"] >= 1


def test_an_unauthenticated_peer_gets_no_dpd_answer_and_its_initial_contact_is_ignored():
    net, victim = victim_and_east()
    east = net.responder.engine
    attacker, p1 = attacker_after_mm4(net, 1600)
    informational.notify(attacker.engine, p1, NotifyType.R_U_THERE, ProtocolId.ISAKMP,
                         p1.cookies, (7).to_bytes(4, "big"))
    informational.notify(attacker.engine, p1, NotifyType.INITIAL_CONTACT)
    sent_before = east.counters["datagrams_sent"]
    east.datagrams_to_send()
    net.run()
    assert east.counters["dpd_received"] == 0  # no R_U_THERE_ACK confirms anything
    assert east.counters["datagrams_sent"] == sent_before
    assert len(installed(east)) == 1  # INITIAL_CONTACT from it cleared nothing


def test_an_error_notification_about_its_own_negotiation_still_ends_it():
    net, victim = victim_and_east()
    east = net.responder.engine
    attacker, p1 = attacker_after_mm4(net, 1700)
    informational.send(attacker.engine, p1, [NotificationPayload(
        NotifyType.INVALID_ID_INFORMATION, ProtocolId.ISAKMP, p1.cookies)])
    net.run()
    assert not [s for s in east.table.states.values()
                if isinstance(s, Phase1State) and s.icookie == p1.icookie]
    assert len(installed(east)) == 1


def test_two_peers_behind_one_nat_cannot_delete_each_others_sas():
    east = IkeEngine(parse_secrets(': PSK "nat-not-secret"\n', "/etc/ipsec.secrets"),
                     random_bytes=seeded(41))
    for who in ("alice", "bob"):
        east.add_connection(oriented(conn(f"rw-{who}", left=EAST, right="%any", leftid="@east",
                                          rightid=f"@{who}", leftsubnet=None, rightsubnet=None),
                                     EAST))
    net = Net(east, EAST)
    peers = {}
    for i, who in enumerate(("alice", "bob")):
        private = f"198.51.100.{10 + i}"
        engine = IkeEngine(parse_secrets(': PSK "nat-not-secret"\n', "/etc/ipsec.secrets"),
                           random_bytes=seeded(50 + i))
        engine.add_connection(oriented(conn("home", left=private, right=EAST, leftid=f"@{who}",
                                            rightid="@east", leftsubnet=None, rightsubnet=None),
                                       private))
        peers[who] = net.add(Host(engine, private, NAT, {500: 2000 + i, 4500: 3000 + i}))
        engine.initiate("home", 0.0, None)
        net.run()
    assert {s.conn_name for s in installed(east)} == {"rw-alice", "rw-bob"}
    alice_spi = next(s.peer_spi for s in installed(east) if s.conn_name == "rw-alice")
    bob = peers["bob"].engine
    bob_p1 = next(s for s in bob.table.states.values()
                  if isinstance(s, Phase1State) and s.kind is StateKind.MAIN_I4)
    informational.delete_ipsec(bob, bob_p1, [alice_spi])
    alice_p1_cookies = next(s.cookies for s in east.table.states.values()
                            if isinstance(s, Phase1State) and s.conn_name == "rw-alice")
    informational.send(bob, bob_p1, [DeletePayload(ProtocolId.ISAKMP, (alice_p1_cookies,), 16)])
    net.run()
    assert {s.conn_name for s in installed(east)} == {"rw-alice", "rw-bob"}
    assert any(s.conn_name == "rw-alice" and isinstance(s, Phase1State)
               for s in east.table.states.values())
    assert any("another peer's IPsec SA" in line for line in net.responder.lines)
    assert any("another peer's ISAKMP SA" in line for line in net.responder.lines)
