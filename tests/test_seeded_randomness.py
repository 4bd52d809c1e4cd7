"""No test draws unseeded randomness: every test module passes the scan of
``tests/randomness_scan.py``, and the scan catches each kind of unseeded draw."""

from __future__ import annotations

from pathlib import Path

import pytest
from randomness_scan import unseeded_draws

TESTS = Path(__file__).resolve().parent


@pytest.mark.parametrize(
    "path", sorted(TESTS.rglob("*.py")), ids=lambda p: str(p.relative_to(TESTS))
)
def test_no_test_module_draws_unseeded_randomness(path):
    assert unseeded_draws(path.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize(
    ("source", "why"),
    [
        ("import random\nrandom.shuffle(x)", "random.shuffle() draws from the global"),
        ("import random as r\nr.random()", "random.random() draws from the global"),
        ("import random\nrng = random.Random()", "random.Random() without a seed"),
        ("import numpy as np\nnp.random.rand(3)", "numpy.random.rand() draws from numpy's"),
        ("from numpy import random\nrandom.permutation(4)", "numpy.random.permutation()"),
        ("import numpy as np\nnp.random.default_rng()", "default_rng() without a seed"),
        ("import torch\ntorch.randn(2, 3)", "torch.randn() without generator="),
        (
            "def test():\n    env.reset(seed=0)\n    a = env.action_space.sample()",
            "env.action_space.sample() on a space this function did not seed",
        ),
        (  # seeded in another function: that seed is not this function's
            "def f():\n    space.seed(0)\ndef g():\n    space.sample()",
            "space.sample() on a space",
        ),
    ],
)
def test_the_scan_names_an_unseeded_draw(source, why):
    (found,) = unseeded_draws(source)
    assert why in found


@pytest.mark.parametrize(
    "source",
    [
        "import random\nrng = random.Random(0)\nrng.shuffle(x)",
        "import numpy as np\nrng = np.random.default_rng(3)\nrng.random(4)",
        "import torch\ng = torch.Generator().manual_seed(0)\ntorch.randn(2, generator=g)",
        "import torch\ndef f():\n    torch.manual_seed(0)\n    torch.rand(2)",
        "def f(env):\n    env.action_space.seed(0)\n    env.action_space.sample()",
        "random = load('random.json')\nrandom.sample",  # a local called random, no draw
    ],
)
def test_a_seeded_draw_passes_the_scan(source):
    assert unseeded_draws(source) == []


def test_hypothesis_runs_derandomized():
    """Hypothesis draws its examples from a fixed seed in the default profile (conftest), so
    a failure found once is found on every run; ``HYPOTHESIS_PROFILE=explore`` searches anew."""
    from hypothesis import settings

    assert settings.default.derandomize and settings.default.database is None
