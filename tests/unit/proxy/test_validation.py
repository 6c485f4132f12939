"""Body parsing and field validation: each error names the field and says what is wrong."""

from __future__ import annotations

import pytest

from voiceops.proxy.errors import ApiError
from voiceops.proxy.validation import (
    check_display_name,
    check_metadata,
    check_name,
    parse_json_object,
)


def message(fn, *args, **kw) -> str:
    with pytest.raises(ApiError) as info:
        fn(*args, **kw)
    assert info.value.status == 400
    return info.value.message


@pytest.mark.parametrize("good", ["r", "room-1", "a.b:c_d-E9", "x" * 128])
def test_valid_names_pass(good):
    """Names of 1-128 characters from [A-Za-z0-9_.:-] are accepted unchanged."""
    assert check_name("room", good) == good


@pytest.mark.parametrize(("value", "expected"), [
    (None, "room: missing (a required field)"),
    ("", "room: must not be empty"),
    (7, "room: must be a string, not a number"),
    ("x" * 129, "room: is 129 characters long; the limit is 128"),
    ("a b", "room: contains characters that are not allowed (' ')"),
    ("../etc", "room: contains characters that are not allowed ('/')"),
    ("é", "room: contains characters that are not allowed ('é')"),
])
def test_invalid_names_say_exactly_what_is_wrong(value, expected):
    """Each kind of bad name has its own message."""
    assert message(check_name, "room", value).startswith(expected)


def test_optional_name_may_be_absent():
    """An optional field that is absent is the empty string."""
    assert check_name("agent_id", None, required=False) == ""


def test_json_body_errors():
    """Empty, invalid, non-object and unknown-field bodies are refused with reasons."""
    allowed = ("room",)
    assert "empty" in message(parse_json_object, b"  ", allowed)
    assert "not valid JSON" in message(parse_json_object, b"{", allowed)
    assert "not an array" in message(parse_json_object, b"[]", allowed)
    assert "unknown field 'x'" in message(parse_json_object, b'{"x": 1}', allowed)
    assert parse_json_object(b'{"room": "r"}', allowed) == {"room": "r"}


def test_metadata_rules():
    """Metadata is an object, without reserved keys, within the size limit."""
    assert check_metadata(None, 100) == {}
    assert check_metadata({"lang": "en"}, 100) == {"lang": "en"}
    assert "agent_id" in message(check_metadata, {"letta_agent_id": "a"}, 100)
    assert "reserved" in message(check_metadata, {"voiceops_probe": True}, 100)
    assert "bytes as JSON" in message(check_metadata, {"k": "v" * 200}, 100)
    assert "JSON object" in message(check_metadata, [1], 100)


def test_display_name_rules():
    """A display name may hold any printable text but no control characters."""
    assert check_display_name("name", "Ada Lovelace ☺") == "Ada Lovelace ☺"
    assert "control" in message(check_display_name, "name", "a\nb")
