"""The reward model's score without the last layer's unused rows
(``dialog_env.lm.last_token``) is the full forward's score to the bit."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import REPO_ROOT

from dialog_env.lm import last_token
from dialog_env.lm.last_token import kept_rows, last_token_logit, supports_last_token
from dialog_env.lm.sessions import EXACT_ROWS
from dialog_env.tasks.chat.reward_model import RewardModel, remember_scores, reward_input_ids

RESULTS = REPO_ROOT / "leaderboard" / "results" / "Dialog-Chat-v1"


@pytest.fixture(scope="module")
def rm():
    return RewardModel.load()


def published_replies(names: tuple[str, ...], episodes: int) -> list[tuple[list, str]]:
    """``(context, reply)`` of every assistant message in the first ``episodes`` episodes
    of the published chat results files ``names``: what the env scores."""
    pairs = []
    for name in names:
        records = json.loads((RESULTS / f"{name}.json").read_text())["episodes"][:episodes]
        for record in records:
            turns = record["turns"]
            pairs += [
                (turns[:i], t["text"]) for i, t in enumerate(turns) if t["role"] == "assistant"
            ]
    return pairs


def full_forward_logit(model, ids: list[int]) -> float:
    """The head's output at the last token, from the model's own forward."""
    with torch.no_grad():
        row = torch.tensor([ids])
        return float(model(input_ids=row, attention_mask=torch.ones_like(row)).logits[0, 0])


def test_the_shortcut_scores_published_replies_as_the_full_forward_does(rm, one_torch_thread):
    pairs = published_replies(("bon-chat", "random", "chat-expert"), episodes=15)
    rows = [reward_input_ids(rm.codec, c, r, rm.max_tokens) for c, r in pairs]
    # rows of every offset against the blocks the kept rows are cut at, cut rows included
    assert {len(r) % EXACT_ROWS for r in rows} == set(range(EXACT_ROWS))
    assert max(map(len, rows)) == rm.max_tokens and min(map(len, rows)) < EXACT_ROWS * 2
    assert supports_last_token(rm.model)
    fast = [last_token_logit(rm.model, r) for r in rows]
    assert fast == [full_forward_logit(rm.model, r) for r in rows]  # bit for bit


def test_score_one_is_the_same_number_with_and_without_the_shortcut(rm, monkeypatch):
    pairs = published_replies(("rl-chat",), episodes=4)
    was = remember_scores(False)
    try:
        fast = [rm.score_one(c, r) for c, r in pairs]
        monkeypatch.setattr(last_token, "FAST_LAST_TOKEN", False)
        assert not supports_last_token(rm.model)
        assert [rm.score_one(c, r) for c, r in pairs] == fast
    finally:
        remember_scores(was)


def test_a_model_in_training_takes_the_full_forward(rm):
    rm.model.train()
    try:
        assert not supports_last_token(rm.model)
    finally:
        rm.model.eval()
    assert supports_last_token(rm.model)


@pytest.mark.parametrize("width", [1, 15, 16, 17, 31, 32, 33, 200, 256, 512])
def test_the_kept_rows_are_at_least_the_floor_and_cut_at_a_block_boundary(width):
    kept = kept_rows(width)
    assert kept == width if width <= EXACT_ROWS else EXACT_ROWS <= kept < 2 * EXACT_ROWS
    assert (width - kept) % EXACT_ROWS == 0
