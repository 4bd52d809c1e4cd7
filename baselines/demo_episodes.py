"""Who plays demonstrations and on which episodes: the demo generators and the
train-split episode sets that demos, preferences, Minari datasets and RL seed screens
play.

Both :mod:`baselines.demos` (JSONL demos) and :mod:`baselines.minari_demos` (a Minari
dataset of the same generator's act-interface episodes) read them here, so neither
imports the other's module to learn them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

__all__ = ["GENERATORS", "train_episodes"]

#: The agents that play demonstrations (``dialog-bench demos --generator``).
GENERATORS = (
    "expert",
    "noisy-expert",
    "careless-expert",
    "chat-expert",
    "careless-chat-expert",
)


def train_episodes(env_id: str, seeds: Sequence[int], **env_kwargs: Any):
    """An episode set of train-split goals on ``env_id`` (for demos and RL, never for scores)."""
    from leaderboard.episodes import EVAL_SEED_FLOOR, EpisodeSet, resolved_env_spec

    if any(not 0 <= s < EVAL_SEED_FLOOR for s in seeds):
        raise ValueError(f"training seeds must lie in [0, {EVAL_SEED_FLOOR})")
    spec = json.loads(json.dumps(resolved_env_spec(env_id)))
    spec["kwargs"].update(env_kwargs, split="train")
    return EpisodeSet(env_id, "train", tuple(int(s) for s in seeds), None, spec)
