"""Action wrappers: what the agent picks, turned into the text message the env reads."""

from __future__ import annotations

import numbers
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.spaces import Discrete

from dialog_env.wrappers.base import InterfaceWrapper

__all__ = ["ActActions", "as_action_index"]


def as_action_index(action: Any, n: int, what: str = "action") -> int:
    """A Discrete action as a Python int, or a clear error.

    Accepts Python and numpy integers and 0-d / 1-element integer arrays (what SB3 and
    vector code hand over). Raises ``TypeError`` for other types and ``ValueError`` for
    values outside ``[0, n)``.

    >>> as_action_index(np.int64(3), 10)
    3
    >>> as_action_index(10, 10)
    Traceback (most recent call last):
    ...
    ValueError: action 10 is out of range: valid actions are 0 to 9
    """
    if isinstance(action, np.ndarray):
        if action.size != 1:
            raise ValueError(
                f"{what} must be a single integer, got an array of shape {action.shape}"
            )
        if not np.issubdtype(action.dtype, np.integer):
            raise TypeError(f"{what} must be an integer, got an array of dtype {action.dtype}")
        action = action.reshape(()).item()
    if isinstance(action, bool) or not isinstance(action, numbers.Integral):
        raise TypeError(f"{what} must be an integer, got {type(action).__name__}")
    value = int(action)
    if not 0 <= value < n:
        raise ValueError(f"{what} {value} is out of range: valid actions are 0 to {n - 1}")
    return value


class ActActions(InterfaceWrapper):
    """Actions are the assistant's dialogue acts, ``Discrete(len(task.assistant_acts))``.

    Each act is realized as text by the task's templates, filled from a rule-based
    tracker of the conversation so far (the searched venues, the user's booking details).
    ``info["message"]`` holds the text that was sent.

    >>> import gymnasium as gym, dialog_env
    >>> env = gym.make("Dialog-Acts-v1", observation="text")
    >>> _ = env.reset(seed=0)
    >>> obs, *_ , info = env.step(0)
    >>> info["message"].startswith("Sure. Could you tell me which area")
    True
    """

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.task = env.unwrapped.task
        self.tracker = self.task.new_tracker()
        self.action_space = Discrete(len(self.task.assistant_acts))

    def inner_action(self, action: Any) -> str:
        index = as_action_index(action, self.action_space.n)
        self._message = self.task.realize(index, self.tracker.state)
        return self._message

    def outer_reset(self, obs, info):
        self.tracker.reset()
        self.tracker.sync(info["turns"])
        return obs, info

    def outer_step(self, obs, reward, terminated, truncated, info):
        self.tracker.sync(info["turns"])
        info["message"] = self._message
        return obs, reward, terminated, truncated, info
