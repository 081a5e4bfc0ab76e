"""The token quota rule, written once: the ingest use case and every store apply it."""

from __future__ import annotations

from memoryd.core.errors import QuotaExceeded


def check_quota(*, used: int, quota: int | None, tokens: int) -> None:
    """Raise ``QuotaExceeded`` if spending ``tokens`` would take ``used`` past ``quota``.

    None is no quota; reaching the quota exactly is allowed.
    """
    if quota is not None and used + tokens > quota:
        raise QuotaExceeded(
            "This write would pass the API key's token quota; nothing was stored",
            details={"quotaTokens": quota, "usedTokens": used, "requestTokens": tokens},
        )
