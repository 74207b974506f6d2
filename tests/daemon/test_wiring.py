"""How the daemon is put together: constructor wiring only, declared seams, one service tree.

* No module of the daemon sets an attribute of another object (``x.y = ...`` with
  ``x`` not ``self``): every part gets its collaborators through its constructor.
* No ``Any`` in the daemon's public signatures.
* The providers of the zope seams provide them (``verifyObject``).
* ``tap.makeService`` builds the real graph (over a fake reactor, and with fake
  ``ipsec0`` devices for the data plane), whose service tree starts the control
  socket, DNS, pump, IKE and pluto in that order and stops them in reverse.
"""

from __future__ import annotations

import ast
import os
import signal
import socket
from pathlib import Path

import pytest
from twisted.application.service import IService
from twisted.internet.interfaces import IReadDescriptor
from twisted.internet.testing import MemoryReactorClock
from zope.interface.verify import verifyObject

import fswan
from fswan import tap
from fswan.daemon.dns import DnsKeyFetcher
from fswan.daemon.ikeport import IkeDriver, NattReader
from fswan.daemon.logging import PlutoLog
from fswan.daemon.pump import EspSockets, Pump
from fswan.daemon.service import ControlService, PlutoService
from fswan.ike.engine import IkeEngine
from fswan.config.secrets import Secrets
from fswan.ipsec.dataplane import DataPlane
from fswan.ipsec.kernel import IKernel, IKernelStatus, Klips

ROOT = Path(fswan.__file__).parent
WIRED = sorted((ROOT / "daemon").glob("*.py")) + [ROOT / "tap.py"]


def _targets(node: ast.AST) -> list[ast.expr]:
    if isinstance(node, ast.Assign):
        found: list[ast.expr] = []
        for target in node.targets:
            found.extend(_flatten(target))
        return found
    if isinstance(node, (ast.AugAssign, ast.AnnAssign)):
        return _flatten(node.target)
    return []


def _flatten(target: ast.expr) -> list[ast.expr]:
    if isinstance(target, (ast.Tuple, ast.List)):
        return [t for element in target.elts for t in _flatten(element)]
    return [target]


def _foreign_attribute_writes(path: Path) -> list[str]:
    """``x.y = ...`` (and ``self.x.y = ...``, ``setattr(x, ...)``) where x is not ``self``."""
    tree = ast.parse(path.read_text(), str(path))
    found = []
    for node in ast.walk(tree):
        for target in _targets(node):
            if isinstance(target, ast.Attribute) and not (
                isinstance(target.value, ast.Name) and target.value.id == "self"
            ):
                found.append(f"{path.name}:{node.lineno}: {ast.unparse(target)} = ...")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "setattr":
            found.append(f"{path.name}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_no_attribute_wiring_after_construction():
    found = [line for path in WIRED for line in _foreign_attribute_writes(path)]
    assert found == []


def test_the_scan_sees_wiring():
    sample = "def f(tunnels, ike):\n    tunnels.ike = ike\n    self.pluto.tunnels = tunnels\n    self.ok = 1\n"
    path = Path(__file__).parent / "_wiring_sample.py"
    path.write_text(sample)
    try:
        assert _foreign_attribute_writes(path) == [
            "_wiring_sample.py:2: tunnels.ike = ...",
            "_wiring_sample.py:3: self.pluto.tunnels = ...",
        ]
    finally:
        path.unlink()


def _mentions_any(annotation: ast.expr | None) -> bool:
    return annotation is not None and any(
        isinstance(n, ast.Name) and n.id == "Any" or isinstance(n, ast.Attribute) and n.attr == "Any"
        for n in ast.walk(annotation)
    ) or (isinstance(annotation, ast.Constant) and "Any" in str(annotation.value))


def test_no_any_in_public_signatures():
    found = []
    for path in WIRED:
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            if node.name.startswith("_") and node.name != "__init__":
                continue
            args = node.args
            annotations = [a.annotation for a in args.posonlyargs + args.args + args.kwonlyargs]
            annotations += [a.annotation for a in (args.vararg, args.kwarg) if a is not None]
            annotations.append(node.returns)
            if any(_mentions_any(a) for a in annotations):
                found.append(f"{path.name}:{node.lineno}: {node.name}")
    assert found == []


# -- declared seams -----------------------------------------------------------------


def test_klips_provides_the_kernel_interfaces():
    kernel = Klips(DataPlane())
    assert verifyObject(IKernel, kernel)
    assert verifyObject(IKernelStatus, kernel)


def test_daemon_parts_are_services():
    reactor = MemoryReactorClock()
    engine = IkeEngine(Secrets(entries=(), files=(), warnings=()))
    fetcher = DnsKeyFetcher(reactor, log=lambda line: None)
    pump = Pump(reactor, DataPlane(), None)
    driver = IkeDriver(engine, PlutoLog(), reactor, fetcher=fetcher, esp=pump)
    for part in (fetcher, pump, driver):
        assert verifyObject(IService, part)


def test_natt_reader_is_a_read_descriptor():
    class Port:
        protocol = None
        socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    try:
        assert verifyObject(IReadDescriptor, NattReader(Port(), lambda batch: None))
    finally:
        Port.socket.close()


# -- the real graph -------------------------------------------------------------------


CONF = """\
version 2
config setup
	interfaces="ipsec0=lo"
"""


class Reactor(MemoryReactorClock):
    """A memory reactor that also hands out UDP ports (the IKE driver's)."""

    def __init__(self) -> None:
        super().__init__()
        self.udp: list[tuple[int, str]] = []

    def listenUDP(self, port, protocol, interface="", maxPacketSize=8192):
        self.udp.append((port, interface))

        class Port:
            def stopListening(inner):
                self.udp.remove((port, interface))

            def write(inner, data, addr):
                pass

        return Port()


@pytest.fixture
def daemon_options(tmp_path, monkeypatch):
    (tmp_path / "ipsec.conf").write_text(CONF)
    (tmp_path / "ipsec.secrets").write_text("")
    os.chmod(tmp_path / "ipsec.secrets", 0o600)
    reactor = Reactor()
    monkeypatch.setattr("twisted.internet.reactor", reactor, raising=False)
    hangup = signal.getsignal(signal.SIGHUP)
    yield tmp_path, reactor
    signal.signal(signal.SIGHUP, hangup)


def _options(tmp_path, *extra: str) -> tap.Options:
    options = tap.Options()
    options.parseOptions(["-c", str(tmp_path / "ipsec.conf"), "--ctlbase", str(tmp_path / "pluto"),
                          "--ikeport", "10500", "--nattport", "14500", *extra])
    return options


def _fake_devices(notes):
    """ipsec0 stood in for by a socket pair (no root needed); left over, so never released."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    theirs.close()
    return tap.DataPlaneDevices(ours.detach(), True, EspSockets(), DataPlane(), notes)


def _run(service, monkeypatch) -> list[str]:
    """Start and stop the tree; the names of the children in the order they stopped."""
    stopped: list[str] = []
    for child in service:
        def stop(child=child, original=child.stopService):
            stopped.append(type(child).__name__)
            return original()

        monkeypatch.setattr(child, "stopService", stop)
    service.privilegedStartService()
    service.startService()
    assert service.running
    service.stopService()
    return stopped


def test_the_service_tree_without_a_data_plane(daemon_options, monkeypatch):
    tmp_path, reactor = daemon_options
    service = tap.makeService(_options(tmp_path, "--nodataplane"))
    order = [type(child).__name__ for child in service]
    assert order == ["ControlService", "DnsKeyFetcher", "IkeDriver", "PlutoService"]
    assert service.pluto.tunnels is None and service.pluto.ike is not None
    assert reactor.udp == []  # nothing bound before the service starts
    stopped = _run(service, monkeypatch)
    assert stopped == list(reversed(order))
    assert reactor.udp == [] and not service.pluto.ike.ports


def test_the_service_tree_with_a_data_plane(daemon_options, monkeypatch):
    tmp_path, reactor = daemon_options
    monkeypatch.setattr(tap, "open_data_plane", lambda config, interfaces, notes: _fake_devices(notes))
    service = tap.makeService(_options(tmp_path))
    order = [type(child).__name__ for child in service]
    assert order == ["ControlService", "DnsKeyFetcher", "Pump", "IkeDriver", "PlutoService"]
    children = {type(child): child for child in service}
    pump, ike, pluto = children[Pump], children[IkeDriver], service.pluto
    assert ike.esp is pump and pluto.tunnels is not None and pluto.manual is not None
    assert pluto.tunnels.ike is ike and pluto.tunnels.pump is pump
    assert pluto.tunnels.opportunism is pluto.oe and pluto.oe.ike is ike
    assert pluto.oe.fetcher is children[DnsKeyFetcher] is ike.peer_keys.fetcher
    assert ike.engine.esp_activity is not None
    assert isinstance(children[ControlService], ControlService)
    assert isinstance(children[PlutoService], PlutoService)
    service.privilegedStartService()
    assert {(10500, "127.0.0.1"), (14500, "127.0.0.1")} <= set(reactor.udp)
    service.stopService()
    service = tap.makeService(_options(tmp_path))
    stopped = _run(service, monkeypatch)
    assert stopped == list(reversed(order))
    assert reactor.udp == [] and reactor.getReaders() == []


def test_a_config_error_after_the_devices_opened_closes_them(daemon_options, monkeypatch):
    tmp_path, reactor = daemon_options
    (tmp_path / "ipsec.secrets").write_text('127.0.0.1 : PSK "unterminated\n')
    opened = []

    def fake(config, interfaces, notes):
        opened.append(_fake_devices(notes))
        return opened[-1]

    monkeypatch.setattr(tap, "open_data_plane", fake)
    with pytest.raises(SystemExit) as exit:
        tap.makeService(_options(tmp_path))
    assert exit.value.code == 1
    with pytest.raises(OSError):
        os.fstat(opened[0].tun_fd)


def test_flood_settings_of_config_setup_reach_the_engine(daemon_options):
    tmp_path, _reactor = daemon_options
    (tmp_path / "ipsec.conf").write_text(CONF + "\tddos-mode=busy\n\tmax-halfopen-ike=300\n")
    service = tap.makeService(_options(tmp_path, "--nodataplane"))
    engine = service.pluto.ike.engine
    assert engine.busy and engine.halfopen.max_half_open == 300
