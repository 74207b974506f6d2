"""Fetching the CRLs named by ``crluri=`` in ``ca`` sections (at start and ``--rereadcrls``).

``file://`` URIs and plain paths (relative ones under ``ipsec.d/crls``) are read from disk;
``http://`` and ``https://`` with ``twisted.web.client.Agent`` under one short time budget,
so a CRL server that hangs cannot hold a reread for long.  ``ldap://`` is not supported
(pluto fetched it with OpenLDAP; nobody publishes only there any more).  This module only
fetches bytes: ``Pluto`` parses them (``pki.certs.parse_crl``), adds them to the store and
logs each failure once, with the URI and the reason -- a CRL that cannot be fetched is
never fatal.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import unquote, urlsplit

from twisted.internet import defer
from twisted.internet.interfaces import IConnector
from twisted.internet.protocol import ClientFactory
from twisted.python.failure import Failure
from twisted.web.client import Agent, RedirectAgent, readBody
from twisted.web.http_headers import Headers
from twisted.web.iweb import IResponse

from fswan.daemon.interfaces import Clock
from fswan.pki.certs import MAX_FILE_BYTES

#: seconds for one HTTP fetch, connection included (pluto's crl fetch timeout was similar)
FETCH_TIMEOUT = 10.0


class CrlReactor(Clock, Protocol):
    """The reactor as an HTTP client uses it (``twisted.web.client.Agent``)."""

    def connectTCP(self, host: str, port: int, factory: ClientFactory, timeout: float = 30,
                   bindAddress: tuple[str, int] | None = None) -> IConnector: ...


class CrlFetchError(Exception):
    """Why a CRL could not be fetched (the text pluto's log line carries)."""


@dataclass(frozen=True)
class CrlSource:
    """One ``crluri=`` (or ``crluri2=``) as written, and where."""

    uri: str
    #: "file:line" of the keyword
    where: str
    keyword: str = "crluri"


class CrlFetcher:
    """Bytes of a CRL by URI.  Without a reactor only files can be fetched."""

    def __init__(self, reactor: CrlReactor | None = None, timeout: float = FETCH_TIMEOUT) -> None:
        self.reactor = reactor
        self.timeout = timeout

    def fetch(self, uri: str, crls_dir: str) -> defer.Deferred[bytes]:
        """The CRL's bytes; fails with ``CrlFetchError``."""
        scheme = urlsplit(uri).scheme.lower() if "://" in uri else ""
        if scheme in ("", "file"):
            try:
                return defer.succeed(self._read_file(uri, crls_dir))
            except CrlFetchError:
                return defer.fail()
        if scheme in ("http", "https"):
            return self._fetch_http(uri)
        if scheme in ("ldap", "ldaps"):
            return defer.fail(CrlFetchError("LDAP is not supported (publish the CRL over http://)"))
        return defer.fail(CrlFetchError(f"unknown URI scheme {scheme!r}"))

    @staticmethod
    def path_of(uri: str, crls_dir: str) -> str:
        """The file a ``file://`` URI or plain path names (relative: under ``ipsec.d/crls``)."""
        path = unquote(urlsplit(uri).path) if uri.lower().startswith("file://") else uri
        return path if os.path.isabs(path) else os.path.join(crls_dir, path)

    def _read_file(self, uri: str, crls_dir: str) -> bytes:
        path = self.path_of(uri, crls_dir)
        try:
            with open(path, "rb") as handle:
                data = handle.read(MAX_FILE_BYTES + 1)
        except OSError as error:
            raise CrlFetchError(f"{path}: {error.strerror or error}") from None
        if len(data) > MAX_FILE_BYTES:
            raise CrlFetchError(f"{path}: larger than {MAX_FILE_BYTES} bytes")
        return data

    def _fetch_http(self, uri: str) -> defer.Deferred[bytes]:
        reactor = self.reactor
        if reactor is None:
            return defer.fail(CrlFetchError("this daemon cannot fetch over HTTP (no reactor)"))
        agent = RedirectAgent(Agent(reactor, connectTimeout=self.timeout))
        request: defer.Deferred[IResponse] = agent.request(
            b"GET", uri.encode("ascii", "replace"), Headers({b"User-Agent": [b"fswan"]}))
        result = request.addCallback(self._body)
        # addTimeout wants all of IReactorTime; one callLater does the same here
        expired: list[bool] = []

        def give_up() -> None:
            expired.append(True)
            result.cancel()

        timer = reactor.callLater(self.timeout, give_up)

        def stop_timer(passed: object) -> object:
            if timer.active():
                timer.cancel()
            if expired and isinstance(passed, Failure):  # cancelled while connecting or reading
                raise CrlFetchError(f"no answer within {self.timeout:g}s")
            return passed

        result.addBoth(stop_timer)
        result.addErrback(self._reason)
        return result

    @staticmethod
    def _body(response: IResponse) -> defer.Deferred[bytes]:
        if response.code != 200:
            raise CrlFetchError(f"HTTP {response.code} {response.phrase.decode('latin-1')}")
        if response.length is not None and isinstance(response.length, int) \
                and response.length > MAX_FILE_BYTES:
            raise CrlFetchError(f"larger than {MAX_FILE_BYTES} bytes")
        return readBody(response)

    def _reason(self, failure: Failure) -> bytes:
        """Any failure as a CrlFetchError with a short reason (not a traceback)."""
        error = failure.value
        if isinstance(error, CrlFetchError):
            raise error
        if isinstance(error, (defer.TimeoutError, defer.CancelledError)):
            raise CrlFetchError(f"no answer within {self.timeout:g}s")
        reasons = getattr(error, "reasons", None)  # ResponseFailed: the first reason says it
        if reasons:
            error = reasons[0].value
        text = str(error) or type(error).__name__
        raise CrlFetchError(text.replace("\n", " "))
