"""Stepping as generators, so that many episodes can share one batched voice decode.

The two voice protocols live here too: :class:`UserVoice` (anything that voices a turn)
and :class:`TaskVoice` (what a task hands other voices: its template, parser and
placeholders).

An env or task step that needs the user's voice *yields* a :class:`VoiceRequest` and is
sent back ``(text, fell_back)``. :func:`drive` serves one generator (the single env);
:func:`drive_all` serves many side by side and voices every pending request of a round in
one call of the voice's ``voice_batch`` (one batched LM decode), which is how
``DialogVectorEnv`` steps. Both paths run the very same code, so a sub-env of the vector
env plays exactly the episode the single env plays.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, runtime_checkable

import numpy as np

__all__ = ["Stepping", "TaskVoice", "UserVoice", "VoiceRequest", "drive", "drive_all", "voice_all"]

T = TypeVar("T")


@runtime_checkable
class UserVoice(Protocol):
    """Anything that turns a user turn's acts into text.

    ``voice`` returns the text and whether it fell back to the task's template voice. A
    voice may also offer ``voice_batch(turns, rngs)``, many turns in one call
    (:func:`voice_all` uses it).
    """

    def voice(self, acts: Sequence[Any], rng: np.random.Generator) -> tuple[str, bool]: ...


@runtime_checkable
class TaskVoice(UserVoice, Protocol):
    """A task's delexicalized template voice, and what any other voice needs of the task.

    Every task hands one over as ``Task.template_voice``; the LM voice
    (:mod:`dialog_env.lm`) knows the task only through it, which is why it lives here,
    beside :class:`UserVoice`, and not with the tasks.

    A turn's acts become a prompt with typed placeholders (:meth:`delexicalize`), a
    voice writes a sentence with those placeholders, :meth:`fill` puts the values in,
    and :meth:`reads_back` (the task's parser) says whether the filled sentence still
    means the acts. :meth:`voice` itself says the :meth:`template` sentence.
    """

    #: The placeholder tokens (``"[area]"``...) a sentence may hold; an LM's tokenizer
    #: keeps each as one token.
    placeholder_tokens: tuple[str, ...]
    #: Who the user is, one sentence in the second person, to prompt a chat model.
    persona: str

    def delexicalize(self, acts: Sequence[Any]) -> tuple[str, dict[str, str]]:
        """The prompt form of a turn's acts and the values its placeholders stand for."""
        ...

    def template(self, acts: Sequence[Any]) -> str:
        """The canonical delexicalized sentence of a turn's acts (the fallback)."""
        ...

    def fill(self, text: str, values: dict[str, str]) -> str:
        """``text`` with the values put in for its placeholders."""
        ...

    def placeholders(self, text: str) -> list[str]:
        """The slots of the placeholders in ``text``, in order, repeats included."""
        ...

    def reads_back(self, text: str, acts: Sequence[Any]) -> bool:
        """True when the task's parser reads the filled ``text`` as exactly ``acts``."""
        ...

    def describe(self, acts: Sequence[Any]) -> str:
        """The acts in plain words with their placeholders, to prompt a chat model."""
        ...


@dataclass
class VoiceRequest:
    """A user turn to voice: its acts and the episode's random generator."""

    acts: Sequence[Any]
    rng: np.random.Generator


Voiced = tuple[str, bool]
Stepping = Generator[VoiceRequest, Voiced, T]


def voice_all(voice: Any, requests: Sequence[VoiceRequest]) -> list[Voiced]:
    """Voice many requests, in one batch when the voice can batch.

    Each request draws its randomness from its own ``rng`` only, so a turn's text does
    not depend on which other turns share the batch.
    """
    batch = getattr(voice, "voice_batch", None)
    if batch is not None:
        return list(batch([r.acts for r in requests], [r.rng for r in requests]))
    return [voice.voice(r.acts, r.rng) for r in requests]


def drive(stepping: Stepping[T], voice: Any) -> T:
    """Run one stepping generator to its end and return its value."""
    try:
        request = next(stepping)
        while True:
            request = stepping.send(voice_all(voice, [request])[0])
    except StopIteration as stop:
        return stop.value


def drive_all(steppings: Sequence[Stepping[T]], voice: Any) -> list[T]:
    """Run many stepping generators side by side; each round is one batched voice call."""
    results: list[Any] = [None] * len(steppings)
    pending: dict[int, VoiceRequest] = {}

    def advance(i: int, sent: Voiced | None) -> None:
        try:
            gen = steppings[i]
            pending[i] = next(gen) if sent is None else gen.send(sent)
        except StopIteration as stop:
            results[i] = stop.value

    for i in range(len(steppings)):
        advance(i, None)
    while pending:
        order = sorted(pending)
        voiced = voice_all(voice, [pending.pop(i) for i in order])
        for i, text in zip(order, voiced, strict=True):
            advance(i, text)
    return results
