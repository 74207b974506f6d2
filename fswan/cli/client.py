"""Talking to the daemon's control socket, shared by ``whack`` and ``ipsec auto``.

Blocking and simple on purpose: a CLI sends one request per connection,
echoes the reply lines and derives its exit status from their codes.
"""

from __future__ import annotations

import errno
import socket
import sys
from collections.abc import Callable
from typing import TextIO

from fswan.whackproto import CTL_SUFFIX, RC, Request, parse_line, update_exit_status


class ControlUnavailable(Exception):
    """The daemon cannot be reached; the message is what whack prints."""


def send_request(
    ctlbase: str,
    request: Request,
    on_line: Callable[[int | None, str], None],
    timeout: float | None = None,
) -> int:
    """Send one request, call ``on_line`` per reply line, return whack's exit status."""
    path = ctlbase + CTL_SUFFIX
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(path)
    except FileNotFoundError:
        sock.close()
        raise ControlUnavailable(f'Pluto is not running (no "{path}")') from None
    except OSError as error:
        sock.close()
        code = error.errno or 0
        raise ControlUnavailable(
            f'connect() for "{path}" failed ({code} {errno.errorcode.get(code, "")}'
            f" {error.strerror or ''})".replace("  ", " ")
        ) from None
    status = 0
    try:
        sock.sendall(request.encode())
        buffer = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            buffer += chunk
            while b"\n" in buffer:
                raw, buffer = buffer.split(b"\n", 1)
                status = _one_line(raw, on_line, status)
        if buffer:
            status = _one_line(buffer, on_line, status)
    except OSError as error:
        raise ControlUnavailable(f"lost the connection to {path}: {error.strerror}") from None
    finally:
        sock.close()
    return status


def _one_line(raw: bytes, on_line: Callable[[int | None, str], None], status: int) -> int:
    text = raw.decode("utf-8", "replace")
    rc, _ = parse_line(text)
    on_line(rc, text)
    return update_exit_status(status, rc) if rc is not None else status


def echo_lines(
    out: TextIO | None = None, hide: frozenset[int] = frozenset()
) -> Callable[[int | None, str], None]:
    """An ``on_line`` that prints lines as whack does, hiding some codes (auto hides 002)."""

    def on_line(rc: int | None, text: str) -> None:
        if rc is not None and rc in hide:
            return
        stream = out or sys.stdout
        stream.write(text + "\n")
        stream.flush()

    return on_line


def json_lines(out: TextIO | None = None) -> Callable[[int | None, str], None]:
    """For ``--json``: print the document from its ``000`` line bare, other lines to stderr."""

    def on_line(rc: int | None, text: str) -> None:
        _, body = parse_line(text)
        if rc == RC.COMMENT and body.startswith("{"):
            (out or sys.stdout).write(body + "\n")
        else:
            sys.stderr.write(text + "\n")

    return on_line
