"""voiceops configuration: TOML → one frozen, typed :class:`Config`.

Unknown keys, wrong types and impossible values raise :class:`ConfigError` naming the key
path (``workers.count: must be >= 0``). Secrets never live in the TOML: they come from the
environment or from files (``$CREDENTIALS_DIRECTORY`` under systemd), see :func:`load_secrets`.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tomllib
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

EX_CONFIG: Final = 78  # sysexits.h; the systemd unit has RestartPreventExitStatus=78
DEFAULT_PATHS: Final = (Path("/etc/voiceops/voiceops.toml"), Path("config/voiceops.toml"))
SANDBOX_API_SECRET: Final = "secret"  # livekit-server --dev
CONFIG_ENV: Final = "VOICEOPS_CONFIG"
# The Letta stand-in's sample agent 'voiceops-echo': letta.default_agent_id in --sandbox when
# the config names none (voiceops.letta_standin.state.SAMPLE_AGENTS holds the same id).
SANDBOX_LETTA_AGENT_ID: Final = "agent-5e1f0c2a-8b3d-4c6e-9f10-1a2b3c4d5e01"
SANDBOX_ENV: Final = "VOICEOPS_SANDBOX"  # set to "1" in every --sandbox child's environment
# Any duration or TTL above ten years is a typo, and overflows timedelta/asyncio further up.
MAX_SECONDS: Final = 10 * 365 * 86400.0
# A worker is one AgentServer plus its idle job processes: budget per worker for workers.count.
WORKER_BUDGET_MB: Final = 256
WORKERS_PER_CPU: Final = 16


class ConfigError(ValueError):
    """A configuration problem; the message starts with the key path."""


@dataclass(frozen=True)
class LiveKitConfig:
    url: str = "ws://127.0.0.1:7880"
    api_key: str = "devkey"
    api_secret_file: str = ""


@dataclass(frozen=True)
class AgentConfig:
    name: str = "letta-voice-agent"


@dataclass(frozen=True)
class WorkersConfig:
    count: int = 2
    command: tuple[str, ...] = ()
    entrypoint: str = "voiceops.agent:entrypoint"
    num_idle_processes: int = 2
    load_threshold: float = 0.7
    max_jobs: int = 0  # 0: load is the machine's CPU; N: load reaches LiveKit's 0.7 at N jobs
    start_timeout_s: float = 60.0
    drain_timeout_s: float = 600.0
    restart: str = "always"
    backoff_base_s: float = 1.0
    backoff_max_s: float = 60.0
    stable_after_s: float = 120.0
    crashloop_failures: int = 5
    crashloop_window_s: float = 600.0
    crashloop_cooldown_s: float = 600.0
    rss_soft_limit_mb: int = 0
    rss_hard_limit_mb: int = 0
    standby: int = 1  # warm workers, registered but full, that take over a dead worker's slot
    spread_jobs: bool = True  # a worker ahead of a ready peer passes an offer on (fleet.py)


@dataclass(frozen=True)
class ProxyConfig:
    enabled: bool = True
    listen: str = "127.0.0.1:9000"
    command: tuple[str, ...] = ()
    allowed_origins: tuple[str, ...] = ("http://127.0.0.1:9000", "http://localhost:9000")
    api_keys_file: str = ""
    token_api_keys_file: str = ""  # set: POST /api/token needs a key from this file instead
    token_ttl_s: float = 3600.0
    max_body_bytes: int = 65536
    rate_limit_per_minute: int = 120


@dataclass(frozen=True)
class MetricsConfig:
    listen: str = "127.0.0.1:9310"


@dataclass(frozen=True)
class ControlConfig:
    socket: str = ""


@dataclass(frozen=True)
class MonitorConfig:
    job_request_deadline_s: float = 10.0
    redispatch_unanswered: bool = False


@dataclass(frozen=True)
class HeartbeatConfig:
    enabled: bool = True
    interval_s: float = 30.0
    timeout_s: float = 10.0
    mode: str = "request"


@dataclass(frozen=True)
class AlertsConfig:
    webhooks: tuple[str, ...] = ()
    alertmanager_url: str = ""


@dataclass(frozen=True)
class LettaConfig:
    base_url: str = "http://127.0.0.1:8283"
    default_agent_id: str = ""
    first_token_timeout_s: float = 8.0
    stream_idle_timeout_s: float = 10.0
    conversations: bool = True
    apology: str = "Sorry, I could not think of an answer just now. Please say that again."


VOICE_STT: Final = ("deepgram", "openai", "pocketsphinx")
VOICE_TTS: Final = ("cartesia", "openai", "piper")


@dataclass(frozen=True)
class VoiceConfig:
    stt: str = "deepgram"
    tts: str = "cartesia"


@dataclass(frozen=True)
class Config:
    livekit: LiveKitConfig = field(default_factory=LiveKitConfig)
    agent: AgentConfig = field(default_factory=AgentConfig)
    workers: WorkersConfig = field(default_factory=WorkersConfig)
    proxy: ProxyConfig = field(default_factory=ProxyConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    control: ControlConfig = field(default_factory=ControlConfig)
    monitor: MonitorConfig = field(default_factory=MonitorConfig)
    heartbeat: HeartbeatConfig = field(default_factory=HeartbeatConfig)
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    letta: LettaConfig = field(default_factory=LettaConfig)
    voice: VoiceConfig = field(default_factory=VoiceConfig)
    source: str = ""  # the file it was read from ("" for defaults)


@dataclass(frozen=True)
class Secrets:
    """Secrets resolved from the environment or files; never logged, never in errors."""

    livekit_api_secret: str = field(default="", repr=False)
    letta_api_key: str = field(default="", repr=False)
    proxy_api_keys: frozenset[str] = field(default=frozenset(), repr=False)
    token_api_keys: frozenset[str] = field(default=frozenset(), repr=False)


_SECTIONS: Final = {f.name: f.type for f in dataclasses.fields(Config) if f.name != "source"}


def resolve_path(cli_path: str | None, env: Mapping[str, str] = os.environ) -> Path:
    """``--config``, else ``$VOICEOPS_CONFIG``, else /etc/voiceops/voiceops.toml, else
    config/voiceops.toml."""
    if cli_path:
        return Path(cli_path)
    if env.get("VOICEOPS_CONFIG"):
        return Path(env["VOICEOPS_CONFIG"])
    for candidate in DEFAULT_PATHS:
        if candidate.exists():
            return candidate
    return DEFAULT_PATHS[-1]


def load(path: str | os.PathLike[str], *, sandbox: bool | None = None) -> Config:
    """Read and validate a config file; ``sandbox`` (default: ``$VOICEOPS_SANDBOX``) fills in
    the sandbox's defaults (:func:`with_sandbox_defaults`)."""
    cfg = _load(path)
    if sandbox is None:
        sandbox = os.environ.get(SANDBOX_ENV) == "1"
    return with_sandbox_defaults(cfg) if sandbox else cfg


def with_sandbox_defaults(cfg: Config) -> Config:
    """In --sandbox, a dispatch without an agent id talks to the Letta stand-in's sample agent."""
    if cfg.letta.default_agent_id:
        return cfg
    return dataclasses.replace(cfg, letta=dataclasses.replace(
        cfg.letta, default_agent_id=SANDBOX_LETTA_AGENT_ID))


def _load(path: str | os.PathLike[str]) -> Config:
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config: file not found: {p}") from None
    except OSError as exc:
        raise ConfigError(f"config: cannot read {p}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config: {p} is not valid TOML: {exc}") from None
    return from_dict(data, source=str(p))


def from_dict(data: Mapping[str, Any], source: str = "") -> Config:
    """Build a validated :class:`Config` from parsed TOML."""
    unknown = sorted(set(data) - set(_SECTIONS))
    if unknown:
        raise ConfigError(f"{unknown[0]}: unknown section (known: {', '.join(_SECTIONS)})")
    sections: dict[str, Any] = {}
    hints = typing.get_type_hints(Config)
    for name in _SECTIONS:
        raw = data.get(name, {})
        if not isinstance(raw, dict):
            raise ConfigError(f"{name}: must be a table")
        sections[name] = _build_section(name, hints[name], raw)
    cfg = Config(**sections, source=source)
    validate(cfg)
    return cfg


def _build_section(section: str, cls: type[Any], raw: Mapping[str, Any]) -> Any:
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(
            f"{section}.{unknown[0]}: unknown key (known: {', '.join(sorted(known))})"
        )
    values = {key: _coerce(f"{section}.{key}", hints[key], value) for key, value in raw.items()}
    return cls(**values)


def _coerce(key: str, hint: Any, value: Any) -> Any:
    """Check ``value`` against the field type; ints are accepted where floats are expected."""
    if typing.get_origin(hint) is tuple:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{key}: must be a list of strings")
        return tuple(value)
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: must be true or false, not {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: must be a number, not {value!r}")
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if not math.isfinite(number) or abs(number) > MAX_SECONDS:
            raise ConfigError(f"{key}: must be a finite number of at most {MAX_SECONDS:.0f}, "
                              f"not {value!r}")
        return number
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: must be an integer, not {value!r}")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: must be a string, not {value!r}")
        return value
    raise ConfigError(f"{key}: unsupported type {hint!r}")  # pragma: no cover - schema bug


def parse_listen(key: str, value: str) -> tuple[str, int]:
    """``"127.0.0.1:9000"`` → ``("127.0.0.1", 9000)``; ``[::1]:9000`` for IPv6."""
    host, sep, port = value.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"{key}: must be HOST:PORT with a port 0-65535, not {value!r}")
    return host, int(port)


def validate(cfg: Config) -> None:
    """Impossible values; each error names its key."""
    checks: list[tuple[bool, str]] = [
        (urlsplit(cfg.livekit.url).scheme in ("ws", "wss", "http", "https")
         and bool(urlsplit(cfg.livekit.url).hostname),
         "livekit.url: must be a ws://, wss://, http:// or https:// URL with a host"),
        (bool(cfg.livekit.api_key), "livekit.api_key: must not be empty"),
        (bool(cfg.agent.name.strip()), "agent.name: must not be empty (named workers need a name)"),
        (cfg.workers.count >= 0, "workers.count: must be >= 0"),
        (cfg.workers.count <= max_workers(),
         (f"workers.count: {cfg.workers.count} is more than this machine can run "
          f"(at most {max_workers()}: {WORKERS_PER_CPU} per CPU, {WORKER_BUDGET_MB} MB each)")),
        (":" in cfg.workers.entrypoint, "workers.entrypoint: must be 'module:function'"),
        (cfg.workers.num_idle_processes >= 0, "workers.num_idle_processes: must be >= 0"),
        (cfg.workers.standby >= 0, "workers.standby: must be >= 0"),
        (0 < cfg.workers.load_threshold <= 1, "workers.load_threshold: must be in (0, 1]"),
        (cfg.workers.max_jobs >= 0, "workers.max_jobs: must be >= 0 (0: load is the CPU)"),
        (cfg.workers.restart in ("always", "on-failure", "never"),
         "workers.restart: must be one of always, on-failure, never"),
        (cfg.workers.backoff_base_s > 0, "workers.backoff_base_s: must be > 0"),
        (cfg.workers.backoff_max_s >= cfg.workers.backoff_base_s,
         "workers.backoff_max_s: must be >= workers.backoff_base_s"),
        (cfg.workers.crashloop_failures >= 1, "workers.crashloop_failures: must be >= 1"),
        (cfg.workers.rss_soft_limit_mb >= 0, "workers.rss_soft_limit_mb: must be >= 0"),
        (cfg.workers.rss_hard_limit_mb >= 0, "workers.rss_hard_limit_mb: must be >= 0"),
        (not (cfg.workers.rss_soft_limit_mb and cfg.workers.rss_hard_limit_mb)
         or cfg.workers.rss_hard_limit_mb > cfg.workers.rss_soft_limit_mb,
         "workers.rss_hard_limit_mb: must be above workers.rss_soft_limit_mb"),
        (cfg.proxy.max_body_bytes > 0, "proxy.max_body_bytes: must be > 0"),
        (cfg.proxy.rate_limit_per_minute >= 0, "proxy.rate_limit_per_minute: must be >= 0"),
        (all(o.startswith(("http://", "https://")) for o in cfg.proxy.allowed_origins)
         and "*" not in cfg.proxy.allowed_origins,
         "proxy.allowed_origins: must list http(s) origins (no '*')"),
        (cfg.heartbeat.mode in ("request", "join"), "heartbeat.mode: must be request or join"),
        (cfg.heartbeat.timeout_s < cfg.heartbeat.interval_s,
         ("heartbeat.timeout_s: must be below heartbeat.interval_s (each probe must end before "
          "the next, so two failed probes fire HeartbeatFailed within two intervals)")),
        (all(u.startswith(("http://", "https://")) for u in cfg.alerts.webhooks),
         "alerts.webhooks: must be http(s) URLs"),
        (urlsplit(cfg.letta.base_url).scheme in ("http", "https"),
         "letta.base_url: must be an http(s) URL"),
        (cfg.voice.stt in VOICE_STT, f"voice.stt: must be one of {', '.join(VOICE_STT)}"),
        (cfg.voice.tts in VOICE_TTS, f"voice.tts: must be one of {', '.join(VOICE_TTS)}"),
        (bool(cfg.letta.apology.strip()), "letta.apology: must not be empty (callers hear it)"),
    ]
    checks += _positive(cfg)
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)
    parse_listen("proxy.listen", cfg.proxy.listen)
    parse_listen("metrics.listen", cfg.metrics.listen)


def _positive(cfg: Config) -> list[tuple[bool, str]]:
    keys = ("workers.start_timeout_s", "workers.drain_timeout_s", "workers.stable_after_s",
            "workers.crashloop_window_s", "workers.crashloop_cooldown_s", "proxy.token_ttl_s",
            "monitor.job_request_deadline_s", "heartbeat.interval_s", "heartbeat.timeout_s",
            "letta.first_token_timeout_s", "letta.stream_idle_timeout_s")
    out = []
    for key in keys:
        section, name = key.split(".")
        out.append((getattr(getattr(cfg, section), name) > 0, f"{key}: must be > 0"))
    return out


def max_workers() -> int:
    """The most workers this machine can hold: bounded by its CPUs and its memory."""
    import psutil  # only here: config is imported by every child, most never need it

    by_cpu = WORKERS_PER_CPU * (os.cpu_count() or 1)
    by_memory = psutil.virtual_memory().total // (WORKER_BUDGET_MB * 1024 * 1024)
    return max(1, min(by_cpu, int(by_memory)))


def _read_secret_file(key: str, path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"{key}: cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{key}: {path} is not UTF-8 text") from None


def _read_keys_file(key: str, path: str) -> frozenset[str]:
    text = _read_secret_file(key, path)
    keys = frozenset(line.strip() for line in text.splitlines()
                     if line.strip() and not line.lstrip().startswith("#"))
    if not keys:
        raise ConfigError(f"{key}: the file lists no keys")
    return keys


def load_secrets(
    cfg: Config, env: Mapping[str, str] = os.environ, *, sandbox: bool = False
) -> Secrets:
    """Resolve secrets: environment first, then files, then ``$CREDENTIALS_DIRECTORY``."""
    creds = env.get("CREDENTIALS_DIRECTORY", "")

    def from_creds(name: str) -> str:
        path = Path(creds, name) if creds else None
        if path is None or not path.is_file():
            return ""
        return _read_secret_file(f"$CREDENTIALS_DIRECTORY/{name}", str(path))

    lk = env.get("LIVEKIT_API_SECRET", "")
    if not lk and cfg.livekit.api_secret_file:
        lk = _read_secret_file("livekit.api_secret_file", cfg.livekit.api_secret_file)
    lk = lk or from_creds("livekit-api-secret") or (SANDBOX_API_SECRET if sandbox else "")
    letta = env.get("LETTA_API_KEY", "") or from_creds("letta-api-key")
    keys: frozenset[str] = frozenset()
    if cfg.proxy.api_keys_file:
        keys = _read_keys_file("proxy.api_keys_file", cfg.proxy.api_keys_file)
    token_keys: frozenset[str] = frozenset()
    if cfg.proxy.token_api_keys_file:
        token_keys = _read_keys_file("proxy.token_api_keys_file", cfg.proxy.token_api_keys_file)
    return Secrets(livekit_api_secret=lk, letta_api_key=letta, proxy_api_keys=keys,
                   token_api_keys=token_keys)


def read_secret(env_var: str, credential: str, env: Mapping[str, str] = os.environ) -> str:
    """One secret by the usual rule: the environment, else ``$CREDENTIALS_DIRECTORY/credential``."""
    value = env.get(env_var, "")
    creds = env.get("CREDENTIALS_DIRECTORY", "")
    path = Path(creds, credential) if creds and not value else None
    if path is not None and path.is_file():
        value = path.read_text(encoding="utf-8").strip()
    return value


def require_livekit_secret(secrets: Secrets) -> None:
    if not secrets.livekit_api_secret:
        raise ConfigError("livekit.api_secret_file: no LiveKit API secret: set LIVEKIT_API_SECRET, "
                          "livekit.api_secret_file, or a 'livekit-api-secret' credential")


def http_url(livekit_url: str) -> str:
    """The Twirp base URL for a LiveKit ws(s) URL."""
    parts = urlsplit(livekit_url)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    return parts._replace(scheme=scheme).geturl().rstrip("/")

