"""Two IKE engines wired together in memory (aioquic's ``transfer()`` pattern).

The network is a list of datagrams moved between the engines by
:meth:`Pair.transfer`; time only moves when a test says so
(:meth:`Pair.run`), and then every engine's timers fire at their exact
deadlines.  Faults are injected per datagram (by its sequence number on the
wire since the fault was installed): drop, duplicate, hold back (reorder).
A NAT in front of west rewrites source addresses and ports, and can change
its mapping mid-session (rebinding).

Nothing here knows IKE: it only moves bytes, which is the point.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from ipaddress import ip_address, ip_network
from pathlib import Path
from typing import Callable, Iterable

from fswan.config.keys import format_rsasigkey, load_public_key
from fswan.config.model import AuthBy, Connection, End
from fswan.config.orient import DefaultRoute, IpsecInterface, OrientedConnection, orient
from fswan.config.secrets import Secrets, parse_secrets
from fswan.config.virtual import VIRTUAL_PREFIXES, parse_virtual_subnet
from fswan.ike.engine import IkeEngine
from fswan.ike.events import (
    ChildSADeleted,
    ChildSAInstalled,
    IsakmpSADeleted,
    IsakmpSAEstablished,
    LogLine,
    WhackDone,
)
from tests.fakes import MemoryLoader

DATA = Path(__file__).resolve().parent / "data"
KEYS = DATA / "vectors" / "pubkey-main"
WEST, EAST, NAT_PUBLIC = "192.0.2.1", "192.0.2.2", "192.0.2.3"
WEST_NET, EAST_NET = "198.51.100.0/25", "203.0.113.0/25"
LAB_PSK = "lab-psk-not-secret-0123456789"


# --------------------------------------------------------------------------
# configuration helpers


def conn(
    name: str = "net",
    *,
    left: str = WEST,
    right: str = EAST,
    leftsubnet: str | None = WEST_NET,
    rightsubnet: str | None = EAST_NET,
    leftid: str | None = None,
    rightid: str | None = None,
    leftrsasigkey: str = "%dnsondemand",
    rightrsasigkey: str = "%dnsondemand",
    **options,
) -> Connection:
    """A connection as ipsec.conf would give it (west on the left)."""
    options.setdefault("authby", AuthBy.SECRET)
    return Connection(
        name=name,
        left=End(host=left, id=leftid, rsasigkey=leftrsasigkey, **_client(leftsubnet)),
        right=End(host=right, id=rightid, rsasigkey=rightrsasigkey, **_client(rightsubnet)),
        **options,
    )


def _client(text: str | None) -> dict:
    """``subnet=`` or, for ``vhost:``/``vnet:``, ``virtual=`` of an End."""
    if not text:
        return {}
    if text.startswith(VIRTUAL_PREFIXES):
        return {"virtual": parse_virtual_subnet(text)}
    return {"subnet": ip_network(text)}


def oriented(connection: Connection, address: str) -> OrientedConnection:
    """Orient ``connection`` on a host whose only address is ``address``."""
    interface = IpsecInterface("ipsec0", "eth0", ip_address(address))
    return orient(connection, [interface], DefaultRoute("eth0", None))


def psk_secrets(text: str) -> Secrets:
    return parse_secrets(text, "/etc/ipsec.secrets")


def lab_secrets() -> Secrets:
    return psk_secrets(f'{WEST} {EAST} : PSK "{LAB_PSK}"\n')


def rsa_pubkey(side: str) -> str:
    """The lab's raw public key of ``west``/``east`` as ``0s...``."""
    return format_rsasigkey(load_public_key((KEYS / f"{side}.pub").read_text()))


def rsa_secrets(side: str) -> Secrets:
    loader = MemoryLoader({f"/keys/{side}.key": (KEYS / f"{side}.key").read_text()})
    return parse_secrets(f': RSA "/keys/{side}.key"\n', "/etc/ipsec.secrets", loader)


def seeded(seed: int) -> Callable[[int], bytes]:
    return random.Random(seed).randbytes


# --------------------------------------------------------------------------
# the wire


@dataclass
class Wire:
    """One datagram on the simulated network."""

    src: str
    sport: int
    dst: str
    dport: int
    data: bytes
    #: who sent it ("west" / "east")
    sender: str = ""
    seq: int = 0


@dataclass
class Endpoint:
    name: str
    engine: IkeEngine
    address: str
    events: list = field(default_factory=list)

    def of(self, kind: type) -> list:
        return [e for e in self.events if isinstance(e, kind)]

    @property
    def logs(self) -> list[LogLine]:
        return self.of(LogLine)

    @property
    def lines(self) -> list[str]:
        """Log lines as whack would print them: ``NNN "conn" #N: text``."""
        out = []
        for line in self.logs:
            prefix = ""
            if line.conn is not None:
                prefix = f'"{line.conn}"' + (
                    f" #{line.serial}: " if line.serial is not None else ": "
                )
            elif line.serial is not None:
                prefix = f"#{line.serial}: "
            out.append(f"{line.rc:03d} {prefix}{line.text}")
        return out

    def text(self) -> str:
        return "\n".join(self.lines)

    @property
    def installed(self) -> list[ChildSAInstalled]:
        return self.of(ChildSAInstalled)

    @property
    def deleted(self) -> list[ChildSADeleted]:
        return self.of(ChildSADeleted)

    @property
    def isakmp_up(self) -> list[IsakmpSAEstablished]:
        return self.of(IsakmpSAEstablished)

    @property
    def isakmp_down(self) -> list[IsakmpSADeleted]:
        return self.of(IsakmpSADeleted)

    @property
    def whack_done(self) -> list[WhackDone]:
        return self.of(WhackDone)

    def live_children(self) -> set[int]:
        """Serials installed and not (yet) deleted."""
        return {e.serial for e in self.installed} - {e.serial for e in self.deleted}


@dataclass
class Nat:
    """A NAPT in front of one endpoint: private (addr, port) <-> public port."""

    private: str
    public: str
    ports: dict[int, int]

    def outbound(self, wire: Wire) -> None:
        if wire.src == self.private:
            wire.src = self.public
            wire.sport = self.ports.get(wire.sport, wire.sport)

    def inbound(self, wire: Wire) -> Wire:
        back = {public: private for private, public in self.ports.items()}
        if wire.dst == self.public and wire.dport in back:
            return Wire(
                wire.src,
                wire.sport,
                self.private,
                back[wire.dport],
                wire.data,
                wire.sender,
                wire.seq,
            )
        return wire


Fault = Callable[[Wire], list[Wire]]


class Faults:
    """Drop / duplicate / hold back datagrams by their sequence number (0 = first sent)."""

    def __init__(
        self, drop: Iterable[int] = (), duplicate: Iterable[int] = (), delay: Iterable[int] = ()
    ) -> None:
        self.drop, self.duplicate, self.delay = set(drop), set(duplicate), set(delay)
        self.held: list[Wire] = []

    def __call__(self, wire: Wire) -> list[Wire]:
        if wire.seq in self.drop:
            return []
        out = [wire]
        if wire.seq in self.duplicate:
            out.append(
                Wire(wire.src, wire.sport, wire.dst, wire.dport, wire.data, wire.sender, wire.seq)
            )
        if wire.seq in self.delay:
            self.held.append(wire)
            return []
        released, self.held = self.held, []
        return out + released


class Pair:
    """West and east, the network between them, and one clock."""

    def __init__(
        self,
        west: IkeEngine,
        east: IkeEngine,
        *,
        west_addr: str = WEST,
        east_addr: str = EAST,
        nat: Nat | None = None,
    ) -> None:
        self.west = Endpoint("west", west, west_addr)
        self.east = Endpoint("east", east, east_addr)
        self.now = 0.0
        self.nat = nat
        self.fault: Fault | None = None
        self.silent: set[str] = set()
        self.wire: list[Wire] = []
        #: datagrams sent but not yet delivered (see :meth:`step`)
        self.queue: list[Wire] = []
        self._seq = 0

    @property
    def endpoints(self) -> tuple[Endpoint, Endpoint]:
        return self.west, self.east

    def set_fault(self, fault: Fault | None) -> None:
        self.fault = fault
        self._seq = 0

    def _collect(self) -> list[Wire]:
        out = []
        for ep in self.endpoints:
            for d in ep.engine.datagrams_to_send():
                wire = Wire(
                    ep.address, d.local_port, str(d.remote_addr), d.remote_port, d.data, ep.name
                )
                if self.nat is not None:
                    self.nat.outbound(wire)
                out.append(wire)
        return out

    def _drain_events(self) -> None:
        for ep in self.endpoints:
            ep.events.extend(ep.engine.next_events())
            if ep.engine.counters["internal_error"]:
                raise AssertionError(f"{ep.name} engine internal error:\n{ep.text()}")

    def _deliver(self, wire: Wire) -> None:
        if self.nat is not None:
            wire = self.nat.inbound(wire)
        for ep in self.endpoints:
            if ep.address == wire.dst:
                ep.engine.receive_datagram(
                    wire.data, ep.address, wire.dport, wire.src, wire.sport, self.now
                )

    def step(self, count: int = 1) -> int:
        """Deliver at most ``count`` datagrams, one at a time, oldest first (no faults)."""
        delivered = 0
        while delivered < count:
            self._drain_events()
            for wire in self._collect():
                wire.seq = self._seq
                self._seq += 1
                self.wire.append(wire)
                self.queue.append(wire)
            if not self.queue:
                break
            self._deliver(self.queue.pop(0))
            delivered += 1
        self._drain_events()
        return delivered

    def transfer(self, limit: int = 400) -> int:
        """Move datagrams until the network is quiet; returns how many were sent."""
        sent = 0
        queued, self.queue = self.queue, []
        for wire in queued:
            self._deliver(wire)
        for _ in range(limit):
            self._drain_events()
            batch = self._collect()
            if not batch:
                held = getattr(self.fault, "held", None)
                if held:
                    batch, self.fault.held = list(held), []  # type: ignore[union-attr]
                    for wire in batch:
                        self._deliver(wire)
                    continue
                break
            for wire in batch:
                wire.seq = self._seq
                self._seq += 1
                sent += 1
                self.wire.append(wire)
                if wire.sender in self.silent:
                    continue
                deliveries = self.fault(wire) if self.fault else [wire]
                for item in deliveries:
                    self._deliver(item)
        else:
            raise AssertionError("the engines never stopped talking")
        self._drain_events()
        return sent

    def next_deadline(self) -> float | None:
        timers = [t for t in (ep.engine.get_timer() for ep in self.endpoints) if t is not None]
        return min(timers) if timers else None

    def run(self, seconds: float) -> None:
        """Let ``seconds`` pass, firing every timer at its deadline."""
        self.transfer()
        target = self.now + seconds
        while True:
            deadline = self.next_deadline()
            if deadline is None or deadline > target:
                break
            self.now = max(self.now, deadline)
            for ep in self.endpoints:
                timer = ep.engine.get_timer()
                if timer is not None and timer <= self.now:
                    ep.engine.handle_timer(self.now)
            self.transfer()
        self.now = target

    def initiate(self, name: str = "net", who: str = "west", whack: object = "whack") -> None:
        ep = self.west if who == "west" else self.east
        ep.engine.initiate(name, self.now, whack)
        self.transfer()


def make_pair(
    west_conn: Connection,
    east_conn: Connection | None = None,
    *,
    west_secrets: Secrets | None = None,
    east_secrets: Secrets | None = None,
    west_addr: str = WEST,
    east_addr: str = EAST,
    nat: Nat | None = None,
    seed: int = 1,
    **engine_options,
) -> Pair:
    """Two engines with one connection each (east's defaults to the same conn)."""
    east_conn = east_conn or west_conn
    west = IkeEngine(west_secrets or lab_secrets(), random_bytes=seeded(seed), **engine_options)
    east = IkeEngine(
        east_secrets or lab_secrets(), random_bytes=seeded(seed + 1000), **engine_options
    )
    west.add_connection(oriented(west_conn, west_addr))
    east.add_connection(oriented(east_conn, east_addr))
    return Pair(west, east, west_addr=west_addr, east_addr=east_addr, nat=nat)


def mirrored(a: ChildSAInstalled, b: ChildSAInstalled) -> bool:
    """A's outbound SA is B's inbound one, and the other way round."""
    return (
        a.outbound_spi == b.inbound_spi
        and a.inbound_spi == b.outbound_spi
        and a.outbound_keys == b.inbound_keys
        and a.inbound_keys == b.outbound_keys
        and a.proposal == b.proposal
    )
