"""What reading one content part came to: the values a handler may return and the client is told.

A part handler's ``to_text`` returns text, None, or a :class:`PartText` when it
has something to say beside the text: why a part gave none (``"it is not a
readable PDF"``) or what was left out (``"read 20 of 50 pages (max_pages = 20
...)"``). That note, never an exception, is how a handler reports a corrupt,
truncated, hostile or over-limit file. memoryd turns each non-text part it
reads into a :class:`PartOutcome`, which the ingest response lists (``parts``)
so a client learns which part, why, and which limit.
"""

from __future__ import annotations

from typing import Literal

from attrs import frozen

#: ``read``: it gave text (``reason`` may say what was left out); ``skipped``: its handler
#: read no text from it (``reason`` says why); ``failed``: its handler raised or took too
#: long; ``unsupported``: no installed handler reads it; ``refused``: its URL was not
#: fetched (fetching is off, or the fetch guard refused it).
PartStatus = Literal["read", "skipped", "failed", "unsupported", "refused"]


@frozen
class PartText:
    """A handler's answer with a note for the client: the text (or None), and why or what not."""

    text: str | None = None
    #: Why the part gave no text, or what of it was left out; shown to the client, so it
    #: names the limit or the setting and holds no secret.
    note: str | None = None

    @classmethod
    def skipped(cls, reason: str) -> PartText:
        return cls(None, reason)


@frozen
class HandlerFailure:
    """A contained handler's call failed (it raised, timed out, or answered nonsense)."""

    reason: str


@frozen
class PartOutcome:
    """What became of one non-text part of a message (the ingest response's ``parts``)."""

    #: The message's place in the request's ``messages``, from 0.
    message: int
    #: The part's place in that message's ``content``, from 0.
    part: int
    type: str
    status: PartStatus
    filename: str | None = None
    #: The plugin whose handler read it (or tried to).
    plugin: str | None = None
    reason: str | None = None
    #: Characters of text it gave.
    characters: int = 0
