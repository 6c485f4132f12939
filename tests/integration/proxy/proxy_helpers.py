"""Helpers for the proxy tests: a fake Letta, config files, a proxy subprocess,
a raw agent worker."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import psutil
from aiohttp import web
from livekit import api
from livekit.protocol import agent as agent_pb
from livekit.protocol import agent_dispatch

LETTA_KEY = "letta-key-7f1c0d9e4b2a8f63a5d1e0c7b9f2a4d6"
PROXY_KEY = "proxy-key-3b8e1f0a6c2d9e7f5a4b1c8d0e3f6a2b"
OTHER_KEY = "proxy-key-00000000000000000000000000000000"
AGENT_NAME = "letta-voice-agent"
WAIT_S = 20.0


@dataclass
class FakeLetta:
    """GET /v1/agents/ in the shape letta-client reads (a JSON array of AgentState)."""

    agents: list[dict[str, Any]] = field(default_factory=list)
    calls: int = 0
    auth_headers: list[str] = field(default_factory=list)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/v1/agents/", self._list)
        return app

    async def _list(self, request: web.Request) -> web.Response:
        self.calls += 1
        self.auth_headers.append(request.headers.get("Authorization", ""))
        if request.query.get("after"):  # letta-client pages on with ?after=<last id>
            return web.json_response([])
        return web.json_response(self.agents)


def write_config(path: Path, livekit_url: str, *, listen: str = "127.0.0.1:0",
                 letta_url: str = "http://127.0.0.1:9", **proxy: Any) -> Path:
    lines = ["[livekit]", f'url = "{livekit_url}"', 'api_key = "devkey"', "",
             "[agent]", f'name = "{AGENT_NAME}"', "", "[letta]", f'base_url = "{letta_url}"', "",
             "[proxy]", f'listen = "{listen}"']
    lines += [f"{k} = {json.dumps(v)}" for k, v in proxy.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


class ProxyProcess:
    """`python -m voiceops.proxy --config PATH` as a real subprocess; stderr kept for checks."""

    def __init__(self, config: Path, events_path: str, secret: str, log_path: Path) -> None:
        env = {**os.environ, "VOICEOPS_EVENTS": events_path, "LIVEKIT_API_SECRET": secret,
               "LETTA_API_KEY": LETTA_KEY, "VOICEOPS_PROCESS": "proxy"}
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "voiceops.proxy", "--config",
                                      str(config)], stdout=self._log, stderr=subprocess.STDOUT,
                                     env=env, start_new_session=True)

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def terminate(self, timeout_s: float = WAIT_S) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout_s)
        finally:
            self._log.close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(WAIT_S)
        self._log.close()


def assert_gone(pids: list[int]) -> None:
    """The processes this test spawned (and their children) have all exited."""
    alive = [pid for pid in pids if psutil.pid_exists(pid)
             and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]
    assert not alive, f"processes left behind: {alive}"


def assert_no_secret(text: str, secrets: tuple[str, ...]) -> None:
    for secret in secrets:
        assert secret not in text, "a secret leaked into a response or log"


async def dispatches_in(lk: Any, room: str) -> list[agent_dispatch.AgentDispatch]:
    """The server's dispatches of our agent in one room (ListRooms first: ListDispatch on a
    missing room stalls on a real server). A new room also holds the server's own automatic
    dispatch (agent_name ""), which is not ours. Works against the emulator and a real server."""
    async with api.LiveKitAPI(lk.http_url, lk.api_key, lk.api_secret) as lkapi:
        rooms = await lkapi.room.list_rooms(api.ListRoomsRequest(names=[room]))
        if not rooms.rooms:
            return []
        found = await lkapi.agent_dispatch.list_dispatch(room)
    return [d for d in found if d.agent_name == AGENT_NAME]


class RawWorker:
    """A protocol-level agent worker on the server's /agent socket: it accepts every job and
    never joins the room, like an agent that was assigned and then left (or died)."""

    def __init__(self, lk: Any, agent_name: str = AGENT_NAME) -> None:
        self._lk = lk
        self._agent_name = agent_name
        self.assigned: list[str] = []  # job ids
        self._http: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> RawWorker:
        token = (api.AccessToken(self._lk.api_key, self._lk.api_secret)
                 .with_grants(api.VideoGrants(agent=True)).to_jwt())
        self._http = aiohttp.ClientSession()
        self._ws = await self._http.ws_connect(f"{self._lk.url}/agent?access_token={token}")
        register = agent_pb.RegisterWorkerRequest(type=agent_pb.JT_ROOM,
                                                  agent_name=self._agent_name, version="test")
        await self._ws.send_bytes(agent_pb.WorkerMessage(register=register).SerializeToString())
        first = agent_pb.ServerMessage.FromString(await self._ws.receive_bytes(timeout=WAIT_S))
        assert first.register.worker_id, first
        self._task = asyncio.create_task(self._serve(self._ws))
        return self

    async def _serve(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for msg in ws:  # ends when the socket closes
            if msg.type != aiohttp.WSMsgType.BINARY:
                continue
            server = agent_pb.ServerMessage.FromString(msg.data)
            if server.HasField("availability"):
                job = server.availability.job
                answer = agent_pb.AvailabilityResponse(job_id=job.id, available=True,
                                                       participant_identity=f"agent-{job.id}")
                await ws.send_bytes(agent_pb.WorkerMessage(availability=answer)
                                    .SerializeToString())
            elif server.HasField("assignment"):
                self.assigned.append(server.assignment.job.id)

    async def __aexit__(self, *exc: object) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._task is not None:
            await asyncio.wait_for(self._task, WAIT_S)
        if self._http is not None:
            await self._http.close()
