"""The operations side of certificates against two real daemons' tables: ``--listcerts``,
``--listcacerts``, ``--listcrls`` (text and JSON), ``--rereadcacerts``, ``--rereadcrls`` (a
CRL dropped into ``ipsec.d/crls`` refuses the peer from the next negotiation),
``--rereadall`` (a conn's certificate file read again), ``crluri=`` of ``ca`` sections, and
the status lines of a peer that authenticated with a certificate.

Two ``Pluto``s with real IKE drivers exchange datagrams through ``test_listings``' fake UDP
network; each has a real ipsec.d (``tests/pki_fixtures.make_pki``) beside its ipsec.conf.
"""

from __future__ import annotations

import json
import shutil
from datetime import timedelta
from ipaddress import ip_address
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from twisted.internet.testing import StringTransport

from fswan.config.orient import DefaultRoute, HostAddress, HostNetwork
from fswan.config.secrets import Secrets
from fswan.daemon.control import ControlFactory
from fswan.daemon.ikeport import IkeDriver
from fswan.daemon.logging import PlutoLog
from fswan.daemon.pluto import Pluto
from fswan.ike.engine import IkeEngine
from fswan.loader import FileLoader
from fswan.whackproto import Request, parse_line, update_exit_status
from tests.daemon.test_listings import Network, Reactor
from tests.fakes import LogSink
from tests.pki_fixtures import ROOT_DN, Pki, make_crl, make_pki

CONF = """\
version 2
config setup
\tinterfaces=%defaultroute

conn net
\tleft=192.0.2.1
\tleftsubnet=198.51.100.0/25
\tright=192.0.2.2
\trightsubnet=203.0.113.0/25
\tauthby=rsasig
\tkeyingtries=1
{ends}\tauto=add
{extra}"""
WEST_ENDS = '\tleftcert=west.pem\n\trightid="C=CH, O=fswan lab, CN=east"\n'
EAST_ENDS = '\trightcert=east.pem\n\tleftid="C=CH, O=fswan lab, CN=west"\n'
EAST_DN = "C=CH, O=fswan lab, CN=east"


class CertDaemon:
    """One daemon with its directory: ipsec.conf, ipsec.secrets and ipsec.d."""

    def __init__(self, network: Network, address: str, directory: Path, conf: str,
                 secrets: str, now: float) -> None:
        self.directory = directory
        (directory / "ipsec.conf").write_text(conf)
        (directory / "ipsec.secrets").write_text(secrets)
        self.sink = LogSink()
        self.log = PlutoLog(self.sink.logger)
        self.reactor = Reactor(network)
        self.reactor.advance(now)  # the PKI's certificates are valid from a day before
        engine = IkeEngine(Secrets(entries=(), files=(), warnings=()))
        self.driver = IkeDriver(engine, self.log, self.reactor,
                                on_child_sa=lambda event: self.pluto.on_engine_event(event))
        host = HostNetwork((HostAddress("eth0", ip_address(address)),),
                           DefaultRoute("eth0", ip_address("192.0.2.254")))
        self.pluto = Pluto(str(directory / "ipsec.conf"), str(directory / "ipsec.secrets"),
                           FileLoader(), lambda: host, self.log, file_mode=lambda path: 0o600,
                           ike=self.driver)
        self.factory = ControlFactory(self.pluto, lambda: None)
        self.pluto.start()
        self.driver.startService()

    @property
    def ipsec_d(self) -> Path:
        return self.directory / "ipsec.d"

    def request(self, command: str, name: str | None = None, **args: object) -> tuple[list[str], int]:
        protocol = self.factory.buildProtocol(None)
        transport = StringTransport()
        protocol.makeConnection(transport)
        protocol.dataReceived(Request(command, name, args).encode())
        lines = transport.value().decode().splitlines()
        status = 0
        for line in lines:
            rc, _ = parse_line(line)
            assert rc is not None, line
            status = update_exit_status(status, rc)
        return lines, status

    def document(self, command: str, **args: object) -> dict:
        lines, status = self.request(command, json=True, **args)
        assert status == 0 and len(lines) == 1, lines
        return json.loads(parse_line(lines[0])[1])

    def text(self) -> str:
        return "\n".join(self.sink.lines)


@pytest.fixture(scope="module")
def pki_template(tmp_path_factory) -> tuple[Path, Pki]:
    directory = tmp_path_factory.mktemp("pki") / "ipsec.d"
    return directory, make_pki(directory)


def make_pair(tmp_path: Path, template: tuple[Path, Pki], west_extra: str = "",
              east_extra: str = "") -> tuple[Network, CertDaemon, CertDaemon, Pki]:
    source, pki = template
    network = Network()
    daemons = []
    for name, address, ends, extra in (("west", "192.0.2.1", WEST_ENDS, west_extra),
                                       ("east", "192.0.2.2", EAST_ENDS, east_extra)):
        directory = tmp_path / name
        shutil.copytree(source, directory / "ipsec.d")
        daemons.append(CertDaemon(network, address, directory,
                                  CONF.format(ends=ends, extra=extra), f": RSA {name}.key\n",
                                  pki.now.timestamp()))
    return network, daemons[0], daemons[1], pki


@pytest.fixture
def pair(tmp_path, pki_template):
    return make_pair(tmp_path, pki_template)


def up(network: Network, daemon: CertDaemon) -> None:
    daemon.request("initiate", "net", asynchronous=True)
    network.flush()


def test_listings_show_what_was_loaded(pair):
    _, west, _, pki = pair
    lines, status = west.request("listcerts")
    assert status == 0
    assert lines[:3] == ["000", "000 List of X.509 End Certificates:", "000"]
    assert "000        subject: 'C=CH, O=fswan lab, CN=west'" in lines
    assert f"000        issuer:  '{ROOT_DN}'" in lines
    lines, _ = west.request("listcacerts")
    assert "000 List of X.509 CA Certificates:" in lines
    assert f"000        subject: '{ROOT_DN}'" in lines
    lines, _ = west.request("listcrls")
    assert "000 List of X.509 CRLs:" in lines
    assert any(line.startswith("000        revoked:  30, ") and line.endswith("key compromise")
               for line in lines), lines

    assert west.document("listcerts")["certs"][0]["subject"] == "C=CH, O=fswan lab, CN=west"
    cacerts = west.document("listcacerts")["cacerts"]
    assert [c["subject"] for c in cacerts] == [ROOT_DN]
    assert cacerts[0]["file"].endswith("cacerts/fswan-lab-root.pem")
    crls = west.document("listcrls")["crls"]
    assert crls[0]["revoked"][0]["serial"] == "30" and crls[0]["from_crls_dir"] is True


def test_status_shows_the_peer_certificate_and_the_cas(pair):
    network, west, east, pki = pair
    lines, _ = west.request("status")
    assert f"000 \"net\":   CAs: '{ROOT_DN}'...'%any'" in lines
    up(network, west)
    lines, _ = west.request("status")
    until = pki["east"].cert.not_valid_after_utc
    expected = (f"000 #1: \"net\" peer certificate '{EAST_DN}' (issuer '{ROOT_DN}', valid until "
                f"{until:%b %d %H:%M:%S} UTC {until.year})")
    index = lines.index(expected)
    assert lines[index - 1].startswith('000 #1: "net" STATE_MAIN_I4 (ISAKMP SA established)')
    # the IPsec SA's line has no certificate line
    assert not any(line.startswith('000 #2: "net" peer certificate') for line in lines)
    # east shows the certificate west presented
    lines, _ = east.request("status")
    assert any("peer certificate 'C=CH, O=fswan lab, CN=west'" in line for line in lines), lines
    assert f"000 \"net\":   CAs: '{ROOT_DN}'...'%any'" in lines  # east's own is rightcert=

    document = west.document("status")
    state = next(s for s in document["states"] if s["serial"] == 1)
    assert state["peer_certificate"]["subject"] == EAST_DN
    assert state["peer_certificate"]["issuer"] == ROOT_DN
    assert state["peer_certificate"]["serial"] == "11"
    conn = document["connections"][0]
    assert conn["certificates"] == {"cert": "C=CH, O=fswan lab, CN=west", "peer_cert": None,
                                    "this_ca": ROOT_DN, "that_ca": "%any"}


def _revoke_east(pki: Pki, directory: Path) -> None:
    crl = make_crl(ROOT_DN, pki.root_key, [(0x11, pki.now, x509.ReasonFlags.superseded)],
                   pki.now, pki.now + timedelta(days=7), number=2)
    (directory / "crls" / "east-revoked.crl").write_bytes(crl.public_bytes(serialization.Encoding.DER))


def test_a_crl_dropped_into_crls_and_reread_refuses_the_peer(pair):
    network, west, east, pki = pair
    up(network, west)
    assert "ISAKMP SA established" in west.text()
    west.request("terminate", "net")
    network.flush()

    _revoke_east(pki, west.ipsec_d)
    lines, status = west.request("rereadcrls")
    assert status == 0
    assert f"002 Changing to directory '{west.ipsec_d}/crls'" in lines
    assert "002   loaded crl file 'east-revoked.crl'" in lines
    assert "002   loaded crl file 'fswan-lab-root.crl'" in lines
    before = len(west.sink.lines)
    up(network, west)
    text = "\n".join(west.sink.lines[before:])
    assert "certificate was revoked on" in text and "reason: superseded" in text, text
    assert "X.509 certificate rejected" in text
    assert "IPsec SA established" not in text


def test_rereadcacerts_drops_and_brings_back_an_anchor(pair):
    network, west, east, pki = pair
    root = west.ipsec_d / "cacerts" / "fswan-lab-root.pem"
    saved = root.read_bytes()
    root.unlink()
    lines, status = west.request("rereadcacerts")
    assert status == 0 and f"002 Changing to directory '{west.ipsec_d}/cacerts'" in lines
    assert west.request("listcacerts") == ([], 0)
    before = len(west.sink.lines)
    up(network, west)
    assert "issuer cacert not found" in "\n".join(west.sink.lines[before:])
    root.write_bytes(saved)
    lines, _ = west.request("rereadcacerts")
    assert "002   loaded cacert file 'fswan-lab-root.pem'" in lines
    up(network, west)
    assert "IPsec SA established" in "\n".join(west.sink.lines[before:])


def test_rereadall_reads_the_conns_certificate_again(pair):
    network, west, _, pki = pair
    assert west.document("listcerts")["certs"][0]["subject"].endswith("CN=west")
    # the same file name now holds carol's certificate (another key: the secrets follow)
    shutil.copy(pki["carol"].cert_path, west.ipsec_d / "certs" / "west.pem")
    assert west.document("listcerts")["certs"][0]["subject"].endswith("CN=west")  # cached
    (west.directory / "ipsec.secrets").write_text(": RSA carol.key\n")
    lines, status = west.request("rereadall")
    assert status == 0, lines
    assert "002 forgetting secrets" in lines
    assert any("Changing to directory" in line and line.endswith("cacerts'") for line in lines)
    assert any("Changing to directory" in line and line.endswith("crls'") for line in lines)
    assert '002 "net": certificates reloaded' in lines
    assert west.document("listcerts")["certs"][0]["subject"] == "C=CH, O=fswan lab, CN=carol"
    assert west.pluto.connections["net"].creds.cert == pki["carol"].cert

    # a file that becomes unusable: the conn keeps what it had, and says so
    (west.ipsec_d / "certs" / "west.pem").write_text("garbage\n")
    lines, status = west.request("rereadall")
    assert any('"net": keeping the certificates loaded before' in line and "west.pem" in line
               for line in lines), lines
    assert west.pluto.connections["net"].creds.cert == pki["carol"].cert
    assert west.document("listcerts")["certs"][0]["subject"].endswith("CN=carol")


def test_replace_reads_the_certificate_file_again(pair):
    _, west, _, pki = pair
    shutil.copy(pki["carol"].cert_path, west.ipsec_d / "certs" / "west.pem")
    lines, status = west.request("replace", "net")
    assert status == 0, lines
    assert west.pluto.connections["net"].creds.cert == pki["carol"].cert


def test_crluri_files_are_fetched_at_start_and_on_reread(tmp_path, pki_template):
    crl_dir = tmp_path / "published"
    crl_dir.mkdir()
    _, pki = pki_template
    extra = (f"\nca lab\n\tcacert={pki.root_path}\n\tcrluri=file://{crl_dir}/root.crl\n"
             "\tcrluri2=missing.crl\n\tauto=add\n"
             "\nca old\n\tcrluri=ldap://ldap.example/cn=root\n\tauto=add\n")
    crl = make_crl(ROOT_DN, pki.root_key, [(0x11, pki.now, None)], pki.now,
                   pki.now + timedelta(days=7), number=3)
    (crl_dir / "root.crl").write_bytes(crl.public_bytes(serialization.Encoding.PEM))
    network, west, east, _ = make_pair(tmp_path, pki_template, west_extra=extra)
    text = west.text()
    conf = west.directory / "ipsec.conf"
    written = conf.read_text().splitlines()
    missing = written.index("\tcrluri2=missing.crl") + 1
    ldap = written.index("\tcrluri=ldap://ldap.example/cn=root") + 1
    assert f"loaded crl from 'file://{crl_dir}/root.crl'" in text
    assert (f"{conf}:{missing}: crluri2: fetching crl from 'missing.crl' failed: "
            f"{west.ipsec_d}/crls/missing.crl: No such file or directory") in text
    assert (f"{conf}:{ldap}: crluri: fetching crl from 'ldap://ldap.example/cn=root' failed: "
            "LDAP is not supported") in text
    crls = west.document("listcrls")["crls"]
    assert sorted(c["source"].rsplit("/", 1)[-1] for c in crls) == ["fswan-lab-root.crl", "root.crl"]

    # fetched CRLs count: east (serial 0x11) is refused
    before = len(west.sink.lines)
    up(network, west)
    assert "certificate was revoked on" in "\n".join(west.sink.lines[before:])

    # on --rereadcrls the URI is fetched again, replacing its CRL (not adding a second)
    (crl_dir / "root.crl").write_bytes(pki.crl.public_bytes(serialization.Encoding.DER))
    lines, status = west.request("rereadcrls")
    assert f"002   loaded crl from 'file://{crl_dir}/root.crl'" in lines
    assert any("missing.crl" in line and line.startswith("003 ") for line in lines)
    crls = west.document("listcrls")["crls"]
    assert len(crls) == 2 and all(c["revoked"][0]["serial"] == "30" for c in crls)
