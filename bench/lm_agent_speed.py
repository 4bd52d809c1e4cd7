"""LM agent evaluation: incremental decoding against re-reading the transcript, in one run.

Both sides play the same agent on the same leaderboard episodes through the evaluator
(``leaderboard.rollout.play_episodes``: the LM-voiced user in the batched vector env, up
to ``--batch-size`` episodes side by side), so the env's share of the work is the same
on both sides and the figure is the speed-up a user of ``dialog-bench evaluate`` sees:

- **full re-encode** (the reference, what evaluation did before): each message's prompt
  is the whole transcript, left-padded to the longest in the batch, decoded by
  ``batched_decode`` until the batch's longest message stops;
- **incremental**: each episode keeps its KV cache between messages and feeds only the
  turns added since its last one (``dialog_env.lm.sessions``), and a message that stops
  leaves the batch.

The two must write the same messages (checked: the bench fails otherwise). Each side also
prints its time inside the LM voice (``LMVoice.voice_batch``: the user's side, the same
work on both), which no agent-side speed-up can remove. Where a
transcript is cut at the context limit, the cache cannot be reused and the prompt is
encoded in full; the share of such messages is printed, since it bounds the gain.

``--reference-tree DIR`` adds a third side: the same evaluation (this checkout's agent
directory, the same episodes) run by the code of another commit, checked out in ``DIR``
(``git worktree add --detach DIR COMMIT``), in a subprocess whose ``play_episodes`` alone
is timed. Against the commit before incremental decoding (``35c1909^``), it is the
speed-up over what evaluation was before all of this work, with the messages checked
equal too. ::

    python -m bench.lm_agent_speed [--agent sft-expert] [--episodes 128] [--batch-size 128]
    git worktree add --detach /tmp/before 35c1909^
    python -m bench.lm_agent_speed --episodes 500 --reference-tree /tmp/before
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from bench import check_reference_tree, parse_args, run_in_tree
from bench.record import BenchRecord, add_out_argument

CHECKPOINTS = Path(__file__).resolve().parents[1] / "baselines" / "checkpoints"


#: Run by ``python -c`` in ``--reference-tree``'s code (its own imports first on the path):
#: plays the episodes and prints the seconds of ``play_episodes`` and every episode's turns.
_REFERENCE_SIDE = """
import json, sys, time
sys.path.insert(0, sys.argv[1])
from agents import load_agent
from leaderboard.episodes import get_episode_set
from leaderboard.rollout import AgentMessages, play_episodes
path, episodes, batch_size = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
episode_set = get_episode_set("Dialog-v1", "test", limit=episodes)
source = AgentMessages(lambda: load_agent(path), batch_size)
start = time.perf_counter()
played = play_episodes(source, episode_set, progress=False)
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "turns": [e["turns"] for e in played]}))
"""


def play_in_tree(tree: Path, agent_dir: Path, episodes: int, batch_size: int):
    """``(seconds, turns per episode)`` of the evaluation run by the code in ``tree``."""
    result = run_in_tree(
        tree,
        _REFERENCE_SIDE,
        [agent_dir, episodes, batch_size],
        "the reference tree's evaluation",
    )
    return result["seconds"], result["turns"]


def _full_reencode(agent):
    agent.incremental = False  # keys ignored: every message re-reads the transcript
    return agent


def main(argv=None) -> int:
    """Parse the flags and run the bench (module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--agent", default="sft-expert", help="a shipped LM checkpoint name")
    parser.add_argument("--episodes", type=int, default=128, help="first N test episodes")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument(
        "--reference-tree",
        type=Path,
        help="a checkout of another commit whose evaluation is timed as a third side",
    )
    add_out_argument(parser)
    args = parse_args(parser, argv, {"episodes": 4, "batch_size": 4})
    check_reference_tree(args.reference_tree, "leaderboard/rollout.py")
    with BenchRecord("lm_agent_speed", argv, args) as record:
        measure(args, record)
    return 0


def measure(args: argparse.Namespace, record: BenchRecord) -> None:
    """Play the episodes on every side, check their messages equal, print the figures."""
    from agents import load_agent
    from leaderboard.episodes import get_episode_set
    from leaderboard.rollout import AgentMessages, play_episodes

    tree = args.reference_tree
    episode_set = get_episode_set("Dialog-v1", "test", limit=args.episodes)
    path = CHECKPOINTS / args.agent

    from dialog_env.lm.voice import LMVoice

    voicing = LMVoice.voice_batch
    in_voice = [0.0]

    def timed_voice(self, *args, **kwargs):  # the user's side of the same run
        start = time.perf_counter()
        try:
            return voicing(self, *args, **kwargs)
        finally:
            in_voice[0] += time.perf_counter() - start

    def play(make_agent):
        source = AgentMessages(make_agent, args.batch_size)
        in_voice[0] = 0.0
        LMVoice.voice_batch = timed_voice
        try:
            start = time.perf_counter()
            episodes = play_episodes(source, episode_set, progress=False)
            seconds = time.perf_counter() - start
        finally:
            LMVoice.voice_batch = voicing
        return episodes, seconds, source.agent, in_voice[0]

    full, full_s, _, full_voice = play(lambda: _full_reencode(load_agent(path)))
    fast, fast_s, agent, fast_voice = play(lambda: load_agent(path))
    if [e["turns"] for e in fast] != [e["turns"] for e in full]:
        raise SystemExit("incremental decoding wrote other messages than the full re-encode")
    if tree is not None:
        tree_s, tree_turns = play_in_tree(tree.resolve(), path, args.episodes, args.batch_size)
        if tree_turns != [e["turns"] for e in fast]:
            raise SystemExit(f"the code in {tree} wrote other episodes")
    stats = agent.sessions.stats
    messages = sum(t["role"] == "assistant" for e in fast for t in e["turns"])
    print(f"{args.agent} on {episode_set.id}, batch {args.batch_size}: {messages} messages")
    print(
        f"  full re-encode  {len(full) / full_s:8.2f} episodes/s ({full_s:.1f} s, "
        f"of which the LM voice {full_voice:.1f} s)"
    )
    print(
        f"  incremental     {len(fast) / fast_s:8.2f} episodes/s ({fast_s:.1f} s, "
        f"of which the LM voice {fast_voice:.1f} s)"
    )
    print(
        f"  prompt tokens reused from the cache {stats['reused']:,}, fed {stats['fed']:,}; "
        f"messages encoded in full {stats['full']} of {messages} "
        f"({len(fast)} first messages, the rest cut at the context limit)"
    )
    record.figures |= {"episodes": len(fast), "messages": messages, **stats}
    record.figures |= {"full_s": full_s, "full_voice_s": full_voice}
    record.figures |= {"incremental_s": fast_s, "incremental_voice_s": fast_voice}
    if tree is not None:
        print(f"  {tree} {len(fast) / tree_s:8.2f} episodes/s ({tree_s:.1f} s)")
        record.figures |= {"reference_s": tree_s, "voice_bound": tree_s / fast_voice}
        record.ratio("vs_reference", f"this checkout / {tree} episodes/s", tree_s / fast_s, "", 2)
    record.ratio("vs_full", "incremental / full re-encode episodes/s", full_s / fast_s, "", 2)


if __name__ == "__main__":
    raise SystemExit(main())
