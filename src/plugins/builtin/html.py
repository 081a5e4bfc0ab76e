"""Built-in part handler ``html``: a web page's main text, boilerplate removed (``memoryd[files]``).

trafilatura extracts it (menus, footers and scripts left out); it needs
``lxml_html_clean`` beside it. A page from which it extracts nothing
contributes nothing. Links in the page are never fetched.
"""

from __future__ import annotations

from collections.abc import Sequence

from memoryd.core.contain import BlockingPartHandler
from memoryd.core.payload import Payload
from memoryd.plugins.builtin._files import Deadline, available, file_handler, text_of
from memoryd.plugins.context import PluginContext
from memoryd.plugins.hookspecs import hookimpl


def extract(payload: Payload, deadline: Deadline) -> str | None:
    import trafilatura

    text = trafilatura.extract(
        text_of(payload.data), include_comments=False, include_tables=True, favor_recall=True
    )
    return text or None


@hookimpl
def memoryd_register_part_handlers(context: PluginContext[None]) -> Sequence[BlockingPartHandler]:
    if not available(context, "trafilatura", "lxml_html_clean", extra="files"):
        return []
    return [
        file_handler(
            context,
            extract,
            mimes=("text/html", "application/xhtml+xml"),
            extensions=("html", "htm", "xhtml"),
        )
    ]
