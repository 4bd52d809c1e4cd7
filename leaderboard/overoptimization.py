"""Reward over-optimization: the gold score and the proxy against the KL from the init.

An RL run that optimizes a learned reward (the chat task's ``reward="rm"``) drives its
proxy up while the gold score it stands for rises, peaks and falls (Gao et al. 2023,
"Scaling Laws for Reward Model Overoptimization", who plot both against
``sqrt(KL)``). A run's learning curve (the ``curve`` of a ``train grpo`` manifest: one
point per dev eval with ``dev_gold``, ``dev_return`` and ``kl``, nats per episode) is
all this module reads; it imports neither torch nor the env, so a plot script can use it
anywhere. It is the leaderboard's analysis (its HTML page draws the plot); the trainers
only write the curves.

>>> curve = [
...     {"iteration": 0, "kl": 0.0, "dev_gold": 0.30, "dev_return": 0.30},
...     {"iteration": 10, "kl": 4.0, "dev_gold": 0.50, "dev_return": 0.55},
...     {"iteration": 20, "kl": 16.0, "dev_gold": 0.35, "dev_return": 0.70},
... ]
>>> summary = overoptimization_summary(curve)
>>> summary["peak_kl"], summary["peak_gold"], summary["final_gold"], summary["gold_drop"]
(4.0, 0.5, 0.35, 0.15)
>>> summary["proxy_rose_after_peak"], summary["overoptimized"]
(True, True)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_JSON",
    "DEFAULT_STUDY",
    "OUT_JSON",
    "OUT_PNG",
    "X_AXES",
    "add_parser",
    "collect_runs",
    "fit_run",
    "main",
    "overoptimization_png",
    "overoptimization_summary",
    "page_figures",
    "plot_overoptimization",
    "read_curve",
]

#: How the KL is drawn on the x axis: its square root (Gao et al.) or as it is.
X_AXES = ("sqrt_kl", "kl")

Curve = Sequence[Mapping[str, Any]]


def _points(curve: Curve, keys: Sequence[str]) -> list[Mapping[str, Any]]:
    """The points of ``curve`` that have a number for every key, in curve order."""
    return [p for p in curve if all(isinstance(p.get(k), (int, float)) for k in keys)]


def overoptimization_summary(
    curve: Curve,
    gold: str = "dev_gold",
    proxy: str = "dev_return",
    kl: str = "kl",
    tolerance: float = 0.02,
) -> dict[str, Any]:
    """Where a run's gold score peaked, and what it and the proxy did after.

    ``curve``: the run's points in training order; those lacking ``gold``, ``proxy`` or
    ``kl`` are skipped. The peak is the first point of highest gold. Returns the peak's
    ``peak_iteration``, ``peak_kl``, ``peak_gold`` and ``peak_proxy``; the last point's
    ``final_kl``, ``final_gold`` and ``final_proxy``; ``gold_drop`` (peak minus final,
    >= 0); ``proxy_rose_after_peak``: whether the proxy ended above its value at the peak;
    ``overoptimized``: gold fell after its peak while the proxy rose, each by more than
    ``tolerance`` (default 0.02, about the standard error of a mean score over 100 dev
    episodes: a wobble inside it is not a fall).

    >>> s = overoptimization_summary([{"kl": 0.0, "dev_gold": 0.2, "dev_return": 0.2},
    ...                               {"kl": 1.0, "dev_gold": 0.4, "dev_return": 0.5}])
    >>> s["peak_kl"], s["gold_drop"], s["overoptimized"]
    (1.0, 0.0, False)
    >>> overoptimization_summary([{"kl": 0.0}])
    Traceback (most recent call last):
    ...
    ValueError: the curve has no point with dev_gold, dev_return and kl
    """
    points = _points(curve, (gold, proxy, kl))
    if not points:
        raise ValueError(f"the curve has no point with {gold}, {proxy} and {kl}")
    peak = max(range(len(points)), key=lambda j: (points[j][gold], -j))
    top, last = points[peak], points[-1]
    drop = round(top[gold] - last[gold], 12)  # 0.5 - 0.35 prints as 0.15
    rose = last[proxy] > top[proxy]
    moved = drop > tolerance and last[proxy] - top[proxy] > tolerance
    return {
        "peak_iteration": top.get("iteration"),
        "peak_kl": float(top[kl]),
        "peak_gold": float(top[gold]),
        "peak_proxy": float(top[proxy]),
        "final_kl": float(last[kl]),
        "final_gold": float(last[gold]),
        "final_proxy": float(last[proxy]),
        "gold_drop": drop,
        "proxy_rose_after_peak": rose,
        "overoptimized": moved,
    }


def fit_run(
    curve: Curve,
    form: str,
    gold: str = "dev_gold",
    proxy: str = "dev_return",
    kl: str = "kl",
) -> dict[str, dict[str, Any]]:
    """Gao et al.'s ``form`` (``"bon"`` or ``"rl"``, :mod:`leaderboard.overopt_fits`)
    fitted to a run's gold and to its proxy against ``d = sqrt(KL)`` (a small negative KL
    read as 0): ``{"gold": fit, "proxy": fit}``, each with ``alpha``, ``beta``, the ``d``
    at the peak and what is lost after it.

    >>> curve = [{"kl": d * d, "dev_gold": 0.2 + d * (0.3 - 0.1 * d), "dev_return": d}
    ...          for d in (0.0, 0.5, 1.0, 2.0, 3.0)]
    >>> fits = fit_run(curve, "bon")
    >>> round(fits["gold"]["alpha"], 6), round(fits["gold"]["d_peak"], 6)
    (0.3, 1.5)
    """
    from leaderboard.overopt_fits import fit_overoptimization

    points = _points(curve, (gold, proxy, kl))
    d = [math.sqrt(max(float(p[kl]), 0.0)) for p in points]
    return {
        "gold": fit_overoptimization(d, [p[gold] for p in points], form),
        "proxy": fit_overoptimization(d, [p[proxy] for p in points], form),
    }


def read_curve(checkpoint: str | Path) -> list[dict[str, Any]]:
    """The ``curve`` of a checkpoint's ``manifest.json`` (a directory or the file)."""
    import json

    path = Path(checkpoint)
    path = path / "manifest.json" if path.is_dir() else path
    return list(json.loads(path.read_text())["curve"])


def overoptimization_png(
    runs: Mapping[str, Curve],
    x: str = "sqrt_kl",
    gold: str = "dev_gold",
    proxy: str = "dev_return",
    kl: str = "kl",
    title: str = "",
    fit: str | Mapping[str, str] | None = None,
) -> bytes:
    """PNG bytes: gold (solid, left axis) and proxy (dashed, right axis: the reward model's
    scale is its own) against the KL from the init, one colour per run (e.g.
    ``{"beta=0.02": curve, ...}``, one per KL coefficient).

    ``fit``: a form of :mod:`leaderboard.overopt_fits` (``"bon"`` or ``"rl"``) for every
    run, or ``{label: form}`` for some: such a run's points are drawn as markers (gold
    filled, proxy hollow) and :func:`fit_run`'s fitted curves over them, gold solid and
    proxy dashed (default None: points joined by lines, as before).

    ``x="sqrt_kl"`` (default) puts ``sqrt(KL)`` on the x axis, as Gao et al. do; ``"kl"``
    the KL itself (nats per episode). A small negative KL (the sampled estimate of a
    policy that barely moved) is drawn at 0. Drawn on an Agg canvas of its own (no
    pyplot state is touched).
    """
    import io

    if x not in X_AXES:
        raise ValueError(f"x must be one of {X_AXES}, got {x!r}")
    if not runs:
        raise ValueError("no runs to plot")
    from matplotlib import colormaps
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    fig = Figure(figsize=(6.4, 4.4), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    right = ax.twinx()
    colours = colormaps["viridis"]
    for k, (label, curve) in enumerate(runs.items()):
        points = _points(curve, (gold, proxy, kl))
        if not points:
            raise ValueError(f"run {label!r}: no point with {gold}, {proxy} and {kl}")
        xs = [max(float(p[kl]), 0.0) for p in points]
        xs = [math.sqrt(v) for v in xs] if x == "sqrt_kl" else xs
        colour = colours(k / max(len(runs) - 1, 1) * 0.75)
        form = fit.get(label) if isinstance(fit, Mapping) else fit
        golds, proxies = [p[gold] for p in points], [p[proxy] for p in points]
        if form is None:
            ax.plot(xs, golds, "-o", color=colour, label=label, markersize=3)
            right.plot(xs, proxies, "--", color=colour, markersize=3)
            continue
        fits = fit_run(points, form, gold, proxy, kl)
        ax.plot(xs, golds, "o", color=colour, label=f"{label} (fit: {form})", markersize=4)
        right.plot(xs, proxies, "s", color=colour, markerfacecolor="none", markersize=4)
        _draw_fit(ax, fits["gold"], x, colour, "-")
        _draw_fit(right, fits["proxy"], x, colour, "--")
    style = [
        Line2D([], [], color="grey", linestyle="-", label=f"gold ({gold}, left)"),
        Line2D([], [], color="grey", linestyle="--", label=f"proxy ({proxy}, right)"),
    ]
    first = ax.legend(loc="upper left", fontsize="small", title="run")
    ax.add_artist(first)
    ax.legend(handles=style, loc="lower right", fontsize="small")
    ax.set_xlabel(
        "sqrt(KL from init), sqrt(nats per episode)"
        if x == "sqrt_kl"
        else "KL from init, nats per episode"
    )
    ax.set_ylabel("gold score (hidden judge)")
    right.set_ylabel("proxy (reward model)")
    ax.set_title(title or "gold and proxy against KL")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _draw_fit(axes: Any, fit: Mapping[str, Any], x: str, colour: Any, style: str) -> None:
    """A fitted curve of :func:`fit_run` from ``d = 0`` to its largest ``d``, on ``x``."""
    import numpy as np

    from leaderboard.overopt_fits import fitted_gain

    d = np.linspace(0.0, fit["d_max"], 200)
    value = fit["baseline"] + fitted_gain(d, fit["alpha"], fit["beta"], fit["form"])
    axes.plot(d if x == "sqrt_kl" else d * d, value, style, color=colour, linewidth=1.2)


def plot_overoptimization(runs: Mapping[str, Curve], path: str | Path, **kwargs: Any) -> Path:
    """:func:`overoptimization_png` (same keyword arguments) saved at ``path``; returns it."""
    png = overoptimization_png(runs, **kwargs)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png)
    return path


#: The runs' curves and summaries that the leaderboard's HTML page draws on the chat
#: task's section (shipped with the package; ``dialog-bench overopt`` wrote them).
DEFAULT_JSON = Path(__file__).resolve().parent / "overoptimization.json"
#: The over-optimization study the page draws first (``dialog-bench overopt --bon/--rl``).
DEFAULT_STUDY = Path(__file__).resolve().parent / "overopt_study.json"
#: Where ``dialog-bench overopt`` writes by default, relative to the current directory
#: (from a checkout's root: the file the page reads, and the README's plot). Package code
#: never writes into its own install.
OUT_JSON = Path("leaderboard") / "overoptimization.json"
OUT_PNG = Path("docs") / "overoptimization.png"


def page_figures(
    path: Path | None = None, study: Path | None = None
) -> dict[str, list[tuple[bytes, str, str]]]:
    """The chat task's over-optimization figure for the HTML page: the study's
    (``study``, by default ``leaderboard/overopt_study.json``: best-of-n and RL curves,
    fitted, with the statements as its caption) when there is one, else the plot of the
    RL runs that ``dialog-bench overopt CHECKPOINT...`` wrote (``path``, by default
    ``leaderboard/overoptimization.json``); none without either file."""
    study = DEFAULT_STUDY if path is None and study is None else study
    if study is not None and study.is_file():
        from leaderboard.overopt_figure import FIGURE_CAPTION, study_png
        from leaderboard.overopt_report import statements
        from leaderboard.overopt_study import read_study

        data = read_study(study)
        said = " ".join(statements(data)).replace("**", "").replace("`", "")
        caption = f"Over-optimization. {FIGURE_CAPTION} {said}"
        figure = (study_png(data), "gold and proxy against sqrt(KL)", caption)
        return {data.get("env_id") or "Dialog-Chat-v1": [figure]}
    import json

    path = path or DEFAULT_JSON
    if not path.is_file():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    runs = {label: run["curve"] for label, run in data["runs"].items()}
    png = overoptimization_png(runs, x=data.get("x", "sqrt_kl"), title="RL against the RM")
    peaks = "; ".join(
        f"{label}: gold peaks at {run['summary']['peak_gold']:.3f} (KL "
        f"{run['summary']['peak_kl']:.1f}), ends at {run['summary']['final_gold']:.3f}"
        for label, run in data["runs"].items()
    )
    caption = (
        "Over-optimization: dev gold score (solid, the hidden judge) and proxy (dashed, the "
        "reward model the runs optimize) against the KL from the SFT start, one run per KL "
        f"coefficient. {peaks}."
    )
    return {"Dialog-Chat-v1": [(png, "gold and proxy against KL", caption)]}


def collect_runs(checkpoints: Sequence[str | Path]) -> dict[str, dict[str, Any]]:
    """``{label: {"checkpoint", "beta", "command", "curve", "summary"}}`` of ``train grpo``
    checkpoints; a run is labelled by its KL coefficient (``beta=0.02``)."""
    import json

    runs: dict[str, dict[str, Any]] = {}
    for checkpoint in checkpoints:
        path = Path(checkpoint)
        manifest = json.loads((path / "manifest.json").read_text())
        beta = manifest.get("config", {}).get("beta")
        label = f"beta={beta}" if beta is not None else path.name
        if label in runs:
            label = f"{label} ({path.name})"
        curve = list(manifest["curve"])
        runs[label] = {
            "checkpoint": path.name,
            "beta": beta,
            "command": manifest.get("command"),
            "curve": curve,
            "summary": overoptimization_summary(curve),
        }
    return runs


def add_parser(sub) -> None:
    p = sub.add_parser(
        "overopt",
        help="over-optimization: gold and proxy against KL (RL runs, best-of-n; the study)",
        description="Read the learning curves of `train grpo` runs against the reward model "
        "(one per KL coefficient) and write their gold-vs-proxy summaries (JSON) and the plot "
        "(PNG). With --bon/--rl: collect every best-of-n and RL curve into the study file, "
        "print its fits and statements; --write/--check rebuild the study's figure and the "
        "blocks of docs/overoptimization.md and the README from it.",
    )
    p.add_argument("checkpoints", nargs="*", type=Path, metavar="CHECKPOINT")
    p.add_argument("--json", type=Path, default=OUT_JSON, help=f"default: {OUT_JSON}")
    p.add_argument("--png", type=Path, default=OUT_PNG, help=f"default: {OUT_PNG}")
    p.add_argument("--x", choices=X_AXES, default="sqrt_kl", help="x axis (default sqrt_kl)")
    p.add_argument(
        "--fit",
        action="store_true",
        help="fit Gao et al.'s forms (RL runs: d(alpha - beta log d); --bon-curve: "
        "d(alpha - beta d)), draw the fitted curves over the points, store the fits",
    )
    p.add_argument(
        "--bon-curve",
        type=Path,
        nargs="*",
        default=[],
        metavar="JSON",
        help="best-of-n curves (`python -m baselines.bon_curve --out JSON`) drawn beside the runs",
    )
    from leaderboard.overopt_report import add_study_arguments

    add_study_arguments(p)
    p.set_defaults(func=main)


def main(args) -> int:
    import json

    if args.bon or args.rl or args.study or args.write or args.check:
        if args.checkpoints or args.bon_curve:
            raise ValueError(
                "--bon/--rl/--study/--write/--check make the study; CHECKPOINT and "
                "--bon-curve the single plot: give one or the other"
            )
        from leaderboard.overopt_report import run_study

        return run_study(args)
    if not args.checkpoints and not args.bon_curve:
        raise ValueError(
            "give train grpo checkpoints, --bon-curve files, or both (or --bon/--rl for "
            "the study, --write/--check to rebuild its outputs)"
        )
    runs = collect_runs(args.checkpoints)
    forms = {label: "rl" for label in runs}
    for path in args.bon_curve:
        bon = json.loads(Path(path).read_text())
        label = f"best-of-n ({Path(path).stem})"
        curve = bon["points"]
        runs[label] = {"command": bon.get("command"), "curve": curve}
        runs[label]["summary"] = overoptimization_summary(curve)
        forms[label] = "bon"
    if args.fit:
        for label, run in runs.items():
            run["fits"] = fit_run(run["curve"], forms[label])
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"x": args.x, "runs": runs}, indent=1) + "\n")
    curves = {label: run["curve"] for label, run in runs.items()}
    plot_overoptimization(
        curves,
        args.png,
        x=args.x,
        title="Dialog-Chat-v1: RL against the RM",
        fit=forms if args.fit else None,
    )
    for label, run in runs.items():
        s = run["summary"]
        print(
            f"{label}: gold peaks at {s['peak_gold']:.3f} (KL {s['peak_kl']:.2f} nats/episode, "
            f"iteration {s['peak_iteration']}), ends at {s['final_gold']:.3f} (KL "
            f"{s['final_kl']:.2f}); proxy {s['peak_proxy']:.3f} -> {s['final_proxy']:.3f}"
            + ("; over-optimized" if s["overoptimized"] else "")
        )
        for which, f in run.get("fits", {}).items():
            peak = "no peak" if f["d_peak"] is None else f"peak at d={f['d_peak']:.3f}"
            print(
                f"  {which} fit ({f['form']}): alpha {f['alpha']:.4f}, beta {f['beta']:.4f}, "
                f"{peak}, {f['gold_lost']:.4f} lost by d={f['d_max']:.3f}"
            )
    print(f"wrote {args.json} and {args.png}")
    return 0
