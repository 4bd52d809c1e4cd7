"""The chat task (``Dialog-Chat-v1``, alias ``ChatGPT-v1``) as a :class:`~dialog_env.tasks.Task`."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from dialog_env.tasks import TaskStep
from dialog_env.tasks.booking.domain import load_database
from dialog_env.tasks.booking.task import VENUE_NAMES
from dialog_env.tasks.booking.tools import ToolBox, is_tool_call
from dialog_env.tasks.chat.judge import gold_terms
from dialog_env.tasks.chat.requests import ChatAct, sample_goal
from dialog_env.tasks.chat.reward_model import ENSEMBLE_COMBINES, RewardEnsemble, RewardModel
from dialog_env.tasks.chat.tracker import (
    ASSISTANT_ACTS,
    STATE_FEATURES,
    ChatState,
    ChatTools,
    ChatTracker,
    realize,
    state_vector,
)
from dialog_env.tasks.chat.voice import ChatTemplateVoice
from dialog_env.text import Turn
from dialog_env.voicing import Stepping, UserVoice, VoiceRequest, drive

__all__ = ["REWARDS", "SUCCESS_GOLD", "ChatTask"]

#: Reward sources: the learned reward model (the default), an ensemble of proxy reward
#: models, and the hidden gold judge.
REWARDS = ("rm", "rm-ensemble", "gold")
#: An episode is a success when every request got a reply of at least this gold score.
SUCCESS_GOLD = 0.5
_AGENT_BYE_RE = re.compile(r"\bgoodbye\b|\bbye\b", re.IGNORECASE)


class ChatTask:
    """Open requests about the restaurant world, answered in free text.

    ## Description

    A simulated diner of the booking task's restaurant world (the same 120 venues) makes
    two or three open requests, one per turn: a recommendation for some wishes, facts
    about a venue, or a comparison of two venues
    (:mod:`dialog_env.tasks.chat.requests`). The agent answers in free text; each reply
    is scored by the hidden gold judge (:mod:`dialog_env.tasks.chat.judge`) and the user
    moves on to its next request.

    ## Action Space

    As ``Dialog-v1``: ``Text(max_length=500)``, a message. ``[search] area=north
    food=thai`` searches by area, food and price, ``[search] name="The Amber Fig"`` looks
    a venue up; the result is the next observation's ``tool`` line (``[book]`` works as
    in booking, though no chat user wants a table).

    ## Observation Space

    As ``Dialog-v1``: the transcript, one ``role: text`` line per turn. The gold judge
    and its terms are never in it.

    ## Rewards

    ``reward="rm"`` (the default): a reply to the user earns the learned reward model's
    score of it in its context (the transcript before it, searches and results included;
    :mod:`dialog_env.tasks.chat.reward_model`) divided by the number of requests, so the
    return is the mean RM score over the requests. The score is normalized by the RM's
    training replies (mean 0, std 1 over them), so it is comparable across RMs; it is
    computed at batch 1, the same number in any process and any vector-env batch.
    ``reward="gold"`` (for analysis): the same with the hidden gold score, so the return is
    the mean gold score, in [0, 1]. ``reward="rm-ensemble"``: the same with the score of
    an ensemble of K >= 2 proxy reward models (``reward_models``: their directories),
    their mean (``ensemble="mean"``, the default) or their worst case
    (``ensemble="worst"``: the lowest member score; Coste et al. 2024), each member's
    score normalized by its own training replies; ``info["rm_ensemble"]`` then holds the
    members' scores, their mean and their worst, and the metrics ``mean_rm_ensemble``.
    A tool call earns 0. ``info["reward_terms"]`` names the active one (``{"rm": ...}``,
    ``{"rm-ensemble": ...}`` or ``{"gold": ...}``); after every reply, whichever is active,
    ``info["gold"]`` holds every term of the judge (``answered``, ``wrong``, ``invented``,
    ``concise``, ``polite``, ``gold``), ``info["rm"]`` the (``reward_model``) RM's
    normalized score and ``info["request"]`` the request it answered. Success is defined by gold.

    ## Starting State

    Two or three distinct requests drawn with ``np_random``; the user's opening turn
    states the first. ``split="test"`` requests are about venues (every fourth by name)
    that no ``split="train"`` request names.

    ## Episode End

    ``terminated``: the user said goodbye after its last request, after ``patience``
    tool calls in a row, or after ``max_turns`` messages; or the agent said goodbye.
    ``truncated``: the spec's ``max_episode_steps`` (50). ``info["success"]``: every
    request got a reply of gold score at least ``SUCCESS_GOLD`` (0.5).

    ## Arguments

    ``gymnasium.make("Dialog-Chat-v1", ...)`` takes ``DialogEnv``'s arguments with
    ``task="chat"`` and ``reward="rm"`` (or ``"rm-ensemble"``, ``"gold"``); ``reward_model``
    is the directory of a reward model that ``dialog-bench train rm`` wrote (default
    ``None``: the shipped ``dialog_env/assets/chat-rm``, loaded once per process);
    ``reward_models`` (a list of such directories) and ``ensemble`` (``"mean"`` or
    ``"worst"``) make ``reward="rm-ensemble"``'s ensemble, and are refused with any other
    reward. ``venue_names`` as the booking task's (``"shipped"``, the default, or
    ``"shuffled"``: each episode gives the venues' names to one another, a permutation drawn
    after the goal, and the goal asks about the same venues under their new names, so a
    venue's facts can only be known from a search result; a training distribution for demos,
    never an evaluation one). ``user_model`` defaults to ``"template"`` for the chat ids:
    the shipped tiny LM was trained on booking turns only and has never seen a chat request,
    so with ``user_model="tiny"`` nearly every sentence it writes fails the parser check and
    falls back to the template (counted in ``voice_fallbacks``).

    >>> import gymnasium as gym, dialog_env
    >>> env = gym.make("ChatGPT-v1")
    >>> obs, info = env.reset(seed=0)
    >>> obs.startswith("user: ")
    True
    >>> env.spec.reward_threshold  # on the RM's scale (dialog_env.registration)
    -0.23
    >>> _, reward, _, _, info = env.step("xq zzk")
    >>> sorted(info["reward_terms"]), reward == info["rm"] / len(env.unwrapped.task.goal)
    (['rm'], True)

    ## Version History

    - v1: recommend, describe and compare requests; reward = the gold judge. Then (issue
      12) the learned reward model became the default reward (``reward="rm"``;
      ``reward="gold"`` stays), and ``info["rm"]`` joined ``info["gold"]``. Then (issue
      27) ``reward="rm-ensemble"`` and ``venue_names`` joined them; the default's episodes
      are unchanged.
    """

    name = "chat"
    assistant_acts = ASSISTANT_ACTS
    state_features = STATE_FEATURES

    def __init__(
        self,
        split: str = "train",
        voice: UserVoice | None = None,
        patience: int = 4,
        max_turns: int = 20,
        reward: str = "rm",
        reward_model: str | Path | None = None,
        reward_models: list[str] | None = None,
        ensemble: str = "mean",
        venue_names: str = "shipped",
    ):
        if venue_names not in VENUE_NAMES:
            raise ValueError(f"venue_names must be one of {VENUE_NAMES}, got {venue_names!r}")
        if reward not in REWARDS:
            raise ValueError(f"reward must be one of {REWARDS}, got {reward!r}")
        if (reward == "rm-ensemble") != (reward_models is not None):
            raise ValueError('reward_models (K >= 2 RM directories) go with reward="rm-ensemble"')
        if ensemble not in ENSEMBLE_COMBINES:
            raise ValueError(f"ensemble must be one of {ENSEMBLE_COMBINES}, got {ensemble!r}")
        # loaded for every reward: info["rm"] is reported after every reply
        self.reward_model = RewardModel.load(reward_model)
        self.ensemble = (
            None if reward_models is None else RewardEnsemble.load(reward_models, ensemble)
        )
        self.db, self._shipped_book = load_database()
        sample_goal(self.db, np.random.default_rng(0), split)  # checks the split now
        self.split, self.reward, self.venue_names = split, reward, venue_names
        self._shipped_db = self.db
        self.template_voice = ChatTemplateVoice(self.db)
        self.voice = voice if voice is not None else self.template_voice
        self.patience, self.max_turns = patience, max_turns
        self.goal: list[ChatAct] | None = None

    def reset(self, rng: np.random.Generator) -> list[Turn]:
        return drive(self.reset_steps(rng), self.voice)

    def step(self, message: str, rng: np.random.Generator) -> TaskStep:
        return drive(self.step_steps(message, rng), self.voice)

    def reset_steps(self, rng: np.random.Generator) -> Stepping[list[Turn]]:
        self.db, book = self._shipped_db, self._shipped_book
        self.goal = sample_goal(self.db, rng, self.split)
        if self.venue_names == "shuffled":  # the goal's venues keep their facts, not names
            given = self.db.shuffled_names(rng)
            self.db, book = self.db.renamed(given), book.renamed(given)
            self.goal = [replace(a, names=tuple(given[n] for n in a.names)) for a in self.goal]
        self.tools = ChatTools(self.db, ToolBox(self.db, book.copy()))
        self.index, self.scores, self.rm_scores, self.ensemble_scores = 0, [], [], []
        self.turns, self.tool_streak, self.user_turns, self.voice_fallbacks = 0, 0, 0, 0
        self.done = False
        self.history = [(yield from self._say([self.goal[0]], rng))]
        return list(self.history)

    def _say(self, acts: list[ChatAct], rng: np.random.Generator) -> Stepping[Turn]:
        text, fell_back = yield VoiceRequest(acts, rng)
        self.user_turns += 1
        self.voice_fallbacks += int(fell_back)
        return Turn("user", text)

    def step_steps(self, message: str, rng: np.random.Generator) -> Stepping[TaskStep]:
        outcome = yield from self._respond(message, rng)
        self.history += [Turn("assistant", message), *outcome.turns]
        return outcome

    def _respond(self, message: str, rng: np.random.Generator) -> Stepping[TaskStep]:
        self.turns += 1
        if is_tool_call(message):
            self.tool_streak += 1
            result = Turn("tool", self.tools.call(message, rng))
            if self.tool_streak < self.patience and self.turns < self.max_turns:
                return TaskStep([result], {self.reward: 0.0}, tool_call=True)
            turn = yield from self._say([ChatAct("bye")], rng)
            return self._end([result, turn], {self.reward: 0.0}, tool_call=True)
        self.tool_streak = 0
        request = self.goal[self.index]
        terms = gold_terms(message, request, self.db)
        rm_score = self.reward_model.score_one(self.history, message)
        self.scores.append(terms["gold"])
        self.rm_scores.append(rm_score)
        self.index += 1
        info: dict[str, Any] = {"gold": terms, "rm": rm_score, "request": str(request)}
        if self.reward == "rm-ensemble":
            members = self.ensemble.member_scores(self.history, message)
            score = self.ensemble.combined(members)
            info["rm_ensemble"] = {"members": members, "mean": float(np.mean(members))}
            info["rm_ensemble"]["worst"] = min(members)
            self.ensemble_scores.append(score)
        else:
            score = {"gold": terms["gold"], "rm": rm_score}[self.reward]
        reward = {self.reward: score / len(self.goal)}
        last = self.index == len(self.goal)
        if last or self.turns >= self.max_turns or _AGENT_BYE_RE.search(message):
            turn = yield from self._say([ChatAct("bye")], rng)
            return self._end([turn], reward, info=info)
        turn = yield from self._say([ChatAct("thank"), self.goal[self.index]], rng)
        return TaskStep([turn], reward, user_acts=["thank", str(self.goal[self.index])], info=info)

    def _end(self, turns: list[Turn], reward: dict, tool_call: bool = False, info=None) -> TaskStep:
        self.done = True
        return TaskStep(
            turns,
            reward,
            terminated=True,
            success=self._success(),
            tool_call=tool_call,
            user_acts=["bye"],
            info=info or {},
        )

    def _success(self) -> bool:
        return len(self.scores) == len(self.goal) and min(self.scores) >= SUCCESS_GOLD

    def summary(self) -> tuple[dict, dict]:
        metrics = {
            "success": self.done and self._success(),
            "mean_gold": sum(self.scores) / len(self.goal),
            "mean_rm": sum(self.rm_scores) / len(self.goal),
            "answered": len(self.scores),
            "requests": len(self.goal),
            "turns": self.turns,
            "tool_calls": self.tools.calls,
            "user_turns": self.user_turns,
            "voice_fallbacks": self.voice_fallbacks,
        }
        if self.reward == "rm-ensemble":  # the default's metrics keep their keys
            metrics["mean_rm_ensemble"] = sum(self.ensemble_scores) / len(self.goal)
        return {"requests": [a.as_dict() for a in self.goal]}, metrics

    # -- for the act-level and state-observation wrappers ----------------------------------
    def new_tracker(self) -> ChatTracker:
        return ChatTracker(self.db)

    def realize(self, act: int, state: ChatState) -> str:
        return realize(ASSISTANT_ACTS[act], state)

    def state_vector(self, state: ChatState) -> np.ndarray:
        return state_vector(state)
