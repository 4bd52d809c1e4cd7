"""Benchmarks: each measures one side against a reference in one run and prints a ratio.

Every module here is a script (``python -m bench.NAME``) with a ``main(argv)``; each
docstring says what its reference computes and why that is the floor of the work the
measured side has to do. ``--smoke`` runs any of them in seconds on tiny shapes, as
``tests/bench/test_bench.py`` does: its figures only show that the script works.

Each prints its figure on one line that starts with ``ratio`` (``bench.lm_memory``: with
``RSS growth``), so that a test and a reader find it the same way.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["floor_forward_backward", "parse_args", "report_rl_speed", "run_in_tree"]


def parse_args(
    parser: argparse.ArgumentParser, argv: Sequence[str] | None, smoke: dict[str, Any]
) -> argparse.Namespace:
    """Parse ``argv``, with a ``--smoke`` flag whose run takes the defaults in ``smoke``.

    Flags given explicitly still win over the smoke defaults.

    >>> def parser():
    ...     p = argparse.ArgumentParser()
    ...     _ = p.add_argument("--steps", type=int, default=100)
    ...     return p
    >>> runs = ([], ["--smoke"], ["--smoke", "--steps", "5"])
    >>> [parse_args(parser(), argv, {"steps": 2}).steps for argv in runs]
    [100, 2, 5]
    """
    shown = ", ".join(f"--{k.replace('_', '-')} {v}" for k, v in smoke.items())
    parser.add_argument("--smoke", action="store_true", help=f"a seconds-long check: {shown}")
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--smoke" in argv:
        parser.set_defaults(**smoke)
    return parser.parse_args(argv)


def floor_forward_backward(model, ids, mask, positions, reads, targets, value_head=None) -> float:
    """The least a training step's forward and backward can compute on one batch.

    The LM's body over every column of ``ids`` (each trained token attends to all of its
    context), the output layer only at the ``reads`` columns (``reads[b, t]``: column
    ``t`` predicts token ``targets[k]``, in row-major order), a cross-entropy on those
    predictions, and ``backward()``; with ``value_head``, a critic on the same hidden
    states whose loss joins the backward. Nothing else: no loss terms beyond these, no
    clipping, no optimizer step. The gradients are dropped (set to None), so each call
    allocates them afresh, as a step after ``zero_grad(set_to_none=True)`` does.
    Returns the cross-entropy (the mean negative log-prob of ``targets``).
    """
    import torch

    from baselines.common.policy import body_forward

    hidden, _ = body_forward(model, ids, mask, positions)
    picked = hidden[reads]
    logits = model.get_output_embeddings()(picked)
    cross_entropy = torch.nn.functional.cross_entropy(logits.float(), targets)
    loss = cross_entropy
    if value_head is not None:
        loss = loss + value_head(picked).square().mean()
    loss.backward()
    model.zero_grad(set_to_none=True)
    if value_head is not None:
        value_head.zero_grad(set_to_none=True)
    return float(cross_entropy.detach())


def report_rl_speed(
    name: str, setup: str, totals: dict[str, float], update: str, aim: float, record=None
) -> None:
    """Print an RL bench's table: the floor, the update and rollout + update, each with its
    tokens/s and its share of the floor's speed, then the ratio line ``tests/bench/test_bench.py``
    reads. ``totals`` holds seconds (``raw``, ``update``, ``rollout``) and token counts
    (``tokens`` trained, ``padded``, ``sampled``). With a ``bench.record.BenchRecord``,
    the totals and the ratios (``ratio``; ``update_vs_floor`` for the update alone) go to it too."""
    t, tokens = totals, totals["tokens"]
    rows = [
        ("raw forward + backward (floor)", t["raw"]),
        (f"{name} update ({update})", t["update"]),
        (f"{name} rollout + update", t["rollout"] + t["update"]),
    ]
    print(setup)
    print(
        f"trained tokens {tokens:.0f} (padding {1 - tokens / t['padded']:.0%} of the "
        f"batches), sampled {t['sampled']:.0f} message tokens in {t['rollout']:.1f} s of rollout"
    )
    print(f"{'':36} {'seconds':>8} {'tokens/s':>9} {'ratio':>6}")
    for label, seconds in rows:
        print(f"{label:36} {seconds:8.2f} {tokens / seconds:9.0f} {t['raw'] / seconds:6.2f}")
    ratio = t["raw"] / (t["rollout"] + t["update"])
    what = f"{name} rollout + update / raw floor"
    if record is None:
        print(f"ratio {what} = {ratio:.3f}  (aim: >= {aim})")
        return
    record.figures |= totals
    record.figures["update_vs_floor"] = t["raw"] / t["update"]
    record.ratio("ratio", what, ratio, f"aim: >= {aim}")


def check_reference_tree(tree: Path | None, needs: str) -> None:
    """Refuse ``--reference-tree TREE`` before anything plays unless TREE is a checkout of
    this project, one that holds ``needs`` (a path inside it, the code the bench runs there)."""
    if tree is not None and not (tree / needs).is_file():
        raise SystemExit(f"--reference-tree {tree}: not a checkout of this project")


def run_in_tree(tree: Path, script: str, args: Sequence[str], what: str) -> dict[str, Any]:
    """Run ``script`` (Python source) by ``python -c`` with the code of the checkout
    ``tree`` (of another commit: ``git worktree add --detach DIR COMMIT``), which the
    script puts first on its path from ``sys.argv[1]``; ``args`` follow as
    ``sys.argv[2:]``. Returns the JSON object the script prints on its last line.
    ``what`` names the work in the error raised when the script fails."""
    done = subprocess.run(
        [sys.executable, "-c", script, str(tree), *map(str, args)],
        capture_output=True,
        text=True,
        cwd=tree,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{what} in {tree} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])
