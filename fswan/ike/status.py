"""The engine's states as data for ``--status`` and ``--status --json``.

:func:`snapshot` reads the state table once into frozen records; the text of
pluto's state lines and the JSON dicts are both made from those records, so
the two views cannot disagree and the daemon never parses text back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fswan.ike.select import Connections
from fswan.ike.state import Phase1State, Phase2State
from fswan.ike.table import StateTable
from fswan.isakmp.constants import OakleyAuth

__all__ = ["StateSnapshot", "snapshot", "state_dicts", "state_lines"]

#: pluto's policy words for the phase-1 authentication methods (status, log lines)
AUTH_POLICY: dict[int, str] = {
    OakleyAuth.OAKLEY_PRESHARED_KEY: "PSK",
    OakleyAuth.OAKLEY_RSA_SIG: "RSASIG",
}


@dataclass(frozen=True)
class StateSnapshot:
    """One state ``#N`` as status shows it."""

    serial: int
    connection: str
    isakmp: bool
    label: str
    number: int
    story: str
    initiator: bool
    #: the pending timer event's name (``EVENT_SA_REPLACE``) and seconds until it
    event: str | None
    event_in: float | None
    local: str
    remote: str
    peer_id: str | None
    #: the conn's newest SA of its kind
    newest: bool
    #: the rest of the JSON facts, by kind (ISAKMP: cookies, proposal, NAT-T, DPD;
    #: IPSEC: SPIs, clients, mode)
    details: dict[str, Any]
    #: IPsec SA installed: ``esp.SPI@peer esp.SPI@us``
    spis_line: str | None = None


def snapshot(table: StateTable, conns: Connections, now: float) -> list[StateSnapshot]:
    out = []
    for st in table.by_serial():
        entry = conns.get(st.conn_name)
        details: dict[str, Any]
        spis_line = None
        if isinstance(st, Phase1State):
            newest = entry is not None and entry.newest_isakmp == st.serial
            details = dict(
                kind="ISAKMP",
                newest=newest,
                icookie=st.icookie.hex(),
                rcookie=st.rcookie.hex(),
                proposal=str(st.proposal) if st.proposal else None,
                auth=AUTH_POLICY.get(st.auth),
                aggressive=st.aggressive,
                nat_traversal=st.natt,
                nat_local=st.nat_us,
                nat_remote=st.nat_peer,
                dpd=bool(st.peer_dpd and entry is not None and entry.conn.dpddelay),
            )
        else:
            assert isinstance(st, Phase2State)
            newest = entry is not None and entry.newest_ipsec == st.serial
            details = dict(
                kind="IPSEC",
                newest=newest,
                isakmp_serial=st.isakmp_serial,
                inbound_spi=f"{st.our_spi:08x}",
                outbound_spi=f"{st.peer_spi:08x}",
                proposal=str(st.proposal) if st.proposal else None,
                mode="tunnel" if st.tunnel else "transport",
                udp_encapsulated=st.udp,
                local_client=str(st.our_client) if st.our_client else None,
                remote_client=str(st.peer_client) if st.peer_client else None,
                installed=st.installed,
            )
            if st.installed:
                spis_line = (
                    f"esp.{st.peer_spi:x}@{st.remote_addr} esp.{st.our_spi:x}@{st.local_addr}"
                )
        out.append(
            StateSnapshot(
                serial=st.serial,
                connection=st.conn_name,
                isakmp=isinstance(st, Phase1State),
                label=st.kind.label,
                number=int(st.kind),
                story=st.kind.story,
                initiator=st.initiator,
                event=st.event.value if st.event is not None else None,
                event_in=(max(0.0, st.event_at - now) if st.event_at is not None else None),
                local=f"{st.local_addr}:{st.local_port}",
                remote=f"{st.remote_addr}:{st.remote_port}",
                peer_id=str(st.peer_id) if st.peer_id is not None else None,
                newest=newest,
                details=details,
                spis_line=spis_line,
            )
        )
    return out


def state_lines(states: list[StateSnapshot]) -> list[str]:
    """pluto's ``--status`` state lines (without the ``000 `` prefix)."""
    lines = []
    for s in states:
        parts = [f'#{s.serial}: "{s.connection}" {s.label} ({s.story})']
        if s.event is not None and s.event_in is not None:
            parts.append(f"{s.event} in {int(s.event_in)}s")
        if s.isakmp:
            if s.newest:
                parts.append("newest ISAKMP")
            lines.append("; ".join(parts))
        else:
            if s.newest:
                parts.append("newest IPSEC")
            lines.append("; ".join(parts) + ";")
            if s.spis_line is not None:
                lines.append(f'#{s.serial}: "{s.connection}" {s.spis_line}')
    return lines


def state_dicts(states: list[StateSnapshot]) -> list[dict]:
    """The same facts as :func:`state_lines`, for JSON."""
    out = []
    for s in states:
        item: dict[str, Any] = {
            "serial": s.serial,
            "connection": s.connection,
            "state": s.label,
            "state_number": s.number,
            "story": s.story,
            "initiator": s.initiator,
            "event": s.event,
            "event_in": s.event_in,
            "local": s.local,
            "remote": s.remote,
            "peer_id": s.peer_id,
        }
        item.update(s.details)
        out.append(item)
    return out
