"""Every ``register()`` call of the package, in one place.

Variants are kwargs of one entry point; any change of dynamics or reward gets a new
``-vN`` id and the old one stays registered.
"""

from __future__ import annotations

from gymnasium.envs.registration import register, registry

__all__ = ["ENV_IDS", "register_envs"]

ENTRY_POINT = "dialog_env.interfaces:make_env"
MAX_EPISODE_STEPS = 50

#: id -> kwargs of every registered configuration.
ENV_IDS: dict[str, dict] = {
    "Dialog-v1": {"task": "booking"},
    "Dialog-Acts-v1": {"task": "booking", "interface": "act"},
}


def register_envs() -> None:
    """Register every id (idempotent: ids already registered are left alone)."""
    for env_id, kwargs in ENV_IDS.items():
        if env_id in registry:
            continue
        register(
            id=env_id,
            entry_point=ENTRY_POINT,
            max_episode_steps=MAX_EPISODE_STEPS,
            kwargs=dict(kwargs),
        )
