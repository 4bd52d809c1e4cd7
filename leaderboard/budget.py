"""One budget vocabulary for every row of the board, whatever manifest vocabulary it came in.

The board states a training budget in these terms (:data:`BUDGET_TERMS`):

- ``trained_tokens``: tokens the optimizer took a gradient on (SFT: the demos' assistant
  tokens over every pass; RL: the sampled tokens of every update epoch);
- ``sampled_tokens``: tokens the policy wrote while collecting rollouts (RL only);
- ``env_steps``: agent messages played in the env, all in (KL probes and screening too);
- ``cpu_time_s``: the run's CPU time (``wall_time_s`` where a manifest only has that);
- ``start_budget``: for SFT->RL, the budget of the row it started from (its "+ start"),
  held in a results header as ``start_<term>`` counts.

Manifests written before this vocabulary used ``tokens`` (trained tokens for SFT, sampled
tokens for RL), left KL-probe steps out of ``env_steps`` (``kl_probe_env_steps``) and
recorded wall time only; :func:`budget_terms` reads both. ``demo_episodes`` is kept as
context for SFT rows.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["BUDGET_TERMS", "budget_terms", "format_budget", "format_count"]

#: The board's budget terms, in display order, with their words.
BUDGET_TERMS = {
    "trained_tokens": "trained tokens",
    "sampled_tokens": "sampled tokens",
    "env_steps": "env steps",
    "demo_episodes": "demos",
    "cpu_time_s": "CPU",
    "wall_time_s": "wall",
}
#: Paradigms whose budget is supervised training on demos (``tokens`` = trained tokens).
_SUPERVISED = ("sft", "filtered-sft", "best-of-n")
#: Keys that only the new vocabulary writes: a budget holding one is read as new.
_NEW_ONLY = ("sampled_tokens", "cpu_time_s", "start_budget")


def budget_terms(budget: Mapping[str, object], paradigm: str | None = None) -> dict[str, float]:
    """``budget`` (a manifest's or a results header's) in the board's vocabulary.

    ``paradigm`` says what an old manifest's ``tokens`` meant; without it they stay
    ``tokens``. ``start_budget`` is left out (see :func:`format_budget`).

    >>> budget_terms({"tokens": 11_777_711, "demo_episodes": 8800}, "sft")
    {'trained_tokens': 11777711, 'demo_episodes': 8800}
    >>> budget_terms({"env_steps": 11137, "kl_probe_env_steps": 386, "tokens": 198893,
    ...               "trained_tokens": 1778566, "wall_time_s": 958.4}, "sft-rl")
    {'trained_tokens': 1778566, 'sampled_tokens': 198893, 'env_steps': 11523, 'wall_time_s': 958.4}
    """
    new = any(k in _NEW_ONLY or k.startswith("start_") for k in budget)
    terms: dict[str, float] = {}
    for key in BUDGET_TERMS:
        value = budget.get(key)
        if _number(value):
            terms[key] = value
    tokens = budget.get("tokens")
    if not new and _number(tokens):
        if paradigm in _SUPERVISED:
            terms.setdefault("trained_tokens", tokens)
        elif paradigm is not None:
            terms.setdefault("sampled_tokens", tokens)
        else:
            terms["tokens"] = tokens
    probe = budget.get("kl_probe_env_steps")
    if not new and _number(probe):
        terms["env_steps"] = terms.get("env_steps", 0) + probe
    return {k: terms[k] for k in (*BUDGET_TERMS, "tokens") if k in terms}


def _number(value: object) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and value > 0


def format_count(value: float) -> str:
    """A count in three significant figures with a k/M/G/T suffix.

    >>> format_count(2_000_000), format_count(11_523), format_count(12)
    ('2M', '11.5k', '12')
    """
    for div, unit in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1, "")):
        if value >= div:
            return f"{value / div:.3g}{unit}"
    return f"{value:.3g}"


def _format_time(seconds: float) -> str:
    return f"{seconds / 3600:.2g} h" if seconds >= 3600 else f"{seconds / 60:.2g} min"


def _format_terms(terms: Mapping[str, float]) -> list[str]:
    parts = []
    for key, value in terms.items():
        if key in ("cpu_time_s", "wall_time_s"):
            parts.append(f"{BUDGET_TERMS[key]} {_format_time(value)}")
        else:
            parts.append(f"{format_count(value)} {BUDGET_TERMS.get(key, key)}")
    return parts


def format_budget(
    budget: Mapping[str, object],
    paradigm: str | None = None,
    start: str | None = None,
    base: str | None = None,
    no_start: str = "not on the board",
) -> str:
    """A short reading of a training budget in the board's vocabulary; ``"none"`` for an
    untrained agent.

    An SFT->RL row (``paradigm="sft-rl"``) ends in ``+ start``: its start's budget, from
    the manifest's ``start_budget``, or from ``start`` (the board row it starts from),
    else ``no_start`` says why not. A best-of-n row has no training of its own: its budget is
    its ``base``'s, stated as such.

    >>> format_budget({"env_steps": 2_000_000, "demo_episodes": 40_000})
    '2M env steps, 40k demos'
    >>> format_budget({})
    'none'
    >>> format_budget({"env_steps": 500, "tokens": 9000, "trained_tokens": 20_000},
    ...               "sft-rl", start="sft-a")
    '20k trained tokens, 9k sampled tokens, 500 env steps + start (sft-a)'
    >>> format_budget({"tokens": 2_147_243, "demo_episodes": 2325}, "best-of-n", base="sft-chat")
    "none; its base sft-chat's: 2.15M trained tokens, 2.33k demos"
    """
    parts = _format_terms(budget_terms(budget, paradigm))
    own = ", ".join(parts) if parts else "none"
    if paradigm == "best-of-n":
        return f"none; its base{f' {base}' if base else ''}'s: {own}" if parts else "none"
    if paradigm != "sft-rl":
        return own
    start_budget = budget.get("start_budget")
    if not isinstance(start_budget, Mapping):  # as a results header holds it: start_* counts
        start_budget = {k[6:]: v for k, v in budget.items() if k.startswith("start_")}
    if start_budget:
        inner = ", ".join(_format_terms(budget_terms(start_budget, "sft"))) or "none"
        return f"{own} + start ({inner})"
    return f"{own} + start ({start or no_start})"
