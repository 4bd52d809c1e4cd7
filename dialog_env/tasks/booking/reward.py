"""The booking task's reward: a small cost per step and a bonus for success.

Each term is a small pure function, so that a reader can check it in one glance and a
composite reward can report its terms in ``info["reward_terms"]``.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["STEP_COST", "SUCCESS_BONUS", "inform_scores", "step_cost", "success_bonus"]

STEP_COST = 0.02
SUCCESS_BONUS = 1.0


def step_cost() -> float:
    """Every assistant message costs the same, tool calls included.

    >>> step_cost()
    -0.02
    """
    return -STEP_COST


def success_bonus(success: bool | None) -> float:
    """Paid once, at the end of a successful conversation; 0 otherwise.

    >>> success_bonus(True), success_bonus(False), success_bonus(None)
    (1.0, 0.0, 0.0)
    """
    return SUCCESS_BONUS if success else 0.0


def inform_scores(
    informed: Iterable[tuple[str, str]], requested: Iterable[tuple[str, str]]
) -> tuple[float, float, float]:
    """Precision, recall and F1 of the facts told against the facts the user wanted.

    A fact is a ``(slot, value)`` pair; the wanted facts are those of the venue the user
    accepted. Nothing told gives precision 1, nothing wanted gives recall 1.

    >>> inform_scores([("phone", "1"), ("phone", "2")], [("phone", "1"), ("postcode", "x")])
    (0.5, 0.5, 0.5)
    >>> inform_scores([], [])
    (1.0, 1.0, 1.0)
    """
    told, wanted = set(informed), set(requested)
    hit = len(told & wanted)
    precision = hit / len(told) if told else 1.0
    recall = hit / len(wanted) if wanted else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1
