"""Any OpenAI-compatible chat endpoint as an agent: ``load_agent("openai:MODEL")``.

A model served by vLLM, SGLang, llama.cpp, a hosted API or ``dialog-bench serve`` plays
as an ``hf:`` chat model does (:mod:`agents.hf_chat`): the same system prompt
(:func:`~agents.hf_chat.booking_system_prompt`), the transcript split into chat messages
by :func:`~agents.hf_chat.transcript_messages`, and the reply cut to its tool-call line
by :func:`~agents.hf_chat.extract_message`. Its paradigm is ``zero-shot``, and since
the leaderboard cannot know what the endpoint ran, a results file made with it is a
*declared* entry: its transcripts are verified by replay like any other, its labels
(name, paradigm, model hash) are the submitter's word. Its model hash is the sha256
of what the client asked for (:attr:`OpenAIChatAgent.model_sha256`), not of weights.

- Where: ``base_url`` (``--base-url``), else ``OPENAI_BASE_URL``, else
  ``http://127.0.0.1:8000/v1``; the key ``OPENAI_API_KEY`` is sent when it is set.
- Concurrent: ``act_batch`` sends up to ``concurrency`` requests at once (a thread pool).
- Patient, within bounds: a 429, a 5xx, a refused or dropped connection or a timed-out
  request is retried up to ``retries`` times with exponential backoff (a server's
  ``Retry-After`` is honoured, capped); each request has ``request_timeout`` seconds,
  and an episode (the messages of one key of ``act_batch``) ``episode_timeout`` in all.
  Anything else, or the bounds spent, raises :class:`EndpointError` with the reason.
- Reproducible where the server allows: ``temperature`` 0 by default and the agent's
  seed (``reset(seed)``; the evaluator's is 0) sent as OpenAI's ``seed``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
import urllib.error
import urllib.request
from collections.abc import Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor
from http.client import HTTPException
from typing import Any

from agents.base import BaseAgent
from agents.hf_chat import (
    DEFAULT_MAX_NEW_TOKENS,
    TOOL_ROLES,
    booking_system_prompt,
    extract_message,
    transcript_messages,
)

__all__ = ["DEFAULT_BASE_URL", "OPENAI_PREFIX", "EndpointError", "OpenAIChatAgent"]

#: ``load_agent("openai:MODEL")`` asks the endpoint for model MODEL.
OPENAI_PREFIX = "openai:"
DEFAULT_BASE_URL = "http://127.0.0.1:8000/v1"
#: Statuses worth another try: rate limited, or the server's trouble.
RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})
MAX_BACKOFF_S = 30.0
MAX_REPLY_BYTES = 16 << 20


class EndpointError(ValueError):
    """The endpoint refused or failed a request, or the retries or time ran out (a
    ``ValueError``, so ``dialog-bench evaluate`` reports it in one line)."""


class OpenAIChatAgent(BaseAgent):
    """A model behind an OpenAI-compatible ``/chat/completions`` (paradigm ``zero-shot``)."""

    paradigm = "zero-shot"
    interface = "text"

    def __init__(
        self,
        model: str,
        base_url: str | None = None,
        api_key: str | None = None,
        system_prompt: str | None = None,
        tool_role: str = "user",
        temperature: float = 0.0,
        max_tokens: int = DEFAULT_MAX_NEW_TOKENS,
        concurrency: int = 8,
        retries: int = 5,
        backoff_s: float = 0.5,
        request_timeout: float = 120.0,
        episode_timeout: float = 1800.0,
    ):
        super().__init__()
        if not isinstance(model, str) or not model.strip():
            raise ValueError("openai:MODEL needs a model name, e.g. openai:gpt-4o-mini")
        if tool_role not in TOOL_ROLES:
            raise ValueError(f"tool_role must be one of {TOOL_ROLES}, got {tool_role!r}")
        if isinstance(temperature, bool) or not 0 <= float(temperature) <= 2:
            raise ValueError(f"temperature must be a number in [0, 2], got {temperature!r}")
        for what, value in (("concurrency", concurrency), ("max_tokens", max_tokens)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{what} must be a positive int, got {value!r}")
        if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= 20:
            raise ValueError(f"retries must be an int in [0, 20], got {retries!r}")
        for what, value in (
            ("backoff_s", backoff_s),
            ("request_timeout", request_timeout),
            ("episode_timeout", episode_timeout),
        ):
            if not 0 < float(value) < 1e6:
                raise ValueError(f"{what} must be a positive number of seconds, got {value!r}")
        base_url = base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL
        if not re.match(r"^https?://[^/\s]+", base_url):
            raise ValueError(f"the base URL must be http(s)://HOST[:PORT][/PATH], got {base_url!r}")
        self.model, self.base_url = model, base_url.rstrip("/")
        self.api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        self.system_prompt = booking_system_prompt() if system_prompt is None else system_prompt
        self.tool_role, self.temperature = tool_role, float(temperature)
        self.max_tokens = max_tokens
        self.concurrency, self.retries, self.backoff_s = concurrency, retries, float(backoff_s)
        self.request_timeout, self.episode_timeout = float(request_timeout), float(episode_timeout)
        self.name = _entry_name(model)
        self.seed = 0
        self._episode_start: dict[Hashable, float] = {}

    @property
    def model_sha256(self) -> str:
        """The declared model's identity: sha256 of the model name and the prompt settings
        the client sent (not the endpoint's weights, which the board cannot see)."""
        declared = {
            "endpoint_model": self.model,
            "system_prompt": self.system_prompt,
            "tool_role": self.tool_role,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
        }
        return hashlib.sha256(json.dumps(declared, sort_keys=True).encode()).hexdigest()

    # -- the Agent protocol ------------------------------------------------------------------
    def reset(self, seed: int | None = None) -> None:
        """Fix the seed sent with every request (``None``: a fresh one)."""
        super().reset(seed)
        self.seed = int(self.rng.integers(2**63)) if seed is None else int(seed)
        self._episode_start.clear()

    def end_episode(self, key: Hashable) -> None:
        """Episode ``key`` ended: its clock stops."""
        self._episode_start.pop(key, None)

    def act(self, observation: str) -> str:
        return self.act_batch([observation], keys=["act"])[0]

    def act_batch(
        self, observations: Sequence[str], keys: Sequence[Hashable] | None = None
    ) -> list[str]:
        """The next message of each conversation, ``concurrency`` requests at a time;
        ``keys`` name the episodes, whose ``episode_timeout`` runs from their first call."""
        now = time.monotonic()
        deadlines = []
        for key in keys if keys is not None else [None] * len(observations):
            start = now if key is None else self._episode_start.setdefault(key, now)
            deadlines.append(start + self.episode_timeout)
        jobs = list(zip(observations, deadlines, strict=True))
        if len(jobs) == 1:
            return [self._message(*jobs[0])]
        with ThreadPoolExecutor(min(self.concurrency, len(jobs))) as pool:
            return list(pool.map(lambda job: self._message(*job), jobs))

    def messages(self, observation: str) -> list[dict[str, str]]:
        """The chat messages sent for ``observation``: the system prompt, then the turns."""
        return transcript_messages(observation, self.system_prompt, self.tool_role)

    # -- the wire ----------------------------------------------------------------------------
    def _message(self, observation: str, deadline: float) -> str:
        body = {
            "model": self.model,
            "messages": self.messages(observation),
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "seed": self.seed,
        }
        reply = self._post("/chat/completions", body, deadline)
        try:
            content = reply["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise EndpointError(f"{self.base_url}: a reply without choices[0].message") from None
        return extract_message(content if isinstance(content, str) else "")

    def _post(self, path: str, body: dict, deadline: float) -> dict[str, Any]:
        """POST ``body`` as JSON and return the parsed reply, retrying as the class says."""
        url = self.base_url + path
        data = json.dumps(body).encode()
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        for attempt in range(self.retries + 1):
            left = deadline - time.monotonic()
            if left <= 0:
                raise EndpointError(f"{url}: the episode took over {self.episode_timeout:g} s")
            request = urllib.request.Request(url, data=data, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=min(self.request_timeout, left)) as r:
                    return _json_reply(url, r.read(MAX_REPLY_BYTES + 1))
            except urllib.error.HTTPError as err:
                reason = f"HTTP {err.code}: {_error_message(err)}"
                if err.code not in RETRY_STATUSES:
                    raise EndpointError(f"{url}: {reason}") from None
                wait = _retry_after(err.headers.get("Retry-After"))
            except (urllib.error.URLError, HTTPException, OSError) as err:
                reason, wait = f"{type(err).__name__}: {getattr(err, 'reason', err)}", None
            if attempt == self.retries:
                break
            backoff = min(MAX_BACKOFF_S, self.backoff_s * 2**attempt)
            time.sleep(min(max(backoff, wait or 0.0), MAX_BACKOFF_S, max(0.0, left)))
        raise EndpointError(f"{url}: gave up after {self.retries + 1} tries, last: {reason}")


def _json_reply(url: str, data: bytes) -> dict[str, Any]:
    if len(data) > MAX_REPLY_BYTES:
        raise EndpointError(f"{url}: a reply over {MAX_REPLY_BYTES} bytes")
    try:
        reply = json.loads(data)
    except ValueError:
        raise EndpointError(f"{url}: the reply is not JSON") from None
    if not isinstance(reply, dict):
        raise EndpointError(f"{url}: the reply is not a JSON object")
    return reply


def _error_message(err: urllib.error.HTTPError) -> str:
    """The server's own reason (OpenAI's ``error.message``), on one line."""
    try:
        payload = json.loads(err.read(1 << 16))
        message = payload["error"]["message"] if isinstance(payload["error"], dict) else None
    except Exception:
        message = None
    return " ".join(str(message or err.reason).split())[:300]


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:  # an HTTP date: fall back on the backoff
        return None


def _entry_name(model: str) -> str:
    """A leaderboard entry name for a model id (``org/Model-7B`` -> ``Model-7B``)."""
    name = re.sub(r"[^A-Za-z0-9_.+-]", "-", model.rstrip("/").rsplit("/", 1)[-1])
    return name.lstrip("_.+-")[:64] or "openai-chat"
