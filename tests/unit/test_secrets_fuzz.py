"""Property tests: whatever the text, parse_secrets answers with Secrets or ConfigError.

Nothing else may escape -- no IndexError from the tokenizer, no ValueError
from the crypto library, no UnicodeError -- because the daemon turns a
ConfigError into a ``file:line:`` message and anything else into a crash.
"""

from __future__ import annotations

import functools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from fswan.config import keys
from fswan.config.errors import ConfigError
from fswan.config.ids import ANY_ID, parse_id
from fswan.config.secrets import Secrets, parse_secrets
from tests.fakes import MemoryLoader

FUZZ = settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@functools.cache
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(3, 1024)


@functools.cache
def loader() -> MemoryLoader:
    pem = key().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    return MemoryLoader({
        "etc/inc/a.secrets": '@c @d : PSK 0sc2VjcmV0\n',
        "etc/east.pem": pem,
        "etc/east.txt": keys.format_rsa_key_body(key()),
    })


@functools.cache
def valid_file() -> str:
    return (
        "# ipsec.secrets for the fuzzer\n"
        '192.0.2.1 192.0.2.2 : PSK "a quoted secret"\n'
        "@east.example %any\n"
        "\t: psk 0x0102_0304\n"
        ': PSK 0tliteral\n'
        "2001:db8::1 user@example.com : PSK 0sQUJDRA==\n"
        "include inc/*.secrets\n"
        '@east : RSA "east.pem"\n'
        "@east2 : RSA east.txt\n"
        + keys.format_rsa_secret_block(key(), hostname="east", date="date", ids=["@east3"])
    )


def check(text: str) -> None:
    try:
        result = parse_secrets(text, "etc/ipsec.secrets", loader())
    except ConfigError as exc:
        assert str(exc)  # renders without raising
        return
    assert isinstance(result, Secrets)
    repr(result)
    result.describe()
    result.find_psk(parse_id("@east.example"), ANY_ID)
    result.find_rsa(parse_id("@east"), key().public_key())


SYNTAX = st.sampled_from(list(' \t\n\r#"{}:@.%_-=+/') + ["0x", "0s", "0t", "PSK", "RSA", "include"])
TEXTISH = st.lists(st.one_of(SYNTAX, st.text(max_size=4)), max_size=40).map("".join)


@FUZZ
@given(st.text())
def test_arbitrary_text(text: str) -> None:
    check(text)


@FUZZ
@given(TEXTISH)
def test_syntax_soup(text: str) -> None:
    check(text)


MUTATION = st.tuples(
    st.sampled_from(["insert", "delete", "replace", "dup_line", "drop_line"]),
    st.integers(min_value=0),
    st.integers(min_value=1, max_value=12),
    st.one_of(SYNTAX, st.characters()),
)


def mutate(text: str, mutations: list[tuple[str, int, int, str]]) -> str:
    for op, where, length, piece in mutations:
        if op in ("dup_line", "drop_line"):
            lines = text.split("\n")
            i = where % len(lines)
            lines[i:i + 1] = [lines[i]] * 2 if op == "dup_line" else []
            text = "\n".join(lines)
            continue
        pos = where % (len(text) + 1)
        if op == "insert":
            text = text[:pos] + piece + text[pos:]
        elif op == "delete":
            text = text[:pos] + text[pos + length:]
        else:
            text = text[:pos] + piece + text[pos + 1:]
    return text


@FUZZ
@given(st.lists(MUTATION, min_size=1, max_size=6))
def test_mutated_valid_file(mutations: list[tuple[str, int, int, str]]) -> None:
    check(mutate(valid_file(), mutations))


def test_valid_file_parses() -> None:
    secrets = parse_secrets(valid_file(), "etc/ipsec.secrets", loader())
    assert [s.kind for s in secrets.entries] == ["PSK"] * 5 + ["RSA"] * 3
    assert all(keys.same_public_key(s.value, key()) for s in secrets.entries[5:])
