"""Built-in behaviour, shipped as plugins registered like any other.

Each module is one plugin, named after it (``plugins_disabled = ["llamacpp"]``
turns one off), or by its ``PLUGIN_NAME`` where that differs (``http_rerank`` is
the plugin ``http-rerank``). Importing them is light: the adapters, and the models behind
them, are imported inside the factories.
"""

from __future__ import annotations

from types import ModuleType


def modules() -> list[ModuleType]:
    """The built-in plugin modules, in registration order.

    Hooks are called in the reverse order (installed plugins, then these from
    the last): so ``llm = "auto"`` tries ``llamacpp`` before ``extractive``.
    """
    from memoryd.plugins.builtin import (
        csv,
        docx,
        e5,
        elasticsearch,
        exif,
        extractive,
        gguf,
        html,
        http_rerank,
        image_ocr,
        llamacpp,
        llm_rerank,
        minilm,
        mmr,
        mpnet,
        openai,
        pdf,
        recency,
        redact,
        sqlite,
        text,
    )

    return [
        # part handlers: asked from the last, so the specific ones before ``text``
        # (which reads any text/*), and ``image-ocr`` before ``exif``
        text,
        pdf,
        docx,
        html,
        csv,
        exif,
        image_ocr,
        sqlite,
        elasticsearch,
        minilm,
        e5,
        gguf,
        mpnet,
        openai,
        extractive,
        llamacpp,
        # rerankers and filters: each off until the settings name or enable it
        mmr,
        recency,
        http_rerank,
        llm_rerank,
        redact,
    ]
