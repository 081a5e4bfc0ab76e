"""docs/plugins.md documents every hook (its signature as the spec has it), and its examples run.

Each hook's section gives the spec's signature (and the ``register`` callable's,
for registration hooks), says when it is called and what its context holds,
and shows an example: a block copied from a test (checked to be there, word
for word) or one this test runs.
"""

from __future__ import annotations

import inspect
import re
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from memoryd.core.model import ContentPart, Message
from memoryd.plugins import builtin, hookspecs, registry
from memoryd.plugins.host import PluginHost

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
RUN_HERE = "# run by tests/docs/test_plugins_doc.py"


def hook_names() -> list[str]:
    names = [
        name
        for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
        if name.startswith("memoryd_")
    ]
    assert names  # the walk found the specs
    return names


def section(hook: str) -> str:
    """The text under ``### hook``, up to the next heading."""
    (found,) = re.findall(rf"^### {hook}\n(.*?)(?=^##|\Z)", DOC, re.M | re.S)
    return str(found)


def blocks(text: str, language: str) -> list[str]:
    return [str(b) for b in re.findall(rf"^```{language}\n(.*?)^```", text, re.M | re.S)]


def signature(name: str, function: Callable[..., Any]) -> str:
    """``name(a: T, *, b: U = None) -> R`` as the source annotates it (annotations are strings)."""
    parts: list[str] = []
    for p in inspect.signature(function).parameters.values():
        if p.name == "self":
            continue
        if p.kind is p.KEYWORD_ONLY and "*" not in parts:
            parts.append("*")
        default = "" if p.default is p.empty else f" = {p.default!r}"
        parts.append(f"{p.name}: {p.annotation}{default}")
    return f"{name}({', '.join(parts)}) -> {inspect.signature(function).return_annotation}"


def test_every_hook_is_documented_with_a_heading() -> None:
    headings = set(re.findall(r"^### (\w+)$", DOC, re.M))
    assert set(hook_names()) == headings


def test_every_hook_spec_has_a_docstring_and_is_prefixed() -> None:
    for name in hook_names():
        spec = getattr(hookspecs, name)
        assert (spec.__doc__ or "").strip(), name
        assert hasattr(spec, "memoryd_spec"), name  # marked as a hookspec, not a plain function


@pytest.mark.parametrize("hook", hook_names())
def test_the_documented_signatures_are_the_specs(hook: str) -> None:
    spec = getattr(hookspecs, hook)
    documented = blocks(section(hook), "text")[0].splitlines()
    assert documented[0] == signature(hook, spec)
    register = inspect.signature(spec).parameters.get("register")
    if register is not None:
        protocol = getattr(registry, str(register.annotation))
        assert documented[1] == signature("register", protocol.__call__)
    else:
        assert len(documented) == 1


@pytest.mark.parametrize("hook", hook_names())
def test_every_hook_says_when_it_is_called_and_what_its_context_holds(hook: str) -> None:
    text = section(hook)
    assert "**Called:**" in text
    assert "**Context:**" in text


@pytest.mark.parametrize("hook", hook_names())
def test_every_hook_has_an_example_taken_from_a_test(hook: str) -> None:
    examples = blocks(section(hook), "python")
    assert examples, hook
    for example in examples:
        first, _, body = example.partition("\n")
        if first == RUN_HERE:
            continue
        source = first.removeprefix("# from ")
        assert source != first, f"{hook}: an example starts with '# from PATH' or {RUN_HERE!r}"
        assert source.startswith("tests/"), source
        assert body in (ROOT / source).read_text(encoding="utf-8"), f"{hook}: not in {source}"
        assert f"def {hook}(" in body, f"{hook}: its example does not implement it"


def example_plugin() -> types.ModuleType:
    (code,) = [b for b in blocks(DOC, "python") if b.startswith(RUN_HERE)]
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
    assert handler.plugin == "alt-text"  # type: ignore[attr-defined]  # installed ones first
    assert Message(role="user", content=(part,)).text == ""  # images add no text by themselves


def test_disabling_a_builtin_by_name() -> None:
    handlers = ["text", "pdf", "docx", "html", "csv", "image-ocr", "exif"]
    host = PluginHost.load(builtins=builtin.modules(), disabled=handlers, entry_points=False)
    assert host.part_handlers() == []
    assert "text" not in host.names


def test_the_builtin_table_lists_every_builtin_plugin() -> None:
    (table,) = re.findall(r"^\| built-in plugin \| registers \|\n(.*?)\n\n", DOC, re.M | re.S)
    documented = set(re.findall(r"^\| `([\w-]+)` \|", table, re.M))
    loaded = PluginHost.load(builtins=builtin.modules(), entry_points=False).names
    assert documented == set(loaded)
