"""Public keys published in DNS: record formats (``records``), pure.

The Twisted side that fetches them lives in :mod:`fswan.daemon.dns`.
"""

from fswan.dnskeys.records import (
    DnsNameError,
    KeyRecord,
    RecordError,
    format_ipseckey,
    format_key,
    format_txt,
    keys_for,
    parse_rdata,
    query_name,
    reverse_name,
)

__all__ = [
    "DnsNameError",
    "KeyRecord",
    "RecordError",
    "format_ipseckey",
    "format_key",
    "format_txt",
    "keys_for",
    "parse_rdata",
    "query_name",
    "reverse_name",
]
