"""ESP anti-replay window (RFC 4303 section 3.4.3 and Appendix A).

Rules of this module:

* The check is split in two, because the window must only move for packets
  whose ICV verified: :meth:`ReplayWindow.check` runs *before* the ICV check
  and only reads state (a forged packet with a huge sequence number cannot
  push the window forward), :meth:`ReplayWindow.update` runs *after* it.
* With extended sequence numbers only the low 32 bits travel; ``check``
  infers the high half from the window position (Appendix A2.2) and returns
  the full 64-bit number, which the caller feeds into the ICV (as ``seq_hi``)
  and then hands back to ``update``.  A wrong guess simply fails the ICV.
* The window is a Python int used as a bitmap: bit ``i`` set means sequence
  number ``top - i`` has been received.  Sizes from 32 to 4096 cost the same
  per packet to within a few nanoseconds.
"""

from __future__ import annotations

__all__ = ["DUPLICATE", "MAX_WINDOW", "TOO_OLD", "ReplayWindow"]

#: :meth:`ReplayWindow.check` results that are not sequence numbers
DUPLICATE = -1
TOO_OLD = -2

MAX_WINDOW = 4096
_M32 = 0xFFFFFFFF


class ReplayWindow:
    """Receiver-side sliding window over (possibly 64-bit) sequence numbers."""

    __slots__ = ("size", "esn", "top", "bitmap", "_mask")

    def __init__(self, size: int = 64, esn: bool = False) -> None:
        if not 1 <= size <= MAX_WINDOW:
            raise ValueError(f"replay window must be 1..{MAX_WINDOW} packets, not {size}")
        self.size = size
        self.esn = esn
        #: highest sequence number authenticated so far (0: none yet)
        self.top = 0
        self.bitmap = 0
        self._mask = (1 << size) - 1

    def check(self, seq_low: int) -> int:
        """The full sequence number for a received low half, or DUPLICATE / TOO_OLD.

        Reads state only: call :meth:`update` once the ICV has verified.
        """
        top = self.top
        if self.esn:
            size = self.size
            tl = top & _M32
            th = top >> 32
            if tl >= size - 1:
                # Case A: the window lies within one 2^32 subspace
                hi = th if seq_low >= tl - size + 1 else th + 1
            else:
                # Case B: the window spans the boundary with the previous subspace
                # (none before the first: then the current one is the only candidate)
                hi = th - 1 if th and seq_low >= (tl - size + 1) & _M32 else th
            seq = (hi << 32) | seq_low
        else:
            seq = seq_low
        if seq > top:
            return seq
        if seq == 0:
            return TOO_OLD  # never sent: the first packet carries 1
        diff = top - seq
        if diff >= self.size:
            return TOO_OLD
        if (self.bitmap >> diff) & 1:
            return DUPLICATE
        return seq

    def update(self, seq: int) -> bool:
        """Record an authenticated ``seq`` (from :meth:`check`); False if it was already seen."""
        top = self.top
        if seq > top:
            shift = seq - top
            self.bitmap = ((self.bitmap << shift) | 1) & self._mask if shift < self.size else 1
            self.top = seq
            return True
        diff = top - seq
        if diff >= self.size:
            return False
        bit = 1 << diff
        if self.bitmap & bit:
            return False
        self.bitmap |= bit
        return True

    def seen(self, seq: int) -> bool:
        """True when ``seq`` (a full number) is inside the window and marked received."""
        diff = self.top - seq
        return 0 <= diff < self.size and bool((self.bitmap >> diff) & 1)

    def __repr__(self) -> str:
        return f"<ReplayWindow size={self.size} esn={self.esn} top={self.top:#x}>"
