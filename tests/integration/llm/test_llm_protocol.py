"""The OpenAI client against a small aiohttp server of ours, for what llama.cpp never sends.

Keep-alive comments, events split over several fields, CRLF line endings,
errors inside the stream, plain JSON answers and error statuses with bodies.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from memoryd.adapters.llm import OpenAIChatModel
from memoryd.core.errors import ModelUnavailable
from memoryd.core.ports import ChatTurn, Completed, Usage

from .conftest import free_port

MakeServer = Callable[[web.Application], Awaitable[TestServer]]
PROMPT = (ChatTurn("user", "Hello?"),)
KEY = "sk-protocol-test-secret-555"


def delta(text: str | None) -> str:
    return json.dumps({"choices": [{"index": 0, "delta": {"content": text}}]})


async def serve(
    aiohttp_server: MakeServer, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> str:
    app = web.Application()
    app.router.add_post("/v1/chat/completions", handler)
    server = await aiohttp_server(app)
    return str(server.make_url("/v1"))


def sse(*frames: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for frame in frames:
            await response.write(frame.encode())
        await response.write_eof()
        return response

    return handler


async def streamed(
    url: str, session: aiohttp.ClientSession, **options: Any
) -> tuple[list[str], Completed]:
    """The text pieces, and the Completed that must come last (and only once)."""
    model = OpenAIChatModel(base_url=url, model="m", session=session, **options)
    async with asyncio.timeout(10):
        *pieces, last = [piece async for piece in model.stream(PROMPT, max_tokens=16)]
    assert isinstance(last, Completed)
    texts = [p for p in pieces if isinstance(p, str)]
    assert texts == pieces
    return texts, last


async def answer(url: str, session: aiohttp.ClientSession, **options: Any) -> list[str]:
    return (await streamed(url, session, **options))[0]


async def test_comments_fields_and_crlf_are_understood(
    aiohttp_server: MakeServer, session: aiohttp.ClientSession
) -> None:
    url = await serve(
        aiohttp_server,
        sse(
            ": keep-alive\n\n",
            f"data: {json.dumps({'choices': [{'delta': {'role': 'assistant'}}]})}\n\n",
            f"event: message\nid: 1\ndata: {delta('Hel')}\n\n",
            ": ping\n\n",
            f"data: {delta('lo')}\r\n\r\n",
            f"data: {delta(None)}\n\n",
            'data: {"choices": [], "usage": {"total_tokens": 3}}\n\n',
            "data: [DONE]\n\n",
            f"data: {delta('after the end')}\n\n",
        ),
    )
    assert await answer(url, session) == ["Hel", "lo"]


async def test_the_request_is_an_openai_streaming_request(
    aiohttp_server: MakeServer, session: aiohttp.ClientSession
) -> None:
    seen: dict[str, Any] = {}

    async def handler(request: web.Request) -> web.StreamResponse:
        seen["body"] = await request.json()
        seen["auth"] = request.headers.get("Authorization")
        return await sse(f"data: {delta('ok')}\n\n")(request)

    url = await serve(aiohttp_server, handler)
    assert await answer(url, session, api_key=KEY, temperature=0.5) == ["ok"]
    assert seen["auth"] == f"Bearer {KEY}"
    assert seen["body"] == {
        "model": "m",
        "messages": [{"role": "user", "content": "Hello?"}],
        "max_tokens": 16,
        "stream": True,
        "stream_options": {"include_usage": True},
        "temperature": 0.5,
    }


def finish(reason: str | None) -> str:
    return json.dumps({"choices": [{"index": 0, "delta": {}, "finish_reason": reason}]})


@pytest.mark.parametrize(
    ("sent", "reason"),
    [
        ("stop", "stop"),
        ("length", "length"),
        ("content_filter", "content-filter"),
        ("tool_calls", "tool-calls"),
        ("something_new", "other"),
        (None, "unknown"),
    ],
)
async def test_the_finish_reason_and_usage_are_the_servers(
    aiohttp_server: MakeServer, session: aiohttp.ClientSession, sent: str | None, reason: str
) -> None:
    usage = {"prompt_tokens": 21, "completion_tokens": 2, "total_tokens": 23}
    url = await serve(
        aiohttp_server,
        sse(
            f"data: {delta('Hi')}\n\n",
            f"data: {finish(sent)}\n\n",
            f"data: {json.dumps({'choices': [], 'usage': usage})}\n\n",
            "data: [DONE]\n\n",
        ),
    )
    texts, completed = await streamed(url, session)
    assert texts == ["Hi"]
    assert completed == Completed(reason, Usage(prompt_tokens=21, completion_tokens=2))


async def test_without_usage_or_reason_the_completion_says_unknown(
    aiohttp_server: MakeServer, session: aiohttp.ClientSession
) -> None:
    url = await serve(aiohttp_server, sse(f"data: {delta('Hi')}\n\n", "data: [DONE]\n\n"))
    assert (await streamed(url, session))[1] == Completed("unknown", None)


async def test_an_error_event_mid_stream_is_model_unavailable(
    aiohttp_server: MakeServer, session: aiohttp.ClientSession
) -> None:
    error = {"error": {"message": f"context overflow for {KEY}", "type": "server_error"}}
    url = await serve(
        aiohttp_server, sse(f"data: {delta('Hi')}\n\n", f"data: {json.dumps(error)}\n\n")
    )
    with pytest.raises(ModelUnavailable, match="reported an error: context overflow") as caught:
        await answer(url, session, api_key=KEY)
    assert KEY not in caught.value.message


async def test_an_answer_that_is_not_a_completion_is_model_unavailable(
    aiohttp_server: MakeServer, session: aiohttp.ClientSession
) -> None:
    url = await serve(aiohttp_server, sse("data: <html>oops</html>\n\n"))
    with pytest.raises(ModelUnavailable, match=r"not an OpenAI chat completion.*llm_url"):
        await answer(url, session)


async def test_a_server_that_ignores_stream_still_answers(
    aiohttp_server: MakeServer, session: aiohttp.ClientSession
) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.json_response(
            {
                "choices": [{"message": {"content": "all at once"}, "finish_reason": "length"}],
                "usage": {"prompt_tokens": 5, "completion_tokens": 3},
            }
        )

    url = await serve(aiohttp_server, handler)
    texts, completed = await streamed(url, session)
    assert texts == ["all at once"]
    assert completed == Completed("length", Usage(prompt_tokens=5, completion_tokens=3))


@pytest.mark.parametrize(
    ("status", "hint"), [(500, "check llm_url and llm_model"), (404, "should end in /v1")]
)
async def test_an_error_status_shows_the_status_and_the_body(
    aiohttp_server: MakeServer, session: aiohttp.ClientSession, status: int, hint: str
) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        body = f"model   went\n away (key {KEY})" + "x" * 5000
        return web.Response(status=status, text=body)

    url = await serve(aiohttp_server, handler)
    with pytest.raises(ModelUnavailable) as caught:
        await answer(url, session, api_key=KEY)
    message = caught.value.message
    assert f"HTTP {status}: 'model went away (key ***)xxx" in message
    assert hint in message
    assert KEY not in message
    assert len(message) < 400  # a short excerpt, not the whole body
    assert caught.value.details == {"status": status}


async def test_a_forbidden_key_names_the_setting(
    aiohttp_server: MakeServer, session: aiohttp.ClientSession
) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(status=403, text=f"key {KEY} is not allowed")

    url = await serve(aiohttp_server, handler)
    with pytest.raises(ModelUnavailable, match=r"refused the API key.*llm_api_key") as caught:
        await answer(url, session, api_key=KEY)
    assert KEY not in caught.value.message


async def test_a_password_in_the_url_is_never_shown(session: aiohttp.ClientSession) -> None:
    url = f"http://me:hunter2-pass@127.0.0.1:{free_port()}/v1"
    with pytest.raises(ModelUnavailable, match="Cannot reach") as caught:
        await answer(url, session, connect_retries=0)
    assert "hunter2-pass" not in caught.value.message
    assert "after 1 attempt (" in caught.value.message
