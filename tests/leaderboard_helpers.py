"""Shared pieces of the leaderboard tests: real results files on short episode sets."""

from __future__ import annotations

import copy
import hashlib
import json
from functools import cache
from pathlib import Path

from leaderboard.episodes import EpisodeSet, get_episode_set
from leaderboard.evaluate import evaluate_agent
from leaderboard.results import write_results
from leaderboard.store import VERIFIED, StoredEntry
from leaderboard.verify import VerifiedResults

__all__ = [
    "SHORT",
    "dump_verified",
    "load_verified",
    "real_results",
    "stored_entry",
    "write_json",
    "write_synthetic_seeds",
]

#: Episodes in the short sets the tests evaluate on.
SHORT = 6


@cache
def _results(agent: str, set_name: str, limit: int) -> str:
    episode_set = get_episode_set("Dialog-v1", set_name, limit=limit)
    return json.dumps(evaluate_agent(agent, episode_set, batch_size=4, progress=False))


def real_results(agent: str = "expert", set_name: str = "test", limit: int = SHORT) -> dict:
    """A fresh deep copy of a real results object (evaluated once per session)."""
    return copy.deepcopy(json.loads(_results(agent, set_name, limit)))


def write_json(path: Path, results: dict) -> Path:
    """Write results through the real writer (so tests read what users would)."""
    return write_results(path, results)


def stored_entry(
    name: str,
    paradigm: str,
    successes: list[bool],
    returns: list[float] | None = None,
    budget: dict | None = None,
    episode_set: str = "Dialog-v1/test",
    interface: str = "text",
    labels: str = VERIFIED,
    gold: list[float] | None = None,
) -> StoredEntry:
    """A synthetic stored entry, for tests of statistics and rendering only (verified
    unless ``labels`` says otherwise; ``gold``: per-episode gold scores, a judged task's)."""
    n = len(successes)
    returns = returns if returns is not None else [1.0 * s - 0.1 for s in successes]
    return StoredEntry(
        id=0,
        name=name,
        env_id=episode_set.split("/")[0],
        episode_set=episode_set,
        agent=name,
        paradigm=paradigm,
        interface=interface,
        model_sha256=hashlib.sha256(name.encode()).hexdigest(),  # one model a name
        budget=budget or {},
        submitted_at="2026-01-01T00:00:00+00:00",
        seeds=tuple(range(n)),
        returns=tuple(returns),
        successes=tuple(successes),
        steps=tuple([6] * n),
        labels=labels,
        gold=tuple(gold or ()),
    )


def dump_verified(verified: VerifiedResults, path: Path) -> Path:
    """Save verified results for a helper process, so that it need not replay them again."""
    s = verified.episode_set
    payload = {
        "header": verified.header,
        "episode_set": [s.env_id, s.name, list(s.seeds), s.limit, s.env_spec],
        "episodes": verified.episodes,
    }
    path.write_text(json.dumps(payload))
    return path


def load_verified(path: str | Path) -> VerifiedResults:
    """What :func:`dump_verified` saved (tests only: the store trusts what it is given)."""
    payload = json.loads(Path(path).read_text())
    env_id, name, seeds, limit, spec = payload["episode_set"]
    episode_set = EpisodeSet(env_id, name, tuple(seeds), limit, spec)
    return VerifiedResults(payload["header"], episode_set, payload["episodes"])


def write_synthetic_seeds(
    results_dir: Path, source_dir: Path, rng, env_id: str = "Dialog-v1"
) -> dict[str, Path]:
    """Seeds 1 and 2 of ``sft-careless`` and ``rl-careless`` under ``results_dir``, beside a
    copy of the careless lineage's board files (seed 0) from ``source_dir``: seed 1's RL
    is its SFT unchanged (a CI of exactly 0), seed 2's SFT fails a random tenth more of the
    board SFT's episodes and its RL succeeds on a random half of those SFT failures (drawn
    from ``rng``, a seeded numpy Generator). ``{"<row>-s<k>": path}`` of the written files."""
    board = results_dir / env_id
    board.mkdir(parents=True)
    for name in (
        "careless-expert",
        "sft-careless",
        "sft-careless-filtered",
        "rl-careless",
        "rl-careless-filtered",
    ):
        (board / f"{name}.json").write_bytes((source_dir / f"{name}.json").read_bytes())
    sft = json.loads((source_dir / "sft-careless.json").read_text())

    def with_success(results: dict, success) -> dict:
        out = copy.deepcopy(results)
        for e, s in zip(out["episodes"], success, strict=True):
            if bool(s) != bool(e["success"]):
                e["return"] = float(e["return"]) + (1.0 if s else -1.0)
            e["success"] = e["metrics"]["success"] = bool(s)
        return out

    base = [bool(e["success"]) for e in sft["episodes"]]
    sft2 = [s and rng.random() >= 0.1 for s in base]
    rl2 = [s or rng.random() < 0.5 for s in sft2]
    seeds = results_dir / "seeds" / env_id
    seeds.mkdir(parents=True)
    files = {
        "sft-careless-s1": sft,
        "rl-careless-s1": sft,
        "sft-careless-s2": with_success(sft, sft2),
        "rl-careless-s2": with_success(sft, rl2),
    }
    return {name: write_results(seeds / f"{name}.json", r) for name, r in files.items()}
