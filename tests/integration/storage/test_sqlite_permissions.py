"""The data directory is created 0700 and the SQLite files 0600, whatever the umask.

Under umask 022, ``mkdir`` gave 0755 and ``sqlite3.connect`` 0644: every local user
could read every tenant's conversations and the key digests.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from memoryd import bootstrap
from memoryd.adapters.storage.sqlite import open_sqlite
from tests.helpers import make_settings
from tests.integration.storage.sqlite_helpers import DIM, MODEL


@pytest.fixture(autouse=True)
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


async def test_a_new_data_dir_and_its_files_are_the_owners_alone(tmp_path: Path) -> None:
    path = tmp_path / "parent" / "data" / "memoryd.sqlite3"
    backend = await open_sqlite(path, model_name=MODEL, dimension=DIM)
    try:
        await backend.keys.create_key(tenant="t", digest="d" * 64)  # a write: the WAL is used
        assert mode(path.parent) == 0o700
        assert mode(path) == 0o600
        # mode() raises if a file is missing: the WAL and its index exist while open.
        assert (mode(Path(f"{path}-wal")), mode(Path(f"{path}-shm"))) == (0o600, 0o600)
    finally:
        await backend.close()
    assert mode(tmp_path / "parent") == 0o755  # parents as `mkdir -p` makes them


async def test_the_servers_data_dir_is_the_owners_alone(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    async with bootstrap.key_store(settings):
        pass
    assert mode(settings.data_dir) == 0o700
    assert mode(settings.database_path) == 0o600
    assert [p.name for p in settings.data_dir.iterdir()] == ["memoryd.sqlite3"]


async def test_an_existing_dir_and_file_keep_their_modes_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o750)
    path = data / "memoryd.sqlite3"
    first = await open_sqlite(path, model_name=MODEL, dimension=DIM)
    await first.close()
    path.chmod(0o640)  # the deployer's choice (a backup group, say)
    with caplog.at_level(logging.WARNING):
        again = await open_sqlite(path, model_name=MODEL, dimension=DIM)
        await again.close()
    assert (mode(data), mode(path)) == (0o750, 0o640)
    assert any(
        "chmod 600" in r.getMessage() and str(path) in r.getMessage() for r in caplog.records
    )


async def test_a_private_file_opens_without_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "data" / "memoryd.sqlite3"
    for _ in range(2):
        with caplog.at_level(logging.WARNING):
            backend = await open_sqlite(path, model_name=MODEL, dimension=DIM)
            await backend.close()
    assert not [r for r in caplog.records if "chmod" in r.getMessage()]
