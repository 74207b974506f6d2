"""IKEv2 (RFC 7296), pure: the wire codec (``message``, ``payloads``,
``constants``, ``errors``) and its cryptography (``crypto``).  No Twisted,
no sockets, no clock: the exchanges that use it live elsewhere.
"""
