"""pytest only (as numpy's and pandas' in-package conftests): the doctests of the modules
built on an optional extra run only where it is installed. pytest collects every module
for ``--doctest-modules``, and these import their extra at the top, since their base
classes come from it; their tests under ``tests/`` skip without it."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version


def _installed(distribution: str, below: tuple[int, ...]) -> bool:
    """Whether ``distribution`` is installed at a version below ``below``."""
    try:
        release = version(distribution).split("+")[0].split(".")
    except PackageNotFoundError:
        return False
    numbers = tuple(int(part) if part.isdigit() else 0 for part in release[: len(below)])
    return numbers < below


#: module file (beside this one) -> (its distribution, the first version it does not take).
_BUILT_ON = {
    "openenv.py": ("openenv-core", (0, 4)),
    "verifiers.py": ("verifiers", (0, 4)),
}

collect_ignore = [path for path, built_on in _BUILT_ON.items() if not _installed(*built_on)]
