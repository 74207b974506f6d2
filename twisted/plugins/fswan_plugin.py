"""Makes ``twistd fswan`` find the daemon (no __init__.py in twisted/plugins)."""

from twisted.application.service import ServiceMaker

fswan = ServiceMaker(
    "fswan",
    "fswan.tap",
    "FreeS/WAN-style IPsec gateway: IKEv1 daemon with a whack control socket",
    "fswan",
)
