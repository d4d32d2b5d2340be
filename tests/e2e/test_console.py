"""The web console in a real browser (Debian's headless Chromium through Playwright) against a real
``uvicorn`` server on 127.0.0.1 over a temporary FACEWARD_HOME, with lfw-dev photos.

One journey: an enroller creates a subject with a consent record (the form refuses to go without one)
and two photos; a searcher searches with a third photo and finds that subject first, and marks it a
possible match; a second searcher (another key) confirms it; the enroller erases the subject and the
search no longer returns it; an auditor finds every step in the audit timeline, with the chain verified.
Then the pages and the API refuse what a role may not do. Screenshots of the search and review pages
go to ``docs/`` (committed) when ``FACEWARD_UPDATE_SCREENSHOTS=1``.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import own_model_manifest
from tests.e2e.console_rig import TIMEOUT_MS, chromium, needs_chromium, serving

# Screenshots land in docs/ (committed) when FACEWARD_UPDATE_SCREENSHOTS=1, else in a temp folder,
# so an ordinary test run leaves the working tree clean.
DOCS = (
    Path(__file__).resolve().parents[2] / "docs"
    if os.environ.get("FACEWARD_UPDATE_SCREENSHOTS") == "1"
    else Path(tempfile.gettempdir()) / "faceward-screenshots"
)
DOCS.mkdir(parents=True, exist_ok=True)
PERSON = "Angela_Bassett"
OTHERS = ["Abel_Pacheco", "Anders_Fogh_Rasmussen", "Amelia_Vega"]

playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[test]')")
pytestmark = needs_chromium


@dataclass
class Server:
    url: str
    keys: dict[str, str] = field(default_factory=dict)
    photos: dict[str, list[Path]] = field(default_factory=dict)


def server_env(home: Path, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACEWARD_")}
    env.update(FACEWARD_HOME=str(home), FACEWARD_MASTER_KEY=base64.b64encode(os.urandom(32)).decode(),
               FACEWARD_RATE_PER_MINUTE="100000", FACEWARD_RATE_BURST="10000", **settings)
    return env


def tenant_keys(env: dict[str, str]) -> dict[str, str]:
    """A tenant and its keys, made the operator's way, before the server starts."""
    made = subprocess.run(
        [sys.executable, "-c", (
            "import json; from faceward.bootstrap import open_accounts; from faceward.settings import load_settings\n"
            "a = open_accounts(load_settings()); t, admin = a.create_tenant('Console Test Org')\n"
            "keys = {'admin': admin}\n"
            "for name, role in [('enroller', 'enroller'), ('searcher', 'searcher'), ('searcher2', 'searcher'), ('auditor', 'auditor')]:\n"
            "    keys[name] = a.create_key(t, role, name, None, actor='operator', source='test')[1]\n"
            "print(json.dumps(keys))"
        )],
        env=env, capture_output=True, text=True, timeout=120, check=True,
    )
    return dict(json.loads(made.stdout.strip().splitlines()[-1]))


@pytest.fixture(scope="module")
def server(lfw_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = server_env(tmp_path_factory.mktemp("console-home"))
    keys = tenant_keys(env)
    with serving(env) as url:
        photos = {p: sorted((lfw_dir / "images" / p).glob("*.jpg")) for p in [PERSON, *OTHERS]}
        # Other people in the gallery, so that "first" means something.
        enroller = {"Authorization": f"Bearer {keys['enroller']}"}
        with httpx.Client(base_url=url, headers=enroller, timeout=60) as client:
            for person in OTHERS:
                subject = client.post("/v1/subjects", json={
                    "display_name": person.replace("_", " "),
                    "consent": {"basis": "explicit_consent", "reference": f"F-{person[:3]}", "given_at": "2026-01-02T00:00:00Z"},
                })
                assert subject.status_code == 201, subject.text
                face = photos[person][0]
                enrolled = client.post(f"/v1/subjects/{subject.json()['id']}/faces",
                                       files={"image": (face.name, face.read_bytes(), "image/jpeg")})
                assert enrolled.status_code == 201, enrolled.text
        yield Server(url, keys, photos)


@pytest.fixture(scope="module")
def browser(server: Server) -> Iterator[Any]:
    with chromium(playwright_api) as launched:
        yield launched


class Person:
    """One person at one browser (a context of its own: its own cookies), signed in with one key."""

    def __init__(self, browser: Any, server: Server, key: str, *, width: int = 1280, timezone: str = "UTC") -> None:
        self.server = server
        self.context = browser.new_context(viewport={"width": width, "height": 900}, accept_downloads=True,
                                           timezone_id=timezone)
        self.context.set_default_timeout(TIMEOUT_MS)
        self.page = self.context.new_page()
        self.csp_violations: list[str] = []
        self.page.on("console", lambda m: self.csp_violations.append(m.text)
                     if "Content Security Policy" in m.text or "Refused to" in m.text else None)
        self.watch()
        self.page.goto(f"{server.url}/console/")
        self.page.get_by_label("API key").fill(key)
        self.page.get_by_role("button", name="Sign in").click()
        self.page.wait_for_url(f"{server.url}/console/*")
        self.page.locator("#role").wait_for()

    def watch(self) -> None:
        """Called once the page exists, before it signs in: a subclass adds its own listeners here."""

    def go(self, page: str) -> Any:
        self.page.goto(f"{self.server.url}/console/{page}")
        self.page.locator("#role").wait_for()
        return self.page

    def fetch(self, method: str, path: str, body: dict[str, Any] | None = None) -> int:
        """A request from the page's own scripts: the session cookie and the CSRF token, nothing else."""
        return int(self.page.evaluate(
            """async ([method, path, body]) => {
                const token = document.cookie.split('; ').find((c) => c.startsWith('fw_csrf=')).slice(8);
                const r = await fetch(path, {method, headers: {'Content-Type': 'application/json', 'X-CSRF-Token': token},
                                             body: body ? JSON.stringify(body) : undefined});
                return r.status;
            }""",
            [method, path, body],
        ))

    def check_page(self) -> None:
        """Every form control has a label, every button a name, and nothing is wider than the window."""
        problems = self.page.evaluate(
            """() => {
                const out = [];
                for (const c of document.querySelectorAll('input, select, textarea')) {
                    if (c.type !== 'hidden' && !c.labels.length && !c.getAttribute('aria-label')) out.push(`unlabelled ${c.id || c.name}`);
                }
                for (const b of document.querySelectorAll('button')) if (!b.textContent.trim() && !b.getAttribute('aria-label')) out.push('nameless button');
                if (document.documentElement.scrollWidth > window.innerWidth + 1) out.push(`page ${document.documentElement.scrollWidth}px wide`);
                return out;
            }"""
        )
        assert problems == [], (self.page.url, problems)

    def close(self) -> None:
        assert self.csp_violations == []
        self.context.close()


def search(page: Any, photo: Path) -> None:
    page.locator("#probe").set_input_files(str(photo))
    # YuNet also finds small background faces in some LFW photos; the largest face is chosen first.
    page.get_by_text(re.compile(r"^(1 face found\.|\d+ faces found\.)")).wait_for()
    page.get_by_label("Purpose of this search").fill("identify a witness from CCTV still")
    page.get_by_label("Case reference").fill("CASE-2026-042")
    page.get_by_role("button", name="Search", exact=True).click()
    page.locator("#results").wait_for(state="visible")


def blurred_copy(photo: Path) -> Path:
    from PIL import Image, ImageFilter

    out = Path(tempfile.mkdtemp()) / f"blurred-{photo.name}"
    Image.open(photo).filter(ImageFilter.GaussianBlur(3)).save(out, format="JPEG", quality=95)
    return out


def test_enroll_search_review_erase_audit(browser: Any, server: Server) -> None:
    name = PERSON.replace("_", " ")
    photos = server.photos[PERSON]

    # -- the enroller: a subject with consent (the form will not go without one) and two photos --------
    enroller = Person(browser, server, server.keys["enroller"])
    page = enroller.page
    assert page.url.endswith("/console/enroll")
    page.get_by_label("Name, as reviewers will see it").fill(name)
    page.get_by_role("button", name="Create subject").click()
    page.get_by_text("Nobody is enrolled without one").wait_for()
    assert page.locator("#photos").is_hidden()
    page.get_by_label("Lawful basis").select_option("explicit_consent")
    page.get_by_label("Reference of the record").fill("FORM-7731")
    page.get_by_label("Given on").fill("2026-03-01")
    page.get_by_role("button", name="Create subject").click()
    page.get_by_text(f"Subject created: {name}").wait_for()
    page.locator("#photo-files").set_input_files([str(photos[0]), str(photos[1])])
    page.get_by_role("button", name="Enroll 2 ready photos").wait_for()
    assert page.locator(".stage rect").count() == 2  # each photo's face boxed before it is saved
    assert page.locator(".verdict", has_text="Ready to enroll").count() == 2
    enroller.check_page()
    page.get_by_role("button", name="Enroll 2 ready photos").click()
    page.get_by_text("Done: 2 enrolled.").wait_for()
    assert page.locator("#enroll-progress").get_attribute("value") == "2"
    # A blurred photo is enrolled (decision 037), and the console says what it costs.
    page.locator("#photo-files").set_input_files([str(blurred_copy(photos[1]))])
    page.get_by_role("button", name="Enroll 1 ready photo").click()
    page.get_by_text("Done: 1 enrolled.").wait_for()
    assert "Enrolled. Enrolled, but face is blurred" in page.locator(".verdict.warn").inner_text()

    # -- searcher A: the third photo finds the subject first; "possible match" ----------------------------
    first = Person(browser, server, server.keys["searcher"])
    page = first.page
    assert page.url.endswith("/console/search")
    search(page, photos[2])
    top = page.locator("article.candidate").first
    assert top.locator("h3").inner_text() == f"#1 {name}"
    assert "lead, not an identification" in page.locator("#result-warning").inner_text()
    assert "(false match rate " in page.locator("#result-notes").inner_text()  # the bundled model is calibrated
    thumb = top.locator("img.face-img")
    thumb.wait_for()
    page.wait_for_function("img => img.complete && img.naturalWidth === 150", arg=thumb.element_handle())
    assert "about 1 in" in top.inner_text() and "Lead: above the decision threshold" in top.inner_text()
    top.get_by_label("Possible match").check()
    top.get_by_label("Note (why)").fill("Same scar above the left eyebrow; ear shape agrees.")
    top.get_by_role("button", name="Record review").click()
    top.get_by_text("Recorded: Possible match.").wait_for()
    first.check_page()
    DOCS.mkdir(exist_ok=True)
    page.screenshot(path=str(DOCS / "console-search.jpg"), type="jpeg", quality=60, full_page=True)

    # The same key cannot also confirm it: the review page says so and the API refuses.
    page = first.go("review")
    card = page.locator("article.candidate", has_text=name)
    card.get_by_text("a second reviewer (another person or key) must confirm it").wait_for()
    assert card.get_by_label("Confirm the match").is_disabled()

    # -- searcher B (another key) confirms --------------------------------------------------------------
    second = Person(browser, server, server.keys["searcher2"])
    page = second.go("review")
    card = page.locator("article.candidate", has_text=name)
    card.get_by_label("Confirm the match").check()
    card.get_by_label("Note (why)").fill("Agree: scar and ear shape match; independent comparison.")
    card.get_by_role("button", name="Record step").click()
    page.get_by_text(f"{name}: Confirmed by two reviewers.").wait_for()
    page.get_by_label("Show").select_option("confirmed")
    confirmed = page.locator("article.candidate", has_text=name)
    confirmed.locator(".badge", has_text="Confirmed by two reviewers").wait_for()
    assert confirmed.locator(".steps li").count() == 2
    second.check_page()
    page.screenshot(path=str(DOCS / "console-review.jpg"), type="jpeg", quality=60, full_page=True)

    # -- the enroller erases the subject ------------------------------------------------------------------
    page = enroller.go("subjects")
    page.get_by_label("Find by name").fill("bassett")
    page.get_by_role("button", name="Find").click()
    page.get_by_role("button", name=f"Open {name}").click()
    page.locator("#detail-figures", has_text="FORM-7731").wait_for()
    enroller.check_page()
    page.get_by_role("button", name="Erase subject…").click()
    dialog = page.locator("#erase-dialog")
    assert "every enrolled face template (3 faces)" in dialog.inner_text()
    assert "cannot be undone" in dialog.inner_text()
    dialog.get_by_role("button", name="Erase permanently").click()
    page.get_by_text(f"{name} was erased: 3 face(s) removed.").wait_for()

    # -- searcher A again: the subject is gone from the results -------------------------------------------
    page = first.go("search")
    search(page, photos[2])
    names = page.locator("article.candidate h3").all_inner_texts()
    assert names and not any(name in n for n in names)

    # -- the auditor: every step in the timeline, the chain intact, an export -----------------------------
    auditor = Person(browser, server, server.keys["auditor"])
    page = auditor.page
    assert page.url.endswith("/console/audit")
    page.get_by_text("Audit chain verified").wait_for()
    page.locator("#timeline li").first.wait_for()
    auditor.check_page()
    timeline = page.locator("#timeline").inner_text()
    for action in ("console.sign_in", "subject.create", "face.enroll", "detect", "search", "review", "face.thumbnail",
                   "subject.erase"):
        assert action in timeline, action
    page.get_by_label("Action").fill("review")
    page.get_by_role("button", name="Show entries").click()
    page.get_by_text("(2 entries, newest first)").wait_for()
    outcomes = page.locator("#timeline .details").all_inner_texts()
    assert "outcome: confirmed" in outcomes[0] and "outcome: possible_match" in outcomes[1]
    with page.expect_download() as download:
        page.get_by_role("button", name="Export JSON").click()
    exported = json.loads(Path(download.value.path()).read_text())
    assert [e["details"]["outcome"] for e in exported] == ["possible_match", "confirmed"]
    assert "Same scar" not in json.dumps(exported)  # notes never reach the audit log

    for person in (enroller, first, second, auditor):
        person.close()
    for shot in ("console-search.jpg", "console-review.jpg"):
        assert (DOCS / shot).stat().st_size < 300_000, shot


def test_keyboard_sign_in_and_a_phone_width(browser: Any, server: Server) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    page.goto(f"{server.url}/console/")
    for _ in range(5):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "api-key":
            break
    assert page.evaluate("document.activeElement.id") == "api-key"
    page.keyboard.type(server.keys["searcher"])
    page.keyboard.press("Enter")
    page.wait_for_url(f"{server.url}/console/search")
    context.close()
    searcher = Person(browser, server, server.keys["searcher"], width=390)  # a phone's width
    searcher.check_page()
    search(searcher.page, server.photos[OTHERS[0]][1])
    searcher.page.locator("article.candidate").first.wait_for()
    searcher.check_page()
    searcher.go("review")
    searcher.check_page()
    searcher.close()


def test_roles_limit_pages_and_api(browser: Any, server: Server) -> None:
    searcher = Person(browser, server, server.keys["searcher"])
    nav = searcher.page.locator("#nav").inner_text()
    assert "Search" in nav and "Review" in nav and "Enroll" not in nav and "Keys" not in nav
    for closed in ("enroll", "keys", "subjects", "audit"):
        page = searcher.go(closed)
        page.get_by_text("Your key's role (searcher) cannot use this page.").wait_for()
        assert page.locator("#content").is_hidden()
    consent = {"basis": "explicit_consent", "reference": "F-1", "given_at": "2026-01-01T00:00:00Z"}
    assert searcher.fetch("POST", "/v1/subjects", {"display_name": "Nope", "consent": consent}) == 403
    assert searcher.fetch("GET", "/v1/keys") == 403
    assert searcher.fetch("POST", "/v1/keys", {"role": "admin", "label": "escalate"}) == 403

    auditor = Person(browser, server, server.keys["auditor"])
    assert "Search" not in auditor.page.locator("#nav").inner_text()
    page = auditor.go("search")
    page.get_by_text("Your key's role (auditor) cannot use this page.").wait_for()
    assert page.locator("#search-form").is_hidden()
    status = auditor.page.evaluate(
        """async () => {
            const token = document.cookie.split('; ').find((c) => c.startsWith('fw_csrf=')).slice(8);
            const form = new FormData();
            form.append('image', new Blob([new Uint8Array([255, 216, 255])], {type: 'image/jpeg'}), 'p.jpg');
            form.append('purpose', 'x');
            form.append('case_reference', 'y');
            return (await fetch('/v1/search', {method: 'POST', body: form, headers: {'X-CSRF-Token': token}})).status;
        }"""
    )
    assert status == 403

    # Sign out ends the session: the API refuses the cookie, the pages send you to sign in.
    page = auditor.go("audit")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{server.url}/console/")
    assert page.evaluate("fetch('/v1/audit').then((r) => r.status)") == 401
    assert page.evaluate("fetch('/console/session').then((r) => r.status)") == 401
    page.goto(f"{server.url}/console/audit")
    page.wait_for_url(f"{server.url}/console/?next=%2Fconsole%2Faudit")
    for person in (searcher, auditor):
        person.close()


def test_admin_creates_and_revokes_a_key(browser: Any, server: Server) -> None:
    admin = Person(browser, server, server.keys["admin"])
    assert admin.page.url.endswith("/console/audit")  # the first page an admin may use
    page = admin.go("usage")
    page.locator("#totals", has_text="Subjects").wait_for()
    page.locator("#chart svg, #chart p").first.wait_for()
    page = admin.go("keys")
    page.get_by_label("Role").select_option("auditor")
    page.get_by_label("Label").fill("external auditor 2027")
    page.get_by_label("Expires on (optional)").fill("2030-12-31")
    page.get_by_role("button", name="Create key").click()
    page.get_by_text("it is shown once and cannot be shown again").wait_for()
    secret = page.locator("#secret").inner_text()
    assert secret.startswith("fw_")
    key_id = secret.split("_")[1]
    page.once("dialog", lambda d: d.accept())
    page.get_by_role("button", name=f"Revoke external auditor 2027 ({key_id})").click()
    page.get_by_text(f"Key {key_id} revoked.").wait_for()
    assert httpx.get(f"{server.url}/v1/audit", headers={"Authorization": f"Bearer {secret}"}).status_code == 401
    admin.close()



def test_an_uncalibrated_models_threshold_claims_no_false_match_rate(
    browser: Any, lfw_dir: Path, tmp_path: Path,
) -> None:
    # A model of one's own, not yet calibrated: its threshold is its manifest's, and no rate was measured.
    env = server_env(tmp_path / "home", FACEWARD_RECOGNIZER_MANIFEST=str(own_model_manifest(tmp_path / "model")))
    keys = tenant_keys(env)
    with serving(env) as url:
        searcher = Person(browser, Server(url, keys), keys["searcher"])
        search(searcher.page, sorted((lfw_dir / "images" / PERSON).glob("*.jpg"))[0])
        notes = searcher.page.locator("#result-notes").inner_text()
        assert "this model is not calibrated, so no false match rate is known" in notes
        assert "(false match rate " not in notes
        searcher.close()


@pytest.mark.parametrize("timezone", ["America/Los_Angeles", "Asia/Tokyo"])
def test_consent_days_read_as_entered_in_any_time_zone(browser: Any, server: Server, timezone: str) -> None:
    # Given on 1 March, expires on 28 February: stored at midnight and at 23:59:59 UTC of those days.
    enroller = {"Authorization": f"Bearer {server.keys['enroller']}"}
    made = httpx.post(f"{server.url}/v1/subjects", headers=enroller, timeout=30, json={
        "display_name": f"Consent Days {timezone.split('/')[1]}",
        "consent": {"basis": "explicit_consent", "reference": "F-DAYS", "given_at": "2026-03-01T00:00:00Z",
                    "expires_at": "2027-02-28T23:59:59Z"},
    })
    assert made.status_code == 201, made.text
    person = Person(browser, server, server.keys["enroller"], timezone=timezone)
    person.go(f"subjects?subject={made.json()['id']}")
    figures = person.page.locator("#detail-figures", has_text="F-DAYS")
    figures.wait_for()
    assert "Given2026-03-01" in figures.inner_text().replace("\n", "").replace("\t", "")
    assert "Expires2027-02-28" in figures.inner_text().replace("\n", "").replace("\t", "")
    person.close()


def test_a_photo_on_its_side_is_searched_and_shown_upright(browser: Any, server: Server, tmp_path: Path) -> None:
    # A scan lying on its side with no EXIF orientation (PIL's transpose writes none).
    from PIL import Image

    sideways = tmp_path / "sideways.jpg"
    with Image.open(server.photos[OTHERS[0]][1]) as photo:
        photo.transpose(Image.Transpose.ROTATE_90).save(sideways, quality=92)
    searcher = Person(browser, server, server.keys["searcher"])
    page = searcher.page
    search(page, sideways)
    assert "lies on its side: its faces were found with it turned 90° clockwise" in page.locator("#probe-status").inner_text()
    assert "lies on its side" in page.locator("#result-notes").inner_text()
    top = page.locator("article.candidate").first
    assert top.locator("h3").inner_text() == f"#1 {OTHERS[0].replace('_', ' ')}"
    # The probe's crop is drawn upright: the photo turned about the face's centre.
    assert (top.locator("svg.face-crop g").get_attribute("transform") or "").startswith("rotate(90 ")
    searcher.check_page()
    searcher.close()
