"""The HTML leaderboard in a real headless Chromium: table rows present, every plot loaded.

The page is served on 127.0.0.1 beside a small harness page that loads it in a same-origin
iframe and, once everything has loaded, writes what it found (entry rows, image
sizes) into its own DOM, which ``chromium --dump-dom`` prints. A broken image would be
``complete`` with a natural size of 0x0.
"""

from __future__ import annotations

import base64
import html
import json
import os
import re
import shutil
import struct
import subprocess
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from leaderboard_helpers import stored_entry

from leaderboard.html_page import render_html
from leaderboard.render import COLUMNS
from leaderboard.standings import compute_standings

HARNESS = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>harness</title></head><body>
<pre id="result">pending</pre>
<iframe id="board" src="leaderboard.html" width="1280" height="900"></iframe>
<script>
// Runs in the load event, before --dump-dom prints: by then the iframe and its images
// have loaded (an iframe holds back its parent's load event), so the sizes are final.
window.addEventListener("load", () => {
  const doc = document.getElementById("board").contentDocument;
  const rows = [...doc.querySelectorAll("tr.entry")];
  document.getElementById("result").textContent = JSON.stringify({
    title: doc.title,
    sets: [...doc.querySelectorAll("table")].map((t) => t.dataset.episodeSet),
    rows: rows.map((r) => r.dataset.entry),
    cells: rows.map((r) => r.cells.length),
    images: [...doc.querySelectorAll("img")].map((img) => ({
      complete: img.complete, width: img.naturalWidth, height: img.naturalHeight})),
  });
});
</script></body></html>
"""


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


class _QuietHandler(SimpleHTTPRequestHandler):
    requested: list[str]

    def log_message(self, format, *args):  # noqa: A002  (the base class's name)
        pass

    def do_GET(self):
        self.requested.append(self.path)
        super().do_GET()


@pytest.fixture
def served(tmp_path):
    """Serve tmp_path on 127.0.0.1 (an ephemeral port); yield (base_url, requested paths)."""
    requested: list[str] = []
    handler = type("Handler", (_QuietHandler,), {"requested": requested})
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(tmp_path)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", requested
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def _board():
    base = np.random.default_rng(0).random(120)
    return compute_standings(
        [
            stored_entry("expert", "reference", [True] * 120),
            stored_entry("random", "reference", list(base < 0.02)),
            stored_entry("sft", "sft", list(base < 0.6), budget={"demo_episodes": 40_000}),
            stored_entry("ppo", "rl", list(base < 0.8), budget={"env_steps": 2_000_000}),
            stored_entry("expert", "reference", [True] * 7, episode_set="Dialog-v1/dev[:7]"),
        ]
    )


def test_leaderboard_page_renders_in_headless_chromium(tmp_path, served):
    chromium = _chromium()
    if chromium is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing: .ci/run installs it (apt-get install chromium)")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    board = _board()
    (tmp_path / "leaderboard.html").write_text(render_html(board), encoding="utf-8")
    (tmp_path / "check.html").write_text(HARNESS, encoding="utf-8")
    base_url, requested = served
    profile = tmp_path / "profile"
    cmd = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=15000",
        "--dump-dom",
        f"{base_url}/check.html",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    match = re.search(r'<pre id="result">(.*?)</pre>', proc.stdout, re.S)
    assert match, f"no result in the DOM (rc={proc.returncode}): {proc.stderr[-2000:]}"
    assert match.group(1) != "pending", "the harness never saw the page load"
    found = json.loads(html.unescape(match.group(1)))

    assert found["title"] == "dialog-bench leaderboard"
    assert found["sets"] == [s.episode_set for s in board]
    assert found["rows"] == [e.name for s in board for e in s.entries]
    assert set(found["cells"]) == {len(COLUMNS)}
    # Every plot loaded at the size its PNG says (a broken image is 0 x 0).
    pngs = [
        base64.b64decode(data)
        for data in re.findall(r'src="data:image/png;base64,([^"]+)"', render_html(board))
    ]
    assert len(pngs) == 2 * len(board) == len(found["images"])
    for image, png in zip(found["images"], pngs, strict=True):
        width, height = struct.unpack(">II", png[16:24])  # the IHDR chunk
        assert image["complete"] and (image["width"], image["height"]) == (width, height)
        assert width >= 640 and height == 380
    # Self-contained: the browser fetched the two pages and nothing else.
    assert set(requested) - {"/favicon.ico"} == {"/check.html", "/leaderboard.html"}
