"""``dialog-bench seeds``: a lineage's pairs over training seeds, found and read from files;
rliable's aggregates over seeds (skipped without the ``stats`` extra); the board's paired
bootstrap held against scipy's."""

from __future__ import annotations

import builtins
import json

import numpy as np
import pytest
from conftest import REPO_ROOT
from leaderboard_helpers import write_synthetic_seeds

from dialog_bench.cli import main as cli
from leaderboard import seed_aggregates
from leaderboard.compare import compare_results
from leaderboard.profile_page import PROFILE_JSON, page_figures
from leaderboard.results import read_results
from leaderboard.seeds import CARELESS, pairs_markdown, science_table, seed_files
from leaderboard.stats import iqm, paired_difference

BOARD = REPO_ROOT / "leaderboard" / "results" / "Dialog-v1"


@pytest.fixture(scope="module")
def three_seeds(tmp_path_factory):
    """A results folder with the careless board files and synthetic seeds 1 and 2."""
    root = tmp_path_factory.mktemp("seeds")
    write_synthetic_seeds(root, BOARD, np.random.default_rng(26))
    return root


def _column(path, field: str) -> np.ndarray:
    return np.array([float(e[field]) for e in read_results(path)["episodes"]])


def test_seed_files_are_the_board_file_and_the_numbered_files_of_that_row(three_seeds):
    files = seed_files(three_seeds, "Dialog-v1", "rl-careless")
    assert list(files) == [0, 1, 2]
    assert files[0] == three_seeds / "Dialog-v1" / "rl-careless.json"
    assert files[2] == three_seeds / "seeds" / "Dialog-v1" / "rl-careless-s2.json"
    # rl-careless-filtered-s1.json would not be a seed of rl-careless: the name is whole
    other = three_seeds / "seeds" / "Dialog-v1" / "rl-careless-filtered-s1.json"
    other.write_bytes(files[1].read_bytes())
    try:
        assert list(seed_files(three_seeds, "Dialog-v1", "rl-careless")) == [0, 1, 2]
        assert list(seed_files(three_seeds, "Dialog-v1", "rl-careless-filtered")) == [0, 1]
    finally:
        other.unlink()
    assert seed_files(three_seeds, "Dialog-v1", "no-such-row") == {}


def test_a_seed_0_file_among_the_seeds_is_refused(tmp_path):
    (tmp_path / "seeds" / "Dialog-v1").mkdir(parents=True)
    (tmp_path / "seeds" / "Dialog-v1" / "sft-careless-s0.json").write_text("{}")
    with pytest.raises(ValueError, match="seed 0 of sft-careless is the board's file"):
        seed_files(tmp_path, "Dialog-v1", "sft-careless")


def test_each_rl_seed_is_compared_with_the_sft_of_the_same_seed(three_seeds):
    table = science_table(CARELESS, three_seeds)
    start, filtered, filtered_start = table.pairs
    assert (start.kind, start.rl, start.sft, start.seeds) == (
        "start",
        "rl-careless",
        "sft-careless",
        (0, 1, 2),
    )
    # the filtered rows have seed 0 only: their pairs are read at seed 0 alone
    assert filtered.seeds == filtered_start.seeds == (0,)
    assert (filtered.rl, filtered.sft) == ("rl-careless", "sft-careless-filtered")
    seeds = three_seeds / "seeds" / "Dialog-v1"
    for seed, comparison in start.per_seed:
        suffix = f"-s{seed}" if seed else ""
        folder = seeds if seed else three_seeds / "Dialog-v1"
        (expected,) = compare_results(
            folder / f"sft-careless{suffix}.json", [folder / f"rl-careless{suffix}.json"]
        )
        assert comparison.success_difference == expected.success_difference
    d = [c.success_difference for _, c in start.per_seed]
    assert (d[1].estimate, d[1].low, d[1].high) == (0.0, 0.0, 0.0)  # seed 1: RL is its SFT
    assert d[2].low > 0 and d[0].low > 0
    assert start.excluding_zero == start.above_zero == 2
    assert start.mean_difference == pytest.approx(sum(x.estimate for x in d) / 3)
    assert table.row("sft-careless").seeds == (0, 1, 2)
    assert table.row("sft-careless-filtered").seeds == (0,)


def test_the_table_says_each_seed_and_the_count_over_seeds(three_seeds):
    text = pairs_markdown(science_table(CARELESS, three_seeds))
    lines = text.splitlines()
    first = next(i for i, line in enumerate(lines) if "`rl-careless` vs `sft-careless` |" in line)
    start = lines[first : first + 4]
    assert [line.split(" | ")[1] for line in start] == ["0", "1", "2", "over seeds"]
    assert "| 1 | 0.482 | 0.482 | +0.000 [+0.000, +0.000] |" in start[1]
    assert "over 3 seeds (per seed +0.000 to " in start[3]
    assert "the CI excludes 0 in 2 of 3 seeds (above 0 in 2)" in start[3]


def test_with_seed_0_alone_the_table_says_1_of_1_seeds(tmp_path):
    (tmp_path / "Dialog-v1").mkdir()
    for name in CARELESS.rows:  # the board's files, no seeds folder
        board_file = REPO_ROOT / "leaderboard" / "results" / "Dialog-v1" / f"{name}.json"
        (tmp_path / "Dialog-v1" / board_file.name).write_bytes(board_file.read_bytes())
    table = science_table(CARELESS, tmp_path)
    assert [p.seeds for p in table.pairs] == [(0,), (0,), (0,)]
    text = pairs_markdown(table)
    assert "mean +0.478 over 1 seed; the CI excludes 0 in 1 of 1 seeds (above 0 in 1)" in text
    assert "per seed" not in text


def test_no_file_of_the_lineage_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no results file of the careless lineage"):
        science_table(CARELESS, tmp_path)


def test_without_rliable_the_command_prints_the_per_seed_table_and_names_the_extra(
    three_seeds, tmp_path, capsys, monkeypatch
):
    real_import = builtins.__import__

    def no_rliable(name, *args, **kwargs):
        if name.split(".")[0] == "rliable":
            raise ImportError(f"No module named {name!r}", name=name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_rliable)
    with pytest.raises(ImportError, match=r"pip install 'dialog-bench\[stats\]'"):
        seed_aggregates.iqm_over_seeds([0.5])
    out = tmp_path / "figures.json"
    assert cli(["seeds", "--results-dir", str(three_seeds), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "the CI excludes 0 in 2 of 3 seeds" in printed and "dialog-bench[stats]" in printed
    figures = json.loads(out.read_text())
    assert "aggregates" not in figures
    assert figures["pairs"][0]["seeds_excluding_zero"] == 2
    assert figures["rows"][1]["files"] == [
        "Dialog-v1/sft-careless.json",
        "seeds/Dialog-v1/sft-careless-s1.json",
        "seeds/Dialog-v1/sft-careless-s2.json",
    ]
    # a profile cannot be drawn without rliable: an error, not a silent skip
    assert cli(["seeds", "--results-dir", str(three_seeds), "--profile-json", str(out)]) == 2


# -- rliable (the stats extra) ------------------------------------------------------------


def test_the_iqm_over_seeds_is_rliables_and_the_boards_iqm():
    pytest.importorskip("rliable")
    scores = [0.2, 0.9, 0.5, 0.6, 0.7, 0.1, 0.8, 0.4]
    state = np.random.get_state()[1].copy()
    ci = seed_aggregates.iqm_over_seeds(scores, n_resamples=500)
    assert np.array_equal(np.random.get_state()[1], state)  # numpy's global state untouched
    assert ci.estimate == pytest.approx(iqm(scores))  # 0.2 and 0.9 cut, with 0.1 and 0.8
    assert ci.low < ci.estimate < ci.high
    assert seed_aggregates.iqm_over_seeds(scores, n_resamples=500) == ci  # seeded: the same
    assert seed_aggregates.iqm_over_seeds([0.48, 0.52, 0.5], n_resamples=200).estimate == 0.5


def test_the_probability_of_improvement_counts_pairs_of_seeds():
    pytest.importorskip("rliable")
    poi = seed_aggregates.probability_of_improvement
    assert poi([0.9, 0.8, 0.7], [0.1, 0.2, 0.3], n_resamples=200).estimate == 1.0
    assert poi([0.1, 0.2, 0.3], [0.9, 0.8, 0.7], n_resamples=200).estimate == 0.0
    # 0.5 beats 0.4 and ties 0.5; 0.3 loses both: (1 + 0.5 + 0 + 0) / 4
    mixed = poi([0.5, 0.3], [0.4, 0.5], n_resamples=200)
    assert mixed.estimate == pytest.approx(0.375) and mixed.low < mixed.high


def test_the_aggregates_of_three_seeds(three_seeds):
    pytest.importorskip("rliable")
    table = science_table(CARELESS, three_seeds)
    figures = seed_aggregates.aggregates(table, n_resamples=300)
    rows = {r["name"]: r for r in figures["rows"]}
    assert rows["sft-careless"]["seeds"] == [0, 1, 2]
    sft = rows["sft-careless"]["success"]
    assert rows["sft-careless"]["iqm"][0] == pytest.approx(np.mean(sft))  # 3 seeds: no cut
    assert min(sft) <= rows["sft-careless"]["iqm"][1] <= rows["sft-careless"]["iqm"][2]
    start = figures["pairs"][0]
    assert (start["rl_seeds"], start["sft_seeds"]) == ([0, 1, 2], [0, 1, 2])
    text = seed_aggregates.aggregates_markdown(figures)
    assert "| `sft-careless` | 0, 1, 2 | " in text and "| 3 vs 3 | " in text


def test_the_profile_is_the_share_of_returns_above_each_threshold(three_seeds, tmp_path):
    pytest.importorskip("rliable")
    table = science_table(CARELESS, three_seeds)
    data = seed_aggregates.profile_data(table, three_seeds, n_resamples=50)
    taus = np.array(data["taus"])
    files = seed_files(three_seeds, "Dialog-v1", "rl-careless")
    returns = np.concatenate([_column(p, "return") for p in files.values()])
    expected = [(returns > t).mean() for t in taus]
    assert data["rows"]["rl-careless"]["profile"] == pytest.approx(expected, abs=1e-6)
    assert data["rows"]["rl-careless"]["seeds"] == [0, 1, 2]
    row = data["rows"]["rl-careless"]
    low, point, high = (np.array(row[k]) for k in ("low", "profile", "high"))
    assert np.all(low <= point + 1e-9) and np.all(point <= high + 1e-9)
    path = tmp_path / "profile.json"
    path.write_text(json.dumps(data))
    ((png, alt, caption),) = page_figures(path)["Dialog-v1"]
    assert png.startswith(b"\x89PNG") and "careless" in alt
    assert "rl-careless: seeds [0, 1, 2]" in caption


def test_the_published_profile_is_the_files():
    """The page's profile (``leaderboard/performance_profile.json``) has every seed of each
    row that is committed, and its curve is the share of their returns above each
    threshold: a seed's files added without ``dialog-bench seeds --profile-json`` fail."""
    data = json.loads(PROFILE_JSON.read_text())
    assert list(data["rows"]) == list(CARELESS.rows)
    for name, row in data["rows"].items():
        files = seed_files(BOARD.parent, "Dialog-v1", name)
        assert row["seeds"] == list(files)
        returns = np.concatenate([_column(p, "return") for p in files.values()])
        expected = [(returns > t).mean() for t in data["taus"]]
        assert row["profile"] == pytest.approx(expected, abs=1e-6)


# -- the board's paired bootstrap against scipy's -----------------------------------------


@pytest.mark.parametrize("field", ["success", "return"])
def test_the_paired_bootstrap_agrees_with_scipys(field):
    stats = pytest.importorskip("scipy.stats")
    rl = _column(BOARD / "rl-careless.json", field)
    sft = _column(BOARD / "sft-careless.json", field)
    ours = paired_difference(rl, sft)
    theirs = stats.bootstrap(
        (rl, sft),
        lambda a, b, axis: a.mean(axis=axis) - b.mean(axis=axis),
        paired=True,
        vectorized=True,
        n_resamples=10_000,
        confidence_level=0.95,
        method="percentile",
        rng=np.random.default_rng(0),
    )
    # Both resample the 500 episodes in pairs, 10,000 times, with other generators: the
    # bounds agree within the Monte-Carlo error of a 2.5% quantile (about 0.001 here) and
    # the grid of a difference of 500 successes (0.002).
    assert ours.estimate == pytest.approx(float(rl.mean() - sft.mean()))
    assert ours.low == pytest.approx(theirs.confidence_interval.low, abs=0.005)
    assert ours.high == pytest.approx(theirs.confidence_interval.high, abs=0.005)
