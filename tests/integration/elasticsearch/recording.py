"""A fake ``AsyncElasticsearch`` that records every call and answers with canned bodies.

The backend's own code runs over it unchanged (``Cluster(RecordingClient(), config)``),
so the recorded keyword arguments are exactly the requests the adapter makes; the
schema check (``test_es_request_types``) types them against the official client's
request types.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from attrs import define, field

Answer = Callable[[dict[str, Any]], Any]


def _ok(_: dict[str, Any]) -> Any:
    return {"acknowledged": True}


def _msearch_answer(body: dict[str, Any]) -> dict[str, Any]:
    """No hits; one memory in scope holding every counted word (so all are searched)."""
    answer: dict[str, Any] = {
        "status": 200,
        "hits": {"hits": [], "total": {"value": 1, "relation": "eq"}},
    }
    words = body.get("aggs", {}).get("words", {}).get("filters", {}).get("filters", {})
    if words:
        buckets = {name: {"doc_count": 1} for name in words}
        answer["aggregations"] = {"words": {"buckets": buckets}}
    return answer


#: What each API answers when nothing else is set: enough for the adapter to go on.
DEFAULTS: dict[str, Answer] = {
    "info": lambda _: {"version": {"number": "8.15.3"}},
    "msearch": lambda kw: {"responses": [_msearch_answer(body) for body in kw["searches"][1::2]]},
    "search": lambda _: {"hits": {"hits": []}, "aggregations": {"tenants": {"buckets": []}}},
    "bulk": lambda kw: {"errors": False, "items": []},
    "delete_by_query": lambda _: {"total": 0, "deleted": 0, "failures": []},
    "count": lambda _: {"count": 0},
    "index": lambda _: {"result": "updated"},
    "create": lambda _: {"result": "created"},
    "delete": lambda _: {"result": "deleted"},
    "mget": lambda kw: {"docs": [{"found": False} for _ in kw["docs"]]},
    "reindex": lambda _: {"total": 0, "created": 0, "updated": 0, "failures": []},
    "indices.exists_alias": lambda _: False,
    "indices.exists": lambda _: False,
    "indices.refresh": _ok,
    "indices.put_index_template": _ok,
    "indices.create": _ok,
    "indices.put_settings": _ok,
    "indices.update_aliases": _ok,
    "indices.delete": _ok,
}


@define
class _Namespace:
    client: RecordingClient
    prefix: str

    def __getattr__(self, name: str) -> Any:
        api = f"{self.prefix}{name}"

        async def call(**kwargs: Any) -> Any:
            self.client.calls.append((api, kwargs))
            answer = self.client.answers.get(api) or DEFAULTS.get(api)
            if answer is None:
                raise AssertionError(f"RecordingClient has no answer for {api}")
            return answer(kwargs)

        return call


@define
class RecordingClient:
    """Records ``(api, kwargs)`` for every call; ``answers`` overrides the canned bodies."""

    answers: dict[str, Answer] = field(factory=dict)
    calls: list[tuple[str, dict[str, Any]]] = field(factory=list)

    @property
    def indices(self) -> _Namespace:
        return _Namespace(self, "indices.")

    def options(self, **_: Any) -> RecordingClient:
        return self

    def take(self) -> list[tuple[str, dict[str, Any]]]:
        """The calls so far, forgetting them."""
        calls, self.calls = self.calls, []
        return calls

    async def close(self) -> None:
        return None

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(_Namespace(self, ""), name)
