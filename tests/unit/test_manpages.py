"""The manual pages in man/ against the code they describe, so they cannot rot silently.

Every ipsec.conf keyword (with its twin, default, aliases, choices, limits and
"not yet supported" status), every option of ``twistd fswan``, ``whack``,
``ipsec auto`` and ``ipsec checkconfig``, and every rc code is looked up in the
page that documents it; each page must have the usual sections and render
without a single groff (or mandoc) warning.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from fswan import suites
from fswan.cli import ipsec as ipsec_cli
from fswan.cli import whack as whack_cli
from fswan.config import keywords
from fswan.config import secrets as secrets_mod
from fswan.config.ipsecconf import IMPLICIT_CONNS, parse_config
from fswan.config.keys import RSA_FIELDS
from fswan.config.values import _limit_text, format_time
from fswan.ike.dh import GROUPS
from fswan.whackproto import CTL_SUFFIX, DEFAULT_CTLBASE, NOT_YET_IMPLEMENTED, RC
from tests.fakes import MemoryLoader

MAN = Path(__file__).resolve().parents[2] / "man"
PAGES = ("ipsec.conf.5", "ipsec.secrets.5", "fswan.8", "whack.8", "ipsec_auto.8")
REQUIRED_SECTIONS = ("NAME", "SYNOPSIS", "DESCRIPTION", "FILES", "EXIT STATUS", "EXAMPLES", "SEE ALSO", "BUGS")
NOT_YET = "not yet supported"

# --------------------------------------------------------------------------- reading roff

_FONT_MACROS = {"B", "I", "SM", "SB"}
_ALTERNATING = {"BR", "RB", "BI", "IB", "IR", "RI"}
_ESCAPES = [
    (re.compile(r"\\f(\[[^\]]*\]|\(..|.)"), ""),
    (re.compile(r"\\\(lq|\\\(rq|\\\(dq"), '"'),
    (re.compile(r"\\\(mu"), "x"),
    (re.compile(r"\\\(em|\\\(en"), "-"),
    (re.compile(r"\\-"), "-"),
    (re.compile(r"\\[&c]"), ""),
    (re.compile(r"\\~"), " "),
    (re.compile(r"\\e"), "\\"),
]


def _unescape(text: str) -> str:
    for pattern, replacement in _ESCAPES:
        text = pattern.sub(lambda _match, r=replacement: r, text)
    return text


def _macro_args(text: str) -> list[str]:
    """roff's argument splitting: blanks separate, double quotes group, "" is a quote."""
    args, current, quoted, i, started = [], "", False, 0, False
    while i < len(text):
        char = text[i]
        if quoted:
            if char == '"' and text[i + 1 : i + 2] == '"':
                current += '"'
                i += 1
            elif char == '"':
                quoted = False
            else:
                current += char
        elif char == '"':
            quoted, started = True, True
        elif char in " \t":
            if started:
                args.append(current)
                current, started = "", False
        else:
            current += char
            started = True
        i += 1
    if started:
        args.append(current)
    return args


def plain_line(line: str) -> str:
    """One roff source line as the words a reader sees (macro lines reduced to their text)."""
    if line.startswith(".") or line.startswith("'"):
        name, _, rest = line[1:].partition(" ")
        if name in _FONT_MACROS:
            return _unescape(" ".join(_macro_args(rest)))
        if name in _ALTERNATING:
            return _unescape("".join(_macro_args(rest)))
        if name in ("SH", "SS"):
            return _unescape(" ".join(_macro_args(rest)))
        return ""
    return _unescape(line)


def plain(lines: list[str]) -> str:
    return " ".join(" ".join(plain_line(line) for line in lines).split())


def source(page: str) -> list[str]:
    return [line for line in (MAN / page).read_text().splitlines() if not line.startswith('.\\"')]


def sections(page: str) -> dict[str, list[str]]:
    """``.SH`` title -> its source lines."""
    found: dict[str, list[str]] = {}
    current = None
    for line in source(page):
        if line.startswith(".SH"):
            current = plain_line(line)
            found[current] = []
        elif current is not None:
            found[current].append(line)
    return found


def entries(lines: list[str]) -> list[tuple[str, str, str]]:
    """Every ``.TP`` entry as (subsection title, plain tag, plain body)."""
    found = []
    subsection = ""
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith(".SS"):
            subsection = plain_line(line)
        if line.startswith(".TP") and i + 1 < len(lines):
            tag = plain([lines[i + 1]])
            body: list[str] = []
            j = i + 2
            while j < len(lines) and not lines[j].startswith((".TP", ".SS", ".SH")):
                body.append(lines[j])
                j += 1
            found.append((subsection, tag, plain(body)))
            i = j
            continue
        i += 1
    return found


def has_word(text: str, word: str) -> bool:
    return re.search(rf"(?<![\w%-]){re.escape(word)}(?![\w-])", text) is not None


# --------------------------------------------------------------------------- every page


@pytest.mark.parametrize("page", PAGES)
def test_page_has_the_required_sections(page):
    titles = set(sections(page))
    missing = [name for name in REQUIRED_SECTIONS if name not in titles]
    assert not missing, f"{page} lacks {missing}"
    assert titles & {"OPTIONS", "KEYWORDS"}, f"{page} has neither OPTIONS nor KEYWORDS"
    assert source(page)[0].startswith(".TH ")


def _render_command(page: Path) -> list[str] | None:
    if shutil.which("groff"):
        return ["groff", "-man", "-Tutf8", "-ww", "-z", str(page)]
    if shutil.which("mandoc"):
        return ["mandoc", "-T", "lint", "-W", "warning", str(page)]
    return None


@pytest.mark.parametrize("page", PAGES)
def test_page_renders_without_warnings(page):
    command = _render_command(MAN / page)
    if command is None:
        pytest.skip("neither groff nor mandoc is installed: rendering not checked")
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stderr == "" and result.stdout.strip() == "", result.stderr + result.stdout


def test_readme_says_how_to_read_them():
    readme = (MAN / "README.md").read_text()
    assert "man -l man/ipsec.conf.5" in readme
    for page in PAGES:
        assert page in readme


@pytest.mark.parametrize("page", PAGES)
def test_examples_use_documentation_addresses_only(page):
    text = plain(source(page))
    for address in re.findall(r"(?<![\d.])(\d{1,3}(?:\.\d{1,3}){3})(?![\d.])", text):
        if address in ("0.0.0.0",) or address.startswith("127."):
            continue
        assert address.startswith(("192.0.2.", "198.51.100.", "203.0.113.")), f"{page}: {address}"


# --------------------------------------------------------------------------- ipsec.conf(5)


def _conf_entries() -> dict[str, tuple[str, str, str]]:
    """keyword -> (subsection, tag, body) for every entry under KEYWORDS."""
    found: dict[str, tuple[str, str, str]] = {}
    for subsection, tag, body in entries(sections("ipsec.conf.5")["KEYWORDS"]):
        for name in re.findall(r"([A-Za-z_][A-Za-z0-9_.+-]*)=", tag):
            assert name not in found, f"ipsec.conf.5 describes {name}= twice"
            found[name] = (subsection, tag, body)
    return found


ALL_KEYWORDS = sorted(keywords.KEYWORDS.values(), key=lambda k: k.name)


def _value_text(value) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


@pytest.mark.parametrize("keyword", ALL_KEYWORDS, ids=lambda k: k.name)
def test_every_keyword_has_an_entry_in_its_section(keyword):
    found = _conf_entries()
    assert keyword.name in found, f"ipsec.conf.5 has no entry for {keyword.name}="
    subsection = found[keyword.name][0]
    expected = {keywords.Section.SETUP: "config setup", keywords.Section.CONN: "conn",
                keywords.Section.CA: "ca"}[keyword.section]
    assert subsection.startswith(expected), f"{keyword.name}= is under {subsection!r}"


@pytest.mark.parametrize("keyword", [k for k in keywords.TABLE if k.end], ids=lambda k: k.name)
def test_end_keywords_name_both_twins(keyword):
    found = _conf_entries()
    twin = "right" + keyword.name[len("left"):]
    assert found[keyword.name][1] == found[twin][1], f"{keyword.name}= and {twin}= in different entries"


@pytest.mark.parametrize("keyword", ALL_KEYWORDS, ids=lambda k: k.name)
def test_entry_tells_support_default_aliases_choices_and_limits(keyword):
    _, tag, body = _conf_entries()[keyword.name]
    lower = body.lower()
    if keyword.supported:
        assert NOT_YET not in lower, f"{keyword.name}= is supported but marked {NOT_YET!r}"
    else:
        assert NOT_YET in lower, f"{keyword.name}= is not marked {NOT_YET!r}"
        if keyword.ok_values:
            for value in keyword.ok_values:
                assert f"{NOT_YET} except {_value_text(value)}" in lower, (keyword.name, value)
        else:
            assert f"{NOT_YET} (any value)" in lower, keyword.name
    if keyword.default:
        assert f"default: {keyword.default.lower()}" in lower, keyword.name
    for alias in keyword.aliases:
        assert has_word(body, alias), f"alias {alias} of {keyword.name}= missing"
    for word in keyword.choices or {}:
        assert has_word(f"{tag} {body}", word), f"choice {word} of {keyword.name}= missing"
    if keyword.kind is keywords.Kind.INT and keyword.minimum is not None and keyword.maximum is not None:
        assert f"from {int(keyword.minimum)} to {int(keyword.maximum)}" in body, keyword.name
    if keyword.kind is keywords.Kind.TIME:
        if keyword.minimum:
            assert format_time(keyword.minimum) in body, keyword.name
        if keyword.maximum:
            assert f"to {_limit_text(keyword.maximum)}" in body, keyword.name


def test_removed_user_and_implicit_names_are_explained():
    text = plain(source("ipsec.conf.5"))
    for name in keywords.REMOVED:
        assert has_word(text, name), name
    for prefix in keywords.USER_KEY_PREFIXES:
        assert prefix in text, prefix
    for name in IMPLICIT_CONNS:
        assert has_word(text, name), name
    assert "opportunistic encryption" in text.lower()
    assert "does not implement opportunistic encryption yet" in text


def _proposal_text(proposal) -> str:
    if isinstance(proposal, suites.IkeProposal):
        cipher = "aes" if proposal.cipher == "aes_cbc" else "3des"
        bits = str(proposal.key_bits) if proposal.cipher == "aes_cbc" else ""
        return f"{cipher}{bits}-{proposal.hash}-modp{GROUPS[proposal.group].bits}"
    if proposal.cipher.startswith("aes_gcm"):
        assert proposal.cipher == "aes_gcm_16"
        return f"aes_gcm{proposal.key_bits}"
    cipher = "aes" if proposal.cipher == "aes_cbc" else "3des"
    bits = str(proposal.key_bits) if proposal.cipher == "aes_cbc" else ""
    return f"{cipher}{bits}-{proposal.integrity}"


@pytest.mark.parametrize("name, defaults", [
    ("ike", suites.DEFAULT_IKE_PROPOSALS),
    ("esp", suites.DEFAULT_ESP_PROPOSALS),
])
def test_default_proposals_are_listed_in_order(name, defaults):
    _, _, body = _conf_entries()[name]
    assert "proposes, in this order:" in body
    body = body.split("proposes, in this order:", 1)[1]
    texts = [_proposal_text(p) for p in defaults]
    positions = [body.find(t + ",") if t != texts[-1] else body.find(t + ".") for t in texts]
    assert all(p >= 0 for p in positions), dict(zip(texts, positions))
    assert positions == sorted(positions)
    for text in texts:  # what the page lists must be what the parser accepts
        parse = suites.parse_ike if name == "ike" else suites.parse_esp
        assert parse(text)


def test_complete_examples_parse():
    lines = sections("ipsec.conf.5")["EXAMPLES"]
    blocks, current = [], None
    for line in lines:
        if line == ".nf":
            current = []
        elif line == ".fi" and current is not None:
            blocks.append("\n".join(_unescape(x) for x in current))
            current = None
        elif current is not None:
            current.append(line)
    complete = [b for b in blocks if b.startswith("version 2") or b.startswith("conn ")]
    assert complete
    for block in complete:
        if "..." in block:
            continue
        text = block if block.startswith("version") else "version 2\n" + block
        config = parse_config(text, "example.conf", loader=MemoryLoader())
        assert config.conns


# --------------------------------------------------------------------------- ipsec.secrets(5)


def test_secrets_page_covers_the_syntax():
    text = plain(source("ipsec.secrets.5"))
    for field in RSA_FIELDS:
        assert has_word(text, field), field
    for word in ("PSK", "RSA", "include", "0x", "0s", "0t", "%any", "%prompt", "PEM"):
        assert word in text, word
    assert f"{secrets_mod.MAX_INCLUDE_DEPTH} levels" in text
    warning = secrets_mod.permission_warning("F", 0o644)
    assert warning is not None and warning.split(": ", 1)[1] in text
    assert "first in the file wins" in text


# --------------------------------------------------------------------------- fswan(8)


def _options_entries(page: str) -> dict[str, str]:
    """option word (``--name``, ``-c``) -> body, from OPTIONS (and its subsections)."""
    found: dict[str, str] = {}
    for title, lines in sections(page).items():
        if not title.startswith("OPTIONS"):
            continue
        for _, tag, body in entries(lines):
            for option in re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", tag):
                found.setdefault(option, body)
    return found


def test_every_twistd_option_is_documented():
    from fswan import tap

    documented = _options_entries("fswan.8")
    text = plain(source("fswan.8"))
    for long, short, default, *_ in tap.Options.optParameters:
        assert f"--{long}" in documented, long
        if short:
            assert f"-{short}" in documented, short
        if default is not None:
            assert str(default) in documented[f"--{long}"], (long, default)
    for long, short, *_ in getattr(tap.Options, "optFlags", []):
        assert f"--{long}" in documented, long
        if short:
            assert f"-{short}" in documented, short
    assert f"{DEFAULT_CTLBASE}{CTL_SUFFIX}" in text
    assert "0600" in text


# --------------------------------------------------------------------------- whack(8), ipsec_auto(8)


def _long_options(parser: argparse.ArgumentParser) -> list[str]:
    return [s for action in parser._actions for s in action.option_strings if s.startswith("--")]


class _Captured(Exception):
    pass


def _parser_of(monkeypatch, function) -> argparse.ArgumentParser:
    """The argparse parser ``ipsec auto``/``ipsec checkconfig`` build inside the call."""

    def capture(self, *args, **kwargs):
        raise _Captured(self)

    monkeypatch.setattr(ipsec_cli._Parser, "parse_args", capture)
    with pytest.raises(_Captured) as info:
        function([])
    return info.value.args[0]


def _check_not_yet(documented: dict[str, str], option: str, command: str) -> None:
    body = documented[option].lower()
    if command in NOT_YET_IMPLEMENTED:
        assert "not supported yet" in body, f"{option} is not implemented: say so"
    else:
        assert "not supported yet" not in body, f"{option} works now: do not say it does not"


def test_every_whack_option_is_documented():
    documented = _options_entries("whack.8")
    for option in _long_options(whack_cli.build_parser()):
        assert option in documented, option
    for command in whack_cli.ORDER:
        _check_not_yet(documented, f"--{command}", command)


def test_every_rc_code_is_in_whack_page():
    text = plain(source("whack.8"))
    for rc in RC:
        assert f"{int(rc):03d} {rc.name}" in text, rc.name


def test_every_ipsec_auto_and_checkconfig_option_is_documented(monkeypatch):
    documented = _options_entries("ipsec_auto.8")
    auto = _parser_of(monkeypatch, ipsec_cli.auto)
    check = _parser_of(monkeypatch, ipsec_cli.checkconfig)
    for option in _long_options(auto) + _long_options(check):
        assert option in documented, option
    for verb, (command, _) in ipsec_cli.AUTO_VERBS.items():
        _check_not_yet(documented, f"--{verb}", command)
    text = plain(source("ipsec_auto.8"))
    assert ipsec_cli.DEFAULT_CONFIG in text and DEFAULT_CTLBASE in text


def test_every_ipsec_subcommand_is_in_ipsec_auto_page(monkeypatch):
    """What ``ipsec --help`` offers is described (or at least named) in ipsec_auto(8)."""
    text = plain(source("ipsec_auto.8"))
    for command in sorted(set(re.findall(r"^ +ipsec (\w+)", ipsec_cli.HELP, re.M))):
        assert f"ipsec {command}" in text, command
    documented = _options_entries("ipsec_auto.8")
    subcommands = []
    if hasattr(ipsec_cli, "manual"):
        subcommands.append(ipsec_cli.manual)
    if hasattr(ipsec_cli, "_listing"):
        subcommands.append(lambda argv: ipsec_cli._listing("eroute", argv))
    for function in subcommands:
        for option in _long_options(_parser_of(monkeypatch, function)):
            assert option in documented, option
