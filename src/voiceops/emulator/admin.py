"""Loopback-only admin routes: /emulator/faults (POST, GET, DELETE) and /emulator/state."""

from __future__ import annotations

import ipaddress
import json
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler
from google.protobuf.json_format import MessageToDict
from livekit.protocol import agent

from .faults import FaultController, FaultError
from .rooms import RoomManager
from .workers import WorkerRegistry


def _is_loopback(remote: str | None) -> bool:
    if not remote:
        return True  # unix socket or in-process test client
    try:
        return ipaddress.ip_address(remote).is_loopback
    except ValueError:
        return False


@web.middleware
async def loopback_only(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path.startswith("/emulator/") and not _is_loopback(request.remote):
        return web.json_response({"error": "admin routes are loopback-only"}, status=403)
    return await handler(request)


def _job_json(job: agent.Job, reported: str | None) -> dict[str, Any]:
    state = MessageToDict(job.state, preserving_proto_field_name=True)
    return {"id": job.id, "state": state, "reported_status": reported}


class Admin:
    def __init__(
        self, faults: FaultController, rooms: RoomManager, workers: WorkerRegistry
    ) -> None:
        self._faults = faults
        self._rooms = rooms
        self._workers = workers
        self.twirp_calls: dict[str, int] = {}  # the Twirp server's counter, once wired

    def add_routes(self, app: web.Application) -> None:
        app.middlewares.append(loopback_only)
        app.router.add_post("/emulator/faults", self.set_faults)
        app.router.add_get("/emulator/faults", self.get_faults)
        app.router.add_delete("/emulator/faults", self.clear_faults)
        app.router.add_get("/emulator/state", self.get_state)

    async def set_faults(self, request: web.Request) -> web.Response:
        try:
            body = json.loads(await request.text() or "{}")
        except json.JSONDecodeError as exc:
            return web.json_response({"error": f"body is not JSON: {exc.msg}"}, status=400)
        if not isinstance(body, dict):
            return web.json_response({"error": "expected a JSON object"}, status=400)
        try:
            current = self._faults.set(**body)
        except FaultError as exc:
            return web.json_response({"error": str(exc), "key": exc.key}, status=400)
        return web.json_response({"faults": current.to_json()})

    async def get_faults(self, request: web.Request) -> web.Response:
        return web.json_response({"faults": self._faults.current.to_json()})

    async def clear_faults(self, request: web.Request) -> web.Response:
        return web.json_response({"faults": self._faults.clear().to_json()})

    async def get_state(self, request: web.Request) -> web.Response:
        # ?room=NAME (repeatable) narrows rooms and dispatches to those rooms: a benchmark
        # polling every 20 ms would otherwise pay for every room on the server, on its loop.
        wanted = request.query.getall("room", [])
        return web.json_response(self.snapshot(frozenset(wanted) if wanted else None))

    def snapshot(self, only_rooms: frozenset[str] | None = None) -> dict[str, Any]:
        """Rooms, participants, workers and dispatches (with job states) as plain JSON; with
        ``only_rooms``, the rooms (and their dispatches) of those names only."""
        rooms, dispatches = [], []
        for room in self._rooms.rooms.values():
            if only_rooms is not None and room.name not in only_rooms:
                continue
            rooms.append(
                {
                    "name": room.name,
                    "sid": room.sid,
                    "num_participants": len(room.participants),
                    "participants": [
                        {
                            "identity": p.identity,
                            "sid": p.sid,
                            "state": p.state.name,
                            "kind": p.kind,
                            "attributes": p.attributes,
                        }
                        for p in room.participants.values()
                    ],
                }
            )
            for d in room.dispatches.values():
                jobs = []
                for job in d.state.jobs:
                    found = self._workers.find_job(job.id)
                    reported = agent.JobStatus.Name(found[1].status) if found else None
                    jobs.append(_job_json(job, reported))
                dispatches.append(
                    {
                        "id": d.id,
                        "agent_name": d.agent_name,
                        "room": d.room,
                        "metadata": d.metadata,
                        "jobs": jobs,
                    }
                )
        workers = [w.to_json() for w in self._workers.all()]
        return {
            "rooms": rooms,
            "workers": workers,
            "dispatches": dispatches,
            "faults": self._faults.current.to_json(),
            "twirp_calls": dict(self.twirp_calls),
        }
