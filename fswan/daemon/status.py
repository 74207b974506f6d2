"""pluto's ``--status`` layout and the same facts as JSON.

Pure formatting over a snapshot of the daemon's tables, so the layout can be
tested line by line.  The order follows pluto's ``show_status``: interfaces,
``%myid``, debug, connections sorted by name, then states.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from fswan.config.model import AuthBy, Auto, Connection, ConnType, FailureShunt
from fswan.config.orient import IpsecInterface, OrientedConnection, OrientedEnd
from fswan.ike.certauth import NO_CREDENTIALS, Credentials
from fswan.pki.dn import format_dn
from fswan.ike.status import (
    StateSnapshot,
    peer_cert_line,
    roadwarrior_line,
    state_dicts,
    state_line,
)


class _ConnText:
    """The cached topology and middle status lines of one loaded conn, with what they
    were made from (checked by identity: a copy with another conn makes them again)."""

    __slots__ = ("source", "topology", "lines")

    def __init__(self) -> None:
        self.source: tuple[object, ...] = ()
        self.topology = ""
        self.lines: list[str] = []

    def get(self, loaded: LoadedConnection) -> _ConnText:
        source = self.source
        if (len(source) != 4 or source[0] is not loaded.conn or source[1] is not loaded.oriented
                or source[2] is not loaded.orientation_error or source[3] is not loaded.creds):
            self.topology = topology(loaded)
            self.lines = _middle_lines(loaded)
            self.source = (loaded.conn, loaded.oriented, loaded.orientation_error, loaded.creds)
        return self


@dataclass(frozen=True)
class LoadedConnection:
    """A conn the daemon holds: oriented on this host, or why it is not."""

    conn: Connection
    oriented: OrientedConnection | None = None
    orientation_error: str | None = None
    routing: str = "unrouted"
    #: the IPsec state whose SA the conn's eroute points at
    eroute_owner: int | None = None
    #: certificates the conn negotiates with (``daemon/credentials.py``)
    creds: Credentials = NO_CREDENTIALS
    #: the status text that follows from the conn alone, made on the first status and shared
    #: by the copies that status makes with the routing words (``dataclasses.replace``)
    text_cache: _ConnText = field(default_factory=_ConnText, compare=False, repr=False)

    def __post_init__(self) -> None:
        # made as the conn is loaded (20 us), not by the first status of 10,000 conns; a
        # copy with other routing words finds it made
        self.text_cache.get(self)

    @property
    def name(self) -> str:
        return self.conn.name


@dataclass(frozen=True)
class SaTraffic:
    """What the data plane counted on one SA pair (``Tunnels.sa_traffic``)."""

    #: seconds since either SA last carried a packet; None: never used
    idle: float | None
    in_bytes: int
    in_packets: int
    out_bytes: int
    out_packets: int
    #: the conn's eroute points at this pair
    eroute_owner: bool = False

    @property
    def used(self) -> str:
        return f"used {self.idle:.0f}s ago" if self.idle is not None else "never used"

    @property
    def counts(self) -> str:
        return (f"in {self.in_bytes}B/{self.in_packets}p out {self.out_bytes}B/{self.out_packets}p"
                + ("; eroute owner" if self.eroute_owner else ""))


@dataclass(frozen=True)
class ManualSA:
    """A manually keyed SA pair (``ipsec manual``): no IKE state shows it."""

    conn: str
    #: the SAIDs as ``tun.200@192.0.2.2``
    outbound: str
    inbound: str


@dataclass(frozen=True)
class StatusSnapshot:
    interfaces: tuple[IpsecInterface, ...]
    myid: str | None
    connections: tuple[LoadedConnection, ...]
    listening: bool = True
    debug: str = "none"
    #: the engine's states (``#3: "net" STATE_MAIN_I4 ...``) as data
    states: tuple[StateSnapshot, ...] = ()
    #: per conn: (newest ISAKMP SA serial, newest IPsec SA serial), 0 = none
    newest: dict[str, tuple[int, int]] = field(default_factory=dict)
    #: the data plane's summary lines (eroutes, SAs, drop counters such as ``no eroute!``)
    kernel: tuple[str, ...] = ()
    #: per IPsec state serial: its SA pair's traffic (with a data plane)
    traffic: Mapping[int, SaTraffic] = field(default_factory=dict)
    #: manually keyed SA pairs, shown after the states
    manual: tuple[ManualSA, ...] = ()
    #: responder states whose peer has not answered our first reply yet, and busy mode
    half_open: int = 0
    busy: bool = False


def _seconds(value: float) -> str:
    return f"{int(value)}s"


def _format_end(end: OrientedEnd, peer: OrientedEnd, is_left_side: bool) -> str:
    """``client===host[:port][id]---nexthop``; the right-hand side of ``...`` is mirrored."""
    host = end.end.host if end.host is None else str(end.host)
    if end.end.ikeport != 500:
        host += f":{end.end.ikeport}"
    if end.end.id is not None and str(end.id) != str(end.host):
        host += f"[{end.end.id if end.end.id == '%myid' else end.id}]"
    if end.end.protoport is not None:
        proto, port = end.end.protoport
        host += f":{proto}/{port}"
    client = f"{end.client}" if end.has_client else None
    if end.end.virtual is not None:
        client = str(end.end.virtual)  # known per instance, once the peer proposes it
    hop = None
    if end.nexthop is not None and end.nexthop != peer.host:
        hop = str(end.nexthop)
    parts = [client, "===", host] if client else [host]
    if is_left_side:
        text = "".join(parts)
        return text + (f"---{hop}" if hop else "")
    text = "".join(reversed(parts))
    return (f"{hop}---" if hop else "") + text


def topology(loaded: LoadedConnection) -> str:
    """pluto's one-line picture of the connection, our end on the left."""
    oriented = loaded.oriented
    if oriented is None:
        conn = loaded.conn
        left = f"{conn.left.subnet}==={conn.left.host}" if conn.left.subnet else conn.left.host
        right = f"{conn.right.host}==={conn.right.subnet}" if conn.right.subnet else conn.right.host
        return f"{left}...{right}"
    return (
        _format_end(oriented.this, oriented.that, True)
        + "..."
        + _format_end(oriented.that, oriented.this, False)
    )


def policy_string(conn: Connection) -> str:
    """The ``policy:`` bits in pluto's order (sa_policy_bit_names)."""
    bits: list[str] = []
    if conn.authby in (AuthBy.SECRET, AuthBy.SECRET_OR_RSASIG):
        bits.append("PSK")
    if conn.authby in (AuthBy.RSASIG, AuthBy.SECRET_OR_RSASIG):
        bits.append("RSASIG")
    shunt = {
        ConnType.PASSTHROUGH: "PASS",
        ConnType.DROP: "DROP",
        ConnType.REJECT: "REJECT",
    }.get(conn.type)
    if shunt is None:
        bits.append("AUTHENTICATE" if conn.auth == "ah" else "ENCRYPT")
        if conn.compress:
            bits.append("COMPRESS")
        if conn.type is ConnType.TUNNEL:
            bits.append("TUNNEL")
        if conn.pfs:
            bits.append("PFS")
    if conn.disablearrivalcheck:
        bits.append("DISABLEARRIVALCHECK")
    if not conn.rekey:
        bits.append("DONTREKEY")
    if conn.auto is Auto.START:
        bits.append("UP")
    if shunt is None:  # the IKE versions, as Libreswan names them (ikev2= / keyexchange=)
        if conn.accepts_ikev1:
            bits.append("IKEV1_ALLOW")
        if conn.accepts_ikev2:
            bits.append("IKEV2_ALLOW")
        if conn.initiates_ikev2:
            bits.append("IKEV2_PROPOSE")
    if shunt is not None:
        bits.append(shunt)
    if conn.failureshunt is not FailureShunt.NONE:
        bits.append("failure" + conn.failureshunt.value.upper().replace("PASSTHROUGH", "PASS"))
    return "+".join(bits) if bits else "none"


def _prio(loaded: LoadedConnection) -> str:
    oriented = loaded.oriented
    if oriented is None:
        return "0,0"
    this = oriented.this.client
    that = oriented.that.client
    return f"{this.prefixlen if this else 0},{that.prefixlen if that else 0}"


def connection_lines(loaded: LoadedConnection, newest: tuple[int, int] = (0, 0)) -> list[str]:
    label = f'"{loaded.conn.name}":'
    text = loaded.text_cache.get(loaded)
    first = f"{label} {text.topology}; {loaded.routing}"
    if loaded.eroute_owner is not None:
        first += f"; eroute owner: #{loaded.eroute_owner}"
    if loaded.oriented is None:
        first += "; unoriented"
    return [first, *text.lines,
            f"{label}   newest ISAKMP SA: #{newest[0]}; newest IPsec SA: #{newest[1]};"]


def conn_cas(loaded: LoadedConnection) -> tuple[str, str] | None:
    """(our CA, the peer's CA) as the X.509 patch's ``CAs:`` line shows them, for a conn with
    certificates: ours is our certificate's issuer (or ``leftca=``), the peer's ``rightca=``
    (``%same`` resolved) or its configured certificate's issuer; ``%any`` when unknown."""
    creds = loaded.creds
    if not creds.uses_certificates:
        return None
    this_ca, that_ca = "%any", "%any"
    if creds.cert is not None:
        this_ca = format_dn(creds.cert.issuer)
    elif loaded.oriented is not None and loaded.oriented.this.end.ca not in (None, "", "%same"):
        this_ca = str(loaded.oriented.this.end.ca)
    if creds.peer_ca is not None:
        that_ca = format_dn(creds.peer_ca)
    elif creds.peer_cert is not None:
        that_ca = format_dn(creds.peer_cert.issuer)
    return this_ca, that_ca


def _middle_lines(loaded: LoadedConnection) -> list[str]:
    """A conn's status lines between the topology and the newest SAs: the conn's alone."""
    conn = loaded.conn
    label = f'"{conn.name}":'
    interface = loaded.oriented.interface.physical if loaded.oriented else "none"
    cas = conn_cas(loaded)
    lines = [] if cas is None else [f"{label}   CAs: '{cas[0]}'...'{cas[1]}'"]
    lines += [
        f"{label}   ike_life: {_seconds(conn.ikelifetime)}; ipsec_life: {_seconds(conn.keylife)};"
        f" rekey_margin: {_seconds(conn.rekeymargin)}; rekey_fuzz: {conn.rekeyfuzz}%;"
        f" keyingtries: {conn.keyingtries}",
        f"{label}   policy: {policy_string(conn)}; prio: {_prio(loaded)}; interface: {interface};",
    ]
    if conn.dpddelay is not None:
        lines.append(
            f"{label}   dpd: action:{conn.dpdaction.value}; delay:{_seconds(conn.dpddelay)};"
            f" timeout:{_seconds(conn.dpdtimeout)};"
        )
    if conn.ike:
        lines.append(f"{label}   IKE algorithms wanted: {conn.ike}")
    if conn.esp:
        lines.append(f"{label}   ESP algorithms wanted: {conn.esp}")
    if loaded.orientation_error:
        lines.append(f"{label}   {loaded.orientation_error}")
    return lines


def format_status(snapshot: StatusSnapshot) -> list[str]:
    """Every line of ``whack --status`` (without the ``000`` code)."""
    lines = [f"interface {iface}" for iface in snapshot.interfaces]
    if not snapshot.listening:
        lines.append("not listening for IKE messages (whack --listen to start)")
    lines.append(f"%myid = {snapshot.myid or '(none)'}")
    lines.append(f"debug {snapshot.debug}")
    if snapshot.half_open or snapshot.busy:
        lines.append(f"half-open IKE SAs: {snapshot.half_open}"
                     + ("; busy (strangers get one answer)" if snapshot.busy else ""))
    lines.append("")
    for loaded in sorted(snapshot.connections, key=lambda c: c.name):
        lines.extend(connection_lines(loaded, snapshot.newest.get(loaded.name, (0, 0))))
    lines.append("")
    states = state_status_lines(snapshot)
    lines.extend(states)
    if states:
        lines.append("")
    for line in snapshot.kernel:
        lines.append(line)
    return lines


def state_status_lines(snapshot: StatusSnapshot) -> list[str]:
    """The engine's state lines; an installed IPsec SA's line says its traffic
    (``#4: "net" used 3s ago; esp.... esp....; in 84B/1p out 84B/1p``); then the
    manually keyed pairs."""
    traffic = snapshot.traffic
    lines = []
    for state in snapshot.states:
        lines.append(state_line(state))
        if state.peer_cert is not None:
            lines.append(peer_cert_line(state, state.peer_cert))
        if state.isakmp:
            if (rw := roadwarrior_line(state)) is not None:
                lines.append(rw)
            continue
        if state.spis_line is None:
            continue
        used = traffic.get(state.serial)
        if used is None:
            lines.append(f'#{state.serial}: "{state.connection}" {state.spis_line}')
        else:
            lines.append(f'#{state.serial}: "{state.connection}" {used.used}; {state.spis_line}; '
                         f"{used.counts}")
    for sa in snapshot.manual:
        used = traffic.get(0)
        lines.append(f'#0: "{sa.conn}" {used.used if used else ""}; {sa.outbound} {sa.inbound}; '
                     f"manually keyed; {used.counts if used else ''}")
    return lines


def _end_dict(end: OrientedEnd) -> dict[str, object]:
    return {
        "host": str(end.host) if end.host is not None else end.end.host,
        "id": str(end.id),
        "client": str(end.client) if end.client is not None else None,
        "nexthop": str(end.nexthop) if end.nexthop is not None else None,
        "ikeport": end.end.ikeport,
    }


def connection_dict(loaded: LoadedConnection, newest: tuple[int, int] = (0, 0)) -> dict[str, object]:
    conn = loaded.conn
    oriented = loaded.oriented
    return {
        "name": conn.name,
        "topology": loaded.text_cache.get(loaded).topology,
        "routing": loaded.routing,
        "eroute_owner": loaded.eroute_owner,
        "oriented": oriented is not None,
        "orientation_error": loaded.orientation_error,
        "interface": str(oriented.interface) if oriented else None,
        "this": _end_dict(oriented.this) if oriented else None,
        "that": _end_dict(oriented.that) if oriented else None,
        "policy": policy_string(conn).split("+"),
        "ikev2": conn.ikev2.value,
        "auto": conn.auto.value,
        "type": conn.type.value,
        "ike_life": conn.ikelifetime,
        "ipsec_life": conn.keylife,
        "rekey_margin": conn.rekeymargin,
        "rekey_fuzz": conn.rekeyfuzz,
        "keyingtries": conn.keyingtries,
        "ike": conn.ike,
        "esp": conn.esp,
        "dpd": (
            {"action": conn.dpdaction.value, "delay": conn.dpddelay, "timeout": conn.dpdtimeout}
            if conn.dpddelay is not None
            else None
        ),
        "newest_isakmp_sa": newest[0],
        "newest_ipsec_sa": newest[1],
        "certificates": _creds_dict(loaded),
    }


def _creds_dict(loaded: LoadedConnection) -> dict[str, object] | None:
    """The conn's certificates in the JSON status (None without any): ours, the peer's
    configured one, and the CAs of the ``CAs:`` line."""
    cas = conn_cas(loaded)
    if cas is None:
        return None
    creds = loaded.creds
    return {
        "cert": format_dn(creds.cert.subject) if creds.cert is not None else None,
        "peer_cert": format_dn(creds.peer_cert.subject) if creds.peer_cert is not None else None,
        "this_ca": cas[0],
        "that_ca": cas[1],
    }


def status_dict(snapshot: StatusSnapshot) -> dict[str, object]:
    """The facts of ``format_status`` as one JSON-able document."""
    return {
        "interfaces": [
            {"virtual": i.virtual, "physical": i.physical, "address": str(i.address)}
            for i in snapshot.interfaces
        ],
        "listening": snapshot.listening,
        "myid": snapshot.myid,
        "debug": snapshot.debug,
        "half_open": snapshot.half_open,
        "busy": snapshot.busy,
        "connections": [
            connection_dict(c, snapshot.newest.get(c.name, (0, 0)))
            for c in sorted(snapshot.connections, key=lambda c: c.name)
        ],
        "states": state_dicts(list(snapshot.states)),
        "kernel": list(snapshot.kernel),
    }


# -- listings: --trafficstatus, --globalstatus, --listpubkeys ----------------------


@dataclass(frozen=True)
class SaCounters:
    """One installed SA as ``ipsec look`` counts it."""

    conn: str | None
    #: "in" or "out"
    direction: str
    bytes: int
    packets: int


@dataclass(frozen=True)
class DaemonCounters:
    """What ``--globalstatus`` and the metrics page read of the daemon, as data."""

    states: tuple[StateSnapshot, ...] = ()
    connections: int = 0
    half_open: int = 0
    busy: bool = False
    #: ``IkeEngine.counters`` (received, malformed, retransmits, DPD, ...)
    ike: Mapping[str, int] = field(default_factory=dict)
    #: the data plane's counters (drops by reason, holds, passes), as ``ipsec look``
    dataplane: Mapping[str, int] = field(default_factory=dict)
    #: the packet pump's counters
    pump: Mapping[str, int] = field(default_factory=dict)
    sas: tuple[SaCounters, ...] = ()
    #: ``config setup``'s flood settings
    ddos_mode: str = "auto"
    ddos_threshold: int = 25000
    max_halfopen: int = 50000


@dataclass(frozen=True)
class TrafficEntry:
    """One installed IPsec SA pair for ``--trafficstatus``."""

    serial: int
    conn: str
    #: when the pair was installed, seconds since the epoch
    add_time: float
    in_bytes: int
    out_bytes: int
    in_packets: int
    out_packets: int
    peer_id: str | None
    peer: str


def traffic_entries(snapshot: StatusSnapshot, add_times: Mapping[int, float],
                    now: float) -> list[TrafficEntry]:
    """The installed IPsec states with their traffic (zero without a data plane)."""
    out = []
    for state in snapshot.states:
        if state.isakmp or state.spis_line is None:
            continue
        used = snapshot.traffic.get(state.serial)
        out.append(TrafficEntry(
            serial=state.serial, conn=state.connection,
            add_time=add_times.get(state.serial, now),
            in_bytes=used.in_bytes if used else 0, out_bytes=used.out_bytes if used else 0,
            in_packets=used.in_packets if used else 0, out_packets=used.out_packets if used else 0,
            peer_id=state.peer_id, peer=state.remote,
        ))
    return out


def traffic_lines(entries: list[TrafficEntry]) -> list[str]:
    """Libreswan's ``--trafficstatus`` lines (code 006), which admins grep."""
    return [f'#{e.serial}: "{e.conn}", type=ESP, add_time={int(e.add_time)}, '
            f"inBytes={e.in_bytes}, outBytes={e.out_bytes}, id='{e.peer_id or ''}'"
            for e in entries]


def traffic_dicts(entries: list[TrafficEntry]) -> list[dict[str, object]]:
    return [{"serial": e.serial, "connection": e.conn, "type": "ESP", "add_time": int(e.add_time),
             "in_bytes": e.in_bytes, "out_bytes": e.out_bytes, "in_packets": e.in_packets,
             "out_packets": e.out_packets, "peer_id": e.peer_id, "peer": e.peer}
            for e in entries]


def _key(name: str) -> str:
    """A counter name as a ``--globalstatus`` key part: ``no eroute!`` -> ``no_eroute``."""
    return "_".join("".join(c if c.isalnum() else " " for c in name.lower()).split()) or "other"


@dataclass(frozen=True)
class HandshakeFigures:
    """``IkeStats``' totals as ``--globalstatus`` shows them."""

    started: Mapping[str, int] = field(default_factory=dict)
    completed: Mapping[str, int] = field(default_factory=dict)
    #: (phase, reason) -> count
    failed: Mapping[tuple[str, str], int] = field(default_factory=dict)
    rekeys: Mapping[str, int] = field(default_factory=dict)
    dpd_timeouts: int = 0
    updown_failures: int = 0


def global_status_dict(counters: DaemonCounters, figures: HandshakeFigures) -> dict[str, object]:
    """Everything ``--globalstatus`` says, as one JSON-able document."""
    kinds: dict[str, int] = {}
    for state in counters.states:
        kinds[state.label] = kinds.get(state.label, 0) + 1
    ike = sum(1 for s in counters.states if s.isakmp)
    failed: dict[str, dict[str, int]] = {}
    for (phase, reason), count in sorted(figures.failed.items()):
        failed.setdefault(phase, {})[reason] = count
    return {
        "config": {"ddos_mode": counters.ddos_mode, "ddos_threshold": counters.ddos_threshold,
                   "max_halfopen": counters.max_halfopen},
        "connections": counters.connections,
        "states": {"all": len(counters.states), "ike": ike, "ipsec": len(counters.states) - ike,
                   "halfopen": counters.half_open, "by_state": dict(sorted(kinds.items()))},
        "busy": counters.busy,
        "handshakes": {"started": dict(figures.started), "completed": dict(figures.completed),
                       "failed": failed},
        "rekeys": dict(figures.rekeys),
        "dpd_timeouts": figures.dpd_timeouts,
        "updown_failures": figures.updown_failures,
        "ike": dict(counters.ike),
        "kernel": dict(counters.dataplane),
        "pump": dict(counters.pump),
    }


def global_status_lines(counters: DaemonCounters, figures: HandshakeFigures) -> list[str]:
    """Libreswan's ``--globalstatus`` layout: one ``key=value`` per line."""
    doc = global_status_dict(counters, figures)
    states = counters.states
    ike = sum(1 for s in states if s.isakmp)
    lines = [
        f"config.setup.ike.ddos_mode={counters.ddos_mode}",
        f"config.setup.ike.ddos_threshold={counters.ddos_threshold}",
        f"config.setup.ike.max_halfopen={counters.max_halfopen}",
        f"current.connections={counters.connections}",
        f"current.states.all={len(states)}",
        f"current.states.ike={ike}",
        f"current.states.ipsec={len(states) - ike}",
        f"current.states.halfopen={counters.half_open}",
        f"current.busy={'yes' if counters.busy else 'no'}",
    ]
    by_state = doc["states"]["by_state"]  # type: ignore[index]
    lines += [f"current.states.enumerate.{label}={count}" for label, count in by_state.items()]
    for phase in ("isakmp", "ipsec"):
        lines.append(f"total.ike.{phase}.started={figures.started.get(phase, 0)}")
        lines.append(f"total.ike.{phase}.completed={figures.completed.get(phase, 0)}")
        failed = {r: n for (p, r), n in figures.failed.items() if p == phase}
        lines.append(f"total.ike.{phase}.failed={sum(failed.values())}")
        lines += [f"total.ike.{phase}.failed.{_key(r)}={n}" for r, n in sorted(failed.items())]
        lines.append(f"total.ike.{phase}.rekeys={figures.rekeys.get(phase, 0)}")
    lines.append(f"total.dpd.timeouts={figures.dpd_timeouts}")
    lines.append(f"total.updown.failures={figures.updown_failures}")
    lines += [f"total.ike.counters.{_key(k)}={v}" for k, v in sorted(counters.ike.items())]
    lines += [f"total.kernel.{_key(k)}={v}" for k, v in counters.dataplane.items()]
    lines += [f"total.pump.{_key(k)}={v}" for k, v in counters.pump.items()]
    return lines


@dataclass(frozen=True)
class PublicKeyEntry:
    """One RSA public key the daemon holds, for ``--listpubkeys``."""

    #: the ID it belongs to, as pluto prints it, and its kind (``ID_FQDN``)
    identity: str
    id_kind: str
    bits: int
    #: FreeS/WAN's 9-character keyid
    keyid: str
    #: ``0sAQO...`` (RFC 3110 in base64)
    rfc3110: str
    #: where it came from: ``ipsec.conf "net"``, ``DNS``, ``ipsec.secrets``
    source: str
    private: bool
    #: seconds since the epoch it was loaded (pluto's installed time)
    installed: float


def _time(seconds: float, utc: bool) -> str:
    stamp = time.gmtime(seconds) if utc else time.localtime(seconds)
    return time.strftime("%b %d %H:%M:%S %Y", stamp) + (" UTC" if utc else "")


def abbreviated(key: str, keep: int = 12) -> str:
    """``0sAQOF8nsseXY...`` : enough to recognise a key, not a wall of base64."""
    return key if len(key) <= keep + 3 else key[:keep] + "..."


def pubkey_lines(keys: list[PublicKeyEntry], utc: bool = False) -> list[str]:
    """pluto's ``--listpubkeys`` layout (Libreswan's wording for the private-key note)."""
    lines = [" ", "List of Public Keys:", " "]
    for key in keys:
        has = "has private key" if key.private else "no private key"
        lines.append(f"{_time(key.installed, utc)}, {key.bits:4d} RSA Key {key.keyid} ({has}), "
                     "until --- -- --:--:-- ---- ok (expires never)")
        lines.append(f"       {key.id_kind} '{key.identity}'")
        lines.append(f"       {abbreviated(key.rfc3110)} from {key.source}")
    return lines


def pubkey_dicts(keys: list[PublicKeyEntry]) -> list[dict[str, object]]:
    return [{"id": k.identity, "id_kind": k.id_kind, "bits": k.bits, "keyid": k.keyid,
             "pubkey": k.rfc3110, "source": k.source, "private": k.private,
             "installed": int(k.installed)} for k in keys]
