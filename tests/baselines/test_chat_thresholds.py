"""``python -m baselines.chat_thresholds``: the seed's loop and the chat expert on seeded
episodes, and which reward thresholds separate them (issue 27, item 5)."""

from __future__ import annotations

import pytest

from baselines.chat_thresholds import REFERENCE_REPLIES, play_scored, separating_thresholds


def test_the_random_policy_is_the_seeds_loop_seeded():
    (record,) = play_scored("random", [0])
    # the README's figure for the seed's loop on seed 0 (env and action space seeded)
    assert record["return"] == pytest.approx(-0.165, abs=5e-4)
    assert record["gold"] == 0.0 and record["return"] == pytest.approx(
        sum(record["rm"]) / record["requests"]
    )
    assert play_scored("random", [0]) == [record]  # seeded: the same letters every run


def test_the_expert_answers_and_each_reply_has_its_reference_scores():
    records = play_scored("chat-expert", [0, 1])
    assert [r["gold"] for r in records] == [1.0, 1.0]
    for r in records:
        assert len(r["rm"]) == r["requests"]
        assert {k: len(v) for k, v in r["reference"].items()} == {
            k: r["requests"] for k in REFERENCE_REPLIES
        }


def test_a_threshold_separates_only_below_half_a_percent_random_and_95_percent_expert():
    random = [0.0] * 199 + [0.6]  # one in 200 above 0.5: 0.5%, not under it
    expert = [1.0] * 95 + [0.0] * 5
    assert separating_thresholds(random, expert, [0.5, 0.7]) == [0.7]
    assert separating_thresholds(random, [1.0] * 94 + [0.0] * 6, [0.7]) == []


def test_the_negatives_report_compares_in_the_same_contexts():
    from baselines.chat_thresholds import negatives_report

    report = negatives_report(range(990, 1000))
    assert report["contexts"] >= 20
    assert set(report["above_good"]) == {"random letters", "action_space.sample()"}
    assert report["above_good"]["random letters"] == 0.0  # the RM's own negatives rank low
    assert negatives_report(range(990, 1000)) == report  # the samples are seeded
