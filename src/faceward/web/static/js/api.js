// The console's only way to the server: the REST API under /v1 (and /console/session), with the
// session cookie and, on every state-changing request, the CSRF token from the fw_csrf cookie.

export class ApiError extends Error {
  constructor(status, code, message, retryAfter) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

function csrfToken() {
  const found = document.cookie.split(";").map((c) => c.trim()).find((c) => c.startsWith("fw_csrf="));
  return found ? decodeURIComponent(found.slice("fw_csrf=".length)) : "";
}

export function withQuery(path, query) {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== "") params.set(name, String(value));
  }
  const text = params.toString();
  return text ? `${path}?${text}` : path;
}

// api("POST", "/v1/reviews", {json: {...}}) -> parsed JSON (null for 204); throws ApiError.
export async function api(method, path, { json, form, query, raw } = {}) {
  const headers = { Accept: "application/json" };
  let body;
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  } else if (form !== undefined) {
    body = form;
  }
  if (!["GET", "HEAD"].includes(method)) {
    const token = csrfToken();
    if (token) headers["X-CSRF-Token"] = token;
  }
  let response;
  try {
    response = await fetch(withQuery(path, query), { method, headers, body, credentials: "same-origin" });
  } catch {
    throw new ApiError(0, "network", "network failure");
  }
  if (!response.ok) {
    let code = "error";
    let message = response.statusText;
    try {
      const detail = (await response.json()).error;
      code = detail.code;
      message = detail.message;
    } catch {
      /* not the API's error shape (a proxy's page): keep the status text */
    }
    throw new ApiError(response.status, code, message, response.headers.get("Retry-After"));
  }
  if (raw) return response;
  if (response.status === 204) return null;
  return response.json();
}

function sentence(text) {
  const trimmed = String(text || "").trim();
  if (!trimmed) return "";
  const first = trimmed[0].toUpperCase() + trimmed.slice(1);
  return /[.!?]$/.test(first) ? first : `${first}.`;
}

// An API failure in plain words, for the person at the keyboard.
export function plain(error) {
  if (!(error instanceof ApiError)) return "Something went wrong in this page. Reload it and try again.";
  switch (error.status) {
    case 0:
      return "The server cannot be reached. Check the connection and try again.";
    case 401:
      return "Your session has ended, or the key is no longer valid. Sign in again.";
    case 403:
      if (error.code === "csrf_failed") return "This page is out of date. Reload it and try again.";
      if (error.code === "tenant_suspended") return "Your organisation's access is suspended.";
      return "Your key's role does not allow this.";
    case 404:
      if (error.code === "thumbnails_off") return "Thumbnails are turned off for this organisation.";
      return "Not found: it may have been erased, or it was never there.";
    case 409:
      return sentence(error.message);
    case 413:
      return "The file is too large to upload.";
    case 415:
      return "That file is not a JPEG, PNG or WebP photo.";
    case 422:
      return sentence(error.message) || "The server could not use what was sent.";
    case 429: {
      const wait = Number(error.retryAfter);
      return wait ? `Too many requests for this key. Wait ${wait} seconds and try again.`
        : "Too many requests for this key. Wait a moment and try again.";
    }
    default:
      if (error.status >= 500) {
        return "The server had a problem. Try again in a moment; if it keeps happening, tell your administrator.";
      }
      return sentence(error.message) || "The request failed.";
  }
}

// Put a message in a notice element; kind is "error", "ok" or "" (neutral).
export function say(element, message, kind = "") {
  element.textContent = message;
  element.className = `notice ${kind}`.trim();
  element.hidden = !message;
  if (kind === "error") element.setAttribute("role", "alert");
  else element.setAttribute("role", "status");
}

export function sayError(element, error) {
  say(element, plain(error), "error");
}
