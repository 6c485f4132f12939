"""Debian's headless Chromium, driven over the DevTools protocol (CDP) from Python.

No browser is downloaded: the executable is ``$CHROMIUM``, else ``chromium`` on PATH
(`scripts/install-browser.sh` installs Debian's package). The microphone is Chromium's fake
capture device playing a WAV file. One websocket carries every command; replies are matched
by id and events kept for inspection. ``close()`` ends the whole browser process group and
asserts that none of its processes is left.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import psutil
from websockets.sync.client import ClientConnection, connect

from voiceops.testing.harness import wait_for
from voiceops.testing.tools import in_ci

START_TIMEOUT_S: Final = 30.0
CALL_TIMEOUT_S: Final = 30.0
MAX_EVENTS: Final = 2000
INSTALL_HINT: Final = "run scripts/install-browser.sh (Debian's chromium package)"
# Quiet, offline, permission-free: the flags a browser test on a closed network needs.
BASE_FLAGS: Final = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--no-default-browser-check", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-default-apps",
    "--disable-extensions", "--password-store=basic", "--use-mock-keychain",
    "--autoplay-policy=no-user-gesture-required", "--hide-scrollbars",
    "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
    # Local ICE candidates as 127.0.0.1, not mDNS names an emulator cannot resolve.
    "--disable-features=WebRtcHideLocalIpsWithMdns,Translate,MediaRouter,OptimizationHints",
    "--remote-debugging-port=0",
)


class BrowserError(AssertionError):
    """A CDP command failed, or a page expression threw."""


def find_chromium() -> str | None:
    configured = os.environ.get("CHROMIUM", "")
    if configured:
        return configured if os.access(configured, os.X_OK) else None
    return next((p for p in map(shutil.which, ("chromium", "chromium-browser")) if p), None)


def require_chromium() -> str:  # noqa: RET503 - pytest.skip() raises
    """The browser's path; a missing browser skips locally and fails under CI=true."""
    import pytest

    found = find_chromium()
    if found:
        return found
    message = f"Chromium not found ({INSTALL_HINT})"
    if in_ci():
        pytest.fail(message + "; CI=true requires it", pytrace=False)
    pytest.skip(message)


@dataclass
class Page:
    browser: Chromium
    session_id: str
    console: list[str] = field(default_factory=list)

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        return self.browser.call(method, params, session_id=self.session_id)

    def goto(self, url: str, timeout_s: float = 30.0) -> None:
        self.send("Page.navigate", url=url)
        wait_for(lambda: self.evaluate("document.readyState") == "complete", timeout_s,
                 f"{url} to load")

    def evaluate(self, expression: str) -> Any:
        """The value of a page expression (promises awaited); a thrown error is raised."""
        reply = self.send("Runtime.evaluate", expression=expression, awaitPromise=True,
                          returnByValue=True)
        if "exceptionDetails" in reply:
            details = reply["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise BrowserError(f"page expression failed: {text}")
        return reply.get("result", {}).get("value")

    def focus(self, selector: str) -> None:
        self.evaluate(f"document.querySelector({json.dumps(selector)}).focus()")

    def type(self, text: str) -> None:
        """Text into the focused element, as a keyboard would put it there."""
        self.send("Input.insertText", text=text)

    def press(self, key: str) -> None:
        """One key (Enter, Tab, Escape, " ") pressed and released on the focused element."""
        codes = {"Enter": 13, "Tab": 9, "Escape": 27, " ": 32}
        base = {"key": key, "code": "Space" if key == " " else key,
                "windowsVirtualKeyCode": codes[key]}
        text = {"Enter": "\r", " ": " "}.get(key)
        self.send("Input.dispatchKeyEvent", type="keyDown", **base,
                  **({"text": text} if text else {}))
        self.send("Input.dispatchKeyEvent", type="keyUp", **base)

    def screenshot(self, path: Path) -> Path:
        """The whole page as a PNG at ``path``."""
        width, height = self.evaluate("[document.documentElement.scrollWidth,"
                                      " document.documentElement.scrollHeight]")
        shot = self.send("Page.captureScreenshot", format="png", captureBeyondViewport=True,
                         clip={"x": 0, "y": 0, "width": width, "height": height, "scale": 1})
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))
        return path


class Chromium:
    """One headless browser in its own process group, with a fresh profile under ``tmp``."""

    def __init__(self, executable: str, tmp: Path, *, fake_audio: Path | None = None,
                 window: tuple[int, int] = (1200, 900)) -> None:
        self.profile = tmp / "chromium-profile"
        self.profile.mkdir(parents=True, exist_ok=True)
        self.log_path = tmp / "chromium.log"
        args = [executable, *BASE_FLAGS, f"--user-data-dir={self.profile}",
                f"--window-size={window[0]},{window[1]}"]
        if fake_audio is not None:
            # Chromium plays the file in a loop (a "%noloop" suffix would play it once).
            args.append(f"--use-file-for-fake-audio-capture={fake_audio}")
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - the child writes it until close()
        self.proc = subprocess.Popen([*args, "about:blank"], stdout=self._log,
                                     stderr=subprocess.STDOUT, process_group=0)
        self._ids = itertools.count(1)
        self.events: list[dict[str, Any]] = []
        self.seen: dict[int, psutil.Process] = {}
        self.ws: ClientConnection | None = None
        self._exits = contextlib.ExitStack()
        try:
            self.ws = self._exits.enter_context(
                connect(self._endpoint(), max_size=None, open_timeout=START_TIMEOUT_S))
        except BaseException:
            self.close()
            raise

    def _endpoint(self) -> str:
        port_file = self.profile / "DevToolsActivePort"

        def ready() -> list[str] | None:
            if self.proc.poll() is not None:
                raise BrowserError(f"Chromium exited with {self.proc.returncode}; see "
                                   f"{self.log_path}")
            lines = port_file.read_text().split() if port_file.exists() else []
            return lines if len(lines) >= 2 else None

        port, path = wait_for(ready, START_TIMEOUT_S, "Chromium's DevTools port")
        self.remember_tree()
        return f"ws://127.0.0.1:{port}{path}"

    def remember_tree(self) -> None:
        """Note every process of the browser now, so close() can check they all ended."""
        try:
            root = psutil.Process(self.proc.pid)
            for p in [root, *root.children(recursive=True)]:
                self.seen.setdefault(p.pid, p)
        except psutil.NoSuchProcess:
            pass

    def call(self, method: str, params: dict[str, Any] | None = None, *,
             session_id: str | None = None, timeout_s: float = CALL_TIMEOUT_S) -> dict[str, Any]:
        assert self.ws is not None
        msg_id = next(self._ids)
        message: dict[str, Any] = {"id": msg_id, "method": method, "params": params or {}}
        if session_id:
            message["sessionId"] = session_id
        self.ws.send(json.dumps(message))
        deadline = time.monotonic() + timeout_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError(f"no answer to {method} within {timeout_s} s")
            reply = json.loads(self.ws.recv(timeout=left))
            if reply.get("id") == msg_id:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error'].get('message')}")
                return dict(reply.get("result", {}))
            self._event(reply)

    def wait_event(self, method: str, timeout_s: float = CALL_TIMEOUT_S) -> dict[str, Any]:
        """The first event named ``method`` not taken yet (from the buffer, else the socket)."""
        assert self.ws is not None
        deadline = time.monotonic() + timeout_s
        while True:
            for i, ev in enumerate(self.events):
                if ev.get("method") == method:
                    return self.events.pop(i)
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError(f"no {method} event within {timeout_s} s")
            try:
                self._event(json.loads(self.ws.recv(timeout=left)))
            except TimeoutError:
                continue

    def _event(self, event: dict[str, Any]) -> None:
        self.events.append(event)
        del self.events[:-MAX_EVENTS]

    def new_page(self, window: tuple[int, int] = (1200, 900)) -> Page:
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})
        page = Page(self, session["sessionId"])
        for domain in ("Page.enable", "Runtime.enable"):
            page.send(domain)
        page.send("Emulation.setDeviceMetricsOverride", width=window[0], height=window[1],
                  deviceScaleFactor=1, mobile=False)
        self.remember_tree()
        return page

    def console(self) -> list[str]:
        """Console messages and uncaught exceptions of every page so far (for failure output)."""
        out = []
        for ev in self.events:
            params = ev.get("params", {})
            if ev.get("method") == "Runtime.consoleAPICalled":
                out.append(params.get("type", "") + ": " + " ".join(
                    str(a.get("value", a.get("description", ""))) for a in params.get("args", [])))
            elif ev.get("method") == "Runtime.exceptionThrown":
                details = params.get("exceptionDetails", {})
                out.append("exception: " + str(details.get("exception", {}).get(
                    "description", details.get("text", ""))))
        return out

    def close(self) -> None:
        """Close the browser (gracefully, then its process group), and check nothing is left."""
        self.remember_tree()
        if self.ws is not None:
            # already gone, or wedged: the group kill below ends it
            with contextlib.suppress(Exception):
                self.call("Browser.close", timeout_s=5)
            self._exits.close()
            self.ws = None
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        self._log.close()
        try:
            wait_for(lambda: not self.alive(), 10, "every Chromium process to end")
        except AssertionError:
            for proc in self.alive():  # do not leak into the next test, but fail this one
                proc.kill()
            raise

    def alive(self) -> list[psutil.Process]:
        return [p for p in self.seen.values() if _running(p)]


def _running(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
