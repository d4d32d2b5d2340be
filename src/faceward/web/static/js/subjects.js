// Subjects: find by name (names are sealed server-side, so the page filters what it reads), open one,
// see its faces, erase it after a confirmation that says what erasure removes.
import { api, say, sayError } from "./api.js";
import { $, boot, day, el, when } from "./shell.js";

const PAGE = 500;
const MAX_PAGES = 40;
let everyone = null;
let current = null;

const BASES = {
  explicit_consent: "Explicit consent", employment: "Employment", vital_interests: "Vital interests",
  legal_claims: "Legal claims", substantial_public_interest: "Substantial public interest",
};

async function loadAll() {
  const all = [];
  for (let page = 0; page < MAX_PAGES; page += 1) {
    const found = await api("GET", "/v1/subjects", { query: { limit: PAGE, offset: page * PAGE } });
    all.push(...found.subjects);
    if (found.subjects.length < PAGE) break;
  }
  return all;
}

function renderRows(subjects, query) {
  const rows = $("#subject-rows");
  rows.replaceChildren(...subjects.map((s) => el("tr", {},
    el("th", { scope: "row", text: s.display_name }),
    el("td", { text: BASES[s.consent.basis] || s.consent.basis }),
    el("td", { text: when(s.created_at) }),
    el("td", {}, el("button", { type: "button", className: "secondary", text: "Open", "aria-label": `Open ${s.display_name}`,
      onclick: () => open(s.id) })))));
  $("#subject-caption").textContent = query
    ? `${subjects.length} subject(s) whose name contains "${query}"` : `${subjects.length} subject(s)`;
  $("#subject-table").hidden = false;
}

async function find(event) {
  if (event) event.preventDefault();
  const status = $("#find-status");
  const query = $("#find-name").value.trim();
  try {
    if (everyone === null || event) {
      status.textContent = "Reading subjects…";
      everyone = await loadAll();
    }
    const needle = query.toLocaleLowerCase();
    const matches = everyone.filter((s) => s.display_name.toLocaleLowerCase().includes(needle));
    renderRows(matches, query);
    status.textContent = matches.length ? "" : "No subject matches that name.";
  } catch (error) {
    status.textContent = "";
    sayError($("#detail-message"), error);
    $("#detail").hidden = false;
  }
}

async function open(id) {
  const message = $("#detail-message");
  try {
    current = await api("GET", `/v1/subjects/${encodeURIComponent(id)}`);
  } catch (error) {
    $("#detail").hidden = false;
    sayError(message, error);
    return;
  }
  say(message, "");
  const c = current.consent;
  $("#detail-title").textContent = current.display_name;
  $("#detail-figures").replaceChildren(
    el("dt", { text: "Subject id" }), el("dd", {}, el("code", { text: current.id })),
    el("dt", { text: "Lawful basis" }), el("dd", { text: BASES[c.basis] || c.basis }),
    el("dt", { text: "Consent reference" }), el("dd", { text: c.reference }),
    el("dt", { text: "Given" }), el("dd", { text: day(c.given_at) }),
    el("dt", { text: "Expires" }), el("dd", { text: c.expires_at ? day(c.expires_at) : "no expiry" }),
    el("dt", { text: "Faces" }), el("dd", { text: String(current.faces.length) }));
  $("#face-rows").replaceChildren(...(current.faces.length ? current.faces.map((f) => el("tr", {},
    el("td", {}, el("code", { text: f.id })), el("td", { text: `${f.quality.face_px} px` }),
    el("td", { text: String(f.quality.sharpness) }), el("td", { text: String(f.quality.frontalness) }),
    el("td", { text: when(f.created_at) }))) : [el("tr", {}, el("td", { colspan: 5, text: "No face enrolled yet." }))]));
  $("#add-photos").href = `/console/enroll?subject=${encodeURIComponent(current.id)}`;
  $("#add-photos").hidden = false;
  $("#erase-button").disabled = false;
  $("#detail").hidden = false;
  $("#detail-title").focus();
}

async function erase() {
  const dialog = $("#erase-dialog");
  $("#erase-name").textContent = current.display_name;
  $("#erase-count").textContent = `${current.faces.length} face${current.faces.length === 1 ? "" : "s"}`;
  dialog.returnValue = "";
  dialog.showModal();
  await new Promise((resolve) => dialog.addEventListener("close", resolve, { once: true }));
  if (dialog.returnValue !== "erase") return;
  const message = $("#detail-message");
  $("#erase-button").disabled = true;
  try {
    const result = await api("DELETE", `/v1/subjects/${encodeURIComponent(current.id)}`);
    say(message, `${current.display_name} was erased: ${result.faces_erased} face(s) removed.`, "ok");
    everyone = (everyone || []).filter((s) => s.id !== current.id);
    $("#detail-title").textContent = `${current.display_name} (erased)`;
    $("#detail-figures").replaceChildren();
    $("#face-rows").replaceChildren();
    $("#add-photos").hidden = true; // the subject is gone: no photos can be added to it
    current = null;
    await find();
  } catch (error) {
    sayError(message, error);
    $("#erase-button").disabled = false;
  }
}

async function start() {
  const session = await boot("gallery:subjects:read");
  if (!session) return;
  $("#find-form").addEventListener("submit", find);
  $("#erase-button").addEventListener("click", () => { if (current) erase(); });
  if (!session.permissions.includes("gallery:subjects:write")) $("#erase-button").hidden = true;
  await find();
  const wanted = new URLSearchParams(window.location.search).get("subject");
  if (wanted) await open(wanted);
}

start();
