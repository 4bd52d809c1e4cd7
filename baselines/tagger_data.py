"""The slot tagger's data: user turns voiced in played episodes, tagged by their placeholders.

The expert plays episodes of ``Dialog-v1`` (train-split seeds below the leaderboard's
``EVAL_SEED_FLOOR``, goals of ``split``), and every user turn its env voices is recorded
as the voice wrote it: the delexicalized sentence, which
:func:`~dialog_env.tasks.booking.tagging.tag_sentence` fills and tags word by word. A
turn for which the LM voice found no faithful sentence falls back to the template
sentence; it is kept, tagged the same way, and marked ``fell_back``.

>>> turns = voiced_turns([0, 1], user_model="template")
>>> turn = turns[0]
>>> sorted(turn), turn["fell_back"]
(['fell_back', 'tags', 'text', 'words'], False)
>>> len(turn["words"]) == len(turn["tags"])
True
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from dialog_env.tasks.booking.tagging import tag_sentence, words

__all__ = ["RecordingVoice", "turns_sha256", "voiced_turns"]


class RecordingVoice:
    """A :class:`~dialog_env.voicing.UserVoice` that voices through ``voice`` (an
    :class:`~dialog_env.lm.voice.LMVoice` or the task's template voice) and records each
    turn's words, tags and fallback in :attr:`turns`. The text it returns is the wrapped
    voice's, so the episodes are those the wrapped voice plays."""

    def __init__(self, voice: Any, task_voice: Any):
        self.inner, self.task_voice = voice, task_voice
        self.turns: list[dict[str, Any]] = []

    def voice(self, acts: Sequence[Any], rng: Any) -> tuple[str, bool]:
        return self.voice_batch([acts], [rng])[0]

    def voice_batch(self, turns: Sequence[Sequence[Any]], rngs: Sequence[Any]):
        sample = getattr(self.inner, "sample_batch", None)
        sentences = sample(turns, rngs) if sample else [None] * len(turns)
        voiced = []
        for acts, sentence in zip(turns, sentences, strict=True):
            _, values = self.task_voice.delexicalize(acts)
            if sample:
                text, fell_back = self.inner.realize(acts, sentence)
            else:
                text, fell_back = self.inner.voice(acts, rngs[0])  # the template: no draw
            delexicalized = self.task_voice.template(acts) if sentence is None else sentence
            tagged, tags = tag_sentence(delexicalized, values)
            if tagged != text:
                raise AssertionError(f"tagged {tagged!r}, voiced {text!r}")
            voiced.append((text, fell_back))
            self.turns.append(
                {
                    "text": text,
                    "words": [w for w, _ in words(text)],
                    "tags": tags,
                    "fell_back": bool(fell_back),
                }
            )
        return voiced


def voiced_turns(
    seeds: Sequence[int],
    split: str = "train",
    user_model: str = "tiny",
    batch_size: int = 32,
    device: str = "cpu",
) -> list[dict[str, Any]]:
    """Every user turn of the expert's episodes on ``seeds`` (goals of ``split``), voiced
    by ``user_model``, in the order voiced: ``{"text", "words", "tags", "fell_back"}``."""
    from agents import load_agent
    from dialog_env.interfaces import make_env
    from dialog_env.voicing import drive_all
    from dialog_env.wrappers.base import reset_steps, step_steps
    from leaderboard.episodes import EVAL_SEED_FLOOR

    if any(not 0 <= s < EVAL_SEED_FLOOR for s in seeds):
        raise ValueError(f"the tagger's seeds must lie in [0, {EVAL_SEED_FLOOR})")
    env_kwargs = {"user_model": user_model, "split": split, "device": device}
    envs = [make_env(**env_kwargs) for _ in range(min(batch_size, len(seeds)) or 1)]
    recorder = RecordingVoice(envs[0].voice, envs[0].task.template_voice)
    for first in range(0, len(seeds), len(envs)):
        batch = list(zip(envs, seeds[first : first + len(envs)], strict=False))
        agents = [load_agent("expert") for _ in batch]
        for agent, (_, seed) in zip(agents, batch, strict=True):
            agent.reset(seed=seed)
        started = drive_all([reset_steps(env, seed=seed) for env, seed in batch], recorder)
        running = {i: obs for i, (obs, _) in enumerate(started)}
        while running:
            order = sorted(running)
            results = drive_all(
                [step_steps(batch[i][0], agents[i].act(running[i])) for i in order], recorder
            )
            running = {
                i: obs
                for i, (obs, _, done, cut, _) in zip(order, results, strict=True)
                if not (done or cut)
            }
    return recorder.turns


def turns_sha256(turns: Sequence[dict[str, Any]]) -> str:
    """The sha256 of the turns as canonical JSON: what a manifest records of its data."""
    text = json.dumps(list(turns), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()
