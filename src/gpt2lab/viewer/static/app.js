// The explorer page: fetches the JSON API and draws tokens, attention, predictions,
// head roles, ablations, the training run, MLP neurons, embedding spaces and the timeline
// of a run's checkpoints. All text goes in as text nodes.

import {
  blues, diverging, el, headColor, histogram, legend, lineChart, paintPattern, ramp, scatter,
  showToken, svg,
} from "./draw.js";

const $ = (id) => document.getElementById(id);
const boot = JSON.parse($("boot").textContent);
const info = boot.info;

const ROLE_COLORS = {
  "previous-token": "#1f77b4",
  induction: "#d62728",
  "sentence-boundary": "#2ca02c",
  coreference: "#9467bd",
  "long-range": "#ff7f0e",
  sink: "#8c8c8c",
};
const HEATMAP_SVG_MAX = 128; // longer texts draw the heatmap on a canvas
const LINE_MIN_WEIGHT = 0.01; // lines lighter than this are not drawn
const ROW_H = 20;

const state = {
  layer: 0,
  head: 0,
  position: null, // the query position whose predictions are shown (null: the last)
  hover: null, // {side: "query" | "key", index}
  ablate: new Set(), // "layer,head"
  tokens: [],
  attention: null,
  predictions: null,
  heads: null,
  run: null,
  typingTimer: null, // the refresh that typing schedules (debounced)
  analysedText: null, // the text the shown tokens belong to
  neurons: null, // the selected layer's neuron summaries (/api/neurons)
  neuron: null, // {layer, neuron} shown in detail
  embedding: null, // the shown embedding space (/api/embeddings)
  timeline: null, // /api/timeline
};

// ---------------------------------------------------------------------------------------------
// API
// ---------------------------------------------------------------------------------------------

async function api(path, body) {
  const init = body === undefined ? {} : {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  };
  const res = await fetch(path, init);
  const data = await res.json().catch(() => ({ detail: res.statusText }));
  if (!res.ok) throw new Error(typeof data.detail === "string" ? data.detail : `HTTP ${res.status}`);
  return data;
}

const latestId = {};
/** Run fetch(); return its data, or null if a newer request of the same kind started since. */
async function latest(kind, fetcher) {
  const id = (latestId[kind] = (latestId[kind] || 0) + 1);
  const data = await fetcher();
  return id === latestId[kind] ? data : null;
}

function setStatus(message, kind = "") {
  const node = $("status");
  node.textContent = message;
  node.className = `status ${kind}`;
}

const ablateList = () => [...state.ablate].map((key) => {
  const [layer, head] = key.split(",").map(Number);
  return { layer, head };
});

async function loadPredictions() {
  const body = { text: $("text").value, k: Number($("topk").value), ablate: ablateList() };
  const data = await latest("predict", () => api("/api/predict", body));
  if (!data) return;
  state.predictions = data;
  state.analysedText = body.text;
  state.tokens = data.positions.map((p) => p.token);
  if (state.position !== null && state.position >= state.tokens.length) state.position = null;
  renderTokens();
  renderPredictions();
}

async function loadAttention() {
  const body = { text: $("text").value, layer: state.layer, head: state.head, ablate: ablateList() };
  const data = await latest("attention", () => api("/api/attention", body));
  if (!data) return;
  state.attention = data;
  state.tokens = data.tokens;
  renderTokens();
  renderAttention();
}

/** Results on screen belong to an older text or settings: dim them until the next success. */
function setStale(stale) {
  document.querySelectorAll(".result").forEach((node) => node.classList.toggle("stale", stale));
}

async function refresh({ predictions = true, attention = true } = {}) {
  clearTimeout(state.typingTimer); // a click or Ctrl+Enter supersedes the pending typing refresh
  setStatus("running the model…", "busy");
  try {
    await Promise.all([predictions && loadPredictions(), attention && loadAttention()]);
    setStatus("");
    setStale(false);
  } catch (err) {
    setStatus(err.message, "error");
    setStale(true);
  }
}

// ---------------------------------------------------------------------------------------------
// Tokens and hover
// ---------------------------------------------------------------------------------------------

/** The token row under the pointer, if any. Re-rendering replaces the nodes without a
 * mouseleave, so the hover state is re-read from the page after every render. */
function hoverUnderPointer() {
  const node = document.querySelector("#tokens .chip:hover, #lines .tok-row:hover");
  if (!node) return null;
  return { side: node.classList.contains("key") ? "key" : "query", index: Number(node.dataset.index) };
}

function renderTokens() {
  const box = $("tokens");
  box.replaceChildren(...state.tokens.map((t, i) => el("span", {
    class: "chip",
    dataset: { index: i },
    title: `position ${i} · id ${t.id}`,
    onmouseenter: () => setHover({ side: "query", index: i }),
    onmouseleave: () => setHover(null),
    onclick: () => selectPosition(i),
  }, showToken(t.text))));
  $("token-count").textContent = `${state.tokens.length} tokens`;
  state.hover = hoverUnderPointer();
  applyHover();
}

function setHover(hover) {
  state.hover = hover;
  applyHover();
}

/** Weight of query i on key j in the shown head (0 if no pattern). */
const weight = (i, j) => state.attention?.pattern?.[i]?.[j] ?? 0;

/** For the hovered token: which tokens it attends to (query) or is attended by (key). */
function hoverWeights() {
  const h = state.hover;
  const T = state.tokens.length;
  if (!h || !state.attention || h.index >= T) return null;
  return Array.from({ length: T }, (_, k) =>
    h.side === "query" ? weight(h.index, k) : weight(k, h.index));
}

function applyHover() {
  const weights = hoverWeights();
  const index = state.hover?.index;
  document.querySelectorAll("#tokens .chip").forEach((chip, k) => {
    chip.classList.toggle("hovered", k === index);
    chip.classList.toggle("selected", k === selectedPosition());
    chip.style.background = weights && k !== index ? blues(Math.sqrt(weights[k])) : "";
    chip.style.color = weights && weights[k] > 0.35 && k !== index ? "#fff" : "";
  });
  highlightLines(weights);
  highlightHeatmap();
}

// ---------------------------------------------------------------------------------------------
// Attention: lines (bertviz-style), heatmap, thumbnails
// ---------------------------------------------------------------------------------------------

function renderAttention() {
  const a = state.attention;
  $("attn-title").textContent = `· layer ${a.layer}, head ${a.head}${roleLabel(a.layer, a.head)}`;
  $("layer").value = String(a.layer);
  $("head").value = String(a.head);
  renderLines(a);
  renderHeatmap(a);
  renderThumbs(a);
  renderRoleMap();
  state.hover = hoverUnderPointer();
  applyHover();
}

function renderLines(a) {
  const T = a.tokens.length;
  const width = 330;
  const left = 125;
  const right = width - 125;
  const height = T * ROW_H + 8;
  const y = (i) => 4 + i * ROW_H + ROW_H / 2;
  const color = headColor(a.head);
  const root = svg("svg", { width, height, class: "lines", viewBox: `0 0 ${width} ${height}` });
  const lineGroup = svg("g", { class: "line-group" });
  const lines = [];
  for (let i = 0; i < T; i++) {
    for (let j = 0; j <= i; j++) {
      const w = a.pattern[i][j];
      if (w < LINE_MIN_WEIGHT) continue;
      const line = svg("line", {
        x1: left, y1: y(i), x2: right, y2: y(j), stroke: color,
        "stroke-width": 2, "stroke-opacity": w.toFixed(3),
      });
      lines.push({ i, j, w, node: line });
      lineGroup.append(line);
    }
  }
  root.append(lineGroup);
  const column = (side, x, anchor) => a.tokens.map((t, k) => {
    const text = showToken(t.text);
    const label = svg("text", { x: anchor === "end" ? x - 8 : x + 8, y: y(k) + 4, "text-anchor": anchor, class: "tok" }, text);
    const bg = svg("rect", {
      x: anchor === "end" ? 4 : x + 2, y: y(k) - ROW_H / 2 + 1, width: left - 8, height: ROW_H - 2, rx: 3, class: "tok-bg",
    });
    return svg("g", {
      class: `tok-row ${side}`, dataset: { index: k },
      onmouseenter: () => setHover({ side, index: k }),
      onmouseleave: () => setHover(null),
      onclick: () => side === "query" && selectPosition(k),
    }, bg, label);
  });
  root.append(...column("query", left, "end"), ...column("key", right, "start"));
  $("lines").replaceChildren(root);
  state.lineNodes = lines;
}

function highlightLines(weights) {
  const h = state.hover;
  for (const { i, j, w, node } of state.lineNodes || []) {
    const shown = !h || (h.side === "query" ? i === h.index : j === h.index);
    node.setAttribute("stroke-opacity", shown ? w.toFixed(3) : "0");
  }
  document.querySelectorAll("#lines .tok-row").forEach((row) => {
    const k = Number(row.dataset.index);
    const side = row.classList.contains("query") ? "query" : "key";
    const bg = row.querySelector(".tok-bg");
    const other = weights && h && side !== h.side;
    bg.setAttribute("fill", other ? blues(Math.sqrt(weights[k])) : h && side === h.side && k === h.index ? "#ffe08a" : "transparent");
    row.querySelector("text").classList.toggle("light", Boolean(other && weights[k] > 0.35));
  });
}

function renderHeatmap(a) {
  const T = a.tokens.length;
  const box = $("heatmap");
  const readout = el("div", { class: "readout muted small" }, "hover a cell");
  if (T > HEATMAP_SVG_MAX) {
    const canvas = el("canvas", { width: 480, height: 480, class: "heatmap-canvas", dataset: { cells: T * T } });
    paintPattern(canvas, a.pattern);
    box.replaceChildren(canvas, readout);
    return;
  }
  const labels = T <= 48;
  const cell = Math.max(3, Math.min(22, Math.floor(330 / T)));
  const margin = labels ? 72 : 4;
  const size = margin + T * cell + 4;
  const root = svg("svg", { width: size, height: size, class: "heatmap", viewBox: `0 0 ${size} ${size}` });
  const cells = svg("g", { class: "cells" });
  for (let i = 0; i < T; i++) {
    for (let j = 0; j < T; j++) {
      const w = a.pattern[i][j];
      cells.append(svg("rect", {
        class: j > i ? "cell masked" : "cell",
        x: margin + j * cell, y: margin + i * cell, width: cell, height: cell,
        fill: j > i ? "#f1f3f5" : blues(Math.sqrt(w)), dataset: { i, j },
      }));
    }
  }
  cells.addEventListener("mouseover", (event) => {
    const { i, j } = event.target.dataset;
    if (i === undefined) return;
    const [qi, kj] = [Number(i), Number(j)];
    readout.textContent = `“${showToken(a.tokens[qi].text)}” (${qi}) → “${showToken(a.tokens[kj].text)}” (${kj}): ${weight(qi, kj).toFixed(3)}`;
    setHover({ side: "query", index: qi });
  });
  cells.addEventListener("mouseleave", () => setHover(null));
  root.append(cells, svg("rect", { class: "row-focus", x: margin, width: T * cell, height: cell, y: -100 }));
  if (labels) {
    a.tokens.forEach((t, k) => {
      const text = showToken(t.text).slice(0, 10);
      root.append(svg("text", { x: margin - 4, y: margin + k * cell + cell / 2 + 4, "text-anchor": "end", class: "hm-label" }, text));
      const cx = margin + k * cell + cell / 2;
      root.append(svg("text", { x: cx, y: margin - 4, transform: `rotate(-60 ${cx} ${margin - 4})`, class: "hm-label" }, text));
    });
  }
  root.dataset.cell = cell;
  root.dataset.margin = margin;
  box.replaceChildren(root, readout);
}

function highlightHeatmap() {
  const root = document.querySelector("#heatmap svg.heatmap");
  if (!root) return;
  const focus = root.querySelector(".row-focus");
  const h = state.hover;
  const cell = Number(root.dataset.cell);
  const margin = Number(root.dataset.margin);
  if (h && h.side === "query") focus.setAttribute("y", margin + h.index * cell);
  else focus.setAttribute("y", -100);
}

function renderThumbs(a) {
  const items = a.thumbnails.map((rows, h) => {
    const canvas = el("canvas", { width: 84, height: 84 });
    paintPattern(canvas, rows);
    return el("button", {
      class: `thumb${h === a.head ? " active" : ""}`,
      title: `layer ${a.layer}, head ${h}${roleLabel(a.layer, h)}`,
      dataset: { head: h },
      style: { borderColor: h === a.head ? headColor(h) : "" },
      onclick: () => selectHead(a.layer, h),
    }, canvas, el("span", { class: "thumb-label" }, el("b", {}, `H${h}`), roleBadge(a.layer, h)));
  });
  $("thumbs").replaceChildren(...items);
}

function selectHead(layer, head) {
  state.layer = layer;
  state.head = head;
  refresh({ predictions: false });
}

// ---------------------------------------------------------------------------------------------
// Predictions
// ---------------------------------------------------------------------------------------------

const selectedPosition = () => state.position ?? state.tokens.length - 1;

function selectPosition(i) {
  state.position = i;
  renderPredictions();
  applyHover();
  loadTokenNeurons(i);
}

const pct = (p) => (p >= 0.995 ? "100%" : p >= 0.1 ? `${(p * 100).toFixed(0)}%` : `${(p * 100).toFixed(1)}%`);

function renderPredictions() {
  const data = state.predictions;
  if (!data) return;
  const ablating = data.ablated.length > 0;
  document.querySelector("#predictions").classList.toggle("ablating", ablating);
  const rows = data.positions.map((p) => el("tr", {
    class: p.position === selectedPosition() ? "selected" : "",
    dataset: { position: p.position },
    onclick: () => selectPosition(p.position),
  },
  el("td", { class: "muted" }, String(p.position)),
  el("td", {}, el("span", { class: "chip small" }, showToken(p.token.text))),
  el("td", {}, el("span", { class: `chip small${p.target_is_prediction ? " predicted" : ""}`, title: p.target_is_prediction ? "the model's own top prediction" : "the text's next token" }, showToken(p.target.text))),
  el("td", { class: "prob" }, probBar(Math.exp(p.logprob))),
  el("td", { class: "top" }, ...p.top.slice(0, 3).map((q) => el("span", { class: "pred" }, el("span", { class: "chip tiny" }, showToken(q.text)), " ", pct(q.prob)))),
  el("td", {
    class: "delta",
    style: { background: ablating ? diverging(p.delta) : "" },
    title: ablating ? `ablated: p(next) ${pct(Math.exp(p.ablated_logprob))}, top “${showToken(p.ablated_top[0].text)}”` : "",
  }, ablating ? signed(p.delta) : "")));
  $("predictions").tBodies[0].replaceChildren(...rows);
  const summary = $("ablation-summary");
  if (ablating) {
    const known = data.positions.filter((p) => !p.target_is_prediction);
    const mean = known.reduce((s, p) => s + p.delta, 0) / Math.max(1, known.length);
    summary.textContent = `${data.ablated.length} head${data.ablated.length > 1 ? "s" : ""} zeroed · mean Δ log p(next) ${signed(mean)}`;
  } else {
    summary.textContent = "";
  }
  renderFocus();
}

const signed = (x) => `${x >= 0 ? "+" : "−"}${Math.abs(x).toFixed(2)}`;

function probBar(p) {
  return el("span", { class: "bar" }, el("span", { class: "bar-fill", style: { width: `${(p * 100).toFixed(1)}%` } }), el("span", { class: "bar-text" }, pct(p)));
}

function renderFocus() {
  const data = state.predictions;
  const i = selectedPosition();
  const p = data?.positions[i];
  if (!p) return;
  const list = (title, top, cls) => el("div", { class: `focus-list ${cls}` },
    el("h4", {}, title),
    ...top.map((q) => el("div", { class: "focus-row" },
      el("span", { class: `chip small${q.id === p.target.id ? " target" : ""}` }, showToken(q.text)),
      probBar(q.prob))));
  const lists = [list("model", p.top, "clean")];
  if (p.ablated_top) lists.push(list("with ablation", p.ablated_top, "ablated"));
  $("focus").replaceChildren(
    el("div", { class: "focus-context" }, el("span", { class: "muted" }, `after position ${i}: `), el("span", { class: "context" }, (p.context_start > 0 ? "…" : "") + p.context)),
    el("div", { class: "focus-lists" }, ...lists));
}

// ---------------------------------------------------------------------------------------------
// Head roles and the ablation grid
// ---------------------------------------------------------------------------------------------

async function loadHeads() {
  try {
    state.heads = await api("/api/heads");
  } catch (err) {
    $("role-map").replaceChildren(el("p", { class: "error" }, `head scores failed: ${err.message}`));
    return;
  }
  const select = $("role-score");
  select.replaceChildren(el("option", { value: "role" }, "role"),
    ...Object.keys(state.heads.grids).map((name) => el("option", { value: name }, name.replace(/_/g, " "))));
  $("role-legend").replaceChildren(...state.heads.rules.map((r) => el("div", { class: "legend-row" },
    el("span", { class: "swatch", style: { background: ROLE_COLORS[r.role] || "#444" } }),
    el("b", {}, r.role), el("span", { class: "muted" }, ` ${r.score.replace(/_/g, " ")} ≥ ${r.threshold}: ${r.description}`))));
  renderRoleMap();
  if (state.attention) renderThumbs(state.attention);
  $("attn-title").textContent = `· layer ${state.layer}, head ${state.head}${roleLabel(state.layer, state.head)}`;
}

function rolesOf(layer, head) {
  return (state.heads?.roles || []).filter((r) => r.layer === layer && r.head === head);
}

/** The head's strongest role (score relative to its rule's threshold), or null. */
function primaryRole(layer, head) {
  const thresholds = Object.fromEntries((state.heads?.rules || []).map((r) => [r.role, r.threshold]));
  let best = null;
  for (const r of rolesOf(layer, head)) {
    const strength = r.score / (thresholds[r.role] || 1);
    if (!best || strength > best.strength) best = { ...r, strength };
  }
  return best;
}

function roleLabel(layer, head) {
  const roles = rolesOf(layer, head);
  return roles.length ? ` · ${roles.map((r) => r.role).join(", ")}` : "";
}

function roleBadge(layer, head) {
  const role = primaryRole(layer, head);
  if (!role) return null;
  return el("span", { class: "badge", style: { background: ROLE_COLORS[role.role] || "#444" } }, role.role);
}

function gridTable(cellFor) {
  const header = el("tr", {}, el("th", {}), ...Array.from({ length: info.n_head }, (_, h) => el("th", {}, `H${h}`)));
  const rows = Array.from({ length: info.n_layer }, (_, l) => el("tr", {}, el("th", {}, `L${l}`),
    ...Array.from({ length: info.n_head }, (_, h) => el("td", {}, cellFor(l, h)))));
  return el("table", { class: "grid" }, el("thead", {}, header), el("tbody", {}, ...rows));
}

function renderRoleMap() {
  if (!state.heads) return;
  const by = $("role-score").value || "role";
  const grid = state.heads.grids[by];
  // Fractions (most scores) on a fixed 0..1 scale; distances (in tokens) up to their maximum.
  const max = grid ? Math.max(1, ...grid.flat().map(Math.abs)) : 1;
  const table = gridTable((l, h) => {
    const scores = Object.entries(state.heads.grids).map(([k, g]) => `${k.replace(/_/g, " ")} ${g[l][h].toFixed(2)}`).join("\n");
    const role = primaryRole(l, h);
    const active = l === state.layer && h === state.head;
    let background = "#f1f3f5";
    let text = "";
    let light = false;
    if (by === "role") {
      if (role) {
        background = ROLE_COLORS[role.role] || "#444";
        text = role.role.split("-").map((w) => w[0]).join("").toUpperCase();
        light = true;
      }
    } else {
      const v = grid[l][h] / max;
      background = blues(Math.max(0, v));
      text = grid[l][h].toFixed(2);
      light = v > 0.5;
    }
    return el("button", {
      class: `cell-btn${active ? " active" : ""}${light ? " light" : ""}`,
      dataset: { layer: l, head: h },
      title: `layer ${l}, head ${h}${roleLabel(l, h)}\n${scores}`,
      style: { background },
      onclick: () => selectHead(l, h),
    }, text);
  });
  const note = by === "role" && !state.heads.roles.length
    ? el("p", { class: "muted small" }, "No head passes a role's threshold on these texts; colour by a score to compare heads.")
    : null;
  $("role-map").replaceChildren(...[table, note].filter(Boolean));
}

function renderAblateGrid() {
  const table = gridTable((l, h) => {
    const id = `ablate-L${l}H${h}`;
    const box = el("input", {
      type: "checkbox", id, dataset: { layer: l, head: h },
      onchange: (event) => {
        const key = `${l},${h}`;
        if (event.target.checked) state.ablate.add(key);
        else state.ablate.delete(key);
        event.target.parentElement.classList.toggle("on", event.target.checked);
        refresh();
      },
    });
    return el("label", { class: "tick", for: id, title: `zero layer ${l}, head ${h}` }, box);
  });
  $("ablate-grid").replaceChildren(table);
}

function clearAblation() {
  state.ablate.clear();
  document.querySelectorAll("#ablate-grid input").forEach((box) => {
    box.checked = false;
    box.parentElement.classList.remove("on");
  });
  refresh();
}

// ---------------------------------------------------------------------------------------------
// Training run
// ---------------------------------------------------------------------------------------------

const KIND_COLORS = { train: "#1f77b4", eval: "#ff7f0e", val: "#ff7f0e" };

async function loadRun() {
  try {
    state.run = await api("/api/run");
  } catch (err) {
    $("run-name").textContent = `· ${err.message}`;
    return;
  }
  renderRun();
}

function seriesEnding(suffix) {
  return Object.entries(state.run.series)
    .filter(([key]) => key.endsWith(suffix))
    .map(([key, s], k) => {
      const kind = key.split("/")[0];
      return { label: key, color: KIND_COLORS[kind] || headColor(k + 2), step: s.step, value: s.value };
    });
}

function renderRun() {
  const run = state.run;
  $("run-name").textContent = `· ${run.name} · ${run.n_records} records`;
  const which = document.querySelector("input[name=lossview]:checked").value;
  const loss = seriesEnding(which);
  $("chart-loss").replaceChildren(lineChart(loss, { logY: which === "perplexity" }), legend(loss));
  const lr = seriesEnding("/lr");
  $("chart-lr").replaceChildren(lineChart(lr));
  const gradKey = "grad_norm" in run.layered ? "grad_norm" : null;
  if (!gradKey) {
    $("grad-caption").textContent = "Gradient norm by layer (none in metrics.jsonl)";
    $("chart-grad").replaceChildren();
    return;
  }
  const g = run.layered[gradKey];
  const colors = ramp(g.layers.length);
  const lines = g.layers.map((layer, k) => ({
    label: layer, color: colors[k], step: g.step, value: g.values.map((row) => row[k]),
  }));
  $("grad-caption").textContent = "Gradient norm by layer (log scale)";
  $("chart-grad").replaceChildren(lineChart(lines, { logY: true }), legend(lines));
}

// ---------------------------------------------------------------------------------------------
// Neurons: a layer's list, one neuron's examples, histogram and output tokens; a token's neurons
// ---------------------------------------------------------------------------------------------

const fixed = (x, digits = 2) => (Number.isFinite(x) ? x.toFixed(digits) : "–");

function labelBadges(labels) {
  return labels.map((lb) => el("span", {
    class: "badge label", title: `${lb.group}: share ${fixed(lb.share)}, lift ×${fixed(lb.lift, 1)}, ${lb.words} word(s)`,
  }, lb.group === "token identity" ? `“${lb.category}”` : lb.category));
}

async function loadNeurons(layer, open = null) {
  $("neuron-layer").value = String(layer);
  let data;
  try {
    data = await latest("neurons", () => api(`/api/neurons?layer=${layer}`));
  } catch (err) {
    $("neuron-source").textContent = `neurons failed: ${err.message}`;
    return;
  }
  if (!data) return;
  state.neurons = data;
  const s = data.selectivity;
  $("neuron-source").textContent = `${data.n_neurons} neurons · top ${data.top_k} activations over ${data.n_tokens} tokens of ${data.source} · ${s.selective} labelled`;
  renderNeuronList();
  openNeuron(layer, open ?? data.order[0]);
}

function neuronOrder() {
  const data = state.neurons;
  const by = $("neuron-sort").value;
  if (by === "label") return data.order;
  const index = data.neurons.map((n) => n.neuron);
  return by === "max" ? index.sort((a, b) => data.neurons[b].max - data.neurons[a].max || a - b) : index;
}

function renderNeuronList() {
  const data = state.neurons;
  const items = neuronOrder().map((n) => {
    const info = data.neurons[n];
    return el("button", {
      class: `neuron-item${state.neuron?.layer === data.layer && state.neuron?.neuron === n ? " active" : ""}`,
      dataset: { layer: data.layer, neuron: n },
      title: `mean ${fixed(info.mean, 3)} · active on ${(info.density * 100).toFixed(1)}% of tokens`,
      onclick: () => openNeuron(data.layer, n),
    },
    el("b", {}, `n${n}`), el("span", { class: "num" }, fixed(info.max)),
    el("span", { class: "chip tiny" }, showToken(info.top_token)), ...labelBadges(info.labels));
  });
  $("neuron-list").replaceChildren(...items);
}

async function openNeuron(layer, neuron) {
  state.neuron = { layer, neuron };
  if (state.neurons?.layer !== layer) {
    loadNeurons(layer, neuron);
    return;
  }
  document.querySelectorAll("#neuron-list .neuron-item").forEach((node) =>
    node.classList.toggle("active", Number(node.dataset.neuron) === neuron));
  $("neuron-title").textContent = `· layer ${layer}, neuron ${neuron}`;
  let data;
  try {
    data = await latest("neuron", () => api(`/api/neuron?layer=${layer}&neuron=${neuron}`));
  } catch (err) {
    $("neuron-stats").replaceChildren(el("p", { class: "error" }, err.message));
    return;
  }
  if (data) renderNeuron(data);
}

function renderNeuron(d) {
  $("neuron-stats").replaceChildren(
    el("span", {}, "max ", el("b", {}, fixed(d.max)), ` · mean ${fixed(d.mean, 3)} · active on ${(d.density * 100).toFixed(1)}% of tokens `),
    ...labelBadges(d.labels));
  $("neuron-examples").replaceChildren(...d.examples.map((e) => el("div", {
    class: "example", dataset: { text: e.text, position: e.position },
  },
  el("span", { class: `act${e.activation > 0.6 * d.max ? " light" : ""}`, style: { background: blues(e.activation / Math.max(d.max, 1e-9)) } }, fixed(e.activation)),
  el("span", { class: "context" },
    ...e.tokens.map((t, k) => el("span", { class: `chip tiny${k === e.index ? " hl" : ""}` }, showToken(t)))))));
  $("neuron-hist").replaceChildren(histogram(d.histogram.counts, d.histogram.edges));
  const list = (title, tokens, cls) => el("div", { class: `writes ${cls}` }, el("h4", {}, title),
    ...tokens.map((t) => el("div", { class: "write-row" }, el("span", { class: "chip tiny" }, showToken(t.text)), el("span", { class: "num" }, fixed(t.logit)))));
  $("neuron-writes").replaceChildren(
    list("raises the logits of", d.promotes, "promotes"), list("lowers", d.suppresses, "suppresses"));
}

async function loadTokenNeurons(position) {
  const text = state.analysedText;
  if (text === null) return;
  const token = state.tokens[position];
  $("token-neurons-title").textContent = `“${showToken(token?.text ?? "")}” (position ${position})`;
  let data;
  try {
    data = await latest("token-neurons", () => api("/api/token-neurons", { text, position, k: 12 }));
  } catch (err) {
    $("token-neurons").replaceChildren(el("span", { class: "error" }, err.message));
    return;
  }
  if (!data) return;
  $("token-neurons").replaceChildren(...data.neurons.map((n) => el("button", {
    class: "token-neuron", dataset: { layer: n.layer, neuron: n.neuron },
    title: n.labels.length ? `labels: ${n.labels.join(", ")}` : "no label",
    onclick: () => { openNeuron(n.layer, n.neuron); $("neurons-card").scrollIntoView({ block: "start" }); },
  }, el("b", {}, `L${n.layer} n${n.neuron}`), el("span", { class: "num" }, fixed(n.activation)),
  ...n.labels.slice(0, 2).map((c) => el("span", { class: "badge label" }, c)))));
}

// ---------------------------------------------------------------------------------------------
// Embeddings: a 2-D PCA scatter coloured by word category
// ---------------------------------------------------------------------------------------------

const OTHER_COLOR = "#c7cbd1";
const isPositions = (space) => space === "positions" || space === "sinusoidal";

async function loadEmbedding() {
  const space = $("embed-space").value;
  $("embed-layer").disabled = space !== "resid";
  const params = new URLSearchParams({ space, layer: $("embed-layer").value });
  if ($("embed-group").value) params.set("group", $("embed-group").value); // none before the first answer
  let data;
  try {
    data = await latest("embedding", () => api(`/api/embeddings?${params}`));
  } catch (err) {
    $("embed-plot").replaceChildren(el("p", { class: "error" }, `embeddings failed: ${err.message}`));
    return;
  }
  if (data) renderEmbedding(data);
}

function renderEmbedding(d) {
  state.embedding = d;
  if (!$("embed-group").options.length) {
    options($("embed-group"), Object.keys(d.groups), String);
    $("embed-group").value = d.group;
  }
  const positions = isPositions(d.space);
  const shades = positions ? ramp(d.points.length) : [];
  const colorOf = Object.fromEntries(d.categories.map((c, k) => [c, c === "other" ? OTHER_COLOR : headColor(k)]));
  const color = (p) => (positions ? shades[Number(p.label)] : colorOf[p.category]);
  const [a, b] = d.explained.map((v) => `${(v * 100).toFixed(1)}%`);
  const plot = scatter(d.points, color, { axes: [`PC1 ${a}`, `PC2 ${b}`] });
  const tooltip = $("embed-tooltip");
  plot.addEventListener("mouseover", (event) => {
    const k = event.target.dataset?.index;
    if (k === undefined) return;
    const p = d.points[Number(k)];
    tooltip.textContent = positions ? `position ${p.label}` : `${showToken(p.label)} · ${p.category}`;
    const box = $("embed-card").getBoundingClientRect();
    const dot = event.target.getBoundingClientRect();
    tooltip.style.left = `${dot.right - box.left + 6}px`;
    tooltip.style.top = `${dot.top - box.top - 6}px`;
    tooltip.hidden = false;
  });
  plot.addEventListener("mouseout", () => { tooltip.hidden = true; });
  $("embed-plot").replaceChildren(plot);
  $("embed-title").textContent = `· ${d.table} · ${d.points.length} points · PC1 + PC2 hold ${((d.explained[0] + d.explained[1]) * 100).toFixed(1)}% of the variance`;
  const items = positions
    ? [{ label: "position 0", color: shades[0] }, { label: `position ${d.points.length - 1}`, color: shades[d.points.length - 1] }]
    : d.categories.map((c) => ({ label: c, color: colorOf[c] }));
  $("embed-legend").replaceChildren(legend(items));
}

// ---------------------------------------------------------------------------------------------
// Timeline: a step slider over the run's kept checkpoints
// ---------------------------------------------------------------------------------------------

function noTimeline(message) {
  $("timeline-title").textContent = `· ${message}`;
  $("timeline-card").classList.add("empty");
}

async function loadTimeline() {
  try {
    state.timeline = await api("/api/timeline");
  } catch (err) {
    noTimeline(err.message);
    return;
  }
  const t = state.timeline;
  const slider = $("timeline-step");
  slider.max = String(t.steps.length - 1);
  slider.value = "0";
  $("timeline-title").textContent = `· ${t.run} · ${t.steps.length} checkpoints · ${t.changes.length} slope change${t.changes.length === 1 ? "" : "s"}`;
  selectCheckpoint(0);
}

async function selectCheckpoint(index) {
  const t = state.timeline;
  const step = t.steps[index];
  $("timeline-step-label").textContent = `step ${step}`;
  renderTimelineChart(step);
  let c;
  try {
    c = await latest("checkpoint", () => api(`/api/timeline/checkpoint?step=${step}`));
  } catch (err) {
    $("timeline-val-loss").textContent = err.message;
    return;
  }
  if (c) renderCheckpoint(index, c);
}

function renderTimelineChart(step) {
  const t = state.timeline;
  const lines = [
    { label: "train loss", color: KIND_COLORS.train, step: t.train.step, value: t.train.value },
    { label: "fit", color: "#9ca3af", step: t.fit.step, value: t.fit.value, dashed: true },
    { label: "val loss", color: KIND_COLORS.eval, step: t.val.step, value: t.val.value },
  ];
  const marks = [
    ...t.changes.map((c) => ({ step: c.step, class: "slope-change", label: `slope change at step ${c.step.toFixed(0)}` })),
    { step, class: "step-mark", label: `checkpoint ${step}` },
  ];
  $("timeline-chart").replaceChildren(lineChart(lines, { marks }), legend(lines));
}

function renderCheckpoint(index, c) {
  const t = state.timeline;
  const before = index ? t.steps[index - 1] : -Infinity;
  const changes = t.changes.filter((ch) => before < ch.step && ch.step <= c.step);
  const per100 = (x) => signed(x * 100);
  $("timeline-val-loss").textContent = fixed(c.val_loss, 4);
  $("timeline-train-loss").textContent = c.train_loss === null ? "–" : fixed(c.train_loss, 4);
  $("timeline-cloze").textContent = `${(c.cloze_accuracy * 100).toFixed(1)}%`;
  $("timeline-names").textContent = `${fixed(c.said_name_loss)} / ${fixed(c.new_name_loss)}`;
  $("timeline-changes").textContent = changes.length
    ? changes.map((ch) => `◆ the slope changed at step ${ch.step.toFixed(0)}: ${per100(ch.slope_before)} → ${per100(ch.slope_after)} per 100 steps`).join("; ")
    : "no slope change since the previous checkpoint";
  $("timeline-sample").textContent = c.sample;
  $("timeline-roles").tBodies[0].replaceChildren(...c.roles.map((r) => el("tr", { dataset: { role: r.role } },
    el("td", {}, el("span", { class: "swatch", style: { background: ROLE_COLORS[r.role] || "#444" } }), ` ${r.role}`),
    el("td", { class: `num${r.score >= r.threshold ? " pass" : ""}` }, fixed(r.score)),
    el("td", {}, `L${r.layer} H${r.head}`),
    el("td", { class: "num" }, String(r.heads)))));
}

// ---------------------------------------------------------------------------------------------
// Start
// ---------------------------------------------------------------------------------------------

function options(select, values, label) {
  select.replaceChildren(...values.map((v) => el("option", { value: v }, label(v))));
}

function start() {
  const params = (info.n_params / 1e6).toFixed(info.n_params >= 1e7 ? 0 : 1);
  $("model-info").replaceChildren(
    el("b", {}, info.name || "model"),
    ` · ${info.n_layer} layers × ${info.n_head} heads · d ${info.n_embd} · ${params}M params · vocab ${info.vocab_size} · context ${info.block_size}`);
  options($("layer"), [...Array(info.n_layer).keys()], (l) => `L${l}`);
  options($("head"), [...Array(info.n_head).keys()], (h) => `H${h}`);
  options($("topk"), [1, 3, 5, 10, 20].filter((k) => k <= info.max_top_k), String);
  $("topk").value = "5";
  $("text").value = boot.text;
  $("text").maxLength = info.max_chars;
  $("layer").addEventListener("change", (e) => selectHead(Number(e.target.value), state.head));
  $("head").addEventListener("change", (e) => selectHead(state.layer, Number(e.target.value)));
  $("topk").addEventListener("change", () => refresh({ attention: false }));
  $("role-score").addEventListener("change", renderRoleMap);
  $("clear-ablation").addEventListener("click", clearAblation);
  $("analyze").addEventListener("click", () => { state.position = null; refresh(); });
  $("text").addEventListener("input", () => {
    clearTimeout(state.typingTimer);
    state.typingTimer = setTimeout(() => { state.position = null; refresh(); }, 500);
  });
  $("text").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); refresh(); }
  });
  document.querySelectorAll("input[name=lossview]").forEach((r) => r.addEventListener("change", renderRun));
  options($("neuron-layer"), [...Array(info.n_layer).keys()], (l) => `L${l}`);
  options($("embed-layer"), [...Array(info.n_layer + 1).keys()], (l) => (l ? `after block ${l - 1}` : "embedding"));
  $("embed-layer").value = String(info.n_layer);
  $("neuron-layer").addEventListener("change", (e) => loadNeurons(Number(e.target.value)));
  $("neuron-sort").addEventListener("change", renderNeuronList);
  for (const id of ["embed-space", "embed-layer", "embed-group"]) $(id).addEventListener("change", loadEmbedding);
  $("timeline-step").addEventListener("input", (e) => selectCheckpoint(Number(e.target.value)));
  renderAblateGrid();
  refresh().then(loadHeads).then(() => loadNeurons(0)).then(loadEmbedding);
  if (info.has_run) {
    $("run-card").hidden = false;
    loadRun();
    setInterval(loadRun, 15000);
    $("timeline-card").hidden = false;
    if (info.has_timeline) loadTimeline();
    else noTimeline("this run has no step checkpoints: train it with --keep-every N to step through them");
  }
}

start();
