"""The doctests of the modules built on an optional extra run only where it is installed
(pytest collects every module for ``--doctest-modules``, and these import their extra at
the top, as their base classes come from it); their tests skip without it."""

from importlib.util import find_spec

#: module file -> the package it is built on.
_BUILT_ON = {
    "dialog_env/integrations/openenv.py": "openenv",
    "dialog_env/integrations/verifiers.py": "verifiers",
}

collect_ignore = [path for path, package in _BUILT_ON.items() if find_spec(package) is None]
