"""The published figures are tied to the code and the shipped checkpoints, in the default run.

- ``leaderboard/LEADERBOARD.md`` and the README's excerpt are rebuilt from the published
  results files and compared byte for byte (the rendering, the statistics and the files
  agree);
- every shipped baseline, loaded from its checkpoint as ``dialog-bench run`` loads it, plays
  a spread of its published episodes again (the first, the last and every hundredth): the
  same messages, user turns and rewards, and the model hash in the published header is the
  one of the checkpoint on disk.

Slow (``pytest -m slow tests/test_published.py``, run by ``.ci/run``): every shipped
baseline plays its whole published file again, every episode compared with the file's, so
each published row is tied to its checkpoint episode by episode. (The replay of every
published episode from the file's own messages, which checks the env's numbers but not who
wrote the messages, is ``test_published_results_verify_by_replay`` in
``tests/leaderboard/test_leaderboard_cli.py``.)
"""

from __future__ import annotations

from pathlib import Path

import pytest

from agents import load_agent
from leaderboard.agent_card import describe_agent
from leaderboard.episodes import get_episode_set, parse_episode_set_id
from leaderboard.publish import (
    PUBLISHED_DIR,
    published_markdown,
    readme_excerpt,
    readme_standings,
)
from leaderboard.results import read_results
from leaderboard.rollout import AgentMessages, play_episodes
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
#: Indices of each published file's episodes that are played again in the default run: a
#: spread over the file (its batches run side by side, so an episode deep in the file meets
#: the agent's state after hundreds of others: a checkpoint that wrote only the first
#: episodes would fail here).
SPREAD = (0, 100, 200, 300, 400, 499)


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


def _played_again(
    name: str, indices: tuple[int, ...] | None
) -> tuple[dict, list[dict], list[dict]]:
    """The published file of ``name``, and its baseline's episodes at ``indices`` (every
    episode when None), played now from the shipped checkpoint with the file's batch size."""
    published = read_results(PUBLISHED[name])
    header = published["header"]
    env_id, set_name, limit = parse_episode_set_id(header["episode_set"])
    episode_set = get_episode_set(env_id, set_name, limit=limit)
    if indices is None:
        indices = tuple(range(len(episode_set)))
    source = AgentMessages(lambda: load_agent(BASELINES[name]), header["evaluation"]["batch_size"])
    card = describe_agent(source.agent, BASELINES[name])
    assert card.model_sha256 == header["model_sha256"], (
        f"{name}: the shipped checkpoint is not the one that made the published file"
    )
    assert source.calls == header["evaluation"]["agent_calls"]
    seeds = [episode_set.seeds[i] for i in indices]
    fresh = play_episodes(source, episode_set, seeds=seeds, progress=False)
    return published, [published["episodes"][i] for i in indices], fresh


def _assert_same_episodes(name: str, old: list[dict], new: list[dict]) -> None:
    for before, now in zip(old, new, strict=True):
        assert now["seed"] == before["seed"]
        assert now["turns"] == before["turns"], f"{name}, seed {before['seed']}: other messages"
        # Rewards and metrics as the verifier compares them: floats to REPLAY_TOLERANCE
        # (a learned RM's scores differ in their last bits across CPUs), the rest exactly.
        compare_episode(before, now)


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_shipped_baseline_replays_a_spread_of_its_published_episodes(name):
    _, old, new = _played_again(name, SPREAD)
    _assert_same_episodes(name, old, new)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(BASELINES))
def test_shipped_baseline_replays_every_published_episode(name):
    published, old, new = _played_again(name, None)
    assert len(new) == len(published["episodes"])
    _assert_same_episodes(name, old, new)
