"""Generate the shipped booking domain (venues + reservation book) from a fixed seed.

Run ``python -m dialog_env.tasks.booking.generate`` to rewrite ``data/domain.json``;
the output is byte-identical for the same seed, so a diff shows any change.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from dialog_env.tasks.booking.domain import AREAS, DAYS, DOMAIN_FILE, FOODS, PRICES, TIMES

SEED = 20261128
N_VENUES = 120
FULL_SHARE = 0.25  # share of (venue, day, time) slots that start fully booked

#: A venue is called "The <first> <second>", a word of each (diagnostics read any such
#: name, shipped or not).
NAME_FIRST_WORDS = (
    "Golden Silver Scarlet Blue Green Royal Old Little Lucky Happy Hidden Crooked Jade "
    "Copper Velvet Rustic Salty Sunny Wild Quiet Amber Ivory Humble Merry"
).split()
NAME_SECOND_WORDS = (
    "Lantern Spoon Kettle Dragon Olive Garden Anchor Fig Lotus Oak Harbour Griddle Pepper "
    "Ladle Orchard Fox Bell Mill Pantry Tavern Kitchen Bistro Cellar Parlour"
).split()
_STREETS = (
    "Hills Mill Bridge Regent Castle Station Market Chapel Victoria Trinity King Queen "
    "Newmarket Mortimer Panton Hobson Lensfield Chesterton"
).split()
_SUFFIXES = ("Road", "Street", "Lane", "Avenue")


def generate(seed: int = SEED) -> dict:
    rng = np.random.default_rng(seed)
    pairs = [(a, b) for a in NAME_FIRST_WORDS for b in NAME_SECOND_WORDS]
    picks = rng.choice(len(pairs), size=N_VENUES, replace=False)
    names = sorted(f"The {pairs[i][0]} {pairs[i][1]}" for i in picks)
    venues, tables, phones = [], {}, set()
    for name in names:
        phone = None
        while phone is None or phone in phones:
            phone = f"01223 {rng.integers(100000, 1000000)}"
        phones.add(phone)
        street = f"{rng.choice(_STREETS)} {rng.choice(_SUFFIXES)}"
        letters = "".join(rng.choice(list("abdefghjlnpqrstuwxyz"), size=2))
        venues.append(
            {
                "name": name,
                "area": str(rng.choice(AREAS)),
                "food": str(rng.choice(FOODS)),
                "price": str(rng.choice(PRICES, p=[0.4, 0.35, 0.25])),
                "phone": phone,
                "address": f"{rng.integers(1, 200)} {street}",
                "postcode": f"cb{rng.integers(1, 6)} {rng.integers(1, 10)}{letters}",
            }
        )
        free = rng.integers(1, 4, size=(len(DAYS), len(TIMES)))
        free[rng.random((len(DAYS), len(TIMES))) < FULL_SHARE] = 0
        tables[name] = ["".join(str(int(x)) for x in day) for day in free]
    return {
        "seed": seed,
        "days": list(DAYS),
        "times": list(TIMES),
        "venues": venues,
        "tables": tables,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--out", type=Path, default=DOMAIN_FILE)
    args = parser.parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(generate(args.seed), indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
