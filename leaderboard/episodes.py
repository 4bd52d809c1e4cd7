"""Episode sets: the fixed, hashed lists of seeds every agent is evaluated on.

Each text-interface env id has two sets, ``dev`` (200 episodes, for tuning) and ``test``
(500 episodes, for the leaderboard). Both use ``split="test"`` goals, the constraint
combinations no training goal has.

**Where the seeds come from.** Seeds are drawn from a sha256 stream per task: the ``i``-th
candidate is the first 8 bytes of ``sha256(f"dialog-bench/episode-seeds/{task}/{i}")`` read
as a big-endian integer and mapped into ``[EVAL_SEED_FLOOR, 2**31)``. The first 200
distinct candidates are ``dev``, the next 500 are ``test``, so the two sets are disjoint.
Training code (demonstrations, RL rollouts) draws its seeds below ``EVAL_SEED_FLOOR``
(``10**9``), so no evaluation episode is ever a training episode. Env ids of the same task
share the seeds, so agents of different interfaces meet identical episodes.

**What the hash covers.** ``EpisodeSet.sha256`` is the sha256 of a canonical JSON object
holding the set's id, its seeds in order and the env spec: id, version, entry point,
``max_episode_steps`` and every constructor kwarg resolved to its value (defaults
included, ``split="test"``). Any change of the seeds or of what the env is built with
changes the hash, and results made on the old set no longer verify.

A prefix of a set (``test[:50]``, from ``--limit 50``) is an episode set of its own with
its own id and hash: handy for quick checks, and never mixed with the full set.

>>> s = get_episode_set("Dialog-v1", "dev")
>>> s.id, len(s.seeds), s.env_kwargs["split"]
('Dialog-v1/dev', 200, 'test')
>>> set(s.seeds).isdisjoint(get_episode_set("Dialog-v1", "test").seeds)
True
>>> get_episode_set("Dialog-v1", "test", limit=50).id
'Dialog-v1/test[:50]'
"""

from __future__ import annotations

import hashlib
import inspect
import json
import re
from dataclasses import dataclass, field, replace
from functools import cache
from typing import Any

__all__ = [
    "EPISODE_SET_SIZES",
    "EVAL_SEED_FLOOR",
    "RUN_ENV_IDS",
    "EpisodeSet",
    "canonical_json",
    "env_version",
    "episode_set_size",
    "get_episode_set",
    "is_evaluation_seed",
    "parse_episode_set_id",
    "resolved_env_spec",
    "text_env_ids",
]

#: Set name -> number of episodes, in the order they are drawn from the seed stream.
EPISODE_SET_SIZES: dict[str, int] = {"dev": 200, "test": 500}
#: The env ids ``dialog-bench run`` plays and publishes by default, one per task; the
#: README's excerpt is the first one's table.
RUN_ENV_IDS = ("Dialog-v1", "Dialog-Chat-v1")
#: Every evaluation seed is at least this; training code draws its seeds below it.
EVAL_SEED_FLOOR = 1_000_000_000
_SEED_CEILING = 2**31
#: Constructor kwargs that change how an episode is shown or computed, not what happens.
_PRESENTATION_KWARGS = frozenset({"render_mode", "device"})
_SET_ID = re.compile(r"^(?P<env_id>[^/]+)/(?P<name>[a-z]+)(?:\[:(?P<limit>[1-9][0-9]*)\])?$")


def canonical_json(obj: Any) -> bytes:
    """The one byte string hashed for ``obj``: sorted keys, no spaces, UTF-8."""
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def is_evaluation_seed(seed: int) -> bool:
    """Whether ``seed`` lies in the range reserved for evaluation episodes.

    >>> is_evaluation_seed(0), is_evaluation_seed(EVAL_SEED_FLOOR)
    (False, True)
    """
    return EVAL_SEED_FLOOR <= seed < _SEED_CEILING


@cache
def _seed_stream(task: str, count: int) -> tuple[int, ...]:
    seeds: list[int] = []
    seen: set[int] = set()
    i = 0
    while len(seeds) < count:
        digest = hashlib.sha256(f"dialog-bench/episode-seeds/{task}/{i}".encode()).digest()
        seed = EVAL_SEED_FLOOR + int.from_bytes(digest[:8], "big") % (
            _SEED_CEILING - EVAL_SEED_FLOOR
        )
        if seed not in seen:
            seen.add(seed)
            seeds.append(seed)
        i += 1
    return tuple(seeds)


def env_version(env_id: str) -> int:
    """The version number of an env id (``"Dialog-v1"`` -> 1)."""
    from gymnasium.envs.registration import parse_env_id

    _, _, version = parse_env_id(env_id)
    if version is None:
        raise ValueError(f"env id {env_id!r} has no version suffix (-vN)")
    return version


def _registered_spec(env_id: str):
    import gymnasium as gym

    import dialog_env  # noqa: F401  (registers the ids)

    if env_id not in gym.registry:
        known = ", ".join(text_env_ids())
        raise ValueError(f"env id {env_id!r} is not registered (known: {known})")
    return gym.spec(env_id)


def _named_defaults(fn: Any) -> tuple[dict[str, Any], bool]:
    """``fn``'s keyword defaults, and whether it also takes ``**kwargs``."""
    params = inspect.signature(fn).parameters.values()
    defaults = {
        p.name: p.default
        for p in params
        if p.default is not inspect.Parameter.empty
        and p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    }
    return defaults, any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


def _is_json_value(value: Any) -> bool:
    try:
        canonical_json(value)
    except (TypeError, ValueError):
        return False
    return True


@cache
def resolved_env_spec(env_id: str) -> dict[str, Any]:
    """The env spec an episode set is bound to, with every kwarg resolved to its value.

    The kwargs are the entry point's defaults, overridden by the spec's kwargs, with
    ``split="test"``. An entry point that passes ``**kwargs`` on (a factory that wraps the
    env class) hides the class's own defaults, so the env is then built once to read the
    defaults of its unwrapped class. Kwargs that only change presentation (``render_mode``,
    ``device``) and defaults that are not JSON values (objects such as a tokenizer) are
    left out.
    """
    import gymnasium as gym
    from gymnasium.envs.registration import load_env_creator

    spec = _registered_spec(env_id)
    entry = spec.entry_point
    creator = load_env_creator(entry) if isinstance(entry, str) else entry
    kwargs, passes_kwargs_on = _named_defaults(creator)
    if passes_kwargs_on:
        env = gym.make(env_id, **{**spec.kwargs, "split": "test"})
        try:
            class_defaults, _ = _named_defaults(type(env.unwrapped).__init__)
        finally:
            env.close()
        kwargs = {**class_defaults, **kwargs}
    kwargs.update(spec.kwargs)
    kwargs["split"] = "test"
    kwargs = {
        k: v for k, v in kwargs.items() if k not in _PRESENTATION_KWARGS and _is_json_value(v)
    }
    return {
        "id": env_id,
        "version": env_version(env_id),
        "entry_point": str(entry),
        "max_episode_steps": spec.max_episode_steps,
        "kwargs": json.loads(canonical_json(kwargs)),
    }


def text_env_ids() -> list[str]:
    """Registered dialog-bench ids whose agents write text: those episode sets exist for."""
    from dialog_env.registration import TEXT_ENV_IDS

    return list(TEXT_ENV_IDS)


@dataclass(frozen=True)
class EpisodeSet:
    """A named, hashed list of seeds on one env id; ``id`` is ``"<env_id>/<name>[[:N]]"``."""

    env_id: str
    name: str
    seeds: tuple[int, ...]
    limit: int | None = None
    env_spec: dict[str, Any] = field(repr=False, compare=False, default_factory=dict)

    @property
    def id(self) -> str:
        suffix = f"[:{self.limit}]" if self.limit is not None else ""
        return f"{self.env_id}/{self.name}{suffix}"

    @property
    def env_kwargs(self) -> dict[str, Any]:
        """The kwargs to pass to ``gymnasium.make(env_id, ...)`` for these episodes."""
        return dict(self.env_spec["kwargs"])

    def with_env_kwargs(self, **kwargs: Any) -> EpisodeSet:
        """These episodes with their envs made with ``kwargs`` too (a device, another voice,
        another reward): the same seeds, another env spec, so another :attr:`sha256`."""
        return replace(self, env_spec={**self.env_spec, "kwargs": {**self.env_kwargs, **kwargs}})

    @property
    def sha256(self) -> str:
        payload = {"episode_set": self.id, "seeds": list(self.seeds), "env": self.env_spec}
        return hashlib.sha256(canonical_json(payload)).hexdigest()

    def __len__(self) -> int:
        return len(self.seeds)


def episode_set_size(env_id: str, name: str, limit: int | None = None) -> int:
    """How many episodes :func:`get_episode_set` gives for these arguments, checked as it
    checks them (the same ``ValueError``), without building the env that resolves the
    set's spec: no LM is loaded, so a caller that only counts (a progress bar) stays light.

    >>> episode_set_size("Dialog-v1", "test"), episode_set_size("Dialog-v1", "dev", limit=5)
    (500, 5)
    """
    if name not in EPISODE_SET_SIZES:
        raise ValueError(f"unknown episode set {name!r}: use one of {', '.join(EPISODE_SET_SIZES)}")
    _registered_spec(env_id)
    if env_id not in text_env_ids():
        raise ValueError(
            f"{env_id} is not a text-interface env id; episode sets exist for "
            f"{', '.join(text_env_ids())}"
        )
    size = EPISODE_SET_SIZES[name]
    if limit is None:
        return size
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= size:
        raise ValueError(f"limit must be an int in 1..{size} for {env_id}/{name}, got {limit!r}")
    return limit


def get_episode_set(env_id: str, name: str, limit: int | None = None) -> EpisodeSet:
    """The episode set ``name`` (``"dev"`` or ``"test"``) of ``env_id``, or its first ``limit``.

    Raises ``ValueError`` for an unknown set, an env id that is not a registered
    text-interface id, or a ``limit`` outside ``1..len(set)``.
    """
    count = episode_set_size(env_id, name, limit)
    spec = resolved_env_spec(env_id)
    names, full = list(EPISODE_SET_SIZES), EPISODE_SET_SIZES[name]
    start = sum(EPISODE_SET_SIZES[other] for other in names[: names.index(name)])
    task = spec["kwargs"].get("task", env_id)
    seeds = _seed_stream(task, start + full)[start : start + count]
    return EpisodeSet(env_id, name, tuple(seeds), None if count == full else limit, spec)


def parse_episode_set_id(set_id: str) -> tuple[str, str, int | None]:
    """``"Dialog-v1/test[:50]"`` -> ``("Dialog-v1", "test", 50)``.

    >>> parse_episode_set_id("Dialog-v1/dev")
    ('Dialog-v1', 'dev', None)
    """
    match = _SET_ID.fullmatch(set_id)
    if not match:
        raise ValueError(
            f"malformed episode-set id {set_id!r} (expected ENV_ID/NAME or ENV_ID/NAME[:N])"
        )
    limit = match["limit"]
    return match["env_id"], match["name"], int(limit) if limit else None
