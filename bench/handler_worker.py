"""A voiceops worker (the real WorkerRuntime and request handler) whose event loop is kept busy.

``python -m bench.handler_worker --url URL --agent-name NAME --hog-ms 100 --gap-ms 10``: a
task blocks the loop for hog-ms, yields for gap-ms, forever (hog-ms 0: an idle loop). The
worker counts jobs as its load (max_jobs), so this busy machine's CPU does not stop LiveKit
from offering it jobs. Run by bench_handler; not a product entry point.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time

from voiceops.worker.options import WorkerOptions
from voiceops.worker.server import WorkerRuntime


async def _hog(hog_s: float, gap_s: float) -> None:
    while True:
        time.sleep(hog_s)  # noqa: ASYNC251 - blocks the event loop on purpose: the busy loop under test
        await asyncio.sleep(gap_s)


async def _main(args: argparse.Namespace) -> int:
    opts = WorkerOptions(
        ws_url=args.url, api_key=args.api_key, api_secret=args.api_secret,
        agent_name=args.agent_name, entrypoint="voiceops.agent:entrypoint",
        num_idle_processes=0, load_threshold=float("inf"), drain_timeout_s=5, max_jobs=20,
    )
    runtime = WorkerRuntime(opts, emit=lambda event: True)
    hog = asyncio.create_task(_hog(args.hog_ms / 1000, args.gap_ms / 1000)) if args.hog_ms else None
    try:
        return await runtime.run()
    finally:
        if hog is not None:
            hog.cancel()


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--api-key", default="devkey")
    p.add_argument("--api-secret", default="secret")
    p.add_argument("--agent-name", required=True)
    p.add_argument("--hog-ms", type=float, default=0)
    p.add_argument("--gap-ms", type=float, default=10)
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    return asyncio.run(_main(args))


if __name__ == "__main__":
    sys.exit(main())
