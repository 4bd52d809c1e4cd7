"""The chat task on the leaderboard: ranked by the hidden gold score, the proxy beside it."""

from __future__ import annotations

import gymnasium as gym
import pytest
from leaderboard_helpers import stored_entry

import dialog_env  # noqa: F401  (registers the ids)
from agents import agent_tasks, load_agent
from leaderboard.render import COLUMNS, GOLD_COLUMNS, render_markdown, standing_rows
from leaderboard.standings import compute_standings
from leaderboard.store import _gold_scores

CHAT_SET = "Dialog-Chat-v1/test"


def _chat_entries():
    # "proxy-hacker" succeeds more often and has the higher (proxy) return, but lower gold.
    n = 40
    hacker = stored_entry(
        "proxy-hacker",
        "sft-rl",
        [True] * 30 + [False] * 10,
        returns=[2.0] * n,
        episode_set=CHAT_SET,
        gold=[0.55] * 30 + [0.2] * 10,
    )
    honest = stored_entry(
        "honest",
        "sft",
        [True] * 25 + [False] * 15,
        returns=[0.5] * n,
        episode_set=CHAT_SET,
        gold=[0.95] * 25 + [0.45] * 15,
    )
    return [hacker, honest]


def test_a_judged_set_is_ranked_and_compared_by_gold_not_success_or_proxy():
    (standings,) = compute_standings(_chat_entries())
    assert standings.ranked_by == "gold"
    assert [e.name for e in standings.entries] == ["honest", "proxy-hacker"]
    assert standings.entries[0].gold.estimate == pytest.approx(0.95 * 25 / 40 + 0.45 * 15 / 40)
    verdict = standings.comparison.verdict
    assert "gold difference (RL - SFT)" in verdict and "SFT (honest) is ahead" in verdict


def test_a_judged_set_shows_gold_and_the_proxy_return_beside_it():
    (standings,) = compute_standings(_chat_entries())
    rows = standing_rows(standings)
    assert len(rows[0]) == len(GOLD_COLUMNS)
    gold_at = GOLD_COLUMNS.index("gold [95% CI]")
    proxy_at = GOLD_COLUMNS.index("proxy return [95% CI]")
    assert rows[0][1] == "honest" and rows[0][gold_at].startswith("0.762")
    assert rows[1][proxy_at].startswith("2.000")
    md = render_markdown([standings])
    assert "| gold [95% CI] |" in md and "proxy return" in md


def test_a_set_without_gold_keeps_success_ranking():
    booking = [
        stored_entry("a", "sft", [True, True, False]),
        stored_entry("b", "rl", [True, False, False]),
    ]
    (standings,) = compute_standings(booking)
    assert standings.ranked_by == "success"
    assert [e.name for e in standings.entries] == ["a", "b"]
    assert len(standing_rows(standings)[0]) == len(COLUMNS)
    # One entry without gold scores: the set is ranked by success, as gold is not known.
    mixed = [*_chat_entries(), stored_entry("c", "sft", [True] * 40, episode_set=CHAT_SET)]
    (standings,) = compute_standings(mixed)
    assert standings.ranked_by == "success"


def test_gold_scores_are_read_only_when_every_episode_has_them():
    assert _gold_scores(['{"mean_gold": 0.25}', '{"mean_gold": 1.0}']) == (0.25, 1.0)
    assert _gold_scores(['{"mean_gold": 0.25}', '{"success": true}']) == ()
    assert _gold_scores(['{"mean_gold": "high"}']) == ()


def test_the_chat_expert_answers_every_request_correctly():
    agent = load_agent("chat-expert")
    assert agent_tasks("chat-expert") == ("chat",) and agent_tasks("expert") == ("booking",)
    env = gym.make("Dialog-Chat-v1", reward="gold")
    for seed in range(5):
        obs, info = env.reset(seed=seed)
        agent.reset(seed=seed)
        done, searched = False, 0
        while not done:
            message = agent.act(obs)
            searched += message.startswith("[search]")
            obs, _, terminated, truncated, info = env.step(message)
            done = terminated or truncated
        assert info["success"] and info["metrics"]["mean_gold"] == 1.0
        assert searched >= 1  # it knows the venues only from what its searches showed
