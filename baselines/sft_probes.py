"""What ``dialog-bench train sft`` and ``dialog-bench diagnose`` measure of an LM agent on
held-out booking demos, teacher-forced: each tool-call argument slot
(:func:`tool_call_slot_accuracy`) and each value a message copies from a tool result
(:func:`message_copy_accuracy`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["COPY_FIELDS", "message_copy_accuracy", "tool_call_slot_accuracy"]


def _teacher_forced_accuracy(
    agent: Any,
    demos: list[dict],
    gold_values: Callable[[str], dict[str, str]],
    said_values: Callable[[str], dict[str, str]],
) -> dict[str, float]:
    """Per value name: how often the agent, given the gold conversation up to an assistant
    turn (teacher-forced, greedy, 32 contexts a batch), writes the value that turn holds.
    ``gold_values`` reads the values of a demo's assistant turn (turns with none are
    skipped), ``said_values`` those of the agent's reply."""
    from dialog_env.text import Turn, format_transcript

    contexts, gold = [], []
    for demo in demos:
        turns = [Turn(t["role"], t["text"]) for t in demo["turns"]]
        for k, turn in enumerate(turns):
            want = gold_values(turn.text) if turn.role == "assistant" else {}
            if want:
                contexts.append(format_transcript(turns[:k]))
                gold.append(want)
    hits: dict[str, list[int]] = {}
    for start in range(0, len(contexts), 32):
        said = agent.act_batch(contexts[start : start + 32])
        for want, text in zip(gold[start : start + 32], said, strict=True):
            got = said_values(text)
            for name, value in want.items():
                hits.setdefault(name, []).append(int(got.get(name) == value))
    return {name: sum(h) / len(h) for name, h in sorted(hits.items())}


def tool_call_slot_accuracy(agent: Any, demos: list[dict]) -> dict[str, float]:
    """Per argument slot of the demos' tool calls (``search.food``, ``book.day``...): how
    often the agent, given the gold conversation so far, writes the same value
    (teacher-forced, greedy)."""
    from dialog_env.tasks.booking.tools import TOOL_CALL_RE, parse_kv

    def arguments(text: str) -> dict[str, str]:
        m = TOOL_CALL_RE.match(text)
        return {f"{m.group(1)}.{k}": v for k, v in parse_kv(m.group(2)).items()} if m else {}

    return _teacher_forced_accuracy(agent, demos, arguments, arguments)


#: What an assistant message must copy from the tool results, as the user's parser reads it.
COPY_FIELDS = {
    ("offer", "name"): "name",
    ("inform", "phone"): "phone",
    ("inform", "address"): "address",
    ("inform", "postcode"): "postcode",
    ("book_ok", "ref"): "ref",
}


def message_copy_accuracy(agent: Any, demos: list[dict]) -> dict[str, float]:
    """Per value that the demos' plain messages copy from a tool result (the venue offered,
    its phone, address and postcode, the booking reference): how often the agent, given
    the gold conversation so far, writes that value exactly as the user's parser reads it
    (teacher-forced, greedy). Messages whose gold reply copies nothing are skipped."""
    from dialog_env.tasks.booking.parser import parse_agent
    from dialog_env.tasks.booking.tools import TOOL_CALL_RE

    def copied(text: str) -> dict[str, str]:
        found = {}
        for act in parse_agent(text):
            for slot, value in act.slots:
                if (act.intent, slot) in COPY_FIELDS:
                    found[COPY_FIELDS[act.intent, slot]] = value
        return found

    def copied_by_a_message(text: str) -> dict[str, str]:
        return {} if TOOL_CALL_RE.match(text) else copied(text)

    return _teacher_forced_accuracy(agent, demos, copied_by_a_message, copied)
