"""The update of ``dialog-bench train grpo`` (:mod:`baselines.grpo`): an iteration's
episodes packed into rows (:func:`baselines.common.rollout.pack_episode`), the frozen
reference's scores (:func:`~baselines.common.rollout.score_rows`), and PPO's clipped
ratio plus a bounded KL estimate, one optimizer step per pass by default.

**One step per pass** (``step_over="pass"``): the gradients of a pass's minibatches are
accumulated before the step, so that the advantages of a group, which sum to 0, cancel
on the tokens its rollouts share (:func:`grpo_update`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from baselines.common.rollout import Row, merge_twin_rows, token_field
from baselines.grpo_config import KL_ESTIMATORS

if TYPE_CHECKING:
    from baselines.grpo_config import GRPOConfig

__all__ = [
    "grpo_loss",
    "grpo_step",
    "grpo_update",
    "kl_penalty",
    "merged_pass",
    "row_minibatches",
    "update_steps",
]


def row_minibatches(rows: list[Row], config: GRPOConfig, rng) -> list[list[Row]]:
    """``epochs`` shuffled passes over ``rows``, cut into minibatches of
    ``minibatch_rows``; with ``group_by_length``, rows of similar length share one (each
    is padded to its longest) and the minibatches are shuffled."""
    size, out = config.minibatch_rows, []
    for _ in range(config.epochs):
        order = list(rng.permutation(len(rows)))
        if config.group_by_length:
            order.sort(key=lambda j: len(rows[j].ids))
        chunks = [order[k : k + size] for k in range(0, len(order), size)]
        out += [[rows[j] for j in chunks[c]] for c in rng.permutation(len(chunks))]
    return out


def grpo_loss(policy, batch: list[Row], config: GRPOConfig, normalizer: int):
    """The clipped ratio loss + beta * KL of ``batch``, summed over its message tokens
    (each token counted ``row.weight`` times: :func:`~baselines.common.rollout.merge_twin_rows`)
    and divided by ``normalizer`` (a token count); with its diagnostics (token sums)."""
    import torch

    messages = [m for r in batch for m in r.messages]

    logprobs, entropy, _ = policy.evaluate_spans([r.ids for r in batch], [r.spans for r in batch])

    def cat(name: str) -> torch.Tensor:
        return token_field(messages, name, logprobs.device)

    adv, log_ratio = cat("advantages"), logprobs - cat("logprobs")
    ratio = log_ratio.exp()
    pg = torch.max(-adv * ratio, -adv * ratio.clamp(1 - config.clip, 1 + config.clip))
    weight = torch.ones_like(pg)  # each token counts once, or as the twins its row stands for
    if any(r.weight != 1 for r in batch):
        weight = torch.as_tensor(
            [r.weight for r in batch for m in r.messages for _ in m.tokens],
            dtype=pg.dtype,
            device=pg.device,
        )
        pg, entropy = pg * weight, entropy * weight
    loss = pg.sum()
    with torch.no_grad():
        sums = {
            "loss/policy": float(pg.sum()),
            "loss/entropy": float(entropy.sum()),
            "update/approx_kl": float((weight * ((ratio - 1) - log_ratio)).sum()),
            "update/clipfrac": float((weight * ((ratio - 1).abs() > config.clip)).sum()),
        }
    if config.beta > 0:
        kl = weight * kl_penalty(cat("ref_logprobs") - logprobs, config.kl_estimator)
        loss = loss + config.beta * kl.sum()
        sums[f"kl/{config.kl_estimator}_token"] = float(kl.detach().sum())
    return loss / normalizer, sums, len(adv)


def grpo_step(policy, optimizer, batches: list[list[Row]], config: GRPOConfig) -> dict:
    """One optimizer step on the rows of ``batches`` (gradients accumulated over them, a
    forward per batch): the loss is the mean over all their message tokens."""
    import torch

    total = sum(r.weight * len(m.tokens) for batch in batches for r in batch for m in r.messages)
    optimizer.zero_grad(set_to_none=True)
    sums: dict[str, float] = {}
    for batch in batches:
        loss, batch_sums, _ = grpo_loss(policy, batch, config, total)
        loss.backward()
        for key, value in batch_sums.items():
            sums[key] = sums.get(key, 0.0) + value
    grad_norm = torch.nn.utils.clip_grad_norm_(policy.parameters(), config.max_grad_norm)
    optimizer.step()
    return {key: value / total for key, value in sums.items()} | {
        "update/grad_norm": float(grad_norm)
    }


def kl_penalty(q, estimator: str = "k2"):
    """Per-token estimate of KL(pi || pi_ref) from ``q = log pi_ref - log pi`` on tokens
    drawn from pi (Schulman 2020, "Approximating KL Divergence").

    ``k3 = exp(q) - q - 1`` is unbiased and >= 0, but its gradient grows as ``exp(q)``:
    one sampled token whose log-prob an update has cut by 10 nats weighs ~22,000 times
    a typical one, and under a gradient-norm clip it steers the whole step (measured:
    the estimate reached 72,650 at lr 1e-4). ``k2 = q^2 / 2`` is biased but its gradient
    is linear in ``q``: the leash pulls harder the farther a token went, never explosively.

    >>> import torch
    >>> q = torch.tensor([0.0, 1.0, -1.0, 10.0])
    >>> kl_penalty(q, "k2").tolist()
    [0.0, 0.5, 0.5, 50.0]
    >>> [round(v, 3) for v in kl_penalty(q, "k3").tolist()]
    [0.0, 0.718, 0.368, 22015.465]
    """
    if estimator == "k2":
        return 0.5 * q.square()
    if estimator == "k3":
        return q.exp() - q - 1
    raise ValueError(f"estimator must be one of {KL_ESTIMATORS}, got {estimator!r}")


def merged_pass(batches: list[list[Row]], size: int) -> list[list[Row]]:
    """A pass's minibatches with each set of twins read once (``merge_twins``, one step
    per pass): its rows merged wherever the shuffle put them, shortest first, cut into
    minibatches of ``size`` rows again (a pass's gradient is one sum, however cut)."""
    rows = sorted(
        merge_twin_rows([r for batch in batches for r in batch]), key=lambda r: len(r.ids)
    )
    return [rows[k : k + size] for k in range(0, len(rows), size)]


def update_steps(rows: list[Row], config: GRPOConfig, rng) -> list[list[list[Row]]]:
    """The minibatches of each optimizer step of an update (:func:`row_minibatches`): a
    pass's (``step_over="pass"``) or one (``"minibatch"``), with ``merge_twins`` each set
    of twins read once within its step."""
    batches = row_minibatches(rows, config, rng)
    if config.step_over == "pass":
        per_pass = len(batches) // config.epochs
        passes = [batches[k : k + per_pass] for k in range(0, len(batches), per_pass)]
        if config.merge_twins:  # a pass is one step: its twins are read once, wherever they fell
            passes = [merged_pass(p, config.minibatch_rows) for p in passes]
        return passes
    if config.merge_twins:
        batches = [merge_twin_rows(batch) for batch in batches]
    return [[batch] for batch in batches]


def grpo_update(policy, optimizer, rows: list[Row], config: GRPOConfig, rng) -> dict:
    """``epochs`` passes over ``rows``; mean losses and diagnostics over the steps.

    ``step_over="minibatch"``: an optimizer step per minibatch, its loss the mean over
    its own tokens. ``"pass"``: one step per pass, gradients accumulated over the pass's
    minibatches and the loss the mean over all its tokens. Then a group's advantages,
    which sum to 0, cancel exactly (at ratio 1) on every token that its rollouts share,
    such as the messages written before they diverge: what is trained is where the
    rollouts differ. Per-minibatch steps lose that, since the rows of one group land in
    different steps (by length: failed episodes are longer) and Adam does not add
    gradients of different steps back up.

    With ``beta > 0`` every message must carry the frozen reference's log-probs, scored
    after the rollout (:func:`baselines.common.rollout.score_rows`).

    ``merge_twins``: the rows that are copies of one another (the same ids, spans,
    advantages and log-probs: a group's rollouts that wrote the same messages) are read
    once, weighted by their count (:func:`~baselines.common.rollout.merge_twin_rows`):
    within a pass (``"pass"``: its one step sums every minibatch, :func:`merged_pass`),
    or within a minibatch (``"minibatch"``). Every step is the same sum as without it,
    in another float order, and ``rng`` draws the same numbers, so the run's seeds are
    the same; the trained weights differ by rounding, and a run is judged by its
    learning curve (``python -m bench.grpo_curves``; docs/throughput.md), not by its bits.
    """
    if config.beta > 0 and any(
        len(m.ref_logprobs) != len(m.tokens) for r in rows for m in r.messages
    ):
        raise ValueError("beta > 0 needs the reference's log-probs: score_rows(reference, rows)")
    each_step = update_steps(rows, config, rng)
    steps = [grpo_step(policy, optimizer, step, config) for step in each_step]
    batches = [batch for step in each_step for batch in step]
    trained = sum(len(r.ids) for batch in batches for r in batch)
    return {k: float(np.mean([s[k] for s in steps])) for k in steps[0]} | {
        "update/tokens": trained,  # read by the forwards, every epoch
        "update/rows": len(rows),
        "update/rows_read": sum(map(len, batches)) / config.epochs,
        "update/optimizer_steps": len(steps),
    }
