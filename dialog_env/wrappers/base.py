"""The base of the interface wrappers: a step split around the user's voice.

An :class:`InterfaceWrapper` says how it changes an action on the way in
(:meth:`~InterfaceWrapper.inner_action`) and a result on the way out
(:meth:`~InterfaceWrapper.outer_step`, :meth:`~InterfaceWrapper.outer_reset`).
:func:`step_steps` and :func:`reset_steps` compose a stack of them around the
``DialogEnv`` generators, so the single env (``step``) and the vector env (which voices
many sub-envs in one batch) run the same code.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from dialog_env.core import StepLimit
from dialog_env.voicing import Stepping, drive

__all__ = ["InterfaceWrapper", "reset_steps", "step_steps"]


class InterfaceWrapper(gym.Wrapper):
    """A wrapper whose ``step``/``reset`` are the composition of three small hooks.

    Its public ``step`` is held to the spec's step limit (:class:`~dialog_env.core.StepLimit`)
    as the text env's is: stepping after truncation raises.
    """

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self._limit = StepLimit()

    def inner_action(self, action: Any) -> Any:
        """The action for the wrapped env (validate here: raise TypeError/ValueError)."""
        return action

    def outer_reset(self, obs: Any, info: dict) -> tuple[Any, dict]:
        return obs, info

    def outer_step(
        self, obs: Any, reward: float, terminated: bool, truncated: bool, info: dict
    ) -> tuple[Any, float, bool, bool, dict]:
        return obs, reward, terminated, truncated, info

    def step_steps(self, action: Any) -> Stepping[tuple]:
        """``step`` as a generator that yields the user turns it needs voiced."""
        result = yield from step_steps(self.env, self.inner_action(action))
        return self.outer_step(*result)

    def reset_steps(self, *, seed: int | None = None, options: dict | None = None):
        """``reset`` as a generator that yields the user turn it needs voiced."""
        result = yield from reset_steps(self.env, seed=seed, options=options)
        return self.outer_reset(*result)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        result = drive(self.reset_steps(seed=seed, options=options), self.unwrapped.voice)
        self._limit.start(self)
        return result

    def step(self, action: Any):
        self._limit.check()
        result = drive(self.step_steps(action), self.unwrapped.voice)
        self._limit.count()
        return result


def _stepper(env: gym.Env, method: str):
    if not hasattr(env, method):
        raise TypeError(f"{type(env).__name__} is neither an InterfaceWrapper nor a DialogEnv")
    return getattr(env, method)


def step_steps(env: gym.Env, action: Any) -> Stepping[tuple]:
    """One step of a stack of interface wrappers over a ``DialogEnv``, as a generator."""
    return _stepper(env, "step_steps")(action)


def reset_steps(env: gym.Env, *, seed: int | None = None, options: dict | None = None):
    """A reset of a stack of interface wrappers over a ``DialogEnv``, as a generator."""
    return _stepper(env, "reset_steps")(seed=seed, options=options)
