"""What a GGUF file says of its model: its header's key-value metadata, read in Python.

Only the header is read (the tensors are never touched), so checking a file
costs a few milliseconds. The format: ``GGUF``, a version (2 or 3), the
tensor and key counts, then each key as a length-prefixed string, a type and a
value (little-endian). Arrays (the vocabulary) are skipped.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from pathlib import Path
from typing import BinaryIO

from attrs import frozen

MAGIC = b"GGUF"
#: llama.cpp's pooling types, as ``{arch}.pooling_type`` stores them.
POOLING_NAMES: Mapping[int, str] = {0: "none", 1: "mean", 2: "cls", 3: "last", 4: "rank"}

# GGUF value types: their struct format, or None for a string (8) and an array (9).
_SCALARS: Mapping[int, str] = {
    0: "<B",
    1: "<b",
    2: "<H",
    3: "<h",
    4: "<I",
    5: "<i",
    6: "<f",
    7: "<?",
    10: "<Q",
    11: "<q",
    12: "<d",
}
_STRING, _ARRAY = 8, 9
#: More keys or array items than this is not a model header but a damaged file.
_MAX_COUNT = 1 << 24
_MAX_STRING = 1 << 24

Scalar = int | float | bool | str


class NotGGUF(ValueError):
    """The file is not a GGUF file, or its header is damaged (the message says how)."""


@frozen
class GGUFInfo:
    """The metadata of a GGUF model that an embedder needs."""

    architecture: str
    #: ``general.name`` and ``general.basename`` (either may be empty).
    name: str
    basename: str
    #: ``{arch}.embedding_length``: llama.cpp's n_embd (None if absent).
    embedding_length: int | None
    #: ``{arch}.pooling_type`` (:data:`POOLING_NAMES`); None: the file sets none (a model
    #: made for generation, not embedding).
    pooling_type: int | None
    #: ``{arch}.context_length``: the context it was trained for (None if absent).
    context_length: int | None

    @property
    def pooling_name(self) -> str | None:
        if self.pooling_type is None:
            return None
        return POOLING_NAMES.get(self.pooling_type, str(self.pooling_type))


def _read(fh: BinaryIO, size: int) -> bytes:
    data = fh.read(size)
    if len(data) != size:
        raise NotGGUF("its header ends early (a truncated file?)")
    return data


def _unpack(fh: BinaryIO, fmt: str) -> int | float | bool:
    value: int | float | bool = struct.unpack(fmt, _read(fh, struct.calcsize(fmt)))[0]
    return value


def _count(fh: BinaryIO) -> int:
    value = int(_unpack(fh, "<Q"))
    if value > _MAX_COUNT:
        raise NotGGUF(f"its header holds an implausible count ({value})")
    return value


def _string(fh: BinaryIO) -> str:
    length = int(_unpack(fh, "<Q"))
    if length > _MAX_STRING:
        raise NotGGUF(f"its header holds an implausible string length ({length})")
    return _read(fh, length).decode("utf-8", errors="replace")


def _skip_array(fh: BinaryIO) -> None:
    kind = int(_unpack(fh, "<I"))
    count = _count(fh)
    if kind in _SCALARS:
        fh.seek(count * struct.calcsize(_SCALARS[kind]), 1)
    elif kind == _STRING:
        for _ in range(count):
            length = int(_unpack(fh, "<Q"))
            if length > _MAX_STRING:
                raise NotGGUF(f"its header holds an implausible string length ({length})")
            fh.seek(length, 1)
    elif kind == _ARRAY:
        for _ in range(count):
            _skip_array(fh)
    else:
        raise NotGGUF(f"its header holds an unknown value type ({kind})")


def read_metadata(path: Path) -> dict[str, Scalar]:
    """The header's scalar and string values by key (arrays left out). Raises ``NotGGUF``."""
    with path.open("rb") as fh:
        if fh.read(4) != MAGIC:
            raise NotGGUF("it does not start with the GGUF magic bytes")
        version = int(_unpack(fh, "<I"))
        if version not in (2, 3):
            raise NotGGUF(f"it is GGUF version {version}; llama.cpp reads versions 2 and 3")
        _count(fh)  # tensors
        keys = _count(fh)
        found: dict[str, Scalar] = {}
        for _ in range(keys):
            key = _string(fh)
            kind = int(_unpack(fh, "<I"))
            if kind in _SCALARS:
                found[key] = _unpack(fh, _SCALARS[kind])
            elif kind == _STRING:
                found[key] = _string(fh)
            elif kind == _ARRAY:
                _skip_array(fh)
            else:
                raise NotGGUF(f"its header holds an unknown value type ({kind}) at {key!r}")
        return found


def _int(value: Scalar | None) -> int | None:
    return int(value) if isinstance(value, int | float) else None


def read_info(path: Path) -> GGUFInfo:
    """What :class:`GGUFInfo` holds, from the file's header. Raises ``NotGGUF``, ``OSError``."""
    meta = read_metadata(path)
    arch = meta.get("general.architecture")
    if not isinstance(arch, str) or not arch:
        raise NotGGUF("its header names no general.architecture")
    return GGUFInfo(
        architecture=arch,
        name=str(meta.get("general.name", "")),
        basename=str(meta.get("general.basename", "")),
        embedding_length=_int(meta.get(f"{arch}.embedding_length")),
        pooling_type=_int(meta.get(f"{arch}.pooling_type")),
        context_length=_int(meta.get(f"{arch}.context_length")),
    )
