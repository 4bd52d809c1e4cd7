"""How the careless expert's rates were chosen: ``python -m baselines.careless_rates``.

Two figures per rate setting (:class:`~agents.careless_expert.Carelessness`):

- *failure*: the share of train episodes the careless expert fails;
- *survival* of each flaw: the share of successful episodes in which its decision was
  taken, over the share of all episodes in which it was (a flaw that survives filtering
  on success stays in the filtered demos at that fraction of its rate).

Every seed is played once under each of the 8 combinations of the three inclinations
(template voice: about 2 ms an episode); the draws an episode makes do not depend on
the rates, so the careless expert's episode at any rates is one of those 8, looked up by
comparing its draws with the rates. The grid's figures are therefore the agent's own,
not an estimate. ``--check`` then plays the chosen rates for real on a few hundred
seeds with an LM voice (batched, as ``dialog-bench demos`` plays them).

    python -m baselines.careless_rates --seeds 0:2000 --check tiny --check-seeds 0:300

``--demos FILE...`` gives the same figures for demo files, the decisions recovered by
feeding the careless expert each recorded transcript again (:func:`demo_episodes`).
"""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from agents.careless_expert import FLAWS, CarelessExpert, Carelessness

__all__ = [
    "GRID",
    "Episode",
    "choose",
    "demo_episodes",
    "figures",
    "grid_figures",
    "main",
    "play_combinations",
    "play_episode",
    "play_voiced",
]

#: The rates tried for each flaw.
GRID = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
#: The targets: failure within this band, every flaw's survival at least this.
FAILURE_BAND = (0.30, 0.50)
MIN_SURVIVAL = 0.5
#: The chosen point meets both targets by this much (the LM voice moves the figures).
MARGIN = 0.05


@dataclass(frozen=True)
class Episode:
    """What one careless episode came to: success, and the flaws whose decisions it took."""

    success: bool
    flaws: frozenset[str]


def play_episode(agent: CarelessExpert, env, seed: int) -> tuple[dict, Episode]:
    """One episode of ``agent`` on ``env`` from ``seed``: its last ``info`` and what it
    came to."""
    obs, _ = env.reset(seed=seed)
    agent.reset(seed=seed)
    done, info = False, {}
    while not done:
        obs, _, terminated, truncated, info = env.step(agent.act(obs))
        done = terminated or truncated
    flaws = frozenset(d.flaw for d in agent.decisions)
    return info, Episode(bool(info["metrics"]["success"]), flaws)


def play_combinations(
    seeds: Iterable[int], **env_kwargs
) -> tuple[list[dict[str, float]], list[dict[tuple[bool, ...], Episode]]]:
    """Per seed, the careless expert's draws and its :class:`Episode` under each
    combination of inclinations (a tuple of bools in :data:`FLAWS` order), on train-split
    episodes of ``Dialog-v1`` (``env_kwargs``, e.g. ``user_model="template"``)."""
    import gymnasium as gym

    import dialog_env  # noqa: F401

    env = gym.make("Dialog-v1", **{"split": "train", **env_kwargs})
    combos = list(itertools.product((False, True), repeat=len(FLAWS)))
    agents = {c: CarelessExpert(Carelessness(*(float(x) for x in c))) for c in combos}
    draws, table = [], []
    for seed in seeds:
        table.append({c: play_episode(agents[c], env, seed)[1] for c in combos})
        draws.append(agents[combos[0]].draws)
    env.close()
    return draws, table


def figures(episodes: Sequence[Episode]) -> dict[str, float]:
    """``failure``, and per flaw its ``rate`` (share of episodes that took it), its
    ``rate_in_success`` and ``survival`` (the second over the first; 1 where never taken).

    >>> e = [Episode(True, frozenset({"neglect_fact"})), Episode(False, frozenset())]
    >>> figures(e)["failure"], figures(e)["neglect_fact.survival"]
    (0.5, 2.0)
    """
    n = len(episodes)
    won = [e for e in episodes if e.success]
    out = {"failure": 1 - len(won) / n}
    for flaw in FLAWS:
        rate = sum(flaw in e.flaws for e in episodes) / n
        in_success = sum(flaw in e.flaws for e in won) / max(len(won), 1)
        out[f"{flaw}.rate"] = rate
        out[f"{flaw}.rate_in_success"] = in_success
        out[f"{flaw}.survival"] = in_success / rate if rate else 1.0
    return out


def grid_figures(
    draws: Sequence[dict[str, float]],
    table: Sequence[dict[tuple[bool, ...], Episode]],
    grid: Sequence[float] = GRID,
) -> list[tuple[tuple[float, ...], dict[str, float]]]:
    """``(rates, figures)`` for every point of ``grid`` ** 3: the agent's own episodes
    at those rates, looked up in the table of :func:`play_combinations`."""
    rows = []
    for rates in itertools.product(grid, repeat=len(FLAWS)):
        episodes = [
            combos[tuple(d[f] < r for f, r in zip(FLAWS, rates, strict=True))]
            for d, combos in zip(draws, table, strict=True)
        ]
        rows.append((rates, figures(episodes)))
    return rows


def _meets(fig: dict[str, float], margin: float = 0.0) -> bool:
    """Whether ``fig`` meets both targets, each by ``margin`` at least."""
    low, high = FAILURE_BAND
    return low + margin <= fig["failure"] <= high - margin and all(
        fig[f"{f}.survival"] >= MIN_SURVIVAL + margin for f in FLAWS
    )


def choose(
    rows: Sequence[tuple[tuple[float, ...], dict[str, float]]],
) -> tuple[tuple[float, ...], dict[str, float]]:
    """Of the points that meet both targets by :data:`MARGIN` (room for another voice),
    the one whose rarest flaw is the most frequent in successful episodes (the filtered
    demos hold every flaw as often as they can); ties to the lower failure. A
    ``ValueError`` where no point qualifies."""
    meeting = [row for row in rows if _meets(row[1], MARGIN)]
    if not meeting:
        raise ValueError("no point of the grid meets the targets")

    def key(row):
        fig = row[1]
        return (-round(min(fig[f"{f}.rate_in_success"] for f in FLAWS), 3), fig["failure"])

    return min(meeting, key=key)


class _CarelessPerEpisode:
    """A message source for ``play_episodes``: a careless expert per episode, kept."""

    def __init__(self, carelessness: Carelessness, batch_size: int):
        self.carelessness, self.batch_size = carelessness, batch_size
        self.agents: dict[int, CarelessExpert] = {}

    def start(self, index: int, seed: int) -> None:
        self.agents[index] = agent = CarelessExpert(self.carelessness)
        agent.reset(seed=seed)

    def messages(self, running):
        return [self.agents[i].act(obs) for i, obs in running]


def play_voiced(
    carelessness: Carelessness, seeds: Sequence[int], batch_size: int = 64, **env_kwargs
) -> list[Episode]:
    """The careless expert's :class:`Episode` on each train seed, played batched as
    ``dialog-bench demos`` plays (``env_kwargs``: e.g. ``user_model="tiny"``)."""
    from baselines.demos import train_episodes
    from leaderboard.rollout import play_episodes

    source = _CarelessPerEpisode(carelessness, batch_size)
    records = play_episodes(
        source, train_episodes("Dialog-v1", seeds, **env_kwargs), progress=False
    )
    return [
        Episode(bool(r["success"]), frozenset(d.flaw for d in source.agents[i].decisions))
        for i, r in enumerate(records)
    ]


def demo_episodes(records: Iterable[dict], carelessness: Carelessness) -> list[Episode]:
    """The :class:`Episode` of each recorded demo (``dialog-bench demos``), its decisions
    recovered by feeding the careless expert each transcript again; a ``ValueError``
    where it would write another message than the recorded one (another version, other
    rates)."""
    from dialog_env.text import Turn, format_transcript

    agent, out = CarelessExpert(carelessness), []
    for record in records:
        agent.reset(seed=record["seed"])
        turns = [Turn(t["role"], t["text"]) for t in record["turns"]]
        for i, turn in enumerate(turns):
            if turn.role == "assistant" and agent.act(format_transcript(turns[:i])) != turn.text:
                raise ValueError(f"demo seed {record['seed']}: turn {i} is not the agent's")
        out.append(Episode(bool(record["success"]), frozenset(d.flaw for d in agent.decisions)))
    return out


def _format(rates: Sequence[float], fig: dict[str, float]) -> str:
    cells = {k: " ".join(f"{fig[f'{f}.{k}']:.2f}" for f in FLAWS) for k in ("rate", "survival")}
    mark = " **" if _meets(fig, MARGIN) else " *" if _meets(fig) else ""
    return (
        f"{rates}  failure {fig['failure']:.3f}  taken {cells['rate']}  "
        f"survival {cells['survival']}{mark}"
    )


def _summary(rows, close_after_booking: float) -> str:
    """The grid's slice at one ``close_after_booking`` rate: per (drop_constraint,
    neglect_fact) the failure / smallest survival / smallest rate in successes."""
    at = {(r[0], r[2]): fig for r, fig in rows if r[1] == close_after_booking}
    cols = sorted({c for _, c in at})
    lines = [f"close_after_booking {close_after_booking}; columns: neglect_fact " + str(cols)]
    for drop in sorted({d for d, _ in at}):
        cells = []
        for c in cols:
            fig = at[drop, c]
            worst = min(fig[f"{f}.survival"] for f in FLAWS)
            rarest = min(fig[f"{f}.rate_in_success"] for f in FLAWS)
            cells.append(f"{fig['failure']:.2f}/{worst:.2f}/{rarest:.2f}")
        lines.append(f"drop_constraint {drop}: " + "  ".join(cells))
    return "\n".join(lines)


def _seed_range(text: str) -> range:
    first, _, last = text.partition(":")
    return range(int(first), int(last))


def main(argv: Sequence[str] | None = None) -> int:
    """Print the grid (``*``: meets both targets; ``**``: by the margin), the chosen point
    and its check."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=_seed_range, default=range(0, 2000), help="FIRST:END")
    p.add_argument("--check", default=None, help="voice to check the chosen point with")
    p.add_argument("--check-seeds", type=_seed_range, default=range(0, 300), help="FIRST:END")
    p.add_argument("--demos", nargs="+", default=None, help="figures of demo files instead")
    args = p.parse_args(argv)
    if args.demos:
        from baselines.demos import load_demos

        for path in args.demos:
            records, meta = load_demos(path)
            rates = Carelessness(**meta["noise"])
            fig = figures(demo_episodes(records, rates))
            print(
                f"{path} ({meta['episodes']} demos):",
                _format(tuple(getattr(rates, f) for f in FLAWS), fig),
            )
        return 0
    draws, table = play_combinations(args.seeds, user_model="template")
    rows = grid_figures(draws, table)
    print(f"train seeds {args.seeds.start}-{args.seeds.stop - 1}, template voice")
    print("rates (drop_constraint, close_after_booking, neglect_fact); per flaw: taken, survival")
    for rates, fig in rows:
        print(_format(rates, fig))
    rates, fig = choose(rows)
    print("chosen:", _format(rates, fig))
    print(_summary(rows, rates[1]))
    if args.check:
        seeds = args.check_seeds
        for voice in ("template", args.check):
            fig = figures(play_voiced(Carelessness(*rates), seeds, user_model=voice))
            print(
                f"check, seeds {seeds.start}-{seeds.stop - 1}, voice {voice}:", _format(rates, fig)
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
