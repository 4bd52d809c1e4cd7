"""Vector env speed, as ratios measured side by side in one run.

1. User turns per second of ``DialogVectorEnv`` at N = 1, 8, 64 with the LM voice, against
   the floor of the LM work those turns need (:func:`raw_decode_seconds`): every batched
   decode the voice ran is logged (its prompts and its number of forward calls) and
   replayed as text in, text out with nothing else: tokenize the same prompts, left-pad
   them (the same ``left_pad``), one prefill with the output layer at the last column
   only (the only logits a decode reads), then KV-cached one-token steps, the voice's own
   fastest (the in-place cache, ``fast_step.decode_step``, a row leaving by one move), in
   which each row takes part in as many steps as it did in the voice (its tokens over
   all its attempts: a retry goes on in the same batch), each choosing by argmax (one
   pass over the logits, the least any choice costs), and detokenize the rows. That is
   the floor: a voice must read its prompt, run the model once per new token of each row
   and turn the tokens into text.
   What the voice does beyond it is its own cost: building prompts, float64 log-softmax
   and inverse-CDF sampling, the sample check, writing a retry's prompt back, falling
   back. (Earlier versions tokenized outside the timer and computed the prefill's logits
   at every column; until the voice's retries joined the running batch, the floor's steps
   were transformers' forward with its concatenating cache, slower than the voice's own
   step, so a voice could read as fast as its floor.)
2. The vector env at N = 64 against 64 sequential ``gymnasium.make`` envs on the same
   episodes and actions, resets included on both sides (same seeds, same user turns:
   asserted).

The agent's time is excluded: the expert's act ids are recorded first, per sub-env and
episode, then replayed. ::

    python -m bench.vector_speed [--sizes 1 8 64] [--steps 40] [--user-model tiny]
    python -m bench.vector_speed --smoke
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

import gymnasium as gym
import numpy as np

import dialog_env  # noqa: F401  (registers the ids)
from agents import load_agent
from bench import parse_args
from bench.record import BenchRecord, add_out_argument
from dialog_env.text import Turn, format_transcript

ENV_ID = "Dialog-Acts-v1"


def record_actions(n_envs: int, steps: int, seed: int, **kwargs) -> list[list[int]]:
    """Per sub-env, the expert's act ids for ``steps`` vector steps (autoreset included)."""
    expert, plans = load_agent("expert"), []
    for i in range(n_envs):
        env = gym.make(ENV_ID, **kwargs)
        _, info = env.reset(seed=seed + i)
        plan: list[int] = []
        while len(plan) < steps:
            turns = [Turn(t["role"], t["text"]) for t in info["turns"]]
            plan.append(expert.act_id(format_transcript(turns)))
            _, _, term, trunc, info = env.step(plan[-1])
            if term or trunc:
                plan.append(0)  # the NEXT_STEP autoreset step: its action is ignored
                _, info = env.reset()
        plans.append(plan[:steps])
    return plans


def run_vector(n_envs: int, plans: list[list[int]], seed: int, **kwargs):
    """Seconds for the vector env to play the plans, the user turns it voiced, and the
    reference seconds: the raw decode of the same batches (NaN for the template voice)."""
    envs = gym.make_vec(ENV_ID, num_envs=n_envs, **kwargs)
    voiced = _count_voiced(envs.voice)
    log, hook = log_decodes(envs.voice) if hasattr(envs.voice, "decode") else (None, None)
    start = time.perf_counter()
    envs.reset(seed=seed)
    for t in range(len(plans[0])):
        envs.step(np.array([p[t] for p in plans]))
    seconds = time.perf_counter() - start
    if hook is not None:
        hook.remove()  # the voice's model may be shared: later runs do not pay for it
    reference = float("nan")
    if log is not None:
        lm = envs.voice.lm
        threads = getattr(envs.voice, "threads", None)
        reference = sum(raw_decode_seconds(lm.model, lm.tokenizer, p, n, threads) for p, n in log)
    return seconds, voiced(), reference


def run_sequential(n_envs: int, plans: list[list[int]], seed: int, **kwargs) -> tuple[float, int]:
    """The same plans on ``n_envs`` separate ``gymnasium.make`` envs, stepped one by one."""
    envs = [gym.make(ENV_ID, **kwargs) for _ in range(n_envs)]
    counters = [_count_voiced(e.unwrapped.voice) for e in envs]
    start = time.perf_counter()
    done = [False] * n_envs
    for i, env in enumerate(envs):
        env.reset(seed=seed + i)
    for t in range(len(plans[0])):
        for i, env in enumerate(envs):
            if done[i]:
                env.reset()
                done[i] = False
                continue
            _, _, term, trunc, _ = env.step(plans[i][t])
            done[i] = term or trunc
    return time.perf_counter() - start, sum(c() for c in counters)


def _count_voiced(voice) -> callable:
    """Count the user turns a voice produces from now on (wraps its batch call)."""
    count = [0]
    inner = voice.voice_batch if hasattr(voice, "voice_batch") else None
    if inner is None:
        original = voice.voice

        def voice_one(acts, rng):
            count[0] += 1
            return original(acts, rng)

        voice.voice = voice_one
    else:

        def voice_batch(acts_list, rngs):
            count[0] += len(acts_list)
            return inner(acts_list, rngs)

        voice.voice_batch = voice_batch
    return lambda: count[0]


def log_decodes(voice):
    """From now on, log each batched decode of an LM voice: its prompts and in how many
    forward calls each row took part (the tokens it wrote over all its attempts: a row
    leaves the batch when its sample is taken, and a retry goes on in the same batch).

    Returns the log and an object whose ``remove()`` undoes the logging."""
    from dialog_env.lm import generation

    log: list[tuple[list[str], list[int]]] = []
    original, resampling = voice.decode, generation.decode_resampling
    steps: list[list[int]] = []

    def counted(*args, **kwargs):
        decoded = resampling(*args, **kwargs)
        steps.append(decoded.steps)
        return decoded

    def decode(prompts, *rest):
        steps.clear()
        out = original(prompts, *rest)
        (rows,) = steps
        log.append((list(prompts), rows))
        return out

    class Undo:
        def remove(self):
            voice.decode, generation.decode_resampling = original, resampling

    voice.decode, generation.decode_resampling = decode, counted
    return log, Undo()


def raw_decode_seconds(
    model, tokenizer, prompts: Sequence[str], lengths: Sequence[int], threads: int | None
) -> float:
    """The floor of one logged decode (see the module), timed, on as many CPU threads as
    the voice decodes with. Its steps are the voice's own fastest ones: the in-place KV
    cache (``kv_cache.growing_cache``), the decode loops' own forward
    (``generation.next_logits``: ``fast_step.decode_step`` where the model has it) and
    rows leaving by one move (``generation.compaction``)."""
    import torch

    from dialog_env.lm.generation import (
        cache_keyword,
        compaction,
        last_logits_only,
        left_pad,
        next_logits,
    )
    from dialog_env.lm.kv_cache import growing_cache
    from dialog_env.lm.threads import torch_threads

    keyword = cache_keyword(model)
    with torch_threads(threads):
        start = time.perf_counter()
        with torch.inference_mode():
            enc = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
            ids, mask, positions = left_pad(enc, tokenizer.pad_token_id)
            past = growing_cache(model.config, reserve=max(lengths) + 1)
            _, logits = next_logits(
                model, keyword, ids, mask, positions, past, **last_logits_only(model)
            )
            token = logits.argmax(-1, keepdim=True)
            positions = positions[:, -1:]
            rows: list[list[int]] = [[] for _ in prompts]
            active = list(range(len(prompts)))
            for step in range(1, max(lengths) + 1):
                for pos, row in enumerate(active):
                    rows[row].append(token[pos, 0])
                leaving = [lengths[row] <= step for row in active]
                if all(leaving):
                    break
                if any(leaving):  # rows that wrote their tokens leave the batch
                    order = compaction(leaving)
                    keep = torch.tensor(order)
                    past.batch_select_indices(keep)
                    mask, positions, token = mask[keep], positions[keep], token[keep]
                    active = [active[i] for i in order]
                mask = torch.cat([mask, torch.ones_like(token)], dim=-1)
                positions = positions + 1
                _, logits = next_logits(model, keyword, token, mask, positions, past)
                token = logits.argmax(-1, keepdim=True)
            [tokenizer.decode([int(i) for i in row], skip_special_tokens=True) for row in rows]
        return time.perf_counter() - start


SMOKE = {"sizes": [1, 2], "steps": 4}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[1, 8, 64])
    p.add_argument("--steps", type=int, default=40, help="vector steps per run")
    p.add_argument("--user-model", default="tiny")
    p.add_argument("--seed", type=int, default=0)
    add_out_argument(p)
    args = parse_args(p, argv, SMOKE)
    with BenchRecord("vector_speed", argv, args) as record:
        measure(args, record)


def measure(args: argparse.Namespace, record: BenchRecord) -> None:
    """Run every size on both sides, print the table and keep the biggest N's figures."""
    kwargs = {"user_model": args.user_model}
    print(f"{ENV_ID}, user_model={args.user_model}, {args.steps} steps per run")
    biggest = max(args.sizes)
    plans = record_actions(biggest, args.steps, args.seed, **kwargs)
    header = (
        "N",
        "vector turns/s",
        "floor decode turns/s",
        "vector/floor",
        "sequential turns/s",
        "vector/seq",
    )
    print("{:>4} {:>15} {:>20} {:>12} {:>19} {:>11}".format(*header))
    for n in sorted(set(args.sizes)):  # the ratio lines below are the biggest N's
        vec_s, vec_turns, raw_s = run_vector(n, plans[:n], args.seed, **kwargs)
        seq_s, seq_turns = run_sequential(n, plans[:n], args.seed, **kwargs)
        assert vec_turns == seq_turns, "the two runs must voice the same turns"
        vec_rate, raw_rate, seq_rate = vec_turns / vec_s, vec_turns / raw_s, seq_turns / seq_s
        print(
            f"{n:>4} {vec_rate:>15,.1f} {raw_rate:>20,.1f} {vec_rate / raw_rate:>12.2f} "
            f"{seq_rate:>19,.1f} {vec_rate / seq_rate:>10.2f}x"
        )
    record.figures |= {"n": n, "vector_turns_s": vec_rate, "floor_turns_s": raw_rate}
    record.figures |= {"sequential_turns_s": seq_rate, "floor_vs_sequential": raw_rate / seq_rate}
    record.ratio(
        "vs_floor", f"vector / raw decode floor at N={n}", vec_rate / raw_rate, "aim: >= 0.9"
    )
    record.ratio(
        "vs_sequential", f"vector / sequential at N={n}", vec_rate / seq_rate, "aim: >= 20"
    )


if __name__ == "__main__":
    main()
