"""Publishing a run: the verified results files, ``LEADERBOARD.md`` and the README excerpt.

``dialog-bench run --publish`` hands :func:`publish` the runs it verified and a target
directory (``--publish-dir``: ``leaderboard`` under the working directory, which in a
checkout is the package's own folder); nothing here writes anywhere else, so it works
from any install. :data:`PUBLISHED_DIR` is where the installed package's shipped results
are read from (``dialog-bench agents``, the tests that replay them).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from leaderboard.dispatch import PUBLISHED_DIR, published_path
from leaderboard.episodes import RUN_ENV_IDS
from leaderboard.marked_blocks import marked_block, replace_marked_block
from leaderboard.render import markdown_table, render_markdown
from leaderboard.standings import compute_standings
from leaderboard.store import LeaderboardStore
from leaderboard.workers import BaselineRun

__all__ = [
    "PUBLISHED_DIR",
    "README_MARKERS",
    "publish",
    "published_markdown",
    "published_path",
    "readme_excerpt",
    "readme_standings",
    "update_readme_excerpt",
]

#: The README's generated leaderboard excerpt sits between these two lines.
README_MARKERS = ("<!-- leaderboard-excerpt:start -->", "<!-- leaderboard-excerpt:end -->")


def publish(
    runs: list[BaselineRun],
    store: LeaderboardStore,
    target: Path,
    readme: Path | None = None,
) -> Path:
    """Copy the verified results files to :func:`published_path` (``target/results/<env
    id>/<name>.json``), write ``target/LEADERBOARD.md`` and, given ``readme``, refresh the
    excerpt between its ``README_MARKERS`` with the table of the first of
    :data:`~leaderboard.episodes.RUN_ENV_IDS`. It writes only under the directory it is
    given (from a checkout, ``dialog-bench run --publish`` gives ``./leaderboard``)."""
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
    return marked_block(readme, README_MARKERS)


def update_readme_excerpt(readme: Path, excerpt: str) -> bool:
    """Put ``excerpt`` between the README's excerpt markers; False if it has none."""
    return replace_marked_block(readme, excerpt, README_MARKERS)
