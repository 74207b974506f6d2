"""``crluri=`` fetched by the real daemon (``twistd -n fswan``) from a real HTTP server on
127.0.0.1 (``http.server`` in a thread), and ``CrlFetcher`` on files and bad URIs alone."""

from __future__ import annotations

import http.server
import json
import os
import socket
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from fswan.daemon.crls import CrlFetcher, CrlFetchError
from tests.daemon.test_twistd import run, tool
from tests.pki_fixtures import ROOT_DN, make_crl, make_pki


class CrlServer(http.server.ThreadingHTTPServer):
    """Serves ``files`` (path -> bytes); 404 for the rest; counts the requests."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.requests: list[str] = []
        super().__init__(("127.0.0.1", 0), _Handler)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(http.server.BaseHTTPRequestHandler):
    server: CrlServer

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.server.requests.append(self.path)
        body = self.server.files.get(self.path)
        if body is None:
            self.send_error(404, "Not Found")
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/pkix-crl")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server():
    httpd = CrlServer()
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


CONF = """\
version 2
config setup
\tinterfaces="ipsec0=lo"

conn net
\tleft=127.0.0.1
\tleftcert=west.pem
\tright=192.0.2.2
\trightid="C=CH, O=fswan lab, CN=east"
\tauthby=rsasig
\tauto=add

ca lab
\tcacert=fswan-lab-root.pem
\tcrluri={base}/root.crl
\tcrluri2={base}/missing.crl
\tauto=add

ca gone
\tcrluri=http://127.0.0.1:{closed}/root.crl
\tauto=add
"""


def test_the_daemon_fetches_crluri_over_http(tmp_path, server):
    pki = make_pki(tmp_path / "ipsec.d")
    (tmp_path / "ipsec.d" / "crls" / "fswan-lab-root.crl").unlink()  # only the fetched one
    revoke_east = make_crl(ROOT_DN, pki.root_key, [(0x11, pki.now, x509.ReasonFlags.superseded)],
                           pki.now, pki.now + timedelta(days=7), number=5)
    server.files["/root.crl"] = revoke_east.public_bytes(serialization.Encoding.DER)
    conf = tmp_path / "ipsec.conf"
    conf.write_text(CONF.format(base=server.base, closed=_closed_port()))
    (tmp_path / "ipsec.secrets").write_text(": RSA west.key\n")
    os.chmod(tmp_path / "ipsec.secrets", 0o600)
    ctlbase = str(tmp_path / "run" / "pluto")
    log = tmp_path / "pluto.log"
    import subprocess

    process = subprocess.Popen(
        [tool("twistd"), "-n", "--pidfile=", f"--logfile={log}", "fswan", "--nodataplane",
         "-c", str(conf), "--ctlbase", ctlbase],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    ipsec = tool("ipsec")
    try:
        deadline = time.monotonic() + 20
        while "crluri: fetching crl from 'http://127.0.0.1:" not in \
                (log.read_text() if log.exists() else "") or \
                f"loaded crl from '{server.base}/root.crl'" not in log.read_text():
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            assert time.monotonic() < deadline, log.read_text() if log.exists() else "no log"
            time.sleep(0.05)
        text = log.read_text()
        written = conf.read_text().splitlines()
        missing = written.index(f"\tcrluri2={server.base}/missing.crl") + 1
        assert (f"{conf}:{missing}: crluri2: fetching crl from '{server.base}/missing.crl' "
                "failed: HTTP 404 Not Found") in text
        gone = next(i for i, line in enumerate(written) if "crluri=http://127.0.0.1" in line
                    and server.base not in line) + 1
        assert f"{conf}:{gone}: crluri: fetching crl from 'http://127.0.0.1:" in text
        assert "Traceback" not in text

        result = run(ipsec, "auto", "--ctlbase", ctlbase, "--listcrls", "--json")
        assert result.returncode == 0, result.stderr
        crls = json.loads(result.stdout)["crls"]
        assert [c["source"] for c in crls] == [f"{server.base}/root.crl"]
        assert crls[0]["revoked"][0]["serial"] == "11" and crls[0]["crlnumber"] == "05"

        # a new CRL on the server: --rereadcrls fetches it again and waits for the answer
        server.files["/root.crl"] = pki.crl.public_bytes(serialization.Encoding.PEM)
        result = run(ipsec, "auto", "--ctlbase", ctlbase, "--verbose", "--rereadcrls")
        assert result.returncode == 0, result.stdout
        assert f"002   loaded crl from '{server.base}/root.crl'" in result.stdout
        assert "003 " in result.stdout and "HTTP 404 Not Found" in result.stdout
        result = run(ipsec, "auto", "--ctlbase", ctlbase, "--listcrls")
        assert "000        revoked:  30, " in result.stdout
        assert result.stdout.count("List of X.509 CRLs:") == 1
        assert "revoked certs: 1" in result.stdout and result.stdout.count("revoked certs:") == 1
        assert server.requests.count("/root.crl") == 2
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=20)


def test_fetcher_reads_files_and_paths(tmp_path):
    fetcher = CrlFetcher()
    (tmp_path / "crls").mkdir()
    (tmp_path / "crls" / "a.crl").write_bytes(b"bytes")
    results: list[object] = []
    fetcher.fetch("a.crl", str(tmp_path / "crls")).addBoth(results.append)
    fetcher.fetch(f"file://{tmp_path}/crls/a.crl", "/nowhere").addBoth(results.append)
    fetcher.fetch(str(tmp_path / "crls" / "a.crl"), "/nowhere").addBoth(results.append)
    assert results == [b"bytes", b"bytes", b"bytes"]


@pytest.mark.parametrize("uri,reason", [
    ("ldap://ldap.example/cn=root?certificateRevocationList", "LDAP is not supported"),
    ("gopher://example/crl", "unknown URI scheme 'gopher'"),
    ("http://127.0.0.1/crl", "no reactor"),
    ("nosuch.crl", "nosuch.crl: No such file or directory"),
])
def test_fetcher_failures_say_why(tmp_path, uri, reason):
    failures: list[object] = []
    CrlFetcher().fetch(uri, str(tmp_path)).addErrback(failures.append)
    assert len(failures) == 1
    failure = failures[0]
    assert failure.check(CrlFetchError), failure  # type: ignore[attr-defined]
    assert reason in failure.getErrorMessage()  # type: ignore[attr-defined]


def test_a_fetch_that_hangs_gives_up(tmp_path):
    from twisted.internet.testing import MemoryReactorClock

    reactor = MemoryReactorClock()
    failures: list[object] = []
    CrlFetcher(reactor, timeout=3).fetch("http://192.0.2.9/crl", str(tmp_path)).addErrback(
        failures.append)
    assert reactor.tcpClients and not failures  # connecting...
    reactor.advance(3)
    assert len(failures) == 1
    assert "no answer within 3s" in failures[0].getErrorMessage()  # type: ignore[attr-defined]
