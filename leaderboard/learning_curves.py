"""Learning curves: each shipped checkpoint's dev measure against its training budget.

Every trainer writes, into its checkpoint's ``manifest.json``, the points at which it
scored the policy on held-out episodes. Trainers on the kit (``baselines.common``) write
one format, a ``curve`` of dev points (``dev_success``, ``dev_return``, ``dev_gold`` on
chat) placed by ``env_steps`` (RL, SB3 included: it now scores the leaderboard's dev
episodes) or ``demo_episodes_seen`` (SFT). Four formats are shipped, all read here into
one shape (:class:`LearningCurve`: per budget unit, ``(budget, measure)`` points):

- ``train grpo``: ``curve`` of ``{iteration, env_steps, dev_success, dev_return,
  dev_gold (chat), dev_rm, kl, kl_token}``;
- ``train sft``: ``curve`` of ``{step, tokens, demo_episodes_seen, dev_success}`` (placed by
  ``tokens``, the tokens trained on so far: the board's trained tokens)
  (``dev_gold`` on the chat task);
- ``train sb3``: ``curve`` of ``{env_steps, eval_success, eval_mean_reward}``, scored by
  SB3's ``EvalCallback`` on the trainer's own episodes (train-split goals), not on the
  leaderboard's dev set: :attr:`LearningCurve.on_dev` is False;
- ``train ppo`` (token PPO): ``dev_history`` of ``{iteration, env_steps, dev_success,
  dev_return}``. Checkpoints written before ``env_steps`` was recorded per point have
  ``{iteration, dev_success, dev_return}`` only; their env steps are exact all the same,
  since an iteration plays ``messages_per_env`` messages in each of ``num_envs``
  sub-envs (``baselines.ppo_rollout.Conversations.collect``), one env step each: after
  iteration ``i``, ``i * num_envs * messages_per_env``, which must come to the
  manifest's ``budget.env_steps`` after the last one, or the curve is refused.

A manifest without any (older SFT checkpoints record only their final dev success) has
no curve. :func:`entry_curves` finds the manifest of every row of a leaderboard that is
a shipped checkpoint and says, for every other trained row, why it has no curve.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from leaderboard.standings import SetStandings
from leaderboard.store import VERIFIED

__all__ = [
    "CURVE_UNITS",
    "MEASURE_KEYS",
    "LearningCurve",
    "SetCurves",
    "entry_curves",
    "learning_curve",
]

#: Budget units a curve point can be placed by, in panel order, with their axis labels,
#: in the board's one vocabulary (:mod:`leaderboard.budget`): env steps for RL, trained
#: tokens for SFT.
CURVE_UNITS = {
    "env_steps": "env steps",
    "trained_tokens": "trained tokens",
}
#: The point keys each unit is read from, in order: an SFT point's ``tokens`` are the
#: tokens trained on so far (``train sft``, before the one vocabulary).
_UNIT_KEYS = {"env_steps": ("env_steps",), "trained_tokens": ("trained_tokens", "tokens")}
#: Per leaderboard measure (``SetStandings.ranked_by``), the point keys that hold it, in
#: order of preference, and what episodes each was scored on.
MEASURE_KEYS = {
    "success": {
        "dev_success": "the dev episodes",
        "eval_success": "the trainer's own episodes (SB3's EvalCallback, train-split goals)",
    },
    "gold": {"dev_gold": "the dev episodes"},
}


@dataclass(frozen=True)
class LearningCurve:
    """One training run's measure against its budget, as its manifest recorded it.

    ``points``: per budget unit (:data:`CURVE_UNITS`), ``(budget, measure)`` in the order
    they were scored; ``key``: the point key the measure was read from
    (``"dev_success"``, ``"dev_gold"``, ``"eval_success"``).
    """

    points: dict[str, list[tuple[float, float]]]
    key: str

    @property
    def on_dev(self) -> bool:
        """Whether the points were scored on the leaderboard's dev episodes."""
        return self.key.startswith("dev_")


def _number(value: Any, what: str) -> float:
    if value is None:
        raise ValueError(f"{what} is missing")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{what} must be a finite number, got {value!r}")
    return float(value)


def _token_ppo_env_steps(manifest: dict, points: list) -> list[float]:
    """The exact env steps of each ``dev_history`` point of a token-PPO manifest that did
    not record them (see the module docstring), or a ValueError that says why not."""
    config, budget = manifest.get("config"), manifest.get("budget")
    if not isinstance(config, dict) or not isinstance(budget, dict):
        raise ValueError("dev_history has no env_steps, and no config and budget to derive them")
    try:
        per = int(_number(config["num_envs"], "config num_envs")) * int(
            _number(config["messages_per_env"], "config messages_per_env")
        )
        iterations = _number(config["iterations"], "config iterations")
        total = _number(budget["env_steps"], "budget env_steps")
    except KeyError as err:
        raise ValueError(f"dev_history has no env_steps, and the manifest no {err}") from None
    if iterations * per != total:
        raise ValueError(
            f"dev_history has no env_steps, and {iterations:g} iterations of {per} messages "
            f"do not make the budget's {total:g} env steps"
        )
    return [per * _number(p.get("iteration"), f"dev_history[{i}] iteration") for i, p in points]


def learning_curve(manifest: dict, measure: str = "success") -> LearningCurve | None:
    """The learning curve a checkpoint's manifest recorded, of ``measure`` (``"success"``
    or ``"gold"``, what the leaderboard ranks the set by); None when the manifest holds no
    curve of that measure. A curve that is there but malformed (a point that is not an
    object, lacks its budget or measure, holds a non-number, a measure outside [0, 1] or
    a budget that shrinks) is a ``ValueError`` that says which point and why.

    >>> grpo = {"curve": [{"iteration": 0, "env_steps": 0, "dev_success": 0.2},
    ...                   {"iteration": 5, "env_steps": 1800, "dev_success": 0.5}]}
    >>> learning_curve(grpo)
    LearningCurve(points={'env_steps': [(0.0, 0.2), (1800.0, 0.5)]}, key='dev_success')
    >>> sft = {"curve": [{"step": 200, "tokens": 7e5, "demo_episodes_seen": 1172.3,
    ...                   "dev_gold": 0.04}]}
    >>> learning_curve(sft, "gold").points
    {'trained_tokens': [(700000.0, 0.04)]}
    >>> learning_curve(sft, "success") is None  # it recorded gold only
    True
    >>> learning_curve({"curve": [{"env_steps": 10, "dev_success": "high"}]})
    Traceback (most recent call last):
    ...
    ValueError: curve[0] dev_success must be a finite number, got 'high'
    """
    if measure not in MEASURE_KEYS:
        raise ValueError(f"measure must be one of {', '.join(MEASURE_KEYS)}, got {measure!r}")
    name = "curve" if "curve" in manifest else "dev_history"
    raw = manifest.get(name)
    if raw is None:
        return None
    if not isinstance(raw, list) or not all(isinstance(p, dict) for p in raw):
        raise ValueError(f"{name} must be a list of objects")
    if not raw:
        return None
    key = next((k for k in MEASURE_KEYS[measure] if any(k in p for p in raw)), None)
    if key is None:
        return None
    points = list(enumerate(raw))
    unit, source = next(
        ((u, k) for u in CURVE_UNITS for k in _UNIT_KEYS[u] if k in raw[0]), (None, None)
    )
    if unit is not None:
        xs = [_number(p.get(source), f"{name}[{i}] {source}") for i, p in points]
    elif name == "dev_history":
        unit, xs = "env_steps", _token_ppo_env_steps(manifest, points)
    else:
        raise ValueError(f"curve[0] has no budget: none of {', '.join(CURVE_UNITS)}")
    ys = [_number(p.get(key), f"{name}[{i}] {key}") for i, p in points]
    for i, (x, y) in enumerate(zip(xs, ys, strict=True)):
        if not 0 <= y <= 1:
            raise ValueError(f"{name}[{i}] {key} must lie in [0, 1], got {y!r}")
        if x < 0:
            raise ValueError(f"{name}[{i}] {unit} must not be negative, got {x:g}")
        if i and x < xs[i - 1]:
            raise ValueError(f"{name}[{i}] {unit} {x:g} is below the budget before it")
    return LearningCurve({unit: list(zip(xs, ys, strict=True))}, key)


@dataclass(frozen=True)
class SetCurves:
    """The learning curves of one episode set's rows: ``curves`` by entry name, and by
    entry name why each other trained row has none (untrained rows need none)."""

    curves: dict[str, LearningCurve] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)


def entry_curves(standings: SetStandings, checkpoints: dict[str, Path] | None = None) -> SetCurves:
    """The learning curve of every row of ``standings`` that is a checkpoint of
    ``checkpoints`` (default: the shipped ones, ``agents.shipped_checkpoints``), read
    from its manifest; reads JSON only. A row gets one when it is verified (the
    leaderboard played the checkpoint itself; a declared row's name is the submitter's
    word), the checkpoint's manifest budget is the one its results header states (else
    the manifest is of another run than the one that played), and the manifest holds a
    well-formed curve of the set's measure. Every other row with a training budget is
    in ``missing`` with the reason, so one bad manifest never stops the page."""
    from agents import shipped_checkpoints
    from dialog_env.bounded_json import read_json_file
    from leaderboard.agent_card import MANIFEST, MAX_MANIFEST_BYTES, manifest_budget

    checkpoints = shipped_checkpoints() if checkpoints is None else checkpoints
    out = SetCurves()
    for entry in standings.entries:
        if not entry.budget:
            continue  # untrained (expert, random): nothing to draw a curve of
        directory = checkpoints.get(entry.name)
        if entry.labels != VERIFIED:
            out.missing[entry.name] = "declared entry, no manifest read"
            continue
        if directory is None:
            out.missing[entry.name] = "not a shipped checkpoint"
            continue
        try:
            path = directory / MANIFEST
            manifest = read_json_file(path, MAX_MANIFEST_BYTES) if path.is_file() else {}
            if manifest_budget(manifest, path) != entry.budget:
                out.missing[entry.name] = "its manifest's budget is not the one that was played"
                continue
            curve = learning_curve(manifest, standings.ranked_by)
        except ValueError as err:
            out.missing[entry.name] = f"unreadable curve: {err}"
            continue
        if curve is None:
            out.missing[entry.name] = "no curve recorded"
        else:
            out.curves[entry.name] = curve
    return out
