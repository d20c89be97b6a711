"""A self-contained, bertviz-style head view: one HTML file, no network at view time.

Lines join each query token (left) to the key tokens it attends to (right), one colour per
head, opacity = attention weight; a select picks the layer, buttons toggle heads, hovering a
token shows only its lines. The page is `static/head_view.html` with the data inlined as a
JSON script block:

    html = head_view_html(["The", " cat"], patterns)  # patterns: (n_layer, n_head, T, T)
    Path("heads.html").write_text(html)                # open in any browser, offline
    HeadView(tokens, patterns)                         # displays inline in a notebook

Token text is data, never markup: the JSON escapes `<`, `>` and `&` (so a token such as
"</script>" cannot end the block), and the page inserts it with `textContent`.
"""

from __future__ import annotations

import html as html_lib
import json
from collections.abc import Sequence
from importlib import resources

import numpy as np

from gpt2lab.errors import GPT2LabError

PLACEHOLDER = "__HEAD_VIEW_DATA__"


def safe_json(data) -> str:
    """JSON that is safe inside an HTML <script> block: <, >, & and the JS line separators
    U+2028/U+2029 become \\u escapes (still valid JSON, decoded back by JSON.parse)."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    for char, escape in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(char, escape)
    return text


def head_view_data(
    tokens: Sequence[str],
    patterns: np.ndarray,
    title: str = "",
    layer: int = 0,
    heads: Sequence[int] | None = None,
) -> dict:
    """The page's data as plain JSON-able values (weights rounded to 3 decimals)."""
    patterns = np.asarray(patterns, dtype=float)
    if patterns.ndim != 4 or patterns.shape[2:] != (len(tokens), len(tokens)):
        raise GPT2LabError(
            f"head view needs patterns of shape (n_layer, n_head, {len(tokens)}, {len(tokens)}), "
            f"got {patterns.shape}"
        )
    n_layer, n_head = patterns.shape[:2]
    return {
        "title": title,
        "tokens": list(tokens),
        "n_layer": n_layer,
        "n_head": n_head,
        "layer0": layer,
        "heads0": list(range(n_head)) if heads is None else list(heads),
        "attention": np.round(patterns, 3).tolist(),
    }


def head_view_html(
    tokens: Sequence[str],
    patterns: np.ndarray,
    title: str = "gpt2lab head view",
    layer: int = 0,
    heads: Sequence[int] | None = None,
) -> str:
    """The complete HTML page for `patterns` (n_layer, n_head, T, T) over `tokens`."""
    template = (
        resources.files("gpt2lab.interp").joinpath("static/head_view.html").read_text("utf-8")
    )
    data = head_view_data(tokens, patterns, title, layer, heads)
    return template.replace(PLACEHOLDER, safe_json(data))


class HeadView:
    """A head view that shows itself in Jupyter (`_repr_html_`) and saves as a file.

    In a notebook the page sits in an iframe (`srcdoc`), so its script runs in both classic
    Jupyter and JupyterLab, offline.
    """

    def __init__(self, tokens: Sequence[str], patterns: np.ndarray, **kwargs) -> None:
        self.html = head_view_html(tokens, patterns, **kwargs)
        self.height = 140 + 20 * len(tokens)

    def save(self, path) -> None:
        with open(path, "w", encoding="utf-8") as f:
            f.write(self.html)

    def _repr_html_(self) -> str:
        srcdoc = html_lib.escape(self.html, quote=True)
        return (
            f'<iframe srcdoc="{srcdoc}" style="width: 100%; height: {self.height}px; '
            'border: none;"></iframe>'
        )
