"""Group-RL throughput: training episodes per CPU-hour of a whole run, where its time goes,
and the update against the floor of its forward + backward, in one run.

The bench runs ``dialog-bench train grpo`` whole (``baselines.grpo.main``: the dev
evaluations, the ``--seeds greedy-fails`` screens, the resample rounds and the final KL
probe included) in a subprocess, with the science runs' settings by default, shortened
for a bench: ``--init sft-careless`` (the shipped board checkpoint), 8 seeds x 8
rollouts, ``--advantage rloo --temperature 1.0 --epochs 2 --lr 5e-5 --beta 0.05
--kl-estimator k2 --resample-rounds 1 --seeds greedy-fails --keep best --threads 1``,
but ``--iterations 2 --eval-every 1 --eval-episodes 40`` instead of 20 iterations with
200 dev episodes every 5: three evaluations of 40 episodes for two iterations keep a
science run's share of dev episodes (1,000 dev episodes for 20 x 64-128 training ones).

**Training episodes per CPU-hour**: the rollout episodes the run played (K x G per
round; not the screens', dev or KL-probe episodes) over the process's CPU time
(``time.process_time``, all of ``main``: loading and saving too). CPU time, not wall
time, because the machine is shared: a busy neighbour stretches wall time, much less
the CPU time the run itself spends. The split, in CPU seconds of each call:

- rollout: ``baselines.grpo_groups.play_groups`` (the policy's batched sampling and the
  vector env's steps, the LM voice of the user included);
- screening: ``baselines.seed_screen.screen_seeds`` (one greedy episode per candidate);
- reference scoring: ``baselines.common.rollout.score_rows`` of the frozen init;
- update: ``baselines.grpo_update.grpo_update``;
- evaluation: ``baselines.common.evaluation.evaluate_on_dev``;
- KL probe: the final policy's extra round of rollouts (``baselines.grpo.probe_kl``);
- other: the rest (loading, advantages, logging, saving).

**The floor**: after the run, the update's own minibatches (replayed from a copy of its
generator) get the floor of ``evaluate_spans`` + ``backward()``
(:func:`bench.floor_forward_backward`) on a fresh copy of the init; the table then
shows the update and rollout + update against it, and the sampled tokens/s of the
rollout.

``--levers FLAGS`` adds GRPO flags to this checkout's run only (``--levers
'--merge-twins --screen-chunk 32 --remember-turns'``): the reference side runs the
settings without them, as that commit's users ran it.

``--reference-tree DIR`` runs the same command with the code of another checkout
(``git worktree add --detach DIR COMMIT``), in a second process at the same time (each
side's figure is its own CPU time), and checks that it trained the same weights
(the sha256 of the kept checkpoint's weights) and the same learning curve (its env steps
but the screen's: ``--screen-chunk`` plays fewer greedy episodes to the same seeds): a
speed-up that changed the results fails the bench. A lever that changes the float sums
by design (``--merge-twins``) is not compared bit for bit; its learning curve against
the run without it is ``python -m bench.grpo_curves``'s to judge. ``--out PATH`` writes
the run's record (:class:`bench.record.BenchRecord`): episodes per CPU-hour on each side
(``per_cpu_hour``, ``ref_per_cpu_hour``) and their ratio (``vs_reference``), each part's
CPU seconds (``rollout_cpu_s`` ..., ``ref_rollout_cpu_s`` ...), the sampled tokens per
CPU second (``sampled_tokens_s``), the update and rollout + update against the floor
(``update_vs_floor``, ``ratio``) and the floor's totals. ::

    python -m bench.grpo_speed [--iterations 2] [--eval-episodes 40] [any GRPO flag]
    git worktree add --detach /tmp/ref-grpo 8b0cabd
    python -m bench.grpo_speed --reference-tree /tmp/ref-grpo --out bench/results/grpo_speed.json
    python -m bench.grpo_speed --smoke    # seconds: 2 seeds x 2 rollouts, template voice
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from baselines.common.config import add_config_arguments, config_argv, config_from_args
from baselines.common.rollout import Row
from baselines.common.run import resolve_init
from baselines.grpo_config import GRPOConfig
from bench import (
    check_reference_tree,
    floor_forward_backward,
    parse_args,
    report_rl_speed,
    run_in_tree,
)
from bench.record import BenchRecord, add_out_argument

ROOT = Path(__file__).resolve().parents[1]
#: The parts of a run's CPU time, in the order the table shows them.
PARTS = ("rollout", "screening", "reference", "update", "evaluation", "kl_probe", "other")

#: Run by ``python -c`` with a checkout's code first on the path (``sys.argv[1]``): trains
#: with the GRPO flags ``sys.argv[3:]``, timing each part of the run in CPU seconds, and
#: prints its figures as JSON. ``sys.argv[2]`` is ``floor`` to keep the update's rows
#: (for this checkout's floor), anything else not to. Flags that the checkout's trainer
#: does not have (an older commit's, e.g. ``--remember-turns``) are left out and listed.
_TIMED_RUN = """
import argparse, copy, hashlib, json, sys, time
sys.path.insert(0, sys.argv[1])
import baselines.grpo as grpo
import baselines.grpo_groups as groups
from baselines.common.config import add_config_arguments, config_from_args
from baselines.grpo_config import GRPOConfig
seconds, counts, batches = {}, {"episodes": 0, "sampled": 0}, []
def timed(module, name, part):
    inner = getattr(module, name)
    def wrapper(*args, **kwargs):
        start = time.process_time()
        try:
            return inner(*args, **kwargs)
        finally:
            seconds[part] = seconds.get(part, 0.0) + time.process_time() - start
    setattr(module, name, wrapper)
    return wrapper
for module, name, part in (
    (groups, "screen_seeds", "screening"), (grpo, "score_rows", "reference"),
    (grpo, "evaluate_on_dev", "evaluation"), (grpo, "play_groups", "kl_probe"),
):
    timed(module, name, part)
play = timed(groups, "play_groups", "rollout")
def counted(*args, **kwargs):
    episodes = play(*args, **kwargs)
    counts["episodes"] += len(episodes)
    counts["sampled"] += sum(len(m.tokens) for e in episodes for m in e.messages)
    return episodes
groups.play_groups = counted
update = timed(grpo, "grpo_update", "update")
def kept_rows(policy, optimizer, rows, config, rng):
    if sys.argv[2] == "floor":  # the minibatches the update reads (this checkout only)
        from baselines.grpo_update import update_steps
        steps = update_steps(rows, config, copy.deepcopy(rng))
        batches.extend(batch for step in steps for batch in step)
    return update(policy, optimizer, rows, config, rng)
grpo.grpo_update = kept_rows
parser = argparse.ArgumentParser()
add_config_arguments(parser, GRPOConfig)
args, ignored = parser.parse_known_args(sys.argv[3:])  # flags this code does not have
config = config_from_args(args, GRPOConfig)
wall, cpu = time.perf_counter(), time.process_time()
out = grpo.main(config)
wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
manifest = json.loads((out / "manifest.json").read_text())
weights = hashlib.sha256((out / "lm" / "model.safetensors").read_bytes()).hexdigest()
rows = [[[r.ids, r.spans] for r in batch] for batch in batches]
print(json.dumps({
    "wall_s": wall, "cpu_s": cpu, "seconds": seconds, **counts, "weights_sha256": weights,
    "curve": manifest["curve"], "budget": manifest["budget"], "rows": rows, "ignored": ignored,
}))
"""


def timed_run(tree: Path, argv: list[str], floor: bool) -> dict[str, Any]:
    """The figures of a whole ``train grpo`` run with the flags ``argv`` by the code in
    ``tree``: CPU and wall seconds, CPU seconds per part (:data:`PARTS`), rollout
    episodes and sampled tokens, the kept weights' sha256, the curve and budget, and
    (``floor``) the update's minibatches as ``[ids, spans]`` rows."""
    out = run_in_tree(tree, _TIMED_RUN, ["floor" if floor else "-", *argv], "the GRPO run")
    out["seconds"]["other"] = out["cpu_s"] - sum(out["seconds"].values())
    return out


def raw_forward_backward(policy, batch: list[Row]) -> float:
    """The floor of ``policy.evaluate_spans`` + ``backward()`` on ``batch``."""
    from baselines.common.policy import span_reads
    from dialog_env.lm.generation import left_pad

    device = next(policy.parameters()).device
    sequences, spans = [r.ids for r in batch], [r.spans for r in batch]
    ids, mask, positions = left_pad(sequences, policy.codec.pad_id, device)
    reads = span_reads(sequences, spans, ids.shape[1], device)
    targets = ids[:, 1:][reads[:, :-1]]
    return floor_forward_backward(policy.model, ids, mask, positions, reads, targets)


def floor_totals(init: Path, run: dict[str, Any]) -> dict[str, float]:
    """:func:`bench.report_rl_speed`'s totals for ``run``: its rollout and update CPU
    seconds, and the floor's on the update's minibatches (a fresh copy of ``init``)."""
    import time

    from baselines.common.policy import TokenPolicy

    policy = TokenPolicy.load(init)
    batches = [[Row(ids, [tuple(s) for s in spans], []) for ids, spans in b] for b in run["rows"]]
    start = time.process_time()
    for batch in batches:
        raw_forward_backward(policy, batch)
    lengths = [[len(r.ids) for r in batch] for batch in batches]
    return {
        "raw": time.process_time() - start,
        "update": run["seconds"].get("update", 0.0),
        "rollout": run["seconds"].get("rollout", 0.0),
        "tokens": float(sum(map(sum, lengths))),
        "padded": float(sum(max(ls) * len(ls) for ls in lengths)),
        "sampled": float(run["sampled"]),
    }


def per_cpu_hour(run: dict[str, Any]) -> float:
    """Training (rollout) episodes per hour of the run's CPU time."""
    return run["episodes"] / run["cpu_s"] * 3600


def print_split(label: str, run: dict[str, Any]) -> None:
    """One side's figures: episodes per CPU-hour and the CPU seconds of each part."""
    print(
        f"{label}: {run['episodes']} training episodes in {run['cpu_s']:.1f} CPU s "
        f"({run['wall_s']:.1f} s wall): {per_cpu_hour(run):,.0f} episodes per CPU-hour"
    )
    for part in PARTS:
        value = run["seconds"].get(part, 0.0)
        print(f"  {part:12} {value:8.2f} CPU s {value / run['cpu_s']:6.1%}")


#: The science runs' settings (issue 28), shortened to a bench (see the docstring).
BENCH_RUN = {
    "init": "sft-careless",
    "iterations": 2,
    "advantage": "rloo",
    "temperature": 1.0,
    "epochs": 2,
    "lr": 5e-5,
    "beta": 0.05,
    "kl_estimator": "k2",
    "resample_rounds": 1,
    "seeds": "greedy-fails",
    "eval_every": 1,
    "eval_episodes": 40,
    "keep": "best",
    "threads": 1,
}
SMOKE = {
    "iterations": 1,
    "groups": 2,
    "group_size": 2,
    "max_new_tokens": 8,
    "temperature": 1.5,
    "eval_episodes": 2,
    "resample_rounds": 3,
    "user_model": "template",
}


def side_figures(prefix: str, run: dict[str, Any]) -> dict[str, float]:
    """One side's figures for the record, each key starting with ``prefix``: episodes per
    CPU-hour, training episodes, CPU and wall seconds, and each part's CPU seconds."""
    figures = {
        "per_cpu_hour": per_cpu_hour(run),
        "episodes": run["episodes"],
        "cpu_s": run["cpu_s"],
        "wall_s": run["wall_s"],
    } | {f"{part}_cpu_s": run["seconds"].get(part, 0.0) for part in PARTS}
    return {prefix + key: value for key, value in figures.items()}


#: Levers that change the float sums, so a run with one trains other weights than
#: without: such a run is judged by its learning curve (``bench.grpo_curves``).
NOT_EXACT = ("merge_twins",)


def same_results(run: dict[str, Any], other: dict[str, Any]) -> bool:
    """Whether two runs of the same settings trained the same: the kept weights, every
    curve point on the fields both record (a newer commit's points also hold each dev
    episode's score, an older one's do not) but its env steps, and the env steps of
    everything but the screen (``--screen-chunk`` stops a screen early: the same seeds
    from fewer greedy episodes, so fewer env steps)."""

    def rollout_steps(budget: dict[str, Any]) -> int:
        return budget["env_steps"] - budget.get("screen_env_steps", 0)

    if run["weights_sha256"] != other["weights_sha256"] or len(run["curve"]) != len(other["curve"]):
        return False
    for a, b in zip(run["curve"], other["curve"], strict=True):
        shared = (set(a) & set(b)) - {"env_steps"}
        if {k: a[k] for k in shared} != {k: b[k] for k in shared}:
            return False
    return rollout_steps(run["budget"]) == rollout_steps(other["budget"])


def build_parser() -> argparse.ArgumentParser:
    """The bench's flags: every GRPO flag (the science runs' settings by default), the
    reference tree, the levers and ``--out``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_config_arguments(parser, GRPOConfig, ("init_sha256", "out", "logdir", "progress"))
    parser.set_defaults(**BENCH_RUN)
    parser.add_argument(
        "--reference-tree",
        type=Path,
        help="a checkout of another commit whose run is timed beside this one's",
    )
    parser.add_argument(
        "--levers",
        default="",
        metavar="FLAGS",
        help="GRPO flags for this checkout's run only, e.g. '--merge-twins --screen-chunk "
        "32': the reference runs the settings without them",
    )
    add_out_argument(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = parse_args(build_parser(), argv, SMOKE)
    check_reference_tree(args.reference_tree, "baselines/grpo.py")
    with BenchRecord("grpo_speed", argv, args) as record:
        measure(args, record)
    return 0


def side_configs(args: argparse.Namespace) -> tuple[GRPOConfig, GRPOConfig]:
    """The run's settings (the bench's flags), and the same with ``--levers`` on top: the
    reference side runs the first, this checkout the second."""
    with_levers = build_parser()
    with_levers.set_defaults(**vars(args))
    levers = with_levers.parse_args(shlex.split(args.levers))

    def config(namespace: argparse.Namespace) -> GRPOConfig:  # --out: the record's, not a run's
        trainer = {k: v for k, v in vars(namespace).items() if k != "out"}
        return config_from_args(argparse.Namespace(**trainer), GRPOConfig)

    return config(args), config(levers)


def measure(args: argparse.Namespace, record: BenchRecord) -> None:
    """Run both sides at once, print their splits and the floor's table, check that they
    trained the same weights and curve, and keep every figure in ``record``."""
    tree = args.reference_tree
    settings, config = side_configs(args)
    init, _, _ = resolve_init(settings.init)
    with tempfile.TemporaryDirectory() as scratch:

        def run_flags(c: GRPOConfig) -> list[str]:
            here = {"init": str(init.resolve()), "logdir": Path(scratch), "progress": False}
            return config_argv(dataclasses.replace(c, **here), ("init_sha256", "out"))

        flags = run_flags(config)
        sides = {"this checkout": (ROOT, True, flags)}
        if tree is not None:
            sides[str(tree)] = (tree.resolve(), False, run_flags(settings))
        # Side by side: each figure is its own process's CPU time, and a shared machine
        # would stretch the wall time of two runs in a row past a bench's minutes.
        with ThreadPoolExecutor(len(sides)) as pool:
            started = {
                label: pool.submit(timed_run, where, [*side, "--out", f"{scratch}/{n}"], floor)
                for n, (label, (where, floor, side)) in enumerate(sides.items())
            }
            runs = {label: future.result() for label, future in started.items()}
    ours = runs["this checkout"]
    for label, run in runs.items():
        print_split(label, run)
        if run["ignored"]:
            print(f"  (flags its code does not have, left out: {' '.join(run['ignored'])})")
    totals = floor_totals(init, ours)
    if not totals["tokens"]:
        raise SystemExit("no group had a return spread: nothing was trained (try more groups)")
    report_rl_speed("GRPO", f"GRPO: {shlex.join(flags)}", totals, "steps", 0.7, record)
    sampled_per_s = totals["sampled"] / totals["rollout"]
    print(f"sampled tokens/s of the rollout (CPU time): {sampled_per_s:.0f}")
    record.figures |= {"sampled_tokens_s": sampled_per_s, **side_figures("", ours)}
    if tree is None:
        return
    ref = runs[str(tree)]
    levers = [f"--{name.replace('_', '-')}" for name in NOT_EXACT if getattr(config, name)]
    if levers:
        print(
            f"not compared bit for bit: {' '.join(levers)} trains other weights by design; "
            "its learning curve is judged by python -m bench.grpo_curves"
        )
    elif not same_results(ref, ours):
        raise SystemExit(f"the code in {tree} trained other weights or another curve")
    else:
        print("both trained the same weights (sha256) and the same curve")
    record.figures |= side_figures("ref_", ref) | {"exact": not levers}
    ours_label = f"this checkout {args.levers}" if args.levers else "this checkout"
    what = f"{ours_label} / {tree} episodes per CPU-hour"
    record.ratio("vs_reference", what, per_cpu_hour(ours) / per_cpu_hour(ref), "", 2)


if __name__ == "__main__":
    raise SystemExit(main())
