"""Every ``register()`` call of the package, in one place.

Variants are kwargs of one entry point; any change of dynamics or reward gets a new
``-vN`` id and the old one stays registered.
"""

from __future__ import annotations

from gymnasium.envs.registration import register, registry

from dialog_env.lm.codec import MAX_MESSAGE_TOKENS

__all__ = ["ENV_IDS", "register_envs"]

ENTRY_POINT = "dialog_env.interfaces:make_env"
VECTOR_ENTRY_POINT = "dialog_env.vector:DialogVectorEnv"
MAX_EPISODE_STEPS = 50  # messages, tool calls included

#: id -> kwargs of every registered configuration.
ENV_IDS: dict[str, dict] = {
    "Dialog-v1": {"task": "booking"},
    "Dialog-Tokens-v1": {"task": "booking", "interface": "token"},
    "Dialog-Acts-v1": {"task": "booking", "interface": "act"},
}
#: The token interface takes a step per token: its limit allows 50 full-length messages.
STEP_LIMITS = {"Dialog-Tokens-v1": MAX_EPISODE_STEPS * MAX_MESSAGE_TOKENS}


def register_envs() -> None:
    """Register every id (idempotent: ids already registered are left alone)."""
    for env_id, kwargs in ENV_IDS.items():
        if env_id in registry:
            continue
        register(
            id=env_id,
            entry_point=ENTRY_POINT,
            vector_entry_point=VECTOR_ENTRY_POINT,
            max_episode_steps=STEP_LIMITS.get(env_id, MAX_EPISODE_STEPS),
            kwargs=dict(kwargs),
        )
