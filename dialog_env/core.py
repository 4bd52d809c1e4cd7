"""``DialogEnv``: a conversation with a goal-driven simulated user, as a Gymnasium env."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
from gymnasium.error import ResetNeeded
from gymnasium.spaces import Text

from dialog_env.lm.user_model import make_user_voice
from dialog_env.tasks import Task, make_task
from dialog_env.text import CHARSET, Turn, format_transcript, normalize_message, truncate_transcript
from dialog_env.voicing import Stepping, UserVoice, drive

__all__ = ["DialogEnv", "EpisodeOver", "StepLimit"]


class EpisodeOver(ResetNeeded):
    """``step`` was called after the episode ended (terminated, or truncated by the
    spec's step limit); call ``reset``."""


class StepLimit:
    """The public ``step`` of an env made by ``gymnasium.make``, held to its id's
    registered ``max_episode_steps``: the step after the one the spec's ``TimeLimit``
    truncated raises :class:`EpisodeOver` instead of playing on.

    ``TimeLimit`` itself steps past its limit (it only sets ``truncated``), and it sits
    outside the env, so the env counts for itself: its public ``step`` and ``reset``
    (the ones ``TimeLimit`` calls), never the generator steps the vector env drives,
    which keeps its own count and autoresets. The limit is the registered one:
    ``gymnasium.make(..., max_episode_steps=N)`` changes only ``TimeLimit``'s.
    """

    def __init__(self) -> None:
        self.steps, self.limit = 0, None

    def start(self, env: gym.Env) -> None:
        spec = env.unwrapped.spec
        registered = gym.registry.get(spec.id) if spec is not None else None
        self.steps, self.limit = 0, registered.max_episode_steps if registered else None

    def check(self) -> None:
        if self.limit is not None and self.steps >= self.limit:
            raise EpisodeOver(
                f"the episode was truncated after {self.limit} steps (the spec's "
                "max_episode_steps); call reset() to start a new one"
            )

    def count(self) -> None:
        self.steps += 1


class DialogEnv(gym.Env[str, str]):
    """A task-oriented conversation with a simulated user.

    ## Description

    The agent is a restaurant assistant. A simulated user with a hidden goal (1-3
    constraints on area, food and price; facts it wants to know; maybe a table to book)
    opens the conversation. The agent may ask questions, search the venue database,
    recommend a venue, tell facts and book a table. The user is an agenda-based policy:
    it answers questions, rejects venues that break its constraints, accepts another
    value when nothing matches (its goal says which), accepts another time when its first
    one is full, and leaves when its goal is met or its patience is spent.

    ## Action Space

    ``Text(max_length=500, charset=CHARSET)``: the agent's next message, a ``str``. A
    message that starts with ``[search]`` or ``[book]`` is a tool call whose result the
    next observation shows; anything else is said to the user::

        [search] food=italian area=north price=cheap
        [book] name="The Golden Fox" people=4 day=friday time=19:00

    Any ``str`` is a valid action: it is NFC-normalized, stripped of control characters,
    folded to one ASCII line (``?`` marks what has no ASCII reading) and cut at
    ``max_message_chars`` (``info["action_truncated"]``). A user who cannot make sense of a
    message says so, as a person would. A non-``str`` action raises ``TypeError``.

    ## Observation Space

    ``Text(max_length=8192, charset=CHARSET)``: the conversation so far, one
    ``role: text`` line per turn with role ``user``, ``assistant`` or ``tool``. A longer
    transcript is cut from the left at a turn boundary. ``CHARSET`` is printable ASCII
    plus newline.

    ## Rewards

    ``-0.02`` for every step (tool calls included) and ``+1.0`` when the user leaves with
    its goal met. ``info["reward_terms"]`` holds the two terms of each step. Success means:
    the venue the user accepted fits every constraint (after the fallback, if the goal
    has one), every requested fact was told correctly for that venue, and, if the user
    wanted a table, one was booked there with its people, day and (first or alternative)
    time and the booking reference was told. A message that names several venues is a
    list, not a recommendation: facts in it do not count; raw tool output pasted at the
    user (``[result] ...``, ``phone=...``) is not understood.

    ## Starting State

    A goal drawn with ``np_random`` from the split's goals; the user's opening sentence
    states some of its constraints. ``split="test"`` goals use constraint combinations
    that never occur in ``split="train"`` goals.

    ## Episode End

    ``terminated``: the user said goodbye, satisfied or out of patience (``patience``
    unproductive messages, or ``max_turns`` messages in all), or the agent said goodbye.
    ``truncated``: the spec's ``max_episode_steps`` (50 for ``Dialog-v1``) ran out.
    Stepping after termination or truncation raises :class:`EpisodeOver`, on every
    interface (:class:`StepLimit`); the vector env autoresets instead.

    At the end, ``info`` holds ``success`` (bool), ``goal`` (dict) and ``metrics``: inform
    precision/recall/F1, ``booked``, ``turns``, ``tool_calls``, ``user_turns``,
    ``voice_fallbacks``, ``patience_spent``.

    ## Arguments

    - ``task``: ``"booking"`` (this docstring) or ``"chat"`` (``Dialog-Chat-v1``; its
      sections are in :class:`dialog_env.tasks.chat.task.ChatTask`).
    - ``**task_kwargs``: the task's own arguments (the chat task's ``reward``; the
      booking task's ``venue_names``, ``"shipped"`` or ``"shuffled"``: see
      :data:`dialog_env.tasks.booking.task.VENUE_NAMES`; and its ``nlu``, what reads
      the user's turns for the act and state interfaces' tracker: ``"rule"``, the
      parser (default), or ``"tagger"``, the shipped learned slot tagger, or the path of
      a tagger directory: see :class:`dialog_env.tasks.booking.task.BookingTask`).
    - ``split``: ``"train"`` or ``"test"`` goals.
    - ``user_model``: who voices the user's acts. ``"tiny"`` (default): the shipped
      ~1M-parameter LM (``dialog_env.lm.TINY_MODEL_DIR``) writes each sentence with
      typed placeholders that the env fills in; a sentence that the parser does not read
      back as the act is resampled, then replaced by the template
      (``info["metrics"]["voice_fallbacks"]``). ``"template"``: no LM, one canonical
      sentence per act. A path: any local transformers causal-LM directory, loaded from
      safetensors only and never with remote code; a model trained with
      ``dialog-bench pretrain`` is prompted as the tiny one, a chat model (its tokenizer
      has a chat template) in plain words, and its sentences pass the same check.
    - ``device``: where the LM runs, ``"cpu"`` (default) or ``"cuda"``; checked when the env
      is made, for every id and voice (``"cuda"`` without CUDA is a ``ValueError``).
    - ``max_turns``: messages the user reads before leaving (default 20).
    - ``patience``: unproductive messages the user tolerates (default 4).
    - ``render_mode``: ``"ansi"`` (returns the transcript) or ``"human"`` (prints new turns).
    - ``max_message_chars``, ``max_observation_chars``: the two length caps.

    >>> import gymnasium as gym, dialog_env
    >>> env = gym.make("Dialog-v1")
    >>> obs, info = env.reset(seed=0)
    >>> obs.startswith("user: ")
    True
    >>> obs, reward, terminated, truncated, info = env.step("Goodbye!")
    >>> terminated, info["success"], round(reward, 2)
    (True, False, -0.02)

    ## Version History

    - v1: the booking task; the user voiced by the shipped tiny LM (``user_model="tiny"``,
      the default), by the template (``"template"``) or by any local causal LM (a path).
    """

    metadata = {"render_modes": ["ansi", "human"], "render_fps": 4}

    def __init__(
        self,
        task: str = "booking",
        split: str = "train",
        user_model: str = "tiny",
        max_turns: int = 20,
        patience: int = 4,
        render_mode: str | None = None,
        max_message_chars: int = 500,
        max_observation_chars: int = 8192,
        device: str = "cpu",
        **task_kwargs: Any,
    ):
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode must be one of {self.metadata['render_modes']}, got {render_mode!r}"
            )
        for name, value in (
            ("max_turns", max_turns),
            ("patience", patience),
            ("max_message_chars", max_message_chars),
            ("max_observation_chars", max_observation_chars),
        ):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if device != "cpu":  # every id, the template voice's too: torch is imported only here
            if not isinstance(device, str):
                raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:N', got {device!r}")
            from dialog_env.lm.loading import resolve_device

            resolve_device(device)  # one line when this machine has no such device
        self.task: Task = make_task(
            task, split=split, patience=patience, max_turns=max_turns, **task_kwargs
        )
        #: The user's voice (``user_model=``): it drives the task's steppings, and the
        #: vector env batches it across sub-envs. Loaded now, once.
        self.voice: UserVoice = make_user_voice(user_model, self.task, device)
        self.split, self.user_model, self.device = split, user_model, device
        self.render_mode = render_mode
        self.max_message_chars = max_message_chars
        self.max_observation_chars = max_observation_chars
        self.observation_space = Text(max_length=max_observation_chars, charset=CHARSET)
        self.action_space = Text(max_length=max_message_chars, charset=CHARSET)
        self._turns: list[Turn] | None = None
        self._over = False
        self._rendered = 0
        self._limit = StepLimit()

    # -- Gymnasium API ---------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        result = drive(self.reset_steps(seed=seed, options=options), self.voice)
        self._limit.start(self)
        return result

    def step(self, action: str):
        self._limit.check()
        result = drive(self.step_steps(action), self.voice)
        self._limit.count()
        return result

    # -- the same, as generators that yield the user turns they need voiced ------------------
    def reset_steps(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> Stepping[tuple[str, dict]]:
        super().reset(seed=seed)
        self._turns = []
        self._transcript = ""
        self._add_turns((yield from self.task.reset_steps(self.np_random)))
        self._over = False
        self._rendered = 0
        if self.render_mode == "human":
            self.render()
        return self._observation(), {"turns": self._turn_dicts()}

    def step_steps(self, action: str) -> Stepping[tuple]:
        if not isinstance(action, str):
            raise TypeError(f"an action is a str message, got {type(action).__name__}")
        if self._turns is None:
            raise ResetNeeded("call reset() before step()")
        if self._over:
            raise EpisodeOver("the conversation has ended; call reset() to start a new one")
        message, cut = normalize_message(action, self.max_message_chars)
        outcome = yield from self.task.step_steps(message, self.np_random)
        self._add_turns([Turn("assistant", message), *outcome.turns])
        self._over = outcome.terminated
        reward = float(sum(outcome.reward_terms.values()))
        info: dict[str, Any] = {
            "turns": self._turn_dicts(),
            "reward_terms": outcome.reward_terms,
            "action_truncated": cut,
            "tool_call": outcome.tool_call,
            "user_acts": outcome.user_acts,
            **outcome.info,
        }
        if outcome.terminated:
            goal, metrics = self.task.summary()
            info.update(success=outcome.success, goal=goal, metrics=metrics)
        if self.render_mode == "human":
            self.render()
        return self._observation(), reward, outcome.terminated, False, info

    def render(self) -> str | None:
        if self.render_mode is None:
            gym.logger.warn("render() was called without a render_mode; pass render_mode=...")
            return None
        turns = self._turns or []
        if self.render_mode == "ansi":
            return format_transcript(turns) + "\n"
        for turn in turns[self._rendered :]:
            print(f"{turn.role:>9}: {turn.text}", flush=True)
        self._rendered = len(turns)
        return None

    # -- helpers ---------------------------------------------------------------------------
    def _add_turns(self, turns: list[Turn]) -> None:
        # The transcript grows by appending, so each step costs its own turns, not the history.
        new = format_transcript(turns)
        self._transcript = f"{self._transcript}\n{new}" if self._transcript else new
        self._turns.extend(turns)

    def _observation(self) -> str:
        return truncate_transcript(self._transcript, self.max_observation_chars)

    def _turn_dicts(self) -> list[dict[str, str]]:
        return [t.as_dict() for t in self._turns]

    def episode_summary(self) -> tuple[dict, dict]:
        """``(goal, metrics)`` of the current episode, also before it ended."""
        if self._turns is None:
            raise ResetNeeded("call reset() first")
        return self.task.summary()
