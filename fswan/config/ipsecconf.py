"""The ipsec.conf parser: text in, a frozen ``Config`` out.

Rules (FreeS/WAN 2.x ``ipsec.conf(5)``, kept here so the code can be read
against them):

1. Lines are split on ``\\n`` only.  Blank lines and lines whose first
   non-blank character is ``#`` are ignored; elsewhere ``#`` starts a comment
   only after whitespace and outside double quotes.
2. Column 0 holds ``version 2`` (the first significant line; missing is a
   warning), ``config setup``, ``conn NAME``, or ``include GLOB``.  Anything
   else at column 0 is an error; ``key=value`` there says "must be indented".
3. Indented lines are ``key=value`` of the section above (space around ``=``
   is fine).  A value may be double quoted (spaces and ``#`` inside); an empty
   value means "the default" and wins over also=/%default like any setting.
4. ``include`` splices files in place; a relative glob is relative to the
   including file.  A pattern without wildcards must match; nesting deeper than
   10 levels (which is how loops end) is an error.
5. Several ``config setup``
   sections merge as one, as do several ``conn %default`` sections, which must
   come before every other conn and may not use also=/alsoflip=.
6. A conn's value for a keyword is, first found: the conn itself, then its
   also=/alsoflip= sections depth first in the order written (alsoflip swaps
   left*/right*), then ``%default``.  An also= chain may not repeat a conn.
7. ``left=``/``right=`` are required for every conn that can be loaded: all
   except those with ``auto=ignore`` that another conn names in also=, and
   except redefinitions of the implicit OE conns.

All problems are collected with file:line and raised together as
``ConfigErrors``; nothing else ever escapes ``parse_config``.
"""

from __future__ import annotations

import difflib
import posixpath
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from fswan.config import keywords as kw_table
from fswan.config import values
from fswan.config.errors import ConfigError, ConfigErrors, ConnRefused, Location
from fswan.config.keywords import Keyword, Kind, Section
from fswan.config.virtual import VirtualSubnet
from fswan.suites import ikev1_unusable, parse_ike
from fswan.config.model import (
    DEFAULT_ROUTE,
    AddressRange,
    Auto,
    AuthBy,
    CaSection,
    Config,
    Connection,
    Encapsulation,
    End,
    Ikev2Policy,
    SetupConfig,
    updown_is_command,
)

MAX_INCLUDE_DEPTH = 10
MAX_ALSO_DEPTH = 100
DEFAULT_CONN = "%default"
OE_DEFAULT_CONN = "%oedefault"
#: conns pluto defines itself; a file may redefine them (often just ``auto=ignore``)
IMPLICIT_CONNS = ("clear", "clear-or-private", "private-or-clear", "private", "block", "packetdefault")
_KEY_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]*")
_WILDCARDS = "*?["


class IncludeLoader(Protocol):
    """Where ``include`` reads from; the daemon passes a filesystem one, tests a dict."""

    def glob(self, pattern: str) -> list[str]:
        """Absolute (or main-file-relative) pattern -> sorted matching paths."""
        ...

    def read(self, path: str) -> str:
        """The file's text; raise OSError if it cannot be read."""
        ...


def parse_config(text: str, filename: str, loader: IncludeLoader | None = None) -> Config:
    """Parse ipsec.conf ``text`` (read from ``filename``); raise ConfigErrors listing every problem."""
    reader = _Reader(loader)
    reader.read_file(text, filename, (filename,), main=True)
    return _Builder(reader).build()


def load_config(path: str, loader: IncludeLoader) -> Config:
    """Read ``path`` through ``loader`` and parse it."""
    try:
        text = loader.read(path)
    except (OSError, UnicodeError) as exc:
        raise ConfigErrors([ConfigError(f"cannot read {path}: {_reason(exc)}")]) from None
    return parse_config(text, path, loader)


# --------------------------------------------------------------------------- values

_Parser = Callable[[Keyword, str], Any]


def _enum_value(keyword: Keyword, text: str) -> Any:
    choices = keyword.choices or {}
    if "," in text and keyword.name == "authby":
        # Libreswan: authby=rsasig,secret (or rsa-sha2,rsa-sha1 ...), read word by word
        words = {values.parse_choice(part, choices) for part in text.split(",") if part.strip()}
        refused = sorted(w for w in words if keyword.refuse and w in keyword.refuse)
        if refused and len(refused) == len(words):
            raise values.Unrunnable(keyword.refuse[refused[0]])  # type: ignore[index]
        words -= set(refused)
        word = "secret|rsasig" if words >= {"secret", "rsasig"} or "secret|rsasig" in words else min(words)
    else:
        word = values.parse_choice(text, choices)
    if keyword.enum is not None and word in keyword.enum._value2member_map_:
        return keyword.enum(word)
    return word


def _time_value(keyword: Keyword, text: str) -> float | values.Adjusted:
    try:
        seconds = values.parse_time(text, minimum=keyword.minimum or 0.0)
    except values.BadValue:
        raise
    if keyword.maximum is not None and seconds > keyword.maximum:
        limit = values._limit_text(keyword.maximum)
        if keyword.clamp:
            # keylife/ikelifetime: Libreswan's clamp-and-warn at pluto's limit (86400 s)
            return values.Adjusted(keyword.maximum, f"is more than the maximum {limit} (pluto's limit); using {limit}")
        raise values.BadValue(f"the maximum is {limit}")
    return seconds


_PARSERS: dict[Kind, _Parser] = {
    Kind.BOOL: lambda k, t: values.parse_bool(t),
    Kind.TIME: lambda k, t: _time_value(k, t),
    Kind.PERCENT: lambda k, t: values.parse_percent(t),
    Kind.INT: lambda k, t: values.parse_int(
        t,
        minimum=None if k.minimum is None else int(k.minimum),
        maximum=None if k.maximum is None else int(k.maximum),
    ),
    Kind.KEYINGTRIES: lambda k, t: values.parse_keyingtries(t),
    Kind.SPI: lambda k, t: values.parse_spi(t),
    Kind.SPIBASE: lambda k, t: values.parse_spibase(t),
    Kind.HOST: lambda k, t: values.parse_host(t),
    Kind.NEXTHOP: lambda k, t: values.parse_nexthop(t),
    Kind.ADDRESS: lambda k, t: values.parse_address(t),
    Kind.SOURCEIP: lambda k, t: values.parse_sourceip(t),
    Kind.SUBNET: lambda k, t: values.parse_subnet(t),
    Kind.CLIENT: lambda k, t: values.parse_client(t),
    Kind.VIRTUAL: lambda k, t: values.parse_virtual_private_text(t),
    Kind.ID: lambda k, t: values.parse_id_text(t),
    Kind.RSAKEY: lambda k, t: values.parse_rsasigkey(t),
    Kind.KEY: lambda k, t: values.parse_key(t),
    Kind.PROTOPORT: lambda k, t: values.parse_protoport(t),
    Kind.PORT: lambda k, t: values.parse_port(t),
    Kind.ENUM: _enum_value,
    Kind.STRING: lambda k, t: values.parse_string(t),
    Kind.NAMES: lambda k, t: values.parse_names(t),
    Kind.ALGS: lambda k, t: values.parse_proposals(k.name, t),
    Kind.DEBUG: lambda k, t: values.parse_debug(t),
    Kind.SYSLOG: lambda k, t: values.parse_syslog(t),
    Kind.INTERFACES: lambda k, t: values.parse_interfaces(t),
    Kind.POOL: lambda k, t: values.parse_address_range(t),
    Kind.ADDRESSES: lambda k, t: values.parse_address_list(t),
    Kind.WORDS: lambda k, t: values.parse_words(t),
}


def parse_value(keyword: Keyword, text: str) -> Any:
    """Parse one non-empty value of ``keyword``; raise ``values.BadValue`` for a bad one,
    ``values.Unrunnable`` for one fswan cannot run; may return ``values.Adjusted``."""
    value = _PARSERS[keyword.kind](keyword, text)
    if keyword.refuse and isinstance(value, (str, bool)) and value in keyword.refuse:
        raise values.Unrunnable(keyword.refuse[value])  # type: ignore[index]
    return value


# --------------------------------------------------------------------------- sections


@dataclass
class _Setting:
    """One ``key=value`` line: the canonical key, how it was written, and its parsed value."""

    key: str
    written: str
    raw: str
    location: Location
    #: parsed value; None for an empty value (= default) or an invalid one
    value: Any = None
    valid: bool = True
    #: why a conn with this setting cannot run in fswan (the conn alone is refused)
    refusal: str | None = None

    @property
    def is_set(self) -> bool:
        return self.valid and self.raw != ""


@dataclass
class _Section:
    kind: Section
    name: str
    location: Location
    settings: dict[str, _Setting] = field(default_factory=dict)
    user: dict[str, _Setting] = field(default_factory=dict)
    #: (target conn, location of the also= line, flip)
    also: list[tuple[str, Location, bool]] = field(default_factory=list)
    #: a broken header: read its lines (to avoid cascades) but keep nothing
    discard: bool = False

    @property
    def label(self) -> str:
        if self.kind is Section.SETUP:
            return "config setup"
        return f'{self.kind.value} "{self.name}"'


def _cut_comment(text: str) -> str:
    """Drop a trailing ``# comment`` (``#`` after whitespace)."""
    for index, char in enumerate(text):
        if char == "#" and index > 0 and text[index - 1] in " \t":
            return text[:index]
    return text


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower() if exc.strerror[:1].isupper() else exc.strerror
    return str(exc) or type(exc).__name__


class _Reader:
    """Turns files into sections, following includes; collects errors as it goes."""

    def __init__(self, loader: IncludeLoader | None) -> None:
        self.loader = loader
        self.errors: list[ConfigError] = []
        self.warnings: list[ConfigError] = []
        self.files: list[str] = []
        self.setup: _Section | None = None
        self.default: _Section | None = None
        #: ``conn %oedefault`` (Openswan): defaults for the implicit OE conns only
        self.oedefault: _Section | None = None
        self.conns: dict[str, _Section] = {}
        self.cas: dict[str, _Section] = {}
        self.current: _Section | None = None
        self._seen_errors: set[tuple[str, Location | None]] = set()

    def error(self, message: str, location: Location | None) -> None:
        key = (message, location)
        if key not in self._seen_errors:
            self._seen_errors.add(key)
            self.errors.append(ConfigError(message, location))

    # -- files and lines

    def read_file(self, text: str, filename: str, stack: tuple[str, ...], main: bool) -> None:
        if filename not in self.files:
            self.files.append(filename)
        self.current = None
        first = True
        for number, line in enumerate(text.split("\n"), start=1):
            if line.endswith("\r"):
                line = line[:-1]
            stripped = line.strip()
            if not stripped or stripped.startswith("#"):
                continue
            location = Location(filename, number)
            if line[0] in " \t":
                if first and main:
                    self._no_version(location)
                first = False
                self._parameter(line.lstrip(" \t"), location)
                continue
            words = _cut_comment(line).split()
            if words[0] == "version":
                self._version(words[1:], location, first)
            else:
                if first and main:
                    self._no_version(location)
                self._header(words, _cut_comment(line).strip(), location, stack)
            first = False
        if first and main:
            self._no_version(Location(filename, 1))

    def _no_version(self, location: Location) -> None:
        self.warnings.append(
            ConfigError("no 'version 2' line at the top; reading the file as FreeS/WAN 2.x", location)
        )

    def _version(self, words: list[str], location: Location, first: bool) -> None:
        self.current = None
        if not first:
            self.error("version must be the first line of the file", location)
        elif words not in (["2"], ["2.0"]):
            shown = " ".join(words) or "(none)"
            self.error(
                f"unsupported version {shown!r}: fswan reads FreeS/WAN 2.x files (version 2)", location
            )

    def _header(self, words: list[str], text: str, location: Location, stack: tuple[str, ...]) -> None:
        head = words[0]
        if head == "config":
            if words[1:] != ["setup"]:
                self.error(f"unknown section {text!r}: the only config section is 'config setup'", location)
                self.current = _Section(Section.SETUP, "?", location, discard=True)
            else:
                if self.setup is None:
                    self.setup = _Section(Section.SETUP, "setup", location)
                self.current = self.setup
        elif head == "conn":
            self._conn(words[1:], location)
        elif head == "ca":
            self._ca(words[1:], location)
        elif head == "include":
            self.current = None
            self._include(text[len("include"):].strip(), location, stack)
        elif "=" in text:
            self.error("parameter must be indented (start the line with a space or tab)", location)
            self.current = _Section(Section.CONN, "?", location, discard=True)
        else:
            self.error(
                f"unexpected {head!r} at the start of a line: expected 'config setup', 'conn NAME', "
                "'include FILE' or an indented keyword=value",
                location,
            )
            self.current = _Section(Section.CONN, "?", location, discard=True)

    def _ca(self, words: list[str], location: Location) -> None:
        name = " ".join(words)
        if len(words) != 1 or not (name == DEFAULT_CONN or values.is_conn_name(name)):
            self.error(f"bad ca name {name!r}: a name starts with a letter and uses letters, digits, "
                       "'.', '_' and '-' (or is %default)", location)
            self.current = _Section(Section.CA, name, location, discard=True)
            return
        if name in self.cas:
            first = self.cas[name].location
            self.error(f'duplicate ca "{name}" (first defined at {first})', location)
            self.current = _Section(Section.CA, name, location, discard=True)
            return
        self.current = self.cas[name] = _Section(Section.CA, name, location)

    def _conn(self, words: list[str], location: Location) -> None:
        name = " ".join(words)
        if name == OE_DEFAULT_CONN:
            if self.oedefault is None:
                self.oedefault = _Section(Section.CONN, OE_DEFAULT_CONN, location)
            self.current = self.oedefault
            return
        if len(words) != 1 or not (name == DEFAULT_CONN or values.is_conn_name(name)):
            self.error(
                f"bad conn name {name!r}: a name starts with a letter and uses letters, digits, "
                "'.', '_' and '-' (or is %default or %oedefault)",
                location,
            )
            self.current = _Section(Section.CONN, name, location, discard=True)
            return
        if name == DEFAULT_CONN:
            if self.conns:
                self.error("conn %default must come before other conns", location)
            if self.default is None:
                self.default = _Section(Section.CONN, DEFAULT_CONN, location)
            self.current = self.default
            return
        if name in self.conns:
            first = self.conns[name].location
            self.error(f'duplicate conn "{name}" (first defined at {first})', location)
            self.current = _Section(Section.CONN, name, location, discard=True)
            return
        self.current = self.conns[name] = _Section(Section.CONN, name, location)

    def _include(self, argument: str, location: Location, stack: tuple[str, ...]) -> None:
        pattern = argument
        if len(pattern) >= 2 and pattern[0] == pattern[-1] == '"':
            pattern = pattern[1:-1]
        elif len(pattern.split()) > 1:
            self.error("include takes one file name or pattern (quote it if it has spaces)", location)
            return
        if not pattern:
            self.error("include needs a file name or pattern", location)
            return
        if not pattern.startswith("/"):
            pattern = posixpath.join(posixpath.dirname(stack[-1]), pattern)
        pattern = posixpath.normpath(pattern)
        if self.loader is None:
            self.error(f"cannot read include file {pattern}: no include loader given", location)
            return
        try:
            paths = list(self.loader.glob(pattern))
        except (OSError, UnicodeError) as exc:
            self.error(f"cannot read include file {pattern}: {_reason(exc)}", location)
            return
        if not paths:
            if not any(c in pattern for c in _WILDCARDS):
                self.error(f"cannot read include file {pattern}: no such file", location)
            return
        for path in paths:
            if len(stack) > MAX_INCLUDE_DEPTH:
                self.error(f"include nested too deeply (more than {MAX_INCLUDE_DEPTH} levels)", location)
                return
            if path in stack:
                loop = " -> ".join(stack[stack.index(path):] + (path,))
                self.error(
                    f"include nested too deeply (more than {MAX_INCLUDE_DEPTH} levels): "
                    f"include loop {loop}",
                    location,
                )
                continue
            try:
                text = self.loader.read(path)
            except (OSError, UnicodeError) as exc:
                self.error(f"cannot read include file {path}: {_reason(exc)}", location)
                continue
            self.read_file(text, path, stack + (path,), main=False)
        self.current = None

    # -- parameters

    def _parameter(self, body: str, location: Location) -> None:
        section = self.current
        key, equals, rest = body.partition("=")
        key = key.strip()
        if not equals:
            if section is None:
                self.error("parameter outside a section", location)
            else:
                self.error(f"expected keyword=value, not {_cut_comment(body).strip()!r}", location)
            return
        value = self._value(rest, location)
        if section is None:
            self.error("parameter outside a section", location)
            return
        if value is None:
            return
        if not key:
            self.error("missing keyword before '='", location)
            return
        if not _KEY_RE.fullmatch(key):
            self.error(f"bad keyword {key!r} in {section.label}", location)
            return
        if section.discard:
            return
        if kw_table.is_user_key(key):
            self._store(section, section.user, _Setting(key, key, value, location, value))
            return
        if section.kind is Section.CA and key.lower() in ("auto", "also"):
            self._store(section, section.user, _Setting(key.lower(), key, value, location, value))
            return
        keyword = kw_table.lookup(key, section.kind)
        removed = kw_table.REMOVED.get(key.lower())
        if removed is not None and (keyword is None or value.strip().lower() not in ("yes", "no")):
            # FreeS/WAN 1.x (plutostart=%search); strongSwan 4's plutostart=yes|no is known
            self.error(f"keyword {key!r} was removed in FreeS/WAN 2.0: {removed}", location)
            return
        if keyword is None:
            self._unknown(key, section, location)
            return
        setting = _Setting(keyword.name, key, value, location)
        if keyword.name in ("also", "alsoflip"):
            self._also(section, keyword, setting)
            return
        if value != "":
            try:
                parsed = parse_value(keyword, value)
            except values.Unrunnable as exc:
                setting.refusal = f"{key}={value}: {exc.reason}" if key not in exc.reason else exc.reason
            except values.BadValue as exc:
                self.error(exc.message(key, value), location)
                setting.valid = False
            else:
                if isinstance(parsed, values.Adjusted):
                    self.warnings.append(ConfigError(f"{key}={value} {parsed.note}", location))
                    parsed = parsed.value
                setting.value = parsed
        self._store(section, section.settings, setting)

    def _value(self, rest: str, location: Location) -> str | None:
        """The value text after ``=``: unquoted, comment removed; None after an error."""
        text = rest.lstrip(" \t")
        if text.startswith('"'):
            end = text.find('"', 1)
            if end < 0:
                self.error("unterminated quote", location)
                return None
            after = text[end + 1:].strip()
            if after and not after.startswith("#"):
                self.error(f"unexpected text {after!r} after the closing quote", location)
                return None
            return text[1:end]
        return _cut_comment(rest).strip()

    def _store(self, section: _Section, table: dict[str, _Setting], setting: _Setting) -> None:
        """Keep ``setting``; a keyword set again in one section wins with a warning (Libreswan)."""
        first = table.get(setting.key)
        table[setting.key] = setting
        if first is None:
            return
        spelled = "" if first.written == setting.written else f" (set as '{first.written}=')"
        where = (
            f"line {first.location.line}"
            if first.location.file == setting.location.file
            else str(first.location)
        )
        self.warnings.append(ConfigError(
            f"duplicate '{setting.written}=' in {section.label}: overriding earlier value ({where}){spelled}",
            setting.location,
        ))

    def _unknown(self, key: str, section: _Section, location: Location) -> None:
        if key in kw_table.REMOVED:
            self.error(
                f"keyword {key!r} was removed in FreeS/WAN 2.0: {kw_table.REMOVED[key]}", location
            )
            return
        other = Section.CONN if section.kind is Section.SETUP else Section.SETUP
        if kw_table.lookup(key, other) is not None:
            where = "a conn section" if other is Section.CONN else "config setup"
            self.error(f"keyword {key!r} belongs in {where}, not in {section.label}", location)
            return
        message = f"unknown keyword {key!r} in {section.label}"
        suggestion = _suggest(key, kw_table.names(section.kind))
        if suggestion:
            message += f"; did you mean {suggestion!r}?"
        self.error(message, location)

    def _also(self, section: _Section, keyword: Keyword, setting: _Setting) -> None:
        if section.name in (DEFAULT_CONN, OE_DEFAULT_CONN):
            self.error(f"conn %default may not contain {setting.written}=", setting.location)
            return
        if setting.raw == "":
            return
        try:
            targets = values.parse_names(setting.raw)
        except values.BadValue as exc:
            self.error(exc.message(setting.written, setting.raw), setting.location)
            return
        flip = keyword.name == "alsoflip"
        section.also.extend((target, setting.location, flip) for target in targets)
        first = section.settings.get(keyword.name)
        if first is None:
            section.settings[keyword.name] = setting
        else:
            first.raw = f"{first.raw} {setting.raw}"


def _suggest(key: str, candidates: list[str]) -> str | None:
    """A spelling only when it really is close (one or two letters off in a long word)."""
    key = key.lower()
    matches = difflib.get_close_matches(key, candidates, n=1, cutoff=0.8)
    return matches[0] if matches else None


# --------------------------------------------------------------------------- model

#: ``leftauth=`` words (strongSwan, Libreswan) that map exactly onto FreeS/WAN's authby=
_END_AUTH = {"psk": AuthBy.SECRET, "secret": AuthBy.SECRET,
             "pubkey": AuthBy.RSASIG, "rsasig": AuthBy.RSASIG, "rsa": AuthBy.RSASIG,
             "ecdsa": AuthBy.ECDSA, "ecdsasig": AuthBy.ECDSA,
             "never": AuthBy.NEVER}
#: strongSwan's ``authby=`` words for IKEv1 with XAUTH: the phase-1 method they stand on
#: ``keyexchange=`` word -> the ``ikev2=`` policy it means when ``ikev2=`` is not set
_KEYEXCHANGE_POLICY = {"ikev1": Ikev2Policy.NEVER, "ikev2": Ikev2Policy.INSIST, "ike": Ikev2Policy.PERMIT}
#: ``keyexchange=`` word -> the ``ikev2=`` policies that agree with it
_KEYEXCHANGE_ALLOWS = {
    "ikev1": (Ikev2Policy.NEVER, Ikev2Policy.PERMIT),
    "ikev2": (Ikev2Policy.PROPOSE, Ikev2Policy.INSIST),
}
_XAUTH_AUTHBY = {"xauthpsk": AuthBy.SECRET, "xauthrsasig": AuthBy.RSASIG}


def _model_value(keyword: Keyword, value: Any) -> Any:
    if keyword.model_values is not None and isinstance(value, str) and value in keyword.model_values:
        return keyword.model_values[value]
    return value



class _Builder:
    """Merges sections (also=, %default) and builds the frozen model."""

    def __init__(self, reader: _Reader) -> None:
        self.reader = reader
        self.conns = reader.conns
        self.warnings = list(reader.warnings)
        self._reported_loops: set[frozenset[str]] = set()

    def error(self, message: str, location: Location | None) -> None:
        self.reader.error(message, location)

    def build(self) -> Config:
        setup = self._setup()
        referenced = {target for sec in self.conns.values() for target, _, _ in sec.also}
        conns: dict[str, Connection] = {}
        refused: dict[str, ConnRefused] = {}
        for name, section in self.conns.items():
            conn, refusal = self._connection(section, referenced)
            if refusal is None:
                conns[name] = conn
            else:
                refused[name] = refusal
        oedefault = None
        if self.reader.oedefault is not None:
            oedefault, refusal = self._connection(self.reader.oedefault, set(), defaults=False)
            if refusal is not None:
                self.warnings.append(refusal)
        cas = {name: self._ca(section) for name, section in self.reader.cas.items()}
        errors = self.reader.errors
        if errors:
            raise ConfigErrors(self._sorted(errors))
        return Config(
            setup=setup,
            conns=conns,
            files=tuple(self.reader.files),
            warnings=tuple(self._sorted(self.warnings)),
            refused=refused,
            cas=cas,
            oedefault=oedefault,
        )

    @staticmethod
    def _ca(section: _Section) -> CaSection:
        auto = section.user.get("auto")
        return CaSection(
            name=section.name,
            location=section.location,
            auto=auto.raw.strip().lower() if auto is not None and auto.raw.strip() else "ignore",
            settings={k: (s.raw, s.location) for k, s in section.settings.items()},
        )

    def _sorted(self, errors: Iterable[ConfigError]) -> list[ConfigError]:
        order = {name: index for index, name in enumerate(self.reader.files)}

        def key(item: tuple[int, ConfigError]) -> tuple[int, int, int]:
            seq, error = item
            if error.location is None:
                return (len(order), 0, seq)
            return (order.get(error.location.file, len(order)), error.location.line, seq)

        return [error for _, error in sorted(enumerate(errors), key=key)]

    def _location_key(self, location: Location) -> tuple[int, int]:
        files = self.reader.files
        index = files.index(location.file) if location.file in files else len(files)
        return (index, location.line)

    def _by_location(self, keys: list[str], settings: dict[str, _Setting]) -> tuple[str, ...]:
        """Keywords in the order they were written (file order, then line)."""
        return tuple(sorted(keys, key=lambda k: self._location_key(settings[k].location)))

    # -- config setup

    def _setup(self) -> SetupConfig:
        section = self.reader.setup
        if section is None:
            return SetupConfig()
        kwargs: dict[str, Any] = {}
        unsupported: list[str] = []
        for key, setting in section.settings.items():
            keyword = kw_table.KEYWORDS[(Section.SETUP, key)]
            if not setting.is_set:
                continue
            if keyword.is_unsupported_value(setting.value):
                unsupported.append(key)
            target = keyword.model_field
            if target is not None:
                value = _model_value(keyword, setting.value)
                if isinstance(value, tuple):
                    value = " ".join(value)
                kwargs[target] = value
        return SetupConfig(
            **kwargs,
            user_keys={k: s.raw for k, s in section.user.items()},
            unsupported=self._by_location(unsupported, section.settings),
            settings={k: (s.raw, s.location) for k, s in section.settings.items()},
        )

    # -- conns

    def _chain(self, root: _Section) -> list[tuple[_Section, bool]]:
        """The sections whose settings a conn sees, in precedence order, flips applied."""
        result: list[tuple[_Section, bool]] = []
        seen: dict[str, list[str]] = {root.name: [root.name]}

        def visit(section: _Section, flip: bool, path: list[str], first_link: Location | None) -> None:
            result.append((section, flip))
            if len(path) > MAX_ALSO_DEPTH:
                self.error(f"also= nested too deeply in conn \"{root.name}\"", root.location)
                return
            for target, location, target_flip in section.also:
                spelled = "alsoflip" if target_flip else "also"
                link = first_link or location
                if target in path:
                    cycle = frozenset(path[path.index(target):])
                    if cycle not in self._reported_loops:
                        self._reported_loops.add(cycle)
                        chain = " -> ".join(path + [target])
                        self.error(f'also= loop in conn "{root.name}": {chain}', link)
                    continue
                if target not in self.conns:
                    self.error(f'{spelled}={target} in conn "{section.name}": no conn "{target}"', location)
                    continue
                if target in seen:
                    earlier = " -> ".join(seen[target])
                    again = " -> ".join(path + [target])
                    self.error(
                        f'{spelled}={target} in conn "{section.name}": conn "{target}" is included '
                        f'twice in conn "{root.name}" ({earlier} and {again}); also= may not repeat',
                        location,
                    )
                    continue
                seen[target] = path + [target]
                visit(self.conns[target], flip != target_flip, path + [target], link)

        visit(root, False, [root.name], None)
        return result

    def _merged(
        self, root: _Section, defaults: bool = True
    ) -> tuple[dict[str, _Setting], dict[str, _Setting]]:
        settings: dict[str, _Setting] = {}
        user: dict[str, _Setting] = {}
        chain = self._chain(root) if defaults else [(root, False)]
        # FreeS/WAN: the implicit OE conns (and a file's redefinition of them) ignore %default;
        # Openswan gives them conn %oedefault instead
        if defaults and root.name in IMPLICIT_CONNS:
            if self.reader.oedefault is not None:
                chain.append((self.reader.oedefault, False))
        elif defaults and self.reader.default is not None:
            chain.append((self.reader.default, False))
        for section, flip in chain:
            for key, setting in section.settings.items():
                if key in ("also", "alsoflip") and section is not root:
                    continue
                name = kw_table.twin(key) if flip else key
                settings.setdefault(name, setting)
            for key, setting in section.user.items():
                user.setdefault(key, setting)
        return settings, user

    def _connection(
        self, section: _Section, referenced: set[str], defaults: bool = True
    ) -> tuple[Connection, ConnRefused | None]:
        """The conn, and why it cannot run in fswan (None when it can)."""
        settings, user = self._merged(section, defaults)
        conn_kwargs: dict[str, Any] = {}
        end_kwargs: dict[str, dict[str, Any]] = {"left": {}, "right": {}}
        unsupported: list[str] = []
        refusals: list[tuple[str, Location]] = []
        for key, setting in settings.items():
            keyword = kw_table.KEYWORDS[(Section.CONN, key)]
            if setting.refusal is not None:
                refusals.append((setting.refusal, setting.location))
                continue
            if not setting.is_set:
                continue
            if keyword.is_unsupported_value(setting.value):
                unsupported.append(key)
            target = keyword.model_field
            if target is None:
                continue
            value = _model_value(keyword, setting.value)
            if keyword.end:
                end_kwargs[keyword.side][target] = value
            else:
                conn_kwargs[target] = value

        if conn_kwargs.get("dpddelay") == 0:
            conn_kwargs["dpddelay"] = None
        if conn_kwargs.get("dpdaction") == "none":
            # strongSwan: dpdaction=none turns DPD off
            conn_kwargs.pop("dpdaction")
            conn_kwargs["dpddelay"] = None
        self._forceencaps(section, settings, conn_kwargs)
        self._ike_version(settings, conn_kwargs)
        self._end_auth(settings, conn_kwargs, refusals)
        self._xauth_modecfg(settings, conn_kwargs)

        ends = {side: self._end(kwargs) for side, kwargs in end_kwargs.items()}
        conn = Connection(
            name=section.name,
            left=ends["left"],
            right=ends["right"],
            location=section.location,
            **conn_kwargs,
            user_keys={k: s.raw for k, s in user.items()},
            unsupported=self._by_location(unsupported, settings),
            settings={k: (s.raw, s.location) for k, s in settings.items()},
        )
        refusals += self._certificate_refusals(conn, settings)
        refusals += self._ikev2_only_refusals(conn, settings)
        fragment = section.name in referenced and (conn.auto is Auto.IGNORE or "auto" not in section.settings)
        checked = defaults and section.name not in IMPLICIT_CONNS and not fragment
        if checked and not refusals:
            self._check(conn, section, settings, required=conn.auto is not Auto.IGNORE)
        if not refusals:
            return conn, None
        reason, location = min(refusals, key=lambda r: self._location_key(r[1]))
        refusal = ConnRefused(section.name, reason, location)
        if checked:
            self.warnings.append(refusal)
        return conn, refusal

    @staticmethod
    def _end_auth(
        settings: dict[str, _Setting], conn_kwargs: dict[str, Any], refusals: list[tuple[str, Location]]
    ) -> None:
        """strongSwan/Libreswan ``leftauth=``/``rightauth=`` onto ``authby=`` where that is exact:
        both ends psk (secret) or both pubkey (rsasig); anything else cannot run in IKEv1 here."""
        written = {side: settings.get(f"{side}auth") for side in ("left", "right")}
        words = {side: s.raw.strip().lower() for side, s in written.items() if s is not None and s.is_set}
        if not words:
            return
        mapped = {side: _END_AUTH.get(word) for side, word in words.items()}
        first = min((s for s in written.values() if s is not None and s.is_set), key=lambda s: s.location.line)
        for side, auth in mapped.items():
            if auth is None:
                refusals.append((f"{side}auth={words[side]} is not yet supported (fswan authenticates "
                                 "with psk or RSA keys)", written[side].location))  # type: ignore[union-attr]
                return
        if len(set(mapped.values())) > 1:
            refusals.append(("leftauth= and rightauth= differ: IKEv1 authenticates both ends the same way",
                             first.location))
            return
        conn_kwargs["authby"] = next(iter(mapped.values()))

    @staticmethod
    def _xauth_modecfg(settings: dict[str, _Setting], conn_kwargs: dict[str, Any]) -> None:
        """strongSwan's XAUTH and Mode Config spellings onto the model: ``authby=xauthpsk``
        is ``secret`` with XAUTH in the role ``xauth=`` names (ours: left/right is not known
        yet); ``modeconfig=pull``; Openswan's ``modecfgdns1=``/``modecfgdns2=`` append."""
        def value(name: str) -> Any:
            setting = settings.get(name)
            return setting.value if setting is not None and setting.is_set else None

        authby = conn_kwargs.get("authby")
        if authby in _XAUTH_AUTHBY:
            conn_kwargs["authby"] = _XAUTH_AUTHBY[authby]
            conn_kwargs["xauth_role"] = value("xauth") or "client"
        mode = value("modeconfig")
        if mode is not None and value("modecfgpull") is None:
            conn_kwargs["modecfgpull"] = mode == "pull"
        extra = tuple(a for name in ("modecfgdns1", "modecfgdns2") for a in value(name) or ())
        if extra:
            conn_kwargs["modecfgdns"] = tuple(dict.fromkeys(conn_kwargs.get("modecfgdns", ()) + extra))

    @staticmethod
    def _certificate_refusals(conn: Connection, settings: dict[str, _Setting]) -> list[tuple[str, Location]]:
        """ECDSA authenticates with certificates only: fswan has no raw ECDSA keys."""
        found: list[tuple[str, Location]] = []
        if conn.authby is AuthBy.ECDSA and conn.auto is not Auto.MANUAL:
            ours = [side for side in ("left", "right") if getattr(conn, side).cert]
            if not ours:
                named = [settings[k] for k in ("authby", "leftauth", "rightauth") if k in settings]
                where = (named or list(settings.values()))[0].location
                found.append(("authby=ecdsasig needs a certificate (leftcert=): raw ECDSA keys are "
                              "not supported", where))
        return found

    @staticmethod
    def _ikev2_only_refusals(conn: Connection, settings: dict[str, _Setting]) -> list[tuple[str, Location]]:
        """An ``ike=`` only IKEv2 can negotiate (AEAD, a PRF of its own) on a conn that may
        speak IKEv1: the IKEv1 side could not use it, so the conn is not loaded."""
        setting = settings.get("ike")
        if not conn.ike or not conn.accepts_ikev1 or setting is None:
            return []
        try:
            reason = ikev1_unusable(parse_ike(conn.ike))
        except ValueError:
            return []  # already reported by the value's own check
        if reason is None:
            return []
        return [(f"ike={conn.ike}: {reason}, and this conn may use IKEv1 "
                 "(set keyexchange=ikev2 or ikev2=insist)", setting.location)]

    @staticmethod
    def _end(kwargs: dict[str, Any]) -> End:
        host = kwargs.pop("host", "")
        if host == DEFAULT_ROUTE and "nexthop" not in kwargs:
            kwargs["nexthop"] = DEFAULT_ROUTE
        if isinstance(kwargs.get("subnet"), VirtualSubnet):
            kwargs["virtual"] = kwargs.pop("subnet")
        sourceip = kwargs.get("sourceip")
        if sourceip == values.CONFIG_SOURCEIP:
            # strongSwan: this end wants a virtual IP
            del kwargs["sourceip"]
            kwargs["modecfgclient"] = True
        elif isinstance(sourceip, AddressRange):
            # strongSwan: the pool this end's virtual IP comes from (leftaddresspool= wins)
            del kwargs["sourceip"]
            kwargs.setdefault("addresspool", sourceip)
        return End(host=host, **kwargs)

    def _ike_version(self, settings: dict[str, _Setting], conn_kwargs: dict[str, Any]) -> None:
        """``ikev2=`` decides the IKE versions; without it ``keyexchange=`` does (ikev1:
        never, ikev2: insist, ike: permit).  Both set and disagreeing is an error at ikev2=."""
        exchange = settings.get("keyexchange")
        word = exchange.value if exchange is not None and exchange.is_set else None
        implied = _KEYEXCHANGE_POLICY.get(word) if word is not None else None
        policy = settings.get("ikev2")
        if policy is None or not policy.is_set:
            if implied is not None:
                conn_kwargs["ikev2"] = implied
            return
        if exchange is not None and word in _KEYEXCHANGE_ALLOWS \
                and policy.value not in _KEYEXCHANGE_ALLOWS[word]:
            self.error(
                f"ikev2={policy.value.value} contradicts keyexchange={word} "
                f"(set at {exchange.location})",
                policy.location,
            )

    def _forceencaps(
        self, section: _Section, settings: dict[str, _Setting], conn_kwargs: dict[str, Any]
    ) -> None:
        force = settings.get("forceencaps")
        if force is None or not force.is_set or not force.value:
            return
        encapsulation = settings.get("encapsulation")
        if encapsulation is not None and encapsulation.is_set:
            if encapsulation.value is Encapsulation.NO:
                self.error(
                    f'forceencaps=yes conflicts with encapsulation=no in conn "{section.name}" '
                    f"(set at {encapsulation.location})",
                    force.location,
                )
            return
        conn_kwargs["encapsulation"] = Encapsulation.YES

    def _check(
        self, conn: Connection, section: _Section, settings: dict[str, _Setting], required: bool
    ) -> None:
        """What a conn (not an also= fragment) must satisfy, with file:line; ``required``:
        it is loaded on its own (not ``auto=ignore``), so left= and right= must be there."""
        for side in ("left", "right"):
            setting = settings.get(side)
            if required and getattr(conn, side).host == "" and (setting is None or setting.valid):
                self.error(f'conn "{conn.name}" has no {side}= (required)', section.location)
        left, right = conn.left, conn.right
        if left.subnet is not None and right.subnet is not None:
            if left.subnet.version != right.subnet.version:
                self.error(
                    f'conn "{conn.name}": leftsubnet={left.subnet} and rightsubnet={right.subnet} '
                    "are different address families",
                    section.location,
                )
        hosts = [
            address
            for end in (left, right)
            if end.host and (address := end.host_address) is not None
        ]
        if len(hosts) == 2 and hosts[0].version != hosts[1].version:
            self.error(
                f'conn "{conn.name}": left={left.host} and right={right.host} are different address families',
                section.location,
            )
        if conn.rekey:
            for name, life in (("keylife", conn.keylife), ("ikelifetime", conn.ikelifetime)):
                if conn.rekeymargin >= life:
                    self.warnings.append(
                        ConfigError(
                            f'conn "{conn.name}": rekeymargin={values.format_time(conn.rekeymargin)} '
                            f"should be less than {name}={values.format_time(life)}",
                            section.location,
                        )
                    )
        for side, end in (("left", left), ("right", right)):
            firewall = settings.get(f"{side}firewall")
            script = (
                end.updown is not None
                and updown_is_command(end.updown)
                and end.updown.split()[:2] != ["ipsec", "_updown"]
            )
            if end.firewall and script and firewall is not None:
                self.warnings.append(
                    ConfigError(
                        f'conn "{conn.name}": {side}firewall=yes has no effect with {side}updown= '
                        "(the script does its own firewalling)",
                        firewall.location,
                    )
                )

