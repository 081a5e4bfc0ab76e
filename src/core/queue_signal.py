"""The signal from a queued write to the worker that builds its memories."""

from __future__ import annotations

import asyncio

from attrs import define, field


@define
class QueueSignal:
    """Wakes the queued-ingest worker (:mod:`memoryd.core.queued`) when work is committed.

    The store is the queue; this only saves the worker a wait. A wake-up lost
    (none is lost while the worker runs) delays the work until the next poll.
    """

    _event: asyncio.Event = field(factory=asyncio.Event, init=False)

    def wake(self) -> None:
        """Work was committed: have the worker look at the store's queue."""
        self._event.set()

    async def wait(self, seconds: float) -> bool:
        """Wait up to ``seconds`` for a wake-up; whether one came (and clear it)."""
        try:
            async with asyncio.timeout(seconds):
                await self._event.wait()
        except TimeoutError:
            return False
        finally:
            self._event.clear()
        return True
