"""GET /v1/model: the model card (its drift reference is bins and proportions, no raw data)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from lucidserve.runtime import Runtime


def model_router(runtime: Runtime, guard: Any) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["model"], dependencies=[Depends(guard)])
    public = runtime.card.public()

    @router.get("/model", summary="The served model's card")
    async def model_card() -> dict[str, Any]:
        return public

    return router
