// Enrollment: a subject with its consent record first (the form will not submit without one), then
// photos, each checked (face boxed, quality verdict) before it is saved; bulk upload with progress.
import { api, plain, say, sayError } from "./api.js";
import { boxedPhoto, turnedNote } from "./faces.js";
import { $, boot, dropZone, el, noPreview } from "./shell.js";

let subject = null;
const photos = []; // {file, url, detection, card, state: "checking"|"ready"|"refused"|"enrolled"|"failed"}

function today() {
  return new Date().toISOString().slice(0, 10);
}

function openPhotos(view) {
  subject = view;
  $("#subject-name").textContent = view.display_name;
  $("#subject-link").href = `/console/subjects?subject=${encodeURIComponent(view.id)}`;
  $("#photos").hidden = false;
  $("#photos-title").focus();
}

function updateButton() {
  const ready = photos.filter((p) => p.state === "ready").length;
  const button = $("#enroll-button");
  button.disabled = ready === 0;
  button.textContent = ready ? `Enroll ${ready} ready photo${ready > 1 ? "s" : ""}` : "Enroll the ready photos";
}

function sentence(text) {
  return `${text.charAt(0).toUpperCase()}${text.slice(1)}.`;
}

function setVerdict(photo, text, kind) {
  const line = photo.card.querySelector(".verdict");
  line.textContent = text;
  line.className = `verdict notice ${kind}`;
}

async function check(photo) {
  const form = new FormData();
  form.append("image", photo.file, photo.file.name);
  try {
    photo.detection = await api("POST", "/v1/detect", { form });
  } catch (error) {
    photo.state = "refused";
    setVerdict(photo, `Refused: ${plain(error)}`, "error");
    return;
  }
  const detection = photo.detection;
  // The box drawn as chosen is the face enrollment takes (the subject); others are bystanders.
  const chosen = detection.subject === null || detection.subject === undefined ? null : detection.subject;
  photo.card.querySelector(".slot").replaceChildren(boxedPhoto(photo.url, detection, { chosen, alt: photo.file.name }));
  const q = chosen !== null && detection.faces[chosen] ? detection.faces[chosen].quality : null;
  const figures = q ? ` Face ${q.face_px} px wide, sharpness ${q.sharpness}, frontal ${q.frontalness}.` : "";
  if (detection.enrollable) {
    photo.state = "ready";
    setVerdict(photo, `Ready to enroll.${figures}${turnedNote(detection)}`, "ok");
  } else {
    photo.state = "refused";
    setVerdict(photo, `Refused: ${detection.verdict}.`, "error");
  }
}

async function addFiles(files) {
  for (const file of files) {
    const photo = { file, url: URL.createObjectURL(file), detection: null, state: "checking" };
    photo.card = el("div", { className: "card" },
      el("h3", { text: file.name }),
      el("div", { className: "slot" }, el("img", { src: photo.url, alt: file.name, className: "face-img", onerror: noPreview })),
      el("p", { className: "verdict notice", role: "status", text: "Checking…" }));
    $("#photo-cards").append(photo.card);
    photos.push(photo);
  }
  updateButton();
  for (const photo of photos.filter((p) => p.state === "checking")) {
    await check(photo);
    updateButton();
  }
}

async function enrollReady() {
  const queue = photos.filter((p) => p.state === "ready");
  const progress = $("#enroll-progress");
  const status = $("#enroll-status");
  progress.max = queue.length;
  progress.value = 0;
  progress.hidden = false;
  $("#enroll-button").disabled = true;
  let done = 0;
  let failed = 0;
  for (const photo of queue) {
    status.textContent = `Enrolling ${done + failed + 1} of ${queue.length}…`;
    const form = new FormData();
    form.append("image", photo.file, photo.file.name);
    try {
      const face = await api("POST", `/v1/subjects/${subject.id}/faces`, { form });
      photo.state = "enrolled";
      const others = face.bystanders && face.bystanders.length
        ? ` The boxed face was enrolled; ${face.bystanders.length} other face${face.bystanders.length > 1 ? "s were" : " was"} not.` : "";
      // A face enrolled but weak as a gallery photo (blurred, half turned) says what it costs (decision 037).
      const cost = face.warnings && face.warnings.length ? ` ${face.warnings.map(sentence).join(" ")}` : "";
      setVerdict(photo, (face.duplicate ? "Already enrolled (the same photo)." : "Enrolled.") + others + cost,
        cost ? "warn" : "ok");
      done += 1;
    } catch (error) {
      photo.state = "failed";
      setVerdict(photo, `Not enrolled: ${plain(error)}`, "error");
      failed += 1;
    }
    progress.value = done + failed;
  }
  status.textContent = `Done: ${done} enrolled${failed ? `, ${failed} not enrolled` : ""}.`;
  updateButton();
}

async function start() {
  const session = await boot("gallery:subjects:write");
  if (!session) return;
  $("#given-at").max = today();
  const form = $("#subject-form");
  form.addEventListener("invalid", () => {
    say($("#subject-message"), "Fill in the name and the whole consent record: the lawful basis, its reference "
      + "and the date it was given. Nobody is enrolled without one.", "error");
  }, true);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const message = $("#subject-message");
    if (!form.checkValidity()) {
      form.reportValidity();
      say(message, "Fill in the name and the whole consent record: the lawful basis, its reference and the date it was given.", "error");
      return;
    }
    const expires = $("#expires-at").value;
    const body = {
      display_name: $("#display-name").value.trim(),
      consent: {
        basis: $("#basis").value,
        reference: $("#consent-reference").value.trim(),
        given_at: `${$("#given-at").value}T00:00:00Z`,
        ...(expires ? { expires_at: `${expires}T23:59:59Z` } : {}),
      },
    };
    const button = $("#create-subject");
    button.disabled = true;
    try {
      const view = await api("POST", "/v1/subjects", { json: body });
      say(message, `Subject created: ${view.display_name}. Now add photos.`, "ok");
      openPhotos(view);
    } catch (error) {
      sayError(message, error);
    } finally {
      button.disabled = false;
    }
  });
  dropZone($("#photo-drop"), $("#photo-files"), addFiles);
  $("#enroll-button").addEventListener("click", enrollReady);
  const existing = new URLSearchParams(window.location.search).get("subject");
  if (existing) {
    try {
      openPhotos(await api("GET", `/v1/subjects/${encodeURIComponent(existing)}`));
    } catch (error) {
      sayError($("#subject-message"), error);
    }
  }
}

start();
