"""SFT training tokens per second against the floor of its step's forward + backward on
the same batches, measured side by side in one run.

The SFT side is the trainer's own step (``baselines.sft.train_step``: forward with
assistant-only labels, backward, clipping, AdamW, schedule, frozen value rows written
back) on batches from the trainer's own batcher. The reference,
:func:`bench.floor_forward_backward` on the very same tensors, computes the floor of that
step's forward + backward: the LM body over every column (an assistant token attends to
the whole conversation before it), the output layer only at the columns whose next
token is labelled (the assistant tokens the loss trains on, about a third of the
columns), a cross-entropy on those, ``backward()``. A step cannot compute less and train
the same tokens. The trainer's own forward (``model(..., labels=...)``) computes the
1,536-way logits at every column, labelled or not, and the step adds clipping and AdamW:
both are its cost. For context, the table also shows that forward with labels + backward
alone (the trainer's recipe without clipping or optimizer; the reference of earlier
versions of this bench). Tokens are the real (unpadded) tokens of the batches. ::

    python -m bench.sft_speed [--demos runs/demos/expert.jsonl] [--steps 30] [--batch-size 16]
    python -m bench.sft_speed --smoke
"""

from __future__ import annotations

import argparse
import copy
import random
import time
from itertools import islice
from pathlib import Path

from bench import floor_forward_backward, parse_args
from bench.record import BenchRecord, add_out_argument

SMOKE = {"episodes": 4, "steps": 2, "batch_size": 2, "rounds": 1}


def main(argv: list[str] | None = None) -> None:
    """Parse the flags and run the bench (module docstring)."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--demos", type=Path, default=None, help="demo JSONL (default: fresh ones)")
    p.add_argument("--episodes", type=int, default=300, help="fresh expert demos without --demos")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--rounds", type=int, default=3)
    add_out_argument(p)
    args = parse_args(p, argv, SMOKE)
    with BenchRecord("sft_speed", argv, args) as record:
        measure(args, record)


def measure(args: argparse.Namespace, record: BenchRecord) -> None:
    """The bench's setup, measurement and printed table, read top to bottom."""
    import torch

    from baselines.demos import generate_demos, load_demos
    from baselines.sft import (
        IGNORE,
        padded_batches,
        separate_values,
        tokenize_demo,
        train_step,
        value_token_ids,
    )
    from dialog_env.lm import TINY_MODEL_DIR
    from dialog_env.lm.codec import MessageCodec
    from dialog_env.lm.loading import load_causal_lm

    lm = load_causal_lm(TINY_MODEL_DIR)
    codec = MessageCodec(lm.tokenizer)
    if args.demos:
        records = list(load_demos(args.demos)[0])
    else:
        records, _ = generate_demos(
            "expert", range(args.episodes), progress=False, user_model="template"
        )
    context = lm.model.config.max_position_embeddings
    samples = [w for r in records for w in tokenize_demo(codec, r["turns"], context)]
    batches = list(
        islice(padded_batches(samples, args.batch_size, random.Random(0), codec.pad_id), args.steps)
    )
    tokens = sum(int(mask.sum()) for _, _, mask in batches)

    model = copy.deepcopy(lm.model).train().requires_grad_(True)
    frozen_ids, frozen_rows = separate_values(model, value_token_ids(lm.tokenizer), 0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0)
    raw_model = copy.deepcopy(model)
    # The floor's reads: column t predicts labels[t + 1], as the model's own loss shifts them.
    floors = []
    for ids, labels, mask in batches:
        reads = torch.zeros_like(ids, dtype=torch.bool)
        reads[:, :-1] = labels[:, 1:] != IGNORE
        floors.append((ids, mask, reads, labels[:, 1:][reads[:, :-1]]))

    def sft_pass() -> float:
        start = time.perf_counter()
        for ids, labels, mask in batches:
            train_step(model, optimizer, schedule, ids, labels, mask, frozen_ids, frozen_rows)
        return time.perf_counter() - start

    def floor_pass() -> float:
        start = time.perf_counter()
        for ids, mask, reads, targets in floors:
            floor_forward_backward(raw_model, ids, mask, None, reads, targets)
        return time.perf_counter() - start

    def labels_pass() -> float:
        start = time.perf_counter()
        for ids, labels, mask in batches:
            raw_model(input_ids=ids, attention_mask=mask, labels=labels).loss.backward()
            raw_model.zero_grad(set_to_none=True)
        return time.perf_counter() - start

    passes = {"SFT train step": sft_pass, "floor forward + backward": floor_pass}
    passes["forward with labels + backward"] = labels_pass
    best = dict.fromkeys(passes, float("inf"))
    for _ in range(args.rounds):  # alternate, so all see the same machine
        for name, run in passes.items():
            best[name] = min(best[name], run())
    labelled = sum(len(targets) for *_, targets in floors)
    print(
        f"{args.steps} batches of {args.batch_size}, {tokens:,} tokens "
        f"({labelled / tokens:.0%} labelled); best of {args.rounds}"
    )
    print(f"{'':<32}{'tokens/s':>12}")
    for name, seconds in best.items():
        print(f"{name:<32}{tokens / seconds:>12,.0f}")
    floor = best["floor forward + backward"]
    record.figures |= {f"{name} tokens/s": tokens / seconds for name, seconds in best.items()}
    record.ratio("ratio", "SFT / floor", floor / best["SFT train step"], "aim: >= 0.80")


if __name__ == "__main__":
    main()
