"""What a token-level rollout is made of, and how it is scored after it is played.

A :class:`Message` is one sampled message with what an update needs of each of its
tokens. The rollout records only what sampling gives for free (the tokens, their
log-probs, the policy's entropy); everything else a trainer reads of a message is scored
afterwards, in one no-grad forward over packed rows (:func:`score_rows`): the frozen
reference's log-probs (the KL penalty of both token trainers, GRPO's KL curve) and
PPO's state values. The weights do not change during a rollout, so scoring after it
gives the numbers a lockstep decode would, up to float rounding, for one forward over
the transcript instead of a second decode beside the first.

A conversation's messages share a row wherever each message's prompt is the row up to
it (:func:`pack_episode`), so a transcript is read once, not once per message.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

__all__ = [
    "Message",
    "Row",
    "distinct_rows",
    "merge_twin_rows",
    "pack_episode",
    "score_rows",
    "token_field",
]


def _empty() -> np.ndarray:
    return np.zeros(0)


@dataclass
class Message:
    """One sampled message and what an update needs of each of its tokens.

    ``ref_logprobs`` and ``values`` are empty until :func:`score_rows` fills them;
    ``advantages`` (and PPO's ``returns``) until the trainer computes them.
    """

    prompt: list[int]
    tokens: list[int]
    logprobs: np.ndarray  # log pi(token | state) when sampled, at temperature 1
    entropies: np.ndarray = field(default_factory=_empty)  # of pi(. | state)
    reward: float = 0.0  # the env's reward for the message
    ends_episode: bool = False  # terminated or truncated after it
    ref_logprobs: np.ndarray = field(default_factory=_empty)  # log pi_ref(token | state)
    values: np.ndarray = field(default_factory=_empty)  # V(state), the state before a token
    advantages: np.ndarray = field(default_factory=_empty)
    returns: np.ndarray = field(default_factory=_empty)


@dataclass
class Row:
    """Consecutive messages of one conversation, scored in one forward row: each message's
    prompt is the row up to its span, so a causal LM scores it as it was sampled."""

    ids: list[int]
    spans: list[tuple[int, int]]  # [start, end) of each message's tokens in ``ids``
    messages: list[Message]
    weight: int = 1  # how many rows of the update it stands for (:func:`merge_twin_rows`)


def token_field(messages: Sequence[Message], name: str, device):
    """Field ``name`` (``"advantages"``, ``"logprobs"``, ...) of ``messages``, one float per
    token in order, as a float32 tensor on ``device`` (the policy's, where the loss is).

    >>> m = Message([1], [2, 3], np.array([-0.5, -1.0]), advantages=np.array([1.0, 1.0]))
    >>> token_field([m, m], "logprobs", "cpu").tolist()
    [-0.5, -1.0, -0.5, -1.0]
    """
    import torch

    array = np.concatenate([getattr(m, name) for m in messages])
    return torch.as_tensor(array, device=device).float()


def pack_episode(messages: Sequence[Message]) -> list[Row]:
    """A conversation's messages in as few rows as exactness allows.

    Message ``k + 1`` joins the row of message ``k`` when its prompt continues that row
    (prompt ``k`` + message ``k``) token for token. The prompts of one conversation
    mostly do, so the update reads a transcript once instead of once per message; a
    transcript cut at the context limit, or a message that the env wrote back with other
    ids than were sampled, starts a new row.

    >>> z = np.zeros(1)
    >>> m = [Message([1, 2], [3], z), Message([1, 2, 3, 4], [5], z)]
    >>> [(r.ids, r.spans) for r in pack_episode(m)]
    [([1, 2, 3, 4, 5], [(2, 3), (4, 5)])]
    >>> m[1].prompt = [9, 2, 3, 4]  # left-cut: no longer a continuation
    >>> len(pack_episode(m))
    2
    """
    rows: list[Row] = []
    for m in messages:
        start, end = len(m.prompt), len(m.prompt) + len(m.tokens)
        row = rows[-1] if rows else None
        if row is not None and list(m.prompt[: len(row.ids)]) == row.ids:
            row.ids = [*m.prompt, *m.tokens]
            row.spans.append((start, end))
            row.messages.append(m)
        else:
            rows.append(Row([*m.prompt, *m.tokens], [(start, end)], [m]))
    return rows


def score_rows(scorer, rows: list[Row], batch_size: int, into: str = "ref_logprobs") -> None:
    """Set each message's ``into`` field from one no-grad forward of ``scorer`` (a
    :class:`~baselines.common.policy.TokenPolicy`) over ``rows``, ``batch_size`` rows a
    forward, shortest first: ``"ref_logprobs"`` (the log-probs of the message's tokens;
    ``scorer`` is the frozen reference) or ``"values"`` (the value of each token's state;
    ``scorer`` is the policy, as it sampled). Messages whose field is filled already are
    not scored again (GRPO scores every rollout for its KL curve before the update), and
    a row that another of its forward repeats token for token is read once
    (:func:`distinct_rows`)."""
    import torch

    def done(row: Row) -> bool:
        return all(len(getattr(m, into)) == len(m.tokens) for m in row.messages)

    if into not in ("ref_logprobs", "values"):
        raise ValueError(f"into must be ref_logprobs or values, got {into!r}")
    todo = sorted((r for r in rows if not done(r)), key=lambda r: len(r.ids))
    with torch.no_grad():
        for k in range(0, len(todo), batch_size):
            batch, twins = distinct_rows(todo[k : k + batch_size])
            logprobs, _, values = scorer.evaluate_spans(
                [r.ids for r in batch], [r.spans for r in batch]
            )
            scores = logprobs if into == "ref_logprobs" else values
            messages = [m for r in batch for m in r.messages]
            splits = np.cumsum([len(m.tokens) for m in messages])[:-1]
            for m, part in zip(
                messages, np.split(scores.double().cpu().numpy(), splits), strict=True
            ):
                setattr(m, into, part)
            for row, twin in twins:
                for m, scored in zip(row.messages, twin.messages, strict=True):
                    setattr(m, into, getattr(scored, into).copy())


def distinct_rows(batch: Sequence[Row]) -> tuple[list[Row], list[tuple[Row, Row]]]:
    """The rows of ``batch`` to score, and ``(row, twin)`` for each row left out because
    an earlier one, its twin, has the same ids and spans (a group's rollouts that wrote
    the same messages and got the same replies: most of a group, from an SFT start).

    A twin is scored in the same forward (padded to the same width; a row scores the
    same whatever the other rows of its forward are), so its numbers are the row's own.
    A forward of fewer than ``EXACT_ROWS`` message tokens would sum in another order
    (:data:`dialog_env.lm.sessions.EXACT_ROWS`): then every row is scored.

    >>> def row(n):  # a prompt of one token and a message of n
    ...     return Row(list(range(n + 1)), [(1, n + 1)], [Message([0], list(range(1, n + 1)), [])])
    >>> kept, twins = distinct_rows([row(20) for _ in range(6)])
    >>> len(kept), len(twins), len(distinct_rows([row(5), row(5)])[0])
    (1, 5, 2)
    """
    from dialog_env.lm.sessions import EXACT_ROWS

    first: dict[tuple, Row] = {}
    twins = []
    for row in batch:
        twin = first.setdefault((tuple(row.ids), tuple(row.spans)), row)
        if twin is not row:
            twins.append((row, twin))
    kept = list(first.values())
    if sum(end - start for r in kept for start, end in r.spans) < EXACT_ROWS:
        return list(batch), []
    return kept, twins


def merge_twin_rows(rows: Sequence[Row]) -> list[Row]:
    """``rows`` with each set of twins read once: the first row of each set, its
    ``weight`` the number of rows it stands for, in first-seen order.

    Twins are rows that an update would read and weigh alike: the same ids and spans, and
    messages with the same advantages, sampled log-probs and reference log-probs (a
    group's rollouts that wrote the same messages and got the same replies: most of a
    group, from an SFT start). A loss that sums ``weight`` x each token's term is the
    loss of every row read apart; its float sums run in another order, so the weights it
    trains differ by rounding (``--merge-twins``, off by default).

    >>> def row(n, advantage=1.0):
    ...     m = Message([0], [1] * n, np.zeros(n), advantages=np.full(n, advantage))
    ...     return Row([0] + [1] * n, [(1, n + 1)], [m])
    >>> [r.weight for r in merge_twin_rows([row(3), row(3), row(4), row(3, -1.0), row(3)])]
    [3, 1, 1]
    """

    def key(row: Row) -> tuple:
        fields = ("advantages", "logprobs", "ref_logprobs")
        return (
            tuple(row.ids),
            tuple(row.spans),
            tuple(np.asarray(getattr(m, f)).tobytes() for m in row.messages for f in fields),
        )

    first: dict[tuple, Row] = {}
    for row in rows:
        twin = first.setdefault(key(row), replace(row, weight=0))
        twin.weight += row.weight
    return list(first.values())
