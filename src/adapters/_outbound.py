"""What the adapters that call another server over HTTP share.

The app's one ``aiohttp.ClientSession`` (or, without it, one the adapter opens
and closes itself), and keeping the API key and any password in the URL out
of error messages and logs.
"""

from __future__ import annotations

import asyncio

import aiohttp
from attrs import define, field
from yarl import URL


@define
class SessionSlot:
    """The shared session if any; else one opened on first use and closed by :meth:`close`."""

    shared: aiohttp.ClientSession | None = field(default=None, repr=False)
    _own: aiohttp.ClientSession | None = field(default=None, init=False, repr=False)

    def get(self) -> aiohttp.ClientSession:
        if self.shared is not None:
            return self.shared
        if self._own is None or self._own.closed:
            self._own = aiohttp.ClientSession()
        return self._own

    async def close(self) -> None:
        """Close the session opened here (a shared one is left open)."""
        own, self._own = self._own, None
        if own is not None and not own.closed:
            await own.close()
            await asyncio.sleep(0)  # let the connector's transports close before the loop ends


def without_user(url: str) -> str:
    """``url`` without ``user:password@`` (safe to log)."""
    parsed = URL(url)
    return str(parsed.with_user(None)) if parsed.is_absolute() else url


def redact(text: str, *, api_key: str | None, base_url: str) -> str:
    """``text`` without the API key, or the user info or password in ``base_url``.

    Both spellings go: as written in the URL (percent-encoded) and decoded.
    """
    try:
        url = URL(base_url)
    except ValueError:
        url = URL()
    infos = [
        f"{user}:{password}@" if password is not None else f"{user}@"
        for user, password in ((url.raw_user, url.raw_password), (url.user, url.password))
        if user is not None
    ]
    for info in infos:
        text = text.replace(info, "***@")
    for secret in (api_key, url.raw_password, url.password):
        if secret:
            text = text.replace(secret, "***")
    return text
