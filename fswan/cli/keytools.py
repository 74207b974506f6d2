"""``ipsec rsasigkey``, ``ipsec newhostkey`` and ``ipsec showhostkey``.

The FreeS/WAN key workflow, kept so its documentation still applies:

1. ``ipsec newhostkey --output /etc/ipsec.secrets`` makes a key (through the
   same generator as ``ipsec rsasigkey``) and writes the ``: RSA { ... }``
   entry, mode 0600, refusing to overwrite an existing file;
2. ``ipsec showhostkey --left`` (or ``--right``) prints the
   ``leftrsasigkey=0s...`` line for the peer's ipsec.conf, and ``--txt``,
   ``--ipseckey`` or ``--key`` the DNS record to publish for
   ``rsasigkey=%dnsondemand`` peers.

``--file`` may name an ipsec.secrets file (its includes and ``: RSA "file"``
entries are followed) or a PEM key (PKCS#1, PKCS#8, or a public key).
FreeS/WAN forced the public exponent 3; so do we unless ``--e65537`` is given,
since some peers reject e=3 today.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import secrets as _secrets
import socket
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import rsa

from fswan.config import keys
from fswan.config.errors import ConfigError, ConfigErrors
from fswan.config.ids import IdError, Identity, parse_id
from fswan.config.secrets import Secret, parse_secrets, rsa_match_level
from fswan.dnskeys import records
from fswan.loader import FileLoader

__all__ = [
    "KeyToolError",
    "UsageError",
    "MIN_BITS",
    "MAX_BITS",
    "DEFAULT_NEWHOSTKEY_BITS",
    "DEFAULT_SECRETS",
    "check_bits",
    "generate_key",
    "rsasigkey_text",
    "HostKey",
    "load_host_key",
    "format_side",
    "format_txt_record",
    "format_ipseckey_record",
    "format_key_record",
    "rsasigkey_main",
    "newhostkey_main",
    "showhostkey_main",
]

MIN_BITS = keys.MIN_BITS
MAX_BITS = keys.MAX_BITS
#: FreeS/WAN's newhostkey default.
DEFAULT_NEWHOSTKEY_BITS = 2192
DEFAULT_SECRETS = "/etc/ipsec.secrets"
#: OpenSSL (through cryptography) will not generate keys below this; we do it ourselves.
_LIBRARY_MIN_BITS = 1024
_MILLER_RABIN_ROUNDS = 48
#: odd primes below 2000, for cheap trial division before Miller-Rabin
_SMALL_PRIMES = tuple(
    n for n in range(3, 2000, 2) if all(n % d for d in range(3, math.isqrt(n) + 1, 2))
)
_RSA_ENTRY = re.compile(r"(^|\s):\s+RSA\b", re.IGNORECASE | re.MULTILINE)
_BITS_COMMENT = re.compile(r"^\s*#\s*(RSA\s+\d+\s+bits\b.*?)\s*$")


class KeyToolError(Exception):
    """A problem to report on stderr (exit status 1)."""


class UsageError(KeyToolError):
    """Bad arguments (exit status 2, as FreeS/WAN's scripts used)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # type: ignore[override]
        raise UsageError(message)


def _run(prog: str, body: Callable[[], int]) -> int:
    try:
        return body()
    except UsageError as exc:
        sys.stderr.write(f"{prog}: {exc}\n")
        return 2
    except KeyToolError as exc:
        sys.stderr.write(f"{prog}: {exc}\n")
        return 1


# --------------------------------------------------------------------------
# Generation


def check_bits(bits: int) -> None:
    """Refuse sizes FreeS/WAN refused: a multiple of 16 in 512..8192."""
    if bits < MIN_BITS or bits > MAX_BITS or bits % 16:
        raise UsageError(
            f"key size must be a multiple of 16 between {MIN_BITS} and {MAX_BITS} bits,"
            f" not {bits}"
        )


def _probably_prime(candidate: int) -> bool:
    for small in _SMALL_PRIMES:
        if candidate % small == 0:
            return candidate == small
    d, s = candidate - 1, 0
    while d % 2 == 0:
        d, s = d // 2, s + 1
    for _ in range(_MILLER_RABIN_ROUNDS):
        x = pow(2 + _secrets.randbelow(candidate - 3), d, candidate)
        if x in (1, candidate - 1):
            continue
        for _ in range(s - 1):
            x = pow(x, 2, candidate)
            if x == candidate - 1:
                break
        else:
            return False
    return True


def _random_prime(bits: int, exponent: int) -> tuple[int, int]:
    """A prime of exactly ``bits`` bits, top two bits set, usable with ``exponent``."""
    tries = 0
    while True:
        tries += 1
        candidate = _secrets.randbits(bits) | (0b11 << (bits - 2)) | 1
        if math.gcd(exponent, candidate - 1) == 1 and _probably_prime(candidate):
            return candidate, tries


def _small_key(bits: int, exponent: int, progress: Callable[[str], None]) -> rsa.RSAPrivateKey:
    """Keys below OpenSSL's minimum (FreeS/WAN allowed 512 bits): our own primes."""
    half = bits // 2
    while True:
        progress(f"looking for a {half}-bit prime...")
        p, tries = _random_prime(half, exponent)
        progress(f"found it after {tries} tries.")
        progress(f"looking for another {half}-bit prime...")
        q, tries = _random_prime(half, exponent)
        progress(f"found it after {tries} tries.")
        if p != q:
            break
    p, q = max(p, q), min(p, q)
    d = pow(exponent, -1, math.lcm(p - 1, q - 1))
    numbers = rsa.RSAPrivateNumbers(
        p,
        q,
        d,
        rsa.rsa_crt_dmp1(d, p),
        rsa.rsa_crt_dmq1(d, q),
        rsa.rsa_crt_iqmp(p, q),
        rsa.RSAPublicNumbers(exponent, p * q),
    )
    return numbers.private_key()


def generate_key(
    bits: int, exponent: int = 3, progress: Callable[[str], None] | None = None
) -> rsa.RSAPrivateKey:
    """A new RSA key of exactly ``bits`` bits; randomness from the OS CSPRNG."""
    check_bits(bits)
    if exponent not in (3, 65537):
        raise UsageError("the public exponent must be 3 or 65537")
    say = progress or (lambda _text: None)
    started = time.monotonic()
    say(f"generating a {bits}-bit RSA key with public exponent {exponent}...")
    if bits < _LIBRARY_MIN_BITS:
        say(f"note: {bits}-bit keys are weak; use them only for tests")
        key = _small_key(bits, exponent, say)
    else:
        key = rsa.generate_private_key(exponent, bits)
    say(f"done in {time.monotonic() - started:.2f} s.")
    return key


def _hostname() -> str:
    """This host's name without asking DNS (``hostname --fqdn`` could hang on it)."""
    return socket.gethostname()


def rsasigkey_text(key: rsa.RSAPrivateKey, hostname: str, date: str | None = None) -> str:
    """What ``ipsec rsasigkey`` prints: the indented body of an ``RSA {}`` entry."""
    return keys.format_rsa_key_body(key, hostname=hostname, date=date or time.ctime())


def _add_generation_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--hostname")
    parser.add_argument("--e65537", action="store_true")
    parser.add_argument("--random", help=argparse.SUPPRESS)  # FreeS/WAN's; the OS CSPRNG is used


def _progress(verbose: bool, prog: str) -> Callable[[str], None] | None:
    if not verbose:
        return None

    def progress(text: str) -> None:
        sys.stderr.write(f"{prog}: {text}\n")

    return progress


def _bits(text: str) -> int:
    try:
        bits = int(text, 10)
    except ValueError:
        raise UsageError(f"key size must be a number of bits, not {text!r}") from None
    check_bits(bits)
    return bits


RSASIGKEY_USAGE = (
    "Usage: ipsec rsasigkey [--verbose] [--hostname HOST] [--e65537] NBITS\n"
    f"  NBITS: a multiple of 16 from {MIN_BITS} to {MAX_BITS}; public exponent 3"
    " (FreeS/WAN's) unless --e65537\n"
)


def rsasigkey_main(argv: Sequence[str]) -> int:
    """``ipsec rsasigkey``: print a new key in the ``RSA {}`` body format."""
    prog = "ipsec rsasigkey"

    def body() -> int:
        if "--help" in argv or "-h" in argv:
            sys.stdout.write(RSASIGKEY_USAGE)
            return 0
        parser = _Parser(prog=prog, add_help=False)
        _add_generation_options(parser)
        parser.add_argument("nbits", nargs="?")
        options = parser.parse_args(list(argv))
        if options.nbits is None:
            raise UsageError("missing NBITS (try --help)")
        bits = _bits(options.nbits)
        exponent = 65537 if options.e65537 else 3
        key = generate_key(bits, exponent, _progress(options.verbose, prog))
        sys.stdout.write(rsasigkey_text(key, options.hostname or _hostname()))
        return 0

    return _run(prog, body)


NEWHOSTKEY_USAGE = (
    "Usage: ipsec newhostkey --output FILE|- [--bits N] [--hostname HOST] [--e65537]"
    " [--verbose] [--quiet]\n"
    f"  default --bits {DEFAULT_NEWHOSTKEY_BITS}; FILE must not exist (it is created mode 0600)\n"
)


def _exists(path: str) -> KeyToolError:
    return KeyToolError(
        f"{path} already exists; not overwriting it (move it away, or write the"
        " new key elsewhere and merge it by hand)"
    )


def _write_new_file(path: str, text: str) -> None:
    """Create ``path`` mode 0600; never overwrite (the old key may be the only copy)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise _exists(path) from None
    except OSError as exc:
        raise KeyToolError(f"cannot create {path}: {exc.strerror}") from None
    try:
        os.fchmod(fd, 0o600)  # the umask may have taken bits away; make it exactly 0600
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            fd = -1
            handle.write(text)
    except OSError as exc:
        if fd >= 0:
            os.close(fd)
        os.unlink(path)  # half a key is worse than none
        raise KeyToolError(f"cannot write {path}: {exc.strerror}") from None


def newhostkey_main(argv: Sequence[str]) -> int:
    """``ipsec newhostkey``: a new key as a ready ipsec.secrets entry."""
    prog = "ipsec newhostkey"

    def body() -> int:
        if "--help" in argv or "-h" in argv:
            sys.stdout.write(NEWHOSTKEY_USAGE)
            return 0
        parser = _Parser(prog=prog, add_help=False)
        _add_generation_options(parser)
        parser.add_argument("--output")
        parser.add_argument("--bits", default=str(DEFAULT_NEWHOSTKEY_BITS))
        parser.add_argument("--quiet", action="store_true")
        options = parser.parse_args(list(argv))
        if not options.output:
            raise UsageError("no --output specification (a file name, or - for stdout)")
        bits = _bits(options.bits)
        if options.output != "-" and os.path.lexists(options.output):
            raise _exists(options.output)  # before the slow part; O_EXCL still guards the write
        exponent = 65537 if options.e65537 else 3
        key = generate_key(bits, exponent, _progress(options.verbose and not options.quiet, prog))
        text = keys.format_rsa_secret_block(
            key, hostname=options.hostname or _hostname(), date=time.ctime()
        )
        if options.output == "-":
            sys.stdout.write(text)
        else:
            _write_new_file(options.output, text)
        return 0

    return _run(prog, body)


# --------------------------------------------------------------------------
# Reading a host key back


@dataclass(frozen=True)
class HostKey:
    """A key found by showhostkey, with what FreeS/WAN printed alongside it."""

    key: rsa.RSAPrivateKey | rsa.RSAPublicKey
    #: ``RSA 2048 bits   host   date`` from the entry's comment, or just ``RSA N bits``
    comment: str
    #: the entry's selectors (empty for PEM files and selector-less entries)
    ids: tuple[Identity, ...] = ()
    #: ``file:line`` or the PEM file name
    where: str = ""

    @property
    def host(self) -> str | None:
        """The host name written in the comment by rsasigkey, if any."""
        fields = self.comment.split()
        return fields[3] if len(fields) > 3 else None


def _entry_comment(secret: Secret, read: Callable[[str], str]) -> str:
    """The ``# RSA N bits host date`` line inside the entry, if rsasigkey wrote one."""
    assert isinstance(secret.value, rsa.RSAPrivateKey)
    fallback = f"RSA {secret.value.key_size} bits"
    location = secret.location
    if location is None or not location.line:
        return fallback
    try:
        lines = read(location.file).splitlines()
    except (OSError, ValueError):
        return fallback
    for index in range(location.line - 1, len(lines)):
        line = lines[index]
        if index >= location.line and line[:1] not in (" ", "\t", "}"):
            break  # the next entry: the comment was not in this one
        match = _BITS_COMMENT.match(line)
        if match:
            return match.group(1)
        if line.strip() == "}":
            break
    return fallback


def _load_pem(text: str, path: str) -> HostKey:
    try:
        key: rsa.RSAPrivateKey | rsa.RSAPublicKey
        if "PRIVATE KEY-----" in text:
            key = keys.load_private_key(text)
        else:
            key = keys.load_public_key(text)
    except keys.KeyFormatError as exc:
        raise KeyToolError(f"{path}: {exc}") from None
    return HostKey(key, f"RSA {key.key_size} bits", (), path)


def load_host_key(
    path: str, id_text: str | None = None, loader: FileLoader | None = None
) -> HostKey:
    """The key showhostkey should show: from a PEM file, or one ``RSA`` entry of ipsec.secrets.

    With ``id_text`` the entry is chosen as the daemon would choose our key for
    that ID (listed, else ``%any``, else selector-less); without it a lone RSA
    entry is taken, else the one without selectors (FreeS/WAN's "default key").
    Two equally good candidates are an error, not a guess.
    """
    loader = loader or FileLoader()
    try:
        text = loader.read(path)
    except FileNotFoundError:
        raise KeyToolError(f"file {path!r} does not exist") from None
    except PermissionError:
        raise KeyToolError(f"permission denied (cannot read {path!r})") from None
    except OSError as exc:
        raise KeyToolError(f"cannot read {path!r}: {exc.strerror}") from None
    if "-----BEGIN" in text and not _RSA_ENTRY.search(text):
        return _load_pem(text, path)
    try:
        parsed = parse_secrets(text, path, loader)
    except ConfigError as exc:
        errors = exc.errors if isinstance(exc, ConfigErrors) else [exc]
        raise KeyToolError("; ".join(str(e) for e in errors)) from None
    entries = [s for s in parsed.entries if s.kind == "RSA"]
    if id_text is not None:
        try:
            wanted = parse_id(id_text)
        except IdError as exc:
            raise UsageError(f"--id: {exc}") from None
        # the secrets file's own rule: entries naming the ID, else %any, else selector-less
        levels = [rsa_match_level(s.ids, wanted) for s in entries]
        best = max(levels, default=0)
        chosen = [s for s, level in zip(entries, levels) if level == best and best > 0]
        label = f"{wanted} key"
    else:
        chosen = entries if len(entries) <= 1 else [s for s in entries if not s.ids]
        label = "default key"
    if not chosen:
        known = sorted({str(i) for s in entries for i in s.ids})
        hint = f" (RSA keys there are for: {', '.join(known)}; pick one with --id)" if known else ""
        raise KeyToolError(f"no {label} in {path!r}{hint}")
    if len(chosen) > 1:
        where = ", ".join(str(s.location) for s in chosen)
        raise KeyToolError(f"multiple {label}s found ({where}); pick one with --id")
    secret = chosen[0]
    assert isinstance(secret.value, rsa.RSAPrivateKey)
    comment = _entry_comment(secret, loader.read)
    return HostKey(secret.value, comment, secret.ids, str(secret.location))


# --------------------------------------------------------------------------
# Output formats


def format_side(host_key: HostKey, side: str) -> str:
    """``--left``/``--right``: the comment line and ``\\tleftrsasigkey=0s...``."""
    return f"\t# {host_key.comment}\n\t{side}rsasigkey={keys.format_rsasigkey(host_key.key)}\n"


def _owner(owner: str | None) -> str:
    return owner or ""


def format_txt_record(host_key: HostKey, gateway: Identity, owner: str | None = None) -> str:
    """``--txt``: ``[owner]\\tIN\\tTXT\\t"X-IPsec-Server(10)=GW" " AQ..."``."""
    rdata = records.format_txt(host_key.key, gateway)
    return f"; {host_key.comment}\n{_owner(owner)}\tIN\tTXT\t{rdata}\n"


def format_ipseckey_record(
    host_key: HostKey, gateway: Identity | None = None, owner: str | None = None
) -> str:
    """``--ipseckey``: ``[owner]\\tIN\\tIPSECKEY\\t10 T 2 GW AQ...`` (RFC 4025)."""
    rdata = records.format_ipseckey(host_key.key, gateway)
    return f"; {host_key.comment}\n{_owner(owner)}\tIN\tIPSECKEY\t{rdata}\n"


def format_key_record(host_key: HostKey, owner: str | None = None) -> str:
    """``--key``: the FreeS/WAN 1.x KEY record (flags 0x4200, IPsec, RSA)."""
    rdata = records.format_key(host_key.key)
    return f"; {host_key.comment}\n{_owner(owner)}\tIN\tKEY\t{rdata}\n"


SHOWHOSTKEY_USAGE = (
    "Usage: ipsec showhostkey --left | --right | --txt [GATEWAY] | --ipseckey | --key\n"
    f"                         [--file F] [--id ID] [--gateway GATEWAY]\n"
    f"  --file: an ipsec.secrets file (default {DEFAULT_SECRETS}) or a PEM key\n"
    "  --id: which RSA entry (its selector); also names the DNS owner of the record\n"
    "  --gateway: @fqdn or address for the record (TXT: default the --id)\n"
)


def _gateway(text: str) -> Identity:
    try:
        return records.parse_gateway(text)
    except records.RecordError as exc:
        raise UsageError(str(exc)) from None


def showhostkey_main(argv: Sequence[str]) -> int:
    """``ipsec showhostkey``: our public key as ipsec.conf or DNS wants it."""
    prog = "ipsec showhostkey"

    def body() -> int:
        if "--help" in argv or "-h" in argv:
            sys.stdout.write(SHOWHOSTKEY_USAGE)
            return 0
        parser = _Parser(prog=prog, add_help=False)
        group = parser.add_mutually_exclusive_group()
        group.add_argument("--left", dest="fmt", action="store_const", const="left")
        group.add_argument("--right", dest="fmt", action="store_const", const="right")
        group.add_argument("--txt", nargs="?", const="", default=None)
        group.add_argument("--ipseckey", dest="fmt", action="store_const", const="ipseckey")
        group.add_argument("--key", dest="fmt", action="store_const", const="key")
        parser.add_argument("--file", default=DEFAULT_SECRETS)
        parser.add_argument("--id")
        parser.add_argument("--gateway")
        options = parser.parse_args(list(argv))
        fmt = "txt" if options.txt is not None else options.fmt
        if fmt is None:
            raise UsageError("must specify a format: --left, --right, --txt, --ipseckey or --key")
        host_key = load_host_key(options.file, options.id)

        owner = None
        identity = None
        if options.id is not None:
            identity = parse_id(options.id)
            try:
                owner = records.query_name(identity).to_text()
            except records.DnsNameError:
                owner = None
        gateway_text = options.gateway or (options.txt or None)
        gateway = _gateway(gateway_text) if gateway_text else None

        if fmt in ("left", "right"):
            out = format_side(host_key, fmt)
        elif fmt == "txt":
            if gateway is None and identity is not None and owner is not None:
                gateway = identity
            if gateway is None:
                raise UsageError("--txt needs a gateway: --txt GATEWAY, --gateway or --id")
            out = format_txt_record(host_key, gateway, owner)
        elif fmt == "ipseckey":
            out = format_ipseckey_record(host_key, gateway, owner)
        else:
            if owner is None and host_key.host:
                owner = host_key.host.rstrip(".") + "."
            out = format_key_record(host_key, owner)
        if fmt in ("txt", "ipseckey") and gateway is not None and identity is not None:
            if gateway != identity:
                sys.stderr.write(
                    f"{prog}: note: the record names gateway {gateway}, not {identity}:"
                    f" a lookup of the key of {identity} ignores it (it delegates to"
                    f" {gateway})\n"
                )
        sys.stdout.write(out)
        return 0

    return _run(prog, body)
