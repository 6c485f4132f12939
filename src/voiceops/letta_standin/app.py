"""The stand-in's HTTP routes: the Letta REST endpoints voiceops uses, and the fault knobs.

Letta routes (``/v1``): health, agents list/retrieve/create, agent messages (JSON or SSE),
conversations create/retrieve and conversation messages. Like the real server, streaming is
refused to clients that are not letta-client 1.x (422), ids are pattern-checked (422) and
unknown ones are 404. Admin: ``POST/DELETE /standin/faults``, ``GET /standin/state``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from typing import Any, Final

from aiohttp import web

from voiceops.letta_standin import shapes, stream
from voiceops.letta_standin.state import StandinState

STATE: Final = web.AppKey("state", StandinState)
TOKEN_DELAY: Final = web.AppKey("token_delay_s", float)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _detail(status: int, detail: Any) -> web.Response:
    return web.json_response({"detail": detail}, status=status)


@web.middleware
async def down_fault(request: web.Request, handler: Handler) -> web.StreamResponse:
    """While ``down_status`` is set, every Letta route fails the way a sick server does."""
    status = request.app[STATE].faults.down_status
    if status and request.path.startswith("/v1"):
        return _detail(status, "Service Unavailable (voiceops stand-in fault)")
    return await handler(request)


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json() if request.can_read_body else {}
    except json.JSONDecodeError:
        raise web.HTTPUnprocessableEntity(text=json.dumps({"detail": "body is not JSON"}),
                                          content_type="application/json") from None
    if not isinstance(body, dict):
        raise web.HTTPUnprocessableEntity(text=json.dumps({"detail": "body must be an object"}),
                                          content_type="application/json")
    return body


def _check_id(value: str, pattern: str, loc: str) -> None:
    if not re.match(pattern, value):
        raise web.HTTPUnprocessableEntity(
            text=json.dumps({"detail": f"{loc}: string should match pattern '{pattern}'"}),
            content_type="application/json")


def _agent(request: web.Request, agent_id: str, detail: str = "") -> dict[str, Any]:
    _check_id(agent_id, shapes.AGENT_ID_PATTERN, "path.agent_id")
    agent = request.app[STATE].agents.get(agent_id)
    if agent is None:
        detail = detail or f"Agent with ID {agent_id} not found"
        raise web.HTTPNotFound(text=json.dumps({"detail": detail}),
                               content_type="application/json")
    return agent


async def health(_: web.Request) -> web.Response:
    return web.json_response({"version": shapes.VERSION, "status": "ok"})


def _page(items: list[dict[str, Any]], query: Any) -> list[dict[str, Any]]:
    """Letta's cursor pagination: order by creation, then after/before an id, then limit."""
    items = sorted(items, key=lambda a: (a["created_at"], a["id"]),
                   reverse=query.get("order", "desc") == "desc")
    ids = [a["id"] for a in items]
    if query.get("after") in ids:
        items = items[ids.index(query["after"]) + 1:]
    elif query.get("before") in ids:
        items = items[:ids.index(query["before"])]
    try:
        limit = int(query.get("limit", 50))
    except ValueError:
        raise web.HTTPUnprocessableEntity(text=json.dumps({"detail": "limit: not an integer"}),
                                          content_type="application/json") from None
    return items[:max(limit, 0)]


async def list_agents(request: web.Request) -> web.Response:
    agents = list(request.app[STATE].agents.values())
    if "name" in request.query:
        agents = [a for a in agents if a["name"] == request.query["name"]]
    return web.json_response(_page(agents, request.query))


async def retrieve_agent(request: web.Request) -> web.Response:
    return web.json_response(_agent(request, request.match_info["agent_id"]))


async def create_agent(request: web.Request) -> web.Response:
    body = await _body(request)
    name = body.get("name") or f"agent-{len(request.app[STATE].agents) + 1}"
    agent = request.app[STATE].add_agent(shapes.new_id("agent"), str(name),
                                         str(body.get("description") or ""))
    return web.json_response(agent)


async def create_conversation(request: web.Request) -> web.Response:
    agent_id = request.query.get("agent_id", "")
    if request.app[STATE].faults.conversations_status:
        return _detail(request.app[STATE].faults.conversations_status, "Not Found")
    if not agent_id:
        return _detail(422, "query.agent_id: field required")
    _agent(request, agent_id, "Agent not found")
    return web.json_response(request.app[STATE].add_conversation(agent_id))


def _conversation(request: web.Request) -> dict[str, Any]:
    conv_id = request.match_info["conversation_id"]
    _check_id(conv_id, shapes.CONVERSATION_ID_PATTERN, "path.conversation_id")
    conv = request.app[STATE].conversations.get(conv_id)
    if conv is None:
        raise web.HTTPNotFound(text=json.dumps({"detail": f"Conversation not found: {conv_id}"}),
                               content_type="application/json")
    return conv


async def cancel_conversation(request: web.Request) -> web.Response:
    """The busy run (conversation_busy fault) is cancelled; else 0.16.8's 409 'no active runs'."""
    conv = _conversation(request)
    state = request.app[STATE]
    if not state.faults.conversation_busy or conv["id"] in state.cancelled:
        return _detail(409, f"No active runs to cancel for conversation {conv['id']}")
    state.cancelled[conv["id"]] = state.cancelled.get(conv["id"], 0) + 1
    return web.json_response({_busy_run(conv["id"]): "cancelled"})


async def retrieve_conversation(request: web.Request) -> web.Response:
    return web.json_response(_conversation(request))


async def agent_messages(request: web.Request) -> web.StreamResponse:
    agent = _agent(request, request.match_info["agent_id"])
    body = await _body(request)
    return await _send(request, body, thread=agent["id"], streaming=bool(body.get("streaming")))


def _busy_run(conv_id: str) -> str:
    return "run-" + conv_id.removeprefix("conv-")


async def conversation_messages(request: web.Request) -> web.StreamResponse:
    conv = _conversation(request)
    state = request.app[STATE]
    if state.faults.conversation_busy and conv["id"] not in state.cancelled:
        # 0.16.8's ConversationBusyError answer (a Letta with Redis locks each conversation)
        return web.json_response({"detail": f"Conversation {conv['id']} is busy",
                                  "run_id": _busy_run(conv["id"])}, status=409)
    body = await _body(request)
    return await _send(request, body, thread=conv["id"],
                       streaming=bool(body.get("streaming", True)))


async def _send(request: web.Request, body: dict[str, Any], *, thread: str,
                streaming: bool) -> web.StreamResponse:
    text = stream.user_text(body)
    if text is None:
        return _detail(422, "input or messages: a user message is required")
    if streaming and not stream.is_sdk_v1(request.headers):
        return _detail(422, "streaming=true is only supported for SDK v1.0+ clients.")
    state = request.app[STATE]
    turns = state.turns.setdefault(thread, [])
    turns.append(text)
    if not streaming:
        return web.json_response(stream.whole_response(list(turns)))
    return await stream.stream_reply(request, list(turns), state.faults,
                                     request.app[TOKEN_DELAY],
                                     tokens_wanted=bool(body.get("stream_tokens")))


async def set_faults(request: web.Request) -> web.Response:
    body = await _body(request)
    try:
        request.app[STATE].faults.update(body)
    except ValueError as exc:
        return web.json_response({"error": str(exc)}, status=400)
    return web.json_response({"faults": request.app[STATE].faults.as_dict()})


async def clear_faults(request: web.Request) -> web.Response:
    state = request.app[STATE]
    state.faults = type(state.faults)()
    state.cancelled.clear()
    return web.json_response({"faults": state.faults.as_dict()})


async def get_state(request: web.Request) -> web.Response:
    return web.json_response(request.app[STATE].snapshot())


ROUTES: Final = (
    ("GET", "/v1/health/", health),
    ("GET", "/v1/agents/", list_agents),
    ("POST", "/v1/agents/", create_agent),
    ("GET", "/v1/agents/{agent_id}", retrieve_agent),
    ("POST", "/v1/agents/{agent_id}/messages", agent_messages),
    ("POST", "/v1/conversations/", create_conversation),
    ("GET", "/v1/conversations/{conversation_id}", retrieve_conversation),
    ("POST", "/v1/conversations/{conversation_id}/messages", conversation_messages),
    ("POST", "/v1/conversations/{conversation_id}/cancel", cancel_conversation),
    ("POST", "/standin/faults", set_faults),
    ("DELETE", "/standin/faults", clear_faults),
    ("GET", "/standin/state", get_state),
)


def build_app(state: StandinState | None = None, *, token_delay_s: float = 0.02) -> web.Application:
    app = web.Application(middlewares=[down_fault])
    app[STATE] = state or StandinState.with_samples()
    app[TOKEN_DELAY] = token_delay_s
    for method, path, handler in ROUTES:
        app.router.add_route(method, path, handler)
    return app
