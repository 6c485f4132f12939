"""Log line format and the proxy's own-origin allowance."""

from __future__ import annotations

import json
import logging

from voiceops.config import Config
from voiceops.proxy.context import ProxyContext
from voiceops.proxy.logs import JsonFormatter
from voiceops.proxy.options import ProxySecrets, options_from_config


def test_log_lines_are_json_with_a_constant_event_and_fields():
    """A record in the one log style becomes one JSON object: the event name, and its fields as
    keys holding the arguments as given."""
    record = logging.LogRecord("voiceops.proxy", logging.INFO, __file__, 1,
                               "dispatch_created dispatch_id=%s latency_s=%.3f reused=false",
                               ("AD_1", 0.01), None)
    line = json.loads(JsonFormatter().format(record))
    assert line["event"] == "dispatch_created" and line["dispatch_id"] == "AD_1"
    assert line["latency_s"] == 0.01 and line["reused"] == "false"
    assert line["level"] == "info" and "\n" not in JsonFormatter().format(record)


def test_another_librarys_sentence_stays_whole():
    """A message not in the log style (aiohttp's, livekit's) is kept whole as the event."""
    record = logging.LogRecord("aiohttp.server", logging.ERROR, __file__, 1,
                               "Error handling request from %s", ("127.0.0.1",), None)
    assert json.loads(JsonFormatter().format(record))["event"] == \
        "Error handling request from 127.0.0.1"


def test_own_origin_is_allowed_only_for_the_bound_address():
    """Once bound, the proxy's own origin (and loopback aliases) may call /api/*; others may not."""
    ctx = ProxyContext(options_from_config(Config()), ProxySecrets("s"))
    assert not ctx.origin_allowed("http://127.0.0.1:4242")
    ctx.set_listen("127.0.0.1", 4242)
    for origin in ("http://127.0.0.1:4242", "http://localhost:4242", "http://[::1]:4242"):
        assert ctx.origin_allowed(origin)
    assert not ctx.origin_allowed("http://127.0.0.1:4243")
    assert not ctx.origin_allowed("http://evil.test:4242")
    assert ctx.origin_allowed("http://localhost:9000")  # from the default allowed_origins


def test_secrets_are_hidden_from_repr():
    """Printing the options or secrets never shows a secret."""
    secrets = ProxySecrets("lk-secret-value", "letta-secret-value", frozenset({"api-key-value"}))
    assert "secret-value" not in repr(secrets) and "api-key-value" not in repr(secrets)
