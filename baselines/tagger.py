"""``dialog-bench train tagger``: the booking task's slot tagger, from voiced user turns.

The shipped tiny LM (or ``--init``) gets a token-classification head
(``AutoModelForTokenClassification``, one output per BIO tag of
:data:`~dialog_env.tasks.booking.tagging.TAGS`, ``id2label`` and ``label2id`` saved in
its config) and is trained with cross-entropy per word (at each word's last token:
:class:`~dialog_env.tasks.booking.tagger.SlotTagger`) on the user turns of the expert's
episodes on ``--train-episodes`` train seeds from ``--first-seed``, voiced by
``--user-model`` and tagged by the voice's placeholders (:mod:`baselines.tagger_data`;
the turns that fell back to the template are kept and counted in the manifest). Adam,
minibatches of turns, seeded: the same seed and turns give the same weights.

**Dev and selection.** The next ``--dev-episodes`` train seeds are the dev turns: every
``--eval-every`` steps and at the end, the entity-level F1 (``seqeval``, micro over the
slots) and the loss on them; the weights kept are those the one keep-best rule keeps
(:mod:`baselines.common.evaluation`, on the tagger's own dev metric: entity F1, then
negative loss, the earlier on an exact tie). The held-out test, turns voiced for
``split="test"`` goals, is ``python -m baselines.tagger_report``'s, never the trainer's.

Saved: ``model.safetensors`` and ``config.json`` (``save_pretrained``, safetensors), the
tokenizer files and ``manifest.json`` (command, data sha256, turns and fallbacks, the
curve, dev report). ``--out`` defaults to ``runs/tagger``, never over the one the env
loads (``dialog_env/assets/tagger``). Needs the ``tagger`` extra (``seqeval``).

    dialog-bench train tagger --out dialog_env/assets/tagger
"""

from __future__ import annotations

import argparse
import random
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from baselines.common.config import (
    add_config_arguments,
    config_from_args,
    init_sha256_field,
    logdir_field,
)

__all__ = ["TaggerConfig", "add_parser", "entity_report", "main", "train_tagger"]


@dataclass
class TaggerConfig:
    """Everything that decides a tagger run; each field is a ``train tagger`` flag."""

    train_episodes: int = field(
        default=300, metadata={"help": "expert episodes whose user turns are the training set"}
    )
    dev_episodes: int = field(
        default=50, metadata={"help": "episodes on the next seeds: the dev turns"}
    )
    first_seed: int = field(default=0, metadata={"help": "first train seed"})
    user_model: str = field(default="tiny", metadata={"help": "the voice of the turns"})
    init: Path | None = field(default=None, metadata={"help": "LM dir (default: tiny LM)"})
    init_sha256: str = init_sha256_field()
    epochs: int = field(default=4, metadata={"help": "passes over the training turns"})
    batch_size: int = field(default=32, metadata={"help": "turns per optimizer step"})
    lr: float = field(default=1e-3, metadata={"help": "Adam learning rate"})
    eval_every: int = field(default=25, metadata={"help": "steps between dev evaluations"})
    seed: int = field(default=0, metadata={"help": "head init and shuffling seed"})
    device: str = field(
        default="cpu", metadata={"help": "torch device", "choices": ("cpu", "cuda")}
    )
    out: Path = field(
        default=Path("runs/tagger"),
        metadata={
            "help": "tagger dir (the env's own is dialog_env/assets/tagger: write there "
            "only on purpose)"
        },
    )
    logdir: Path = logdir_field()
    progress: bool = field(default=True, metadata={"help": "show a progress bar"})


def entity_report(gold: list[list[str]], predicted: list[list[str]]) -> dict[str, Any]:
    """``seqeval``'s entity-level ``classification_report`` (per slot: precision, recall,
    F1, support; and the micro, macro and weighted averages) as a dict of floats."""
    try:
        from seqeval.metrics import classification_report
    except ImportError:
        raise ImportError(
            "the tagger's entity reports need the optional extra tagger: "
            "pip install 'dialog-bench[tagger]'"
        ) from None
    report = classification_report(gold, predicted, output_dict=True, zero_division=0)
    return {
        name: {k: round(float(v), 4) if k != "support" else int(v) for k, v in row.items()}
        for name, row in report.items()
    }


def _dev_point(tagger: Any, turns: list[dict], loss_fn: Any) -> dict[str, float]:
    import torch

    predicted = tagger.tag([t["text"] for t in turns])
    with torch.no_grad():
        tagger.model.eval()
        loss = _loss(tagger, turns, loss_fn).item()
        tagger.model.train()
    report = entity_report([t["tags"] for t in turns], predicted)
    return {"dev_entity_f1": report["micro avg"]["f1-score"], "dev_loss": loss}


def _loss(tagger: Any, turns: list[dict], loss_fn: Any) -> Any:
    import torch

    from dialog_env.tasks.booking.tagging import TAGS

    index = {tag: i for i, tag in enumerate(TAGS)}
    logits = torch.cat(tagger.word_logits([t["text"] for t in turns]))
    labels = torch.tensor([index[tag] for t in turns for tag in t["tags"]], device=logits.device)
    return loss_fn(logits, labels)


def train_tagger(config: TaggerConfig) -> Path:
    """Make the turns, train, keep by the one rule, save (module docstring); return the
    directory. Read top to bottom: data -> model -> one loop of steps and dev
    evaluations -> the kept weights -> save."""
    import torch
    from tqdm.auto import tqdm

    from baselines.common.evaluation import TAGGER_RULE, KeepBest
    from baselines.common.run import check_init_sha256, tensorboard_writer, write_run_manifest
    from baselines.tagger_data import turns_sha256, voiced_turns
    from dialog_env.lm import TINY_MODEL_DIR
    from dialog_env.lm.loading import load_token_classifier
    from dialog_env.tasks.booking.tagger import SlotTagger
    from dialog_env.tasks.booking.tagging import TAGS

    started = time.time()
    if min(config.epochs, config.batch_size, config.eval_every, config.dev_episodes) < 1:
        raise ValueError("--epochs, --batch-size, --eval-every, --dev-episodes must be >= 1")
    init_dir = config.init or TINY_MODEL_DIR
    config = replace(
        config, init_sha256=check_init_sha256(init_dir, config.init_sha256, str(init_dir))
    )
    train_seeds = range(config.first_seed, config.first_seed + config.train_episodes)
    dev_seeds = range(train_seeds.stop, train_seeds.stop + config.dev_episodes)
    voice = {"user_model": config.user_model, "device": config.device}
    train, dev = voiced_turns(train_seeds, **voice), voiced_turns(dev_seeds, **voice)
    data_seconds = time.time() - started

    torch.manual_seed(config.seed)  # the new head's init
    model, tokenizer = load_token_classifier(init_dir, config.device, labels=TAGS)
    model.train().requires_grad_(True)
    tagger = SlotTagger(model, tokenizer, device=config.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    loss_fn = torch.nn.CrossEntropyLoss()
    writer = tensorboard_writer(config.logdir, config.out)
    keep = KeepBest(rule=TAGGER_RULE, step_key="step")  # the one rule, on the tagger's metric
    rng = random.Random(config.seed)
    steps_per_epoch = max(1, len(train) // config.batch_size)
    total = steps_per_epoch * config.epochs
    train_seconds, step = 0.0, 0
    bar = tqdm(total=total, desc="tagger", disable=not config.progress)
    for _epoch in range(config.epochs):
        order = list(range(len(train)))
        rng.shuffle(order)
        for i in range(steps_per_epoch):
            batch = [train[j] for j in order[i * config.batch_size : (i + 1) * config.batch_size]]
            tick = time.perf_counter()
            loss = _loss(tagger, batch, loss_fn)
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
                point = {"step": step, "turns_seen": step * config.batch_size}
                point |= {"train_loss": loss.item(), **_dev_point(tagger, dev, loss_fn)}
                writer.add_scalar("dev/entity_f1", point["dev_entity_f1"], step)
                writer.add_scalar("dev/loss", point["dev_loss"], step)
                keep.offer(point, model.state_dict)
    bar.close()
    writer.close()
    model.load_state_dict(keep.state)  # the kept evaluation's weights
    model.eval().requires_grad_(False)
    dev_report = entity_report([t["tags"] for t in dev], tagger.tag([t["text"] for t in dev]))

    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    write_run_manifest(
        out,
        ["dialog-bench", "train", "tagger"],
        config,
        started=started,
        budget={"train_turns": len(train), "steps": step, "turns_seen": step * config.batch_size},
        keep=keep,
        init_dir=init_dir,
        data_sha256=turns_sha256(train),
        kind="booking slot tagger",
        tags=list(TAGS),
        data={
            "generator": "expert",
            "env_id": "Dialog-v1",
            "split": "train",
            "train_seeds": [train_seeds.start, train_seeds.stop],
            "dev_seeds": [dev_seeds.start, dev_seeds.stop],
            "train_turns": len(train),
            "train_fallback_turns": sum(t["fell_back"] for t in train),
            "dev_turns": len(dev),
            "dev_fallback_turns": sum(t["fell_back"] for t in dev),
            "dev_sha256": turns_sha256(dev),
            "seconds": round(data_seconds, 1),
        },
        dev_report=dev_report,
        train_seconds=round(train_seconds, 1),
        parameters=sum(p.numel() for p in model.parameters()),
    )
    return out


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "tagger",
        help="train the booking task's slot tagger on voiced user turns",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_config_arguments(p, TaggerConfig)
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    config = config_from_args(args, TaggerConfig)
    print(f"wrote {train_tagger(config)}")
    return 0
