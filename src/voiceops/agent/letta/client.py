"""One long-lived :class:`AsyncLetta` per job process (per event loop), keyed by URL and key.

httpx connections belong to the loop that opened them, so the cache is per loop: a job
process has one loop and so one client; tests, with a loop per test, get one each.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Final

import httpx
from letta_client import AsyncLetta

# Our own first-token and idle bounds govern a turn; this only stops a wedged socket.
HTTP_TIMEOUT: Final = httpx.Timeout(120.0, connect=5.0)

_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[str, str], AsyncLetta]]
_clients = weakref.WeakKeyDictionary()


def shared_client(base_url: str, api_key: str | None) -> AsyncLetta:
    """The process's client for this server and key (created on first use, never retried)."""
    per_loop = _clients.setdefault(asyncio.get_running_loop(), {})
    key = (base_url.rstrip("/"), api_key or "")
    client = per_loop.get(key)
    if client is None or client.is_closed():
        client = AsyncLetta(base_url=key[0], api_key=api_key, max_retries=0,
                            timeout=HTTP_TIMEOUT)
        per_loop[key] = client
    return client


async def close_shared_clients() -> None:
    """Close this loop's clients (a job process calls it on shutdown)."""
    per_loop = _clients.pop(asyncio.get_running_loop(), {})
    for client in per_loop.values():
        await client.close()
