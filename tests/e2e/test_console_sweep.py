"""Every console page as every role sees it, after the page's main action, in a real browser against a
real ``uvicorn`` server (the rig of :mod:`tests.e2e.test_console`) over a small gallery.

Each role signs in with its key and opens every page its navigation offers; on each page it does the
page's main action once (search a photo and record a review, confirm a review, enroll a photo, open and
erase a subject, filter and export the audit, read usage, create and revoke a key, save the settings,
connect a sign-in provider). It then opens the pages its navigation does not offer, and signs out.
On every page, before and after its action:

- no JavaScript error, no console error, no CSP violation;
- no request of the page answered 5xx, and no 4xx the page does not expect and explain in words;
- nothing visible (or read out: alt, aria-label, title) says ``undefined``, ``null``, ``NaN``,
  ``[object Object]``, ``Invalid Date``, names a Python exception, or shows raw JSON;
- every form control has a label, every image an alt text, every button a name, and the page one h1;
- nothing the role is offered (a navigation entry, a button) is refused by the API with 403.
The sign-in page, which every role passes through, is checked the same way.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.conftest import jpeg
from tests.e2e.console_rig import needs_chromium
from tests.e2e.test_console import OTHERS, Person, Server, browser, search, server  # noqa: F401  (fixtures)
from tests.net import free_port

pytestmark = needs_chromium

# What each role's navigation offers: shell.js's PAGES, as security/policy.py grants their permissions.
NAVIGATION = {
    "enroller": ["enroll", "subjects"],
    "searcher": ["search", "review"],
    "admin": ["audit", "usage", "keys"],
    "auditor": ["audit"],
}
ERASABLE = "Sweep Erasable"
# Words a page shows when it prints a value it did not expect: JavaScript's, a Python exception's name
# passed on by the API, raw JSON ({"key": ..., ["item", ...), a raw ISO moment (2026-12-01T10:00...).
LEAKS = re.compile(
    r'\b(undefined|null|NaN|Invalid Date|[A-Z]\w*(Error|Exception))\b|\[object Object\]|[{\[]\s*"|\d{4}-\d{2}-\d{2}T\d{2}:\d{2}'
)

# Every control labelled, every image described, every button named, one h1; and what a screen reader
# reads out (alt, aria-label, title, SVG titles) alongside what is visible.
READ_PAGE = """() => {
    const problems = [];
    for (const c of document.querySelectorAll('input, select, textarea')) {
        if (c.type !== 'hidden' && !c.labels.length && !c.getAttribute('aria-label') && !c.getAttribute('aria-labelledby')) {
            problems.push(`unlabelled control ${c.id || c.name || c.type}`);
        }
    }
    for (const i of document.querySelectorAll('img')) if (!(i.getAttribute('alt') || '').trim()) problems.push(`image without alt ${i.src}`);
    for (const s of document.querySelectorAll('svg[role=img]')) {
        if (!s.getAttribute('aria-label') && !s.getAttribute('aria-labelledby')) problems.push('svg image without a name');
    }
    for (const b of document.querySelectorAll('button, a')) {
        if (!b.textContent.trim() && !b.getAttribute('aria-label')) problems.push(`nameless ${b.tagName.toLowerCase()} ${b.id}`);
    }
    const h1 = document.querySelectorAll('h1').length;
    if (h1 !== 1) problems.push(`${h1} h1 elements`);
    const spoken = [];
    for (const n of document.querySelectorAll('[alt], [aria-label], [title]')) {
        spoken.push(n.getAttribute('alt') || '', n.getAttribute('aria-label') || '', n.getAttribute('title') || '');
    }
    for (const t of document.querySelectorAll('svg title')) spoken.push(t.textContent);
    return {problems, text: document.body.innerText, spoken: spoken.filter(Boolean).join('\\n')};
}"""


@dataclass
class Gallery:
    server: Server
    faceless: Path
    not_a_photo: Path
    client_secret: Path


@pytest.fixture(scope="module")
def gallery(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Gallery:  # noqa: F811
    """The console test's gallery (three subjects), plus a standing possible match by the second searcher (so
    the first may confirm it), a subject with no face for the enroller to erase, two files a person may pick
    by mistake (a photo with no face, a text file named like a photo) and a provider's client secret file."""
    with httpx.Client(base_url=server.url, timeout=60) as client:
        probe = server.photos[OTHERS[0]][1]
        found = client.post("/v1/search", headers={"Authorization": f"Bearer {server.keys['searcher2']}"},
                            files={"image": (probe.name, probe.read_bytes(), "image/jpeg")},
                            data={"purpose": "sweep", "case_reference": "SWEEP-1"})
        assert found.status_code == 200, found.text
        result = found.json()
        top = result["candidates"][0]
        review = client.post("/v1/reviews", headers={"Authorization": f"Bearer {server.keys['searcher2']}"}, json={
            "search_id": result["search_id"], "subject_id": top["subject_id"], "face_id": top["face_id"],
            "review_token": top["review_token"], "outcome": "possible_match", "note": "Same jaw line."})
        assert review.status_code == 201, review.text
        erasable = client.post("/v1/subjects", headers={"Authorization": f"Bearer {server.keys['enroller']}"}, json={
            "display_name": ERASABLE,
            "consent": {"basis": "employment", "reference": "HR-9", "given_at": "2026-02-03T00:00:00Z"}})
        assert erasable.status_code == 201, erasable.text
    files = tmp_path_factory.mktemp("picked")
    (files / "wall.jpg").write_bytes(jpeg(np.full((240, 320, 3), 128, dtype=np.uint8)))
    (files / "notes.jpg").write_text("not a photo")
    (files / "client-secret.txt").write_text("s3cret-of-the-provider\n")
    return Gallery(server, files / "wall.jpg", files / "notes.jpg", files / "client-secret.txt")


class Recorder:
    """What one page's scripts did: JavaScript errors, console errors (CSP violations among them), responses."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.errors: list[str] = []
        self.responses: list[tuple[int, str, str]] = []
        page.on("pageerror", lambda error: self.errors.append(f"JavaScript error: {error}"))
        # A failed request is also logged as "Failed to load resource": the responses say whether it was expected.
        page.on("console", lambda m: self.errors.append(f"console {m.type}: {m.text}")
                if m.type == "error" and not m.text.startswith("Failed to load resource") else None)
        page.on("response", lambda r: self.responses.append((r.status, r.request.method, r.url)))

    def sweep(self, what: str, expected: dict[tuple[int, str], str] | None = None) -> None:
        """Check the page as it stands and what it did since the last sweep, then forget that. ``expected``
        maps a (status, path) the page may be answered to the sentence it must then show."""
        self.page.wait_for_load_state("networkidle")
        seen = self.page.evaluate(READ_PAGE)
        failures = [f"{what}: {p}" for p in seen["problems"]] + [f"{what}: {e}" for e in self.errors]
        for status, method, url in self.responses:
            path = httpx.URL(url).path
            if status >= 500:
                failures.append(f"{what}: {method} {path} answered {status}")
            elif status >= 400:
                sentence = (expected or {}).get((status, path))
                if sentence is None:
                    failures.append(f"{what}: {method} {path} answered {status}, which the page does not expect")
                elif sentence not in seen["text"]:
                    failures.append(f"{what}: {method} {path} answered {status} and the page does not say {sentence!r}")
        for where, text in (("visible text", seen["text"]), ("accessible names", seen["spoken"])):
            for leak in LEAKS.finditer(text):
                start = max(0, leak.start() - 60)
                failures.append(f"{what}: {where} show {leak.group(0)!r} in …{text[start:leak.end() + 60]!r}…")
        self.errors.clear()
        self.responses.clear()
        assert failures == [], "\n".join(failures)


class Swept(Person):
    """A person whose page is recorded from before it signs in."""

    def watch(self) -> None:
        self.recorder = Recorder(self.page)

    def sweep(self, what: str, expected: dict[tuple[int, str], str] | None = None) -> None:
        self.recorder.sweep(what, expected)


def on_search(person: Swept, gallery: Gallery) -> None:
    page = person.page
    page.locator("#probe").set_input_files(str(gallery.not_a_photo))
    refused = "That file is not a JPEG, PNG or WebP photo."
    page.locator("#probe-status", has_text=refused).wait_for()
    person.sweep("search, a file that is not a photo", {(415, "/v1/detect"): refused})
    search(page, gallery.server.photos[OTHERS[1]][1])
    top = page.locator("article.candidate").first
    top.locator("img.face-img").wait_for()
    top.get_by_label("Possible match").check()
    top.get_by_label("Note (why)").fill("Nose bridge and hairline agree.")
    top.get_by_role("button", name="Record review").click()
    top.get_by_text("Recorded: Possible match.").wait_for()


def on_review(person: Swept, gallery: Gallery) -> None:
    page = person.page
    card = page.locator("article.candidate", has=page.get_by_label("Confirm the match").and_(page.locator(":enabled"))).first
    note = card.get_by_label("Note (why)")
    note.fill("Agree: jaw line and ears.")
    # Picking the probe photo, or looking at another list and back, keeps the note being written.
    page.get_by_label("Compare with the probe photo (optional)").set_input_files(str(gallery.server.photos[OTHERS[0]][1]))
    page.get_by_role("img", name="Probe photo (local)").first.wait_for()
    assert note.input_value() == "Agree: jaw line and ears."
    drawn = note.element_handle()
    page.get_by_label("Show").select_option("")
    page.get_by_label("Show").select_option("possible_match")
    page.wait_for_function("old => !old.isConnected", arg=drawn)  # the list was drawn again
    page.get_by_role("img", name="Probe photo (local)").first.wait_for()  # still beside each candidate
    assert note.input_value() == "Agree: jaw line and ears."
    card.get_by_label("Confirm the match").check()
    card.get_by_role("button", name="Record step").click()
    page.get_by_text(": Confirmed by two reviewers.").wait_for()
    page.get_by_label("Show").select_option("")
    page.locator("article.candidate .badge", has_text="Confirmed by two reviewers").first.wait_for()


def on_enroll(person: Swept, gallery: Gallery) -> None:
    page = person.page
    name = OTHERS[2].replace("_", " ") + " (second record)"
    page.get_by_label("Name, as reviewers will see it").fill(name)
    page.get_by_label("Lawful basis").select_option("legal_claims")
    page.get_by_label("Reference of the record").fill("LC-17")
    page.get_by_label("Given on").fill("2026-01-15")
    page.get_by_role("button", name="Create subject").click()
    page.get_by_text(f"Subject created: {name}").wait_for()
    page.locator("#photo-files").set_input_files([str(gallery.server.photos[OTHERS[2]][1]), str(gallery.faceless)])
    page.locator(".verdict", has_text="Refused: ").wait_for()
    page.get_by_role("button", name="Enroll 1 ready photo").click()
    page.get_by_text("Done: 1 enrolled.").wait_for()
    person.sweep("enroll, one photo enrolled and one refused")
    page.get_by_role("link", name="Open in Subjects").click()
    page.locator("#detail-title", has_text=name).wait_for()


def on_subjects(person: Swept, gallery: Gallery) -> None:
    page = person.page
    page.get_by_role("button", name="Find").click()
    name = OTHERS[0].replace("_", " ")
    page.get_by_role("button", name=f"Open {name}").click()
    page.locator("#face-rows code").first.wait_for()
    person.sweep("subjects, a subject opened")
    page.get_by_role("link", name="Add photos").click()
    page.locator("#subject-name", has_text=name).wait_for()
    person.sweep("subjects, Add photos followed")
    page = person.go("subjects")
    page.get_by_role("button", name=f"Open {ERASABLE}").click()
    page.locator("#detail-title", has_text=ERASABLE).wait_for()
    page.get_by_role("button", name="Erase subject…").click()
    page.locator("#erase-dialog").get_by_role("button", name="Erase permanently").click()
    page.get_by_text(f"{ERASABLE} was erased: 0 face(s) removed.").wait_for()
    # Nothing is offered for a subject that is gone: no photos to add to it, nothing left to erase.
    offered = page.locator("#detail").locator("a:visible, button:visible:enabled").all_inner_texts()
    assert offered == [], offered


def on_audit(person: Swept, gallery: Gallery) -> None:
    page = person.page
    page.get_by_text("Audit chain verified").wait_for()
    page.locator("#timeline li").first.wait_for()
    person.sweep("audit, the newest entries")
    page.get_by_label("Action").fill("search")
    page.get_by_role("button", name="Show entries").click()
    page.get_by_text(re.compile(r"^\(\d+ entr(y|ies), newest first\)$")).wait_for()
    with page.expect_download():
        page.get_by_role("button", name="Export CSV").click()
    page.get_by_text(re.compile(r"^Exported \d+ entr")).wait_for()


def on_usage(person: Swept, gallery: Gallery) -> None:
    page = person.page
    page.locator("#totals", has_text="Subjects").wait_for()
    page.locator("#chart svg, #chart p").first.wait_for()


def on_keys(person: Swept, gallery: Gallery) -> None:
    page = person.page
    page.locator("#key-rows tr").first.wait_for()
    page.locator("#model-card dd").first.wait_for()
    assert "calibrated on 1,041,732 impostor" in page.locator("#model-card").inner_text()  # the bundled table's size
    person.sweep("keys, the list and the model")
    page.get_by_label("Role").select_option("searcher")
    page.get_by_label("Label").fill("sweep desk")
    page.get_by_label("Expires on (optional)").fill("2031-05-04")  # a moment in the audit entry's details
    page.get_by_role("button", name="Create key").click()
    secret = page.locator("#secret")
    secret.wait_for()
    key_id = secret.inner_text().split("_")[1]
    page.once("dialog", lambda d: d.accept())
    page.get_by_role("button", name=f"Revoke sweep desk ({key_id})").click()
    page.get_by_text(f"Key {key_id} revoked.").wait_for()
    page.get_by_role("button", name="Save settings").click()
    page.get_by_text("Thumbnails are on.").wait_for()
    person.sweep("keys, a key created and revoked, the settings saved")
    page = person.go("audit")  # the settings change, as the timeline reads it
    page.get_by_label("Action").fill("settings.update")
    page.get_by_role("button", name="Show entries").click()
    saved = page.locator("#timeline li", has_text="settings.update").first
    saved.wait_for()
    assert "thumbnails: yes · thumbnails_deleted: 0" in saved.inner_text()
    page.get_by_label("Action").fill("key.create")
    page.get_by_role("button", name="Show entries").click()
    created = page.locator("#timeline li", has_text=f"key_id: {key_id}").first
    created.wait_for()
    assert "expires_at: " in created.inner_text()
    person.sweep("audit, a key's expiry among the details")  # shown in local time, not as a raw ISO moment
    page = person.go("keys")
    page.locator("#model-card dd").first.wait_for()
    # A provider that cannot be reached (nothing listens there): the admin is told why, in words.
    page.get_by_label("Issuer URL").fill(f"https://127.0.0.1:{free_port()}")
    page.get_by_label("Client id").fill("faceward-console")
    page.get_by_label("Client secret file").set_input_files(str(gallery.client_secret))
    page.get_by_label(re.compile("^Claim mapping")).fill("faceward-searchers=searcher")
    page.get_by_role("button", name="Connect provider").click()
    refused = "Cannot use this provider: the identity provider could not be reached"
    page.locator("#provider-message", has_text=refused).wait_for()
    person.sweep("keys, a provider that cannot be reached", {(422, "/v1/tenant/sign-in"): refused})


ACTIONS: dict[str, Callable[[Swept, Gallery], None]] = {
    "search": on_search, "review": on_review, "enroll": on_enroll, "subjects": on_subjects,
    "audit": on_audit, "usage": on_usage, "keys": on_keys,
}


@pytest.fixture()
def signed_in(browser: Any, gallery: Gallery, request: pytest.FixtureRequest) -> Iterator[Swept]:  # noqa: F811
    person = Swept(browser, gallery.server, gallery.server.keys[request.param])
    yield person
    person.close()


@pytest.mark.parametrize("signed_in", list(NAVIGATION), indirect=True, ids=list(NAVIGATION))
def test_every_page_of_a_role(signed_in: Swept, gallery: Gallery) -> None:
    person = signed_in
    role = person.page.locator("#role").inner_text()
    # The sign-in page's 401 from /console/session is its "not signed in yet" (test_sign_in_page checks that page).
    person.sweep(f"{role}: signed in, on the first page", {(401, "/console/session"): ""})
    nav = person.page.get_by_role("navigation")
    offered = [href.rsplit("/", 1)[1] for href in nav.get_by_role("link").evaluate_all("as => as.map((a) => a.href)")]
    assert offered == NAVIGATION[role]
    for name in offered:
        nav.get_by_role("link", name=name.capitalize()).click()
        person.page.wait_for_url(f"**/console/{name}")
        person.page.locator("#content").wait_for()
        person.sweep(f"{role}: {name}, opened")
        ACTIONS[name](person, gallery)
        person.sweep(f"{role}: {name}, after its action")
    # A page the role may not use says so, and asks the API for nothing the role would be refused.
    for name in sorted(set(ACTIONS) - set(offered)):
        page = person.go(name)
        page.get_by_text(f"Your key's role ({role}) cannot use this page.").wait_for()
        person.sweep(f"{role}: {name}, closed to this role")
    person.page.get_by_role("button", name="Sign out").click()
    person.page.wait_for_url(f"{gallery.server.url}/console/")
    person.page.get_by_label("API key").wait_for()
    person.sweep(f"{role}: signed out", {(401, "/console/session"): "Use your faceward API key"})


def test_sign_in_page(browser: Any, gallery: Gallery) -> None:  # noqa: F811
    context = browser.new_context()
    page = context.new_page()
    recorder = Recorder(page)
    page.goto(f"{gallery.server.url}/console/")
    page.get_by_label("API key").wait_for()
    # Asking whether a session is open is how the page decides to show the form: 401 is its "no".
    recorder.sweep("sign-in page", {(401, "/console/session"): "Use your faceward API key"})
    page.get_by_label("API key").fill("fw_nobody_0000")
    page.get_by_role("button", name="Sign in").click()
    sentence = "That API key was not accepted: it is unknown, revoked or expired."
    page.get_by_text(sentence).wait_for()
    recorder.sweep("sign-in page, a wrong key", {(401, "/console/session"): sentence})
    context.close()
