"""How well a proxy reward model (or an ensemble of them) stands for the gold judge.

For the replies of a ``dialog-bench prefs`` file (both sides of every pair, each in its
grounded context) it reports the pair accuracy against the file's labels and against the
higher gold score (pairs of equal gold left out), the Pearson and Spearman correlation of
the score with the gold score, and the mean score and mean gold per reply generator:
what ``dialog-bench train rm`` writes into a new RM's ``manifest.json`` for its held-out
pairs, here for any RM directory, any file, and for ensembles (``--combine mean`` or
``worst``, as the env's ``reward="rm-ensemble"`` combines them).

    python -m baselines.rm_eval --prefs runs/prefs/chat-prefs.jsonl --rm runs/rm-a runs/rm-b \\
        --combine worst
    python -m baselines.rm_eval --prefs runs/prefs/other.jsonl --rm runs/rm-a --write

``--split heldout`` (the default) reads the pairs of the last ``--heldout`` share of the
file's seeds (the trainer's own held-out split, :func:`split_by_seed`);
``--split all`` every pair. ``--write`` adds the report to the RM's ``manifest.json``
under ``evaluations`` (one entry per prefs file and split); it refuses the directories
that ship inside the package (the chat envs' RM and the shipped checkpoints: their
manifests are what was published).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "evaluate_rm",
    "main",
    "pearson",
    "reply_sides",
    "score_report",
    "spearman",
    "split_by_seed",
    "write_evaluation",
]

SPLITS = ("heldout", "all")


def split_by_seed(pairs: list[dict], heldout: float) -> tuple[list[dict], list[dict]]:
    """``(train, heldout)``: the pairs of the last ``heldout`` share of the seeds held out.

    >>> pairs = [{"seed": s} for s in (0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9)]
    >>> [len(part) for part in split_by_seed(pairs, 0.2)]
    [9, 2]
    """
    if not 0 < heldout < 1:
        raise ValueError(f"heldout must be a share in (0, 1), got {heldout}")
    seeds = sorted({p["seed"] for p in pairs})
    cut = len(seeds) - max(1, round(heldout * len(seeds)))
    if cut < 1:
        raise ValueError(f"need at least two seeds to hold some out, got {len(seeds)}")
    held = set(seeds[cut:])
    return [p for p in pairs if p["seed"] not in held], [p for p in pairs if p["seed"] in held]


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """The Pearson correlation (0 when either side is constant).

    >>> pearson(np.array([1.0, 2, 3]), np.array([2.0, 4, 7]))
    0.9933992677987828
    """
    x, y = np.asarray(x, float) - np.mean(x), np.asarray(y, float) - np.mean(y)
    norm = np.sqrt((x * x).sum() * (y * y).sum())
    return float((x * y).sum() / norm) if norm > 0 else 0.0


def _ranks(x: np.ndarray) -> np.ndarray:
    """Ranks from 1, ties sharing their mean rank."""
    x = np.asarray(x, float)
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x))
    ranks[order] = np.arange(1, len(x) + 1)
    for value in np.unique(x):
        tied = x == value
        ranks[tied] = ranks[tied].mean()
    return ranks


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """The Spearman rank correlation (ties share their mean rank).

    >>> spearman(np.array([1.0, 2, 3, 4]), np.array([1.0, 1, 5, 9]))
    0.9486832980505138
    """
    return pearson(_ranks(x), _ranks(y))


def reply_sides(pairs: list[dict]) -> tuple[list, list[str], list[str], np.ndarray]:
    """Every reply of ``pairs`` (side ``a`` then ``b`` of each pair, in order): contexts,
    texts, generators and gold scores."""
    contexts, texts, generators, gold = [], [], [], []
    for pair in pairs:
        for side in "ab":
            contexts.append(pair["context"])
            texts.append(pair[side]["text"])
            generators.append(pair[side]["generator"])
            gold.append(pair[side]["gold"])
    return contexts, texts, generators, np.array(gold, dtype=float)


def score_report(scores: np.ndarray, pairs: list[dict]) -> dict[str, Any]:
    """Pair accuracies, correlations with gold and per-generator means of ``scores`` (one
    per reply, in :func:`reply_sides`' order) on ``pairs``.

    >>> pairs = [{"context": [], "label": "a", "a": {"text": "", "generator": "good",
    ...           "gold": 1.0}, "b": {"text": "", "generator": "random", "gold": 0.0}}] * 2
    >>> r = score_report(np.array([1.0, -1.0, 0.5, 0.7]), pairs)
    >>> r["pair_accuracy_labels"], r["pair_accuracy_gold"], r["mean_score_by_generator"]
    (0.5, 0.5, {'good': 0.75, 'random': -0.15})
    """
    scores = np.asarray(scores, dtype=float)
    _, _, generators, gold = reply_sides(pairs)
    if len(scores) != len(gold):
        raise ValueError(f"{len(scores)} scores for {len(gold)} replies")
    a, b = scores[0::2], scores[1::2]
    a_chosen = np.array([p["label"] == "a" for p in pairs])
    unequal = gold[0::2] != gold[1::2]
    agrees_gold = (a > b) == (gold[0::2] > gold[1::2])
    names = np.array(generators)
    return {
        "pairs": len(pairs),
        "pair_accuracy_labels": float(np.mean(np.where(a_chosen, a > b, b > a))),
        "pair_accuracy_gold": float(np.mean(agrees_gold[unequal])) if unequal.any() else None,
        "pearson_gold": pearson(scores, gold),
        "spearman_gold": spearman(scores, gold),
        "mean_score_by_generator": {
            g: round(float(np.mean(scores[names == g])), 4) for g in sorted(set(generators))
        },
        "mean_gold_by_generator": {
            g: round(float(np.mean(gold[names == g])), 4) for g in sorted(set(generators))
        },
    }


def evaluate_rm(scorer: Any, pairs: list[dict]) -> dict[str, Any]:
    """:func:`score_report` of ``scorer``'s scores (a
    :class:`~dialog_env.tasks.chat.reward_model.RewardModel` or
    :class:`~dialog_env.tasks.chat.reward_model.RewardEnsemble`: anything with ``score``)."""
    contexts, texts, _, _ = reply_sides(pairs)
    return score_report(scorer.score(contexts, texts), pairs)


def _shipped_dirs() -> list[Path]:
    """The folders whose reward models and manifests ship inside the package."""
    import baselines
    import dialog_env

    return [
        Path(dialog_env.__file__).resolve().parent / "assets",
        Path(baselines.__file__).resolve().parent / "checkpoints",
    ]


def write_evaluation(rm_dir: str | Path, entry: dict[str, Any]) -> Path:
    """Add ``entry`` to ``rm_dir``'s ``manifest.json`` ``evaluations`` (replacing one of
    the same prefs sha256 and split); refuses a directory that ships in the package."""
    path = Path(rm_dir).resolve()
    if any(path.is_relative_to(shipped) for shipped in _shipped_dirs()):
        raise ValueError(f"{path} ships with the package: its manifest is not rewritten")
    manifest_path = path / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    same = (entry["prefs"]["sha256"], entry["split"])
    kept = [
        e
        for e in manifest.get("evaluations", [])
        if (e.get("prefs", {}).get("sha256"), e.get("split")) != same
    ]
    manifest["evaluations"] = [*kept, entry]
    manifest_path.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return manifest_path


def main(argv: Sequence[str] | None = None) -> int:
    """The command (module docstring)."""
    from baselines.prefs import load_prefs
    from dialog_env.tasks.chat.reward_model import (
        ENSEMBLE_COMBINES,
        RewardEnsemble,
        RewardModel,
    )

    p = argparse.ArgumentParser(
        prog="python -m baselines.rm_eval",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--prefs", type=Path, required=True, help="a `dialog-bench prefs` file")
    p.add_argument("--rm", type=Path, nargs="+", required=True, help="RM dir(s); 2+: ensemble")
    p.add_argument("--combine", choices=ENSEMBLE_COMBINES, default="mean", help="ensemble rule")
    p.add_argument("--split", choices=SPLITS, default="heldout", help="which pairs to read")
    p.add_argument("--heldout", type=float, default=0.1, help="held-out share of the seeds")
    p.add_argument("--write", action="store_true", help="add the report to the RM's manifest")
    p.add_argument("--device", default="cpu", help="torch device")
    args = p.parse_args(argv)
    if args.write and len(args.rm) != 1:
        p.error("--write takes one RM directory (an ensemble has no manifest of its own)")
    pairs, meta = load_prefs(args.prefs)
    if args.split == "heldout":
        pairs = split_by_seed(pairs, args.heldout)[1]
    if len(args.rm) == 1:
        scorer: Any = RewardModel.load(args.rm[0], args.device)
    else:
        scorer = RewardEnsemble.load(args.rm, args.combine, args.device)
    report = evaluate_rm(scorer, pairs)
    entry = {
        "prefs": {"path": str(args.prefs), "sha256": meta["sha256"], "seeds": meta["seeds"]},
        "split": args.split if args.split == "all" else f"heldout {args.heldout}",
        "rm": [str(d) for d in args.rm],
        **({"combine": args.combine} if len(args.rm) > 1 else {}),
        **report,
    }
    print(json.dumps(entry, indent=1))
    if args.write:
        print(f"wrote {write_evaluation(args.rm[0], entry)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
