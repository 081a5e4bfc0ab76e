"""The query and document prompts each family of embedding models prescribes: one table.

A GGUF names its model in its metadata (``general.architecture``,
``general.name``, ``general.basename``); :func:`prompts_for` finds the family
there (and in the file's name) and returns the prefixes its model card asks
for. A model the table does not know gets none, unless the settings give them
(``[plugins.gguf] query_prompt`` / ``document_prompt``). Pure: no I/O.
"""

from __future__ import annotations

import re

from attrs import frozen

_SEARCH_INSTRUCTION = "Represent this sentence for searching relevant passages: "


@frozen
class Family:
    """A family of embedding models and the prefixes its model card prescribes."""

    name: str
    #: Matched against ``general.architecture`` (exactly).
    architectures: tuple[str, ...]
    #: Searched for in the model's names (lower case, spaces and ``_`` written ``-``).
    pattern: str
    query: str
    document: str


#: The known families, first match wins (so ``bge-m3`` comes before ``bge``).
FAMILIES: tuple[Family, ...] = (
    # google/embeddinggemma-300m: "task: {task} | query: " / "title: {title|none} | text: ".
    Family(
        "embeddinggemma",
        ("gemma-embedding",),
        r"embedding-?gemma",
        "task: search result | query: ",
        "title: none | text: ",
    ),
    # nomic-ai/nomic-embed-text-v1.5, v2-moe.
    Family(
        "nomic-embed",
        ("nomic-bert", "nomic-bert-moe"),
        r"nomic-embed",
        "search_query: ",
        "search_document: ",
    ),
    # BAAI/bge-m3 takes no instruction.
    Family("bge-m3", (), r"\bbge-m3\b", "", ""),
    # BAAI/bge-*-en-v1.5 and the like: an instruction for queries only.
    Family("bge", (), r"\bbge\b", _SEARCH_INSTRUCTION, ""),
    # mixedbread-ai/mxbai-embed-large-v1.
    Family("mxbai-embed", (), r"\bmxbai-embed", _SEARCH_INSTRUCTION, ""),
    # Snowflake/snowflake-arctic-embed-m-v2.0 and -l-v2.0 ask for "query: "; v1 and v1.5
    # for the bge instruction.
    Family("arctic-embed-v2", (), r"arctic-embed-[a-z]+-v2", "query: ", ""),
    Family("arctic-embed", (), r"arctic-embed", _SEARCH_INSTRUCTION, ""),
    # Qwen/Qwen3-Embedding-*: an instruction for queries, written as its model card does.
    Family(
        "qwen3-embedding",
        (),
        r"qwen3-embedding",
        "Instruct: Given a web search query, retrieve relevant passages that answer the query"
        "\nQuery:",
        "",
    ),
    # intfloat/e5-*-v2 and multilingual-e5-*.
    Family("e5", (), r"\be5\b", "query: ", "passage: "),
)

UNKNOWN = "unknown"


@frozen
class Prompts:
    """The prefixes put before queries and documents, and where they came from."""

    #: The family from :data:`FAMILIES`, or ``"unknown"``.
    family: str
    query: str
    document: str
    #: Whether the settings gave either prefix.
    overridden: bool = False

    def query_text(self, text: str) -> str:
        return self.query + text

    def document_text(self, text: str) -> str:
        return self.document + text


def normalise_name(name: str) -> str:
    """``"Bge Small En v1.5"`` -> ``"bge-small-en-v1.5"``: how names are matched."""
    return re.sub(r"[\s_]+", "-", name.strip().lower())


def family_of(*, architecture: str, names: tuple[str, ...] = ()) -> Family | None:
    """The first family whose architecture or name pattern fits, or None."""
    arch = architecture.strip().lower()
    haystack = " ".join(normalise_name(n) for n in names if n)
    for family in FAMILIES:
        if arch in family.architectures or re.search(family.pattern, haystack):
            return family
    return None


def prompts_for(
    *,
    architecture: str,
    names: tuple[str, ...] = (),
    query: str | None = None,
    document: str | None = None,
) -> Prompts:
    """The prompts of the model: its family's, each replaced by ``query``/``document`` if set.

    ``names`` are the model's names to look in (``general.name``,
    ``general.basename``, the file's stem). An empty string override means no
    prefix on that side.
    """
    family = family_of(architecture=architecture, names=names)
    return Prompts(
        family=family.name if family else UNKNOWN,
        query=query if query is not None else (family.query if family else ""),
        document=document if document is not None else (family.document if family else ""),
        overridden=query is not None or document is not None,
    )
