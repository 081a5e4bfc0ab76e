"""docs/plugins.md documents every hook, and its example runs."""

from __future__ import annotations

import inspect
import re
import types
from pathlib import Path

from memoryd.core.model import ContentPart, Message
from memoryd.plugins import builtin, hookspecs
from memoryd.plugins.host import PluginHost

DOC = (Path(__file__).resolve().parents[2] / "docs" / "plugins.md").read_text(encoding="utf-8")


def hook_names() -> list[str]:
    names = [
        name
        for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
        if name.startswith("memoryd_")
    ]
    assert names  # the walk found the specs
    return names


def test_every_hook_is_documented_with_a_heading() -> None:
    headings = set(re.findall(r"^### (\w+)$", DOC, re.M))
    assert set(hook_names()) == headings


def test_every_hook_spec_has_a_docstring_and_is_prefixed() -> None:
    for name in hook_names():
        spec = getattr(hookspecs, name)
        assert (spec.__doc__ or "").strip(), name
        assert hasattr(spec, "memoryd_spec"), name  # marked as a hookspec, not a plain function


def example_plugin() -> types.ModuleType:
    (code,) = re.findall(r"```python\n(.*?)```", DOC, re.S)
    module = types.ModuleType("doc_example_plugin")
    exec(compile(code, "docs/plugins.md", "exec"), module.__dict__)
    return module


async def test_the_documented_example_works_through_the_host() -> None:
    host = PluginHost.load(builtins=builtin.modules(), entry_points=False)
    host.register(example_plugin(), name="alt-text")
    handlers = host.part_handlers()
    part = ContentPart.image("https://example.com/cat.png#a-cat-on-a-sofa")
    handler = next(h for h in handlers if h.accepts(part))
    assert await handler.to_text(part) == "[image: a cat on a sofa]"
    assert type(handlers[0]).__name__ == "AltTextImages"  # installed plugins come first
    assert Message(role="user", content=(part,)).text == ""  # images add no text by themselves


def test_disabling_a_builtin_by_name() -> None:
    host = PluginHost.load(builtins=builtin.modules(), disabled=["parts"], entry_points=False)
    assert host.part_handlers() == []
    assert "parts" not in host.names
