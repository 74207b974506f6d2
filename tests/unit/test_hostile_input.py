"""Input from strangers that must become a clear refusal, never a crash or a poisoned log."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fswan.ike.main_mode import identity_of
from fswan.ike.state import ExchangeError
from fswan.isakmp.constants import IdType, NotifyType
from fswan.isakmp.payloads import IDPayload
from fswan.whackproto import BadRequest, decode_request


@pytest.mark.parametrize("depth", [100, 10_000, 100_000])
def test_deeply_nested_control_requests_are_bad_requests(depth):
    line = b"[" * depth + b"]" * depth + b"\n"
    with pytest.raises(BadRequest):
        decode_request(line[:4000])  # within MAX_REQUEST: the nesting is the problem
    with pytest.raises(BadRequest):
        decode_request(b'{"version": 1, "command": "status", "x": ' + b"[" * 3000 + b"]" * 3000 + b"}")


@settings(max_examples=200)
@given(st.binary(max_size=600))
def test_any_request_bytes_decode_or_are_refused(data):
    try:
        decode_request(data)
    except BadRequest:
        pass


@pytest.mark.parametrize("name", [b"east\x00.example.com", b"east\x1b[2J", b"a\nb", b"\x7f"])
@pytest.mark.parametrize("kind", [IdType.ID_FQDN, IdType.ID_USER_FQDN])
def test_peer_ids_with_control_characters_are_refused(name, kind):
    data = name if kind == IdType.ID_FQDN else b"user@" + name
    with pytest.raises(ExchangeError) as info:
        identity_of(IDPayload(kind, data))
    assert info.value.notify == NotifyType.INVALID_ID_INFORMATION
    text = info.value.lines[0]
    assert text.isprintable() and "non-printable" in text


def test_printable_ids_still_work():
    assert str(identity_of(IDPayload(IdType.ID_FQDN, b"east.example.com"))) == "@east.example.com"
    assert str(identity_of(IDPayload(IdType.ID_USER_FQDN, b"alice@example.com"))) == "alice@example.com"


@pytest.mark.parametrize("text", ["@a\x01b.example", "user\x00@example.com", "@east\x1b[0m"])
def test_config_ids_with_control_characters_are_file_line_errors(text):
    from fswan.config.errors import ConfigError
    from fswan.config.ipsecconf import parse_config

    conf = (f'version 2\nconn x\n\tleft=192.0.2.1\n\tright=192.0.2.2\n\tleftid="{text}"\n'
            "\tauto=add\n")
    with pytest.raises(ConfigError) as info:
        parse_config(conf, "/etc/ipsec.conf")
    message = str(info.value)
    assert "/etc/ipsec.conf:5" in message and "non-printable" in message and message.isprintable()
