"""``python -m voiceops.worker [--config PATH]``: one LiveKit agent worker (one AgentServer).

Environment: ``LIVEKIT_API_SECRET`` (or ``livekit.api_secret_file`` / a systemd credential),
``LETTA_API_KEY`` for the agent, ``VOICEOPS_EVENTS`` and ``VOICEOPS_PROCESS`` from the
supervisor. A configuration problem, including an entrypoint that cannot be imported, exits
78 with a message naming the key.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from voiceops import config, jwtkeys, lifeline
from voiceops.worker.entry import module_hook, resolve
from voiceops.worker.options import WorkerOptions
from voiceops.worker.server import run


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m voiceops.worker",
                                     description="Run one voiceops LiveKit agent worker.")
    parser.add_argument("--config", help="config file (default: $VOICEOPS_CONFIG, "
                        "/etc/voiceops/voiceops.toml, config/voiceops.toml)")
    return parser.parse_args(argv)


def _load_options(config_arg: str | None) -> WorkerOptions:
    path = config.resolve_path(config_arg)
    cfg = config.load(path)
    secrets = config.load_secrets(cfg)
    config.require_livekit_secret(secrets)
    resolve(cfg.workers.entrypoint)  # fail at start, naming the key, not at the first job
    check = module_hook(cfg.workers.entrypoint, "check_config")
    if check is not None:  # e.g. the voice pipeline's provider keys
        check(cfg, os.environ)
    # Job processes (forkserver children) read the same file for their own settings.
    os.environ[config.CONFIG_ENV] = str(path.resolve())
    return WorkerOptions.from_config(cfg, secrets)


def main(argv: list[str] | None = None) -> int:
    lifeline.die_with_supervisor()
    jwtkeys.silence_short_key_warning()  # the supervisor says it once
    args = _parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        opts = _load_options(args.config)
    except config.ConfigError as exc:
        print(f"voiceops.worker: {exc}", file=sys.stderr)
        return config.EX_CONFIG
    return run(opts)


if __name__ == "__main__":
    sys.exit(main())
