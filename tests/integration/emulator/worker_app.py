"""A tiny real livekit-agents AgentServer for the emulator tests.

Run as a subprocess (one AgentServer per OS process). It appends JSON lines to the file named
by --out: registered, job_request, job_started, connected, log (agent warnings), stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import time
from typing import Any

from livekit.agents import AgentServer, JobContext, JobRequest

OUT_ENV = "VOICEOPS_TEST_WORKER_OUT"
CONNECT_ENV = "VOICEOPS_TEST_WORKER_CONNECT"


def report(event: str, **fields: Any) -> None:
    line = json.dumps({"event": event, "ts": time.time(), "pid": os.getpid(), **fields})
    with open(os.environ[OUT_ENV], "a", encoding="utf-8") as fh:
        fh.write(line + "\n")


class _WarningsToReport(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        report("log", level=record.levelname, logger=record.name, msg=record.getMessage())


async def entrypoint(ctx: JobContext) -> None:
    report(
        "job_started", job_id=ctx.job.id, dispatch_id=ctx.job.dispatch_id, room=ctx.job.room.name
    )
    if os.environ.get(CONNECT_ENV) == "1":
        await ctx.connect()
        report(
            "connected",
            job_id=ctx.job.id,
            room=ctx.room.name,
            identity=ctx.room.local_participant.identity,
        )


async def on_request(req: JobRequest) -> None:
    report(
        "job_request",
        job_id=req.job.id,
        dispatch_id=req.job.dispatch_id,
        room=req.job.room.name,
        agent_name=req.job.agent_name,
    )
    await req.accept()


def _no_load() -> float:
    return 0.0  # keep the worker AVAILABLE on a busy CI box; load is not under test here


async def run(args: argparse.Namespace) -> None:
    server = AgentServer(
        ws_url=args.url,
        api_key=args.api_key,
        api_secret=args.api_secret,
        host="127.0.0.1",
        port=0,
        num_idle_processes=args.idle,
        load_threshold=0.95,
        load_fnc=_no_load,
        max_retry=3,
    )
    server.rtc_session(entrypoint, agent_name=args.agent_name, on_request=on_request)
    server.on(
        "worker_registered", lambda worker_id, _info: report("registered", worker_id=worker_id)
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    runner = asyncio.create_task(server.run())
    stopper = asyncio.create_task(stop.wait())
    await asyncio.wait({runner, stopper}, return_when=asyncio.FIRST_COMPLETED)
    await server.aclose()
    stopper.cancel()
    await asyncio.gather(runner, stopper, return_exceptions=True)
    report("stopped")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--api-key", required=True)
    p.add_argument("--api-secret", required=True)
    p.add_argument("--agent-name", default="")
    p.add_argument("--out", required=True)
    p.add_argument("--connect", action="store_true")
    p.add_argument("--idle", type=int, default=1)
    args = p.parse_args()
    os.environ[OUT_ENV] = args.out  # inherited by the job processes
    os.environ[CONNECT_ENV] = "1" if args.connect else "0"
    logging.basicConfig(level=logging.INFO)
    handler = _WarningsToReport(level=logging.WARNING)
    logging.getLogger("livekit.agents").addHandler(handler)
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
