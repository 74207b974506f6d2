"""The daemon's certificate store and the X.509 patch's whack verbs on it.

``Certificates`` owns the ``pki.store.CertStore`` (``ipsec.d`` beside ipsec.conf, the
``cacert=`` of ``ca`` sections with ``auto=add``) and the ``crluri=`` of those sections;
it lists them (``--listcerts``, ``--listcacerts``, ``--listcrls``) and reads them again
(``--rereadcacerts``, ``--rereadcrls``).  The IKE engine holds the same store object, so
whatever a reread puts in it is what the next negotiation checks against.  Refreshing the
conns' own certificates (``--rereadall``) touches the connection table and stays in
``Pluto``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import datetime, timezone

from twisted.internet import defer
from twisted.python.failure import Failure

from fswan.config.errors import ConfigError, ConfigErrors
from fswan.config.model import Config, Connection
from fswan.config.certfiles import ipsec_d
from fswan.daemon.crls import CrlFetcher, CrlFetchError, CrlSource
from fswan.daemon.logging import PlutoLog, Reply, reply_lines
from fswan.pki import listing
from fswan.pki.certs import PkiError, parse_crl
from fswan.pki.store import CertStore
from fswan.whackproto import RC

#: the listing commands: (text lines, JSON document) of a store
LISTINGS: dict[str, tuple[Callable[[CertStore, datetime], list[str]],
                          Callable[[CertStore, datetime], dict[str, object]]]] = {
    "listcerts": (listing.list_certs, listing.certs_dict),
    "listcacerts": (listing.list_cacerts, listing.cacerts_dict),
    "listcrls": (listing.list_crls, listing.crls_dict),
}
#: the JSON member each listing's empty document has when there is no store at all
EMPTY = {"listcerts": "certs", "listcacerts": "cacerts", "listcrls": "crls"}


def ca_sections(config: Config, directory: str) -> tuple[list[tuple[str, str]],
                                                         tuple[CrlSource, ...]]:
    """(``cacert=`` files with where each was named, ``crluri=``/``crluri2=`` sources) of the
    ``ca`` sections with ``auto=add``; a relative ``cacert=`` is under ``ipsec.d/cacerts``."""
    ca_files: list[tuple[str, str]] = []
    sources: list[CrlSource] = []
    for section in config.cas.values():
        if section.auto != "add":
            continue
        if "cacert" in section.settings:
            path, where = section.settings["cacert"]
            path = path if os.path.isabs(path) else os.path.join(directory, "cacerts", path)
            ca_files.append((path, str(where)))
        for keyword in ("crluri", "crluri2"):
            if keyword in section.settings and section.settings[keyword][0].strip():
                uri, where = section.settings[keyword]
                sources.append(CrlSource(uri.strip(), str(where), keyword))
    return ca_files, tuple(sources)


class Certificates:
    """The store, its ``crluri=`` sources, and the listings and rereads."""

    def __init__(self, config_path: str, log: PlutoLog, now: Callable[[], float],
                 read_config: Callable[[str], Config], fetcher: CrlFetcher | None = None) -> None:
        self.config_path = config_path
        self.log = log
        self.now = now
        self.read_config = read_config
        #: files without a reactor; HTTP with one (``tap`` gives it the reactor)
        self.fetcher = fetcher if fetcher is not None else CrlFetcher()
        #: None until ``load``
        self.store: CertStore | None = None
        self.crl_sources: tuple[CrlSource, ...] = ()

    def utcnow(self) -> datetime:
        return datetime.fromtimestamp(self.now(), timezone.utc)

    def load(self, config: Config) -> CertStore:
        """The store at start: unreadable files are warnings, never fatal; the ``crluri=``
        are fetched in the background (each failure logged once)."""
        directory = ipsec_d(self.config_path)
        ca_files, self.crl_sources = ca_sections(config, directory)
        self.store, warnings = CertStore.load(directory, ca_files)
        for warning in warnings:
            self.log.log(f"warning: {warning}", RC.LOG_SERIOUS)
        self.fetch_crls(None)
        return self.store

    # -- listings -----------------------------------------------------------------------

    def list(self, command: str, as_json: bool, reply: Reply) -> None:
        """pluto's X.509 layout (nothing at all for an empty list, as pluto), or JSON."""
        lines_of, dict_of = LISTINGS[command]
        store, now = self.store, self.utcnow()
        if as_json:
            document = {EMPTY[command]: []} if store is None else dict_of(store, now)
            reply.line(RC.COMMENT, json.dumps(document, sort_keys=True))
            return
        lines = lines_of(store, now) if store is not None else []
        if lines:
            reply_lines(reply, RC.COMMENT, [" ", *lines])

    # -- rereads -------------------------------------------------------------------------

    def reread_ca_sections(self, reply: Reply | None) -> None:
        """ipsec.conf's ``ca`` sections again (``cacert=``, ``crluri=``); with errors in the
        file, those read before stay."""
        if self.store is None:
            return
        try:
            config = self.read_config(self.config_path)
        except ConfigError as error:
            problems = error.errors if isinstance(error, ConfigErrors) else [error]
            for problem in problems:
                self.log.log(str(problem), RC.LOG_SERIOUS, reply=reply)
            self.log.log(f"{self.config_path} has errors; keeping the ca sections read before",
                         RC.LOG_SERIOUS, reply=reply)
            return
        ca_files, self.crl_sources = ca_sections(config, self.store.ipsec_d)
        self.store.set_ca_files(ca_files)

    def reread_cacerts(self, reply: Reply | None) -> None:
        """``ipsec.d/cacerts`` and the ``cacert=`` files, with pluto's lines."""
        store = self.store
        if store is None:
            return
        self.log.log(f"Changing to directory '{store.cacerts_dir}'", reply=reply)
        for warning in store.reread_cacerts(now=self.utcnow()):
            self.log.log(f"warning: {warning}", RC.LOG_SERIOUS, reply=reply)
        for path in dict.fromkeys(a.path for a in store.anchors):
            shown = os.path.basename(path) if os.path.dirname(path) == store.cacerts_dir else path
            self.log.log(f"  loaded cacert file '{shown}'", reply=reply)

    def reread_crl_files(self, reply: Reply | None) -> None:
        """``ipsec.d/crls`` (the fetched ``crluri=`` CRLs stay until fetched again)."""
        store = self.store
        if store is None:
            return
        self.log.log(f"Changing to directory '{store.crls_dir}'", reply=reply)
        for warning in store.reread_crls(now=self.utcnow()):
            self.log.log(f"warning: {warning}", RC.LOG_SERIOUS, reply=reply)
        for stored in store.crls:
            if stored.from_dir:
                self.log.log(f"  loaded crl file '{os.path.basename(stored.path)}'", reply=reply)

    def fetch_crls(self, reply: Reply | None) -> defer.Deferred[bool] | None:
        """Every ``crluri=`` fetched (files at once, HTTP in the background), each CRL added to
        the store, replacing the one fetched before from that URI; a failure is one line with
        the URI and the reason and keeps the CRL fetched before."""
        store = self.store
        if store is None or not self.crl_sources:
            return None
        fetches = []
        for source in self.crl_sources:
            fetch = self.fetcher.fetch(source.uri, store.crls_dir)
            fetch.addCallback(self._fetched, source, reply)
            fetch.addErrback(self._failed, source, reply)
            fetches.append(fetch)
        done: defer.Deferred[bool] = defer.gatherResults(fetches).addCallback(lambda _: True)
        return done

    def _fetched(self, data: bytes, source: CrlSource, reply: Reply | None) -> None:
        try:
            crl = parse_crl(data, source.uri)
        except PkiError as error:
            raise CrlFetchError(error.reason) from None
        if self.store is not None:
            self.store.add_crl(crl, source.uri, self.utcnow())
        self.log.log(f"  loaded crl from '{source.uri}'", reply=reply)

    def _failed(self, failure: Failure, source: CrlSource, reply: Reply | None) -> None:
        reason = (failure.getErrorMessage() if failure.check(CrlFetchError)
                  else f"{failure.type.__name__}: {failure.getErrorMessage()}")
        self.log.log(f"{source.where}: {source.keyword}: fetching crl from '{source.uri}' failed: {reason}",
                     RC.LOG_SERIOUS, reply=reply)

    def forget_cert_files(self, conn: Connection) -> None:
        """``--add``/``--replace``: the conn's certificate files are read again, not cached."""
        if self.store is not None:
            for end in (conn.left, conn.right):
                if end.cert:
                    self.store.forget_end_cert(end.cert)
