"""``dialog-bench compare``: paired differences of results files on identical episodes."""

from __future__ import annotations

import json

import pytest
from conftest import REPO_ROOT

from dialog_bench.cli import main as cli
from leaderboard.compare import compare_results
from leaderboard.results import read_results, write_results
from leaderboard.stats import paired_difference

RESULTS = "leaderboard/results/Dialog-v1"


def test_an_agent_against_itself_differs_by_exactly_nothing():
    (same,) = compare_results(f"{RESULTS}/sft-noisy.json", [f"{RESULTS}/sft-noisy.json"])
    d = same.success_difference
    assert (d.estimate, d.low, d.high) == (0.0, 0.0, 0.0)
    assert same.verdict == "no clear difference" and same.episodes == 500


def test_the_difference_is_the_paired_bootstrap_of_the_two_files():
    (c,) = compare_results(f"{RESULTS}/random.json", [f"{RESULTS}/sb3-ppo.json"])
    a = [float(e["success"]) for e in read_results(f"{RESULTS}/sb3-ppo.json")["episodes"]]
    b = [float(e["success"]) for e in read_results(f"{RESULTS}/random.json")["episodes"]]
    assert c.success_difference == paired_difference(a, b)
    assert c.success_difference.low > 0 and c.verdict == "better (CI excludes 0)"
    assert (c.candidate, c.baseline) == ("sb3-ppo", "random")
    (back,) = compare_results(f"{RESULTS}/sb3-ppo.json", [f"{RESULTS}/random.json"])
    assert back.verdict == "worse (CI excludes 0)"


def test_files_of_other_episodes_are_refused(tmp_path):
    results = read_results(f"{RESULTS}/random.json")
    results["episodes"] = results["episodes"][:-1]  # one episode fewer: not the same set
    short = write_results(tmp_path / "short.json", results)
    with pytest.raises(ValueError, match="needs the same episodes in the same order"):
        compare_results(f"{RESULTS}/random.json", [short])


def test_the_command_prints_a_table_and_writes_the_figures(tmp_path, capsys):
    out = tmp_path / "figures.json"
    argv = ["compare", f"{RESULTS}/sft-noisy.json", f"{RESULTS}/sft-filtered.json"]
    assert cli([*argv, "--json", str(out)]) == 0
    table = capsys.readouterr().out
    assert "| sft-filtered | sft-noisy | 500 |" in table
    (figures,) = json.loads(out.read_text())
    assert figures["candidate"] == "sft-filtered" and "verdict" in figures
    assert figures["success_difference"]["low"] <= figures["success_difference"]["estimate"]


def test_chat_files_are_compared_on_gold_as_the_board_compares_them(capsys):
    """Issue 32: the README's chat figure (rl-chat vs sft-chat, gold +0.021 [+0.010,
    +0.031], the lineage re-made in issue 27) is what ``compare`` prints, in a gold
    column, and its verdict is read on gold."""

    chat = REPO_ROOT / "leaderboard" / "results" / "Dialog-Chat-v1"
    base, candidate = chat / "sft-chat.json", chat / "rl-chat.json"
    (c,) = compare_results(base, [candidate])
    gold = [e["metrics"]["mean_gold"] for e in read_results(candidate)["episodes"]]
    base_gold = [e["metrics"]["mean_gold"] for e in read_results(base)["episodes"]]
    assert c.gold_difference == paired_difference(gold, base_gold)
    d = c.gold_difference
    assert f"{d.estimate:+.3f} [{d.low:+.3f}, {d.high:+.3f}]" == "+0.021 [+0.010, +0.031]"
    assert c.verdict == "better (CI excludes 0)"  # read on gold
    assert cli(["compare", str(base), str(candidate)]) == 0
    header, _, row = capsys.readouterr().out.splitlines()[:3]
    cells = dict(zip(header.split(" | "), row.split(" | "), strict=True))
    assert cells["gold difference [95% CI]"] == "+0.021 [+0.010, +0.031]"
    assert cells["gold"] == f"{c.candidate_gold:.3f}"


def test_booking_files_have_no_gold_column(capsys):
    assert cli(["compare", f"{RESULTS}/sft-noisy.json", f"{RESULTS}/sft-filtered.json"]) == 0
    assert "gold" not in capsys.readouterr().out
