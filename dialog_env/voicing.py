"""Stepping as generators, so that many episodes can share one batched voice decode.

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

__all__ = ["Stepping", "UserVoice", "VoiceRequest", "drive", "drive_all", "voice_all"]

T = TypeVar("T")


@runtime_checkable
class UserVoice(Protocol):
    """Anything that turns a user turn's acts into text.

    ``voice`` returns the text and whether it fell back to the task's template voice. A
    voice may also offer ``voice_batch(turns, rngs)``, many turns in one call
    (:func:`voice_all` uses it).
    """

    def voice(self, acts: Sequence[Any], rng: np.random.Generator) -> tuple[str, bool]: ...


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
