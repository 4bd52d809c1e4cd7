"""``DialogVectorEnv``: many conversations, one batched LM decode per step.

``gymnasium.make_vec("Dialog-v1", num_envs=N)`` builds it through the spec's
``vector_entry_point``. Each sub-env is the very stack ``gymnasium.make`` builds (the text
env and its interface wrappers); a step advances every sub-env up to the point where its
user needs a voice, voices all those turns in one ``voice_batch`` call (one batched,
KV-cached decode for the LM voice), then finishes every sub-env's step. Sub-env ``i``
plays exactly the episode a single env plays for the same seed and actions.

Autoreset follows Gymnasium's default ``NEXT_STEP`` mode: the step after a sub-env's
episode ended resets it (its action is ignored; reward 0, not terminated).

A batch is checked whole before any sub-env moves: one bad action (wrong type, out of
range) raises and leaves every sub-env as it was. ``num_envs`` is at most
:data:`MAX_NUM_ENVS`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium.spaces import Discrete, Text
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space, concatenate, create_empty_array

from dialog_env.interfaces import make_env
from dialog_env.voicing import drive_all
from dialog_env.wrappers.actions import as_action_index
from dialog_env.wrappers.base import reset_steps, step_steps

__all__ = ["MAX_NUM_ENVS", "DialogVectorEnv"]

#: The most sub-envs one vector env holds: each is a whole env stack (~50 KiB, more with
#: an LM voice's caches), and a batch beyond this is better sharded (Ray) than built.
MAX_NUM_ENVS = 4096


class DialogVectorEnv(VectorEnv):
    """``num_envs`` dialog envs stepped together, their user turns voiced in one batch.

    Args:
        num_envs: the number of sub-envs, 1 to :data:`MAX_NUM_ENVS`.
        max_episode_steps: steps after which a sub-env is truncated (the spec's limit).
        **kwargs: what ``gymnasium.make`` takes for one env (``split``, ``user_model``,
            ``interface``, ``observation``...).

    >>> import gymnasium as gym, dialog_env
    >>> envs = gym.make_vec("Dialog-Acts-v1", num_envs=3, user_model="template")
    >>> obs, info = envs.reset(seed=0)
    >>> obs.shape[0], envs.action_space
    (3, MultiDiscrete([10 10 10]))
    """

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": ["ansi"]}

    def __init__(self, num_envs: int, max_episode_steps: int | None = None, **kwargs: Any):
        if isinstance(num_envs, bool) or not isinstance(num_envs, int):
            raise ValueError(f"num_envs must be a positive int, got {num_envs!r}")
        if not 1 <= num_envs <= MAX_NUM_ENVS:
            raise ValueError(f"num_envs must be between 1 and {MAX_NUM_ENVS}, got {num_envs}")
        if kwargs.get("render_mode") not in (None, "ansi"):
            raise ValueError("DialogVectorEnv renders only in 'ansi' mode")
        self.num_envs = num_envs
        self.max_episode_steps = max_episode_steps
        self.envs = [make_env(**kwargs) for _ in range(num_envs)]
        self.render_mode = kwargs.get("render_mode")
        # One voice serves every sub-env: they all load the same model (shared, cached).
        self.voice = self.envs[0].unwrapped.voice
        self.single_observation_space = self.envs[0].observation_space
        self.single_action_space = self.envs[0].action_space
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self._elapsed = np.zeros(num_envs, dtype=np.int64)
        self._autoreset = np.zeros(num_envs, dtype=bool)
        self._started = np.zeros(num_envs, dtype=bool)  # reset at least once

    def reset(self, *, seed: int | list[int | None] | None = None, options: dict | None = None):
        if seed is None or isinstance(seed, (int, np.integer)):
            super().reset(seed=None if seed is None else int(seed))
            seeds = [None if seed is None else int(seed) + i for i in range(self.num_envs)]
        else:
            seeds = list(seed)
            if len(seeds) != self.num_envs:
                raise ValueError(f"got {len(seeds)} seeds for {self.num_envs} sub-envs")
        results = drive_all(
            [
                reset_steps(env, seed=s, options=options)
                for env, s in zip(self.envs, seeds, strict=True)
            ],
            self.voice,
        )
        self._elapsed[:] = 0
        self._autoreset[:] = False
        self._started[:] = True
        infos: dict[str, Any] = {}
        for i, (_, info) in enumerate(results):
            infos = self._add_info(infos, info, i)
        return self._batch([obs for obs, _ in results]), infos

    def step(self, actions):
        if not self._started.all():
            raise RuntimeError("call reset() before step()")
        actions = list(self._unbatch(actions))
        resetting = self._autoreset.copy()
        # Every action is checked before any sub-env moves (a sub-env due for a reset
        # ignores its action): a bad one in any position changes nothing.
        for i, action in enumerate(actions):
            if not resetting[i]:
                self._check_action(i, action)
        steppings = [
            reset_steps(env) if resetting[i] else step_steps(env, actions[i])
            for i, env in enumerate(self.envs)
        ]
        results = drive_all(steppings, self.voice)
        observations, infos = [], {}
        rewards = np.zeros(self.num_envs, dtype=np.float64)
        terminations = np.zeros(self.num_envs, dtype=bool)
        truncations = np.zeros(self.num_envs, dtype=bool)
        for i, result in enumerate(results):
            if resetting[i]:
                obs, info = result
                self._elapsed[i], self._autoreset[i] = 0, False
            else:
                obs, rewards[i], terminations[i], _, info = result
                truncations[i] = self._count_step(i, bool(terminations[i]))
            observations.append(obs)
            infos = self._add_info(infos, info, i)
        return self._batch(observations), rewards, terminations, truncations, infos

    def step_subenvs(
        self, indices: list[int], actions: list
    ) -> list[tuple[Any, float, bool, bool, dict]]:
        """Step some sub-envs now, their user turns voiced in one batch; the others are
        left exactly as they are.

        Returns each one's ``(obs, reward, terminated, truncated, info)``. A sub-env whose
        episode ended must be reset (``reset`` or :meth:`reset_subenvs`) before it is
        stepped again. Where :meth:`step` has to send every sub-env something, this lets
        a trainer that plays one episode per sub-env leave the finished ones idle: no
        action is harmless on every task (a chat user leaves after a few tool calls).
        """
        indices = [int(i) for i in indices]
        if not self._started[indices].all():
            raise RuntimeError("call reset() (or reset_subenvs()) before step_subenvs()")
        if len(actions) != len(indices):
            raise ValueError(f"got {len(actions)} actions for {len(indices)} sub-envs")
        if len(set(indices)) != len(indices):
            raise ValueError(f"sub-env indices repeat: {indices}")
        ended = [i for i in indices if self._autoreset[i]]
        if ended:
            raise ValueError(f"sub-envs {ended} ended their episodes: reset them first")
        for i, action in zip(indices, actions, strict=True):
            self._check_action(i, action)
        results = drive_all(
            [step_steps(self.envs[i], a) for i, a in zip(indices, actions, strict=True)],
            self.voice,
        )
        return [
            (obs, float(reward), bool(terminated), self._count_step(i, bool(terminated)), info)
            for i, (obs, reward, terminated, _, info) in zip(indices, results, strict=True)
        ]

    def _check_action(self, i: int, action: Any) -> None:
        """Raise ``TypeError``/``ValueError`` if sub-env ``i`` would refuse ``action``; the
        same checks its interface makes, made here so that they run before anything moves."""
        space = self.single_action_space
        if isinstance(space, Discrete):
            as_action_index(action, int(space.n), what=f"sub-env {i}'s action")
        elif isinstance(space, Text):
            if not isinstance(action, str):
                raise TypeError(
                    f"sub-env {i}'s action must be a str message, got {type(action).__name__}"
                )
        elif not space.contains(action):
            raise ValueError(f"sub-env {i}'s action is not in the action space {space}")

    def _count_step(self, i: int, terminated: bool) -> bool:
        """Count a step of sub-env ``i``; whether the spec's step limit truncates it. Its
        episode ended either way is remembered (the next ``step`` resets it)."""
        self._elapsed[i] += 1
        truncated = (
            self.max_episode_steps is not None
            and not terminated
            and bool(self._elapsed[i] >= self.max_episode_steps)
        )
        self._autoreset[i] = terminated or truncated
        return truncated

    def reset_subenvs(
        self, indices: list[int], seeds: list[int | None] | None = None
    ) -> list[tuple[Any, dict]]:
        """Reset some sub-envs now, their opening turns voiced in one batch.

        Returns each one's ``(obs, info)``. The SB3 adapter uses this for SB3's
        same-step autoreset; the sub-envs then owe no reset at the next ``step``.
        """
        seeds = seeds or [None] * len(indices)
        results = drive_all(
            [reset_steps(self.envs[i], seed=s) for i, s in zip(indices, seeds, strict=True)],
            self.voice,
        )
        self._elapsed[indices] = 0
        self._autoreset[indices] = False
        self._started[indices] = True
        return results

    def render(self) -> tuple[str, ...] | None:
        if self.render_mode is None:
            return None
        return tuple(env.render() for env in self.envs)

    def close_extras(self, **kwargs: Any) -> None:
        for env in self.envs:
            env.close()

    # -- batching --------------------------------------------------------------------------
    def _add_info(self, vector_infos: dict, env_info: dict, env_num: int) -> dict:
        """Gymnasium's info batching (``key`` array + ``_key`` mask), with dict values
        (``goal``, ``metrics``, ``reward_terms``) kept whole in object arrays: their fields
        change type from episode to episode (``booked`` may be None), which typed arrays
        per field cannot hold."""
        for key, value in env_info.items():
            array = vector_infos.get(key)
            if array is None:
                if isinstance(value, bool | np.bool_):
                    dtype = bool
                elif isinstance(value, int | np.integer):
                    dtype = np.int64
                elif isinstance(value, float | np.floating):
                    dtype = np.float64
                else:
                    dtype = object
                array = np.zeros(self.num_envs, dtype=dtype)
                if dtype is object:
                    array[:] = None
                vector_infos[f"_{key}"] = np.zeros(self.num_envs, dtype=bool)
            elif array.dtype != object and not isinstance(value, type(array[0].item())):
                array = array.astype(object)
            array[env_num] = value
            vector_infos[key] = array
            vector_infos[f"_{key}"][env_num] = True
        return vector_infos

    def _batch(self, observations: list) -> Any:
        out = create_empty_array(self.single_observation_space, self.num_envs)
        return concatenate(self.single_observation_space, observations, out)

    def _unbatch(self, actions: Any) -> list:
        if isinstance(actions, np.ndarray):
            if actions.ndim == 0 or actions.shape[0] != self.num_envs:
                raise ValueError(
                    f"actions must have a leading dimension of {self.num_envs}, "
                    f"got shape {actions.shape}"
                )
            return [actions[i] for i in range(self.num_envs)]
        if isinstance(actions, (list, tuple)):
            if len(actions) != self.num_envs:
                raise ValueError(f"got {len(actions)} actions for {self.num_envs} sub-envs")
            return list(actions)
        raise TypeError(
            f"actions must be a sequence or array of {self.num_envs} actions, "
            f"got {type(actions).__name__}"
        )
