"""The core imports only the standard library and attrs."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import memoryd.core

ALLOWED = {"attr", "attrs", "memoryd"}
CORE_DIR = Path(memoryd.core.__file__).parent


def core_modules() -> list[str]:
    names = [f"memoryd.core.{m.name}" for m in pkgutil.iter_modules([str(CORE_DIR)])]
    assert "memoryd.core.ingest" in names  # the walk found the real modules
    return names


def test_core_imports_only_stdlib_and_attrs() -> None:
    # A fresh interpreter, so that what the test runner loaded does not count.
    code = (
        f"import sys\nfor m in {core_modules()!r}: __import__(m)\n"
        "print('\\n'.join(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    stdlib = set(sys.stdlib_module_names) | set(sys.builtin_module_names)
    third_party = {m for m in out if m not in stdlib and not m.startswith("_")}
    assert third_party <= ALLOWED, third_party


def test_core_source_names_no_adapter_or_framework() -> None:
    banned = (
        "aiohttp",
        "pluggy",
        "tiktoken",
        "numpy",
        "elasticsearch",
        "cattrs",
        "dependency_injector",
        "memoryd.adapters",
        "memoryd.plugins",
        "sqlite3",
    )
    for path in CORE_DIR.glob("*.py"):
        text = path.read_text(encoding="utf-8")
        for name in banned:
            assert f"import {name}" not in text, (path.name, name)
            assert f"from {name}" not in text, (path.name, name)
