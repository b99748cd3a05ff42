"""/docs (Swagger UI), /redoc (ReDoc) and /openapi.json, served without any CDN.

The JavaScript and CSS of both viewers come from the `fastapi-offline` package (pinned in the lock
files), which ships Swagger UI and the ReDoc standalone bundle as package data; they are served from
ASSETS_URL, so the pages work on a cluster without internet access. The three documentation routes
take the same API key guards as the model card: with keys configured, the OpenAPI document (which
names every feature) is not public. `LUCIDSERVE_DOCS_ENABLED=false` removes all of it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from starlette.responses import FileResponse, HTMLResponse, JSONResponse

from lucidserve.api.errors import ApiError

ASSETS_URL = "/docs-assets"
ASSETS = ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js", "favicon.png")
OPENAPI_URL = "/openapi.json"


def install_documentation(
    app: FastAPI, openapi: Callable[[], dict[str, Any]], guards: Sequence[Any]
) -> None:
    """Add /openapi.json, /docs, /redoc (behind `guards`) and their static assets to `app`."""
    app.include_router(documentation_router(app.title, openapi, guards))
    app.include_router(assets_router())


def assets_router() -> APIRouter:
    """GET ASSETS_URL/{name}: the viewers' files from the fastapi-offline package, public.

    A route rather than a static mount, so requests are recorded under their route template (a
    mount leaves them `unmatched`), and only the four known files are ever served.
    """
    directory = Path(str(resources.files("fastapi_offline") / "static"))
    files = {name: directory / name for name in ASSETS}
    missing = [str(path) for path in files.values() if not path.is_file()]
    if missing:
        raise RuntimeError(f"fastapi-offline's documentation assets are missing: {missing}")
    router = APIRouter(include_in_schema=False)

    @router.get(ASSETS_URL + "/{name}")
    async def asset(name: str) -> FileResponse:
        path = files.get(name)
        if path is None:
            raise ApiError(404, "not_found", f"No documentation asset {name!r}.")
        # The files change only with the pinned package: a day's caching saves 2.8 MB a visit.
        return FileResponse(path, headers={"Cache-Control": "public, max-age=86400"})

    return router


def documentation_router(
    title: str, openapi: Callable[[], dict[str, Any]], guards: Sequence[Any]
) -> APIRouter:
    """The three documentation routes; `openapi` returns the OpenAPI document."""
    router = APIRouter(dependencies=guards, include_in_schema=False)

    @router.get(OPENAPI_URL)
    async def openapi_document() -> JSONResponse:
        return JSONResponse(openapi())

    @router.get("/docs")
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{OPENAPI_URL}",
            title=f"{title} \u2013 Swagger UI",
            swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
        )

    @router.get("/redoc")
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(
            openapi_url=f"{root}{OPENAPI_URL}",
            title=f"{title} \u2013 ReDoc",
            redoc_js_url=f"{root}{ASSETS_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
            with_google_fonts=False,
        )

    return router
