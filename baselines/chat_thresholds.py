"""Which ``spec.reward_threshold`` of the chat ids a seed user can trust (issue 27, item 5).

The seed's loop (``gym.make("ChatGPT-v1")``, ``action_space.sample()`` messages, then
``total_reward > env.spec.reward_threshold``) should print ``False`` for random letters
and ``True`` for good answers. This module plays seeded episodes of the chat env with
two policies and reports, for each candidate threshold, the share of returns above it:

- ``random``: the seed's loop itself, seed ``s`` for the env and for its action space;
- ``chat-expert``: :class:`agents.chat_expert.ChatExpertAgent`, seeded the same.

A threshold is trusted when random letters exceed it in under 0.5% of the episodes and
the expert in at least 95%. The thresholds that meet both form one interval (the fewer
random returns above it, the higher it lies; the more expert returns, the lower):
:func:`choose_threshold` takes its midpoint, the threshold with the most room on both
sides, rounded to two decimals when that stays inside, and ``--choose`` prints it for
``dialog_env/registration.py``. Beside the raw returns (the env's ``reward="rm"``: the mean
normalized RM score over the requests) it records, per reply, the RM's score of a fixed
*reference reply* in the same context, so that a normalization relative to the context
(``score - score(reference)``) can be judged on the same episodes without playing them
again.

    python -m baselines.chat_thresholds --episodes 1000 --choose --out runs/chat-thresholds.json
    python -m baselines.chat_thresholds --from runs/chat-thresholds.json --choose \
        --out runs/chat-thresholds-again.json   # the same choice, no episode played again

``--rm DIR`` plays (and scores the negatives) with another reward model than the shipped
one (the env's ``reward_model=DIR``), e.g. one trained on prefs with the ``sampled``
generator, before it ships.

Why no threshold may exist: :func:`negatives_report` puts, in the same grounded contexts,
the good answer against the prefs' ``random`` generator's negatives (lower-case letters
and spaces) and against ``action_space.sample()`` strings (the prefs' ``sampled``
generator: printable ASCII, up to 500 characters), and counts how often each outscores
it. The shipped RM never saw the second kind in training. It also scores such strings
where the seed's loop sends them, in the context before its searches (the loop never
searches; every prefs context ends with them), against the good answer in the searched
one, which is what the raw scale compares:

    python -m baselines.chat_thresholds --negatives 50 --out runs/chat-negatives.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "POLICIES",
    "REFERENCE_REPLIES",
    "ThresholdChoice",
    "choice_line",
    "choose_threshold",
    "main",
    "negatives_report",
    "play_scored",
    "relative_return",
    "scaled_returns",
    "separating_thresholds",
    "shares_above",
    "unsearched",
]

ENV_ID = "Dialog-Chat-v1"
POLICIES = ("random", "chat-expert")
#: Candidate zero points of a relative normalization, scored in each reply's context: a
#: polite non-answer and random letters (what the seed's loop sends).
REFERENCE_REPLIES = {"non-answer": "Sorry, I cannot help with that.", "letters": "xq zzk wpl"}
#: What a trusted threshold must separate: random above it, expert above it.
RANDOM_MAX, EXPERT_MIN = 0.005, 0.95


def play_scored(
    policy: str, seeds: Sequence[int], reward_model: str | Path | None = None
) -> list[dict]:
    """One record per seed: ``return`` (the env's, ``reward="rm"`` with ``reward_model``,
    default the shipped RM), ``gold`` (the mean gold score), the RM score of each reply
    (``rm``) and of each of :data:`REFERENCE_REPLIES` in the same context (``reference``:
    name -> scores)."""
    import gymnasium as gym

    import dialog_env  # noqa: F401  (registers the ids)
    from agents.chat_expert import ChatExpertAgent

    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {POLICIES}, got {policy!r}")
    env = gym.make(ENV_ID, **({} if reward_model is None else {"reward_model": str(reward_model)}))
    rm = env.unwrapped.task.reward_model
    expert = ChatExpertAgent()
    records = []
    for seed in seeds:
        obs, info = env.reset(seed=seed)
        env.action_space.seed(seed)
        expert.reset(seed)
        total, rm_scores, done = 0.0, [], False
        ref_scores: dict[str, list[float]] = {name: [] for name in REFERENCE_REPLIES}
        while not done:
            action = env.action_space.sample() if policy == "random" else expert.act(obs)
            context = list(env.unwrapped.task.history)
            obs, reward, terminated, truncated, info = env.step(action)
            total += reward
            done = terminated or truncated
            if "rm" in info:  # a reply (not a tool call) was scored
                rm_scores.append(info["rm"])
                for name, reference in REFERENCE_REPLIES.items():
                    ref_scores[name].append(rm.score_one(context, reference))
        records.append(
            {
                "seed": seed,
                "return": total,
                "gold": info["metrics"]["mean_gold"],
                "requests": info["metrics"]["requests"],
                "rm": rm_scores,
                "reference": ref_scores,
            }
        )
    return records


def shares_above(values: Sequence[float], thresholds: Sequence[float]) -> list[float]:
    """The share of ``values`` strictly above each threshold.

    >>> shares_above([0.0, 1.0, 2.0, 3.0], [0.5, 2.0])
    [0.75, 0.25]
    """
    v = np.asarray(values, dtype=float)
    return [float(np.mean(v > t)) for t in thresholds]


def separating_thresholds(
    random: Sequence[float], expert: Sequence[float], grid: Sequence[float]
) -> list[float]:
    """The thresholds of ``grid`` that random returns exceed in under ``RANDOM_MAX`` of
    episodes and expert returns in at least ``EXPERT_MIN``.

    >>> separating_thresholds([0.0] * 300, [1.0] * 300, [-0.5, 0.5, 1.5])
    [0.5]
    """
    return [
        t
        for t, r, e in zip(
            grid, shares_above(random, grid), shares_above(expert, grid), strict=True
        )
        if r < RANDOM_MAX and e >= EXPERT_MIN
    ]


@dataclasses.dataclass(frozen=True)
class ThresholdChoice:
    """The trusted thresholds ``[lowest, highest)`` of one scan and the one chosen."""

    threshold: float
    lowest: float  #: the lowest trusted threshold (random's returns above it: few enough)
    highest: float  #: the trusted thresholds lie below it (expert's above it: enough)


def choose_threshold(random: Sequence[float], expert: Sequence[float]) -> ThresholdChoice | None:
    """The threshold of the rule (module docstring), or ``None`` when none is trusted.

    ``return > t`` for a share of random returns under :data:`RANDOM_MAX` holds exactly
    for ``t >= lowest`` (the (k+1)-th highest random return, k the most that may lie
    above); for a share of expert returns of at least :data:`EXPERT_MIN`, exactly for
    ``t < highest`` (the m-th highest expert return, m the fewest that must lie above).
    The choice is the midpoint of ``[lowest, highest)``, rounded to two decimals when
    that stays inside, else to three, else not rounded.

    >>> choose_threshold([-1.0] * 995 + [0.2] * 5, [0.9] * 950 + [-0.5] * 50)
    ThresholdChoice(threshold=0.55, lowest=0.2, highest=0.9)
    >>> choose_threshold([-1.0] * 990 + [0.2] * 10, [0.9] * 950 + [-0.5] * 50).lowest
    0.2
    >>> choose_threshold([0.5] * 1000, [0.4] * 1000) is None
    True
    """
    r = np.sort(np.asarray(random, dtype=float))[::-1]
    e = np.sort(np.asarray(expert, dtype=float))[::-1]
    if not (len(r) and len(e)):
        raise ValueError("choose_threshold needs returns of both policies")
    # k / len < RANDOM_MAX and m / len >= EXPERT_MIN, safe from 0.95 * 100 = 95.00000000000001
    allowed = int(np.ceil(RANDOM_MAX * len(r) - 1e-9)) - 1  # random returns that may lie above
    needed = int(np.ceil(EXPERT_MIN * len(e) - 1e-9))  # expert returns that must lie above
    lowest, highest = float(r[allowed]), float(e[needed - 1])
    if not lowest < highest:
        return None
    middle = (lowest + highest) / 2
    for digits in (2, 3):
        if lowest <= round(middle, digits) < highest:
            return ThresholdChoice(round(middle, digits), lowest, highest)
    return ThresholdChoice(middle, lowest, highest)


def relative_return(record: dict, reference: str) -> float:
    """The return if each reply scored ``rm - rm(reference reply)`` in its context
    (unanswered requests: 0).

    >>> relative_return({"rm": [1.0, 0.5], "reference": {"x": [0.5, 0.5]}, "requests": 2}, "x")
    0.25
    """
    diffs = np.subtract(record["rm"], record["reference"][reference])
    return float(diffs.sum() / record["requests"])


def _as_dict(choice: ThresholdChoice | None) -> dict[str, float] | None:
    return None if choice is None else dataclasses.asdict(choice)


def scaled_returns(records: dict[str, list[dict]]) -> dict[str, dict[str, list[float]]]:
    """Scale name -> policy -> its episodes' returns: ``raw`` (the env's return) and
    ``relative to <reference>`` (:func:`relative_return`, each of
    :data:`REFERENCE_REPLIES`)."""
    scales = {"raw": lambda r: r["return"]}
    for ref in REFERENCE_REPLIES:
        scales[f"relative to {ref}"] = lambda r, ref=ref: relative_return(r, ref)
    return {
        name: {p: [value(r) for r in records[p]] for p in POLICIES}
        for name, value in scales.items()
    }


def _report(records: dict[str, list[dict]], grid: list[float]) -> dict[str, Any]:
    out: dict[str, Any] = {"grid": grid}
    for name, returns in scaled_returns(records).items():
        out[name] = {
            "shares": {p: shares_above(returns[p], grid) for p in POLICIES},
            "random_max": max(returns["random"]),
            "expert_min": min(returns["chat-expert"]),
            "random_q995": float(np.quantile(returns["random"], 0.995)),
            "expert_q05": float(np.quantile(returns["chat-expert"], 0.05)),
            "separating": separating_thresholds(returns["random"], returns["chat-expert"], grid),
            "chosen": _as_dict(choose_threshold(returns["random"], returns["chat-expert"])),
        }
    return out


def unsearched(context: Sequence[dict]) -> list[dict]:
    """A grounded context without its searches: the turns up to its last user turn, the
    context in which the seed's loop (which never searches) replies.

    >>> unsearched([{"role": "user", "text": "hi"}, {"role": "assistant", "text": "[search]"},
    ...             {"role": "tool", "text": "none"}])
    [{'role': 'user', 'text': 'hi'}]
    """
    last_user = max(i for i, turn in enumerate(context) if turn["role"] == "user")
    return list(context[: last_user + 1])


def negatives_report(
    seeds: Sequence[int],
    sample_seed: int = 0,
    reward_model: str | Path | None = None,
    draws: int = 4,
) -> dict[str, Any]:
    """In each grounded context of a ``good``-vs-``random`` prefs file on ``seeds``: the
    share of contexts where the RM (``reward_model``, default the shipped one) scores the
    random-letter negative above the good answer, and where it scores an
    ``action_space.sample()`` string (the ``sampled`` generator's, drawn from
    ``sample_seed``) above it. Then, as the seed's loop meets them, ``draws`` such
    strings a context scored in the context without its searches (:func:`unsearched`)
    against the good answer in its grounded one (the raw scale's comparison: the loop's
    reply against the expert's), with the lengths of those that score above it."""
    from baselines.prefs import generate_prefs
    from dialog_env.tasks.chat.answers import sampled_message
    from dialog_env.tasks.chat.reward_model import RewardModel

    pairs, _ = generate_prefs(seeds, generators=["good", "random"])
    rm = RewardModel.load(reward_model)
    contexts = [p["context"] for p in pairs]
    side = {
        g: [p["a" if p["a"]["generator"] == g else "b"]["text"] for p in pairs]
        for g in ("good", "random")
    }
    rng = np.random.default_rng(sample_seed)
    scores = {
        "good": rm.score(contexts, side["good"]),
        "random letters": rm.score(contexts, side["random"]),
        "action_space.sample()": rm.score(contexts, [sampled_message(rng) for _ in pairs]),
    }
    loop_texts = [sampled_message(rng) for _ in range(draws) for _ in pairs]
    loop_scores = rm.score([unsearched(c) for _ in range(draws) for c in contexts], loop_texts)
    above = loop_scores > np.tile(scores["good"], draws)
    lengths = [len(t) for t in loop_texts]
    return {
        "seeds": {"first": min(seeds), "last": max(seeds)},
        "contexts": len(pairs),
        "above_good": {
            k: float(np.mean(v > scores["good"])) for k, v in scores.items() if k != "good"
        },
        "quantiles_1_5_50_99_max": {
            k: [round(float(q), 3) for q in np.quantile(v, [0.01, 0.05, 0.5, 0.99, 1.0])]
            for k, v in scores.items()
        },
        "unsearched": {
            "strings": len(loop_texts),
            "above_good": float(above.mean()),
            "lengths_above_good": sorted(n for n, a in zip(lengths, above, strict=True) if a),
            "under_15_chars": sum(n < 15 for n in lengths),
        },
    }


def _print_report(report: dict[str, Any], seeds_played: int) -> None:
    print(f"seeds 0-{seeds_played - 1}:", flush=True)
    for name, r in report.items():
        if name != "grid":
            print(
                f"  {name}: random max {r['random_max']:.3f} (99.5% "
                f"{r['random_q995']:.3f}), expert min {r['expert_min']:.3f} (5% "
                f"{r['expert_q05']:.3f}); separating: {r['separating'] or 'none'}",
                flush=True,
            )


def choice_line(returns: dict[str, list[float]], scale: str = "raw") -> str:
    """What ``--choose`` prints for one scale's returns (policy -> returns): the rule's
    threshold, the interval it was chosen from and the shares of each policy above it."""
    n = {p: len(v) for p, v in returns.items()}
    choice = choose_threshold(returns["random"], returns["chat-expert"])
    if choice is None:
        return (
            f"{scale}: no threshold is trusted on {n['random']} random and "
            f"{n['chat-expert']} chat-expert episodes (random above it in under "
            f"{RANDOM_MAX:.1%}, expert in at least {EXPERT_MIN:.0%})"
        )
    shares = {p: shares_above(returns[p], [choice.threshold])[0] for p in POLICIES}
    return (
        f"{scale}: reward_threshold {choice.threshold} (trusted: [{choice.lowest:.4f}, "
        f"{choice.highest:.4f})): random above it in {shares['random']:.1%} of "
        f"{n['random']} episodes, chat-expert in {shares['chat-expert']:.1%} of "
        f"{n['chat-expert']}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """The command (module docstring): play both policies on each chunk of seeds in turn,
    and write the report so far (the JSON) after each chunk, so a run cut short still
    reports on the seeds it played."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--episodes", type=int, default=1000, help="seeds 0..N-1 (train)")
    parser.add_argument("--chunk", type=int, default=50, help="seeds between two writes")
    parser.add_argument(
        "--negatives",
        type=int,
        default=0,
        metavar="N",
        help="instead: negatives_report on train seeds 1000-N..999 (module docstring)",
    )
    parser.add_argument(
        "--rm", type=Path, default=None, metavar="DIR", help="reward model (default: shipped)"
    )
    parser.add_argument(
        "--from",
        dest="source",
        type=Path,
        default=None,
        metavar="JSON",
        help="report on the episodes of an earlier run's JSON instead of playing",
    )
    parser.add_argument("--choose", action="store_true", help="print the rule's threshold")
    parser.add_argument("--out", type=Path, required=True, help="the JSON written")
    args = parser.parse_args(argv)
    command = " ".join(["python -m baselines.chat_thresholds", *(argv or sys.argv[1:])])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.negatives:
        report = negatives_report(range(1000 - args.negatives, 1000), reward_model=args.rm)
        args.out.write_text(json.dumps({"command": command, **report}, indent=1) + "\n")
        print(json.dumps(report, indent=1))
        return 0
    grid = [round(float(t), 2) for t in np.arange(-1.0, 1.01, 0.05)]
    if args.source is not None:
        records = json.loads(args.source.read_text())["episodes"]
        chunks = [range(len(records["random"]))]
    else:
        records = {p: [] for p in POLICIES}
        chunks = [
            range(start, min(start + args.chunk, args.episodes))
            for start in range(0, args.episodes, args.chunk)
        ]
    for seeds in chunks:
        if args.source is None:
            for policy in POLICIES:
                records[policy] += play_scored(policy, seeds, args.rm)
        report = _report(records, grid)
        payload = {"command": command, "seeds_played": seeds.stop, "report": report}
        args.out.write_text(json.dumps({**payload, "episodes": records}) + "\n")
        _print_report(report, seeds.stop)
    if args.choose:  # raw is the env's return; the others would need a new reward
        for scale, returns in scaled_returns(records).items():
            print(choice_line(returns, scale))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
