"""``dialog-bench run``: every shipped baseline on the test set, verified, ranked, rendered.

The shipped baselines are the built-in agents (``agents.AGENTS``: expert, random,
chat-expert...) plus every checkpoint directory under ``baselines/checkpoints/`` (one with
a ``manifest.json`` or ``config.json``), found when the command runs, each on the test set
of every env id of :data:`RUN_ENV_IDS` whose task it plays (``agents.agent_tasks``: the
booking task's ``Dialog-v1``, the chat task's ``Dialog-Chat-v1``). Each is loaded and played by the
leaderboard itself, its results file goes through the same replay verification as any
outside submission, and it is stored as a *verified* entry (the leaderboard read its
labels from what it ran); the leaderboard is printed and written as a static HTML page,
with each shipped checkpoint's learning curve from its manifest
(``leaderboard.learning_curves``).

``dialog-bench run --publish`` also refreshes what the repository ships: the verified
results files in ``leaderboard/results/<env id>/`` and ``leaderboard/LEADERBOARD.md``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dialog_env.registration import task_of
from leaderboard.episodes import EPISODE_SET_SIZES, get_episode_set
from leaderboard.evaluate import DEFAULT_BATCH_SIZE, add_ray_arguments, evaluate_agent
from leaderboard.render import leaderboard_html, markdown_table, render_markdown, render_table
from leaderboard.results import write_results
from leaderboard.standings import compute_standings
from leaderboard.store import DEFAULT_DB, VERIFIED, LeaderboardStore
from leaderboard.submit import SubmitOutcome, store_verified
from leaderboard.verify import verify_results_file

__all__ = [
    "PUBLISHED_DIR",
    "README_MARKERS",
    "RUN_ENV_IDS",
    "BaselineRun",
    "add_parser",
    "checkpoint_dirs",
    "memory_summary",
    "publish",
    "published_markdown",
    "readme_excerpt",
    "readme_standings",
    "resident_mib",
    "run_baselines",
    "published_path",
    "shipped_baselines",
    "shipped_runs",
    "update_readme_excerpt",
]

#: Where ``--publish`` writes: the verified results files and LEADERBOARD.md.
PUBLISHED_DIR = Path(__file__).resolve().parent
#: The README's generated leaderboard excerpt sits between these two lines.
README_MARKERS = ("<!-- leaderboard-excerpt:start -->", "<!-- leaderboard-excerpt:end -->")
#: The env ids ``dialog-bench run`` plays by default, one per task; the README's excerpt is
#: the first one's table.
RUN_ENV_IDS = ("Dialog-v1", "Dialog-Chat-v1")

#: A baseline (a built-in agent's name or a checkpoint directory), or one with the env id
#: to play it on.
Baseline = str | Path
Job = Baseline | tuple[Baseline, str]


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


def published_path(target: Path, env_id: str, name: str) -> Path:
    """Where ``--publish`` puts the verified results file of entry ``name`` on ``env_id``."""
    return target / "results" / env_id / f"{name}.json"


def _label(job: Job) -> str:
    baseline = job[0] if isinstance(job, tuple) else job
    return Path(baseline).name if isinstance(baseline, Path) else str(baseline)


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


def _run_one(
    baseline: str | Path,
    db: Path,
    results_dir: Path,
    episode_set_args: tuple[str, str, int | None],
    batch_size: int,
    progress: bool | Callable[[int], None],
    ray: tuple[str, int | None] | None = None,
) -> BaselineRun:
    """Evaluate, write, verify and store one baseline (in this process or a worker).

    The leaderboard loaded and played the baseline itself, so its entry is verified. While
    it runs, the LM voice and the reward model remember what they computed
    (``remember_turns``, ``remember_scores``): the replay meets the very turns and replies
    the play computed a moment ago and reads them instead of decoding and scoring them
    again. Both are pure functions of their inputs, so the replay still compares every
    transcript, reward and outcome of the file with what the env gives.
    """
    label = _label(baseline)
    start, path = time.perf_counter(), None
    memos = _remember(True)
    try:
        episode_set = get_episode_set(*episode_set_args)
        address, actors = ray or (None, None)
        results = evaluate_agent(
            baseline, episode_set, batch_size, progress, ray=address, ray_actors=actors
        )
        name = results["header"]["agent"]
        path = write_results(
            results_dir / episode_set.env_id / f"{name}.{episode_set.name}.json", results
        )
        verified = verify_results_file(path, progress=progress)
        outcome = store_verified(verified, LeaderboardStore(db), replace=True, labels=VERIFIED)
        seconds = time.perf_counter() - start
        return BaselineRun(
            label, path, outcome, None, seconds, resident_mib(), os.getpid(), time.time()
        )
    except Exception as err:  # a broken checkpoint is reported, the others still run
        error = f"{type(err).__name__}: {err}"
        seconds = time.perf_counter() - start
        return BaselineRun(
            label, path, None, error, seconds, resident_mib(), os.getpid(), time.time()
        )
    finally:
        _remember(*memos)


def _worker_init(threads: int, ticks) -> None:
    import torch

    torch.set_num_threads(threads)
    _remember(True)  # for the worker's life: its baselines share voiced turns and scores
    global _TICKS
    _TICKS = ticks


_TICKS = None  # a worker's queue for episode counts, set by _worker_init


def _remember(turns: bool, scores: bool | None = None) -> tuple[bool, bool]:
    """Turn the memos of voiced turns and RM scores on or off (``scores`` as ``turns``
    unless given); returns whether each was on.

    On for a whole run, baselines played one after another share what the memos hold:
    every episode of a set opens with the same user turn whatever the agent, and agents
    that play alike (the expert, the SB3 act policies, the SFT expert) meet the same user
    turns further on. A memo holds a pure function's results (the voice's sentence for a
    turn's acts and seed, the RM's batch-one score of an input), so what a baseline reads
    from it is what it would compute, but for one caveat of the voice's: its batch
    changes a sentence only where a token's uniform falls within float error (~1e-6) of
    a step of the CDF (``dialog_env.lm.voice``), and a hit gives the sentence of the batch
    that voiced the turn first. Every published episode came out unchanged this way.
    """
    from dialog_env.lm.voice import remember_turns
    from dialog_env.tasks.chat.reward_model import remember_scores

    return remember_turns(turns), remember_scores(turns if scores is None else scores)


def _tick(n: int) -> None:
    _TICKS.put(n)


def _run_in_worker(*args) -> BaselineRun:
    return _run_one(*args, progress=_tick)


def run_baselines(
    baselines: list[Job],
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
) -> list[BaselineRun]:
    """Evaluate, write, verify and store each baseline; one failure does not stop the rest.

    A baseline given as ``(baseline, env id)`` is played on that env id's set, any other on
    ``env_id``'s.

    With ``workers > 1`` baselines run in that many worker processes (each with its share
    of the CPU threads); every episode is played exactly as in one process, so the results
    files are the same. One progress bar covers the whole run: every baseline's
    evaluation and its replay, with the time left for all of it.

    With ``ray`` (an address, ``leaderboard.ray_runner``) the baselines run one after
    another, each one's episodes sharded over ``ray_actors`` Ray actors; the replay that
    verifies each results file runs here.
    """
    from tqdm.auto import tqdm

    jobs = [
        (job[0], (job[1], episodes, limit))
        if isinstance(job, tuple)
        else (job, (env_id, episodes, limit))
        for job in baselines
    ]
    total = 2 * sum(len(get_episode_set(*set_args).seeds) for _, set_args in jobs)
    bar = tqdm(
        total=total,
        desc="dialog-bench run",
        unit="ep",
        file=sys.stderr,
        disable=not progress,
        dynamic_ncols=True,
        smoothing=0.05,
    )
    labels = [_label(job) for job in baselines]
    before = _remember(True)  # for the run (each worker turns its own on for its life)
    try:
        if workers <= 1 or len(baselines) <= 1 or ray is not None:
            runs = []
            on_ray = None if ray is None else (ray, ray_actors)
            for label, (baseline, set_args) in zip(labels, jobs, strict=True):
                bar.set_postfix_str(label)
                runs.append(
                    _run_one(
                        baseline, store.path, results_dir, set_args, batch_size, bar.update, on_ray
                    )
                )
            return runs
        return _run_in_workers(jobs, labels, store, results_dir, batch_size, workers, bar)
    finally:
        bar.close()
        _remember(*before)


#: Rough cost of playing a checkpoint of each config ``agent`` kind (built-ins: 0), to
#: start the long jobs first; it orders the work, never changes it.
_KIND_COST = {"best-of-n": 3, "lm": 2}


def _expected_cost(baseline: Baseline) -> int:
    """How heavy a baseline is to play, roughly: best-of-n > LM > other checkpoints >
    built-in agents.

    >>> _expected_cost("expert") < _expected_cost(checkpoint_dirs()[0])
    True
    """
    from agents import AGENTS, checkpoint_dir
    from agents.checkpoint import read_config

    if str(baseline) in AGENTS:
        return 0
    try:
        return _KIND_COST.get(read_config(checkpoint_dir(baseline)).get("agent"), 1)
    except (OSError, ValueError):
        return 1  # its load fails later, with the error it deserves


def _run_in_workers(jobs, labels, store, results_dir, batch_size, workers, bar):
    import multiprocessing as mp
    import os
    import queue
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    context = mp.get_context("spawn")  # no forked torch thread pools
    ticks = context.Manager().Queue()
    workers = min(workers, len(jobs))
    threads = max(1, (os.cpu_count() or 1) // workers)
    runs: dict[int, BaselineRun] = {}
    with ProcessPoolExecutor(
        workers, mp_context=context, initializer=_worker_init, initargs=(threads, ticks)
    ) as pool:
        # Longest first: the last job to start should be a short one, not an LM agent
        # that keeps one worker busy while the others idle.
        order = sorted(range(len(jobs)), key=lambda i: -_expected_cost(jobs[i][0]))
        futures = {
            pool.submit(
                _run_in_worker, jobs[i][0], store.path, results_dir, jobs[i][1], batch_size
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


def publish(
    runs: list[BaselineRun],
    store: LeaderboardStore,
    target: Path = PUBLISHED_DIR,
    readme: Path | None = None,
) -> Path:
    """Copy the verified results files to :func:`published_path` (``target/results/<env
    id>/<name>.json``), write LEADERBOARD.md and, given ``readme``, refresh the excerpt
    between its ``README_MARKERS`` with the table of the first of :data:`RUN_ENV_IDS`."""
    from leaderboard.episodes import parse_episode_set_id

    keep = set()
    for run in runs:
        env_id, _, _ = parse_episode_set_id(run.outcome.episode_set)
        dest = published_path(target, env_id, run.outcome.name)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(run.results_path, dest)
        keep.add(dest)
    for stale in [*(target / "results").glob("*.json"), *(target / "results").glob("*/*.json")]:
        if stale not in keep:
            stale.unlink()
    names = {run.outcome.name for run in runs}
    sets = {run.outcome.episode_set for run in runs}
    entries = [e for e in store.entries() if e.name in names and e.episode_set in sets]
    standings = compute_standings(entries)
    out = target / "LEADERBOARD.md"
    out.write_text(published_markdown(standings), encoding="utf-8")
    excerpt = readme_standings(standings)
    if readme is not None and excerpt is not None:
        update_readme_excerpt(readme, markdown_table(excerpt))
    return out


def readme_standings(standings: list):
    """The set whose table the README shows: the first of :data:`RUN_ENV_IDS` that has
    entries (its test set), else the first set; None for no sets."""
    for env_id in RUN_ENV_IDS:
        for s in standings:
            if s.env_id == env_id:
                return s
    return standings[0] if standings else None


def published_markdown(standings: list) -> str:
    """The text of ``LEADERBOARD.md`` for ``standings`` (a pure function of them, so a test
    can rebuild the published page from the published results files and compare); the
    sets in :data:`RUN_ENV_IDS` order, the booking task first."""
    order = {env_id: i for i, env_id in enumerate(RUN_ENV_IDS)}
    standings = sorted(standings, key=lambda s: (order.get(s.env_id, len(order)), s.episode_set))
    markdown = render_markdown(standings, title="dialog-bench leaderboard")
    intro = (
        "The shipped baselines on the test episodes, each verified by replay. "
        "Regenerate with `dialog-bench run --publish`; the verified results files are "
        "in [results/](results/).\n\n"
    )
    head, _, rest = markdown.partition("\n\n")
    return f"{head}\n\n{intro}{rest}"


def readme_excerpt(readme: Path) -> str | None:
    """The text between the README's excerpt markers (stripped), or None without them."""
    text = readme.read_text(encoding="utf-8")
    start, end = README_MARKERS
    if start not in text or end not in text or text.index(start) > text.index(end):
        return None
    return text.split(start, 1)[1].split(end, 1)[0].strip()


def update_readme_excerpt(readme: Path, excerpt: str) -> bool:
    """Put ``excerpt`` between the README's excerpt markers; False if it has none."""
    if not readme.is_file():
        return False
    text = readme.read_text(encoding="utf-8")
    start, end = README_MARKERS
    if start not in text or end not in text or text.index(start) > text.index(end):
        return False
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    readme.write_text(f"{head}{start}\n{excerpt.strip()}\n{end}{tail}", encoding="utf-8")
    return True


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run",
        help="evaluate every shipped baseline, verify, and show the leaderboard",
        description="Evaluate every shipped baseline (built-in agents and the checkpoints in "
        "baselines/checkpoints/) on the test episodes, submit each through replay "
        "verification into a local SQLite file, print the leaderboard and write the HTML "
        "page.",
    )
    p.add_argument("--db", type=Path, default=DEFAULT_DB, help=f"default: {DEFAULT_DB}")
    p.add_argument(
        "--results-dir",
        type=Path,
        default=Path("results"),
        help="where results files and the HTML page go (default: results)",
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
        help="also write leaderboard/results/ENV_ID/*.json and leaderboard/LEADERBOARD.md",
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
    store = LeaderboardStore(args.db)
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
        print(f"{line} ({run.seconds:.1f}s)", file=sys.stderr if run.error else sys.stdout)
    memory = memory_summary(runs)
    if memory:
        print(memory)
    standings = compute_standings(store.entries())
    print()
    print(render_table(standings), end="")
    html_path = args.results_dir / "leaderboard.html"
    html_path.parent.mkdir(parents=True, exist_ok=True)
    html_path.write_text(leaderboard_html(standings), encoding="utf-8")
    print(f"\nwrote {html_path} and {args.db}")
    failed = [run for run in runs if run.error]
    if args.publish:
        if failed:
            print("not published: every baseline must verify first", file=sys.stderr)
        else:
            readme = PUBLISHED_DIR.parent / "README.md"
            print(f"published {publish(runs, store, readme=readme)}")
    print(
        f"dialog-bench run: {len(runs) - len(failed)} of {len(runs)} baselines verified in "
        f"{time.perf_counter() - start:.1f}s"
    )
    return 1 if failed else 0
