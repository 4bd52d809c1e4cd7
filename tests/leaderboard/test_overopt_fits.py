"""Gao et al.'s over-optimization forms fitted by least squares (``leaderboard.overopt_fits``)
and best-of-n's analytic KL (``baselines.bon_curve.kl_bon``)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from baselines.bon_curve import kl_bon
from leaderboard.overopt_fits import fit_overoptimization, fitted_gain

NS = (1, 2, 4, 8, 16, 32, 64)


def test_kl_bon_is_log_n_minus_n_minus_1_over_n():
    assert kl_bon(1) == 0.0
    assert kl_bon(2) == pytest.approx(math.log(2) - 0.5)
    assert kl_bon(64) == pytest.approx(math.log(64) - 63 / 64)
    kls = [kl_bon(n) for n in NS]
    assert all(b > a for a, b in zip(kls, kls[1:], strict=False))  # grows with n
    assert all(kl_bon(n) < math.log(n) for n in NS[1:])  # below log n, the entropy bound
    with pytest.raises(ValueError, match="positive int"):
        kl_bon(0)


@pytest.mark.parametrize(("form", "alpha", "beta"), [("bon", 0.3, 0.12), ("rl", 0.25, 0.2)])
def test_the_fit_recovers_alpha_and_beta_from_exact_points(form, alpha, beta):
    d = np.sqrt([kl_bon(n) for n in NS]) if form == "bon" else np.linspace(0, 4, 9)
    gold = 0.2 + fitted_gain(d, alpha, beta, form)
    fit = fit_overoptimization(d, gold, form)
    assert fit["alpha"] == pytest.approx(alpha, abs=1e-9)
    assert fit["beta"] == pytest.approx(beta, abs=1e-9)
    assert fit["baseline"] == 0.2 and fit["rmse"] < 1e-12


@pytest.mark.parametrize(("form", "alpha", "beta"), [("bon", 0.4, 0.15), ("rl", 0.3, 0.25)])
def test_the_fit_recovers_alpha_and_beta_from_noisy_points(form, alpha, beta):
    rng = np.random.default_rng(0)
    d = np.repeat(np.linspace(0, 3, 13), 20)  # 20 evaluations per d, as seeds of a run
    gold = 0.1 + fitted_gain(d, alpha, beta, form) + rng.normal(0, 0.02, d.size)
    fit = fit_overoptimization(d, gold, form, baseline=0.1)
    assert fit["alpha"] == pytest.approx(alpha, abs=0.01)
    assert fit["beta"] == pytest.approx(beta, abs=0.01)
    assert fit["rmse"] == pytest.approx(0.02, abs=0.003)  # the noise, not a misfit


def test_the_peak_and_the_gold_lost_after_it():
    d = np.linspace(0, 3, 7)
    bon = fit_overoptimization(d, 0.5 + d * (0.4 - 0.2 * d), "bon")
    assert bon["d_peak"] == pytest.approx(1.0) and bon["gold_peak"] == pytest.approx(0.7)
    assert bon["gold_lost"] == pytest.approx(0.7 - (0.5 + 3 * (0.4 - 0.6)))
    rl = fit_overoptimization(d, 0.5 + fitted_gain(d, 0.3, 0.2, "rl"), "rl")
    peak = math.exp(0.3 / 0.2 - 1)  # where alpha - beta (log d + 1) = 0
    assert rl["d_peak"] == pytest.approx(peak)
    assert rl["gold_peak"] == pytest.approx(0.5 + peak * (0.3 - 0.2 * math.log(peak)))
    assert rl["gold_lost"] > 0 and rl["d_max"] == 3.0
    # a peak beyond the last point measured: nothing lost yet
    early = fit_overoptimization(d[:3], 0.5 + d[:3] * (0.4 - 0.05 * d[:3]), "bon")
    assert early["d_peak"] == pytest.approx(4.0) and early["gold_lost"] == 0.0
    # gold only falling: no peak at d > 0
    falling = fit_overoptimization(d, 0.5 - 0.1 * d, "bon")
    assert falling["d_peak"] is None and falling["gold_lost"] == 0.0


@pytest.mark.parametrize(
    ("d", "gold", "form", "message"),
    [
        ([0, 1], [0.1, 0.2], "bon", "at least two points"),
        ([0, -1, 2], [0.1, 0.2, 0.3], "bon", ">= 0"),
        ([0, 1, 2], [0.1, 0.2], "rl", "equal-length"),
        ([0, 1, 2], [0.1, 0.2, 0.3], "ppo", "form must be one of"),
    ],
)
def test_bad_points_are_one_line_errors(d, gold, form, message):
    with pytest.raises(ValueError, match=message):
        fit_overoptimization(d, gold, form)


def _bon_points(alpha=0.3, beta=0.12, proxy_slope=0.5):
    return [
        {
            "n": n,
            "kl": kl_bon(n),
            "dev_gold": 0.2 + float(fitted_gain(math.sqrt(kl_bon(n)), alpha, beta, "bon")),
            "dev_return": proxy_slope * math.sqrt(kl_bon(n)),
        }
        for n in NS
    ]


def test_the_plot_draws_the_fitted_curves_over_the_points():
    from leaderboard.overoptimization import fit_run, overoptimization_png

    points = _bon_points()
    fits = fit_run(points, "bon")
    assert fits["gold"]["alpha"] == pytest.approx(0.3) and fits["gold"]["beta"] == pytest.approx(
        0.12
    )
    assert fits["proxy"]["alpha"] == pytest.approx(0.5) and abs(fits["proxy"]["beta"]) < 1e-9
    plain = overoptimization_png({"bon": points})
    fitted = overoptimization_png({"bon": points}, fit="bon")
    assert fitted.startswith(b"\x89PNG") and fitted != plain
    assert overoptimization_png({"bon": points}, fit={"other": "rl"}) == plain  # not fitted


def test_the_overopt_command_fits_a_bon_curve_file(tmp_path, capsys):
    import json

    from dialog_bench.cli import main

    curve = tmp_path / "bon.json"
    curve.write_text(json.dumps({"command": "test", "points": _bon_points()}))
    out_json, out_png = tmp_path / "o.json", tmp_path / "o.png"
    argv = ["overopt", "--bon-curve", str(curve), "--fit", "--json", str(out_json)]
    assert main([*argv, "--png", str(out_png)]) == 0
    assert "gold fit (bon): alpha 0.3000, beta 0.1200" in capsys.readouterr().out
    (run,) = json.loads(out_json.read_text())["runs"].values()
    assert run["fits"]["gold"]["d_peak"] == pytest.approx(0.3 / (2 * 0.12))
    assert out_png.read_bytes().startswith(b"\x89PNG")


def test_the_committed_bon_curve_of_todays_start_is_consistent():
    """``leaderboard/bon_curve_sft_chat.json`` (docs/overoptimization.md's table): every
    point carries the KL_bon of its n, and the fit reads the table's alpha and beta."""
    import json

    from conftest import REPO_ROOT

    from leaderboard.overoptimization import fit_run

    curve = json.loads((REPO_ROOT / "leaderboard" / "bon_curve_sft_chat.json").read_text())
    assert [p["n"] for p in curve["points"]] == list(NS)
    for point in curve["points"]:
        assert point["kl"] == kl_bon(point["n"]) and point["sqrt_kl"] == math.sqrt(point["kl"])
    fits = fit_run(curve["points"], "bon")
    assert round(fits["gold"]["alpha"], 3) == -0.085 and round(fits["gold"]["beta"], 3) == -0.05
    assert fits["gold"]["d_peak"] is None  # gold never peaks above today's start
    assert round(fits["proxy"]["alpha"], 3) == 0.247
