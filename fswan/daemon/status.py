"""pluto's ``--status`` layout and the same facts as JSON.

Pure formatting over a snapshot of the daemon's tables, so the layout can be
tested line by line.  The order follows pluto's ``show_status``: interfaces,
``%myid``, debug, connections sorted by name, then states.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from fswan.config.model import AuthBy, Auto, Connection, ConnType, FailureShunt
from fswan.config.orient import IpsecInterface, OrientedConnection, OrientedEnd
from fswan.ike.status import StateSnapshot, state_dicts, state_lines


@dataclass(frozen=True)
class LoadedConnection:
    """A conn the daemon holds: oriented on this host, or why it is not."""

    conn: Connection
    oriented: OrientedConnection | None = None
    orientation_error: str | None = None
    routing: str = "unrouted"
    #: the IPsec state whose SA the conn's eroute points at
    eroute_owner: int | None = None

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
    conn = loaded.conn
    label = f'"{conn.name}":'
    first = f"{label} {topology(loaded)}; {loaded.routing}"
    if loaded.eroute_owner is not None:
        first += f"; eroute owner: #{loaded.eroute_owner}"
    if loaded.oriented is None:
        first += "; unoriented"
    interface = loaded.oriented.interface.physical if loaded.oriented else "none"
    lines = [
        first,
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
    lines.append(f"{label}   newest ISAKMP SA: #{newest[0]}; newest IPsec SA: #{newest[1]};")
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
        used = traffic.get(state.serial) if state.spis_line is not None else None
        if used is None:
            lines.extend(state_lines([state]))
            continue
        lines.extend(state_lines([replace(state, spis_line=None)]))
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
        "topology": topology(loaded),
        "routing": loaded.routing,
        "eroute_owner": loaded.eroute_owner,
        "oriented": oriented is not None,
        "orientation_error": loaded.orientation_error,
        "interface": str(oriented.interface) if oriented else None,
        "this": _end_dict(oriented.this) if oriented else None,
        "that": _end_dict(oriented.that) if oriented else None,
        "policy": policy_string(conn).split("+"),
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
