"""Evaluation on a Ray cluster: an episode set sharded over Ray actors (extra ``[ray]``).

``dialog-bench evaluate AGENT --ray [ADDRESS]`` and ``dialog-bench run --ray [ADDRESS]``
cut the episode set's seeds into contiguous shards, one per actor; each actor loads the
agent itself, opens its own env slots and plays its shard through the same
:func:`~leaderboard.rollout.play_episodes` as a local run. Every episode is reset with its
own seed and its course does not depend on which episodes share a batch, so the records,
put back in the set's order, and the results file are byte for byte those of the local
run (the header's ``created`` time aside); ``tests/leaderboard/test_ray_runner.py`` holds
it to that.

``ADDRESS`` is what ``ray.init(address=...)`` takes: none (``--ray`` alone) starts a
Ray on this machine, or joins the one ``RAY_ADDRESS`` names; ``auto`` joins the cluster
this machine is a node of (``ray start --head`` / ``ray start --address HEAD:6379``);
``ray://HOST:10001`` connects a client to a remote head. Every node needs dialog-bench
installed and the agent's checkpoint at the same path (or a shipped name).

Every failure to get a Ray is one line (a ``ValueError``): Ray not installed, or a head
that does not answer within :data:`CONNECT_TIMEOUT_S` (``ray://HOST:PORT`` and
``HOST:PORT`` are tried with a plain TCP connection first, so an unreachable address
costs seconds, not Ray's own half-minute of retries).
"""

from __future__ import annotations

import math
import socket
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from leaderboard.episodes import EpisodeSet

__all__ = ["CONNECT_TIMEOUT_S", "LOCAL", "connect", "play_sharded", "require_ray", "shard_seeds"]

#: ``--ray`` given without an address: start (or join ``RAY_ADDRESS``'s) Ray here.
LOCAL = "local"
#: How long a Ray head named by host and port may take to answer, in seconds.
CONNECT_TIMEOUT_S = 5.0
#: The port of a ``ray://HOST`` address that names none (Ray client's default).
RAY_CLIENT_PORT = 10001


def require_ray() -> Any:
    """The ``ray`` module, or a one-line ``ValueError`` that says how to install it."""
    try:
        import ray
    except ImportError:
        raise ValueError(
            "--ray needs Ray: pip install 'dialog-bench[ray]' (or pip install 'ray[default]')"
        ) from None
    return ray


def _head(address: str) -> tuple[str, int] | None:
    """``(host, port)`` of a ``ray://HOST[:PORT]`` or ``HOST:PORT`` address, else None.

    >>> _head("ray://10.0.0.5"), _head("[::1]:6379"), _head("auto")
    (('10.0.0.5', 10001), ('::1', 6379), None)
    """
    client = address.startswith("ray://")
    rest = address[len("ray://") :] if client else address
    rest = rest.split("/", 1)[0].split("?", 1)[0]
    host, colon, port = rest.rpartition(":") if "]" not in rest.rsplit(":", 1)[-1] else ("", "", "")
    if not colon:
        host, port = rest, str(RAY_CLIENT_PORT) if client else ""
    host = host.strip("[]")
    if not host or not port.isdigit():
        return None
    return host, int(port)


def connect(address: str) -> Any:
    """Join (or start) the Ray that ``address`` names, unless this process already has.
    Raises a one-line ``ValueError`` when it cannot (:data:`CONNECT_TIMEOUT_S`)."""
    ray = require_ray()
    if ray.is_initialized():
        return ray
    head = None if address == LOCAL else _head(address)
    if head is not None:
        try:
            socket.create_connection(head, timeout=CONNECT_TIMEOUT_S).close()
        except OSError as err:
            reason = "no answer" if isinstance(err, TimeoutError) else err.strerror or err
            raise ValueError(
                f"--ray {address}: cannot reach a Ray head at {head[0]}:{head[1]} "
                f"({reason}, waited at most {CONNECT_TIMEOUT_S:g} s)"
            ) from None
    try:
        ray.init(address=None if address == LOCAL else address, log_to_driver=False)
    except (ConnectionError, RuntimeError, TimeoutError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f"--ray {address}: could not join Ray: {first[:200]}") from None
    return ray


def shard_seeds(seeds: Sequence[int], shards: int) -> list[list[int]]:
    """``seeds`` cut into at most ``shards`` contiguous, near-equal, non-empty runs.

    >>> shard_seeds([1, 2, 3, 4, 5], 2)
    [[1, 2, 3], [4, 5]]
    """
    if shards < 1:
        raise ValueError(f"the number of Ray actors must be at least 1, got {shards}")
    size = max(1, math.ceil(len(seeds) / shards))
    return [list(seeds[i : i + size]) for i in range(0, len(seeds), size)]


class _EpisodeWorker:
    """One Ray actor: the agent and env slots it plays its shards with."""

    def __init__(self, agent_spec: str, set_args: tuple, batch_size: int, threads: int = 1):
        import torch

        from agents import load_agent
        from leaderboard.agent_card import describe_agent
        from leaderboard.episodes import get_episode_set
        from leaderboard.rollout import AgentMessages

        torch.set_num_threads(threads)
        self.episode_set = get_episode_set(*set_args)
        self.source = AgentMessages(lambda: load_agent(agent_spec), batch_size)
        self.card = describe_agent(self.source.agent, agent_spec)

    def describe(self) -> tuple[Any, int, str]:
        """What the results header says of the agent: its card, batch size and calls."""
        return self.card, self.source.batch_size, self.source.calls

    def play(self, seeds: list[int]) -> list[dict]:
        from leaderboard.rollout import play_episodes

        return play_episodes(self.source, self.episode_set, seeds=seeds, progress=False)


def play_sharded(
    agent_spec: str | Path,
    episode_set: EpisodeSet,
    batch_size: int,
    address: str = LOCAL,
    actors: int | None = None,
    progress: bool | Callable[[int], None] = True,
) -> tuple[tuple[Any, int, str], list[dict]]:
    """Play ``episode_set`` (rebuilt on each actor from its id) over Ray actors.

    Returns what the header needs (``(card, batch_size, calls)``, the same from every
    actor) and the records in the set's order. ``actors`` (default and at most: the
    cluster's CPUs, one each) are started for this set and stopped after it.
    """
    ray = connect(address)
    seeds = list(episode_set.seeds)
    # each actor holds one CPU; more actors than the cluster has CPUs would wait forever
    cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
    if actors is not None and actors < 1:
        raise ValueError(f"--ray-actors must be at least 1, got {actors}")
    shards = shard_seeds(seeds, min(cpus if actors is None else min(actors, cpus), len(seeds)))
    # A checkpoint path is sent as a str: the actors resolve it on their own node.
    spec = str(agent_spec)
    set_args = (episode_set.env_id, episode_set.name, episode_set.limit)
    worker = ray.remote(num_cpus=1)(_EpisodeWorker)
    pool = [worker.remote(spec, set_args, batch_size) for _ in shards]
    described = ray.get([w.describe.remote() for w in pool])
    if any(d != described[0] for d in described[1:]):
        raise RuntimeError(
            f"the Ray actors loaded different agents for {spec!r} (model hash or labels "
            "differ between nodes): install the same checkpoint everywhere"
        )
    from tqdm.auto import tqdm

    bar = tqdm(
        total=len(seeds),
        desc=f"{described[0][0].name} on {episode_set.id} (ray, {len(pool)} actors)",
        unit="ep",
        file=sys.stderr,
        disable=progress is not True,
    )
    futures = {
        w.play.remote(shard): i for i, (w, shard) in enumerate(zip(pool, shards, strict=True))
    }
    parts: dict[int, list[dict]] = {}
    try:
        pending = list(futures)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                parts[futures[ref]] = ray.get(ref)
                bar.update(len(parts[futures[ref]]))
                if callable(progress):
                    progress(len(parts[futures[ref]]))
    finally:
        bar.close()
        for w in pool:
            ray.kill(w)
    records = [r for i in range(len(shards)) for r in parts[i]]
    if [r["seed"] for r in records] != seeds:
        raise RuntimeError("the Ray actors did not return every episode of the set in order")
    return described[0], records
