"""``ipsec checkconfig``'s look at the certificate files a config names, pure.

``leftcert=``/``rightcert=`` (relative: ``ipsec.d/certs`` beside ipsec.conf), the ``cacert=``
(relative: ``ipsec.d/cacerts``) and file ``crluri=`` (relative: ``ipsec.d/crls``) of ``ca``
sections with ``auto=add`` must exist and parse, as the daemon will read them; each problem
carries the file:line of the keyword that named the file, so a typo is found before the
daemon refuses the conn at start.  Files are read only through the loader given (the
daemon's and the CLIs' ``FileLoader``, a dict in tests), as ``include`` is.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import unquote, urlsplit

from cryptography import x509

from fswan.config.errors import ConfigError, Location
from fswan.config.model import Config
from fswan.config.secrets import Secrets


class BytesLoader(Protocol):
    """Reads a whole file as bytes (certificates may be DER); raises OSError."""

    def read_bytes(self, path: str) -> bytes: ...


@dataclass
class CertFileReport:
    """Problems that keep a file from being used (errors) and what is only worth saying."""

    errors: list[ConfigError] = field(default_factory=list)
    warnings: list[ConfigError] = field(default_factory=list)


def ipsec_d(config_path: str) -> str:
    """``ipsec.d`` beside ipsec.conf (``/etc/ipsec.conf`` -> ``/etc/ipsec.d``)."""
    return posixpath.join(posixpath.dirname(config_path) or ".", "ipsec.d")


def _under(directory: str, name: str) -> str:
    return name if posixpath.isabs(name) else posixpath.join(directory, name)


class _Reader:
    """Each file read once, however many conns name it."""

    def __init__(self, loader: BytesLoader) -> None:
        self.loader = loader
        self.certs: dict[str, list[x509.Certificate] | str] = {}

    def certificates(self, path: str) -> list[x509.Certificate] | str:
        """The certificates in the file, or why there are none."""
        if path not in self.certs:
            from fswan.pki.certs import PkiError, parse_certificates

            try:
                self.certs[path] = parse_certificates(self._read(path), path)
            except OSError as error:
                self.certs[path] = error.strerror or type(error).__name__
            except PkiError as error:
                self.certs[path] = error.reason
        return self.certs[path]

    def crl_problem(self, path: str) -> str | None:
        from fswan.pki.certs import PkiError, parse_crl

        try:
            parse_crl(self._read(path), path)
        except OSError as error:
            return error.strerror or type(error).__name__
        except PkiError as error:
            return error.reason
        return None

    def _read(self, path: str) -> bytes:
        return self.loader.read_bytes(path)


def check_certificate_files(config: Config, config_path: str, loader: BytesLoader,
                            secrets: Secrets | None = None,
                            secrets_path: str | None = None) -> CertFileReport:
    """Every certificate, CA and CRL file the config names, checked; with ``secrets``, a
    ``leftcert=`` without its private key in them is a warning (left may be the peer)."""
    from fswan.pki.dn import format_dn
    from fswan.pki.store import is_ca

    report = CertFileReport()
    seen: set[tuple[str, str]] = set()

    def add(target: list[ConfigError], message: str, location: Location | None) -> None:
        key = (message, str(location))
        if key not in seen:
            seen.add(key)
            target.append(ConfigError(message, location))

    base = ipsec_d(config_path)
    reader = _Reader(loader)
    for conn in config.conns.values():
        for side, end in (("left", conn.left), ("right", conn.right)):
            if not end.cert:
                continue
            keyword = f"{side}cert"
            location = conn.settings.get(keyword, ("", None))[1]
            path = _under(posixpath.join(base, "certs"), end.cert)
            found = reader.certificates(path)
            if isinstance(found, str):
                add(report.errors, f"{keyword}={end.cert}: {path}: {found}", location)
                continue
            if side != "left" or secrets is None:
                continue
            if secrets.find_key_for(found[0].public_key()) is None:
                add(report.warnings,
                    f"{keyword}={end.cert}: no private key for '{format_dn(found[0].subject)}' in "
                    f"{secrets_path or 'ipsec.secrets'} (an RSA or ECDSA entry naming its key "
                    "file); fine only if left is the peer", location)
    for name, section in config.cas.items():
        if section.auto != "add":
            continue
        if "cacert" in section.settings:
            value, location = section.settings["cacert"]
            path = _under(posixpath.join(base, "cacerts"), value)
            found = reader.certificates(path)
            if isinstance(found, str):
                add(report.errors, f'ca "{name}": cacert={value}: {path}: {found}', location)
            elif not any(is_ca(cert) for cert in found):
                add(report.errors, f'ca "{name}": cacert={value}: {path}: '
                    f"'{format_dn(found[0].subject)}' is not a CA certificate", location)
        for keyword in ("crluri", "crluri2"):
            if keyword not in section.settings:
                continue
            value, location = section.settings[keyword]
            uri = value.strip()
            scheme = uri.split("://", 1)[0].lower() if "://" in uri else ""
            if scheme in ("ldap", "ldaps"):
                add(report.warnings, f'ca "{name}": {keyword}={uri}: LDAP is not supported; '
                    "this CRL will not be fetched", location)
            elif scheme in ("", "file"):
                path = unquote(urlsplit(uri).path) if scheme == "file" else uri
                path = _under(posixpath.join(base, "crls"), path)
                problem = reader.crl_problem(path)
                if problem is not None:
                    add(report.errors, f'ca "{name}": {keyword}={uri}: {path}: {problem}', location)
            elif scheme not in ("http", "https"):
                add(report.errors, f'ca "{name}": {keyword}={uri}: unknown URI scheme '
                    f"{scheme!r} (file://, a path or http://)", location)
    return report
