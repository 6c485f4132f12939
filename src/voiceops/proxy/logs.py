"""One JSON object per log line, from the one log style: ``log.info("event_name key=%s", value)``.

The event name is the message's first word; each ``key=%x`` pair of the template becomes a field
holding its argument as given (numbers stay numbers), a literal ``key=value`` a string field.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from typing import Any

from aiohttp.http_exceptions import HttpProcessingError

_EVENT = re.compile(r"[a-z][a-z0-9_]*\Z")
_PLACEHOLDER = re.compile(r"%[-#0-9.]*[sdifgr]\Z")


def event_and_fields(record: logging.LogRecord) -> tuple[str, dict[str, Any]]:
    """(event name, fields) of a record in the one log style; another library's sentence is
    kept whole as the event, as before."""
    event, _, rest = str(record.msg).partition(" ")
    args = list(record.args) if isinstance(record.args, tuple) else []
    fields: dict[str, Any] = {}
    for token in rest.split():
        key, eq, value = token.partition("=")
        if not (_EVENT.match(event) and eq and key.isidentifier()):
            return record.getMessage(), {}
        if _PLACEHOLDER.match(value) and args:
            fields[key] = args.pop(0)
        elif "%" in value:
            return record.getMessage(), {}
        else:
            fields[key] = value
    return (event, fields) if _EVENT.match(event) and not args else (record.getMessage(), {})


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        event, fields = event_and_fields(record)
        line: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": event,
            **fields,
        }
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


class ClientFaultFilter(logging.Filter):
    """aiohttp logs a malformed request (a client's fault, answered 400) or a client that hung
    up as an error with a trace; here it becomes one info line without one."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, (HttpProcessingError, ConnectionError)):
            record.exc_info = None
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.msg, record.args = "bad_http_request error=%s", (type(exc).__name__,)
        return True


def setup(level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(ClientFaultFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.Formatter.converter = time.gmtime
