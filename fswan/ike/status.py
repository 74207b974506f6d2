"""The engine's states as data for ``--status`` and ``--status --json``.

:func:`snapshot` reads the state table once into frozen records (the facts only
JSON shows are read from the state when first asked, in the same turn); the text
of pluto's state lines and the JSON dicts are both made from those records, so
the two views cannot disagree and the daemon never parses text back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Any

from cryptography import x509

from fswan.config.model import IPAddress
from fswan.ike.select import ConnEntry, Connections
from fswan.ike.state import Phase1State, Phase2State
from fswan.ike.table import StateTable
from fswan.isakmp.constants import OakleyAuth
from fswan.pki.certs import pluto_time, serial_text
from fswan.pki.dn import format_dn

__all__ = ["StateSnapshot", "peer_cert_line", "roadwarrior_line", "snapshot", "state_dicts",
           "state_line", "state_lines"]

#: pluto's policy words for the phase-1 authentication methods (status, log lines)
AUTH_POLICY: dict[int, str] = {
    OakleyAuth.OAKLEY_PRESHARED_KEY: "PSK",
    OakleyAuth.OAKLEY_RSA_SIG: "RSASIG",
    9: "ECDSA", 10: "ECDSA", 11: "ECDSA",  # RFC 4754 methods (ike/certauth.py)
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
    #: IPsec SA installed: ``esp.SPI@peer esp.SPI@us``
    spis_line: str | None = None
    #: ISAKMP SA whose peer authenticated with a certificate: that (verified) certificate
    peer_cert: x509.Certificate | None = field(default=None, compare=False, repr=False)
    #: ISAKMP SA: the XAUTH user that logged in, and the Mode Config address (leased to
    #: the peer, or given to us)
    xauth_user: str | None = None
    virtual_ip: IPAddress | None = None
    #: the state and its conn's entry, read by :attr:`details`
    source: Phase1State | Phase2State | None = field(default=None, compare=False, repr=False)
    entry: ConnEntry | None = field(default=None, compare=False, repr=False)

    @cached_property
    def details(self) -> dict[str, Any]:
        """The rest of the JSON facts, by kind (ISAKMP: cookies, proposal, NAT-T, DPD;
        IPSEC: SPIs, clients, mode).  Made when first asked, from the state itself: the
        text of ``--status`` shows none of them, and 20,000 states' dicts cost a third of
        it; a status reads them in the same turn as the snapshot is taken."""
        return _details(self.source, self.newest, self.entry) if self.source is not None else {}


def snapshot(table: StateTable, conns: Connections, now: float) -> list[StateSnapshot]:
    """Every state as a record (its JSON-only ``details`` made when asked)."""
    out = []
    for st in table.by_serial():
        name = st.connection.name
        entry = conns.get(name)
        spis_line = None
        peer_cert = None
        xauth_user = virtual_ip = None
        # str() of an address, not f"{addr}": ipaddress's __format__ is several times slower
        local, remote = str(st.local_addr), str(st.remote_addr)
        if isinstance(st, Phase1State):
            isakmp = True
            newest = entry is not None and entry.newest_isakmp == st.serial
            peer_cert = st.peer_cert
            xauth_user, virtual_ip = st.xauth_user, st.virtual_ip
        else:
            assert isinstance(st, Phase2State)
            isakmp = False
            newest = entry is not None and entry.newest_ipsec == st.serial
            if st.installed:
                spis_line = f"esp.{st.peer_spi:x}@{remote} esp.{st.our_spi:x}@{local}"
        kind = st.kind
        out.append(
            StateSnapshot(
                serial=st.serial,
                connection=name,
                isakmp=isakmp,
                label=kind.label,
                number=int(kind),
                story=kind.story,
                initiator=st.initiator,
                event=st.event.value if st.event is not None else None,
                event_in=(max(0.0, st.event_at - now) if st.event_at is not None else None),
                local=f"{local}:{st.local_port}",
                remote=f"{remote}:{st.remote_port}",
                peer_id=str(st.peer_id) if st.peer_id is not None else None,
                newest=newest,
                spis_line=spis_line,
                peer_cert=peer_cert,
                xauth_user=xauth_user,
                virtual_ip=virtual_ip,
                source=st,
                entry=entry,
            )
        )
    return out


def _details(st: Phase1State | Phase2State, newest: bool,
             entry: ConnEntry | None) -> dict[str, Any]:
    """The JSON facts beyond the state line, by kind."""
    if isinstance(st, Phase1State):
        return dict(
            kind="ISAKMP",
            ike_version=2 if st.kind.is_v2 else 1,
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
            peer_certificate=cert_dict(st.peer_cert) if st.peer_cert is not None else None,
        )
    return dict(
        kind="IPSEC",
        ike_version=2 if st.kind.is_v2 else 1,
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


def state_line(s: StateSnapshot) -> str:
    """A state's first ``--status`` line (an installed SA has a second: ``spis_line``)."""
    line = f'#{s.serial}: "{s.connection}" {s.label} ({s.story})'
    if s.event is not None and s.event_in is not None:
        line += f"; {s.event} in {int(s.event_in)}s"
    if s.isakmp:
        return line + "; newest ISAKMP" if s.newest else line
    return line + "; newest IPSEC;" if s.newest else line + ";"


@lru_cache(maxsize=4096)
def _cert_text(cert: x509.Certificate) -> str:
    """Made once per certificate: 10,000 SAs with a handful of peers' certificates
    format a handful of DNs, not 10,000 per status."""
    return (f"peer certificate '{format_dn(cert.subject)}' (issuer '{format_dn(cert.issuer)}', "
            f"valid until {pluto_time(cert.not_valid_after_utc)})")


def peer_cert_line(s: StateSnapshot, cert: x509.Certificate) -> str:
    """``#3: "net" peer certificate 'C=CH, ..., CN=east' (issuer '...', valid until ...)``
    for an ISAKMP SA whose peer authenticated with ``cert`` (its ``peer_cert``)."""
    return f'#{s.serial}: "{s.connection}" {_cert_text(cert)}'


def cert_dict(cert: x509.Certificate) -> dict[str, str]:
    """The peer certificate's facts in the JSON status."""
    return {
        "subject": format_dn(cert.subject),
        "issuer": format_dn(cert.issuer),
        "serial": serial_text(cert.serial_number),
        "not_before": cert.not_valid_before_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "not_after": cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def roadwarrior_line(s: StateSnapshot) -> str | None:
    """``#3: "rw" XAUTHuser=alice, lease=198.51.100.200/32`` (Libreswan's words, from its
    traffic status) for an ISAKMP SA with an XAUTH user or a Mode Config address; None
    for every other state, whose lines stay as they were."""
    if s.xauth_user is None and s.virtual_ip is None:
        return None
    facts = []
    if s.xauth_user is not None:
        facts.append(f"XAUTHuser={s.xauth_user}")
    if s.virtual_ip is not None:
        facts.append(f"lease={s.virtual_ip}/{s.virtual_ip.max_prefixlen}")
    return f'#{s.serial}: "{s.connection}" ' + ", ".join(facts)


def state_lines(states: list[StateSnapshot]) -> list[str]:
    """pluto's ``--status`` state lines (without the ``000 `` prefix)."""
    lines = []
    for s in states:
        lines.append(state_line(s))
        if s.peer_cert is not None:
            lines.append(peer_cert_line(s, s.peer_cert))
        if s.isakmp and (rw := roadwarrior_line(s)) is not None:
            lines.append(rw)
        if not s.isakmp and s.spis_line is not None:
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
        if s.isakmp:
            item["xauth_user"] = s.xauth_user
            item["virtual_ip"] = str(s.virtual_ip) if s.virtual_ip is not None else None
        item.update(s.details)
        out.append(item)
    return out
