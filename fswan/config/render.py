"""Showing a parsed Config: as JSON-able dicts and as ``ipsec checkconfig`` text.

Rules: every conn is shown with every default applied (what fswan will act
on, not just what was written); secrets (``espenckey``, ``espauthkey``,
``ahkey`` and their ``left``/``right`` forms) are always ``<redacted>``, never
their text; keywords fswan parses but does not implement yet are listed with
file:line so nothing a user wrote is silently ignored.
"""

from __future__ import annotations

import enum
import math
from dataclasses import fields
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import Any

from fswan.config import keywords as kw_table
from fswan.config.errors import ConnRefused, Location
from fswan.config.hostnames import config_host_names
from fswan.config.keywords import Keyword, Kind, Section
from fswan.config.model import Config, Connection, End, SetupConfig
from fswan.config.virtual import VirtualPrivate
from fswan.config.values import format_time

REDACTED = "<redacted>"

#: model field names holding secrets (same names on Connection and End)
SECRET_FIELDS = frozenset(
    kw.model_field for kw in kw_table.KEYWORDS.values() if kw.secret and kw.model_field
)
#: keyword names holding secrets
SECRET_KEYWORDS = frozenset(kw.name for kw in kw_table.KEYWORDS.values() if kw.secret)

SETUP_LABEL = "config setup"


def conn_label(name: str) -> str:
    return f'conn "{name}"'


# --------------------------------------------------------------------------- dicts


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, float):
        return "%forever" if math.isinf(value) else value
    if isinstance(value, (IPv4Address, IPv6Address, IPv4Network, IPv6Network, Location)):
        return str(value)
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return str(value)


def _settings_dict(settings: dict[str, tuple[str, Location]]) -> dict[str, dict[str, str]]:
    return {
        key: {
            "value": REDACTED if key in SECRET_KEYWORDS and raw else raw,
            "location": str(location),
        }
        for key, (raw, location) in settings.items()
    }


def _fields_dict(obj: Any, skip: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in fields(obj):
        if item.name in skip:
            continue
        value = getattr(obj, item.name)
        if item.name in SECRET_FIELDS and value is not None:
            out[item.name] = REDACTED
        else:
            out[item.name] = _jsonable(value)
    return out


def end_to_dict(end: End) -> dict[str, Any]:
    return _fields_dict(end, ())


def connection_to_dict(conn: Connection) -> dict[str, Any]:
    """One conn, every field with its effective value; secrets redacted."""
    out = _fields_dict(conn, ("left", "right", "settings", "unsupported"))
    out["left"] = end_to_dict(conn.left)
    out["right"] = end_to_dict(conn.right)
    out["unsupported"] = [
        {"keyword": key, "location": _location_text(conn.settings, key)} for key in conn.unsupported
    ]
    out["settings"] = _settings_dict(conn.settings)
    return out


def setup_to_dict(setup: SetupConfig) -> dict[str, Any]:
    out = _fields_dict(setup, ("settings", "unsupported"))
    out["unsupported"] = [
        {"keyword": key, "location": _location_text(setup.settings, key)} for key in setup.unsupported
    ]
    out["settings"] = _settings_dict(setup.settings)
    return out


def config_to_dict(config: Config) -> dict[str, Any]:
    """The whole config as plain JSON-able data (for ``--json`` status and tools)."""
    return {
        "files": list(config.files),
        "warnings": [str(w) for w in config.warnings if not isinstance(w, ConnRefused)],
        "refused": [
            {"conn": name, "reason": refusal.reason,
             "location": str(refusal.location) if refusal.location else None}
            for name, refusal in config.refused.items()
        ],
        "resolve": [
            {"conn": name, "keyword": host.keyword, "name": host.name,
             "location": str(host.location) if host.location else None}
            for name, host in config_host_names(config)
        ],
        "cas": {
            name: {"auto": ca.auto, "location": str(ca.location) if ca.location else None,
                   "settings": _settings_dict(ca.settings)}
            for name, ca in config.cas.items()
        },
        "oedefault": connection_to_dict(config.oedefault) if config.oedefault is not None else None,
        "setup": setup_to_dict(config.setup),
        "conns": {name: connection_to_dict(conn) for name, conn in config.conns.items()},
        "unsupported": [
            {"location": str(loc), "section": label, "keyword": key}
            for loc, label, key in unsupported_settings(config)
        ],
    }


def _location_text(settings: dict[str, tuple[str, Location]], key: str) -> str | None:
    entry = settings.get(key)
    return str(entry[1]) if entry else None


# --------------------------------------------------------------------------- text


def _unsupported_entries(config: Config) -> list[tuple[Location, str, str, str]]:
    """(where, section label, keyword, value as written) per not-yet-supported setting."""
    found: list[tuple[Location, str, str, str]] = []
    for key in config.setup.unsupported:
        raw, location = config.setup.settings[key]
        found.append((location, SETUP_LABEL, key, raw))
    for name, conn in config.conns.items():
        for key in conn.unsupported:
            raw, location = conn.settings[key]
            found.append((location, conn_label(name), key, raw))
    return found


def unsupported_settings(config: Config) -> list[tuple[Location, str, str]]:
    """(where, section label, keyword) for every setting fswan does not act on yet."""
    return [(location, label, key) for location, label, key, _ in _unsupported_entries(config)]


def _format(keyword: Keyword, value: Any) -> str:
    """A model value back as ipsec.conf text."""
    if keyword.secret:
        return REDACTED
    kind = keyword.kind
    if isinstance(value, enum.Enum):
        return str(value.value)
    if kind is Kind.BOOL or isinstance(value, bool):
        return "yes" if value else "no"
    if kind is Kind.TIME:
        return format_time(value)
    if kind is Kind.PERCENT:
        return f"{value}%"
    if kind is Kind.KEYINGTRIES:
        return "%forever" if value == 0 else str(value)
    if kind in (Kind.SPI, Kind.SPIBASE):
        return hex(value)
    if kind is Kind.PROTOPORT:
        proto, port = value
        return f"{proto}/{port or '%any'}"
    if isinstance(value, tuple):
        return " ".join(str(v) for v in value)
    return str(value)


def _quote(text: str) -> str:
    if text == "" or any(c.isspace() for c in text) or "#" in text or '"' in text:
        return '"' + text.replace('"', "'") + '"'
    return text


def _keyword_lines(
    keywords: list[Keyword],
    objects: dict[str, Any],
    settings: dict[str, tuple[str, Location]],
    unsupported: tuple[str, ...],
) -> list[str]:
    lines: list[str] = []
    for keyword in keywords:
        target = keyword.model_field
        written = settings.get(keyword.name, ("", None))[0] != ""
        if target is not None:
            owner = objects[keyword.side] if keyword.end else objects[""]
            value = getattr(owner, target)
            if value is None and target == "subnet" and keyword.end:
                value = owner.virtual  # rightsubnet=vhost:...
            if value is None or value == "" or value == VirtualPrivate():
                continue
            if not written and keyword.is_unsupported_value(value):
                continue  # a default fswan does not act on: not "applied"
            text = _format(keyword, value)
        else:
            raw = settings.get(keyword.name, ("", None))[0]
            if raw == "":
                continue
            text = REDACTED if keyword.secret else raw
        line = f"\t{keyword.name}={_quote(text)}"
        if keyword.name in unsupported:
            line += f"\t# not yet supported ({settings[keyword.name][1]})"
        lines.append(line)
    return lines


def _user_lines(user_keys: dict[str, str]) -> list[str]:
    return [f"\t{key}={_quote(value)}" for key, value in user_keys.items()]


def _conn_keywords() -> list[Keyword]:
    """Conn keywords in checkconfig order: also, left*, right*, then the rest."""
    conn = kw_table.in_section(Section.CONN)
    also = [k for k in conn if k.name in ("also", "alsoflip")]
    left = [k for k in conn if k.side == "left"]
    right = [k for k in conn if k.side == "right"]
    rest = [k for k in conn if not k.end and k not in also]
    return also + left + right + rest


def format_checkconfig(config: Config) -> list[str]:
    """``ipsec checkconfig`` output: the effective config, defaults applied, secrets redacted."""
    lines = ["version 2"]
    if config.files:
        lines.append(f"# read: {', '.join(config.files)}")
    for warning in config.warnings:
        if not isinstance(warning, ConnRefused):
            lines.append(f"# warning: {warning}")
    setup = config.setup
    lines += ["", SETUP_LABEL]
    lines += _keyword_lines(
        kw_table.in_section(Section.SETUP), {"": setup}, setup.settings, setup.unsupported
    )
    lines += _user_lines(setup.user_keys)
    conn_keywords = _conn_keywords()
    for name, conn in config.conns.items():
        lines += ["", f"conn {name}"]
        if conn.location is not None:
            lines.append(f"\t# defined at {conn.location}")
        objects = {"": conn, "left": conn.left, "right": conn.right}
        lines += _keyword_lines(conn_keywords, objects, conn.settings, conn.unsupported)
        lines += _user_lines(conn.user_keys)
    if config.oedefault is not None:
        lines += ["", f"conn {config.oedefault.name}"]
        if config.oedefault.location is not None:
            lines.append(f"\t# defined at {config.oedefault.location}; applies to the implicit OE conns")
        lines += [f"\t{key}={_quote(REDACTED if key in SECRET_KEYWORDS else raw)}"
                  for key, (raw, _) in config.oedefault.settings.items()]
    for name, ca in config.cas.items():
        lines += ["", f"ca {name}"]
        if ca.location is not None:
            lines.append(f"\t# defined at {ca.location}"
                         + ("" if ca.auto == "add" else "; not loaded (auto=add loads it)"))
        lines.append(f"\tauto={ca.auto}")
        for key, (raw, location) in ca.settings.items():
            keyword = kw_table.KEYWORDS.get((Section.CA, key))
            later = keyword is not None and not keyword.supported
            lines.append(f"\t{key}={_quote(raw)}"
                         + (f"\t# not yet supported ({location})" if later else ""))
    if config.refused:
        lines += ["", "# not loaded (fswan cannot run these conns; the rest of the file loads):"]
        for refusal in config.refused.values():
            lines.append(f"#\t{refusal}")
    names = config_host_names(config)
    if names:
        lines += ["", "# host names resolved through DNS when the conn is added:"]
        for conn_name, host in names:
            where = f"{host.location}: " if host.location else ""
            lines.append(f"#\t{where}{conn_label(conn_name)}: {host}")
    unsupported = _unsupported_entries(config)
    if unsupported:
        lines += ["", "# not yet supported (parsed and checked, but fswan does not act on them yet):"]
        for location, label, key, raw in unsupported:
            shown = REDACTED if key in SECRET_KEYWORDS else raw
            lines.append(f"#\t{location}: {label}: {key}={_quote(shown)}")
    return lines
