"""The booking task: an episode's goal, tools, user and reward, as a ``Task``.

``DialogEnv`` drives it through ``reset_steps(rng)`` (the opening turns), ``step_steps(message,
rng)`` (the turns that follow an assistant message) and ``summary()`` (goal and metrics);
the act and state wrappers use its tracker, assistant acts and state features; the LM
voice uses its template voice. The :class:`~dialog_env.tasks.Task` protocol says it all.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dialog_env.tasks import TaskStep
from dialog_env.tasks.booking.assistant_acts import ASSISTANT_ACTS, realize
from dialog_env.tasks.booking.domain import load_database
from dialog_env.tasks.booking.features import STATE_FEATURES, state_vector
from dialog_env.tasks.booking.goals import Goal, GoalSampler
from dialog_env.tasks.booking.parser import get_lexicon, parse_agent
from dialog_env.tasks.booking.reward import inform_scores, step_cost, success_bonus
from dialog_env.tasks.booking.tools import ToolBox, is_tool_call
from dialog_env.tasks.booking.tracker import NLU, DialogueState, IncrementalTracker
from dialog_env.tasks.booking.user import AgendaUser
from dialog_env.tasks.booking.voice import TemplateVoice
from dialog_env.text import Turn
from dialog_env.voicing import Stepping, UserVoice, VoiceRequest, drive

__all__ = ["NLUS", "VENUE_NAMES", "BookingTask", "TaskStep", "nlu_reader"]

#: ``venue_names``: ``"shipped"``, the database as shipped (every registered id, every
#: leaderboard episode); ``"shuffled"``, each episode gives the venues' names to one
#: another at random (a permutation drawn from the episode's rng after its goal), so a
#: name can only be known by reading it in a search result, never remembered from
#: training episodes: a training distribution (domain randomization), not a test one.
VENUE_NAMES = ("shipped", "shuffled")
#: ``nlu``: what reads user turns for the tracker of the act and state interfaces.
#: ``"rule"``, the rule-based parser (every registered id's default); ``"tagger"``, the
#: shipped slot tagger (:mod:`dialog_env.tasks.booking.tagger`) reads the slot values;
#: or the path of a tagger directory (``dialog-bench train tagger``). The episode
#: itself (the user, the reward) never depends on it: only what the tracker makes of it.
NLUS = ("rule", "tagger")


class BookingTask:
    """Restaurant search and booking with an agenda-based user; see ``DialogEnv``."""

    name = "booking"
    #: What the act-level and state-observation wrappers build on.
    assistant_acts = ASSISTANT_ACTS
    state_features = STATE_FEATURES

    def __init__(
        self,
        split: str = "train",
        voice: UserVoice | None = None,
        patience: int = 4,
        max_turns: int = 20,
        venue_names: str = "shipped",
        nlu: str = "rule",
    ):
        if venue_names not in VENUE_NAMES:
            raise ValueError(f"venue_names must be one of {VENUE_NAMES}, got {venue_names!r}")
        self.venue_names = venue_names
        self.nlu = nlu
        self.nlu_reader = nlu_reader(nlu)
        self.db, self._shipped_book = load_database()
        self.sampler = GoalSampler(self.db, self._shipped_book, split)
        self.lexicon = get_lexicon()
        self.template_voice = TemplateVoice()
        self.voice = voice if voice is not None else self.template_voice
        self.patience, self.max_turns = patience, max_turns
        self.goal: Goal | None = None

    def reset(self, rng: np.random.Generator) -> list[Turn]:
        """Start an episode: draw a goal and voice the user's opening turn."""
        return drive(self.reset_steps(rng), self.voice)

    def step(self, message: str, rng: np.random.Generator) -> TaskStep:
        """What an assistant message leads to: a tool result, or the user's answer."""
        return drive(self.step_steps(message, rng), self.voice)

    def reset_steps(self, rng: np.random.Generator) -> Stepping[list[Turn]]:
        """:meth:`reset` as a generator that yields the user turn it needs voiced."""
        self.goal = self.sampler.sample(rng)
        db, book = self.db, self._shipped_book
        if self.venue_names == "shuffled":  # a goal never names a venue: it stays as drawn
            given = db.shuffled_names(rng)
            db, book = db.renamed(given), book.renamed(given)
        self.episode_db = db
        self.tools = ToolBox(db, book.copy())
        self.user = AgendaUser(self.goal, db, self.tools.bookings, self.patience, self.max_turns)
        self.user_turns = 0
        self.voice_fallbacks = 0
        return [(yield from self._say(self.user.open(rng), rng))]

    def _say(self, acts, rng: np.random.Generator) -> Stepping[Turn]:
        text, fell_back = yield VoiceRequest(acts, rng)
        self.user_turns += 1
        self.voice_fallbacks += int(fell_back)
        return Turn("user", text)

    def step_steps(self, message: str, rng: np.random.Generator) -> Stepping[TaskStep]:
        """:meth:`step` as a generator that yields the user turn it needs voiced."""
        terms = {"step_cost": step_cost(), "success_bonus": 0.0}
        if is_tool_call(message):
            result = self.tools.call(message, rng)
            return TaskStep([Turn("tool", result)], terms, tool_call=True)
        acts = self.user.respond(parse_agent(message, self.lexicon))
        turn = yield from self._say(acts, rng)
        success = self.user.done and self.user.satisfied
        terms["success_bonus"] = success_bonus(success)
        return TaskStep(
            [turn],
            terms,
            terminated=self.user.done,
            success=success,
            user_acts=[str(a) for a in acts],
        )

    def summary(self) -> tuple[dict, dict]:
        """``(goal, metrics)`` of the current episode."""
        user = self.user
        venue = self.episode_db.get(user.accepted) if user.accepted else None
        wanted = [(r, venue.fact(r) if venue else "") for r in self.goal.requests]
        precision, recall, f1 = inform_scores(user.informed, wanted)
        booked = any(user.valid_booking(b) for b in self.tools.bookings.values())
        metrics = {
            "success": bool(user.done and user.satisfied),
            "inform_precision": precision,
            "inform_recall": recall,
            "inform_f1": f1,
            "booked": booked if self.goal.wants_booking else None,
            "turns": user.turns,
            "tool_calls": self.tools.calls,
            "user_turns": self.user_turns,
            "voice_fallbacks": self.voice_fallbacks,
            "patience_spent": user.wasted,
        }
        return self.goal.as_dict(), metrics

    # -- for the act-level and state-observation wrappers ----------------------------------
    def new_tracker(self) -> IncrementalTracker:
        """A tracker over the task's lexicon, reading user turns with the task's ``nlu``."""
        return IncrementalTracker(self.lexicon, self.nlu_reader)

    def realize(self, act: int, state: DialogueState) -> str:
        """The message of assistant act number ``act`` in ``state``."""
        return realize(ASSISTANT_ACTS[act], state)

    def state_vector(self, state: DialogueState) -> np.ndarray:
        """The state as the vector of :data:`STATE_FEATURES`."""
        return state_vector(state)


def nlu_reader(nlu: str) -> NLU | None:
    """What reads user turns for ``nlu`` (see :data:`NLUS`): ``None`` for the parser, a
    loaded tagger's :meth:`~dialog_env.tasks.booking.tagger.SlotTagger.read` otherwise;
    a one-line ``ValueError`` for anything else.

    >>> nlu_reader("rule") is None
    True
    """
    if not isinstance(nlu, str) or not nlu:
        raise ValueError(f"nlu must be one of {NLUS} or a tagger directory, got {nlu!r}")
    if nlu == "rule":
        return None
    from dialog_env.tasks.booking.tagger import SlotTagger

    if nlu == "tagger":
        return SlotTagger.load().read
    if not Path(nlu).is_dir():
        raise ValueError(f"nlu must be one of {NLUS} or a tagger directory, got {nlu!r}")
    return SlotTagger.load(nlu).read
