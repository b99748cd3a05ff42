"""Optional API keys (off unless configured): `X-API-Key` or `Authorization: Bearer`.

Keys come from LUCIDSERVE_API_KEYS and from LUCIDSERVE_API_KEYS_FILE (one key a line). The file is
watched, so a rotated Kubernetes Secret takes effect without a restart: at most once a second a
request stats it, and reads it again only when its inode, size or modification time changed. With
a key file configured the routes always require a key, even while the file holds none.
"""

from __future__ import annotations

import hmac
import logging
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from fastapi import Depends, Request

from lucidserve.api.errors import ApiError
from lucidserve.settings import Settings

RECHECK_SECONDS = 1.0
logger = logging.getLogger("lucidserve")


class ApiKeys:
    """The keys a request may present: `load()`, called again when the `watched` file changes."""

    def __init__(self, load: Callable[[], tuple[bytes, ...]], watched: Path | None = None) -> None:
        self._load = load
        self._file = watched
        self._stamp = self._file_stamp()
        self._keys = load()
        self._next_check = time.monotonic() + RECHECK_SECONDS

    @classmethod
    def from_settings(cls, settings: Settings) -> ApiKeys:
        """LUCIDSERVE_API_KEYS plus the lines of LUCIDSERVE_API_KEYS_FILE, which is watched."""
        return cls(settings.accepted_api_keys, settings.api_keys_file)

    @classmethod
    def fixed(cls, keys: Sequence[bytes]) -> ApiKeys:
        """Keys that never change."""
        frozen = tuple(keys)
        return cls(lambda: frozen)

    def __bool__(self) -> bool:
        """Whether keys are required at all (some configured, or a key file)."""
        return bool(self._keys) or self._file is not None

    def current(self) -> tuple[bytes, ...]:
        """The accepted keys as bytes; costs a clock read, and a stat once a second."""
        if self._file is not None:
            now = time.monotonic()
            if now >= self._next_check:
                self._next_check = now + RECHECK_SECONDS
                self._reload_if_changed()
        return self._keys

    def _file_stamp(self) -> tuple[int, int, int] | None:
        if self._file is None:
            return None
        status = os.stat(self._file)  # follows the symlinks of a mounted Secret
        return status.st_ino, status.st_size, status.st_mtime_ns

    def _reload_if_changed(self) -> None:
        try:
            stamp = self._file_stamp()
            if stamp == self._stamp:
                return
            keys = self._load()
        except OSError as exc:  # mid-rotation or gone: keep the keys we have
            logger.warning("cannot read the API key file: %s", exc, extra={"event": "api_keys"})
            return
        self._stamp, self._keys = stamp, keys
        logger.info(
            "API key file changed: keys re-read",
            extra={"event": "api_keys_reloaded", "api_keys": len(keys)},
        )


def api_key_dependencies(keys: ApiKeys | Sequence[bytes]) -> list[Any]:
    """Route dependencies enforcing `keys`; none at all when no key is configured (no cost)."""
    return [Depends(api_key_guard(keys))] if keys else []


def api_key_guard(keys: ApiKeys | Sequence[bytes]) -> Callable[[Request], Awaitable[None]]:
    """A dependency that rejects requests without one of `keys` (compared in constant time)."""
    if not isinstance(keys, ApiKeys):
        keys = ApiKeys.fixed(keys)

    async def require_key(request: Request) -> None:
        presented = request.headers.get("x-api-key")
        if presented is None:
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            presented = token.strip() if scheme.lower() == "bearer" else None
        if presented is not None:
            candidate = presented.encode()
            matched = False
            for key in keys.current():  # compare with every key: timing does not tell which
                matched |= hmac.compare_digest(candidate, key)
            if matched:
                return
        raise ApiError(
            401,
            "unauthorized",
            "A valid API key is required (X-API-Key header or Authorization: Bearer).",
            headers={"WWW-Authenticate": "Bearer"},
        )

    return require_key
