"""Built-in part handler ``csv``: a CSV or TSV file as one ``header: value`` line per row.

Standard library only. The first row is the header; the dialect (comma,
semicolon, tab) is sniffed. It stops at ``max_rows`` rows or its time limit.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

from attrs import frozen

from memoryd.core.contain import BlockingPartHandler
from memoryd.core.part_results import PartText
from memoryd.core.payload import Payload
from memoryd.plugins.builtin._files import Deadline, file_handler, text_of
from memoryd.plugins.context import PluginContext
from memoryd.plugins.hookspecs import hookimpl


@frozen
class CsvSettings:
    """``[plugins.csv]``."""

    #: Rows read from each file (after its header).
    max_rows: int = 10_000


@frozen
class _Reader:
    max_rows: int

    def __call__(self, payload: Payload, deadline: Deadline) -> str | PartText | None:
        text = text_of(payload.data)
        try:
            dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(
                text[:4096], delimiters=",;\t|"
            )
        except csv.Error:
            dialect = (
                csv.excel_tab
                if (payload.mime_type or "").endswith("tab-separated-values")
                else csv.excel
            )
        reader = csv.reader(io.StringIO(text), dialect)
        header = [" ".join(h.split()) for h in next(reader, [])]
        lines: list[str] = []
        stopped = None
        for n, row in enumerate(reader):
            if n >= self.max_rows or deadline.passed():
                stopped = (
                    f"max_rows = {self.max_rows}, setting [plugins.csv]"
                    if n >= self.max_rows
                    else "its time limit (plugin_timeout)"
                )
                break
            cells = [
                f"{h}: {v.strip()}" if h else v.strip()
                for h, v in zip(header, row, strict=False)
                if v.strip()
            ]
            if cells:
                lines.append("; ".join(cells))
        if not lines:
            return " | ".join(header) or None
        if stopped:
            return PartText("\n".join(lines), f"read the first {n} rows ({stopped})")
        return "\n".join(lines)


@hookimpl
def memoryd_plugin_settings() -> type[CsvSettings]:
    return CsvSettings


@hookimpl
def memoryd_register_part_handlers(
    context: PluginContext[CsvSettings],
) -> Sequence[BlockingPartHandler]:
    return [
        file_handler(
            context,
            _Reader(max(1, context.config.max_rows)),
            mimes=("text/csv", "text/tab-separated-values", "application/csv"),
            extensions=("csv", "tsv"),
        )
    ]
