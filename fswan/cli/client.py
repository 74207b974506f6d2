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

#: bytes asked of the socket per read (a big status arrives in few reads)
RECV_SIZE = 1 << 18


class ControlUnavailable(Exception):
    """The daemon cannot be reached; the message is what whack prints."""


def send_request(
    ctlbase: str,
    request: Request,
    on_line: Callable[[int | None, str], None],
    timeout: float | None = None,
    flush: Callable[[], None] | None = None,
) -> int:
    """Send one request, call ``on_line`` per reply line, return whack's exit status.

    ``flush`` is called after the lines of each read: progress shows as it arrives, and a
    status of 10,000 tunnels (90,000 lines) is not one write system call per line.
    """
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
    codes: dict[str, int | None] = {}
    try:
        sock.sendall(request.encode())
        buffer = b""
        while True:
            chunk = sock.recv(RECV_SIZE)
            if not chunk:
                break
            # the bytes up to the last newline, at once ("\n" is never inside a UTF-8
            # sequence, so decoding them together is decoding each line)
            end = chunk.rfind(b"\n")
            if end < 0:
                buffer += chunk
                continue
            text = (buffer + chunk[:end]).decode("utf-8", "replace")
            buffer = chunk[end + 1:]
            for line in text.split("\n"):
                # a line's code depends on its first four characters only: parsed once each
                head = line[:4]
                rc = codes[head] if head in codes else codes.setdefault(head, parse_line(head)[0])
                on_line(rc, line)
                if rc:  # None and COMMENT (every status line) leave the status alone
                    status = update_exit_status(status, rc)
            if flush is not None:
                flush()
        if buffer:
            status = _one_line(buffer.decode("utf-8", "replace"), on_line, status)
            if flush is not None:
                flush()
    except OSError as error:
        raise ControlUnavailable(f"lost the connection to {path}: {error.strerror}") from None
    finally:
        sock.close()
    return status


def _one_line(text: str, on_line: Callable[[int | None, str], None], status: int) -> int:
    rc, _ = parse_line(text)
    on_line(rc, text)
    return update_exit_status(status, rc) if rc is not None else status


def echo_lines(
    out: TextIO | None = None, hide: frozenset[int] = frozenset()
) -> Callable[[int | None, str], None]:
    """An ``on_line`` that prints lines as whack does, hiding some codes (auto hides 002);
    ``send_request``'s ``flush`` (:func:`flush_out`) shows them after each read."""

    def on_line(rc: int | None, text: str) -> None:
        if rc is not None and rc in hide:
            return
        (out or sys.stdout).write(text + "\n")

    return on_line


def flush_out(out: TextIO | None = None) -> Callable[[], None]:
    """``send_request``'s ``flush`` for lines printed to ``out`` (default: stdout, stderr)."""

    def flush() -> None:
        (out or sys.stdout).flush()
        sys.stderr.flush()

    return flush


def json_lines(out: TextIO | None = None) -> Callable[[int | None, str], None]:
    """For ``--json``: print the document from its ``000`` line bare, other lines to stderr."""

    def on_line(rc: int | None, text: str) -> None:
        _, body = parse_line(text)
        if rc == RC.COMMENT and body.startswith("{"):
            (out or sys.stdout).write(body + "\n")
        else:
            sys.stderr.write(text + "\n")

    return on_line
