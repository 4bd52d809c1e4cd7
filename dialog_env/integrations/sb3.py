"""Stable-Baselines3 on the batched vector env: ``SB3VecEnv(DialogVectorEnv)``.

SB3 trains on its own ``VecEnv`` interface: same-step autoreset with the last
observation in ``info["terminal_observation"]`` and ``info["TimeLimit.truncated"]``. This
adapter gives SB3 that interface over :class:`~dialog_env.vector.DialogVectorEnv`, so a
rollout step is one batched voice decode for all sub-envs::

    from stable_baselines3 import PPO
    from dialog_env.integrations.sb3 import make_sb3_vec_env

    venv = make_sb3_vec_env("Dialog-Acts-v1", n_envs=8, user_model="template", monitor=True)
    PPO("MlpPolicy", venv, verbose=1).learn(10_000)

It is an integration, not a wrapper: a ``gym.Wrapper`` changes one env, this adapter
turns the whole vector env into another library's interface. (``dialog_env.wrappers.sb3``
re-exports it for one release.) Importing this module imports stable-baselines3 (the
``[dev]`` extra, or ``pip install stable-baselines3``).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env import VecEnv, VecMonitor

from dialog_env.vector import DialogVectorEnv

__all__ = ["SB3VecEnv", "make_sb3_vec_env"]


class SB3VecEnv(VecEnv):
    """An SB3 ``VecEnv`` over a :class:`DialogVectorEnv` (array observations only)."""

    def __init__(self, venv: DialogVectorEnv):
        if not isinstance(venv.single_observation_space, gym.spaces.Box):
            raise TypeError(
                "SB3VecEnv needs array observations; make the env with "
                "interface='act', observation='state' (got "
                f"{type(venv.single_observation_space).__name__})"
            )
        self.venv = venv
        super().__init__(venv.num_envs, venv.single_observation_space, venv.single_action_space)
        self._actions: np.ndarray | None = None

    def reset(self) -> np.ndarray:
        seeds = [None if s is None else int(s) for s in self._seeds]
        obs, infos = self.venv.reset(seed=seeds if any(s is not None for s in seeds) else None)
        self.reset_infos = [self._info_at(infos, i) for i in range(self.num_envs)]
        self._reset_seeds()
        self._reset_options()
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions)

    def step_wait(self):
        if self._actions is None:
            raise RuntimeError("step_async() must come before step_wait()")
        obs, rewards, terminated, truncated, infos = self.venv.step(self._actions)
        self._actions = None
        dones = terminated | truncated
        out_infos = [self._info_at(infos, i) for i in range(self.num_envs)]
        done_ids = [int(i) for i in np.flatnonzero(dones)]
        for i in done_ids:
            out_infos[i]["terminal_observation"] = obs[i].copy()
            out_infos[i]["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
        if done_ids:
            obs = obs.copy()
            for i, (first_obs, info) in zip(
                done_ids, self.venv.reset_subenvs(done_ids), strict=True
            ):
                obs[i] = first_obs
                self.reset_infos[i] = info
        return obs, rewards.astype(np.float32), dones, out_infos

    @staticmethod
    def _info_at(infos: dict[str, Any], i: int) -> dict[str, Any]:
        """Sub-env ``i``'s info out of the batched info."""
        return {
            key: value[i]
            for key, value in infos.items()
            if not key.startswith("_") and infos[f"_{key}"][i]
        }

    def close(self) -> None:
        self.venv.close()

    def get_attr(self, attr_name: str, indices=None) -> list[Any]:
        return [self.venv.envs[i].get_wrapper_attr(attr_name) for i in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices=None) -> None:
        for i in self._get_indices(indices):
            setattr(self.venv.envs[i], attr_name, value)

    def env_method(self, method_name: str, *args, indices=None, **kwargs) -> list[Any]:
        return [
            self.venv.envs[i].get_wrapper_attr(method_name)(*args, **kwargs)
            for i in self._get_indices(indices)
        ]

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices=None) -> list[bool]:
        from stable_baselines3.common.env_util import is_wrapped

        return [is_wrapped(self.venv.envs[i], wrapper_class) for i in self._get_indices(indices)]


def make_sb3_vec_env(
    env_id: str = "Dialog-Acts-v1", n_envs: int = 8, monitor: bool = False, **kwargs: Any
) -> VecEnv:
    """``gymnasium.make_vec(env_id, num_envs=n_envs, **kwargs)`` as an SB3 ``VecEnv``: an
    :class:`SB3VecEnv`, inside SB3's ``VecMonitor`` with ``monitor=True`` (each finished
    episode's return and length in ``info["episode"]``, so SB3 logs ``ep_rew_mean`` and
    ``ep_len_mean``)."""
    venv = gym.make_vec(env_id, num_envs=n_envs, **kwargs)
    if not isinstance(venv, DialogVectorEnv):
        raise TypeError(f"{env_id} does not build a DialogVectorEnv (got {type(venv).__name__})")
    adapter = SB3VecEnv(venv)
    return VecMonitor(adapter) if monitor else adapter
