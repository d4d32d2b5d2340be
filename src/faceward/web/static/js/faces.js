// Photos with their detected faces boxed, face choosers, face crops, and the figures of a match.
import { el, noPreview, svg } from "./shell.js";

// A photo (object URL) with an SVG overlay in the image's own pixel coordinates, so boxes scale with it.
export function boxedPhoto(url, detection, { chosen = null, alt = "Photo" } = {}) {
  const overlay = svg("svg", {
    viewBox: `0 0 ${detection.width} ${detection.height}`, preserveAspectRatio: "none", "aria-hidden": "true",
  });
  detection.faces.forEach((face, i) => {
    const b = face.box;
    const classes = [i === chosen ? "chosen" : "", face.refusals && face.refusals.length ? "refused" : ""].join(" ").trim();
    overlay.append(svg("rect", {
      x: b.left, y: b.top, width: b.right - b.left, height: b.bottom - b.top, className: classes || null, "data-face": i,
    }));
  });
  const count = detection.faces.length;
  const description = `${alt}: ${count === 0 ? "no face found" : `${count} face${count > 1 ? "s" : ""} boxed`}`;
  return el("div", { className: "stage" }, el("img", { src: url, alt: description, onerror: noPreview }), overlay);
}

export function markChosen(stage, chosen) {
  stage.querySelectorAll("rect").forEach((rect) => {
    rect.classList.toggle("chosen", Number(rect.dataset.face) === chosen);
  });
}

// Buttons to pick one face (keyboard-friendly twin of the boxes).
export function faceChooser(detection, onChoose, chosen = 0) {
  const group = el("div", { className: "face-choices", role: "group", "aria-label": "Faces found in the probe" });
  detection.faces.forEach((face, i) => {
    const button = el("button", {
      type: "button", className: "secondary", "aria-pressed": String(i === chosen),
      text: `Face ${i + 1}${i === 0 ? " (largest)" : ""}${i === detection.searched ? " (the subject)" : ""} · ${face.quality.face_px} px`,
    });
    button.addEventListener("click", () => {
      group.querySelectorAll("button").forEach((b) => b.setAttribute("aria-pressed", "false"));
      button.setAttribute("aria-pressed", "true");
      onChoose(i);
    });
    group.append(button);
  });
  return group;
}

// Only the face region of a photo, as a 150 x 150 square (an SVG viewBox on the photo; nothing is uploaded),
// turned upright when the photo lies on its side (``rotationCw``, the face's ``rotation_cw``).
export function faceCrop(url, detection, box, label, rotationCw = 0) {
  const w = box.right - box.left;
  const h = box.bottom - box.top;
  const side = Math.max(w, h) * 1.3;
  const cx = box.left + w / 2;
  const cy = box.top + h / 2;
  const photo = svg("image", { href: url, x: 0, y: 0, width: detection.width, height: detection.height });
  const upright = rotationCw ? svg("g", { transform: `rotate(${rotationCw} ${cx} ${cy})` }, photo) : photo;
  return svg("svg", {
    viewBox: `${cx - side / 2} ${cy - side / 2} ${side} ${side}`, className: "face-crop", role: "img", "aria-label": label,
  }, upright);
}

// A sentence for a photo whose faces were found with it turned (it is not upright and has no EXIF orientation).
export function turnedNote(detection) {
  const turned = detection.faces.find((face) => face.rotation_cw);
  if (!turned) return "";
  const how = turned.rotation_cw === 180 ? "is upside down" : "lies on its side";
  return ` The photo ${how}: its faces were found with it turned ${turned.rotation_cw}° clockwise.`;
}

// Estimated false match rate in words ("about 1 in 25,000").
export function fmrWords(fmr) {
  if (fmr === null || fmr === undefined) return "unknown (uncalibrated model)";
  if (fmr <= 0) return "below what calibration can measure";
  if (fmr >= 0.5) return "about 1 in 2 or more";
  const oneIn = Math.round(1 / fmr);
  return `about 1 in ${oneIn.toLocaleString("en")}`;
}

export const BANDS = {
  lead: "Lead: above the decision threshold",
  below_threshold: "Below the decision threshold",
};

export const OUTCOMES = {
  possible_match: "Possible match",
  not_a_match: "Not a match",
  confirmed: "Confirmed by two reviewers",
};

export const LEAD_WARNING = "A candidate is a lead, not an identification. A trained examiner must review it, "
  + "and a match is confirmed only when a second reviewer agrees. Never act on a score alone.";
