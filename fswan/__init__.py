"""fswan: a FreeS/WAN-style IPsec gateway (pluto + KLIPS + ipsec tools) as one Twisted daemon."""

__version__ = "0.1.0"
