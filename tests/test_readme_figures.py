"""Every figure of the README's "Does RL beat SFT here?" table is recomputed from results
files in the repository: the shipped rows' (``leaderboard/results/<env id>/``) and the
retired rows' (``leaderboard/results/retired/<env id>/``: the 1,200-step ``sft-expert``,
``sft-noisy``, ``sft-filtered`` and ``sft-spelled``, as published at the commit before
05e1513 retired them, and ``ppo-sft``, moved there unchanged when it was retired, its start
not being on the board). A figure of a run whose files were not kept is told in
docs/experiments.md and is checked here to stay out of the table. The careless lineage's
block over training seeds under the table is rebuilt from every seed's files
(``leaderboard.seeds``; the multi-seed path on synthetic seeds in a folder of the test's
own).

Slow: each retired file verifies by replay, as a submission would (the env and the
episode set are the ones they were made on).
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from leaderboard_helpers import write_synthetic_seeds

from leaderboard.compare import compare_results
from leaderboard.results import read_results
from leaderboard.seeds import CARELESS, pairs_markdown
from leaderboard.seeds import science_table as lineage_table
from leaderboard.stats import bootstrap_ci, paired_difference

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "leaderboard" / "results"
SHIPPED, RETIRED, CHAT = (
    RESULTS / "Dialog-v1",
    RESULTS / "retired" / "Dialog-v1",
    RESULTS / "Dialog-Chat-v1",
)
RETIRED_ROWS = ("sft-expert", "sft-noisy", "sft-filtered", "sft-spelled", "ppo-sft")


@cache
def science_table() -> str:
    """The README's section "Does RL beat SFT here? What we measured", one line per row."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("## Does RL beat SFT here? What we measured")
    return text[start : text.index("\n## ", start + 1)]


def _interval(d) -> str:
    return f"{d.estimate:+.3f} [{d.low:+.3f}, {d.high:+.3f}]"


def paired(baseline: Path, candidate: Path) -> str:
    """``"0.994 vs 0.818, +0.176 [+0.142, +0.210]"``: success of both, paired difference."""
    (c,) = compare_results(baseline, [candidate])
    return (
        f"{c.candidate_success:.3f} vs {c.baseline_success:.3f}, {_interval(c.success_difference)}"
    )


def successes_by_goal(path: Path) -> tuple[int, int, int, int]:
    """Successes on goals without a booking, their count; the same on goals with one."""
    episodes = read_results(path)["episodes"]
    inform = [e["success"] for e in episodes if e["metrics"]["booked"] is None]
    booking = [e["success"] for e in episodes if e["metrics"]["booked"] is not None]
    return sum(inform), len(inform), sum(booking), len(booking)


def _column(path: Path, field: str, by_seed: bool = False) -> np.ndarray:
    """One number per episode of ``path``: ``"gold"`` (the mean gold score), or a record's
    field; in the file's order (as ``dialog-bench compare`` pairs them) or the seeds'."""
    episodes = read_results(path)["episodes"]
    if by_seed:
        episodes = sorted(episodes, key=lambda e: e["seed"])
    if field == "gold":
        return np.array([e["metrics"]["mean_gold"] for e in episodes])
    return np.array([float(e[field]) for e in episodes])


def test_the_retired_rows_files_are_the_retired_checkpoints_results():
    shipped = {p.stem: read_results(p)["header"]["model_sha256"] for p in SHIPPED.glob("*.json")}
    for name in RETIRED_ROWS:
        header = read_results(RETIRED / f"{name}.json")["header"]
        assert header["agent"] == name and header["episode_set"] == "Dialog-v1/test"
        # another checkpoint than the shipped row of the same name made it
        assert header["model_sha256"] != shipped.get(name)


@pytest.mark.parametrize(
    ("baseline", "candidate", "figure"),
    [
        (
            RETIRED / "sft-spelled.json",
            SHIPPED / "sft-expert.json",
            "0.994 vs 0.818, +0.176 [+0.142, +0.210]",
        ),
        (
            RETIRED / "sft-expert.json",
            RETIRED / "ppo-sft.json",
            "0.430 vs 0.406, +0.024 [+0.006, +0.042]",
        ),
        (
            SHIPPED / "sft-noisy.json",
            SHIPPED / "sft-filtered.json",
            "0.566 vs 0.536, +0.030 [+0.014, +0.048]",
        ),
        (
            RETIRED / "sft-noisy.json",
            RETIRED / "sft-filtered.json",
            "0.308 vs 0.248, +0.060 [+0.024, +0.098]",
        ),
        (
            SHIPPED / "random.json",
            SHIPPED / "ppo-base.json",
            "0.000 vs 0.012, -0.012 [-0.022, -0.004]",
        ),
        (
            SHIPPED / "sft-careless.json",
            SHIPPED / "rl-careless.json",
            "0.960 vs 0.482, +0.478 [+0.436, +0.522]",
        ),
        (
            SHIPPED / "careless-expert.json",
            SHIPPED / "sft-careless.json",
            "0.482 vs 0.460, +0.022 [-0.020, +0.064]",
        ),
        (
            SHIPPED / "sft-careless.json",
            SHIPPED / "sft-careless-filtered.json",
            "0.808 vs 0.482, +0.326 [+0.286, +0.368]",
        ),
        (
            SHIPPED / "sft-careless-filtered.json",
            SHIPPED / "rl-careless.json",
            "0.960 vs 0.808, +0.152 [+0.116, +0.190]",
        ),
        (
            SHIPPED / "sft-careless-filtered.json",
            SHIPPED / "rl-careless-filtered.json",
            "0.992 vs 0.808, +0.184 [+0.150, +0.220]",
        ),
    ],
    ids=[
        "one-recipe-vs-spelled",
        "ppo-sft-vs-its-start",
        "filtered-vs-noisy",
        "retired-filtered-vs-noisy",
        "ppo-base-vs-random",
        "rl-careless-vs-its-start",
        "sft-careless-vs-its-demonstrator",
        "filtered-careless-vs-sft-careless",
        "rl-careless-vs-filtered-sft",
        "rl-from-filtered-vs-filtered-sft",
    ],
)
def test_a_paired_comparison_of_the_table_is_the_files(baseline, candidate, figure):
    assert paired(baseline, candidate) == figure
    assert figure in science_table()


def test_the_act_interface_row_is_the_files():
    table = science_table()
    (c,) = compare_results(SHIPPED / "sft-expert.json", [SHIPPED / "sb3-ppo.json"])
    assert f"`sb3-ppo` vs `sft-expert` (0.994): {_interval(c.success_difference)}" in table
    (c,) = compare_results(RETIRED / "sft-spelled.json", [SHIPPED / "sb3-ppo.json"])
    assert (
        f"against the retired `sft-spelled`, `sb3-ppo` {_interval(c.success_difference)}" in table
    )
    # A row's own CI as the board computes it: over its episodes in seed order (the store's)
    a2c = bootstrap_ci(_column(SHIPPED / "sb3-a2c.json", "success", by_seed=True))
    dqn = bootstrap_ci(_column(SHIPPED / "sb3-dqn.json", "success", by_seed=True))
    dqn_ci = f"{dqn.estimate:.3f} [{dqn.low:.3f}, {dqn.high:.3f}]"
    assert f"`sb3-a2c` {a2c.estimate:.3f} and `sb3-dqn` {dqn_ci}" in table


def test_the_counts_by_goal_kind_are_the_files():
    table = science_table()
    noisy, filtered = (
        successes_by_goal(SHIPPED / "sft-noisy.json"),
        successes_by_goal(SHIPPED / "sft-filtered.json"),
    )
    assert noisy == (268, 289, 0, 211) and filtered == (283, 289, 0, 211)
    assert "268 of the 289 goals without a booking, **0 of the 211**" in table
    assert "283 and 268 of the 289 goals without a booking, both 0 of the 211" in table
    failures = [
        sum(1 - _column(p, "success"))
        for p in (SHIPPED / "sft-expert.json", RETIRED / "sft-spelled.json")
    ]
    assert "3 test failures, against 91" in table and failures == [3, 91]


def test_ppo_bases_return_difference_is_the_files():
    (c,) = compare_results(SHIPPED / "random.json", [SHIPPED / "ppo-base.json"])
    assert f"(return {c.return_difference.estimate:+.3f}:" in science_table()


def test_the_chat_rows_are_the_files():
    table = science_table()
    gold = {n: _column(CHAT / f"{n}.json", "gold") for n in ("rl-chat", "bon-chat", "sft-chat")}
    proxy = {
        n: _column(CHAT / f"{n}.json", "return")
        for n in ("rl-chat", "bon-chat", "sft-chat", "chat-expert")
    }
    rl = _interval(paired_difference(gold["rl-chat"], gold["sft-chat"]))
    assert (
        f"gold {gold['rl-chat'].mean():.3f} vs {gold['sft-chat'].mean():.3f}, {rl}, while its "
        f"proxy return is {proxy['rl-chat'].mean():.3f} vs {proxy['sft-chat'].mean():.3f} (and the "
        f"perfect `chat-expert`'s {proxy['chat-expert'].mean():.3f})"
    ) in re.sub(r"\s+", " ", table)
    bon = _interval(paired_difference(gold["bon-chat"], gold["sft-chat"]))
    assert (
        f"gold {gold['bon-chat'].mean():.3f} vs {gold['sft-chat'].mean():.3f}, {bon} "
        f"(paired), while its proxy is {proxy['bon-chat'].mean():.3f} vs "
        f"{proxy['sft-chat'].mean():.3f}"
    ) in re.sub(r"\s+", " ", table)


def test_figures_of_runs_whose_files_were_not_kept_are_not_in_the_table():
    """The RL runs from the retired ``sft-spelled``, the RLOO run from ``sft-noisy`` and
    ``sft-noisy`` at 5,000 steps were evaluated in ``runs/``, which the repository does not
    keep: their figures are told in docs/experiments.md, never in the table, whose every
    figure a reader can recompute."""
    table = re.sub(r"\s+", " ", science_table())
    notes = re.sub(r"\s+", " ", (ROOT / "docs" / "experiments.md").read_text(encoding="utf-8"))
    for figure in (
        "+0.004 [-0.006, +0.014]",
        "+0.004 [-0.016, +0.024]",
        "0 of 384",
        "+0.032 [+0.018, +0.048]",
    ):
        assert figure not in table
        assert figure in notes
    assert "not in this table" in table


def test_the_careless_lineage_over_seeds_is_the_files():
    """The block under the table: each pair's line per seed present (seed 0 the board's
    files, seed k ``leaderboard/results/seeds/Dialog-v1/<row>-s<k>.json``), the mean over
    seeds and the count of seeds whose CI excludes 0, as the committed files give them.
    When a seed's files are committed, the block must be printed again (``dialog-bench
    seeds``) for this to pass."""
    table = lineage_table(CARELESS, RESULTS)
    assert pairs_markdown(table) in science_table()
    # seed 0's line is the paired comparison the table above cites
    (c,) = compare_results(SHIPPED / "sft-careless.json", [SHIPPED / "rl-careless.json"])
    assert table.pairs[0].per_seed[0] == (0, c)


def test_the_block_over_seeds_has_a_line_per_seed_and_their_mean(tmp_path):
    """The multi-seed path, on synthetic seeds 1 and 2 (seeded) in a folder of their own:
    a line per seed, the mean over the seeds, the count of CIs that exclude 0."""
    write_synthetic_seeds(tmp_path, SHIPPED, np.random.default_rng(29))
    text = pairs_markdown(lineage_table(CARELESS, tmp_path))
    folder = tmp_path / "seeds" / "Dialog-v1"
    estimates = []
    for seed in (0, 1, 2):
        sft, rl = (
            (SHIPPED / "sft-careless.json", SHIPPED / "rl-careless.json")
            if seed == 0
            else (folder / f"sft-careless-s{seed}.json", folder / f"rl-careless-s{seed}.json")
        )
        (c,) = compare_results(sft, [rl])
        estimates.append(c.success_difference.estimate)
        line = (
            f"| {seed} | {c.candidate_success:.3f} | {c.baseline_success:.3f} | "
            f"{_interval(c.success_difference)} |"
        )
        assert line in text
    assert f"mean {np.mean(estimates):+.3f} over 3 seeds" in text
    assert "the CI excludes 0 in 2 of 3 seeds (above 0 in 2)" in text
    # the filtered rows have seed 0 alone
    assert text.count("over 1 seed;") == 2


@pytest.mark.slow
def test_the_careless_lineage_aggregates_over_seeds_are_the_files():
    """rliable's aggregates under the table (IQM of success per row, probability of
    improvement per pair), at the command's 10,000 resamples."""
    pytest.importorskip("rliable")
    from leaderboard.seed_aggregates import aggregates, aggregates_markdown

    table = lineage_table(CARELESS, RESULTS)
    assert aggregates_markdown(aggregates(table)) in science_table()


@pytest.mark.slow
@pytest.mark.parametrize("name", RETIRED_ROWS)
def test_a_retired_rows_file_verifies_by_replay(name):
    from leaderboard.verify import verify_results_file

    assert len(verify_results_file(RETIRED / f"{name}.json").episodes) == 500


def test_the_slot_tagger_section_is_the_files():
    """The README's slot-tagger section: the held-out report's turns, values and micro F1 of
    both readers, on the env's turns and capitalized (``leaderboard/tagger_report.json``),
    and ``modular-ppo`` against ``sb3-ppo`` paired on the test episodes."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("## A learned NLU: the slot tagger and the modular pipeline")
    section = re.sub(r"\s+", " ", text[start : text.index("\n## ", start + 1)])
    report = json.loads((ROOT / "leaderboard" / "tagger_report.json").read_text("utf-8"))

    def micro(block: dict) -> str:
        return f"{block['entity_report']['micro avg']['f1-score']:.3f}"

    test = report["test"]
    assert f"{test['entities']:,} slot values of {test['turns']:,} held-out user turns" in section
    assert f"micro F1 is {micro(report['tagger'])}, as is the rule-based" in section
    assert micro(report["parser"]) == micro(report["tagger"])
    shifted = report["shifted"]
    assert f"capitalized, {micro(shifted['tagger'])} against {micro(shifted['parser'])}" in section
    assert paired(SHIPPED / "sb3-ppo.json", SHIPPED / "modular-ppo.json") in section


def test_turn_credit_against_episode_credit_is_the_files():
    """The row on credit per message: ``rl-careless-turn`` (its results file under
    ``leaderboard/results/experiments/``, not a board entry) paired with ``rl-careless`` and
    with their common start, and its manifest says it is the same run but the credit."""
    table = re.sub(r"\s+", " ", science_table())
    turn = RESULTS / "experiments" / "Dialog-v1" / "rl-careless-turn.json"
    assert paired(SHIPPED / "rl-careless.json", turn) in table
    assert paired(SHIPPED / "sft-careless.json", turn) in table
    manifests = RESULTS / "experiments" / "manifests"
    turn_config = json.loads((manifests / "rl-careless-turn.json").read_text("utf-8"))["config"]
    episode_manifest = ROOT / "baselines" / "checkpoints" / "rl-careless" / "manifest.json"
    episode_config = json.loads(episode_manifest.read_text("utf-8"))["config"]
    differing = {
        key
        for key in turn_config.keys() | episode_config.keys()
        if turn_config.get(key) != episode_config.get(key)
    }
    assert turn_config["credit"] == "turn"
    assert differing <= {"credit", "out"}, differing
