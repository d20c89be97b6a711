"""Pictures: attention heatmaps with non-overlapping token labels, grids, logit lens, and the
self-contained HTML head view (escaping checked with Python's HTML parser and node's JSON)."""

from __future__ import annotations

import json
import shutil
import subprocess
from html.parser import HTMLParser
from itertools import combinations

import numpy as np
import pytest

from gpt2lab.interp.html import HeadView, head_view_html, safe_json
from gpt2lab.plots.attention import (
    attention_heatmap,
    layer_head_grid,
    layer_heads_grid,
    logit_lens_table,
    token_label,
)


def random_pattern(T, seed=0, lead=()):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(*lead, T, T)) * 3
    logits = np.where(np.tril(np.ones((T, T), bool)), logits, -np.inf)
    p = np.exp(logits - logits.max(-1, keepdims=True))
    return p / p.sum(-1, keepdims=True)


def tick_boxes(fig, axis):
    fig.canvas.draw()
    boxes = []
    for ax in fig.axes:
        labels = ax.get_xticklabels() if axis == "x" else ax.get_yticklabels()
        boxes += [t.get_window_extent() for t in labels if t.get_visible() and t.get_text()]
    return boxes


def overlapping(boxes):
    return [(a, b) for a, b in combinations(boxes, 2) if a.overlaps(b)]


WORDS = [" the", " cat", " sat", " on", " mat", " because", " it", " was", " comfortable", "."]


@pytest.mark.parametrize("T", [6, 40, 180])
def test_heatmap_labels_are_readable_and_do_not_overlap(T):
    tokens = [WORDS[i % len(WORDS)] for i in range(T)]
    fig = attention_heatmap(random_pattern(T), tokens, title="layer 0, head 1")
    for axis in "xy":
        boxes = tick_boxes(fig, axis)
        assert boxes and not overlapping(boxes)
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    if T <= 90:
        assert len(labels) == T and labels[1] == " cat"  # every label when there is room
    else:
        assert len(labels) == 90 and labels[1] == " sat"  # else every k-th (k = 2)
    assert min(t.get_fontsize() for t in fig.axes[0].get_xticklabels()) >= 8


def test_token_labels_escape_mathtext_and_show_whitespace():
    assert token_label("$5") == r"\$5"
    assert token_label("\n") == "↵"
    assert token_label("  ") == "␣␣"
    fig = attention_heatmap(random_pattern(3), ["$x$", "\n", " "])
    fig.canvas.draw()  # would raise on an unbalanced mathtext '$'


def test_layer_heads_grid_and_score_grids():
    T = 12
    fig = layer_heads_grid(random_pattern(T, lead=(6,)), [f" w{i}" for i in range(T)], layer=2)
    assert sum(1 for ax in fig.axes if ax.images) == 6
    for axis in "xy":
        assert not overlapping(tick_boxes(fig, axis))
    grid = np.arange(12.0).reshape(3, 4) / 12
    fig = layer_head_grid(grid, "previous-token score")
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts[:2] == ["0.00", "0.08"] and len(texts) == 12
    fig = layer_head_grid(grid - 0.5, "Δloss", diverging=True)
    assert fig.axes[0].images[0].get_clim() == (-0.5, 0.5)


def test_logit_lens_table():
    stages = ["embed", "L0", "L1"]
    tokens = [" The", " cat", " sat"]
    top = [[" a", " b", " c"], [" dog", " sat", " on"], [" cat", " sat", " on"]]
    fig = logit_lens_table(stages, tokens, top, np.full((3, 3), 0.5))
    cells = [t.get_text() for t in fig.axes[0].texts]
    assert cells == [s for row in top for s in row]
    assert not overlapping(tick_boxes(fig, "x"))


class ScriptCollector(HTMLParser):
    """What a browser's parser sees: the text of each <script> element, and external refs."""

    def __init__(self):
        super().__init__()
        self.scripts, self.current, self.external = [], None, []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for key in ("src", "href"):
            if attrs.get(key):
                self.external.append(attrs[key])
        if tag == "script":
            self.current = (attrs.get("id"), [])

    def handle_data(self, data):
        if self.current is not None:
            self.current[1].append(data)

    def handle_endtag(self, tag):
        if tag == "script" and self.current is not None:
            self.scripts.append((self.current[0], "".join(self.current[1])))
            self.current = None


NASTY = ["</script><script>alert(1)</script>", " <b>&amp;", "\u2028", ' "q"', "é"]


def test_head_view_is_self_contained_and_tokens_cannot_escape():
    patterns = random_pattern(len(NASTY), lead=(2, 3))
    page = head_view_html(NASTY, patterns, title="</title><h1>x")
    parser = ScriptCollector()
    parser.feed(page)
    assert [sid for sid, _ in parser.scripts] == ["head-view-data", None]  # no injected script
    assert parser.external == []  # nothing fetched at view time
    fetchable = page.replace(
        "http://www.w3.org/2000/svg", ""
    )  # a namespace name, not a URL to load
    assert "http://" not in fetchable and "https://" not in fetchable
    data = json.loads(parser.scripts[0][1])
    assert data["tokens"] == NASTY and data["title"] == "</title><h1>x"
    np.testing.assert_allclose(np.array(data["attention"]), patterns, atol=5e-4)
    assert (data["n_layer"], data["n_head"]) == (2, 3)
    assert "textContent = text" in page  # tokens are inserted as text, not markup


@pytest.mark.skipif(shutil.which("node") is None, reason="node not installed")
def test_browser_json_parse_reads_back_the_escaped_tokens():
    script = f"process.stdout.write(JSON.stringify(JSON.parse({json.dumps(safe_json(NASTY))})))"
    out = subprocess.run(["node", "-e", script], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == NASTY


def test_head_view_in_a_notebook_and_on_disk(tmp_path):
    view = HeadView(["a", "b"], random_pattern(2, lead=(1, 1)))
    cell = view._repr_html_()
    assert cell.startswith("<iframe srcdoc=") and "<script" not in cell  # escaped into srcdoc
    view.save(tmp_path / "v.html")
    assert (tmp_path / "v.html").read_text(encoding="utf-8") == view.html
