"""The firewall plugin (``leftfirewall=yes``): forwarding rules for a tunnel's clients.

FreeS/WAN's ``leftfirewall=yes`` made ``_updown`` insert ipfwadm/iptables
forwarding rules on ``up`` and remove them on ``down``.  fswan keeps that in
an nftables table of its own, ``inet fswan``, so it never edits anyone else's
ruleset:

* chain ``forward``: ``type filter hook forward priority 0; policy accept;``
* per conn two rules, ``our client -> peer client`` out through ``ipsec0`` and
  ``peer client -> our client`` in from ``ipsec0``, each with a counter and the
  comment ``fswan:<conn>`` (a road warrior's peer: ``fswan:<conn>[<peer client>]``)
  so ``down`` deletes exactly that conn's (that peer's) rules;
* the table is deleted when its last rule goes.

nftables evaluates every base chain on a hook: an ``accept`` here does not
override a ``drop`` in another table.  The rules document and count a tunnel's
forwarded traffic; a site with a drop policy must accept tunnel traffic in its
own table too (see docs/updown.md).

``nft`` runs as a child process (``-j`` to read, ``-f -`` to change, each
change one atomic transaction); one plugin instance handles one ``nft``
conversation at a time, so two conns' list-then-delete steps never interleave.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable, Sequence
from typing import Any

from twisted.internet.defer import Deferred, DeferredLock, fail
from twisted.internet.protocol import ProcessProtocol
from twisted.plugin import IPlugin
from twisted.python.failure import Failure
from zope.interface import implementer

from fswan.updown.context import UpdownContext
from fswan.updown.interface import IUpdown, UpdownFailure, UpdownPlugin

TABLE = "fswan"
FAMILY = "inet"
CHAIN = "forward"
ADD_TABLE = f"add table {FAMILY} {TABLE}"
ADD_CHAIN = (
    f"add chain {FAMILY} {TABLE} {CHAIN} "
    "{ type filter hook forward priority 0; policy accept; }"
)
#: protocols whose rules may name ports (``th sport``/``th dport``)
PORT_PROTOCOLS = {6, 17, 33, 132}
_UNSAFE = re.compile(r"[^A-Za-z0-9._:+\-\[\]@]")

#: runs ``nft ARGS`` with ``stdin``; fires with (stdout, stderr, exit status)
NftRunner = Callable[[Sequence[str], bytes], "Deferred[tuple[bytes, bytes, int]]"]


def rule_tag(conn: str) -> str:
    """The comment marking a conn's rules (characters nft cannot quote become ``_``)."""
    return "fswan:" + _UNSAFE.sub("_", conn)[:100]


def _l4(protocol: int, sport: int, dport: int) -> str:
    words = []
    if protocol:
        words.append(f"meta l4proto {protocol}")
        if protocol in PORT_PROTOCOLS:
            if sport:
                words.append(f"th sport {sport}")
            if dport:
                words.append(f"th dport {dport}")
    return " ".join(words)


def up_rules(ctx: UpdownContext) -> list[str]:
    """The two ``add rule`` commands for ``ctx``'s clients."""
    tag = rule_tag(ctx.instance or ctx.connection)
    family = "ip6" if ctx.peer_client.version == 6 else "ip"
    protocol = ctx.my_protocol or ctx.peer_protocol
    device = _UNSAFE.sub("_", ctx.interface)
    rules = []
    for src, dst, direction, sport, dport in (
        (ctx.my_client, ctx.peer_client, "oifname", ctx.my_port, ctx.peer_port),
        (ctx.peer_client, ctx.my_client, "iifname", ctx.peer_port, ctx.my_port),
    ):
        words = [f"add rule {FAMILY} {TABLE} {CHAIN}", f"{family} saddr {src}", f"{family} daddr {dst}",
                 f'{direction} "{device}"', _l4(protocol, sport, dport), "counter accept",
                 f'comment "{tag}"']
        rules.append(" ".join(w for w in words if w))
    return rules


def table_rules(listing: dict[str, Any], tag: str) -> tuple[list[int], int]:
    """From ``nft -j list table inet fswan``: handles tagged ``tag``, and how much else is there.

    "Else" counts other rules and any object besides our table and chain, so a
    table a user has added to is never deleted.
    """
    handles: list[int] = []
    others = 0
    for item in listing.get("nftables", []):
        if "metainfo" in item or "table" in item:
            continue
        if "chain" in item and item["chain"].get("name") == CHAIN:
            continue
        rule = item.get("rule")
        if rule is not None and rule.get("comment") == tag and rule.get("chain") == CHAIN:
            handles.append(int(rule["handle"]))
        else:
            others += 1
    return handles, others


def nft_error(stderr: bytes) -> str:
    """The useful part of nft's complaint: the ``Error:`` line and the command it was about."""
    lines = stderr.decode("utf-8", "replace").splitlines()
    for number, line in enumerate(lines):
        if "Error:" in line:
            message = line[line.index("Error:"):]
            following = lines[number + 1].strip() if number + 1 < len(lines) else ""
            if following and not set(following) <= {"^", "~", " "}:
                message += f" (in: {following})"
            return message
    return lines[0] if lines else "nft failed without a message"


class _Collect(ProcessProtocol):
    """Feed stdin, gather stdout/stderr, fire with the exit status."""

    def __init__(self, stdin: bytes, done: Deferred) -> None:
        self.stdin = stdin
        self.done = done
        self.out: list[bytes] = []
        self.err: list[bytes] = []

    def connectionMade(self) -> None:
        transport = self.transport
        assert transport is not None  # the process transport comes before this call
        if self.stdin:
            transport.write(self.stdin)
        transport.closeStdin()

    def outReceived(self, data: bytes) -> None:
        self.out.append(data)

    def errReceived(self, data: bytes) -> None:
        self.err.append(data)

    def processEnded(self, reason: Failure) -> None:
        code = getattr(reason.value, "exitCode", None)
        if code is None:
            code = -(getattr(reason.value, "signal", None) or 1)
        self.done.callback((b"".join(self.out), b"".join(self.err), code))


def spawn_nft(args: Sequence[str], stdin: bytes = b"") -> Deferred:
    """Run the real ``nft`` through the reactor (never blocks the daemon)."""
    from twisted.internet import reactor

    path = shutil.which("nft") or next(
        (p for p in ("/usr/sbin/nft", "/sbin/nft") if os.path.exists(p)), None
    )
    if path is None:
        return fail(UpdownFailure("nft " + " ".join(args), "nft not found (install nftables)"))
    done: Deferred = Deferred()
    env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), "LC_ALL": "C"}
    reactor.spawnProcess(_Collect(stdin, done), path, [path, *args], env=env)
    return done


@implementer(IPlugin, IUpdown)
class FirewallPlugin(UpdownPlugin):
    """``up`` adds a conn's forwarding rules to ``inet fswan``; ``down`` removes them."""

    name = "firewall"

    def __init__(self, nft: NftRunner | None = None) -> None:
        self._nft = nft or spawn_nft
        self._lock = DeferredLock()

    def up(self, ctx: UpdownContext) -> Deferred:
        return self._lock.run(lambda: Deferred.fromCoroutine(self._up(ctx)))

    def down(self, ctx: UpdownContext) -> Deferred:
        return self._lock.run(lambda: Deferred.fromCoroutine(self._down(ctx)))

    async def _up(self, ctx: UpdownContext) -> None:
        tag = rule_tag(ctx.instance or ctx.connection)
        listing = await self._list()
        stale = table_rules(listing, tag)[0] if listing is not None else []
        script = [ADD_TABLE, ADD_CHAIN]
        script += [f"delete rule {FAMILY} {TABLE} {CHAIN} handle {h}" for h in stale]
        script += up_rules(ctx)
        attempted = (
            f"nft add rule {FAMILY} {TABLE} {CHAIN} {ctx.my_client} <-> {ctx.peer_client} "
            f'via {ctx.interface} comment "{tag}"'
        )
        await self._apply(script, attempted)

    async def _down(self, ctx: UpdownContext) -> None:
        tag = rule_tag(ctx.instance or ctx.connection)
        listing = await self._list()
        if listing is None:
            return
        handles, others = table_rules(listing, tag)
        script = [f"delete rule {FAMILY} {TABLE} {CHAIN} handle {h}" for h in handles]
        if others == 0:
            script.append(f"delete table {FAMILY} {TABLE}")
        if script:
            await self._apply(script, f'nft delete rules "{tag}" from table {FAMILY} {TABLE}')

    async def _list(self) -> dict[str, Any] | None:
        """Our table as nft's JSON, or None when it does not exist."""
        args = ["-j", "list", "table", FAMILY, TABLE]
        out, err, code = await self._nft(args, b"")
        if code != 0:
            if b"No such file or directory" in err:
                return None
            raise UpdownFailure("nft " + " ".join(args), nft_error(err))
        try:
            return json.loads(out or b"{}")
        except ValueError as error:
            raise UpdownFailure("nft " + " ".join(args), f"unreadable JSON: {error}") from None

    async def _apply(self, script: list[str], attempted: str) -> None:
        out, err, code = await self._nft(["-f", "-"], ("\n".join(script) + "\n").encode())
        if code != 0:
            raise UpdownFailure(attempted, nft_error(err))
