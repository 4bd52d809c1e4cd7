"""``dialog-bench``: the command line of the benchmark, the top of the house.

Each subcommand lives beside the code it runs and registers itself through an
``add_parser(subparsers)`` function; this module only wires them together, importing
heavy modules (torch, transformers) only inside the subcommand that needs them. Nothing
imports this module: it sits above every package (``python -m dialog_bench``).
"""

from __future__ import annotations

import argparse
import sys

from dialog_env.entry_points import load_entry_point

__all__ = ["SUBCOMMAND_MODULES", "build_parser", "main"]

#: Modules that define ``add_parser``, in the order ``--help`` lists them.
SUBCOMMAND_MODULES = (
    "agents.play",
    "leaderboard.agents_list",
    "baselines.pretrain",
    "baselines.demos",
    "baselines.prefs",
    "baselines.train",
    "baselines.diagnose",
    "leaderboard.evaluate",
    "leaderboard.submit",
    "leaderboard.compare",
    "leaderboard.overoptimization",
    "leaderboard.render",
    "leaderboard.run",
    "dialog_bench.serve",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dialog-bench",
        description="dialog-bench: SFT and RL dialogue agents on identical, seeded episodes.",
    )
    from dialog_env import __version__

    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        load_entry_point(f"{name}:add_parser")(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError) as err:
        print(f"dialog-bench {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
