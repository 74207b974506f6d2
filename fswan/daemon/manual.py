"""Manual keying, as FreeS/WAN's ``ipsec manual``: SAs straight from ipsec.conf, no IKE.

A conn with ``auto=manual`` (or any conn given to ``ipsec manual --up``) names
its SPIs and keys:

* ``spi=0x200`` is used for both directions (the two SAs differ by
  destination, as KLIPS's ``tun0x200@left`` / ``tun0x200@right``);
  ``spibase=0x200`` means the same here; ``leftespspi=``/``rightespspi=``
  override it per direction.
* ``esp=`` is the transform (``aes128-sha1``, ``3des-md5-96``, ...) and
  ``espenckey=``/``espauthkey=`` the keys (``0x`` hex, ``0s`` base64).
* Every ``left...`` value describes the SA **sent by left** (its destination
  is right), every ``right...`` value the SA sent by right; the conn-wide
  ``spi=``/``espenckey=``/``espauthkey=`` fill whatever a side leaves out.
* Every SA has anti-replay, manual ones too: ``espreplay_window=N`` sets the
  window, 0 (FreeS/WAN's default, which turned KLIPS's check off) means 64.
  With static keys a restarted peer starts again at sequence number 1 and is
  refused as a replay until both ends run ``ipsec manual --down``/``--up``
  (which starts fresh SAs): the price of never accepting a replayed packet.

AES-GCM is refused: its IV is a counter, and with a key that never changes
a restart repeats (key, nonce) pairs, which breaks GCM completely.

The SAs are installed with serial 0 under the conn's name, so status, eroutes
and updown treat them like IKE's: ``prepare``/``route``, eroute -> SA, ``up``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.internet import defer

from fswan.config.encodings import decode_data
from fswan.config.model import Connection, End
from fswan.config.orient import OrientedConnection
from fswan.daemon.logging import PlutoLog, Reply
from fswan.ipsec.kernel import KernelError
from fswan.ipsec.sa import IN, OUT, SecurityAssociation
from fswan.suites import EspKeys, EspProposal, ProposalError, UnsupportedAlgorithm, parse_esp
from fswan.updown import SAFacts
from fswan.whackproto import RC

if TYPE_CHECKING:
    from fswan.daemon.tunnels import Tunnels

__all__ = ["MANUAL_SERIAL", "ManualError", "ManualKeying", "manual_sa_pair"]

#: the "state serial" manual SA pairs are filed under
MANUAL_SERIAL = 0

GCM_REFUSAL = (
    "esp={esp}: AES-GCM cannot be used with manual keys: its IV is a counter, and a static key "
    "repeats nonces after every restart; use a CBC transform such as aes128-sha1"
)


class ManualError(ValueError):
    """A manual conn that cannot be keyed; the message says which keyword is wrong."""


def _proposal(esp: str | None) -> EspProposal:
    if not esp:
        raise ManualError("manual keying needs esp= (e.g. esp=aes128-sha1)")
    try:
        proposals = parse_esp(esp)
    except (ProposalError, UnsupportedAlgorithm, ValueError) as error:
        raise ManualError(f"esp={esp}: {error}") from None
    proposal = proposals[0]
    if proposal.cipher_algorithm.aead:
        raise ManualError(GCM_REFUSAL.format(esp=esp))
    return proposal


def check_manual(oriented_or_conn: OrientedConnection | Connection) -> None:
    """Config-time check (``ipsec auto --add`` of an ``auto=manual`` conn): GCM, esp=."""
    conn = oriented_or_conn.conn if isinstance(oriented_or_conn, OrientedConnection) else oriented_or_conn
    _proposal(conn.esp)


def _key(text: str | None, keyword: str, size: int) -> bytes:
    if text is None:
        raise ManualError(f"manual keying needs {keyword}=")
    try:
        key = decode_data(text)
    except ValueError as error:
        raise ManualError(f"{keyword}: {error}") from None
    if len(key) != size:
        raise ManualError(f"{keyword} is {len(key) * 8} bits; the transform needs {size * 8}")
    return key


def manual_sa_pair(
    oriented: OrientedConnection,
    *,
    now: float,
    hidetos: bool = True,
    path_mtu: int = 1500,
) -> tuple[SecurityAssociation, SecurityAssociation]:
    """(inbound, outbound) SAs for a manually keyed conn; ManualError says what is missing."""
    conn = oriented.conn
    proposal = _proposal(conn.esp)
    if oriented.that.host is None or oriented.this.host is None:
        raise ManualError("manual keying needs both ends' addresses (no %any)")
    enc_size = proposal.encryption_key_size
    integ = proposal.integrity_algorithm
    auth_size = integ.key_size if integ is not None else 0
    our = "left" if oriented.this_is_left else "right"
    their = "right" if oriented.this_is_left else "left"

    def side(end: End, prefix: str) -> tuple[int, EspKeys]:
        spi = end.espspi or conn.spi or conn.spibase
        if spi is None:
            raise ManualError(f"manual keying needs spi= (or {prefix}espspi=)")
        enc_text = end.espenckey or conn.espenckey
        auth_text = end.espauthkey or conn.espauthkey
        enc = _key(enc_text, f"{prefix}espenckey" if end.espenckey else "espenckey", enc_size)
        auth = _key(auth_text, f"{prefix}espauthkey" if end.espauthkey else "espauthkey",
                    auth_size) if auth_size else b""
        return spi, EspKeys(encryption_key=enc, integrity_key=auth)

    spi_out, keys_out = side(oriented.this.end, our)
    spi_in, keys_in = side(oriented.that.end, their)
    window = conn.espreplay_window
    common: dict[str, Any] = dict(
        local=oriented.this.host,
        remote=oriented.that.host,
        proposal=proposal,
        mode="transport" if conn.type.value == "transport" else "tunnel",
        local_client=oriented.this.client,
        remote_client=oriented.that.client,
        replay_window=window or 64,
        hidetos=hidetos,
        disablearrivalcheck=conn.disablearrivalcheck,
        path_mtu=path_mtu,
        now=now,
        conn=conn.name,
        serial=MANUAL_SERIAL,
    )
    try:
        inbound = SecurityAssociation(direction=IN, spi=spi_in, keys=keys_in, **common)
        outbound = SecurityAssociation(direction=OUT, spi=spi_out, keys=keys_out, **common)
    except (ValueError, UnsupportedAlgorithm) as error:
        raise ManualError(str(error)) from None
    return inbound, outbound


class ManualKeying:
    """``ipsec manual --up|--down NAME`` on top of the daemon's kernel and tunnels."""

    def __init__(self, tunnels: Tunnels, log: PlutoLog) -> None:
        self.tunnels = tunnels
        self.log = log
        self.up_conns: set[str] = set()

    def up(self, oriented: OrientedConnection, reply: Reply | None) -> defer.Deferred[bool]:
        name = oriented.name
        tunnels = self.tunnels
        kernel = tunnels.kernel
        if name in self.up_conns:
            self.log.log("manual conn is already up", RC.LOG, name, None, reply)
            return defer.succeed(True)
        try:
            inbound, outbound = manual_sa_pair(
                oriented, now=tunnels.now(), hidetos=tunnels.setup().hidetos,
                path_mtu=tunnels.path_mtu,
            )
        except ManualError as error:
            self.log.log(str(error), RC.BADWHACKMESSAGE, name, None, reply)
            return defer.succeed(False)
        routed = kernel.routing(name) != "unrouted" or tunnels.runner.is_routed(name)
        try:
            kernel.install(name, MANUAL_SERIAL, inbound, outbound, tunnels.now(), take_eroute=False)
        except KernelError as error:
            self.log.log(str(error), RC.CLASH, name, None, reply)
            return defer.succeed(False)
        if tunnels.pump is not None:
            tunnels.pump.route_peer(str(outbound.remote), None, oriented.interface.physical)
        facts = SAFacts(serial=None, spi_in=inbound.spi, spi_out=outbound.spi,
                        peer_addr=outbound.remote, my_addr=outbound.local)
        d = defer.succeed(True) if routed else tunnels._route_verbs(oriented, facts, reply)

        def routed_ok(ok: bool) -> bool | defer.Deferred[bool]:
            if not ok:
                kernel.delete(name, MANUAL_SERIAL, tunnels.now())
                self.log.log("routing failed: manual conn not brought up", RC.ROUTE, name,
                             None, reply)
                return False
            kernel.take_eroute(name, MANUAL_SERIAL, tunnels.now())
            self.up_conns.add(name)
            self.log.log(
                f"manually keyed: {inbound.said.dotted} {outbound.said.dotted} "
                f"({inbound.esp.name}); erouted", RC.SUCCESS, name, None, reply,
            )
            plugins = tunnels._plugins(oriented, None)
            if plugins is not None:
                return tunnels.runner.run("up", oriented, facts, plugins, reply)
            return True

        return d.addCallback(routed_ok)

    def down(self, oriented: OrientedConnection, reply: Reply | None) -> defer.Deferred[bool]:
        name = oriented.name
        tunnels = self.tunnels
        inbound, outbound = tunnels.kernel.delete(name, MANUAL_SERIAL, tunnels.now())
        self.up_conns.discard(name)
        if inbound is None or outbound is None:
            self.log.log("manual conn is not up", RC.LOG, name, None, reply)
            return defer.succeed(True)
        facts = SAFacts(in_bytes=inbound.bytes, out_bytes=outbound.bytes,
                        in_packets=inbound.packets, out_packets=outbound.packets)
        self.log.log(f"manual SAs {inbound.said.dotted} {outbound.said.dotted} deleted",
                     RC.SUCCESS, name, None, reply)
        keep = tunnels.kernel.routing(name) != "unrouted"
        return tunnels._teardown(oriented, facts, keep_route=keep, reply=reply)
