"""GET /agent: the worker WebSocket (register, status, availability answers, job updates, ping)."""

from __future__ import annotations

import logging
import time

import aiohttp
from aiohttp import web
from google.protobuf.message import DecodeError
from livekit import api
from livekit.protocol import agent, models

from .options import EmulatorOptions
from .tokens import AuthError, new_id, request_token, verify_token
from .workers import Worker, WorkerRegistry

logger = logging.getLogger("voiceops.emulator.agent")
PROTOCOL_VERSION = 16


class AgentSocket:
    def __init__(
        self, options: EmulatorOptions, verifier: api.TokenVerifier, registry: WorkerRegistry
    ) -> None:
        self._options = options
        self._verifier = verifier
        self._registry = registry

    def server_info(self) -> models.ServerInfo:
        return models.ServerInfo(
            edition=models.ServerInfo.Standard,
            version=self._options.server_version,
            protocol=PROTOCOL_VERSION,
            region=self._options.region,
            node_id=self._options.node_id,
        )

    def _authorize(self, request: web.Request) -> None:
        token = request_token(request)
        if token is None:
            raise AuthError("permissions denied")
        claims = verify_token(self._verifier, token)
        if claims.video is None or not claims.video.agent:
            raise AuthError("permissions denied")

    async def handle(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(autoping=True, max_msg_size=4 * 1024 * 1024)
        if not ws.can_prepare(request).ok:
            return web.Response(status=404, text="404 page not found")
        try:
            self._authorize(request)
        except AuthError as exc:
            return web.Response(status=401, text=str(exc))
        await ws.prepare(request)
        worker = await self._register(ws)
        if worker is None:
            return ws
        try:
            await self._serve(worker)
        finally:
            self._registry.remove(worker)
            if not ws.closed:
                await ws.close()
        return ws

    async def _register(self, ws: web.WebSocketResponse) -> Worker | None:
        try:
            msg = await ws.receive(timeout=self._options.register_timeout_s)
        except TimeoutError:
            await ws.close(code=aiohttp.WSCloseCode.POLICY_VIOLATION, message=b"register timeout")
            return None
        req = _parse(msg)
        if req is None or req.WhichOneof("message") != "register":
            await ws.close(code=aiohttp.WSCloseCode.POLICY_VIOLATION, message=b"expected register")
            return None
        reg = req.register
        worker = Worker(
            id=new_id("AW_"),
            key=(reg.agent_name, reg.namespace, reg.type),
            version=reg.version,
            permissions=reg.allowed_permissions,
            ws=ws,
        )
        await worker.send(
            agent.ServerMessage(
                register=agent.RegisterWorkerResponse(
                    worker_id=worker.id, server_info=self.server_info()
                )
            )
        )
        self._registry.add(worker)
        return worker

    async def _serve(self, worker: Worker) -> None:
        async for msg in worker.ws:
            parsed = _parse(msg)
            if parsed is None:
                continue
            which = parsed.WhichOneof("message")
            if which == "availability":
                self._on_availability(worker, parsed.availability)
            elif which == "update_worker":
                self._on_status(worker, parsed.update_worker)
            elif which == "update_job":
                self._on_job_update(worker, parsed.update_job)
            elif which == "ping":
                pong = agent.WorkerPong(
                    last_timestamp=parsed.ping.timestamp, timestamp=int(time.time() * 1000)
                )
                await worker.send(agent.ServerMessage(pong=pong))
            else:
                # ignored, as on OSS
                logger.debug("worker_message_ignored worker_id=%s message=%s", worker.id, which)

    def _on_availability(self, worker: Worker, resp: agent.AvailabilityResponse) -> None:
        fut = worker.pending.pop(resp.job_id, None)
        if fut is None or fut.done():
            # Go: "received availability response for unknown job"; a late answer changes nothing
            logger.warning(
                "availability_response_unknown_job worker_id=%s job_id=%s",
                worker.id,
                resp.job_id,
            )
            return
        fut.set_result(resp)

    def _on_status(self, worker: Worker, update: agent.UpdateWorkerStatus) -> None:
        if update.HasField("status"):
            worker.status = update.status
        worker.load = update.load
        worker.job_count = update.job_count

    def _on_job_update(self, worker: Worker, update: agent.UpdateJobStatus) -> None:
        job = worker.jobs.get(update.job_id)
        if job is None or job.ended:
            # Go: an ended job leaves Worker.runningJobs, so later updates find nothing
            logger.debug("job_update_unknown_job job_id=%s worker_id=%s", update.job_id, worker.id)
            return
        job.set_status(update.status, update.error)
        logger.info(
            "job_status job_id=%s status=%s error=%r",
            job.job_id,
            agent.JobStatus.Name(update.status),
            update.error,
        )


def _parse(msg: aiohttp.WSMessage) -> agent.WorkerMessage | None:
    if msg.type != aiohttp.WSMsgType.BINARY:
        return None
    parsed = agent.WorkerMessage()
    try:
        parsed.ParseFromString(msg.data)
    except DecodeError:
        logger.warning("worker_message_undecodable bytes=%d", len(msg.data))
        return None
    return parsed
