"""The control protocol: request framing and checking, reply lines, whack's exit status."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fswan.whackproto import (
    RC,
    BadRequest,
    Request,
    decode_request,
    format_line,
    parse_line,
    update_exit_status,
)


def test_request_round_trip():
    request = Request("add", "net", {"config": "/etc/ipsec.conf"})
    line = request.encode()
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert json.loads(line) == {"version": 1, "command": "add", "name": "net", "config": "/etc/ipsec.conf"}
    assert decode_request(line.strip()) == request


@pytest.mark.parametrize(
    "line, message",
    [
        (b"not json", "not a JSON object"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"command": "status"}', "unsupported protocol version None"),
        (b'{"version": 1, "command": "frobnicate"}', "unknown command 'frobnicate'"),
        (b'{"version": 1, "command": "delete"}', "command 'delete' needs a connection name"),
        (b'{"version": 1, "command": "status", "json": [1]}', "argument 'json' must be"),
        (b"\xff\xfe", "not a JSON object"),
    ],
)
def test_bad_requests_say_what_is_wrong(line, message):
    with pytest.raises(BadRequest, match=message.replace("(", r"\(").replace(")", r"\)")):
        decode_request(line)


@given(st.binary(max_size=200))
@settings(max_examples=300, deadline=None)
def test_decoder_only_raises_bad_request(data):
    try:
        decode_request(data)
    except BadRequest:
        pass


def test_reply_line_format_is_plutos():
    assert format_line(RC.COMMENT, "interface ipsec0/eth0 192.0.2.1") == b"000 interface ipsec0/eth0 192.0.2.1\n"
    assert format_line(RC.UNKNOWN_NAME, 'no connection named "x"') == b'021 no connection named "x"\n'
    assert format_line(RC.COMMENT, "") == b"000\n"
    assert format_line(RC.LOG, "two\nlines") == b"002 two lines\n"


def test_parse_line():
    assert parse_line("004 done") == (4, "done")
    assert parse_line("000") == (0, "")
    assert parse_line("hello") == (None, "hello")


@pytest.mark.parametrize(
    "codes, status",
    [
        ([RC.COMMENT, RC.LOG], 0),
        ([RC.LOG, RC.UNKNOWN_NAME], 21),
        ([RC.BADWHACKMESSAGE, RC.SUCCESS], 0),
        ([RC.NEW_STATE + 1, RC.NEW_STATE + 2], 0),
        ([RC.LOG_SERIOUS], 0),
        ([RC.NOTIFICATION + 14], 214),
        ([RC.ORIENT, RC.LOG], 22),
    ],
)
def test_exit_status_follows_whack(codes, status):
    result = 0
    for code in codes:
        result = update_exit_status(result, code)
    assert result == status
