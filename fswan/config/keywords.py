"""Every ipsec.conf keyword fswan knows, in one literal table.

Rules this table encodes (read by the parser, the renderer and the docs):

* A keyword lives in ``config setup`` or in ``conn``; using it in the other
  section is an error that says where it belongs.
* An entry marked ``end=True`` is written once as ``leftX``; the table
  generates its ``rightX`` twin.  Its model field is on ``End``.
* ``aliases`` are older or Libreswan spellings of the same keyword; a
  section that sets a keyword under two spellings sets it twice (an error).
* ``supported=False`` keywords are parsed and validated, stored, and then
  reported as "not yet supported" with file:line, except when their value is
  one of ``ok_values`` (the setting asks for what fswan already does).
* ``field`` names the model attribute (``Connection``/``End``/``SetupConfig``)
  the value lands in; ``None`` means the value is only kept in ``settings``.
* ``default`` is the FreeS/WAN 2.x default as ipsec.conf text ("" = unset);
  the model carries the same defaults as dataclass field values.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

from fswan.config.model import Auto, AuthBy, ConnType, DpdAction, Encapsulation, FailureShunt


class Section(str, enum.Enum):
    SETUP = "setup"
    CONN = "conn"


class Kind(str, enum.Enum):
    """How a value is parsed (see ``fswan.config.values``)."""

    BOOL = "yes/no"
    TIME = "time"
    PERCENT = "percent"
    INT = "integer"
    KEYINGTRIES = "count or %forever"
    SPI = "spi"
    SPIBASE = "spi base"
    HOST = "host"
    NEXTHOP = "nexthop"
    ADDRESS = "address"
    SUBNET = "subnet"
    CLIENT = "subnet or vhost:/vnet:"
    VIRTUAL = "virtual nets"
    ID = "id"
    RSAKEY = "rsa key"
    KEY = "binary key"
    PROTOPORT = "protocol/port"
    PORT = "port"
    ENUM = "choice"
    STRING = "text"
    NAMES = "conn names"
    ALGS = "algorithms"
    DEBUG = "debug names"
    SYSLOG = "facility.priority"
    INTERFACES = "interfaces"


#: Marks "field name = keyword name" in the table below.
SAME = "="


@dataclass(frozen=True)
class Keyword:
    name: str
    section: Section
    kind: Kind
    default: str = ""
    aliases: tuple[str, ...] = ()
    supported: bool = True
    #: parsed values for which an unsupported keyword is harmless (what fswan does anyway)
    ok_values: tuple[Any, ...] = ()
    #: model attribute; SAME = the keyword name; None = kept in settings only
    field: str | None = SAME
    #: a left*/right* keyword (field on End); the table lists the left form only
    end: bool = False
    #: accepted word -> canonical word, for Kind.ENUM
    choices: Mapping[str, str] | None = None
    #: the model enum the canonical word converts to
    enum: type[enum.Enum] | None = None
    minimum: float | None = None
    maximum: float | None = None
    #: never printed (checkconfig, JSON, logs)
    secret: bool = False
    doc: str = ""

    @property
    def model_field(self) -> str | None:
        if self.field != SAME:
            return self.field
        if self.end:
            return "host" if self.name in ("left", "right") else self.name[len(self.side):]
        return self.name.replace("-", "_")

    @property
    def side(self) -> str:
        """``left`` or ``right`` for end keywords, else ""."""
        if not self.end:
            return ""
        return "left" if self.name.startswith("left") else "right"

    def is_unsupported_value(self, value: Any) -> bool:
        """True when setting this keyword to ``value`` asks for something fswan lacks."""
        return not self.supported and value not in self.ok_values


def _choices(*words: str, **aliases: str) -> Mapping[str, str]:
    """Accepted words (canonical first, then alias=canonical) for an ENUM keyword."""
    table = {w: w for w in words}
    table.update(aliases)
    return MappingProxyType(table)


H = 3600.0

_SETUP, _CONN = Section.SETUP, Section.CONN

#: The table.  Order is the order checkconfig prints.
TABLE: tuple[Keyword, ...] = (
    # --- config setup: FreeS/WAN 2.x (_confread accepted list) ---
    Keyword("interfaces", _SETUP, Kind.INTERFACES, "%defaultroute"),
    Keyword("forwardcontrol", _SETUP, Kind.BOOL, "no", supported=False, ok_values=(False,)),
    Keyword("rp_filter", _SETUP, Kind.ENUM, "0", supported=False, ok_values=("%unchanged",),
            choices=_choices("%unchanged", "0", "1", "2")),
    Keyword("myid", _SETUP, Kind.ID),
    # logging goes through twistd (--syslog, --logfile): these two are not acted on
    Keyword("syslog", _SETUP, Kind.SYSLOG, "daemon.error", supported=False,
            ok_values=("daemon.error",)),
    Keyword("klipsdebug", _SETUP, Kind.DEBUG, "none", supported=False, ok_values=("none",)),
    Keyword("plutodebug", _SETUP, Kind.DEBUG, "none", supported=False, ok_values=("none",)),
    Keyword("plutoopts", _SETUP, Kind.STRING, supported=False),
    Keyword("plutostderrlog", _SETUP, Kind.STRING, supported=False),
    Keyword("plutorestartoncrash", _SETUP, Kind.BOOL, supported=False, field=None),
    Keyword("dumpdir", _SETUP, Kind.STRING, supported=False),
    Keyword("manualstart", _SETUP, Kind.NAMES, supported=False),
    # the daemon is pluto: running without it, or waiting for it, has no meaning here
    Keyword("pluto", _SETUP, Kind.BOOL, "yes", supported=False, ok_values=(True,)),
    Keyword("plutowait", _SETUP, Kind.BOOL, "no", supported=False, ok_values=(False,)),
    Keyword("prepluto", _SETUP, Kind.STRING, supported=False),
    Keyword("postpluto", _SETUP, Kind.STRING, supported=False),
    Keyword("fragicmp", _SETUP, Kind.BOOL, "yes"),
    Keyword("hidetos", _SETUP, Kind.BOOL, "yes"),
    Keyword("uniqueids", _SETUP, Kind.BOOL, "yes"),
    Keyword("overridemtu", _SETUP, Kind.INT, minimum=68, maximum=65535),
    # X.509 patch
    Keyword("nocrsend", _SETUP, Kind.BOOL, supported=False, field=None),
    Keyword("strictcrlpolicy", _SETUP, Kind.BOOL, supported=False, field=None),
    Keyword("crlcheckinterval", _SETUP, Kind.TIME, supported=False, field=None),
    # Openswan/Libreswan NAT-T
    Keyword("nat_traversal", _SETUP, Kind.BOOL, "yes"),
    Keyword("keep_alive", _SETUP, Kind.TIME, "20s", minimum=1),
    # Libreswan/Openswan keywords people paste: recognised, not yet supported
    Keyword("protostack", _SETUP, Kind.STRING, supported=False, field=None),
    Keyword("virtual_private", _SETUP, Kind.VIRTUAL,
            doc="nets a vhost:%priv/vnet:%priv peer behind NAT may claim; %v4:!net excludes"),
    Keyword("logfile", _SETUP, Kind.STRING, supported=False, field=None),
    Keyword("logtime", _SETUP, Kind.BOOL, supported=False, field=None),
    Keyword("nhelpers", _SETUP, Kind.INT, supported=False, field=None, minimum=-1, maximum=4096),
    Keyword("listen", _SETUP, Kind.ADDRESS, supported=False, field=None),
    Keyword("ikev1-policy", _SETUP, Kind.ENUM, supported=False, field=None, ok_values=("accept",),
            choices=_choices("accept", "reject", "drop")),
    Keyword("oe", _SETUP, Kind.STRING, supported=False, field=None),
    # --- conn: FreeS/WAN 2.x ---
    Keyword("also", _CONN, Kind.NAMES, field=None, doc="merge the named conns in (nested)"),
    Keyword("alsoflip", _CONN, Kind.NAMES, field=None, doc="as also=, with left/right swapped"),
    Keyword("type", _CONN, Kind.ENUM, "tunnel", enum=ConnType,
            choices=_choices("tunnel", "transport", "passthrough", "drop", "reject",
                             **{"pass": "passthrough"})),
    Keyword("auto", _CONN, Kind.ENUM, "ignore", enum=Auto,
            choices=_choices("ignore", "add", "route", "start", "manual",
                             ondemand="route", up="start")),
    Keyword("authby", _CONN, Kind.ENUM, "rsasig", enum=AuthBy,
            choices=_choices("secret", "rsasig", "secret|rsasig", "never",
                             psk="secret", rsa="rsasig", **{"rsasig|secret": "secret|rsasig"})),
    Keyword("left", _CONN, Kind.HOST, end=True, doc="required"),
    Keyword("leftsubnet", _CONN, Kind.CLIENT, end=True,
            doc="default: the host alone; vhost:/vnet: for a peer behind NAT"),
    Keyword("leftnexthop", _CONN, Kind.NEXTHOP, "%direct", end=True),
    Keyword("leftfirewall", _CONN, Kind.BOOL, "no", end=True),
    Keyword("leftupdown", _CONN, Kind.STRING, end=True),
    Keyword("leftid", _CONN, Kind.ID, end=True, doc="default: the host address"),
    Keyword("leftrsasigkey", _CONN, Kind.RSAKEY, "%dnsondemand", end=True),
    Keyword("leftrsasigkey2", _CONN, Kind.RSAKEY, end=True),
    Keyword("leftcert", _CONN, Kind.STRING, end=True, supported=False),
    Keyword("leftca", _CONN, Kind.STRING, end=True, supported=False),
    Keyword("leftsubnetwithin", _CONN, Kind.SUBNET, end=True, supported=False),
    Keyword("leftprotoport", _CONN, Kind.PROTOPORT, end=True),
    Keyword("leftespenckey", _CONN, Kind.KEY, end=True, secret=True),
    Keyword("leftespauthkey", _CONN, Kind.KEY, end=True, secret=True),
    Keyword("leftahkey", _CONN, Kind.KEY, end=True, secret=True, supported=False),
    Keyword("leftespspi", _CONN, Kind.SPI, end=True),
    Keyword("leftahspi", _CONN, Kind.SPI, end=True, supported=False),
    # Libreswan end keywords
    Keyword("leftsourceip", _CONN, Kind.ADDRESS, end=True),
    Keyword("leftikeport", _CONN, Kind.PORT, "500", end=True),
    Keyword("keyexchange", _CONN, Kind.ENUM, "ike",
            choices=_choices("ike", ikev1="ike")),
    Keyword("auth", _CONN, Kind.ENUM, "esp", supported=False, ok_values=("esp",),
            choices=_choices("esp", "ah")),
    Keyword("pfs", _CONN, Kind.BOOL, "yes"),
    Keyword("keylife", _CONN, Kind.TIME, "8h", aliases=("lifetime", "salifetime"),
            minimum=1, maximum=24 * H),
    Keyword("rekey", _CONN, Kind.BOOL, "yes"),
    Keyword("rekeymargin", _CONN, Kind.TIME, "9m", aliases=("rekeystart",)),
    Keyword("rekeyfuzz", _CONN, Kind.PERCENT, "100%"),
    Keyword("compress", _CONN, Kind.BOOL, "no", supported=False, ok_values=(False,)),
    Keyword("keyingtries", _CONN, Kind.KEYINGTRIES, "%forever", aliases=("rekeytries",)),
    Keyword("ikelifetime", _CONN, Kind.TIME, "1h", minimum=1, maximum=8 * H),
    Keyword("disablearrivalcheck", _CONN, Kind.BOOL, "no"),
    Keyword("failureshunt", _CONN, Kind.ENUM, "none", enum=FailureShunt,
            choices=_choices("none", "passthrough", "drop", "reject")),
    # manual keying
    Keyword("spibase", _CONN, Kind.SPIBASE),
    Keyword("spi", _CONN, Kind.SPI),
    Keyword("esp", _CONN, Kind.ALGS, aliases=("phase2alg",)),
    Keyword("espenckey", _CONN, Kind.KEY, secret=True),
    Keyword("espauthkey", _CONN, Kind.KEY, secret=True),
    Keyword("espreplay_window", _CONN, Kind.INT, "0", minimum=0, maximum=2048),
    Keyword("ah", _CONN, Kind.ALGS, supported=False),
    Keyword("ahkey", _CONN, Kind.KEY, secret=True, supported=False),
    Keyword("ahreplay_window", _CONN, Kind.INT, "0", supported=False, ok_values=(0,),
            minimum=0, maximum=2048),
    Keyword("_plutodevel", _CONN, Kind.STRING, supported=False, field=None),
    # Libreswan/Openswan keywords fswan implements
    Keyword("ike", _CONN, Kind.ALGS),
    Keyword("aggrmode", _CONN, Kind.BOOL, "no", aliases=("aggressive",)),
    Keyword("dpddelay", _CONN, Kind.TIME, doc="unset = no DPD; 0 also turns DPD off"),
    Keyword("dpdtimeout", _CONN, Kind.TIME, "120s", minimum=1),
    Keyword("dpdaction", _CONN, Kind.ENUM, "hold", enum=DpdAction,
            choices=_choices("clear", "hold", "restart")),
    Keyword("encapsulation", _CONN, Kind.ENUM, "auto", enum=Encapsulation,
            choices=_choices("auto", "yes", "no")),
    Keyword("forceencaps", _CONN, Kind.BOOL, field=None, doc="yes = encapsulation=yes"),
    # Libreswan/Openswan keywords people paste: recognised, not yet supported
    Keyword("ikev2", _CONN, Kind.ENUM, field=None, supported=False, ok_values=("never",),
            choices=_choices("never", "permit", "propose", "insist", "yes", no="never")),
    Keyword("mobike", _CONN, Kind.BOOL, field=None, supported=False, ok_values=(False,)),
    Keyword("fragmentation", _CONN, Kind.ENUM, field=None, supported=False, ok_values=("no",),
            choices=_choices("yes", "no", "force")),
    Keyword("ike_frag", _CONN, Kind.ENUM, field=None, supported=False, ok_values=("no",),
            choices=_choices("yes", "no", "force")),
    Keyword("narrowing", _CONN, Kind.BOOL, field=None, supported=False, ok_values=(False,)),
    Keyword("sha2-truncbug", _CONN, Kind.BOOL, field=None, supported=False, ok_values=(False,),
            aliases=("sha2_truncbug",)),
    Keyword("leftxauthserver", _CONN, Kind.BOOL, field=None, end=True, supported=False,
            ok_values=(False,)),
    Keyword("leftxauthclient", _CONN, Kind.BOOL, field=None, end=True, supported=False,
            ok_values=(False,)),
    Keyword("leftmodecfgserver", _CONN, Kind.BOOL, field=None, end=True, supported=False,
            ok_values=(False,)),
    Keyword("leftmodecfgclient", _CONN, Kind.BOOL, field=None, end=True, supported=False,
            ok_values=(False,)),
    Keyword("leftaddresspool", _CONN, Kind.STRING, field=None, end=True, supported=False),
    Keyword("xauthby", _CONN, Kind.ENUM, field=None, supported=False,
            choices=_choices("file", "pam", "alwaysok")),
    Keyword("modecfgpull", _CONN, Kind.BOOL, field=None, supported=False, ok_values=(False,)),
    Keyword("modecfgdns", _CONN, Kind.STRING, field=None, supported=False),
    Keyword("remote_peer_type", _CONN, Kind.ENUM, field=None, supported=False,
            ok_values=("ietf",), choices=_choices("cisco", "ietf")),
    Keyword("nat-ikev1-method", _CONN, Kind.ENUM, field=None, supported=False,
            choices=_choices("drafts", "rfc", "both", "none")),
    Keyword("cisco-unity", _CONN, Kind.BOOL, field=None, supported=False, ok_values=(False,)),
    Keyword("pfsgroup", _CONN, Kind.STRING, field=None, supported=False),
)

#: FreeS/WAN 1.x keywords removed in 2.0 (README.conf.V2): name -> what to do instead.
REMOVED: Mapping[str, str] = MappingProxyType({
    "plutoload": "set auto=add (or route/start) in each conn instead",
    "plutostart": "set auto=start in each conn instead",
    "plutobackgroundload": "delete it",
    "dump": "use dumpdir= instead",
    "no_eroute_pass": "use the packetdefault conn instead",
})

USER_KEY_PREFIXES = ("x-", "X-", "x_", "X_")


def _twin_name(name: str) -> str:
    if name.startswith("left"):
        return "right" + name[4:]
    if name.startswith("right"):
        return "left" + name[5:]
    return name


def _expand(table: tuple[Keyword, ...]) -> dict[tuple[Section, str], Keyword]:
    expanded: dict[tuple[Section, str], Keyword] = {}
    for keyword in table:
        entries = [keyword]
        if keyword.end:
            entries.append(replace(keyword, name=_twin_name(keyword.name)))
        for entry in entries:
            key = (entry.section, entry.name)
            if key in expanded:
                raise AssertionError(f"keyword {entry.name} listed twice")
            expanded[key] = entry
    return expanded


KEYWORDS: Mapping[tuple[Section, str], Keyword] = MappingProxyType(_expand(TABLE))

ALIASES: Mapping[tuple[Section, str], str] = MappingProxyType({
    (kw.section, alias): kw.name for kw in KEYWORDS.values() for alias in kw.aliases
})


def lookup(name: str, section: Section) -> Keyword | None:
    """The keyword ``name`` (or an alias of it) in ``section``; None if unknown there."""
    canonical = ALIASES.get((section, name), name)
    return KEYWORDS.get((section, canonical))


def twin(name: str) -> str:
    """``leftX`` <-> ``rightX`` for end keywords; other names unchanged."""
    keyword = KEYWORDS.get((Section.CONN, name))
    if keyword is None or not keyword.end:
        return name
    return _twin_name(name)


def names(section: Section) -> list[str]:
    """Every accepted spelling in ``section`` (for "did you mean" suggestions)."""
    found = [kw.name for kw in KEYWORDS.values() if kw.section is section]
    found += [alias for (sec, alias) in ALIASES if sec is section]
    return found


def in_section(section: Section) -> list[Keyword]:
    """The section's keywords in table order (left before right)."""
    return [kw for kw in KEYWORDS.values() if kw.section is section]


def is_user_key(name: str) -> bool:
    return name.startswith(USER_KEY_PREFIXES)
