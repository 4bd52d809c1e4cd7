"""The registered ids' entry point: the text env with the interface's wrappers on top.

``gymnasium.make("Dialog-v1", interface="act", observation="state")`` and the shortcut
``gymnasium.make("Dialog-Acts-v1")`` both come through :func:`make_env`.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from dialog_env.core import DialogEnv
from dialog_env.lm.codec import MAX_MESSAGE_TOKENS
from dialog_env.wrappers import ActActions, StateObservation, TokenInterface, TokenObservation

__all__ = ["INTERFACES", "OBSERVATIONS", "make_env"]

#: interface -> the observations it offers; the first is the default.
INTERFACES: dict[str, tuple[str, ...]] = {
    "text": ("text",),
    "token": ("tokens",),
    "act": ("state", "text", "tokens"),
}
OBSERVATIONS = ("text", "state", "tokens")


def make_env(
    interface: str = "text",
    observation: str | None = None,
    tokenizer: Any = None,
    max_message_tokens: int = MAX_MESSAGE_TOKENS,
    **kwargs: Any,
) -> gym.Env:
    """A :class:`DialogEnv` (``kwargs``) behind the wrappers of ``interface``/``observation``.

    - ``interface="text"``: messages in, transcript out (no wrapper).
    - ``interface="token"``: one token per step in, token ids out (:class:`TokenInterface`;
      ``tokenizer`` defaults to the shipped tiny LM's).
    - ``interface="act"``: ``Discrete`` assistant acts in (:class:`ActActions`); the
      observation is the tracked state vector (``"state"``, :class:`StateObservation`,
      the default), the transcript (``"text"``) or its token ids (``"tokens"``).
    """
    if interface not in INTERFACES:
        raise ValueError(f"interface must be one of {tuple(INTERFACES)}, got {interface!r}")
    observation = observation or INTERFACES[interface][0]
    if observation not in INTERFACES[interface]:
        raise ValueError(
            f"interface={interface!r} offers observation in {INTERFACES[interface]}, "
            f"got {observation!r}"
        )
    env: gym.Env = DialogEnv(**kwargs)
    if interface == "token":
        return TokenInterface(env, tokenizer, max_message_tokens=max_message_tokens)
    if interface == "act":
        env = ActActions(env)
    if observation == "state":
        env = StateObservation(env)
    elif observation == "tokens":
        env = TokenObservation(env, tokenizer)
    return env


make_env.metadata = DialogEnv.metadata  # gymnasium.make reads the render modes from here
