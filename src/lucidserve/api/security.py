"""Optional API keys (off unless configured): `X-API-Key` or `Authorization: Bearer`."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Depends, Request

from lucidserve.api.errors import ApiError


def api_key_dependencies(keys: tuple[bytes, ...]) -> list[Any]:
    """Route dependencies enforcing `keys`; none at all when no key is configured (no cost)."""
    return [Depends(api_key_guard(keys))] if keys else []


def api_key_guard(keys: tuple[bytes, ...]) -> Callable[[Request], Awaitable[None]]:
    """A dependency that rejects requests without one of `keys` (compared in constant time)."""

    async def require_key(request: Request) -> None:
        presented = request.headers.get("x-api-key")
        if presented is None:
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            presented = token.strip() if scheme.lower() == "bearer" else None
        if presented is not None:
            candidate = presented.encode()
            matched = False
            for key in keys:  # compare with every key, so timing does not tell which matched
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
