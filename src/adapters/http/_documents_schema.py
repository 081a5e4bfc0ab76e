"""Request bodies of /v3/documents and /v3/search (the supermemory SDKs' shapes), and their rules.

The tags, metadata, filters, limits and timestamps follow ``_schema``'s rules
(the same limits as /v4). Fields the SDKs send that mean nothing without a
hosted pipeline (``entityContext``, ``dreaming``, ``taskType``,
``filterByMetadata``, ``categoriesFilter``) are ignored, as unknown keys are;
``filepath`` (supermemoryfs) is refused, so that no filter is silently
dropped. docs/api.md lists them.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal, NewType

import cattrs
from attrs import field, frozen

from memoryd.adapters.http import _schema as s
from memoryd.adapters.http._converter import expect, hook
from memoryd.adapters.http._filters_schema import filters as _filters
from memoryd.core.document_search import DocumentSearchRequest
from memoryd.core.documents import DocumentPatch, ListRequest
from memoryd.core.errors import FieldError, ValidationFailed
from memoryd.core.filters import Clause
from memoryd.core.retrieval import SearchRequest

#: Documents in one ``POST /v3/documents/batch``.
MAX_BATCH = 100
#: Ids in one ``DELETE /v3/documents/bulk``.
MAX_BULK_IDS = 100
#: Documents in one page of ``POST /v3/documents/list``.
MAX_PAGE_SIZE = 100
#: The highest page number (``page * limit`` stays a small integer).
MAX_PAGE = 1_000_000
#: A content that is one http(s) URL and nothing else is fetched (with ``fetch_urls`` on).
URL_CONTENT = re.compile(r"^https?://[^\s]+$", re.IGNORECASE)

DocContent = NewType("DocContent", str)
Filepath = NewType("Filepath", str)
PageSize = NewType("PageSize", int)
PageNumber = NewType("PageNumber", int)
#: ``filters`` of /v3: either form, as on /v4/search.
ListFilters = NewType("ListFilters", tuple[Clause, ...])
Ids = NewType("Ids", tuple[str, ...])

NO_TAGS = s.Tags(())
TEN = s.Limit(10)
ZERO = s.Threshold(0.0)

_NO_FILEPATH = (
    "is not supported: memoryd keeps no file paths (supermemoryfs); leave it out "
    "and file documents under containerTags or metadata instead"
)


def _doc_content(value: object) -> DocContent:
    text = s.bounded_str(value, lo=1, hi=s.MAX_TEXT_CHARS)
    if not text.strip(s.WHITESPACE):
        raise ValueError("must not be blank")
    return DocContent(text)


def _filepath(value: object) -> Filepath:
    raise ValueError(_NO_FILEPATH)


#: A page size or number may also come as a string of digits (the SDKs' ``str | float``).
PAGE_SIZE_PATTERN = "^(100|[1-9][0-9]?)$"
PAGE_PATTERN = "^(1000000|[1-9][0-9]{0,5})$"


def _whole(value: object, *, lo: int, hi: int, pattern: str) -> int:
    """An integer from ``lo`` to ``hi``, or a string of its digits matching ``pattern``."""
    if isinstance(value, str):
        if not re.fullmatch(pattern, value):
            raise ValueError(f"must be an integer from {lo} to {hi}, or one written in digits")
        value = int(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"must be an integer from {lo} to {hi}")
    if not lo <= value <= hi:
        raise ValueError(f"must be from {lo} to {hi} (got {value})")
    return value


def _page_size(value: object) -> PageSize:
    return PageSize(_whole(value, lo=1, hi=MAX_PAGE_SIZE, pattern=PAGE_SIZE_PATTERN))


def _page_number(value: object) -> PageNumber:
    return PageNumber(_whole(value, lo=1, hi=MAX_PAGE, pattern=PAGE_PATTERN))


def _list_filters(value: object) -> ListFilters:
    return ListFilters(_filters(value))


def _ids(value: object) -> Ids:
    expect(value, list, "an array of document ids")
    assert isinstance(value, list)
    if len(value) > MAX_BULK_IDS:
        raise ValueError(f"must have at most {MAX_BULK_IDS} ids (got {len(value)})")
    out: list[str] = []
    for i, item in enumerate(value):
        try:
            out.append(s.bounded_str(item, lo=1, hi=s.MAX_ID_CHARS))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"item {i} {exc}") from None
    return Ids(tuple(out))


# --- POST /v3/documents, /v3/documents/batch, PATCH /v3/documents/{id} ---------------------------


@frozen
class DocumentAddIn:
    content: DocContent
    containerTag: s.Tag = s.NO_TAG
    containerTags: s.Tags = NO_TAGS
    customId: s.Identifier | None = None
    metadata: s.Metadata | None = None
    #: When the content is from: its memories are said then (YYYY-MM-DD or ISO 8601).
    documentDate: datetime | None = None
    filepath: Filepath | None = None

    @property
    def tags(self) -> tuple[str, ...]:
        return s.tags_of(self.containerTags, self.containerTag)


@frozen
class FileUploadIn:
    """The text fields of ``POST /v3/documents/file`` (multipart), after JSON ones are read."""

    containerTag: s.Tag = s.NO_TAG
    containerTags: s.Tags = NO_TAGS
    customId: s.Identifier | None = None
    metadata: s.Metadata | None = None
    mimeType: s.Mime | None = None
    filepath: Filepath | None = None

    @property
    def tags(self) -> tuple[str, ...]:
        return s.tags_of(self.containerTags, self.containerTag)


BatchItem = NewType("BatchItem", DocumentAddIn)
BatchItems = NewType("BatchItems", list[BatchItem])


@frozen
class DocumentBatchIn:
    documents: BatchItems
    #: Defaults for the documents that name none of their own.
    containerTag: s.Tag = s.NO_TAG
    containerTags: s.Tags = NO_TAGS
    metadata: s.Metadata | None = None
    documentDate: datetime | None = None
    filepath: Filepath | None = None

    @property
    def tags(self) -> tuple[str, ...]:
        return s.tags_of(self.containerTags, self.containerTag)


@frozen
class DocumentPatchIn:
    content: DocContent | None = None
    containerTag: s.Tag = s.NO_TAG
    containerTags: s.Tags = NO_TAGS
    customId: s.Identifier | None = None
    metadata: s.Metadata | None = None
    documentDate: datetime | None = None
    filepath: Filepath | None = None


def patch_to_core(body: DocumentPatchIn, content: Any) -> DocumentPatch:
    tags = s.tags_of(body.containerTags, body.containerTag)
    return DocumentPatch(
        content=content,
        custom_id=body.customId,
        container_tags=tags or None,
        metadata=body.metadata,
        said_at=body.documentDate,
    )


# --- POST /v3/documents/list, DELETE /v3/documents/bulk ------------------------------------------


@frozen
class DocumentListIn:
    containerTags: s.Tags = NO_TAGS
    containerTag: s.Tag = s.NO_TAG
    filters: ListFilters = field(factory=lambda: ListFilters(()))
    includeContent: bool = False
    limit: PageSize = PageSize(10)
    page: PageNumber = PageNumber(1)
    order: Literal["asc", "desc"] = "desc"
    sort: Literal["createdAt", "updatedAt"] = "createdAt"
    filepath: Filepath | None = None


def list_to_core(body: DocumentListIn) -> ListRequest:
    return ListRequest(
        container_tags=s.tags_of(body.containerTags, body.containerTag),
        conditions=body.filters,
        sort=body.sort,
        order=body.order,
        page=body.page,
        limit=body.limit,
    )


@frozen
class DocumentBulkDeleteIn:
    ids: Ids = Ids(())
    containerTags: s.Tags = NO_TAGS
    filepath: Filepath | None = None


# --- POST /v3/search -----------------------------------------------------------------------------


@frozen
class DocumentSearchIn:
    q: s.Query
    containerTags: s.Tags = NO_TAGS
    containerTag: s.Tag = s.NO_TAG
    limit: s.Limit = TEN
    chunkThreshold: s.Threshold = ZERO
    documentThreshold: s.Threshold = ZERO
    docId: s.Identifier | None = None
    filters: ListFilters = field(factory=lambda: ListFilters(()))
    includeFullDocs: bool = False
    includeSummary: bool = False
    onlyMatchingChunks: bool = False
    rerank: bool = False
    #: Without a model to rewrite it, the query is searched as sent (docs/api.md).
    rewriteQuery: bool = False
    filepath: Filepath | None = None


def search_to_core(body: DocumentSearchIn) -> DocumentSearchRequest:
    return DocumentSearchRequest(
        search=SearchRequest(
            q=body.q,
            container_tags=s.tags_of(body.containerTags, body.containerTag),
            threshold=body.chunkThreshold,
            conditions=body.filters,
            rerank=body.rerank,
        ),
        limit=body.limit,
        document_threshold=body.documentThreshold,
        doc_id=body.docId,
        only_matching_chunks=body.onlyMatchingChunks,
    )


def _batch_item(converter: cattrs.Converter, value: object) -> BatchItem:
    if isinstance(value, str):
        return BatchItem(DocumentAddIn(content=_doc_content(value)))
    return BatchItem(converter.structure(value, DocumentAddIn))


def _batch_items(converter: cattrs.Converter, value: object) -> BatchItems:
    expect(value, list, "an array of documents (objects or strings)")
    assert isinstance(value, list)
    if not value:
        raise ValueError("must contain at least 1 document")
    if len(value) > MAX_BATCH:
        raise ValueError(f"must contain at most {MAX_BATCH} documents (got {len(value)})")
    return BatchItems(converter.structure(value, list[BatchItem]))


def _wire_converter() -> cattrs.Converter:
    converter = s._wire_converter()
    for new_type, fn in [
        (DocContent, _doc_content),
        (Filepath, _filepath),
        (PageSize, _page_size),
        (PageNumber, _page_number),
        (Ids, _ids),
        (ListFilters, _list_filters),
    ]:
        converter.register_structure_hook(new_type, hook(fn))
    converter.register_structure_hook(BatchItem, lambda v, _: _batch_item(converter, v))
    converter.register_structure_hook(BatchItems, lambda v, _: _batch_items(converter, v))
    for cls in (
        DocumentAddIn,
        DocumentBatchIn,
        DocumentPatchIn,
        DocumentListIn,
        DocumentSearchIn,
        FileUploadIn,
    ):
        s.register_tag_spellings(converter, cls)
    return converter


CONVERTER = _wire_converter()


def processing_query(query: Any) -> str:
    """``GET /v3/documents/processing``'s ``view`` (``limit`` and ``page`` checked as in list)."""
    errors: list[tuple[str, str]] = []
    view = query.get("view", "active")
    if view not in ("active", "pending", "all"):
        errors.append(("view", "must be one of 'active', 'pending', 'all'"))
    for name, fn in (("limit", _page_size), ("page", _page_number)):
        if name in query:
            try:
                fn(query[name])
            except (TypeError, ValueError) as exc:
                errors.append((name, str(exc)))
    if errors:
        raise ValidationFailed([FieldError(path=p, message=m) for p, m in errors])
    return str(view)
