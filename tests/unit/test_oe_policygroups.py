"""Policy-group files and FreeS/WAN's implicit conns (pure)."""

from __future__ import annotations

from ipaddress import ip_network

import pytest

from fswan.config.errors import ConfigErrors
from fswan.config.ipsecconf import IMPLICIT_CONNS, parse_config
from fswan.config.model import Auto, AuthBy, ConnType, FailureShunt
from fswan.config.policygroups import (
    GroupEroute,
    default_implicit_conn,
    group_eroutes,
    group_for,
    implicit_conns,
    instance_name,
    parse_policy_group,
    policies_dir,
    split_instance_name,
)


def test_policy_file_cidrs_and_comments():
    text = "# private-or-clear\n192.0.2.0/24\n\n  198.51.100.7   # one host\n192.0.2.0/24\n"
    assert parse_policy_group(text, "p") == (ip_network("192.0.2.0/24"), ip_network("198.51.100.7/32"))


def test_policy_file_bad_lines_are_file_line_errors():
    text = "192.0.2.0/24\nnot-an-address\n192.0.2.1/24\n10.0.0.0/8 10.1.0.0/16\n"
    with pytest.raises(ConfigErrors) as info:
        parse_policy_group(text, "/etc/ipsec.d/policies/private")
    lines = [str(e) for e in info.value.errors]
    assert lines[0].startswith("/etc/ipsec.d/policies/private:2: ")
    assert lines[1].startswith("/etc/ipsec.d/policies/private:3: ")
    assert lines[2].startswith("/etc/ipsec.d/policies/private:4: ")
    assert len(lines) == 3


def test_policies_dir_is_beside_ipsec_conf():
    assert policies_dir("/etc/ipsec.conf") == "/etc/ipsec.d/policies"


@pytest.mark.parametrize("name, shunt", [
    ("clear-or-private", FailureShunt.PASSTHROUGH),
    ("private-or-clear", FailureShunt.PASSTHROUGH),
    ("private", FailureShunt.DROP),
])
def test_oe_implicit_conn_defaults(name, shunt):
    conn = default_implicit_conn(name)
    assert conn.right.host == "%opportunisticgroup"
    assert conn.left.host == "%defaultroute"
    assert (conn.keyingtries, conn.ikelifetime, conn.keylife, conn.rekey) == (3, 3600.0, 3600.0, False)
    assert conn.auto is Auto.ROUTE
    assert conn.failureshunt is shunt


def test_clear_block_and_packetdefault():
    assert default_implicit_conn("clear").type is ConnType.PASSTHROUGH
    assert default_implicit_conn("block").type is ConnType.REJECT
    assert default_implicit_conn("clear").authby is AuthBy.NEVER
    packetdefault = default_implicit_conn("packetdefault")
    assert packetdefault.right.host == "%opportunistic"
    assert packetdefault.left.subnet == ip_network("0.0.0.0/0")


def test_all_implicit_conns_without_a_file_section():
    config = parse_config("version 2\n", "ipsec.conf")
    assert set(implicit_conns(config)) == set(IMPLICIT_CONNS)


def test_default_does_not_touch_implicit_conns_and_redefinition_overrides():
    text = (
        "conn %default\n\tkeyingtries=%forever\n\tauthby=secret\n"
        "conn private-or-clear\n\tleftsubnet=192.0.2.0/24\n"
        "conn block\n\tauto=ignore\n"
    )
    conns = implicit_conns(parse_config(text, "ipsec.conf"))
    assert "block" not in conns
    poc = conns["private-or-clear"]
    assert poc.left.subnet == ip_network("192.0.2.0/24")
    assert poc.keyingtries == 3
    assert poc.authby is AuthBy.RSASIG
    assert poc.failureshunt is FailureShunt.PASSTHROUGH
    assert poc.right.host == "%opportunisticgroup"
    assert conns["private"].left.subnet is None


def test_instance_names():
    assert instance_name("private-or-clear", "203.0.113.10") == "private-or-clear#203.0.113.10"
    assert split_instance_name("private#192.0.2.3") == ("private", "192.0.2.3")
    assert split_instance_name("westnet-eastnet") is None
    assert split_instance_name("other#192.0.2.3") is None


def test_group_eroutes_most_specific_first():
    text = "conn private-or-clear\n\tleftsubnet=192.0.2.0/24\n"
    conns = implicit_conns(parse_config(text, "ipsec.conf"))
    groups = {
        "clear": (ip_network("198.51.100.0/24"),),
        "private-or-clear": (ip_network("0.0.0.0/0"),),
        "private": (ip_network("203.0.113.0/24"),),
        "block": (ip_network("198.51.100.66/32"),),
    }
    eroutes = group_eroutes(groups, conns, "192.0.2.1")
    assert eroutes[0] == GroupEroute("block", ip_network("192.0.2.1/32"), ip_network("198.51.100.66/32"),
                                     "%reject")
    assert [e.group for e in eroutes] == ["block", "clear", "private", "private-or-clear"]
    poc = eroutes[-1]
    assert (poc.source, poc.shunt) == (ip_network("192.0.2.0/24"), "%trap")
    assert group_for(eroutes, "192.0.2.1", "203.0.113.5").group == "private"
    assert group_for(eroutes, "192.0.2.9", "203.0.113.5").group == "private-or-clear"
    assert group_for(eroutes, "192.0.2.1", "198.51.100.66").shunt == "%reject"
    assert group_for(eroutes, "10.0.0.1", "203.0.113.5") is None


def test_suppressed_group_has_no_eroutes():
    conns = implicit_conns(parse_config("conn private\n\tauto=ignore\n", "ipsec.conf"))
    assert group_eroutes({"private": (ip_network("203.0.113.0/24"),)}, conns, "192.0.2.1") == []


def test_redefined_left_host_keeps_its_own_nexthop():
    text = "conn private-or-clear\n\tleft=192.0.2.1\n\tleftsubnet=198.51.100.0/25\n"
    poc = implicit_conns(parse_config(text, "ipsec.conf"))["private-or-clear"]
    assert (poc.left.host, poc.left.nexthop) == ("192.0.2.1", "%direct")
    assert implicit_conns(parse_config("", "ipsec.conf"))["private"].left.nexthop == "%defaultroute"
