"""Fixtures for the proxy tests: the proxy in-process (aiohttp test server) or as a subprocess,
an event sink on a unix datagram socket, and a fake Letta upstream on port 0."""

from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from proxy_helpers import LETTA_KEY, PROXY_KEY, WAIT_S, FakeLetta, assert_no_secret

from voiceops.config import from_dict
from voiceops.proxy.app import create_app
from voiceops.proxy.context import CTX
from voiceops.proxy.options import ProxySecrets, options_from_config
from voiceops.proxy.services import SERVICES
from voiceops.testing.eventrec import EventRecorder
from voiceops.testing.waiting import wait_for_async


@dataclasses.dataclass
class Answer:
    status: int
    headers: dict[str, str]
    text: str

    @property
    def body(self) -> Any:
        return json.loads(self.text)

    @property
    def error_code(self) -> str:
        assert self.body["success"] is False, self.text
        return str(self.body["error"]["code"])


class ProxyClient:
    """Talks to an in-process proxy; every answer is checked for leaked secrets."""

    def __init__(self, client: TestClient, secrets: tuple[str, ...]) -> None:
        self.client = client
        self.secrets = secrets

    async def room_list_taken(self) -> None:
        """Until the proxy's room book holds its first full room list (its cold start ends)."""
        book = self.client.server.app[SERVICES].dispatcher.book
        await wait_for_async(lambda: book.synced, 10.0, "the proxy's first room list", 0.01)

    async def call(self, method: str, path: str, *, body: Any = None, data: bytes | None = None,
                   headers: dict[str, str] | None = None) -> Answer:
        payload = data if data is not None else (None if body is None else json.dumps(body))
        async with self.client.request(method, path, data=payload, headers=headers) as resp:
            text = await resp.text()
            answer = Answer(resp.status, dict(resp.headers), text)
        assert_no_secret(text + json.dumps(answer.headers), self.secrets)
        return answer

    async def dispatch(self, body: Any, **kw: Any) -> Answer:
        return await self.call("POST", "/api/dispatch-agent", body=body, **kw)


ProxyFactory = Callable[..., Awaitable[ProxyClient]]


@pytest.fixture
def event_sink(monkeypatch: pytest.MonkeyPatch) -> Iterator[EventRecorder]:
    """A unix datagram socket bound as $VOICEOPS_EVENTS (short path: sun_path is 108 bytes)."""
    tmp = Path(tempfile.mkdtemp(prefix="vo-ev-", dir="/tmp"))
    sink = EventRecorder(tmp / "events.sock", wait_s=WAIT_S)
    monkeypatch.setenv("VOICEOPS_EVENTS", sink.path)
    yield sink
    sink.close()
    shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
async def fake_letta() -> AsyncIterator[tuple[FakeLetta, str]]:
    fake = FakeLetta(agents=[
        {"id": "agent-11111111-aaaa", "name": "Ada", "description": "support agent",
         "tags": [], "agent_type": "letta_v1_agent"},
        {"id": "agent-22222222-bbbb", "name": "Bob", "description": None},
    ])
    server = TestServer(fake.app(), host="127.0.0.1", port=0)
    await server.start_server()
    yield fake, str(server.make_url("")).rstrip("/")
    await server.close()


@pytest.fixture
async def make_proxy(event_sink: EventRecorder) -> AsyncIterator[ProxyFactory]:
    """Build an in-process proxy: `await make_proxy(livekit_server, api_keys=..., **proxy_keys)`."""
    clients: list[TestClient] = []

    async def make(
        lk: Any,
        *,
        api_keys: frozenset[str] = frozenset(),
        token_api_keys: frozenset[str] = frozenset(),
        letta_url: str = "http://127.0.0.1:9",
        option_overrides: dict[str, Any] | None = None,
        **proxy: Any,
    ) -> ProxyClient:
        cfg = from_dict({"livekit": {"url": lk.url, "api_key": lk.api_key},
                         "agent": {"name": "letta-voice-agent"},
                         "letta": {"base_url": letta_url}, "proxy": proxy})
        options = dataclasses.replace(options_from_config(cfg), **(option_overrides or {}))
        secrets = ProxySecrets(lk.api_secret, LETTA_KEY, api_keys, token_api_keys)
        app = create_app(options, secrets)
        client = TestClient(TestServer(app, host="127.0.0.1", port=0))
        await client.start_server()
        app[CTX].set_listen("127.0.0.1", client.port or 0)
        clients.append(client)
        # The LiveKit dev secret ("secret") is a common word; check it only when it is not.
        checked = tuple(s for s in (lk.api_secret, LETTA_KEY, PROXY_KEY, *api_keys) if len(s) >= 12)
        return ProxyClient(client, checked)

    yield make
    for client in clients:
        await client.close()


@pytest.fixture(autouse=True)
def _quiet_short_test_secrets() -> None:
    """PyJWT warns about the short public --dev secret these tests sign with; that is expected."""
    warnings.filterwarnings("ignore", message="The HMAC key is")
