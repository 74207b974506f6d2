"""``twistd fswan``: options and service construction (twisted.names' tap style).

The configuration is read here, before the reactor runs, so a broken
ipsec.conf ends ``twistd`` with ``file:line`` messages and exit status 1
instead of a traceback or a half-started daemon.
"""

from __future__ import annotations

import os
import socket
import sys
from dataclasses import dataclass, field
from ipaddress import ip_address
from typing import NoReturn, Protocol, cast

from twisted.application.service import IService
from twisted.python import usage

from fswan import __version__
from fswan.config.errors import ConfigError, ConfigErrors
from fswan.config.ipsecconf import load_config
from fswan.config.model import Config
from fswan.config.orient import IpsecInterface, ipsec_interfaces
from fswan.config.secrets import Secrets
from fswan.daemon.crls import CrlFetcher, CrlReactor
from fswan.daemon.dns import DnsClock, DnsKeyFetcher
from fswan.daemon.ikeport import IkeDriver, IkeReactor
from fswan.daemon.kernel import (
    TunAddresses,
    link_mtu,
    open_tun,
    read_host_network,
    release_tun,
    tunnel_mtu,
)
from fswan.daemon.logging import PlutoLog
from fswan.daemon.metrics import IkeStats, MetricsService, TcpReactor, parse_metrics_address
from fswan.daemon.pluto import Pluto, default_secrets_path
from fswan.daemon.pump import EspSockets, Pump, PumpReactor
from fswan.daemon.service import ControlReactor, FswanService
from fswan.daemon.tunnels import EspArrivals, KernelSide
from fswan.ike.engine import IkeEngine
from fswan.ipsec.dataplane import DataPlane
from fswan.ipsec.kernel import Klips
from fswan.loader import FileLoader, file_mode
from fswan.updown.runner import UpdownRunner
from fswan.whackproto import CTL_SUFFIX, DEFAULT_CTLBASE, RC


class DaemonReactor(IkeReactor, PumpReactor, DnsClock, ControlReactor, TcpReactor, CrlReactor,
                    Protocol):
    """Everything the daemon's parts use of the reactor (``from twisted.internet import reactor``)."""


def _port(value: str) -> int:
    port = int(value)
    if not 1 <= port <= 65535:
        raise ValueError(f"port {port} out of range 1..65535")
    return port


class Options(usage.Options):
    synopsis = (
        "[-c FILE] [--secrets FILE] [--ctlbase PATH] [--ikeport N] [--nattport N]"
        " [--nodataplane] [--dnsresolver ADDR[:PORT]] [--dnstimeout S] [--metrics ADDR:PORT]"
    )
    longdesc = (
        "fswan: a FreeS/WAN-style IPsec gateway (pluto + KLIPS) as one daemon. "
        "Reads ipsec.conf and ipsec.secrets, serves the whack control socket "
        "CTLBASE.ctl (mode 0600), and adds every auto=add|route|start conn."
    )
    optParameters = [
        ["config", "c", "/etc/ipsec.conf", "ipsec.conf to load"],
        ["secrets", None, None, "ipsec.secrets to load (default: beside the config)"],
        ["ctlbase", None, DEFAULT_CTLBASE, "control socket base path (socket is CTLBASE.ctl)"],
        ["ikeport", None, 500, "UDP port for IKE", _port],
        ["nattport", None, 4500, "UDP port for NAT-T (IKE and ESP-in-UDP)", _port],
        ["dnsresolver", None, None,
         "ADDR[:PORT] of the DNS server for %dns* public keys (default: /etc/resolv.conf)"],
        ["dnstimeout", None, 5.0, "seconds one DNS key lookup may take", float],
        ["metrics", None, None,
         "ADDR:PORT to serve Prometheus metrics on (default: config setup metrics=, else off)"],
    ]

    optFlags = [
        ["nodataplane", None, "IKE only: no ipsec0 TUN device and no packet pump"],
    ]

    def postOptions(self) -> None:
        text = self["dnsresolver"]
        if text:
            host, _, port = text.rpartition(":") if text.count(":") == 1 else (text, "", "53")
            try:
                self["dnsresolver"] = (str(ip_address(host or text)), _port(port or "53"))
            except ValueError:
                raise usage.UsageError(f"--dnsresolver {text!r}: expected ADDR or ADDR:PORT")
        if self["metrics"]:
            try:
                self["metrics"] = parse_metrics_address(self["metrics"])
            except ValueError as error:
                raise usage.UsageError(f"--metrics: {error}")

    def opt_version(self) -> None:
        print(f"fswan {__version__}")
        sys.exit(0)


def _already_running(path: str) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except OSError:
        return False
    finally:
        probe.close()
    return True


@dataclass
class DataPlaneDevices:
    """``ipsec0`` and the raw ESP sockets, opened for the data plane before it is built
    (``hidetos=no`` needs the raw IP socket for outer headers); ``notes`` are logged
    once the configuration is loaded, where the daemon always said them."""

    tun_fd: int
    #: ``ipsec0`` was there already (left by a daemon that did not shut down)
    leftover: bool
    sockets: EspSockets
    dataplane: DataPlane
    notes: list[tuple[str, int]] = field(default_factory=list)

    def close(self) -> None:
        """Start-up failed after all: a device we made goes, a leftover one stays
        (with its routes it keeps failing closed, as before we came)."""
        self.sockets.close()
        if not self.leftover:
            release_tun(self.tun_fd)
        os.close(self.tun_fd)


def open_data_plane(config: Config, interfaces: list[IpsecInterface],
                    notes: list[tuple[str, int]]) -> DataPlaneDevices | None:
    """``ipsec0`` over the first interface's physical device, and the raw sockets.

    None (said in ``notes``) when there is no interface or the TUN device cannot
    be made (not root, no /dev/net/tun): the daemon then keys IKE but carries no
    traffic, and route/manual commands say so.
    """
    if not interfaces:
        notes.append(("no IPsec interface: running without a data plane", RC.LOG_SERIOUS))
        return None
    virtual, physical = interfaces[0].virtual, interfaces[0].physical
    try:
        physical_mtu = link_mtu(physical) or 1500
        mtu = tunnel_mtu(physical_mtu, config.setup.overridemtu)
        leftover = link_mtu(virtual) is not None
        fd = open_tun(virtual, mtu, vnet_hdr=True, persist=True)
    except (OSError, IndexError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        notes.append((f"cannot create {virtual}: {reason}; running without a data plane",
                      RC.LOG_SERIOUS))
        return None
    if leftover:
        notes.append((f"{virtual} was left by a daemon that did not shut down: its routes kept "
                      "the traffic for our tunnels from leaving in clear; they are replaced as "
                      f"tunnels come up (ip route show dev {virtual} lists them)", RC.LOG))
    sockets = EspSockets()
    for problem in sockets.open_raw(sorted({i.physical for i in interfaces})):
        notes.append((f"{problem}: raw ESP unavailable, ESP-in-UDP only", RC.LOG_SERIOUS))
    # hidetos=no: the inner TOS must reach the outer header, which only a header we
    # build ourselves (IP_HDRINCL) can carry; the kernel would write TOS 0
    outer_header = not config.setup.hidetos and sockets.raw_ip is not None
    if not config.setup.hidetos and not outer_header:
        notes.append(("hidetos=no needs a raw IP socket (root): the outer TOS stays 0",
                      RC.LOG_SERIOUS))
    notes.append((f"{virtual}: TUN over {physical}, mtu {mtu} (path mtu {physical_mtu})", RC.LOG))
    return DataPlaneDevices(fd, leftover, sockets,
                            DataPlane(path_mtu=physical_mtu, outer_header=outer_header), notes)


def _config_errors(error: ConfigError) -> NoReturn:
    problems = error.errors if isinstance(error, ConfigErrors) else [error]
    sys.stderr.write(f"fswan: cannot start: {len(problems)} error(s) in the configuration\n")
    for problem in problems:
        sys.stderr.write(f"{problem}\n")
    raise SystemExit(1)


def _metrics_from_config(config: Config) -> tuple[str, int] | None:
    """``metrics=`` of config setup; a bad value is a file:line error (exit 1)."""
    text = config.setup.metrics
    if not text:
        return None
    try:
        return parse_metrics_address(text)
    except ValueError as error:
        setting = config.setup.settings.get("metrics")
        _config_errors(ConfigError(f"metrics=: {error}", setting[1] if setting else None))


def makeService(options: Options) -> FswanService:
    """The daemon's object graph, built in dependency order.

    The configuration is read first (its errors end twistd with status 1), then
    the data plane's devices (the engine is given the kernel's ``EspArrivals``),
    the engine, the packet pump, the IKE driver, and Pluto with its per-conn
    parts (Tunnels, ManualKeying, Opportunism).  The driver and the pump hand
    their events to Pluto's parts, which command the driver in turn: that one
    cycle is closed by the callbacks the driver and the pump are constructed
    with, which reach ``pluto`` (built just after them, before any event can
    arrive: nothing runs until the service starts).
    """
    config_path = options["config"]
    secrets_path = options["secrets"] or default_secrets_path(config_path)
    ctl_path = options["ctlbase"] + CTL_SUFFIX
    if _already_running(ctl_path):
        sys.stderr.write(f"fswan: cannot start: a daemon already answers on {ctl_path}\n")
        raise SystemExit(1)
    from twisted.internet import reactor as default_reactor

    reactor = cast(DaemonReactor, default_reactor)
    stats = IkeStats()
    log = PlutoLog(observer=stats.on_log_line)
    loader = FileLoader()
    try:
        config = load_config(config_path, loader)
    except ConfigError as error:
        _config_errors(error)
    metrics_address = options["metrics"] or _metrics_from_config(config)
    fetcher = DnsKeyFetcher(reactor, resolver=options["dnsresolver"], timeout=options["dnstimeout"],
                            log=log.log)
    notes: list[tuple[str, int]] = []
    devices = None
    if not options["nodataplane"]:
        interfaces, _problems = ipsec_interfaces(config.setup, read_host_network())  # Pluto says them
        devices = open_data_plane(config, interfaces, notes)
    kernel = Klips(devices.dataplane) if devices is not None else None
    engine = IkeEngine(
        Secrets(entries=(), files=(), warnings=()),
        ike_port=options["ikeport"],
        natt_port=options["nattport"],
        esp_activity=EspArrivals(kernel) if kernel is not None else None,
    )
    pump = None
    if devices is not None:
        pump = Pump(reactor, devices.dataplane, devices.tun_fd,
                    on_event=lambda event: pluto.on_dataplane_event(event),
                    vnet_hdr=True, persistent=True, sockets=devices.sockets)
    ike = IkeDriver(
        engine, log, reactor,
        on_child_sa=lambda event: pluto.on_engine_event(event),
        ike_port=options["ikeport"],
        natt_port=options["nattport"],
        fetcher=fetcher,
        on_client_check=lambda event: pluto.on_client_check(event),
        after_step=lambda: pluto.after_ike_step(),
        esp=pump,
        stats=stats,
    )
    dataplane = None
    if kernel is not None and pump is not None:
        dataplane = KernelSide(kernel, UpdownRunner(log, reactor), reactor, pump, TunAddresses())
    pluto = Pluto(
        config_path,
        secrets_path,
        loader,
        read_host_network,
        log,
        file_mode=file_mode,
        ike=ike,
        dataplane=dataplane,
        fetcher=fetcher,
        stats=stats,
        crl_fetcher=CrlFetcher(reactor),
    )
    try:
        pluto.start(config)
    except ConfigError as error:
        if devices is not None:
            devices.close()
        _config_errors(error)
    for text, rc in notes:
        log.log(text, rc)
    services: list[IService] = [fetcher, pump, ike] if pump is not None else [fetcher, ike]
    if metrics_address is not None:  # off unless configured: listens only where it is told
        services.append(MetricsService(metrics_address, stats, pluto.counters, reactor, log))
    return FswanService(pluto, options["ctlbase"], options["ikeport"], reactor, services=services)
