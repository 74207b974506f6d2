"""The built-in updown plugins, as ``twisted.plugin`` finds them.

Module-level instances are what ``getPlugins(IUpdown, fswan.plugins)``
returns; each holds its own state (the firewall's nft lock), so there is one
of each per daemon.
"""

from fswan.updown.firewall import FirewallPlugin
from fswan.updown.routing import RoutingPlugin

routing = RoutingPlugin()
firewall = FirewallPlugin()
