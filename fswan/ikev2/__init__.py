"""IKEv2 (RFC 7296), pure: the wire codec (``message``, ``payloads``, ``constants``,
``errors``), its cryptography (``crypto``), and the exchanges, which run inside the
IKEv1 engine's table, timers and lifecycle (``hooks`` is the engine's ``v2``; see
docs/ARCHITECTURE.md).  No Twisted, no sockets, no clock.
"""
