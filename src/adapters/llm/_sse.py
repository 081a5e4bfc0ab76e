"""Server-sent events, as OpenAI-compatible servers stream chat completions.

Only what a client of ``/v1/chat/completions`` needs: ``data:`` fields are
collected until the blank line that ends an event; comments (keep-alives such
as ``: ping``) and the ``event``, ``id`` and ``retry`` fields are ignored.
"""

from __future__ import annotations

from attrs import define, field

#: The data of the event that ends an OpenAI stream.
DONE = "[DONE]"


@define
class SseDecoder:
    """Turns the lines of a ``text/event-stream`` into the data of each event."""

    _data: list[str] = field(factory=list, init=False)

    def feed(self, line: str) -> str | None:
        """Take one line (its line ending may be there); return the event's data if it ends."""
        line = line.rstrip("\r\n")
        if not line:
            return self.flush()
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        if name == "data":
            self._data.append(value.removeprefix(" "))
        return None

    def flush(self) -> str | None:
        """The data of the event in progress (at the end of the stream), if it has any."""
        if not self._data:
            return None
        data = "\n".join(self._data)
        self._data.clear()
        return data
