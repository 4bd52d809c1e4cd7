"""``dialog-bench run``: every shipped baseline on the test set, verified, ranked, rendered.

The shipped baselines are the built-in agents (``agents.AGENTS``: expert, random) plus
every checkpoint directory under ``baselines/checkpoints/`` (one with a ``manifest.json``
or ``config.json``), found when the command runs. Each is evaluated, its results file is
submitted through the same replay verification as any outside submission, and the
leaderboard is printed and written as a static HTML page.

``dialog-bench run --publish`` also refreshes what the repository ships: the verified
results files in ``leaderboard/results/`` and ``leaderboard/LEADERBOARD.md``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

from leaderboard.episodes import EPISODE_SET_SIZES, get_episode_set
from leaderboard.evaluate import DEFAULT_BATCH_SIZE, evaluate_agent
from leaderboard.render import markdown_table, render_markdown, render_table
from leaderboard.results import write_results
from leaderboard.standings import compute_standings
from leaderboard.store import DEFAULT_DB, LeaderboardStore
from leaderboard.submit import SubmitOutcome, submit_results_file

__all__ = [
    "PUBLISHED_DIR",
    "README_MARKERS",
    "BaselineRun",
    "add_parser",
    "checkpoint_dirs",
    "publish",
    "published_markdown",
    "readme_excerpt",
    "run_baselines",
    "shipped_baselines",
    "update_readme_excerpt",
]

#: Where ``--publish`` writes: the verified results files and LEADERBOARD.md.
PUBLISHED_DIR = Path(__file__).resolve().parent
#: The README's generated leaderboard excerpt sits between these two lines.
README_MARKERS = ("<!-- leaderboard-excerpt:start -->", "<!-- leaderboard-excerpt:end -->")
_CHECKPOINT_MARKERS = ("manifest.json", "config.json")


def checkpoint_dirs(root: Path | None = None) -> list[Path]:
    """Checkpoint directories under ``root`` (default: ``baselines/checkpoints/``), sorted."""
    if root is None:
        spec = find_spec("baselines")  # located, not imported: no training code runs
        if spec is None or not spec.submodule_search_locations:
            return []
        root = Path(next(iter(spec.submodule_search_locations))) / "checkpoints"
    if not root.is_dir():
        return []
    return sorted(
        d
        for d in root.iterdir()
        if d.is_dir()
        and not d.name.startswith(".")
        and any((d / m).is_file() for m in _CHECKPOINT_MARKERS)
    )


def shipped_baselines(checkpoint_root: Path | None = None) -> list[str | Path]:
    """Built-in agent names, then checkpoint directories: what ``run`` evaluates."""
    from agents import AGENTS

    return [*sorted(AGENTS), *checkpoint_dirs(checkpoint_root)]


@dataclass(frozen=True)
class BaselineRun:
    """What happened to one baseline: its results file and outcome, or why it failed."""

    baseline: str
    results_path: Path | None
    outcome: SubmitOutcome | None
    error: str | None
    seconds: float


def run_baselines(
    baselines: list[str | Path],
    store: LeaderboardStore,
    results_dir: Path,
    env_id: str = "Dialog-v1",
    episodes: str = "test",
    limit: int | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: bool = True,
) -> list[BaselineRun]:
    """Evaluate, write, verify and store each baseline; one failure does not stop the rest."""
    episode_set = get_episode_set(env_id, episodes, limit=limit)
    runs = []
    for baseline in baselines:
        label = Path(baseline).name if isinstance(baseline, Path) else str(baseline)
        start, path = time.perf_counter(), None
        try:
            results = evaluate_agent(
                baseline, episode_set, batch_size=batch_size, progress=progress
            )
            name = results["header"]["agent"]
            path = write_results(results_dir / f"{name}.{episode_set.name}.json", results)
            outcome = submit_results_file(path, store, replace=True, progress=progress)
            runs.append(BaselineRun(label, path, outcome, None, time.perf_counter() - start))
        except Exception as err:  # a broken checkpoint is reported, the others still run
            runs.append(
                BaselineRun(
                    label, path, None, f"{type(err).__name__}: {err}", time.perf_counter() - start
                )
            )
    return runs


def publish(
    runs: list[BaselineRun],
    store: LeaderboardStore,
    target: Path = PUBLISHED_DIR,
    readme: Path | None = None,
) -> Path:
    """Copy the verified results files into ``target/results``, write LEADERBOARD.md and,
    given ``readme``, refresh the excerpt between its ``README_MARKERS``."""
    results_dir = target / "results"
    results_dir.mkdir(parents=True, exist_ok=True)
    keep = set()
    for run in runs:
        dest = results_dir / f"{run.outcome.name}.json"
        shutil.copyfile(run.results_path, dest)
        keep.add(dest.name)
    for stale in results_dir.glob("*.json"):
        if stale.name not in keep:
            stale.unlink()
    names = {run.outcome.name for run in runs}
    sets = {run.outcome.episode_set for run in runs}
    entries = [e for e in store.entries() if e.name in names and e.episode_set in sets]
    standings = compute_standings(entries)
    out = target / "LEADERBOARD.md"
    out.write_text(published_markdown(standings), encoding="utf-8")
    if readme is not None and standings:
        update_readme_excerpt(readme, markdown_table(standings[0]))
    return out


def published_markdown(standings: list) -> str:
    """The text of ``LEADERBOARD.md`` for ``standings`` (a pure function of them, so a test
    can rebuild the published page from the published results files and compare)."""
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
    p.add_argument("--env-id", default="Dialog-v1", help="registered env id")
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
        help="also write leaderboard/results/*.json and leaderboard/LEADERBOARD.md",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from leaderboard.html_page import render_html

    if args.publish and (args.limit is not None or args.episodes != "test" or args.agents):
        raise ValueError(
            "--publish needs the full test set and every shipped baseline "
            "(no --limit, --episodes dev or --agents)"
        )
    start = time.perf_counter()
    baselines = args.agents or shipped_baselines()
    store = LeaderboardStore(args.db)
    runs = run_baselines(
        baselines,
        store,
        args.results_dir,
        env_id=args.env_id,
        episodes=args.episodes,
        limit=args.limit,
        batch_size=args.batch_size,
        progress=not args.quiet,
    )
    for run in runs:
        line = run.outcome.summary() if run.outcome else f"failed: {run.baseline}: {run.error}"
        print(f"{line} ({run.seconds:.1f}s)", file=sys.stderr if run.error else sys.stdout)
    standings = compute_standings(store.entries())
    print()
    print(render_table(standings), end="")
    html_path = args.results_dir / "leaderboard.html"
    html_path.parent.mkdir(parents=True, exist_ok=True)
    html_path.write_text(render_html(standings), encoding="utf-8")
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
