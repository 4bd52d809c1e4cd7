"""Playing baselines for ``dialog-bench run``: one job, the worker pool, Ray dispatch.

A job is one baseline on one episode set: :func:`run_one` evaluates it, writes its
results file, verifies the file by replay and stores it as a verified entry.
:func:`run_jobs` runs many, in this process (each one's episodes sharded over Ray actors
when given a Ray address) or in worker processes side by side.

**Remembering turns.** The LM voice and the chat reward model can remember what they
computed (``dialog_env.lm.voice.remember_turns``,
``dialog_env.tasks.chat.reward_model.remember_scores``). A run asks for it explicitly
(``remember=True``): each job then plays inside :func:`remembering`, and each worker
process keeps it on for its life. Baselines played one after another share what the
memos hold: every episode of a set opens with the same user turn whatever the agent,
and agents that play alike (the expert, the SB3 act policies, the SFT expert) meet the
same user turns further on; the replay that verifies a file meets the very turns and
replies its play computed a moment ago. A memo holds a pure function's results (the
voice's sentence for a turn's acts and seed, the RM's batch-one score of an input), so
what a baseline reads from it is what it would compute, but for one caveat of the
voice's: its batch changes a sentence only where a token's uniform falls within float
error (~1e-6) of a step of the CDF (``dialog_env.lm.voice``), and a hit gives the
sentence of the batch that voiced the turn first. Every published episode came out
unchanged this way.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from leaderboard.dispatch import dispatch_order, expected_cost, job_label
from leaderboard.episodes import get_episode_set
from leaderboard.evaluate import evaluate_agent
from leaderboard.results import write_results
from leaderboard.store import VERIFIED, LeaderboardStore
from leaderboard.submit import SubmitOutcome, store_verified
from leaderboard.verify import verify_results_file

__all__ = [
    "BaselineRun",
    "Job",
    "job_label",
    "memory_summary",
    "remembering",
    "resident_mib",
    "run_jobs",
    "run_one",
]

#: A baseline (a built-in agent's name or a checkpoint directory) and the episode set to
#: play it on: ``(env id, set name, limit)``.
Job = tuple[str | Path, tuple[str, str, int | None]]


@dataclass(frozen=True)
class BaselineRun:
    """What happened to one baseline: its results file and outcome, or why it failed."""

    baseline: str
    results_path: Path | None
    outcome: SubmitOutcome | None
    error: str | None
    seconds: float
    #: The playing process's resident memory when it finished this baseline (MiB; None
    #: where ``/proc`` is not there), and that process's id: a worker's figures in the
    #: order of its baselines show whether memory grows from one to the next.
    rss_mib: float | None = None
    pid: int = 0
    #: When it finished (``time.time()``): a worker's baselines in the order it played them.
    finished: float = 0.0
    #: CPU seconds (``time.process_time``, every thread of the playing process) of each
    #: step of the job, in order: ``play`` (the agent loaded and played), ``write``,
    #: ``verify`` (the replay), ``store``; a failed job has the steps it reached.
    cpu: dict[str, float] = field(default_factory=dict)


def resident_mib() -> float | None:
    """This process's resident set size in MiB, from ``/proc/self/statm`` (Linux)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def memory_summary(runs: list[BaselineRun]) -> str | None:
    """One line per process that played baselines: its RSS after each of them, in the
    order it played them (the figure of issue 10's "memory stays flat over
    ``dialog-bench run``"); None when no run measured it.

    >>> played = (("a", 500.0, 7, 2.0), ("b", 300.0, 8, 1.0), ("c", 512.5, 7, 1.5))
    >>> runs = [BaselineRun(n, None, None, None, 1.0, r, p, f) for n, r, p, f in played]
    >>> print(memory_summary(runs))
    RSS after each baseline (MiB): b 300 | c 512, a 500
    """
    by_pid: dict[int, list[BaselineRun]] = {}
    for run in sorted(runs, key=lambda r: r.finished):
        if run.rss_mib is not None:
            by_pid.setdefault(run.pid, []).append(run)
    if not by_pid:
        return None
    parts = (", ".join(f"{r.baseline} {r.rss_mib:.0f}" for r in rs) for rs in by_pid.values())
    return "RSS after each baseline (MiB): " + " | ".join(parts)


def _switch_memos(turns: bool, scores: bool | None = None) -> tuple[bool, bool]:
    """Turn the memos of voiced turns and RM scores on or off (``scores`` as ``turns``
    unless given); whether each was on."""
    from dialog_env.lm.voice import remember_turns
    from dialog_env.tasks.chat.reward_model import remember_scores

    return remember_turns(turns), remember_scores(turns if scores is None else scores)


@contextlib.contextmanager
def remembering(on: bool = True) -> Iterator[None]:
    """Within the block, the LM voice and the reward model remember (``on``) or compute
    every turn and score (``False``); after it, each is as it was (see the module)."""
    before = _switch_memos(on)
    try:
        yield
    finally:
        _switch_memos(*before)


def run_one(
    baseline: str | Path,
    db: Path,
    results_dir: Path,
    episode_set_args: tuple[str, str, int | None],
    batch_size: int,
    progress: bool | Callable[[int], None],
    ray: tuple[str, int | None] | None = None,
    remember: bool = True,
) -> BaselineRun:
    """Evaluate, write, verify and store one baseline (in this process or a worker).

    The leaderboard loaded and played the baseline itself, so its entry is verified. With
    ``remember`` it plays inside :func:`remembering`, so the replay reads the turns and
    scores its play computed; both are pure functions of their inputs, so the replay
    still compares every transcript, reward and outcome of the file with what the env
    gives. A failure (a broken checkpoint) is returned as the run's ``error``.
    """
    label = job_label(baseline)
    start, path, cpu = time.perf_counter(), None, {}
    try:
        with remembering(remember):
            episode_set = get_episode_set(*episode_set_args)
            address, actors = ray or (None, None)
            with _cpu_seconds(cpu, "play"):
                results = evaluate_agent(
                    baseline, episode_set, batch_size, progress, ray=address, ray_actors=actors
                )
            name = results["header"]["agent"]
            with _cpu_seconds(cpu, "write"):
                path = write_results(
                    results_dir / episode_set.env_id / f"{name}.{episode_set.name}.json", results
                )
            with _cpu_seconds(cpu, "verify"):
                verified = verify_results_file(path, progress=progress)
            with _cpu_seconds(cpu, "store"):
                outcome = store_verified(
                    verified, LeaderboardStore(db), replace=True, labels=VERIFIED
                )
        error = None
    except Exception as err:  # a broken checkpoint is reported, the others still run
        outcome, error = None, f"{type(err).__name__}: {err}"
    seconds = time.perf_counter() - start
    return BaselineRun(
        label, path, outcome, error, seconds, resident_mib(), os.getpid(), time.time(), cpu
    )


@contextlib.contextmanager
def _cpu_seconds(cpu: dict[str, float], step: str) -> Iterator[None]:
    """Add the block's CPU seconds (``time.process_time``) to ``cpu[step]``."""
    begin = time.process_time()
    try:
        yield
    finally:
        cpu[step] = cpu.get(step, 0.0) + time.process_time() - begin


def run_jobs(
    jobs: list[Job],
    db: Path,
    results_dir: Path,
    batch_size: int,
    bar: Any,
    workers: int = 1,
    ray: tuple[str, int | None] | None = None,
    remember: bool = True,
) -> list[BaselineRun]:
    """:func:`run_one` for every job, in order; ``bar`` (a tqdm bar) counts each played
    and replayed episode and names the baselines running.

    With ``workers > 1`` (and no ``ray``) the jobs run in that many worker processes, each
    with its share of the CPU threads; every episode is played exactly as in one process,
    so the results files are the same. With ``ray`` (``(address, actors)``,
    ``leaderboard.ray_runner``) the jobs run one after another here, each one's episodes
    sharded over the Ray actors; the replay that verifies each file runs here.
    """
    labels = [job_label(baseline) for baseline, _ in jobs]
    if workers > 1 and len(jobs) > 1 and ray is None:
        return _run_in_workers(jobs, labels, db, results_dir, batch_size, workers, bar, remember)
    runs = []
    with remembering(remember):  # for the run: its baselines share turns and scores
        for label, (baseline, set_args) in zip(labels, jobs, strict=True):
            bar.set_postfix_str(label)
            runs.append(
                run_one(baseline, db, results_dir, set_args, batch_size, bar.update, ray, remember)
            )
    return runs


def _worker_init(threads: int, remember: bool) -> None:
    import torch

    torch.set_num_threads(threads)
    _switch_memos(remember)  # for the worker's life: its baselines share turns and scores


def _run_in_worker(ticks, remember: bool, *args) -> BaselineRun:
    """:func:`run_one` in a worker, telling ``ticks`` (a queue) each finished episode."""
    return run_one(*args, progress=ticks.put, remember=remember)


def _run_in_workers(jobs, labels, db, results_dir, batch_size, workers, bar, remember):
    import multiprocessing as mp
    import queue
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    context = mp.get_context("spawn")  # no forked torch thread pools
    ticks = context.Manager().Queue()
    workers = min(workers, len(jobs))
    threads = max(1, (os.cpu_count() or 1) // workers)
    runs: dict[int, BaselineRun] = {}
    with ProcessPoolExecutor(
        workers, mp_context=context, initializer=_worker_init, initargs=(threads, remember)
    ) as pool:
        # Longest first: the last job to start should be a short one, not an LM agent
        # that keeps one worker busy while the others idle (leaderboard.dispatch).
        order = dispatch_order([expected_cost(b, set_args[0]) for b, set_args in jobs])
        futures = {
            pool.submit(
                _run_in_worker,
                ticks,
                remember,
                jobs[i][0],
                db,
                results_dir,
                jobs[i][1],
                batch_size,
            ): i
            for i in order
        }
        pending = set(futures)
        while pending:
            done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
            for future in done:
                runs[futures[future]] = future.result()
            while True:
                try:
                    bar.update(ticks.get_nowait())
                except queue.Empty:
                    break
            # The pool starts jobs in submission order: the first unfinished ones run now.
            running = [labels[i] for i in order if i not in runs][:workers]
            bar.set_postfix_str(f"{len(runs)}/{len(jobs)} done; {', '.join(running)}")
    return [runs[i] for i in range(len(jobs))]
