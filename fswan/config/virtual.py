"""Virtual subnets for peers behind NAT: ``virtual_private=`` and ``rightsubnet=vhost:``/``vnet:``.

A road warrior behind a NAT names its private address (or net) as its Quick
Mode client, an address the responder cannot check against anything it knows.
Accepting any such claim would let a peer capture traffic for addresses it does
not own, so (as the NAT-T patch for FreeS/WAN and Openswan did) a conn must say
what its peer may claim, and ``config setup`` says which nets count as private:

* ``virtual_private=%v4:10.0.0.0/8,%v4:192.168.0.0/16,%v4:!10.0.151.0/24``: the
  private nets (``%v6:`` for IPv6); ``!`` excludes a net, e.g. our own LAN;
* ``rightsubnet=vhost:%priv,%no``: the peer's client is one host (``vnet:``: a
  net) that is ``%priv`` (inside virtual_private, touching no excluded net),
  ``%no`` (its own public address, i.e. not behind NAT), ``%all`` (anything),
  or inside one of the listed ``%v4:``/``%v6:`` nets.

Pure: parsing and the one decision, :meth:`VirtualSubnet.allows`.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_network
from typing import Union

IPAddress = Union[IPv4Address, IPv6Address]
IPNetwork = Union[IPv4Network, IPv6Network]

VIRTUAL_PREFIXES = ("vhost:", "vnet:")


class VirtualError(ValueError):
    """A virtual_private= or vhost:/vnet: value that does not parse (the text says why)."""


@dataclass(frozen=True)
class VirtualPrivate:
    """``virtual_private=``: the nets a ``%priv`` client must lie in, and those it must not touch."""

    allowed: tuple[IPNetwork, ...] = ()
    excluded: tuple[IPNetwork, ...] = ()

    def __str__(self) -> str:
        words = [f"%v{net.version}:{net}" for net in self.allowed]
        words += [f"%v{net.version}:!{net}" for net in self.excluded]
        return ",".join(words)

    def admits(self, client: IPNetwork) -> bool:
        if any(client.version == net.version and client.overlaps(net) for net in self.excluded):
            return False
        return _inside(client, self.allowed)


@dataclass(frozen=True)
class VirtualSubnet:
    """``leftsubnet=vhost:...`` / ``vnet:...`` as written."""

    text: str
    #: ``vnet:`` (a net may be claimed) rather than ``vhost:`` (one address only)
    network: bool = False
    no_nat: bool = False
    private: bool = False
    everything: bool = False
    nets: tuple[IPNetwork, ...] = ()

    def allows(self, client: IPNetwork, peer: IPAddress, private: VirtualPrivate) -> bool:
        """May the peer at ``peer`` name ``client`` as its Quick Mode client?"""
        if not self.network and client.num_addresses != 1:
            return False
        if self.no_nat and client.num_addresses == 1 and client.network_address == peer:
            return True
        if self.everything:
            return True
        if self.private and private.admits(client):
            return True
        return _inside(client, self.nets)

    def __str__(self) -> str:
        return self.text


def _inside(client: IPNetwork, nets: tuple[IPNetwork, ...]) -> bool:
    return any(
        client.version == net.version and client.subnet_of(net)  # type: ignore[arg-type]
        for net in nets
    )


def _net(word: str, what: str) -> IPNetwork:
    """``%v4:10.0.0.0/8`` -> the network (IP version checked)."""
    version, _, text = word.partition(":")
    try:
        net = ip_network(text, strict=True)
    except ValueError:
        raise VirtualError(f"{what}: {word!r} is not %v4:net/len or %v6:net/len") from None
    if (version == "%v4") != (net.version == 4):
        raise VirtualError(f"{what}: {word!r}: the net is not IPv{version[-1]}")
    return net


def parse_virtual_private(text: str) -> VirtualPrivate:
    """``%v4:10.0.0.0/8,%v6:fd00::/8,%v4:!10.0.151.0/24`` (commas and/or spaces)."""
    allowed: list[IPNetwork] = []
    excluded: list[IPNetwork] = []
    for word in text.replace(",", " ").split():
        if not word.startswith(("%v4:", "%v6:")):
            raise VirtualError(f"{word!r} is not %v4:net/len, %v6:net/len or %v4:!net/len")
        if word[4:].startswith("!"):
            excluded.append(_net(word[:4] + word[5:], "virtual_private"))
        else:
            allowed.append(_net(word, "virtual_private"))
    return VirtualPrivate(tuple(allowed), tuple(excluded))


def parse_virtual_subnet(text: str) -> VirtualSubnet:
    """``vhost:%priv,%no`` / ``vnet:%v4:192.168.0.0/16``."""
    word = text.strip()
    prefix = next((p for p in VIRTUAL_PREFIXES if word.startswith(p)), None)
    if prefix is None:
        raise VirtualError("expected vhost: or vnet: followed by %no, %priv, %all, %v4:net or %v6:net")
    flags = {"%no": False, "%priv": False, "%all": False}
    nets: list[IPNetwork] = []
    items = [item for item in word[len(prefix):].split(",") if item]
    if not items:
        raise VirtualError(f"{prefix} needs at least one of %no, %priv, %all, %v4:net, %v6:net")
    for item in items:
        if item in flags:
            flags[item] = True
        elif item.startswith(("%v4:", "%v6:")):
            nets.append(_net(item, prefix.rstrip(":")))
        else:
            raise VirtualError(f"{item!r} in {prefix}: expected %no, %priv, %all, %v4:net or %v6:net")
    return VirtualSubnet(word, prefix == "vnet:", flags["%no"], flags["%priv"], flags["%all"],
                         tuple(nets))
