"""Fetching peers' RSA public keys from DNS without blocking the reactor.

API (what the daemon calls; wiring it in before Main Mode is the engine
host's job)::

    from fswan.daemon.dns import DnsKeyFetcher, DnsKeyError, check_config_names

    fetcher = DnsKeyFetcher(reactor, resolver=("198.51.100.53", 53), timeout=5.0)
    # resolver=None uses the system resolver (/etc/resolv.conf).

    d = fetcher.fetch_key(identity)          # Deferred[list[RSAPublicKey]]
    d.addCallbacks(use_keys, lambda f: f.trap(DnsKeyError))
    # the failure is already logged as pluto did:
    #   failure to fetch key for @east.example from DNS: <reason>

    fetcher.fetch(identity)                  # Deferred[DnsKeys]: keys + where from + TTL
    fetcher.cache.forget(identity)           # e.g. when a signature fails to verify

    for line in check_config_names(config):  # at load: conns whose key is %dns*
        log(line)

Rules this module keeps:

* A lookup never blocks the reactor: the blocking dnspython calls run in the
  reactor's thread pool (``run_blocking``), and the whole fetch -- TXT, then
  IPSECKEY, then KEY, stopping at the first type that yields a key -- shares
  one ``timeout`` budget.  A backstop on the reactor clock fails the
  Deferred shortly after the budget even if a thread hangs.
* Only keys bound to the ID count: the record's gateway must be the ID
  itself, or absent (see :mod:`fswan.dnskeys.records`).
* Answers are cached per ID for the record's TTL (capped at ``max_ttl``) on
  the reactor clock; failures are not cached.  Concurrent fetches of one ID
  share a single lookup.
* Responses are not DNSSEC-validated (FreeS/WAN's pluto did not either); a
  key from DNS is as trustworthy as the path to the resolver.
"""

from __future__ import annotations

import ipaddress
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol, TypeVar, cast

import dns.exception
import dns.name
import dns.rdata
import dns.rdatatype
import dns.resolver
from cryptography.hazmat.primitives.asymmetric import rsa
from twisted.application import service
from twisted.internet import defer, threads
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorFromThreads, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool

from fswan.config.ids import IdError, IdKind, Identity, parse_id
from fswan.config.model import Auto, AuthBy, Config, ConnType, End, IPAddress
from fswan.daemon.credentials import needs_certificates
from fswan.daemon.interfaces import Clock
from fswan.dnskeys.records import (
    TXT_ATTRIBUTE,
    DnsNameError,
    KeyRecord,
    RecordError,
    keys_for,
    parse_rdata,
    query_name,
    reverse_name,
)

__all__ = [
    "DEFAULT_TIMEOUT",
    "Answer",
    "DnsKeyError",
    "DnsKeys",
    "KeyCache",
    "DnsKeyFetcher",
    "DnspythonQuery",
    "check_config_names",
    "fetch_gateways",
]

T = TypeVar("T")
_logger = Logger(namespace="fswan.daemon.dns")

DEFAULT_TIMEOUT = 5.0
#: How long after the budget the reactor-side backstop fires.
BACKSTOP_GRACE = 0.25
#: The record types tried, in order.
LOOKUP_ORDER = (dns.rdatatype.TXT, dns.rdatatype.IPSECKEY, dns.rdatatype.KEY)
#: What each ``%dns*`` value means for when the key is fetched.
DNS_KEY_WORDS = {
    "%dns": "when the connection is loaded",
    "%dnsonload": "when the connection is loaded",
    "%dnsondemand": "on demand",
}


class DnsKeyError(Exception):
    """A key could not be fetched; ``reason`` is the text after "from DNS: "."""

    def __init__(self, identity: Identity | str, reason: str) -> None:
        super().__init__(f"failure to fetch key for {identity} from DNS: {reason}")
        self.identity = identity
        self.reason = reason


@dataclass(frozen=True)
class Answer:
    """What one blocking query returns: the records of the asked type and their TTL."""

    rdatas: tuple[dns.rdata.Rdata, ...]
    #: seconds; 0 when there were no records
    ttl: int


@dataclass(frozen=True)
class DnsKeys:
    """A successful fetch: the keys of ``identity`` and where they came from."""

    identity: Identity
    #: the name that was asked (forward name or reverse name)
    name: dns.name.Name
    #: the record type that gave the keys: "TXT", "IPSECKEY" or "KEY"
    kind: str
    keys: tuple[rsa.RSAPublicKey, ...]
    #: seconds the answer may be cached
    ttl: int


#: A blocking query: (name, rdtype, lifetime seconds) -> Answer; raises dnspython errors.
Query = Callable[[dns.name.Name, int, float], Answer]


class RunBlocking(Protocol):
    """Runs a blocking callable off the reactor thread: (f, *args) -> Deferred of its result."""

    def __call__(self, function: Callable[..., T], *args: object) -> Deferred[T]: ...


class DnsClock(Clock, Protocol):
    """The reactor's clock, timers (the lookup backstop) and thread pool."""

    def getThreadPool(self) -> ThreadPool: ...


class KeyCache:
    """Fetched keys per ID until their TTL runs out, on the reactor's clock."""

    def __init__(self, clock: DnsClock, max_ttl: float = 86400.0) -> None:
        self._clock = clock
        self.max_ttl = max_ttl
        self._entries: dict[Identity, tuple[float, DnsKeys]] = {}

    def get(self, identity: Identity) -> DnsKeys | None:
        entry = self._entries.get(identity)
        if entry is None:
            return None
        expires, result = entry
        if self._clock.seconds() >= expires:
            del self._entries[identity]
            return None
        return result

    def put(self, result: DnsKeys) -> None:
        ttl = min(float(result.ttl), self.max_ttl)
        if ttl > 0:
            self._entries[result.identity] = (self._clock.seconds() + ttl, result)

    def forget(self, identity: Identity | None = None) -> None:
        """Drop one ID's keys (or all), e.g. after a signature did not verify."""
        if identity is None:
            self._entries.clear()
        else:
            self._entries.pop(identity, None)

    def __len__(self) -> int:
        return len(self._entries)


class DnspythonQuery:
    """The real :data:`Query`: a dnspython stub resolver, created on first use.

    Creation is lazy (and locked) because reading /etc/resolv.conf is file IO
    that belongs in the worker thread, and a missing file should fail one
    lookup with a reason, not the daemon's start.
    """

    def __init__(self, resolver: tuple[str, int] | None = None) -> None:
        self.server = resolver
        self._lock = threading.Lock()
        self._resolver: dns.resolver.Resolver | None = None

    def describe(self) -> str:
        if self.server is None:
            return "the system resolver"
        address, port = self.server
        return f"{address} port {port}"

    def _get(self) -> dns.resolver.Resolver:
        with self._lock:
            if self._resolver is None:
                if self.server is None:
                    self._resolver = dns.resolver.Resolver()
                else:  # the server's address and port, nothing from /etc/resolv.conf
                    self._resolver = dns.resolver.make_resolver_at(
                        self.server[0], self.server[1],
                        resolver=dns.resolver.Resolver(configure=False),
                    )
            return self._resolver

    def __call__(self, name: dns.name.Name, rdtype: int, lifetime: float) -> Answer:
        answer = self._get().resolve(
            name, dns.rdatatype.RdataType.make(rdtype), lifetime=lifetime,
            raise_on_no_answer=False, search=False,
        )
        rrset = answer.rrset
        if rrset is None:
            return Answer((), 0)
        return Answer(tuple(rrset), int(rrset.ttl))


def _no_nameservers_text(exc: dns.resolver.NoNameservers) -> str:
    errors = exc.kwargs.get("errors") or []
    parts = []
    for error in errors:
        server, port, problem = str(error[0]), error[2], error[3]
        # dnspython names servers "Do53:198.51.100.53@53"; say it as pluto would
        plain = re.fullmatch(r"Do\w+:(.*)@\d+", server)
        if plain:
            server = plain.group(1)
        if isinstance(problem, str):
            parts.append(f"{server} port {port} answered {problem}")
        else:
            parts.append(f"{server} port {port}: {problem or type(problem).__name__}")
    return "; ".join(parts) if parts else "no name server answered"


class DnsKeyFetcher(service.Service):
    """Fetches the RSA keys of an ID from DNS; see the module docstring.

    A child service of the daemon: its lookups run in the reactor's thread pool,
    which the reactor starts and stops; the service is its place in the tree."""

    def __init__(
        self,
        reactor: DnsClock,
        resolver: tuple[str, int] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        cache: KeyCache | None = None,
        *,
        log: Callable[[str], None] | None = None,
        query: Query | None = None,
        run_blocking: RunBlocking | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if timeout <= 0:
            raise ValueError("DNS timeout must be positive")
        self._reactor = reactor
        self.timeout = float(timeout)
        self.cache = cache if cache is not None else KeyCache(reactor)
        real = DnspythonQuery(resolver)
        self._query: Query = query if query is not None else real
        #: how reasons name the server: "198.51.100.53 port 53" or "the system resolver"
        self._server_text = real.describe() if (query is None or resolver) else "the resolver"
        self._run_blocking = run_blocking or self._in_thread_pool
        self._monotonic = monotonic
        if log is None:
            from fswan.daemon.logging import PlutoLog

            log = PlutoLog().log
        self._log = log
        self._pending: dict[Identity, list[Deferred[DnsKeys]]] = {}
        #: DNS queries sent so far (each record type asked counts once)
        self.queries = 0

    def _in_thread_pool(self, function: Callable[..., T], *args: object) -> Deferred[T]:
        return threads.deferToThreadPool(
            cast(IReactorFromThreads, self._reactor), self._reactor.getThreadPool(), function, *args
        )

    # -- the API ---------------------------------------------------------

    def fetch_key(self, identity: Identity) -> Deferred[list[rsa.RSAPublicKey]]:
        """The keys DNS binds to ``identity`` (best first); errback DnsKeyError."""
        return self.fetch(identity).addCallback(lambda result: list(result.keys))

    def fetch(self, identity: Identity) -> Deferred[DnsKeys]:
        """Like :meth:`fetch_key`, with the record type, name and TTL."""
        cached = self.cache.get(identity)
        if cached is not None:
            return defer.succeed(cached)
        waiter: Deferred[DnsKeys] = Deferred()
        waiters = self._pending.get(identity)
        if waiters is not None:
            waiters.append(waiter)
            return waiter
        try:
            name = query_name(identity)
        except DnsNameError as exc:
            return defer.fail(self._failed(identity, str(exc)))
        self._pending[identity] = [waiter]
        deadline = self._monotonic() + self.timeout
        lookup = self._run_blocking(self._lookup, identity, name, deadline)
        lookup.addTimeout(self.timeout + BACKSTOP_GRACE, cast(IReactorTime, self._reactor))
        lookup.addBoth(self._finished, identity)
        return waiter

    # -- reactor side ----------------------------------------------------

    def _failed(self, identity: Identity | str, reason: str) -> DnsKeyError:
        error = DnsKeyError(identity, reason)
        self._log(str(error))
        return error

    def _finished(self, result: DnsKeys | Failure, identity: Identity) -> None:
        waiters = self._pending.pop(identity, [])
        if isinstance(result, Failure):
            if result.check(DnsKeyError):
                reason = result.value.reason
            elif result.check(defer.TimeoutError, defer.CancelledError):
                reason = f"no answer from {self._server_text} within {self.timeout:g} s"
            else:
                _logger.failure(
                    "DNS key lookup for {identity} crashed", result, identity=str(identity)
                )
                reason = f"internal error: {result.getErrorMessage()}"
            error = self._failed(identity, reason)
            for waiter in waiters:
                waiter.errback(error)
            return None
        self.cache.put(result)
        for waiter in waiters:
            waiter.callback(result)
        return None

    # -- worker-thread side ----------------------------------------------

    def _lookup(self, identity: Identity, name: dns.name.Name, deadline: float) -> DnsKeys:
        """Blocking: TXT, IPSECKEY, KEY in turn, within the deadline."""
        problems: list[str] = []
        elsewhere: list[KeyRecord] = []
        for rdtype in LOOKUP_ORDER:
            kind = dns.rdatatype.to_text(rdtype)
            remaining = deadline - self._monotonic()
            if remaining <= 0:
                raise DnsKeyError(
                    identity,
                    f"no answer from {self._server_text} within {self.timeout:g} s",
                )
            answer = self._ask_counted(identity, name, rdtype, kind, remaining)
            records = []
            for rdata in answer.rdatas:
                try:
                    record = parse_rdata(rdata)
                except RecordError as exc:
                    problems.append(f"{kind} record at {name}: {exc}")
                    continue
                if record is not None:
                    records.append(record)
            found = keys_for(identity, records)
            if found:
                return DnsKeys(identity, name, kind, tuple(found), answer.ttl)
            elsewhere.extend(r for r in records if r.key is not None and not r.binds(identity))
        reason = (
            f"no {TXT_ATTRIBUTE} TXT, IPSECKEY or KEY record with a key for {identity}"
            f" at {name}"
        )
        if elsewhere:
            gateways = sorted({str(r.gateway) for r in elsewhere})
            reason += f" (records there give keys for other gateways: {', '.join(gateways)})"
        if problems:
            reason += "; " + "; ".join(problems)
        raise DnsKeyError(identity, reason)

    def _ask_counted(
        self, identity: Identity, name: dns.name.Name, rdtype: int, kind: str, lifetime: float
    ) -> Answer:
        """``_ask``, counted in ``queries``."""
        self.queries += 1
        return self._ask(identity, name, rdtype, kind, lifetime)

    def _ask(
        self, identity: Identity, name: dns.name.Name, rdtype: int, kind: str, lifetime: float
    ) -> Answer:
        try:
            return self._query(name, rdtype, lifetime)
        except dns.resolver.NXDOMAIN:
            raise DnsKeyError(identity, f"no such name {name} in DNS (NXDOMAIN)") from None
        except dns.exception.Timeout:
            raise DnsKeyError(
                identity,
                f"{kind} query for {name}: no answer from {self._server_text}"
                f" within {self.timeout:g} s",
            ) from None
        except dns.resolver.NoNameservers as exc:
            raise DnsKeyError(
                identity, f"{kind} query for {name} failed: {_no_nameservers_text(exc)}"
            ) from None
        except dns.exception.DNSException as exc:
            text = str(exc) or type(exc).__name__
            raise DnsKeyError(identity, f"{kind} query for {name} failed: {text}") from None
        except OSError as exc:
            raise DnsKeyError(
                identity, f"{kind} query for {name} failed: {exc.strerror or exc}"
            ) from None


# --------------------------------------------------------------------------
# Load-time notes


def _address(text: str) -> str:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return text


def _unknown_peer(side: str, how: str, when: str) -> str:
    return (
        f"the peer's ID is not known before it connects ({how});"
        " its key can only be fetched from DNS once it has named itself"
        + (" (not when the connection is loaded)" if "loaded" in when else "")
    )


def _end_notes(side: str, end: End, when: str, myid: str | None) -> list[str]:
    """What fetching this end's key from DNS will involve (one or two lines)."""
    if end.id is None and end.host.startswith("%"):
        return [_unknown_peer(side, f"{side}={end.host}, no {side}id=", when)]
    text = end.id if end.id is not None else end.host
    if text == "%myid":
        if not myid:
            return [f"cannot fetch the key: {side}id=%myid but myid= is not set in config setup"]
        text = myid
    try:
        identity = parse_id(text)
    except IdError as exc:
        return [f"cannot fetch the key: {exc}"]
    if identity.is_any:
        return [_unknown_peer(side, f"{side}id={text}", when)]
    try:
        name = query_name(identity)
    except DnsNameError as exc:
        return [f"{exc}; give {side}rsasigkey= the key itself"]
    notes = [f"the key of {identity} will be fetched from DNS {when}"]
    if identity.kind in (IdKind.IPV4_ADDR, IdKind.IPV6_ADDR):
        notes[0] += f", from the reverse zone ({name})"
        if not ipaddress.ip_address(identity.value).is_global:
            notes.append(
                f"{identity} is not a global address, so its reverse zone ({name}) is"
                f" rarely one anybody can publish in; give {side}id=@fqdn with the key in"
                f" forward DNS, or the key itself in {side}rsasigkey="
            )
    return notes


def check_config_names(config: Config, local_hosts: Iterable[str] = ()) -> list[str]:
    """Notes and warnings for conns whose peer key is ``%dns``/``%dnsonload``/``%dnsondemand``.

    Only conns that authenticate with RSA and negotiate keys are considered.
    ``local_hosts`` (our addresses, when known) skips our own end, whose key
    is never fetched.  Each line carries pluto's ``"conn":`` prefix.
    """
    ours = {_address(h) for h in local_hosts}
    lines: list[str] = []
    for conn in config.conns.values():
        if conn.authby not in (AuthBy.RSASIG, AuthBy.SECRET_OR_RSASIG):
            continue
        if conn.type not in (ConnType.TUNNEL, ConnType.TRANSPORT) or conn.auto is Auto.MANUAL:
            continue
        for side, end in (("left", conn.left), ("right", conn.right)):
            when = DNS_KEY_WORDS.get(end.rsasigkey)
            if when is None or end.host == "%defaultroute" or _address(end.host) in ours:
                continue
            keyword = f"{side}rsasigkey"
            if keyword not in conn.settings and needs_certificates(conn):
                continue  # the default key source, but the peer's key comes with its certificate
            default = "" if keyword in conn.settings else " (the default)"
            prefix = f'"{conn.name}": {keyword}={end.rsasigkey}{default}: '
            lines.extend(prefix + note for note in _end_notes(side, end, when, config.setup.myid))
    return lines


# --------------------------------------------------------------------------
# Opportunistic encryption: who is the gateway of an address?


def _gateway_records(fetcher: DnsKeyFetcher, address: str, deadline: float) -> list[KeyRecord]:
    """Blocking: the ``X-IPsec-Server`` TXT records at the reverse name of ``address``
    that name a gateway and give its key, best preference first."""
    identity = Identity(IdKind.IPV6_ADDR if ":" in address else IdKind.IPV4_ADDR, address)
    name = reverse_name(address)
    remaining = deadline - fetcher._monotonic()
    if remaining <= 0:
        raise DnsKeyError(identity, f"no answer from {fetcher._server_text} within {fetcher.timeout:g} s")
    answer = fetcher._ask_counted(identity, name, dns.rdatatype.TXT, "TXT", remaining)
    found: list[KeyRecord] = []
    problems: list[str] = []
    for rdata in answer.rdatas:
        try:
            record = parse_rdata(rdata)
        except RecordError as exc:
            problems.append(f"TXT record at {name}: {exc}")
            continue
        if record is not None and record.gateway is not None and record.key is not None:
            found.append(record)
    if not found:
        reason = f"no {TXT_ATTRIBUTE} TXT record naming a gateway with a key at {name}"
        if problems:
            reason += "; " + "; ".join(problems)
        raise DnsKeyError(identity, reason)
    return sorted(found, key=lambda r: r.preference)


def _blocking_lookup(fetcher: DnsKeyFetcher, function: Callable[..., T], *args: object) -> Deferred[T]:
    """``function(fetcher, *args, deadline)`` in the thread pool within the fetcher's time
    budget (and a backstop timeout on the reactor side)."""
    deadline = fetcher._monotonic() + fetcher.timeout
    d = fetcher._run_blocking(function, fetcher, *args, deadline)
    d.addTimeout(fetcher.timeout + BACKSTOP_GRACE, cast(IReactorTime, fetcher._reactor))
    return d


def _lookup_failure(fetcher: DnsKeyFetcher, failure: Failure) -> str:
    """Why a lookup that did not raise DnsKeyError failed, as the log says it."""
    if failure.check(defer.TimeoutError, defer.CancelledError):
        return f"no answer from {fetcher._server_text} within {fetcher.timeout:g} s"
    return f"internal error: {failure.getErrorMessage()}"


def fetch_gateways(fetcher: DnsKeyFetcher, address: str) -> Deferred[list[KeyRecord]]:
    """OE: the gateways (and their keys) DNS names for ``address`` at its reverse name.
    Not cached (FreeS/WAN asked again on each acquire); errback DnsKeyError, logged."""
    d = _blocking_lookup(fetcher, _gateway_records, address)

    def failed(failure: Failure) -> Failure:
        if failure.check(DnsKeyError):
            fetcher._log(str(failure.value))
            return failure
        return Failure(fetcher._failed(address, _lookup_failure(fetcher, failure)))

    d.addErrback(failed)
    return d


def resolve_names(fetcher: DnsKeyFetcher, names: list[str]) -> Deferred[dict[str, list[IPAddress]]]:
    """The addresses of host names from ipsec.conf (``left=vpn.example.com``): A and
    AAAA records, looked up off the reactor within the fetcher's one time budget.  A
    name without an answer is missing from the result (the caller says so, as pluto's
    ``does not look numeric and name lookup failed``)."""
    d = _blocking_lookup(fetcher, _host_addresses, list(names))

    def failed(failure: Failure) -> dict[str, list[IPAddress]]:
        fetcher._log(f"looking up {', '.join(names)}: {_lookup_failure(fetcher, failure)}")
        return {}

    d.addErrback(failed)
    return d


def _host_addresses(fetcher: DnsKeyFetcher, names: list[str],
                    deadline: float) -> dict[str, list[IPAddress]]:
    """Blocking: every A, then AAAA, address of each name (names that fail are left out)."""
    found: dict[str, list[IPAddress]] = {}
    for name in names:
        addresses: list[IPAddress] = []
        for rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
            remaining = deadline - fetcher._monotonic()
            if remaining <= 0:
                break
            identity = Identity(IdKind.FQDN, name)
            try:
                answer = fetcher._ask_counted(identity, dns.name.from_text(name), rdtype, "address",
                                              remaining)
            except (DnsKeyError, dns.exception.DNSException, OSError, ValueError):
                continue
            addresses += [ipaddress.ip_address(str(rdata)) for rdata in answer.rdatas]
        if addresses:
            found[name] = addresses
    return found

