"""Reads each worker's livekit-agents health endpoint (GET /worker) for the diagnoses.

livekit-agents serves ``WorkerInfo`` as proto JSON there (``agent_name``, ``active_jobs``,
``worker_load``; fields at their default value are omitted). This is the name LiveKit was
told at registration, so it catches a worker program that hard-codes another name.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

import aiohttp

from voiceops.monitor.diagnose import WorkerInfo

logger = logging.getLogger("voiceops.monitor")


async def fetch_one(session: aiohttp.ClientSession, process: str, port: int,
                    timeout_s: float) -> WorkerInfo | None:
    url = f"http://127.0.0.1:{port}/worker"
    try:
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=timeout_s)) as resp:
            if resp.status != 200:
                return None
            body = await resp.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        logger.debug("worker_info_failed process=%s port=%d error=%s", process, port,
                     type(exc).__name__)
        return None
    if not isinstance(body, dict):
        return None
    return WorkerInfo(process=process, agent_name=str(body.get("agent_name", "")),
                      active_jobs=int(body.get("active_jobs", 0) or 0),
                      load=float(body.get("worker_load", 0.0) or 0.0))


async def fetch_all(session: aiohttp.ClientSession, ports: Mapping[str, int],
                    timeout_s: float = 1.0) -> list[WorkerInfo]:
    """Every worker that answers within ``timeout_s``; silent ones are left out."""
    results = await asyncio.gather(*(fetch_one(session, name, port, timeout_s)
                                     for name, port in ports.items()))
    return [r for r in results if r is not None]
