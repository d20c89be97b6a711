// Small drawing helpers: DOM/SVG element builders, colour scales, and a line chart.
// Text always enters the page as text nodes (never innerHTML), so a token like
// "</script>" or "<img onerror=…>" is shown, not run.

const SVG_NS = "http://www.w3.org/2000/svg";

/** el("div", {class: "x"}, "text", child) -> HTMLElement; strings become text nodes. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  setAttrs(node, attrs);
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

/** The same for SVG elements. */
export function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  setAttrs(node, attrs);
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

function setAttrs(node, attrs) {
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key === "style") Object.assign(node.style, value); // CSSOM: allowed by the CSP
    else node.setAttribute(key, value === true ? "" : String(value));
  }
}

/** A token's text made visible: leading space as "·", newline as "↵", tab as "→". */
export function showToken(text) {
  return text.replace(/\n/g, "↵").replace(/\t/g, "→").replace(/^ /, "·") || "∅";
}

// One colour per head, as in bertviz (d3's category10 plus two).
const HEAD_COLORS = [
  "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
  "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#637939",
];
export const headColor = (h) => HEAD_COLORS[h % HEAD_COLORS.length];

// Sequential blues for attention weights: 0 -> near white, 1 -> deep blue.
const BLUES = [[247, 251, 255], [198, 219, 239], [107, 174, 214], [33, 113, 181], [8, 48, 107]];
export function blues(x) {
  // Clamped: a model without softmax (attn_normalization) has "weights" outside 0..1, or NaN.
  const t = (Number.isFinite(x) ? Math.max(0, Math.min(1, x)) : 0) * (BLUES.length - 1);
  const i = Math.min(Math.floor(t), BLUES.length - 2);
  const f = t - i;
  const c = BLUES[i].map((v, k) => Math.round(v + f * (BLUES[i + 1][k] - v)));
  return `rgb(${c[0]},${c[1]},${c[2]})`;
}

/** Diverging red (negative) / blue (positive) for Δ log p; |x| ≥ scale is full colour. */
export function diverging(x, scale = 2) {
  const t = Math.max(-1, Math.min(1, x / scale));
  const a = Math.abs(t) * 0.85;
  return t < 0 ? `rgba(214,39,40,${a})` : `rgba(31,119,180,${a})`;
}

/** Draw a (possibly pooled) pattern on a canvas, one rectangle per cell. */
export function paintPattern(canvas, rows) {
  const n = rows.length;
  const ctx = canvas.getContext("2d");
  const s = canvas.width / n;
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      ctx.fillStyle = j > i ? "#f1f3f5" : blues(Math.sqrt(rows[i][j]));
      ctx.fillRect(j * s, i * s, Math.ceil(s), Math.ceil(s));
    }
  }
}

const niceNumber = (v) => {
  const a = Math.abs(v);
  if (a === 0) return "0";
  if (a >= 1000 || a < 0.01) return v.toExponential(1);
  return a >= 10 ? v.toFixed(0) : a >= 1 ? v.toFixed(1) : v.toFixed(2);
};

/**
 * A line chart in SVG. lines: [{label, color, step: [...], value: [...], dashed}].
 * Options: width, height, logY, marks: [{step, class, label}] drawn as vertical lines.
 * Returns the <svg>.
 */
export function lineChart(lines, { width = 420, height = 220, logY = false, marks = [] } = {}) {
  const m = { l: 52, r: 12, t: 10, b: 28 };
  const root = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, class: "linechart" });
  const points = lines.flatMap((l) => l.step.map((s, i) => [s, l.value[i]]))
    .filter(([, v]) => v !== null && Number.isFinite(v) && (!logY || v > 0));
  if (!points.length) {
    root.append(svg("text", { x: width / 2, y: height / 2, "text-anchor": "middle", class: "axis" }, "no data"));
    return root;
  }
  const fy = logY ? Math.log10 : (v) => v;
  const xs = points.map((p) => p[0]);
  const ys = points.map((p) => fy(p[1]));
  let [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  let [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  if (x0 === x1) x1 = x0 + 1;
  if (y0 === y1) { y0 -= 0.5; y1 += 0.5; }
  const pad = (y1 - y0) * 0.05;
  y0 = !logY && y0 >= 0 ? Math.max(0, y0 - pad) : y0 - pad; // no negative axis for positive data
  y1 += pad;
  const X = (s) => m.l + ((s - x0) / (x1 - x0)) * (width - m.l - m.r);
  const Y = (v) => height - m.b - ((fy(v) - y0) / (y1 - y0)) * (height - m.t - m.b);
  for (let k = 0; k <= 4; k++) {
    const yv = y0 + ((y1 - y0) * k) / 4;
    const v = logY ? 10 ** yv : yv;
    const y = Y(v);
    root.append(svg("line", { x1: m.l, x2: width - m.r, y1: y, y2: y, class: "grid" }));
    root.append(svg("text", { x: m.l - 6, y: y + 4, "text-anchor": "end", class: "axis" }, niceNumber(v)));
    const xv = Math.round(x0 + ((x1 - x0) * k) / 4);
    root.append(svg("text", { x: X(xv), y: height - 8, "text-anchor": "middle", class: "axis" }, String(xv)));
  }
  for (const line of lines) {
    const d = line.step
      .map((s, i) => [s, line.value[i]])
      .filter(([, v]) => v !== null && Number.isFinite(v) && (!logY || v > 0))
      .map(([s, v], i) => `${i ? "L" : "M"}${X(s).toFixed(1)},${Y(v).toFixed(1)}`)
      .join("");
    root.append(svg("path", { d, stroke: line.color, class: `series${line.dashed ? " dashed" : ""}` }, svg("title", {}, line.label)));
  }
  for (const mark of marks) {
    const x = X(mark.step).toFixed(1);
    root.append(svg("line", {
      x1: x, x2: x, y1: m.t, y2: height - m.b, class: `mark ${mark.class || ""}`, dataset: { step: mark.step },
    }, svg("title", {}, mark.label || `step ${mark.step}`)));
  }
  return root;
}

/** A histogram in SVG from counts (bins) and edges (bins + 1); bar heights on a sqrt scale
 * so a rare tail stays visible next to a tall bar at 0. Each bar carries its count. */
export function histogram(counts, edges, { width = 320, height = 150 } = {}) {
  const m = { l: 8, r: 8, t: 8, b: 22 };
  const root = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, class: "histogram" });
  const max = Math.max(1, ...counts);
  const w = (width - m.l - m.r) / counts.length;
  counts.forEach((c, k) => {
    const h = Math.sqrt(c / max) * (height - m.t - m.b);
    root.append(svg("rect", {
      class: "bar", x: m.l + k * w, y: height - m.b - h, width: Math.max(1, w - 1), height: h,
      dataset: { count: c },
    }, svg("title", {}, `${niceNumber(edges[k])} … ${niceNumber(edges[k + 1])}: ${c}`)));
  });
  const axis = (v, x, anchor) => svg("text", { x, y: height - 6, "text-anchor": anchor, class: "axis" }, niceNumber(v));
  root.append(axis(edges[0], m.l, "start"), axis(edges[edges.length - 1], width - m.r, "end"));
  if (edges[0] < 0 && edges[edges.length - 1] > 0) {
    const x = m.l + ((0 - edges[0]) / (edges[edges.length - 1] - edges[0])) * (width - m.l - m.r);
    root.append(svg("line", { x1: x, x2: x, y1: m.t, y2: height - m.b, class: "zero" }));
  }
  return root;
}

/**
 * A scatter plot in SVG: points [{x, y, ...}], color(point) -> css colour. Each circle has
 * data-index (its place in `points`), for hover read-outs. Axes are labelled `axes`.
 */
export function scatter(points, color, { width = 560, height = 420, axes = ["", ""], r = 3 } = {}) {
  const m = { l: 16, r: 10, t: 10, b: 24 };
  const root = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, class: "scatter" });
  const xs = points.map((p) => p.x);
  const ys = points.map((p) => p.y);
  const span = (v) => {
    let [a, b] = [Math.min(...v), Math.max(...v)];
    if (a === b) { a -= 1; b += 1; }
    const pad = (b - a) * 0.04;
    return [a - pad, b + pad];
  };
  const [x0, x1] = span(xs);
  const [y0, y1] = span(ys);
  const X = (v) => m.l + ((v - x0) / (x1 - x0)) * (width - m.l - m.r);
  const Y = (v) => height - m.b - ((v - y0) / (y1 - y0)) * (height - m.t - m.b);
  root.append(
    svg("line", { x1: m.l, x2: width - m.r, y1: Y(0), y2: Y(0), class: "zero" }),
    svg("line", { x1: X(0), x2: X(0), y1: m.t, y2: height - m.b, class: "zero" }),
    svg("text", { x: width - m.r, y: height - 6, "text-anchor": "end", class: "axis" }, axes[0]),
    svg("text", { x: m.l, y: m.t + 2, "text-anchor": "start", class: "axis", transform: `rotate(90 ${m.l} ${m.t + 2})` }, axes[1]),
  );
  const dots = svg("g", { class: "points" });
  points.forEach((p, k) => dots.append(svg("circle", {
    class: "pt", cx: X(p.x).toFixed(1), cy: Y(p.y).toFixed(1), r, fill: color(p), dataset: { index: k },
  })));
  root.append(dots);
  return root;
}

/** A legend: [{label, color}] as small swatches. */
export function legend(items) {
  return el("div", { class: "chart-legend" },
    ...items.map((it) => el("span", { class: "legend-item" },
      el("span", { class: "swatch", style: { background: it.color } }), it.label)));
}

/** n colours from dark blue through green to yellow (viridis-like), for ordered layers. */
export function ramp(n) {
  const stops = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
  return Array.from({ length: n }, (_, k) => {
    const t = n === 1 ? 0 : (k / (n - 1)) * (stops.length - 1);
    const i = Math.min(Math.floor(t), stops.length - 2);
    const f = t - i;
    const c = stops[i].map((v, q) => Math.round(v + f * (stops[i + 1][q] - v)));
    return `rgb(${c[0]},${c[1]},${c[2]})`;
  });
}
