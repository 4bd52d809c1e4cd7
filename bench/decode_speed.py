"""The batched KV-cache decode against the fp32 matmul peak of this machine, in one run.

The decode is the package's one loop (``dialog_env.lm.generation.batched_decode``) on the
shipped tiny LM: ``--batch`` rows of ``--prompt`` random prompt tokens, each writing
exactly ``--new-tokens`` tokens (no stop id, greedy), timed from the token ids in to the
new token ids out. The reference is the peak: the FLOP rate of a large fp32 ``torch.mm``
measured in the same run on the same threads, the most this CPU gives a matmul.

The model's work per new token is counted as the multiply-adds it must do: 2 x the
weights of every matmul that token passes through (attention projections, MLP, output
layer; embeddings are lookups) plus the attention itself, 2 x 2 x layers x hidden x the
columns it attends to (scores and the weighted sum). The prefill's work is not counted
(it is a few large matmuls, not decode), but its time is: a decode must read its prompt.
The ratio is model FLOPs per token x tokens/s / peak, per batch size. Each batch size is
timed twice, with the loop's own one-token step (``dialog_env.lm.fast_step``: the same
logits bit for bit, checked here) and through transformers' forward, so the per-step
overhead that the step cuts is a ratio of the same run too. ::

    python -m bench.decode_speed [--batch 1 8 64 256] [--prompt 64] [--new-tokens 32]
    python -m bench.decode_speed --batch 64 --profile   # where a decode's time goes, by op
    python -m bench.decode_speed --batch 64 --compile   # and torch.compile's step beside it

``--profile`` adds, for the last batch size, torch.profiler's table of the decode's ops by
their own time (the achieved FLOP rate of each kind of op is what bounds the ratio: small
matmuls and a one-query attention that reads the whole cache are far from the peak's
large square matmul). ``--compile`` times, for the last batch size, the same decode with
``torch.compile(fast_step.decode_step, dynamic=True)`` (inductor), its compile time apart,
tokens checked equal: the measured case for or against compiling the step on this CPU.
"""

from __future__ import annotations

import argparse
import time

from bench import parse_args
from bench.record import BenchRecord, add_out_argument


def matmul_peak(threads: int, size: int = 1024, seconds: float = 1.0) -> float:
    """FLOP/s of an fp32 ``size x size`` matmul on ``threads`` threads (best of a second)."""
    import torch

    torch.set_num_threads(threads)
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)
    best, end = float("inf"), time.perf_counter() + seconds
    while time.perf_counter() < end:
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best


def flops_per_token(model, context: int) -> float:
    """Multiply-adds x 2 of one new token that attends to ``context`` columns."""
    import torch

    matmul = sum(
        m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear)
    )  # the output layer is a Linear too (tied to the embeddings, counted once)
    config = model.config
    attention = 2 * 2 * config.num_hidden_layers * config.hidden_size * context
    return 2 * matmul + attention


def layer_matmul_share(model, batch: int, size: int = 1024, rounds: int = 20) -> float:
    """The bound of a decode step's FLOP rate, as a share of the peak: the step's own
    matmuls alone (every ``Linear`` of the model on ``batch`` rows of one token, e.g.
    64x128 by 128x384), back to back with nothing else, against the peak's ``size``-cube
    product. A decode whose every FLOP ran at this rate, attention and all else free,
    would read this share of the peak.

    The two are timed alternately, ``rounds`` times each, every timing of the layers
    repeated to the FLOPs of one cube product, and the best of each compared: equal
    durations, interleaved, meet the same interruptions on a machine shared with other
    work (a best of short timings against one of long ones would not)."""
    import torch

    layers = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    inputs = [torch.randn(batch, m.in_features) for m in layers]
    flops = sum(2 * batch * m.weight.numel() for m in layers)
    repeats = max(1, round(2 * size**3 / flops))
    a, b = torch.randn(size, size), torch.randn(size, size)
    best_layers = best_cube = float("inf")
    with torch.no_grad():
        for _ in range(rounds):
            start = time.perf_counter()
            for _ in range(repeats):
                for layer, x in zip(layers, inputs, strict=True):
                    torch.nn.functional.linear(x, layer.weight, layer.bias)
            best_layers = min(best_layers, time.perf_counter() - start)
            start = time.perf_counter()
            torch.mm(a, b)
            best_cube = min(best_cube, time.perf_counter() - start)
    return (repeats * flops / best_layers) / (2 * size**3 / best_cube)


def main(argv=None) -> int:
    """Parse the flags and run the bench (module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 8, 64, 256])
    parser.add_argument("--prompt", type=int, default=64, help="prompt tokens per row")
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1, help="torch threads, both sides")
    parser.add_argument("--rounds", type=int, default=3, help="best of N timings")
    parser.add_argument(
        "--bound-rounds", type=int, default=20, help="best of N timings of the matmul bound"
    )
    parser.add_argument(
        "--profile", action="store_true", help="print the ops of the last batch's decode"
    )
    parser.add_argument(
        "--compile", action="store_true", help="also time torch.compile's step (last batch)"
    )
    add_out_argument(parser)
    args = parse_args(
        parser, argv, {"batch": [1, 4], "new_tokens": 4, "rounds": 1, "bound_rounds": 2}
    )
    with BenchRecord("decode_speed", argv, args) as record:
        measure(args, record)
    return 0


def measure(args: argparse.Namespace, record: BenchRecord) -> None:
    """The bench's setup, measurement and printed table, read top to bottom."""
    import torch

    from dialog_env.lm import TINY_MODEL_DIR, fast_step
    from dialog_env.lm.generation import batched_decode
    from dialog_env.lm.loading import load_causal_lm

    lm = load_causal_lm(TINY_MODEL_DIR)
    peak = matmul_peak(args.threads)
    torch.set_num_threads(args.threads)
    generator = torch.Generator().manual_seed(0)
    vocab = lm.model.config.vocab_size
    per_token = flops_per_token(lm.model, args.prompt + args.new_tokens / 2)
    print(
        f"tiny LM, prompt {args.prompt}, {args.new_tokens} new tokens per row, "
        f"{args.threads} thread(s); fp32 matmul peak {peak / 1e9:.1f} GFLOP/s; "
        f"{per_token / 1e6:.2f} MFLOP per new token"
    )
    print(
        f"{'batch':>6} {'tokens/s':>10} {'ms/step':>8} {'of peak':>8} "
        f"{'transformers fwd tok/s':>23} {'step / fwd':>10}"
    )
    shares, gains, bounds = {}, {}, {}

    def timed(prompts):
        best, out = float("inf"), None
        for _ in range(args.rounds):
            start = time.perf_counter()
            out = batched_decode(lm.model, prompts, args.new_tokens, [], lm.tokenizer.pad_token_id)
            best = min(best, time.perf_counter() - start)
        assert all(len(t) == args.new_tokens for t in out.tokens)
        return best, out.tokens

    for batch in args.batch:
        prompts = torch.randint(4, vocab, (batch, args.prompt), generator=generator).tolist()
        best, tokens = timed(prompts)
        with fast_step.disabled():
            reference, reference_tokens = timed(prompts)
        if tokens != reference_tokens:
            raise SystemExit("the fast step and the forward wrote different tokens")
        rate = batch * args.new_tokens / best
        shares[batch], gains[batch] = rate * per_token / peak, reference / best
        bounds[batch] = layer_matmul_share(lm.model, batch, rounds=args.bound_rounds)
        record.figures[f"tokens_s_{batch}"] = rate
        step_ms = 1e3 * best / args.new_tokens
        print(
            f"{batch:>6} {rate:>10,.0f} {step_ms:>8.2f} {shares[batch]:>8.1%} "
            f"{batch * args.new_tokens / reference:>23,.0f} {gains[batch]:>9.2f}x"
        )
    if args.profile:
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU]) as prof:
            timed(prompts)
        table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12)
        print(f"ops of a decode at batch {args.batch[-1]}, by their own time:\n{table}")
    if args.compile:
        eager_step = fast_step.decode_step
        fast_step.decode_step = torch.compile(eager_step, dynamic=True)
        try:
            start = time.perf_counter()  # the first decode compiles
            batched_decode(lm.model, prompts, args.new_tokens, [], lm.tokenizer.pad_token_id)
            compiling = time.perf_counter() - start
            compiled, compiled_tokens = timed(prompts)
        finally:
            fast_step.decode_step = eager_step
        if compiled_tokens != tokens:
            raise SystemExit("the compiled step wrote other tokens")
        print(
            f"torch.compile'd step at batch {args.batch[-1]}: {compiling:.1f} s for the first "
            f"decode (compiling), then {1e3 * compiled:.0f} ms vs {1e3 * best:.0f} ms eager"
        )
        last = args.batch[-1]
        record.figures["compile_seconds"] = compiling
        record.ratio(
            "compiled_vs_eager", f"compiled / eager step tokens/s at batch {last}", best / compiled
        )
    record.figures |= {"peak_gflops": peak / 1e9, "mflop_per_token": per_token / 1e6}
    for batch, share in shares.items():
        record.ratio(f"share_{batch}", f"decode FLOP rate / matmul peak at batch {batch}", share)
    for batch, bound in bounds.items():
        what = f"the step's own matmuls alone / matmul peak at batch {batch}"
        record.ratio(f"matmul_bound_{batch}", what, bound)
        what = f"decode FLOP rate / its own matmuls' rate at batch {batch}"
        record.ratio(f"share_of_bound_{batch}", what, shares[batch] / bound)
    for batch, gain in gains.items():
        what = f"fast step / transformers forward tokens/s at batch {batch}"
        record.ratio(f"step_vs_forward_{batch}", what, gain)


if __name__ == "__main__":
    raise SystemExit(main())
