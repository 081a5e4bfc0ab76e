"""The prompt table of the ``gguf`` embedder: each family's prefixes, found from GGUF names."""

from __future__ import annotations

import pytest

from memoryd.adapters.embedding._gguf_prompts import (
    FAMILIES,
    UNKNOWN,
    normalise_name,
    prompts_for,
)

BGE = "Represent this sentence for searching relevant passages: "


@pytest.mark.parametrize(
    ("architecture", "names", "family", "query", "document"),
    [
        (
            "gemma-embedding",
            ("Embeddinggemma 300m",),
            "embeddinggemma",
            "task: search result | query: ",
            "title: none | text: ",
        ),
        (
            "gemma3",
            ("", "embeddinggemma-300M-Q8_0"),
            "embeddinggemma",
            "task: search result | query: ",
            "title: none | text: ",
        ),
        (
            "nomic-bert",
            ("Nomic Embed Text v1.5",),
            "nomic-embed",
            "search_query: ",
            "search_document: ",
        ),
        ("nomic-bert-moe", (), "nomic-embed", "search_query: ", "search_document: "),
        ("bert", ("Bge Small En v1.5",), "bge", BGE, ""),
        ("bert", ("bge_base_en_v1.5",), "bge", BGE, ""),
        ("xlm-roberta", ("Bge M3",), "bge-m3", "", ""),
        ("bert", ("mxbai-embed-large-v1",), "mxbai-embed", BGE, ""),
        ("bert", ("snowflake-arctic-embed-m-v1.5",), "arctic-embed", BGE, ""),
        ("gte", ("Snowflake Arctic Embed M v2.0",), "arctic-embed-v2", "query: ", ""),
        ("bert", ("Multilingual E5 Small",), "e5", "query: ", "passage: "),
        ("bert", ("e5-base-v2",), "e5", "query: ", "passage: "),
        ("qwen3", ("Qwen3 Embedding 0.6B",), "qwen3-embedding", FAMILIES[7].query, ""),
    ],
)
def test_known_families(
    architecture: str, names: tuple[str, ...], family: str, query: str, document: str
) -> None:
    prompts = prompts_for(architecture=architecture, names=names)
    assert (prompts.family, prompts.query, prompts.document) == (family, query, document)
    assert not prompts.overridden


@pytest.mark.parametrize(
    "names", [("all-MiniLM-L6-v2",), ("Smollm2 135M", "smollm2"), ("Gte5 small",), ()]
)
def test_unknown_models_get_no_prompts(names: tuple[str, ...]) -> None:
    prompts = prompts_for(architecture="bert", names=names)
    assert (prompts.family, prompts.query, prompts.document) == (UNKNOWN, "", "")


def test_the_settings_override_either_side() -> None:
    custom = prompts_for(architecture="llama", query="Q: ", document="D: ")
    assert (custom.family, custom.query, custom.document, custom.overridden) == (
        UNKNOWN,
        "Q: ",
        "D: ",
        True,
    )
    half = prompts_for(architecture="nomic-bert", document="")
    assert (half.family, half.query, half.document) == ("nomic-embed", "search_query: ", "")
    assert half.query_text("cats") == "search_query: cats"
    assert half.document_text("cats") == "cats"


def test_a_query_and_a_document_differ_for_the_families_that_ask_for_it() -> None:
    asymmetric = {f.name for f in FAMILIES if f.query != f.document}
    assert asymmetric == {f.name for f in FAMILIES} - {"bge-m3"}


def test_names_are_matched_lower_case_with_dashes() -> None:
    assert normalise_name("  Bge Small_En v1.5 ") == "bge-small-en-v1.5"
