// What every console page shares: the session check, the navigation (only the pages the key's role
// may use), sign-out, and small DOM helpers. Pages call boot(permission) first.
import { api, plain } from "./api.js";

export const PAGES = [
  { page: "search", label: "Search", permission: "gallery:search:run" },
  { page: "review", label: "Review", permission: "gallery:review:read" },
  { page: "enroll", label: "Enroll", permission: "gallery:subjects:write" },
  { page: "subjects", label: "Subjects", permission: "gallery:subjects:read" },
  { page: "audit", label: "Audit", permission: "tenant:audit:read" },
  { page: "usage", label: "Usage", permission: "tenant:usage:read" },
  { page: "keys", label: "Keys", permission: "tenant:keys:manage" },
];

export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "text") node.textContent = value;
    else if (name === "className") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// A picked file the browser cannot draw (the server refuses it too): a plain note, not a broken-image icon.
export function noPreview(event) {
  event.target.replaceWith(el("div", { className: "face-img no-thumb", text: "No preview: not a JPEG, PNG or WebP image" }));
}

export function svg(tag, attributes = {}, ...children) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null) continue;
    if (name === "text") node.textContent = value;
    else node.setAttribute(name === "className" ? "class" : name, String(value));
  }
  for (const child of children.flat()) if (child) node.append(child);
  return node;
}

export const $ = (selector, root = document) => root.querySelector(selector);

export function when(value) {
  if (!value) return "—";
  const moment = new Date(value);
  return Number.isNaN(moment.getTime()) ? String(value) : moment.toLocaleString();
}

// A calendar day entered as a date (consent given on, expires on) is stored at a UTC moment of that
// day; shown in local time it would read a day off west or east of UTC, so it is shown as the day.
export function day(value) {
  if (!value) return "—";
  const moment = new Date(value);
  return Number.isNaN(moment.getTime()) ? String(value) : moment.toISOString().slice(0, 10);
}

export function allowedPages(session) {
  return PAGES.filter((p) => session.permissions.includes(p.permission));
}

function renderNav(session, current) {
  const nav = $("#nav");
  if (!nav) return;
  const list = el("ul");
  for (const item of allowedPages(session)) {
    list.append(el("li", {}, el("a", {
      href: `/console/${item.page}`, text: item.label, "aria-current": item.page === current ? "page" : null,
    })));
  }
  nav.replaceChildren(list);
  const who = $("#who");
  if (who) {
    const out = el("button", { type: "button", text: "Sign out", id: "sign-out" });
    out.addEventListener("click", async () => {
      out.disabled = true;
      try {
        await api("DELETE", "/console/session");
      } catch {
        /* signed out already, or the server is gone: leave anyway */
      }
      window.location.assign("/console/");
    });
    who.replaceChildren(
      session.person
        ? el("span", {}, el("strong", { id: "person", text: session.person.name }), " · role ", el("strong", { id: "role", text: session.role }))
        : el("span", {}, "Role: ", el("strong", { id: "role", text: session.role }), " · key ", el("code", { text: session.key_id })),
      out,
    );
  }
}

// Check the session; draw the navigation; show the page's content only if the role holds
// `permission`. Returns the session, or null when the page must stay closed.
export async function boot(permission) {
  const current = document.body.dataset.page;
  let session;
  try {
    session = await api("GET", "/console/session");
  } catch (error) {
    if (error.status === 401) {
      window.location.replace(`/console/?next=${encodeURIComponent(window.location.pathname + window.location.search)}`);
      return null;
    }
    const denied = $("#denied");
    denied.textContent = plain(error);
    denied.hidden = false;
    return null;
  }
  renderNav(session, current);
  if (permission && !session.permissions.includes(permission)) {
    const denied = $("#denied");
    const usable = allowedPages(session).map((p) => p.label).join(", ") || "none";
    denied.textContent = `Your key's role (${session.role}) cannot use this page. Pages open to you: ${usable}.`;
    denied.hidden = false;
    return null;
  }
  const content = $("#content");
  if (content) content.hidden = false;
  return session;
}

// Let people drop files on a label that wraps a file input (keyboard users use the input itself).
export function dropZone(zone, input, onFiles) {
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    if (event.dataTransfer && event.dataTransfer.files.length) onFiles(Array.from(event.dataTransfer.files));
  });
  input.addEventListener("change", () => {
    if (input.files.length) onFiles(Array.from(input.files));
  });
}

export function download(name, type, text) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const link = el("a", { href: url, download: name });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
