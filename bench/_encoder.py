"""The embedding model a bench server runs with, opened in the bench process.

The raw model rate (``bench.build``) and the exact recall reference
(``bench.measure``) must embed with the very model, prompts and settings the
server uses, whichever embedder the settings name (``minilm``, ``e5``,
``mpnet``, ``gguf`` with its ``MEMORYD_PLUGIN_GGUF__*`` settings, or an
installed plugin's). So the model is opened the way the server opens it:
through the plugin host (``bootstrap.embedder``), on an event loop of its own
in a helper thread, kept open until the ``with`` block ends. ``openai`` is
remote: its stand-in is the default local model, as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Iterator, Mapping
from typing import cast

from memoryd.adapters.embedding import EncoderModel
from memoryd.settings import Settings, load_settings

#: Seconds to wait for the model to open (mpnet's first start converts its weights).
OPEN_TIMEOUT = 900.0


def bench_settings(env: Mapping[str, str]) -> Settings:
    """The settings a bench server runs with: defaults + the bench's ``MEMORYD_*`` variables."""
    settings = load_settings(env=dict(env))
    if settings.embedder == "openai":
        settings = load_settings(env={**env, "MEMORYD_EMBEDDER": "minilm"})
    return settings


@contextlib.contextmanager
def open_encoder(env: Mapping[str, str]) -> Iterator[EncoderModel]:
    """The encoder of the embedder that ``env`` configures, loaded, until the block ends."""
    from memoryd import bootstrap

    settings = bench_settings(env)
    opened: queue.Queue[object] = queue.Queue(maxsize=1)
    done = threading.Event()

    async def hold() -> None:
        try:
            async with bootstrap.embedder(settings) as embedder:
                model = getattr(embedder, "model", None)
                if model is None:
                    raise RuntimeError(
                        f"embedder {settings.embedder!r} has no local model to run in the bench"
                    )
                opened.put(model)
                await asyncio.to_thread(done.wait)
        except BaseException as exc:  # handed to the caller's thread
            if opened.empty():
                opened.put(exc)
            raise

    def main() -> None:
        with contextlib.suppress(BaseException):
            asyncio.run(hold())

    thread = threading.Thread(target=main, name="bench-encoder", daemon=True)
    thread.start()
    try:
        got = opened.get(timeout=OPEN_TIMEOUT)
        if isinstance(got, BaseException):
            raise got
        yield cast(EncoderModel, got)
    finally:
        done.set()
        thread.join(timeout=120)
