"""End to end in a real browser: Debian's Chromium driven by Playwright, against a live uvicorn
server with the tiny model. What the page draws is checked against the API's own numbers
and against the model (token count from the tokenizer, heatmap cells, Δ log p)."""

from __future__ import annotations

import re

import pytest

SENTENCE = "The quick brown fox jumps over the lazy dog because the dog was lazy."
TIMEOUT = 60_000  # ms: generous, CI machines may be busy


def analyse(page, live_server, text: str) -> None:
    page.goto(live_server + "/", wait_until="networkidle")
    page.fill("#text", text)
    page.click("#analyze")


def wait_for_tokens(page, n: int) -> None:
    page.wait_for_function(
        f"document.querySelectorAll('#tokens .chip').length === {n} && "
        f"document.querySelectorAll('#predictions tbody tr').length === {n}",
        timeout=TIMEOUT,
    )


def test_type_select_head_ablate_and_screenshot(page, live_server, tokenizer, client, tmp_path):
    T = len(tokenizer.encode(SENTENCE))
    analyse(page, live_server, SENTENCE)
    wait_for_tokens(page, T)
    chips = page.locator("#tokens .chip").all_inner_texts()
    assert "".join(chips).replace("·", " ") == SENTENCE

    # select layer 1, head 2: title, heatmap of T × T cells, lines from the pattern
    page.select_option("#layer", "1")
    page.wait_for_function("document.querySelector('#attn-title').textContent.includes('layer 1')")
    page.locator("#thumbs .thumb").nth(2).click()
    page.wait_for_function(
        "document.querySelector('#attn-title').textContent.includes('layer 1, head 2')",
        timeout=TIMEOUT,
    )
    page.wait_for_function(
        f"document.querySelectorAll('#heatmap svg rect.cell').length === {T * T}", timeout=TIMEOUT
    )
    assert page.locator("#heatmap svg rect.cell").count() == T * T
    assert page.locator("#heatmap svg rect.cell.masked").count() == T * (T - 1) // 2
    assert page.locator("#thumbs .thumb").count() == 4
    pattern = client.post("/api/attention", json={"text": SENTENCE, "layer": 1, "head": 2}).json()[
        "pattern"
    ]
    drawn = sum(1 for i in range(T) for j in range(i + 1) if pattern[i][j] >= 0.01)
    assert page.locator("#lines svg line").count() == drawn

    # hovering query token 5 leaves only its lines visible
    page.locator("#tokens .chip").nth(5).hover()
    visible = page.eval_on_selector_all(
        "#lines svg line", "ls => ls.filter(l => l.getAttribute('stroke-opacity') !== '0').length"
    )
    assert visible == sum(1 for j in range(6) if pattern[5][j] >= 0.01)

    # tick layer 0, head 1: the Δ column appears and matches the API's Δ log p
    assert page.locator("#predictions td.delta").first.is_hidden()
    page.check("#ablate-L0H1")
    page.wait_for_selector("#predictions.ablating", timeout=TIMEOUT)
    page.wait_for_function(
        "[...document.querySelectorAll('#predictions td.delta')].every(td => td.textContent)",
        timeout=TIMEOUT,
    )
    shown = [parse_signed(t) for t in page.locator("#predictions td.delta").all_inner_texts()]
    body = {"text": SENTENCE, "ablate": [{"layer": 0, "head": 1}]}
    expected = [row["delta"] for row in client.post("/api/predict", json=body).json()["positions"]]
    assert shown == pytest.approx(expected, abs=0.006)  # shown with two decimals
    assert "1 head zeroed" in page.inner_text("#ablation-summary")
    assert page.locator("#focus .focus-list.ablated").count() == 1

    page.screenshot(path=str(tmp_path / "explorer.png"), full_page=True)
    assert (tmp_path / "explorer.png").stat().st_size > 20_000
    assert page.errors == []


def parse_signed(text: str) -> float:
    return float(text.replace("−", "-"))


def test_head_role_map_opens_a_head(page, live_server):
    page.goto(live_server + "/", wait_until="networkidle")
    page.wait_for_function(
        "document.querySelectorAll('#role-map button.cell-btn').length === 8", timeout=TIMEOUT
    )
    page.click("#role-map button.cell-btn[data-layer='1'][data-head='3']")
    page.wait_for_function(
        "document.querySelector('#attn-title').textContent.includes('layer 1, head 3')",
        timeout=TIMEOUT,
    )
    assert page.locator("#role-legend .legend-row").count() >= 5
    page.select_option("#role-score", "previous_token")
    assert re.fullmatch(r"\d\.\d\d", page.inner_text("#role-map button.cell-btn >> nth=0"))
    assert page.errors == []


def test_hostile_token_text_is_shown_not_run(page, live_server):
    hostile = '</script><img src=x onerror="window.__pwned=1"><b>bold</b>'
    page.goto(live_server + "/?text=" + _quote(hostile), wait_until="networkidle")
    assert page.input_value("#text") == hostile  # the boot JSON carried it intact
    page.wait_for_selector("#tokens .chip", timeout=TIMEOUT)
    page.wait_for_function(
        "document.querySelectorAll('#predictions tbody tr').length > 0", timeout=TIMEOUT
    )
    assert page.evaluate("window.__pwned") is None
    assert page.locator("#tokens img, #tokens b, #lines img, #predictions img").count() == 0
    assert "".join(page.locator("#tokens .chip").all_inner_texts()).replace("·", " ") == hostile
    assert page.errors == []


def _quote(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")


def test_error_is_shown_and_page_recovers(page, live_server):
    page.goto(live_server + "/", wait_until="networkidle")
    page.fill("#text", "word " * 100)  # 100 tokens > the tiny model's 64
    page.click("#analyze")
    page.wait_for_selector("#status.error", timeout=TIMEOUT)
    assert "at most 64" in page.inner_text("#status")
    page.fill("#text", "Short again.")
    page.click("#analyze")
    wait_for_tokens(page, 3)
    # the status line clears once every request of the new text has answered
    page.wait_for_function("document.querySelector('#status').innerText === ''", timeout=TIMEOUT)
    assert "error" not in (page.get_attribute("#status", "class") or "")


def test_training_run_charts(page, live_server):
    page.goto(live_server + "/", wait_until="networkidle")
    page.wait_for_selector("#run-card:not([hidden]) #chart-loss svg path.series", timeout=TIMEOUT)
    assert page.locator("#chart-loss svg path.series").count() == 2  # train loss, eval val_loss
    assert page.locator("#chart-grad svg path.series").count() == 4  # embed, block0, block1, final
    page.check("input[name=lossview][value=perplexity]")
    page.wait_for_function(
        "[...document.querySelectorAll('#chart-loss .legend-item')]"
        ".some(e => e.textContent.includes('perplexity'))"
    )
    assert page.errors == []


def test_everything_loads_from_the_server_itself(browser, live_server):
    """The page (under its real Content-Security-Policy) and /docs work offline: every
    request goes to the explorer's own origin, and the CSP blocks nothing the page needs."""
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(TIMEOUT)
    requested: list[str] = []
    errors: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    page.on("console", lambda msg: msg.type == "error" and errors.append(msg.text))
    page.goto(live_server + "/", wait_until="networkidle")
    page.wait_for_selector("#role-map button.cell-btn", timeout=TIMEOUT)
    page.wait_for_selector("#heatmap svg rect.cell", timeout=TIMEOUT)
    assert errors == []
    page.goto(live_server + "/docs", wait_until="networkidle")
    page.wait_for_selector(".opblock-summary-path[data-path='/api/predict']", timeout=TIMEOUT)
    context.close()
    foreign = [u for u in requested if not u.startswith(live_server) and not u.startswith("data:")]
    assert requested and foreign == []


# ---------------------------------------------------------------------------------------------
# State bugs: each test fails on the page as it was before its fix
# ---------------------------------------------------------------------------------------------

VISIBLE_LINES = "ls => ls.filter(l => l.getAttribute('stroke-opacity') !== '0').length"


def test_reanalysing_while_a_token_is_hovered_keeps_the_lines(page, live_server, tokenizer):
    """The hovered chip is replaced without a mouseleave; the lines must not all vanish."""
    analyse(page, live_server, SENTENCE)
    wait_for_tokens(page, len(tokenizer.encode(SENTENCE)))
    page.locator("#tokens .chip").last.hover()
    short = "A short one."
    page.evaluate(f"document.querySelector('#text').value = {short!r}")
    page.evaluate("document.querySelector('#analyze').click()")  # the mouse stays where it is
    wait_for_tokens(page, len(tokenizer.encode(short)))
    page.wait_for_function("document.querySelectorAll('#lines svg line').length > 0")
    total = page.locator("#lines svg line").count()
    visible = page.eval_on_selector_all("#lines svg line", VISIBLE_LINES)
    hovered = page.evaluate("document.querySelectorAll('#tokens .chip:hover').length")
    assert visible > 0
    if not hovered:
        assert visible == total
    assert page.errors == []


def test_the_focus_box_shows_characters_split_across_tokens(page, live_server, tokenizer, client):
    text = "Fish 🐟 and café 日本語 ok"
    assert any("\ufffd" in tokenizer.decode([t]) for t in tokenizer.encode(text))
    analyse(page, live_server, text)
    wait_for_tokens(page, len(tokenizer.encode(text)))
    shown = page.inner_text("#focus .context")
    expected = client.post("/api/predict", json={"text": text}).json()["positions"][-1]
    assert shown == ("…" if expected["context_start"] > 0 else "") + expected["context"]
    assert "\ufffd" not in shown and "日本語 ok" in shown
    ids = tokenizer.encode(text)
    fish = next(i for i in range(len(ids)) if "🐟" in tokenizer.decode(ids[: i + 1]))
    page.locator("#tokens .chip").nth(fish).click()  # the last token of the fish's bytes
    assert page.inner_text("#focus .context").endswith("Fish 🐟")
    assert page.errors == []


def test_an_error_dims_the_previous_results_until_the_next_success(page, live_server, tokenizer):
    analyse(page, live_server, SENTENCE)
    wait_for_tokens(page, len(tokenizer.encode(SENTENCE)))
    opacity = "getComputedStyle(document.querySelector('#predictions')).opacity"
    assert page.evaluate(opacity) == "1"
    page.fill("#text", "word " * 200)  # over the model's 64 positions: a 413
    page.click("#analyze")
    page.wait_for_selector("#status.error")
    assert "at most 64" in page.inner_text("#status")
    for panel in ("#tokens", "#lines", "#heatmap", "#predictions", "#focus"):
        assert "stale" in page.get_attribute(panel, "class"), panel
    assert float(page.evaluate(opacity)) < 0.5
    page.fill("#text", SENTENCE)
    page.click("#analyze")
    page.wait_for_function("!document.querySelector('#predictions').classList.contains('stale')")
    assert page.evaluate(opacity) == "1"


def test_typing_then_clicking_analyse_sends_each_request_once(page, live_server):
    page.goto(live_server + "/", wait_until="networkidle")
    page.wait_for_selector("#tokens .chip")
    sent: list[str] = []
    page.on(
        "request",
        lambda r: r.url.endswith(("/api/predict", "/api/attention")) and sent.append(r.url),
    )
    page.fill("#text", "Tom has a red ball.")  # starts the 500 ms typing timer
    page.click("#analyze")  # before it fires
    page.wait_for_timeout(1500)  # long past the timer
    assert sorted(u.rsplit("/", 1)[1] for u in sent) == ["attention", "predict"]
    assert page.errors == []


# ---------------------------------------------------------------------------------------------
# Neurons, embeddings, timeline
# ---------------------------------------------------------------------------------------------


def shown(text: str) -> str:
    """A token as the page shows it (draw.js showToken)."""
    visible = text.replace("\n", "↵").replace("\t", "→")
    return ("·" + visible[1:] if visible.startswith(" ") else visible) or "∅"


def test_pick_a_layer_and_a_neuron_and_see_its_examples(page, live_server, client, model):
    n_neurons = model.config.mlp_dim
    page.goto(live_server + "/", wait_until="networkidle")
    page.wait_for_function(
        f"document.querySelectorAll('#neuron-list .neuron-item').length === {n_neurons}",
        timeout=TIMEOUT,
    )
    layer = client.get("/api/neurons", params={"layer": 1}).json()
    page.select_option("#neuron-layer", "1")
    page.wait_for_selector("#neuron-list .neuron-item[data-layer='1']", timeout=TIMEOUT)
    listed = page.eval_on_selector_all(
        "#neuron-list .neuron-item", "items => items.map(i => Number(i.dataset.neuron))"
    )
    assert listed == layer["order"]  # labelled neurons first, as the API orders them
    neuron = layer["order"][3]
    page.click(f"#neuron-list .neuron-item[data-neuron='{neuron}']")
    page.wait_for_function(
        f"document.querySelector('#neuron-title').textContent.includes('layer 1, neuron {neuron}')",
        timeout=TIMEOUT,
    )
    detail = client.get("/api/neuron", params={"layer": 1, "neuron": neuron}).json()
    examples = detail["examples"]
    page.wait_for_function(
        f"document.querySelector('#neuron-examples .example')?.dataset.position === "
        f"'{examples[0]['position']}' && document.querySelectorAll('#neuron-examples .example')"
        f".length === {len(examples)}",
        timeout=TIMEOUT,
    )
    acts = page.locator("#neuron-examples .example .act").all_inner_texts()
    assert acts == [f"{e['activation']:.2f}" for e in examples]
    marked = page.locator("#neuron-examples .example .chip.hl").all_inner_texts()
    assert marked == [shown(e["token"]) for e in examples]
    contexts = page.eval_on_selector_all(
        "#neuron-examples .example .context",
        "cs => cs.map(c => [...c.children].map(x => x.textContent))",
    )
    assert contexts == [[shown(t) for t in e["tokens"]] for e in examples]
    counts = page.eval_on_selector_all(
        "#neuron-hist rect.bar", "bars => bars.map(b => Number(b.dataset.count))"
    )
    assert counts == detail["histogram"]["counts"]
    writes = page.locator("#neuron-writes .promotes .chip").all_inner_texts()
    assert writes == [shown(t["text"]) for t in detail["promotes"]]
    assert page.errors == []


def test_clicking_a_token_lists_its_most_active_neurons(page, live_server, client, tokenizer):
    analyse(page, live_server, SENTENCE)
    wait_for_tokens(page, len(tokenizer.encode(SENTENCE)))
    page.locator("#tokens .chip").nth(3).click()
    expected = client.post(
        "/api/token-neurons", json={"text": SENTENCE, "position": 3, "k": 12}
    ).json()["neurons"]
    page.wait_for_function(
        f"document.querySelectorAll('#token-neurons .token-neuron').length === {len(expected)}",
        timeout=TIMEOUT,
    )
    listed = page.eval_on_selector_all(
        "#token-neurons .token-neuron",
        "bs => bs.map(b => [Number(b.dataset.layer), Number(b.dataset.neuron)])",
    )
    assert listed == [[n["layer"], n["neuron"]] for n in expected]
    values = page.locator("#token-neurons .token-neuron .num").all_inner_texts()
    assert values == [f"{n['activation']:.2f}" for n in expected]
    assert shown(tokenizer.decode(tokenizer.encode(SENTENCE)[3:4])) in page.inner_text(
        "#token-neurons-title"
    )
    first = expected[0]
    page.locator("#token-neurons .token-neuron").first.click()
    page.wait_for_function(
        "document.querySelector('#neuron-title').textContent.includes("
        f"'layer {first['layer']}, neuron {first['neuron']}')",
        timeout=TIMEOUT,
    )
    page.wait_for_selector(
        f"#neuron-list .neuron-item.active[data-layer='{first['layer']}']"
        f"[data-neuron='{first['neuron']}']",
        timeout=TIMEOUT,
    )
    assert page.errors == []


TOPMOST_POINT = """() => {
  document.querySelector('#embed-plot').scrollIntoView();
  const top = [...document.querySelectorAll('#embed-plot circle.pt')].find(c => {
    const r = c.getBoundingClientRect();
    return document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2) === c;
  });
  return Number(top.dataset.index);
}"""
"""A point no other covers at its centre (thousands of points overlap)."""


def hover_a_point(page) -> int:
    """Hover, with the mouse, a point that is on top where it is; return its index."""
    index = int(page.evaluate(TOPMOST_POINT))
    page.locator(f"#embed-plot circle.pt[data-index='{index}']").hover()
    page.wait_for_selector("#embed-tooltip:not([hidden])")
    return index


def test_embedding_scatter_draws_every_point_and_names_the_hovered_one(page, live_server, client):
    page.goto(live_server + "/", wait_until="networkidle")
    tokens = client.get("/api/embeddings", params={"space": "tokens"}).json()
    page.wait_for_function(
        f"document.querySelectorAll('#embed-plot circle.pt').length === {len(tokens['points'])}",
        timeout=TIMEOUT,
    )
    assert page.locator("#embed-legend .legend-item").all_inner_texts() == tokens["categories"]
    point = tokens["points"][hover_a_point(page)]
    assert page.inner_text("#embed-tooltip") == f"{shown(point['label'])} · {point['category']}"

    page.select_option("#embed-space", "resid")
    page.select_option("#embed-layer", "1")
    page.select_option("#embed-group", "meaning")
    params = {"space": "resid", "layer": 1, "group": "meaning"}
    resid = client.get("/api/embeddings", params=params).json()
    page.wait_for_function(
        "document.querySelector('#embed-title').textContent.includes('block 0') && "
        "[...document.querySelectorAll('#embed-legend .legend-item')].some("
        "i => i.textContent === 'animal')",
        timeout=TIMEOUT,
    )
    assert page.locator("#embed-plot circle.pt").count() == len(resid["points"])
    point = resid["points"][hover_a_point(page)]
    assert page.inner_text("#embed-tooltip") == f"{shown(point['label'])} · {point['category']}"
    assert page.errors == []


def test_timeline_slider_steps_through_the_checkpoints(page, run_server, run_client):
    timeline = run_client.get("/api/timeline").json()
    steps = timeline["steps"]
    assert len(steps) >= 2
    # a short text: the page's default one is over the run's 64 positions in its 300-token BPE
    page.goto(run_server + "/?text=Once%20upon%20a%20time", wait_until="networkidle")
    slider = page.locator("#timeline-step")
    for index, step in enumerate(steps):
        if index:
            slider.focus()
            page.keyboard.press("ArrowRight")
        summary = run_client.get("/api/timeline/checkpoint", params={"step": step}).json()
        page.wait_for_function(
            f"document.querySelector('#timeline-step-label').textContent === 'step {step}' && "
            f"document.querySelector('#timeline-val-loss').textContent === "
            f"'{summary['val_loss']:.4f}'",
            timeout=TIMEOUT,
        )
        assert page.inner_text("#timeline-sample") == summary["sample"]
        assert page.inner_text("#timeline-cloze") == f"{summary['cloze_accuracy'] * 100:.1f}%"
        said, first = (summary[k] for k in ("said_name_loss", "new_name_loss"))
        shown = " / ".join("–" if v is None else f"{v:.2f}" for v in (said, first))
        assert page.inner_text("#timeline-names") == shown
        scores = page.locator("#timeline-roles tbody td.num:nth-child(2)").all_inner_texts()
        assert scores == [f"{r['score']:.2f}" for r in summary["roles"]]
        mark = page.get_attribute("#timeline-chart line.step-mark", "data-step")
        assert mark == str(step)
    assert page.locator("#timeline-chart line.slope-change").count() == len(timeline["changes"])
    assert page.errors == []


def test_a_run_without_checkpoints_says_how_to_get_a_timeline(page, live_server):
    page.goto(live_server + "/", wait_until="networkidle")
    page.wait_for_selector("#timeline-card:not([hidden])", timeout=TIMEOUT)
    assert "--keep-every" in page.inner_text("#timeline-title")
    assert page.errors == []
