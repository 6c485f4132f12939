"""Request body parsing and validation; every error says exactly which field is wrong and why."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from .errors import ApiError, bad_request

MAX_NAME_LENGTH = 128
_NAME_CHARS = re.compile(r"[A-Za-z0-9_.:-]+")
_NAME_HINT = "letters, digits, '_', '.', ':' and '-'"
RESERVED_METADATA_PREFIX = "voiceops"  # probe markers and our own keys; a browser may not set them
LETTA_AGENT_KEY = "letta_agent_id"
# Names voiceops (and LiveKit's agents) own. A browser token for an agent's identity would
# replace the agent in its call (LiveKit drops the older participant of a duplicate
# identity); one for a heartbeat probe room would let a caller into our probes.
RESERVED_IDENTITY_PREFIXES = ("agent-", "voiceops")
RESERVED_ROOM_PREFIXES = ("voiceops",)


def parse_json_object(body: bytes, allowed: tuple[str, ...]) -> dict[str, Any]:
    """The body as a JSON object with only ``allowed`` fields."""
    if not body.strip():
        raise bad_request(f"the body is empty; send a JSON object with {_fields(allowed)}")
    try:
        data = json.loads(body)
    except UnicodeDecodeError:
        raise bad_request("the body is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise bad_request(f"the body is not valid JSON: {exc.msg} at line {exc.lineno} "
                          f"column {exc.colno}", code="invalid_json") from None
    except RecursionError:
        raise bad_request("the body nests JSON too deeply", code="invalid_json") from None
    except ValueError:  # an integer over sys.get_int_max_str_digits() digits
        raise bad_request("the body holds a number too large to read",
                          code="invalid_json") from None
    if not isinstance(data, dict):
        raise bad_request(f"the body must be a JSON object, not {_json_type(data)}")
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise bad_request(f"unknown field {unknown[0]!r} (allowed: {_fields(allowed)})")
    return data


def check_name(field: str, value: Any, *, required: bool = True) -> str:
    """A room name, identity or id: 1-128 characters from ``[A-Za-z0-9_.:-]``."""
    if value is None:
        if required:
            raise bad_request(f"{field}: missing (a required field)", code=f"missing_{field}")
        return ""
    if not isinstance(value, str):
        raise bad_request(f"{field}: must be a string, not {_json_type(value)}")
    if not value:
        raise bad_request(f"{field}: must not be empty")
    if len(value) > MAX_NAME_LENGTH:
        raise _too_long(field, value)
    if not _NAME_CHARS.fullmatch(value):
        bad = sorted({c for c in value if not _NAME_CHARS.fullmatch(c)})
        shown = ", ".join(repr(c) for c in bad[:5])
        raise bad_request(f"{field}: contains characters that are not allowed ({shown}); "
                          f"use only {_NAME_HINT}")
    return value


def check_not_reserved(field: str, value: str, prefixes: tuple[str, ...]) -> str:
    """Refuse a name under a prefix voiceops owns (case-insensitive: LiveKit is not)."""
    for prefix in prefixes:
        if value.lower().startswith(prefix):
            raise bad_request(f"{field}: names starting with {prefix!r} are reserved for "
                              f"voiceops and its agents", code=f"reserved_{field}")
    return value


def check_display_name(field: str, value: Any) -> str:
    """A human display name: optional, up to 128 characters, no control characters."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise bad_request(f"{field}: must be a string, not {_json_type(value)}")
    if len(value) > MAX_NAME_LENGTH:
        raise _too_long(field, value)
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise bad_request(f"{field}: must not contain control characters")
    return value


def check_metadata(value: Any, max_bytes: int) -> dict[str, Any]:
    """Caller metadata for the job: a JSON object without reserved keys, at most ``max_bytes``."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise bad_request(f"metadata: must be a JSON object, not {_json_type(value)}")
    for key in value:
        if key == LETTA_AGENT_KEY:
            raise bad_request("metadata.letta_agent_id: set the Letta agent with 'agent_id'")
        if key.startswith(RESERVED_METADATA_PREFIX):
            raise bad_request(f"metadata.{key}: keys starting with "
                              f"{RESERVED_METADATA_PREFIX!r} are reserved")
    size = len(json.dumps(value, separators=(",", ":")).encode())
    if size > max_bytes:
        raise bad_request(f"metadata: is {size} bytes as JSON; the limit is {max_bytes}")
    return dict(value)


def _too_long(field: str, value: str) -> ApiError:
    return bad_request(f"{field}: is {len(value)} characters long; the limit is {MAX_NAME_LENGTH}")


def _fields(allowed: tuple[str, ...]) -> str:
    return ", ".join(allowed)


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean",
             int: "a number", float: "a number", type(None): "null"}
    return names.get(type(value), type(value).__name__)
