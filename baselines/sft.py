"""``dialog-bench train sft``: supervised fine-tuning of the base LM on demonstrations.

Each demonstration is written in the LM's document format with the same codec the agent
reads with; the loss is on the assistant's turns only (tool calls included, ``<|end|>``
included), never on what the user or the tools said. A dialogue longer than the context
is cut into windows that end at an assistant turn.

Slot values keep distinct embeddings: the rows of the single-token slot values (areas,
foods, prices, days) are reset to orthogonal vectors and frozen. A measurement before this
trainer showed why: nothing but copying predicts the weekday tokens, their tied
embeddings collapse into nearly one vector, and the agent then books a random day.

``--spell-codes`` is an experiment on booking references, which no LM agent we trained
copies (``dialog-bench diagnose``): the agent's codec writes a code one character per word
(``ref= P 4 A Z L E B 4``), the same tokens in a tool result and in a sentence. The
digits of a reference then copy (1.00 per token, teacher-forced) by step 1,200 and its
letters do not yet (0.34); by step 2,000 whole references copy (0.95; 0.99 at 3,000,
``sft-spelled``, since retired for ``sft-expert``, which uses the same codec). Giving
the letters orthogonal frozen rows made it worse (0.01 per letter at step 1,200).

Every ``eval_every`` steps the model is scored on held-out demonstrations (each tool-call
argument slot on its own, and each value a message copies from a tool result, both
teacher-forced) and on the first ``eval_episodes`` of the leaderboard's dev episodes of
``env_id``; the checkpoint keeps the evaluation that the one keep-best rule of every
trainer keeps (:mod:`baselines.common.evaluation`: the board metric, success or mean
gold, then return; an exact tie keeps the earlier). It goes under ``runs/`` unless
``--out`` says otherwise; TensorBoard logs go to ``--logdir``.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from baselines.common.config import (
    LoRAOptions,
    add_config_arguments,
    config_from_args,
    init_sha256_field,
    logdir_field,
    run_dir,
)
from baselines.sft_probes import message_copy_accuracy, tool_call_slot_accuracy

__all__ = [
    "SFTConfig",
    "add_parser",
    "main",
    "padded_batches",
    "read_demos",
    "save_sft",
    "separate_values",
    "train_sft",
    "tokenize_demo",
    "train_step",
    "value_token_ids",
]

IGNORE = -100


@dataclass
class SFTConfig(LoRAOptions):
    """Everything that decides an SFT run; each field is a ``train sft`` flag but
    ``paradigm``, which follows ``--filter``. ``--lora RANK`` trains LoRA adapters only."""

    demos: list[Path] = field(
        default_factory=list,
        metadata={
            "help": "demo JSONL files (or `dialog-bench prefs` files: their preferred replies)",
            "required": True,
        },
    )
    env_id: str = field(
        default="Dialog-v1",
        metadata={
            "help": "the env the demos are of, evaluated on its dev episodes",
            "choices": ("Dialog-v1", "Dialog-Chat-v1"),
        },
    )
    filter: str = field(
        default="all",
        metadata={
            "help": "train on all demos, or the successful ones only (filtered SFT)",
            "choices": ("all", "success"),
        },
    )
    init: Path | None = field(default=None, metadata={"help": "LM dir (default: tiny LM)"})
    init_sha256: str = init_sha256_field()
    paradigm: str = field(default="sft", metadata={"help": "sft | filtered-sft"})
    steps: int = field(default=2000, metadata={"help": "optimizer steps"})
    batch_size: int = field(default=16, metadata={"help": "sequences per step"})
    lr: float = field(default=2e-3, metadata={"help": "peak learning rate"})
    warmup: int = field(default=100, metadata={"help": "warm-up steps"})
    seed: int = field(default=0, metadata={"help": "shuffling and init seed"})
    eval_every: int = field(default=500, metadata={"help": "steps between evaluations"})
    eval_episodes: int = field(default=100, metadata={"help": "dev episodes per evaluation"})
    heldout: int = field(default=200, metadata={"help": "demos held out for slot accuracy"})
    freeze_values: bool = field(default=True, metadata={"help": "orthogonal frozen values"})
    spell_codes: bool = field(
        default=False,
        metadata={
            "help": "read and write codes (booking references) one character per word, so "
            "that copying one is copying single characters (an experiment: see docs/experiments.md)"
        },
    )
    out: Path | None = field(
        default=None, metadata={"help": "checkpoint dir (default: runs/<paradigm>)"}
    )
    logdir: Path = logdir_field()
    progress: bool = field(default=True, metadata={"help": "show progress bars"})

    def __post_init__(self) -> None:
        if self.filter == "success":  # the paradigm follows --filter: the README's row
            self.paradigm = "filtered-sft"

    def default_out(self) -> Path:
        """Where a run without ``--out`` writes: ``runs/sft`` or ``runs/filtered-sft``."""
        return run_dir(self.paradigm)


def tokenize_demo(codec: Any, turns: Sequence[dict], context: int) -> list[tuple[list, list]]:
    """``(input_ids, labels)`` windows of one dialogue, labels on assistant turns only."""
    ids, labels, ends = [codec.bos_id], [IGNORE], []
    for turn in turns:
        piece = codec.turn_ids(turn["role"], turn["text"])
        ids += piece
        if turn["role"] == "assistant":  # the role token is given; the rest is learned
            labels += [IGNORE, *piece[1:]]
            ends.append(len(ids))
        else:
            labels += [IGNORE] * len(piece)
    if len(ids) <= context:
        return [(ids, labels)]
    windows = []
    for end in ends:  # each window ends at an assistant turn and learns only that turn
        start = max(0, end - context)
        lab = [IGNORE] * (end - start)
        turn_start = max(i for i in range(start, end) if ids[i] == codec.role_ids["assistant"])
        lab[turn_start - start :] = labels[turn_start:end]
        windows.append((ids[start:end], lab))
    return windows


def value_token_ids(tokenizer: Any) -> list[tuple[int | None, int | None]]:
    """Per slot value, its single-token ids ``(after a space, after "=")``.

    Users write ``▁thai`` and tool calls ``food=thai``: two tokens that the agent must
    learn are one value.
    """
    from dialog_env.tasks.booking.domain import AREAS, DAYS, FOODS, PRICES

    def single(text: str, value: str) -> int | None:
        last = tokenizer.encode(text, add_special_tokens=False)[-1]
        return last if tokenizer.decode([last]).strip() == value else None

    pairs = [(single(f" {v}", v), single(f"a={v}", v)) for v in (*AREAS, *FOODS, *PRICES, *DAYS)]
    return [p for p in pairs if p != (None, None)]


def separate_values(model: Any, pairs: list, seed: int) -> tuple[list[int], Any]:
    """Give the value tokens orthogonal embedding rows; return their ids and rows.

    Value ``v`` gets a direction ``a_v``, orthogonal to every other value's, and its two
    spellings are ``a_v + u/2`` (after a space) and ``a_v - u/2`` (after ``=``) for one
    shared direction ``u``: the same value to attention, told apart by one direction
    that the context decides. Rows are scaled to the embeddings' mean norm.
    """
    import torch

    emb = model.get_input_embeddings().weight
    gen = torch.Generator().manual_seed(seed)
    basis = torch.empty(len(pairs) + 1, emb.shape[1])
    torch.nn.init.orthogonal_(basis, generator=gen)
    u = basis[-1]
    ids, rows = [], []
    for (spaced, bare), a in zip(pairs, basis[:-1], strict=True):
        for token, sign in ((spaced, 0.5), (bare, -0.5)):
            if token is not None:
                ids.append(token)
                rows.append(a + sign * u)
    rows = torch.stack(rows)
    with torch.no_grad():
        rows *= emb.norm(dim=1).mean() / rows.norm(dim=1, keepdim=True)
        emb[ids] = rows
    return ids, rows


def padded_batches(samples: list, batch_size: int, rng: random.Random, pad_id: int):
    """Endless shuffled batches of ``samples`` (``(ids, labels)`` windows), each padded on
    the right to its longest: ``(ids, labels, attention mask)`` tensors."""
    import torch

    while True:
        order = list(range(len(samples)))
        rng.shuffle(order)
        for i in range(0, len(order) - batch_size + 1, batch_size):
            chunk = [samples[j] for j in order[i : i + batch_size]]
            width = max(len(s[0]) for s in chunk)
            ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
            labels = torch.full((len(chunk), width), IGNORE, dtype=torch.long)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for row, (x, y) in enumerate(chunk):
                ids[row, : len(x)] = torch.tensor(x)
                labels[row, : len(y)] = torch.tensor(y)
                mask[row, : len(x)] = 1
            yield ids, labels, mask


def train_step(model, optimizer, schedule, ids, labels, mask, frozen_ids=(), frozen_rows=None):
    """One optimizer step on one batch (assistant-only labels); returns the loss.

    The frozen value rows are written back after the step, so neither the gradient nor
    weight decay moves them.
    """
    import torch

    loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    schedule.step()
    if frozen_rows is not None:
        with torch.no_grad():
            model.get_input_embeddings().weight[frozen_ids] = frozen_rows
    return loss.item()


def preferred_demos(pairs: Sequence[dict]) -> list[dict]:
    """Each preference pair of ``dialog-bench prefs`` as a demo: its context, then the
    preferred reply as the assistant's turn (SFT on the preferred replies)."""
    return [
        {
            "seed": p["seed"],
            "turns": [*p["context"], {"role": "assistant", "text": p["chosen"]}],
            "success": True,
        }
        for p in pairs
    ]


def save_lm_checkpoint(out: Path, model: Any, tokenizer: Any, config: dict) -> None:
    """``config.json`` + ``lm/`` (a transformers directory, safetensors weights)."""
    from agents.checkpoint import CONFIG
    from agents.lm_agent import LM_SUBDIR

    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out / LM_SUBDIR, safe_serialization=True)
    tokenizer.save_pretrained(out / LM_SUBDIR)
    (out / CONFIG).write_text(json.dumps({"agent": "lm", **config}, indent=1) + "\n")


def read_demos(config: SFTConfig) -> tuple[list[dict], list[str], list[Any]]:
    """The demos of ``config.demos`` (a prefs file gives its preferred replies), only the
    successful ones under ``--filter success``; with each file's sha256 and command."""
    from baselines.demos import load_demos

    demos, shas, commands = [], [], []
    for path in config.demos:
        records, meta = load_demos(path)
        if str(meta.get("format", "")).startswith("dialog-bench prefs"):
            records = preferred_demos(records)
        shas.append(meta["sha256"])
        commands.append(meta.get("command"))
        demos += [r for r in records if config.filter == "all" or r["success"]]
    if len(demos) <= config.heldout:
        raise ValueError(f"need more than {config.heldout} demos, got {len(demos)}")
    return demos, shas, commands


def train_sft(config: SFTConfig) -> Path:
    """Train as ``config`` says; write the checkpoint the keep-best rule keeps; return its
    directory. One function on purpose, read top to bottom: load -> one loop of steps and
    evaluations (:func:`evaluate`) -> save (:func:`save_sft`)."""
    import torch
    from tqdm.auto import tqdm

    from baselines.common.evaluation import KeepBest
    from baselines.common.run import check_init_sha256, tensorboard_writer, write_run_manifest
    from dialog_env.lm import TINY_MODEL_DIR
    from dialog_env.lm.codec import MessageCodec
    from dialog_env.lm.loading import load_causal_lm

    # -- load: the start, the demos; every default resolved
    started = time.time()
    init_dir = config.init or TINY_MODEL_DIR
    init_sha256 = check_init_sha256(init_dir, config.init_sha256, str(init_dir))
    out = config.out or config.default_out()
    config = replace(config, out=out, init_sha256=init_sha256)
    torch.manual_seed(config.seed)
    rng = random.Random(config.seed)
    base = load_causal_lm(init_dir)
    model = copy.deepcopy(base.model).train().requires_grad_(True)
    tokenizer = base.tokenizer
    codec = MessageCodec(tokenizer, spell_codes=config.spell_codes)
    context = int(model.config.max_position_embeddings)
    demos, shas, data_commands = read_demos(config)
    rng.shuffle(demos)
    heldout, train = demos[: config.heldout], demos[config.heldout :]
    samples = [w for d in train for w in tokenize_demo(codec, d["turns"], context)]
    n_tokens_epoch = sum(len(s[0]) for s in samples)
    booking = config.env_id == "Dialog-v1"  # the slot and copy probes read booking demos
    frozen_ids, frozen_rows = (
        separate_values(model, value_token_ids(tokenizer), config.seed)
        if config.freeze_values and booking
        else ([], None)
    )
    model = config.wrap(model)  # --lora: adapters on the (value-separated) base
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=config.lr, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda s: (
            min(1.0, (s + 1) / config.warmup)
            * 0.5
            * (1 + math.cos(math.pi * min(s, config.steps) / config.steps))
        ),
    )
    writer = tensorboard_writer(config.logdir, out)
    batches = padded_batches(samples, config.batch_size, rng, codec.pad_id)
    keep = KeepBest(step_key="step")
    tokens_seen, train_seconds = 0, 0.0

    # -- the loop: a step per batch, an evaluation every eval_every steps and at the end
    bar = tqdm(range(1, config.steps + 1), desc="sft", disable=not config.progress)
    for step in bar:
        ids, labels, mask = next(batches)
        tick = time.perf_counter()
        loss = train_step(model, optimizer, schedule, ids, labels, mask, frozen_ids, frozen_rows)
        train_seconds += time.perf_counter() - tick
        tokens_seen += int(mask.sum())
        writer.add_scalar("train/loss", loss, step)
        writer.add_scalar("train/lr", schedule.get_last_lr()[0], step)
        bar.set_postfix(loss=f"{loss:.3f}")
        if step % config.eval_every == 0 or step == config.steps:
            budget = {
                "step": step,
                "tokens": tokens_seen,
                "demo_episodes_seen": round(tokens_seen / n_tokens_epoch * len(train), 1),
            }
            evaluate(model, tokenizer, config, heldout, keep, writer, budget)
    writer.close()

    # -- save the kept evaluation's weights
    model.load_state_dict(keep.state["weights"])
    model.eval()
    save_sft(out, model, tokenizer, config, init_dir, frozen_ids, frozen_rows)
    write_run_manifest(
        out,
        ["dialog-bench", "train", "sft"],
        config,
        started=started,
        budget={"demo_episodes": len(train), "tokens": tokens_seen},
        keep=keep,
        init_dir=init_dir,
        data_sha256=",".join(shas),
        skip=("paradigm",),  # it follows --filter
        data_commands=data_commands,
        heldout_slot_accuracy=keep.state["slots"],
        heldout_copy_accuracy=keep.state["copies"],
        tokens_per_epoch=n_tokens_epoch,
        trainable_parameters=sum(p.numel() for p in trainable),
        train_tokens_per_s=round(tokens_seen / max(train_seconds, 1e-9), 1),
    )
    return out


def evaluate(model, tokenizer, config: SFTConfig, heldout, keep, writer, budget: dict) -> None:
    """Score the model on the held-out demos (booking: slot and copy probes) and on dev,
    offer the point (``budget`` + the dev scores) to the keep-best rule, and log it."""
    from tqdm.auto import tqdm

    from agents.lm_agent import LMAgent
    from baselines.common.evaluation import evaluate_on_dev

    model.eval()
    agent = LMAgent(model, tokenizer, paradigm=config.paradigm, spell_codes=config.spell_codes)
    booking = config.env_id == "Dialog-v1"
    slots = tool_call_slot_accuracy(agent, heldout) if booking else {}
    copies = message_copy_accuracy(agent, heldout) if booking else {}
    scores = evaluate_on_dev(agent, config.env_id, config.eval_episodes, progress=config.progress)
    model.train()
    step = budget["step"]
    point = budget | scores
    keep.offer(point, lambda: {"weights": model.state_dict(), "slots": slots, "copies": copies})
    for name, value in [
        *((f"slot_{k}", v) for k, v in slots.items()),
        *((f"copy_{k}", v) for k, v in copies.items()),
        *scores.items(),
    ]:
        writer.add_scalar(f"eval/{name}", value, step)
    tqdm.write(
        f"step {step}: "
        + ", ".join(f"{k} {v:.3f}" for k, v in scores.items())
        + "".join(
            f", {what} " + " ".join(f"{k}={v:.2f}" for k, v in probe.items())
            for what, probe in (("slots", slots), ("copies", copies))
            if probe
        )
    )


def save_sft(out: Path, model, tokenizer, config: SFTConfig, init_dir, frozen_ids, frozen_rows):
    """Write the LM agent checkpoint: ``config.json`` and ``lm/``, or with ``--lora`` the
    adapter (and the frozen value rows) on its base."""
    import torch

    from dialog_env.lm.codec import MAX_MESSAGE_TOKENS

    booking = config.env_id == "Dialog-v1"
    agent_config = {
        "paradigm": config.paradigm,
        "interface": "text",
        "max_new_tokens": MAX_MESSAGE_TOKENS,
        "spell_codes": config.spell_codes,
        **({} if booking else {"env_id": config.env_id}),
    }
    if not config.lora:
        save_lm_checkpoint(out, model, tokenizer, agent_config)
        return
    from agents.checkpoint import CONFIG
    from agents.lora import base_reference, save_lora

    rows = (torch.tensor(frozen_ids), frozen_rows) if frozen_rows is not None else None
    save_lora(out, model, rows)
    agent_config = {"agent": "lm", **agent_config, **base_reference(init_dir)}
    (out / CONFIG).write_text(json.dumps(agent_config, indent=1) + "\n")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sft",
        help="supervised fine-tuning on demonstrations",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_config_arguments(p, SFTConfig, skip=("paradigm",))
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    config = config_from_args(args, SFTConfig)
    config = replace(config, paradigm="filtered-sft" if config.filter == "success" else "sft")
    print(f"wrote {train_sft(config)}")
    return 0
