// Sign in: exchange an API key for a console session, then go to the first page the role may use.
import { api, say, sayError } from "./api.js";
import { $, allowedPages } from "./shell.js";

function target(session) {
  const next = new URLSearchParams(window.location.search).get("next") || "";
  // Only a console path: never a redirect to another site.
  if (/^\/console\/[a-z]+(\?[\w=&%.-]*)?$/.test(next)) return next;
  const first = allowedPages(session)[0];
  return first ? `/console/${first.page}` : "/console/";
}

async function start() {
  const message = $("#message");
  try {
    const session = await api("GET", "/console/session");
    window.location.replace(target(session));
    return;
  } catch {
    /* not signed in: show the form */
  }
  $("#sign-in").addEventListener("submit", async (event) => {
    event.preventDefault();
    const key = $("#api-key").value.trim();
    if (!key) {
      say(message, "Enter your API key.", "error");
      $("#api-key").focus();
      return;
    }
    const button = $("#sign-in-button");
    button.disabled = true;
    say(message, "Signing in…");
    try {
      const session = await api("POST", "/console/session", { json: { api_key: key } });
      $("#api-key").value = "";
      if (!allowedPages(session).length) {
        say(message, `Signed in as ${session.role}, but this role has no console page.`, "error");
        return;
      }
      window.location.assign(target(session));
    } catch (error) {
      if (error.status === 401) say(message, "That API key was not accepted: it is unknown, revoked or expired.", "error");
      else sayError(message, error);
    } finally {
      button.disabled = false;
    }
  });
}

start();
