"""The transcript as chat messages (OpenAI's ``role``/``content``), and the booking
task's system prompt: the one wire format that the ``hf:`` and ``openai:`` agents, the
chat-completions server (``dialog-bench serve``) and the verifiers env all speak.

The customer's turns are ``user`` messages, the agent's own are ``assistant``; a tool
result is a ``user`` message that starts with :data:`TOOL_RESULT_PREFIX` (every chat
template takes it, and user and assistant still alternate), or a ``tool`` message with
``tool_role="tool"``. Consecutive turns of one role make one message, joined by ``\\n``.
"""

from __future__ import annotations

from collections.abc import Sequence

from dialog_env.text import Turn, parse_transcript

__all__ = [
    "TOOL_RESULT_PREFIX",
    "TOOL_ROLES",
    "booking_system_prompt",
    "transcript_messages",
    "turns_messages",
]

#: How a tool result reads when it is sent as a ``user`` message.
TOOL_RESULT_PREFIX = "Tool result: "
#: The roles a tool result may be sent as.
TOOL_ROLES = ("user", "tool")


def booking_system_prompt() -> str:
    """The task and its tool syntax, with every value the tools understand."""
    from dialog_env.tasks.booking.domain import AREAS, DAYS, FOODS, MAX_PEOPLE, PRICES, TIMES

    return (
        "You are a restaurant booking assistant talking with a customer. Find a restaurant "
        "that fits what the customer wants (area, food, price range), recommend one, tell "
        "the facts they ask for (phone, address, postcode) and book a table if they want "
        "one, then tell them the booking reference.\n"
        "You have two tools. To use one, write a message that starts with the call and "
        "holds nothing else; its result comes back in the next message:\n"
        "[search] area=west food=thai price=cheap\n"
        '[book] name="The Golden Fox" people=2 day=friday time=19:00\n'
        f"Areas: {', '.join(AREAS)}. Foods: {', '.join(FOODS)}. Prices: {', '.join(PRICES)}. "
        f"Days: {', '.join(DAYS)}. Times: {', '.join(TIMES)}. People: 1-{MAX_PEOPLE}. "
        "Leave out a search slot the customer does not mind. Put a name with spaces in "
        "double quotes.\n"
        "Any other message goes to the customer: one short message at a time, about one "
        "restaurant at a time, in plain words (never paste a raw tool result)."
    )


def turns_messages(turns: Sequence[Turn], tool_role: str = "user") -> list[dict[str, str]]:
    """``turns`` as chat messages, one per run of turns of one role.

    >>> turns_messages([Turn("tool", "[result] none"), Turn("user", "ok")])
    [{'role': 'user', 'content': 'Tool result: [result] none\\nok'}]
    """
    if tool_role not in TOOL_ROLES:
        raise ValueError(f"tool_role must be one of {TOOL_ROLES}, got {tool_role!r}")
    messages: list[dict[str, str]] = []
    for turn in turns:
        role, content = turn.role, turn.text
        if role == "tool" and tool_role == "user":
            role, content = "user", f"{TOOL_RESULT_PREFIX}{content}"
        if messages and messages[-1]["role"] == role:
            messages[-1] = {"role": role, "content": f"{messages[-1]['content']}\n{content}"}
        else:
            messages.append({"role": role, "content": content})
    return messages


def transcript_messages(
    observation: str, system_prompt: str | None = None, tool_role: str = "user"
) -> list[dict[str, str]]:
    """The transcript as chat messages: the system prompt, then the turns
    (:func:`turns_messages`).

    >>> transcript_messages("user: hi\\nassistant: [search] food=thai\\ntool: [result] ...")
    ... # doctest: +NORMALIZE_WHITESPACE
    [{'role': 'user', 'content': 'hi'}, {'role': 'assistant', 'content': '[search] food=thai'},
     {'role': 'user', 'content': 'Tool result: [result] ...'}]
    """
    system = [{"role": "system", "content": system_prompt}] if system_prompt else []
    return system + turns_messages(parse_transcript(observation), tool_role)
