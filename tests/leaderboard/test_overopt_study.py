"""The over-optimization study (``leaderboard.overopt_study``, ``overopt_verdicts``,
``overopt_report``, ``overopt_figure``): the committed study rebuilds the README's and
the docs' blocks and the figure; the readers take both best-of-n shapes and every RL
source; the fits and the three statements say the right thing on synthetic curves."""

from __future__ import annotations

import json
import math
import struct

import numpy as np
import pytest
from conftest import REPO_ROOT

from baselines.bon_curve import kl_bon
from leaderboard.marked_blocks import marked_block
from leaderboard.overopt_figure import figure_series
from leaderboard.overopt_fits import fitted_gain
from leaderboard.overopt_report import (
    MARKERS,
    PAGE,
    PNG,
    README,
    statements,
    study_block,
    study_outputs,
)
from leaderboard.overopt_study import (
    collect_study,
    curves_from_bon_file,
    curves_from_rl_source,
    read_study,
)
from leaderboard.overopt_verdicts import (
    difference_se,
    done_when,
    ensemble_verdicts,
    fit_curve,
    frontier_verdicts,
)

STUDY = REPO_ROOT / "leaderboard" / "overopt_study.json"
NS = (1, 2, 4, 8, 16, 32, 64)


def bon_points(gold, proxy=lambda d: 0.5 * d, se=0.01):
    """A best-of-n curve's points: ``gold(d)`` and ``proxy(d)`` at each n's sqrt(KL_bon)."""
    out = []
    for n in NS:
        d = math.sqrt(kl_bon(n))
        out.append(
            {
                "n": n,
                "kl": kl_bon(n),
                "dev_gold": float(gold(d)),
                "dev_gold_se": se,
                "dev_return": float(proxy(d)),
                "dev_return_se": se,
            }
        )
    return out


def rl_points(gold, d_max, proxy=lambda d: 0.3 * d, count=7):
    """An RL run's points: ``count`` evaluations from d = 0 to ``d_max``."""
    return [
        {"iteration": 5 * i, "kl": d * d, "dev_gold": float(gold(d)), "dev_return": float(proxy(d))}
        for i, d in enumerate(np.linspace(0.0, d_max, count))
    ]


def curve(kind, points, proxy="rm-a", beta=None, rm=None, episodes=1000):
    return {
        "kind": kind,
        "proxy": proxy,
        "rm": rm or [f"runs/{proxy}"],
        "beta": beta,
        "eval_episodes": episodes,
        "points": points,
    }


def rl_frontier(d):
    return 0.3 + fitted_gain(d, 0.3, 0.2, "rl")


# -- the committed study -------------------------------------------------------------------
def test_the_readme_and_docs_blocks_are_rebuilt_from_the_committed_study():
    """README.md's and docs/overoptimization.md's blocks between the ``overopt-study``
    markers are the ones the committed study gives (``dialog-bench overopt --write``
    rewrites them; ``--check`` says when they are stale)."""
    study = read_study(STUDY)
    outputs = study_outputs(study)
    assert marked_block(REPO_ROOT / README, MARKERS) == outputs[README]
    assert marked_block(REPO_ROOT / PAGE, MARKERS) == outputs[PAGE]
    assert outputs[README] == study_block(study, "docs/overoptimization.png", PAGE.as_posix())


def test_the_figure_draws_the_committed_curves_and_their_fits():
    study = read_study(STUDY)
    series = figure_series(study)
    assert [s["label"] for s in series] == list(study["curves"])
    for s, c in zip(series, study["curves"].values(), strict=True):
        points = c["points"]
        assert s["d"] == pytest.approx([math.sqrt(max(p["kl"], 0.0)) for p in points])
        assert s["gold"] == [p["dev_gold"] for p in points]
        assert s["proxy_gain"] == pytest.approx(
            [p["dev_return"] - points[0]["dev_return"] for p in points]
        )
        row = fit_curve(c)
        gain = fitted_gain(np.array(s["fit_d"]), row["alpha"], row["beta"], c["kind"])
        assert s["fit_gold"] == pytest.approx(points[0]["dev_gold"] + gain)
        assert s["fit_d"][-1] == pytest.approx(max(s["d"]))
    png = (REPO_ROOT / PNG).read_bytes()
    assert png.startswith(b"\x89PNG") and struct.unpack(">II", png[16:24]) == (1000, 500)


def test_the_html_page_draws_the_study_with_its_statements():
    from leaderboard.overoptimization import page_figures

    ((png, alt, caption),) = page_figures(study=STUDY)["Dialog-Chat-v1"]
    assert png.startswith(b"\x89PNG") and "sqrt(KL)" in alt
    assert "Gold rises, then falls (issue 27's test)" in caption and "**" not in caption


RUNS = ("rl-chat", "b3-shipped-beta0", "b2-proxya-beta0", "b2-proxya-beta0.2")
RUNS += ("b2-proxya-beta1.0", "b3-proxyc-beta0", "b3-ensworst-beta0", "b2-gold-beta0.2")


def test_the_committed_study_is_todays_committed_curves():
    """Collected again from the files it names, the study's curves are the same: best-of-n
    over sft-chat (one pool per reply, six proxies) and the GRPO runs from it (issue 27)."""
    study = read_study(STUDY)
    runs = REPO_ROOT / "leaderboard" / "overopt_runs"
    again = collect_study(
        [REPO_ROOT / "leaderboard" / "bon_curve_pool_sft_chat.json"],
        [runs / name / "manifest.json" for name in RUNS],
    )
    assert list(again["curves"]) == list(study["curves"])
    for label, c in again["curves"].items():
        kept = study["curves"][label]
        assert c["points"] == kept["points"] and c["beta"] == kept["beta"]
        assert (c["kind"], c["proxy"], c["command"]) == (
            kept["kind"],
            kept["proxy"],
            kept["command"],
        )
    rl = [(c["proxy"], c["beta"]) for c in study["curves"].values() if c["kind"] == "rl"]
    assert rl == [
        ("shipped", 0.2),
        ("shipped", 0.0),
        ("proxy-a", 0.0),
        ("proxy-a", 0.2),
        ("proxy-a", 1.0),
        ("proxy-c", 0.0),
        ("ensemble-worst(proxy-a,proxy-b,proxy-c)", 0.0),
        ("gold", 0.2),
    ]
    # best-of-n rises, then falls (paired) for two proxies; RL against the shipped RM
    # rises, then falls while its proxy climbs (paired over its 200 dev episodes)
    verdict = done_when(study["curves"])
    assert verdict["bon"] == ["best-of-n, shipped", "best-of-n, proxy-c"]
    assert verdict["rl"] == ["RL, shipped, beta=0.0"] and verdict["met"] is True


# -- reading the sources -------------------------------------------------------------------
def test_the_reader_reads_both_best_of_n_shapes(tmp_path):
    old = {"kind": "best-of-n curve", "init": "ck/sft", "proxy": {"rm": ["shipped"]}}
    (tmp_path / "old.json").write_text(json.dumps(old | {"points": bon_points(lambda d: 0.2)}))
    (one,) = curves_from_bon_file(tmp_path / "old.json")
    assert (one["kind"], one["proxy"], one["rm"], one["init"]) == (
        "bon",
        "shipped",
        ["shipped"],
        "ck/sft",
    )
    assert [p["n"] for p in one["points"]] == list(NS)

    pool = {"kind": "best-of-n curve", "estimator": "pool", "pool": 64, "init": "ck/sft"}
    pool["curves"] = {
        "rm-a": {"proxy": {"rm": ["runs/rm-a"]}, "points": bon_points(lambda d: 0.2)},
        "rm-b": {"proxy": {"rm": ["runs/rm-b"]}, "points": bon_points(lambda d: 0.3)},
        "ens": {
            "proxy": {"rm": ["runs/rm-a", "runs/rm-b"], "combine": "worst"},
            "points": bon_points(lambda d: 0.4),
        },
    }
    (tmp_path / "pool.json").write_text(json.dumps(pool))
    curves = curves_from_bon_file(tmp_path / "pool.json")
    assert [c["proxy"] for c in curves] == ["rm-a", "rm-b", "ens"]
    assert curves[2]["rm"] == ["runs/rm-a", "runs/rm-b"] and curves[2]["combine"] == "worst"
    assert [c["points"][0]["dev_gold"] for c in curves] == [0.2, 0.3, 0.4]
    study = collect_study([tmp_path / "old.json", tmp_path / "pool.json"])
    assert list(study["curves"]) == [
        "best-of-n, shipped",
        "best-of-n, rm-a",
        "best-of-n, rm-b",
        "best-of-n, ens",
    ]


def test_the_reader_reads_rl_checkpoints_and_their_reward(tmp_path):
    kwargs = {
        "gold": {"reward": "gold"},
        "rm-a": {"reward": "rm", "reward_model": "runs/rm-a"},
        "ens": {
            "reward": "rm-ensemble",
            "reward_models": ["runs/rm-a", "runs/rm-b"],
            "ensemble": "mean",
        },
    }
    for name, env in kwargs.items():
        (tmp_path / name).mkdir()
        manifest = {
            "command": f"dialog-bench train grpo --out {name}",
            "config": {
                "beta": 0.1,
                "env_kwargs": json.dumps(env),
                "eval_episodes": 50,
                "init": "ck/sft",
            },
            "curve": rl_points(rl_frontier, 2.0),
        }
        (tmp_path / name / "manifest.json").write_text(json.dumps(manifest))
    gold, rm_a = (curves_from_rl_source(tmp_path / n)[0] for n in ("gold", "rm-a"))
    (ens,) = curves_from_rl_source(tmp_path / "ens" / "manifest.json")
    assert (gold["proxy"], gold["rm"], gold["beta"], gold["eval_episodes"]) == ("gold", [], 0.1, 50)
    assert (rm_a["proxy"], rm_a["rm"]) == ("rm-a", ["runs/rm-a"])
    assert ens["proxy"] == "ensemble-mean(rm-a,rm-b)" and ens["combine"] == "mean"
    assert gold["points"] == rl_points(rl_frontier, 2.0)
    labels = collect_study(rl=[tmp_path / n for n in kwargs])["curves"]
    assert list(labels) == [
        "RL, gold, beta=0.1",
        "RL, rm-a, beta=0.1",
        "RL, ensemble-mean(rm-a,rm-b), beta=0.1",
    ]


@pytest.mark.parametrize(
    ("content", "reader", "message"),
    [
        ("{not json", curves_from_bon_file, "not JSON"),
        ('{"kind": "results"}', curves_from_bon_file, "not a best-of-n curve"),
        ('{"kind": "best-of-n curve"}', curves_from_bon_file, 'holds "points" or "curves"'),
        (
            '{"kind": "best-of-n curve", "points": [{"n": 1}]}',
            curves_from_bon_file,
            "no point with kl",
        ),
        ('{"config": {}}', curves_from_rl_source, "no learning curve"),
        ("[1, 2]", curves_from_rl_source, "not a manifest"),
        ('{"kind": "over-optimization study", "curves": {}}', read_study, "no curves"),
        ('{"kind": "best-of-n curve"}', read_study, "not an over-optimization study"),
    ],
)
def test_a_bad_file_is_a_one_line_error(tmp_path, content, reader, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=message) as err:
        reader(path)
    assert "\n" not in str(err.value) and str(path) in str(err.value)


def test_the_command_says_a_bad_file_in_one_line(tmp_path, capsys):
    from dialog_bench.cli import main

    (tmp_path / "bad.json").write_text('{"kind": "results"}')
    assert (
        main(["overopt", "--bon", str(tmp_path / "bad.json"), "--study", str(tmp_path / "s.json")])
        == 2
    )
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "not a best-of-n curve" in err
    assert main(["overopt", "--study", str(tmp_path / "missing.json")]) == 2
    assert "no such file" in capsys.readouterr().err


# -- the fits --------------------------------------------------------------------------------
@pytest.mark.parametrize(("kind", "alpha", "beta"), [("bon", 0.3, 0.15), ("rl", 0.25, 0.2)])
def test_a_curves_fit_recovers_alpha_beta_and_its_peak(kind, alpha, beta):
    """On a curve's own points, from its first point: the table's alpha, beta, d at the
    peak, fitted peak gain and the gold lost after the observed peak."""

    def gold(d):
        return 0.2 + fitted_gain(d, alpha, beta, kind)

    points = bon_points(gold) if kind == "bon" else rl_points(gold, 4.0, count=9)
    row = fit_curve(curve(kind, points))
    assert row["alpha"] == pytest.approx(alpha) and row["beta"] == pytest.approx(beta)
    peak = alpha / (2 * beta) if kind == "bon" else math.exp(alpha / beta - 1)
    assert row["d_peak"] == pytest.approx(peak) and row["note"] is None
    assert row["peak_gain"] == pytest.approx(float(fitted_gain(peak, alpha, beta, kind)))
    golds = [p["dev_gold"] for p in points]
    assert row["gold_lost"] == pytest.approx(max(golds) - golds[-1]) and row["gold_lost"] > 0
    assert row["proxy_rising"]


def test_a_fit_that_cannot_be_made_or_has_no_peak_says_so():
    two = fit_curve(curve("rl", rl_points(rl_frontier, 1.0, count=2)))
    assert two["alpha"] is None and two["note"] == "too few points (2)"
    rising = fit_curve(curve("bon", bon_points(lambda d: 0.2 + 0.1 * d)))
    assert rising["d_peak"] is None and rising["note"] == "no peak within d <= 1.78"
    assert rising["alpha"] == pytest.approx(0.1) and rising["gold_lost"] == 0.0
    falling = fit_curve(
        curve("rl", rl_points(lambda d: 0.3 + fitted_gain(d, -0.2, 0.1, "rl"), 3.0))
    )
    assert falling["d_peak"] < 0.5 and falling["note"] == "before the first point, d = 0.50"


# -- the statements ---------------------------------------------------------------------------
def test_a_kl_coefficient_that_only_stops_earlier_does_not_move_the_frontier():
    """Three runs on one frontier, stopped at different d, evaluated on 100 dev episodes
    (as the chat runs are): no move. (Linear interpolation between 7 evaluations misses
    the RL form's bend near d = 0 by up to 0.05: on 1,000 episodes that would pass for a
    move, a limit docs/overoptimization.md states.)"""
    curves = {
        f"b{beta}": curve("rl", rl_points(rl_frontier, d_max), beta=beta, episodes=100)
        for beta, d_max in ((0.0, 4.0), (0.1, 2.5), (0.5, 1.0))
    }
    (v,) = frontier_verdicts(curves)
    assert v["moved"] is False and [b for _, b, _ in v["runs"]] == [0.0, 0.1, 0.5]
    assert [round(d, 6) for *_, d in v["runs"]] == [4.0, 2.5, 1.0]
    assert len(v["pairs"]) == 3 and v["largest"][2]["d_high"] <= 2.5


def test_a_kl_coefficient_that_lifts_gold_at_the_same_d_moves_the_frontier():
    curves = {
        "b0": curve("rl", rl_points(rl_frontier, 3.0), beta=0.0),
        "b0.1": curve("rl", rl_points(lambda d: rl_frontier(d) + 0.1 * d, 2.0), beta=0.1),
    }
    (v,) = frontier_verdicts(curves)
    assert v["moved"] is True
    a, b, gap = v["largest"]
    assert (a, b) == ("b0", "b0.1") and gap["gap"] > gap["threshold"] > 0
    # the same lift inside the noise of 20 dev episodes is no move
    for c in curves.values():
        c["eval_episodes"] = 20
    assert frontier_verdicts(curves)[0]["moved"] is False


def test_the_frontier_needs_two_coefficients_of_one_proxy():
    one = {"a": curve("rl", rl_points(rl_frontier, 2.0), beta=0.1)}
    other = {"b": curve("rl", rl_points(rl_frontier, 2.0), proxy="rm-b", beta=0.2)}
    assert frontier_verdicts(one | other) == []
    unknown = {
        k: c | {"eval_episodes": None}
        for k, c in {"x": one["a"], "y": one["a"] | {"beta": 0.3}}.items()
    }
    assert frontier_verdicts(unknown)[0]["moved"] is None  # no noise known: no verdict


def _ensemble_study(ensemble_beta):
    members = {
        "a": curve("bon", bon_points(lambda d: 0.2 + fitted_gain(d, 0.3, 0.3, "bon")), "rm-a"),
        "b": curve("bon", bon_points(lambda d: 0.2 + fitted_gain(d, 0.3, 0.25, "bon")), "rm-b"),
    }
    ens = bon_points(lambda d: 0.2 + fitted_gain(d, 0.3, ensemble_beta, "bon"))
    rm = ["runs/rm-a", "runs/rm-b"]
    return members | {"ens": curve("bon", ens, "ensemble-mean(rm-a,rm-b)", rm=rm)}


def test_the_ensemble_pushed_the_peak_out_or_not():
    (out,) = ensemble_verdicts(_ensemble_study(0.1))  # peak at d = 1.5, members' 0.5, 0.6
    assert out["pushed_out"] is True and [m for m, _ in out["members"]] == ["a", "b"]
    assert out["peak"] == (pytest.approx(1.5), True)
    (inside,) = ensemble_verdicts(_ensemble_study(0.28))  # between its members' peaks
    assert inside["pushed_out"] is False
    (beyond,) = ensemble_verdicts(_ensemble_study(0.05))  # peak at 3.0, past the last n
    assert beyond["pushed_out"] is True and beyond["peak"][1] is False
    rl_only = _ensemble_study(0.1)
    rl_only["ens"]["kind"] = "rl"
    assert ensemble_verdicts(rl_only) == []  # members of another kind do not count


def test_done_when_needs_gold_to_rise_then_fall_beyond_noise():
    hump = bon_points(lambda d: 0.3 + fitted_gain(d, 0.4, 0.3, "bon"))
    rl_hump = rl_points(lambda d: 0.3 + fitted_gain(d, 0.3, 0.25, "rl"), 4.0)
    curves = {
        "bon": curve("bon", hump),
        "rl": curve("rl", rl_hump, beta=0.0),
        "control": curve("rl", rl_hump, proxy="gold", rm=[], beta=0.0),
    }
    assert done_when(curves) == {"bon": ["bon"], "rl": ["rl"], "met": True, "paired": []}
    flat_proxy = [p | {"dev_return": 0.5} for p in rl_hump]
    assert done_when({"rl": curve("rl", flat_proxy, beta=0.0)})["rl"] == []
    noisy = bon_points(lambda d: 0.3 + fitted_gain(d, 0.4, 0.3, "bon"), se=0.2)
    assert done_when({"bon": curve("bon", noisy)})["bon"] == []  # inside noise: no rise
    rising = bon_points(lambda d: 0.3 + 0.2 * d)
    assert done_when({"bon": curve("bon", rising)}) == {
        "bon": [],
        "rl": [],
        "met": False,
        "paired": [],
    }


def paired_bon_file(tmp_path, rng):
    """A pool file (``baselines.bon_pool``'s shape) whose gold rises 0.021 from n = 1 to
    n = 2 and falls 0.16 by n = 64 on 250 contexts that differ far more among themselves
    (point errors ~0.018) than one context's gold moves between n (noise 0.02)."""
    shift = np.array([0.0, 0.021, 0.01, -0.03, -0.07, -0.11, -0.14])
    by_context = rng.random((250, 1)) + shift + rng.normal(0.0, 0.02, (250, len(NS)))
    points = bon_points(lambda d: 0.0)
    for j, point in enumerate(points):
        column = by_context[:, j]
        point["dev_gold"] = float(column.mean())
        point["dev_gold_se"] = float(column.std(ddof=1) / math.sqrt(len(column)))
        point["context_gold"] = [round(float(g), 6) for g in column]
    pool = {"kind": "best-of-n curve", "estimator": "pool", "init": "ck/sft"}
    pool["curves"] = {"rm-a": {"proxy": {"rm": ["runs/rm-a"]}, "points": points}}
    path = tmp_path / "pool.json"
    path.write_text(json.dumps(pool))
    return path


def test_best_of_n_points_on_shared_contexts_are_compared_paired(tmp_path):
    study = collect_study([paired_bon_file(tmp_path, np.random.default_rng(27))])
    (label,) = study["curves"]
    points = study["curves"][label]["points"]
    assert all(len(p["context_gold"]) == 250 for p in points)  # the reader keeps them
    rise = points[1]["dev_gold"] - points[0]["dev_gold"]
    se, paired = difference_se(points[1], points[0], 1.0, 1.0)
    assert paired and 2 * se < rise < 2 * math.hypot(
        points[0]["dev_gold_se"], points[1]["dev_gold_se"]
    )
    assert done_when(study["curves"]) == {"bon": [label], "rl": [], "met": False, "paired": [label]}
    assert f"paired for `{label}`" in statements(study)[-1]


def test_points_without_per_context_gold_fall_back_to_the_unpaired_rule(tmp_path):
    study = collect_study([paired_bon_file(tmp_path, np.random.default_rng(27))])
    (label,) = study["curves"]
    for point in study["curves"][label]["points"]:
        del point["context_gold"]
    # the same rise of 0.021 is inside 2 sqrt(se_a^2 + se_b^2) ~ 0.05: no rise
    assert done_when(study["curves"]) == {"bon": [], "rl": [], "met": False, "paired": []}
    a, b = study["curves"][label]["points"][:2]
    assert difference_se(b, a, 0.3, 0.4) == (0.5, False)
    assert difference_se(b, a | {"context_gold": [0.5] * 3}, 0.3, 0.4) == (0.5, False)
    assert "paired" not in statements(study)[-1]


def test_an_rl_run_whose_points_carry_each_episodes_gold_is_judged_paired(tmp_path):
    """``train grpo`` records each dev episode's gold (``context_gold``): a rise of 0.02
    that the unpaired binomial bound over 200 episodes (~0.1) would call noise is a rise
    when every episode moved alike, and the verdict says the curve was judged paired."""
    rng = np.random.default_rng(28)
    start = rng.random(200)
    shifts = [(0.0, 0.0), (0.02, 0.2), (0.0, 1.0), (-0.25, 2.0)]  # (gold shift, proxy)
    curve = []
    for i, (shift, proxy) in enumerate(shifts):
        gold = np.clip(start + shift + rng.normal(0.0, 0.01, 200), 0.0, 1.0)
        curve.append(
            {
                "iteration": 2 * i,
                "kl": float(i * i),
                "dev_gold": float(gold.mean()),
                "dev_return": proxy,
                "context_gold": [round(float(g), 6) for g in gold],
            }
        )
    config = {"beta": 0.0, "env_kwargs": '{"reward": "rm"}', "eval_episodes": 200}
    manifest = {"command": "dialog-bench train grpo", "config": config, "curve": curve}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    study = collect_study(rl=[tmp_path / "manifest.json"])
    (label,) = study["curves"]
    assert done_when(study["curves"]) == {"bon": [], "rl": [label], "met": False, "paired": [label]}
    for point in study["curves"][label]["points"]:
        del point["context_gold"]
    assert done_when(study["curves"])["rl"] == []  # the same rise, unpaired: noise


# -- the command ----------------------------------------------------------------------------
def test_the_command_collects_the_study_and_writes_and_checks_its_outputs(tmp_path, capsys):
    from dialog_bench.cli import main

    bon = tmp_path / "bon.json"
    hump = bon_points(lambda d: 0.3 + fitted_gain(d, 0.4, 0.3, "bon"))
    bon.write_text(
        json.dumps({"kind": "best-of-n curve", "points": hump, "proxy": {"rm": ["shipped"]}})
    )
    study = tmp_path / "study.json"
    assert main(["overopt", "--bon", str(bon), "--study", str(study)]) == 0
    printed = capsys.readouterr().out
    assert "| best-of-n, shipped | bon | shipped | - | 7 | +0.400 | +0.300 | 0.67 |" in printed
    assert "best-of-n: `best-of-n, shipped`; RL, while its proxy still rises: none" in printed
    assert read_study(study)["command"]
    root = tmp_path / "checkout"
    (root / "docs").mkdir(parents=True)
    for page in (root / README, root / PAGE):
        page.write_text(f"# page\n\n{MARKERS[0]}\n{MARKERS[1]}\n\nafter\n")
    assert main(["overopt", "--study", str(study), "--check", "--root", str(root)]) == 1
    assert main(["overopt", "--study", str(study), "--write", "--root", str(root)]) == 0
    assert main(["overopt", "--study", str(study), "--check", "--root", str(root)]) == 0
    assert (root / PNG).read_bytes().startswith(b"\x89PNG")
    assert (root / PAGE).read_text().endswith(f"{MARKERS[1]}\n\nafter\n")
    assert "](overoptimization.png)" in marked_block(root / PAGE, MARKERS)
    (root / PAGE).write_text("no markers\n")
    with pytest.raises(ValueError, match="markers"):
        from leaderboard.overopt_report import write_outputs

        write_outputs(read_study(study), root)
