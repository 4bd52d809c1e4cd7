"""Which job a ``dialog-bench run`` worker starts next: longest first, by an estimate.

The worker pool hands out jobs in the order it is given them, each to the first worker
that is free (greedy list scheduling). A long job started last keeps one worker busy
while the others idle, so :func:`dispatch_order` puts the jobs longest first (LPT) by
:func:`expected_cost`, an estimate known before the run: the size of the baseline's
published results file (what the env voiced, parsed and scored; what the agent wrote, in
episodes as long as it made them) times CPU seconds per megabyte for the env's side
(:data:`ENV_SECONDS_PER_MB`) and the agent's (:data:`AGENT_SECONDS_PER_MB`, per candidate
reply of a best-of-n agent), measured in one run. A baseline not published yet counts as
:data:`UNPUBLISHED_MB`. The estimate orders the work, never changes it: every job plays
the same episodes whichever worker runs it, whenever. It is rough by nature: a worker
remembers the user turns it voiced, so a job that meets turns an earlier job on the same
worker met costs less (docs/run-speed.md).

:func:`simulate_dispatch` replays the pool's rule on known costs: how long the run takes
and how long each worker idles at the end, for an order.

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
    "AGENT_SECONDS_PER_MB",
    "ENV_SECONDS_PER_MB",
    "UNPUBLISHED_MB",
    "PUBLISHED_DIR",
    "DispatchPlan",
    "agent_kind",
    "dispatch_order",
    "expected_cost",
    "job_label",
    "published_path",
    "simulate_dispatch",
]

#: CPU seconds per megabyte of published results file that the env's side of a job takes
#: (the user's LM voice, parsing, a chat reply's reward-model score, the replay), by env
#: id; an env id not named here counts as the dearest. Measured in the run of
#: docs/run-speed.md, where rule-based agents' jobs took about this much.
ENV_SECONDS_PER_MB: dict[str, float] = {"Dialog-v1": 12.0, "Dialog-Chat-v1": 15.0}
#: CPU seconds per megabyte that the agent's own side takes, by kind of agent (an LM's
#: decode, an SB3 policy's forward pass; a rule: nothing to speak of), per candidate reply
#: for ``best-of-n``; from the same run.
AGENT_SECONDS_PER_MB: dict[str, float] = {
    "built-in": 0.0,
    "sb3": 2.0,
    "lm": 40.0,
    "best-of-n": 35.0,
}
#: The size a baseline without a published results file is counted at (the published
#: ones are 0.2-1.2 MB for 500 episodes).
UNPUBLISHED_MB = 1.0


def agent_kind(baseline: str | Path) -> tuple[str, int]:
    """A baseline's kind (a key of :data:`AGENT_SECONDS_PER_MB`) and its candidates per
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
    return (kind if kind in AGENT_SECONDS_PER_MB else "lm"), 1


#: Where the package's shipped results live: ``results/<env id>/*.json`` and
#: ``LEADERBOARD.md`` (read by the board; written only by a ``--publish`` run from a checkout).
PUBLISHED_DIR = Path(__file__).resolve().parent


def published_path(target: Path, env_id: str, name: str) -> Path:
    """Where ``--publish`` puts the verified results file of entry ``name`` on ``env_id``."""
    return target / "results" / env_id / f"{name}.json"


def job_label(baseline: str | Path) -> str:
    """How a baseline is named in progress and errors: a directory by its last part."""
    return Path(baseline).name if isinstance(baseline, Path) else str(baseline)


def expected_cost(baseline: str | Path, env_id: str, published: Path | None = None) -> float:
    """Roughly how many CPU seconds playing and verifying ``baseline`` on ``env_id``'s
    test set takes: the size of its results file published under ``published`` (default:
    the package's) times the env's rate plus its kind's rate per candidate reply.

    >>> expected_cost("sft-noisy", "Dialog-v1") > expected_cost("expert", "Dialog-v1")
    True
    """
    kind, candidates = agent_kind(baseline)
    path = published_path(published or PUBLISHED_DIR, env_id, job_label(baseline))
    size_mb = path.stat().st_size / 1e6 if path.is_file() else UNPUBLISHED_MB
    env_rate = ENV_SECONDS_PER_MB.get(env_id, max(ENV_SECONDS_PER_MB.values()))
    return size_mb * (env_rate + AGENT_SECONDS_PER_MB[kind] * candidates)


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
