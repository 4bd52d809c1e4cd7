"""The GPU path in one go: the env, LM agents and group RL on CUDA, for the tiny LM and
for a randomly initialised model of a real architecture and size.

One script, meant for one call on a machine with a CUDA GPU (about 3 minutes on an H200),
printing one table. Every figure is measured in this run, each beside its reference:

- **peaks**: the device's bf16 matrix rate (an n x n x n product, median of repeats) and
  its copy bandwidth (device to device, bytes read + written). They are the ceilings the
  model figures below are read against; datasheet numbers are not used.
- **env**: the booking test set's first episodes played by the rule-based expert, the
  user voiced by the tiny LM on ``device`` (``gym.make_vec("Dialog-v1", device=...)``),
  and the same episodes with the voice on the CPU: episodes/s each, and how many
  transcripts came out identical (the voice's floats differ between devices, so a
  sampled sentence may too: the board's episodes are the CPU's).
- **lm agent**: ``sft-expert`` on ``device`` against the same voice: episodes/s, and the
  same on the CPU.
- **grpo (tiny)**: group-relative RL iterations of the tiny LM from ``sft-noisy`` on
  ``device`` (K seeds x G rollouts in one vector env, the update with its reference),
  timed rollout / update: episodes/s and sampled and trained tokens/s.
- **qwen2 (~0.5B)**: a Qwen2 architecture at Qwen2-0.5B's depth and width (24 layers,
  896 wide, 14 heads, 2 KV heads), built from its config with random weights (no weights
  can be downloaded) over the shipped tokenizer's 1,536-token vocabulary (so ~360M
  parameters: the real 151k-token embedding is left out), in bf16:
  decode tokens/s at batch 64 with a KV cache; a training step's tokens/s with its model
  FLOPs (6 x parameters x tokens) as a share of the measured bf16 peak; the same model as
  an ``hf:`` chat agent playing episodes; group RL iterations of it; peak memory of each.

::

    python -m bench.gpu_speed                # on a CUDA machine
    python -m bench.gpu_speed --smoke        # seconds, on the CPU: a tiny Qwen2, few episodes

Without CUDA and without ``--smoke`` it says so and exits 0: the figures belong to a GPU.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import parse_args

#: Qwen2-0.5B's body (its config on the Hub), over the shipped tokenizer's vocabulary.
QWEN2_05B = dict(
    hidden_size=896,
    intermediate_size=4864,
    num_hidden_layers=24,
    num_attention_heads=14,
    num_key_value_heads=2,
    max_position_embeddings=4096,
    rope_theta=1_000_000.0,
    tie_word_embeddings=True,
)
#: A Qwen2 of the same shape family, small enough for the CPU smoke run.
QWEN2_SMOKE = dict(
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=2048,
    tie_word_embeddings=True,
)
#: A chat template in the shape real ones have (a header per role, an end marker).
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}</s>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)

SMOKE = {
    "device": "cpu",
    "peak_size": 256,
    "episodes": 2,
    "groups": 2,
    "group_size": 2,
    "iterations": 1,
    "decode_batch": 4,
    "decode_tokens": 8,
    "train_batch": 2,
    "train_length": 64,
    "qwen_episodes": 2,
    "qwen_max_new_tokens": 8,
    "qwen": "smoke",
    "user_model": "template",
}


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(fn: Callable[[], Any], device: str) -> tuple[float, Any]:
    """Seconds ``fn()`` took on ``device`` (synchronized before and after), and its value."""
    _sync(device)
    tick = time.perf_counter()
    value = fn()
    _sync(device)
    return time.perf_counter() - tick, value


def peak_memory_gib(device: str) -> float:
    """The device's peak allocated memory since the last reset, in GiB (0 on the CPU)."""
    import torch

    if not device.startswith("cuda"):
        return 0.0
    peak = torch.cuda.max_memory_allocated() / 2**30
    torch.cuda.reset_peak_memory_stats()
    return peak


def device_peaks(device: str, n: int) -> dict[str, float]:
    """The bf16 matrix rate (TFLOP/s, median of 10 products on random data) and the copy
    bandwidth (GB/s, bytes read + written) of ``device``."""
    import torch

    g = torch.Generator(device).manual_seed(0)
    a = torch.randn(n, n, device=device, generator=g).to(torch.bfloat16)
    b = torch.randn(n, n, device=device, generator=g).to(torch.bfloat16)
    for _ in range(3):
        a @ b
    times = [timed(lambda: a @ b, device)[0] for _ in range(10)]
    tflops = 2 * n**3 / statistics.median(times) / 1e12
    src = torch.randn(max(n * n * 16, 1 << 20), device=device, generator=g)
    dst = torch.empty_like(src)
    dst.copy_(src)
    copies = [timed(lambda: dst.copy_(src), device)[0] for _ in range(10)]
    gbs = 2 * src.numel() * src.element_size() / statistics.median(copies) / 1e9
    return {"bf16_tflops": tflops, "copy_gbs": gbs}


def play(make_agent: Callable[[], Any], episode_set, device: str, batch: int) -> tuple:
    """Episodes/s of ``make_agent()`` on ``episode_set`` with the voice on ``device``, and
    the records."""
    from leaderboard.rollout import AgentMessages, play_episodes

    source, episodes = AgentMessages(make_agent, batch), episode_set.with_env_kwargs(device=device)
    seconds, records = timed(lambda: play_episodes(source, episodes, progress=False), device)
    return len(records) / seconds, records


def same_transcripts(a: list[dict], b: list[dict]) -> int:
    """How many episodes of two runs on the same seeds have identical turns."""
    return sum(x["turns"] == y["turns"] for x, y in zip(a, b, strict=True))


def grpo_iterations(policy, device: str, args, make_envs: Callable[[], Any]) -> dict[str, float]:
    """``args.iterations`` GRPO iterations of ``policy`` (after one warm-up iteration):
    rollout and update seconds, episodes and tokens."""
    import numpy as np
    import torch

    from baselines.common.rollout import pack_episode, score_rows
    from baselines.grpo_config import GRPOConfig
    from baselines.grpo_groups import collect_groups, set_advantages
    from baselines.grpo_update import grpo_update

    config = GRPOConfig(groups=args.groups, group_size=args.group_size, resample_rounds=0)
    reference = copy.deepcopy(policy).requires_grad_(False).eval()
    optimizer = torch.optim.Adam(policy.model.parameters(), lr=config.lr, eps=1e-5)
    generator = torch.Generator(device).manual_seed(0)
    rng = np.random.default_rng(0)
    envs = make_envs()
    totals = dict.fromkeys(("rollout", "update", "episodes", "sampled", "trained"), 0.0)
    try:
        for it in range(args.iterations + 1):
            rollout, (played, kept, _) = timed(
                lambda: collect_groups(envs, policy, rng, generator, config), device
            )
            rows = [row for e in kept for row in pack_episode(e.messages)]

            def score_and_update(rows=rows, kept=kept):  # as grpo.main does
                score_rows(reference, rows, config.minibatch_rows)
                set_advantages(kept, config)
                return rows and grpo_update(policy, optimizer, rows, config, rng)

            update, _ = timed(score_and_update, device)
            if it == 0:
                continue
            totals["rollout"] += rollout
            totals["update"] += update
            totals["episodes"] += len(played)
            totals["sampled"] += sum(len(m.tokens) for e in played for m in e.messages)
            totals["trained"] += sum(len(r.ids) for r in rows) * config.epochs
    finally:
        envs.close()
    return totals


def save_qwen2(directory: Path, shape: dict[str, Any], device: str) -> tuple[Any, Any, Path]:
    """A randomly initialised Qwen2 (seeded) over the shipped tokenizer, in bf16 on
    ``device`` (fp32 on the CPU), saved with a chat template as a transformers directory."""
    import torch
    import transformers

    from dialog_env.lm import TINY_MODEL_DIR

    tokenizer = transformers.AutoTokenizer.from_pretrained(TINY_MODEL_DIR)
    tokenizer.chat_template = CHAT_TEMPLATE
    config = transformers.Qwen2Config(
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **shape,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = transformers.Qwen2ForCausalLM(config)
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    model = model.to(device=device, dtype=dtype).eval()
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return model, tokenizer, directory


def qwen2_decode(model, device: str, batch: int, tokens: int, prompt: int = 128) -> float:
    """Sampled tokens/s of ``model`` at ``batch`` rows, ``tokens`` new tokens each after a
    ``prompt``-token prefill, with transformers' KV cache (``generate``, no early stop)."""
    import torch

    g = torch.Generator(device).manual_seed(0)
    vocab = model.config.vocab_size
    ids = torch.randint(3, vocab, (batch, prompt), device=device, generator=g)
    kwargs = dict(
        max_new_tokens=tokens, min_new_tokens=tokens, do_sample=True, top_k=0,
        attention_mask=torch.ones_like(ids), pad_token_id=model.config.pad_token_id,
    )  # fmt: skip
    with torch.no_grad():
        model.generate(ids, **{**kwargs, "max_new_tokens": 4, "min_new_tokens": 4})  # warm-up
        seconds, _ = timed(lambda: model.generate(ids, **kwargs), device)
    return batch * tokens / seconds


def qwen2_train(model, device: str, batch: int, length: int, steps: int = 5) -> dict[str, float]:
    """A training step's tokens/s (forward, cross-entropy, backward, AdamW) on random
    token rows, and its model FLOPs per second (6 x parameters x tokens)."""
    import torch

    model.train()
    params = sum(p.numel() for p in model.parameters())
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    g = torch.Generator(device).manual_seed(1)
    ids = torch.randint(3, model.config.vocab_size, (batch, length), device=device, generator=g)

    def step() -> None:
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    step()  # warm-up: the optimizer's state, the kernels' first launches
    seconds, _ = timed(lambda: [step() for _ in range(steps)], device)
    model.eval()
    tokens = batch * length * steps
    return {"tokens_s": tokens / seconds, "tflops": 6 * params * tokens / seconds / 1e12}


def grpo_summary(t: dict[str, float], device: str) -> dict[str, float]:
    """:func:`grpo_iterations`' totals with its rates and the device's peak memory."""
    seconds = t["rollout"] + t["update"]
    return {
        **t,
        "episodes_s": t["episodes"] / seconds,
        "sampled_tokens_s": t["sampled"] / t["rollout"],
        "trained_tokens_s": t["trained"] / max(t["update"], 1e-9),
        "peak_gib": peak_memory_gib(device),
    }


def print_grpo(label: str, g: dict[str, float], args) -> None:
    print(
        f"grpo ({label}, {args.groups}x{args.group_size}): {g['episodes_s']:.2f} episodes/s "
        f"(rollout {g['rollout']:.1f} s, update {g['update']:.1f} s), "
        f"sampled {g['sampled_tokens_s']:.0f} tok/s, trained {g['trained_tokens_s']:.0f} "
        f"tok/s, peak memory {g['peak_gib']:.1f} GiB"
    )


def measure_tiny(args, device: str, episode_set, make_envs) -> dict[str, Any]:
    """The env (the expert against the LM voice), the LM agent ``sft-expert`` and group RL
    of ``sft-noisy``, the tiny LM on ``device``; the first two also on the CPU."""
    from agents import checkpoint_dir, load_agent
    from agents.lm_agent import LMAgent
    from baselines.common.policy import TokenPolicy

    out: dict[str, Any] = {}
    batch = min(64, args.episodes)
    for label, spec in (("env (expert)", "expert"), ("lm agent (sft-expert)", "sft-expert")):

        def make(spec=spec, where=device):
            if spec == "expert":
                return load_agent(spec)
            return LMAgent.load(checkpoint_dir(spec), where)

        rate, records = play(make, episode_set, device, batch)
        cpu_rate, cpu_records = play(lambda make=make: make(where="cpu"), episode_set, "cpu", batch)
        same = same_transcripts(records, cpu_records)
        key = label.split(" (")[0].replace(" ", "_")
        out[key] = {"episodes_s": rate, "cpu_episodes_s": cpu_rate, "same_as_cpu": same}
        print(
            f"{label}: {rate:.1f} episodes/s on {device}, {cpu_rate:.1f} on the CPU; "
            f"{same}/{len(records)} transcripts identical"
        )
    peak_memory_gib(device)
    tiny = TokenPolicy.load(checkpoint_dir("sft-noisy"), device)
    out["grpo_tiny"] = grpo_summary(grpo_iterations(tiny, device, args, make_envs), device)
    print_grpo("tiny", out["grpo_tiny"], args)
    return out


def measure_qwen2(args, device: str, make_envs, peak: float) -> dict[str, Any]:
    """A Qwen2 of ``args.qwen``'s shape on ``device``: decode, a training step, the model
    as an ``hf:`` agent, and group RL of it (``peak``: the measured bf16 TFLOP/s)."""
    from agents.hf_chat import HFChatAgent
    from baselines.common.policy import TokenPolicy
    from leaderboard.episodes import get_episode_set

    shape = QWEN2_05B if args.qwen == "0.5b" else QWEN2_SMOKE
    with tempfile.TemporaryDirectory() as tmp:
        model, _, path = save_qwen2(Path(tmp) / "qwen2", shape, device)
        params = sum(p.numel() for p in model.parameters())
        decode = qwen2_decode(model, device, args.decode_batch, args.decode_tokens)
        train = qwen2_train(model, device, args.train_batch, args.train_length)
        q: dict[str, Any] = {
            "params": params,
            "decode_tokens_s": decode,
            "train_tokens_s": train["tokens_s"],
            "train_tflops": train["tflops"],
            "train_share_of_peak": train["tflops"] / peak,
            "peak_gib": peak_memory_gib(device),
        }
        print(
            f"qwen2 ({params / 1e6:.0f}M params): decode {decode:.0f} tok/s at batch "
            f"{args.decode_batch}; training {train['tokens_s']:.0f} tok/s = "
            f"{train['tflops']:.1f} TFLOP/s, {q['train_share_of_peak']:.1%} of the bf16 peak; "
            f"peak memory {q['peak_gib']:.1f} GiB"
        )
        del model
        hf_set = get_episode_set("Dialog-v1", "test", limit=args.qwen_episodes)
        hf_set = hf_set.with_env_kwargs(user_model=args.user_model)

        def make_hf() -> HFChatAgent:
            return HFChatAgent.from_pretrained(
                path, device=device, max_new_tokens=args.qwen_max_new_tokens
            )

        rate, records = play(make_hf, hf_set, device, min(64, args.qwen_episodes))
        messages = sum(sum(t["role"] == "assistant" for t in r["turns"]) for r in records)
        q["hf_agent_episodes_s"] = rate
        q["hf_agent_messages"] = messages
        q["hf_agent_peak_gib"] = peak_memory_gib(device)
        print(
            f"hf: agent (qwen2, random weights): {rate:.2f} episodes/s, "
            f"{messages} messages in {len(records)} episodes"
        )
        lm = make_hf()
        policy = TokenPolicy(lm.model, lm.tokenizer, max_new_tokens=args.qwen_max_new_tokens)
        policy.model.requires_grad_(True)
        q["grpo"] = grpo_summary(grpo_iterations(policy, device, args, make_envs), device)
        print_grpo("qwen2", q["grpo"], args)
    return q


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", help="the device measured (cuda, cuda:N)")
    parser.add_argument("--peak-size", type=int, default=8192, help="n of the peak's product")
    parser.add_argument("--episodes", type=int, default=64, help="test episodes played")
    parser.add_argument("--groups", type=int, default=8, help="GRPO: seeds per iteration")
    parser.add_argument("--group-size", type=int, default=8, help="GRPO: rollouts per seed")
    parser.add_argument("--iterations", type=int, default=2, help="GRPO: measured iterations")
    parser.add_argument("--decode-batch", type=int, default=64, help="qwen2 decode rows")
    parser.add_argument("--decode-tokens", type=int, default=128, help="qwen2 new tokens a row")
    parser.add_argument("--train-batch", type=int, default=16, help="qwen2 training rows")
    parser.add_argument("--train-length", type=int, default=1024, help="qwen2 row length")
    parser.add_argument("--qwen-episodes", type=int, default=32, help="hf: agent episodes")
    parser.add_argument("--qwen-max-new-tokens", type=int, default=48, help="hf: message cap")
    parser.add_argument("--qwen", choices=("0.5b", "smoke"), default="0.5b", help="qwen2 shape")
    parser.add_argument("--user-model", default="tiny", help="the user's voice")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parse_args(parser, argv, SMOKE)

    import gymnasium as gym
    import torch

    import dialog_env  # noqa: F401  (registers the ids)
    from leaderboard.episodes import get_episode_set

    device = args.device
    if device.startswith("cuda") and not torch.cuda.is_available():
        print("no CUDA device here: the GPU figures need one (try --smoke on the CPU)")
        return 0
    name = torch.cuda.get_device_name(device) if device.startswith("cuda") else "cpu"
    out: dict[str, Any] = {"device": name, "torch": torch.__version__, "args": vars(args) | {}}
    out["args"]["json"] = str(args.json) if args.json else None
    print(f"device: {name}; torch {torch.__version__}")
    out["peaks"] = device_peaks(device, args.peak_size)
    print(
        f"peaks: bf16 matmul {out['peaks']['bf16_tflops']:.1f} TFLOP/s, "
        f"copy {out['peaks']['copy_gbs']:.0f} GB/s"
    )
    episode_set = get_episode_set("Dialog-v1", "test", limit=args.episodes)
    episode_set = episode_set.with_env_kwargs(user_model=args.user_model)
    env_kwargs = {"split": "train", "user_model": args.user_model, "device": device}

    def make_envs():
        return gym.make_vec("Dialog-v1", num_envs=args.groups * args.group_size, **env_kwargs)

    out |= measure_tiny(args, device, episode_set, make_envs)
    peak = out["peaks"]["bf16_tflops"]
    out["qwen2"] = measure_qwen2(args, device, make_envs, peak)
    if args.json:
        args.json.write_text(json.dumps(out, indent=1, default=str) + "\n")
    share = out["qwen2"]["train_share_of_peak"]
    print(f"ratio qwen2 training tokens/s as model FLOPs / bf16 peak = {share:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
