// Search: pick or drop a probe, see its faces boxed, choose one, state purpose and case, see candidates
// beside the probe face, and record a review of each (a lead, never an identification).
import { api, plain, say, sayError } from "./api.js";
import { BANDS, LEAD_WARNING, OUTCOMES, boxedPhoto, faceChooser, faceCrop, fmrWords, markChosen, turnedNote } from "./faces.js";
import { $, boot, dropZone, el } from "./shell.js";

const state = { file: null, url: null, detection: null, face: null };

function resetProbe() {
  if (state.url) URL.revokeObjectURL(state.url);
  Object.assign(state, { file: null, url: null, detection: null, face: null });
  $("#probe-view").replaceChildren();
  $("#search-button").disabled = true;
}

async function takeProbe(files) {
  const file = files[0];
  resetProbe();
  $("#results").hidden = true;
  const status = $("#probe-status");
  state.file = file;
  state.url = URL.createObjectURL(file);
  status.textContent = "Looking for faces…";
  const form = new FormData();
  form.append("image", file, file.name);
  try {
    state.detection = await api("POST", "/v1/detect", { form });
  } catch (error) {
    status.textContent = plain(error);
    return;
  }
  const detection = state.detection;
  // The face a search takes unless told another: the photo's subject (most prominent), as the API does.
  const searched = detection.faces.length ? (detection.searched ?? 0) : null;
  const stage = boxedPhoto(state.url, detection, { chosen: searched, alt: "Probe photo" });
  const parts = [stage];
  if (!detection.faces.length) {
    status.textContent = "No face was found in this photo. Try another photo, larger or sharper.";
  } else {
    state.face = searched;
    if (detection.faces.length > 1) {
      status.textContent = `${detection.faces.length} faces found. Choose the one to search with.${turnedNote(detection)}`;
      parts.push(faceChooser(detection, (i) => {
        state.face = i;
        markChosen(stage, i);
      }, searched));
    } else {
      status.textContent = `1 face found.${turnedNote(detection)}`;
    }
    $("#search-button").disabled = false;
  }
  $("#probe-view").replaceChildren(...parts);
}

function reviewForm(result, candidate, index) {
  const name = `outcome-${index}`;
  const status = el("p", { className: "status", role: "status", "aria-live": "polite" });
  const note = el("textarea", { id: `note-${index}`, name: "note", required: true, maxlength: 2000 });
  const form = el("form", { className: "review-form", novalidate: true },
    el("fieldset", {},
      el("legend", { text: "Your review" }),
      el("label", { className: "inline" }, el("input", { type: "radio", name, value: "possible_match" }), "Possible match"),
      el("label", { className: "inline" }, el("input", { type: "radio", name, value: "not_a_match" }), "Not a match"),
      el("label", { for: `note-${index}`, text: "Note (why)" }),
      note,
      el("div", { className: "actions" }, el("button", { type: "submit", text: "Record review" })),
    ),
    status);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const chosen = form.querySelector(`input[name="${name}"]:checked`);
    if (!chosen || !note.value.trim()) {
      status.textContent = "Choose an outcome and write a note saying why.";
      return;
    }
    const button = form.querySelector("button");
    button.disabled = true;
    try {
      const review = await api("POST", "/v1/reviews", { json: {
        search_id: result.search_id, subject_id: candidate.subject_id, face_id: candidate.face_id,
        review_token: candidate.review_token, outcome: chosen.value, note: note.value.trim(),
      } });
      const next = review.status === "possible_match"
        ? " A second reviewer, with another key, can now confirm it on the Review page." : "";
      status.textContent = `Recorded: ${OUTCOMES[review.status]}.${next}`;
      note.value = "";
    } catch (error) {
      status.textContent = plain(error);
    } finally {
      button.disabled = false;
    }
  });
  return form;
}

function thumbnail(result, candidate) {
  if (!result.thumbnails || !candidate.face_id) {
    return el("div", { className: "face-img no-thumb", text: "No thumbnail (turned off or not kept)" });
  }
  const img = el("img", {
    className: "face-img", width: 150, height: 150, src: `/v1/faces/${candidate.face_id}/thumbnail`,
    alt: `Enrolled face of ${candidate.display_name}`,
  });
  img.addEventListener("error", () => img.replaceWith(el("div", { className: "face-img no-thumb", text: "No thumbnail for this face" })));
  return img;
}

function showResults(result) {
  const probeBox = result.probe_face.box;
  $("#result-warning").textContent = LEAD_WARNING;
  // An uncalibrated model's threshold is its manifest's: no false match rate was measured for it.
  const rate = result.calibrated ? `(false match rate ${fmrWords(result.threshold.target_fmr)})`
    : "(from the model's manifest: this model is not calibrated, so no false match rate is known)";
  const notes = [`Searched ${result.gallery_faces} enrolled faces. Decision threshold: score ${result.threshold.score} ${rate}.`,
    ...result.warnings];
  $("#result-notes").replaceChildren(...notes.map((n) => el("li", { text: n })));
  const list = $("#candidates");
  list.replaceChildren();
  if (!result.candidates.length) {
    list.append(el("p", { className: "notice", text: "No candidate: the gallery is empty, or nothing resembles this face." }));
  }
  result.candidates.forEach((candidate, index) => {
    const article = el("article", { className: "candidate", "aria-labelledby": `cand-${index}` },
      el("h3", { id: `cand-${index}` }, `#${candidate.rank} ${candidate.display_name}`),
      el("div", { className: "grid-2" },
        el("div", {},
          el("div", { className: "pair" },
            el("figure", {}, faceCrop(state.url, state.detection, probeBox, "Probe face", result.probe_face.rotation_cw), el("figcaption", { text: "Probe" })),
            el("figure", {}, thumbnail(result, candidate), el("figcaption", { text: "Enrolled" }))),
          el("dl", { className: "figures" },
            el("dt", { text: "Score" }), el("dd", { text: candidate.score.toFixed(3) }),
            el("dt", { text: "Estimated false match rate" }), el("dd", { text: fmrWords(candidate.estimated_fmr) }),
            el("dt", { text: "Decision band" }),
            el("dd", {}, el("span", { className: `band ${candidate.decision}`, text: BANDS[candidate.decision] || candidate.decision })),
          ),
          el("p", { className: "hint", text: "Lead only: not an identification." })),
        candidate.review_token ? reviewForm(result, candidate, index) : el("p", { className: "hint", text: "This key cannot record reviews." }),
      ));
    list.append(article);
  });
  $("#results").hidden = false;
  $("#results-title").focus();
}

async function start() {
  const session = await boot("gallery:search:run");
  if (!session) return;
  dropZone($("#probe-drop"), $("#probe"), takeProbe);
  $("#search-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const message = $("#search-message");
    const purpose = $("#purpose").value.trim();
    const reference = $("#case-reference").value.trim();
    if (!state.file || state.face === null) {
      say(message, "Choose a probe photo with a face first.", "error");
      return;
    }
    if (!purpose || !reference) {
      say(message, "State the purpose of this search and its case reference: both are required and audited.", "error");
      (!purpose ? $("#purpose") : $("#case-reference")).focus();
      return;
    }
    const form = new FormData();
    form.append("image", state.file, state.file.name);
    form.append("purpose", purpose);
    form.append("case_reference", reference);
    form.append("k", $("#k").value);
    form.append("face", String(state.face));
    const button = $("#search-button");
    button.disabled = true;
    say(message, "Searching…");
    try {
      const result = await api("POST", "/v1/search", { form });
      say(message, `Search ${result.search_id} done: ${result.candidates.length} candidate(s).`, "ok");
      showResults(result);
    } catch (error) {
      sayError(message, error);
    } finally {
      button.disabled = false;
    }
  });
}

start();
