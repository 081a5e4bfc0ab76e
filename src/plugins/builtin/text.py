"""Built-in part handler ``text``: plain text, Markdown and JSON files sent inline.

A file part whose type is ``text/*`` (``text/plain``, ``text/markdown`` ...),
JSON, or whose name ends in ``.txt``, ``.md`` or ``.json``, contributes its
text. Its data may be base64, a ``data:`` URI, or (for a text type) the text
itself. JSON becomes one ``path: value`` line per value, so that searches
find the values. Nothing is fetched: a URL contributes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

from memoryd.core.contain import BlockingPartHandler
from memoryd.core.payload import Payload
from memoryd.plugins.builtin._files import Deadline, Unreadable, file_handler, text_of
from memoryd.plugins.context import PluginContext
from memoryd.plugins.hookspecs import hookimpl

#: Values of a JSON document turned into lines, at most.
MAX_JSON_VALUES = 5_000


def _json_lines(value: Any, path: str = "") -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _json_lines(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _json_lines(item, f"{path}[{i}]")
    elif value is not None:
        yield f"{path}: {value}" if path else str(value)


def _binary(data: bytes) -> bool:
    """NUL bytes, or more than a tenth of control characters: not text in any encoding."""
    head = data[:4096]
    controls = sum(1 for b in head if b < 32 and b not in (9, 10, 12, 13))
    return b"\x00" in head or controls * 10 > len(head)


def extract(payload: Payload, deadline: Deadline) -> str | None:
    if _binary(payload.data):
        raise Unreadable("it holds binary data, not text (check its type: mimeType)")
    text = text_of(payload.data)
    is_json = (payload.mime_type or "").endswith("json") or (
        (payload.filename or "").lower().endswith(".json")
    )
    if is_json:
        try:
            document = json.loads(text)
        except ValueError:
            return text
        lines = []
        for line in _json_lines(document):
            lines.append(line)
            if len(lines) >= MAX_JSON_VALUES or deadline.passed():
                break
        return "\n".join(lines)
    return text


@hookimpl
def memoryd_register_part_handlers(context: PluginContext[None]) -> Sequence[BlockingPartHandler]:
    return [
        file_handler(
            context,
            extract,
            mimes=("text/", "application/json", "application/ld+json"),
            extensions=("txt", "md", "markdown", "json", "log"),
        )
    ]
