"""Reward over-optimization (``leaderboard.overoptimization``): the summary finds where gold peaked
and what the proxy did after, and the plot draws gold and proxy against the KL."""

from __future__ import annotations

import pytest
from conftest import REPO_ROOT

from leaderboard.overoptimization import overoptimization_summary, plot_overoptimization


# -- over-optimization -----------------------------------------------------------------
def _curve(kls, golds, proxies):
    return [
        {"iteration": 10 * i, "kl": k, "dev_gold": g, "dev_return": p}
        for i, (k, g, p) in enumerate(zip(kls, golds, proxies, strict=True))
    ]


def test_the_summary_finds_the_gold_peak_and_whether_the_proxy_ran_on():
    curve = _curve([0, 2, 6, 12, 20], [0.3, 0.45, 0.5, 0.42, 0.31], [0.3, 0.5, 0.6, 0.7, 0.8])
    curve.insert(2, {"iteration": 15, "dev_return": 0.55})  # no gold: left out
    summary = overoptimization_summary(curve)
    assert summary["peak_iteration"] == 20 and summary["peak_kl"] == 6
    assert (summary["peak_gold"], summary["final_gold"]) == (0.5, 0.31)
    assert summary["gold_drop"] == pytest.approx(0.19)
    assert summary["proxy_rose_after_peak"] and summary["overoptimized"]

    flat_proxy = _curve([0, 2, 6], [0.3, 0.5, 0.4], [0.3, 0.6, 0.5])
    summary = overoptimization_summary(flat_proxy)
    assert summary["gold_drop"] == pytest.approx(0.1) and not summary["overoptimized"]
    rising = overoptimization_summary(_curve([0, 1], [0.2, 0.2], [0.2, 0.4]))
    assert rising["peak_kl"] == 0 and not rising["overoptimized"]  # first of equal peaks


@pytest.mark.parametrize("x", ["sqrt_kl", "kl"])
def test_the_plot_draws_every_run_into_a_png(tmp_path, x):
    runs = {
        "beta=0": _curve([0, 4, 16, -1e-6], [0.3, 0.5, 0.3, 0.3], [0.3, 0.6, 0.9, 0.3]),
        "beta=0.05": _curve([0, 1, 3], [0.3, 0.4, 0.45], [0.3, 0.45, 0.5]),
    }
    path = plot_overoptimization(runs, tmp_path / "plots" / "overopt.png", x=x)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # Each run is drawn in its own colour (viridis at 0 and 0.75): count its pixels.
    from matplotlib import colormaps
    from matplotlib.image import imread

    pixels = imread(path)[..., :3]
    for shade in (0.0, 0.75):
        colour = colormaps["viridis"](shade)[:3]
        drawn = (abs(pixels - colour).max(axis=-1) < 0.02).sum()
        assert drawn > 200, (shade, drawn)  # two lines and their markers, not a legend swatch
    one_run = plot_overoptimization({"beta=0": runs["beta=0"]}, tmp_path / "one.png", x=x)
    alone = imread(one_run)[..., :3]
    late = colormaps["viridis"](0.75)[:3]
    assert (abs(alone - late).max(axis=-1) < 0.02).sum() == 0  # the second run's colour is its
    with pytest.raises(ValueError, match="x must be one of"):
        plot_overoptimization(runs, tmp_path / "bad.png", x="log_kl")


def test_overopt_writes_the_summaries_and_the_leaderboard_page_draws_them(tmp_path, capsys):
    import json

    from dialog_bench.cli import main
    from leaderboard.html_page import render_html
    from leaderboard.overoptimization import page_figures

    checkpoints = []
    for beta, golds, proxies in (
        (0.0, [0.3, 0.5, 0.2], [0.1, 0.8, 1.5]),
        (0.1, [0.3, 0.4, 0.45], [0.1, 0.3, 0.4]),
    ):
        ckpt = tmp_path / f"rl-beta{beta}"
        ckpt.mkdir()
        manifest = {"command": "dialog-bench train grpo ...", "config": {"beta": beta}}
        manifest["curve"] = _curve([0.0, 3.0, 9.0], golds, proxies)
        (ckpt / "manifest.json").write_text(json.dumps(manifest))
        checkpoints.append(str(ckpt))
    out_json, out_png = tmp_path / "overopt.json", tmp_path / "overopt.png"
    assert main(["overopt", *checkpoints, "--json", str(out_json), "--png", str(out_png)]) == 0
    printed = capsys.readouterr().out
    assert "beta=0.0: gold peaks at 0.500 (KL 3.00" in printed and "over-optimized" in printed
    data = json.loads(out_json.read_text())
    assert set(data["runs"]) == {"beta=0.0", "beta=0.1"}
    assert data["runs"]["beta=0.0"]["summary"]["overoptimized"]
    assert not data["runs"]["beta=0.1"]["summary"]["overoptimized"]
    assert out_png.read_bytes().startswith(b"\x89PNG")
    figures = page_figures(out_json)
    (figure,) = figures["Dialog-Chat-v1"]
    assert figure[0].startswith(b"\x89PNG") and "beta=0.0: gold peaks at 0.500" in figure[2]
    assert page_figures(tmp_path / "absent.json") == {}
    page = render_html([], figures=figures)  # no section for it without chat standings
    assert "gold peaks" not in page


# -- the published over-optimization figure ----------------------------------------------
def test_the_published_curves_are_the_runs_and_the_study_holds_them():
    """``leaderboard/overoptimization.json`` holds the three GRPO runs of the retired chat
    lineage (the old ``sft-chat``, which could not copy facts; issue 27 re-made it and the
    study, ``leaderboard/overopt_study.json``, holds the new runs): each summary is the one
    its curve gives, and docs/chat-task.md's figures of the runs are those curves'."""
    import json

    root = REPO_ROOT
    data = json.loads((root / "leaderboard" / "overoptimization.json").read_text())
    page = (root / "docs" / "chat-task.md").read_text(encoding="utf-8")
    for run in data["runs"].values():
        assert overoptimization_summary(run["curve"]) == pytest.approx(run["summary"])
    free = overoptimization_summary(data["runs"]["beta=0.0"]["curve"])
    figures = (
        f"({free['peak_proxy']:.2f} -> {free['final_proxy']:.2f}) while gold halved "
        f"({free['peak_gold']:.3f} -> {free['final_gold']:.3f}) at {free['final_kl']:.1f} nats"
    )
    assert figures in " ".join(page.split())
