"""Dialog-v1 as a TRL ``GRPOTrainer`` ``environment_factory`` (optional extra ``trl``).

TRL's GRPOTrainer (>= 1.0, experimental there) takes ``environment_factory``: a callable
that makes an environment object with a ``reset(**row)`` method, public methods that the
model may call as tools, and optionally ``get_reward()``. :class:`DialogToolEnv` is that
object for our episodes:

- ``reset(seed=..., **row)`` resets the env with the row's ``seed`` column and returns
  the transcript so far (the user's opening), which TRL appends to the prompt. GRPO
  repeats each row ``num_generations`` times, so every generation of a group meets the
  identical episode: same goal, and the same user replies for the same messages.
- ``say(message)``, the one tool: the message goes to the env as the assistant's next
  turn (one that starts with ``[search]`` or ``[book]`` goes to that tool), and the tool
  returns what came back: the user's reply, the tool's result, and a line saying so when
  the conversation ended. Saying anything after the end raises, and TRL hands the model
  the error.
- ``get_reward()``: the env's return so far, the sum of its per-step rewards (step
  costs, plus the success bonus if the user left satisfied).

Nothing here imports TRL, torch or transformers: the trainer finds the tools by
inspection. :func:`seed_dataset` builds the ``prompt``/``seed`` dataset (``datasets``).

>>> env = DialogToolEnv(user_model="template")
>>> env.reset(seed=0).startswith("\\nuser: ")
True
>>> reply = env.say("Goodbye!")
>>> env.done, round(env.get_reward(), 2), "conversation has ended" in reply
(True, -0.02, True)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

__all__ = ["INSTRUCTIONS", "DialogToolEnv", "environment_factory", "seed_dataset"]

#: The user message every prompt starts with; the episode's opening is appended to it.
INSTRUCTIONS = (
    "You are a restaurant booking assistant. A customer wants a restaurant (area, food, "
    "price range), maybe facts about it (phone, address, postcode) and maybe a table. Act "
    "only by calling the say tool, once per message. A message that starts with a tool "
    "call goes to that tool instead of the customer, e.g. `[search] area=west food=thai "
    'price=cheap` or `[book] name="The Golden Fox" people=2 day=friday time=19:00`; '
    "the tool's result comes back. Recommend one restaurant at a time, tell the booking "
    "reference, and say goodbye when the customer is done.\nThe conversation so far:"
)


class DialogToolEnv:
    """One episode of a Dialog env at a time, driven through the ``say`` tool.

    ``env_id`` and ``env_kwargs`` go to ``gymnasium.make`` (default ``split="train"``:
    train on train goals, score on the leaderboard's test set). The env is made on the
    first ``reset``; a loaded user LM is shared by every instance (``load_causal_lm``'s
    cache), so TRL's one instance per rollout costs no extra model.
    """

    def __init__(self, env_id: str = "Dialog-v1", **env_kwargs: Any):
        self.env_id = env_id
        self.env_kwargs = {"split": "train", **env_kwargs}
        self._env = None
        self._turns: list[dict[str, str]] = []
        #: This episode's messages, as the model said them, and the env's reward for each.
        self.messages: list[str] = []
        self.rewards: list[float] = []
        self.done = False
        self.seed: int | None = None

    def reset(self, seed: int | None = None, **row: Any) -> str:
        """Start the episode of ``seed`` (the dataset's seed column; TRL passes every
        column of the row, the others are ignored); the transcript so far, to append to
        the prompt."""
        import gymnasium as gym

        import dialog_env  # noqa: F401  (registers the ids)

        if seed is None:
            raise ValueError(
                "DialogToolEnv.reset needs a seed: give the train dataset a 'seed' column "
                "(seed_dataset does), so that all generations of a group meet one episode"
            )
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {seed!r}")
        if self._env is None:
            self._env = gym.make(self.env_id, **self.env_kwargs)
        observation, info = self._env.reset(seed=seed)
        self.seed, self.messages, self.rewards, self.done = seed, [], [], False
        self._turns = list(info["turns"])
        return f"\n{observation}"

    def say(self, message: str) -> str:
        """Send the assistant's next message in the conversation.

        A message that starts with a tool call such as `[search] area=west food=thai` or
        `[book] name="The Golden Fox" people=2 day=friday time=19:00` goes to that tool;
        any other message is said to the customer.

        Args:
            message: The assistant's next message.

        Returns:
            What came back: the customer's reply and any tool result, one `role: text`
            line each.
        """
        if self._env is None:
            raise RuntimeError("call reset(seed=...) before say()")
        if self.done:
            raise RuntimeError("the conversation has ended; nothing more can be said")
        if not isinstance(message, str):
            raise TypeError(f"message must be a string, got {type(message).__name__}")
        _, reward, terminated, truncated, info = self._env.step(message)
        self.messages.append(message)
        self.rewards.append(float(reward))
        self.done = bool(terminated or truncated)
        new = info["turns"][len(self._turns) + 1 :]  # after the assistant's own turn
        self._turns = list(info["turns"])
        lines = [f"{t['role']}: {t['text']}" for t in new]
        if self.done:
            lines.append("(The conversation has ended.)")
        return "\n".join(lines)

    def get_reward(self) -> float:
        """The episode's return so far: the env's per-step rewards, summed."""
        return math.fsum(self.rewards)


def environment_factory(
    env_id: str = "Dialog-v1", **env_kwargs: Any
) -> Callable[[], DialogToolEnv]:
    """A zero-argument factory for ``GRPOTrainer(environment_factory=...)``.

    >>> environment_factory(user_model="template")().env_kwargs["split"]
    'train'
    """
    return partial(DialogToolEnv, env_id, **env_kwargs)


def seed_dataset(seeds: Sequence[int], instructions: str = INSTRUCTIONS):
    """A ``datasets.Dataset`` with a conversational ``prompt`` and the ``seed`` of each
    episode, one row per seed (GRPO repeats each row once per generation)."""
    try:
        from datasets import Dataset
    except ImportError:
        raise ImportError(
            "seed_dataset needs the datasets package: pip install 'dialog-bench[trl]'"
        ) from None
    seeds = [int(s) for s in seeds]
    if not seeds or any(s < 0 for s in seeds):
        raise ValueError("seeds must be a non-empty list of non-negative ints")
    prompt = [{"role": "user", "content": instructions}]
    return Dataset.from_dict({"prompt": [prompt] * len(seeds), "seed": seeds})
