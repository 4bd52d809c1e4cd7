"""No trainer trains on an evaluation episode: every episode a trainer resets is on
train-split goals, and every seed it gives lies below ``EVAL_SEED_FLOOR``.

Each test records every reset of every ``DialogEnv`` during a tiny real run.
"""

from __future__ import annotations

import pytest

from dialog_env.core import DialogEnv
from leaderboard.episodes import EVAL_SEED_FLOOR


@pytest.fixture
def resets(monkeypatch) -> list[tuple[str, int | None]]:
    """``(split, seed)`` of every ``DialogEnv`` reset from here on."""
    seen = []
    reset_steps = DialogEnv.reset_steps

    def recording(self, *, seed=None, options=None):
        seen.append((self.split, seed))
        return reset_steps(self, seed=seed, options=options)

    monkeypatch.setattr(DialogEnv, "reset_steps", recording)
    return seen


def assert_training_resets(resets: list[tuple[str, int | None]], at_least: int) -> None:
    seeded = [seed for _, seed in resets if seed is not None]
    assert len(seeded) >= at_least, "the trainer should seed its episodes"
    assert {split for split, _ in resets} == {"train"}
    assert all(0 <= seed < EVAL_SEED_FLOOR for seed in seeded), max(seeded)


def test_sb3_trainer_seeds_stay_below_the_evaluation_floor(resets, tmp_path, one_torch_thread):
    from baselines.sb3_train import SB3Config, train_sb3

    config = SB3Config(
        algo="a2c",
        total_steps=128,
        n_envs=4,
        seed=7,
        eval_every=64,
        eval_episodes=2,
        out=tmp_path / "ckpt",
        logdir=tmp_path / "runs",
    )
    train_sb3(config)
    # 4 training sub-envs, each seeded once; the evaluations play the leaderboard's first
    # dev episodes (the one keep-best rule), which no training env ever resets to
    from leaderboard.episodes import get_episode_set

    dev = set(get_episode_set("Dialog-v1", "dev", limit=2).seeds)
    evaluated = [(split, seed) for split, seed in resets if seed in dev]
    assert evaluated and {seed for _, seed in evaluated} == dev
    assert_training_resets([r for r in resets if r not in evaluated], at_least=4)


def test_ppo_trainer_seeds_stay_below_the_evaluation_floor(resets, tmp_path, one_torch_thread):
    from lm_helpers import tiny_ppo_config

    from baselines.token_ppo import train_ppo

    config = tiny_ppo_config(tmp_path, iterations=1, messages_per_env=3)
    train_ppo(config)
    assert_training_resets(resets, at_least=2)
    assert all(seed is not None for _, seed in resets)  # replacements are seeded too


def test_ppo_replacement_episodes_are_drawn_below_the_floor():
    """Many draws of the seed stream that replaces finished episodes."""
    from baselines.ppo_rollout import Conversations

    conversations = Conversations(2, seed=0, user_model="template")
    seeds = conversations.draw_seeds(10_000)
    conversations.close()
    assert all(0 <= s < EVAL_SEED_FLOOR for s in seeds)
    assert max(seeds) > EVAL_SEED_FLOOR // 2  # the whole range, not a corner of it
