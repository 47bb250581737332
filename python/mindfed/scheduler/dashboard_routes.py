"""The web dashboard on the scheduler's port (beyond MindSpore): static files from the package, and the JSON the page
polls. The page acts through the management routes themselves (/enableFLS, /disableFLS, /newInstance,
/queryInstance), so it is authenticated exactly as they are; its JSON read obeys the rule of /state (rest.py).
"""

from __future__ import annotations

import json
from importlib import resources

from aiohttp import web

from mindfed.scheduler.overview import DashboardOverview

DASHBOARD_PATH = "/dashboard/"
OVERVIEW_PATH = "/dashboard/api/overview"
OVERVIEW = web.AppKey("dashboard_overview", DashboardOverview)
FILES = {"index.html": "text/html", "app.js": "text/javascript", "style.css": "text/css"}
# The page loads nothing but its own files and talks to nothing but this origin; no page may frame it (the action
# buttons must not be clickjacked).
SECURITY_HEADERS = {
    "Content-Security-Policy": ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
                                "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


def _load_files() -> dict[str, bytes]:
    """The page's files, read once at start-up (a few kB) from the package (`scheduler/dashboard/`)."""
    folder = resources.files("mindfed.scheduler").joinpath("dashboard")
    return {name: folder.joinpath(name).read_bytes() for name in FILES}


def add_dashboard_routes(app: web.Application, overview: DashboardOverview) -> None:
    """`/` and `/dashboard` redirect to `/dashboard/` (index.html); `/dashboard/app.js`, `/dashboard/style.css`; and
    `OVERVIEW_PATH`, the page's JSON (`DashboardOverview.overview`)."""
    files = _load_files()
    app[OVERVIEW] = overview

    async def redirect(_request: web.Request) -> web.Response:
        raise web.HTTPFound(DASHBOARD_PATH)

    def serve(name: str) -> web.Response:
        return web.Response(body=files[name], content_type=FILES[name], charset="utf-8",
                            headers={**SECURITY_HEADERS, "Cache-Control": "no-cache"})

    async def index(_request: web.Request) -> web.Response:
        return serve("index.html")

    async def static(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in files:
            raise web.HTTPNotFound()
        return serve(name)

    app.router.add_get("/", redirect)
    app.router.add_get("/dashboard", redirect)
    app.router.add_get(DASHBOARD_PATH, index)
    app.router.add_get(OVERVIEW_PATH, overview_json)
    app.router.add_get(DASHBOARD_PATH + "{name}", static)


async def overview_json(request: web.Request) -> web.Response:
    body = await request.app[OVERVIEW].overview()
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    # the cluster's state of this instant: never kept by a browser or a proxy
    return web.Response(text=text, content_type="application/json",
                        headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})
