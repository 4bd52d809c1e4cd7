"""``dialog-bench seeds``: a lineage's SFT-vs-RL table over training seeds, and its aggregates.

Prints, for the lineage's pairs (:mod:`leaderboard.seeds`: "SFT->RL vs its SFT start" at
every seed where both rows have a results file, "RL vs filtered SFT" and "RL from
filtered vs filtered SFT"), each seed's paired difference of success on the test episodes
with its 95% bootstrap CI and, over seeds, the mean difference and in how many seeds the
CI excludes 0; then rliable's aggregates over seeds (:mod:`leaderboard.seed_aggregates`:
each row's IQM of success with a stratified bootstrap CI, each pair's probability of
improvement), which need the optional extra ``stats``. Seed 0 of a row is the board's
results file; seed k, ``results/seeds/<env id>/<row>-s<k>.json``::

    dialog-bench seeds                      # the careless lineage on Dialog-v1
    dialog-bench seeds --out seeds.json --profile-json profile.json --profile-png profile.png

``--out`` writes every figure as JSON; ``--profile-json`` and ``--profile-png`` the
lineage's performance profile over seeds (episode returns; the published copies are
``leaderboard/performance_profile.json``, which the HTML page draws, and
``docs/performance_profile.png``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from leaderboard import seed_aggregates
from leaderboard.profile_page import profile_png
from leaderboard.seeds import CARELESS, LINEAGES, RESULTS_DIR, pairs_markdown, science_table
from leaderboard.stats import N_RESAMPLES

__all__ = ["add_parser", "main"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "seeds",
        help="a lineage's SFT-vs-RL table over training seeds, with rliable's aggregates",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--lineage", choices=sorted(LINEAGES), default=CARELESS.name, help="default: careless"
    )
    p.add_argument("--env-id", default="Dialog-v1", help="default: Dialog-v1")
    p.add_argument(
        "--results-dir",
        dest="results_root",  # read, not written: not an output directory
        type=Path,
        default=RESULTS_DIR,
        metavar="DIR",
        help="holds <env id>/<row>.json (seed 0) and seeds/<env id>/<row>-s<k>.json "
        "(default: the shipped results)",
    )
    p.add_argument("--out", type=Path, default=None, metavar="PATH", help="write the figures")
    p.add_argument(
        "--resamples",
        type=int,
        default=N_RESAMPLES,
        metavar="N",
        help=f"bootstrap resamples of the aggregates over seeds (default: {N_RESAMPLES:,}, "
        "as the board's CIs)",
    )
    p.add_argument(
        "--profile-json",
        type=Path,
        default=None,
        metavar="PATH",
        help="write the performance profile's data (the published copy: "
        "leaderboard/performance_profile.json, which the HTML page draws)",
    )
    p.add_argument(
        "--profile-png",
        type=Path,
        default=None,
        metavar="PATH",
        help="write the performance profile as a PNG (the published copy: "
        "docs/performance_profile.png)",
    )
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    table = science_table(LINEAGES[args.lineage], args.results_root, args.env_id)
    figures = table.to_json()
    print(f"The {table.lineage} lineage on {table.env_id}, over training seeds\n")
    print(pairs_markdown(table))
    try:
        aggregates = seed_aggregates.aggregates(table, args.resamples)
    except ImportError as err:  # the optional extra: the per-seed table stands alone
        if args.profile_json or args.profile_png:
            raise
        print(f"\n(no aggregates over seeds: {err})")
    else:
        figures["aggregates"] = aggregates
        print("\n" + seed_aggregates.aggregates_markdown(aggregates))
    if args.profile_json or args.profile_png:
        profile = seed_aggregates.profile_data(table, Path(args.results_root))
        if args.profile_json:
            args.profile_json.write_text(json.dumps(profile, indent=1) + "\n")
            print(f"wrote {args.profile_json}")
        if args.profile_png:
            args.profile_png.write_bytes(profile_png(profile))
            print(f"wrote {args.profile_png}")
    if args.out:
        args.out.write_text(json.dumps(figures, indent=2) + "\n")
        print(f"wrote {args.out}")
    return 0
