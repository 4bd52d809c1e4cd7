"""A lineage's science table over training seeds, rebuilt from files (``dialog-bench seeds``).

A lineage (DESIGN §6) is one demonstrator's demos and every row trained from them. Its
rows are trained over seeds: seed 0 of a row is the board's own results file
(``results/<env id>/<row>.json``), seed k >= 1 a results file that is no board entry,
``results/seeds/<env id>/<row>-s<k>.json`` (made by ``dialog-bench evaluate DIR
--episodes test --out ...``, the same format). :func:`seed_files` finds them.

The table reads each pair of the lineage at every seed where both rows have a file:

- "SFT->RL vs its SFT start" (``rl-careless-s<k>`` vs ``sft-careless-s<k>``: each RL seed
  starts from the SFT of the same seed);
- "RL vs filtered SFT on the same demos" and "RL from filtered vs filtered SFT" (seed 0
  only, while the filtered rows have one seed).

Per seed: the paired difference (RL minus SFT) of success on the identical test episodes
with its 95% bootstrap CI, exactly as ``dialog-bench compare`` and the board compute it
(:func:`leaderboard.compare.compare_results`); over seeds: the mean of the per-seed
differences, their range, and in how many seeds the CI excludes 0. The aggregates over
seeds in rliable's terms (IQM with stratified bootstrap CIs, probability of improvement, a
performance profile) are :mod:`leaderboard.seed_aggregates`, an optional extra
(``pip install 'dialog-bench[stats]'``); without it the per-seed table stands alone.

Reads results files; runs no agent. The command is :mod:`leaderboard.seeds_command`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from leaderboard.compare import PairedComparison, compare_results
from leaderboard.results import read_results

__all__ = [
    "CARELESS",
    "LINEAGES",
    "PAIR_KINDS",
    "Lineage",
    "PairOverSeeds",
    "RowOverSeeds",
    "ScienceTable",
    "pairs_markdown",
    "science_table",
    "seed_files",
    "seed_path",
]

#: Where the shipped results files live (``<env id>/`` the board's, ``seeds/<env id>/`` the
#: other seeds').
RESULTS_DIR = Path(__file__).resolve().parent / "results"
SEEDS_FOLDER = "seeds"
#: What each kind of pair compares, as the table says it.
PAIR_KINDS = {
    "start": "SFT->RL vs its SFT start",
    "filtered": "RL vs filtered SFT on the same demos",
    "filtered-start": "RL from filtered vs filtered SFT",
}


@dataclass(frozen=True)
class Lineage:
    """The rows of one lineage, by their board names."""

    name: str
    demonstrator: str
    sft: str
    filtered: str
    rl: str
    rl_filtered: str

    @property
    def rows(self) -> tuple[str, ...]:
        """Every row, the demonstrator first."""
        return (self.demonstrator, self.sft, self.filtered, self.rl, self.rl_filtered)

    @property
    def pairs(self) -> tuple[tuple[str, str, str], ...]:
        """``(kind, rl row, sft row)`` of each verdict the lineage is read by."""
        return (
            ("start", self.rl, self.sft),
            ("filtered", self.rl, self.filtered),
            ("filtered-start", self.rl_filtered, self.filtered),
        )


CARELESS = Lineage(
    "careless",
    "careless-expert",
    "sft-careless",
    "sft-careless-filtered",
    "rl-careless",
    "rl-careless-filtered",
)
LINEAGES = {CARELESS.name: CARELESS}


def seed_path(results_dir: Path, env_id: str, name: str, seed: int) -> Path:
    """Where the results file of ``name``'s training seed ``seed`` lives.

    >>> seed_path(Path("r"), "Dialog-v1", "sft-careless", 0).as_posix()
    'r/Dialog-v1/sft-careless.json'
    >>> seed_path(Path("r"), "Dialog-v1", "sft-careless", 2).as_posix()
    'r/seeds/Dialog-v1/sft-careless-s2.json'
    """
    if seed == 0:
        return Path(results_dir) / env_id / f"{name}.json"
    return Path(results_dir) / SEEDS_FOLDER / env_id / f"{name}-s{seed}.json"


def seed_files(results_dir: Path, env_id: str, name: str) -> dict[int, Path]:
    """``{seed: results file}`` of row ``name``: seed 0 the board's file, seeds k >= 1
    ``seeds/<env id>/<name>-s<k>.json``; only the files that exist, by seed.

    A ``<name>-s0.json`` among the seeds is an error: seed 0 is the board's own file.
    """
    found = {}
    board = seed_path(results_dir, env_id, name, 0)
    if board.is_file():
        found[0] = board
    pattern = re.compile(rf"{re.escape(name)}-s(\d+)\.json")
    folder = Path(results_dir) / SEEDS_FOLDER / env_id
    for path in sorted(folder.glob(f"{name}-s*.json")) if folder.is_dir() else []:
        match = pattern.fullmatch(path.name)
        if match is None:
            continue  # another row whose name starts with this one's
        seed = int(match.group(1))
        if seed == 0:
            raise ValueError(f"{path}: seed 0 of {name} is the board's file, {board}")
        found[seed] = path
    return dict(sorted(found.items()))


@dataclass(frozen=True)
class RowOverSeeds:
    """One row's results over its training seeds: success rate and mean return per seed."""

    name: str
    seeds: tuple[int, ...]
    success: tuple[float, ...]
    mean_return: tuple[float, ...]
    #: Each seed's results file, relative to the results folder.
    files: tuple[str, ...] = field(repr=False)


@dataclass(frozen=True)
class PairOverSeeds:
    """One pair of the lineage at every seed where both rows have a results file:
    ``per_seed`` holds ``(seed, comparison)``, the comparison's difference being RL minus
    SFT on the same episodes."""

    kind: str
    rl: str
    sft: str
    per_seed: tuple[tuple[int, PairedComparison], ...]

    @property
    def seeds(self) -> tuple[int, ...]:
        return tuple(seed for seed, _ in self.per_seed)

    @property
    def differences(self) -> tuple[float, ...]:
        return tuple(c.success_difference.estimate for _, c in self.per_seed)

    @property
    def mean_difference(self) -> float:
        """The mean over seeds of the per-seed paired differences."""
        return sum(self.differences) / len(self.differences)

    @property
    def excluding_zero(self) -> int:
        """In how many seeds the paired CI excludes 0 (either way)."""
        return sum(c.success_difference.excludes_zero() for _, c in self.per_seed)

    @property
    def above_zero(self) -> int:
        """In how many seeds the paired CI lies wholly above 0 (RL ahead)."""
        return sum(c.success_difference.low > 0 for _, c in self.per_seed)

    def summary(self) -> str:
        """The pair over seeds in words: the mean of the per-seed differences (and their
        range, from 2 seeds on) and in how many seeds the CI excludes 0."""
        n, d = len(self.per_seed), self.differences
        spread = f" (per seed {min(d):+.3f} to {max(d):+.3f})" if n > 1 else ""
        return (
            f"mean {self.mean_difference:+.3f} over {n} seed{'s' if n > 1 else ''}{spread}; the "
            f"CI excludes 0 in {self.excluding_zero} of {n} seeds (above 0 in {self.above_zero})"
        )


@dataclass(frozen=True)
class ScienceTable:
    """A lineage's rows and pairs over seeds on one env's test episodes."""

    lineage: str
    env_id: str
    rows: tuple[RowOverSeeds, ...]
    pairs: tuple[PairOverSeeds, ...]

    def row(self, name: str) -> RowOverSeeds:
        """The row called ``name``."""
        for r in self.rows:
            if r.name == name:
                return r
        raise KeyError(name)

    def to_json(self) -> dict:
        """Every figure, JSON-ready (each interval as ``[estimate, low, high]``)."""

        def interval(d) -> list[float]:
            return [d.estimate, d.low, d.high]

        return {
            "lineage": self.lineage,
            "env_id": self.env_id,
            "rows": [
                {
                    "name": r.name,
                    "seeds": list(r.seeds),
                    "success": list(r.success),
                    "mean_return": list(r.mean_return),
                    "files": list(r.files),
                }
                for r in self.rows
            ],
            "pairs": [
                {
                    "kind": p.kind,
                    "what": PAIR_KINDS[p.kind],
                    "rl": p.rl,
                    "sft": p.sft,
                    "per_seed": [
                        {
                            "seed": seed,
                            "episodes": c.episodes,
                            "rl_success": c.candidate_success,
                            "sft_success": c.baseline_success,
                            "success_difference": interval(c.success_difference),
                            "return_difference": interval(c.return_difference),
                        }
                        for seed, c in p.per_seed
                    ],
                    "mean_difference": p.mean_difference,
                    "seeds_excluding_zero": p.excluding_zero,
                    "seeds_above_zero": p.above_zero,
                }
                for p in self.pairs
            ],
        }


def _row(results_dir: Path, env_id: str, name: str) -> RowOverSeeds | None:
    files = seed_files(results_dir, env_id, name)
    if not files:
        return None
    success, returns = [], []
    for path in files.values():
        episodes = read_results(path)["episodes"]
        success.append(sum(bool(e["success"]) for e in episodes) / len(episodes))
        returns.append(sum(float(e["return"]) for e in episodes) / len(episodes))
    where = tuple(p.relative_to(results_dir).as_posix() for p in files.values())
    return RowOverSeeds(name, tuple(files), tuple(success), tuple(returns), where)


def science_table(
    lineage: Lineage = CARELESS, results_dir: Path = RESULTS_DIR, env_id: str = "Dialog-v1"
) -> ScienceTable:
    """The lineage's table from the results files under ``results_dir``: each row with a
    file at seed 0 or later, each pair at every seed where both its rows have a file."""
    rows = tuple(r for r in (_row(results_dir, env_id, n) for n in lineage.rows) if r is not None)
    if not rows:
        raise FileNotFoundError(
            f"no results file of the {lineage.name} lineage ({', '.join(lineage.rows)}) "
            f"under {Path(results_dir) / env_id}"
        )
    pairs = []
    for kind, rl, sft in lineage.pairs:
        rl_files = seed_files(results_dir, env_id, rl)
        sft_files = seed_files(results_dir, env_id, sft)
        per_seed = tuple(
            (seed, compare_results(sft_files[seed], [rl_files[seed]])[0])
            for seed in sorted(rl_files.keys() & sft_files.keys())
        )
        if per_seed:
            pairs.append(PairOverSeeds(kind, rl, sft, per_seed))
    return ScienceTable(lineage.name, env_id, rows, tuple(pairs))


def _interval(d) -> str:
    return f"{d.estimate:+.3f} [{d.low:+.3f}, {d.high:+.3f}]"


def pairs_markdown(table: ScienceTable) -> str:
    """The pairs as a Markdown table: a line per seed (RL and SFT success, the paired
    difference with its 95% CI), then a line over seeds (:meth:`PairOverSeeds.summary`);
    each pair is named on its first line."""
    lines = [
        "| pair | seed | RL | SFT | success difference (RL - SFT) [95% CI] |",
        "| --- | --- | --- | --- | --- |",
    ]
    for p in table.pairs:
        name = f"{PAIR_KINDS[p.kind]}: `{p.rl}` vs `{p.sft}`"
        for seed, c in p.per_seed:
            lines.append(
                f"| {name} | {seed} | {c.candidate_success:.3f} | {c.baseline_success:.3f} | "
                f"{_interval(c.success_difference)} |"
            )
            name = ""  # the pair is named on its first line only
        lines.append(f"| | over seeds | | | {p.summary()} |")
    return "\n".join(lines)
