"""The performance profile of a lineage over training seeds, drawn for the page and docs.

``dialog-bench seeds --profile-json`` writes a profile's data (computed with rliable by
:func:`leaderboard.seed_aggregates.profile_data`); this module draws it with matplotlib
alone, so the HTML page shows the published profile (:data:`PROFILE_JSON`) without the
``stats`` extra.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

__all__ = ["PROFILE_JSON", "page_figures", "profile_png"]

#: The published profile's data, drawn on the HTML page.
PROFILE_JSON = Path(__file__).resolve().parent / "performance_profile.json"


def profile_png(data: Mapping) -> bytes:
    """PNG bytes of a profile's data (:func:`leaderboard.seed_aggregates.profile_data`):
    one line per row, its CI shaded; drawn on an Agg canvas of its own (no pyplot state),
    every text as plain text."""
    import io

    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with matplotlib.rc_context({"text.parse_math": False, "text.usetex": False}):
        fig = Figure(figsize=(6.4, 4.0), dpi=100)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot(1, 1, 1)
        colours = matplotlib.colormaps["tab10"]
        for k, (name, row) in enumerate(data["rows"].items()):
            n = len(row["seeds"])
            label = f"{name} ({n} seed{'s' if n > 1 else ''})"
            ax.plot(data["taus"], row["profile"], color=colours(k), label=label, linewidth=1.8)
            ax.fill_between(data["taus"], row["low"], row["high"], color=colours(k), alpha=0.2)
        ax.set_xlabel("episode return (tau)")
        ax.set_ylabel("share of (seed, episode) runs > tau")
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(f"{data['lineage']} lineage, {data['env_id']} test episodes")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower left")
        buf = io.BytesIO()
        fig.tight_layout()
        fig.savefig(buf, format="png")
    return buf.getvalue()


def page_figures(path: Path | None = None) -> dict[str, list[tuple[bytes, str, str]]]:
    """The published performance profile for the HTML page, drawn from its data
    (:data:`PROFILE_JSON`); none without the file."""
    path = path or PROFILE_JSON
    if not path.is_file():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    seeds = "; ".join(f"{n}: seeds {row['seeds']}" for n, row in data["rows"].items())
    caption = (
        f"Performance profile of the {data['lineage']} lineage over training seeds: the share "
        "of (seed, test episode) runs whose return exceeds tau, with 95% stratified bootstrap "
        f"CIs over seeds (rliable; dialog-bench seeds). {seeds}."
    )
    alt = f"performance profile of the {data['lineage']} lineage"
    return {data["env_id"]: [(profile_png(data), alt, caption)]}
