"""The built-in embedder ``minilm``: all-MiniLM-L6-v2 int8 ONNX, local (extra ``[local]``)."""

from __future__ import annotations

from memoryd.plugins.builtin._local import local_factory
from memoryd.plugins.hookspecs import hookimpl
from memoryd.plugins.registry import RegisterEmbedder


@hookimpl
def memoryd_register_embedders(register: RegisterEmbedder) -> None:
    register("minilm", local_factory("minilm"))
