"""LettaUnreachable: one verdict from Letta's health check and from the calls' failed turns.

The health check sees a server that is down; only the calls see one that is up but fails,
stalls or cuts its streams. The alert fires on either and resolves when both are well again
(calls: no two failures within the window). The policy is :mod:`lettacalls` and :mod:`reach`.
"""

from __future__ import annotations

from collections.abc import Callable

import aiohttp

from voiceops.events import LettaError
from voiceops.monitor import alerts as A
from voiceops.monitor import lettacalls, reach


class LettaHealth:
    def __init__(self, base_url: str, api_key: str, *, window_s: float, timeout_s: float,
                 alerts: A.Alerting, clock: Callable[[], float]) -> None:
        self._base_url, self._api_key = base_url, api_key
        self._window_s, self._timeout_s = window_s, timeout_s
        self._fire, self._resolve, self._clock = alerts.fire, alerts.resolve, clock
        self.reach = reach.Reachability()
        self.calls = lettacalls.CallFailures()

    def call_failed(self, ev: LettaError) -> None:
        """A call's Letta turn failed: two within the window fire LettaUnreachable."""
        self.calls = lettacalls.record(self.calls, self._clock(), ev.kind, ev.detail,
                                       self._window_s)
        self.verdict()

    def verdict(self) -> None:
        """Fire or resolve from what the health check and the calls say now."""
        self.calls = lettacalls.prune(self.calls, self._clock(), self._window_s)
        if self.reach.firing:
            self._fire(A.LETTA_UNREACHABLE, reach.letta_diagnosis(self.reach, self._base_url),
                       None)
        elif lettacalls.firing(self.calls, self._clock(), self._window_s):
            self._fire(A.LETTA_UNREACHABLE,
                       lettacalls.diagnosis(self.calls, self._base_url, self._window_s), None)
        else:
            self._resolve(A.LETTA_UNREACHABLE)

    async def tick(self) -> None:
        self.verdict()  # failures age out of the window with no new event

    async def check(self, http: aiohttp.ClientSession) -> None:
        """GET /v1/health/ once; the verdict follows."""
        url = self._base_url.rstrip("/") + "/v1/health/"
        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        error: BaseException | None = None
        try:
            async with http.get(url, headers=headers,
                                timeout=aiohttp.ClientTimeout(total=self._timeout_s)) as resp:
                resp.raise_for_status()
        except Exception as exc:
            error = exc
        self.reach = reach.observe(self.reach, error)
        self.verdict()
