"""GET /debug and its files: no inline code under a strict CSP, the vendored SDK cached for good."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pytest

from voiceops.proxy.route_debug import content_security_policy

pytestmark = pytest.mark.livekit
SDK_SRC = re.compile(
    r'<script src="(/debug/vendor/livekit-client/([^/"]+)/livekit-client\.umd\.js)">')
PINNED = json.loads((Path(__file__).resolve().parents[3] / "package.json").read_text())[
    "dependencies"]["livekit-client"]


async def test_page_has_no_inline_code_and_a_strict_csp(livekit_server_module, make_proxy):
    """Every script and style is a file of this proxy; the CSP allows nothing inline or foreign."""
    proxy = await make_proxy(livekit_server_module)
    page = await proxy.call("GET", "/debug")
    assert page.status == 200 and page.headers["Content-Type"].startswith("text/html")
    csp = page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src 'self';" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    host = livekit_server_module.url.split("://", 1)[1].rstrip("/")
    assert f"connect-src 'self' ws://{host} http://{host}" in csp
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page.text), "an inline script"
    assert not re.search(r"<style|\sstyle=|\son[a-z]+=", page.text, re.IGNORECASE), (
        "inline style/handler"
    )
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page.text, re.IGNORECASE)
    for src in re.findall(r'(?:src|href)="(/debug/static/[^"]+)"', page.text):
        own = await proxy.call("GET", src)
        assert own.status == 200 and own.headers["Cache-Control"] == "no-cache", src
    js = (await proxy.call("GET", "/debug/static/debug-api.js")).text
    for route in ("/api/agents", "/api/dispatch-agent", "/api/token", "/api/dispatches/"):
        assert route in js  # the page drives the real API


async def test_sdk_is_the_pinned_version_cached_immutably(livekit_server_module, make_proxy):
    """The page loads livekit-client from a versioned path that browsers may cache for a year."""
    proxy = await make_proxy(livekit_server_module)
    page = await proxy.call("GET", "/debug")
    found = SDK_SRC.search(page.text)
    assert found, "no livekit-client script tag: run `npm ci`"
    src, version = found.groups()
    assert version == PINNED
    sdk = await proxy.call("GET", src, headers={"Accept-Encoding": "identity"})
    assert sdk.status == 200 and sdk.headers["Content-Type"].startswith("text/javascript")
    assert sdk.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert "LivekitClient" in sdk.text[:5000]
    async with proxy.client.get(src, headers={"Accept-Encoding": "gzip"},
                                auto_decompress=False) as resp:
        assert resp.headers["Content-Encoding"] == "gzip"
        assert gzip.decompress(await resp.read()).decode() == sdk.text
    other = await proxy.call("GET", src.replace(version, "0.0.1"))
    assert other.status == 404


async def test_unknown_static_file_is_404(livekit_server_module, make_proxy):
    """Only the page's own files are served; nothing is read from a path in the URL."""
    proxy = await make_proxy(livekit_server_module)
    for path in ("/debug/static/nope.js", "/debug/static/..%2F..%2Fapp.py",
                 "/debug/static/debug.html"):
        assert (await proxy.call("GET", path)).status == 404, path


async def test_without_npm_the_page_loads_without_the_sdk(livekit_server_module, make_proxy,
                                                          monkeypatch, tmp_path):
    """With no livekit-client installed the page still loads (and says what to run)."""
    monkeypatch.setenv("VOICEOPS_NODE_MODULES", str(tmp_path))
    proxy = await make_proxy(livekit_server_module)
    page = await proxy.call("GET", "/debug")
    assert page.status == 200 and not SDK_SRC.search(page.text)
    js = (await proxy.call("GET", "/debug/static/debug.js")).text
    assert "npm ci" in js


def test_csp_follows_a_secure_livekit_url():
    """A wss:// LiveKit is reached over wss and https, nothing else."""
    csp = content_security_policy("wss://lk.example.test")
    assert "connect-src 'self' wss://lk.example.test https://lk.example.test;" in csp
