"""The OpenAI chat-completions wire format, as ``dialog-bench serve`` reads and writes it.

A request's ``messages`` are turned back into the transcript text an agent observes
(:func:`messages_transcript`, the inverse of :func:`dialog_env.chat_messages.transcript_messages`):
the system prompt is dropped, and each message's lines become ``role: text`` turns, a
``user`` line that starts with ``Tool result:`` (how ``transcript_messages`` writes a
tool result by default) becoming a ``tool`` turn. For every transcript the env
produces, ``messages_transcript(transcript_messages(obs, prompt)) == obs``.

Malformed input is a :class:`RequestError` carrying its HTTP status and a one-line
message, which the server sends as OpenAI's error object (:func:`error_body`).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any

from dialog_env.chat_messages import TOOL_RESULT_PREFIX
from dialog_env.text import Turn, format_transcript

__all__ = [
    "MAX_SEED",
    "TOOL_RESULT_PREFIX",
    "CompletionRequest",
    "RequestError",
    "completion_body",
    "error_body",
    "messages_transcript",
    "models_body",
    "parse_completion_request",
]

#: A request's ``seed`` is an integer in ``[0, MAX_SEED]``.
MAX_SEED = 2**63 - 1
_DROPPED_ROLES = ("system", "developer")
_TURN_ROLES = ("user", "assistant", "tool")


class RequestError(ValueError):
    """A request the server refuses: ``status`` (4xx) and a one-line reason."""

    def __init__(self, status: int, message: str, code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


@dataclass(frozen=True)
class CompletionRequest:
    """What an agent needs from a chat-completions request."""

    observation: str  # the transcript, as the env would show it to the agent
    seed: int  # the request's ``seed`` (0 when it has none)
    key: str  # sha256 of the request's model, messages and seed: the reply's identity


def _content_text(content: Any, where: str) -> str:
    """A message's content: a string, a list of text parts, or null (empty)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for part in content:
            if not (isinstance(part, dict) and part.get("type") == "text"):
                raise RequestError(400, f"{where}: only text content parts are understood")
            if not isinstance(part.get("text"), str):
                raise RequestError(400, f"{where}: a text part's 'text' must be a string")
            texts.append(part["text"])
        return "".join(texts)
    raise RequestError(400, f"{where}: 'content' must be a string, a list of parts or null")


def messages_transcript(messages: Any) -> str:
    """The transcript an agent observes, from OpenAI chat ``messages``.

    >>> messages_transcript([
    ...     {"role": "system", "content": "You are a booking assistant."},
    ...     {"role": "user", "content": "hi"},
    ...     {"role": "assistant", "content": "[search] food=thai"},
    ...     {"role": "user", "content": "Tool result: [result] ..."}])
    'user: hi\\nassistant: [search] food=thai\\ntool: [result] ...'
    """
    if not isinstance(messages, list) or not messages:
        raise RequestError(400, "'messages' must be a non-empty list of message objects")
    turns: list[Turn] = []
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        if not isinstance(message, dict):
            raise RequestError(400, f"{where} must be an object with 'role' and 'content'")
        role = message.get("role")
        if role not in _DROPPED_ROLES + _TURN_ROLES:
            raise RequestError(
                400, f"{where}: role must be one of {', '.join(_DROPPED_ROLES + _TURN_ROLES)}"
            )
        text = _content_text(message.get("content"), where)
        if role in _DROPPED_ROLES:
            continue
        for line in text.split("\n"):  # transcript_messages joins a role's turns by "\n"
            if role == "user" and line.startswith(TOOL_RESULT_PREFIX):
                turns.append(Turn("tool", line[len(TOOL_RESULT_PREFIX) :]))
            else:
                turns.append(Turn(role, line))
    if not turns:
        raise RequestError(400, "'messages' hold no user, assistant or tool turn")
    return format_transcript(turns)


def parse_completion_request(body: bytes, model_id: str) -> CompletionRequest:
    """Check a ``POST /v1/chat/completions`` body; raise :class:`RequestError` if malformed.

    ``model`` may be left out; any other model than ``model_id`` is a 404, as OpenAI's.
    Only ``n`` of 1 and no streaming are served; sampling fields (``temperature``,
    ``max_tokens``, ...) are accepted and left to the agent, which decides how it writes.
    """
    try:
        request = json.loads(body)
    except (UnicodeDecodeError, ValueError) as err:
        raise RequestError(400, f"the body is not JSON: {err}") from None
    if not isinstance(request, dict):
        raise RequestError(400, "the body must be a JSON object")
    model = request.get("model", model_id)
    if not isinstance(model, str):
        raise RequestError(400, "'model' must be a string")
    if model != model_id:
        raise RequestError(
            404,
            f"model {model[:80]!r} is not served here; this server serves {model_id!r}",
            "model_not_found",
        )
    if request.get("stream"):
        raise RequestError(400, "streaming is not supported: send 'stream': false")
    n = request.get("n", 1)
    if n is not None and (isinstance(n, bool) or n != 1):
        raise RequestError(400, "only 'n': 1 is supported")
    seed = request.get("seed")
    seed = 0 if seed is None else seed
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise RequestError(400, f"'seed' must be an integer in [0, 2**63 - 1], got {seed!r}")
    observation = messages_transcript(request.get("messages"))
    canonical = json.dumps([model_id, request["messages"], seed], sort_keys=True)
    return CompletionRequest(observation, seed, hashlib.sha256(canonical.encode()).hexdigest())


def completion_body(request: CompletionRequest, reply: str, model_id: str) -> dict[str, Any]:
    """The ``chat.completion`` object for ``reply``; its id is the request's hash, so the
    same request gets the same id as it gets the same reply."""
    return {
        "id": f"chatcmpl-{request.key[:32]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model_id,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": reply},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
    }


def models_body(model_id: str) -> dict[str, Any]:
    """The ``GET /v1/models`` list: the one served model."""
    return {
        "object": "list",
        "data": [{"id": model_id, "object": "model", "created": 0, "owned_by": "dialog-bench"}],
    }


def error_body(message: str, status: int, code: str | None = None) -> dict[str, Any]:
    """OpenAI's error object."""
    kind = "invalid_request_error" if 400 <= status < 500 else "server_error"
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}
