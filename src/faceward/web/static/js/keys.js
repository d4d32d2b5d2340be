// Keys (admin): create a key with a role and an expiry (its secret shown once), revoke one; tenant settings.
import { api, say, sayError } from "./api.js";
import { $, boot, el, when } from "./shell.js";

let me = null;

function status(key) {
  if (key.revoked_at) return "revoked";
  if (key.expires_at && new Date(key.expires_at) <= new Date()) return "expired";
  return "active";
}

async function revoke(key) {
  const self = key.id === me.key_id ? " This is the key you are signed in with: your session ends with it." : "";
  if (!window.confirm(`Revoke the key "${key.label}" (${key.id})? It stops working at once.${self}`)) return;
  try {
    await api("DELETE", `/v1/keys/${encodeURIComponent(key.id)}`);
    say($("#list-message"), `Key ${key.id} revoked.`, "ok");
    await list();
  } catch (error) {
    sayError($("#list-message"), error);
  }
}

async function list() {
  try {
    const found = await api("GET", "/v1/keys");
    $("#key-rows").replaceChildren(...found.keys.map((key) => el("tr", {},
      el("th", { scope: "row", text: key.label || "(no label)" }),
      el("td", {}, el("code", { text: key.id })),
      el("td", { text: key.role }),
      el("td", { text: when(key.created_at) }),
      el("td", { text: key.expires_at ? when(key.expires_at) : "never" }),
      el("td", { text: when(key.last_used_at) }),
      el("td", { text: status(key) }),
      el("td", {}, status(key) === "active"
        ? el("button", { type: "button", className: "danger", text: "Revoke", "aria-label": `Revoke ${key.label} (${key.id})`, onclick: () => revoke(key) })
        : ""))));
  } catch (error) {
    sayError($("#list-message"), error);
  }
}

async function create(event) {
  event.preventDefault();
  const message = $("#key-message");
  const form = $("#key-form");
  if (!form.checkValidity()) {
    form.reportValidity();
    return;
  }
  const expires = $("#key-expires").value;
  try {
    const made = await api("POST", "/v1/keys", { json: {
      role: $("#key-role").value, label: $("#key-label").value.trim(),
      ...(expires ? { expires_at: `${expires}T23:59:59Z` } : {}),
    } });
    $("#secret").textContent = made.secret;
    $("#secret-box").hidden = false;
    say(message, `Key ${made.key.id} (${made.key.role}) created.`, "ok");
    $("#key-label").value = "";
    await list();
  } catch (error) {
    sayError(message, error);
  }
}

function showModel(model) {
  const card = $("#model-card");
  const cal = model.calibration;
  const rows = [
    ["Model", model.model_id],
    ["SHA-256", model.sha256],
    ["Licence", model.licence],
    ["Training data", model.training_data ?? "not stated"],
    ["Intended use", model.intended_use ?? "not stated"],
    ...(model.fused_with ? [["Fused with", model.fused_with]] : []),
    ["Calibration", cal
      ? `calibrated on ${cal.impostor_pairs.toLocaleString("en")} impostor / ${cal.genuine_pairs.toLocaleString("en")} genuine pairs (FMR resolution ${cal.fmr_resolution.toExponential(1)})`
      : "uncalibrated: no false match rate is estimated"],
    ["Gallery made with", model.gallery_model_id
      ? `${model.gallery_model_id}${model.gallery_model_sha256 ? ` (SHA-256 ${model.gallery_model_sha256})` : ""}`
      : "no enrollment yet"],
  ];
  card.replaceChildren(...rows.flatMap(([term, value]) => {
    const dt = document.createElement("dt");
    dt.textContent = term;
    const dd = document.createElement("dd");
    dd.textContent = value;
    dd.dataset.field = term;
    return [dt, dd];
  }));
}

async function saveSettings(event) {
  event.preventDefault();
  const on = $("#thumbnails").checked;
  if (!on && !window.confirm("Turn thumbnails off? Every stored thumbnail is deleted now; reviewers will see none.")) return;
  try {
    const result = await api("PATCH", "/v1/tenant/settings", { json: { thumbnails: on } });
    say($("#settings-message"), on ? "Thumbnails are on." : `Thumbnails are off; ${result.thumbnails_deleted} deleted.`, "ok");
  } catch (error) {
    sayError($("#settings-message"), error);
  }
}

async function settings() {
  // The button (disabled in the page) is enabled once the current settings are shown: saving before then
  // would send a checkbox that does not yet say what is stored.
  try {
    const current = await api("GET", "/v1/tenant/settings");
    $("#thumbnails").checked = current.thumbnails;
    showModel(current.model);
    $("#settings-save").disabled = false;
  } catch (error) {
    sayError($("#settings-message"), error);
  }
}

async function start() {
  me = await boot("tenant:keys:manage");
  if (!me) return;
  $("#key-form").addEventListener("submit", create);
  $("#settings-form").addEventListener("submit", saveSettings);  // before any await: never a plain GET
  $("#copy-secret").addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText($("#secret").textContent);
      say($("#key-message"), "Secret copied.", "ok");
    } catch {
      say($("#key-message"), "Copying is blocked here: select the secret and copy it by hand.", "error");
    }
  });
  await list();
  await settings();
}

start();
