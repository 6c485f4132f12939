"""One turn against Letta: read the SSE stream with deadlines, forward assistant text, classify.

Failure kinds (an operator fixes each differently):
- error: Letta refused (HTTP status, an ``error_message`` event, an SSE error) or was unreachable
  before it answered, or the turn ended with no assistant text;
- timeout: no assistant token within ``first_token_timeout_s`` (pings do not count);
- dropped: the stream ended without a ``stop_reason``, broke off, or went silent for longer
  than ``stream_idle_timeout_s`` after the first token.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import letta_client

from voiceops.agent.letta.events import BrainOutcome


class TurnFailed(Exception):
    """A turn that cannot give the caller an answer; ``kind`` says why."""

    def __init__(self, kind: BrainOutcome, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail


@dataclass
class TurnStats:
    """Filled in while a turn runs; read after it ends, whichever way."""

    started: float
    first_token_s: float | None = None
    chunks: int = 0
    reply_chars: int = 0
    stop_reason: str = ""


def describe(exc: BaseException) -> str:
    """Content-free: Letta's error bodies may echo the caller's words, so only the status, or
    the ``error_type`` of an SSE error event (an identifier such as ``llm_error``)."""
    if isinstance(exc, letta_client.APIStatusError):
        body = exc.body if isinstance(exc.body, dict) else {}
        kind = str(body.get("error_type", ""))
        if exc.status_code < 400 and re.fullmatch(r"[a-z_]{1,40}", kind):
            return f"error event {kind}"  # raised by letta-client for `event: error` mid-stream
        return f"HTTP {exc.status_code}"
    return type(exc).__name__


def assistant_text(event: Any) -> str:
    """The text of an ``assistant_message`` event ('' for anything else)."""
    if getattr(event, "message_type", None) != "assistant_message":
        return ""
    content = getattr(event, "content", "")
    if isinstance(content, str):
        return content
    return "".join(getattr(part, "text", "") or "" for part in content or ())


async def read_turn(open_stream: Callable[[], Awaitable[Any]], send: Callable[[str], None],
                    stats: TurnStats, *, first_token_timeout_s: float,
                    idle_timeout_s: float) -> None:
    """Open the stream and forward assistant text through ``send``; raise TurnFailed."""
    loop = asyncio.get_running_loop()
    first_deadline = loop.time() + first_token_timeout_s
    try:
        async with asyncio.timeout_at(first_deadline):
            stream = await open_stream()
    except TimeoutError:
        raise TurnFailed(BrainOutcome.TIMEOUT,
                         f"no answer within {first_token_timeout_s:g} s") from None
    except (letta_client.APIError, httpx.HTTPError) as exc:
        raise TurnFailed(BrainOutcome.ERROR, describe(exc)) from None
    try:
        await _consume(aiter(stream), send, stats, first_deadline, idle_timeout_s)
    finally:
        await stream.close()


async def _consume(events: AsyncIterator[Any], send: Callable[[str], None], stats: TurnStats,
                   first_deadline: float, idle_timeout_s: float) -> None:
    loop = asyncio.get_running_loop()
    while True:
        deadline = first_deadline if stats.first_token_s is None else loop.time() + idle_timeout_s
        try:
            async with asyncio.timeout_at(deadline):
                event = await anext(events)
        except StopAsyncIteration:
            break
        except TimeoutError:
            if stats.first_token_s is None:
                raise TurnFailed(BrainOutcome.TIMEOUT, "no first token in time") from None
            raise TurnFailed(BrainOutcome.DROPPED, "stream went silent") from None
        except letta_client.APIStatusError as exc:  # an SSE 'error' event mid-stream
            raise TurnFailed(BrainOutcome.ERROR, describe(exc)) from None
        except (letta_client.APIError, httpx.HTTPError) as exc:
            raise TurnFailed(BrainOutcome.DROPPED, describe(exc)) from None
        _apply(event, send, stats)
    if not stats.stop_reason:
        raise TurnFailed(BrainOutcome.DROPPED, "stream ended without a stop_reason")
    if not stats.chunks:
        raise TurnFailed(BrainOutcome.ERROR, f"no assistant text (stop_reason {stats.stop_reason})")


def _apply(event: Any, send: Callable[[str], None], stats: TurnStats) -> None:
    kind = getattr(event, "message_type", None)
    if kind == "error_message":
        kind = str(getattr(event, "error_type", "") or "")
        raise TurnFailed(BrainOutcome.ERROR, f"error_message {kind}".strip())
    if kind == "stop_reason":
        stats.stop_reason = str(getattr(event, "stop_reason", "") or "unknown")
        return
    text = assistant_text(event)
    if not text:
        return
    if stats.first_token_s is None:
        stats.first_token_s = time.perf_counter() - stats.started
    stats.chunks += 1
    stats.reply_chars += len(text)
    send(text)
