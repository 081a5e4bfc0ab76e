"""SQLite rowid -> a slot of its memory, in an int32 array indexed by rowid.

A compact tenant (hundreds of thousands of memories) maps the keyword side's
hits (FTS5 rowids) to its rows with this instead of a dict of rowid -> id: a
few bytes per rowid of the file instead of about 90. Rowids past ``DENSE_UP_TO``
(SQLite only picks such rowids when the largest one is taken) go to a dict.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import numpy.typing as npt

#: Rowids up to this are kept in the array (4 bytes each, up to 512 MiB).
DENSE_UP_TO = 1 << 27


class SlotsByRowid:
    """Which slot holds (a row of) the memory of each rowid; -1: none of this tenant."""

    def __init__(self, capacity: int = 1024) -> None:
        self._slots: npt.NDArray[np.int32] = np.full(max(capacity, 1), -1, np.int32)
        self._far: dict[int, int] = {}

    def _room(self, rowid: int) -> None:
        size = len(self._slots)
        if rowid < size:
            return
        while size <= rowid:
            size *= 2
        grown = np.full(size, -1, np.int32)
        grown[: len(self._slots)] = self._slots
        self._slots = grown

    def set(self, rowid: int, slot: int) -> None:
        if rowid >= DENSE_UP_TO or rowid < 0:
            self._far[rowid] = slot
            return
        self._room(rowid)
        self._slots[rowid] = slot

    def set_many(self, pairs: Iterable[tuple[int, int]]) -> None:
        for rowid, slot in pairs:
            self.set(rowid, slot)

    def get(self, rowid: int) -> int:
        if 0 <= rowid < len(self._slots):
            return int(self._slots[rowid])
        return self._far.get(rowid, -1)

    def drop(self, rowid: int) -> None:
        if 0 <= rowid < len(self._slots):
            self._slots[rowid] = -1
        else:
            self._far.pop(rowid, None)

    def moved(self, rowid: int, old: int, new: int) -> None:
        """A row moved from slot ``old`` to ``new``: follow it if it is the one mapped."""
        if self.get(rowid) == old:
            self.set(rowid, new)
