"""memoryd-vcard: contact cards (vCard, ``.vcf``) sent as file parts become searchable text.

One hook registers the handler; one declares the settings (``[plugins.vcard]``).
The handler's ``to_text`` is a plain function, so memoryd runs it in a worker
thread; it gets the part's bytes inline (memoryd fetches URLs itself, when the
deployer allows it) and never raises on a file it cannot read: it says why.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from attrs import frozen

from memoryd import hookimpl
from memoryd.core.model import ContentPart
from memoryd.core.part_results import PartText
from memoryd.core.payload import PayloadError, declared_mime, decode, inline_source

__version__ = "0.1.0"
#: Its name when loaded without its entry point (memoryd.testing.plugin_host): the same.
PLUGIN_NAME = "vcard"

MIMES = ("text/vcard", "text/x-vcard", "text/directory")
#: Properties kept, and how each line of text names them.
LABELS = {
    "FN": "name",
    "ORG": "organisation",
    "TITLE": "title",
    "EMAIL": "e-mail",
    "TEL": "phone",
    "NOTE": "note",
    "BDAY": "birthday",
}


@frozen
class VcardSettings:
    """``[plugins.vcard]``."""

    #: Keep phone numbers (``TEL``) in the text.
    phones: bool = True
    #: Cards read from one file; the rest are left out (and the response says so).
    max_cards: int = 200


def unfold(text: str) -> Iterator[str]:
    """The card's logical lines: a line starting with a space or tab continues the one before."""
    current = ""
    for raw in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if raw[:1] in (" ", "\t") and current:
            current += raw[1:]
            continue
        if current:
            yield current
        current = raw
    if current:
        yield current


def _value(value: str) -> str:
    """A property's value as text: escapes undone, structured parts (``;``) joined."""
    value = value.replace("\\n", " ").replace("\\N", " ").replace("\\,", ",")
    parts = [p.strip() for p in value.replace("\\;", "\x00").split(";")]
    return ", ".join(p.replace("\x00", ";") for p in parts if p)


@frozen
class VcardHandler:
    """Reads the contact cards of a vCard file part."""

    config: VcardSettings = VcardSettings()
    max_bytes: int = 1024 * 1024

    def accepts(self, part: ContentPart) -> bool:
        if part.type != "file" or inline_source(part) is None:
            return False
        named = (part.filename or "").lower().endswith((".vcf", ".vcard"))
        return named or (declared_mime(part) or "") in MIMES

    def to_text(self, part: ContentPart) -> str | PartText | None:
        try:
            data = decode(part, max_bytes=self.max_bytes).data
        except PayloadError as exc:
            return PartText.skipped(str(exc))
        text = data.decode("utf-8", "replace")
        if "BEGIN:VCARD" not in text.upper():
            return PartText.skipped("it is not a vCard (no BEGIN:VCARD)")
        cards, lines, total = [], [], 0
        for line in unfold(text):
            name, _, value = line.partition(":")
            key = name.split(";", 1)[0].split(".")[-1].upper()
            if key == "BEGIN":
                lines = []
            elif key == "END":
                total += 1
                if lines and len(cards) < self.config.max_cards:
                    cards.append("\n".join(lines))
            elif key in LABELS and (key != "TEL" or self.config.phones) and _value(value):
                lines.append(f"{LABELS[key]}: {_value(value)}")
        if not cards:
            return PartText.skipped("its cards hold no name, e-mail or other field it reads")
        joined = "\n\n".join(cards)
        if total > len(cards) and len(cards) == self.config.max_cards:
            note = f"read {len(cards)} of {total} cards (max_cards, setting [plugins.vcard])"
            return PartText(joined, note)
        return joined


@hookimpl
def memoryd_plugin_settings() -> type[VcardSettings]:
    return VcardSettings


@hookimpl
def memoryd_register_part_handlers(context: Any) -> Sequence[VcardHandler]:
    config: VcardSettings = context.config
    return [VcardHandler(config, max_bytes=context.settings.part_max_bytes)]
