"""Both wire formats, byte for byte, headers included (extractive answers: deterministic)."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from memoryd.adapters.http._streams import UiMessageEncoder, data_stream_lines
from memoryd.adapters.tokens import tiktoken_counter
from memoryd.core.chat import Annotations, Finish, TextDelta
from memoryd.core.model import Citation
from memoryd.core.ports import Usage
from memoryd.settings import Settings
from tests.helpers import auth
from tests.integration.chat.chat_helpers import Client, ask, data_lines, remember

FACT = "We are going to Lisbon in May, café included!"
QUESTION = "Where are we going in May?"
ANSWER = ["Here is what I remember:", f'\n- On 2 March 2024, Alice said: "{FACT}"']


def js(value: Any) -> str:
    """JSON as JSON.stringify writes it."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


async def expected_annotation(client: Client, key: str) -> dict[str, Any]:
    """The one annotation the answer must carry, built from /v4/search's view of the memory."""
    response = await client.post("/v4/search", json={"q": QUESTION}, headers=auth(key))
    [found] = [r for r in (await response.json())["results"] if r["similarity"] > 0.4]
    return {
        "similarity": found["similarity"],
        "id": found["id"],
        "content": f"[2 March 2024] Alice: {FACT}",
        "type": "conversation",
        "url": "",
        "title": "trip",
        "description": "",
        "ogImage": "",
        "createdAt": found["createdAt"],
        "updatedAt": found["updatedAt"],
    }


def completion_tokens(settings: Settings) -> int:
    counter = tiktoken_counter(settings.token_encoding)
    counter.load()
    return counter.count("".join(ANSWER))


async def test_the_data_stream_protocol_byte_for_byte(
    client: Client, key: str, settings: Settings
) -> None:
    await remember(client, key, "trip", FACT)
    annotation = await expected_annotation(client, key)
    response, body = await ask(client, key, QUESTION)
    assert response.status == 200
    thread_id = response.headers["Supermemory-Thread-Uuid"]
    assert re.fullmatch(r"[0-9a-f]{32}", thread_id)
    assert response.headers["Content-Type"] == "text/x-unknown"
    assert response.headers["content-encoding"] == "identity"
    assert response.headers["X-Vercel-AI-Data-Stream"] == "v1"
    assert response.headers["Transfer-Encoding"] == "chunked"
    assert "Content-Length" not in response.headers

    message_id = re.match(rb'f:\{"messageId":"(msg-[A-Za-z0-9]{24})"\}\n', body)
    assert message_id is not None
    prompt_tokens = data_lines(body)[-1][1]["usage"]["promptTokens"]
    assert isinstance(prompt_tokens, int)
    assert prompt_tokens > 0
    usage = {"promptTokens": prompt_tokens, "completionTokens": completion_tokens(settings)}
    expected = (
        f'f:{{"messageId":"{message_id[1].decode()}"}}\n'
        f"8:{js([annotation])}\n"
        + "".join(f"0:{js(piece)}\n" for piece in ANSWER)
        + f'e:{{"finishReason":"stop","usage":{js(usage)},"isContinued":false}}\n'
        + f'd:{{"finishReason":"stop","usage":{js(usage)}}}\n'
    )
    assert body == expected.encode()
    assert "café".encode() in body  # UTF-8 as it is, not \u00e9


async def test_the_ui_message_stream_byte_for_byte(client: Client, key: str) -> None:
    await remember(client, key, "trip", FACT)
    annotation = await expected_annotation(client, key)
    response, body = await ask(client, key, QUESTION, sse=True)
    assert response.status == 200
    thread_id = response.headers["Supermemory-Thread-Uuid"]
    assert response.headers["Content-Type"] == "text/event-stream"
    assert response.headers["x-vercel-ai-ui-message-stream"] == "v1"
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.headers["X-Accel-Buffering"] == "no"
    assert response.headers["Transfer-Encoding"] == "chunked"
    assert "X-Vercel-AI-Data-Stream" not in response.headers

    message_id = re.search(rb'"messageId":"(msg-[A-Za-z0-9]{24})"', body)
    assert message_id is not None
    start = {
        "type": "start",
        "messageId": message_id[1].decode(),
        "messageMetadata": {"threadId": thread_id},
    }
    chunks = [
        start,
        {"type": "data-annotations", "data": [annotation]},
        {"type": "text-start", "id": "text-1"},
        *({"type": "text-delta", "id": "text-1", "delta": piece} for piece in ANSWER),
        {"type": "text-end", "id": "text-1"},
        {"type": "finish", "finishReason": "stop"},
    ]
    expected = "".join(f"data: {js(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
    assert body == expected.encode()


async def test_an_ai_sdk_v5_body_gets_the_ui_message_stream_without_asking(
    client: Client, key: str
) -> None:
    await remember(client, key, "trip", FACT)
    v5 = {
        "id": "chat-1",
        "trigger": "submit-message",
        "messageId": None,
        "messages": [
            {
                "id": "m1",
                "role": "user",
                "parts": [{"type": "step-start"}, {"type": "text", "text": QUESTION}],
            }
        ],
    }
    response, body = await ask(client, key, body=v5)
    assert response.status == 200
    assert response.headers["x-vercel-ai-ui-message-stream"] == "v1"
    assert body.startswith(b'data: {"type":"start"')
    assert body.endswith(b'data: {"type":"finish","finishReason":"stop"}\n\ndata: [DONE]\n\n')
    assert ANSWER[1].encode() in body.replace(b"\\n", b"\n").replace(b'\\"', b'"')


async def test_the_raw_http_response(client: Client, key: str) -> None:
    """Status line, header lines and chunked framing as they cross the socket."""
    await remember(client, key, "trip", FACT)
    body = json.dumps({"messages": [{"role": "user", "content": QUESTION}]}).encode()
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(
        b"POST /api/chat HTTP/1.1\r\n"
        + f"Host: {client.host}:{client.port}\r\n".encode()
        + f"Authorization: Bearer {key}\r\n".encode()
        + b"Content-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\n".encode()
        + b"Connection: close\r\n\r\n"
        + body
    )
    raw = await reader.read()
    writer.close()
    await writer.wait_closed()
    head, _, chunked = raw.partition(b"\r\n\r\n")
    status, *header_lines = head.decode().split("\r\n")
    assert status == "HTTP/1.1 200 OK"
    headers = dict(line.split(": ", 1) for line in header_lines)
    assert headers["Content-Type"] == "text/x-unknown"
    assert {k.lower(): v for k, v in headers.items()}["content-encoding"] == "identity"
    assert headers["X-Vercel-AI-Data-Stream"] == "v1"
    assert headers["Transfer-Encoding"] == "chunked"
    assert re.fullmatch(r"[0-9a-f]{32}", headers["Supermemory-Thread-Uuid"])
    # Each part went out as its own chunk, the start line first.
    decoded, chunks = b"", []
    while True:
        size_line, _, chunked = chunked.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            assert chunked == b"\r\n"
            break
        chunks.append(chunked[:size])
        decoded += chunked[:size]
        assert chunked[size : size + 2] == b"\r\n"
        chunked = chunked[size + 2 :]
    assert chunks[0].startswith(b'f:{"messageId":"msg-')
    assert chunks[1].startswith(b"8:[")
    assert all(c.endswith(b"\n") for c in chunks)
    assert [line[:2] for line in decoded.decode().splitlines()] == [
        "f:",
        "8:",
        "0:",
        "0:",
        "e:",
        "d:",
    ]


def test_both_writers_put_the_models_finish_reason_and_usage_on_the_wire() -> None:
    """A model that was cut by max_tokens and counted its own tokens: the truth, byte for byte."""
    finish = Finish(reason="length", usage=Usage(prompt_tokens=812, completion_tokens=24))
    usage = '{"promptTokens":812,"completionTokens":24}'
    assert (
        data_stream_lines(finish)
        == (
            f'e:{{"finishReason":"length","usage":{usage},"isContinued":false}}\n'
            f'd:{{"finishReason":"length","usage":{usage}}}\n'
        ).encode()
    )
    encoder = UiMessageEncoder()
    assert encoder.chunks(TextDelta("Once")) == [
        {"type": "text-start", "id": "text-1"},
        {"type": "text-delta", "id": "text-1", "delta": "Once"},
    ]
    assert [js(c) for c in encoder.chunks(finish)] == [
        '{"type":"text-end","id":"text-1"}',
        '{"type":"finish","finishReason":"length"}',
    ]


def test_a_citation_is_written_as_the_specs_annotation_with_the_apis_one_date_format() -> None:
    """The core's datetimes, any offset, reach the wire as ``iso`` writes them: UTC, ``Z``."""
    cited = Citation(
        similarity=0.8765432,
        id="m1",
        content="[2 March 2024] Alice: café",
        type="conversation",
        url="https://example.org/trip",
        title="trip",
        description="",
        og_image="",
        created_at=datetime(2024, 3, 2, 10, 0, tzinfo=timezone(timedelta(hours=2))),
        updated_at=datetime(2024, 3, 3, 8, 30, 0, 250000, tzinfo=UTC),
    )
    wire = (
        '{"similarity":0.876543,"id":"m1","content":"[2 March 2024] Alice: café",'
        '"type":"conversation","url":"https://example.org/trip","title":"trip",'
        '"description":"","ogImage":"","createdAt":"2024-03-02T08:00:00Z",'
        '"updatedAt":"2024-03-03T08:30:00.250000Z"}'
    )
    assert data_stream_lines(Annotations((cited,))) == f"8:[{wire}]\n".encode()
    chunks = UiMessageEncoder().chunks(Annotations((cited,)))
    assert [js(c) for c in chunks] == [f'{{"type":"data-annotations","data":[{wire}]}}']
