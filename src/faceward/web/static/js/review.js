// Review: reviewed candidates with their steps; a second reviewer confirms (or rejects) a possible match.
import { api, plain, say, sayError } from "./api.js";
import { OUTCOMES } from "./faces.js";
import { $, boot, el, noPreview, when } from "./shell.js";

let session = null;
let probeUrl = null;
// Notes being written, by candidate: a redraw (another step recorded, the filter changed) keeps them.
const drafts = new Map();
const draftKey = (candidate) => `${candidate.search_id}/${candidate.subject_id}`;

function thumbnail(candidate) {
  if (!candidate.face_id) return el("div", { className: "face-img no-thumb", text: "No thumbnail" });
  const img = el("img", {
    className: "face-img", width: 150, height: 150, src: `/v1/faces/${candidate.face_id}/thumbnail`,
    alt: `Enrolled face of ${candidate.display_name}`,
  });
  img.addEventListener("error", () => img.replaceWith(el("div", { className: "face-img no-thumb", text: "No thumbnail (turned off or not kept)" })));
  return img;
}

function stepForm(candidate, index) {
  const last = candidate.steps[candidate.steps.length - 1];
  const mine = last.outcome === "possible_match" && last.reviewer_key_id === session.key_id;
  const status = el("p", { className: "status", role: "status", "aria-live": "polite" });
  const name = `step-${index}`;
  const note = el("textarea", { id: `review-note-${index}`, required: true, maxlength: 2000 });
  note.value = drafts.get(draftKey(candidate)) || "";
  note.addEventListener("input", () => drafts.set(draftKey(candidate), note.value));
  const options = [];
  if (last.outcome === "possible_match") options.push(["confirmed", "Confirm the match"]);
  options.push(["possible_match", "Possible match"], ["not_a_match", "Not a match"]);
  const form = el("form", { novalidate: true },
    el("fieldset", {},
      el("legend", { text: "Record a step" }),
      mine ? el("p", { className: "hint", text: "You marked this a possible match: a second reviewer (another person or key) must confirm it." }) : null,
      options.map(([value, label]) => el("label", { className: "inline" },
        el("input", {
          type: "radio", name, value, checked: value === "confirmed" && !mine ? true : null,
          disabled: value === "confirmed" && mine ? true : null,
        }),
        label)),
      el("label", { for: `review-note-${index}`, text: "Note (why)" }),
      note,
      el("div", { className: "actions" }, el("button", { type: "submit", text: "Record step" }))),
    status);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const chosen = form.querySelector(`input[name="${name}"]:checked`);
    if (!chosen || !note.value.trim()) {
      status.textContent = "Choose an outcome and write a note saying why.";
      return;
    }
    form.querySelector("button").disabled = true;
    try {
      const updated = await api("POST", "/v1/reviews", { json: {
        search_id: candidate.search_id, subject_id: candidate.subject_id, face_id: candidate.face_id,
        review_token: candidate.review_token, outcome: chosen.value, note: note.value.trim(),
      } });
      drafts.delete(draftKey(candidate));
      say($("#list-message"), `${candidate.display_name}: ${OUTCOMES[updated.status]}.`, "ok");
      await load();
    } catch (error) {
      status.textContent = plain(error);
      form.querySelector("button").disabled = false;
    }
  });
  return form;
}

function probeFigure() {
  if (!probeUrl) return null;
  return el("figure", { className: "probe-local" },
    el("img", { className: "face-img", src: probeUrl, alt: "Probe photo (local)", onerror: noPreview }),
    el("figcaption", { text: "Probe (local)" }));
}

// The local probe photo beside every candidate, changed in place: nothing else is drawn again.
function showProbe() {
  for (const pair of document.querySelectorAll("#reviews .pair")) {
    pair.querySelector(".probe-local")?.remove();
    const figure = probeFigure();
    if (figure) pair.prepend(figure);
  }
}

function render(candidates) {
  const list = $("#reviews");
  list.replaceChildren();
  if (!candidates.length) {
    list.append(el("p", { className: "notice", text: "Nothing here. Candidates appear once someone records a review from the Search page." }));
    return;
  }
  candidates.forEach((candidate, index) => {
    const pair = el("div", { className: "pair" }, probeFigure(),
      el("figure", {}, thumbnail(candidate), el("figcaption", { text: "Enrolled" })));
    const steps = el("ol", { className: "steps" }, candidate.steps.map((step) => el("li", {},
      el("strong", { text: OUTCOMES[step.outcome] }), ` by key `, el("code", { text: step.reviewer_key_id }),
      step.reviewer_key_id === session.key_id ? " (you)" : "", `, ${when(step.at)}: `, el("q", { text: step.note }))));
    list.append(el("article", { className: "candidate", "aria-labelledby": `rev-${index}` },
      el("h2", { id: `rev-${index}` }, candidate.display_name, " ",
        el("span", { className: `badge ${candidate.status}`, text: OUTCOMES[candidate.status] })),
      el("p", { className: "hint" }, "Search ", el("code", { text: candidate.search_id }), " · subject ", el("code", { text: candidate.subject_id })),
      el("div", { className: "grid-2" }, el("div", {}, pair, steps), stepForm(candidate, index)),
      el("p", { className: "hint", text: "Lead only: even a confirmed candidate is not an identification." })));
  });
}

let loading = 0;

async function load() {
  const message = $("#list-message");
  const mine = ++loading; // only the latest request may draw the list
  try {
    const status = $("#status-filter").value;
    const search = new URLSearchParams(window.location.search).get("search") || "";
    const found = await api("GET", "/v1/reviews", { query: { status, search_id: search, limit: 100 } });
    if (mine === loading) render(found.reviews);
  } catch (error) {
    sayError(message, error);
  }
}

async function start() {
  session = await boot("gallery:review:read");
  if (!session) return;
  $("#status-filter").addEventListener("change", load);
  $("#probe-local").addEventListener("change", (event) => {
    if (probeUrl) URL.revokeObjectURL(probeUrl);
    const file = event.target.files[0];
    probeUrl = file ? URL.createObjectURL(file) : null;
    showProbe();
  });
  await load();
}

start();
