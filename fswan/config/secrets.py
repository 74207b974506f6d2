"""The FreeS/WAN 2.x ``ipsec.secrets(5)`` file: pre-shared keys and our RSA keys.

Syntax, one entry per unindented line::

    [selector ...] : PSK "text" | 0x... | 0s... | 0t...
    [selector ...] : RSA { Modulus: 0x... PublicExponent: 0x03 ... }
    [selector ...] : RSA "keyfile.pem" ["passphrase"]
    user [user ...] : XAUTH "password" | 0x... | 0s... | 0t...
    include GLOB

* Selectors are identities (addresses, ``@fqdn``, ``user@fqdn``, key IDs as
  ``@#hex``/``@[text]``/``keyid:text``, ``%any``, ``%any6``); an entry without
  selectors applies to any pair of ends.
* An ``XAUTH`` entry's selectors are user names, not identities: Libreswan
  writes ``@alice``, strongSwan ``alice`` (the leading ``@`` is dropped); it
  needs at least one, so no password ever fits every user.
* The ``:`` stands alone, separated by spaces (an IPv6 selector has colons).
* Lines that begin with whitespace continue the entry above, which is how an
  ``RSA {`` block spans lines; a ``}`` in column 0 still closes an open block.
* ``#`` starts a comment wherever a token could start; quoted strings are
  double-quoted, on one line, without escapes.
* ``include`` patterns are relative to the including file, nested at most 10
  deep; a key file name is relative to the secrets file that names it.

The parser is pure: files are read only through the :class:`SecretsLoader` it is
given.  It collects every error (``file:line: message``, the line being where
the entry starts) and raises them together as :class:`ConfigErrors`.  Secret
material never appears in an error, a warning, ``repr`` or ``describe()``.
"""

from __future__ import annotations

import posixpath
import re
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Protocol, Union

from cryptography.hazmat.primitives.asymmetric import ec, rsa

from fswan.config import keys
from fswan.config.encodings import EncodingError, decode_data
from fswan.config.errors import ConfigError, ConfigErrors, Location
from fswan.config.ids import Identity, IdError, IdKind, parse_id

__all__ = [
    "SecretsLoader",
    "Secret",
    "Secrets",
    "MAX_INCLUDE_DEPTH",
    "psk_match_level",
    "rsa_match_level",
    "parse_secrets",
    "load_secrets",
    "permission_warning",
]

#: pluto refuses ``include`` nested deeper than this.
MAX_INCLUDE_DEPTH = 10

SecretValue = Union[bytes, rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey]
_SHORT_WORD = re.compile(r"[A-Za-z][A-Za-z0-9]{0,4}")
#: Secret types of other IKE daemons, named in the error so users see why.
_OTHER_TYPES = frozenset(
    {"PIN", "PPKS", "EAP", "NTLM", "P12", "PKCS11", "BLISS"}
)
_DATA_PREFIXES = ("0x", "0s", "0t")


class SecretsLoader(Protocol):
    """Reads files for ``include`` and RSA key files (same shape as IncludeLoader)."""

    def glob(self, pattern: str) -> list[str]: ...

    def read(self, path: str) -> str: ...


def _ids_text(ids: tuple[Identity, ...]) -> str:
    return " ".join(str(i) for i in ids) if ids else "(any)"


@dataclass(frozen=True, repr=False)
class Secret:
    """One entry: a PSK (``value`` is bytes) or our RSA private key.

    ``repr``/``str`` show kind, selectors and location only, so a Secret can
    go into a log line or a traceback without giving itself away.
    """

    kind: str  # 'PSK', 'RSA', 'ECDSA' or 'XAUTH'
    ids: tuple[Identity, ...]
    location: Location
    value: SecretValue
    #: an XAUTH entry's user names (its ``ids`` are empty)
    users: tuple[str, ...] = ()

    def _selectors(self) -> str:
        return " ".join(self.users) if self.kind == "XAUTH" else _ids_text(self.ids)

    def __repr__(self) -> str:
        return (
            f"Secret(kind={self.kind!r}, ids=({self._selectors()}), "
            f"location={self.location})"
        )

    def __str__(self) -> str:
        return f"{self.location}: {self.kind} {self._selectors()}"

    @property
    def key_id(self) -> str | None:
        """FreeS/WAN keyid (``AQO...``) of an RSA entry's public half; public, loggable."""
        if isinstance(self.value, rsa.RSAPrivateKey):
            return keys.key_id(self.value)
        return None


# --------------------------------------------------------------------------
# Selection


def psk_match_level(ids: tuple[Identity, ...], our_id: Identity, peer_id: Identity) -> int:
    """How well an entry's selectors fit this pair of ends; 0 means not at all.

    =====  ===============================  ========================================
    level  the entry's selectors            it matches when
    =====  ===============================  ========================================
      5    two or more ids                  our id and the peer's id are both listed
      4    two or more ids, one ``%any``    our id or the peer's is listed; ``%any``
                                            stands for the other end
      3    exactly one id                   it is our id or the peer's id
      2    only ``%any`` (once or more)     always
      1    none                             always
      0    anything else                    never
    =====  ===============================  ========================================

    Exact ids beat ``%any``, two named ends beat one, and anything beats the
    selector-less default -- pluto's order, except that a single id may name
    either end (pluto 2.x only tried our end).  An unknown peer is passed as
    ``%any`` and is "listed" by nothing but ``%any``.
    """
    if not ids:
        return 1
    if all(i.is_any for i in ids):
        return 2
    me = not our_id.is_any and our_id in ids
    him = not peer_id.is_any and peer_id in ids
    if len(ids) == 1:
        return 3 if me or him else 0
    if me and him:
        return 5
    if (me or him) and any(i.is_any for i in ids):
        return 4
    return 0


def rsa_match_level(ids: tuple[Identity, ...], our_id: Identity) -> int:
    """How well an RSA entry's selectors name us; 0 means not at all.

    =====  ==============================  ============================================
    level  the entry's selectors           it matches when
    =====  ==============================  ============================================
      3    any number of ids               our id is listed (the others are presumed to
                                           be more names of ours, as pluto assumes for
                                           asymmetric keys)
      2    includes ``%any``               always
      1    none                            always
      0    anything else                   never
    =====  ==============================  ============================================
    """
    if not ids:
        return 1
    if not our_id.is_any and our_id in ids:
        return 3
    if any(i.is_any for i in ids):
        return 2
    return 0


@dataclass(frozen=True)
class Secrets:
    """Everything one ipsec.secrets (with its includes) holds, in file order.

    ``files`` lists every file read: the secrets file, its includes and the
    RSA key files, so the caller can check all their permissions.
    """

    entries: tuple[Secret, ...] = ()
    files: tuple[str, ...] = ()
    warnings: tuple[ConfigError, ...] = ()

    def with_myid(self, myid: Identity | None) -> Secrets:
        """The same secrets with every ``%myid`` selector replaced by ``myid=`` of
        config setup (pluto resolved it the same way); unchanged without a myid."""
        if myid is None:
            return self
        entries = tuple(
            replace(s, ids=tuple(myid if i.kind is IdKind.MYID else i for i in s.ids))
            if any(i.kind is IdKind.MYID for i in s.ids)
            else s
            for s in self.entries
        )
        return replace(self, entries=entries)

    def find_psk(self, our_id: Identity, peer_id: Identity) -> Secret | None:
        """The best PSK for these ends (see :func:`psk_match_level`); first wins a tie."""
        return _best(
            (s, psk_match_level(s.ids, our_id, peer_id))
            for s in self.entries
            if s.kind == "PSK"
        )

    def find_rsa(
        self, our_id: Identity, pubkey: keys.AnyRSAKey | None = None
    ) -> Secret | None:
        """Our RSA private key (see :func:`rsa_match_level`); first wins a tie.

        With ``pubkey`` only keys whose public half equals it are considered,
        and such a key is returned even if its selectors do not name us: the
        public key already says which private key is meant.
        """
        candidates = [s for s in self.entries if s.kind == "RSA"]
        if pubkey is None:
            return _best((s, rsa_match_level(s.ids, our_id)) for s in candidates)
        matching = [
            s
            for s in candidates
            if isinstance(s.value, rsa.RSAPrivateKey) and keys.same_public_key(s.value, pubkey)
        ]
        best = _best((s, rsa_match_level(s.ids, our_id)) for s in matching)
        return best if best is not None else (matching[0] if matching else None)

    def find_xauth(self, user: str) -> bytes | None:
        """The XAUTH password of ``user`` (first entry naming it, as written: names are
        case-sensitive), for the server's check and the client's own answer; None if none."""
        for secret in self.entries:
            if secret.kind == "XAUTH" and user in secret.users:
                assert isinstance(secret.value, bytes)
                return secret.value
        return None

    def find_key_for(self, public_key: object) -> Secret | None:
        """The RSA or ECDSA entry whose key is the private half of a certificate's
        ``public_key``: the certificate already says which key is meant."""
        wanted = keys.public_key_der(public_key)
        for secret in self.entries:
            value = secret.value
            if isinstance(value, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)) and \
                    keys.public_key_der(value) == wanted:
                return secret
        return None

    def describe(self) -> list[str]:
        """One safe line per entry (kind, selectors, file:line, RSA keyid and size)."""
        lines = []
        for secret in self.entries:
            line = str(secret)
            if isinstance(secret.value, rsa.RSAPrivateKey):
                line += f" keyid {secret.key_id} ({secret.value.key_size} bits)"
            lines.append(line)
        return lines


def _best(scored: Iterable[tuple[Secret, int]]) -> Secret | None:
    best, best_level = None, 0
    for secret, level in scored:
        if level > best_level:
            best, best_level = secret, level
    return best


# --------------------------------------------------------------------------
# Tokens and entries


@dataclass(frozen=True)
class _Token:
    text: str
    quoted: bool = False

    def is_bare(self, text: str) -> bool:
        return not self.quoted and self.text == text


@dataclass
class _Entry:
    """The tokens of one entry: its first line plus its continuation lines."""

    line: int
    tokens: list[_Token] = field(default_factory=list)
    error: str | None = None

    @property
    def open_brace(self) -> bool:
        depth = 0
        for token in self.tokens:
            if token.is_bare("{"):
                depth += 1
            elif token.is_bare("}"):
                depth -= 1
        return depth > 0

    def add(self, tokens: list[_Token], error: str | None) -> None:
        self.tokens.extend(tokens)
        if self.error is None:
            self.error = error


def _tokenize_line(line: str) -> tuple[list[_Token], str | None]:
    """Split one line; an unterminated quote ends it with an error (not its text)."""
    tokens: list[_Token] = []
    i, end = 0, len(line)
    while i < end:
        char = line[i]
        if char.isspace():
            i += 1
        elif char == "#":
            break
        elif char == '"':
            close = line.find('"', i + 1)
            if close < 0:
                return tokens, 'unterminated quote: a "quoted string" must end on its line'
            tokens.append(_Token(line[i + 1 : close], quoted=True))
            i = close + 1
        elif char in "{}":
            tokens.append(_Token(char))
            i += 1
        else:
            start = i
            while i < end and not line[i].isspace() and line[i] not in '"{}':
                i += 1
            tokens.append(_Token(line[start:i]))
    return tokens, None


def _entries(text: str) -> list[_Entry]:
    entries: list[_Entry] = []
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.rstrip("\r")
        tokens, error = _tokenize_line(line)
        if not tokens and error is None:
            continue
        current = entries[-1] if entries else None
        continues = line[:1].isspace() or (
            bool(tokens) and tokens[0].is_bare("}") and current is not None and current.open_brace
        )
        if current is not None and continues:
            current.add(tokens, error)
        else:
            entries.append(_Entry(number, tokens, error))
    return entries


# --------------------------------------------------------------------------
# The parser


class _EntryError(Exception):
    """A problem with one entry; the message must not contain secret text."""


@dataclass(frozen=True)
class _KeyFileRef:
    """An RSA key still to be read through the loader (the parser stays pure)."""

    path: str
    passphrase: str | None = field(default=None, repr=False)


class _Parser:
    def __init__(self, loader: SecretsLoader | None) -> None:
        self.loader = loader
        self.entries: list[Secret] = []
        self.errors: list[ConfigError] = []
        self.warnings: list[ConfigError] = []
        self.files: list[str] = []

    def parse_file(self, text: str, filename: str, depth: int) -> None:
        self.files.append(filename)
        for entry in _entries(text):
            location = Location(filename, entry.line)
            try:
                self._entry(entry, filename, location, depth)
            except _EntryError as exc:
                self.errors.append(ConfigError(str(exc), location))

    def _entry(self, entry: _Entry, filename: str, location: Location, depth: int) -> None:
        if entry.error is not None:
            raise _EntryError(entry.error)
        tokens = entry.tokens
        if tokens[0].quoted is False and tokens[0].text.lower() == "include":
            self._include(tokens[1:], filename, location, depth)
            return
        colon = next((i for i, t in enumerate(tokens) if t.is_bare(":")), None)
        if colon is None:
            if any(not t.quoted and t.text.endswith(":") for t in tokens):
                raise _EntryError(
                    "missing ':' (it must be separated from the selectors by a space)"
                )
            raise _EntryError("missing ':' between the selectors and the secret type")
        if colon + 1 < len(tokens) and tokens[colon + 1].text.upper() == "XAUTH" \
                and not tokens[colon + 1].quoted:
            users = tuple(_user(t) for t in tokens[:colon])
            if not users:
                raise _EntryError("XAUTH entry needs a user name before ':' (@alice or alice)")
            password = self._psk(tokens[colon + 2:], location, "XAUTH")
            self.entries.append(Secret("XAUTH", (), location, password, users))
            return
        ids = tuple(_selector(t) for t in tokens[:colon])
        if colon + 1 >= len(tokens):
            raise _EntryError("missing secret type after ':'; expected PSK, RSA, ECDSA or XAUTH")
        kind_token, rest = tokens[colon + 1], tokens[colon + 2 :]
        if (
            kind_token.quoted
            or kind_token.text in ("{", "}")
            or kind_token.text[:2].lower() in _DATA_PREFIXES
        ):
            raise _EntryError("missing secret type (PSK, RSA, ECDSA or XAUTH) before the secret")
        kind = kind_token.text.upper()
        if kind == "PSK":
            value: SecretValue = self._psk(rest, location)
        elif kind == "RSA":
            value = self._rsa(rest, filename)
        elif kind in ("ECDSA", "EC"):
            kind = "ECDSA"
            value = self._ecdsa(rest, filename)
        else:
            shown = f" {kind_token.text!r}" if _showable_type(kind_token.text) else ""
            raise _EntryError(f"unknown secret type{shown}; expected PSK, RSA, ECDSA or XAUTH")
        self.entries.append(Secret(kind, ids, location, value))

    def _psk(self, rest: list[_Token], location: Location, kind: str = "PSK") -> bytes:
        """A PSK's (or an XAUTH password's) bytes: quoted text or 0x/0s/0t data."""
        if not rest:
            raise _EntryError(f"{kind} entry has no secret")
        if len(rest) > 1:
            raise _EntryError(f"unexpected text after the {kind} secret")
        token = rest[0]
        if token.quoted:
            if not token.text:
                self.warnings.append(ConfigError(f"{kind} secret is empty", location))
            return token.text.encode("utf-8", errors="surrogatepass")
        if token.text[:2].lower() in _DATA_PREFIXES:
            try:
                return decode_data(token.text)
            except EncodingError as exc:
                raise _EntryError(f"bad {kind} secret: {exc}") from None
        raise _EntryError(f'{kind} secret must be a "quoted string" or 0x/0s/0t data')

    def _rsa(self, rest: list[_Token], filename: str) -> rsa.RSAPrivateKey:
        if not rest:
            raise _EntryError("RSA entry has no key: expected '{' or a key file name")
        if rest[0].is_bare("{"):
            close = next((i for i, t in enumerate(rest) if t.is_bare("}")), None)
            if close is None:
                raise _EntryError(
                    "unterminated '{' block: no closing '}' (indent it, or put it in column 0)"
                )
            if close + 1 < len(rest):
                raise _EntryError("unexpected text after the '}' of the RSA block")
            body = rest[1:close]
            if any(t.is_bare("{") for t in body):
                raise _EntryError("'{' inside an RSA block")
            try:
                pairs = keys.rsa_fields_from_tokens([t.text for t in body])
                return keys.rsa_private_key_from_fields(pairs)
            except keys.KeyFormatError as exc:
                raise _EntryError(str(exc)) from None
        first = rest[0]
        if not first.quoted and (first.text == "}" or first.text[:2].lower() in _DATA_PREFIXES):
            raise _EntryError("expected '{' or a key file name after RSA")
        if len(rest) > 2:
            raise _EntryError("unexpected text after the RSA key file name")
        passphrase = rest[1].text if len(rest) == 2 else None
        return self._key_file(_KeyFileRef(first.text, passphrase), filename)

    def _ecdsa(self, rest: list[_Token], filename: str) -> ec.EllipticCurvePrivateKey:
        if not rest or rest[0].is_bare("{") or rest[0].is_bare("}"):
            raise _EntryError("ECDSA entry has no key: expected a PEM key file name")
        if len(rest) > 2:
            raise _EntryError("unexpected text after the ECDSA key file name")
        passphrase = rest[1].text if len(rest) == 2 else None
        path, text, secret = self._read_key_file(_KeyFileRef(rest[0].text, passphrase), filename)
        try:
            return keys.load_ec_private_key(text, secret)
        except keys.KeyFormatError as exc:
            raise _EntryError(f"key file {path!r}: {exc}") from None

    def _key_file(self, ref: _KeyFileRef, filename: str) -> rsa.RSAPrivateKey:
        path, text, passphrase = self._read_key_file(ref, filename)
        try:
            return keys.load_private_key(text, passphrase)
        except keys.KeyFormatError as exc:
            raise _EntryError(f"key file {path!r}: {exc}") from None

    def _read_key_file(self, ref: _KeyFileRef, filename: str) -> tuple[str, str, bytes | None]:
        """(path, text, passphrase) of a key file.  A relative name is looked for in
        ``ipsec.d/private/`` beside the secrets file first (where the X.509 patch and
        strongSwan keep keys), then beside the secrets file itself."""
        if not ref.path:
            raise _EntryError("empty key file name")
        if ref.passphrase == "%prompt":
            raise _EntryError("%prompt passphrases are not supported; give the passphrase")
        here = posixpath.dirname(filename)
        paths = [posixpath.join(here, ref.path)]
        if not posixpath.isabs(ref.path):
            paths.insert(0, posixpath.join(here, "ipsec.d", "private", ref.path))
        if self.loader is None:
            raise _EntryError(f"cannot read key file {paths[-1]!r}: no file loader given")
        text = None
        for path in paths:
            try:
                text = self.loader.read(path)
                break
            except (OSError, ValueError) as exc:
                reason = getattr(exc, "strerror", None) or type(exc).__name__
        if text is None:
            raise _EntryError(f"cannot read key file {paths[-1]!r}: {reason}")
        self.files.append(path)
        passphrase = None
        if ref.passphrase is not None:
            passphrase = ref.passphrase.encode("utf-8", "surrogatepass")
        return path, text, passphrase

    def _include(self, args: list[_Token], filename: str, location: Location, depth: int) -> None:
        if len(args) != 1 or args[0].is_bare("{") or args[0].is_bare("}"):
            raise _EntryError("include needs exactly one file name or pattern")
        if depth + 1 > MAX_INCLUDE_DEPTH:
            raise _EntryError(f"include nesting too deep (more than {MAX_INCLUDE_DEPTH} levels)")
        if self.loader is None:
            raise _EntryError("include is not possible here: no file loader given")
        pattern = posixpath.join(posixpath.dirname(filename), args[0].text)
        try:
            paths = self.loader.glob(pattern)
        except (OSError, ValueError) as exc:
            raise _EntryError(f"cannot expand include {pattern!r}: {type(exc).__name__}") from None
        if not paths:
            self.warnings.append(ConfigError(f"include {pattern!r} matched no files", location))
        for path in paths:
            try:
                text = self.loader.read(path)
            except (OSError, ValueError) as exc:
                reason = getattr(exc, "strerror", None) or type(exc).__name__
                message = f"cannot read included file {path!r}: {reason}"
                self.errors.append(ConfigError(message, location))
                continue
            self.parse_file(text, path, depth + 1)


def _showable_type(text: str) -> bool:
    """Echo a bad type token only if it is short or a known type (a long word may be the secret)."""
    return text.upper() in _OTHER_TYPES or bool(_SHORT_WORD.fullmatch(text))


def _user(token: _Token) -> str:
    """An XAUTH selector: a user name, ``@`` dropped (Libreswan writes ``@alice``)."""
    if token.text in ("{", "}"):
        raise _EntryError(f"unexpected '{token.text}' before ':'")
    name = token.text[1:] if token.text.startswith("@") and not token.quoted else token.text
    if not name:
        raise _EntryError("empty XAUTH user name")
    return name


def _selector(token: _Token) -> Identity:
    if token.quoted:
        raise _EntryError("a quoted string is not a selector (is the ':' missing?)")
    if token.text in ("{", "}"):
        raise _EntryError(f"unexpected '{token.text}' before ':'")
    try:
        return parse_id(token.text)
    except IdError as exc:
        raise _EntryError(f"bad selector: {exc}") from None


def parse_secrets(text: str, filename: str, loader: SecretsLoader | None = None) -> Secrets:
    """Parse ipsec.secrets text; raise ConfigErrors listing every problem found."""
    parser = _Parser(loader)
    parser.parse_file(text, filename, depth=0)
    if parser.errors:
        raise ConfigErrors(parser.errors)
    return Secrets(tuple(parser.entries), tuple(parser.files), tuple(parser.warnings))


def load_secrets(path: str, loader: SecretsLoader) -> Secrets:
    """Read ``path`` through ``loader`` and parse it (with its includes and key files)."""
    try:
        text = loader.read(path)
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        raise ConfigErrors([ConfigError(f"{path}: cannot read secrets file: {reason}")]) from None
    return parse_secrets(text, path, loader)


def permission_warning(path: str, mode: int) -> str | None:
    """The warning for a secrets file that group or others can read, else None."""
    bits = stat.S_IMODE(mode)
    if bits & (stat.S_IRGRP | stat.S_IROTH):
        return (
            f"{path}: file is readable by group or others (mode 0{bits:03o}); chmod 600 it"
        )
    return None
