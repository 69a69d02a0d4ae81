"""The dashboard: static pages served by the node; uPlot comes from the ``uplot-python``
package and Swagger UI (``/docs``) from ``fastapi-offline``, so nothing
is fetched from the internet and nothing third-party is committed."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).parent / "static"


def uplot_dir() -> Path:
    """Folder of the uPlot files shipped by ``uplot-python`` (found without importing it)."""
    spec = importlib.util.find_spec("uplot")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("uplot-python is not installed; `pip install genba` brings it.")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


def _package_static(module: str, sub: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"{module} is not installed; `pip install genba` brings it.")
    return Path(next(iter(spec.submodule_search_locations))) / sub


def mount(app: FastAPI) -> None:
    """Serve the dashboard at ``/`` and its assets under ``/static`` and ``/vendor``, and the
    API docs at ``/docs`` from local files (ReDoc is left out: it fetches its logo online)."""
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.mount("/vendor/uplot", StaticFiles(directory=uplot_dir()), name="uplot")
    swagger = _package_static("fastapi_offline", "static")
    app.mount("/vendor/swagger", StaticFiles(directory=swagger), name="swagger")

    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=f"{app.title} API",
            swagger_js_url="/vendor/swagger/swagger-ui-bundle.js",
            swagger_css_url="/vendor/swagger/swagger-ui.css",
            swagger_favicon_url="/vendor/swagger/favicon.png",
        )

    app.add_api_route("/docs", docs, methods=["GET"], include_in_schema=False)

    for route, file in PAGES.items():
        app.add_api_route(route, _page(file), methods=["GET"], include_in_schema=False)


PAGES = {
    "/": "index.html",  # machines with live values and trends
    "/andon": "andon.html",  # ?line=site/area/line
    "/line": "line.html",  # ?line=…&start=-8h&end=
    "/machine": "machine.html",  # ?path=site/area/line/machine&tag=&under=&start=&end=
    "/alarms": "alarms.html",
    "/models": "models.html",  # the model registry's versions
}
"""The dashboard's pages: static files; each reads its parameters from the address."""


def _page(file: str) -> Callable[[], FileResponse]:
    def page() -> FileResponse:
        return FileResponse(STATIC_DIR / file)

    page.__name__ = f"page_{file.removesuffix('.html')}"
    return page
