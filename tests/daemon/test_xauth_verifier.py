"""XauthCheckNeeded answered through the IXauthVerifier seam, against a fake engine."""

from __future__ import annotations

from ipaddress import ip_address

from twisted.internet import defer
from twisted.logger import Logger
from zope.interface.verify import verifyObject

from fswan.config.secrets import parse_secrets
from fswan.daemon.logging import PlutoLog
from fswan.daemon.xauth import AlwaysOkVerifier, FileVerifier, IXauthVerifier, XauthChecks
from fswan.ike.events import XauthCheckNeeded

PEER = ip_address("203.0.113.7")
SECRETS = '@alice : XAUTH "wonderland"\nbob : XAUTH "builder"\n'


class FakeConn:
    def __init__(self, xauthby):
        self.xauthby = xauthby


class FakeEntry:
    def __init__(self, xauthby):
        self.conn = FakeConn(xauthby)


class FakeSelect:
    def __init__(self, secrets, xauthby):
        self.secrets = secrets
        self.entries = {"rw": FakeEntry(xauthby)}

    def get(self, name):
        return self.entries.get(name)


class FakeEngine:
    def __init__(self, xauthby="file", secrets=SECRETS):
        self.select = FakeSelect(parse_secrets(secrets, "/etc/ipsec.secrets"), xauthby)
        self.verdicts = []

    def xauth_checked(self, serial, ok, now):
        self.verdicts.append((serial, ok, now))


class FakeDriver:
    def __init__(self, engine):
        self.engine = engine
        self.pumps = 0

    def now(self):
        return 42.0

    def pump(self):
        self.pumps += 1


class Lines:
    """PlutoLog's observer: (text, rc, conn, serial) of every line."""

    def __init__(self):
        self.lines = []

    def __call__(self, text, rc, conn, serial):
        self.lines.append((text, rc, conn, serial))


def checks(xauthby="file", verifiers=None, secrets=SECRETS):
    engine = FakeEngine(xauthby, secrets)
    driver = FakeDriver(engine)
    lines = Lines()
    log = PlutoLog(Logger(namespace="test", observer=lambda event: None), observer=lines)
    return XauthChecks(driver, log, verifiers), engine, driver, lines


def event(user="alice", password=b"wonderland", serial=3):
    return XauthCheckNeeded("rw", serial, user, password, PEER)


def test_file_verifier_accepts_the_right_password_and_no_other():
    glue, engine, driver, lines = checks()
    glue.needed(event())
    glue.needed(event("bob", b"builder", 4))
    glue.needed(event("alice", b"Wonderland", 5))
    glue.needed(event("mallory", b"wonderland", 6))
    glue.needed(event("alice", b"", 7))
    assert engine.verdicts == [(3, True, 42.0), (4, True, 42.0), (5, False, 42.0), (6, False, 42.0),
                               (7, False, 42.0)]
    # answered inside the driver's pump: no second pump
    assert driver.pumps == 0 and lines.lines == []


def test_file_verifier_reads_the_secrets_loaded_now():
    glue, engine, driver, _ = checks()
    engine.select.secrets = parse_secrets('@alice : XAUTH "changed"\n', "/etc/ipsec.secrets")
    glue.needed(event())
    glue.needed(event(password=b"changed", serial=4))
    assert engine.verdicts == [(3, False, 42.0), (4, True, 42.0)]


def test_alwaysok():
    glue, engine, _, _ = checks("alwaysok")
    glue.needed(event("anyone", b"anything"))
    assert engine.verdicts == [(3, True, 42.0)]


def test_a_verifier_answering_later_pumps_the_driver():
    pending = defer.Deferred()

    class Slow:
        name = "pam"
        asked = []

        def verify(self, user, password, conn, peer):
            self.asked.append((user, password, conn, peer))
            return pending

    glue, engine, driver, _ = checks("pam", {"pam": Slow()})
    glue.needed(event())
    assert engine.verdicts == [] and Slow.asked == [("alice", b"wonderland", "rw", "203.0.113.7")]
    pending.callback(True)
    assert engine.verdicts == [(3, True, 42.0)] and driver.pumps == 1


def test_only_true_accepts():
    class Truthy:
        name = "pam"

        def verify(self, user, password, conn, peer):
            return "yes"

    glue, engine, _, _ = checks("pam", {"pam": Truthy()})
    glue.needed(event())
    assert engine.verdicts == [(3, False, 42.0)]


def test_a_verifier_that_raises_refuses_with_a_log_line_and_no_password():
    class Broken:
        name = "pam"

        def verify(self, user, password, conn, peer):
            raise RuntimeError("PAM service missing")

    glue, engine, driver, lines = checks("pam", {"pam": Broken()})
    glue.needed(event())
    assert engine.verdicts == [(3, False, 42.0)]
    assert lines.lines == [("XAUTH: verifier 'pam' failed for user 'alice': RuntimeError: "
                            "PAM service missing; refusing", 3, "rw", 3)]
    assert not any("wonderland" in text for text, *_ in lines.lines)


def test_a_failing_deferred_later_refuses_and_pumps():
    pending = defer.Deferred()

    class Radius:
        name = "pam"

        def verify(self, user, password, conn, peer):
            return pending

    glue, engine, driver, lines = checks("pam", {"pam": Radius()})
    glue.needed(event())
    pending.errback(TimeoutError("no answer"))
    assert engine.verdicts == [(3, False, 42.0)] and driver.pumps == 1
    assert "TimeoutError: no answer" in lines.lines[0][0]


def test_no_verifier_for_xauthby_refuses():
    glue, engine, _, lines = checks("pam", {"file": AlwaysOkVerifier()})
    glue.needed(event())
    assert engine.verdicts == [(3, False, 42.0)]
    assert lines.lines[0][0].startswith("XAUTH: xauthby=pam: no such verifier is installed")


def test_the_default_verifiers_are_found():
    glue, engine, _, _ = checks()
    assert {"file", "alwaysok"} <= set(glue.verifiers)
    for verifier in glue.verifiers.values():
        assert verifyObject(IXauthVerifier, verifier)


def test_file_verifier_direct():
    secrets = parse_secrets(SECRETS, "s")
    verifier = FileVerifier(lambda: secrets)
    assert verifier.verify("alice", b"wonderland", "rw", "203.0.113.7") is True
    assert verifier.verify("nobody", b"\0" * 32, "rw", "203.0.113.7") is False


def test_a_refusal_is_answered_only_after_the_failure_delay():
    from twisted.internet.task import Clock

    engine = FakeEngine()
    driver = FakeDriver(engine)
    clock = Clock()
    log = PlutoLog(Logger(namespace="test", observer=lambda event: None), observer=Lines())
    glue = XauthChecks(driver, log, clock=clock, failure_delay=2.0)
    glue.needed(event())  # the right password: at once
    glue.needed(event(password=b"guess", serial=4))
    assert engine.verdicts == [(3, True, 42.0)]
    clock.advance(1.9)
    assert len(engine.verdicts) == 1
    clock.advance(0.2)
    assert engine.verdicts == [(3, True, 42.0), (4, False, 42.0)] and driver.pumps == 1
