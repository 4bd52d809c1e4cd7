"""``python -m baselines.chat_thresholds``: the seed's loop and the chat expert on seeded
episodes, and which reward thresholds separate them (issue 27, item 5)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import chat_seed_loop

from baselines.chat_thresholds import (
    EXPERT_MIN,
    RANDOM_MAX,
    REFERENCE_REPLIES,
    choose_threshold,
    main,
    play_scored,
    separating_thresholds,
    shares_above,
)


def test_the_random_policy_is_the_seeds_loop_seeded():
    (record,) = play_scored("random", [0])
    # docs/chat-task.md's figure for the seed's loop on seed 0 (env and action space seeded)
    assert record["return"] == pytest.approx(float(chat_seed_loop()[1]["total"]), abs=5e-4)
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
    loop = report["unsearched"]  # the seed loop's strings where it replies: before a search
    assert loop["strings"] == 4 * report["contexts"]
    assert len(loop["lengths_above_good"]) == round(loop["above_good"] * loop["strings"])
    assert negatives_report(range(990, 1000)) == report  # the samples are seeded


def _synthetic_returns(random_mean: float, n: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)  # fixed: the same returns every run
    return rng.normal(random_mean, 0.3, n), rng.normal(0.8, 0.2, n)


@pytest.mark.parametrize("n", [1000, 300, 100])
def test_the_chosen_threshold_is_the_middle_of_the_trusted_interval(n):
    random, expert = _synthetic_returns(-1.0, n)
    choice = choose_threshold(random, expert)
    assert choice.lowest < choice.threshold < choice.highest
    assert abs(choice.threshold - (choice.lowest + choice.highest) / 2) <= 0.005  # rounded
    for t in (choice.lowest, choice.threshold, np.nextafter(choice.highest, -np.inf)):
        share_random, share_expert = shares_above(random, [t])[0], shares_above(expert, [t])[0]
        assert share_random < RANDOM_MAX and share_expert >= EXPERT_MIN, t
    # the interval is tight: just below it too much random passes; at its top too few experts
    assert shares_above(random, [np.nextafter(choice.lowest, -np.inf)])[0] >= RANDOM_MAX
    assert shares_above(expert, [choice.highest])[0] < EXPERT_MIN
    grid = np.round(np.arange(-1.0, 1.01, 0.05), 2)
    inside = [t for t in grid if choice.lowest <= t < choice.highest]
    assert separating_thresholds(random, expert, grid) == inside  # the grid scan agrees


def test_no_threshold_is_chosen_when_random_and_expert_overlap():
    random, expert = _synthetic_returns(0.5)  # today's RM: random letters reach the expert
    assert choose_threshold(random, expert) is None


def _records(returns) -> list[dict]:
    return [
        {"return": float(r), "rm": [float(r)], "requests": 1, "gold": 0.0, "seed": i,
         "reference": {name: [0.0] for name in REFERENCE_REPLIES}}
        for i, r in enumerate(returns)
    ]  # fmt: skip


def test_choose_prints_the_rule_s_threshold_from_an_earlier_run(tmp_path, capsys):
    random, expert = _synthetic_returns(-1.0)
    earlier = tmp_path / "scan.json"
    earlier.write_text(
        json.dumps({"episodes": {"random": _records(random), "chat-expert": _records(expert)}})
    )
    out = tmp_path / "again.json"
    assert main(["--from", str(earlier), "--choose", "--out", str(out)]) == 0
    chosen = choose_threshold(random, expert)
    said = f"reward_threshold {chosen.threshold} (trusted: [{chosen.lowest:.4f}, "
    printed = capsys.readouterr().out.splitlines()[-3:]  # one line a scale, raw first
    assert printed[0].startswith(f"raw: {said}")
    # the records' references score 0, so each relative scale is the raw one: the same choice
    assert [line.split(": ", 1)[1].startswith(said) for line in printed] == [True] * 3
    report = json.loads(out.read_text())["report"]
    assert report["raw"]["chosen"]["threshold"] == chosen.threshold
