"""The built-in ``redact`` filter: masks personal data and secrets on the way in and out.

Off unless enabled (``[plugins.redact] enabled = true``, or
``MEMORYD_PLUGIN_REDACT__ENABLED=true``). On, it masks, in every memory draft
at ingest (its text, embedded pieces and keyword context, before anything is
embedded or indexed) and in every search result (memories stored before it was
turned on):

- e-mail addresses -> ``[email]``;
- card numbers (13 to 19 digits, spaces or dashes allowed, Luhn-checked) -> ``[card]``;
- phone numbers (9 to 15 digits, an optional ``+`` and the usual separators) -> ``[phone]``;
- secrets that look like keys -> ``[secret]``: ``sk-...`` (OpenAI and others),
  ``AKIA...`` (AWS), ``md_...`` (memoryd), ``ghp_...`` and kin (GitHub),
  ``xox?-...`` (Slack), JWTs, and long hex (32+) or base64 (32+, mixed letters and
  digits) tokens.

The conversation's stored messages keep what was sent: only memories (what
search finds and returns, and what a chat is given) are masked. Each kind can be
turned off (``cards = false``). Patterns catch the common shapes, not every one:
it lowers the chance of a leak, it does not prove there is none.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import attrs
from attrs import frozen

from memoryd.core.model import Memory, MemoryDraft
from memoryd.plugins.context import PluginContext
from memoryd.plugins.hookspecs import hookimpl

PLUGIN_NAME = "redact"


@frozen
class RedactSettings:
    """``[plugins.redact]``."""

    #: Turn the filter on (off by default).
    enabled: bool = False
    emails: bool = True
    cards: bool = True
    phones: bool = True
    secrets: bool = True


_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_CARD = re.compile(r"(?<![\w-])\d(?:[ -]?\d){12,18}(?![\w-])")
_PHONE = re.compile(
    r"(?<![\w+])(?:\+|00)?\d{1,4}(?:[ .-]?\(\d{1,4}\))?(?:[ .-]?\d{2,5}){1,5}(?![\w])"
)
_SECRET = re.compile(
    r"(?<![\w-])(?:"
    r"sk-[A-Za-z0-9_-]{16,}"
    r"|AKIA[0-9A-Z]{16}"
    r"|md_[A-Za-z0-9_-]{16,}"
    r"|gh[pousr]_[A-Za-z0-9]{20,}"
    r"|xox[abprs]-[A-Za-z0-9-]{10,}"
    r"|eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"
    r"|[0-9a-fA-F]{32,}"
    r"|[A-Za-z0-9+/_-]{32,}={0,2}"
    r")(?![\w-])"
)
_DATE = re.compile(r"\d{4}-\d{1,2}-\d{1,2}|\d{1,2}[./-]\d{1,2}[./-]\d{2,4}")


def luhn(digits: str) -> bool:
    """Whether ``digits`` passes the Luhn check that card numbers carry."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    return "[card]" if 13 <= len(digits) <= 19 and luhn(digits) else match.group(0)


def _phone(match: re.Match[str]) -> str:
    found = match.group(0)
    digits = re.sub(r"\D", "", found)
    if not 9 <= len(digits) <= 15 or _DATE.fullmatch(found.strip()):
        return found
    return "[phone]"


def _secret(match: re.Match[str]) -> str:
    found = match.group(0)
    if re.match(r"sk-|AKIA|md_|gh[pousr]_|xox|eyJ", found) or re.fullmatch(r"[0-9a-fA-F]+", found):
        return "[secret]"
    # A long base64-like run: a token only if it mixes letters and digits.
    has_digit = any(c.isdigit() for c in found)
    has_letter = any(c.isalpha() for c in found)
    return "[secret]" if has_digit and has_letter else found


@frozen
class Redactor:
    """Masks what its settings name in text; a filter of drafts and results."""

    emails: bool = True
    cards: bool = True
    phones: bool = True
    secrets: bool = True
    name: str = "redact"

    def _steps(self) -> list[tuple[re.Pattern[str], Callable[[re.Match[str]], str] | str]]:
        steps: list[tuple[re.Pattern[str], Callable[[re.Match[str]], str] | str]] = []
        # Secrets and e-mail addresses first: their digits are not phone or card numbers.
        if self.secrets:
            steps.append((_SECRET, _secret))
        if self.emails:
            steps.append((_EMAIL, "[email]"))
        if self.cards:
            steps.append((_CARD, _card))
        if self.phones:
            steps.append((_PHONE, _phone))
        return steps

    def redact(self, text: str) -> str:
        for pattern, replacement in self._steps():
            text = pattern.sub(replacement, text)
        return text

    async def on_draft(self, draft: MemoryDraft) -> MemoryDraft:
        return attrs.evolve(
            draft,
            text=self.redact(draft.text),
            embed_texts=tuple(self.redact(t) for t in draft.embed_texts),
            keyword_context=self.redact(draft.keyword_context),
        )

    async def on_result(self, memory: Memory) -> Memory:
        return attrs.evolve(memory, text=self.redact(memory.text))


@hookimpl
def memoryd_plugin_settings() -> type[RedactSettings]:
    return RedactSettings


@hookimpl
def memoryd_register_filters(context: PluginContext[RedactSettings]) -> Sequence[Redactor]:
    config = context.config
    if not config.enabled:
        return []
    return [
        Redactor(
            emails=config.emails, cards=config.cards, phones=config.phones, secrets=config.secrets
        )
    ]
