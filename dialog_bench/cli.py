"""``dialog-bench``: the command line of the benchmark, the top of the house.

Each subcommand lives beside the code it runs and registers itself through an
``add_parser(subparsers)`` function; this module wires them together (tidied by
:mod:`dialog_bench.parsers`), checks what can be checked before a command starts
(:mod:`dialog_bench.prepare`) and turns the errors a user can fix into one line. Heavy
modules (torch, transformers) are imported only inside the subcommand that needs them.
Nothing imports this module: it sits above every package (``python -m dialog_bench``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dialog_bench.parsers import set_default, tidy_parsers
from dialog_bench.prepare import DECODING_COMMANDS, OPTIONAL_EXTRAS, prepare
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
    "leaderboard.seeds_command",
    "leaderboard.overoptimization",
    "leaderboard.render",
    "leaderboard.run",
    "dialog_bench.serve",
    "dialog_bench.serve_env",
)

#: The over-optimization analysis writes beside the user; the published copies are
#: written only when named (the README's plot and the HTML page's data).
OVEROPT_OUTPUTS = {
    "json": ("overoptimization.json", "leaderboard/overoptimization.json"),
    "png": ("overoptimization.png", "docs/overoptimization.png"),
}


#: command -> {old flag: new flag}, kept one release with a notice.
DEPRECATED_FLAGS = {
    "demos": {"--episodes": "--num-episodes"},
    "prefs": {"--episodes": "--num-episodes"},
}


def build_parser() -> argparse.ArgumentParser:
    """The whole command line: every subcommand's parser, tidied (short help, each
    subcommand's own usage on its errors, outputs in the working directory)."""
    parser = argparse.ArgumentParser(
        prog="dialog-bench",
        description="dialog-bench: SFT and RL dialogue agents on identical, seeded episodes.",
    )
    from dialog_env import __version__

    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        load_entry_point(f"{name}:add_parser")(sub)
    overopt = sub.choices["overopt"]
    for dest, (here, published) in OVEROPT_OUTPUTS.items():
        set_default(
            overopt, dest, Path(here), f"default: {here} here (the published copy: {published})"
        )
    for name in DECODING_COMMANDS:
        sub.choices[name].add_argument(
            "--threads",
            type=int,
            default=1,
            metavar="N",
            help="torch threads for the agent's model (default: 1; the tiny models run "
            "fastest on one, above all on a busy machine)",
        )
    tidy_parsers(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``dialog-bench ARGV``; the exit status (2 for a usage error)."""
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    own = getattr(args, "_parser", parser)
    if unknown:
        own.error(f"unrecognized arguments: {' '.join(unknown)}")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    typed = sys.argv[1:] if argv is None else argv
    for old, new in DEPRECATED_FLAGS.get(args.command, {}).items():
        if any(a == old or a.startswith(old + "=") for a in typed):
            print(
                f"{own.prog}: {old} is deprecated, use {new} (the old name goes in the "
                "next release)",
                file=sys.stderr,
            )
    try:
        prepare(args)
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError) as err:
        print(f"{own.prog}: error: {err}", file=sys.stderr)
        return 2
    except ImportError as err:
        message = missing_extra(err)
        if message is None:
            raise
        print(f"{own.prog}: error: {message}", file=sys.stderr)
        return 2


def missing_extra(err: ImportError) -> str | None:
    """One line for a missing optional extra (``None`` for any other import error: a bug
    that keeps its traceback)."""
    module = (getattr(err, "name", None) or "").split(".")[0]
    if module in OPTIONAL_EXTRAS:
        extra = OPTIONAL_EXTRAS[module]
        return f"this needs the optional extra {extra}: pip install 'dialog-bench[{extra}]'"
    return str(err) if "pip install" in str(err) else None


if __name__ == "__main__":
    sys.exit(main())
