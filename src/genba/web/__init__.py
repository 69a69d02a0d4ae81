"""The dashboard: static pages served by the node; uPlot comes from the ``uplot-python``
package, so nothing is fetched from the internet and nothing third-party is committed."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).parent / "static"


def uplot_dir() -> Path:
    """Folder of the uPlot files shipped by ``uplot-python`` (found without importing it)."""
    spec = importlib.util.find_spec("uplot")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("uplot-python is not installed; `pip install genba` brings it.")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


def mount(app: FastAPI) -> None:
    """Serve the dashboard at ``/`` and its assets under ``/static`` and ``/vendor``."""
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.mount("/vendor/uplot", StaticFiles(directory=uplot_dir()), name="uplot")

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html")

    @app.get("/andon", include_in_schema=False)
    def andon() -> FileResponse:
        """The andon board of a line: ``/andon?line=site/area/line``."""
        return FileResponse(STATIC_DIR / "andon.html")

    @app.get("/line", include_in_schema=False)
    def line() -> FileResponse:
        """The line view: ``/line?line=site/area/line&start=-8h&end=``."""
        return FileResponse(STATIC_DIR / "line.html")

    @app.get("/machine", include_in_schema=False)
    def machine() -> FileResponse:
        """Machine trends with zoom and pan: ``/machine?path=site/area/line/machine``."""
        return FileResponse(STATIC_DIR / "machine.html")

    @app.get("/alarms", include_in_schema=False)
    def alarm_page() -> FileResponse:
        """The alarm list with acknowledge and shelve."""
        return FileResponse(STATIC_DIR / "alarms.html")
