"""Checking XAUTH passwords: the ``IXauthVerifier`` seam and the engine's ``XauthCheckNeeded``.

The engine (``ike/transaction.py``) runs the exchange and never decides a password
itself: it emits ``XauthCheckNeeded`` and waits.  :class:`XauthChecks` picks the
conn's verifier by ``xauthby=``, asks it (a verifier may answer at once or with a
Deferred -- PAM or RADIUS take time), and hands the verdict back with
``engine.xauth_checked(serial, ok, now)``.  A verifier that raises or fails counts
as a refusal with one log line: a broken plugin never crashes the daemon, and never
lets a user in.

Built in: ``file`` (the ``XAUTH`` entries of ipsec.secrets, read from the engine on
every check, so ``--rereadsecrets`` applies to the next login) and ``alwaysok``.
Other verifiers are ``twisted.plugin`` plugins (``@implementer(IPlugin,
IXauthVerifier)``, a module-level instance) in a ``fswan/plugins`` directory (as updown plugins are, docs/updown.md), chosen
when their ``name`` is the conn's ``xauthby=`` (``pam`` for a PAM plugin).
Passwords are never logged.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, Union

from twisted.internet import defer
from twisted.python.failure import Failure
from zope.interface import Attribute, Interface, implementer

from fswan.daemon.interfaces import Clock
from fswan.discovery import named_plugins
from fswan.config.secrets import Secrets
from fswan.ike.events import XauthCheckNeeded
from fswan.ike.select import Connections
from fswan.whackproto import RC

if TYPE_CHECKING:
    from fswan.daemon.logging import PlutoLog

__all__ = ["AlwaysOkVerifier", "FileVerifier", "IXauthVerifier", "Verdict", "Verifier",
           "XauthAnswers", "XauthChecks", "XauthEngine", "plugin_verifiers"]


class IXauthVerifier(Interface):
    """Decides whether an XAUTH user name and password may in."""

    name = Attribute("The xauthby= word that picks this verifier (e.g. 'file', 'pam').")

    def verify(user: str, password: bytes, conn: str, peer: str) -> Verdict:
        """True to accept, False to refuse; or a Deferred firing with either.
        ``conn`` is the conn name and ``peer`` the client's address (for the
        verifier's own log and policies).  Raising, or a failing Deferred,
        refuses.  The password must not be logged."""


#: what a verifier answers: at once, or later
Verdict = Union[bool, "defer.Deferred[bool]"]


class Verifier(Protocol):
    """An :class:`IXauthVerifier` provider as the type checker sees it."""

    name: str

    def verify(self, user: str, password: bytes, conn: str, peer: str) -> Verdict: ...


#: compared against when the user is unknown, so a missing user costs the same as a wrong password
_NOBODY = b"\0" * 32


@implementer(IXauthVerifier)
class FileVerifier:
    """``xauthby=file``: the ``XAUTH`` entries of ipsec.secrets, compared in constant time."""

    name = "file"

    def __init__(self, secrets: Callable[[], Secrets]) -> None:
        #: the secrets loaded now (the engine's, replaced by ``--rereadsecrets``)
        self.secrets = secrets

    def verify(self, user: str, password: bytes, conn: str, peer: str) -> bool:
        expected = self.secrets().find_xauth(user)
        same = hmac.compare_digest(expected if expected is not None else _NOBODY, password)
        return same and expected is not None


@implementer(IXauthVerifier)
class AlwaysOkVerifier:
    """``xauthby=alwaysok``: any password (the user name is still logged and given to updown)."""

    name = "alwaysok"

    def verify(self, user: str, password: bytes, conn: str, peer: str) -> bool:
        return True


def plugin_verifiers() -> dict[str, Verifier]:
    """Every ``IXauthVerifier`` plugin in ``fswan.plugins`` by name (the first found wins)."""
    return named_plugins(IXauthVerifier)


class XauthEngine(Protocol):
    """What :class:`XauthChecks` needs of ``IkeEngine``: its conns and secrets, and the
    door for the verdict."""

    @property
    def select(self) -> Connections: ...
    def xauth_checked(self, serial: int, ok: bool, now: float) -> None: ...


class XauthAnswers(Protocol):
    """The IKE driver as :class:`XauthChecks` sees it: hand the engine the verdict, then
    send what it made (the same shape as ``interfaces.KeyAnswers``)."""

    @property
    def engine(self) -> XauthEngine: ...
    def now(self) -> float: ...
    def pump(self) -> None: ...


#: seconds before a refused password is answered
FAILURE_DELAY = 2.0


class XauthChecks:
    """Answers the engine's ``XauthCheckNeeded`` through the conn's verifier."""

    def __init__(self, driver: XauthAnswers, log: PlutoLog,
                 verifiers: dict[str, Verifier] | None = None,
                 clock: Clock | None = None, failure_delay: float = FAILURE_DELAY) -> None:
        self.driver = driver
        self.log = log
        #: a refusal is told the engine only after ``failure_delay`` (guessing costs time);
        #: without a clock (tests) at once
        self.clock = clock
        self.failure_delay = failure_delay
        #: by name; None: the built-ins plus the plugins, found at the first check
        self._verifiers = verifiers

    @property
    def verifiers(self) -> dict[str, Verifier]:
        if self._verifiers is None:
            found: dict[str, Verifier] = {
                "file": FileVerifier(lambda: self.driver.engine.select.secrets),
                "alwaysok": AlwaysOkVerifier(),
            }
            for name, plugin in plugin_verifiers().items():
                found.setdefault(name, plugin)
            self._verifiers = found
        return self._verifiers

    def _xauthby(self, conn: str) -> str:
        entry = self.driver.engine.select.get(conn)
        return entry.conn.xauthby if entry is not None else "file"

    def needed(self, event: XauthCheckNeeded) -> None:
        """Ask the conn's verifier; the verdict goes to the engine when it comes (at
        once for ``file`` and ``alwaysok``: then the driver's pump is already running)."""
        method = self._xauthby(event.conn)
        verifier = self.verifiers.get(method)
        if verifier is None:
            self.log.log(f"XAUTH: xauthby={method}: no such verifier is installed (a plugin "
                         f"providing IXauthVerifier); refusing user '{event.user}'",
                         RC.LOG_SERIOUS, event.conn, event.serial)
            self._answer(event, False, later=False)
            return
        peer = str(event.peer) if event.peer is not None else ""
        answering = [False]
        result = defer.maybeDeferred(verifier.verify, event.user, event.password, event.conn, peer)
        result.addCallbacks(self._verdict, self._failed, callbackArgs=(event, answering),
                            errbackArgs=(event, method, answering))
        answering[0] = True

    def _verdict(self, ok: object, event: XauthCheckNeeded, answering: list[bool]) -> None:
        self._answer(event, ok is True, later=answering[0])

    def _failed(self, failure: Failure, event: XauthCheckNeeded, method: str,
                answering: list[bool]) -> None:
        self.log.log(f"XAUTH: verifier '{method}' failed for user '{event.user}': "
                     f"{failure.type.__name__}: {failure.getErrorMessage()}; refusing",
                     RC.LOG_SERIOUS, event.conn, event.serial)
        self._answer(event, False, later=answering[0])

    def _answer(self, event: XauthCheckNeeded, ok: bool, later: bool,
                delayed: bool = False) -> None:
        """The verdict to the engine; pumped here only when it came later (from inside
        the driver's pump the loop sends what the engine made).  A refusal waits
        ``failure_delay`` first, as pluto did, so that guessing passwords is slow."""
        if not ok and not delayed and self.clock is not None and self.failure_delay > 0:
            self.clock.callLater(self.failure_delay, self._answer, event, False, True, True)
            return
        self.driver.engine.xauth_checked(event.serial, ok, self.driver.now())
        if later:
            self.driver.pump()
