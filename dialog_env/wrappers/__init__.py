"""Interfaces over the text env, one concern per wrapper.

- :class:`ActActions`: ``Discrete`` dialogue acts in, realized as text.
- :class:`StateObservation`: the tracked dialogue state as a vector out.
- :class:`TokenInterface`: one token per step in, the conversation's token ids out.
- :class:`TokenObservation`: the conversation's token ids out.

:func:`dialog_env.interfaces.make_env` stacks them for the registered ids.
"""

from dialog_env.wrappers.actions import ActActions, as_action_index
from dialog_env.wrappers.base import InterfaceWrapper, reset_steps, step_steps
from dialog_env.wrappers.observations import StateObservation
from dialog_env.wrappers.tokens import TokenInterface, TokenObservation

__all__ = [
    "ActActions",
    "InterfaceWrapper",
    "StateObservation",
    "TokenInterface",
    "TokenObservation",
    "as_action_index",
    "reset_steps",
    "step_steps",
]
