"""Switching a SQLite file to another embedding model: the marks, the lock, the refusals."""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest

from memoryd import bootstrap
from memoryd.adapters.storage.sqlite import open_for_model_switch, open_sqlite
from memoryd.core.errors import ConfigurationError
from memoryd.settings import load_settings
from memoryd.testing import FakeEmbedder


async def test_a_switch_needs_the_file_alone_and_is_refused_until_finished(tmp_path: Path) -> None:
    path = tmp_path / "memoryd.sqlite3"
    server = await open_sqlite(path, model_name="old", dimension=8)
    with pytest.raises(ConfigurationError, match="open in another memoryd process"):
        await open_for_model_switch(path, embedder="new", model_name="new", dimension=4)
    await server.close()

    switch = await open_for_model_switch(path, embedder="new", model_name="new", dimension=4)
    assert (switch.previous_model, switch.conversations) == ("old", 0)
    with pytest.raises(ConfigurationError, match="being re-embedded by memoryd reindex"):
        await open_sqlite(path, model_name="new", dimension=4)
    await switch.backend.close()
    # Closed before it finished (a crash midway): refused with either model, both named.
    for model, dimension in (("old", 8), ("new", 4)):
        with pytest.raises(ConfigurationError, match="from 'old' to 'new'") as refused:
            await open_sqlite(path, model_name=model, dimension=dimension)
        assert "memoryd reindex --embedder new again" in refused.value.message
    # The key store (no vectors) may still open it.
    keys = await open_sqlite(path, model_name=None, dimension=None, load_index=False)
    await keys.close()

    switch = await open_for_model_switch(path, embedder="new", model_name="new", dimension=4)
    await switch.backend.finish_model_switch()
    await switch.backend.close()
    with pytest.raises(ConfigurationError, match="'new' \\(4 dimensions\\)"):
        await open_sqlite(path, model_name="old", dimension=8)
    done = await open_sqlite(path, model_name="new", dimension=4)
    await done.close()


async def test_a_switch_on_elasticsearch_is_refused(tmp_path: Path) -> None:
    settings = attrs.evolve(load_settings(flags={"data_dir": tmp_path}), storage="elasticsearch")
    with pytest.raises(ConfigurationError, match="not supported on elasticsearch yet"):
        async with bootstrap.model_switch(settings, FakeEmbedder()):
            pass


async def test_a_switch_of_a_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="nothing to re-embed"):
        await open_for_model_switch(
            tmp_path / "none.sqlite3", embedder="e5", model_name="e5", dimension=4
        )
