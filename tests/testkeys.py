"""Real RSA public keys in FreeS/WAN's ``0s`` form for config tests (the lab's throwaway keys)."""

from pathlib import Path

from fswan.config.keys import format_rsasigkey, load_public_key

_KEYS = Path(__file__).parent / "data" / "keys"

WEST_0S = format_rsasigkey(load_public_key((_KEYS / "west.pub").read_text()))
EAST_0S = format_rsasigkey(load_public_key((_KEYS / "east.pub").read_text()))
