"""SFT training tokens per second against the raw forward + backward of the same model on
the same batches, measured side by side in one run.

The SFT side is the trainer's own step (``baselines.sft.train_step``: forward with
assistant-only labels, backward, clipping, AdamW, schedule, frozen value rows written
back) on batches from the trainer's own batcher; the reference is only
``model(...).loss.backward()`` on the very same tensors. ::

    python -m bench.sft_speed [--demos runs/demos/expert.jsonl] [--steps 30] [--batch-size 16]
"""

from __future__ import annotations

import argparse
import copy
import random
import time
from itertools import islice
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    import torch

    from baselines.demos import generate_demos, load_demos
    from baselines.sft import _batches, _separate_values, tokenize_demo, train_step, value_token_ids
    from dialog_env.lm import TINY_MODEL_DIR
    from dialog_env.lm.loading import load_causal_lm
    from dialog_env.wrappers.tokens import MessageCodec

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--demos", type=Path, default=None, help="demo JSONL (default: 300 fresh)")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args(argv)

    lm = load_causal_lm(TINY_MODEL_DIR)
    codec = MessageCodec(lm.tokenizer)
    if args.demos:
        records = list(load_demos(args.demos)[0])
    else:
        records, _ = generate_demos("expert", range(300), progress=False, user_model="template")
    context = lm.model.config.max_position_embeddings
    samples = [w for r in records for w in tokenize_demo(codec, r["turns"], context)]
    batches = list(
        islice(_batches(samples, args.batch_size, random.Random(0), codec.pad_id), args.steps)
    )
    tokens = sum(int(mask.sum()) for _, _, mask in batches)

    model = copy.deepcopy(lm.model).train().requires_grad_(True)
    frozen_ids, frozen_rows = _separate_values(model, value_token_ids(lm.tokenizer), 0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0)
    raw_model = copy.deepcopy(model)

    def sft_pass() -> float:
        start = time.perf_counter()
        for ids, labels, mask in batches:
            train_step(model, optimizer, schedule, ids, labels, mask, frozen_ids, frozen_rows)
        return time.perf_counter() - start

    def raw_pass() -> float:
        start = time.perf_counter()
        for ids, labels, mask in batches:
            raw_model(input_ids=ids, attention_mask=mask, labels=labels).loss.backward()
        return time.perf_counter() - start

    sft, raw = [], []
    for _ in range(args.rounds):  # alternate, so both see the same machine
        sft.append(sft_pass())
        raw.append(raw_pass())
    sft_rate, raw_rate = tokens / min(sft), tokens / min(raw)
    print(f"{args.steps} batches of {args.batch_size}, {tokens:,} tokens; best of {args.rounds}")
    print(f"{'':<28}{'tokens/s':>12}")
    print(f"{'SFT train step':<28}{sft_rate:>12,.0f}")
    print(f"{'raw forward + backward':<28}{raw_rate:>12,.0f}")
    print(f"ratio SFT / raw = {sft_rate / raw_rate:.2f}  (aim: >= 0.80)")


if __name__ == "__main__":
    main()
