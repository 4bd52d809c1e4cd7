"""``dialog-bench train rm``: the chat task's reward model, from gold-labelled preferences.

The shipped tiny LM (or ``--init``) gets a one-output score head
(``AutoModelForSequenceClassification``, ``num_labels=1``, scoring the last non-pad token)
and reads each reply in its grounded context in the LM's document format
(:func:`dialog_env.tasks.chat.reward_model.reward_input_ids`). It is trained on the
pairs of a ``dialog-bench prefs`` file with the Bradley-Terry pairwise loss

    loss = -log sigmoid(r_chosen - r_rejected)

(:func:`pairwise_loss`), Adam, minibatches of pairs, seeded: the same seed and file give
the same weights. The pairs of the last ``--heldout`` share of the file's seeds are held
out. ``manifest.json`` reports, on them, the pair accuracy (against the labels and
against the higher gold score), the Pearson and Spearman correlation of the score with
the gold score over the held-out replies and the mean score per reply generator
(:func:`baselines.rm_eval.score_report`; ``python -m baselines.rm_eval`` computes them for
any RM directory, prefs file or ensemble, and ``--write`` adds them to a new RM's
manifest); the learning curve (held-out loss and accuracy); the mean and std of the raw
score over (a seeded sample of) the training replies, the ``normalization`` that
:class:`~dialog_env.tasks.chat.reward_model.RewardModel` applies; ``max_tokens``, the
input's length (cut from the left: 256 of the LM's 512 keep the whole request turn, its
searches and the reply for 69% of the replies of 1,000 episodes' prefs, the rest losing
the start of the context, for less than half the time a sequence: 56 vs 128 ms forward
and backward on one CPU thread); the prefs file's sha256, the command and the seconds.
Saved: ``model.safetensors`` and ``config.json`` (``save_pretrained``, safetensors), the
tokenizer files and ``manifest.json``; plain JSON, no pickle. TensorBoard scalars go to
``--logdir``.

    dialog-bench prefs --episodes 1000 --out runs/prefs/chat-prefs.jsonl
    dialog-bench train rm --prefs runs/prefs/chat-prefs.jsonl --out dialog_env/assets/chat-rm

The weights saved are those of the held-out evaluation that the one keep-best rule keeps
(:mod:`baselines.common.evaluation`), on the RM's own dev metric: held-out pair accuracy,
then negative held-out loss, the earlier on an exact tie. Without ``--out`` the model
goes to ``runs/chat-rm``, never over the one the chat envs load.
"""

from __future__ import annotations

import argparse
import random
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from baselines.common.config import (
    add_config_arguments,
    config_from_args,
    init_sha256_field,
    logdir_field,
)
from baselines.rm_eval import pearson, reply_sides, score_report, spearman, split_by_seed

__all__ = [
    "RMConfig",
    "add_parser",
    "main",
    "pairwise_loss",
    "pearson",
    "spearman",
    "split_by_seed",
    "train_rm",
]


@dataclass
class RMConfig:
    """Everything that decides a reward-model run; each field is a ``train rm`` flag."""

    prefs: Path = field(
        default=Path("runs/prefs/chat-prefs.jsonl"),
        metadata={"help": "a `dialog-bench prefs` JSONL file", "required": True},
    )
    init: Path | None = field(default=None, metadata={"help": "LM dir (default: tiny LM)"})
    init_sha256: str = init_sha256_field()
    epochs: int = field(default=1, metadata={"help": "passes over the training pairs"})
    batch_size: int = field(default=16, metadata={"help": "pairs per optimizer step"})
    lr: float = field(default=1e-3, metadata={"help": "Adam learning rate"})
    heldout: float = field(
        default=0.1, metadata={"help": "share of the file's seeds (the last ones) held out"}
    )
    max_tokens: int = field(
        default=256,
        metadata={"help": "tokens the RM reads, its input cut from the left (<= LM context)"},
    )
    norm_replies: int = field(
        default=1024,
        metadata={"help": "training replies (a seeded sample) scored for the normalization"},
    )
    max_pairs: int = field(
        default=0, metadata={"help": "use at most this many training pairs (0: all)"}
    )
    eval_every: int = field(default=50, metadata={"help": "steps between held-out evaluations"})
    seed: int = field(default=0, metadata={"help": "head init and shuffling seed"})
    device: str = field(
        default="cpu", metadata={"help": "torch device", "choices": ("cpu", "cuda")}
    )
    out: Path = field(
        default=Path("runs/chat-rm"),
        metadata={
            "help": "reward model dir (the chat envs' own is dialog_env/assets/chat-rm: "
            "write there only on purpose)"
        },
    )
    logdir: Path = logdir_field()
    progress: bool = field(default=True, metadata={"help": "show a progress bar"})


def pairwise_loss(chosen: Any, rejected: Any) -> Any:
    """The mean of ``-log sigmoid(chosen - rejected)`` over the pairs (torch tensors).

    >>> import torch
    >>> float(pairwise_loss(torch.tensor([0.0]), torch.tensor([0.0])))  # log 2
    0.6931471824645996
    """
    import torch

    return -torch.nn.functional.logsigmoid(chosen - rejected).mean()


def _heldout_report(rm: Any, pairs: list[dict]) -> dict[str, Any]:
    """The loss (on the raw scale) and :func:`baselines.rm_eval.score_report` on ``pairs``."""
    contexts, texts, _, _ = reply_sides(pairs)
    scores = rm.score(contexts, texts)
    a, b = scores[0::2], scores[1::2]
    a_chosen = np.array([p["label"] == "a" for p in pairs])
    margin = np.where(a_chosen, a - b, b - a)
    return {
        "pairs": len(pairs),
        "loss": float(np.mean(np.logaddexp(0.0, -margin * rm.std))),  # on the raw scale
        **score_report(scores, pairs),
    }


def _seed_range(pairs: list[dict]) -> dict[str, int]:
    seeds = {p["seed"] for p in pairs}
    return {"first": min(seeds), "last": max(seeds), "count": len(seeds)}


def train_rm(config: RMConfig) -> Path:
    """Train, evaluate and save a reward model (module docstring); return its directory.
    One function on purpose, read top to bottom: load -> one loop of steps and held-out
    evaluations -> the kept weights' normalization -> save."""
    import torch
    from tqdm.auto import tqdm

    from baselines.common.evaluation import HELDOUT_RULE, KeepBest
    from baselines.common.run import check_init_sha256, tensorboard_writer, write_run_manifest
    from baselines.prefs import load_prefs
    from dialog_env.lm import TINY_MODEL_DIR
    from dialog_env.lm.loading import load_sequence_scorer
    from dialog_env.tasks.chat.reward_model import RewardModel

    started = time.time()
    if config.epochs < 1 or config.batch_size < 1 or config.eval_every < 1:
        raise ValueError("--epochs, --batch-size and --eval-every must be at least 1")
    init_dir = config.init or TINY_MODEL_DIR
    config = replace(
        config, init_sha256=check_init_sha256(init_dir, config.init_sha256, str(init_dir))
    )
    pairs, meta = load_prefs(config.prefs)
    train, heldout = split_by_seed(pairs, config.heldout)
    rng = random.Random(config.seed)
    if config.max_pairs:
        train = rng.sample(train, min(config.max_pairs, len(train)))
    torch.manual_seed(config.seed)  # the new score head's init
    model, tokenizer = load_sequence_scorer(init_dir, config.device)
    model.train().requires_grad_(True)
    rm = RewardModel(model, tokenizer, max_tokens=config.max_tokens, device=config.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    writer = tensorboard_writer(config.logdir, config.out)
    keep = KeepBest(rule=HELDOUT_RULE, step_key="step")  # the one rule, on the RM's metric

    steps_per_epoch = max(1, len(train) // config.batch_size)
    total = steps_per_epoch * config.epochs
    train_seconds, step = 0.0, 0
    bar = tqdm(total=total, desc="rm", disable=not config.progress)
    for _epoch in range(config.epochs):
        order = list(range(len(train)))
        rng.shuffle(order)
        for i in range(steps_per_epoch):
            batch = [train[j] for j in order[i * config.batch_size : (i + 1) * config.batch_size]]
            tick = time.perf_counter()
            contexts = [p["context"] for p in batch] * 2
            replies = [p["chosen"] for p in batch] + [p["rejected"] for p in batch]
            scores = rm.raw_scores(contexts, replies, batch_size=len(replies))
            loss = pairwise_loss(scores[: len(batch)], scores[len(batch) :])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            train_seconds += time.perf_counter() - tick
            step += 1
            writer.add_scalar("train/loss", loss.item(), step)
            bar.update()
            bar.set_postfix(loss=f"{loss.item():.3f}")
            if step % config.eval_every == 0 or step == total:
                report = _heldout_report(rm, heldout)
                writer.add_scalar("heldout/loss", report["loss"], step)
                writer.add_scalar("heldout/pair_accuracy", report["pair_accuracy_labels"], step)
                writer.add_scalar("heldout/spearman_gold", report["spearman_gold"], step)
                point = {
                    "step": step,
                    "pairs_seen": step * config.batch_size,
                    "train_loss": loss.item(),
                    "heldout_loss": report["loss"],
                    "heldout_pair_accuracy": report["pair_accuracy_labels"],
                }
                keep.offer(point, model.state_dict)
    bar.close()
    writer.close()
    model.load_state_dict(keep.state)  # the kept evaluation's weights
    model.eval().requires_grad_(False)

    contexts, texts, _, _ = reply_sides(train)
    sample = sorted(rng.sample(range(len(texts)), min(config.norm_replies, len(texts))))
    # the normalization is still mean 0, std 1: these are the raw scores
    raw = rm.score([contexts[i] for i in sample], [texts[i] for i in sample])
    rm.mean, rm.std = float(raw.mean()), float(raw.std())
    report = _heldout_report(rm, heldout)

    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    write_run_manifest(
        out,
        ["dialog-bench", "train", "rm"],
        config,
        started=started,
        budget={"train_pairs": len(train), "steps": step, "pairs_seen": step * config.batch_size},
        keep=keep,
        init_dir=init_dir,
        data_sha256=meta["sha256"],
        kind="chat reward model",
        prefs={
            "path": str(config.prefs),
            "sha256": meta["sha256"],
            "format": meta["format"],
            "command": meta.get("command"),
            "seeds": meta["seeds"],
        },
        normalization={
            "mean": rm.mean,
            "std": rm.std,
            "over": f"raw scores of {len(sample)} training replies (a seeded sample)",
        },
        max_tokens=rm.max_tokens,
        heldout={"seeds": _seed_range(heldout), **report},
        train_seconds=round(train_seconds, 1),
        parameters=sum(p.numel() for p in model.parameters()),
    )
    return out


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "rm",
        help="train the chat task's reward model on preference pairs",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_config_arguments(p, RMConfig)
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    config = config_from_args(args, RMConfig)
    print(f"wrote {train_rm(config)}")
    return 0
