"""``ipsec auto --listcerts`` / ``--listcacerts`` / ``--listcrls`` in the X.509 patch's pluto layout.

Lines come without the ``000 `` prefix (the daemon adds it).  A list with nothing in it is no
lines at all, as pluto prints nothing then.  The first line of each block is when the file was
loaded; ``count`` is 1 (pluto's reference count has no meaning here).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from cryptography import x509

from fswan.pki.certs import (
    authority_key_id, describe_public_key, hex_colons, pluto_local_time, pluto_time, serial_text,
    subject_key_id, utc)
from fswan.pki.dn import format_dn
from fswan.pki.store import CertStore, StoredCert, revocation_reason

#: how close to its end a certificate says "expires in", as pluto's warning intervals
CERT_WARNING = timedelta(days=30)
CRL_WARNING = timedelta(days=7)

_INDENT = "       "
_CONT = "                 "


def _expiry(end: datetime | None, now: datetime, warning: timedelta) -> str:
    """pluto's check_expiry: ``ok``, ``ok (expires in 3 days)`` or ``expired``."""
    if end is None:
        return "ok (expires never)"
    left = end - now
    if left < timedelta(0):
        return "expired"
    if left > warning:
        return "ok"
    if left >= timedelta(days=1):
        n, unit = left.days, "day"
    elif left >= timedelta(hours=1):
        n, unit = left.seconds // 3600, "hour"
    elif left >= timedelta(minutes=1):
        n, unit = left.seconds // 60, "minute"
    else:
        n, unit = left.seconds, "second"
    return f"ok (expires in {n} {unit}{'' if n == 1 else 's'})"


def _alt_names(cert: x509.Certificate) -> list[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    names = []
    for general in san:
        if isinstance(general, (x509.DNSName, x509.RFC822Name, x509.UniformResourceIdentifier)):
            names.append(general.value)
        elif isinstance(general, x509.IPAddress):
            names.append(str(general.value))
        elif isinstance(general, x509.DirectoryName):
            names.append(format_dn(general.value))
    return names


def _cert_block(stored: StoredCert, now: datetime) -> list[str]:
    cert = stored.cert
    start, stop = cert.not_valid_before_utc, cert.not_valid_after_utc
    lines = [
        f"{pluto_local_time(stored.loaded)}, count: 1",
        f"{_INDENT}subject: '{format_dn(cert.subject)}'",
    ]
    alt = _alt_names(cert)
    if alt:
        lines.append(f"{_INDENT}altNames: {', '.join(alt)}")
    lines += [
        f"{_INDENT}issuer:  '{format_dn(cert.issuer)}'",
        f"{_INDENT}serial:   {serial_text(cert.serial_number)}",
        f"{_INDENT}validity: not before {pluto_time(start)} "
        f"{'ok' if start <= now else 'fatal (not valid yet)'}",
        f"{_CONT}not after  {pluto_time(stop)} {_expiry(stop, now, CERT_WARNING)}",
        f"{_INDENT}pubkey:   {describe_public_key(cert)}",
    ]
    skid = subject_key_id(cert)
    if skid:
        lines.append(f"{_INDENT}subjkey:  {hex_colons(skid)}")
    akid = authority_key_id(cert)
    if akid:
        lines.append(f"{_INDENT}authkey:  {hex_colons(akid)}")
    return lines


def _certs(title: str, stored: list[StoredCert], now: datetime) -> list[str]:
    if not stored:
        return []
    lines = [title, ""]
    for one in stored:
        lines += _cert_block(one, utc(now))
    return lines


def list_certs(store: CertStore, now: datetime) -> list[str]:
    """Our end certificates (those loaded for conns)."""
    return _certs("List of X.509 End Certificates:", list(store.end_certs.values()), now)


def list_cacerts(store: CertStore, now: datetime) -> list[str]:
    """The trust anchors."""
    return _certs("List of X.509 CA Certificates:", store.anchors, now)


def list_crls(store: CertStore, now: datetime) -> list[str]:
    """The CRLs, each with its revoked serials, dates and reasons."""
    if not store.crls:
        return []
    now = utc(now)
    lines = ["List of X.509 CRLs:", ""]
    for stored in store.crls:
        crl = stored.crl
        revoked = list(crl)
        lines += [
            f"{pluto_local_time(stored.loaded)}, revoked certs: {len(revoked)}",
            f"{_INDENT}issuer:  '{format_dn(crl.issuer)}'",
        ]
        try:
            number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
            lines.append(f"{_INDENT}crlnumber: {serial_text(number)}")
        except x509.ExtensionNotFound:
            pass
        for i, entry in enumerate(revoked):
            label = "revoked:  " if i == 0 else "          "
            lines.append(f"{_INDENT}{label}{serial_text(entry.serial_number)}, "
                         f"{pluto_time(entry.revocation_date_utc)}, {revocation_reason(entry)}")
        lines.append(f"{_INDENT}updates:  this {pluto_time(crl.last_update_utc)}")
        next_update = crl.next_update_utc
        if next_update is None:
            lines.append(f"{_CONT}next (none) ok (expires never)")
        else:
            lines.append(f"{_CONT}next {pluto_time(next_update)} {_expiry(next_update, now, CRL_WARNING)}")
        akid = authority_key_id(crl)
        if akid:
            lines.append(f"{_INDENT}authkey:  {hex_colons(akid)}")
    return lines


# -- the same facts as JSON (``--json``) ------------------------------------------------


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else utc(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


def cert_dict(stored: StoredCert, now: datetime) -> dict[str, object]:
    """One certificate of ``--listcerts``/``--listcacerts --json``."""
    cert = stored.cert
    stop = cert.not_valid_after_utc
    skid, akid = subject_key_id(cert), authority_key_id(cert)
    return {
        "subject": format_dn(cert.subject),
        "issuer": format_dn(cert.issuer),
        "alt_names": _alt_names(cert),
        "serial": serial_text(cert.serial_number),
        "not_before": _iso(cert.not_valid_before_utc),
        "not_after": _iso(stop),
        "validity": _expiry(stop, utc(now), CERT_WARNING) if cert.not_valid_before_utc <= utc(now)
        else "fatal (not valid yet)",
        "pubkey": describe_public_key(cert),
        "subjkey": hex_colons(skid) if skid else None,
        "authkey": hex_colons(akid) if akid else None,
        "file": stored.path,
        "origin": stored.origin or None,
        "loaded": _iso(stored.loaded),
    }


def certs_dict(store: CertStore, now: datetime) -> dict[str, object]:
    return {"certs": [cert_dict(s, now) for s in store.end_certs.values()]}


def cacerts_dict(store: CertStore, now: datetime) -> dict[str, object]:
    return {"cacerts": [cert_dict(s, now) for s in store.anchors]}


def crls_dict(store: CertStore, now: datetime) -> dict[str, object]:
    """``--listcrls --json``: each CRL with its revoked serials."""
    out = []
    for stored in store.crls:
        crl = stored.crl
        try:
            number: str | None = serial_text(
                crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number)
        except x509.ExtensionNotFound:
            number = None
        next_update = crl.next_update_utc
        out.append({
            "issuer": format_dn(crl.issuer),
            "crlnumber": number,
            "revoked": [{"serial": serial_text(e.serial_number),
                         "date": _iso(e.revocation_date_utc), "reason": revocation_reason(e)}
                        for e in crl],
            "this_update": _iso(crl.last_update_utc),
            "next_update": _iso(next_update),
            "validity": _expiry(next_update, utc(now), CRL_WARNING),
            "source": stored.path,
            "from_crls_dir": stored.from_dir,
            "loaded": _iso(stored.loaded),
        })
    return {"crls": out}
