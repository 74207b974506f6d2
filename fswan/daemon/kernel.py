"""What the daemon reads from the kernel: interface addresses and the default route.

The only place pyroute2 is used for reading the host; the results go to the
pure orientation code as a ``HostNetwork``.  Also the TUN device ``ipsec0``: its
creation, the policy groups' routes, and a Mode Config client's virtual IP on it
(:class:`TunAddresses`).
"""

from __future__ import annotations

import errno
import socket
from ipaddress import IPv4Address, IPv6Address, ip_address

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


# -- the TUN device ipsec0 ------------------------------------------------------

TUNSETIFF = 0x400454CA
TUNSETPERSIST = 0x400454CB
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
#: every read/write carries a ``virtio_net_hdr`` (lets us write GSO superpackets)
IFF_VNET_HDR = 0x4000
#: room for the largest ESP overhead we build: outer IPv4 20 + UDP 8 + SPI/seq 8
#: + IV 16 + padding 15 + pad length/next header 2 + ICV 16 = 85, rounded up
ESP_OVERHEAD = 100
#: ipsec0's transmit queue: packets the kernel keeps for the pump while it is busy
TUN_QUEUE = 4000


def link_mtu(name: str) -> int | None:
    """The MTU of device ``name``, or None if it does not exist."""
    with IPRoute() as ipr:
        indexes = ipr.link_lookup(ifname=name)
        if not indexes:
            return None
        return ipr.get_links(indexes[0])[0].get_attr("IFLA_MTU")


def tunnel_mtu(physical_mtu: int, override: int | None = None) -> int:
    """``ipsec0``'s MTU: ``overridemtu=``, else the physical MTU less the worst ESP overhead."""
    if override:
        return override
    return max(576, physical_mtu - ESP_OVERHEAD)


def open_tun(name: str, mtu: int, vnet_hdr: bool = False, persist: bool = False) -> int:
    """Create (or attach to) TUN device ``name``, set it up with ``mtu``; the non-blocking fd.

    ``vnet_hdr``: frames carry a ``virtio_net_hdr`` (``fswan.ipsec.coalesce``), so
    decrypted TCP can be written as GSO superpackets.  No offload is enabled for
    reads: the kernel still hands us finished, checksummed packets of at most ``mtu``.

    ``persist``: the device outlives the fd (``TUNSETPERSIST``).  The daemon asks
    for that so that a crash fails closed, as KLIPS did when pluto died: ``ipsec0``
    and the routes into it stay, and what they carry is dropped (a TUN nobody
    reads), where without them it would leave in clear by the default route.  A
    clean shutdown undoes it (:func:`release_tun`); the next daemon attaches.
    """
    import fcntl
    import os
    import struct

    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        fcntl.ioctl(fd, TUNSETIFF, struct.pack(
            "16sH", name.encode(), IFF_TUN | IFF_NO_PI | (IFF_VNET_HDR if vnet_hdr else 0)))
        if persist:
            fcntl.ioctl(fd, TUNSETPERSIST, 1)
        with IPRoute() as ipr:
            index = ipr.link_lookup(ifname=name)[0]
            ipr.link("set", index=index, mtu=mtu, txqlen=TUN_QUEUE, state="up")
    except BaseException:
        os.close(fd)
        raise
    # ICMP errors the data plane writes come from our own (local) address; the
    # kernel would call that a martian on ipsec0.  Decrypted packets arrive here
    # with the peer's client as source: no reverse-path filter on this device.
    for knob, value in (("accept_local", "1"), ("rp_filter", "0")):
        try:
            with open(f"/proc/sys/net/ipv4/conf/{name}/{knob}", "w") as handle:
                handle.write(value)
        except OSError:
            pass
    return fd


def release_tun(fd: int) -> None:
    """Make the TUN device of ``fd`` go with its last fd again (clean shutdown)."""
    import fcntl

    try:
        fcntl.ioctl(fd, TUNSETPERSIST, 0)
    except OSError:
        pass


#: the routing table (and rule priority) for the policy groups' nets: a table of its
#: own, consulted before main, so a group net never replaces an ordinary route (the
#: pump's clear sends, bound to the physical device, skip it and use main)
GROUP_TABLE = 220


def set_device_routes(
    device: str, add: list, remove: list, sources: list, table: int = GROUP_TABLE
) -> list[str]:
    """Route each net of ``add`` into ``device`` in ``table``, drop the routes of
    ``remove``, and make sure packets from each of ``sources`` (our client nets)
    look ``table`` up: only those are meant for the group eroutes.  The problems
    met, as text."""
    problems = []
    with IPRoute() as ipr:
        indexes = ipr.link_lookup(ifname=device)
        if not indexes:
            return [f"no device {device} for policy group routes"]
        present = {
            (rule.get_attr("FRA_SRC"), rule["src_len"])
            for rule in ipr.get_rules(family=2)
            if rule.get_attr("FRA_TABLE") == table
        }
        for source in sources:
            key = (str(source.network_address), source.prefixlen)
            if key in present or (source.prefixlen == 0 and (None, 0) in present):
                continue
            try:
                ipr.rule("add", table=table, priority=table, src=key[0], src_len=key[1])
            except Exception as error:  # netlink errors carry errno and text
                problems.append(f"ip rule add from {source} lookup {table}: {error}")
        for net, command in [(n, "replace") for n in add] + [(n, "del") for n in remove]:
            try:
                ipr.route(command, dst=str(net), oif=indexes[0], table=table)
            except Exception as error:
                if command == "del":
                    continue
                problems.append(f"ip route {command} {net} dev {device} table {table}: {error}")
    return problems


def remove_source_rules(sources: list, table: int = GROUP_TABLE) -> list[str]:
    """Drop the ``from SOURCE lookup table`` rules ``set_device_routes`` added (at
    shutdown, or when a client net no longer needs the groups).  The problems met."""
    problems = []
    with IPRoute() as ipr:
        for source in sources:
            try:
                ipr.rule("del", table=table, priority=table, src=str(source.network_address),
                         src_len=source.prefixlen)
            except Exception as error:  # already gone: nothing to undo
                if "No such file" not in str(error):
                    problems.append(f"ip rule del from {source} lookup {table}: {error}")
    return problems


class TunAddresses:
    """Addresses on the TUN device (a Mode Config client's virtual IP, as /32 or /128):
    ``daemon.tunnels.VirtualAddresses`` over netlink.  Adding one already there, or
    removing one gone, is not an error; anything else raises (``OSError``-like)."""

    def add(self, interface: str, address: IPv4Address | IPv6Address) -> None:
        self._change("add", interface, address)

    def remove(self, interface: str, address: IPv4Address | IPv6Address) -> None:
        self._change("del", interface, address)

    @staticmethod
    def _change(command: str, interface: str, address: IPv4Address | IPv6Address) -> None:
        with IPRoute() as ipr:
            indexes = ipr.link_lookup(ifname=interface)
            if not indexes:
                raise OSError(errno.ENODEV, f"no device {interface}")
            try:
                ipr.addr(command, index=indexes[0], address=str(address),
                         prefixlen=address.max_prefixlen)
            except Exception as error:  # netlink errors carry the errno as .code
                code = getattr(error, "code", None)
                if (command, code) in (("add", errno.EEXIST), ("del", errno.EADDRNOTAVAIL)):
                    return
                raise
