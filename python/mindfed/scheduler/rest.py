"""The management REST API (spec §6.1): MindSpore's paths, any HTTP method, JSON with sorted keys.

Success: HTTP 200 and `"code":"0"`. Refusals: HTTP 400 and `{"code":"1","error_message":...}`; without the operator's
credential, when one is configured (`operator_auth`), HTTP 401 with the same body; a browser's cross-site request,
HTTP 403 (`same_site_only`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from mindfed.errors import CacheError
from mindfed.scheduler.dashboard_routes import OVERVIEW_PATH, add_dashboard_routes
from mindfed.scheduler.metrics import SchedulerMetrics
from mindfed.scheduler.openapi import openapi_document
from mindfed.scheduler.operator_auth import REFUSED, OperatorAuth
from mindfed.scheduler.overview import DashboardOverview
from mindfed.scheduler.service import CACHE_UNAVAILABLE, ClusterService, ManagementError

logger = logging.getLogger(__name__)

SERVICE = web.AppKey("service", ClusterService)
AUTH = web.AppKey("operator_auth", OperatorAuth)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_response(body: dict[str, Any], status: int = 200) -> web.Response:
    """Compact JSON with sorted keys, as nlohmann's `dump()` writes it."""
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return web.Response(text=text, status=status, content_type="application/json")


def error_response(message: str, status: int = 400) -> web.Response:
    return json_response({"code": "1", "error_message": message}, status=status)


@web.middleware
async def operators_only(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The management routes answer 401 to a request without the operator's token or certificate (when set)."""
    auth = request.app[AUTH]
    reads_state = request.path in STATE_READS
    guarded = request.path in ROUTES or reads_state or (request.path == "/metrics" and auth.metrics_private)
    if guarded and not auth.allows(request, reads_state=reads_state):
        logger.warning("%s refused: no operator credential from %s", request.path, request.remote)
        response = error_response(REFUSED, status=401)
        response.headers["WWW-Authenticate"] = 'Bearer realm="mindfed"'
        return response
    return await handler(request)


CROSS_SITE = "Cross-site requests to the management routes are refused (Sec-Fetch-Site: {})"


@web.middleware
async def same_site_only(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A management route or state read that a browser sends on behalf of another site's page is refused (HTTP 403):
    a browser attaches an operator's client certificate to any request, so without this any web page the operator
    opens could disable the cluster. Browsers label such requests `Sec-Fetch-Site: cross-site` (or `same-site`: another
    host of the same domain); the dashboard's own are `same-origin`, and tools (curl, MindSpore's, ours) send none."""
    site = request.headers.get("Sec-Fetch-Site", "")
    if site in ("cross-site", "same-site") and (request.path in ROUTES or request.path in STATE_READS):
        logger.warning("%s refused: a %s request from %s", request.path, site, request.remote)
        return error_response(CROSS_SITE.format(site), status=403)
    return await handler(request)


@web.middleware
async def errors_to_http(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A refusal or a Redis failure becomes MindSpore's HTTP 400 error body."""
    try:
        return await handler(request)
    except ManagementError as exc:
        return error_response(str(exc))
    except CacheError as exc:
        logger.warning("%s: %s", request.path, exc)
        return error_response(CACHE_UNAVAILABLE)


async def state(request: web.Request) -> web.Response:
    return json_response(await request.app[SERVICE].state())


async def enable_fls(request: web.Request) -> web.Response:
    return json_response(await request.app[SERVICE].enable())


async def disable_fls(request: web.Request) -> web.Response:
    return json_response(await request.app[SERVICE].disable())


async def new_instance(request: web.Request) -> web.Response:
    return json_response(await request.app[SERVICE].new_instance(await request.read()))


async def query_instance(request: web.Request) -> web.Response:
    return json_response(await request.app[SERVICE].query_instance())


async def openapi(_request: web.Request) -> web.Response:
    return web.json_response(openapi_document())


ROUTES: dict[str, Handler] = {
    "/state": state,
    "/newInstance": new_instance,
    "/queryInstance": query_instance,
    "/enableFLS": enable_fls,
    "/disableFLS": disable_fls,
}

# What MINDFED_STATE_PUBLIC opens: /state, and the dashboard's read of the same cluster state.
STATE_READS = frozenset({"/state", OVERVIEW_PATH})


def make_app(service: ClusterService, auth: OperatorAuth | None = None,
             probes: SchedulerMetrics | None = None, overview: DashboardOverview | None = None) -> web.Application:
    """The management app over `service` (whose lifespan belongs to the caller); `auth`: who may call it (None: all);
    `probes`: `/metrics`, `/healthz` and `/readyz`, and the request counters behind the first; `overview`: the web
    dashboard (dashboard_routes.py) at `/dashboard/`."""
    counting = [probes.middleware] if probes is not None else []
    app = web.Application(middlewares=[*counting, same_site_only, operators_only, errors_to_http],
                          client_max_size=1 << 20)
    app[SERVICE] = service
    app[AUTH] = auth or OperatorAuth()
    app.add_routes([web.route("*", path, handler) for path, handler in ROUTES.items()])
    app.add_routes([web.get("/openapi.json", openapi)])
    if probes is not None:
        probes.add_routes(app)
    if overview is not None:
        add_dashboard_routes(app, overview)
    return app
