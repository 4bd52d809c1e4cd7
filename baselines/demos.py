"""``dialog-bench demos``: demonstrations played by the env itself, for imitation learning.

A demonstration file is JSONL, one episode a line, each a leaderboard episode record
(``seed``, ``turns``, ``rewards``, ``return``, ``success``, ``metrics``...), beside a
metadata file ``<name>.meta.json``: the env id and version, the resolved env spec
(``split="train"``), the generator and its noise, the seeds, the number of episodes and
steps, the success rate, the mean return, the JSONL's sha256 and the command. The JSONL
loads as it is with ``datasets.load_dataset("json", data_files=PATH)``. With
``--minari ID`` the same generator also plays the act interface on the same seeds, written
as a real Minari dataset (``baselines.minari_demos``, optional extra ``minari``).

Demo seeds are train-split seeds below the leaderboard's ``EVAL_SEED_FLOOR``, so no
demonstration is ever an evaluation episode. Because the env is deterministic, a demo
replays exactly: :func:`replay_demo` resets with its seed and sends its messages again.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shlex
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from baselines.demo_episodes import GENERATORS, train_episodes
from dialog_env.bounded_json import check_shape, loads_bounded, read_json_file
from dialog_env.registration import check_env_id

__all__ = [
    "GENERATORS",
    "META_SHAPE",
    "add_parser",
    "check_demos_task",
    "demos_meta_path",
    "generate_demos",
    "load_demos",
    "main",
    "parse_env_kwargs",
    "read_meta",
    "replay_demo",
    "train_episodes",
]

#: The fields of a ``.meta.json`` (demos and prefs) that its readers use, and their types.
META_SHAPE: dict[str, Any] = {
    "format": str,
    "sha256": str,
    "env_id": str,
    "env_spec": {"kwargs": dict},
}
#: A ``.meta.json`` larger than this is refused unread.
MAX_META_BYTES = 1 << 20


def parse_env_kwargs(text: str, name: str = "--env-kwargs") -> dict[str, Any]:
    """``text``, a JSON object of env kwargs (empty: ``{}``), as a dict; a ``ValueError``
    naming ``name`` (the flag or field it came from) when it is not one.

    >>> parse_env_kwargs('{"venue_names": "shuffled"}'), parse_env_kwargs("")
    ({'venue_names': 'shuffled'}, {})
    >>> parse_env_kwargs("[1]")
    Traceback (most recent call last):
    ...
    ValueError: --env-kwargs must be a JSON object, got '[1]'
    """
    try:
        kwargs = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError as err:
        raise ValueError(f"{name} is not JSON: {err}") from None
    if not isinstance(kwargs, dict):
        raise ValueError(f"{name} must be a JSON object, got {text!r}")
    return kwargs


class _AgentPerEpisode:
    """A message source with one agent per running episode, reset with that episode's seed,
    so seeded noise follows the episode, not the batch it runs in."""

    def __init__(self, name: str, batch_size: int):
        from agents import load_agent

        self.name, self.batch_size = name, batch_size
        self._load = load_agent
        self.agents: dict[int, Any] = {}

    def start(self, index: int, seed: int) -> None:
        agent = self._load(self.name)
        agent.reset(seed=seed)
        self.agents[index] = agent

    def messages(self, running: Sequence[tuple[int, str]]) -> list[str]:
        return [self.agents[i].act(obs) for i, obs in running]


def generate_demos(
    generator: str,
    seeds: Sequence[int],
    env_id: str = "Dialog-v1",
    batch_size: int = 32,
    progress: bool = True,
    **env_kwargs: Any,
) -> tuple[list[dict], dict]:
    """``(records, metadata)`` of the generator's episodes on train-split ``seeds``."""
    from leaderboard.rollout import play_episodes

    if generator not in GENERATORS:
        raise ValueError(f"generator must be one of {GENERATORS}, got {generator!r}")
    episodes = train_episodes(env_id, seeds, **env_kwargs)
    start = time.perf_counter()
    records = play_episodes(
        _AgentPerEpisode(generator, batch_size), episodes, progress=progress, desc=generator
    )
    meta = {
        "format": "dialog-bench demos v1",
        "env_id": env_id,
        "env_spec": episodes.env_spec,
        "generator": generator,
        "noise": _noise_of(generator),
        "seeds": {"first": min(seeds), "last": max(seeds), "count": len(seeds)},
        "episodes": len(records),
        "steps": sum(len(r["rewards"]) for r in records),
        "success_rate": sum(r["success"] for r in records) / max(len(records), 1),
        "mean_return": sum(r["return"] for r in records) / max(len(records), 1),
        "wall_seconds": round(time.perf_counter() - start, 1),
    }
    return records, meta


def _noise_of(generator: str) -> dict | None:
    if generator == "careless-expert":
        from agents.careless_expert import Carelessness

        return asdict(Carelessness())
    if generator == "careless-chat-expert":
        from agents.careless_chat_expert import ChatCarelessness

        return asdict(ChatCarelessness())
    if generator != "noisy-expert":
        return None
    from agents.noisy_expert import Noise

    return asdict(Noise())


def write_demos(path: str | Path, records: list[dict], meta: dict, command: str) -> Path:
    """Write ``path`` (JSONL) and its ``.meta.json``; return the metadata path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = "".join(json.dumps(r, sort_keys=True) + "\n" for r in records).encode()
    path.write_bytes(body)
    meta = {**meta, "sha256": hashlib.sha256(body).hexdigest(), "command": command}
    meta_path = path.with_suffix(".meta.json")
    meta_path.write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")
    return meta_path


def read_meta(path: str | Path, shape: dict[str, Any] | None = None) -> dict[str, Any]:
    """The checked ``.meta.json`` beside data file ``path``: bounded JSON
    (:func:`~dialog_env.bounded_json.read_json_file`) whose fields the loaders read have
    their types (:data:`META_SHAPE`, and ``shape``) and whose env id is a registered one."""
    meta_path = Path(path).with_suffix(".meta.json")
    meta = read_json_file(meta_path, MAX_META_BYTES)
    check_shape(meta, {**META_SHAPE, **(shape or {})}, str(meta_path))
    check_env_id(meta["env_id"], meta_path)
    return meta


def _record(line: str, where: Path) -> dict:
    try:
        record = loads_bounded(line)
    except ValueError as err:
        raise ValueError(f"{where}: {err}") from None
    if not isinstance(record, dict):
        raise ValueError(f"{where}: a record must be an object, got {type(record).__name__}")
    return record


def demos_meta_path(path: str | Path) -> Path:
    """The ``.meta.json`` beside demo (or preference) file ``path``; a one-line
    ``FileNotFoundError`` when either is missing, naming which."""
    path = Path(path)
    meta = path.with_suffix(".meta.json")
    if not path.is_file():
        raise FileNotFoundError(f"no demos file at {path}")
    if not meta.is_file():
        raise FileNotFoundError(
            f"{path} has no {meta.name} beside it (`dialog-bench demos` writes both)"
        )
    return meta


def check_demos_task(paths: Sequence[str | Path], env_id: str) -> None:
    """Refuse, in one line, demo or preference files played on another task than
    ``env_id``'s (a trainer must not learn booking on chat pairs, or the reverse)."""
    from dialog_env.registration import task_of

    task = task_of(env_id)
    for path in paths:
        where = demos_meta_path(path)
        meta = read_json_file(where, MAX_META_BYTES)
        played = check_env_id(
            meta.get("env_id", "Dialog-v1") if isinstance(meta, dict) else None, where
        )
        if task_of(played) != task:
            raise ValueError(
                f"{path} holds {task_of(played)} data (played on {played}), not {env_id}'s "
                f"{task} task: give --env-id {played}"
            )


def load_demos(path: str | Path) -> tuple[Iterator[dict], dict]:
    """The records of a demo file (checked against its metadata's sha256) and the metadata
    (:func:`read_meta`)."""
    path = Path(path)
    demos_meta_path(path)  # both files there, or which is missing
    meta = read_meta(path)
    body = path.read_bytes()
    if hashlib.sha256(body).hexdigest() != meta["sha256"]:
        raise ValueError(f"{path} does not match the sha256 in its metadata")
    return (_record(line, path) for line in body.decode().splitlines() if line), meta


def replay_demo(record: dict, meta: dict) -> list[float]:
    """Reset with the demo's seed, send its assistant messages again; return the rewards.
    ``meta`` is checked as :func:`read_meta` checks it (a registered env id only)."""
    import gymnasium as gym

    import dialog_env  # noqa: F401

    check_shape(meta, {"env_id": str, "env_spec": {"kwargs": dict}}, "demo metadata")
    env = gym.make(check_env_id(meta["env_id"], "demo metadata"), **meta["env_spec"]["kwargs"])
    env.reset(seed=record["seed"])
    rewards = []
    for turn in record["turns"]:
        if turn["role"] == "assistant":
            rewards.append(float(env.step(turn["text"])[1]))
    return rewards


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demos",
        help="write expert, noisy-expert or careless-expert demonstrations (JSONL + metadata)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--generator", choices=GENERATORS, default="expert")
    p.add_argument(
        "--num-episodes",
        "--episodes",
        dest="episodes",
        type=int,
        default=1000,
        metavar="N",
        help="number of demos (default 1000; --episodes, its old name, is deprecated)",
    )
    p.add_argument("--first-seed", type=int, default=0, help="seed of the first demo")
    p.add_argument("--env-id", default="Dialog-v1")
    p.add_argument("--user-model", default=None, help="voice (default: the env's)")
    p.add_argument(
        "--env-kwargs",
        default="{}",
        help='JSON object of further env kwargs, e.g. \'{"venue_names": "shuffled"}\' (the '
        "metadata's env spec records them)",
    )
    p.add_argument("--batch-size", type=int, default=32, help="episodes run side by side")
    p.add_argument("--out", type=Path, required=True, help="output .jsonl path")
    p.add_argument(
        "--minari",
        default=None,
        metavar="ID",
        help="also write the act-interface demos on the same seeds as Minari dataset ID "
        "(e.g. dialog-bench/booking/expert-v0; needs the minari extra)",
    )
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    if args.episodes < 1:
        raise ValueError("--num-episodes must be at least 1")
    extra = parse_env_kwargs(args.env_kwargs)
    if {"split", "user_model"} & set(extra):
        raise ValueError(
            "--env-kwargs must be a JSON object without split or user_model (their own "
            f"flags), got {args.env_kwargs!r}"
        )
    kwargs = {**extra, **({"user_model": args.user_model} if args.user_model else {})}
    seeds = range(args.first_seed, args.first_seed + args.episodes)
    records, meta = generate_demos(
        args.generator, seeds, args.env_id, batch_size=args.batch_size, **kwargs
    )
    meta_path = write_demos(args.out, records, meta, shlex.join(["dialog-bench", *sys.argv[1:]]))
    print(
        f"wrote {len(records)} demos to {args.out} ({meta_path.name}): success "
        f"{meta['success_rate']:.3f}, mean return {meta['mean_return']:.3f}"
    )
    if args.minari:
        from baselines.minari_demos import write_minari_demos

        dataset = write_minari_demos(args.minari, args.generator, seeds, **kwargs)
        print(
            f"wrote Minari dataset {args.minari}: {dataset.total_episodes} act-interface episodes"
        )
    return 0
