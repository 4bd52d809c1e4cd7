"""Dialog envs as OpenEnv environments (optional extra ``openenv``).

`OpenEnv <https://github.com/meta-pytorch/OpenEnv>`_ (``openenv-core``) serves an
environment over HTTP and WebSocket with a Gymnasium-style ``reset``/``step``/``state``;
TRL, torchforge, Unsloth and ART consume it. This module holds both ends, built on
openenv's own types and server:

- :class:`DialogOpenEnv`, an openenv ``Environment`` over ``gymnasium.make(env_id,
  **env_kwargs)``: ``reset(seed=...)`` is the gym env's ``reset(seed=...)``, ``step``
  its ``step``; one instance per session, so every session is seeded by its own reset.
- :class:`DialogAction` (``message`` for the text ids, ``action_id`` for the token and
  act ids), :class:`DialogObservation` (the gym observation, JSON-ready, with ``info``,
  ``terminated`` and ``truncated``; ``reward`` and ``done`` as openenv has them) and
  :class:`DialogState` (env id, seed, step count, whether the episode ended).
- :func:`make_server`: openenv's ``HTTPEnvServer`` routes on a FastAPI app (``/ws`` for
  sessions, ``/reset``, ``/step``, ``/state``, ``/schema``, ``/health``), with a cap on
  concurrent sessions and an idle timeout; ``dialog-bench serve-env ENV_ID`` runs it.
- :class:`DialogEnvClient`, openenv's ``EnvClient`` for these envs: one WebSocket
  session per client, async, or synchronous through ``.sync()``.

Sessions, as openenv runs them: a WebSocket connection is a session with its own env;
it ends when the client disconnects (or sends ``close``), and one idle for longer than
the timeout is closed by openenv's reaper (a later step says so). Past the cap, a new
connection gets openenv's ``CAPACITY_REACHED`` error. The HTTP ``/reset`` and ``/step``
are openenv's stateless endpoints (a fresh env per request): ``/reset`` shows a seed's
opening, an episode needs the WebSocket.

Every session's env calls run one at a time in this process (:data:`ENV_LOCK`): the
sessions share the loaded user LM and torch's process-wide thread setting, and a
transcript must not depend on which other sessions were running.

>>> env = DialogOpenEnv("Dialog-v1", user_model="template")
>>> first = env.reset(seed=0)
>>> first.observation.startswith("user: "), first.done
(True, False)
>>> after = env.step(DialogAction(message="Goodbye!"))
>>> after.done, after.reward, env.state.step_count
(True, -0.02, 1)
"""

from __future__ import annotations

import functools
import threading
import uuid
from typing import Any

import gymnasium as gym
from openenv.core.client_types import StepResult
from openenv.core.env_client import EnvClient
from openenv.core.env_server.http_server import HTTPEnvServer
from openenv.core.env_server.interfaces import Environment
from openenv.core.env_server.types import (
    Action,
    ConcurrencyConfig,
    EnvironmentMetadata,
    Observation,
    State,
)
from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

import dialog_env  # noqa: F401  (registers the ids)
from dialog_env.registration import check_env_id

__all__ = [
    "DEFAULT_IDLE_TIMEOUT_S",
    "DEFAULT_MAX_SESSIONS",
    "ENV_LOCK",
    "DialogAction",
    "DialogEnvClient",
    "DialogObservation",
    "DialogOpenEnv",
    "DialogState",
    "make_server",
]

DEFAULT_MAX_SESSIONS = 64
DEFAULT_IDLE_TIMEOUT_S = 600.0
#: Serializes the env calls of every session of this process (see the module docstring).
ENV_LOCK = threading.Lock()


class DialogAction(Action):
    """The agent's move: ``message`` on the text ids, ``action_id`` (a token id or an
    act index) on the token and act ids; exactly one of them."""

    message: str | None = Field(default=None, description="the assistant's next message")
    action_id: int | None = Field(default=None, description="token id or act index")

    @model_validator(mode="after")
    def _one_of(self) -> DialogAction:
        if (self.message is None) == (self.action_id is None):
            # not a ValueError: openenv sends the validation errors as JSON, and an
            # exception inside them would end the session instead
            raise PydanticCustomError(
                "one_action", "give exactly one of 'message' (text ids) and 'action_id'"
            )
        return self

    @property
    def gym_action(self) -> str | int:
        """The action as the gym env takes it."""
        return self.message if self.message is not None else int(self.action_id)


class DialogObservation(Observation):
    """What the gym env returned, JSON-ready: ``observation`` (the transcript so far on
    the text ids; lists on the token and act ids), ``info``, and how the episode ended."""

    observation: Any = Field(default=None, description="the gym observation")
    info: dict[str, Any] = Field(default_factory=dict, description="the gym info")
    terminated: bool = Field(default=False, description="the user ended the conversation")
    truncated: bool = Field(default=False, description="the time limit ended it")


class DialogState(State):
    """The session's episode: env id, the seed of its last reset, steps taken
    (``step_count``), and whether it ended."""

    env_id: str = ""
    seed: int | None = None
    done: bool = False


def json_ready(value: Any) -> Any:
    """``value`` with numpy arrays and scalars as lists and Python numbers.

    >>> import numpy as np
    >>> json_ready({"a": np.arange(2), "b": (np.float32(0.5), "x")})
    {'a': [0, 1], 'b': [0.5, 'x']}
    """
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    tolist = getattr(value, "tolist", None)  # numpy arrays and scalars
    return tolist() if callable(tolist) else value


class DialogOpenEnv(Environment[DialogAction, DialogObservation, DialogState]):
    """An openenv ``Environment`` over ``gymnasium.make(env_id, **env_kwargs)``.

    ``reset(seed=...)`` and ``step`` are the gym env's, so a session replays exactly
    what ``gym.make`` gives for the same seed and actions. A misuse (a step before
    reset or after the end, a wrong action type) raises the gym env's own error, which
    openenv sends to the client. After :meth:`close` every call raises.
    """

    SUPPORTS_CONCURRENT_SESSIONS = True

    def __init__(self, env_id: str = "Dialog-v1", **env_kwargs: Any):
        super().__init__()
        check_env_id(env_id, "the OpenEnv env id")
        self.env_id, self.env_kwargs = env_id, dict(env_kwargs)
        with ENV_LOCK:
            self._env: gym.Env | None = gym.make(env_id, **env_kwargs)
        self._state = DialogState(env_id=env_id)

    def _open_env(self) -> gym.Env:
        if self._env is None:
            raise RuntimeError(
                "this session's env is closed (the client left or it was idle too long): "
                "connect again"
            )
        return self._env

    def reset(
        self, seed: int | None = None, episode_id: str | None = None, **kwargs: Any
    ) -> DialogObservation:
        """Start the episode of ``seed`` (openenv's reset parameters beyond ``seed`` and
        ``episode_id`` go to the gym env's ``reset`` as ``options``)."""
        env = self._open_env()
        with ENV_LOCK:
            observation, info = env.reset(seed=seed, options=kwargs or None)
        self._state = DialogState(
            env_id=self.env_id, seed=seed, episode_id=episode_id or str(uuid.uuid4())
        )
        return DialogObservation(observation=json_ready(observation), info=json_ready(info))

    def step(
        self, action: DialogAction, timeout_s: float | None = None, **kwargs: Any
    ) -> DialogObservation:
        """One gym step with the action's message (or id)."""
        env = self._open_env()
        with ENV_LOCK:
            observation, reward, terminated, truncated, info = env.step(action.gym_action)
        done = bool(terminated or truncated)
        self._state.step_count += 1
        self._state.done = done
        return DialogObservation(
            observation=json_ready(observation),
            info=json_ready(info),
            reward=float(reward),
            done=done,
            terminated=bool(terminated),
            truncated=bool(truncated),
        )

    @property
    def state(self) -> DialogState:
        """The session's episode so far."""
        return self._state

    def get_metadata(self) -> EnvironmentMetadata:
        """The env id and its docstring's first line, for openenv's ``/metadata``."""
        env = self._open_env()
        doc = (type(env.unwrapped).__doc__ or "").strip().split("\n")[0]
        return EnvironmentMetadata(
            name=self.env_id, description=doc or self.env_id, version=self.env_id[-2:]
        )

    def close(self) -> None:
        """Close the gym env; the session can take no more calls."""
        if self._env is not None:
            env, self._env = self._env, None
            env.close()


def make_server(
    env_id: str = "Dialog-v1",
    max_sessions: int = DEFAULT_MAX_SESSIONS,
    idle_timeout_s: float | None = DEFAULT_IDLE_TIMEOUT_S,
    **env_kwargs: Any,
) -> tuple[Any, HTTPEnvServer]:
    """``(app, server)``: a FastAPI app with openenv's routes over :class:`DialogOpenEnv`
    sessions of ``env_id``, and openenv's ``HTTPEnvServer`` behind it (its
    ``active_sessions`` counts the open ones). Serve the app with uvicorn.

    ``max_sessions`` caps the concurrent WebSocket sessions; one idle for
    ``idle_timeout_s`` seconds (``None``: no limit) is closed.
    """
    from fastapi import FastAPI

    check_env_id(env_id, "the OpenEnv env id")
    if isinstance(max_sessions, bool) or not isinstance(max_sessions, int) or max_sessions < 1:
        raise ValueError(f"max_sessions must be a positive int, got {max_sessions!r}")
    if idle_timeout_s is not None and not 0 < idle_timeout_s < 1e7:
        raise ValueError(f"the idle timeout must be a positive number of s, got {idle_timeout_s}")
    config = ConcurrencyConfig(max_concurrent_envs=max_sessions, session_timeout=idle_timeout_s)
    factory = functools.partial(DialogOpenEnv, env_id, **env_kwargs)
    server = HTTPEnvServer(factory, DialogAction, DialogObservation, concurrency_config=config)
    app = FastAPI(
        title=f"dialog-bench: {env_id} (OpenEnv)",
        description=f"OpenEnv sessions of {env_id}: WebSocket /ws (reset, step, state).",
    )
    server.register_routes(app)
    return app, server


class DialogEnvClient(EnvClient[DialogAction, DialogObservation, DialogState]):
    """openenv's ``EnvClient`` for a served Dialog env: one WebSocket session.

    ``step`` takes a :class:`DialogAction`, or a plain message (``str``) or id (``int``).

    >>> client = DialogEnvClient(base_url="http://127.0.0.1:8001")  # doctest: +SKIP
    >>> with client.sync() as env:  # doctest: +SKIP
    ...     result = env.reset(seed=0)
    ...     result = env.step("Goodbye!")
    ...     result.reward, result.done
    (-0.02, True)
    """

    async def _send(self, message: dict[str, Any]) -> None:
        """Send ``message``. openenv's server refuses a session (``CAPACITY_REACHED``) with
        an error message and a close, often before the client's first message: a send
        into that closed connection is let pass, so that the receive that follows reads
        the server's reason (``EnvClient`` raises it) instead of a bare close."""
        from websockets.exceptions import ConnectionClosed

        try:
            await super()._send(message)
        except ConnectionClosed:
            pass  # the receive raises ConnectionClosed itself when no reason was sent

    def _step_payload(self, action: DialogAction | str | int) -> dict[str, Any]:
        if isinstance(action, str):
            action = DialogAction(message=action)
        elif isinstance(action, int) and not isinstance(action, bool):
            action = DialogAction(action_id=action)
        if not isinstance(action, DialogAction):
            raise TypeError(f"a step takes a DialogAction, str or int, not {type(action)}")
        return action.model_dump(exclude_none=True, exclude={"metadata"})

    def _parse_result(self, payload: dict[str, Any]) -> StepResult[DialogObservation]:
        observation = DialogObservation(
            **payload.get("observation", {}),
            reward=payload.get("reward"),
            done=payload.get("done", False),
        )
        return StepResult(observation=observation, reward=observation.reward, done=observation.done)

    def _parse_state(self, payload: dict[str, Any]) -> DialogState:
        return DialogState(**payload)
