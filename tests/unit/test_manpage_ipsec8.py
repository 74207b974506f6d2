"""man/ipsec.8 (ipsec setup, verify, barf and the systemd unit) held to the same rules as
the other pages of tests/unit/test_manpages.py, and against the commands' options."""

from __future__ import annotations

import re

import pytest

from fswan.cli import barf, ipsec as ipsec_cli, setup, verify
from tests.unit import test_manpages as pages

PAGE = "ipsec.8"


def test_required_sections_render_and_addresses():
    pages.test_page_has_the_required_sections(PAGE)
    pages.test_page_renders_without_warnings(PAGE)
    pages.test_examples_use_documentation_addresses_only(PAGE)


def options_text() -> str:
    return " ".join(pages.plain(lines) for title, lines in pages.sections(PAGE).items()
                    if title.startswith("OPTIONS"))


@pytest.mark.parametrize("parser", [setup.build_parser(), verify.build_parser(), barf.build_parser()],
                         ids=["setup", "verify", "barf"])
def test_every_option_is_documented(parser):
    text = options_text()
    for action in parser._actions:
        for option in action.option_strings:
            assert re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", text), option


def test_verbs_exit_codes_and_unit():
    text = pages.plain(pages.source(PAGE))
    for verb in setup.VERBS + ("install-unit",):
        assert f"ipsec setup {verb}" in text or verb in text, verb
    for code in setup.Lsb:
        assert str(int(code)) in pages.plain(pages.sections(PAGE)["EXIT STATUS"]), code
    for option in ("--unitdir", "--stdout"):
        assert option in options_text()
    assert "Type=notify" in text and "CAP_NET_ADMIN CAP_NET_RAW CAP_NET_BIND_SERVICE" in text
    assert setup.DEFAULT_UNITDIR in text


def test_listed_in_the_man_readme_and_named_by_ipsec_help():
    readme = (pages.MAN / "README.md").read_text()
    assert f"`{PAGE}`" in readme
    for command in ("setup", "verify", "barf"):
        assert f"ipsec {command}" in ipsec_cli.HELP
        assert f"ipsec {command}" in pages.plain(pages.source("ipsec_auto.8"))
