"""A scan of test sources for randomness drawn without a seed.

A test that draws from the interpreter's global generators, from an unseeded numpy or
gymnasium generator, or from torch's global generator without seeding it, gives another
result on every run (or in another test order): a flaky test. :func:`unseeded_draws`
reads a module's source (it is never imported) and names each such draw:

- stdlib ``random``: a module-level draw (``random.choice(...)``), or ``random.Random()``
  without a seed (use ``random.Random(seed)``);
- numpy: the legacy global state (``np.random.rand(...)``, ``np.random.shuffle``, ...), or
  ``np.random.default_rng()`` / ``np.random.RandomState()`` without a seed;
- torch: ``torch.rand``, ``randn``, ``randint``, ... without ``generator=``, unless the
  same function called ``torch.manual_seed`` before;
- gymnasium: ``<...>space.sample()`` unless the same function seeded that space before
  (``env.action_space.seed(0)``).

The scan reads call sites lexically, one function at a time; a draw inside a library that
a test calls is that library's business (the env seeds through ``reset(seed=...)``).

>>> unseeded_draws("import random\\nx = random.choice([1, 2])\\n")
['line 2: random.choice() draws from the global random state']
>>> unseeded_draws("import random\\nx = random.Random(0).choice([1, 2])\\n")
[]
"""

from __future__ import annotations

import ast

__all__ = ["unseeded_draws"]

_STDLIB_DRAWS = frozenset(
    "random randint randrange choice choices shuffle sample uniform gauss normalvariate "
    "lognormvariate expovariate vonmisesvariate gammavariate betavariate paretovariate "
    "weibullvariate triangular getrandbits randbytes binomialvariate".split()
)
#: ``numpy.random`` names that are not draws from its legacy global state (``get_state``
#: reads it, to check that something left it alone).
_NUMPY_SEEDABLE = frozenset(
    "default_rng Generator SeedSequence BitGenerator PCG64 PCG64DXSM MT19937 Philox SFC64 "
    "RandomState get_state".split()
)
_TORCH_DRAWS = frozenset(
    "rand randn randint randperm normal bernoulli multinomial poisson rand_like randn_like "
    "randint_like".split()
)


def _dotted(node: ast.AST) -> str | None:
    """``a.b.c`` for a chain of names and attributes, else None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))


def _module_aliases(tree: ast.Module) -> dict[str, str]:
    """Local name -> module for ``import random``, ``import numpy as np``, ``import torch``."""
    aliases = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in ("random", "numpy", "torch", "numpy.random"):
                    aliases[alias.asname or alias.name] = alias.name
        elif isinstance(node, ast.ImportFrom) and node.module == "numpy":
            for alias in node.names:
                if alias.name == "random":
                    aliases[alias.asname or "random"] = "numpy.random"
    return aliases


def _canonical(name: str, aliases: dict[str, str]) -> str:
    """``np.random.rand`` -> ``numpy.random.rand``; a name whose head is no imported module
    (a local called ``random``, ``env.action_space.sample``) gets a ``.`` prefix, so that it
    never reads as a module's function."""
    head, _, rest = name.partition(".")
    module = aliases.get(head)
    if module is None:
        return "." + name
    return f"{module}.{rest}" if rest else module


def _scopes(tree: ast.Module) -> list[ast.AST]:
    """The module and every function: each is scanned for seeds and draws on its own."""
    funcs = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    return [tree, *funcs]


def _own_calls(scope: ast.AST) -> list[ast.Call]:
    """Calls in ``scope`` but not in a function nested in it, in source order."""
    calls, todo = [], list(ast.iter_child_nodes(scope))
    while todo:
        node = todo.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            continue
        if isinstance(node, ast.Call):
            calls.append(node)
        todo.extend(ast.iter_child_nodes(node))
    return sorted(calls, key=lambda c: (c.lineno, c.col_offset))


def _problem(call: ast.Call, name: str, seeded: set[str]) -> str | None:
    module, _, fn = name.rpartition(".")
    has_args = bool(call.args or call.keywords)
    if module == "random" and fn in _STDLIB_DRAWS:
        return f"random.{fn}() draws from the global random state"
    if name == "random.Random" and not has_args:
        return "random.Random() without a seed"
    if module == "numpy.random" and fn not in _NUMPY_SEEDABLE and fn != "seed":
        return f"numpy.random.{fn}() draws from numpy's legacy global state"
    if module == "numpy.random" and fn in ("default_rng", "RandomState") and not has_args:
        return f"numpy.random.{fn}() without a seed"
    if module == "torch" and fn in _TORCH_DRAWS and "torch" not in seeded:
        if not any(k.arg == "generator" for k in call.keywords):
            return f"torch.{fn}() without generator= (or torch.manual_seed before it)"
    if fn == "sample" and module.rsplit(".", 1)[-1].endswith("space") and module not in seeded:
        return f"{module.lstrip('.')}.sample() on a space this function did not seed"
    return None


def unseeded_draws(source: str) -> list[str]:
    """Each draw of unseeded randomness in ``source`` (a module's text), as ``line N: why``."""
    tree = ast.parse(source)
    aliases = _module_aliases(tree)
    found = []
    for scope in _scopes(tree):
        seeded: set[str] = set()
        for call in _own_calls(scope):
            dotted = _dotted(call.func)
            if dotted is None:
                continue
            name = _canonical(dotted, aliases)
            if name == "torch.manual_seed":
                seeded.add("torch")
            elif name.endswith(".seed") and call.args:
                seeded.add(name[: -len(".seed")])
            problem = _problem(call, name, seeded)
            if problem:
                found.append(f"line {call.lineno}: {problem}")
    return sorted(set(found), key=lambda line: int(line.split(":")[0].split()[1]))
