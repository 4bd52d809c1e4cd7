"""Every ``register()`` call of the package, in one place.

Variants are kwargs of one entry point; any change of dynamics or reward gets a new
``-vN`` id and the old one stays registered. An alias (:data:`ALIASES`) is registered with
the very spec of its id.

**Reward thresholds** (``spec.reward_threshold``; ``return > threshold`` means solved):

- booking ids, 0.5: a success costs ``0.02`` a step, so its return exceeds 0.5 exactly
  when the goal is met within 24 messages. Measured on train seeds 0-199 with the template
  voice: the expert's returns lie in [0.82, 0.96] (all 200 above), the random agent's mean
  is -0.09 (1 of 200 above), ``action_space.sample()`` messages always return -0.08. The
  expert plays the same episodes on the token and act ids (``tests/env/test_interfaces.py``);
  random acts (``Dialog-Acts-v1``) average -0.06 with 7 of 200 above.
- chat ids, -0.23: the return (``reward="rm"``, the default) is the mean normalized score
  of the shipped reward model over the requests. Since issue 27 the RM is trained on prefs
  whose default generators include ``sampled``, the env's own ``action_space.sample()``
  strings, and -0.23 is ``baselines.chat_thresholds.choose_threshold``: the midpoint of
  the interval [-0.622, 0.168) in which ``action_space.sample()`` messages score above the
  threshold in under 0.5% of 1,000 seeded train episodes and chat-expert in at least 95%
  (``python -m baselines.chat_thresholds --episodes 1000 --choose``). Measured on seeds
  0-999: random messages above -0.23 in 0.0% (the highest -0.253), chat-expert in 99.5%.
  Before (the RM without those negatives, threshold 0.0) random messages passed in 3.3%
  and chat-expert in 87.5%. Success stays the gold judge's (``SUCCESS_GOLD``). With
  ``reward="gold"`` the return is the mean gold score in [0, 1], and 0.5 separates them
  exactly: the answerer returns 1.0 on every seed, random messages 0.0.
"""

from __future__ import annotations

from gymnasium.envs.registration import register, registry

from dialog_env.lm.codec import MAX_MESSAGE_TOKENS

__all__ = [
    "ALIASES",
    "ENV_IDS",
    "REWARD_THRESHOLDS",
    "TEXT_ENV_IDS",
    "check_env_id",
    "register_envs",
    "task_of",
]

ENTRY_POINT = "dialog_env.interfaces:make_env"
VECTOR_ENTRY_POINT = "dialog_env.vector:DialogVectorEnv"
MAX_EPISODE_STEPS = 50  # messages, tool calls included

#: id -> kwargs of every registered configuration.
ENV_IDS: dict[str, dict] = {
    "Dialog-v1": {"task": "booking"},
    "Dialog-Tokens-v1": {"task": "booking", "interface": "token"},
    "Dialog-Acts-v1": {"task": "booking", "interface": "act"},
    "Dialog-Chat-v1": {"task": "chat", "reward": "rm", "user_model": "template"},
}
#: alias -> the id whose spec it shares (the seed's name for the chat task).
ALIASES = {"ChatGPT-v1": "Dialog-Chat-v1"}
#: id -> ``spec.reward_threshold`` (how each was chosen: see the module docstring).
REWARD_THRESHOLDS = {
    "Dialog-v1": 0.5,
    "Dialog-Tokens-v1": 0.5,
    "Dialog-Acts-v1": 0.5,
    "Dialog-Chat-v1": -0.23,  # the reward model's scale (module docstring)
}
#: The ids whose agents write whole messages: the ones episode sets and LM agents are of.
TEXT_ENV_IDS = tuple(i for i, kw in ENV_IDS.items() if kw.get("interface", "text") == "text")
#: The token interface takes a step per token: its limit allows 50 full-length messages.
STEP_LIMITS = {"Dialog-Tokens-v1": MAX_EPISODE_STEPS * MAX_MESSAGE_TOKENS}


def task_of(env_id: str) -> str:
    """The task a registered id or alias is of (``"booking"``, ``"chat"``); a one-line
    ``ValueError`` naming the known ids for any other string."""
    kwargs = ENV_IDS.get(ALIASES.get(env_id, env_id))
    if kwargs is None:
        known = ", ".join([*ENV_IDS, *ALIASES])
        raise ValueError(f"unknown env id {env_id!r}: one of {known}")
    return kwargs["task"]


def register_envs() -> None:
    """Register every id (idempotent: ids already registered are left alone)."""
    ids = {**{i: i for i in ENV_IDS}, **ALIASES}
    for env_id, target in ids.items():
        if env_id in registry:
            continue
        register(
            id=env_id,
            entry_point=ENTRY_POINT,
            vector_entry_point=VECTOR_ENTRY_POINT,
            max_episode_steps=STEP_LIMITS.get(target, MAX_EPISODE_STEPS),
            reward_threshold=REWARD_THRESHOLDS[target],
            kwargs=dict(ENV_IDS[target]),
        )


def check_env_id(env_id: object, where: object) -> str:
    """``env_id`` if it is one of dialog-bench's registered ids (or aliases), else a
    one-line ``ValueError`` naming ``where`` (the file or field it was read from): an id
    read from a file never reaches Gymnasium otherwise (for ``"module:Id"`` Gymnasium
    would import ``module``).

    >>> check_env_id("ChatGPT-v1", "demo metadata")
    'ChatGPT-v1'
    >>> check_env_id("os:Dialog-v1", "x.meta.json")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: x.meta.json: env_id must be one of Dialog-v1, ..., got 'os:Dialog-v1'
    """
    if not isinstance(env_id, str) or env_id not in (*ENV_IDS, *ALIASES):
        shown = repr(env_id) if len(repr(env_id)) <= 60 else repr(env_id)[:57] + "..."
        known = ", ".join([*ENV_IDS, *ALIASES])
        raise ValueError(f"{where}: env_id must be one of {known}, got {shown}")
    return env_id
