"""JSON shapes of Letta 0.16.8's REST answers, as letta-client 1.12 parses them.

Copied field by field from a real 0.16.8 server's answers (trimmed where letta-client does not
need the rest): ``AgentState``, ``Conversation``, the streamed ``LettaStreamingResponse``
events (``ping``, ``assistant_message``, ``stop_reason``, ``usage_statistics``), the mid-stream
``event: error`` with a ``LettaErrorMessage``, and FastAPI's ``{"detail": ...}`` errors.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any, Final

USER_ID: Final = "user-00000000-0000-4000-8000-000000000000"
VERSION: Final = "0.16.8"
# FastAPI validates path ids against these (422 otherwise), so the stand-in does too.
AGENT_ID_PATTERN: Final = (r"^agent-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}"
                           r"-[0-9a-f]{12}$")
CONVERSATION_ID_PATTERN: Final = AGENT_ID_PATTERN.replace("agent-", "conv-", 1)
DONE: Final = b"data: [DONE]\n\n"


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4()}"


def agent_state(agent_id: str, name: str, description: str, created_at: str) -> dict[str, Any]:
    return {
        "created_by_id": USER_ID, "last_updated_by_id": USER_ID,
        "created_at": created_at, "updated_at": created_at,
        "id": agent_id, "name": name, "description": description,
        "tool_rules": [], "message_ids": [], "system": "", "agent_type": "letta_v1_agent",
        "llm_config": {"model": "standin-brain", "model_endpoint_type": "openai",
                       "context_window": 32000, "handle": "voiceops/standin-brain"},
        "embedding_config": {"embedding_endpoint_type": "openai",
                             "embedding_model": "text-embedding-3-small", "embedding_dim": 1536},
        "model": "voiceops/standin-brain", "embedding": "openai/text-embedding-3-small",
        "response_format": None, "metadata": None,
        "memory": {"agent_type": "letta_v1_agent", "git_enabled": False, "blocks": []},
        "blocks": [], "tools": [], "sources": [], "tags": ["voiceops-standin"],
        "tool_exec_environment_variables": [], "secrets": [], "project_id": None,
        "template_id": None, "base_template_id": None, "deployment_id": None, "entity_id": None,
        "identity_ids": [], "identities": [], "pending_approval": None,
        "message_buffer_autoclear": False, "enable_sleeptime": None, "multi_agent_group": None,
        "managed_group": None, "last_run_completion": None, "last_run_duration_ms": None,
        "last_stop_reason": None, "timezone": "UTC", "max_files_open": 5,
        "per_file_view_window_char_limit": 15000, "hidden": None,
    }


def conversation(conv_id: str, agent_id: str, created_at: str) -> dict[str, Any]:
    return {"created_by_id": USER_ID, "last_updated_by_id": USER_ID, "created_at": created_at,
            "updated_at": created_at, "id": conv_id, "agent_id": agent_id, "summary": None,
            "in_context_message_ids": [], "isolated_block_ids": [], "model": None,
            "model_settings": None, "last_message_at": None}


def _date() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def ping(run_id: str) -> dict[str, Any]:
    return {"id": new_id("ping"), "date": _date(), "name": None, "message_type": "ping",
            "otid": None, "sender_id": None, "step_id": None, "is_err": None, "seq_id": None,
            "run_id": run_id}


def assistant_message(message_id: str, step_id: str, run_id: str, content: str) -> dict[str, Any]:
    return {"id": message_id, "date": _date(), "name": None, "message_type": "assistant_message",
            "otid": message_id.removeprefix("message-"), "sender_id": None, "step_id": step_id,
            "is_err": None, "seq_id": None, "run_id": run_id, "content": content}


def stop_reason(reason: str = "end_turn") -> dict[str, Any]:
    return {"message_type": "stop_reason", "stop_reason": reason}


def usage(completion_tokens: int) -> dict[str, Any]:
    return {"message_type": "usage_statistics", "completion_tokens": completion_tokens,
            "prompt_tokens": 10, "total_tokens": 10 + completion_tokens, "step_count": 1,
            "run_ids": None, "cached_input_tokens": None, "cache_write_tokens": None,
            "reasoning_tokens": None, "context_tokens": 10 + completion_tokens}


def error_message(run_id: str, error_type: str = "llm_error",
                  message: str = "An error occurred with the LLM request.") -> dict[str, Any]:
    return {"message_type": "error_message", "run_id": run_id, "error_type": error_type,
            "message": message, "detail": None, "seq_id": None}


def sse(obj: dict[str, Any], event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(obj, separators=(',', ':'))}\n\n".encode()
