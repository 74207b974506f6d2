"""Every ipsec.conf keyword fswan knows, in one literal table.

Rules this table encodes (read by the parser, the renderer and the docs):

* A keyword lives in ``config setup`` or in ``conn``; using it in the other
  section is an error that says where it belongs.
* An entry marked ``end=True`` is written once as ``leftX``; the table
  generates its ``rightX`` twin.  Its model field is on ``End``.
* ``aliases`` are older, Openswan, Libreswan or strongSwan spellings of the
  same keyword; a section that sets a keyword twice (under any spelling) keeps
  the later value with a warning, as Libreswan does.  Names are matched
  without regard to case, as Openswan and Libreswan do.
* ``supported=False`` keywords are parsed and validated, stored, and then
  reported as "not yet supported" with file:line, except when their value is
  one of ``ok_values`` (the setting asks for what fswan already does).
* ``field`` names the model attribute (``Connection``/``End``/``SetupConfig``)
  the value lands in; ``None`` means the value is only kept in ``settings``.
* ``refuse`` maps values the original daemons accept to why a conn using
  them cannot run in fswan (``authby=null``): that conn is refused alone
  with file:line and the reason, the rest of the file loads.
* ``model_values`` maps a canonical word to the model value when they differ
  (``uniqueids=keep`` is stored as ``True``).
* ``clamp``: a time above ``maximum`` is cut to it with a warning (Libreswan)
  instead of being an error.
* ``default`` is the FreeS/WAN 2.x default as ipsec.conf text ("" = unset);
  the model carries the same defaults as dataclass field values.

Every keyword of Openswan 2.6, Libreswan 3.x/4.x and strongSwan 5.x's
ipsec.conf is in the table: implemented, as an alias, or "not yet supported"
(then ``field=None`` and usually ``Kind.STRING``, so any value those daemons
take is taken).  A keyword none of them knows is an error.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

from fswan.config.model import (
    Auto,
    AuthBy,
    ConnType,
    DpdAction,
    Encapsulation,
    FailureShunt,
    Fragmentation,
    Ikev2Policy,
)
from fswan.suites import group_spellings


class Section(str, enum.Enum):
    SETUP = "setup"
    CONN = "conn"
    #: ``ca NAME`` (X.509 patch, strongSwan, Openswan): parsed and listed; used once certificates land
    CA = "ca"


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
    SOURCEIP = "source address"
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
    POOL = "address range"
    ADDRESSES = "addresses"
    WORDS = "names"


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
    #: canonical word (or bool) -> why a conn using it cannot run in fswan (the conn alone is refused)
    refuse: Mapping[Any, str] | None = None
    #: canonical word -> model value, where they differ
    model_values: Mapping[str, Any] | None = None
    #: above ``maximum``: clamp with a warning instead of an error
    clamp: bool = False

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


def _later(section: "Section", names: str, end: bool = False) -> tuple[Keyword, ...]:
    """Keywords recognised and listed as "not yet supported" whatever their value.

    ``names`` is whitespace separated; ``name=alias1,alias2`` adds spellings;
    ``#`` starts a comment (which flavour the names come from)."""
    found = []
    for line in names.splitlines():
        for word in line.split("#", 1)[0].split():
            name, _, aliases = word.partition("=")
            found.append(Keyword(name, section, Kind.STRING, supported=False, field=None, end=end,
                                 aliases=tuple(a for a in aliases.split(",") if a)))
    return tuple(found)

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
    Keyword("plutodebug", _SETUP, Kind.DEBUG, "none",
            doc="debug categories logged as | lines: none, all, or raw crypt parsing emitting "
                "control lifecycle klips dns oppo natt dpd (whack --debug-* changes them)"),
    Keyword("plutoopts", _SETUP, Kind.STRING, supported=False),
    Keyword("plutostderrlog", _SETUP, Kind.STRING, supported=False),
    Keyword("plutorestartoncrash", _SETUP, Kind.ENUM, supported=False, field=None, ok_values=("no",),
            choices=_choices("yes", "no", true="yes", restart="yes", false="no", die="no"),
            doc="fswan does not restart itself: a service manager does"),
    Keyword("dumpdir", _SETUP, Kind.STRING, supported=False),
    Keyword("manualstart", _SETUP, Kind.NAMES, supported=False),
    # the daemon is pluto: running without it, or waiting for it, has no meaning here
    Keyword("pluto", _SETUP, Kind.BOOL, "yes", supported=False, ok_values=(True,)),
    Keyword("plutowait", _SETUP, Kind.BOOL, "no", supported=False, ok_values=(False,)),
    Keyword("prepluto", _SETUP, Kind.STRING, supported=False),
    Keyword("postpluto", _SETUP, Kind.STRING, supported=False),
    Keyword("fragicmp", _SETUP, Kind.BOOL, "yes"),
    Keyword("hidetos", _SETUP, Kind.BOOL, "yes"),
    # ok_values: the words as parsed and the model's booleans ("keep" is the one fswan lacks)
    Keyword("uniqueids", _SETUP, Kind.ENUM, "yes", supported=False, ok_values=("yes", "no", True, False),
            choices=_choices("yes", "no", "keep", replace="yes", never="no", true="yes", false="no"),
            model_values=MappingProxyType({"yes": True, "no": False, "keep": True})),
    Keyword("overridemtu", _SETUP, Kind.INT, minimum=68, maximum=65535),
    # X.509 patch
    Keyword("nocrsend", _SETUP, Kind.BOOL, "no",
            doc="yes: send no certificate requests (CR payloads)"),
    Keyword("strictcrlpolicy", _SETUP, Kind.ENUM, "no", aliases=("crl-strict", "crl_strict"),
            choices=_choices("yes", "no", "ifuri", strict="yes"),
            doc="yes: a peer certificate without a current CRL from its issuer is rejected"),
    Keyword("crlcheckinterval", _SETUP, Kind.TIME, supported=False, field=None),
    # Openswan/Libreswan NAT-T
    Keyword("nat_traversal", _SETUP, Kind.BOOL, "yes"),
    Keyword("ike_fragment_size", _SETUP, Kind.INT, "1280", minimum=256, maximum=65535,
            doc="largest IP datagram carrying an IKE fragment (strongSwan's charon.fragment_size)"),
    Keyword("keep_alive", _SETUP, Kind.TIME, "20s", minimum=1, aliases=("keep-alive",)),
    # Libreswan/Openswan keywords people paste: recognised, not yet supported
    Keyword("protostack", _SETUP, Kind.STRING, supported=False, field=None),
    Keyword("virtual_private", _SETUP, Kind.VIRTUAL, aliases=("virtual-private",),
            doc="nets a vhost:%priv/vnet:%priv peer behind NAT may claim; %v4:!net excludes"),
    Keyword("logfile", _SETUP, Kind.STRING, supported=False, field=None),
    Keyword("logtime", _SETUP, Kind.STRING, supported=False, field=None),
    Keyword("nhelpers", _SETUP, Kind.INT, supported=False, field=None, minimum=-1, maximum=4096),
    Keyword("listen", _SETUP, Kind.STRING, supported=False, field=None),
    Keyword("ikev1-policy", _SETUP, Kind.ENUM, supported=False, field=None, ok_values=("accept",),
            choices=_choices("accept", "reject", "drop")),
    Keyword("oe", _SETUP, Kind.STRING, supported=False, field=None),
    Keyword("ddos-mode", _SETUP, Kind.ENUM, "auto", choices=_choices("auto", "busy", "unlimited"),
            doc="busy mode under a flood of first messages: auto (from ddos-ike-threshold "
                "half-open IKE SAs on, or while a cap drops states), busy, unlimited"),
    Keyword("ddos-ike-threshold", _SETUP, Kind.INT, "25000", minimum=1, maximum=1000000,
            doc="half-open IKE SAs from which ddos-mode=auto is busy"),
    Keyword("max-halfopen-ike", _SETUP, Kind.INT, "50000", minimum=1, maximum=1000000,
            doc="unverified half-open IKE SAs kept at most; the oldest go first"),
    Keyword("metrics", _SETUP, Kind.STRING,
            doc="ADDR:PORT where the Prometheus metrics endpoint listens (off when unset)"),
    *_later(_SETUP, """
        # Openswan 2.6 and Libreswan 3.x
        plutostderrlogtime perpeerlog perpeerlogdir disable_port_floating plutofork
        ikeport nat_ikeport=nat-ikeport force_busy=force-busy secctx_attr_value=secctx-attr-value
        # Libreswan 4.x
        curl-iface=curl_iface curl-timeout=curl_timeout myvendorid logappend logip audit-log
        dnssec-enable dnssec-rootkey-file dnssec-anchors ipsecdir nssdir secretsfile statsbin
        shuntlifetime global-redirect global-redirect-to ocsp-strict=ocsp_strict
        ocsp-enable=ocsp_enable ocsp-uri=ocsp_uri ocsp-timeout=ocsp_timeout
        ocsp-trustname=ocsp_trust_name ocsp-cache-size ocsp-cache-min-age ocsp-cache-max-age
        ocsp-method seccomp ike-socket-bufsize
        ike-socket-errqueue nflog-all xfrmlifetime seedbits listen-tcp listen-udp drop-oppo-null
        ikev1-secctx-attr-type secctx-attr-type
        # strongSwan 4.x/5.x
        charondebug charonstart plutostart packetdefault pkcs11module pkcs11initargs
        pkcs11keepstate pkcs11proxy
    """),
    Keyword("cachecrls", _SETUP, Kind.BOOL, supported=False, field=None, ok_values=(False,)),
    Keyword("force_keepalive", _SETUP, Kind.BOOL, supported=False, field=None, ok_values=(False,),
            doc="keepalives are sent only when a NAT is detected"),
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
                             "ecdsa", "xauthpsk", "xauthrsasig", "null", "eaponly", "rsa-sha2",
                             psk="secret", rsa="rsasig", pubkey="rsasig", ecdsasig="ecdsa",
                             **{"rsasig|secret": "secret|rsasig", "rsa-sha1": "rsasig",
                                "rsa-sha2_256": "rsa-sha2", "rsa-sha2_384": "rsa-sha2",
                                "rsa-sha2_512": "rsa-sha2"}),
            refuse=MappingProxyType({
                "null": "NULL authentication is IKEv2 only",
                "eaponly": "EAP is IKEv2 only",
                "rsa-sha2": "RSA-SHA2 signatures (RFC 7427) are IKEv2 only",
            }),
            doc="a comma list (Libreswan) is read word by word; xauthpsk/xauthrsasig (strongSwan) "
                "are secret/rsasig with XAUTH, our role from xauth="),
    Keyword("leftauth", _CONN, Kind.STRING, end=True, field=None,
            doc="strongSwan/Libreswan: psk/secret or pubkey/rsasig/rsa on both ends set authby="),
    Keyword("leftauth2", _CONN, Kind.STRING, end=True, field=None, supported=False),
    Keyword("left", _CONN, Kind.HOST, end=True, doc="required"),
    Keyword("leftsubnet", _CONN, Kind.CLIENT, end=True,
            doc="default: the host alone; vhost:/vnet: for a peer behind NAT"),
    Keyword("leftnexthop", _CONN, Kind.NEXTHOP, "%direct", end=True,
            doc="an address, a host name (resolved when the conn is added), %defaultroute or %direct"),
    Keyword("leftfirewall", _CONN, Kind.BOOL, "no", end=True),
    Keyword("leftupdown", _CONN, Kind.STRING, end=True),
    Keyword("leftid", _CONN, Kind.ID, end=True, doc="default: the host address"),
    Keyword("leftrsasigkey", _CONN, Kind.RSAKEY, "%dnsondemand", end=True, aliases=("leftsigkey",)),
    Keyword("leftrsasigkey2", _CONN, Kind.RSAKEY, end=True),
    Keyword("leftcert", _CONN, Kind.STRING, end=True,
            doc="a PEM or DER file; relative names are under ipsec.d/certs"),
    Keyword("leftca", _CONN, Kind.STRING, end=True,
            doc="the DN of the CA that must have issued this end's certificate, or %same"),
    Keyword("leftsendcert", _CONN, Kind.ENUM, "ifasked", end=True,
            choices=_choices("always", "ifasked", "never", yes="always", no="never",
                             alwayssend="always", sendifasked="ifasked", neversend="never")),
    *_later(_CONN, """
        # strongSwan
        leftid2 leftcert2 leftca2 leftgroups leftgroups2 leftcertpolicy leftdns leftnatip
        # Libreswan and Openswan
        leftsubnets leftinterface-ip leftvti leftecdsakey leftpubkey leftckaid leftautheap
        leftspibase
    """, end=True),
    Keyword("lefthostaccess", _CONN, Kind.BOOL, end=True, field=None, supported=False, ok_values=(False,)),
    Keyword("leftallowany", _CONN, Kind.BOOL, end=True, field=None, supported=False, ok_values=(False,)),
    Keyword("leftcat", _CONN, Kind.BOOL, end=True, field=None, supported=False, ok_values=(False,)),
    Keyword("leftsubnetwithin", _CONN, Kind.SUBNET, end=True, supported=False),
    Keyword("leftprotoport", _CONN, Kind.PROTOPORT, end=True),
    Keyword("leftespenckey", _CONN, Kind.KEY, end=True, secret=True),
    Keyword("leftespauthkey", _CONN, Kind.KEY, end=True, secret=True),
    Keyword("leftahkey", _CONN, Kind.KEY, end=True, secret=True, supported=False),
    Keyword("leftespspi", _CONN, Kind.SPI, end=True),
    Keyword("leftahspi", _CONN, Kind.SPI, end=True, supported=False),
    # Libreswan end keywords
    Keyword("leftsourceip", _CONN, Kind.SOURCEIP, end=True,
            doc="an address of ours; %config: a Mode Config client (leftmodecfgclient=yes); "
                "a range or CIDR: the pool for this end (leftaddresspool=)"),
    Keyword("leftikeport", _CONN, Kind.PORT, "500", end=True),
    Keyword("keyexchange", _CONN, Kind.ENUM, "ike",
            choices=_choices("ike", "ikev1", "ikev2"),
            doc="ikev1: IKEv1 only; ikev2: IKEv2 only; ike: IKEv1 when we initiate, either "
                "as responder (ikev2= decides when set)"),
    Keyword("auth", _CONN, Kind.ENUM, "esp", supported=False, ok_values=("esp",), aliases=("phase2",),
            choices=_choices("esp", "ah", default="esp")),
    Keyword("pfs", _CONN, Kind.BOOL, "yes"),
    Keyword("keylife", _CONN, Kind.TIME, "8h", aliases=("lifetime", "salifetime", "ipsec-lifetime"),
            minimum=1, maximum=24 * H, clamp=True),
    Keyword("rekey", _CONN, Kind.BOOL, "yes"),
    Keyword("rekeymargin", _CONN, Kind.TIME, "9m", aliases=("rekeystart", "margintime")),
    Keyword("rekeyfuzz", _CONN, Kind.PERCENT, "100%"),
    Keyword("compress", _CONN, Kind.BOOL, "no", supported=False, ok_values=(False,)),
    Keyword("keyingtries", _CONN, Kind.KEYINGTRIES, "%forever", aliases=("rekeytries",)),
    Keyword("ikelifetime", _CONN, Kind.TIME, "1h", minimum=1, maximum=24 * H, clamp=True),
    Keyword("disablearrivalcheck", _CONN, Kind.BOOL, "no"),
    Keyword("failureshunt", _CONN, Kind.ENUM, "none", enum=FailureShunt,
            choices=_choices("none", "passthrough", "drop", "reject", hold="drop")),
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
            choices=_choices("clear", "hold", "restart", "none", restart_by_peer="restart"),
            doc="none (strongSwan) turns DPD off"),
    Keyword("encapsulation", _CONN, Kind.ENUM, "auto", enum=Encapsulation,
            choices=_choices("auto", "yes", "no")),
    Keyword("forceencaps", _CONN, Kind.BOOL, field=None, doc="yes = encapsulation=yes"),
    Keyword("fragmentation", _CONN, Kind.ENUM, "yes", enum=Fragmentation,
            aliases=("ike_frag", "ike-frag", "ikefragmentation"),
            choices=_choices("yes", "no", "force", "accept", never="no", insist="force"),
            doc="IKEv1 fragments of big Main/Aggressive Mode messages"),
    # Libreswan/Openswan keywords people paste: recognised, not yet supported
    Keyword("ikev2", _CONN, Kind.ENUM, "permit", enum=Ikev2Policy,
            choices=_choices("never", "permit", "propose", "insist",
                             no="never", yes="propose", always="insist"),
            doc="never: IKEv1 only; permit: IKEv1 when we initiate, either as responder; "
                "propose: IKEv2 when we initiate, either as responder; insist: IKEv2 only"),
    Keyword("ikev1", _CONN, Kind.BOOL, field=None, supported=False, ok_values=(True,)),
    Keyword("mobike", _CONN, Kind.BOOL, field=None, supported=False, ok_values=(False,),
            doc="MOBIKE (RFC 4555) is not implemented: no is what fswan does"),
    Keyword("narrowing", _CONN, Kind.BOOL, field=None, supported=False, ok_values=(False,)),
    Keyword("sha2-truncbug", _CONN, Kind.BOOL, field=None, supported=False, ok_values=(False,),
            aliases=("sha2_truncbug",)),
    # XAUTH and Mode Config (issue 13): Libreswan's spellings, strongSwan's beside them
    Keyword("leftxauthserver", _CONN, Kind.BOOL, "no", end=True,
            doc="this end asks the other for a user name and password after phase 1"),
    Keyword("leftxauthclient", _CONN, Kind.BOOL, "no", end=True,
            doc="this end answers XAUTH with leftxauthusername= and its XAUTH secret"),
    Keyword("leftxauthusername", _CONN, Kind.STRING, end=True, field="xauthusername",
            aliases=("leftusername", "leftxauthname"),
            doc="the XAUTH user name this end sends as client"),
    Keyword("leftmodecfgserver", _CONN, Kind.BOOL, "no", end=True,
            doc="this end hands the other an inner address (Mode Config)"),
    Keyword("leftmodecfgclient", _CONN, Kind.BOOL, "no", end=True,
            doc="this end takes an inner address (Mode Config); leftsourceip=%config says the same"),
    Keyword("leftaddresspool", _CONN, Kind.POOL, end=True,
            doc="first-last or a CIDR: the addresses a Mode Config server hands out"),
    Keyword("xauthby", _CONN, Kind.ENUM, "file", supported=False, ok_values=("file", "alwaysok"),
            choices=_choices("file", "pam", "alwaysok"),
            doc="file: XAUTH entries of ipsec.secrets; alwaysok: any password"),
    Keyword("xauthfail", _CONN, Kind.ENUM, "hard", choices=_choices("hard", "soft"),
            doc="hard: a failed XAUTH deletes the ISAKMP SA; soft: it stays, without IPsec SAs"),
    Keyword("xauth", _CONN, Kind.ENUM, "client", field=None, choices=_choices("client", "server"),
            doc="strongSwan: our XAUTH role with authby=xauthpsk|xauthrsasig"),
    Keyword("xauth_identity", _CONN, Kind.STRING,
            doc="strongSwan: the XAUTH user name we send when no leftxauthusername= is set"),
    Keyword("modecfgpull", _CONN, Kind.BOOL, "no",
            doc="yes: the client asks for its address; no: the server pushes it"),
    Keyword("modeconfig", _CONN, Kind.ENUM, field=None, choices=_choices("push", "pull"),
            doc="strongSwan: pull = modecfgpull=yes, push = modecfgpull=no"),
    Keyword("modecfgdns", _CONN, Kind.ADDRESSES,
            doc="DNS servers handed to Mode Config clients, separated by commas or spaces"),
    Keyword("modecfgdns1", _CONN, Kind.ADDRESSES, field=None,
            doc="(Openswan) more DNS servers, after modecfgdns="),
    Keyword("modecfgdns2", _CONN, Kind.ADDRESSES, field=None,
            doc="(Openswan) more DNS servers, after modecfgdns1="),
    Keyword("modecfgdomains", _CONN, Kind.WORDS, aliases=("modecfgdomain",),
            doc="DNS domains handed to Mode Config clients, separated by commas or spaces"),
    Keyword("modecfgbanner", _CONN, Kind.STRING, doc="a text shown by Mode Config clients"),
    Keyword("remote_peer_type", _CONN, Kind.ENUM, field=None, supported=False,
            ok_values=("ietf",), choices=_choices("cisco", "ietf"), aliases=("remote-peer-type",)),
    Keyword("nat-ikev1-method", _CONN, Kind.ENUM, field=None, supported=False,
            choices=_choices("drafts", "rfc", "both", "none")),
    Keyword("cisco-unity", _CONN, Kind.BOOL, field=None, supported=False, ok_values=(False,),
            aliases=("cisco_unity",)),
    Keyword("pfsgroup", _CONN, Kind.ENUM, choices=MappingProxyType(group_spellings()),
            doc="the PFS group for every esp= proposal, replacing the one esp= names"),
    Keyword("nat-keepalive", _CONN, Kind.BOOL, field=None, supported=False, ok_values=(True,),
            aliases=("nat_keepalive",)),
    Keyword("installpolicy", _CONN, Kind.BOOL, field=None, supported=False, ok_values=(True,)),
    Keyword("sha256_96", _CONN, Kind.BOOL, field=None, supported=False, ok_values=(False,)),
    Keyword("mediation", _CONN, Kind.BOOL, field=None, supported=False, ok_values=(False,)),
    *_later(_CONN, """
        # strongSwan 5.x
        eap_identity aaa_identity ikedscp lifebytes marginbytes lifepackets
        marginpackets reauth closeaction inactivity mediated_by me_peerid
        reqid replay_window mark mark_in mark_out tfc eap
        # Openswan 2.6
        sareftrack loopback firstmsgid endaddrfamily tunneladdrfamily
        # Libreswan 3.x/4.x
        hostaddrfamily clientaddrfamily connaddrfamily ppk intermediate esn decap-dscp
        nopmtudisc pam-authorize send-redirect redirect-to accept-redirect accept-redirect-to
        initial-contact=initial_contact send-no-esp-tfc fake-strongswan
        send-vendorid=send_vendorid ms-dh-downgrade require-id-on-certificate dns-match-id
        ipsec-max-bytes ipsec-max-packets retransmit-timeout retransmit-interval ikepad
        labeled-ipsec=labeled_ipsec policy-label=policy_label sec-label
        nm-configured=nm_configured modecfgwins1 modecfgwins2 ignore-peer-dns mark-in mark-out
        vti-interface vti-routing vti-shared ipsec-interface nic-offload overlapip
        replay-window negotiationshunt enable-tcp tcp-remoteport connalias metric sendca mtu
        priority nflog
    """),
)

#: ``ca NAME`` section keywords (plus ``auto=`` and ``also=``, read by the parser itself)
CA_TABLE: tuple[Keyword, ...] = (
    Keyword("cacert", Section.CA, Kind.STRING, field=None,
            doc="a trust anchor file (PEM or DER); relative: under ipsec.d/cacerts"),
    Keyword("crluri", Section.CA, Kind.STRING, field=None, aliases=("crluri1",),
            doc="file://, a path (relative: under ipsec.d/crls) or http://; ldap:// is not"),
    Keyword("crluri2", Section.CA, Kind.STRING, field=None, doc="a second CRL URI"),
    *_later(Section.CA, """
        ocspuri=ocspuri1 ocspuri2 certuribase ldaphost ldapbase
    """),
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
            entries.append(replace(keyword, name=_twin_name(keyword.name),
                                   aliases=tuple(_twin_name(a) for a in keyword.aliases)))
        for entry in entries:
            key = (entry.section, entry.name)
            if key in expanded:
                raise AssertionError(f"keyword {entry.name} listed twice")
            expanded[key] = entry
    spellings = [(kw.section, name) for kw in expanded.values() for name in (kw.name, *kw.aliases)]
    if len(spellings) != len(set(spellings)):
        raise AssertionError("a keyword spelling is listed twice")
    return expanded


KEYWORDS: Mapping[tuple[Section, str], Keyword] = MappingProxyType(_expand(TABLE + CA_TABLE))

ALIASES: Mapping[tuple[Section, str], str] = MappingProxyType({
    (kw.section, alias): kw.name for kw in KEYWORDS.values() for alias in kw.aliases
})


def lookup(name: str, section: Section) -> Keyword | None:
    """The keyword ``name`` (or an alias of it, in any case) in ``section``; None if unknown there."""
    name = name.lower()
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
