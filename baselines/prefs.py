"""``dialog-bench prefs``: preference pairs on the chat task, labelled by the gold judge.

For each train seed the chat env (``Dialog-Chat-v1``, template voice, ``reward="gold"``)
plays an episode with the act interface's answerer: for each request it makes the
searches the request needs (:func:`dialog_env.tasks.chat.tracker.needed_search`: by name
for describe and compare, by wishes for recommend), then answers from what they showed.
Every request is a *grounded context*: the transcript up to the user's request, the
assistant's search call(s) and the tool's result(s), so a reply can be judged against what
its context shows. For each context two distinct generators of
:data:`dialog_env.tasks.chat.answers.REPLY_GENERATORS` (the good answerer, one that
invents a venue, one that omits facts, one about the wrong venue, a verbose one, a curt
one, random letters, and ``sampled``: what the env's ``action_space.sample()`` sends, as
the seed's random loop does) each write a reply from the venues the context's results showed (the
tracker's ``known``); the hidden gold judge scores both, and the label is drawn by
Bradley-Terry sampling on the gold difference with a seeded generator, then, as an
annotator's slip, flipped with probability ``flip_rate`` (AlpacaFarm's label noise:
Dubois et al. 2023 reproduced reward over-optimization only once 25% of the labels were
flipped):

    P(a preferred before the slip) = sigmoid((gold_a - gold_b) / tau)
    P(the label flipped)           = flip_rate, independently of the pair
    P(a preferred)                 = (1 - flip_rate) * s + flip_rate * (1 - s),  s: the sigmoid

Both draws come from the one label generator (seeded by ``--label-seed``): one uniform for
the Bradley-Terry label and, only when ``flip_rate > 0``, a second for the slip, so
``flip_rate`` 0 writes the very bytes it wrote before the flip existed, for the same
generators. The default generators are all of them; ``sampled`` joined them later (issue
27: no reward threshold separated the seed loop's messages from good answers until the
RM saw such messages), so a file made before that (the shipped chat RM's, sft-chat's) is
made again by naming the other seven: ``--generators good invents omits wrong verbose
curt random``.

The file is JSONL, one pair a line: ``seed``, ``context`` (turns ``{"role", "text"}``),
``request``, ``a`` and ``b`` (``text``, ``generator``, ``gold``), ``p_a`` (the
Bradley-Terry probability, before any slip), ``label`` (``"a"`` or ``"b"``), with
``flip_rate > 0`` also ``flipped`` (whether the slip turned the label), and
``chosen``/``rejected`` (the two texts, as TRL's reward trainer reads them). Beside it
``<name>.meta.json`` (as ``dialog-bench demos`` writes): format, env id and resolved spec
(``split="train"``), generators, ``tau``, ``flip_rate``, the share of labels flipped
(``flipped``), the label seed, the seeds, the number of pairs, the share labelled for the
higher gold, the JSONL's sha256 and the command. Seeds lie below the leaderboard's
``EVAL_SEED_FLOOR``: no pair comes from an evaluation episode. Nothing is pickled; the
file is plain JSON.

    dialog-bench prefs --num-episodes 500 --out data/prefs.jsonl
    dialog-bench prefs --num-episodes 500 --tau 0.1 --flip-rate 0.25 --out data/noisy.jsonl
"""

from __future__ import annotations

import argparse
import math
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from baselines.demos import load_demos, train_episodes, write_demos
from dialog_env.bounded_json import check_shape

__all__ = [
    "add_parser",
    "bt_probability",
    "generate_prefs",
    "label_pair",
    "load_prefs",
    "noisy_label",
    "main",
    "write_prefs",
]

ENV_ID = "Dialog-Chat-v1"
DEFAULT_TAU = 0.1
#: The default share of labels an annotator's slip flips (none: the labels are BT's).
DEFAULT_FLIP_RATE = 0.0
#: v2: grounded contexts (they end with the search results the reply answers from).
FORMAT = "dialog-bench prefs v2"


def bt_probability(gold_a: float, gold_b: float, tau: float) -> float:
    """``sigmoid((gold_a - gold_b) / tau)``: the chance that ``a`` is preferred.

    >>> bt_probability(0.9, 0.9, 0.1), round(bt_probability(1.0, 0.0, 0.1), 5)
    (0.5, 0.99995)
    """
    if not tau > 0:
        raise ValueError(f"tau must be positive, got {tau}")
    return 1.0 / (1.0 + math.exp(-(gold_a - gold_b) / tau))


def label_pair(gold_a: float, gold_b: float, tau: float, rng: np.random.Generator) -> str:
    """``"a"`` with probability :func:`bt_probability`, else ``"b"`` (one uniform of ``rng``)."""
    return "a" if rng.random() < bt_probability(gold_a, gold_b, tau) else "b"


def noisy_label(
    gold_a: float, gold_b: float, tau: float, flip_rate: float, rng: np.random.Generator
) -> tuple[str, bool]:
    """``(label, flipped)``: :func:`label_pair`'s Bradley-Terry label, then turned to the
    other side with probability ``flip_rate`` (a second uniform of ``rng``, drawn only
    when ``flip_rate > 0``).

    >>> rng = np.random.default_rng(0)
    >>> noisy_label(1.0, 0.0, 0.01, 0.0, rng), noisy_label(1.0, 0.0, 0.01, 1.0, rng)
    (('a', False), ('b', True))
    """
    if not 0.0 <= flip_rate <= 1.0:
        raise ValueError(f"flip_rate must lie in [0, 1], got {flip_rate}")
    label = label_pair(gold_a, gold_b, tau, rng)
    if flip_rate > 0 and rng.random() < flip_rate:
        return ("b" if label == "a" else "a"), True
    return label, False


def _pair(context, request, known, db, generators, rng, tau, flip_rate) -> dict[str, Any]:
    from dialog_env.tasks.chat.answers import make_reply
    from dialog_env.tasks.chat.judge import gold_terms

    first, second = rng.choice(len(generators), size=2, replace=False)
    sides = {}
    for side, index in (("a", first), ("b", second)):
        text = make_reply(generators[index], request, db, rng, known)
        sides[side] = {
            "text": text,
            "generator": generators[index],
            "gold": gold_terms(text, request, db)["gold"],
        }
    gold_a, gold_b = sides["a"]["gold"], sides["b"]["gold"]
    label, flipped = noisy_label(gold_a, gold_b, tau, flip_rate, rng)
    other = "b" if label == "a" else "a"
    return {
        "context": context,
        "request": request.as_dict(),
        **sides,
        "p_a": bt_probability(gold_a, gold_b, tau),
        "label": label,
        **({"flipped": flipped} if flip_rate > 0 else {}),  # default files keep their bytes
        "chosen": sides[label]["text"],
        "rejected": sides[other]["text"],
    }


def generate_prefs(
    seeds: Sequence[int],
    generators: Sequence[str] | None = None,
    tau: float = DEFAULT_TAU,
    label_seed: int = 0,
    flip_rate: float = DEFAULT_FLIP_RATE,
) -> tuple[list[dict], dict]:
    """``(pairs, metadata)`` for the chat episodes of train ``seeds``, labelled by
    Bradley-Terry at ``tau`` and then flipped at ``flip_rate`` (module docstring)."""
    import gymnasium as gym

    import dialog_env  # noqa: F401  (registers the ids)
    from dialog_env.tasks.chat.answers import REPLY_GENERATORS
    from dialog_env.tasks.chat.tracker import ChatTracker, needed_search, realize

    generators = list(generators or REPLY_GENERATORS)
    unknown = sorted(set(generators) - set(REPLY_GENERATORS))
    if unknown or len(set(generators)) < 2:
        raise ValueError(
            f"generators must be at least two of {tuple(REPLY_GENERATORS)}, got {generators}"
        )
    noisy_label(0.0, 0.0, tau, flip_rate, np.random.default_rng(0))  # checks both
    episodes = train_episodes(ENV_ID, seeds, reward="gold")  # no reward model needed here
    env = gym.make(ENV_ID, **episodes.env_spec["kwargs"])
    task = env.unwrapped.task
    rng = np.random.default_rng(label_seed)
    pairs: list[dict] = []
    for seed in episodes.seeds:
        _, info = env.reset(seed=seed)
        tracker = ChatTracker(task.db)
        done = False
        while not done:
            state = tracker.sync(info["turns"])
            if needed_search(state) is not None:  # search first, as the act answerer does
                _, _, terminated, truncated, info = env.step(realize("search", state))
                done = terminated or truncated
                continue
            request = task.goal[task.index]
            context = info["turns"]
            pair = _pair(context, request, state.known, task.db, generators, rng, tau, flip_rate)
            pairs.append({"seed": seed, **pair})
            _, _, terminated, truncated, info = env.step(realize("answer", state))
            done = terminated or truncated
    higher = [p for p in pairs if p["a"]["gold"] != p["b"]["gold"]]
    agree = sum((p["a"]["gold"] > p["b"]["gold"]) == (p["label"] == "a") for p in higher)
    meta = {
        "format": FORMAT,
        "env_id": ENV_ID,
        "env_spec": episodes.env_spec,
        "generators": generators,
        "tau": tau,
        "label_seed": label_seed,
        "flip_rate": flip_rate,
        "flipped": sum(p.get("flipped", False) for p in pairs) / max(len(pairs), 1),
        "label_rule": "P(a preferred) = sigmoid((gold_a - gold_b) / tau), then the label "
        "flipped with probability flip_rate",
        "context": "grounded: the transcript to the request, then the search call(s) and "
        "result(s) of the act interface's answerer; replies answer from those results",
        "seeds": {"first": min(seeds), "last": max(seeds), "count": len(seeds)},
        "pairs": len(pairs),
        "label_agrees_with_gold": agree / max(len(higher), 1),
    }
    return pairs, meta


def write_prefs(path: str | Path, pairs: list[dict], meta: dict, command: str) -> Path:
    """Write ``path`` (JSONL) and its ``.meta.json``; return the metadata path."""
    return write_demos(path, pairs, meta, command)


def load_prefs(path: str | Path) -> tuple[list[dict], dict]:
    """The pairs of a prefs file (checked against its metadata's sha256) and the metadata."""
    records, meta = load_demos(path)
    if meta["format"] != FORMAT:
        raise ValueError(f"{path} is not a {FORMAT!r} file (format {meta['format'][:60]!r})")
    check_shape(meta, {"seeds": dict}, str(Path(path).with_suffix(".meta.json")))
    return list(records), meta


def add_parser(sub: argparse._SubParsersAction) -> None:
    from dialog_env.tasks.chat.answers import REPLY_GENERATORS

    p = sub.add_parser(
        "prefs",
        help="write chat preference pairs labelled by the gold judge (JSONL + metadata)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--num-episodes",
        "--episodes",
        dest="episodes",
        type=int,
        default=500,
        metavar="N",
        help="chat episodes (default 500; --episodes, its old name, is deprecated)",
    )
    p.add_argument("--first-seed", type=int, default=0, help="seed of the first episode")
    p.add_argument(
        "--generators",
        nargs="+",
        default=None,
        choices=tuple(REPLY_GENERATORS),
        help="reply generators to pair (default: all)",
    )
    p.add_argument("--tau", type=float, default=DEFAULT_TAU, help="Bradley-Terry temperature")
    p.add_argument(
        "--flip-rate",
        type=float,
        default=DEFAULT_FLIP_RATE,
        help="share of labels flipped after the Bradley-Terry draw, as an annotator's slip "
        "(default 0; AlpacaFarm used 0.25)",
    )
    p.add_argument("--label-seed", type=int, default=0, help="seed of pairing and labels")
    p.add_argument("--out", type=Path, required=True, help="output .jsonl path")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    if args.episodes < 1:
        raise ValueError("--num-episodes must be at least 1")
    seeds = range(args.first_seed, args.first_seed + args.episodes)
    pairs, meta = generate_prefs(seeds, args.generators, args.tau, args.label_seed, args.flip_rate)
    meta_path = write_prefs(args.out, pairs, meta, shlex.join(["dialog-bench", *sys.argv[1:]]))
    print(
        f"wrote {len(pairs)} pairs to {args.out} ({meta_path.name}); labels agree with the "
        f"higher gold score on {meta['label_agrees_with_gold']:.3f} of unequal pairs"
        + (f"; {meta['flipped']:.3f} flipped" if args.flip_rate > 0 else "")
    )
    return 0
