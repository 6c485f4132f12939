"""The debug page against a proxy with API keys: it asks for the key, and works once given it."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from browser_support import SandboxLiveKit, shoot, snapshot, start_sandbox, text_of, wait_state
from stack import Stack

from voiceops.testing.chromium import Chromium
from voiceops.testing.harness import wait_for

pytestmark = [pytest.mark.process, pytest.mark.browser]
KEY = "debug-page-key-5d1e0c7b9f2a4d6a"


@pytest.fixture(scope="module")
def keyed_sandbox(tmp_path_factory: pytest.TempPathFactory
                  ) -> Iterator[tuple[Stack, SandboxLiveKit]]:
    tmp = tmp_path_factory.mktemp("keyed")
    keys = tmp / "proxy-keys"
    keys.write_text(KEY + "\n")
    keys.chmod(0o600)
    stack, lk = start_sandbox(tmp, proxy__api_keys_file=str(keys))
    try:
        yield stack, lk
    finally:
        stack.close()


def test_page_asks_for_the_key_then_calls(keyed_sandbox: tuple[Stack, SandboxLiveKit],
                                          browser: Callable[[], Chromium]) -> None:
    """No key: the page says one is needed and puts the cursor there; a wrong key is refused;
    the right one (typed, then Enter) lists the agents, and the call goes through."""
    stack, _ = keyed_sandbox
    page = browser().new_page()
    page.goto(stack.proxy_url + "/debug")
    wait_for(lambda: "requires an API key" in text_of(page, "key-hint"), 20, "the key prompt")
    assert page.evaluate("document.activeElement.id") == "apikey"
    assert page.evaluate("document.getElementById('apikey').getAttribute('aria-invalid')") == "true"
    shoot(page, "api-key")

    page.type("not-the-key")
    page.press("Enter")
    wait_for(lambda: "not valid" in text_of(page, "key-hint"), 20, "the wrong key refused")
    page.evaluate("document.getElementById('apikey').select()")
    page.type(KEY)
    page.press("Enter")
    wait_for(lambda: "Key accepted" in text_of(page, "key-hint"), 20, "the key accepted")
    assert page.evaluate("document.getElementById('agent').options.length") > 1

    page.focus("#connect")
    page.press("Enter")
    state = wait_state(page, "talking", 60)
    assert {"connected", "dispatched", "agent_joined"} <= set(state["steps"]), state["steps"]
    wait_for(lambda: "job_request" in snapshot(page)["steps"], 10,
             "the JobRequest from the timeline route (it needs the key too)")
    assert state["errors"] == [] and state["csp"] == [], state
