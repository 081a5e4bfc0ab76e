"""docs/configuration.md lists every setting, and its TOML example loads."""

from __future__ import annotations

import re
from pathlib import Path

import attrs

from memoryd.settings import Settings, load_settings

DOC = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text(
    encoding="utf-8"
)


def test_every_setting_has_a_row() -> None:
    documented = set(re.findall(r"^\| `(\w+)` \|", DOC, re.M))
    names = {a.name for a in attrs.fields(Settings)}
    assert documented == names, (names - documented, documented - names)


def test_the_toml_example_is_valid(tmp_path: Path) -> None:
    (example,) = re.findall(r"```toml\n(.*?)```", DOC, re.S)
    path = tmp_path / "memoryd.toml"
    path.write_text(example, encoding="utf-8")
    settings = load_settings(config_file=path, env={})
    assert settings.llm_url == "http://127.0.0.1:11434/v1"
    assert settings.data_dir == Path("/var/lib/memoryd")


def test_environment_overrides_file_and_flags_override_environment(tmp_path: Path) -> None:
    path = tmp_path / "memoryd.toml"
    path.write_text("port = 1\n[llm]\nthreads = 3\n", encoding="utf-8")
    settings = load_settings(config_file=path, env={"MEMORYD_PORT": "2"}, flags={"port": 3})
    assert (settings.port, settings.llm_threads) == (3, 3)
    assert load_settings(config_file=path, env={"MEMORYD_PORT": "2"}).port == 2
