"""``python -m voiceops.letta_standin --host 127.0.0.1 --port 8283``: the Letta stand-in."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence

from voiceops import lifeline
from voiceops.letta_standin.server import serve


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m voiceops.letta_standin",
                                description="A Letta REST stand-in with sample agents.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8283, help="0 picks a free port (printed)")
    p.add_argument("--token-delay-s", type=float, default=0.02,
                   help="pause between streamed tokens, like an LLM's")
    return p


async def _run(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await serve(args.host, args.port, token_delay_s=args.token_delay_s, stop=stop)


def main(argv: Sequence[str] | None = None) -> int:
    lifeline.die_with_supervisor()
    args = build_parser().parse_args(argv)
    if args.token_delay_s < 0:
        build_parser().error("--token-delay-s: must be >= 0")
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(_run(args))
    except OSError as exc:
        logging.getLogger("voiceops.letta_standin").error(
            "listen_failed host=%s port=%s error=%r", args.host, args.port, exc.strerror or exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
