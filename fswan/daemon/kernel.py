"""What the daemon reads from the kernel: interface addresses and the default route.

The only place pyroute2 is used for reading the host; the results go to the
pure orientation code as a ``HostNetwork``.
"""

from __future__ import annotations

import socket
from ipaddress import ip_address

from pyroute2 import IPRoute

from fswan.config.orient import DefaultRoute, HostAddress, HostNetwork


def read_host_network() -> HostNetwork:
    """Addresses of every device and the IPv4 default route with the lowest metric."""
    with IPRoute() as ipr:
        names = {link["index"]: link.get_attr("IFLA_IFNAME") for link in ipr.get_links()}
        addresses = []
        for msg in ipr.get_addr():
            text = msg.get_attr("IFA_LOCAL") or msg.get_attr("IFA_ADDRESS")
            name = names.get(msg["index"])
            if text and name:
                addresses.append(HostAddress(name, ip_address(text)))
        best = None
        for route in ipr.get_default_routes(family=socket.AF_INET):
            metric = route.get_attr("RTA_PRIORITY") or 0
            if best is None or metric < best[0]:
                best = (metric, route)
        default = None
        if best is not None:
            route = best[1]
            oif = route.get_attr("RTA_OIF")
            gateway = route.get_attr("RTA_GATEWAY")
            source = route.get_attr("RTA_PREFSRC")
            if oif in names:
                default = DefaultRoute(
                    names[oif],
                    ip_address(gateway) if gateway else None,
                    ip_address(source) if source else None,
                )
    return HostNetwork(tuple(addresses), default)
