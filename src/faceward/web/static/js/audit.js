// Audit: the chain's verification status, a filtered timeline (actor, action, time), CSV/JSON export.
import { api, say, sayError } from "./api.js";
import { $, boot, download, el, when } from "./shell.js";

const PAGE = 200;
let offset = 0;
let shown = 0;

function filters() {
  const iso = (value) => (value ? new Date(value).toISOString() : "");
  return {
    actor: $("#actor").value.trim(), action: $("#action").value.trim(),
    since: iso($("#since").value), until: iso($("#until").value),
  };
}

const MOMENT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/;

// A detail's value as a person reads it: "none" for no value, yes/no, a moment in local time as the
// entry's own time is, a list's items and a mapping's fields spelled out, never raw JSON (the exports keep it).
function readable(value) {
  if (value === null || value === undefined) return "none";
  if (typeof value === "boolean") return value ? "yes" : "no";
  if (typeof value === "string" && MOMENT.test(value)) return when(value);
  if (Array.isArray(value)) return value.length ? value.map(readable).join(", ") : "none";
  if (typeof value === "object") return `(${Object.entries(value).map(([k, v]) => `${k}: ${readable(v)}`).join(", ")})`;
  return String(value);
}

function describe(details) {
  return Object.entries(details || {}).map(([k, v]) => `${k}: ${readable(v)}`).join(" · ");
}

function entryItem(entry) {
  return el("li", {},
    el("div", {}, el("span", { className: "action", text: entry.action }), " by ",
      entry.actor_name ? el("strong", { className: "actor-name", text: entry.actor_name }) : "",
      entry.actor_name ? " " : "", el("code", { text: entry.actor })),
    el("div", { className: "when" }, `#${entry.seq} · `, el("time", { datetime: entry.at, text: when(entry.at) }),
      entry.source ? ` · from ${entry.source}` : ""),
    el("div", { className: "details", text: describe(entry.details) }));
}

async function show(reset) {
  const message = $("#audit-message");
  if (!$("#filter-form").checkValidity()) {
    say(message, "Actor and action may hold only letters, digits and . : _ -", "error");
    return;
  }
  if (reset) {
    offset = 0;
    shown = 0;
    $("#timeline").replaceChildren();
  }
  try {
    const page = await api("GET", "/v1/audit", { query: { ...filters(), limit: PAGE, offset, order: "newest" } });
    say(message, "");
    $("#timeline").append(...page.entries.map(entryItem));
    offset += page.entries.length;
    shown += page.entries.length;
    $("#timeline-count").textContent = `(${shown} entr${shown === 1 ? "y" : "ies"}, newest first)`;
    $("#more").hidden = page.entries.length < PAGE;
  } catch (error) {
    sayError(message, error);
  }
}

async function everything() {
  const all = [];
  for (let page = 0; page < 100; page += 1) {
    const found = await api("GET", "/v1/audit", { query: { ...filters(), limit: 1000, offset: page * 1000 } });
    all.push(...found.entries);
    if (found.entries.length < 1000) break;
  }
  return all;
}

function csvCell(value) {
  const text = value === null || value === undefined ? "" : typeof value === "object" ? JSON.stringify(value) : String(value);
  const safe = /^[=+\-@\t\r]/.test(text) ? `'${text}` : text; // no formulas when opened in a spreadsheet
  return `"${safe.replaceAll('"', '""')}"`;
}

async function exportAs(kind) {
  const message = $("#audit-message");
  say(message, "Preparing the export…");
  try {
    const entries = await everything();
    const stamp = new Date().toISOString().slice(0, 19).replaceAll(":", "");
    if (kind === "json") {
      download(`faceward-audit-${stamp}.json`, "application/json", JSON.stringify(entries, null, 2));
    } else {
      const lines = [["seq", "at", "actor", "actor_name", "action", "source", "details"].map(csvCell).join(",")];
      for (const e of entries) lines.push([e.seq, e.at, e.actor, e.actor_name || "", e.action, e.source, e.details].map(csvCell).join(","));
      download(`faceward-audit-${stamp}.csv`, "text/csv", `${lines.join("\r\n")}\r\n`);
    }
    say(message, `Exported ${entries.length} entr${entries.length === 1 ? "y" : "ies"}.`, "ok");
  } catch (error) {
    sayError(message, error);
  }
}

async function chain() {
  const box = $("#chain");
  try {
    const report = await api("GET", "/v1/audit/verify");
    if (report.ok) say(box, `Audit chain verified: all ${report.entries} entries are intact and in order.`, "ok");
    else say(box, `Audit chain BROKEN at entry ${report.first_bad}: ${report.reason}. Tell your administrator now.`, "error");
  } catch (error) {
    sayError(box, error);
  }
}

async function start() {
  const session = await boot("tenant:audit:read");
  if (!session) return;
  $("#filter-form").addEventListener("submit", (event) => { event.preventDefault(); show(true); });
  $("#more").addEventListener("click", () => show(false));
  $("#export-csv").addEventListener("click", () => exportAs("csv"));
  $("#export-json").addEventListener("click", () => exportAs("json"));
  await chain();
  await show(true);
}

start();
