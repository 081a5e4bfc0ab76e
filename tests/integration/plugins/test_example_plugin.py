"""The plugin packages under examples/: installed with pip, loaded by entry point, driven over HTTP.

``examples/memoryd-vcard`` is a real plugin package. When tox has installed it
(tox.ini commands_pre) it is used from the environment; otherwise this test
installs it with pip into a directory of its own (``--target``), so that the
shared environment is left as it was, and runs ``memoryd`` with that directory
on ``PYTHONPATH``: memoryd finds it through its entry point either way. The
template's and the example's own tests (with ``memoryd.testing``) pass too.
"""

from __future__ import annotations

import base64
import importlib.metadata
import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from memoryd import __version__
from tests.e2e._server import free_port, memoryd_command, memoryd_env, running

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "examples" / "memoryd-vcard"
TEMPLATE = ROOT / "examples" / "plugin-template"

CARD = (
    "BEGIN:VCARD\r\nVERSION:4.0\r\nFN:Grace Hopper\r\nORG:Harvard Computation Lab\r\n"
    "EMAIL:grace@example.org\r\nNOTE:Found a moth in the Mark II relay.\r\nEND:VCARD\r\n"
)


SETTINGS = "memoryd_plugin_settings"
HANDLERS = "memoryd_register_part_handlers"
RERANKERS = "memoryd_register_rerankers"
#: The built-in content plugins and the hooks ``memoryd plugins`` lists for each.
CONTENT_BUILTINS = {
    "text": [HANDLERS],
    "pdf": [SETTINGS, HANDLERS],
    "docx": [SETTINGS, HANDLERS],
    "html": [HANDLERS],
    "csv": [SETTINGS, HANDLERS],
    "image-ocr": [SETTINGS, HANDLERS],
    "exif": [SETTINGS, HANDLERS],
    "mmr": [SETTINGS, RERANKERS],
    "recency": [SETTINGS, RERANKERS],
    "http-rerank": [SETTINGS, RERANKERS],
    "llm-rerank": [SETTINGS, RERANKERS],
    "redact": [SETTINGS, "memoryd_register_filters"],
}


def installed() -> bool:
    try:
        importlib.metadata.distribution("memoryd-vcard")
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path | None:
    """Where the example is installed: None if in this environment already, else a --target dir."""
    if installed():
        return None
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [
            *(sys.executable, "-m", "pip", "install", "--quiet", "--no-deps"),
            *("--target", str(target), str(EXAMPLE)),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    assert (target / "memoryd_vcard" / "__init__.py").exists()
    return target


def env_with(site: Path | None, data: Path, **extra: str) -> dict[str, str]:
    env = memoryd_env(data, **extra)
    if site is not None:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(site), env.get("PYTHONPATH")) if p)
    return env


def call(url: str, key: str, path: str, body: dict[str, Any]) -> Any:
    request = urllib.request.Request(
        url + path,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    assert request.host.startswith("127.0.0.1:")
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def test_memoryd_plugins_lists_the_installed_example(site: Path | None, tmp_path: Path) -> None:
    listed = subprocess.run(
        memoryd_command("plugins", "--json"),
        env=env_with(site, tmp_path / "data"),
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    by_name = {p["name"]: p for p in json.loads(listed.stdout)}
    for name, hooks in CONTENT_BUILTINS.items():  # the acceptance list
        assert by_name[name]["version"] == __version__, name
        assert by_name[name]["source"] == "built in", name
        assert by_name[name]["hooks"] == hooks, name
    vcard = by_name["vcard"]
    assert vcard["version"] == "0.1.0"
    assert vcard["source"] == "memoryd-vcard 0.1.0"
    assert vcard["hooks"] == ["memoryd_plugin_settings", "memoryd_register_part_handlers"]


def test_the_installed_example_reads_a_card_over_http(site: Path | None, tmp_path: Path) -> None:
    env = env_with(site, tmp_path / "data", MEMORYD_PORT=str(free_port()))
    with running(memoryd_command("serve"), env) as server:
        key = server.first_key
        assert key, server.output
        card = {
            "type": "file",
            "file": {
                "filename": "grace.vcf",
                "file_data": base64.b64encode(CARD.encode()).decode(),
            },
        }
        answer = call(
            server.url,
            key,
            "/v4/conversations",
            {
                "conversationId": "contacts",
                "messages": [
                    {"role": "user", "content": [{"type": "text", "text": "Her card."}, card]}
                ],
            },
        )
        (outcome,) = answer["parts"]
        assert (outcome["status"], outcome["plugin"]) == ("read", "vcard")
        found = call(server.url, key, "/v4/search", {"q": "moth in the relay", "limit": 1})
        (hit,) = found["results"]
        assert "name: Grace Hopper" in hit["memory"]
        assert "[part 1, file grace.vcf]" in hit["memory"]


@pytest.mark.parametrize(
    ("package", "source"),
    [(EXAMPLE, EXAMPLE), (TEMPLATE, TEMPLATE / "src")],
    ids=["memoryd-vcard", "plugin-template"],
)
def test_the_examples_own_tests_pass(package: Path, source: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMORYD_")}
    env["PYTHONPATH"] = str(source)
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=package,
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert " passed" in run.stdout
