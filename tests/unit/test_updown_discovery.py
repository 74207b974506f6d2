"""Finding updown plugins with twisted.plugin and choosing them from leftupdown=/leftfirewall=."""

from __future__ import annotations

import shutil
import sys
from ipaddress import ip_network
from pathlib import Path

import pytest
from zope.interface.verify import verifyObject

import fswan.plugins
from fswan.config.errors import ConfigError
from fswan.config.ipsecconf import parse_config
from fswan.config.orient import ipsec_interfaces, orient
from fswan.updown import (
    IUpdown,
    UnknownPluginError,
    find_plugin,
    is_command,
    known_plugins,
    plugins_for,
)
from fswan.updown.firewall import FirewallPlugin
from fswan.updown.routing import RoutingPlugin
from fswan.updown.script import ScriptUpdown
from tests.unit.test_updown_context import WEST, oriented

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "etc" / "updown-example" / "fswan_policy_log.py"

USER_PLUGIN = '''
from twisted.plugin import IPlugin
from zope.interface import implementer
from fswan.updown.interface import IUpdown, UpdownPlugin


@implementer(IPlugin, IUpdown)
class Announce(UpdownPlugin):
    name = "announce"

    def up(self, ctx):
        ctx.log("announcing " + ctx.verb)


announce = Announce()
'''


@pytest.fixture
def plugin_dir(tmp_path):
    """A user plugin directory on fswan.plugins.__path__ for the test's duration."""
    directory = tmp_path / "fswan" / "plugins"
    directory.mkdir(parents=True)
    fswan.plugins.__path__.append(str(directory))
    before = set(sys.modules)
    try:
        yield directory
    finally:
        fswan.plugins.__path__.remove(str(directory))
        for name in set(sys.modules) - before:
            if name.startswith("fswan.plugins."):
                del sys.modules[name]


def test_builtins_are_found_and_provide_iupdown():
    found = known_plugins()
    assert isinstance(found["routing"], RoutingPlugin)
    assert isinstance(found["firewall"], FirewallPlugin)
    for plugin in found.values():
        assert verifyObject(IUpdown, plugin)
    assert find_plugin("routing") is found["routing"]
    assert find_plugin("frobnicate") is None


def test_user_plugin_dropped_into_a_plugin_dir_is_found(plugin_dir):
    (plugin_dir / "user_announce_plugin.py").write_text(USER_PLUGIN)
    plugin = find_plugin("announce")
    assert plugin is not None and verifyObject(IUpdown, plugin)
    assert set(known_plugins()) == {"routing", "firewall", "announce"}
    conn = oriented({"updown": "announce"})
    assert plugins_for(conn) == [plugin]


def test_the_example_plugin_installs_by_copying(plugin_dir):
    shutil.copy(EXAMPLE, plugin_dir / "fswan_policy_log.py")
    plugin = find_plugin("policy-log")
    assert plugin is not None and verifyObject(IUpdown, plugin)
    conn = oriented({"updown": "routing,policy-log"})
    assert [p.name for p in plugins_for(conn)] == ["routing", "policy-log"]


def test_default_set_is_routing():
    assert plugins_for(oriented()) == [find_plugin("routing")]
    assert [p.name for p in plugins_for(oriented(), default_names=("routing", "firewall"))] == [
        "routing", "firewall"]


def test_firewall_yes_adds_the_firewall_plugin():
    assert [p.name for p in plugins_for(oriented({"firewall": True}))] == ["routing", "firewall"]
    assert [p.name for p in plugins_for(oriented({"updown": "firewall", "firewall": True}))] == [
        "firewall"]
    assert [p.name for p in plugins_for(oriented({"updown": "routing", "firewall": True}))] == [
        "routing", "firewall"]


def test_only_our_ends_settings_count():
    peer_says = oriented({}, {"updown": "frobnicate", "firewall": True})
    assert [p.name for p in plugins_for(peer_says)] == ["routing"]


def test_a_command_line_is_the_legacy_script():
    for command in ("/etc/ipsec.d/updown", "my-updown --verbose", "ipsec _updown custom:echo"):
        plugins = plugins_for(oriented({"updown": command, "firewall": True}))
        assert len(plugins) == 1 and isinstance(plugins[0], ScriptUpdown)
        assert plugins[0].command == command
        assert verifyObject(IUpdown, plugins[0])
    assert is_command("/bin/true") and is_command("a b") and not is_command("routing")


def test_freeswans_own_default_command_means_the_defaults():
    assert [p.name for p in plugins_for(oriented({"updown": "ipsec _updown"}))] == ["routing"]
    assert [p.name for p in plugins_for(oriented({"updown": "ipsec _updown iptables"}))] == [
        "routing", "firewall"]


CONF = """\
version 2

config setup
\tinterfaces=%defaultroute

conn net
\tleft=192.0.2.1
\tleftsubnet=198.51.100.0/25
\tright=192.0.2.2
\trightsubnet=203.0.113.0/25
\tauthby=secret
\tleftupdown=frobnicate
\tauto=add
"""


def _oriented_from(text: str, name: str = "net"):
    config = parse_config(text, "ipsec.conf")
    interfaces = ipsec_interfaces(config.setup, WEST)[0]
    return orient(config.conns[name], interfaces, WEST.default_route)


def test_unknown_plugin_names_file_and_line():
    with pytest.raises(UnknownPluginError) as caught:
        plugins_for(_oriented_from(CONF))
    assert isinstance(caught.value, ConfigError)
    assert str(caught.value) == (
        "ipsec.conf:12: leftupdown=frobnicate: no updown plugin named 'frobnicate' "
        "(known: firewall, routing)"
    )


def test_unknown_plugin_on_the_right_when_right_is_us():
    text = CONF.replace("left=192.0.2.1", "left=192.0.2.2").replace("right=192.0.2.2", "right=192.0.2.1")
    text = text.replace("leftupdown=frobnicate", "rightupdown=routing,frob")
    with pytest.raises(UnknownPluginError) as caught:
        plugins_for(_oriented_from(text))
    assert str(caught.value) == (
        "ipsec.conf:12: rightupdown=routing,frob: no updown plugin named 'frob' "
        "(known: firewall, routing)"
    )


def test_unknown_default_name_has_no_location():
    with pytest.raises(UnknownPluginError) as caught:
        plugins_for(oriented(), default_names=("nonesuch",))
    assert str(caught.value) == "no updown plugin named 'nonesuch' (known: firewall, routing)"


def test_a_conn_without_settings_still_reports():
    conn = oriented({"subnet": ip_network("198.51.100.0/25"), "updown": "frobnicate"})
    with pytest.raises(UnknownPluginError, match=r"^leftupdown=frobnicate: no updown plugin"):
        plugins_for(conn)


def test_a_user_plugin_cannot_replace_a_builtin(plugin_dir):
    (plugin_dir / "user_fake_routing.py").write_text(
        USER_PLUGIN.replace('name = "announce"', 'name = "routing"'))
    assert isinstance(find_plugin("routing"), RoutingPlugin)
