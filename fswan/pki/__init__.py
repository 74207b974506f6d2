"""X.509 for IKEv1 certificate authentication, pure: DNs, loading, path validation, listings.

Rules of this package: no Twisted, no sockets, no clock (``now`` is an argument); files are read
only when a function is explicitly asked to load one.  ``cryptography`` does all parsing and
signature work; the only hand-written ASN.1 is the strict DER reader for a bare Name (``dn.py``),
which ``cryptography`` has no public parser for.
"""
