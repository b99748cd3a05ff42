"""GET /v1/model: the model card (its drift reference is bins and proportions, no raw data)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter

from lucidserve.runtime import Runtime


def model_router(runtime: Runtime, guards: Sequence[Any]) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["model"], dependencies=guards)
    public = runtime.card.public()

    @router.get("/model", summary="The served model's card")
    async def model_card() -> dict[str, Any]:
        return public

    return router
