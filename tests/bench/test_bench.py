"""Every bench runs in its smoke mode and prints its figure; the floors read what the
measured side reads."""

from __future__ import annotations

import importlib
import json
import math
import re

import pytest

from bench.record import RECORDED_BENCHES

RATIO = re.compile(r"^ratio (?P<what>.+?) = (?P<value>\S+)", re.MULTILINE)
GROWTH = re.compile(r"^RSS growth over episodes \d+-\d+ .*?: (?P<value>[+-]\S+) MiB", re.MULTILINE)

RATIO_BENCHES = [
    "env_speed",
    "ppo_speed",
    "sft_speed",
    "sb3_speed",
    "vector_speed",
    "voice_quality",
    "lm_agent_speed",
    "hostile_inputs",
    "decode_speed",
    "run_job_speed",
    "bon_split",
    "gpu_speed",
]


def _smoke(name: str, capsys, tmp_path) -> str:
    """Run a bench's smoke mode; a bench that takes --out writes its record, which must
    hold what the run printed and its ratio lines' values."""
    argv = ["--smoke"]
    if name in RECORDED_BENCHES:
        argv += ["--out", str(tmp_path / f"{name}.json")]
    status = importlib.import_module(f"bench.{name}").main(argv)
    assert status in (None, 0)
    out = capsys.readouterr().out
    if name in RECORDED_BENCHES:
        record = json.loads((tmp_path / f"{name}.json").read_text())
        assert record["bench"] == name and record["command"].startswith(f"python -m bench.{name}")
        assert record["figures"] and record["machine"]["cpu_count"] >= 1
        assert record["output"] and record["output"] in out
        for key, what in record["ratios"].items():
            printed = re.search(rf"^ratio {re.escape(what)} = (\S+)", out, re.MULTILINE)
            assert printed, f"no printed ratio line for {what}"
            digits = len(printed[1].partition(".")[2])  # as many as the line prints
            assert float(printed[1]) == pytest.approx(round(record["figures"][key], digits))
    return out


@pytest.mark.parametrize("name", RATIO_BENCHES)
def test_bench_smoke_prints_finite_positive_ratios(name, capsys, tmp_path):
    out = _smoke(name, capsys, tmp_path)
    ratios = {m["what"]: float(m["value"]) for m in RATIO.finditer(out)}
    assert ratios, f"no ratio line in:\n{out}"
    for what, value in ratios.items():
        assert math.isfinite(value) and value > 0, f"ratio {what} = {value}"


def test_lm_memory_smoke_prints_its_growth(capsys, tmp_path):
    out = _smoke("lm_memory", capsys, tmp_path)
    found = GROWTH.search(out)
    assert found, f"no growth line in:\n{out}"
    assert math.isfinite(float(found["value"]))
    assert "baseline after 1 warm-up episodes" in found[0]


def test_ppo_floor_reads_the_tokens_the_update_reads():
    """The reference's cross-entropy is minus the mean log-prob ``evaluate`` gives the
    same message tokens: the floor predicts exactly the tokens the update trains."""
    from types import SimpleNamespace

    from baselines.common.policy import TokenPolicy
    from bench.ppo_speed import raw_forward_backward
    from dialog_env.lm import TINY_MODEL_DIR

    policy = TokenPolicy.load(TINY_MODEL_DIR)
    prompts, messages = [[5, 6, 7, 8, 9, 10], [11, 12, 13]], [[20, 21, 22], [30, 31, 32, 33]]
    logprobs, _, _ = policy.evaluate(prompts, messages)
    batch = [SimpleNamespace(prompt=p, tokens=m) for p, m in zip(prompts, messages, strict=True)]
    assert raw_forward_backward(policy, batch) == pytest.approx(
        -float(logprobs.detach().mean()), rel=1e-5
    )
    assert all(p.grad is None for p in policy.parameters())


def test_grpo_floor_reads_the_tokens_of_every_packed_span():
    """On packed rows (several messages per row), the floor's cross-entropy is minus the
    mean log-prob ``evaluate_spans`` gives the message tokens: the same tokens, no more."""
    from baselines.common.policy import TokenPolicy
    from baselines.common.rollout import Row
    from bench.grpo_speed import raw_forward_backward
    from dialog_env.lm import TINY_MODEL_DIR

    policy = TokenPolicy.load(TINY_MODEL_DIR)
    rows = [Row(list(range(5, 17)), [(3, 6), (9, 12)], []), Row(list(range(40, 47)), [(2, 4)], [])]
    logprobs, _, _ = policy.evaluate_spans([r.ids for r in rows], [r.spans for r in rows])
    assert logprobs.numel() == 3 + 3 + 2
    assert raw_forward_backward(policy, rows) == pytest.approx(
        -float(logprobs.detach().mean()), rel=1e-5
    )
    assert all(p.grad is None for p in policy.parameters())


def test_sft_floor_trains_the_tokens_the_trainer_labels():
    """On a trainer batch, the floor's loss (logits at labelled columns only) equals the
    model's own causal-LM loss with the trainer's labels (logits everywhere)."""
    import copy
    import random

    from baselines.sft import IGNORE, padded_batches, tokenize_demo
    from bench import floor_forward_backward
    from dialog_env.lm import TINY_MODEL_DIR
    from dialog_env.lm.codec import MessageCodec
    from dialog_env.lm.loading import load_causal_lm

    lm = load_causal_lm(TINY_MODEL_DIR)
    codec = MessageCodec(lm.tokenizer)
    turns = [
        {"role": "user", "text": "I need a table for two tonight."},
        {"role": "assistant", "text": "Which area would you like?"},
        {"role": "user", "text": "The centre, please."},
        {"role": "assistant", "text": "Any cuisine in mind?"},
    ]
    context = lm.model.config.max_position_embeddings
    samples = tokenize_demo(codec, turns, context) + tokenize_demo(codec, turns[:2], context)
    ids, labels, mask = next(padded_batches(samples, 2, random.Random(0), codec.pad_id))
    assert not bool(mask.all())  # rows of two lengths: the padding is in the batch
    model = copy.deepcopy(lm.model).requires_grad_(True)
    reads = labels.new_zeros(labels.shape, dtype=bool)
    reads[:, :-1] = labels[:, 1:] != IGNORE
    assert 0 < int(reads.sum()) < int(mask.sum())  # only some columns are trained
    floor = floor_forward_backward(model, ids, mask, None, reads, labels[:, 1:][reads[:, :-1]])
    full = float(model(input_ids=ids, attention_mask=mask, labels=labels).loss.detach())
    assert floor == pytest.approx(full, rel=1e-5)


def test_lm_agent_speed_times_another_checkout_as_a_third_side(capsys):
    """``--reference-tree``: the same evaluation by another checkout's code, in a
    subprocess, its episodes checked equal (here this checkout stands in for it)."""
    from pathlib import Path

    from bench import lm_agent_speed

    tree = Path(lm_agent_speed.__file__).resolve().parents[1]
    assert lm_agent_speed.main(["--smoke", "--reference-tree", str(tree)]) == 0
    out = capsys.readouterr().out
    assert re.search(rf"^ratio this checkout / {re.escape(str(tree))} episodes/s = \S+", out, re.M)
    with pytest.raises(SystemExit, match="not a checkout of this project"):
        lm_agent_speed.main(["--smoke", "--reference-tree", str(tree / "tests")])


def test_grpo_speed_times_a_whole_run_beside_another_checkout(capsys, tmp_path):
    """A whole ``train grpo`` run timed by parts, and ``--reference-tree``: the same run by
    another checkout's code (here this checkout stands in for it), its weights checked
    equal; the record holds both sides' split, their ratio, the commit and the load."""
    from pathlib import Path

    from bench import grpo_speed

    tree = Path(grpo_speed.__file__).resolve().parents[1]
    path = tmp_path / "grpo.json"
    argv = ["--smoke", "--reference-tree", str(tree), "--out", str(path)]
    assert grpo_speed.main(argv) == 0
    out = capsys.readouterr().out
    assert "both trained the same weights (sha256) and the same curve" in out
    ratios = {m["what"]: float(m["value"]) for m in RATIO.finditer(out)}
    assert ratios and all(math.isfinite(v) and v > 0 for v in ratios.values())
    record = json.loads(path.read_text())
    figures = record["figures"]
    assert set(record["ratios"]) == {"ratio", "vs_reference"}
    assert figures["vs_reference"] == pytest.approx(
        figures["per_cpu_hour"] / figures["ref_per_cpu_hour"]
    )
    for prefix in ("", "ref_"):
        parts = [figures[f"{prefix}{part}_cpu_s"] for part in grpo_speed.PARTS]
        assert sum(parts) == pytest.approx(figures[f"{prefix}cpu_s"])
        assert figures[f"{prefix}episodes"] > 0 and figures[f"{prefix}screening_cpu_s"] > 0
    assert figures["update_vs_floor"] > 0 and figures["sampled_tokens_s"] > 0
    assert len(record["load_average"]["start"]) == 3 and record["commit"]
    with pytest.raises(SystemExit, match="not a checkout of this project"):
        grpo_speed.main(["--smoke", "--reference-tree", str(tree / "tests")])


@pytest.mark.skipif(
    not importlib.import_module("torch").cuda.is_available(), reason="needs a CUDA device"
)
def test_gpu_speed_runs_on_cuda(capsys, tmp_path):
    """The GPU script's whole path on the device, at small sizes: every section reports."""
    from bench import gpu_speed

    figures = tmp_path / "gpu.json"
    argv = ["--smoke", "--device", "cuda", "--qwen", "smoke", "--json", str(figures)]
    assert gpu_speed.main(argv) == 0
    import json

    out = json.loads(figures.read_text())
    assert out["peaks"]["bf16_tflops"] > 0 and out["qwen2"]["decode_tokens_s"] > 0
    assert out["env"]["same_as_cpu"] >= 0 and out["grpo_tiny"]["episodes"] > 0


def test_the_grpo_bench_compares_results_but_the_screen_s_env_steps():
    """A screen that stops early (``--screen-chunk``) picks the same seeds from fewer greedy
    episodes, and an older commit's curve points lack the per-episode scores: the same
    results. Other weights, a curve point's score or the rollouts' env steps are not."""
    from bench.grpo_speed import same_results

    def run(weights="a", success=0.5, env_steps=300, screen=100, per_episode=True):
        point = {"iteration": 1, "env_steps": env_steps, "dev_success": success}
        if per_episode:
            point["episode_success"] = [1, 0]
        budget = {"env_steps": env_steps, "screen_env_steps": screen}
        return {"weights_sha256": weights, "curve": [point], "budget": budget}

    assert same_results(run(), run(env_steps=250, screen=50))
    assert same_results(run(), run(per_episode=False))
    for changed in (run(weights="b"), run(success=0.6), run(env_steps=290)):
        assert not same_results(changed, run())


def test_the_grpo_bench_gives_its_levers_to_this_checkout_only():
    """``--levers``: this checkout's run gets them on top of the settings, the reference
    side runs the settings as they are."""
    from bench.grpo_speed import build_parser, side_configs

    args = build_parser().parse_args(
        ["--lr", "1e-4", "--levers", "--merge-twins --screen-chunk 32"]
    )
    settings, ours = side_configs(args)
    assert (settings.merge_twins, settings.screen_chunk, settings.lr) == (False, 0, 1e-4)
    assert (ours.merge_twins, ours.screen_chunk, ours.lr) == (True, 32, 1e-4)
    assert ours.init == settings.init == "sft-careless"  # the science runs' start
