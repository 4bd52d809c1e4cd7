"""``dialog-bench run``: every shipped baseline on the test set, verified, ranked, rendered.

The shipped baselines are the built-in agents (``agents.AGENTS``: expert, random,
chat-expert...) plus every checkpoint directory under ``baselines/checkpoints/`` (one with
a ``manifest.json`` or ``config.json``), found when the command runs, each on the test set
of every env id of :data:`~leaderboard.episodes.RUN_ENV_IDS` whose task it plays
(``agents.agent_tasks``: the booking task's ``Dialog-v1``, the chat task's
``Dialog-Chat-v1``). Each is loaded and played by the leaderboard itself, its results
file goes through the same replay verification as any outside submission, and it is
stored as a *verified* entry (the leaderboard read its labels from what it ran); the
leaderboard is printed and written as a static HTML page, with each shipped checkpoint's
learning curve from its manifest (``leaderboard.learning_curves``).

This module finds the baselines and runs the pipeline; :mod:`leaderboard.workers` plays
each job (in this process, in worker processes or over Ray) and
:mod:`leaderboard.publish` writes what a ``--publish`` run ships: the verified results
files in ``<publish dir>/results/<env id>/`` and ``<publish dir>/LEADERBOARD.md``.
Everything else the command writes (results files, the HTML page, the database) goes
under ``--results-dir``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from dialog_env.registration import task_of
from leaderboard.episodes import EPISODE_SET_SIZES, RUN_ENV_IDS, episode_set_size
from leaderboard.evaluate import DEFAULT_BATCH_SIZE, add_ray_arguments
from leaderboard.publish import publish
from leaderboard.render import leaderboard_html, render_table
from leaderboard.standings import compute_standings
from leaderboard.store import DEFAULT_DB, LeaderboardStore
from leaderboard.workers import BaselineRun, Job, memory_summary, run_jobs

__all__ = [
    "add_parser",
    "checkpoint_dirs",
    "job_seconds",
    "main",
    "run_baselines",
    "shipped_baselines",
    "shipped_runs",
]

#: A baseline (a built-in agent's name or a checkpoint directory), or one with the env id
#: to play it on.
Baseline = str | Path


def checkpoint_dirs(root: Path | None = None) -> list[Path]:
    """Checkpoint directories under ``root`` (default: the shipped ones), sorted."""
    from agents import shipped_checkpoints

    return list(shipped_checkpoints(root).values())


def shipped_baselines(
    checkpoint_root: Path | None = None, env_id: str | None = None
) -> list[Baseline]:
    """Built-in agent names, then checkpoint directories; with ``env_id``, only those
    that play its task."""
    from agents import AGENTS, agent_tasks

    every = [*sorted(AGENTS), *checkpoint_dirs(checkpoint_root)]
    if env_id is None:
        return every
    task = task_of(env_id)
    return [b for b in every if task in agent_tasks(b)]


def shipped_runs(
    checkpoint_root: Path | None = None, env_ids: tuple[str, ...] = RUN_ENV_IDS
) -> list[tuple[Baseline, str]]:
    """``(baseline, env id)`` for every env id and each shipped baseline of its task: what
    ``dialog-bench run`` plays."""
    return [(b, e) for e in env_ids for b in shipped_baselines(checkpoint_root, e)]


def run_baselines(
    baselines: list[Baseline | tuple[Baseline, str]],
    store: LeaderboardStore,
    results_dir: Path,
    env_id: str = "Dialog-v1",
    episodes: str = "test",
    limit: int | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: bool = True,
    workers: int = 1,
    ray: str | None = None,
    ray_actors: int | None = None,
    remember: bool = True,
) -> list[BaselineRun]:
    """Evaluate, write, verify and store each baseline; one failure does not stop the rest.

    A baseline given as ``(baseline, env id)`` is played on that env id's set, any other on
    ``env_id``'s. One progress bar covers the whole run: every baseline's evaluation and
    its replay, with the time left for all of it. ``workers``, ``ray`` and ``remember``
    (the voice and RM memos for the run) as :func:`leaderboard.workers.run_jobs` takes
    them.
    """
    from tqdm.auto import tqdm

    jobs: list[Job] = [
        (job[0], (job[1], episodes, limit))
        if isinstance(job, tuple)
        else (job, (env_id, episodes, limit))
        for job in baselines
    ]
    # Counted without building an env: the run's process loads no LM of its own.
    total = 2 * sum(episode_set_size(*set_args) for _, set_args in jobs)
    bar = tqdm(
        total=total,
        desc="dialog-bench run",
        unit="ep",
        file=sys.stderr,
        disable=not progress,
        dynamic_ncols=True,
        smoothing=0.05,
    )
    on_ray = None if ray is None else (ray, ray_actors)
    try:
        return run_jobs(jobs, store.path, results_dir, batch_size, bar, workers, on_ray, remember)
    finally:
        bar.close()


def job_seconds(run: BaselineRun) -> str:
    """A job's wall time and the CPU seconds of its play and of its verifying replay.

    >>> run = BaselineRun("x", None, None, None, 41.23, cpu={"play": 35.06, "verify": 4.0})
    >>> job_seconds(run)
    '41.2s; CPU s: play 35.1, verify 4.0'
    """
    cpu = ", ".join(f"{step} {run.cpu[step]:.1f}" for step in ("play", "verify") if step in run.cpu)
    return f"{run.seconds:.1f}s; CPU s: {cpu}" if cpu else f"{run.seconds:.1f}s"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run",
        help="evaluate every shipped baseline, verify, and show the leaderboard",
        description="Evaluate every shipped baseline (built-in agents and the checkpoints in "
        "baselines/checkpoints/) on the test episodes, submit each through replay "
        "verification into a local SQLite file, print the leaderboard and write the HTML "
        "page.",
    )
    p.add_argument(
        "--db",
        type=Path,
        default=None,
        help=f"SQLite database (default: {DEFAULT_DB.name} in the results directory)",
    )
    p.add_argument(
        "--results-dir",
        type=Path,
        default=DEFAULT_DB.parent,
        help="where everything the run writes goes: results files, the HTML page and the "
        f"database (default: {DEFAULT_DB.parent})",
    )
    p.add_argument(
        "--env-id",
        nargs="+",
        default=list(RUN_ENV_IDS),
        metavar="ENV_ID",
        help=f"env ids to play, each with the baselines of its task (default: "
        f"{' '.join(RUN_ENV_IDS)})",
    )
    p.add_argument("--episodes", default="test", choices=tuple(EPISODE_SET_SIZES))
    p.add_argument(
        "--limit",
        type=int,
        default=None,
        metavar="N",
        help="only the first N episodes (a quick look; cannot be published)",
    )
    p.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE, metavar="N")
    p.add_argument(
        "--agents",
        nargs="+",
        default=None,
        metavar="AGENT",
        help="these agents instead of every shipped baseline",
    )
    p.add_argument(
        "--publish",
        action="store_true",
        help="also write PUBLISH_DIR/results/ENV_ID/*.json and PUBLISH_DIR/LEADERBOARD.md, "
        "and refresh the excerpt of README.md beside PUBLISH_DIR",
    )
    p.add_argument(
        "--publish-dir",
        type=Path,
        default=Path("leaderboard"),
        metavar="PUBLISH_DIR",
        help="where --publish writes (default: leaderboard, under the working directory: "
        "a checkout's root publishes into the repository)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="baselines evaluated side by side in N worker processes (default: one per CPU "
        "core); the results are the same for any N",
    )
    add_ray_arguments(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    if args.publish and (args.limit is not None or args.episodes != "test" or args.agents):
        raise ValueError(
            "--publish needs the full test set and every shipped baseline "
            "(no --limit, --episodes dev or --agents)"
        )
    start = time.perf_counter()
    env_ids = tuple(args.env_id)
    if args.publish and env_ids != RUN_ENV_IDS:
        raise ValueError(f"--publish plays every env id of {', '.join(RUN_ENV_IDS)}")
    if args.publish:  # the transcripts are exact floats: other numerics, other transcripts
        from leaderboard.numerics import check_numerics

        check_numerics()
    if args.agents:
        jobs = [(a, e) for e in env_ids for a in args.agents]
    else:
        jobs = shipped_runs(env_ids=env_ids)
    db = args.db if args.db is not None else args.results_dir / DEFAULT_DB.name
    store = LeaderboardStore(db)
    store.check_writable()  # a bad --db is one line before anything plays
    runs = run_baselines(
        jobs,
        store,
        args.results_dir,
        episodes=args.episodes,
        limit=args.limit,
        batch_size=args.batch_size,
        progress=not args.quiet,
        workers=args.workers if args.workers is not None else (os.cpu_count() or 1),
        ray=args.ray,
        ray_actors=args.ray_actors,
    )
    for run in runs:
        line = run.outcome.summary() if run.outcome else f"failed: {run.baseline}: {run.error}"
        print(f"{line} ({job_seconds(run)})", file=sys.stderr if run.error else sys.stdout)
    memory = memory_summary(runs)
    if memory:
        print(memory)
    standings = compute_standings(store.entries())
    print()
    print(render_table(standings), end="")
    html_path = args.results_dir / "leaderboard.html"
    html_path.parent.mkdir(parents=True, exist_ok=True)
    html_path.write_text(leaderboard_html(standings), encoding="utf-8")
    print(f"\nwrote {html_path} and {db}")
    failed = [run for run in runs if run.error]
    if args.publish:
        if failed:
            print("not published: every baseline must verify first", file=sys.stderr)
        else:
            readme = args.publish_dir.resolve().parent / "README.md"
            print(f"published {publish(runs, store, args.publish_dir, readme=readme)}")
    print(
        f"dialog-bench run: {len(runs) - len(failed)} of {len(runs)} baselines verified in "
        f"{time.perf_counter() - start:.1f}s"
    )
    return 1 if failed else 0
