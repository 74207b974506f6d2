"""The ipsec.conf parser: syntax, keywords, also=/%default/include, errors with file:line."""

from __future__ import annotations

import textwrap
from dataclasses import fields
from ipaddress import ip_address, ip_network

import pytest

from fswan.config import keywords
from tests.fakes import MemoryLoader as FakeLoader
from tests.testkeys import WEST_0S
from fswan.config.errors import ConfigError, ConfigErrors, Location
from fswan.config.ipsecconf import load_config, parse_config
from fswan.config.keywords import Section
from fswan.config.model import (
    Auto,
    AuthBy,
    Config,
    Connection,
    ConnType,
    DpdAction,
    Encapsulation,
    End,
    FailureShunt,
    Fragmentation,
    Ikev2Policy,
    SetupConfig,
)


def conf(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def parse(text: str, files: dict[str, str] | None = None, name: str = "ipsec.conf") -> Config:
    return parse_config(conf(text), name, FakeLoader(files))


def errors(text: str, files: dict[str, str] | None = None, name: str = "ipsec.conf") -> list[str]:
    with pytest.raises(ConfigErrors) as info:
        parse(text, files, name)
    return [str(e) for e in info.value.errors]


def one_conn(body: str, name: str = "net") -> str:
    """A minimal valid conn with ``body`` lines added."""
    extra = textwrap.indent(textwrap.dedent(body).strip("\n"), "    ")
    return f"version 2\nconn {name}\n    left=10.0.0.1\n    right=10.0.0.2\n{extra}\n"


def conn(body: str, name: str = "net"):
    return parse(one_conn(body, name)).conns[name]


def conn_errors(body: str) -> list[str]:
    return errors(one_conn(body))


# --------------------------------------------------------------------------- syntax


class TestSyntax:
    def test_minimal(self):
        config = parse("""
            version 2
            config setup
                interfaces=%defaultroute
            conn net
                left=10.0.0.1
                right=10.0.0.2
        """)
        assert config.files == ("ipsec.conf",)
        assert config.warnings == ()
        assert list(config.conns) == ["net"]
        net = config.conns["net"]
        assert net.left.host == "10.0.0.1"
        assert net.location == Location("ipsec.conf", 4)
        assert net.settings["right"] == ("10.0.0.2", Location("ipsec.conf", 6))

    def test_version_2_0_and_comments(self):
        config = parse("""
            # leading comment

            version\t2.0\t# conforms to the second version
            conn net   # trailing comment on a header
                left=10.0.0.1   # a comment
              # an indented comment line
                right=10.0.0.2
        """)
        assert config.warnings == ()
        assert config.conns["net"].right.host == "10.0.0.2"

    def test_missing_version_is_a_warning(self):
        config = parse("""
            conn net
                left=10.0.0.1
                right=10.0.0.2
        """)
        assert [str(w) for w in config.warnings] == [
            "ipsec.conf:1: no 'version 2' line at the top; reading the file as FreeS/WAN 2.x"
        ]

    def test_empty_file_warns(self):
        config = parse_config("", "ipsec.conf")
        assert config.conns == {}
        assert len(config.warnings) == 1

    def test_other_versions_are_errors(self):
        assert errors("version 1\n") == [
            "ipsec.conf:1: unsupported version '1': fswan reads FreeS/WAN 2.x files (version 2)"
        ]
        assert errors("version 2\nversion 2\n") == ["ipsec.conf:2: version must be the first line of the file"]

    def test_whitespace_around_equals_and_tabs(self):
        net = parse("version 2\nconn net\n\tleft = 10.0.0.1\n  right =10.0.0.2\n\tpfs= no\n").conns["net"]
        assert (net.left.host, net.right.host, net.pfs) == ("10.0.0.1", "10.0.0.2", False)

    def test_crlf(self):
        net = parse_config("version 2\r\nconn net\r\n  left=10.0.0.1\r\n  right=10.0.0.2\r\n", "x").conns["net"]
        assert net.right.host == "10.0.0.2"

    def test_quoted_values_keep_spaces_and_hashes(self):
        net = conn("""
            leftupdown="/usr/local/bin/updown --tag #1"   # comment after the quote
            x-note="two  spaces"
            x-hash=a#b
        """)
        assert net.left.updown == "/usr/local/bin/updown --tag #1"
        assert net.user_keys == {"x-note": "two  spaces", "x-hash": "a#b"}

    def test_hash_without_space_is_part_of_value(self):
        assert conn("x-key=abc#def #comment").user_keys == {"x-key": "abc#def"}

    def test_empty_value_means_default(self):
        net = conn("""
            keylife=
            pfs=""
        """)
        assert net.keylife == 8 * 3600 and net.pfs is True
        assert net.settings["keylife"][0] == ""
        assert net.unsupported == ()

    @pytest.mark.parametrize(
        "text, message",
        [
            ("version 2\n  left=1.2.3.4\n", "ipsec.conf:2: parameter outside a section"),
            ("version 2\nconn a\nleft=1.2.3.4\n", "ipsec.conf:3: parameter must be indented (start the line with a space or tab)"),
            ('version 2\nconn a\n  x-a="open\n', "ipsec.conf:3: unterminated quote"),
            ("version 2\nconn 1net\n", "ipsec.conf:2: bad conn name '1net': a name starts with a letter and uses "
             "letters, digits, '.', '_' and '-' (or is %default or %oedefault)"),
            ("version 2\nconn a b\n", "ipsec.conf:2: bad conn name 'a b': a name starts with a letter and uses "
             "letters, digits, '.', '_' and '-' (or is %default or %oedefault)"),
            ("version 2\nconn\n", "ipsec.conf:2: bad conn name '': a name starts with a letter and uses "
             "letters, digits, '.', '_' and '-' (or is %default or %oedefault)"),
            ("version 2\nconfig other\n", "ipsec.conf:2: unknown section 'config other': the only config "
             "section is 'config setup'"),
            ("version 2\nsetup\n", "ipsec.conf:2: unexpected 'setup' at the start of a line: expected "
             "'config setup', 'conn NAME', 'include FILE' or an indented keyword=value"),
            ("version 2\nconn a\n  left\n", "ipsec.conf:3: expected keyword=value, not 'left'"),
            ("version 2\nconn a\n  =1\n", "ipsec.conf:3: missing keyword before '='"),
            ("version 2\nconn a\n  le ft=1\n", "ipsec.conf:3: bad keyword 'le ft' in conn \"a\""),
            ('version 2\nconn a\n  x-a="q" junk\n', "ipsec.conf:3: unexpected text 'junk' after the closing quote"),
        ],
    )
    def test_syntax_errors(self, text, message):
        assert message in errors(text)

    def test_bad_sections_do_not_cascade(self):
        # the lines under a broken header are skipped, not reported again
        assert errors("version 2\nconn 9x\n  bogus=1\n  left=x\n") == [
            "ipsec.conf:2: bad conn name '9x': a name starts with a letter and uses letters, digits, "
            "'.', '_' and '-' (or is %default or %oedefault)"
        ]

    def test_conn_names(self):
        config = parse("""
            version 2
            conn a.b_c-d
                left=10.0.0.1
                right=10.0.0.2
        """)
        assert list(config.conns) == ["a.b_c-d"]

    def test_errors_are_collected_in_file_order(self):
        found = errors("""
            version 2
            conn a
                pfs=maybe
                lefsubnet=10.0.0.0/8
                auto=add
            conn b
                left=10.0.0.1
                right=10.0.0.2
                keylife=forever
        """)
        assert found == [
            "ipsec.conf:2: conn \"a\" has no left= (required)",
            "ipsec.conf:2: conn \"a\" has no right= (required)",
            "ipsec.conf:3: bad value 'maybe' for pfs=: expected yes or no",
            "ipsec.conf:4: unknown keyword 'lefsubnet' in conn \"a\"; did you mean 'leftsubnet'?",
            "ipsec.conf:9: bad value 'forever' for keylife=: expected a time such as 30s, 9m, 1.5h, 8h, "
            "2d or plain seconds",
        ]

    def test_config_errors_str_lists_all(self):
        with pytest.raises(ConfigErrors) as info:
            parse("version 2\nconn a\n  pfs=maybe\n  left=1.2.3.4\n  right=1.2.3.5\n  rekey=often\n")
        assert str(info.value).splitlines() == [
            "ipsec.conf:3: bad value 'maybe' for pfs=: expected yes or no",
            "ipsec.conf:6: bad value 'often' for rekey=: expected yes or no",
        ]
        assert isinstance(info.value, ConfigError)


# --------------------------------------------------------------------------- keywords and errors


class TestKeywordErrors:
    def test_unknown_with_suggestion(self):
        assert conn_errors("lefsubnet=10.0.0.0/24") == [
            "ipsec.conf:5: unknown keyword 'lefsubnet' in conn \"net\"; did you mean 'leftsubnet'?"
        ]

    def test_unknown_without_suggestion(self):
        assert conn_errors("frobnicate=yes") == ["ipsec.conf:5: unknown keyword 'frobnicate' in conn \"net\""]

    def test_keywords_ignore_case(self):
        # Openswan and Libreswan match keywords without regard to case
        assert conn("PFS=no\nLeftID=@gw.example.com").pfs is False
        assert conn("LeftID=@gw.example.com").left.id == "@gw.example.com"

    def test_unknown_in_setup(self):
        assert errors("version 2\nconfig setup\n  uniqueid=yes\n") == [
            "ipsec.conf:3: unknown keyword 'uniqueid' in config setup; did you mean 'uniqueids'?"
        ]

    def test_keyword_in_the_wrong_section(self):
        assert errors("version 2\nconfig setup\n  pfs=yes\n") == [
            "ipsec.conf:3: keyword 'pfs' belongs in a conn section, not in config setup"
        ]
        assert conn_errors("uniqueids=no") == [
            "ipsec.conf:5: keyword 'uniqueids' belongs in config setup, not in conn \"net\""
        ]

    def test_removed_1x_keywords(self):
        assert errors("version 2\nconfig setup\n  plutoload=%search\n") == [
            "ipsec.conf:3: keyword 'plutoload' was removed in FreeS/WAN 2.0: set auto=add (or route/start) "
            "in each conn instead"
        ]

    def test_duplicate_keyword_later_wins_with_a_warning(self):
        config = parse(one_conn("pfs=yes\npfs=no"))
        assert config.conns["net"].pfs is False
        assert [str(w) for w in config.warnings] == [
            "ipsec.conf:6: duplicate 'pfs=' in conn \"net\": overriding earlier value (line 5)"
        ]

    def test_duplicate_through_alias(self):
        config = parse(one_conn("lifetime=1h\nkeylife=2h"))
        assert config.conns["net"].keylife == 7200
        assert [str(w) for w in config.warnings] == [
            "ipsec.conf:6: duplicate 'keylife=' in conn \"net\": overriding earlier value (line 5) "
            "(set as 'lifetime=')"
        ]

    def test_duplicate_user_key(self):
        config = parse(one_conn("x-a=1\nx-a=2"))
        assert config.conns["net"].user_keys == {"x-a": "2"}
        assert [str(w) for w in config.warnings] == [
            "ipsec.conf:6: duplicate 'x-a=' in conn \"net\": overriding earlier value (line 5)"
        ]

    def test_duplicate_in_another_file_names_it(self):
        config = parse("version 2\nconfig setup\n  uniqueids=no\ninclude more.conf\n",
                       {"more.conf": "config setup\n  uniqueids=yes\n"})
        assert config.setup.uniqueids is True
        assert [str(w) for w in config.warnings] == [
            "more.conf:2: duplicate 'uniqueids=' in config setup: overriding earlier value (ipsec.conf:3)"
        ]

    def test_duplicate_conn(self):
        assert errors("""
            version 2
            conn net
                left=10.0.0.1
                right=10.0.0.2
            conn net
                left=10.0.0.3
        """) == ['ipsec.conf:5: duplicate conn "net" (first defined at ipsec.conf:2)']

    def test_setup_sections_merge(self):
        config = parse("version 2\nconfig setup\n  uniqueids=no\nconfig setup\n  plutowait=yes\n")
        assert (config.setup.uniqueids, config.setup.plutowait) == (False, True)
        config = parse("version 2\nconfig setup\n  uniqueids=no\nconfig setup\n  uniqueids=yes\n")
        assert config.setup.uniqueids is True
        assert [str(w) for w in config.warnings] == [
            "ipsec.conf:5: duplicate 'uniqueids=' in config setup: overriding earlier value (line 3)"
        ]

    def test_left_and_right_required(self):
        assert errors("version 2\nconn net\n  left=10.0.0.1\n  auto=add\n") == [
            'ipsec.conf:2: conn "net" has no right= (required)'
        ]
        assert errors("version 2\nconn net\n  right=10.0.0.1\n  auto=start\n") == [
            'ipsec.conf:2: conn "net" has no left= (required)'
        ]

    def test_left_and_right_not_required_for_conns_not_loaded(self):
        # auto=ignore (the default) is not loaded on its own; a fragment only used through also=
        # gets auto= from %default but is not checked alone either
        config = parse("""
            version 2
            conn %default
                auto=add
            conn half
                left=10.0.0.1
                auto=ignore
            conn base
                rightsubnet=10.9.0.0/16
            conn full
                also=base
                left=10.0.0.1
                right=10.0.0.2
        """)
        assert config.conns["half"].right.host == ""
        assert config.conns["full"].right.subnet == ip_network("10.9.0.0/16")

    def test_bad_left_does_not_also_say_missing(self):
        assert errors("version 2\nconn net\n  left=nowhere!\n  right=10.0.0.2\n  auto=add\n") == [
            "ipsec.conf:3: bad value 'nowhere!' for left=: expected an IP address, a host name, %defaultroute, "
            "%any, %any6, %opportunistic, %group or %opportunisticgroup"
        ]

    def test_placeholders_are_errors(self):
        assert errors("version 2\nconn net\n  left=<Public IP>\n  right=10.0.0.2\n")[0].startswith(
            "ipsec.conf:3: bad value '<Public IP>' for left=: expected an IP address, a host name")

    def test_families_must_match(self):
        assert conn_errors("leftsubnet=10.0.0.0/8\nrightsubnet=2001:db8::/32") == [
            'ipsec.conf:2: conn "net": leftsubnet=10.0.0.0/8 and rightsubnet=2001:db8::/32 are different '
            "address families"
        ]
        assert errors("version 2\nconn v\n  left=10.0.0.1\n  right=2001:db8::1\n") == [
            'ipsec.conf:2: conn "v": left=10.0.0.1 and right=2001:db8::1 are different address families'
        ]


# --------------------------------------------------------------------------- keyword families


class TestKeywordFamilies:
    def test_defaults(self):
        net = conn("")
        assert net.type is ConnType.TUNNEL and net.auto is Auto.IGNORE and net.authby is AuthBy.RSASIG
        assert (net.pfs, net.rekey, net.compress, net.disablearrivalcheck) == (True, True, False, False)
        assert (net.keylife, net.rekeymargin, net.rekeyfuzz, net.ikelifetime) == (28800, 540, 100, 3600)
        assert net.keyingtries == 0 and net.failureshunt is FailureShunt.NONE
        assert net.auth == "esp" and net.keyexchange == "ike"
        assert net.dpddelay is None and net.dpdtimeout == 120 and net.dpdaction is DpdAction.HOLD
        assert net.encapsulation is Encapsulation.AUTO and net.aggrmode is False
        left = net.left
        assert (left.subnet, left.id, left.nexthop, left.rsasigkey, left.updown) == (
            None, None, "%direct", "%dnsondemand", None)
        assert left.ikeport == 500 and left.firewall is False
        assert net.unsupported == ()

    def test_booleans(self):
        net = conn("pfs=no\nrekey=no\ndisablearrivalcheck=yes\nleftfirewall=yes\naggrmode=yes")
        assert (net.pfs, net.rekey, net.disablearrivalcheck, net.left.firewall, net.aggrmode) == (
            False, False, True, True, True)
        assert conn_errors("rekey=1") == ["ipsec.conf:5: bad value '1' for rekey=: expected yes or no"]

    def test_times(self):
        net = conn("keylife=1.5h\nrekeymargin=3m\nikelifetime=30m\ndpddelay=30\ndpdtimeout=2m")
        assert (net.keylife, net.rekeymargin, net.ikelifetime, net.dpddelay, net.dpdtimeout) == (
            5400, 180, 1800, 30, 120)
        assert conn("dpddelay=0").dpddelay is None

    def test_lifetime_limits(self):
        assert conn("keylife=24h").keylife == 86400
        assert conn("ikelifetime=24h").ikelifetime == 86400
        # above pluto's limit: clamped with a warning (Libreswan)
        config = parse(one_conn("keylife=25h\nikelifetime=2d"))
        assert (config.conns["net"].keylife, config.conns["net"].ikelifetime) == (86400, 86400)
        assert [str(w) for w in config.warnings] == [
            "ipsec.conf:5: keylife=25h is more than the maximum 24h (pluto's limit); using 24h",
            "ipsec.conf:6: ikelifetime=2d is more than the maximum 24h (pluto's limit); using 24h",
        ]
        assert conn_errors("keylife=0") == ["ipsec.conf:5: bad value '0' for keylife=: the minimum is 1s"]

    def test_rekeyfuzz_and_keyingtries(self):
        net = conn("rekeyfuzz=50%\nkeyingtries=%forever")
        assert (net.rekeyfuzz, net.keyingtries) == (50, 0)
        assert conn("keyingtries=3").keyingtries == 3
        assert conn_errors("rekeyfuzz=lots") == [
            "ipsec.conf:5: bad value 'lots' for rekeyfuzz=: expected a percentage such as 100%"
        ]
        assert "for keyingtries=: expected a number of tries or %forever" in conn_errors("keyingtries=x")[0]

    def test_enums(self):
        net = conn("type=transport\nauto=route\nauthby=secret|rsasig\nfailureshunt=drop\ndpdaction=restart")
        assert net.type is ConnType.TRANSPORT and net.auto is Auto.ROUTE
        assert net.authby is AuthBy.SECRET_OR_RSASIG and net.failureshunt is FailureShunt.DROP
        assert net.dpdaction is DpdAction.RESTART
        assert conn_errors("type=tunel") == [
            "ipsec.conf:5: bad value 'tunel' for type=: expected tunnel, transport, passthrough, drop, reject or pass"
        ]
        assert conn_errors("dpdaction=explode") == [
            "ipsec.conf:5: bad value 'explode' for dpdaction=: expected clear, hold, restart, none or restart_by_peer"
        ]

    @pytest.mark.parametrize(
        "text, expected",
        [("auto=ondemand", Auto.ROUTE), ("auto=up", Auto.START), ("auto=start", Auto.START),
         ("auto=add", Auto.ADD), ("auto=manual", Auto.MANUAL)],
    )
    def test_libreswan_auto(self, text, expected):
        assert conn(text).auto is expected

    @pytest.mark.parametrize(
        "word, expected",
        [("psk", AuthBy.SECRET), ("secret", AuthBy.SECRET), ("rsa", AuthBy.RSASIG), ("rsasig", AuthBy.RSASIG),
         ("rsasig|secret", AuthBy.SECRET_OR_RSASIG), ("never", AuthBy.NEVER)],
    )
    def test_authby(self, word, expected):
        assert conn(f"authby={word}").authby is expected

    @pytest.mark.parametrize("lines, policy", [
        ("", Ikev2Policy.PERMIT),
        ("keyexchange=ike", Ikev2Policy.PERMIT),
        ("keyexchange=ikev1", Ikev2Policy.NEVER),
        ("keyexchange=ikev2", Ikev2Policy.INSIST),
        ("ikev2=never", Ikev2Policy.NEVER),
        ("ikev2=no", Ikev2Policy.NEVER),
        ("ikev2=permit", Ikev2Policy.PERMIT),
        ("ikev2=propose", Ikev2Policy.PROPOSE),
        ("ikev2=yes", Ikev2Policy.PROPOSE),
        ("ikev2=insist", Ikev2Policy.INSIST),
        ("ikev2=always", Ikev2Policy.INSIST),
        # ikev2= decides; these agree with keyexchange=
        ("keyexchange=ikev1\nikev2=permit", Ikev2Policy.PERMIT),
        ("keyexchange=ikev2\nikev2=propose", Ikev2Policy.PROPOSE),
        ("keyexchange=ike\nikev2=insist", Ikev2Policy.INSIST),
        ("keyexchange=ike\nikev2=never", Ikev2Policy.NEVER),
    ])
    def test_ike_version_policy(self, lines, policy):
        net = conn(lines)
        assert net.ikev2 is policy and net.unsupported == ()
        assert net.initiates_ikev2 is (policy in (Ikev2Policy.PROPOSE, Ikev2Policy.INSIST))
        assert net.accepts_ikev1 is (policy is not Ikev2Policy.INSIST)
        assert net.accepts_ikev2 is (policy is not Ikev2Policy.NEVER)

    def test_keyexchange_is_kept_as_written(self):
        assert conn("keyexchange=ikev1").keyexchange == "ikev1"
        assert conn("").keyexchange == "ike"

    @pytest.mark.parametrize("lines, word, exchange", [
        ("keyexchange=ikev1\nikev2=insist", "insist", "ikev1"),
        ("keyexchange=ikev1\nikev2=yes", "propose", "ikev1"),
        ("keyexchange=ikev2\nikev2=never", "never", "ikev2"),
        ("keyexchange=ikev2\nikev2=permit", "permit", "ikev2"),
    ])
    def test_contradicting_ike_versions_are_an_error(self, lines, word, exchange):
        assert conn_errors(lines) == [
            f"ipsec.conf:6: ikev2={word} contradicts keyexchange={exchange} (set at ipsec.conf:5)"]

    def test_contradiction_through_default(self):
        text = "version 2\nconn %default\n  keyexchange=ikev1\nconn net\n  left=10.0.0.1\n" \
               "  right=10.0.0.2\n  ikev2=insist\n"
        with pytest.raises(ConfigErrors) as info:
            parse(text)
        assert [str(e) for e in info.value.errors] == [
            "ipsec.conf:7: ikev2=insist contradicts keyexchange=ikev1 (set at ipsec.conf:3)"]

    def test_strongswan_ikev2_conn_loads(self):
        net = conn("keyexchange=ikev2\nike=aes256-sha256-modp2048\nesp=aes256-sha256\nauthby=secret\n"
                   "mobike=no")
        assert net.ikev2 is Ikev2Policy.INSIST and net.authby is AuthBy.SECRET
        assert net.ike == "aes256-sha256-modp2048" and net.esp == "aes256-sha256"
        assert net.unsupported == ()

    def test_mobike(self):
        assert conn("mobike=no").unsupported == ()
        assert conn("mobike=yes").unsupported == ("mobike",)

    def test_hosts_and_nexthop(self):
        config = parse("""
            version 2
            conn road
                left=%defaultroute
                right=%any
            conn road6
                left=2001:DB8::1
                right=%any6
                rightnexthop=2001:db8::ff
            conn oe
                left=10.0.0.1
                leftnexthop=%defaultroute
                right=%opportunisticgroup
        """)
        road, road6, oe = config.conns["road"], config.conns["road6"], config.conns["oe"]
        assert road.left.host == "%defaultroute" and road.left.nexthop == "%defaultroute"
        assert road.right.is_wildcard and road.right.nexthop == "%direct"
        assert road6.left.host == "2001:db8::1" and road6.right.host == "%any"
        assert road6.right.nexthop == "2001:db8::ff"
        assert oe.left.nexthop == "%defaultroute" and oe.right.host == "%opportunisticgroup"

    def test_subnets(self):
        net = conn("leftsubnet=10.1.0.0/255.255.0.0\nrightsubnet=192.168.7.0/24")
        assert net.left.subnet == ip_network("10.1.0.0/16") and net.right.subnet == ip_network("192.168.7.0/24")
        config = parse(one_conn("leftsubnet=10.0.0.1/24"))
        assert config.conns["net"].left.subnet == ip_network("10.0.0.0/24")
        assert [str(w) for w in config.warnings] == [
            "ipsec.conf:5: leftsubnet=10.0.0.1/24 has host bits set; using 10.0.0.0/24"
        ]
        assert conn_errors("rightsubnet=10.0.0.0/40")[0].startswith(
            "ipsec.conf:5: bad value '10.0.0.0/40' for rightsubnet=: expected a subnet")

    def test_ids(self):
        net = conn("leftid=@gw.example.com\nrightid=road@example.com")
        assert (net.left.id, net.right.id) == ("@gw.example.com", "road@example.com")
        assert conn("leftid=%myid").left.id == "%myid"
        # a bare name is resolved to an address ID (FreeS/WAN); kept as written here
        assert conn("leftid=gw.example.com").left.id == "gw.example.com"
        assert conn_errors("leftid=gw example")[0].startswith(
            "ipsec.conf:5: bad value 'gw example' for leftid=: bad ID 'gw example': expected an IP address")

    def test_rsa_keys(self):
        key = WEST_0S
        net = conn(f"leftrsasigkey={key}\nrightrsasigkey=%dns\nleftrsasigkey2=%none")
        assert (net.left.rsasigkey, net.right.rsasigkey, net.left.rsasigkey2) == (key, "%dns", "%none")
        assert "for rightrsasigkey=: bad RSA public key: invalid base64" in conn_errors("rightrsasigkey=0sAQ@#")[0]

    def test_manual_keying(self):
        net = conn("""
            auto=manual
            spi=0x200
            spibase=0x300
            esp=3des-md5-96
            espenckey=0x01234567_89abcdef_02468ace_13579bdf_12345678_9abcdef0
            espauthkey=0x12345678_9abcdef0_2468ace0_13579bdf
            leftespspi=0x400
            rightespspi=0x401
            leftespenckey=0x0102
            espreplay_window=2048
        """)
        assert net.auto is Auto.MANUAL and net.spi == 0x200 and net.spibase == 0x300
        assert net.esp == "3des-md5-96" and net.espreplay_window == 2048
        assert net.espenckey.startswith("0x0123") and net.espauthkey.startswith("0x1234")
        assert (net.left.espspi, net.right.espspi, net.left.espenckey) == (0x400, 0x401, "0x0102")
        assert "0x01234567" not in repr(net)
        assert conn_errors("spi=0x99") == [
            "ipsec.conf:5: bad value '0x99' for spi=: SPIs below 0x100 are reserved: expected 0x100 to 0xffffffff"
        ]
        assert conn_errors("espreplay_window=4096") == [
            "ipsec.conf:5: bad value '4096' for espreplay_window=: out of range: expected an integer from 0 to 2048"
        ]
        assert "for espenckey=: odd number of hex digits (3) after 0x" in conn_errors("espenckey=0x123")[0]

    def test_protoport_sourceip_ikeport(self):
        net = conn("leftprotoport=17/1701\nrightprotoport=udp/%any\nleftsourceip=10.9.9.9\nrightikeport=4500")
        assert (net.left.protoport, net.right.protoport) == ((17, 1701), (17, 0))
        assert net.left.sourceip == ip_address("10.9.9.9") and net.right.ikeport == 4500

    def test_algorithms_and_libreswan_aliases(self):
        net = conn("""
            ike=aes256-sha1;modp2048,3des-sha1;modp1024
            phase2alg=aes256-sha1
            aggressive=yes
            salifetime=2h
            rekeystart=4m
            rekeytries=5
        """)
        assert net.ike == "aes256-sha1;modp2048,3des-sha1;modp1024" and net.esp == "aes256-sha1"
        assert net.aggrmode is True and net.keylife == 7200 and net.rekeymargin == 240
        assert net.keyingtries == 5
        assert set(net.settings) >= {"esp", "aggrmode", "keylife", "rekeymargin", "keyingtries"}
        assert conn("lifetime=30m").keylife == 1800

    def test_encapsulation_and_forceencaps(self):
        assert conn("encapsulation=yes").encapsulation is Encapsulation.YES
        assert conn("encapsulation=no").encapsulation is Encapsulation.NO
        forced = conn("forceencaps=yes")
        assert forced.encapsulation is Encapsulation.YES and forced.unsupported == ()
        assert conn("forceencaps=no").encapsulation is Encapsulation.AUTO
        assert conn_errors("forceencaps=yes\nencapsulation=no") == [
            'ipsec.conf:5: forceencaps=yes conflicts with encapsulation=no in conn "net" (set at ipsec.conf:6)'
        ]

    def test_user_keys(self):
        net = conn("x-team=blue\nX-Owner=ops\nx_ticket=42\nX_mark=1")
        assert net.user_keys == {"x-team": "blue", "X-Owner": "ops", "x_ticket": "42", "X_mark": "1"}
        setup = parse("version 2\nconfig setup\n  x-site=ams\n").setup
        assert setup.user_keys == {"x-site": "ams"}

    def test_setup_keywords(self):
        setup = parse("""
            version 2
            config setup
                interfaces="ipsec0=eth1 ipsec1=ppp0"
                myid=@gw.example.com
                syslog=local0.info
                manualstart="a b"
                plutowait=yes
                uniqueids=no
                fragicmp=no
                hidetos=no
                overridemtu=1400
                nat_traversal=no
                keep_alive=30
                plutostderrlog=/var/log/pluto.err
        """).setup
        assert setup.interface_map() == (("ipsec0", "eth1"), ("ipsec1", "ppp0"))
        assert setup.myid == "@gw.example.com" and setup.syslog == "local0.info"
        assert setup.manualstart == "a b" and setup.plutowait and not setup.uniqueids
        assert (setup.fragicmp, setup.hidetos, setup.overridemtu) == (False, False, 1400)
        assert (setup.nat_traversal, setup.keep_alive) == (False, 30)
        assert setup.plutostderrlog == "/var/log/pluto.err"
        # parsed and kept, but fswan does not act on them: listed, never silently ignored
        assert setup.unsupported == ("syslog", "manualstart", "plutowait", "plutostderrlog")

    def test_setup_bad_values(self):
        assert errors("version 2\nconfig setup\n  interfaces=eth0\n  myid=bogus id\n  overridemtu=10\n") == [
            "ipsec.conf:3: bad value 'eth0' for interfaces=: expected %defaultroute, %none or pairs such as "
            "\"ipsec0=eth1 ipsec1=ppp0\"",
            "ipsec.conf:4: bad value 'bogus id' for myid=: bad ID 'bogus id': expected an IP address, @fqdn, "
            "user@fqdn, %any or %myid, a host name (resolved to its address), an X.500 DN or %fromcert",
            "ipsec.conf:5: bad value '10' for overridemtu=: out of range: expected an integer from 68 to 65535",
        ]


class TestWarnings:
    def test_firewall_with_updown(self):
        config = parse(one_conn("leftfirewall=yes\nleftupdown=/bin/true"))
        assert [str(w) for w in config.warnings] == [
            'ipsec.conf:5: conn "net": leftfirewall=yes has no effect with leftupdown= '
            "(the script does its own firewalling)"
        ]

    def test_rekeymargin_not_below_lifetime(self):
        config = parse(one_conn("keylife=5m\nrekeymargin=10m"))
        assert [str(w) for w in config.warnings] == [
            'ipsec.conf:2: conn "net": rekeymargin=10m should be less than keylife=5m'
        ]
        assert parse(one_conn("keylife=5m\nrekeymargin=10m\nrekey=no")).warnings == ()


class TestUnsupported:
    def test_conn_unsupported_are_recorded(self):
        net = conn("""
            leftcert=gw.pem
            leftrsasigkey=%none
            rightca=%same
            leftdns=192.0.2.53
            compress=yes
            auth=ah
            ah=hmac-md5-96
            ahkey=0x0102
            leftahspi=0x300
            ahreplay_window=32
            leftsubnetwithin=10.0.0.0/8
            _plutodevel=1
        """)
        assert net.unsupported == (
            "leftdns", "compress", "auth", "ah", "ahkey", "leftahspi", "ahreplay_window",
            "leftsubnetwithin", "_plutodevel",
        )
        assert net.left.cert == "gw.pem" and net.right.ca == "%same" and net.compress is True and net.auth == "ah"
        assert net.settings["compress"] == ("yes", Location("ipsec.conf", 9))

    def test_harmless_values_are_not_unsupported(self):
        net = conn("compress=no\nauth=esp\nikev2=no\nmobike=no\nfragmentation=no\nleftxauthserver=no")
        assert net.unsupported == ()
        setup = parse(
            "version 2\nconfig setup\n  klipsdebug=none\n  forwardcontrol=no\n  ikev1-policy=accept\n"
            "  rp_filter=%unchanged\n"
        ).setup
        assert setup.unsupported == ()

    def test_libreswan_conn_keywords(self):
        net = conn("""
            ikev2=permit
            mobike=yes
            fragmentation=force
            narrowing=yes
            sha2_truncbug=yes
            leftaddresspool=198.51.100.10-198.51.100.99
            xauthby=pam
            modecfgpull=yes
            modecfgdns="198.51.100.53 198.51.100.54"
            remote_peer_type=cisco
            nat-ikev1-method=rfc
            cisco-unity=yes
        """)
        assert net.ikev2 is Ikev2Policy.PERMIT
        assert set(net.unsupported) == {
            "mobike", "narrowing", "sha2-truncbug", "xauthby",
            "remote_peer_type", "nat-ikev1-method", "cisco-unity",
        }
        assert net.xauthby == "pam" and net.modecfgpull is True and len(net.modecfgdns) == 2
        assert conn_errors("ikev2=sometimes")[0].startswith("ipsec.conf:5: bad value 'sometimes' for ikev2=")

    def test_fragmentation(self):
        assert conn("").fragmentation is Fragmentation.YES
        for text, value in (
            ("fragmentation=force", Fragmentation.FORCE),
            ("ike_frag=never", Fragmentation.NO),
            ("ike-frag=insist", Fragmentation.FORCE),
            ("ikefragmentation=accept", Fragmentation.ACCEPT),
        ):
            net = conn(text)
            assert net.fragmentation is value and net.unsupported == ()
        assert "bad value 'sometimes' for fragmentation=" in conn_errors("fragmentation=sometimes")[0]
        setup = parse("version 2\nconfig setup\n  ike_fragment_size=576\n").setup
        assert setup.ike_fragment_size == 576 and parse("version 2\n").setup.ike_fragment_size == 1280

    def test_setup_unsupported(self):
        setup = parse("""
            version 2
            config setup
                klipsdebug=all
                plutodebug="control parsing"
                plutoopts="--foo"
                prepluto="echo hi"
                postpluto="echo bye"
                dumpdir=/var/run/pluto
                plutorestartoncrash=yes
                rp_filter=2
                forwardcontrol=yes
                nocrsend=yes
                strictcrlpolicy=no
                crlcheckinterval=600
                protostack=netkey
                virtual_private=%v4:10.0.0.0/8
                logfile=/var/log/pluto.log
                logtime=yes
                nhelpers=0
                listen=192.0.2.1
                ikev1-policy=drop
                oe=off
        """).setup
        assert setup.unsupported == (
            "klipsdebug", "plutoopts", "prepluto", "postpluto", "dumpdir", "plutorestartoncrash",
            "rp_filter", "forwardcontrol", "crlcheckinterval", "protostack",
            "logfile", "logtime", "nhelpers", "listen", "ikev1-policy", "oe",
        )
        assert setup.klipsdebug == "all" and setup.rp_filter == "2" and setup.forwardcontrol
        assert setup.plutodebug == "control parsing"  # implemented: whack --debug-* categories


# --------------------------------------------------------------------------- also= and %default


class TestAlsoAndDefault:
    def test_precedence_conn_over_also_over_default(self):
        config = parse("""
            version 2
            conn %default
                keyingtries=3
                keylife=1h
                pfs=no
                rekeymargin=1m
            conn base
                keylife=2h
                pfs=yes
                auto=ignore
            conn second
                keylife=3h
                ikelifetime=2h
                rekeymargin=2m
                auto=ignore
            conn net
                also=base second
                left=10.0.0.1
                right=10.0.0.2
                keylife=4h
        """)
        net = config.conns["net"]
        assert net.keylife == 4 * 3600  # the conn itself
        assert net.pfs is True  # base (first also) beats %default
        assert net.ikelifetime == 2 * 3600 and net.rekeymargin == 120  # second also beats %default
        assert net.keyingtries == 3  # %default
        assert net.settings["pfs"] == ("yes", Location("ipsec.conf", 9))
        assert net.settings["keyingtries"] == ("3", Location("ipsec.conf", 3))

    def test_earlier_also_wins_and_nesting_is_depth_first(self):
        config = parse("""
            version 2
            conn a
                also=b c
                left=10.0.0.1
                right=10.0.0.2
            conn b
                also=d
                auto=ignore
            conn c
                keylife=2h
                pfs=no
                auto=ignore
            conn d
                keylife=1h
                auto=ignore
        """)
        a = config.conns["a"]
        assert a.keylife == 3600  # b -> d comes before c
        assert a.pfs is False
        assert a.auto is Auto.IGNORE

    def test_multiple_also_lines(self):
        config = parse("""
            version 2
            conn a
                also=b
                also=c
            conn b
                left=10.0.0.1
                auto=ignore
            conn c
                right=10.0.0.2
                auto=ignore
        """)
        assert (config.conns["a"].left.host, config.conns["a"].right.host) == ("10.0.0.1", "10.0.0.2")
        assert config.conns["a"].settings["also"][0] == "b c"

    def test_empty_value_in_conn_overrides_also(self):
        config = parse("""
            version 2
            conn a
                also=b
                left=10.0.0.1
                right=10.0.0.2
                keylife=
            conn b
                keylife=1h
                auto=ignore
        """)
        assert config.conns["a"].keylife == 8 * 3600

    def test_alsoflip(self):
        config = parse("""
            version 2
            conn a
                alsoflip=b
                keylife=1h
            conn b
                left=10.0.0.1
                leftsubnet=10.1.0.0/16
                leftid=@west
                right=10.0.0.2
                rightnexthop=10.0.0.254
                x-left=kept
                auto=add
        """)
        a, b = config.conns["a"], config.conns["b"]
        assert a.left.host == "10.0.0.2" and a.right.host == "10.0.0.1"
        assert a.right.subnet == ip_network("10.1.0.0/16") and a.right.id == "@west"
        assert a.left.nexthop == "10.0.0.254" and a.auto is Auto.ADD and a.keylife == 3600
        assert a.user_keys == {"x-left": "kept"}
        assert a.settings["right"] == ("10.0.0.1", Location("ipsec.conf", 6))
        assert b.left.host == "10.0.0.1"

    def test_alsoflip_of_also_and_double_flip(self):
        config = parse("""
            version 2
            conn a
                alsoflip=b
            conn b
                also=c
                alsoflip=d
                auto=ignore
            conn c
                left=10.0.0.1
                auto=ignore
            conn d
                leftsubnet=10.9.0.0/16
                left=10.0.0.2
                auto=ignore
        """)
        a = config.conns["a"]
        assert a.right.host == "10.0.0.1"  # c is flipped once (through b)
        assert a.left.subnet == ip_network("10.9.0.0/16") and a.left.host == "10.0.0.2"  # d twice

    def test_also_loop(self):
        assert errors("""
            version 2
            conn a
                also=b
                left=10.0.0.1
                right=10.0.0.2
            conn b
                also=a
        """) == ['ipsec.conf:3: also= loop in conn "a": a -> b -> a']

    def test_self_loop(self):
        assert errors("version 2\nconn a\n  also=a\n  left=10.0.0.1\n  right=10.0.0.2\n") == [
            'ipsec.conf:3: also= loop in conn "a": a -> a'
        ]

    def test_longer_loop_is_reported_once(self):
        found = errors("""
            version 2
            conn x
                also=a
                left=10.0.0.1
                right=10.0.0.2
            conn a
                also=b
                auto=ignore
            conn b
                also=c
                auto=ignore
            conn c
                also=a
                auto=ignore
        """)
        assert found == ['ipsec.conf:3: also= loop in conn "x": x -> a -> b -> c -> a']

    def test_also_repeat(self):
        found = errors("""
            version 2
            conn a
                also=b c
                left=10.0.0.1
                right=10.0.0.2
            conn b
                also=d
                auto=ignore
            conn c
                also=d
                auto=ignore
            conn d
                auto=ignore
        """)
        assert found == [
            'ipsec.conf:10: also=d in conn "c": conn "d" is included twice in conn "a" (a -> b -> d and '
            "a -> c -> d); also= may not repeat"
        ]

    def test_also_missing(self):
        assert errors("""
            version 2
            conn x
                also=foo
                alsoflip=bar
                left=10.0.0.1
                right=10.0.0.2
        """) == [
            'ipsec.conf:3: also=foo in conn "x": no conn "foo"',
            'ipsec.conf:4: alsoflip=bar in conn "x": no conn "bar"',
        ]

    def test_also_bad_name(self):
        assert conn_errors("also=9lives") == [
            "ipsec.conf:5: bad value '9lives' for also=: bad conn name '9lives': names start with a letter and "
            "use letters, digits, '.', '_' and '-'"
        ]

    def test_default_must_come_first(self):
        assert errors("""
            version 2
            conn a
                left=10.0.0.1
                right=10.0.0.2
            conn %default
                pfs=no
        """) == ["ipsec.conf:5: conn %default must come before other conns"]

    def test_default_may_not_use_also(self):
        assert errors("""
            version 2
            conn %default
                also=a
                alsoflip=a
            conn a
                left=10.0.0.1
                right=10.0.0.2
        """) == [
            "ipsec.conf:3: conn %default may not contain also=",
            "ipsec.conf:4: conn %default may not contain alsoflip=",
        ]

    def test_several_default_sections_merge(self):
        config = parse("""
            version 2
            conn %default
                pfs=no
            conn %default
                left=10.0.0.1
            conn a
                right=10.0.0.2
        """)
        assert config.conns["a"].pfs is False and config.conns["a"].left.host == "10.0.0.1"
        assert "%default" not in config.conns

    def test_default_supplies_required_left(self):
        config = parse("""
            version 2
            conn %default
                left=%defaultroute
            conn a
                right=10.0.0.2
        """)
        assert config.conns["a"].left.host == "%defaultroute"

    def test_required_check_skips_ignored_also_targets(self):
        config = parse("""
            version 2
            conn base
                authby=secret
                auto=ignore
            conn net
                also=base
                left=10.0.0.1
                right=10.0.0.2
        """)
        assert config.conns["base"].left.host == ""
        assert config.conns["net"].authby is AuthBy.SECRET

    def test_required_check_applies_to_loadable_also_targets(self):
        assert errors("""
            version 2
            conn base
                authby=secret
                auto=add
            conn net
                also=base
                left=10.0.0.1
                right=10.0.0.2
        """) == [
            'ipsec.conf:2: conn "base" has no left= (required)',
            'ipsec.conf:2: conn "base" has no right= (required)',
        ]

    def test_unreferenced_ignored_conn_is_not_required_complete(self):
        config = parse("version 2\nconn lonely\n  auto=ignore\n  left=10.0.0.1\n")
        assert config.conns["lonely"].right.host == ""

    def test_implicit_conn_redefinitions(self):
        config = parse("""
            version 2
            conn block
                auto=ignore
            conn private-or-clear
                auto=ignore
            conn clear
                auto=ignore
        """)
        assert {c.auto for c in config.conns.values()} == {Auto.IGNORE}

    def test_unsupported_inherited_keeps_its_location(self):
        config = parse("""
            version 2
            conn %default
                compress=yes
            conn a
                left=10.0.0.1
                right=10.0.0.2
        """)
        assert config.conns["a"].unsupported == ("compress",)
        assert config.conns["a"].settings["compress"] == ("yes", Location("ipsec.conf", 3))


# --------------------------------------------------------------------------- include


class TestInclude:
    def test_relative_glob_against_including_file(self):
        loader = FakeLoader({
            "/etc/ipsec.d/b.conf": "conn b\n  left=10.0.0.3\n  right=10.0.0.4\n",
            "/etc/ipsec.d/a.conf": "conn a\n  left=10.0.0.1\n  right=10.0.0.2\n",
            "/etc/ipsec.d/skip.txt": "garbage\n",
            "/etc/ipsec.d/sub/c.conf": "garbage\n",
        })
        text = "version 2\nconfig setup\n  uniqueids=no\ninclude ipsec.d/*.conf\nconn main\n  also=a\n  right=10.0.0.9\n"
        config = parse_config(text, "/etc/ipsec.conf", loader)
        assert loader.globbed[0] == "/etc/ipsec.d/*.conf"
        assert list(config.conns) == ["a", "b", "main"]
        assert config.files == ("/etc/ipsec.conf", "/etc/ipsec.d/a.conf", "/etc/ipsec.d/b.conf")
        assert config.conns["b"].location == Location("/etc/ipsec.d/b.conf", 1)
        assert config.conns["main"].left.host == "10.0.0.1"

    def test_nested_relative_include(self):
        loader = FakeLoader({
            "/etc/ipsec.d/sub/c.conf": "include ../b.conf\n",
            "/etc/ipsec.d/b.conf": "conn b\n  left=10.0.0.3\n  right=10.0.0.4\n",
        })
        config = parse_config("version 2\ninclude ipsec.d/sub/c.conf\n", "/etc/ipsec.conf", loader)
        assert list(config.conns) == ["b"]
        assert loader.globbed == ["/etc/ipsec.d/sub/c.conf", "/etc/ipsec.d/b.conf"]

    def test_relative_main_file_name(self):
        config = parse("version 2\ninclude conf.d/*.conf\n",
                       {"conf.d/x.conf": "conn x\n  left=10.0.0.1\n  right=10.0.0.2\n"})
        assert config.files == ("ipsec.conf", "conf.d/x.conf")

    def test_absolute_include_and_quotes(self):
        config = parse('version 2\ninclude "/opt/my conns/x.conf"\n',
                       {"/opt/my conns/x.conf": "conn x\n  left=10.0.0.1\n  right=10.0.0.2\n"})
        assert list(config.conns) == ["x"]

    def test_errors_name_the_included_file(self):
        found = errors("version 2\ninclude conns/*.conf\n", {
            "conns/a.conf": "conn a\n  left=10.0.0.1\n  right=10.0.0.2\n  pfs=maybe\n",
        })
        assert found == ["conns/a.conf:4: bad value 'maybe' for pfs=: expected yes or no"]

    def test_errors_sorted_by_file_order(self):
        main = """
            version 2
            conn m
                pfs=x
                left=10.0.0.1
                right=10.0.0.2
            include i.conf
            conn n
                rekey=y
                left=10.0.0.1
                right=10.0.0.2
        """
        found = errors(main, {"i.conf": "conn i\n  left=10.0.0.1\n  right=10.0.0.2\n  pfs=maybe\n"})
        assert found == [
            "ipsec.conf:3: bad value 'x' for pfs=: expected yes or no",
            "ipsec.conf:8: bad value 'y' for rekey=: expected yes or no",
            "i.conf:4: bad value 'maybe' for pfs=: expected yes or no",
        ]

    def test_missing_plain_file_is_an_error(self):
        assert errors("version 2\ninclude nothere.conf\n") == [
            "ipsec.conf:2: cannot read include file nothere.conf: no such file"
        ]

    def test_glob_matching_nothing_is_fine(self):
        assert parse("version 2\ninclude ipsec.d/*.conf\n").conns == {}

    def test_unreadable(self):
        with pytest.raises(ConfigErrors) as info:
            parse_config("version 2\ninclude x.conf\n", "ipsec.conf", FakeLoader(unreadable=("x.conf",)))
        assert [str(e) for e in info.value.errors] == [
            "ipsec.conf:2: cannot read include file x.conf: permission denied"
        ]

    def test_no_loader(self):
        with pytest.raises(ConfigErrors) as info:
            parse_config("version 2\ninclude x.conf\n", "ipsec.conf")
        assert str(info.value) == "ipsec.conf:2: cannot read include file x.conf: no include loader given"

    def test_depth_limit(self):
        files = {f"f{i}.conf": f"include f{i + 1}.conf\n" for i in range(1, 12)}
        files["f12.conf"] = "conn deep\n  left=10.0.0.1\n  right=10.0.0.2\n"
        assert errors("version 2\ninclude f1.conf\n", files) == [
            "f10.conf:1: include nested too deeply (more than 10 levels)"
        ]
        files = {f"f{i}.conf": f"include f{i + 1}.conf\n" for i in range(1, 10)}
        files["f10.conf"] = "conn deep\n  left=10.0.0.1\n  right=10.0.0.2\n"
        assert list(parse("version 2\ninclude f1.conf\n", files).conns) == ["deep"]

    def test_loops_end_at_the_depth_limit(self):
        found = errors("version 2\ninclude a.conf\n", {"a.conf": "include b.conf\n", "b.conf": "include *.conf\n"})
        assert found == [
            "b.conf:1: include nested too deeply (more than 10 levels): include loop a.conf -> b.conf -> a.conf",
            "b.conf:1: include nested too deeply (more than 10 levels): include loop b.conf -> b.conf",
        ]

    def test_include_ends_the_section(self):
        assert errors("version 2\nconn a\n  auto=add\ninclude x.conf\n  left=10.0.0.1\n", {"x.conf": ""}) == [
            'ipsec.conf:2: conn "a" has no left= (required)',
            'ipsec.conf:2: conn "a" has no right= (required)',
            "ipsec.conf:5: parameter outside a section",
        ]

    def test_included_file_may_start_with_version(self):
        included = "version 2\nconn x\n  left=10.0.0.1\n  right=10.0.0.2\n"
        config = parse("version 2\ninclude x.conf\n", {"x.conf": included})
        assert config.warnings == () and list(config.conns) == ["x"]

    def test_include_needs_an_argument(self):
        assert errors("version 2\ninclude\n") == ["ipsec.conf:2: include needs a file name or pattern"]
        assert errors("version 2\ninclude a b\n") == [
            "ipsec.conf:2: include takes one file name or pattern (quote it if it has spaces)"
        ]

    def test_load_config(self):
        loader = FakeLoader({"/etc/ipsec.conf": "version 2\ninclude ipsec.d/x.conf\n",
                             "/etc/ipsec.d/x.conf": "conn x\n  left=10.0.0.1\n  right=10.0.0.2\n"})
        config = load_config("/etc/ipsec.conf", loader)
        assert config.files == ("/etc/ipsec.conf", "/etc/ipsec.d/x.conf")
        with pytest.raises(ConfigErrors) as info:
            load_config("/etc/missing.conf", loader)
        assert str(info.value) == "cannot read /etc/missing.conf: no such file or directory"


# --------------------------------------------------------------------------- whole files

FREESWAN_2X = r"""
# /etc/ipsec.conf - FreeS/WAN IPsec configuration file

# More elaborate and more varied sample configurations can be found
# in FreeS/WAN's doc/examples file, and in the HTML documentation.

version	2.0	# conforms to second version of ipsec.conf specification

# basic configuration
config setup
	# Debug-logging controls:  "none" for (almost) none, "all" for lots.
	klipsdebug=none
	plutodebug=none
	interfaces=%defaultroute
	uniqueids=yes

# defaults for subsequent connection descriptions
# (these defaults will soon go away)
conn %default
	keyingtries=0
	disablearrivalcheck=no
	authby=rsasig
	leftrsasigkey=%dnsondemand
	rightrsasigkey=%dnsondemand

# connection description for opportunistic encryption
# (requires KEY record in your DNS reverse map; see doc/opportunism.howto)
conn me-to-anyone
	left=%defaultroute
	right=%opportunistic
	keylife=1h
	rekey=no
	# for initiator only OE, uncomment and uncomment this
	# after putting your key in your forward map
	#leftid=@myname.example.com
	# uncomment this next line to enable it
	#auto=route

# sample VPN connection
conn sample
	# Left security gateway, subnet behind it, next hop toward right.
	left=10.0.0.1
	leftsubnet=172.16.0.0/24
	leftnexthop=10.22.33.44
	# Right security gateway, subnet behind it, next hop toward left.
	right=10.12.12.1
	rightsubnet=192.168.0.0/24
	rightnexthop=10.101.102.103
	# To authorize this connection, but not actually start it, at startup,
	# uncomment this.
	#auto=add

conn net-to-net
	left=192.0.2.1
	leftsubnet=10.1.0.0/16
	leftid=@west.example.com
	leftrsasigkey=WEST_KEY
	leftnexthop=192.0.2.254
	right=198.51.100.1
	rightsubnet=10.2.0.0/16
	rightid=@east.example.com
	rightrsasigkey=%dnsonload
	rightnexthop=198.51.100.254
	pfs=yes
	keylife=8h
	rekeymargin=9m
	rekeyfuzz=100%
	ikelifetime=1h
	failureshunt=drop
	auto=start

conn road
	left=%defaultroute
	leftid=@road.example.com
	right=203.0.113.5
	rightsubnet=10.5.0.0/16
	authby=secret
	leftupdown="ipsec _updown --route yes"
	auto=add

conn manual-net
	type=tunnel
	left=192.0.2.1
	leftsubnet=10.1.0.0/16
	right=198.51.100.1
	rightsubnet=10.2.0.0/16
	spi=0x200
	esp=3des-md5-96
	espenckey=0x01234567_89abcdef_02468ace_13579bdf_12345678_9abcdef0
	espauthkey=0x12345678_9abcdef0_2468ace0_13579bdf
	auto=manual

# OE policy groups are disabled by default
conn block
	auto=ignore

conn private
	auto=ignore

conn private-or-clear
	auto=ignore

conn clear-or-private
	auto=ignore

conn clear
	auto=ignore

conn packetdefault
	auto=ignore
""".replace("WEST_KEY", WEST_0S)

LIBRESWAN = """
config setup
    protostack=netkey
    nat_traversal=yes
    keep_alive=15
    virtual_private=%v4:10.0.0.0/8,%v4:192.168.0.0/16,%v4:172.16.0.0/12
    uniqueids=no
    logfile=/var/log/pluto.log
    ikev1-policy=accept

conn shared
    left=192.0.2.10
    leftid=192.0.2.10
    right=%any
    encapsulation=yes
    authby=psk
    pfs=no
    rekey=no
    keyingtries=5
    dpddelay=30
    dpdtimeout=120
    dpdaction=clear
    ikev2=never
    ike=aes256-sha2_256;modp2048,aes128-sha1;modp2048,3des-sha1;modp1024
    phase2alg=aes_gcm-null,aes128-sha1,aes256-sha2_512,3des-sha1
    sha2-truncbug=no

conn l2tp-psk
    auto=add
    leftprotoport=17/1701
    rightprotoport=17/%any
    type=transport
    phase2alg=aes128-sha1,3des-sha1
    salifetime=1h
    ikelifetime=8h
    also=shared

conn xauth-psk
    auto=add
    leftsubnet=0.0.0.0/0
    rightaddresspool=198.51.100.10-198.51.100.250
    modecfgdns="198.51.100.53 198.51.100.54"
    leftxauthserver=yes
    rightxauthclient=yes
    leftmodecfgserver=yes
    rightmodecfgclient=yes
    modecfgpull=yes
    xauthby=file
    ike-frag=yes
    ikev2=never
    cisco-unity=yes
    also=shared
"""


class TestWholeFiles:
    def test_freeswan_2x(self):
        config = parse_config(FREESWAN_2X, "/etc/ipsec.conf")
        assert config.warnings == ()
        assert list(config.conns) == [
            "me-to-anyone", "sample", "net-to-net", "road", "manual-net",
            "block", "private", "private-or-clear", "clear-or-private", "clear", "packetdefault",
        ]
        oe = config.conns["me-to-anyone"]
        assert oe.left.host == "%defaultroute" and oe.right.host == "%opportunistic"
        assert (oe.keylife, oe.rekey, oe.auto) == (3600, False, Auto.IGNORE)
        sample = config.conns["sample"]
        assert sample.left.nexthop == "10.22.33.44" and sample.right.subnet == ip_network("192.168.0.0/24")
        n2n = config.conns["net-to-net"]
        assert n2n.auto is Auto.START and n2n.left.id == "@west.example.com"
        assert n2n.left.rsasigkey == WEST_0S and n2n.right.rsasigkey == "%dnsonload"
        assert n2n.failureshunt is FailureShunt.DROP and n2n.keyingtries == 0
        road = config.conns["road"]
        assert road.authby is AuthBy.SECRET and road.left.updown == "ipsec _updown --route yes"
        assert road.left.nexthop == "%defaultroute"
        manual = config.conns["manual-net"]
        assert manual.auto is Auto.MANUAL and manual.spi == 0x200
        for name in ("me-to-anyone", "sample", "net-to-net", "road", "manual-net"):
            assert config.conns[name].unsupported == ()
        assert config.setup.unsupported == ()

    def test_libreswan(self):
        config = parse_config(LIBRESWAN, "ipsec.conf")
        assert [str(w) for w in config.warnings] == [
            "ipsec.conf:2: no 'version 2' line at the top; reading the file as FreeS/WAN 2.x",
        ]
        assert config.setup.unsupported == ("protostack", "logfile")
        assert config.setup.keep_alive == 15 and config.setup.uniqueids is False
        l2tp = config.conns["l2tp-psk"]
        assert l2tp.type is ConnType.TRANSPORT and l2tp.authby is AuthBy.SECRET
        assert l2tp.left.protoport == (17, 1701) and l2tp.right.protoport == (17, 0)
        assert l2tp.esp == "aes128-sha1,3des-sha1" and l2tp.keylife == 3600 and l2tp.ikelifetime == 8 * 3600
        assert l2tp.dpddelay == 30 and l2tp.dpdaction is DpdAction.CLEAR
        assert l2tp.encapsulation is Encapsulation.YES and l2tp.right.host == "%any"
        assert l2tp.unsupported == ()
        xauth = config.conns["xauth-psk"]
        assert xauth.left.xauthserver and xauth.left.modecfgserver and xauth.right.xauthclient
        assert str(xauth.right.addresspool) == "198.51.100.10-198.51.100.250"
        assert xauth.modecfgpull and xauth.xauthby == "file" and xauth.unsupported == ("cisco-unity",)
        assert config.conns["shared"].auto is Auto.IGNORE

    def test_libreswan_typo_is_caught(self):
        with pytest.raises(ConfigErrors) as info:
            parse_config(LIBRESWAN.replace("ike-frag", "ike-frog"), "ipsec.conf")
        found = [str(e) for e in info.value.errors]
        line = LIBRESWAN.split("\n").index("    ike-frag=yes") + 1
        assert found == [f"ipsec.conf:{line}: unknown keyword 'ike-frog' in conn \"xauth-psk\"; did you mean 'ike-frag'?"]


# --------------------------------------------------------------------------- the table


class TestKeywordTable:
    def test_every_model_field_exists(self):
        model = {
            "conn": {f.name for f in fields(Connection)},
            "end": {f.name for f in fields(End)},
            "setup": {f.name for f in fields(SetupConfig)},
        }
        for keyword in keywords.KEYWORDS.values():
            target = keyword.model_field
            if target is None:
                continue
            where = "setup" if keyword.section is Section.SETUP else ("end" if keyword.end else "conn")
            assert target in model[where], keyword.name

    def test_every_left_has_a_right(self):
        conn_names = {k.name for k in keywords.KEYWORDS.values() if k.section is Section.CONN}
        for name in conn_names:
            if name.startswith("left"):
                assert "right" + name[4:] in conn_names
        assert keywords.twin("leftsubnet") == "rightsubnet" and keywords.twin("pfs") == "pfs"

    def test_freeswan_accepted_list_is_covered(self):
        accepted = (
            "also alsoflip type auto authby _plutodevel left leftsubnet leftnexthop leftfirewall leftupdown "
            "leftespenckey leftespauthkey leftahkey leftespspi leftahspi leftid leftrsasigkey leftrsasigkey2 "
            "leftcert leftca leftsubnetwithin leftprotoport keyexchange auth pfs keylife rekey rekeymargin "
            "rekeyfuzz compress keyingtries ikelifetime disablearrivalcheck failureshunt spibase spi esp "
            "espenckey espauthkey espreplay_window ah ahkey ahreplay_window"
        ).split()
        for name in accepted:
            assert keywords.lookup(name, Section.CONN) is not None, name
        setup = (
            "interfaces forwardcontrol rp_filter myid syslog klipsdebug plutodebug plutoopts plutostderrlog "
            "plutorestartoncrash dumpdir manualstart pluto plutowait prepluto postpluto fragicmp hidetos "
            "uniqueids overridemtu nocrsend strictcrlpolicy crlcheckinterval"
        ).split()
        for name in setup:
            assert keywords.lookup(name, Section.SETUP) is not None, name

    def test_secret_keywords(self):
        secret = {k.name for k in keywords.KEYWORDS.values() if k.secret}
        assert secret == {
            "espenckey", "espauthkey", "ahkey", "leftespenckey", "rightespenckey", "leftespauthkey",
            "rightespauthkey", "leftahkey", "rightahkey",
        }


class TestProposalStrings:
    """ike=/esp= are checked at load, so a refused algorithm is a file:line error."""

    def test_refused_and_unknown_algorithms(self):
        # a well-formed list naming algorithms fswan lacks refuses that conn alone, with file:line
        text = ("version 2\nconn x\n\tleft=192.0.2.1\n\tright=192.0.2.2\n\tike=des-md5\n\tauto=add\n"
                "conn y\n\tleft=192.0.2.1\n\tright=192.0.2.3\n\tesp=aes99-sha1\n\tauto=add\n"
                "conn z\n\tleft=192.0.2.1\n\tright=192.0.2.4\n\tauto=add\n")
        config = parse_config(text, "a.conf")
        assert list(config.conns) == ["z"]
        assert str(config.refused["x"]) == 'a.conf:5: conn "x" not loaded: ike=des-md5: OAKLEY_DES_CBC is not supported'
        refused = str(config.refused["y"])
        assert refused.startswith('a.conf:10: conn "y" not loaded: esp=\'aes99-sha1\': ') and "128, 192, 256" in refused
        with pytest.raises(ConfigErrors):
            parse_config("version 2\nconn x\n\tike=aes128 sha1\n", "a.conf")

    def test_good_lists_and_the_manual_keying_form(self):
        text = ("version 2\nconn x\n\tleft=192.0.2.1\n\tright=192.0.2.2\n"
                "\tike=aes256-sha2_256-modp2048,aes128-sha1;modp1024\n\tesp=aes_gcm256,3des-sha1\n"
                "conn m\n\tleft=192.0.2.1\n\tright=192.0.2.2\n\tauto=manual\n\tesp=3des-md5-96\n")
        config = parse_config(text, "a.conf")
        assert config.conns["x"].ike == "aes256-sha2_256-modp2048,aes128-sha1;modp1024"
        assert config.conns["m"].esp == "3des-md5-96"
