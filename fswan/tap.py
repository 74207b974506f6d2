"""``twistd fswan``: options and service construction (twisted.names' tap style).

The configuration is read here, before the reactor runs, so a broken
ipsec.conf ends ``twistd`` with ``file:line`` messages and exit status 1
instead of a traceback or a half-started daemon.
"""

from __future__ import annotations

import socket
import sys
from ipaddress import ip_address

from twisted.python import usage

from fswan import __version__
from fswan.config.errors import ConfigError, ConfigErrors
from fswan.config.secrets import Secrets
from fswan.daemon.ikeport import IkeDriver
from fswan.daemon.kernel import read_host_network
from fswan.daemon.dns import DnsKeyFetcher
from fswan.daemon.logging import PlutoLog
from fswan.daemon.peerkeys import PeerKeys
from fswan.daemon.pluto import Pluto, default_secrets_path
from fswan.daemon.service import FswanService
from fswan.daemon.tunnels import attach_dataplane
from fswan.ike.engine import IkeEngine
from fswan.loader import FileLoader, file_mode
from fswan.whackproto import CTL_SUFFIX, DEFAULT_CTLBASE


def _port(value: str) -> int:
    port = int(value)
    if not 1 <= port <= 65535:
        raise ValueError(f"port {port} out of range 1..65535")
    return port


class Options(usage.Options):
    synopsis = (
        "[-c FILE] [--secrets FILE] [--ctlbase PATH] [--ikeport N] [--nattport N]"
        " [--nodataplane] [--dnsresolver ADDR[:PORT]] [--dnstimeout S]"
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


def makeService(options: Options) -> FswanService:
    config_path = options["config"]
    secrets_path = options["secrets"] or default_secrets_path(config_path)
    ctl_path = options["ctlbase"] + CTL_SUFFIX
    if _already_running(ctl_path):
        sys.stderr.write(f"fswan: cannot start: a daemon already answers on {ctl_path}\n")
        raise SystemExit(1)
    from twisted.internet import reactor

    log = PlutoLog()
    engine = IkeEngine(
        Secrets(entries=(), files=(), warnings=()),
        ike_port=options["ikeport"],
        natt_port=options["nattport"],
    )
    ike = IkeDriver(engine, log, reactor, ike_port=options["ikeport"], natt_port=options["nattport"])
    ike.peer_keys = PeerKeys(
        DnsKeyFetcher(reactor, resolver=options["dnsresolver"], timeout=options["dnstimeout"], log=log.log),
        ike,
    )
    pluto = Pluto(
        config_path,
        secrets_path,
        FileLoader(),
        read_host_network,
        log,
        file_mode=file_mode,
        ike=ike,
    )
    try:
        pluto.start()
    except ConfigError as error:
        problems = error.errors if isinstance(error, ConfigErrors) else [error]
        sys.stderr.write(f"fswan: cannot start: {len(problems)} error(s) in the configuration\n")
        for problem in problems:
            sys.stderr.write(f"{problem}\n")
        raise SystemExit(1)
    pump = None if options["nodataplane"] else attach_dataplane(pluto, ike, log, reactor)
    return FswanService(pluto, options["ctlbase"], options["ikeport"], pump=pump)
