"""memoryd-myplugin: what it adds to memoryd, in one line.

Each ``@hookimpl`` function below is a hook memoryd calls at start (see
docs/plugins.md for every hook). Delete the ones you do not need.
"""

from __future__ import annotations

from collections.abc import Sequence

from attrs import evolve, frozen
from memoryd import hookimpl
from memoryd.core.model import ContentPart
from memoryd.core.part_results import PartText
from memoryd.core.payload import PayloadError, decode, inline_source
from memoryd.core.ports import RerankCandidate
from memoryd.plugins import PluginContext

#: The plugin's name when it is loaded without its entry point (in tests): the same.
PLUGIN_NAME = "myplugin"


@frozen
class MyPluginSettings:
    """``[plugins.myplugin]`` (or ``MEMORYD_PLUGIN_MYPLUGIN__KEY``); every field has a default."""

    #: The file extension this plugin's handler reads.
    extension: str = ".myformat"
    #: The most characters of text one part gives.
    max_chars: int = 10_000


@frozen
class MyFormatHandler:
    """A part handler: the text of ``*.myformat`` file parts."""

    config: MyPluginSettings
    max_bytes: int

    def accepts(self, part: ContentPart) -> bool:
        # Runs on the event loop: decide from the part's fields alone, quickly.
        name = (part.filename or "").lower()
        return (
            part.type == "file"
            and name.endswith(self.config.extension)
            and (inline_source(part) is not None)
        )

    def to_text(self, part: ContentPart) -> str | PartText | None:
        # A plain def: memoryd runs it in a worker thread. Never raise on a bad file:
        # say why (the ingest response shows it), naming the limit or the setting.
        try:
            data = decode(part, max_bytes=self.max_bytes).data
        except PayloadError as exc:
            return PartText.skipped(str(exc))
        text = data.decode("utf-8", "replace").strip()
        if not text:
            return PartText.skipped("it is empty")
        if len(text) > self.config.max_chars:
            note = f"kept {self.config.max_chars} characters (max_chars, [plugins.myplugin])"
            return PartText(text[: self.config.max_chars], note)
        return text


@frozen
class ShortFirst:
    """A reranker: shorter memories first among equal scores. It only reorders."""

    name: str = "short-first"

    def rerank(self, query: str, pool: Sequence[RerankCandidate]) -> list[RerankCandidate]:
        # Return a new list of the same candidates; rescoring is allowed (attrs.evolve).
        ranked = sorted(pool, key=lambda c: (-round(c.score, 2), len(c.memory.text)))
        return [evolve(c) for c in ranked]


@hookimpl
def memoryd_plugin_settings() -> type[MyPluginSettings]:
    return MyPluginSettings


@hookimpl
def memoryd_register_part_handlers(
    context: PluginContext[MyPluginSettings],
) -> Sequence[MyFormatHandler]:
    return [MyFormatHandler(context.config, max_bytes=context.settings.part_max_bytes)]


@hookimpl
def memoryd_register_rerankers() -> Sequence[ShortFirst]:
    # Off until the deployer names it: rerankers = ["short-first"].
    return [ShortFirst()]
