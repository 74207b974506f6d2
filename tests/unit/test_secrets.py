"""ipsec.secrets: syntax, includes, key files, errors, best-match selection."""

from __future__ import annotations

import functools
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from fswan.config import keys
from fswan.config.errors import ConfigError, ConfigErrors, Location
from fswan.config.ids import ANY_ID, parse_id
from fswan.config.secrets import (
    MAX_INCLUDE_DEPTH,
    Secret,
    Secrets,
    load_secrets,
    parse_secrets,
    permission_warning,
    psk_match_level,
    rsa_match_level,
)
from tests.fakes import MemoryLoader

DATA = Path(__file__).resolve().parent.parent / "data" / "keys"
SECRET = "Sup3rS3cretXyZ"  # must never show up in any error, repr or summary


@functools.cache
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(3, 1024)


@functools.cache
def other_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(65537, 1024)


def ids(*texts: str) -> tuple:
    return tuple(parse_id(t) for t in texts)


def errors_of(text: str, loader: MemoryLoader | None = None, name: str = "ipsec.secrets") -> list[str]:
    with pytest.raises(ConfigErrors) as info:
        parse_secrets(text, name, loader)
    return [str(e) for e in info.value.errors]


# --------------------------------------------------------------------------
# PSK syntax


class TestPsk:
    def test_quoted(self) -> None:
        secrets = parse_secrets('192.0.2.1 192.0.2.2 : PSK "a secret with spaces"\n', "ipsec.secrets")
        (entry,) = secrets.entries
        assert entry.kind == "PSK"
        assert entry.ids == ids("192.0.2.1", "192.0.2.2")
        assert entry.value == b"a secret with spaces"
        assert entry.location == Location("ipsec.secrets", 1)
        assert secrets.files == ("ipsec.secrets",)
        assert secrets.warnings == ()

    @pytest.mark.parametrize(
        ("text", "value"),
        [
            ("0x0102_0304", b"\x01\x02\x03\x04"),
            ("0sAQID", b"\x01\x02\x03"),
            ("0tplain", b"plain"),
            ('"with # hash and \'quote\'"', b"with # hash and 'quote'"),
            ('"caf\u00e9"', "caf\u00e9".encode()),
        ],
    )
    def test_encodings(self, text: str, value: bytes) -> None:
        (entry,) = parse_secrets(f"@a @b : PSK {text}\n", "s").entries
        assert entry.value == value

    @pytest.mark.parametrize("token", ["PSK", "psk", "Psk"])
    def test_type_is_case_insensitive(self, token: str) -> None:
        (entry,) = parse_secrets(f': {token} "x"', "s").entries
        assert entry.kind == "PSK"

    def test_no_selectors(self) -> None:
        (entry,) = parse_secrets(': PSK "x"', "s").entries
        assert entry.ids == ()

    def test_selector_forms(self) -> None:
        text = ': PSK "a"\n%any6 @host.example.COM user@Example.com 2001:db8::1 %any : PSK "b"\n'
        entry = parse_secrets(text, "s").entries[1]
        assert entry.ids == (ANY_ID, parse_id("@host.example.com"), parse_id("user@example.com"),
                             parse_id("2001:db8::1"), ANY_ID)

    def test_continuation_lines_and_comments(self) -> None:
        text = (
            "# a comment\n"
            "\n"
            "@east   # the selectors go on\n"
            "\t@west\n"
            "   : PSK\n"
            '  "joined"  # trailing comment\n'
            '@north : PSK "second"\n'
        )
        first, second = parse_secrets(text, "s").entries
        assert first.ids == ids("@east", "@west")
        assert first.value == b"joined"
        assert first.location.line == 3
        assert second.location.line == 7

    def test_crlf_line_ends(self) -> None:
        (entry,) = parse_secrets('@a @b : PSK "x"\r\n\r\n', "s").entries
        assert entry.value == b"x"

    def test_empty_psk_warns(self) -> None:
        secrets = parse_secrets(': PSK ""\n', "s")
        assert secrets.entries[0].value == b""
        assert [str(w) for w in secrets.warnings] == ["s:1: PSK secret is empty"]


# --------------------------------------------------------------------------
# RSA syntax


class TestRsa:
    def test_generated_block_round_trip(self) -> None:
        key = rsa_key()
        text = '@west : PSK "x"\n' + keys.format_rsa_secret_block(
            key, hostname="east.example", date="Thu Jan  1 00:00:00 2004", ids=["@east"]
        )
        secrets = parse_secrets(text, "ipsec.secrets")
        rsa_entry = secrets.entries[1]
        assert rsa_entry.kind == "RSA"
        assert rsa_entry.ids == ids("@east")
        assert rsa_entry.location.line == 2
        assert rsa_entry.value.private_numbers() == key.private_numbers()
        assert rsa_entry.key_id == keys.key_id(key)

    def test_block_without_selectors_and_lower_case(self) -> None:
        body = keys.format_rsa_key_body(rsa_key(), bits_comment=False)
        (entry,) = parse_secrets(": rsa {\n" + body + "\t}\n", "s").entries
        assert entry.ids == ()
        assert entry.value.private_numbers() == rsa_key().private_numbers()

    def test_closing_brace_in_column_zero(self) -> None:
        body = keys.format_rsa_key_body(rsa_key())
        text = ": RSA {\n" + body + '}\n@a @b : PSK "x"\n'
        rsa_entry, psk_entry = parse_secrets(text, "s").entries
        assert rsa_entry.value.private_numbers() == rsa_key().private_numbers()
        assert psk_entry.kind == "PSK"

    def test_brace_on_next_line(self) -> None:
        body = keys.format_rsa_key_body(rsa_key())
        (entry,) = parse_secrets(": RSA\n\t{\n" + body + "\t}\n", "s").entries
        assert entry.kind == "RSA"

    def test_pem_key_file(self) -> None:
        loader = MemoryLoader({
            "/etc/ipsec.secrets": ': RSA "ipsec.d/private/east.key"\n',
            "/etc/ipsec.d/private/east.key": (DATA / "east.key").read_text(),
        })
        secrets = load_secrets("/etc/ipsec.secrets", loader)
        (entry,) = secrets.entries
        east = keys.load_public_key((DATA / "east.pub").read_text())
        assert keys.same_public_key(entry.value, east)
        assert secrets.files == ("/etc/ipsec.secrets", "/etc/ipsec.d/private/east.key")

    def test_unquoted_absolute_key_file_with_passphrase(self) -> None:
        pem = other_key().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(SECRET.encode()),
        ).decode()
        loader = MemoryLoader({"/keys/k.pem": pem})
        text = f'@east : RSA /keys/k.pem "{SECRET}"\n'
        (entry,) = parse_secrets(text, "/etc/ipsec.secrets", loader).entries
        assert entry.value.private_numbers() == other_key().private_numbers()

    def test_block_body_in_key_file(self) -> None:
        loader = MemoryLoader({"dir/k.txt": keys.format_rsa_key_body(rsa_key())})
        (entry,) = parse_secrets(': RSA "k.txt"', "dir/ipsec.secrets", loader).entries
        assert entry.value.private_numbers() == rsa_key().private_numbers()


# --------------------------------------------------------------------------
# include


class TestInclude:
    def test_relative_glob_in_order(self) -> None:
        loader = MemoryLoader({
            "/etc/ipsec.secrets": '@a @b : PSK "top"\ninclude ipsec.d/*.secrets\n@c @d : PSK "last"\n',
            "/etc/ipsec.d/1.secrets": '@e @f : PSK "one"\n',
            "/etc/ipsec.d/2.secrets": 'include sub/x.secrets\n',
            "/etc/ipsec.d/sub/x.secrets": '\n@g @h : PSK "nested"\n',
        })
        secrets = load_secrets("/etc/ipsec.secrets", loader)
        assert [e.value for e in secrets.entries] == [b"top", b"one", b"nested", b"last"]
        assert secrets.entries[2].location == Location("/etc/ipsec.d/sub/x.secrets", 2)
        assert secrets.files == (
            "/etc/ipsec.secrets",
            "/etc/ipsec.d/1.secrets",
            "/etc/ipsec.d/2.secrets",
            "/etc/ipsec.d/sub/x.secrets",
        )

    def test_no_match_is_a_warning(self) -> None:
        secrets = parse_secrets("include none/*.secrets\n", "/etc/ipsec.secrets", MemoryLoader({}))
        assert [str(w) for w in secrets.warnings] == [
            "/etc/ipsec.secrets:1: include '/etc/none/*.secrets' matched no files"
        ]

    def test_errors_point_into_the_included_file(self) -> None:
        loader = MemoryLoader({"inc.secrets": '\n\n: PKS "x"\n'})
        assert errors_of("include inc.secrets\n", loader) == [
            "inc.secrets:3: unknown secret type 'PKS'; expected PSK, RSA, ECDSA or XAUTH"
        ]

    def test_depth_ten_is_allowed(self) -> None:
        files = {f"f{i}": f"include f{i + 1}\n" for i in range(MAX_INCLUDE_DEPTH)}
        files[f"f{MAX_INCLUDE_DEPTH}"] = ': PSK "deep"\n'
        secrets = parse_secrets(files.pop("f0"), "f0", MemoryLoader(files))
        assert secrets.entries[0].value == b"deep"

    def test_depth_over_ten_is_an_error(self) -> None:
        loader = MemoryLoader({"loop": "include loop\n"})
        assert errors_of("include loop\n", loader, name="loop") == [
            "loop:1: include nesting too deep (more than 10 levels)"
        ]

    def test_without_loader(self) -> None:
        assert errors_of("include x\n") == [
            "ipsec.secrets:1: include is not possible here: no file loader given"
        ]

    def test_needs_one_pattern(self) -> None:
        assert errors_of("include a b\n", MemoryLoader({})) == [
            "ipsec.secrets:1: include needs exactly one file name or pattern"
        ]


# --------------------------------------------------------------------------
# Errors


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('\n\n\n\n: PKS "x"\n', "ipsec.secrets:5: unknown secret type 'PKS'; expected PSK, RSA, ECDSA or XAUTH"),
        (': XAUTH "x"\n', "ipsec.secrets:1: XAUTH entry needs a user name before ':' (@alice or alice)"),
        ('@alice : XAUTH\n', "ipsec.secrets:1: XAUTH entry has no secret"),
        ('@alice : XAUTH pw\n', 'ipsec.secrets:1: XAUTH secret must be a "quoted string" or 0x/0s/0t data'),
        ('@ : XAUTH "pw"\n', "ipsec.secrets:1: empty XAUTH user name"),
        (': EAP "x"\n', "ipsec.secrets:1: unknown secret type 'EAP'; expected PSK, RSA, ECDSA or XAUTH"),
        (": notakeyword\n", "ipsec.secrets:1: unknown secret type; expected PSK, RSA, ECDSA or XAUTH"),
        (': PSK "unterminated\n', 'ipsec.secrets:1: unterminated quote: a "quoted string" must end on its line'),
        ('@a\n  @b : PSK "x\n', "ipsec.secrets:1: unterminated quote"),
        (": RSA {\n\tModulus: 0x01\n@b : PSK 0x01\n", "ipsec.secrets:1: unterminated '{' block: no closing '}'"),
        (": RSA {\n\tModulus: 0x01\n", "ipsec.secrets:1: unterminated '{' block"),
        ('@a bad..id : PSK "x"\n', "ipsec.secrets:1: bad selector: bad ID 'bad..id': expected an IP address"),
        ('@a @b PSK "x"\n', "ipsec.secrets:1: missing ':' between the selectors and the secret type"),
        ('@a @b: PSK "x"\n', "ipsec.secrets:1: missing ':' (it must be separated from the selectors by a space)"),
        ("@a @b :\n", "ipsec.secrets:1: missing secret type after ':'; expected PSK, RSA, ECDSA or XAUTH"),
        ('@a @b : "x"\n', "ipsec.secrets:1: missing secret type (PSK, RSA, ECDSA or XAUTH) before the secret"),
        ("\n: PSK 0x123\n", "ipsec.secrets:2: bad PSK secret: odd number of hex digits (3) after 0x"),
        (": PSK 0sQ*==\n", "ipsec.secrets:1: bad PSK secret: invalid base64"),
        (": PSK\n", "ipsec.secrets:1: PSK entry has no secret"),
        (': PSK "a" "b"\n', "ipsec.secrets:1: unexpected text after the PSK secret"),
        (": PSK bare\n", 'ipsec.secrets:1: PSK secret must be a "quoted string" or 0x/0s/0t data'),
        (": RSA\n", "ipsec.secrets:1: RSA entry has no key: expected '{' or a key file name"),
        (": RSA 0sAQO=\n", "ipsec.secrets:1: expected '{' or a key file name after RSA"),
        (": RSA {\n\tPublicExponent: 0x03\n\t}\n", "ipsec.secrets:1: RSA key is missing Modulus"),
        (": RSA {\n\tModulus: 0x0g\n\t}\n", "ipsec.secrets:1: bad Modulus in RSA key: invalid hex digit"),
        (": RSA { Modulus: 0x01 } extra\n", "ipsec.secrets:1: unexpected text after the '}' of the RSA block"),
        (': RSA "k.pem"\n', "ipsec.secrets:1: cannot read key file 'k.pem': no file loader given"),
        (': RSA "a" "b" "c"\n', "ipsec.secrets:1: unexpected text after the RSA key file name"),
        (': RSA "k.pem" %prompt\n', "ipsec.secrets:1: %prompt passphrases are not supported"),
        ('"quoted" : PSK "x"\n', "ipsec.secrets:1: a quoted string is not a selector"),
    ],
)
def test_error_messages(text: str, expected: str) -> None:
    (message,) = errors_of(text)
    assert message.startswith(expected)


def test_key_file_unreadable() -> None:
    loader = MemoryLoader({})
    assert errors_of('\n@east : RSA "private/east.key"\n', loader, "/etc/ipsec.secrets") == [
        "/etc/ipsec.secrets:2: cannot read key file '/etc/private/east.key': No such file or directory"
    ]


def test_key_file_not_a_key() -> None:
    loader = MemoryLoader({"k.pem": "-----BEGIN PRIVATE KEY-----\nxx\n-----END PRIVATE KEY-----\n"})
    assert errors_of(': RSA "k.pem"\n', loader) == [
        "ipsec.secrets:1: key file 'k.pem': not a readable PEM private key (or the passphrase is wrong)"
    ]


def test_all_errors_are_collected_and_good_entries_survive_in_order() -> None:
    text = ': PKS "x"\n@a @b : PSK "ok"\n@c PSK "y"\n: PSK 0x1\n'
    assert errors_of(text) == [
        "ipsec.secrets:1: unknown secret type 'PKS'; expected PSK, RSA, ECDSA or XAUTH",
        "ipsec.secrets:3: missing ':' between the selectors and the secret type",
        "ipsec.secrets:4: bad PSK secret: odd number of hex digits (1) after 0x",
    ]


def test_errors_are_config_errors_with_location() -> None:
    with pytest.raises(ConfigError) as info:
        parse_secrets(": XAUTH x\n", "s")
    assert info.value.location == Location("s", 1)


def test_load_secrets_unreadable() -> None:
    with pytest.raises(ConfigErrors) as info:
        load_secrets("/etc/ipsec.secrets", MemoryLoader({}))
    assert str(info.value) == (
        "/etc/ipsec.secrets: cannot read secrets file: No such file or directory"
    )


# --------------------------------------------------------------------------
# Secrets never leak


@pytest.mark.parametrize(
    "text",
    [
        f'@a @b : PKS "{SECRET}"\n',
        f'@a @b : PSK "{SECRET}\n',
        f'@a @b : PSK "{SECRET}" trailing\n',
        f'@a @b : PSK "x" "{SECRET}"\n',
        f"@a @b : PSK {SECRET}\n",
        f"@a @b : PSK 0x{SECRET}\n",
        f"@a @b : PSK 0s{SECRET}\n",
        f'@a @b PSK "{SECRET}"\n',
        f'@a @b: PSK "{SECRET}"\n',
        f'@a @b : "{SECRET}"\n',
        f"@a @b : 0t{SECRET}\n",
        f"@a @b : {SECRET}\n",
        f'@a "{SECRET}" : PSK "x"\n',
        f': RSA {{\n\tModulus: 0x{SECRET}\n\t}}\n',
        f': RSA {{\n\t{SECRET}: 0x01\n\t}}\n',
        f': RSA {{\n\t0x{SECRET}\n\t}}\n',
        f': RSA {{\n\tModulus: 0t{SECRET}\n',
        f': RSA "k.pem" "{SECRET}" x\n',
        f': RSA "nokey.pem" "{SECRET}"\n',
    ],
)
def test_errors_never_contain_the_secret(text: str) -> None:
    loader = MemoryLoader({"k.pem": "junk"})
    with pytest.raises(ConfigErrors) as info:
        parse_secrets(text, "ipsec.secrets", loader)
    assert SECRET not in str(info.value)
    assert SECRET not in repr(info.value)
    assert all(SECRET not in e.message for e in info.value.errors)
    assert all(e.location == Location("ipsec.secrets", 1) for e in info.value.errors)


def test_repr_str_and_describe_never_show_secrets() -> None:
    key = rsa_key()
    text = f'@a @b : PSK "{SECRET}"\n' + keys.format_rsa_secret_block(key, ids=["@east"])
    secrets = parse_secrets(text, "ipsec.secrets")
    numbers = key.private_numbers()
    private_texts = [format(v, "x")[:16] for v in (numbers.d, numbers.p, numbers.q, numbers.iqmp)]
    shown = [repr(secrets), str(secrets), *secrets.describe()]
    shown += [repr(e) for e in secrets.entries] + [str(e) for e in secrets.entries]
    for text in shown:
        assert SECRET not in text
        for private in private_texts:
            assert private not in text
    psk, rsa_entry = secrets.entries
    assert repr(psk) == "Secret(kind='PSK', ids=(@a @b), location=ipsec.secrets:1)"
    assert str(psk) == "ipsec.secrets:1: PSK @a @b"
    assert secrets.describe() == [
        "ipsec.secrets:1: PSK @a @b",
        f"ipsec.secrets:2: RSA @east keyid {keys.key_id(key)} (1024 bits)",
    ]


def test_describe_entry_without_selectors() -> None:
    assert parse_secrets(': PSK "x"', "s").describe() == ["s:1: PSK (any)"]


# --------------------------------------------------------------------------
# Best-match selection (one test per row of the precedence tables)

ME, PEER, OTHER = parse_id("192.0.2.1"), parse_id("@peer.example"), parse_id("198.51.100.9")


class TestPskLevels:
    def test_row5_both_named(self) -> None:
        assert psk_match_level(ids("192.0.2.1", "@PEER.example"), ME, PEER) == 5
        assert psk_match_level(ids("@peer.example", "198.51.100.9", "192.0.2.1"), ME, PEER) == 5

    def test_row4_one_named_plus_any(self) -> None:
        assert psk_match_level(ids("192.0.2.1", "%any"), ME, PEER) == 4
        assert psk_match_level(ids("%any", "@peer.example"), ME, PEER) == 4

    def test_row3_single_id_names_either_end(self) -> None:
        assert psk_match_level(ids("192.0.2.1"), ME, PEER) == 3
        assert psk_match_level(ids("@peer.example"), ME, PEER) == 3

    def test_row2_only_any(self) -> None:
        assert psk_match_level(ids("%any"), ME, PEER) == 2
        assert psk_match_level(ids("%any", "%any6"), ME, PEER) == 2

    def test_row1_no_selectors(self) -> None:
        assert psk_match_level((), ME, PEER) == 1

    def test_row0_no_match(self) -> None:
        assert psk_match_level(ids("198.51.100.9"), ME, PEER) == 0
        assert psk_match_level(ids("192.0.2.1", "198.51.100.9"), ME, PEER) == 0
        assert psk_match_level(ids("%any", "198.51.100.9"), ME, PEER) == 0

    def test_addresses_compare_as_addresses(self) -> None:
        me6 = parse_id("2001:db8::1")
        assert psk_match_level(ids("2001:0db8:0:0::0001"), me6, PEER) == 3

    def test_unknown_peer_is_only_matched_by_any(self) -> None:
        assert psk_match_level(ids("192.0.2.1", "%any"), ME, ANY_ID) == 4
        assert psk_match_level(ids("192.0.2.1", "@peer.example"), ME, ANY_ID) == 0
        assert psk_match_level(ids("192.0.2.1"), ME, ANY_ID) == 3


def psk_file(*lines: str) -> Secrets:
    return parse_secrets("".join(line + "\n" for line in lines), "s")


class TestFindPsk:
    def test_precedence_order(self) -> None:
        ladder = [
            '192.0.2.1 @peer.example : PSK "5"',
            '192.0.2.1 %any : PSK "4"',
            '@peer.example : PSK "3"',
            '%any : PSK "2"',
            ': PSK "1"',
        ]
        # Whatever the order in the file, the most specific entry wins.
        for rotation in range(len(ladder)):
            lines = list(reversed(ladder[rotation:] + ladder[:rotation]))
            for drop in range(len(ladder)):
                remaining = [line for line in lines if not line.endswith(f'"{5 - drop}"')]
                best = max(int(line[-2]) for line in remaining)
                found = psk_file(*remaining).find_psk(ME, PEER)
                assert found is not None and found.value == str(best).encode()

    def test_tie_takes_the_first(self) -> None:
        secrets = psk_file('@peer.example : PSK "first"', '192.0.2.1 : PSK "second"')
        assert secrets.find_psk(ME, PEER).value == b"first"
        assert secrets.warnings == ()

    def test_no_match(self) -> None:
        assert psk_file('198.51.100.9 : PSK "x"').find_psk(ME, PEER) is None
        assert Secrets().find_psk(ME, PEER) is None

    def test_rsa_entries_are_not_psks(self) -> None:
        body = keys.format_rsa_key_body(rsa_key())
        secrets = parse_secrets(": RSA {\n" + body + "\t}\n", "s")
        assert secrets.find_psk(ME, PEER) is None


class TestRsaLevels:
    def test_row3_our_id_listed(self) -> None:
        assert rsa_match_level(ids("@east", "192.0.2.1"), ME) == 3

    def test_row2_any(self) -> None:
        assert rsa_match_level(ids("%any"), ME) == 2
        assert rsa_match_level(ids("@west", "%any"), ME) == 2

    def test_row1_no_selectors(self) -> None:
        assert rsa_match_level((), ME) == 1

    def test_row0_other_ids(self) -> None:
        assert rsa_match_level(ids("@west"), ME) == 0


class TestFindRsa:
    def secrets(self) -> Secrets:
        return parse_secrets(
            keys.format_rsa_secret_block(other_key())
            + keys.format_rsa_secret_block(rsa_key(), ids=["@east"])
            + keys.format_rsa_secret_block(other_key(), ids=["@west"])
            + '@east @west : PSK "x"\n',
            "s",
        )

    def test_by_id(self) -> None:
        secrets = self.secrets()
        assert secrets.find_rsa(parse_id("@east")).value.private_numbers() == rsa_key().private_numbers()
        assert secrets.find_rsa(parse_id("@west")).location.line == secrets.entries[2].location.line
        assert secrets.find_rsa(parse_id("@north")) is secrets.entries[0]

    def test_by_public_key(self) -> None:
        secrets = self.secrets()
        public = other_key().public_key()
        assert secrets.find_rsa(parse_id("@west"), public) is secrets.entries[2]
        assert secrets.find_rsa(parse_id("@north"), public) is secrets.entries[0]
        # A key whose selectors do not name us is still found by its public half.
        assert secrets.find_rsa(parse_id("@north"), rsa_key().public_key()) is secrets.entries[1]
        stranger = rsa.generate_private_key(65537, 1024).public_key()
        assert secrets.find_rsa(parse_id("@east"), stranger) is None

    def test_none(self) -> None:
        assert Secrets().find_rsa(ME) is None


# --------------------------------------------------------------------------
# Permissions


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        (0o600, None),
        (0o400, None),
        (stat.S_IFREG | 0o600, None),
        (0o620, None),
        (0o644, "ipsec.secrets: file is readable by group or others (mode 0644); chmod 600 it"),
        (stat.S_IFREG | 0o640, "ipsec.secrets: file is readable by group or others (mode 0640); chmod 600 it"),
        (0o604, "ipsec.secrets: file is readable by group or others (mode 0604); chmod 600 it"),
    ],
)
def test_permission_warning(mode: int, expected: str | None) -> None:
    assert permission_warning("ipsec.secrets", mode) == expected


def test_secret_is_frozen() -> None:
    entry = Secret("PSK", (), Location("s", 1), b"x")
    with pytest.raises(AttributeError):
        entry.value = b"y"  # type: ignore[misc]


def test_myid_selector_is_replaced_by_the_configured_myid():
    from fswan.config.ids import parse_id
    from fswan.config.secrets import parse_secrets

    secrets = parse_secrets('%myid @peer : PSK "myid-test-secret"\n', "ipsec.secrets")
    assert secrets.find_psk(parse_id("@gw.example"), parse_id("@peer")) is None
    resolved = secrets.with_myid(parse_id("@gw.example"))
    found = resolved.find_psk(parse_id("@gw.example"), parse_id("@peer"))
    assert found is not None and bytes(found.value) == b"myid-test-secret"
    assert secrets.with_myid(None) is secrets


# --------------------------------------------------------------------------
# XAUTH passwords (issue 13)


def test_xauth_entries_by_user_name() -> None:
    secrets = parse_secrets(
        '@alice : XAUTH "wonderland"\n'
        'bob carol : XAUTH 0x70617373\n'
        '192.0.2.1 203.0.113.7 : PSK "group secret"\n'
        '@alice : XAUTH "second entry loses"\n'
        '"dave smith" : XAUTH "quoted name"\n',
        "/etc/ipsec.secrets",
    )
    assert secrets.find_xauth("alice") == b"wonderland"
    assert secrets.find_xauth("bob") == secrets.find_xauth("carol") == b"pass"
    assert secrets.find_xauth("dave smith") == b"quoted name"
    assert secrets.find_xauth("Alice") is None and secrets.find_xauth("@alice") is None
    assert secrets.find_xauth("192.0.2.1") is None
    # XAUTH entries are never a PSK, whatever the names look like
    assert secrets.find_psk(parse_id("192.0.2.1"), parse_id("203.0.113.7")).kind == "PSK"
    xauth = secrets.entries[0]
    assert (xauth.kind, xauth.users, xauth.ids) == ("XAUTH", ("alice",), ())
    for shown in (repr(xauth), str(xauth), "\n".join(secrets.describe())):
        assert "wonderland" not in shown and "pass" not in shown.replace("/etc/ipsec.secrets", "")
    assert str(xauth) == "/etc/ipsec.secrets:1: XAUTH alice"


def test_xauth_empty_password_warns() -> None:
    secrets = parse_secrets('@alice : XAUTH ""\n', "s")
    assert secrets.find_xauth("alice") == b""
    assert [str(w) for w in secrets.warnings] == ["s:1: XAUTH secret is empty"]
