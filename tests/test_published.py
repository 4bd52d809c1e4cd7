"""The published figures are tied to the code and the shipped checkpoints, in the default run.

- ``leaderboard/LEADERBOARD.md`` and the README's excerpt are rebuilt from the published
  results files and compared byte for byte (the rendering, the statistics and the files
  agree);
- every shipped baseline, loaded from its checkpoint as ``dialog-bench run`` loads it, plays
  the first published episodes again: the same messages, user turns and rewards, and the
  model hash in the published header is the one of the checkpoint on disk.

The full replay of every published episode is ``test_published_results_verify_by_replay``
in ``tests/test_leaderboard_cli.py`` (slow).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from leaderboard.episodes import get_episode_set, parse_episode_set_id
from leaderboard.evaluate import evaluate_agent
from leaderboard.publish import (
    PUBLISHED_DIR,
    published_markdown,
    readme_excerpt,
    readme_standings,
)
from leaderboard.results import read_results
from leaderboard.run import shipped_runs
from leaderboard.standings import compute_standings
from leaderboard.store import VERIFIED, LeaderboardStore
from leaderboard.verify import VerifiedResults, compare_episode

README = PUBLISHED_DIR.parent / "README.md"
#: ``"<env id>/<entry>"`` -> its published results file (``leaderboard.publish.published_path``).
PUBLISHED = {
    f"{p.parent.name}/{p.stem}": p for p in sorted((PUBLISHED_DIR / "results").glob("*/*.json"))
}
#: ``"<env id>/<entry>"`` -> the baseline ``dialog-bench run`` plays there.
BASELINES = {f"{e}/{Path(b).name if isinstance(b, Path) else b}": b for b, e in shipped_runs()}
#: Episodes of each published file that are played again in the default run.
REPLAYED = 3


def _published_standings(tmp_path):
    """The standings of the published files, stored as they are (their truth is what the
    slow replay test and the re-evaluation below check), as verified entries: as
    ``dialog-bench run --publish`` stores them, since it played every baseline itself."""
    store = LeaderboardStore(tmp_path / "published.sqlite")
    for path in PUBLISHED.values():
        results = read_results(path)
        env_id, name, limit = parse_episode_set_id(results["header"]["episode_set"])
        episode_set = get_episode_set(env_id, name, limit=limit)
        verified = VerifiedResults(results["header"], episode_set, results["episodes"])
        store.add(verified, labels=VERIFIED)
    return compute_standings(store.entries())


def test_every_shipped_baseline_is_published_and_nothing_else():
    assert sorted(PUBLISHED) == sorted(BASELINES)


def test_leaderboard_md_is_rebuilt_byte_for_byte_from_the_results_files(tmp_path):
    rebuilt = published_markdown(_published_standings(tmp_path))
    shipped = (PUBLISHED_DIR / "LEADERBOARD.md").read_text(encoding="utf-8")
    assert rebuilt == shipped, "LEADERBOARD.md is stale: run `dialog-bench run --publish`"


def test_readme_excerpt_is_rebuilt_byte_for_byte_from_the_results_files(tmp_path):
    from leaderboard.render import markdown_table

    standings = readme_standings(_published_standings(tmp_path))
    assert readme_excerpt(README) == markdown_table(standings).strip(), (
        "the README's leaderboard excerpt is stale: run `dialog-bench run --publish`"
    )


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_shipped_baseline_replays_its_first_published_episodes(name):
    published = read_results(PUBLISHED[name])
    header = published["header"]
    env_id, set_name, _ = parse_episode_set_id(header["episode_set"])
    episode_set = get_episode_set(env_id, set_name, limit=REPLAYED)
    fresh = evaluate_agent(
        BASELINES[name],
        episode_set,
        batch_size=header["evaluation"]["batch_size"],
        progress=False,
    )
    assert fresh["header"]["model_sha256"] == header["model_sha256"], (
        f"{name}: the shipped checkpoint is not the one that made the published file"
    )
    assert fresh["header"]["evaluation"]["agent_calls"] == header["evaluation"]["agent_calls"]
    for new, old in zip(fresh["episodes"], published["episodes"][:REPLAYED], strict=True):
        assert new["seed"] == old["seed"]
        assert new["turns"] == old["turns"], f"{name}, seed {old['seed']}: other messages"
        # Rewards and metrics as the verifier compares them: floats to REPLAY_TOLERANCE
        # (a learned RM's scores differ in their last bits across CPUs), the rest exactly.
        compare_episode(old, new)
