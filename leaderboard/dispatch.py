"""Which job a ``dialog-bench run`` worker starts next: longest first, by an estimate.

The worker pool hands out jobs in the order it is given them, each to the first worker
that is free (greedy list scheduling). A long job started last keeps one worker busy
while the others idle, so :func:`dispatch_order` puts the jobs longest first (LPT) by
:func:`expected_cost`, an estimate known before the run: the CPU seconds per megabyte of
the baseline's published results file that its kind of agent took in a measured run
(:data:`CPU_SECONDS_PER_MB`), times that file's size; a best-of-n agent times its ``n``
candidates. The file's size follows what the agent does (an LM agent that writes more,
in longer episodes, decodes more); a baseline not published yet counts as
:data:`UNPUBLISHED_MB`. The estimate orders the work, never changes it: every job plays
the same episodes whichever worker runs it, whenever.

:func:`simulate_dispatch` replays the pool's rule on known costs: how long the run takes
and how long each worker idles at the end, for an order (docs/run-speed.md).

>>> plan = simulate_dispatch([1.0, 1.0, 4.0], workers=2)  # the long job started last
>>> plan.makespan, plan.idle_tail
(5.0, 4.0)
>>> simulate_dispatch([1.0, 1.0, 4.0], workers=2, order=dispatch_order([1.0, 1.0, 4.0]))
DispatchPlan(makespan=4.0, finish=(4.0, 2.0))
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "CPU_SECONDS_PER_MB",
    "UNPUBLISHED_MB",
    "DispatchPlan",
    "agent_kind",
    "dispatch_order",
    "expected_cost",
    "simulate_dispatch",
]

#: CPU seconds per megabyte of published results file, by kind of agent, from the run
#: measured in docs/leaderboard.md ("Where the time goes"): the agent's own work (an LM
#: decode, an SB3 forward pass, a rule) plus the env's (the voice, parsing, the reward
#: model) and the replay that verifies the file. ``best-of-n`` is per candidate.
CPU_SECONDS_PER_MB: dict[str, float] = {
    "built-in": 4.0,
    "sb3": 10.0,
    "lm": 45.0,
    "best-of-n": 28.0,
}
#: The size a baseline without a published results file is counted at (the published
#: ones are 0.2-1.2 MB for 500 episodes).
UNPUBLISHED_MB = 1.0


def agent_kind(baseline: str | Path) -> tuple[str, int]:
    """A baseline's kind (a key of :data:`CPU_SECONDS_PER_MB`) and its candidates per
    reply (a best-of-n config's ``n``, else 1), read without loading it; a checkpoint
    whose config cannot be read counts as an LM (its load fails later, with the error it
    deserves)."""
    from agents import AGENTS, checkpoint_dir
    from agents.checkpoint import read_config

    if str(baseline) in AGENTS:
        return "built-in", 1
    try:
        config = read_config(checkpoint_dir(baseline))
    except (OSError, ValueError):
        return "lm", 1
    kind = config.get("agent", "lm")
    if kind == "best-of-n":
        return kind, int(config.get("n", 8))
    return (kind if kind in CPU_SECONDS_PER_MB else "lm"), 1


def expected_cost(baseline: str | Path, env_id: str, published: Path | None = None) -> float:
    """Roughly how many CPU seconds playing and verifying ``baseline`` on ``env_id``'s
    test set takes: its kind's rate times the size of its results file published under
    ``published`` (default: the package's), times its candidates per reply.

    >>> expected_cost("sft-noisy", "Dialog-v1") > expected_cost("expert", "Dialog-v1")
    True
    """
    from leaderboard.publish import PUBLISHED_DIR, published_path
    from leaderboard.workers import job_label

    kind, candidates = agent_kind(baseline)
    path = published_path(published or PUBLISHED_DIR, env_id, job_label(baseline))
    size_mb = path.stat().st_size / 1e6 if path.is_file() else UNPUBLISHED_MB
    return CPU_SECONDS_PER_MB[kind] * size_mb * candidates


def dispatch_order(costs: Sequence[float]) -> list[int]:
    """The jobs' indices longest first; equal costs keep their given order, so the order
    is a function of the costs alone.

    >>> dispatch_order([2.0, 5.0, 2.0, 9.0])
    [3, 1, 0, 2]
    """
    return sorted(range(len(costs)), key=lambda i: (-costs[i], i))


@dataclass(frozen=True)
class DispatchPlan:
    """How a pool of workers runs jobs of known cost: when the last one ends, and when
    each worker finished its last job."""

    makespan: float
    finish: tuple[float, ...]

    @property
    def idle_tail(self) -> float:
        """Worker-seconds idle at the end: each worker's wait for the last job to end."""
        return sum(self.makespan - f for f in self.finish)


def simulate_dispatch(
    costs: Sequence[float], workers: int, order: Sequence[int] | None = None
) -> DispatchPlan:
    """The pool's rule on jobs of known ``costs``: in ``order`` (default: as given), each
    job starts on the worker that is free first (the lowest-numbered of equals)."""
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    free = [(0.0, w) for w in range(workers)]
    finish = [0.0] * workers
    for i in range(len(costs)) if order is None else order:
        start, worker = heapq.heappop(free)
        finish[worker] = start + float(costs[i])
        heapq.heappush(free, (finish[worker], worker))
    return DispatchPlan(max(finish), tuple(finish))
