"""``memoryd plugins [--json]`` and the plugin sections of ``memoryd config``, as users run them."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from memoryd import __version__
from tests.e2e._server import memoryd_command, memoryd_env

BUILTINS = {
    "text",
    "pdf",
    "docx",
    "html",
    "csv",
    "image-ocr",
    "exif",
    "sqlite",
    "elasticsearch",
    "minilm",
    "e5",
    "gguf",
    "mpnet",
    "openai",
    "extractive",
    "llamacpp",
    "mmr",
    "recency",
    "http-rerank",
    "llm-rerank",
    "redact",
}


def run(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        memoryd_command(*args), env=env, capture_output=True, text=True, check=check, timeout=120
    )


def test_plugins_json_lists_name_version_and_hooks(tmp_path: Path) -> None:
    listed = json.loads(run(memoryd_env(tmp_path), "plugins", "--json").stdout)
    by_name = {p["name"]: p for p in listed}
    # tox also installs the example plugin package examples/memoryd-vcard
    assert set(by_name) - {"vcard"} == BUILTINS | {"testplugin"}
    test = by_name["testplugin"]
    assert test["version"] == "1.2.3"
    assert test["source"] == "memoryd-testplugin 1.2.3"
    assert test["hooks"] == [
        "memoryd_lifespan",
        "memoryd_plugin_settings",
        "memoryd_register_chat_models",
        "memoryd_register_embedders",
        "memoryd_register_part_handlers",
        "memoryd_register_rerankers",
        "memoryd_register_storage",
    ]
    assert test["registers"] == {
        "storage": ["memory"],
        "embedders": ["hashing"],
        "chat_models": ["canned"],
    }
    assert by_name["sqlite"] == {
        "name": "sqlite",
        "version": __version__,
        "source": "built in",
        "hooks": ["memoryd_register_storage"],
        "registers": {"storage": ["sqlite"]},
    }


def test_plugins_text_and_disabling_by_name(tmp_path: Path) -> None:
    env = memoryd_env(tmp_path, MEMORYD_PLUGINS_DISABLED="testplugin,llamacpp")
    shown = run(env, "plugins").stdout
    assert shown.startswith(f"csv {__version__} (built in)\n")  # sorted by name
    assert f"\ne5 {__version__} (built in), embedders: e5\n" in shown
    assert "    memoryd_register_storage\n" in shown
    assert "testplugin" not in shown
    assert "llamacpp" not in shown


def test_a_misspelt_setting_name_lists_what_is_installed(tmp_path: Path) -> None:
    failed = run(memoryd_env(tmp_path, MEMORYD_STORAGE="sqlit"), "plugins", check=False)
    assert failed.returncode == 2
    assert "storage = 'sqlit': no storage backend of that name is installed" in failed.stderr
    assert "memory (testplugin), sqlite (sqlite)" in failed.stderr


def test_config_shows_plugin_sections_with_secrets_hidden(tmp_path: Path) -> None:
    config = tmp_path / "memoryd.toml"
    config.write_text('[plugins.testplugin]\ngreeting = "Hi."\n', encoding="utf-8")
    env = memoryd_env(
        tmp_path, MEMORYD_CONFIG=str(config), MEMORYD_PLUGIN_TESTPLUGIN__TOKEN="tp-very-secret"
    )
    shown = run(env, "config").stdout
    assert "tp-very-secret" not in shown
    assert json.loads(shown)["plugin_settings"]["testplugin"] == {
        "greeting": "Hi.",
        "captions": False,
        "reverse": False,
        "fault": "",
        "token": "***",
    }

    bad = memoryd_env(tmp_path, MEMORYD_PLUGIN_TESTPLUGIN__CAPTIONS="sometimes")
    failed = run(bad, "config", check=False)
    assert failed.returncode == 2
    assert "Invalid settings of plugin 'testplugin'" in failed.stderr
    assert "@ plugins.testplugin.captions" in failed.stderr
