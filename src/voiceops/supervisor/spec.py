"""What to run: one :class:`ChildSpec` per named child, built from the config.

A spec is everything that needs a restart when it changes (argv, env, the config sections
the child reads). :class:`ChildOptions` holds what applies in place (timeouts, limits,
restart policy). The ``emulator`` kind is the hook for ``--sandbox``.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

from voiceops.config import Config, parse_listen
from voiceops.supervisor.policy import RestartPolicy

KINDS: Final = ("worker", "proxy", "emulator", "letta")
# Per-kind stop budget for children without calls; workers use workers.drain_timeout_s.
LISTENER_STOP_BUDGET_S: Final = 10.0
# Config keys the supervisor applies itself: changing them restarts no worker.
_SUPERVISOR_ONLY_WORKER_KEYS: Final = frozenset({
    "count", "command", "restart", "backoff_base_s", "backoff_max_s", "stable_after_s",
    "crashloop_failures", "crashloop_window_s", "crashloop_cooldown_s", "rss_soft_limit_mb",
    "rss_hard_limit_mb", "start_timeout_s", "standby"})
STANDBY_ENV: Final = "VOICEOPS_STANDBY"  # "1": start as a standby (registered, reporting full)


@dataclass(frozen=True)
class ChildSpec:
    """How to launch one named child; a different spec means a (rolling) restart."""

    name: str
    kind: str  # worker | proxy | emulator | letta
    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()
    config_digest: str = ""
    surge: bool = True  # a replacement may run beside the old one (not for a fixed listen port)


@dataclass(frozen=True)
class ChildOptions:
    """Applied in place on reload: no restart needed."""

    policy: RestartPolicy
    start_timeout_s: float
    drain_timeout_s: float
    rss_soft_limit_mb: int = 0
    rss_hard_limit_mb: int = 0


@dataclass(frozen=True)
class Tuning:
    """Supervisor internals that are not user config; tests shorten them through the env."""

    resource_interval_s: float = 2.0
    rss_samples: int = 3
    tick_interval_s: float = 1.0
    second_signal_budget_s: float = 10.0
    proxy_backoff_max_s: float = 5.0
    debug_stall_tick_s: float = 0.0  # >0: SIGUSR2 stalls the reconcile loop (watchdog tests)

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Tuning:
        def num(key: str, default: float) -> float:
            raw = env.get(key, "")
            try:
                return float(raw) if raw else default
            except ValueError:
                return default
        return cls(
            resource_interval_s=max(
                0.1, num("VOICEOPS_RESOURCE_INTERVAL_S", cls.resource_interval_s)
            ),
            rss_samples=max(1, int(num("VOICEOPS_RSS_SAMPLES", cls.rss_samples))),
            tick_interval_s=max(0.05, num("VOICEOPS_TICK_INTERVAL_S", cls.tick_interval_s)),
            second_signal_budget_s=num(
                "VOICEOPS_SECOND_SIGNAL_BUDGET_S", cls.second_signal_budget_s
            ),
            debug_stall_tick_s=num("VOICEOPS_DEBUG_STALL_TICK_S", 0.0),
        )


def _digest(*parts: object) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


def _base_env(cfg: Config, sandbox: bool) -> tuple[tuple[str, str], ...]:
    env = {"VOICEOPS_CONFIG": str(Path(cfg.source).resolve()) if cfg.source else ""}
    if sandbox:
        env["VOICEOPS_SANDBOX"] = "1"
    return tuple(sorted(env.items()))


def worker_spec(cfg: Config, index: int, *, sandbox: bool = False) -> ChildSpec:
    w = {k: v for k, v in asdict(cfg.workers).items() if k not in _SUPERVISOR_ONLY_WORKER_KEYS}
    argv = cfg.workers.command or (sys.executable, "-m", "voiceops.worker")
    env = (*_base_env(cfg, sandbox), ("VOICEOPS_WORKER_INDEX", str(index)))
    digest = _digest(cfg.livekit, cfg.agent, w, cfg.letta, cfg.voice, sandbox)
    return ChildSpec(f"worker-{index}", "worker", tuple(argv), env, digest, surge=True)


def standby_spec(cfg: Config, index: int, *, sandbox: bool = False) -> ChildSpec:
    """A warm worker that takes over a dead worker's slot; it becomes that slot's process."""
    w = worker_spec(cfg, index, sandbox=sandbox)
    env = tuple(kv for kv in w.env if kv[0] != "VOICEOPS_WORKER_INDEX")
    return replace(w, name=f"standby-{index}", env=(*env, (STANDBY_ENV, "1")))


def proxy_spec(cfg: Config, *, sandbox: bool = False) -> ChildSpec:
    argv = cfg.proxy.command or (sys.executable, "-m", "voiceops.proxy")
    digest = _digest(cfg.livekit, cfg.agent, cfg.proxy, cfg.letta, sandbox)
    # surge: the proxy binds with SO_REUSEPORT, so its replacement listens beside it and the old
    # one keeps serving until the new one is ready (or if it fails to start).
    return ChildSpec("proxy", "proxy", tuple(argv), _base_env(cfg, sandbox), digest, surge=True)


def emulator_spec(cfg: Config) -> ChildSpec:
    """The bundled LiveKit emulator for ``--sandbox``, on the host and port of ``livekit.url``.

    Its secret travels in the environment (LIVEKIT_API_SECRET), never in argv; its webhooks
    go to the proxy, so joins are reported the way a real server would report them.
    """
    parts = urlsplit(cfg.livekit.url)
    port = parts.port or (443 if parts.scheme in ("wss", "https") else 80)
    argv = [sys.executable, "-m", "voiceops", "emulator", "--host", parts.hostname or "127.0.0.1",
            "--port", str(port), "--api-key", cfg.livekit.api_key]
    if cfg.proxy.enabled:
        host, proxy_port = parse_listen("proxy.listen", cfg.proxy.listen)
        host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        argv += ["--webhook-url", f"http://{host}:{proxy_port}/livekit/webhook"]
    return ChildSpec("emulator", "emulator", tuple(argv), _base_env(cfg, True),
                     _digest(cfg.livekit, cfg.proxy.listen), surge=False)


def letta_spec(cfg: Config) -> ChildSpec:
    """The Letta stand-in for ``--sandbox``, on the host and port of ``letta.base_url``."""
    parts = urlsplit(cfg.letta.base_url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    argv = (sys.executable, "-m", "voiceops.letta_standin", "--host",
            parts.hostname or "127.0.0.1", "--port", str(port))
    return ChildSpec("letta", "letta", argv, _base_env(cfg, True), _digest(cfg.letta.base_url),
                     surge=False)


def build_specs(cfg: Config, *, sandbox: bool = False) -> list[ChildSpec]:
    """Every child except the workers' count-dependent names, in start order."""
    specs: list[ChildSpec] = []
    if sandbox:
        specs.append(emulator_spec(cfg))
        specs.append(letta_spec(cfg))
    if cfg.proxy.enabled:
        specs.append(proxy_spec(cfg, sandbox=sandbox))
    return specs


def options_for(cfg: Config, kind: str, tuning: Tuning) -> ChildOptions:
    w = cfg.workers
    if kind == "worker":
        return ChildOptions(RestartPolicy.from_config(w), w.start_timeout_s, w.drain_timeout_s,
                            w.rss_soft_limit_mb, w.rss_hard_limit_mb)
    # The proxy and the emulator are infrastructure: always restarted, with a short cap.
    policy = replace(RestartPolicy.from_config(w, backoff_max_s=tuning.proxy_backoff_max_s),
                     restart="always")
    return ChildOptions(policy, w.start_timeout_s, LISTENER_STOP_BUDGET_S)
