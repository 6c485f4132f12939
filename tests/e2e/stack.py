"""A voiceops stack for end-to-end tests: ``voiceops run`` with real workers and proxy.

LiveKit is the ``livekit_server`` fixture: the emulator, or a real server when LIVEKIT_URL is
set. Everything binds loopback on free ports; ``close()`` asserts nothing is left behind.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from voiceops.testing.harness import Supervisor, free_port, wait_for, write_toml

AGENT = "e2e-agent"


def stack_config(tmp: Path, lk: Any, *, workers: int = 1, **overrides: Any
                 ) -> dict[str, dict[str, Any]]:
    """A config for ``lk`` (an object with url and api_key) with test-sized timings."""
    sections: dict[str, dict[str, Any]] = {
        "livekit": {"url": lk.url, "api_key": lk.api_key},
        "agent": {"name": AGENT},
        "workers": {"count": workers, "num_idle_processes": 1, "load_threshold": 1.0,
                    "max_jobs": 20,
                    "drain_timeout_s": 15, "start_timeout_s": 60, "backoff_base_s": 0.2,
                    "backoff_max_s": 1.0, "standby": 0},
        "proxy": {"listen": f"127.0.0.1:{free_port()}"},
        "metrics": {"listen": f"127.0.0.1:{free_port()}"},
        "control": {"socket": str(tmp / "run" / "control.sock")},
        "monitor": {"job_request_deadline_s": 5},
        "heartbeat": {"interval_s": 5, "timeout_s": 4},
        "voice": {"stt": "pocketsphinx", "tts": "piper"},  # the product, on offline speech
        # the --sandbox Letta stand-in listens here (never the fixed 8283)
        "letta": {"base_url": f"http://127.0.0.1:{free_port()}"},
    }
    for key, value in overrides.items():
        section, _, name = key.partition("__")
        sections.setdefault(section, {})[name] = value
    return sections


@dataclass
class Stack:
    sup: Supervisor
    sections: dict[str, dict[str, Any]]
    out: Path

    @classmethod
    def start(cls, tmp: Path, sections: dict[str, dict[str, Any]], lk: Any, *,
              env: dict[str, str] | None = None, sandbox: bool = False) -> Stack:
        out = tmp / "out"
        out.mkdir(exist_ok=True)
        cfg = write_toml(tmp / "voiceops.toml", sections)
        metrics_port = int(sections["metrics"]["listen"].rsplit(":", 1)[1])
        # The default agent leaves a room no human joined after this: jobs end, drains are short.
        full_env = {"VOICEOPS_E2E_OUT": str(out), "VOICEOPS_AGENT_NO_HUMAN_TIMEOUT_S": "3",
                    **(env or {})}
        if lk is not None:
            full_env["LIVEKIT_API_SECRET"] = lk.api_secret
        sup = Supervisor(tmp, cfg, metrics_port, env=full_env,
                         extra_args=("--sandbox",) if sandbox else ())
        stack = cls(sup, sections, out)
        try:
            stack.wait_ready()
        except BaseException:
            stack.close()
            raise
        return stack

    @property
    def proxy_url(self) -> str:
        return "http://" + self.sections["proxy"]["listen"]

    def wait_ready(self, timeout_s: float = 90.0) -> None:
        wait_for(lambda: (st := self.sup.status()) and st.get("ready"), timeout_s,
                 "the supervisor to report ready (workers registered, proxy listening)")

    def dispatch(self, room: str, **body: Any) -> tuple[int, dict[str, Any]]:
        return self.post("/api/dispatch-agent", {"room": room, **body})

    def post(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """POST JSON to the proxy: (status, answer)."""
        req = urllib.request.Request(
            self.proxy_url + path, data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"}, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")

    def timeline(self, dispatch_id: str) -> dict[str, Any] | None:
        code, data = self.sup.request("GET", f"/dispatches/{dispatch_id}")
        return data if code == 200 else None

    def wait_joined(self, dispatch_id: str, timeout_s: float = 45.0) -> dict[str, Any]:
        return wait_for(lambda: (tl := self.timeline(dispatch_id)) and
                        tl.get("joined_after_s") is not None and tl, timeout_s,
                        f"dispatch {dispatch_id} to reach JobRequest and join")

    def alert(self, name: str) -> dict[str, Any] | None:
        st = self.sup.status() or {}
        return next((a for a in st.get("alerts", []) if a.get("alert") == name), None)

    def close(self) -> None:
        self.sup.close()
