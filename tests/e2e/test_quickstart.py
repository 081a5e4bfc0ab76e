"""The README's quick start, run as a user would, from a copy of this checkout.

The test takes the install-and-serve command from README.md, runs it in a
copy of the repository (so that it makes its own .venv), creates a key with
the CLI it installed, ingests a conversation over HTTP and finds it with search.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.e2e._server import free_port, memoryd_env, running
from tests.e2e.test_durability import call

ROOT = Path(__file__).resolve().parents[2]


def readme_commands() -> tuple[str, str]:
    """The two commands of the README's quick start: install-and-serve, and the tests."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    quick = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)\n```", quick, re.S)
    assert len(blocks) == 2, blocks
    return blocks[0].strip(), blocks[1].strip()


def test_ci_runs_the_readme_test_command() -> None:
    _, tests = readme_commands()
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert tests in [line.strip() for line in ci.splitlines()]


def copy_checkout(target: Path) -> Path:
    """The files git tracks (and untracked, unignored ones), as a fresh clone would have them."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


@pytest.mark.slow
def test_readme_quick_start(tmp_path: Path) -> None:
    install_and_serve, _ = readme_commands()
    assert install_and_serve.endswith("memoryd serve"), install_and_serve
    checkout = copy_checkout(tmp_path / "memoryd")
    env = memoryd_env(tmp_path / "data", MEMORYD_PORT=str(free_port()))
    env.pop("VIRTUAL_ENV", None)
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    with running(install_and_serve, env, cwd=checkout, timeout=900) as server:
        first = server.first_key
        assert first, server.output
        made = subprocess.run(
            [str(checkout / ".venv/bin/memoryd"), "keys", "create", "--tenant", "quickstart"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        key = made.stdout.strip().splitlines()[-1]
        assert key.startswith("md_")
        assert key != first

        body = {
            "conversationId": "lisbon",
            "messages": [
                {"role": "user", "name": "Alice", "content": "We are going to Lisbon in May!"},
                {"role": "assistant", "content": "Lovely. Do you need restaurant ideas?"},
            ],
        }
        status, answer = call(server.url, key, "POST", "/v4/conversations", body)
        assert (status, answer["action"]) == (200, "created"), answer
        status, found = call(
            server.url, key, "POST", "/v4/search", {"q": "Where is Alice travelling?"}
        )
        assert status == 200
        assert found["results"][0]["conversationId"] == "lisbon"
        assert "Lisbon" in found["results"][0]["memory"]
        # The first key belongs to another tenant: it sees nothing of this one.
        status, other = call(server.url, first, "POST", "/v4/search", {"q": "Lisbon"})
        assert (status, other["results"]) == (200, [])
