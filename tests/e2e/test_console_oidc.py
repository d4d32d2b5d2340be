"""Console sign-in through the organisation's OpenID Connect provider, in a real browser (Debian's headless
Chromium through Playwright), against a real ``uvicorn`` server and real providers on loopback
(``oidc-provider-mock``, started once per session: see ``conftest.py``).

Tenant A's admin connects its provider in the console (signed in with the admin key), tenant B's
through the CLI (the host's operator), tenant C's through the API. In A, two different people sign in at A's sign-in page
(``/console/login/<opaque id>``); Alice searches and marks a possible match, a second session of Alice
cannot confirm it, Bob confirms it, and Carol (an auditor by group) finds both people named in the
audit timeline. Then each failure case is refused with a page that says why, and audited in its
tenant's chain: a replayed state, a person with no mapped group (A), an expired ID token (B's provider
issues only those), an ID token for another application (C's provider answers as another client).
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
from tests.e2e.console_rig import TIMEOUT_MS, chromium, needs_chromium, serving
from tests.oidc_providers import Providers

PERSON = "Angela_Bassett"
OTHER = "Abel_Pacheco"
SHOTS = Path(tempfile.gettempdir()) / "faceward-screenshots"  # for a person to look at; never committed
ROLES = [{"value": "faceward-searchers", "role": "searcher"}, {"value": "faceward-auditors", "role": "auditor"}]

playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[test]')")
pytestmark = needs_chromium


@dataclass
class Server:
    url: str
    providers: Providers
    tenants: dict[str, str] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)
    login: dict[str, str] = field(default_factory=dict)  # tenant -> its sign-in path
    photos: list[Path] = field(default_factory=list)
    callbacks: list[str] = field(default_factory=list)  # provider redirects seen by the browser

    def admin(self, tenant: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[tenant + '-admin']}"}

    def audit(self, tenant: str, action: str) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.url}/v1/audit", params={"action": action, "limit": 100},
                             headers=self.admin(tenant), timeout=30)
        assert response.status_code == 200, response.text
        return list(response.json()["entries"])


@pytest.fixture(scope="module")
def server(lfw_dir: Path, oidc_providers: Providers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("oidc-home")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACEWARD_")}
    env.update(FACEWARD_HOME=str(home), FACEWARD_MASTER_KEY=base64.b64encode(os.urandom(32)).decode(),
               FACEWARD_RATE_PER_MINUTE="100000", FACEWARD_RATE_BURST="10000")
    made = subprocess.run(
        [sys.executable, "-c", (
            "import json; from faceward.bootstrap import open_accounts; from faceward.settings import load_settings\n"
            "a = open_accounts(load_settings()); out = {}\n"
            "for name in ('a', 'b', 'c'):\n"
            "    t, admin = a.create_tenant(f'OIDC Org {name}'); out[name] = t; out[name + '-admin'] = admin\n"
            "out['a-enroller'] = a.create_key(out['a'], 'enroller', 'enroller', None, actor='operator', source='test')[1]\n"
            "print(json.dumps(out))"
        )],
        env=env, capture_output=True, text=True, timeout=120, check=True,
    )
    made_ids = json.loads(made.stdout.strip().splitlines()[-1])
    secret = home / "client-secret"
    secret.write_text("b-client-secret\n")
    # Tenant B: the host's operator connects it with the CLI (the secret from a file).
    cli = subprocess.run(
        [sys.executable, "-m", "faceward.cli.main", "oidc", "connect", "--tenant", made_ids["b"],
         "--issuer", oidc_providers.expired, "--client-id", "faceward-b", "--client-secret-file", str(secret),
         "--map", "faceward-searchers=searcher", "--json"],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert cli.returncode == 0, cli.stderr
    shown = json.loads(cli.stdout)
    assert shown["client_secret"] == "**********" and "b-client-secret" not in cli.stdout
    with serving(env) as url:
        srv = Server(url, oidc_providers, tenants={k: v for k, v in made_ids.items() if "-" not in k},
                     keys={k: v for k, v in made_ids.items() if "-" in k}, login={"b": shown["login_path"]})
        # Tenant C: a tenant admin connects the provider through the API (A's admin uses the console, below).
        for tenant, issuer in (("c", oidc_providers.other_audience),):
            connected = httpx.put(f"{url}/v1/tenant/sign-in", headers=srv.admin(tenant), timeout=30, json={
                "issuer": issuer, "client_id": f"faceward-{tenant}", "client_secret": f"{tenant}-client-secret",
                "roles": ROLES})
            assert connected.status_code == 200, connected.text
            body = connected.json()["provider"]
            assert body["client_secret"] == "**********"
            srv.login[tenant] = body["login_path"]
        # Tenant A's gallery: the person to find, and someone else.
        photos = sorted((lfw_dir / "images" / PERSON).glob("*.jpg"))
        enroller = {"Authorization": f"Bearer {srv.keys['a-enroller']}"}
        with httpx.Client(base_url=url, headers=enroller, timeout=60) as client:
            for person, faces in ((PERSON, photos[:2]), (OTHER, sorted((lfw_dir / "images" / OTHER).glob("*.jpg"))[:1])):
                subject = client.post("/v1/subjects", json={
                    "display_name": person.replace("_", " "),
                    "consent": {"basis": "explicit_consent", "reference": f"F-{person[:3]}", "given_at": "2026-01-02T00:00:00Z"},
                })
                assert subject.status_code == 201, subject.text
                for face in faces:
                    enrolled = client.post(f"/v1/subjects/{subject.json()['id']}/faces",
                                           files={"image": (face.name, face.read_bytes(), "image/jpeg")})
                    assert enrolled.status_code == 201, enrolled.text
        srv.photos = photos
        yield srv


@pytest.fixture(scope="module")
def browser(server: Server) -> Iterator[Any]:
    with chromium(playwright_api) as launched:
        yield launched


class Browser:
    """One browser (a context of its own: its own cookies) of one person."""

    def __init__(self, browser: Any, server: Server) -> None:
        self.server = server
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        self.context.set_default_timeout(TIMEOUT_MS)
        self.page = self.context.new_page()
        self.csp_violations: list[str] = []
        self.page.on("console", lambda m: self.csp_violations.append(m.text)
                     if "Content Security Policy" in m.text or "Refused to" in m.text else None)
        self.page.on("request", lambda r: server.callbacks.append(r.url) if "/callback?" in r.url else None)

    def sign_in(self, tenant: str, sub: str) -> Any:
        """Open the tenant's sign-in page; at the provider, sign in as ``sub``; come back to the console."""
        page = self.page
        page.goto(self.server.url + self.server.login[tenant])
        page.locator("input[name=sub]").fill(sub)
        page.get_by_role("button", name="Authorize").click()
        page.wait_for_url(re.compile(r".*/console/(search|review|audit|enroll|keys|subjects|usage|login/.*)"))
        return page

    def go(self, name: str) -> Any:
        self.page.goto(f"{self.server.url}/console/{name}")
        self.page.locator("#role").wait_for()
        return self.page

    def close(self) -> None:
        assert self.csp_violations == []
        self.context.close()


def signed_in_admin(browser: Any, server: Server) -> Browser:
    """Tenant A's admin, signed in to the console with the admin key."""
    admin = Browser(browser, server)
    admin.page.goto(f"{server.url}/console/")
    admin.page.get_by_label("API key").fill(server.keys["a-admin"])
    admin.page.get_by_role("button", name="Sign in").click()
    admin.page.locator("#role").wait_for()
    return admin


def connect_in_the_console(browser: Any, server: Server, tmp_path: Path) -> None:
    """Tenant A's admin signs in with the admin key and connects the provider on the keys page."""
    admin = signed_in_admin(browser, server)
    page = admin.go("keys")
    page.get_by_text("Not connected: people sign in with API keys.").wait_for()  # written once provider.js is ready
    secret = tmp_path / "client-secret.txt"
    secret.write_text("a-client-secret\n")
    page.get_by_label("Issuer URL").fill(server.providers.main)
    page.get_by_label("Client id").fill("faceward-a")
    page.get_by_label("Client secret file").set_input_files(str(secret))
    page.get_by_label("Claim mapping").fill("faceward-searchers=searcher\nfaceward-auditors=auditor")
    page.get_by_role("button", name="Connect provider").click()
    page.get_by_text("Provider connected.").wait_for()
    login = page.locator("#provider-login").get_attribute("href")
    assert page.locator("#provider-redirect").inner_text() == f"{server.url}{login}/callback"
    assert "a-client-secret" not in page.content()
    SHOTS.mkdir(exist_ok=True)
    page.locator("#provider-form").screenshot(path=str(SHOTS / "console-oidc-provider.png"))
    server.login["a"] = str(login)
    assert len(set(server.login.values())) == 3 and all(re.fullmatch(r"/console/login/l_[0-9a-f]{32}", p)
                                                     for p in server.login.values())
    admin.close()


def test_two_people_sign_in_one_searches_both_review_the_timeline_names_both(
    browser: Any, server: Server, tmp_path: Path
) -> None:
    name = PERSON.replace("_", " ")
    issuer = server.providers.main
    connect_in_the_console(browser, server, tmp_path)

    # -- Alice: a searcher by group; she searches and marks a possible match --------------------------
    alice = Browser(browser, server)
    page = alice.sign_in("a", "alice")
    assert page.url.endswith("/console/search")
    assert page.locator("#person").inner_text() == "Alice Example" and page.locator("#role").inner_text() == "searcher"
    page.locator("#probe").set_input_files(str(server.photos[2]))
    page.get_by_text(re.compile(r"^(1 face found\.|\d+ faces found\.)")).wait_for()
    page.get_by_label("Purpose of this search").fill("identify a witness from CCTV still")
    page.get_by_label("Case reference").fill("CASE-2026-077")
    page.get_by_role("button", name="Search", exact=True).click()
    top = page.locator("article.candidate").first
    top.wait_for()
    assert top.locator("h3").inner_text() == f"#1 {name}"
    top.get_by_label("Possible match").check()
    top.get_by_label("Note (why)").fill("Same scar above the left eyebrow.")
    top.get_by_role("button", name="Record review").click()
    top.get_by_text("Recorded: Possible match.").wait_for()

    # -- Alice again, in another browser: a second session of the same person cannot confirm -----------
    again = Browser(browser, server)
    again.sign_in("a", "alice")
    page = again.go("review")
    card = page.locator("article.candidate", has_text=name)
    assert card.get_by_label("Confirm the match").is_disabled()
    refused = page.evaluate(
        """async () => {
            const token = document.cookie.split('; ').find((c) => c.startsWith('fw_csrf=')).slice(8);
            const listed = await (await fetch('/v1/reviews')).json();
            const c = listed.reviews[0];
            const r = await fetch('/v1/reviews', {method: 'POST', headers: {'Content-Type': 'application/json', 'X-CSRF-Token': token},
                body: JSON.stringify({search_id: c.search_id, subject_id: c.subject_id, face_id: c.face_id,
                                      review_token: c.review_token, outcome: 'confirmed', note: 'me again'})});
            return [r.status, (await r.json()).error.code];
        }"""
    )
    assert refused == [409, "second_reviewer_required"], refused

    # -- Bob: another person confirms ----------------------------------------------------------------------
    bob = Browser(browser, server)
    bob.sign_in("a", "bob")
    page = bob.go("review")
    assert page.locator("#person").inner_text() == "Bob Example"
    card = page.locator("article.candidate", has_text=name)
    card.get_by_label("Confirm the match").check()
    card.get_by_label("Note (why)").fill("Agree: independent comparison.")
    card.get_by_role("button", name="Record step").click()
    page.get_by_text(f"{name}: Confirmed by two reviewers.").wait_for()

    # -- Carol: an auditor by group; the timeline names both people --------------------------------------
    carol = Browser(browser, server)
    page = carol.sign_in("a", "carol")
    assert page.url.endswith("/console/audit")
    page.get_by_text("Audit chain verified").wait_for()
    page.locator("#timeline li").first.wait_for()  # the first load, before the filtered one
    page.get_by_label("Action").fill("review")
    page.get_by_role("button", name="Show entries").click()
    page.get_by_text("(2 entries, newest first)").wait_for()
    reviews = page.locator("#timeline li").all_inner_texts()
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / "console-oidc-audit.png"), full_page=True)
    assert "Bob Example" in reviews[0] and f"person:{issuer} bob" in reviews[0] and "confirmed" in reviews[0]
    assert "Alice Example" in reviews[1] and f"person:{issuer} alice" in reviews[1] and "possible_match" in reviews[1]
    searches = server.audit("a", "search")
    assert [(e["actor"], e["actor_name"]) for e in searches] == [(f"person:{issuer} alice", "Alice Example")]
    sign_ins = {e["actor"] for e in server.audit("a", "console.sign_in")}
    assert {a for a in sign_ins if a.startswith("person:")} == {f"person:{issuer} {p}" for p in ("alice", "bob", "carol")}
    for person in (alice, again, bob, carol):
        person.close()


REFUSALS = {
    "replayed_state": "This sign-in link was already used",
    "no_mapped_role": "none of your 'groups' gives a role in faceward",
    "expired_token": "token has expired",
    "wrong_audience": "issued this token for another application (audience another-application)",
}


def test_each_failure_is_refused_with_a_clear_message_and_audited(browser: Any, server: Server) -> None:
    person = Browser(browser, server)
    page = person.page

    # A replayed state: the provider's redirect of a finished sign-in, opened again.
    page = person.sign_in("a", "alice")
    used = [u for u in server.callbacks if u.startswith(server.url + server.login["a"])][-1]
    response = page.goto(used)
    assert response.status == 401
    assert REFUSALS["replayed_state"] in page.locator("#refusal").inner_text()

    # A person whose groups map to no role.
    other = Browser(browser, server)
    page = other.sign_in("a", "mallory")
    assert REFUSALS["no_mapped_role"] in page.locator("#refusal").inner_text()
    assert page.evaluate("document.cookie").find("fw_session") == -1
    other.close()

    # Tenant B's provider issues ID tokens that have already expired.
    page = person.sign_in("b", "alice")
    assert REFUSALS["expired_token"] in page.locator("#refusal").inner_text()

    # Tenant C's provider signs an ID token for another application.
    page = person.sign_in("c", "alice")
    assert REFUSALS["wrong_audience"] in page.locator("#refusal").inner_text()
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / "console-oidc-refused.png"))
    person.close()

    # Each refusal is in its own tenant's chain, with its reason (and the person, once the token named them).
    refused = {t: server.audit(t, "console.sign_in_refused") for t in ("a", "b", "c")}
    assert [(e["details"]["reason"], e["actor"]) for e in refused["a"]] == [
        ("replayed_state", "anonymous"), ("no_mapped_role", f"person:{server.providers.main} mallory")]
    assert [e["details"]["reason"] for e in refused["b"]] == ["expired_token"]
    assert [e["details"]["reason"] for e in refused["c"]] == ["wrong_audience"]
    assert not server.audit("b", "console.sign_in") and not server.audit("c", "console.sign_in")


def test_the_sign_in_page_reveals_no_other_tenant(server: Server) -> None:
    """An unknown or malformed login id is one plain 404; nothing lists tenants or their providers."""
    for path in ("/console/login/l_" + "0" * 32, "/console/login/" + server.tenants["a"], "/console/login/x/callback"):
        response = httpx.get(server.url + path, timeout=10, follow_redirects=False)
        assert response.status_code == 404, path
        assert "OIDC Org" not in response.text and "127.0.0.1" not in response.text
    begun = httpx.get(server.url + server.login["c"], timeout=10, follow_redirects=False)
    assert begun.status_code == 303
    assert begun.headers["location"].startswith(server.providers.other_audience + "/oauth2/authorize?")
    assert "code_challenge_method=S256" in begun.headers["location"] and "nonce=" in begun.headers["location"]
    assert "SameSite=lax" in begun.headers["set-cookie"] and "HttpOnly" in begun.headers["set-cookie"]


def test_the_provider_form_cannot_be_sent_before_the_console_is_ready(browser: Any, server: Server) -> None:
    """The provider form's button stays disabled until the current provider is shown, and its handler is attached
    first: a quick admin never sends the form as a plain GET (the issuer and mapping in the address, a reload)."""
    admin = signed_in_admin(browser, server)
    page = admin.page
    held: list[Any] = []
    page.route("**/v1/tenant/sign-in", lambda route: held.append(route))  # the provider's status, held back
    page.goto(f"{server.url}/console/keys")
    page.locator("#provider-form").wait_for()
    assert page.locator("#provider-save").is_disabled()
    assert page.locator("#provider-status").inner_text() == "Looking up the sign-in provider…"
    page.get_by_label("Issuer URL").fill("https://idp.example")
    page.get_by_label("Issuer URL").press("Enter")  # implicit submission: nothing goes anywhere
    page.wait_for_timeout(300)
    assert page.url == f"{server.url}/console/keys" and not held[1:]
    assert page.locator("#provider-save").is_disabled()
    for route in held:
        route.continue_()
    page.unroute("**/v1/tenant/sign-in")
    page.locator("#provider-save:enabled").wait_for()
    assert "Connected to" in page.locator("#provider-status").inner_text()
    admin.close()
