"""Verification by replay: a submission's episodes are played again and must match exactly.

Nothing a submitter claims is trusted. The header must name a registered env id of the
right version and an episode set whose hash is the one this code computes; the seeds must
be that set's seeds, each once. Then every episode is reset with its seed and the agent's
messages (the ``assistant`` turns) are fed again; every user turn, tool result, reward,
the return, success, the end flags and every metric must equal the replay's. A changed
agent turn is caught where the env's answer to it differs from the recorded one (a
message the env would record differently, or one that leads elsewhere); a message
changed into another that the env answers identically is simply another valid episode.

The first difference rejects the whole submission with a one-line reason
(:class:`~leaderboard.results.ResultsRejected`). No submitted code is ever run.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from leaderboard.episodes import (
    EPISODE_SET_SIZES,
    EpisodeSet,
    env_version,
    get_episode_set,
    parse_episode_set_id,
)
from leaderboard.results import MAX_RESULTS_BYTES, ResultsRejected, read_results
from leaderboard.rollout import play_episodes

__all__ = [
    "REPLAY_BATCH_SIZE",
    "REPLAY_TOLERANCE",
    "RecordedMessages",
    "VerifiedResults",
    "check_header",
    "check_seeds",
    "compare_episode",
    "replay_episodes",
    "verify_results",
    "verify_results_file",
]

_TURN_KINDS = {"user": "user turn", "assistant": "agent turn", "tool": "tool result"}
#: How far a replayed number (a reward, a return, a metric) may be from the submitted one.
#: A learned reward model's float scores differ in their last bits across CPUs and ATen
#: kernels (up to 7e-7 seen on the chat task between the machine that published its
#: results and an AVX-512 one, and between kernels on one machine), so exact equality
#: would make a results file valid only on the CPU that made it. Successes, turns and
#: every non-float field are still compared exactly; 1e-5 per step cannot move a rate.
REPLAY_TOLERANCE = 1e-5


@dataclass(frozen=True)
class VerifiedResults:
    """A results file that passed: its header and the episodes as the replay produced them."""

    header: dict[str, Any]
    episode_set: EpisodeSet
    episodes: list[dict[str, Any]]


def _excerpt(text: str, start: int, width: int = 50) -> str:
    piece = text[start : start + width]
    return repr(("..." if start else "") + piece + ("..." if start + width < len(text) else ""))


def _difference(submitted: str, replayed: str) -> str:
    """Where two texts part, with a short excerpt of each from a little before that point."""
    at = next(
        (i for i, (a, b) in enumerate(zip(submitted, replayed, strict=False)) if a != b),
        min(len(submitted), len(replayed)),
    )
    start = max(0, at - 10)
    return (
        f"at character {at}: submitted {_excerpt(submitted, start)}, "
        f"replay {_excerpt(replayed, start)}"
    )


def _registered_versions(env_id: str) -> list[str]:
    import gymnasium as gym
    from gymnasium.envs.registration import parse_env_id

    ns, name, _ = parse_env_id(env_id)
    return sorted(
        i for i, spec in gym.registry.items() if spec.namespace == ns and spec.name == name
    )


def check_header(header: dict[str, Any]) -> EpisodeSet:
    """The episode set a (schema-valid) header names, after checking env id, version, hash."""
    import gymnasium as gym

    import dialog_env  # noqa: F401  (registers the ids)

    env_id = header["env_id"]
    if env_id not in gym.registry:
        known = _registered_versions(env_id)
        if known:
            raise ResultsRejected(
                f"wrong env version: {env_id} is not registered here "
                f"(this leaderboard runs {', '.join(known)})"
            )
        raise ResultsRejected(f"unknown env id {env_id}: it is not registered here")
    if header["env_version"] != env_version(env_id):
        raise ResultsRejected(
            f"wrong env version: header says env_version "
            f"{header['env_version']!r} but env_id is {env_id}"
        )
    set_env, set_name, limit = parse_episode_set_id(header["episode_set"])
    if set_env != env_id:
        raise ResultsRejected(
            f"episode set {header['episode_set']} belongs to {set_env}, "
            f"not to the header's env_id {env_id}"
        )
    if set_name not in EPISODE_SET_SIZES:
        raise ResultsRejected(
            f"unknown episode set {set_name!r}: the sets are {', '.join(EPISODE_SET_SIZES)}"
        )
    try:
        episode_set = get_episode_set(env_id, set_name, limit=limit)
    except ValueError as err:
        raise ResultsRejected(f"episode set {header['episode_set']}: {err}") from None
    if episode_set.id != header["episode_set"]:
        raise ResultsRejected(
            f"episode set {header['episode_set']} is written {episode_set.id} here"
        )
    if header["episode_set_sha256"] != episode_set.sha256:
        raise ResultsRejected(
            f"episode-set hash mismatch for {episode_set.id}: the file has "
            f"{header['episode_set_sha256'][:12]}..., this leaderboard has "
            f"{episode_set.sha256[:12]}... (its seeds or env spec differ)"
        )
    return episode_set


def check_seeds(episodes: list[dict[str, Any]], episode_set: EpisodeSet) -> None:
    """Each seed of the set exactly once, and no other: else a one-line rejection."""
    wanted = set(episode_set.seeds)
    full = set(get_episode_set(episode_set.env_id, episode_set.name).seeds)
    seen: dict[int, int] = {}
    for index, episode in enumerate(episodes):
        seed = episode["seed"]
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ResultsRejected(f"episode {index}: seed {seed!r} is not an integer")
        if seed in seen:
            raise ResultsRejected(f"duplicate seed {seed} (episodes {seen[seed]} and {index})")
        seen[seed] = index
        if seed not in wanted:
            if seed in full:
                raise ResultsRejected(
                    f"extra episode: seed {seed} (episode {index}) is in "
                    f"{episode_set.env_id}/{episode_set.name} but not in "
                    f"{episode_set.id}"
                )
            raise ResultsRejected(
                f"foreign seed {seed} (episode {index}): not in episode set {episode_set.id}"
            )
    missing = [s for s in episode_set.seeds if s not in seen]
    if missing:
        raise ResultsRejected(
            f"missing {len(missing)} of the {len(episode_set)} episodes of "
            f"{episode_set.id}, the first with seed {missing[0]}"
        )


def _compare_turns(seed: int, submitted: list[dict], replayed: list[dict], start: int = 0) -> None:
    for i in range(start, len(replayed)):
        want = replayed[i]
        if i >= len(submitted):
            raise ResultsRejected(
                f"episode seed={seed}: the submission ends at turn {i} but "
                f"the replay goes on with a {_TURN_KINDS[want['role']]}"
            )
        got = submitted[i]
        if got["role"] != want["role"]:
            raise ResultsRejected(
                f"episode seed={seed}: turn {i} is a "
                f"{_TURN_KINDS[got['role']]} but the replay has a "
                f"{_TURN_KINDS[want['role']]} there"
            )
        if got["text"] != want["text"]:
            raise ResultsRejected(
                f"episode seed={seed}: {_TURN_KINDS[want['role']]} {i} differs from the replay "
                f"{_difference(got['text'], want['text'])}"
            )


def _same_value(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None:
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(a, b, rel_tol=0.0, abs_tol=REPLAY_TOLERANCE)
    return type(a) is type(b) and a == b


def _shown(value: Any) -> str:
    """A value as a rejection shows it: floats rounded to 10 places (``0.92``, not
    ``0.9199999999999999``; a difference below that is within the tolerance anyway)."""
    return repr(round(value, 10)) if isinstance(value, float) else repr(value)


def _compare_outcome(seed: int, submitted: dict, replayed: dict) -> None:
    if len(submitted["rewards"]) != len(replayed["rewards"]):
        raise ResultsRejected(
            f"episode seed={seed}: {len(submitted['rewards'])} rewards "
            f"for {len(replayed['rewards'])} steps"
        )
    for step, (got, want) in enumerate(zip(submitted["rewards"], replayed["rewards"], strict=True)):
        if not _same_value(got, want):
            raise ResultsRejected(
                f"episode seed={seed}: reward of step {step} is {_shown(got)}, the replay gives "
                f"{_shown(want)}"
            )
    for key in ("return", "success", "terminated", "truncated"):
        if not _same_value(submitted[key], replayed[key]):
            raise ResultsRejected(
                f"episode seed={seed}: {key} is {_shown(submitted[key])}, the "
                f"replay gives {_shown(replayed[key])}"
            )
    got_metrics, want_metrics = submitted["metrics"], replayed["metrics"]
    for key in sorted(set(got_metrics) | set(want_metrics)):
        if key not in got_metrics:
            raise ResultsRejected(f"episode seed={seed}: metric {key!r} is missing")
        if key not in want_metrics:
            raise ResultsRejected(f"episode seed={seed}: metric {key!r} is not one the env reports")
        if not _same_value(got_metrics[key], want_metrics[key]):
            raise ResultsRejected(
                f"episode seed={seed}: metric {key} is "
                f"{_shown(got_metrics[key])}, the replay gives "
                f"{_shown(want_metrics[key])}"
            )


#: Episodes replayed side by side (each in its own env, so the result does not depend on it).
REPLAY_BATCH_SIZE = 128


class RecordedMessages:
    """The agent's messages of submitted episodes (their ``assistant`` turns), fed back in
    order: the message source of a replay."""

    def __init__(self, episodes: list[dict[str, Any]], batch_size: int = REPLAY_BATCH_SIZE):
        self.batch_size = batch_size
        self._seeds = [ep["seed"] for ep in episodes]
        self._messages = [
            [t["text"] for t in ep["turns"] if t["role"] == "assistant"] for ep in episodes
        ]
        self._sent = [0] * len(episodes)

    def start(self, index: int, seed: int) -> None:
        self._sent[index] = 0

    def messages(self, running: Sequence[tuple[int, str]]) -> list[str]:
        out = []
        for index, _ in running:
            sent = self._sent[index]
            if sent >= len(self._messages[index]):
                raise ResultsRejected(
                    f"episode seed={self._seeds[index]}: the submission stops after {sent} "
                    "steps, before the episode ended"
                )
            self._sent[index] = sent + 1
            out.append(self._messages[index][sent])
        return out


def compare_episode(submitted: dict[str, Any], replayed: dict[str, Any]) -> None:
    """Reject, naming the first difference, unless the two records of an episode agree."""
    seed, turns = submitted["seed"], submitted["turns"]
    _compare_turns(seed, turns, replayed["turns"], 0)
    if len(turns) > len(replayed["turns"]):
        raise ResultsRejected(
            f"episode seed={seed}: the episode ended at turn {len(replayed['turns'])} "
            f"but the submission has {len(turns) - len(replayed['turns'])} more turns"
        )
    _compare_outcome(seed, submitted, replayed)


def replay_episodes(
    episodes: list[dict[str, Any]],
    episode_set: EpisodeSet,
    progress: bool | Callable[[int], None] = False,
) -> list[dict[str, Any]]:
    """Play the submitted episodes again from their seeds and recorded messages."""
    try:
        return play_episodes(
            RecordedMessages(episodes),
            episode_set,
            seeds=[ep["seed"] for ep in episodes],
            progress=progress,
            desc=f"replaying {episode_set.id}",
        )
    except ResultsRejected:
        raise
    except Exception as err:  # a flaw the env itself trips on is still a rejection
        raise ResultsRejected(f"replay failed with {type(err).__name__}: {err}") from None


def verify_results(
    results: dict[str, Any], progress: bool | Callable[[int], None] = False
) -> VerifiedResults:
    """Check a parsed, schema-valid results object; raise ``ResultsRejected`` on any flaw."""
    episode_set = check_header(results["header"])
    episodes = results["episodes"]
    check_seeds(episodes, episode_set)
    replayed = replay_episodes(episodes, episode_set, progress=progress)
    for submitted, replay in zip(episodes, replayed, strict=True):
        compare_episode(submitted, replay)
    return VerifiedResults(dict(results["header"]), episode_set, replayed)


def verify_results_file(
    path: str | Path,
    max_bytes: int = MAX_RESULTS_BYTES,
    progress: bool | Callable[[int], None] = False,
) -> VerifiedResults:
    """Read (size-checked, strict JSON, schema) and verify a results file by replay."""
    return verify_results(read_results(path, max_bytes=max_bytes), progress=progress)
