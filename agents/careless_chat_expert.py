"""The careless chat expert: the chat expert with flaws that are decisions, never slips.

The demonstrator of the chat task's SFT start (issue 27), built as the booking task's
careless expert (:mod:`agents.careless_expert`) was: every name and fact it writes is
copied correctly from the search results it made, and its flaws are choices that an LM
policy could sample the other way, each taken per request before it can know its score:

- ``skip_search``: a request that needs a search is answered at once, from what earlier
  searches showed, which is nothing about it: "Sorry, I do not know The Amber Fig yet."
  (gold 0: nothing answered).
- ``one_part``: a request of two parts (a ``describe`` of two facts, a ``compare`` of two
  venues) gets half an answer: the first fact, the first venue (gold about 0.5).
- ``filler``: the answer ends with a paragraph of general advice (gold about 0.95: the
  judge's conciseness term; the shipped reward model scores such replies higher than
  concise ones, see its manifest's ``mean_score_by_generator``).

Each request gets one uniform draw per flaw from the generator seeded by
``reset(seed)``, in one order whatever the rates, when the request is first seen; the
request takes a flaw where its draw lies below the flaw's rate and the request is its
occasion. The decisions taken are recorded in :attr:`CarelessChatExpert.decisions`.

**The rates, and why** (fixed before any chat SFT run, not tuned on one): the SFT start
must read (copy from search results) and must leave room that RL can fix, under gold and
under a proxy. A policy that imitates these demos samples each flaw at its rate, and
decodes greedily the more frequent choice at each decision: ``one_part`` at 0.6 is the
greedy choice (so the greedy start answers half of a two-part request; RL that learns to
answer whole requests raises gold), ``skip_search`` at 0.2 and ``filler`` at 0.3 are
sampled and not greedy (so sampled episodes, as best-of-n and RL draw them, hold all
three). On train seeds 0-1999 (template voice, ``python -m agents.careless_chat_expert``)
the demonstrator's mean gold is 0.680 and its success 0.465; per episode it takes 0.48
``skip_search``, 0.60 ``one_part`` and 0.63 ``filler`` decisions.

>>> import gymnasium as gym, dialog_env
>>> env, agent = gym.make("Dialog-Chat-v1", reward="gold"), CarelessChatExpert()
>>> obs, info = env.reset(seed=1)
>>> agent.reset(seed=1)
>>> agent.act(obs)
'[search] name="The Rustic Kitchen"'
>>> obs, info = env.reset(seed=3)
>>> agent.reset(seed=3)
>>> agent.act(obs), [d.flaw for d in agent.decisions]
('Sorry, I could not find a restaurant like that yet.', ['skip_search'])
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, fields, replace

from agents.base import BaseAgent
from dialog_env.tasks.booking.domain import load_database
from dialog_env.tasks.chat.answers import good_reply, make_reply
from dialog_env.tasks.chat.requests import ChatAct
from dialog_env.tasks.chat.tracker import ChatState, ChatTracker, needed_search
from dialog_env.text import parse_transcript

__all__ = ["CHAT_FLAWS", "CarelessChatExpert", "ChatCarelessness", "ChatDecision"]


@dataclass(frozen=True)
class ChatCarelessness:
    """Per-request rates of the careless chat expert's flaws (module docstring)."""

    skip_search: float = 0.2  # answers a request that needs a search without searching
    one_part: float = 0.6  # answers the first part of a two-part request
    filler: float = 0.3  # ends its answer with a paragraph of general advice

    def __post_init__(self) -> None:
        for flaw in CHAT_FLAWS:
            rate = getattr(self, flaw)
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{flaw} must be a probability in [0, 1], got {rate!r}")


#: The flaws, in the order of each request's draws.
CHAT_FLAWS = tuple(f.name for f in fields(ChatCarelessness))


@dataclass(frozen=True)
class ChatDecision:
    """A flawed decision taken in an episode: which flaw, on which request (its index)."""

    flaw: str  # one of CHAT_FLAWS
    request: int


def _first_part(request: ChatAct) -> ChatAct | None:
    """The request cut to its first part, or None when it has one part only."""
    if request.intent == "describe" and len(request.asks) > 1:
        return replace(request, asks=request.asks[:1])
    if request.intent == "compare" and len(request.names) > 1:
        return replace(request, names=request.names[:1])
    return None


class CarelessChatExpert(BaseAgent):
    """The chat expert with per-request careless decisions (``reset(seed=...)`` fixes them)."""

    name = "careless-chat-expert"
    paradigm = "reference"
    interface = "text"
    tasks = ("chat",)

    def __init__(self, carelessness: ChatCarelessness = ChatCarelessness()):
        super().__init__()
        self.db = load_database()[0]
        self.carelessness = carelessness
        self.reset()

    def reset(self, seed: int | None = None) -> None:
        """A new episode: no draws yet (each request draws when first seen)."""
        super().reset(seed)
        self._draws: list[dict[str, float]] = []
        #: The flawed decisions taken so far this episode, in order.
        self.decisions: list[ChatDecision] = []

    def _inclined(self, index: int) -> dict[str, bool]:
        while len(self._draws) <= index:  # one draw per flaw per request, in order
            self._draws.append({f: float(self.rng.random()) for f in CHAT_FLAWS})
        return {f: u < getattr(self.carelessness, f) for f, u in self._draws[index].items()}

    def _state(self, observation: str) -> ChatState:
        turns = [{"role": t.role, "text": t.text} for t in parse_transcript(observation)]
        return ChatTracker(self.db).sync(turns)

    def act(self, observation: str) -> str:
        state = self._state(observation)
        request = state.request
        if request is None:
            return "Hello! What can I do for you?"
        index = state.replies  # the replies given so far: this request's index
        inclined = self._inclined(index)
        search = needed_search(state)
        if search is not None:
            if state.last_role == "user" and inclined["skip_search"]:
                self.decisions.append(ChatDecision("skip_search", index))
                return good_reply(request, state.known)
            return search
        told = request
        if inclined["one_part"] and _first_part(request) is not None:
            self.decisions.append(ChatDecision("one_part", index))
            told = _first_part(request)
        if inclined["filler"]:
            self.decisions.append(ChatDecision("filler", index))
            return make_reply("verbose", told, self.db, self.rng, state.known)
        return good_reply(told, state.known)


def _measure(first: int, count: int) -> dict[str, float]:
    """The demonstrator's mean gold and success on train seeds ``first..first+count``."""
    import gymnasium as gym

    import dialog_env  # noqa: F401  (registers the ids)

    env, agent = gym.make("Dialog-Chat-v1", reward="gold"), CarelessChatExpert()
    gold = success = 0.0
    taken = dict.fromkeys(CHAT_FLAWS, 0)
    for seed in range(first, first + count):
        obs, _ = env.reset(seed=seed)
        agent.reset(seed=seed)
        done, total = False, 0.0
        while not done:
            obs, reward, terminated, truncated, info = env.step(agent.act(obs))
            total, done = total + reward, terminated or truncated
        gold, success = gold + total, success + float(info["success"])
        for decision in agent.decisions:
            taken[decision.flaw] += 1
    return {"mean_gold": gold / count, "success": success / count} | {
        f"{f}_taken": n / count for f, n in taken.items()
    }


def main(argv: list[str] | None = None) -> None:
    """Print the demonstrator's figures on train seeds (the module docstring's)."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--episodes", type=int, default=2000)
    args = parser.parse_args(argv)
    for key, value in _measure(args.first_seed, args.episodes).items():
        print(f"{key}: {value:.3f}")


if __name__ == "__main__":
    main()
