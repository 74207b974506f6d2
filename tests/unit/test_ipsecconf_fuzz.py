"""Property tests: the parser never fails with anything but ConfigErrors, on any text.

Inputs are arbitrary text, lines built from the real grammar with random
values, mutated copies of realistic configs, and include trees that loop.
Whatever parses must also render (dict + checkconfig) without errors.
"""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fswan.config import keywords
from fswan.config.errors import ConfigError, ConfigErrors
from fswan.config.ipsecconf import parse_config
from fswan.config.render import config_to_dict, format_checkconfig
from tests.fakes import MemoryLoader
from tests.testkeys import WEST_0S
from tests.unit.test_ipsecconf import FREESWAN_2X, LIBRESWAN

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class DictLoader(MemoryLoader):
    """In-memory files; ``unreadable.conf`` exists but cannot be read."""

    def __init__(self, files: dict[str, str]) -> None:
        super().__init__(files, unreadable=("unreadable.conf",))


def check(text: str, files: dict[str, str] | None = None) -> None:
    """The property: parse succeeds (and renders) or raises ConfigErrors with located errors."""
    try:
        config = parse_config(text, "ipsec.conf", DictLoader(files or {}))
    except ConfigErrors as exc:
        assert exc.errors
        for error in exc.errors:
            assert isinstance(error, ConfigError) and error.message
            assert error.location is not None
        return
    json.dumps(config_to_dict(config), allow_nan=False)
    assert all(isinstance(line, str) for line in format_checkconfig(config))


ALL_NAMES = sorted(
    set(keywords.names(keywords.Section.CONN)) | set(keywords.names(keywords.Section.SETUP))
)
VALUE_POOL = [
    "", "yes", "no", "maybe", "%forever", "0", "1", "-1", "0x100", "0xff", "0x", "8h", "25h", "1.5h", "9m",
    "10.0.0.1", "10.0.0.0/24", "10.0.0.1/24", "2001:db8::/32", "::1", "%defaultroute", "%any", "%any6",
    "%opportunistic", "%group", "@host", "a@b", "%myid", "0sAQID", "0sAQM=", "0x0102", "0t", "%dns",
    "17/1701", "udp/l2tp", "tcp/%any", "ondemand", "psk", "secret|rsasig", "clear", "restart", "auto",
    "aes128-sha1;modp2048", "a b", '"quoted value"', '"unterminated', "x # comment", "#", "net", "a",
    "ipsec0=eth0", "daemon.error", "999999999999999999999999", "1e400", "\x00", "é", "%", "/", "=",
]
CONN_NAMES = ["a", "b", "net", "%default", "1bad", "x.y", ""]

value = st.one_of(st.sampled_from(VALUE_POOL), st.text(max_size=20))
keyword_name = st.one_of(st.sampled_from(ALL_NAMES), st.sampled_from(["x-user", "X_k", "lefsubnet", "also",
                                                                      "alsoflip", "plutoload"]))
indent = st.sampled_from(["  ", "\t", " ", ""])
param_line = st.builds(lambda i, k, s, v: f"{i}{k}{s}={v}", indent, keyword_name,
                       st.sampled_from(["", " "]), value)
header_line = st.one_of(
    st.builds(lambda n: f"conn {n}", st.sampled_from(CONN_NAMES)),
    st.just("config setup"),
    st.sampled_from(["version 2", "version 1", "version 2.0", "version"]),
    st.builds(lambda p: f"include {p}", st.sampled_from(["a.conf", "*.conf", "d/*.conf", "nothere.conf",
                                                          "unreadable.conf", '"a.conf"', ""])),
    st.sampled_from(["also=a b", "  also=a", "  alsoflip=b", "  also=net", "# comment", "", "   "]),
)
line = st.one_of(param_line, header_line, st.text(max_size=30))
lines_text = st.lists(line, max_size=25).map("\n".join)


@FUZZ
@given(st.text(max_size=400))
def test_arbitrary_text(text):
    check(text)


@FUZZ
@given(st.text(alphabet=' \t\n\r=#"%/.:-_xaleftrightconn setupincludeversion2@*?[0123', max_size=300))
def test_config_alphabet_text(text):
    check(text)


@FUZZ
@given(lines_text)
def test_grammar_lines(text):
    check(text)


@FUZZ
@given(lines_text, st.dictionaries(st.sampled_from(["a.conf", "b.conf", "d/c.conf", "unreadable.conf"]),
                                   lines_text, max_size=4))
def test_grammar_lines_with_includes(text, files):
    check(text, files)


def _mutate(source: str, data: st.DataObject) -> str:
    lines = source.split("\n")
    for _ in range(data.draw(st.integers(1, 6), label="mutations")):
        if not lines:
            break
        index = data.draw(st.integers(0, len(lines) - 1), label="line")
        op = data.draw(st.sampled_from(["delete", "duplicate", "swap", "char", "insert", "indent",
                                        "dedent", "value", "truncate"]), label="op")
        current = lines[index]
        if op == "delete":
            del lines[index]
        elif op == "duplicate":
            lines.insert(index, current)
        elif op == "swap":
            other = data.draw(st.integers(0, len(lines) - 1), label="other")
            lines[index], lines[other] = lines[other], current
        elif op == "char" and current:
            pos = data.draw(st.integers(0, len(current) - 1), label="pos")
            char = data.draw(st.characters(), label="char")
            lines[index] = current[:pos] + char + current[pos + 1:]
        elif op == "insert":
            lines.insert(index, data.draw(line, label="new line"))
        elif op == "indent":
            lines[index] = "  " + current
        elif op == "dedent":
            lines[index] = current.lstrip()
        elif op == "value" and "=" in current:
            lines[index] = current.split("=", 1)[0] + "=" + data.draw(value, label="value")
        elif op == "truncate" and current:
            lines[index] = current[: data.draw(st.integers(0, len(current) - 1), label="cut")]
    return "\n".join(lines)


@FUZZ
@given(st.sampled_from([FREESWAN_2X, LIBRESWAN.replace("ike-frag", "ike_frag")]), st.data())
def test_mutated_realistic_configs(source, data):
    check(_mutate(source, data))


# --------------------------------------------------------------------------- valid configs round-trip

VALID_VALUES = {
    "type": ["tunnel", "transport", "passthrough", "drop", "reject"],
    "auto": ["ignore", "add", "route", "start", "ondemand", "up"],
    "authby": ["secret", "rsasig", "secret|rsasig", "never", "psk"],
    "pfs": ["yes", "no"],
    "rekey": ["yes", "no"],
    "keylife": ["1h", "8h", "90m", "3600", "1.5h", "24h"],
    "ikelifetime": ["1h", "8h", "30m", "1000s"],
    "rekeymargin": ["9m", "1m", "30s"],
    "rekeyfuzz": ["100%", "0%", "50"],
    "keyingtries": ["%forever", "0", "3"],
    "failureshunt": ["none", "passthrough", "drop", "reject"],
    "dpddelay": ["30", "10s"],
    "dpdtimeout": ["120", "2m"],
    "dpdaction": ["clear", "hold", "restart"],
    "encapsulation": ["yes", "no", "auto"],
    "aggrmode": ["yes", "no"],
    "ike": ["aes128-sha1;modp2048", "3des-md5-modp1024"],
    "esp": ["aes128-sha1", "3des-md5-96"],
    "compress": ["yes", "no"],
    "leftsubnet": ["10.1.0.0/16", "10.1.2.0/255.255.255.0", "0.0.0.0/0"],
    "rightsubnet": ["10.2.0.0/16", "192.168.0.0/24"],
    "leftid": ["@west", "west@example.com", "192.0.2.1", "%myid"],
    "rightid": ["@east", "%any"],
    "leftnexthop": ["%defaultroute", "192.0.2.254", "%direct"],
    "leftprotoport": ["17/1701", "udp/l2tp", "6"],
    "rightrsasigkey": ["%none", "%dnsonload", WEST_0S],
    "leftfirewall": ["yes", "no"],
    "leftikeport": ["500", "4500"],
    "x-note": ["hello", '"two words"'],
}


@st.composite
def valid_config(draw):
    lines = ["version 2", "config setup", "    uniqueids=" + draw(st.sampled_from(["yes", "no"]))]
    names = draw(st.lists(st.sampled_from(["a", "b", "c", "net.1", "road-2"]), min_size=1, max_size=4,
                          unique=True))
    for name in names:
        lines += [f"conn {name}", "    left=" + draw(st.sampled_from(["192.0.2.1", "%defaultroute"])),
                  "    right=" + draw(st.sampled_from(["198.51.100.1", "%any", "%opportunistic"]))]
        chosen = draw(st.lists(st.sampled_from(sorted(VALID_VALUES)), unique=True, max_size=10))
        for key in chosen:
            lines.append(f"    {key}=" + draw(st.sampled_from(VALID_VALUES[key])))
    return "\n".join(lines) + "\n"


@FUZZ
@given(valid_config())
def test_valid_configs_round_trip_through_checkconfig(text):
    first = parse_config(text, "a.conf")
    second = parse_config("\n".join(format_checkconfig(first)) + "\n", "b.conf")

    def comparable(config):
        data = config_to_dict(config)
        for conn in data["conns"].values():
            del conn["settings"], conn["location"]
        del data["setup"]["settings"], data["files"], data["warnings"], data["unsupported"]
        for item in [data["setup"], *data["conns"].values()]:
            for entry in item["unsupported"]:
                del entry["location"]
        return data

    assert comparable(second) == comparable(first)
