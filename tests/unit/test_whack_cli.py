"""whack's exit status against canned daemon replies on a real UNIX socket."""

from __future__ import annotations

import socket
import threading

import pytest

from fswan.cli import whack


def serve_once(path: str, reply: bytes) -> threading.Thread:
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)

    def run() -> None:
        conn, _ = server.accept()
        conn.recv(65536)
        conn.sendall(reply)
        conn.close()
        server.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize(
    "reply, status",
    [
        (b'104 "net" #1: STATE_MAIN_I1: initiate\n'
         b'004 "net" #1: STATE_MAIN_I4: ISAKMP SA established\n'
         b'117 "net" #2: STATE_QUICK_I1: initiate\n'
         b'004 "net" #2: STATE_QUICK_I2: sent QI2, IPsec SA established {ESP=>0x1 <0x2}\n', 0),
        # the daemon went away after phase 1: not a success
        (b'104 "net" #1: STATE_MAIN_I1: initiate\n'
         b'004 "net" #1: STATE_MAIN_I4: ISAKMP SA established\n', 32),
        (b'104 "net" #1: STATE_MAIN_I1: initiate\n', 32),
        (b'104 "net" #1: STATE_MAIN_I1: initiate\n'
         b'031 "net" #1: max number of retransmissions (2) reached STATE_MAIN_I1\n', 31),
        (b'021 no connection named "net"\n', 21),
    ],
)
def test_initiate_exit_status(tmp_path, capsys, reply, status):
    ctlbase = str(tmp_path / "pluto")
    thread = serve_once(ctlbase + ".ctl", reply)
    assert whack.main(["--ctlbase", ctlbase, "--name", "net", "--initiate"]) == status
    thread.join(5)
    out, err = capsys.readouterr()
    assert out == reply.decode()
    if status == 32:
        assert "stopped answering before keying finished" in err


def test_asynchronous_initiate_needs_no_verdict(tmp_path):
    ctlbase = str(tmp_path / "pluto")
    thread = serve_once(ctlbase + ".ctl", b"")
    assert whack.main(["--ctlbase", ctlbase, "--name", "net", "--initiate", "--asynchronous"]) == 0
    thread.join(5)
