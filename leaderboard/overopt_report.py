"""The over-optimization study on the page: the table of fits, the statements, the figure.

Everything here is derived from a study file (:mod:`leaderboard.overopt_study`), so that
the docs' page (``docs/overoptimization.md``), the README's short block and the figure
(``docs/overoptimization.png``) are rebuilt from the committed curves by one command::

    dialog-bench overopt --bon runs/bon-curves.json --rl runs/ckpt/rl-a-b0.02 ... \\
        --study leaderboard/overopt_study.json      # collect the curves
    dialog-bench overopt --write                     # rewrite the page, README block, PNG
    dialog-bench overopt --check                     # exit 1 when one differs

The page and the README hold the block between :data:`MARKERS`; :func:`study_block`
writes it (the README's with the figure's path from the root and a link to the page).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from leaderboard.overopt_figure import FIGURE_CAPTION, study_png
from leaderboard.overopt_verdicts import (
    Z,
    done_when,
    ensemble_verdicts,
    fit_curve,
    frontier_verdicts,
)

__all__ = [
    "MARKERS",
    "PAGE",
    "PNG",
    "README",
    "add_study_arguments",
    "check_outputs",
    "fits_table",
    "noise_sentence",
    "run_study",
    "statements",
    "study_block",
    "study_outputs",
    "write_outputs",
]

MARKERS = (
    "<!-- overopt-study:start (dialog-bench overopt --write) -->",
    "<!-- overopt-study:end -->",
)
#: The outputs, relative to a checkout's root.
PAGE = Path("docs") / "overoptimization.md"
README = Path("README.md")
PNG = Path("docs") / "overoptimization.png"


def _num(value: float | None, fmt: str = ".3f") -> str:
    return "-" if value is None else format(value, fmt)


def fits_table(study: Mapping[str, Any]) -> str:
    """The Markdown table of the fits, a row per curve (:func:`fit_curve`); a missing fit
    or peak says why in its cell."""
    lines = [
        "| curve | kind | proxy | beta | points | alpha | beta (fit) | d at the gold peak "
        "(fit) | peak gain (fit) | gold lost after the peak | proxy still rising? |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for label, curve in study["curves"].items():
        row = fit_curve(curve)
        count = len(curve["points"])
        alpha, beta = _num(row["alpha"], "+.3f"), _num(row["beta"], "+.3f")
        if row["note"] and row["alpha"] is None:
            alpha = beta = row["note"]
        d_peak = row["note"]
        if row["d_peak"] is not None:
            d_peak = f"{row['d_peak']:.2f}" + (f" ({row['note']})" if row["note"] else "")
        lines.append(
            f"| {label} | {curve['kind']} | {curve['proxy']} | {_num(curve.get('beta'), 'g')} | "
            f"{count} | {alpha} | {beta} | {d_peak or '-'} | {_num(row['peak_gain'], '+.3f')} | "
            f"{row['gold_lost']:.3f} | {'yes' if row['proxy_rising'] else 'no'} |"
        )
    return "\n".join(lines)


def _frontier_sentence(v: Mapping[str, Any]) -> str:
    stops = ", ".join(f"beta {beta:g} at d = {d_max:.2f}" for _, beta, d_max in v["runs"])
    head = f"**KL coefficient, proxy {v['proxy']}** (runs stop at {stops}): "
    if v["moved"] is None:
        return head + "cannot say: no two runs share a d range with known noise."
    beta = {label: b for label, b, _ in v["runs"]}
    a, b, g = v["largest"]
    where = (
        f"on their common range (d <= {g['d_high']:.2f}) gold at beta {beta[b]:g} minus "
        f"at beta {beta[a]:g} stands out "
        f"most from noise at d = {g['d']:.2f}: {g['gap']:+.3f} (threshold {g['threshold']:.3f})"
    )
    if v["moved"]:
        return head + f"moved the frontier: {where}."
    return head + f"only stopped earlier: {where}, within noise."


def _peak_text(peak: tuple[float, bool]) -> str:
    d, inside = peak
    return f"d = {d:.2f}" if inside else f"beyond d = {d:.2f} (no peak within the range)"


def _ensemble_sentence(v: Mapping[str, Any]) -> str:
    members = "; ".join(f"{label} {_peak_text(peak)}" for label, peak in v["members"])
    verdict = {True: "pushed the peak out", False: "did not push the peak out", None: ""}[
        v["pushed_out"]
    ]
    verdict = verdict or "cannot say: neither it nor a member peaks within its range"
    return (
        f"**Ensemble, {v['label']}**: fitted gold peak {_peak_text(v['peak'])}; its members: "
        f"{members}: {verdict}."
    )


def statements(study: Mapping[str, Any]) -> list[str]:
    """The study's three statements, computed (:mod:`leaderboard.overopt_verdicts`): the KL
    coefficient's effect per proxy, the ensemble's peak, and issue 27's test."""
    curves = study["curves"]
    out = [_frontier_sentence(v) for v in frontier_verdicts(curves)]
    if not out:
        out.append("**KL coefficient**: no proxy has RL runs at two KL coefficients yet.")
    ensembles = [_ensemble_sentence(v) for v in ensemble_verdicts(curves)]
    out += ensembles or ["**Ensemble**: no ensemble curve beside its members' curves yet."]
    test = done_when(curves)
    bon = "; ".join(f"`{label}`" for label in test["bon"]) or "none"
    rl = "; ".join(f"`{label}`" for label in test["rl"]) or "none"
    out.append(
        f"**Gold rises, then falls** (issue 27's test): best-of-n: {bon}; RL, while its "
        f"proxy still rises: {rl}: {'met' if test['met'] else 'not met'}."
    )
    out.append(noise_sentence(test["paired"]))
    return out


def noise_sentence(paired: Sequence[str]) -> str:
    """The statements' last line: which standard error of a difference the verdicts used,
    paired over contexts for the curves in ``paired`` (``done_when``'s), else unpaired.

    >>> "paired for `best-of-n, rm-a`" in noise_sentence(["best-of-n, rm-a"])
    True
    """
    unpaired = (
        "a point's `dev_gold_se` or the error of its per-episode gold, else the binomial "
        "bound over its dev episodes"
    )
    if not paired:
        return f"Differences count beyond {Z:g} standard errors of a difference ({unpaired})."
    labels = "; ".join(f"`{label}`" for label in paired)
    return (
        f"Differences count beyond {Z:g} standard errors of a difference: paired for "
        f"{labels} (the error over contexts of the per-context gold difference: every n, "
        f"or every evaluation of a run, on the same contexts), elsewhere sqrt(se_a^2 + "
        f"se_b^2) with {unpaired}."
    )


def study_block(study: Mapping[str, Any], image: str, page: str | None = None) -> str:
    """The block between :data:`MARKERS`: the figure (at ``image``, relative to the page),
    its caption, the table of fits and the statements; ``page``: a link to the full page
    (the README's block)."""
    parts = [
        f"![gold and proxy against sqrt(KL)]({image})",
        FIGURE_CAPTION,
        fits_table(study),
        "\n".join(f"- {s}" for s in statements(study)),
    ]
    source = "Rebuilt from `leaderboard/overopt_study.json` by `dialog-bench overopt --write`"
    parts.append(f"{source}; the method: [{page}]({page})." if page else f"{source}.")
    return "\n\n".join(parts)


def study_outputs(study: Mapping[str, Any]) -> dict[Path, str | bytes]:
    """``{path relative to the root: its block (text) or the PNG (bytes)}``."""
    return {
        PAGE: study_block(study, PNG.name),
        README: study_block(study, PNG.as_posix(), PAGE.as_posix()),
        PNG: study_png(study),
    }


def write_outputs(study: Mapping[str, Any], root: Path) -> list[Path]:
    """Rewrite the outputs under ``root``; the paths that changed. A page without the
    markers is a one-line error."""
    from leaderboard.marked_blocks import marked_block, replace_marked_block

    changed = []
    for rel, content in study_outputs(study).items():
        path = root / rel
        if isinstance(content, bytes):
            if not path.is_file() or path.read_bytes() != content:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(content)
                changed.append(path)
            continue
        if path.is_file() and marked_block(path, MARKERS) == content:
            continue
        if not replace_marked_block(path, content, MARKERS):
            raise ValueError(f"{path}: no {MARKERS[0]} ... {MARKERS[1]} markers")
        changed.append(path)
    return changed


def check_outputs(study: Mapping[str, Any], root: Path) -> list[Path]:
    """The outputs under ``root`` that differ from the ones the study gives."""
    from leaderboard.marked_blocks import marked_block

    stale = []
    for rel, content in study_outputs(study).items():
        path = root / rel
        if not path.is_file():
            stale.append(path)
        elif isinstance(content, bytes):
            if path.read_bytes() != content:
                stale.append(path)
        elif marked_block(path, MARKERS) != content:
            stale.append(path)
    return stale


def run_study(args: Any) -> int:
    """``dialog-bench overopt`` with ``--bon``/``--rl`` (collect the curves into
    ``--study``), ``--write`` or ``--check`` (the outputs under ``--root`` from
    ``--study``); prints the table and the statements."""
    import json
    import shlex
    import sys

    from leaderboard.overopt_study import OUT_STUDY, collect_study, read_study

    args.study = args.study or OUT_STUDY
    if args.bon or args.rl:
        command = shlex.join(["dialog-bench", *sys.argv[1:]]) if sys.argv[1:] else None
        study = collect_study(args.bon, args.rl, command=command)
        args.study.parent.mkdir(parents=True, exist_ok=True)
        args.study.write_text(json.dumps(study, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {args.study}: {len(study['curves'])} curves")
        study = read_study(args.study)
    else:
        study = read_study(args.study)
    print(fits_table(study))
    print("\n".join(f"- {s}" for s in statements(study)))
    if args.write:
        changed = write_outputs(study, args.root)
        print("rewrote " + (", ".join(map(str, changed)) if changed else "nothing: up to date"))
    if args.check:
        stale = check_outputs(study, args.root)
        if stale:
            print(
                f"not the ones {args.study} gives: {', '.join(map(str, stale))} "
                "(dialog-bench overopt --write)"
            )
            return 1
        print("the page, the README block and the figure are the study's")
    return 0


def add_study_arguments(parser: Any) -> None:
    """The study's flags of ``dialog-bench overopt``: ``--bon``, ``--rl``, ``--study``,
    ``--write``/``--check`` and ``--root`` (:func:`run_study` runs them)."""
    from leaderboard.overopt_study import OUT_STUDY

    study = parser.add_argument_group(
        "the study (docs/overoptimization.md): every curve in one file, its fits, "
        "statements, figure and table"
    )
    study.add_argument(
        "--bon",
        type=Path,
        nargs="+",
        default=[],
        metavar="JSON",
        help="best-of-n curve files (python -m baselines.bon_curve; a curve per proxy)",
    )
    study.add_argument(
        "--rl",
        type=Path,
        nargs="+",
        default=[],
        metavar="CHECKPOINT",
        help="train grpo checkpoints (or their manifest.json, or an overoptimization.json "
        "of this command's runs)",
    )
    study.add_argument(
        "--study",
        type=Path,
        metavar="JSON",
        help=f"the study file: written from --bon/--rl, else read and its table printed "
        f"(default: {OUT_STUDY})",
    )
    mode = study.add_mutually_exclusive_group()
    mode.add_argument(
        "--write",
        action="store_true",
        help="rewrite the figure, the page's and the README's blocks from the study",
    )
    mode.add_argument(
        "--check", action="store_true", help="exit 1 when one of them is not the study's"
    )
    study.add_argument(
        "--root", type=Path, default=Path("."), help="the checkout they are in (default: .)"
    )
