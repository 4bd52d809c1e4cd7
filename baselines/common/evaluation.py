"""Dev evaluation and the one keep-best rule every trainer selects its checkpoint by.

**Dev evaluation** (:func:`evaluate_on_dev`): the agent plays the first
``eval_episodes`` episodes of the leaderboard's dev set of its env id
(``leaderboard.episodes.get_episode_set(env_id, "dev", limit=...)``), the same seeds for
every paradigm, as the leaderboard plays it (greedy, batched); :func:`dev_scores` gives
the episodes' success rate, mean return and, where every episode's metrics hold them,
mean gold (``mean_gold``) and RM (``mean_rm``) scores.

**The keep-best rule** (:class:`KeepBest`, rule ``"dev-board-metric-then-return"``):
a trainer evaluates its policy at the start when it starts from a policy that can
already play (an RL run from an ``--init``; recorded as step 0), every ``eval_every``
updates, and at the end. It keeps the evaluation with the highest score, the tuple
(the task's board metric on dev: success rate for booking ids, mean gold for chat ids,
whichever the leaderboard ranks the episodes by; then dev mean return), compared
lexicographically; on an exact tie the earlier evaluation wins. The manifest gets the
rule's name, the kept step and score, every evaluation (``curve``) and, for a run that
evaluated its start, ``kept_start`` (true: the checkpoint holds the start's weights).

The reward model has no policy; its rule has the same shape on its own dev metric:
held-out pair accuracy, then negative held-out loss (``"heldout-pair-accuracy-then-
negative-loss"``). So has the slot tagger's: dev entity F1 (micro, over the slots), then
negative dev loss (``"dev-entity-f1-then-negative-loss"``).

>>> keep = KeepBest(step_key="iteration")
>>> keep.offer({"iteration": 0, "dev_success": 0.4, "dev_return": 0.1}, lambda: "start")
True
>>> keep.offer({"iteration": 5, "dev_success": 0.4, "dev_return": 0.1}, lambda: "tie")
False
>>> keep.offer({"iteration": 10, "dev_success": 0.5, "dev_return": -0.3}, lambda: "better")
True
>>> keep.state, keep.manifest()["kept_step"], keep.manifest()["kept_score"]
('better', 10, [0.5, -0.3])
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any

__all__ = [
    "DEV_RULE",
    "HELDOUT_RULE",
    "KEEP_RULES",
    "LAST_RULE",
    "TAGGER_RULE",
    "KeepBest",
    "dev_records",
    "dev_scores",
    "evaluate_on_dev",
]

DEV_RULE = "dev-board-metric-then-return"
HELDOUT_RULE = "heldout-pair-accuracy-then-negative-loss"
TAGGER_RULE = "dev-entity-f1-then-negative-loss"
#: Not a selection: the latest evaluation (``train grpo --keep last``, e.g. to ship a run's
#: over-optimized end on purpose); the manifest then names this rule instead.
LAST_RULE = "last-evaluation"


def _dev_score(point: dict[str, Any]) -> tuple[float, float]:
    """(the board metric on dev, dev mean return): gold where the episodes had it."""
    metric = "dev_gold" if "dev_gold" in point else "dev_success"
    return (float(point[metric]), float(point["dev_return"]))


def _heldout_score(point: dict[str, Any]) -> tuple[float, float]:
    return (float(point["heldout_pair_accuracy"]), -float(point["heldout_loss"]))


def _tagger_score(point: dict[str, Any]) -> tuple[float, float]:
    return (float(point["dev_entity_f1"]), -float(point["dev_loss"]))


#: Rule name -> the score of a curve point that the rule maximizes (a tuple, compared
#: lexicographically; ties keep the earlier point).
KEEP_RULES: dict[str, Callable[[dict[str, Any]], tuple[float, ...]]] = {
    DEV_RULE: _dev_score,
    HELDOUT_RULE: _heldout_score,
    TAGGER_RULE: _tagger_score,
    LAST_RULE: lambda point: (),  # every later point wins (see KeepBest.offer)
}


@dataclasses.dataclass
class KeepBest:
    """The evaluations of a run (its curve) and the one it keeps, by ``rule``.

    Args:
        rule: a name in :data:`KEEP_RULES`.
        step_key: the curve points' step field (``"iteration"``, ``"step"``,
            ``"env_steps"``), which the manifest's ``kept_step`` reports.
        start_evaluated: the run evaluated its start as step 0 (an RL run from an init):
            the manifest then says whether the kept evaluation is the start.
    """

    rule: str = DEV_RULE
    step_key: str = "step"
    start_evaluated: bool = False
    curve: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    kept: dict[str, Any] | None = None
    state: Any = None

    def __post_init__(self) -> None:
        if self.rule not in KEEP_RULES:
            raise ValueError(f"rule must be one of {', '.join(KEEP_RULES)}, got {self.rule!r}")

    def score(self, point: dict[str, Any]) -> tuple[float, ...]:
        """The point's score under the rule."""
        return KEEP_RULES[self.rule](point)

    def offer(self, point: dict[str, Any], state: Callable[[], Any]) -> bool:
        """Add an evaluation to the curve; keep a deep copy of ``state()`` when it beats
        every earlier one (strictly: an exact tie keeps the earlier). Whether it was kept."""
        self.curve.append(point)
        later = self.rule == LAST_RULE
        if self.kept is not None and not later and not self.score(point) > self.score(self.kept):
            return False
        self.kept, self.state = point, copy.deepcopy(state())
        return True

    def manifest(self) -> dict[str, Any]:
        """What the manifest records of the selection: the rule, the kept step and score,
        ``kept_start`` where the start was evaluated, and every evaluation."""
        kept = self.kept
        out: dict[str, Any] = {
            "keep_rule": self.rule,
            "kept_step": None if kept is None else kept[self.step_key],
            "kept_score": None if kept is None else list(self.score(kept)),
            "curve": self.curve,
        }
        if self.start_evaluated:
            out["kept_start"] = kept is not None and kept is self.curve[0]
        return out


def dev_records(
    agent: Any,
    env_id: str,
    episodes: int,
    env_kwargs: dict[str, Any] | None = None,
    progress: bool = False,
) -> list[dict[str, Any]]:
    """The results records of ``agent`` on the first ``episodes`` dev episodes of
    ``env_id``: the leaderboard's seeds, the env built with ``env_kwargs`` over the
    spec's kwargs (e.g. ``{"reward": "gold"}``; the set's hash then says so)."""
    from leaderboard.episodes import get_episode_set
    from leaderboard.rollout import AgentMessages, play_episodes

    episode_set = get_episode_set(env_id, "dev", limit=episodes)
    if env_kwargs:
        spec = episode_set.env_spec
        episode_set = dataclasses.replace(
            episode_set, env_spec={**spec, "kwargs": {**spec["kwargs"], **env_kwargs}}
        )
    return play_episodes(
        AgentMessages(lambda: agent, batch_size=32), episode_set, progress=progress, desc="dev"
    )


def dev_scores(records: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Mean success and return of some episodes' records, and their mean ``gold`` and
    ``rm`` scores where every episode's metrics hold them (``mean_gold``, ``mean_rm``).

    >>> dev_scores([{"success": False, "return": 0.5, "metrics": {"mean_gold": 0.4}},
    ...             {"success": True, "return": 1.0, "metrics": {"mean_gold": 1.0}}])
    {'success': 0.5, 'return': 0.75, 'gold': 0.7}
    """
    n = len(records)
    if not n:
        raise ValueError("no episodes to score")
    out = {
        "success": sum(bool(r["success"]) for r in records) / n,
        "return": math.fsum(r["return"] for r in records) / n,
    }
    for name, key in (("gold", "mean_gold"), ("rm", "mean_rm")):
        if all(key in r["metrics"] for r in records):
            out[name] = math.fsum(r["metrics"][key] for r in records) / n
    return out


def evaluate_on_dev(
    agent: Any,
    env_id: str,
    episodes: int,
    env_kwargs: dict[str, Any] | None = None,
    progress: bool = False,
    per_episode: bool = False,
) -> dict[str, Any]:
    """:func:`dev_scores` of ``agent`` on the first ``episodes`` dev episodes, keyed as a
    curve point's fields: ``dev_success``, ``dev_return``, and ``dev_gold``, ``dev_rm``
    where the episodes carry them.

    With ``per_episode``, a chat point also holds ``context_gold``: each episode's mean
    gold, in the episode set's order. Two points of one run then share their episodes,
    and :func:`leaderboard.overopt_verdicts.difference_se` compares them *paired*, as it
    does a best-of-n curve's points. A point of an env without gold (booking) holds
    ``episode_success`` instead, each episode's success (0 or 1) in the same order, so
    two runs' points compare paired too (``python -m bench.grpo_curves``)."""
    records = dev_records(agent, env_id, episodes, env_kwargs, progress)
    point: dict[str, Any] = {f"dev_{key}": value for key, value in dev_scores(records).items()}
    if per_episode and "dev_gold" in point:
        point["context_gold"] = [round(float(r["metrics"]["mean_gold"]), 6) for r in records]
    elif per_episode:
        point["episode_success"] = [int(bool(r["success"])) for r in records]
    return point
