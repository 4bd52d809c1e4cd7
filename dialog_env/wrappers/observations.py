"""Observation wrappers: the transcript turned into arrays a policy network can read."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium.spaces import Box

from dialog_env.wrappers.base import InterfaceWrapper

__all__ = ["StateObservation"]


class StateObservation(InterfaceWrapper):
    """The observation is the rule-based tracker's dialogue state as a ``float32`` vector.

    The entries (all in [0, 1]) are named by ``task.state_features``: which constraints
    the user gave, which facts it asked for, what the searches and bookings returned, what
    the assistant already told, the intents of the user's last turn, and the turn count.

    >>> import gymnasium as gym, dialog_env
    >>> env = gym.make("Dialog-Acts-v1", observation="state")
    >>> obs, info = env.reset(seed=0)
    >>> obs.shape == env.observation_space.shape, obs.dtype
    (True, dtype('float32'))
    """

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.task = env.unwrapped.task
        self.tracker = self.task.new_tracker()
        n = len(self.task.state_features)
        self.observation_space = Box(0.0, 1.0, shape=(n,), dtype=np.float32)

    def outer_reset(self, obs, info):
        self.tracker.reset()
        return self.task.state_vector(self.tracker.sync(info["turns"])), info

    def outer_step(self, obs, reward, terminated, truncated, info):
        obs = self.task.state_vector(self.tracker.sync(info["turns"]))
        return obs, reward, terminated, truncated, info
