"""Two ways of running group RL, judged by their learning curves: is the faster one worse?

A speed lever that changes the numbers (``--merge-twins`` sums the update's loss in
another float order; ``--remember-turns`` and ``--screen-chunk`` can change a token at a
near-tie) trains other weights than the run without it, so issue 28 asks for its
learning curve beside the synchronous one's over the same iterations, and that it be
not worse beyond noise. This reads the manifests of ``dialog-bench train grpo`` runs,
``--base`` (without the lever) and ``--lever`` (with it), paired by their ``--seed``,
and compares their dev evaluations point by point.

Every point of a run holds each dev episode's success (``episode_success``, or its gold,
``context_gold``, on the chat task), and both runs of a seed evaluate the same dev
episodes, so a difference is *paired*: its standard error is that of the mean of the
per-episode differences. The verdict pools every point after iteration 0 and every
seed: the lever's mean difference in dev success (gold on chat). Its standard error has
two parts. The episodes': each episode's differences are averaged over points and seeds
first, so the points of one run, which share their episodes, are not counted as
independent. The runs': two trainings that differ by chance (another seed, or the
rounding a lever changes) land apart as a whole, every episode's score moving together,
which the spread over episodes cannot see. The base's first two seeds measure it: the
difference between them, less its episode noise, is twice a run's variance
(``run_variance``), and the pooled difference of S seed pairs carries ``2 x
run_variance / S`` of it. With one seed the run-to-run part is unknown and the verdict
says so. It is "not worse beyond noise" unless the mean is below ``-2`` standard errors
(a failure to reject, not a proof of equality: read the difference and its error). ::

    python -m bench.grpo_curves --base runs/ckpt/sync-s0 runs/ckpt/sync-s1 \\
        --lever runs/ckpt/fast-s0 runs/ckpt/fast-s1 --out bench/results/grpo_curves.json

The record (``--out``, :class:`bench.record.BenchRecord`) holds the verdict's figures
(``difference``, ``difference_se`` with both parts, ``episode_se``, ``run_variance``,
``worse``, ``seed_difference``, ``seed_difference_se``), each side's training episodes
per CPU-hour and their ratio (``vs_base``), and each run's curve of dev score and env
steps (``curves``).
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.record import BenchRecord, add_out_argument

__all__ = ["Run", "episode_pair", "load_run", "main", "paired_difference"]

#: How many standard errors below 0 a lever's mean difference must fall to be "worse".
WORSE_SE = 2.0


class Run:
    """One run's seed, command and evaluations, read from its ``manifest.json``."""

    def __init__(self, path: Path, manifest: dict[str, Any]) -> None:
        self.path = path
        if "seed" not in manifest.get("config", {}):
            raise SystemExit(f"{path}: its manifest names no seed (config.seed)")
        self.seed = int(manifest["config"]["seed"])
        self.points = {int(p["iteration"]): p for p in manifest.get("curve", [])}
        self.budget = manifest.get("budget", {})
        if not self.points:
            raise SystemExit(f"{path}: its manifest has no learning curve")

    def per_cpu_hour(self) -> float | None:
        """Training episodes per CPU-hour of the whole run (its manifest's budget), if
        the run recorded both (runs of this commit or later do)."""
        if not self.budget.get("episodes") or not self.budget.get("cpu_time_s"):
            return None
        return 3600 * self.budget["episodes"] / self.budget["cpu_time_s"]

    def per_episode(self, iteration: int) -> np.ndarray:
        """Each dev episode's success (chat: its gold) at ``iteration``."""
        point = self.points[iteration]
        for key in ("context_gold", "episode_success"):
            if key in point:
                return np.asarray(point[key], dtype=float)
        raise SystemExit(
            f"{self.path}: the point of iteration {iteration} has no per-episode scores "
            "(runs of this commit or later record them: baselines.common.evaluation)"
        )


def load_run(path: Path) -> Run:
    """The run whose ``manifest.json`` is in ``path`` (or is ``path``)."""
    manifest = path / "manifest.json" if path.is_dir() else path
    if not manifest.is_file():
        raise SystemExit(f"{path}: no manifest.json")
    return Run(path, json.loads(manifest.read_text()))


def episode_pair(base: Run, other: Run, iteration: int) -> tuple[np.ndarray, np.ndarray]:
    """Both runs' per-episode scores at ``iteration``, refused unless they are of the same
    dev episodes (as many, 2 or more)."""
    ours, theirs = base.per_episode(iteration), other.per_episode(iteration)
    if ours.shape != theirs.shape or len(ours) < 2:
        raise SystemExit(
            f"iteration {iteration}: {len(ours)} and {len(theirs)} dev episodes: the runs "
            "must evaluate the same episodes (the same --eval-episodes), 2 or more"
        )
    return ours, theirs


def paired_difference(
    pairs: Sequence[tuple[Run, Run]], iterations: Sequence[int]
) -> tuple[float, float]:
    """The mean over ``pairs`` (``(base, other)`` runs of one seed) and ``iterations`` of
    ``other - base`` in per-episode score, and its standard error: each episode's
    difference is averaged over the points and pairs first, so that the points of a run,
    which share their episodes, count once.

    >>> class R:  # two points of 4 episodes
    ...     def __init__(self, s): self.s = s
    ...     def per_episode(self, i): return np.array(self.s[i], dtype=float)
    >>> a, b = R({5: [1, 0, 1, 0], 10: [1, 1, 1, 0]}), R({5: [1, 1, 1, 0], 10: [1, 1, 1, 1]})
    >>> [round(x, 4) for x in paired_difference([(a, b)], [5, 10])]
    [0.25, 0.1443]
    """
    if not iterations:
        raise SystemExit("no evaluation after iteration 0 that every run shares")
    differences = []
    for base, other in pairs:
        for i in iterations:
            ours, theirs = episode_pair(base, other, i)
            differences.append(theirs - ours)
    per_episode = np.mean(differences, axis=0)
    se = float(per_episode.std(ddof=1) / math.sqrt(len(per_episode)))
    return float(per_episode.mean()), se


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", type=Path, nargs="+", required=True, help="runs without")
    parser.add_argument("--lever", type=Path, nargs="+", required=True, help="runs with")
    add_out_argument(parser)
    args = parser.parse_args(argv)
    with BenchRecord("grpo_curves", argv, args) as record:
        compare(args, record)
    return 0


def compare(args: argparse.Namespace, record: BenchRecord) -> None:
    """Print each seed's curves side by side and the verdict; keep the figures."""
    base, lever = _by_seed(args.base, "--base"), _by_seed(args.lever, "--lever")
    seeds = sorted(set(base) & set(lever))
    if not seeds:
        raise SystemExit(
            f"no seed has both a base and a lever run: {sorted(base)} vs {sorted(lever)}"
        )
    paired = [run for seed in seeds for run in (base[seed], lever[seed])]
    iterations = sorted(set.intersection(*(set(r.points) for r in paired)))
    later = [i for i in iterations if i > 0]
    curves: dict[str, list[dict[str, Any]]] = {}
    for seed in seeds:
        print(f"seed {seed}: dev success (chat: gold), base / lever, paired difference (se)")
        for i in iterations:
            b, lv = episode_pair(base[seed], lever[seed], i)
            d, se = paired_difference([(base[seed], lever[seed])], [i])
            env = (base[seed].points[i]["env_steps"], lever[seed].points[i]["env_steps"])
            print(
                f"  iteration {i:3d}: {b.mean():.3f} / {lv.mean():.3f}  "
                f"{d:+.3f} ({se:.3f})  env steps {env[0]} / {env[1]}"
            )
        for side, run in (("base", base[seed]), ("lever", lever[seed])):
            curves[f"{side}_s{seed}"] = [
                {
                    "iteration": i,
                    "score": float(run.per_episode(i).mean()),
                    "env_steps": run.points[i]["env_steps"],
                }
                for i in iterations
            ]
    speeds = {
        side: [r.per_cpu_hour() for r in runs.values()]
        for side, runs in (("base", base), ("lever", lever))
    }
    if all(v is not None for values in speeds.values() for v in values):
        rates = {side: float(np.mean(values)) for side, values in speeds.items()}
        print(
            "training episodes per CPU-hour of the whole runs (mean over seeds): "
            f"base {rates['base']:,.0f}, lever {rates['lever']:,.0f}"
        )
        record.ratio(
            "vs_base", "lever / base episodes per CPU-hour", rates["lever"] / rates["base"], "", 2
        )
        record.figures |= {"base_per_cpu_hour": rates["base"], "lever_per_cpu_hour": rates["lever"]}
    difference, episode_se = paired_difference([(base[s], lever[s]) for s in seeds], later)
    figures: dict[str, Any] = {"difference": difference, "episode_se": episode_se}
    run_variance = None
    if len(seeds) >= 2:
        seed_d, seed_se = paired_difference([(base[seeds[0]], base[seeds[1]])], later)
        run_variance = max(0.0, seed_d**2 - seed_se**2) / 2
        print(
            f"base seed {seeds[1]} - base seed {seeds[0]} (chance alone): {seed_d:+.4f} "
            f"(se {seed_se:.4f}): a run's variance {run_variance:.6f}"
        )
        figures |= {"seed_difference": seed_d, "seed_difference_se": seed_se}
    se = math.sqrt(episode_se**2 + 2 * (run_variance or 0.0) / len(seeds))
    worse = difference < -WORSE_SE * se
    print(
        f"lever - base over iterations {later} and seeds {seeds}: {difference:+.4f} "
        f"(se {se:.4f}; episodes {episode_se:.4f}"
        + ("; runs unknown with one seed" if run_variance is None else "")
        + f"): {'worse beyond noise' if worse else 'not worse beyond noise'}"
    )
    figures |= {"difference_se": se, "run_variance": run_variance, "worse": worse}
    record.figures |= figures | {"curves": curves}


def _by_seed(paths: Sequence[Path], flag: str) -> dict[int, Run]:
    runs: dict[int, Run] = {}
    for run in map(load_run, paths):
        if run.seed in runs:
            raise SystemExit(
                f"{flag}: two runs of seed {run.seed} ({runs[run.seed].path}, {run.path})"
            )
        runs[run.seed] = run
    return runs


if __name__ == "__main__":
    raise SystemExit(main())
