"""Dialog envs for RLlib (extra ``rllib``): ``register_env`` and a PPO config on the acts.

RLlib builds its envs by a name it registered itself, not through the Gymnasium
registry (``ray.tune.register_env(name, creator)``, the creator taking one
``env_config`` dict); :func:`register` does that for a dialog-bench id, and
:func:`make_env` is the creator: ``gymnasium.make(env_id, **env_config)``, so every env
kwarg (``observation``, ``user_model``, ``split``...) is an ``env_config`` key. An env
runner seeds its envs through ``reset(seed=...)`` as any Gymnasium env.

:func:`ppo_config` is PPO on ``Dialog-Acts-v1`` (act interface, dialogue-state vector
observations, the template voice by default so that a CPU trains it in minutes); run
``python examples/rllib_ppo.py`` for a few iterations, or point ``ray.init`` at a
cluster first (docs/integrations.md, "Ray").

>>> make_env({"observation": "state", "user_model": "template"}).action_space
Discrete(10)
"""

from __future__ import annotations

from typing import Any

__all__ = ["DEFAULT_ENV_CONFIG", "make_env", "ppo_config", "register"]

#: The act interface on the state vector, voiced by templates (no LM: fast on a CPU).
DEFAULT_ENV_CONFIG = {"observation": "state", "user_model": "template"}


def make_env(env_config: dict[str, Any] | None = None, env_id: str = "Dialog-Acts-v1"):
    """The env RLlib's creator returns: ``gymnasium.make(env_id, **env_config)``.

    RLlib passes an ``EnvContext`` (a dict with worker and vector indices as attributes);
    only its items are env kwargs.
    """
    import gymnasium as gym

    import dialog_env  # noqa: F401  (registers the ids)

    return gym.make(env_id, **dict(env_config or {}))


def register(name: str = "Dialog-Acts-v1", env_id: str | None = None) -> str:
    """Register dialog-bench's ``env_id`` (default: ``name``) with RLlib as ``name``."""
    try:
        from ray.tune.registry import register_env
    except ImportError:
        raise ImportError(
            "RLlib needs Ray: pip install 'dialog-bench[rllib]' (or pip install 'ray[rllib]')"
        ) from None
    target = env_id or name
    register_env(name, lambda config: make_env(config, target))
    return name


def ppo_config(
    env_config: dict[str, Any] | None = None,
    train_batch_size: int = 1000,
    seed: int = 0,
    num_env_runners: int = 0,
):
    """An RLlib ``PPOConfig`` on ``Dialog-Acts-v1`` (registered here), ready to
    ``build_algo()``; ``num_env_runners=0`` samples in the driver."""
    from ray.rllib.algorithms.ppo import PPOConfig

    name = register("Dialog-Acts-v1")
    return (
        PPOConfig()
        .environment(name, env_config={**DEFAULT_ENV_CONFIG, **(env_config or {})})
        .env_runners(num_env_runners=num_env_runners)
        .training(
            train_batch_size_per_learner=train_batch_size,
            minibatch_size=min(128, train_batch_size),
            num_epochs=4,
            lr=3e-4,
        )
        .debugging(seed=seed)
    )
