"""The subcommands' argparse parsers, walked and tidied by the CLI after they are built.

Each subcommand registers its own parser beside its code (``add_parser(subparsers)``);
what holds for every one of them is applied here, once, over the whole tree: a short
description (the module docstring lives in the docs, not in ``--help``), each leaf
parser named on its own namespace (so that errors print that subcommand's usage), and
the default output paths a test checks against the package tree.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

__all__ = [
    "OUTPUT_DESTS",
    "is_inside",
    "leaf_parsers",
    "output_defaults",
    "set_default",
    "short_description",
    "tidy_parsers",
]

#: Argument dests that name a file or directory a command writes.
OUTPUT_DESTS = ("out", "json", "png", "db", "results_dir", "logdir", "html", "markdown")

#: Sphinx roles (``:func:`x```, ``:data:`~a.b```) shown as their plain target.
_ROLE = re.compile(r":\w+:`~?([^`]+)`")


def leaf_parsers(
    parser: argparse.ArgumentParser, prefix: str = ""
) -> dict[str, argparse.ArgumentParser]:
    """Every parser of the tree that has no subcommands, by its command (``"train sft"``)."""
    leaves: dict[str, argparse.ArgumentParser] = {}
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        return {prefix: parser}
    for action in subs:
        for name, child in action.choices.items():
            leaves.update(leaf_parsers(child, f"{prefix} {name}".strip()))
    return leaves


def short_description(text: str | None) -> str | None:
    """The first paragraph of ``text``, its reST markup plain: ``--help``'s summary.

    >>> short_description("``x``: see :func:`a.b`.\\n\\nMore.")
    'x: see a.b.'
    """
    if not text:
        return text
    first = text.strip().split("\n\n")[0]
    first = _ROLE.sub(r"\1", first).replace("``", "").replace("%%", "%")
    return " ".join(first.split())


def set_default(parser: argparse.ArgumentParser, dest: str, default, help: str) -> None:
    """Give ``parser``'s argument ``dest`` a new default and help."""
    (action,) = [a for a in parser._actions if a.dest == dest]
    action.default, action.help = default, help


def output_defaults(parser: argparse.ArgumentParser) -> dict[str, dict[str, object]]:
    """``{command: {dest: default}}`` of every argument that names an output, where the
    default is set (``None`` defaults are resolved by the command itself)."""
    found: dict[str, dict[str, object]] = {}
    for command, leaf in leaf_parsers(parser).items():
        for action in leaf._actions:
            if action.dest in OUTPUT_DESTS and action.default not in (None, argparse.SUPPRESS):
                found.setdefault(command, {})[action.dest] = action.default
    return found


def tidy_parsers(parser: argparse.ArgumentParser) -> None:
    """Short descriptions everywhere, and each leaf parser recorded on its namespace as
    ``_parser`` (its own ``error`` prints its own usage)."""
    for leaf in leaf_parsers(parser).values():
        long = leaf.description or ""
        leaf.description = short_description(long)
        func = leaf._defaults.get("func")
        if "\n\n" in long.strip() and func is not None and not leaf.epilog:
            leaf.epilog = f"The full documentation: python -m pydoc {func.__module__}"
        if leaf.formatter_class is argparse.RawDescriptionHelpFormatter:
            leaf.formatter_class = argparse.HelpFormatter
        leaf.set_defaults(_parser=leaf)
    parser.description = short_description(parser.description)


def is_inside(path: Path, roots: list[Path]) -> bool:
    """Whether ``path`` (resolved) lies inside one of ``roots``."""
    resolved = path.resolve()
    return any(resolved == r or r in resolved.parents for r in roots)
