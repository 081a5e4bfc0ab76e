"""The live /openapi.json says exactly what the server accepts, checked by schemathesis.

The real app serves on 127.0.0.1 (in a thread of its own: schemathesis sends its
requests synchronously). Its schema is read from the live ``/openapi.json``, and
every operation gets a bounded, derandomized set of generated requests (positive
and negative data, from ``APIOperation.as_strategy`` under hypothesis; the
``schemathesis.pytest`` loader does not run under pytest 9), sent with a real key.
Each answer must be no 5xx, a documented status with a documented content type
and a body that fits the documented schema (not for the chat's streams, which
schemathesis cannot parse; their status and content type are checked). Schema-valid
requests must pass validation (no 400 but the spec's "Invalid prompt", which is
about meaning, not shape), and schema-invalid ones must be refused.

More examples find more (600 per operation ran clean when this was written):
raise ``MAX_EXAMPLES`` locally after changing a wire rule.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis")

from aiohttp import web  # noqa: E402
from attrs import frozen  # noqa: E402
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from memoryd import bootstrap  # noqa: E402
from memoryd.adapters.http import (  # noqa: E402
    openapi,
    routes_chat,
    routes_documents,
    routes_memories,
)
from memoryd.core.auth import digest, new_key  # noqa: E402
from memoryd.core.errors import InvalidPrompt  # noqa: E402
from tests.helpers import make_settings, serve_on_loopback  # noqa: E402

#: Generated requests per operation and mode (about 25 s for all on two slow cores).
MAX_EXAMPLES = 50
SEED = 20240508
#: The chat answers' content types: schemathesis cannot parse these streams.
STREAMS = ("text/x-unknown", "text/event-stream")


@frozen
class Live:
    url: str
    key: str


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """The real app on 127.0.0.1, served by an event loop in its own thread."""
    data = Path(tmp_path_factory.mktemp("schemathesis")) / "data"
    app_settings = make_settings(data, development=True)  # a 500 says why
    loop = asyncio.new_event_loop()
    ready: list[Live] = []
    started = threading.Event()
    stop = asyncio.Event()
    failures: list[BaseException] = []

    async def serve() -> None:
        key = new_key()
        async with bootstrap.key_store(app_settings) as keys:
            await keys.create_key(tenant="fuzz", digest=digest(key))
        runner = web.AppRunner(await bootstrap.create_app(app_settings))
        try:
            ready.append(Live(await serve_on_loopback(runner), key))
            started.set()
            await stop.wait()
        finally:
            await runner.cleanup()

    def run() -> None:
        try:
            loop.run_until_complete(serve())
        except BaseException as exc:  # reported by the fixture below
            failures.append(exc)
        finally:
            started.set()
            loop.close()

    thread = threading.Thread(target=run, name="memoryd-schemathesis", daemon=True)
    thread.start()
    assert started.wait(timeout=120), "the server did not start within 120 s"
    if failures:
        raise failures[0]
    try:
        yield ready[0]
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=60)
        assert not thread.is_alive(), "the server did not stop within 60 s"


@pytest.fixture(scope="module")
def api_schema(live: Live) -> Any:
    config = schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "generation": {
                "mode": "all",
                "max-examples": MAX_EXAMPLES,
                "database": "none",
                "with-security-parameters": False,
            },
            "phases": {"stateful": {"enabled": False}},
            # Breaking a maxLength can make a body larger than max_body_bytes: a 413 refuses it.
            "checks": {
                "negative_data_rejection": {
                    "expected-statuses": [400, 401, 403, 404, 405, 413, 415, 422]
                }
            },
        }
    )
    return schemathesis.openapi.from_url(f"{live.url}/openapi.json", config=config)


def cases() -> list[tuple[str, str, str]]:
    """(mode, method, path) for every documented operation, from the tables /openapi.json
    is built from; negative data only where there is an input to break."""
    found = []
    for path, ops in {
        **openapi.PATHS,
        **routes_chat.PATHS,
        **routes_documents.PATHS,
        **routes_memories.PATHS,
    }.items():
        for method, op in ops.items():
            found.append(("positive", method.upper(), path))
            if "requestBody" in op or op.get("parameters"):
                found.append(("negative", method.upper(), path))
    return found


CASES = cases()


@pytest.mark.slow
@pytest.mark.parametrize(("mode", "method", "path"), CASES, ids=[" ".join(c) for c in CASES])
def test_the_server_does_what_its_schema_says(
    api_schema: Any, live: Live, mode: str, method: str, path: str
) -> None:
    operation = api_schema[path][method]
    strategy = operation.as_strategy(generation_mode=schemathesis.GenerationMode(mode))
    headers = {"Authorization": f"Bearer {live.key}"}

    @given(case=strategy)
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
    )
    def check(case: Any) -> None:
        response = case.call(base_url=live.url, headers=headers, timeout=60)
        content_type = next(
            (v[0] for k, v in response.headers.items() if k.lower() == "content-type"), ""
        )
        content_type = content_type.split(";")[0].strip().lower()
        checks = [
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            negative_data_rejection,
        ]
        if content_type not in STREAMS:
            checks.append(response_schema_conformance)
        case.validate_response(response, checks=checks)
        if mode == "positive" and response.status_code == 400:
            answer = json.loads(response.content)
            # A body the schema calls valid passes validation; the spec's "Invalid prompt"
            # (no user message with text) is about meaning, which no schema can say.
            assert answer["error"] == InvalidPrompt.default_message, (
                f"{method} {path}: a schema-valid request was refused: {answer}\n"
                f"{case.as_curl_command(headers=headers)}"
            )

    check()
