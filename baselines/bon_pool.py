"""Best-of-n from one pool of samples per context: every n, every proxy, one sampling pass.

Playing best-of-n once per ``n`` (``python -m baselines.bon_curve --estimator play``)
samples and scores every context again for every ``n``, and each curve point rests on
one draw of ``n`` candidates. The literature's estimator (Nakano et al. 2021, WebGPT;
Gao et al. 2023) draws ``N >= n`` candidates per context once and reads the expected
score of best-of-``n`` off them exactly, for every ``n <= N`` and every proxy:

1. **Contexts.** The base LM agent plays the episodes greedily, as the leaderboard plays
   it (:func:`leaderboard.rollout.play_episodes`). Every message of it that is a reply
   to the user (not a tool call) is a context: the observation it read, the transcript
   before it (the reward model's context) and the request it answers (the episode's
   ``k``-th reply answers the goal's ``k``-th request, as the env scores it).
2. **A pool per context.** ``N`` candidates sampled at ``temperature`` from one prefill
   of the context (:meth:`agents.best_of_n.BestOfNAgent.sample_replies`: seeded by the
   context and the draw's number, the same draws in any batch; draw ``j`` is best-of-n's
   candidate ``j + 2``). No greedy candidate: all ``N`` are i.i.d. draws of the policy,
   so ``KL_bon(n) = log n - (n - 1) / n`` is exact when the draws are distinct (a pool's
   repeats make the true KL smaller; ``distinct_candidates`` in the output says how many
   were distinct). Each candidate is normalized as the env normalizes a message.
3. **Scores.** Every candidate is scored once by the gold judge and by every proxy: a
   reward model's normalized score (:meth:`RewardModel.score`, batched, each distinct
   reply of a context once; batched scores agree with the env's batch-1 ``score_one`` to
   1e-5, ``tests/baselines/test_bon_pool.py``), an ensemble the members' scores combined
   as :class:`RewardEnsemble` combines them (:func:`combine_scores`). A candidate that is
   a tool call is scored as a reply, like any text (the env would run it as a tool call
   and score nothing; best-of-n sends the best-scored candidate whatever it is); their
   share is the output's ``tool_call_candidates``.
4. **The estimator.** Rank a context's ``N`` candidates by the proxy, ascending, ties
   broken by draw number (of equal scores the earlier draw ranks higher, as best-of-n's
   ``argmax`` keeps the first). The best of ``n`` drawn without replacement from the pool
   is the candidate of rank ``i`` with probability ``C(i - 1, n - 1) / C(N, n)`` (it and
   ``n - 1`` of the ``i - 1`` below it), so the expected gold of best-of-``n`` is

       E[gold | n] = sum_i gold_(i) * C(i - 1, n - 1) / C(N, n)

   (and the same for the proxy's own score, ``dev_return``): an unbiased estimate of
   best-of-``n`` from ``n`` fresh draws, with no sampling noise of its own beyond the
   pool's. ``n = N`` is the pool's best; ``n = 1`` the pool's mean. Points are means over
   contexts, each with its standard error over contexts, and keep each context's expected
   gold (``context_gold``): every ``n`` is measured on the same contexts, so a difference
   of two points is tested paired, over the per-context differences.

Cost: one greedy play of the episodes, ``N`` draws per context (one prefill each), and
``N`` scores per context and reward model; nothing depends on how many ``n`` are asked.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "ENV_ID",
    "ROWS_PER_DECODE",
    "SHIPPED",
    "Context",
    "Proxy",
    "collect_contexts",
    "curve_points",
    "expected_best_of_n",
    "gold_scores",
    "kl_bon",
    "mean_se",
    "parse_ensemble",
    "parse_proxy",
    "pool_curve",
    "proxy_scores",
    "sample_pools",
]

ENV_ID = "Dialog-Chat-v1"
#: The name of the env's default reward model in a ``--proxy`` spec.
SHIPPED = "shipped"
#: Candidate rows decoded side by side (contexts per decode: this over the pool's size).
ROWS_PER_DECODE = 256


def kl_bon(n: int) -> float:
    """The KL (nats) of best-of-``n`` from the policy it samples: ``log n - (n - 1) / n``.

    >>> kl_bon(1), round(kl_bon(2), 6), round(kl_bon(64), 4)
    (0.0, 0.193147, 3.1745)
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    return math.log(n) - (n - 1) / n


@dataclass(frozen=True)
class Context:
    """One reply of the base to the user: where a pool of candidates is drawn."""

    seed: int  # the episode's
    observation: str  # what the base read before its reply
    turns: tuple[dict[str, str], ...]  # the transcript before the reply (the RM's context)
    request: Any  # the ChatAct the reply answers
    reply: str  # the base's own (greedy) reply


@dataclass(frozen=True)
class Proxy:
    """A proxy reward: one reward model (``combine`` None) or an ensemble of proxies."""

    name: str
    rm: tuple[str, ...]  # reward model directories, "shipped" for the env's default
    combine: str | None = None  # an ensemble's rule (ENSEMBLE_COMBINES)
    members: tuple[str, ...] = ()  # an ensemble's member proxies, by name

    def describe(self) -> dict[str, Any]:
        """The output's ``proxy`` entry: ``{"rm": [dirs], "combine": rule or None}``."""
        out: dict[str, Any] = {"rm": list(self.rm), "combine": self.combine}
        return out | ({"members": list(self.members)} if self.members else {})


def parse_proxy(spec: str) -> Proxy:
    """A ``--proxy`` spec: ``NAME=DIR`` (a reward model directory that ``dialog-bench train
    rm`` wrote; ``shipped`` the env's default) or ``shipped`` alone.

    >>> parse_proxy("shipped"), parse_proxy("copy=shipped").name
    (Proxy(name='shipped', rm=('shipped',), combine=None, members=()), 'copy')
    >>> parse_proxy("runs/rm")
    Traceback (most recent call last):
    ...
    ValueError: --proxy 'runs/rm': write NAME=DIR (a reward model directory, or shipped)
    """
    name, sep, rm = spec.partition("=")
    if not sep and spec == SHIPPED:
        name, rm = SHIPPED, SHIPPED
    if not name.strip() or not rm.strip() or "," in name or ":" in name:
        raise ValueError(f"--proxy {spec!r}: write NAME=DIR (a reward model directory, or shipped)")
    if rm != SHIPPED and not Path(rm).is_dir():
        raise ValueError(f"--proxy {spec!r}: no reward model directory at {rm}")
    return Proxy(name.strip(), (rm,))


def parse_ensemble(spec: str, proxies: Sequence[Proxy]) -> Proxy:
    """An ``--ensemble`` spec: ``NAME=A,B[,...]:mean`` or ``:worst``, of ``--proxy`` names.

    >>> shipped, other = parse_proxy("shipped"), parse_proxy("copy=shipped")
    >>> e = parse_ensemble("both=shipped,copy:worst", [shipped, other])
    >>> e.rm, e.combine, e.members
    (('shipped', 'shipped'), 'worst', ('shipped', 'copy'))
    """
    from dialog_env.tasks.chat.reward_model import ENSEMBLE_COMBINES

    name, sep, rest = spec.partition("=")
    members, colon, combine = rest.rpartition(":")
    names = [m.strip() for m in members.split(",")]
    by_name = {p.name: p for p in proxies}
    if not sep or not colon or not name.strip() or combine not in ENSEMBLE_COMBINES:
        raise ValueError(
            f"--ensemble {spec!r}: write NAME=A,B,...:mean or :worst (A, B: --proxy names)"
        )
    if len(names) < 2 or len(set(names)) < len(names):
        raise ValueError(f"--ensemble {spec!r}: an ensemble needs two or more distinct members")
    unknown = [m for m in names if m not in by_name]
    if unknown:
        raise ValueError(f"--ensemble {spec!r}: {', '.join(unknown)} is no --proxy name")
    rms = tuple(by_name[m].rm[0] for m in names)
    return Proxy(name.strip(), rms, combine, tuple(names))


class _Recording:
    """A message source that remembers each episode's observations, in order."""

    def __init__(self, source: Any):
        self.source, self.batch_size = source, source.batch_size
        self.seen: dict[int, list[str]] = {}

    def start(self, index: int, seed: int) -> None:
        self.source.start(index, seed)

    def finish(self, index: int) -> None:
        self.source.finish(index)

    def messages(self, running: Sequence[tuple[int, str]]) -> list[str]:
        out = self.source.messages(running)
        for index, observation in running:
            self.seen.setdefault(index, []).append(observation)
        return out


def collect_contexts(base: Any, episode_set: Any, batch_size: int = 16) -> list[Context]:
    """Every reply of ``base`` to the user on ``episode_set``'s episodes, played greedily as
    the leaderboard plays them, in episode and turn order (module docstring)."""
    import gymnasium as gym

    import dialog_env  # noqa: F401  (registers the ids)
    from dialog_env.tasks.booking.tools import is_tool_call
    from leaderboard.rollout import AgentMessages, play_episodes

    source = _Recording(AgentMessages(lambda: base, batch_size))
    records = play_episodes(source, episode_set, progress=False)
    env = gym.make(episode_set.env_id, **episode_set.env_kwargs)
    contexts = []
    try:
        for index, record in enumerate(records):
            env.reset(seed=record["seed"])
            goal = env.unwrapped.task.goal
            turns = record["turns"]
            at = [i for i, t in enumerate(turns) if t["role"] == "assistant"]
            if len(at) != len(source.seen[index]):
                raise RuntimeError(f"episode {record['seed']}: messages and observations differ")
            seen = zip(at, source.seen[index], strict=True)
            replies = [(i, o) for i, o in seen if not is_tool_call(turns[i]["text"])]
            for k, (i, observation) in enumerate(replies):
                context = tuple({"role": t["role"], "text": t["text"]} for t in turns[:i])
                reply = turns[i]["text"]
                contexts.append(Context(record["seed"], observation, context, goal[k], reply))
    finally:
        env.close()
    return contexts


def sample_pools(
    base: Any,
    contexts: Sequence[Context],
    size: int,
    temperature: float = 1.0,
    max_chars: int = 500,
    rows_per_decode: int = ROWS_PER_DECODE,
) -> list[list[str]]:
    """``size`` candidates per context sampled by ``base`` at ``temperature``, each prompt
    prefilled once (:meth:`~agents.best_of_n.BestOfNAgent.sample_replies`), about
    ``rows_per_decode`` candidates decoded side by side; each normalized as the env
    normalizes a message of at most ``max_chars``."""
    from agents.best_of_n import BestOfNAgent
    from dialog_env.text import normalize_message

    sampler = BestOfNAgent(base, None, n=1, temperature=temperature)
    step = max(1, rows_per_decode // size)
    pools: list[list[str]] = []
    for start in range(0, len(contexts), step):
        chunk = [c.observation for c in contexts[start : start + step]]
        pools += sampler.sample_replies(chunk, size)
    return [[normalize_message(t, max_chars)[0] for t in pool] for pool in pools]


def gold_scores(contexts: Sequence[Context], pools: Sequence[Sequence[str]]) -> np.ndarray:
    """The gold judge's score of every candidate, ``(contexts, pool)``; a tool call too."""
    from dialog_env.tasks.booking.domain import load_database
    from dialog_env.tasks.chat.judge import gold_terms

    db, _ = load_database()
    return np.array(
        [
            [gold_terms(text, c.request, db)["gold"] for text in pool]
            for c, pool in zip(contexts, pools, strict=True)
        ],
        dtype=float,
    )


def proxy_scores(
    reward_model: Any,
    contexts: Sequence[Context],
    pools: Sequence[Sequence[str]],
    batch_size: int = 64,
) -> np.ndarray:
    """A reward model's normalized score of every candidate, ``(contexts, pool)``: each
    distinct reply of a context scored once, in batches (:meth:`RewardModel.score`)."""
    rows: dict[tuple[int, str], int] = {}
    for c, pool in enumerate(pools):
        for text in pool:
            rows.setdefault((c, text), len(rows))
    keys = list(rows)
    scores = reward_model.score(
        [contexts[c].turns for c, _ in keys], [text for _, text in keys], batch_size
    )
    return np.array([[scores[rows[c, t]] for t in pool] for c, pool in enumerate(pools)])


def expected_best_of_n(proxy: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Per context (row), the expected ``values`` of the candidate with the highest
    ``proxy`` among ``n`` drawn without replacement from the row's ``N``: the sum over
    ascending ranks ``i`` of ``values_(i) * C(i - 1, n - 1) / C(N, n)``. Ties are broken by
    position: of equal proxies the earlier candidate ranks higher (the first ``argmax``).

    >>> proxy = np.array([[0.1, 0.9, 0.5]]); gold = np.array([[1.0, 0.0, 0.5]])
    >>> expected_best_of_n(proxy, gold, 1), expected_best_of_n(proxy, gold, 3)
    (array([0.5]), array([0.]))
    >>> expected_best_of_n(proxy, gold, 2)  # {0,1}: 0, {0,2}: 0.5, {1,2}: 0
    array([0.16666667])
    """
    proxy, values = np.atleast_2d(proxy), np.atleast_2d(values)
    if proxy.shape != values.shape:
        raise ValueError(f"proxy {proxy.shape} and values {values.shape} differ in shape")
    size = proxy.shape[1]
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= size:
        raise ValueError(f"n must be an int in 1..{size} (the pool), got {n!r}")
    if not np.isfinite(proxy).all():
        raise ValueError("the proxy scores must be finite")
    position = np.broadcast_to(np.arange(size), proxy.shape)
    order = np.lexsort((-position, proxy), axis=-1)  # ascending; ties: later draw first
    ranked = np.take_along_axis(values, order, axis=-1)
    total = math.comb(size, n)
    weights = np.array([math.comb(i - 1, n - 1) / total for i in range(1, size + 1)])
    return ranked @ weights


def mean_se(values: Sequence[float] | np.ndarray) -> tuple[float, float]:
    """The mean of ``values`` and its standard error (0 for one value).

    >>> mean_se([1.0, 2.0, 3.0])
    (2.0, 0.5773502691896258)
    """
    v = np.asarray(values, dtype=float)
    se = float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else 0.0
    return float(v.mean()), se


def curve_points(proxy: np.ndarray, gold: np.ndarray, ns: Sequence[int]) -> list[dict]:
    """The curve of one proxy: per ``n``, best-of-n's expected gold (``dev_gold``) and
    proxy score (``dev_return``) over the pools (``(contexts, N)`` scores), each the mean
    over contexts with its standard error, at ``KL_bon(n)``; ``context_gold``: the
    per-context expected gold (6 decimals, contexts in one order at every ``n``), which
    lets a difference of two points be tested paired over the contexts they share
    (:func:`leaderboard.overopt_verdicts.difference_se`).

    >>> [p["dev_return"] for p in curve_points(np.array([[0.0, 1.0]]), np.ones((1, 2)), [1, 2])]
    [0.5, 1.0]
    """
    points = []
    for n in ns:
        per_context = expected_best_of_n(proxy, gold, n)
        dev_gold, gold_se = mean_se(per_context)
        dev_return, return_se = mean_se(expected_best_of_n(proxy, proxy, n))
        kl = kl_bon(n)
        points.append(
            {
                "n": n,
                "kl": kl,
                "sqrt_kl": math.sqrt(kl),
                "dev_gold": dev_gold,
                "dev_gold_se": gold_se,
                "dev_return": dev_return,
                "dev_return_se": return_se,
                "context_gold": [round(float(g), 6) for g in per_context],
            }
        )
    return points


def _load_scorers(proxies: Sequence[Proxy]) -> dict[str, Any]:
    from dialog_env.tasks.chat.reward_model import RewardModel

    return {p.name: RewardModel.load(None if p.rm[0] == SHIPPED else p.rm[0]) for p in proxies}


def pool_curve(
    init: Path,
    ns: Sequence[int],
    proxies: Sequence[Proxy],
    episodes: str = "dev",
    limit: int | None = 50,
    temperature: float = 1.0,
    batch_size: int = 16,
) -> dict[str, Any]:
    """The curves of every proxy (module docstring): ``{"curves": {name: {"proxy",
    "points"}}, ...}``, the pool ``N = max(ns)``; ``proxies`` holds single reward models
    (:func:`parse_proxy`) first, then ensembles of them (:func:`parse_ensemble`)."""
    from agents.lm_agent import LMAgent
    from dialog_env.tasks.booking.tools import is_tool_call
    from dialog_env.tasks.chat.reward_model import combine_scores
    from leaderboard.episodes import get_episode_set

    if not proxies or len({p.name for p in proxies}) < len(proxies):
        raise ValueError("give one or more proxies, each under a name of its own")
    for n in ns:
        kl_bon(n)  # checks n
    size, clock = max(ns), {"started": (time.perf_counter(), time.process_time())}
    base = LMAgent.load(Path(init))
    episode_set = get_episode_set(ENV_ID, episodes, limit)
    contexts = collect_contexts(base, episode_set, batch_size)
    if not contexts:
        raise ValueError(f"the base replied to no request on {episode_set.id}")
    clock["play"] = (time.perf_counter(), time.process_time())
    max_chars = episode_set.env_kwargs["max_message_chars"]
    pools = sample_pools(base, contexts, size, temperature, max_chars)
    clock["sample"] = (time.perf_counter(), time.process_time())
    gold = gold_scores(contexts, pools)
    scorers = _load_scorers([p for p in proxies if p.combine is None])
    scored: dict[int, np.ndarray] = {}  # one reward model under two names is scored once
    for rm in scorers.values():
        if id(rm) not in scored:
            scored[id(rm)] = proxy_scores(rm, contexts, pools)
    scores = {name: scored[id(rm)] for name, rm in scorers.items()}
    for p in proxies:
        if p.combine is not None:
            scores[p.name] = combine_scores(np.stack([scores[m] for m in p.members]), p.combine)
    clock["score"] = (time.perf_counter(), time.process_time())
    curves = {
        p.name: {"proxy": p.describe(), "points": curve_points(scores[p.name], gold, ns)}
        for p in proxies
    }
    phases = ("play", "sample", "score")
    marks = [clock["started"], *(clock[k] for k in phases)]
    spent = {  # per phase: wall seconds, then this process's CPU seconds
        k: [round(b[i] - a[i], 1) for i in (0, 1)]
        for k, a, b in zip(phases, marks[:-1], marks[1:], strict=True)
    }
    return {
        "kind": "best-of-n curve",
        "estimator": "pool",
        "env_id": ENV_ID,
        "episode_set": episode_set.id,
        "episode_set_sha256": episode_set.sha256,
        "init": str(init),
        "temperature": temperature,
        "pool": size,
        "contexts": len(contexts),
        "tool_call_candidates": float(np.mean([is_tool_call(t) for p in pools for t in p])),
        "distinct_candidates": float(np.mean([len(set(p)) / size for p in pools])),
        "kl": "KL_bon = log n - (n - 1) / n nats per reply (exact for distinct draws)",
        "seconds_by_phase": {k: wall for k, (wall, _) in spent.items()},
        "cpu_seconds_by_phase": {k: cpu for k, (_, cpu) in spent.items()},
        "curves": curves,
    }
