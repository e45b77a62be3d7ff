// Charts drawn as SVG with DOM calls: stacked bars per day, horizontal bars for top lists.
// Each chart carries its data as a visually hidden table for screen readers.

import { el, svg } from "./lib.js";

/** Colours with enough contrast on white, distinguishable for common colour blindness. */
export const PALETTE = ["#2563eb", "#d97706", "#059669", "#db2777", "#7c3aed", "#0891b2", "#65a30d", "#6b7280"];

/** A stacked bar chart: `days` (labels, x axis), `series` ([{key, values}], one value per day),
 * `format` for values. Hovering or focusing a bar shows its numbers. */
export function stackedBars({ title, days, series, format, axis = format }) {
  const width = 640, height = 220, left = 56, right = 8, top = 10, bottom = 28;
  const totals = days.map((_, i) => series.reduce((sum, s) => sum + (s.values[i] || 0), 0));
  const max = niceMax(Math.max(0, ...totals));
  const plotW = width - left - right, plotH = height - top - bottom;
  const step = plotW / Math.max(1, days.length);
  const barW = Math.max(2, Math.min(36, step * 0.7));
  const y = (v) => top + plotH - (max ? (v / max) * plotH : 0);

  const chart = svg("svg", {
    viewBox: `0 0 ${width} ${height}`,
    class: "chart",
    role: "img",
    "aria-label": `${title}, per day, stacked`,
  });
  // Grid and y labels.
  for (let i = 0; i <= 4; i++) {
    const value = (max * i) / 4, yy = y(value);
    chart.append(svg("line", { x1: left, x2: width - right, y1: yy, y2: yy, class: "grid" }));
    chart.append(svg("text", { x: left - 6, y: yy + 4, class: "axis", "text-anchor": "end" }, axis(value)));
  }
  const labelEvery = Math.ceil(days.length / 10);
  days.forEach((day, i) => {
    const x = left + i * step + (step - barW) / 2;
    let base = 0;
    const group = svg("g", { class: "bar", tabindex: 0, "aria-label": `${day}: ${format(totals[i])}` });
    const tip = [`${day}: ${format(totals[i])}`];
    series.forEach((s, k) => {
      const v = s.values[i] || 0;
      if (v > 0) {
        group.append(svg("rect", { x, width: barW, y: y(base + v), height: Math.max(0.5, y(base) - y(base + v)), fill: PALETTE[k % PALETTE.length] }));
        tip.push(`${s.key}: ${format(v)}`);
      }
      base += v;
    });
    group.prepend(svg("title", {}, tip.join("\n")));
    chart.append(group);
    if (i % labelEvery === 0) {
      chart.append(svg("text", { x: x + barW / 2, y: height - 8, class: "axis", "text-anchor": "middle" }, day.slice(5)));
    }
  });

  const legend = el(
    "ul",
    { class: "legend" },
    series.map((s, k) => el("li", {}, el("span", { class: `swatch c${k % PALETTE.length}`, "aria-hidden": "true" }), s.key)),
  );
  const table = el(
    "table",
    {},
    el("caption", {}, title),
    el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "day"), series.map((s) => el("th", { scope: "col" }, s.key)))),
    el("tbody", {}, days.map((day, i) => el("tr", {}, el("th", { scope: "row" }, day), series.map((s) => el("td", {}, format(s.values[i] || 0)))))),
  );
  return el("figure", { class: "chart-box" }, el("figcaption", {}, title), chart, legend, el("div", { class: "sr-only" }, table));
}

/** Horizontal bars for a top list: rows of {label, value, href?, extra?}. */
export function barList({ title, rows, format, empty = "Nothing in this period." }) {
  const max = Math.max(0, ...rows.map((r) => r.value));
  const body = rows.length
    ? el(
        "ol",
        { class: "barlist" },
        rows.map((r) =>
          el(
            "li",
            {},
            el("span", { class: "barlabel" }, r.href ? el("a", { href: r.href }, r.label) : r.label),
            el("span", { class: "barvalue" }, format(r.value)),
            meter(max ? r.value / max : 0),
            r.extra ? el("span", { class: "barextra" }, r.extra) : null,
          ),
        ),
      )
    : el("p", { class: "muted" }, empty);
  return el("section", { class: "panel" }, el("h3", {}, title), body);
}

function meter(fraction) {
  const bar = svg("svg", { class: "meter", viewBox: "0 0 100 6", preserveAspectRatio: "none", "aria-hidden": "true" });
  bar.append(svg("rect", { x: 0, y: 0, width: 100, height: 6, class: "meter-bg" }));
  bar.append(svg("rect", { x: 0, y: 0, width: Math.max(0.5, fraction * 100), height: 6, class: "meter-fg" }));
  return bar;
}

/** A round upper bound for an axis. */
function niceMax(value) {
  if (value <= 0) return 1;
  const exp = Math.pow(10, Math.floor(Math.log10(value)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * exp >= value) return m * exp;
  return 10 * exp;
}
