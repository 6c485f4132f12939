"""`python -m voiceops.emulator` / `voiceops emulator`: the emulator in the foreground."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import warnings
from collections.abc import Sequence

from voiceops import lifeline

from .options import DEV_API_KEY, DEV_API_SECRET, EmulatorOptions
from .server import serve

_DEFAULTS = EmulatorOptions()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="voiceops emulator",
        description="LiveKit protocol emulator (a stand-in for livekit-server --dev).",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=7880, help="0 picks a free port (printed on stdout)")
    p.add_argument("--api-key", default=os.environ.get("LIVEKIT_API_KEY", DEV_API_KEY))
    p.add_argument(
        "--api-secret",
        default=None,
        help="default: $LIVEKIT_API_SECRET, else the --dev secret",
    )
    p.add_argument("--webhook-url", action="append", default=[], dest="webhook_urls")
    p.add_argument(
        "--availability-timeout-s",
        type=float,
        default=_DEFAULTS.availability_timeout_s,
        help="JobRequest deadline; the Go server's is psrpc's 3 s (a longer one departs from it)",
    )
    p.add_argument("--empty-timeout-s", type=int, default=_DEFAULTS.empty_timeout_s)
    p.add_argument("--departure-timeout-s", type=int, default=_DEFAULTS.departure_timeout_s)
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return p


async def _run(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)  # handlers only enqueue; shutdown runs in serve()
    await serve(
        args.host,
        args.port,
        args.api_key,
        args.api_secret or os.environ.get("LIVEKIT_API_SECRET", DEV_API_SECRET),
        tuple(args.webhook_urls),
        stop=stop,
        availability_timeout_s=args.availability_timeout_s,
        empty_timeout_s=args.empty_timeout_s,
        departure_timeout_s=args.departure_timeout_s,
    )


def main(argv: Sequence[str] | None = None) -> int:
    lifeline.die_with_supervisor()
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.log_level != "DEBUG":
        for noisy in ("aiohttp.access", "aioice", "aiortc"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    # The --dev secret is short on purpose (it is public); PyJWT would warn on every token.
    warnings.filterwarnings("ignore", message="The HMAC key is")
    try:
        asyncio.run(_run(args))
    except ValueError as exc:  # bad option values (EmulatorOptions validation)
        parser.error(str(exc))
    except OSError as exc:
        logging.getLogger("voiceops.emulator").error(
            "listen_failed host=%s port=%s error=%r", args.host, args.port, str(exc)
        )
        return 1
    return 0
