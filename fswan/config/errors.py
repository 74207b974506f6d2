"""Errors raised by the pure config parsers.

Every error a user can cause carries the file and line it came from, so the
daemon and ``ipsec checkconfig`` can print ``file:line: message`` and never a
traceback.  Parsers collect as many errors as they can before raising, so a
user fixes a whole file in one pass.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Location:
    """Where a setting or section was written."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


class ConfigError(Exception):
    """One problem in ipsec.conf or ipsec.secrets, with its location if known."""

    def __init__(self, message: str, location: Location | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.location = location

    def __str__(self) -> str:
        if self.location is None:
            return self.message
        return f"{self.location}: {self.message}"


class ConfigErrors(ConfigError):
    """Several problems found in one pass; ``errors`` lists them in file order."""

    def __init__(self, errors: list[ConfigError]) -> None:
        self.errors = list(errors)
        first = self.errors[0] if self.errors else ConfigError("no errors")
        super().__init__(first.message, first.location)

    def __str__(self) -> str:
        return "\n".join(str(e) for e in self.errors)


class ConnRefused(ConfigError):
    """A conn the original daemons would load that fswan cannot run (``authby=null``,
    XAUTH, X.509 ...): only this conn is left out, the rest of the file loads.  Its
    location is the line that makes it unrunnable; ``reason`` says why."""

    def __init__(self, conn: str, reason: str, location: Location | None = None) -> None:
        super().__init__(f'conn "{conn}" not loaded: {reason}', location)
        self.conn = conn
        self.reason = reason
