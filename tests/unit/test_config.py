"""Config: the sample file, errors that name their key, and secrets from env and files."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from voiceops import config
from voiceops.config import Config, ConfigError

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "voiceops.toml"
    path.write_text(text)
    return path


def test_sample_config_is_valid_and_equals_the_defaults() -> None:
    """config/voiceops.toml documents exactly the built-in defaults."""
    cfg = config.load(ROOT / "config" / "voiceops.toml")
    assert dataclasses.replace(cfg, source="") == Config()


def test_sample_config_documents_every_key() -> None:
    """Every key of every section appears in the sample file."""
    text = (ROOT / "config" / "voiceops.toml").read_text()
    for section in dataclasses.fields(Config):
        if section.name == "source":
            continue
        assert f"[{section.name}]" in text
        for key in dataclasses.fields(getattr(Config(), section.name)):
            assert f"\n{key.name} = " in text, f"{section.name}.{key.name} undocumented"


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ("[workers]\ncount = 'x'\n", "workers.count"),
        ("[workers]\ncount = -1\n", "workers.count"),
        ("[workers]\ncuont = 1\n", "workers.cuont"),
        ("[wrokers]\n", "wrokers"),
        ("[workers]\nrestart = 'sometimes'\n", "workers.restart"),
        ("[workers]\nload_threshold = 1.5\n", "workers.load_threshold"),
        ("[workers]\nmax_jobs = -1\n", "workers.max_jobs"),
        ("[workers]\nbackoff_max_s = 0.5\n", "workers.backoff_max_s"),
        ("[workers]\ndrain_timeout_s = 0\n", "workers.drain_timeout_s"),
        ("[workers]\ncommand = 'python worker.py'\n", "workers.command"),
        ("[proxy]\nlisten = 'localhost'\n", "proxy.listen"),
        ("[proxy]\nallowed_origins = ['*']\n", "proxy.allowed_origins"),
        ("[proxy]\nenabled = 'yes'\n", "proxy.enabled"),
        ("[livekit]\nurl = 'ftp://x'\n", "livekit.url"),
        ("[agent]\nname = ''\n", "agent.name"),
        ("[heartbeat]\nmode = 'ping'\n", "heartbeat.mode"),
        ("[metrics]\nlisten = '127.0.0.1:99999'\n", "metrics.listen"),
    ],
)
def test_bad_values_name_their_key(tmp_path: Path, toml: str, key: str) -> None:
    """Wrong types, unknown keys and impossible values raise an error starting with the key path."""
    with pytest.raises(ConfigError) as err:
        config.load(write(tmp_path, toml))
    assert str(err.value).startswith(f"{key}:"), str(err.value)


def test_invalid_toml_and_missing_file_are_config_errors(tmp_path: Path) -> None:
    """Unparsable or missing files are ConfigErrors, not tracebacks."""
    with pytest.raises(ConfigError, match="not valid TOML"):
        config.load(write(tmp_path, "[workers\n"))
    with pytest.raises(ConfigError, match="file not found"):
        config.load(tmp_path / "absent.toml")


def test_ints_are_accepted_for_seconds(tmp_path: Path) -> None:
    """A whole number where seconds are expected is a float, not an error."""
    cfg = config.load(write(tmp_path, "[workers]\ndrain_timeout_s = 5\n"))
    assert cfg.workers.drain_timeout_s == 5.0


def test_path_resolution_order(tmp_path: Path) -> None:
    """--config wins over $VOICEOPS_CONFIG, which wins over the default paths."""
    assert config.resolve_path("a.toml", {"VOICEOPS_CONFIG": "b.toml"}) == Path("a.toml")
    assert config.resolve_path(None, {"VOICEOPS_CONFIG": "b.toml"}) == Path("b.toml")
    assert config.resolve_path(None, {}) in config.DEFAULT_PATHS


def test_secrets_from_env_files_and_credentials(tmp_path: Path) -> None:
    """The LiveKit secret comes from env first, then api_secret_file, then systemd credentials."""
    secret_file = tmp_path / "lk"
    secret_file.write_text("from-file\n")
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "livekit-api-secret").write_text("from-creds")
    (creds / "letta-api-key").write_text("letta-creds")
    cfg = config.from_dict({"livekit": {"api_secret_file": str(secret_file)}})
    assert config.load_secrets(cfg, {"LIVEKIT_API_SECRET": "env"}).livekit_api_secret == "env"
    assert config.load_secrets(cfg, {}).livekit_api_secret == "from-file"
    s = config.load_secrets(Config(), {"CREDENTIALS_DIRECTORY": str(creds)})
    assert (s.livekit_api_secret, s.letta_api_key) == ("from-creds", "letta-creds")
    assert config.load_secrets(Config(), {}, sandbox=True).livekit_api_secret == "secret"
    with pytest.raises(ConfigError, match=r"^livekit\.api_secret_file:"):
        config.require_livekit_secret(config.load_secrets(Config(), {}))


def test_secrets_never_appear_in_repr(tmp_path: Path) -> None:
    """A logged Secrets object shows no secret."""
    s = config.Secrets(
        livekit_api_secret="s3cr3t", letta_api_key="k3y", proxy_api_keys=frozenset({"p"})
    )
    assert "s3cr3t" not in repr(s) and "k3y" not in repr(s)


def test_proxy_api_keys_file(tmp_path: Path) -> None:
    """Proxy keys are read one per line, comments and blanks ignored; an empty file is an error."""
    keys = tmp_path / "keys"
    keys.write_text("# browsers\nkey-one\n\nkey-two\n")
    cfg = config.from_dict({"proxy": {"api_keys_file": str(keys)}})
    assert config.load_secrets(cfg, {}).proxy_api_keys == {"key-one", "key-two"}
    keys.write_text("# none\n")
    with pytest.raises(ConfigError, match=r"^proxy\.api_keys_file:"):
        config.load_secrets(cfg, {})


def test_http_url_from_ws_url() -> None:
    """Twirp goes over http(s) at the ws(s) URL's host."""
    assert config.http_url("ws://127.0.0.1:7880") == "http://127.0.0.1:7880"
    assert config.http_url("wss://lk.example.com/") == "https://lk.example.com"


def test_check_reports_a_threshold_above_livekit_target_load() -> None:
    """`voiceops check` says a load_threshold above 0.7 is used as 0.7, and what load means."""
    from voiceops.cli.check import check_load

    high = check_load(config.from_dict({"workers": {"load_threshold": 0.9}}))
    assert high.ok and "above LiveKit's target load 0.7" in high.detail
    assert "workers use 0.7" in high.detail and "machine's CPU" in high.detail
    jobs = check_load(config.from_dict({"workers": {"max_jobs": 4}}))
    assert "load counts jobs (0.7 at workers.max_jobs = 4)" in jobs.detail
    assert "above" not in check_load(config.from_dict({"workers": {"load_threshold": 1.0}})).detail
