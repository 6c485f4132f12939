"""``python -m voiceops.proxy [--config PATH]``: the dispatch proxy (exit 78 on a config error)."""

from __future__ import annotations

import argparse
import asyncio
import sys
import warnings
from collections.abc import Callable

from voiceops import lifeline
from voiceops.config import (
    EX_CONFIG,
    ConfigError,
    load,
    load_secrets,
    require_livekit_secret,
    resolve_path,
)

from . import logs
from .options import ProxySecrets, options_from_config
from .server import ListenError, serve


def fast_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop where installed: it halves the proxy's own cost per request (bench/)."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def main(argv: list[str] | None = None) -> int:
    lifeline.die_with_supervisor()
    parser = argparse.ArgumentParser(prog="python -m voiceops.proxy",
                                     description="voiceops dispatch proxy")
    parser.add_argument("--config", help="config file (default: $VOICEOPS_CONFIG, "
                        "/etc/voiceops/voiceops.toml, config/voiceops.toml)")
    args = parser.parse_args(argv)
    logs.setup()
    # PyJWT warns on every token signed with a short key such as the public --dev "secret".
    warnings.filterwarnings("ignore", message="The HMAC key is")
    try:
        cfg = load(resolve_path(args.config))
        secrets = load_secrets(cfg)
        require_livekit_secret(secrets)
        options = options_from_config(cfg)
    except ConfigError as exc:
        print(f"voiceops proxy: {exc}", file=sys.stderr)
        return EX_CONFIG
    try:
        with asyncio.Runner(loop_factory=fast_loop_factory()) as runner:
            runner.run(serve(options, ProxySecrets.from_secrets(secrets)))
    except ListenError as exc:  # names proxy.listen: a config error like any other
        print(f"voiceops proxy: {exc}", file=sys.stderr)
        return EX_CONFIG
    return 0


if __name__ == "__main__":
    sys.exit(main())
