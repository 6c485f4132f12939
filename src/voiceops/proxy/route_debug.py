"""GET /debug: the debug page, its own script and style, and the vendored LiveKit JS SDK.

Nothing the page runs is inline, so the Content-Security-Policy can forbid inline code and
every origin but this proxy and the LiveKit server the page joins (its token's URL).
"""

from __future__ import annotations

import gzip
import importlib.resources
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import urlsplit

from aiohttp import web

from .errors import ApiError
from .vendor import BUNDLE, PACKAGE, ROUTE_PREFIX, Sdk, find_sdk

PAGE: Final = "debug.html"
# The page's own files, served at /debug/static/NAME (an allow-list: no path from the URL).
OWN_FILES: Final = {"debug.css": "text/css", "debug.js": "text/javascript",
                    "debug-ui.js": "text/javascript", "debug-audio.js": "text/javascript",
                    "debug-api.js": "text/javascript",
                    "debug-room.js": "text/javascript"}
SDK_MARKER: Final = "<!-- livekit-client -->"
IMMUTABLE: Final = "public, max-age=31536000, immutable"
COMMON_HEADERS: Final = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}


def content_security_policy(livekit_url: str) -> str:
    """Scripts and styles from this proxy only; connections to it and to LiveKit."""
    parts = urlsplit(livekit_url)
    secure = parts.scheme in ("wss", "https")
    hosts = [f"{'wss' if secure else 'ws'}://{parts.netloc}",
             f"{'https' if secure else 'http'}://{parts.netloc}"] if parts.netloc else []
    return "; ".join([
        "default-src 'none'", "script-src 'self'", "style-src 'self'",
        "connect-src " + " ".join(["'self'", *hosts]), "img-src 'self' data:",
        "base-uri 'none'", "form-action 'none'", "frame-ancestors 'none'"])


@dataclass
class DebugAssets:
    """The page and its files, read once (they ship with the package; the SDK with npm)."""

    csp: str
    sdk: Sdk | None = None
    page: str = ""
    own: dict[str, bytes] = field(default_factory=dict)
    sdk_body: bytes = b""
    sdk_gzip: bytes = b""

    @classmethod
    def load(cls, livekit_url: str) -> DebugAssets:
        static = importlib.resources.files("voiceops.proxy") / "static"
        assets = cls(content_security_policy(livekit_url), find_sdk())
        tag = (f'<script src="{assets.sdk.url_path}"></script>' if assets.sdk else "")
        assets.page = (static / PAGE).read_text("utf-8").replace(SDK_MARKER, tag)
        assets.own = {name: (static / name).read_bytes() for name in OWN_FILES}
        if assets.sdk is not None:
            assets.sdk_body = assets.sdk.bundle.read_bytes()
            assets.sdk_gzip = gzip.compress(assets.sdk_body, 6, mtime=0)
        return assets


ASSETS = web.AppKey("voiceops_debug_assets", DebugAssets)


async def debug_page(request: web.Request) -> web.Response:
    assets = request.app[ASSETS]
    return web.Response(text=assets.page, content_type="text/html", charset="utf-8",
                        headers={"Content-Security-Policy": assets.csp,
                                 "Cache-Control": "no-store", **COMMON_HEADERS})


async def own_file(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    body = request.app[ASSETS].own.get(name)
    if body is None:
        raise ApiError(404, "not_found", "no such file")
    # no-cache: revalidated on every load, so a new release of the page is seen at once.
    return web.Response(body=body, content_type=OWN_FILES[name], charset="utf-8",
                        headers={"Cache-Control": "no-cache", **COMMON_HEADERS})


async def sdk_bundle(request: web.Request) -> web.Response:
    assets = request.app[ASSETS]
    if assets.sdk is None or request.match_info["version"] != assets.sdk.version:
        raise ApiError(404, "not_found", f"{PACKAGE} is not installed in this version "
                       "(run `npm ci` in the voiceops checkout)")
    headers = {"Cache-Control": IMMUTABLE, "Vary": "Accept-Encoding", **COMMON_HEADERS}
    body = assets.sdk_body
    if "gzip" in request.headers.get("Accept-Encoding", ""):
        body, headers["Content-Encoding"] = assets.sdk_gzip, "gzip"
    return web.Response(body=body, content_type="text/javascript", charset="utf-8",
                        headers=headers)


def add_routes(app: web.Application, livekit_url: str) -> None:
    app[ASSETS] = DebugAssets.load(livekit_url)
    app.router.add_get("/debug", debug_page)
    app.router.add_get("/debug/static/{name}", own_file)
    app.router.add_get(f"{ROUTE_PREFIX}/{PACKAGE}/{{version}}/{BUNDLE}", sdk_bundle)
