"""A small authoritative DNS server for tests, inside a network namespace we create.

Why our own: the fetcher has to be tried against a real server on a real
socket (timeouts, SERVFAIL, TTLs), and a 150-line dnspython responder whose
queries the test can count and whose faults it can switch is easier to
reason about than configuring nsd or knot per test.

* :class:`DnsNamespace` creates ``fswan-dns-test`` with 198.51.100.53 on its
  loopback (documentation range; nothing leaves the namespace) and hands out
  sockets created inside it -- from a short-lived thread that ``setns()``\\ s,
  so the test process itself never changes namespace.
* :class:`ZoneServer` answers UDP queries from dnspython zones the test built
  (:func:`make_zone`), authoritatively: the records, NODATA or NXDOMAIN with
  the SOA, REFUSED outside its zones.  ``mode`` switches faults: ``SLOW``
  delays every answer by ``delay`` seconds, ``SERVFAIL`` answers SERVFAIL,
  ``DROP`` never answers.  Every query is recorded in ``queries``.

Run by hand: ``python -m tests.dnsserver ZONEFILE ORIGIN`` (as root) serves
one zone file in the namespace until interrupted.
"""

from __future__ import annotations

import ctypes
import enum
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.zone

NETNS = "fswan-dns-test"
ADDRESS = "198.51.100.53"
PORT = 53
_CLONE_NEWNET = 0x40000000
_SOA = (
    "@ 3600 IN SOA ns.{origin} hostmaster.{origin} 1 3600 600 86400 60\n"
    "@ 3600 IN NS ns.{origin}\n"
)


class Mode(enum.Enum):
    NORMAL = "normal"
    SLOW = "slow"
    SERVFAIL = "servfail"
    DROP = "drop"


def make_zone(origin: str, records: str, ttl: int = 300) -> dns.zone.Zone:
    """A zone from record lines (zone-file syntax), with an SOA and NS added.

    Names are kept absolute (``relativize=False``) so rdata such as an
    IPSECKEY gateway name goes on the wire exactly as written.
    """
    origin = origin.rstrip(".") + "."
    text = f"$TTL {ttl}\n" + _SOA.format(origin=origin) + records
    return dns.zone.from_text(text, origin=origin, relativize=False, check_origin=True)


def _run(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=30)


class DnsNamespace:
    """A network namespace with one address on its loopback, for servers and clients."""

    def __init__(self, name: str = NETNS, address: str = ADDRESS) -> None:
        self.name = name
        self.address = address

    @property
    def path(self) -> str:
        return f"/var/run/netns/{self.name}"

    def up(self) -> None:
        _run("ip", "netns", "del", self.name)  # a leftover from an interrupted run
        for argv in (
            ("ip", "netns", "add", self.name),
            ("ip", "-n", self.name, "link", "set", "lo", "up"),
            ("ip", "-n", self.name, "addr", "add", f"{self.address}/32", "dev", "lo"),
        ):
            result = _run(*argv)
            if result.returncode != 0:
                raise RuntimeError(f"{' '.join(argv)}: {result.stderr.strip()}")

    def down(self) -> None:
        _run("ip", "netns", "del", self.name)

    def socket(self, family: int = socket.AF_INET, kind: int = socket.SOCK_DGRAM) -> socket.socket:
        """A socket that lives in the namespace (created by a thread that entered it)."""
        made: dict[str, object] = {}

        def enter_and_create() -> None:
            try:
                libc = ctypes.CDLL(None, use_errno=True)
                fd = os.open(self.path, os.O_RDONLY)
                try:
                    if libc.setns(fd, _CLONE_NEWNET) != 0:
                        errno = ctypes.get_errno()
                        raise OSError(errno, f"setns({self.path}): {os.strerror(errno)}")
                finally:
                    os.close(fd)
                made["socket"] = socket.socket(family, kind)
            except BaseException as exc:  # handed to the caller's thread
                made["error"] = exc

        thread = threading.Thread(target=enter_and_create, name=f"setns-{self.name}")
        thread.start()
        thread.join()
        if "error" in made:
            raise made["error"]  # type: ignore[misc]
        return made["socket"]  # type: ignore[return-value]

    def exec_argv(self, *argv: str) -> list[str]:
        """``ip netns exec NAME argv...``: run a client inside the namespace."""
        return ["ip", "netns", "exec", self.name, *argv]


@dataclass(frozen=True)
class Query:
    """One query the server received."""

    name: dns.name.Name
    rdtype: int
    at: float


class ZoneServer:
    """Authoritative UDP answers from zones, with switchable faults; see the module doc."""

    def __init__(
        self,
        zones: Iterable[dns.zone.Zone],
        sock: socket.socket,
        address: str = ADDRESS,
        port: int = PORT,
        namespace: DnsNamespace | None = None,
    ) -> None:
        self.zones = list(zones)
        #: where the socket lives; clients run with ``namespace.exec_argv(...)``
        self.namespace = namespace
        self.mode = Mode.NORMAL
        self.delay = 3.0
        self.queries: list[Query] = []
        self._sock = sock
        self._sock.bind((address, port))
        self._sock.settimeout(0.05)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._timers: list[threading.Timer] = []
        self._thread = threading.Thread(target=self._serve, name="zone-server", daemon=True)

    # -- control -------------------------------------------------------------

    def start(self) -> ZoneServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        with self._lock:
            for timer in self._timers:
                timer.cancel()
        self._sock.close()

    def reset(self) -> None:
        """Back to normal answers, no recorded queries."""
        with self._lock:
            self.mode = Mode.NORMAL
            self.queries.clear()

    def count(self, name: str | dns.name.Name | None = None, rdtype: int | None = None) -> int:
        """How many queries arrived (for ``name``/``rdtype`` if given)."""
        if isinstance(name, str):
            name = dns.name.from_text(name)
        with self._lock:
            return sum(
                1
                for q in self.queries
                if (name is None or q.name == name) and (rdtype is None or q.rdtype == rdtype)
            )

    # -- serving -------------------------------------------------------------

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self._sock.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                query = dns.message.from_wire(data)
            except dns.exception.DNSException:
                continue  # not DNS: say nothing, as a real server would
            if not query.question:
                continue
            question = query.question[0]
            with self._lock:
                self.queries.append(Query(question.name, question.rdtype, time.monotonic()))
                mode = self.mode
            if mode is Mode.DROP:
                continue
            wire = self._answer(query, mode)
            if mode is Mode.SLOW:
                timer = threading.Timer(self.delay, self._send, (wire, peer))
                timer.daemon = True
                with self._lock:
                    self._timers.append(timer)
                timer.start()
            else:
                self._send(wire, peer)

    def _send(self, wire: bytes, peer: tuple) -> None:
        try:
            self._sock.sendto(wire, peer)
        except OSError:
            pass  # stopped, or the client went away

    def _zone_for(self, name: dns.name.Name) -> dns.zone.Zone | None:
        matching = [z for z in self.zones if name.is_subdomain(z.origin)]
        return max(matching, key=lambda z: len(z.origin), default=None)

    def _answer(self, query: dns.message.Message, mode: Mode) -> bytes:
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        question = query.question[0]
        zone = self._zone_for(question.name)
        if mode is Mode.SERVFAIL:
            response.set_rcode(dns.rcode.SERVFAIL)
        elif zone is None or question.rdclass != dns.rdataclass.IN:
            response.flags &= ~dns.flags.AA
            response.set_rcode(dns.rcode.REFUSED)
        else:
            node = zone.get_node(question.name)
            rdataset = None if node is None else node.get_rdataset(
                dns.rdataclass.IN, question.rdtype
            )
            if rdataset is not None:
                response.answer.append(
                    dns.rrset.from_rdata_list(question.name, rdataset.ttl, list(rdataset))
                )
            else:
                if node is None:
                    response.set_rcode(dns.rcode.NXDOMAIN)
                soa = zone.get_rdataset(zone.origin, dns.rdatatype.SOA)
                assert soa is not None
                response.authority.append(
                    dns.rrset.from_rdata_list(zone.origin, soa.ttl, list(soa))
                )
        limit = max(512, query.payload) if query.edns >= 0 else 512
        try:
            return response.to_wire(max_size=limit)
        except dns.exception.TooBig:
            response.answer.clear()
            response.authority.clear()
            response.flags |= dns.flags.TC
            return response.to_wire()


def main(argv: list[str] | None = None) -> int:
    import sys

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        sys.stderr.write("usage: python -m tests.dnsserver ZONEFILE ORIGIN\n")
        return 2
    with open(args[0], encoding="utf-8") as handle:
        zone = dns.zone.from_text(handle.read(), origin=args[1], relativize=False)
    namespace = DnsNamespace()
    namespace.up()
    server = ZoneServer([zone], namespace.socket(), namespace=namespace).start()
    print(f"serving {args[1]} on {ADDRESS} port {PORT} in netns {namespace.name}; ^C stops")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        namespace.down()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
