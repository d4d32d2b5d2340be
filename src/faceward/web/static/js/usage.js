// Usage: searches per day per key as an inline SVG bar chart (no library), with the same figures as a table.
import { api, sayError } from "./api.js";
import { $, boot, el, svg } from "./shell.js";

const DAYS = 14;

function lastDays() {
  const days = [];
  const today = new Date();
  for (let i = DAYS - 1; i >= 0; i -= 1) {
    const d = new Date(Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), today.getUTCDate() - i));
    days.push(d.toISOString().slice(0, 10));
  }
  return days;
}

function chart(days, keys, searches) {
  const width = 720;
  const height = 260;
  const left = 40;
  const bottom = 40;
  const top = 10;
  const plotW = width - left - 10;
  const plotH = height - top - bottom;
  const max = Math.max(1, ...keys.flatMap((k) => days.map((d) => searches[k][d] || 0)));
  const groupW = plotW / days.length;
  const barW = Math.max(2, (groupW - 6) / Math.max(1, keys.length));
  const nodes = [
    svg("title", { text: "Searches per day, by key" }),
    svg("line", { x1: left, y1: top + plotH, x2: width - 10, y2: top + plotH, className: "axis" }),
    svg("line", { x1: left, y1: top, x2: left, y2: top + plotH, className: "axis" }),
    svg("text", { x: left - 6, y: top + 10, "text-anchor": "end", text: String(max) }),
    svg("text", { x: left - 6, y: top + plotH, "text-anchor": "end", text: "0" }),
  ];
  days.forEach((day, i) => {
    const x0 = left + i * groupW + 3;
    keys.forEach((key, j) => {
      const count = searches[key][day] || 0;
      const h = (count / max) * plotH;
      nodes.push(svg("rect", { x: x0 + j * barW, y: top + plotH - h, width: barW - 1, height: h, className: `s${j % 6}` },
        svg("title", { text: `${day}, key ${key}: ${count} search${count === 1 ? "" : "es"}` })));
    });
    if (i % 2 === 0) {
      nodes.push(svg("text", { x: x0 + groupW / 2, y: height - bottom + 16, "text-anchor": "middle", text: day.slice(5) }));
    }
  });
  return svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-labelledby": "chart-title" }, nodes);
}

async function start() {
  const session = await boot("tenant:usage:read");
  if (!session) return;
  let usage;
  try {
    usage = await api("GET", "/v1/usage");
  } catch (error) {
    sayError($("#usage-message"), error);
    return;
  }
  const roles = Object.entries(usage.keys).map(([role, n]) => `${n} ${role}`).join(", ");
  $("#totals").replaceChildren(
    el("dt", { text: "Subjects" }), el("dd", { text: String(usage.subjects) }),
    el("dt", { text: "Enrolled faces" }), el("dd", { text: String(usage.faces) }),
    el("dt", { text: "Live keys" }), el("dd", { text: roles }));
  const days = lastDays();
  const keys = Object.keys(usage.searches).sort();
  $("#chart").replaceChildren(keys.length ? chart(days, keys, usage.searches)
    : el("p", { className: "hint", text: "No search in the last 14 days." }));
  $("#legend").replaceChildren(...keys.map((k, j) => el("li", {}, el("span", { className: `swatch s${j % 6}` }), "key ", el("code", { text: k }))));
  $("#usage-head").replaceChildren(el("tr", {}, el("th", { scope: "col", text: "Day (UTC)" }),
    ...keys.map((k) => el("th", { scope: "col" }, "key ", el("code", { text: k })))));
  $("#usage-rows").replaceChildren(...days.filter((d) => keys.some((k) => usage.searches[k][d]))
    .map((d) => el("tr", {}, el("th", { scope: "row", text: d }), ...keys.map((k) => el("td", { text: String(usage.searches[k][d] || 0) })))));
}

start();
