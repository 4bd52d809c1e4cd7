"""``python -m dialog_bench``: the ``dialog-bench`` command."""

import sys

from dialog_bench.cli import main

if __name__ == "__main__":
    sys.exit(main())
