"""``bench.grpo_curves`` judges a lever by its learning curve: paired per dev episode,
pooled over points and seeds, "worse" only beyond two standard errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bench import grpo_curves


def _run(tmp_path, name, seed, scores, key="episode_success", cpu_s=None):
    out = tmp_path / name
    out.mkdir()
    curve = [
        {"iteration": i, "env_steps": 100 * i, "dev_success": float(np.mean(s)), key: s}
        for i, s in scores.items()
    ]
    manifest = {"command": f"dialog-bench train grpo --seed {seed}", "config": {"seed": seed}}
    if cpu_s:
        manifest["budget"] = {"episodes": 1280, "cpu_time_s": cpu_s}
    (out / "manifest.json").write_text(json.dumps(manifest | {"curve": curve}))
    return out


def _scores(rng, p: float, n: int = 200) -> list[int]:
    return [int(x) for x in rng.random(n) < p]


def _compare(tmp_path, lever_p: float, capsys) -> dict:
    tmp_path.mkdir()
    rng = np.random.default_rng(0)
    base = [
        _run(tmp_path, f"base{s}", s, {0: _scores(rng, 0.5), 5: _scores(rng, 0.9)}, cpu_s=400)
        for s in (0, 1)
    ]
    lever = [
        _run(tmp_path, f"lever{s}", s, {0: _scores(rng, 0.5), 5: _scores(rng, lever_p)}, cpu_s=250)
        for s in (0, 1)
    ]
    out = tmp_path / "curves.json"
    args = ["--base", *map(str, base), "--lever", *map(str, lever), "--out", str(out)]
    assert grpo_curves.main(args) == 0
    printed = capsys.readouterr().out
    record = json.loads(out.read_text())
    assert record["output"] in printed
    return record["figures"]


def test_a_lever_that_learns_alike_is_not_worse_and_one_that_learns_less_is(tmp_path, capsys):
    alike = _compare(tmp_path / "a", 0.9, capsys)
    assert not alike["worse"] and abs(alike["difference"]) < 2.5 * alike["difference_se"]
    assert set(alike["curves"]) == {"base_s0", "base_s1", "lever_s0", "lever_s1"}
    assert "seed_difference" in alike
    assert alike["vs_base"] == pytest.approx(1.6)  # 1,280 episodes in 250 vs 400 CPU s
    behind = _compare(tmp_path / "b", 0.7, capsys)
    assert behind["worse"] and behind["difference"] == pytest.approx(-0.2, abs=0.06)


def test_runs_without_per_episode_scores_are_refused_with_the_reason(tmp_path):
    base = _run(tmp_path, "base", 0, {0: [1, 0], 5: [1, 1]}, key="other")
    lever = _run(tmp_path, "lever", 0, {0: [1, 0], 5: [1, 1]})
    with pytest.raises(SystemExit, match="no per-episode scores"):
        grpo_curves.main(["--base", str(base), "--lever", str(lever)])
    with pytest.raises(SystemExit, match="no seed has both"):
        grpo_curves.main(["--base", str(base), "--lever", str(_run(tmp_path, "x", 3, {0: [1]}))])


def test_runs_that_land_apart_by_chance_widen_the_error(tmp_path, capsys):
    """Two base seeds 0.1 apart say a run alone moves that much: a lever 0.05 behind on
    the same episodes is then within noise, though the episodes alone would call it
    worse."""
    rng = np.random.default_rng(1)
    first = {0: _scores(rng, 0.5), 5: _scores(rng, 0.9, 400)}
    second = {0: first[0], 5: [s if rng.random() > 0.1 else 0 for s in first[5]]}
    behind = {0: first[0], 5: [s if rng.random() > 0.05 else 0 for s in first[5]]}
    base = [_run(tmp_path, "b0", 0, first), _run(tmp_path, "b1", 1, second)]
    lever = [_run(tmp_path, "l0", 0, behind), _run(tmp_path, "l1", 1, second)]
    out = tmp_path / "c.json"
    grpo_curves.main(["--base", *map(str, base), "--lever", *map(str, lever), "--out", str(out)])
    figures = json.loads(out.read_text())["figures"]
    assert figures["difference"] < -2 * figures["episode_se"]
    assert figures["run_variance"] > 0 and not figures["worse"]
    assert "runs unknown" not in capsys.readouterr().out


def test_runs_that_cannot_be_paired_are_refused(tmp_path):
    a = _run(tmp_path, "a", 0, {0: [1, 0], 5: [1, 1]})
    with pytest.raises(SystemExit, match="two runs of seed 0"):
        grpo_curves.main(["--base", str(a), str(a), "--lever", str(a)])
    short = _run(tmp_path, "short", 0, {0: [1, 0], 5: [1, 1, 0]})
    with pytest.raises(SystemExit, match="the same --eval-episodes"):
        grpo_curves.main(["--base", str(a), "--lever", str(short)])
    unseeded = tmp_path / "unseeded"
    unseeded.mkdir()
    (unseeded / "manifest.json").write_text(json.dumps({"curve": [{"iteration": 0}]}))
    with pytest.raises(SystemExit, match="names no seed"):
        grpo_curves.main(["--base", str(a), "--lever", str(unseeded)])
    only_start = _run(tmp_path, "start", 0, {0: [1, 0]})
    with pytest.raises(SystemExit, match="no evaluation after iteration 0"):
        grpo_curves.main(["--base", str(a), "--lever", str(only_start)])
