"""Aggregates of a lineage over training seeds, in rliable's terms (Agarwal et al., 2021).

rliable reads scores as a matrix of shape ``(runs, tasks)``. What the matrix is here:

- **IQM and probability of improvement**: runs = a row's training seeds, tasks = the one
  task (the env's test episode set), each score the run's success rate over the test
  episodes: a ``(seeds, 1)`` matrix. Not tasks = episodes: rliable's tasks are separate
  environments, each scored by a number a run reaches; the test episodes are draws from
  one task, whose uncertainty the paired bootstrap over episodes already measures
  (:mod:`leaderboard.seeds`), and the IQM of 0/1 outcomes is 0 or 1, not a success rate.
- **IQM of success** (``rliable.metrics.aggregate_iqm``) with a 95% stratified bootstrap CI
  (``rliable.library.get_interval_estimates``: runs resampled within the task). Below 4
  seeds the IQM cuts nothing (``int(0.25 * n) == 0``): it is the mean, and trims from 4
  seeds on. With one seed the CI is that seed's figure: the spread over seeds is unknown,
  not zero.
- **Probability of improvement** of the RL row over the SFT row
  (``rliable.metrics.probability_of_improvement``): the share of (RL seed, SFT seed) pairs
  in which RL's success rate is the higher, ties counting half (the Mann-Whitney U over
  ``n * m``), with a stratified independent bootstrap CI. It takes the runs as independent
  samples: that RL seed k starts from SFT seed k is what the per-seed paired table uses.
- **Performance profile** (``rliable.library.create_performance_profile``, score
  distributions): here tasks = the test episodes and the score an episode's return, a
  ``(seeds, episodes)`` matrix per row; the profile at ``tau`` is the share of (seed,
  episode) runs whose return exceeds ``tau``, with a stratified bootstrap CI (seeds
  resampled within each episode). A profile over per-seed success rates would be one step
  per seed; over returns it shows how often a row succeeds (the plateau right of 0) and
  how fast (the fall towards the best return).

rliable's stratified bootstrap draws its indices from numpy's *global* generator
(``np.random.choice``), not from the ``random_state`` it is handed: every call here seeds
that generator with ``BOOTSTRAP_SEED`` and restores its state afterwards, so each figure is
the same on every run and no one else's draws move. IQM and probability of improvement use
``N_RESAMPLES`` (10,000) resamples, as the board's CIs; the profile ``PROFILE_RESAMPLES``.

rliable is the optional extra ``stats`` (``pip install 'dialog-bench[stats]'``); the
profile's data, once written, is drawn with matplotlib alone
(:mod:`leaderboard.profile_page`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from leaderboard.results import read_results
from leaderboard.seeds import PAIR_KINDS, ScienceTable
from leaderboard.stats import BOOTSTRAP_SEED, CONFIDENCE, N_RESAMPLES, Interval

__all__ = [
    "PROFILE_RESAMPLES",
    "aggregates",
    "aggregates_markdown",
    "iqm_over_seeds",
    "probability_of_improvement",
    "profile_data",
]

PROFILE_RESAMPLES = 2_000
#: Thresholds of the profile (episode returns).
_TAUS = 101


def _rliable():
    """rliable's ``library`` and ``metrics``, or an ImportError that names the extra."""
    try:
        from rliable import library, metrics
    except ImportError as err:
        raise ImportError(
            f"aggregates over seeds need rliable ({err}): pip install 'dialog-bench[stats]'"
        ) from err
    return library, metrics


@contextmanager
def _global_numpy_seed(seed: int) -> Iterator[None]:
    """numpy's global generator seeded for the block, its state restored after."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


def _runs(scores: Sequence[float]) -> np.ndarray:
    """A ``(runs, 1)`` score matrix: one task, one score per training seed."""
    matrix = np.asarray(scores, dtype=np.float64).reshape(-1, 1)
    if matrix.size == 0:
        raise ValueError("need at least one run's score")
    return matrix


def _interval(point, bounds) -> Interval:
    estimate = float(np.asarray(point).reshape(-1)[0])
    low, high = (float(b) for b in np.asarray(bounds).reshape(2, -1)[:, 0])
    return Interval(estimate, min(low, estimate), max(high, estimate))


def iqm_over_seeds(
    scores: Sequence[float], n_resamples: int = N_RESAMPLES, seed: int = BOOTSTRAP_SEED
) -> Interval:
    """IQM of one score per seed, with its 95% stratified bootstrap CI (rliable).

    >>> iqm_over_seeds([0.5], n_resamples=100)
    Interval(estimate=0.5, low=0.5, high=0.5)
    """
    library, metrics = _rliable()
    with _global_numpy_seed(seed):
        point, bounds = library.get_interval_estimates(
            {"row": _runs(scores)},
            lambda s: np.array([metrics.aggregate_iqm(s)]),
            reps=n_resamples,
            confidence_interval_size=CONFIDENCE,
        )
    return _interval(point["row"], bounds["row"])


def probability_of_improvement(
    x: Sequence[float],
    y: Sequence[float],
    n_resamples: int = N_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> Interval:
    """P(X > Y) over seeds (``x``, ``y``: one score per seed of each), with its 95%
    stratified bootstrap CI (rliable).

    >>> probability_of_improvement([0.9, 0.8], [0.5], n_resamples=100).estimate
    1.0
    """
    library, metrics = _rliable()
    with _global_numpy_seed(seed):
        point, bounds = library.get_interval_estimates(
            {"pair": [_runs(x), _runs(y)]},
            lambda a, b: np.array([metrics.probability_of_improvement(a, b)]),
            reps=n_resamples,
            confidence_interval_size=CONFIDENCE,
        )
    return _interval(point["pair"], bounds["pair"])


def aggregates(table: ScienceTable, n_resamples: int = N_RESAMPLES) -> dict:
    """Per row the IQM of success over its seeds, per pair the probability of improvement
    of its RL row over its SFT row (every seed of each): JSON-ready, each interval as
    ``[estimate, low, high]``."""
    rows = {r.name: r for r in table.rows}
    out: dict = {"score_matrix": "runs = training seeds, one task; score = test success rate"}
    out["rows"] = [
        {
            "name": r.name,
            "seeds": list(r.seeds),
            "success": list(r.success),
            "iqm": list(_as_list(iqm_over_seeds(r.success, n_resamples))),
        }
        for r in table.rows
    ]
    out["pairs"] = [
        {
            "kind": p.kind,
            "rl": p.rl,
            "sft": p.sft,
            "rl_seeds": list(rows[p.rl].seeds),
            "sft_seeds": list(rows[p.sft].seeds),
            "probability_of_improvement": _as_list(
                probability_of_improvement(rows[p.rl].success, rows[p.sft].success, n_resamples)
            ),
        }
        for p in table.pairs
    ]
    return out


def _as_list(d: Interval) -> list[float]:
    return [d.estimate, d.low, d.high]


def _ci(values: Sequence[float]) -> str:
    return f"{values[0]:.3f} [{values[1]:.3f}, {values[2]:.3f}]"


def aggregates_markdown(figures: Mapping) -> str:
    """:func:`aggregates` as two Markdown tables: the rows' IQM over seeds, the pairs'
    probability of improvement."""
    lines = [
        "| row | seeds | success per seed | IQM of success over seeds [95% CI] |",
        "| --- | --- | --- | --- |",
    ]
    for r in figures["rows"]:
        seeds = ", ".join(str(s) for s in r["seeds"])
        success = ", ".join(f"{s:.3f}" for s in r["success"])
        lines.append(f"| `{r['name']}` | {seeds} | {success} | {_ci(r['iqm'])} |")
    lines += ["", "| pair | seeds | P(RL > SFT) over seeds [95% CI] |", "| --- | --- | --- |"]
    for p in figures["pairs"]:
        seeds = f"{len(p['rl_seeds'])} vs {len(p['sft_seeds'])}"
        lines.append(
            f"| {PAIR_KINDS[p['kind']]}: `{p['rl']}` vs `{p['sft']}` | {seeds} | "
            f"{_ci(p['probability_of_improvement'])} |"
        )
    return "\n".join(lines)


def _returns(results_dir: Path, files: Sequence[str]) -> np.ndarray:
    """``(seeds, episodes)``: each file's returns in the order of the episodes' seeds."""
    rows, order = [], None
    for name in files:
        episodes = sorted(read_results(results_dir / name)["episodes"], key=lambda e: e["seed"])
        seeds = [e["seed"] for e in episodes]
        if order is not None and seeds != order:
            raise ValueError(f"{name} holds other episodes than {files[0]}")
        order = seeds
        rows.append([float(e["return"]) for e in episodes])
    return np.array(rows)


def profile_data(
    table: ScienceTable, results_dir: Path, n_resamples: int = PROFILE_RESAMPLES
) -> dict:
    """The performance profile of every row of ``table`` over its seeds (episode returns,
    tasks = episodes), with 95% stratified bootstrap CIs (rliable); JSON-ready."""
    library, _ = _rliable()
    scores = {r.name: _returns(Path(results_dir), r.files) for r in table.rows}
    low = min(float(s.min()) for s in scores.values())
    # Rounded as written, so that the thresholds in the file are the ones the profile used.
    taus = np.round(np.linspace(np.floor(low * 10) / 10, 1.0, _TAUS), 6)
    with _global_numpy_seed(BOOTSTRAP_SEED):
        profiles, cis = library.create_performance_profile(
            scores, taus, reps=n_resamples, confidence_interval_size=CONFIDENCE
        )

    def rounded(values) -> list[float]:
        return [round(float(v), 6) for v in values]

    return {
        "lineage": table.lineage,
        "env_id": table.env_id,
        "score": "episode return",
        "runs": "training seeds",
        "tasks": "test episodes",
        "n_resamples": n_resamples,
        "taus": rounded(taus),
        "rows": {
            r.name: {
                "seeds": list(r.seeds),
                "profile": rounded(profiles[r.name]),
                "low": rounded(cis[r.name][0]),
                "high": rounded(cis[r.name][1]),
            }
            for r in table.rows
        },
    }
