"""GET /api/dispatches/{id}: where one dispatch is, and why no agent came (for the debug page).

The supervisor's monitor owns the timeline (JobRequest and join times, the diagnosis once it
gave up waiting); the proxy reads it over the control socket, read-only, one id at a time.
The answer never names the room: knowing a dispatch id (which only its caller was given)
reveals nothing about other callers, and there is no listing.
"""

from __future__ import annotations

from typing import Any, Final

from aiohttp import web

from voiceops.supervisor import control

from .context import CTX
from .errors import ApiError
from .validation import check_name

CONTROL_TIMEOUT_S: Final = 2.0
# What a caller may see of the monitor's timeline (the room and anything added later stay out).
PUBLIC_FIELDS: Final = ("dispatch_id", "phase", "deadline_s", "job_request_after_s",
                        "joined_after_s", "redispatched", "diagnosis")


async def dispatch_timeline(request: web.Request) -> web.Response:
    dispatch_id = check_name("dispatch_id", request.match_info["dispatch_id"])
    socket_path = request.app[CTX].options.control_socket
    try:
        status, body = await control.request(socket_path, "GET", f"/dispatches/{dispatch_id}",
                                             timeout_s=CONTROL_TIMEOUT_S)
    except control.ControlClientError:
        raise ApiError(503, "supervisor_unavailable",
                       "the voiceops supervisor does not answer on its control socket, so no "
                       "timeline is known (is the proxy running outside `voiceops run`?)") from None
    if status == 404:
        raise ApiError(404, "unknown_dispatch", f"dispatch {dispatch_id} is not tracked "
                       "(unknown, reused, or its timeline expired)")
    if status != 200:
        raise ApiError(502, "supervisor_error",
                       f"the supervisor answered HTTP {status} for this dispatch")
    return web.json_response({"success": True, **public_timeline(body)})


def public_timeline(timeline: dict[str, Any]) -> dict[str, Any]:
    return {key: timeline.get(key) for key in PUBLIC_FIELDS}
