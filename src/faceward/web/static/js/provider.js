// The organisation's sign-in provider (admin): connect it (the client secret read from a file, never typed),
// see the sign-in address to give to people and the redirect URI to register at the provider.
import { api, say, sayError } from "./api.js";
import { $, el } from "./shell.js";

function show(status) {
  const box = $("#provider-status");
  if (!status.connected) {
    box.textContent = "Not connected: people sign in with API keys.";
    return;
  }
  const p = status.provider;
  const address = `${window.location.origin}${p.login_path}`;
  box.replaceChildren(
    "Connected to ", el("code", { text: p.issuer }), " as ", el("code", { text: p.client_id }), ". Sign-in address for your people: ",
    el("a", { id: "provider-login", href: p.login_path, text: address }), ". Redirect URI to register: ",
    el("code", { id: "provider-redirect", text: `${address}/callback` }), ".");
  $("#provider-issuer").value = p.issuer;
  $("#provider-client").value = p.client_id;
  $("#provider-claim").value = p.claim;
  $("#provider-roles").value = p.roles.map((r) => `${r.value}=${r.role}`).join("\n");
}

async function connect(event) {
  event.preventDefault();
  const message = $("#provider-message");
  const file = $("#provider-secret").files[0];
  if (!file) {
    say(message, "Choose the file that holds the client secret.", "error");
    return;
  }
  const roles = [];
  for (const line of $("#provider-roles").value.split("\n").map((l) => l.trim()).filter(Boolean)) {
    const at = line.lastIndexOf("=");
    if (at < 1) {
      say(message, `"${line}" is not VALUE=ROLE.`, "error");
      return;
    }
    roles.push({ value: line.slice(0, at).trim(), role: line.slice(at + 1).trim() });
  }
  $("#provider-save").disabled = true;
  say(message, "Checking the provider…");
  try {
    const status = await api("PUT", "/v1/tenant/sign-in", { json: {
      issuer: $("#provider-issuer").value.trim(), client_id: $("#provider-client").value.trim(),
      client_secret: (await file.text()).trim(), claim: $("#provider-claim").value.trim() || "groups", roles,
    } });
    $("#provider-secret").value = "";
    show(status);
    say(message, "Provider connected.", "ok");
  } catch (error) {
    sayError(message, error);
  } finally {
    $("#provider-save").disabled = false;
  }
}

async function start() {
  const form = $("#provider-form");
  if (!form) return;
  // At once, before anything is awaited: the page shows this form as soon as keys.js has booted, and a
  // submit with no handler would be a plain GET carrying the issuer and mapping in the address. The
  // button (disabled in the page) is enabled once the current provider is shown.
  form.addEventListener("submit", connect);
  // Only a role that may manage sign-in asks the API: another role's request would be refused and recorded
  // in the audit log as a denial it never attempted (keys.js tells that person the page is not theirs).
  try {
    const session = await api("GET", "/console/session");
    if (!session.permissions.includes("tenant:sign_in:manage")) return;
    show(await api("GET", "/v1/tenant/sign-in"));
    $("#provider-save").disabled = false;
  } catch (error) {
    if (error.status === 401) return; // signed out: keys.js sends the person to sign in
    sayError($("#provider-message"), error);
  }
}

start();
