"""Envs for episodes played side by side, each slot reset with a chosen seed.

:func:`open_env_slots` gives ``n`` slots behind one small interface: reset some slots with
given seeds, step some slots with given messages, reach a slot's env for its episode
summary. With the env id's batched vector env (the spec's ``vector_entry_point``, e.g.
``DialogVectorEnv``) every step is one batched LM decode for all slots; otherwise each
slot is its own ``gymnasium.make`` env. Either way slot ``i`` plays exactly the episode a
single env plays for the same seed and messages, so evaluation and replay may use
different batch sizes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from leaderboard.episodes import EpisodeSet

__all__ = ["IDLE_MESSAGE", "EnvSlots", "SingleEnvSlots", "VectorEnvSlots", "open_env_slots"]

#: What a vector sub-env without an episode of ours is sent, to keep its stray episode short.
IDLE_MESSAGE = "Goodbye!"

StepResult = tuple[Any, float, bool, bool, dict]


class EnvSlots(Protocol):
    """``n`` envs that episodes of one episode set are played in."""

    size: int

    def reset(self, slots: Sequence[int], seeds: Sequence[int]) -> list[Any]:
        """Reset each slot with its seed; the opening observations."""

    def step(self, slots: Sequence[int], messages: Sequence[str]) -> list[StepResult]:
        """Send each slot its message; ``(obs, reward, terminated, truncated, info)`` each."""

    def env(self, slot: int) -> Any:
        """The env (wrapper stack) of a slot, for ``unwrapped.episode_summary()``."""

    def close(self) -> None: ...


class SingleEnvSlots:
    """One ``gymnasium.make`` env per slot."""

    def __init__(self, episode_set: EpisodeSet, size: int):
        import gymnasium as gym

        import dialog_env  # noqa: F401  (registers the ids)

        self.size = size
        self._envs = [gym.make(episode_set.env_id, **episode_set.env_kwargs) for _ in range(size)]

    def reset(self, slots: Sequence[int], seeds: Sequence[int]) -> list[Any]:
        return [self._envs[s].reset(seed=seed)[0] for s, seed in zip(slots, seeds, strict=True)]

    def step(self, slots: Sequence[int], messages: Sequence[str]) -> list[StepResult]:
        return [self._envs[s].step(m) for s, m in zip(slots, messages, strict=True)]

    def env(self, slot: int) -> Any:
        return self._envs[slot]

    def close(self) -> None:
        for env in self._envs:
            env.close()


class VectorEnvSlots:
    """The slots of a batched vector env that can reset single sub-envs with chosen seeds
    (``reset_subenvs``). Every step steps all sub-envs; those without an episode of ours
    get ``IDLE_MESSAGE`` (or are being auto-reset) and their outcome is ignored."""

    def __init__(self, vector_env: Any):
        self.vector_env = vector_env
        self.size = int(vector_env.num_envs)
        self._started = False

    def reset(self, slots: Sequence[int], seeds: Sequence[int]) -> list[Any]:
        slots, seeds = list(slots), [int(s) for s in seeds]
        if not self._started:
            if slots != list(range(self.size)):
                raise ValueError("the first reset of a vector env must seed every slot")
            observations, _ = self.vector_env.reset(seed=seeds)
            self._started = True
            return [observations[i] for i in range(self.size)]
        return [obs for obs, _ in self.vector_env.reset_subenvs(slots, seeds)]

    def step(self, slots: Sequence[int], messages: Sequence[str]) -> list[StepResult]:
        actions = [IDLE_MESSAGE] * self.size
        for slot, message in zip(slots, messages, strict=True):
            actions[slot] = message
        observations, rewards, terminated, truncated, infos = self.vector_env.step(actions)
        out = []
        for slot in slots:
            info = {
                key: values[slot]
                for key, values in infos.items()
                if not key.startswith("_") and infos.get(f"_{key}", [True] * self.size)[slot]
            }
            out.append(
                (
                    observations[slot],
                    float(rewards[slot]),
                    bool(terminated[slot]),
                    bool(truncated[slot]),
                    info,
                )
            )
        return out

    def env(self, slot: int) -> Any:
        return self.vector_env.envs[slot]

    def close(self) -> None:
        self.vector_env.close()


def open_env_slots(episode_set: EpisodeSet, size: int) -> EnvSlots:
    """``size`` slots for ``episode_set``: the batched vector env where the id has one."""
    import gymnasium as gym

    import dialog_env  # noqa: F401  (registers the ids)

    if size > 1 and gym.spec(episode_set.env_id).vector_entry_point is not None:
        vector_env = gym.make_vec(episode_set.env_id, num_envs=size, **episode_set.env_kwargs)
        if callable(getattr(vector_env, "reset_subenvs", None)) and hasattr(vector_env, "envs"):
            return VectorEnvSlots(vector_env)
        vector_env.close()
    return SingleEnvSlots(episode_set, size)
