"""One way to turn a ``"module:attr"`` string into the object it names.

Registries across the project (tasks, agents, checkpoint kinds, CLI subcommands, lazy
names) name what they hold by strings, so that nothing is imported until it is used;
:func:`load_entry_point` is the one place those strings are resolved (as Gymnasium's
``load_env_creator`` resolves env entry points). It imports only what the string names.
"""

from __future__ import annotations

import re
from importlib import import_module
from typing import Any

__all__ = ["load_entry_point"]

_ENTRY_POINT_RE = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")


def load_entry_point(spec: str) -> Any:
    """The object that ``spec`` (``"package.module:name"``) names.

    The part after the colon may be dotted (``"module:Class.method"``).

    >>> load_entry_point("dialog_env.text:Turn").__name__
    'Turn'
    >>> load_entry_point("dialog_env.text")
    Traceback (most recent call last):
    ...
    ValueError: 'dialog_env.text' is not an entry point: write it as 'package.module:name'
    """
    if not isinstance(spec, str) or not _ENTRY_POINT_RE.fullmatch(spec):
        raise ValueError(f"{spec!r} is not an entry point: write it as 'package.module:name'")
    module_name, _, attr_path = spec.partition(":")
    try:
        target = import_module(module_name)
    except ModuleNotFoundError as err:
        missing = err.name or ""
        if module_name != missing and not module_name.startswith(missing + "."):
            raise  # the module exists but something it imports is missing: say that
        raise ValueError(f"entry point {spec!r}: no module named {missing!r}") from None
    for attr in attr_path.split("."):
        try:
            target = getattr(target, attr)
        except AttributeError:
            raise ValueError(
                f"entry point {spec!r}: {module_name!r} has no attribute {attr_path!r}"
            ) from None
    return target
