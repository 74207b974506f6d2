"""Parsers for single ipsec.conf values.

Each parser takes the text of one value (already unquoted, never empty: an
empty value means "the default" and never reaches here) and returns a typed
Python value, or raises ``BadValue`` whose ``detail`` says what *is* allowed.
The caller adds the keyword and the file:line, so messages read
``bad value 'maybe' for pfs=: expected yes or no``.

Everything here is pure and total: any input either parses or raises
``BadValue`` (a ``ValueError``), never anything else.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from ipaddress import ip_address, ip_network

from fswan.config.encodings import EncodingError, decode_data
from fswan.config.ids import IdError, looks_like_dn, parse_id
from fswan.config.keys import KeyFormatError
from fswan.config.keys import parse_rsasigkey as parse_public_key
from fswan.config.model import DEFAULT_ROUTE, DIRECT, AddressRange, IPAddress, IPNetwork
from fswan.config.virtual import (
    VIRTUAL_PREFIXES,
    VirtualError,
    VirtualPrivate,
    VirtualSubnet,
    parse_virtual_private,
    parse_virtual_subnet,
)
from fswan.suites import parse_esp, parse_ike

#: ``%forever`` for time values that allow it.
FOREVER = math.inf

#: Host keywords (``left=``) that are not an address.
SPECIAL_HOSTS = (
    DEFAULT_ROUTE,
    "%any",
    "%any6",
    "%opportunistic",
    "%group",
    "%opportunisticgroup",
)
#: Libreswan's shorter spellings of the OE host words
_HOST_ALIASES = {"%any4": "%any", "%any6": "%any", "%oppo": "%opportunistic", "%oppogroup": "%opportunisticgroup"}
#: a DNS host name: dot-separated labels of letters, digits and '-', at least one letter
_HOSTNAME_RE = re.compile(r"(?=.*[A-Za-z])[A-Za-z0-9_]([A-Za-z0-9_-]{0,62})(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,62}))*\.?")

#: Protocol and service names for ``leftprotoport=`` (no /etc/services: pure).
PROTOCOLS: Mapping[str, int] = {
    "icmp": 1,
    "tcp": 6,
    "udp": 17,
    "gre": 47,
    "esp": 50,
    "ah": 51,
    "icmpv6": 58,
    "ipv6-icmp": 58,
    "sctp": 132,
}
SERVICES: Mapping[str, int] = {
    "ftp": 21,
    "ssh": 22,
    "telnet": 23,
    "smtp": 25,
    "domain": 53,
    "dns": 53,
    "bootps": 67,
    "bootpc": 68,
    "http": 80,
    "ntp": 123,
    "snmp": 161,
    "ldap": 389,
    "https": 443,
    "isakmp": 500,
    "syslog": 514,
    "l2tp": 1701,
    "pptp": 1723,
    "ipsec-nat-t": 4500,
}

_TIME_RE = re.compile(r"(\d+(?:\.\d+)?|\.\d+)([smhd]?)")
_TIME_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
_CONN_NAME_RE = re.compile(r"[a-zA-Z][a-zA-Z0-9._-]*")
_WORD_RE = re.compile(r"[A-Za-z0-9_+-]+")
_ALGS_RE = re.compile(r"[A-Za-z0-9_.;:+!-]+")
_SYSLOG_RE = re.compile(r"[a-z][a-z0-9]*\.[a-z]+")
_INTERFACE_RE = re.compile(r"(ipsec\d+)=(\S+)")

_HOST_FORMS = (
    "an IP address, a host name, %defaultroute, %any, %any6, %opportunistic, %group or %opportunisticgroup"
)


class Unrunnable(ValueError):
    """A value the original daemons accept, for a feature fswan lacks so badly that a conn
    using it cannot run: that conn is refused alone (``reason`` says why), the file loads."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Adjusted:
    """A parsed value that differs from what was written (a clamp, zeroed host bits):
    the setting takes ``value`` and ``note`` becomes a warning at its file:line."""

    __slots__ = ("value", "note")

    def __init__(self, value: object, note: str) -> None:
        self.value = value
        self.note = note


class BadValue(ValueError):
    """A value that does not parse.

    ``detail`` completes ``bad value 'x' for key=: <detail>``; when ``whole``
    is set the message reads ``key=x <detail>`` instead (for problems that
    are about the value itself, like host bits in a subnet).
    """

    def __init__(self, detail: str, *, whole: bool = False) -> None:
        super().__init__(detail)
        self.detail = detail
        self.whole = whole

    def message(self, keyword: str, value: str) -> str:
        if self.whole:
            return f"{keyword}={value} {self.detail}"
        return f"bad value {value!r} for {keyword}=: {self.detail}"


def is_conn_name(text: str) -> bool:
    """True for names pluto accepts after ``conn`` (``%default`` aside)."""
    return _CONN_NAME_RE.fullmatch(text) is not None


def parse_bool(text: str) -> bool:
    """``yes``/``no`` (FreeS/WAN); ``true``/``false`` as Libreswan and strongSwan also read."""
    word = text.strip().lower()
    if word in ("yes", "true"):
        return True
    if word in ("no", "false"):
        return False
    raise BadValue("expected yes or no")


def parse_time(
    text: str,
    *,
    minimum: float = 0.0,
    maximum: float | None = None,
    allow_forever: bool = False,
) -> float:
    """``30s``, ``9m``, ``1.5h``, ``8h``, ``2d`` or plain seconds, as seconds."""
    word = text.strip().lower()
    if allow_forever and word == "%forever":
        return FOREVER
    match = _TIME_RE.fullmatch(word)
    if match is None:
        forever = ", %forever" if allow_forever else ""
        raise BadValue(f"expected a time such as 30s, 9m, 1.5h, 8h, 2d or plain seconds{forever}")
    seconds = float(match.group(1)) * _TIME_UNITS[match.group(2)]
    if not math.isfinite(seconds):
        raise BadValue("time is too large")
    if seconds < minimum:
        raise BadValue(f"the minimum is {_limit_text(minimum)}")
    if maximum is not None and seconds > maximum:
        raise BadValue(f"the maximum is {_limit_text(maximum)}")
    return seconds


def _limit_text(seconds: float) -> str:
    """Limits read as the man page writes them: ``24h`` rather than ``1d``."""
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{int(seconds // 3600)}h"
    return format_time(seconds)


def format_time(seconds: float) -> str:
    """Seconds as the shortest exact ipsec.conf time (``8h``, ``9m``, ``90s``)."""
    if seconds == FOREVER:
        return "%forever"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    if seconds == int(seconds):
        return f"{int(seconds)}s"
    return f"{seconds:g}s"


def parse_int(text: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """A decimal or ``0x`` hex integer within [minimum, maximum]."""
    word = text.strip()
    try:
        if word.lower().startswith("0x"):
            value = int(word[2:], 16) if re.fullmatch(r"[0-9a-fA-F_]+", word[2:]) else None
        elif re.fullmatch(r"-?\d+", word):
            value = int(word)
        else:
            value = None
    except ValueError:
        value = None
    if value is None:
        raise BadValue(_range_text("expected an integer", minimum, maximum))
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise BadValue(_range_text("out of range: expected an integer", minimum, maximum))
    return value


def _range_text(prefix: str, minimum: int | None, maximum: int | None) -> str:
    if minimum is not None and maximum is not None:
        return f"{prefix} from {minimum} to {maximum}"
    if minimum is not None:
        return f"{prefix} of at least {minimum}"
    if maximum is not None:
        return f"{prefix} of at most {maximum}"
    return prefix


def parse_percent(text: str, *, maximum: int = 100000) -> int:
    """``100%`` (the ``%`` is optional), a non-negative whole percentage."""
    word = text.strip()
    if word.endswith("%"):
        word = word[:-1]
    if not re.fullmatch(r"\d{1,9}", word) or int(word) > maximum:
        raise BadValue("expected a percentage such as 100%")
    return int(word)


def parse_keyingtries(text: str) -> int:
    """A try count or ``%forever``; 0 means forever, as in pluto."""
    word = text.strip().lower()
    if word == "%forever":
        return 0
    try:
        return parse_int(word, minimum=0, maximum=2**31 - 1)
    except BadValue:
        raise BadValue("expected a number of tries or %forever (0 also means forever)") from None


def parse_spi(text: str) -> int:
    """An SPI: ``0x`` hex (or decimal) of at least 0x100 (lower values are reserved)."""
    try:
        value = parse_int(text, minimum=0, maximum=0xFFFFFFFF)
    except BadValue:
        raise BadValue("expected an SPI such as 0x200 (0x100 to 0xffffffff)") from None
    if value < 0x100:
        raise BadValue("SPIs below 0x100 are reserved: expected 0x100 to 0xffffffff")
    return value


def parse_spibase(text: str) -> int:
    """``spibase=0xhex0``: an SPI whose last hex digit is 0 (pluto adds to it)."""
    value = parse_spi(text)
    if value % 16:
        raise BadValue("expected an SPI base ending in hex digit 0, such as 0x200")
    return value


def parse_address(text: str) -> IPAddress:
    word = text.strip()
    try:
        return ip_address(word)
    except ValueError:
        raise BadValue("expected an IPv4 or IPv6 address") from None


def is_host_name(text: str) -> bool:
    """True for a DNS name (``vpn.example.com``): pluto resolves it when the conn is added."""
    return len(text) <= 253 and _HOSTNAME_RE.fullmatch(text) is not None and not _is_address(text)


def _is_address(text: str) -> bool:
    try:
        ip_address(text)
    except ValueError:
        return False
    return True


def parse_host(text: str) -> str:
    """``left=``: an address literal (canonical text), a special host word, or a host
    name kept as written (resolved through DNS when the conn is added, as pluto did).

    ``%any6`` becomes ``%any``: the peer's family comes from its packets.
    """
    word = text.strip()
    if word in _HOST_ALIASES:
        return _HOST_ALIASES[word]
    if word in SPECIAL_HOSTS:
        return word
    if word.startswith("%"):
        raise BadValue(f"expected {_HOST_FORMS}")
    try:
        return str(ip_address(word))
    except ValueError:
        pass
    if "," in word or "/" in word or "-" in word and _looks_like_range(word):
        raise Unrunnable(
            f"{word} lists several peers or a range (strongSwan): fswan needs one address or name per end"
        )
    if is_host_name(word):
        return word.rstrip(".").lower()
    raise BadValue(f"expected {_HOST_FORMS}")


def _looks_like_range(word: str) -> bool:
    first, _, last = word.partition("-")
    return _is_address(first.strip()) and _is_address(last.strip())


#: ``leftsourceip=`` words (strongSwan, Libreswan) asking for a Mode Config address
_CONFIG_SOURCEIP = ("%config", "%config4", "%config6", "%modeconfig", "%modecfg", "%cfg")
#: what :func:`parse_sourceip` returns for those words: this end is a Mode Config client
CONFIG_SOURCEIP = "%config"


def parse_sourceip(text: str) -> IPAddress | AddressRange | str:
    """``leftsourceip=``: an address of ours; strongSwan's ``%config`` (this end wants a
    virtual IP: :data:`CONFIG_SOURCEIP`) or a pool (a range or CIDR: the addresses
    handed to this end, as ``leftaddresspool=``)."""
    word = text.strip()
    try:
        return ip_address(word)
    except ValueError:
        pass
    if word.lower() in _CONFIG_SOURCEIP:
        return CONFIG_SOURCEIP
    if word.startswith("%"):
        raise Unrunnable("named address pools (strongSwan attr-sql) are not supported; "
                         "write the pool as a range or CIDR")
    if "," in word:
        raise Unrunnable("several pools (strongSwan) are not supported; write one range or CIDR")
    if "/" in word or "-" in word:
        return parse_address_range(word)
    raise BadValue("expected an IPv4 or IPv6 address, %config, or a pool (range or CIDR)")


def parse_address_range(text: str) -> AddressRange:
    """``leftaddresspool=``: ``first-last`` or a CIDR.  An IPv4 CIDR up to /30 leaves
    out its network and broadcast addresses (and an IPv6 one its all-zero anycast
    address), as strongSwan does, so no client gets an address routers treat specially."""
    word = text.strip()
    expected = "expected an address range such as 198.51.100.200-198.51.100.220 or a CIDR"
    if "/" in word:
        try:
            net = ip_network(word, strict=True)
        except ValueError:
            try:
                ip_network(word, strict=False)
            except ValueError:
                raise BadValue(expected) from None
            raise BadValue("has host bits set: give the network address", whole=True) from None
        first, last = net.network_address, net.broadcast_address
        if net.version == 4 and net.prefixlen <= 30:
            first, last = first + 1, last - 1
        elif net.version == 6 and net.prefixlen <= 126:
            first = first + 1
    else:
        low, dash, high = word.partition("-")
        if not dash:
            raise BadValue(expected)
        try:
            first, last = ip_address(low.strip()), ip_address(high.strip())
        except ValueError:
            raise BadValue(expected) from None
    try:
        return AddressRange(first, last)
    except ValueError as exc:
        raise BadValue(str(exc)) from None


def parse_address_list(text: str) -> tuple[IPAddress, ...]:
    """``modecfgdns=``: addresses separated by commas or spaces."""
    found = []
    for word in text.replace(",", " ").split():
        try:
            found.append(ip_address(word))
        except ValueError:
            raise BadValue(f"{word!r} is not an address: expected addresses separated by "
                           "commas or spaces") from None
    if not found:
        raise BadValue("expected addresses separated by commas or spaces")
    return tuple(found)


def parse_words(text: str) -> tuple[str, ...]:
    """``modecfgdomains=``: words (domain names) separated by commas or spaces."""
    words = tuple(text.replace(",", " ").split())
    if not words:
        raise BadValue("expected names separated by commas or spaces")
    return words


def parse_nexthop(text: str) -> str:
    """``leftnexthop=``: an address, a host name (resolved when added), ``%defaultroute`` or ``%direct``."""
    word = text.strip()
    if word in (DEFAULT_ROUTE, DIRECT):
        return word
    try:
        return str(ip_address(word))
    except ValueError:
        if is_host_name(word):
            return word.rstrip(".").lower()
        raise BadValue("expected an IP address, a host name, %defaultroute or %direct") from None


def parse_client(text: str) -> IPNetwork | VirtualSubnet | Adjusted:
    """``leftsubnet=``: a subnet, or ``vhost:``/``vnet:`` for a peer behind NAT."""
    word = text.strip()
    if word.startswith(VIRTUAL_PREFIXES):
        try:
            return parse_virtual_subnet(word)
        except VirtualError as error:
            raise BadValue(str(error)) from None
    if word == "%dynamic":
        return None  # type: ignore[return-value]  # strongSwan: the host alone, which is the default
    if "," in word or "[" in word:
        parts = [p.strip() for p in word.split(",")]
        if "[" in word or (len(parts) > 1 and all(_is_subnet(p) for p in parts)):
            raise Unrunnable(
                f"{word} lists several subnets or protocol/port selectors (strongSwan): fswan needs one "
                "subnet per conn (write one conn per subnet, with also= for the common part)"
            )
    return parse_subnet(word)


def _is_subnet(text: str) -> bool:
    try:
        ip_network(text, strict=False)
    except ValueError:
        return False
    return True


def parse_virtual_private_text(text: str) -> VirtualPrivate:
    """``virtual_private=``: ``%v4:net/len`` entries, ``%v4:!net/len`` to exclude."""
    try:
        return parse_virtual_private(text)
    except VirtualError as error:
        raise BadValue(str(error)) from None


def parse_subnet(text: str) -> IPNetwork | Adjusted:
    """``net/len`` or ``net/mask``; a bare address is a /32 (or /128).

    Host bits set (``10.0.0.1/24``) are zeroed with a warning, as Libreswan does:
    the result is then ``Adjusted``."""
    word = text.strip()
    if word.startswith(VIRTUAL_PREFIXES):
        raise BadValue("vhost:/vnet: is for leftsubnet=/rightsubnet= only: "
                       "expected a subnet such as 10.0.0.0/24")
    try:
        return ip_network(word, strict=True)
    except ValueError:
        pass
    try:
        loose = ip_network(word, strict=False)
    except ValueError:
        raise BadValue("expected a subnet such as 10.0.0.0/24 or 10.0.0.0/255.255.255.0") from None
    return Adjusted(loose, f"has host bits set; using {loose}")


#: ``leftid=`` words that stand for an ID taken from the certificate
CERT_ID_WORDS = ("%fromcert",)


is_dn_id = looks_like_dn


#: strongSwan's typed ID prefixes -> how pluto writes that ID
_TYPED_ID = {"fqdn:": "@", "dns:": "@", "email:": "", "rfc822:": "", "userfqdn:": "",
             "ipv4:": "", "ipv6:": "", "asn1dn:": ""}


def parse_id_text(text: str) -> str:
    """``leftid=``/``myid=``: checked, kept as written.

    Besides pluto's forms (checked with parse_id), the file may hold an X.500
    DN or ``%fromcert`` (used once certificates are supported), or a bare host
    name, which FreeS/WAN resolved through DNS into an address ID."""
    word = text.strip()
    prefix = next((p for p in _TYPED_ID if word.lower().startswith(p)), None)
    if prefix is not None:
        word = _TYPED_ID[prefix] + word[len(prefix):]
    try:
        parse_id(word)
    except IdError as exc:
        if is_host_name(word):
            return word
        raise BadValue(
            f"{exc}, a host name (resolved to its address), an X.500 DN or %fromcert"
        ) from None
    return word


def decode_binary(text: str) -> bytes:
    """FreeS/WAN's ttodata forms: ``0x`` hex (``_`` allowed), ``0s`` base64, ``0t`` text."""
    try:
        return decode_data(text.strip())
    except EncodingError as error:
        raise BadValue(f"{error}: expected 0x hex, 0s base64 or 0t text") from None


def parse_key(text: str) -> str:
    """A manual-keying key (``espenckey=0x...``): it must decode; kept as written."""
    decode_binary(text)
    return text.strip()


RSAKEY_WORDS = ("%none", "%dns", "%dnsonload", "%dnsondemand", "%cert")
#: strongSwan's leftsigkey=/leftrsasigkey=: a key file (``/etc/ipsec.d/public/x.pem``)
_KEY_FILE_RE = re.compile(r"[^\s%]+\.(pem|der|pub|key|asc)", re.IGNORECASE)


def parse_rsasigkey(text: str) -> str:
    """``leftrsasigkey=``: an RFC 3110 key as ``0s``/``0x``, or a ``%`` word; kept as written."""
    word = text.strip()
    if word in RSAKEY_WORDS:
        return word
    if word.startswith("/") or _KEY_FILE_RE.fullmatch(word) or word.startswith(("ssh:", "dns:")):
        raise Unrunnable(f"a public key from {word} (strongSwan) is not yet supported: "
                         "write the key itself (0s...)")
    if word[:2].lower() not in ("0s", "0x"):
        raise BadValue(
            "expected an RSA public key (0s... base64 or 0x... hex, RFC 3110), "
            "%none, %dns, %dnsonload, %dnsondemand or %cert"
        )
    try:
        parse_public_key(word)
    except KeyFormatError as error:
        raise BadValue(str(error)) from None
    return word


def parse_protoport(text: str) -> tuple[int, int]:
    """``17/1701``, ``udp/l2tp``, ``17/%any`` or just ``udp``: (protocol, port), 0 = any."""
    word = text.strip().lower()
    proto_text, slash, port_text = word.partition("/")
    expected = "expected protocol/port such as 17/1701, udp/l2tp or tcp/%any"
    if proto_text in PROTOCOLS:
        proto = PROTOCOLS[proto_text]
    elif re.fullmatch(r"\d{1,3}", proto_text) and int(proto_text) <= 255:
        proto = int(proto_text)
    else:
        raise BadValue(expected)
    if not slash or port_text in ("%any", "0"):
        return proto, 0
    if port_text in SERVICES:
        return proto, SERVICES[port_text]
    if re.fullmatch(r"\d{1,5}", port_text) and int(port_text) <= 65535:
        return proto, int(port_text)
    raise BadValue(expected)


def parse_port(text: str) -> int:
    try:
        return parse_int(text, minimum=1, maximum=65535)
    except BadValue:
        raise BadValue("expected a UDP port from 1 to 65535") from None


def parse_choice(text: str, choices: Mapping[str, str]) -> str:
    """One of ``choices`` (a map from accepted word to canonical word)."""
    word = text.strip()
    if word in choices:
        return choices[word]
    if word.lower() in choices:
        return choices[word.lower()]
    names = list(dict.fromkeys(choices))
    if len(names) == 1:
        allowed = names[0]
    else:
        allowed = ", ".join(names[:-1]) + " or " + names[-1]
    raise BadValue(f"expected {allowed}")


def parse_string(text: str) -> str:
    return text.strip()


def parse_names(text: str) -> tuple[str, ...]:
    """A list of conn names (``also=a b``, ``manualstart=``)."""
    names = tuple(text.replace(",", " ").split())
    for name in names:
        if not is_conn_name(name):
            raise BadValue(
                f"bad conn name {name!r}: names start with a letter and use letters, digits, '.', '_' and '-'"
            )
    return names


def parse_algs(text: str) -> str:
    """An ``ike=``/``esp=`` proposal list; checked for shape only (the IKE code owns meaning)."""
    word = text.strip()
    items = [item.strip() for item in word.split(",")]
    if not items or any(not item or not _ALGS_RE.fullmatch(item) for item in items):
        raise BadValue("expected algorithms such as aes128-sha1-modp2048 or 3des-md5, comma separated")
    return word


#: FreeS/WAN's manual-keying ``esp=`` form (``ipsec spi --esp 3des-md5-96``)
_MANUAL_ESP_RE = re.compile(r"[a-z0-9_]+-(md5|sha1)-96")


def parse_proposals(keyword: str, text: str) -> str:
    """``ike=``/``esp=``: the proposal lists the IKE engine will use, checked now so a
    refused or unknown algorithm is a config error with file:line, not a runtime one."""
    word = parse_algs(text)
    try:
        if keyword == "ike":
            parse_ike(word)
        elif keyword == "esp" and not _MANUAL_ESP_RE.fullmatch(word.lower()):
            parse_esp(word)
    except ValueError as error:
        # a well-formed list naming algorithms fswan lacks (ECP groups, GCM in IKE, DES ...):
        # the original daemons load it, so only this conn is refused
        raise Unrunnable(str(error)) from None
    return word


def parse_debug(text: str) -> str:
    """``klipsdebug=``/``plutodebug=``: ``none``, ``all`` or a list of names."""
    word = " ".join(text.replace(",", " ").split())
    if not word or not all(_WORD_RE.fullmatch(w) for w in word.split()):
        raise BadValue("expected none, all or a list of debug names")
    return word


def parse_syslog(text: str) -> str:
    word = text.strip().lower()
    if not _SYSLOG_RE.fullmatch(word):
        raise BadValue("expected facility.priority such as daemon.error")
    return word


def parse_interfaces(text: str) -> str:
    """``interfaces=``: ``%defaultroute``, ``%none`` or ``ipsecN=device`` pairs."""
    words = text.split()
    if words in (["%defaultroute"], ["%none"]):
        return words[0]
    if not words or not all(_INTERFACE_RE.fullmatch(w) for w in words):
        raise BadValue('expected %defaultroute, %none or pairs such as "ipsec0=eth1 ipsec1=ppp0"')
    return " ".join(words)
