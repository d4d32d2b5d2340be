"""The web console's server side (#6), in process: pages and their CSP, the cookie session and CSRF,
reviews and the two-reviewer rule, thumbnails and their switch, detection and searching a chosen face.

The browser itself is driven in tests/e2e/test_console.py.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from apiworld import Api, Tenant, World
from PIL import Image
from sqlalchemy import select, update

from faceward.api.routes.console import CONSOLE_CSP, PAGES, STATIC
from faceward.security.permissions import Role
from faceward.store import schema
from tests.conftest import with_bystander

FORM = {"purpose": "console test", "case_reference": "CASE-6"}


@pytest.fixture()
def browser_like(world: World) -> Iterator[Api]:
    """A client of its own (its own cookie jar), like one browser."""
    api = Api(world.app)
    yield api
    api.close()


def sign_in(api: Api, token: str) -> str:
    response = api.post("/console/session", json={"api_key": token})
    assert response.status_code == 201, response.text
    return str(response.json()["csrf_token"])


def upload(w: World, name: str) -> dict[str, tuple[str, bytes, str]]:
    return {"image": (f"{name}.jpg", w.images[name], "image/jpeg")}


def enroll_astronaut(w: World, tenant: Tenant, name: str = "Astro Naut") -> tuple[str, str]:
    subject = w.api.post("/v1/subjects", headers=tenant.auth(Role.ENROLLER), json={
        "display_name": name, "consent": {"basis": "explicit_consent", "reference": "F-6", "given_at": "2026-01-01T00:00:00Z"}})
    assert subject.status_code == 201, subject.text
    subject_id = subject.json()["id"]
    face = w.api.post(f"/v1/subjects/{subject_id}/faces", headers=tenant.auth(Role.ENROLLER), files=upload(w, "astronaut"))
    assert face.status_code == 201, face.text
    return subject_id, face.json()["id"]


def candidate_for(w: World, tenant: Tenant, subject_id: str, token: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {token}"} if token else tenant.auth(Role.SEARCHER)
    result = w.api.post("/v1/search", headers=headers, data={**FORM, "k": "50"}, files=upload(w, "probe"))
    assert result.status_code == 200, result.text
    body = result.json()
    found = next(c for c in body["candidates"] if c["subject_id"] == subject_id)
    return {"search_id": body["search_id"], "subject_id": subject_id, "face_id": found["face_id"],
            "review_token": found["review_token"]}


# -- pages ---------------------------------------------------------------------------------


def test_every_page_has_the_strict_csp_and_no_inline_script(sqlite_world: World) -> None:
    required = "default-src 'self'; img-src 'self' blob: data:"
    assert CONSOLE_CSP.startswith(required) and "unsafe" not in CONSOLE_CSP
    for path in ["/console/", *(f"/console/{p}" for p in PAGES)]:
        response = sqlite_world.api.get(path)
        assert response.status_code == 200, path
        assert response.headers["content-security-policy"] == CONSOLE_CSP
        assert response.headers["x-frame-options"] == "DENY"
        html = response.text
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), path  # every script is a file
        assert not re.search(r"\son[a-z]+=", html) and " style=" not in html, path  # no inline handlers or styles
        for asset in re.findall(r'(?:src|href)="(/console/static/[^"]+)"', html):
            assert sqlite_world.api.get(asset).status_code == 200, asset
    assert sqlite_world.api.get("/console").status_code == 307


def test_assets_are_local_and_each_page_is_under_200_kb() -> None:
    files = [p for p in STATIC.rglob("*") if p.is_file()]
    for path in files:
        text = path.read_text()
        outside = set(re.findall(r"https?://[^\s\"'`)]+", text)) - {"http://www.w3.org/2000/svg"}
        assert not outside, (path.name, outside)  # no CDN, no other origin

    def closure(script: Path, seen: set[Path]) -> set[Path]:
        seen.add(script)
        for name in re.findall(r'from "\./([\w.-]+\.js)"', script.read_text()):
            if (STATIC / "js" / name) not in seen:
                closure(STATIC / "js" / name, seen)
        return seen

    for page in ["index", *PAGES]:
        html = (STATIC / f"{page}.html").read_text()
        scripts = [STATIC / s for s in re.findall(r'src="/console/static/([^"]+\.js)"', html)]
        assets = {STATIC / f"{page}.html", STATIC / "console.css"}.union(*(closure(s, set()) for s in scripts))
        assert sum(p.stat().st_size for p in assets) < 200 * 1024, page


def test_unknown_pages_and_assets_are_404(sqlite_world: World) -> None:
    for path in ["/console/nope", "/console/static/nope.js", "/console/static/../../api/app.py",
                 "/console/static/%2e%2e/%2e%2e/api/app.py", "/console/static/js/../../../settings.py"]:
        assert sqlite_world.api.get(path).status_code == 404, path


# -- the session and CSRF ------------------------------------------------------------------


def test_sign_in_sets_strict_http_only_cookies_and_keeps_no_secret(world: World, browser_like: Api) -> None:
    token = world.own.tokens[Role.SEARCHER]
    response = browser_like.post("/console/session", json={"api_key": token})
    assert response.status_code == 201
    body = response.json()
    assert body["role"] == "searcher" and "gallery:search:run" in body["permissions"] and "tenant:keys:manage" not in body["permissions"]
    cookies = {c.split("=", 1)[0]: c for c in response.headers.get_list("set-cookie")}
    session, csrf = cookies["fw_session"], cookies["fw_csrf"]
    for attribute in ("HttpOnly", "SameSite=strict", "Path=/"):
        assert attribute in session
    assert "HttpOnly" not in csrf and "SameSite=strict" in csrf
    assert "Secure" not in session  # served over http here
    secret = session.split(";")[0].split("=", 1)[1].split(".")[1]
    assert token not in session and token.split("_")[2] not in session  # never the API key
    with world.services.gallery.store.transaction(world.own.id) as conn:
        ids = set(conn.execute(select(schema.console_sessions.c.id)).scalars())
    assert secret not in ids and all(len(i) == 64 for i in ids)  # only a hash of the secret is stored
    assert "console.sign_in" in world.audit_actions(world.own)


def test_over_https_the_cookies_are_secure(world: World) -> None:
    api = Api(world.app)
    api.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=world.app), base_url="https://faceward.test")
    try:
        response = api.post("/console/session", json={"api_key": world.own.tokens[Role.AUDITOR]})
        assert all("Secure" in c for c in response.headers.get_list("set-cookie"))
        assert api.get("/v1/audit/verify").status_code == 200
    finally:
        api.close()


def test_unsafe_requests_with_the_cookie_need_the_csrf_token(world: World, browser_like: Api) -> None:
    csrf = sign_in(browser_like, world.own.tokens[Role.ENROLLER])
    subject = {"display_name": "Csrf Person",
               "consent": {"basis": "explicit_consent", "reference": "F-1", "given_at": "2026-01-01T00:00:00Z"}}
    assert browser_like.get("/v1/subjects").status_code == 200  # safe methods need only the cookie
    before = world.services.gallery.store.count_subjects(world.own.id)
    for headers in ({}, {"X-CSRF-Token": "forged"}, {"X-CSRF-Token": csrf[:-1]}):
        refused = browser_like.post("/v1/subjects", json=subject, headers=headers)
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "csrf_failed"
    assert world.services.gallery.store.count_subjects(world.own.id) == before
    assert world.audit_actions(world.own).count("console.csrf_failed") >= 3
    assert browser_like.post("/v1/subjects", json=subject, headers={"X-CSRF-Token": csrf}).status_code == 201
    # A bearer request is authenticated by its token alone, cookie or not, CSRF header or not.
    bearer = browser_like.get("/v1/keys", headers=world.own.auth(Role.ADMIN))
    assert bearer.status_code == 200
    assert browser_like.post("/v1/keys", headers=world.own.auth(Role.ADMIN), json={"role": "auditor", "label": "x"}).status_code == 201
    assert browser_like.get("/v1/keys").status_code == 403  # the cookie is the enroller's


def test_sign_out_revocation_and_idleness_end_a_session(world: World, browser_like: Api) -> None:
    key_id, token = world.new_key(world.own, Role.AUDITOR)
    csrf = sign_in(browser_like, token)
    assert browser_like.get("/console/session").status_code == 200
    cookie = browser_like.client.cookies["fw_session"]
    assert browser_like.delete("/console/session").status_code == 403  # sign-out needs the CSRF token too
    assert browser_like.delete("/console/session", headers={"X-CSRF-Token": csrf}).status_code == 204
    assert browser_like.get("/v1/audit").status_code == 401
    thief = Api(world.app)  # someone who kept a copy of the cookie
    thief.client.cookies.set("fw_session", cookie)
    replayed = thief.get("/v1/audit")
    thief.close()
    assert replayed.status_code == 401 and replayed.json()["error"]["code"] == "unauthenticated"

    sign_in(browser_like, token)
    world.services.accounts.revoke_key(world.own.id, key_id, actor="operator", source="test")
    assert browser_like.get("/v1/audit").status_code == 401

    sign_in(browser_like, world.own.tokens[Role.AUDITOR])
    assert browser_like.get("/v1/audit/verify").status_code == 200
    with world.services.gallery.store.transaction(world.own.id) as conn:
        sessions = schema.console_sessions
        conn.execute(update(sessions).where(sessions.c.tenant_id == world.own.id)
                     .values(seen_at=world.services.gallery.clock() - timedelta(hours=1)))
    assert browser_like.get("/v1/audit/verify").status_code == 401  # idle too long


def test_sign_in_refuses_bad_keys_other_sites_and_forms(world: World, browser_like: Api) -> None:
    admin = world.own.tokens[Role.ADMIN]
    wrong_secret = admin[:-1] + ("y" if admin.endswith("x") else "x")  # never the key itself
    for key in ("nonsense", wrong_secret, ""):
        response = browser_like.post("/console/session", json={"api_key": key})
        assert response.status_code in (401, 422) and "set-cookie" not in response.headers
    other = browser_like.post("/console/session", json={"api_key": world.own.tokens[Role.ADMIN]},
                              headers={"Origin": "https://evil.example"})
    assert other.status_code == 403 and "set-cookie" not in other.headers
    form = browser_like.post("/console/session", data={"api_key": world.own.tokens[Role.ADMIN]})
    assert form.status_code == 422 and "set-cookie" not in form.headers
    assert browser_like.get("/console/session").status_code == 401


# -- reviews -------------------------------------------------------------------------------


def test_confirmation_needs_a_second_reviewer(world: World) -> None:
    w, t = world, world.own
    subject_id, face_id = enroll_astronaut(w, t, "Review Subject")
    candidate = candidate_for(w, t, subject_id)
    assert candidate["face_id"] == face_id
    _, second = w.new_key(t, Role.SEARCHER)
    first_auth, second_auth = t.auth(Role.SEARCHER), {"Authorization": f"Bearer {second}"}

    def step(auth: dict[str, str], outcome: str, note: str = "compared ears and scar", **changes: str) -> httpx.Response:
        return w.api.post("/v1/reviews", headers=auth, json={**candidate, "outcome": outcome, "note": note, **changes})

    refused = step(first_auth, "confirmed")
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "second_reviewer_required"
    assert step(first_auth, "possible_match", note="  ").status_code == 422
    assert step(first_auth, "possible_match").json()["status"] == "possible_match"
    own = step(first_auth, "confirmed")
    assert own.status_code == 409 and "another key" in own.json()["error"]["message"]
    for forged in ({"review_token": "0" * 64}, {"subject_id": w.own.subject_id}, {"face_id": "f_" + "1" * 28},
                   {"search_id": "q_" + "2" * 28}):
        assert step(second_auth, "confirmed", **forged).status_code == 404
    foreign = w.api.post("/v1/reviews", headers=w.foreign.auth(Role.SEARCHER),
                         json={**candidate, "outcome": "possible_match", "note": "x"})
    assert foreign.status_code == 404  # a token is good in its own tenant only
    done = step(second_auth, "confirmed", note="independent check agrees")
    assert done.status_code == 201, done.text
    body = done.json()
    assert body["status"] == "confirmed" and len(body["reviewers"]) == 2 and body["lead_only"] is True
    assert [s["outcome"] for s in body["steps"]] == ["possible_match", "confirmed"]

    listed = w.api.get("/v1/reviews", headers=second_auth, params={"status": "confirmed"}).json()["reviews"]
    assert any(r["subject_id"] == subject_id and r["steps"][0]["note"] == "compared ears and scar" for r in listed)
    entries = [e for e in w.services.audit.entries(t.id, action="review", limit=1000)
               if e.details["search_id"] == candidate["search_id"]]
    assert [e.details["outcome"] for e in entries] == ["possible_match", "confirmed"]
    assert all("note" not in e.details for e in entries)
    search = w.services.audit.entries(t.id, action="search", limit=1000)
    assert any(e.details.get("search_id") == candidate["search_id"] for e in search)

    # Erasure takes the reviews (and their sealed notes) with the subject.
    assert w.api.delete(f"/v1/subjects/{subject_id}", headers=t.auth(Role.ENROLLER)).status_code == 200
    listed = w.api.get("/v1/reviews", headers=second_auth).json()["reviews"]
    assert all(r["subject_id"] != subject_id for r in listed)
    with w.services.gallery.store.transaction(t.id) as conn:
        assert conn.execute(select(schema.reviews).where(schema.reviews.c.subject_id == subject_id)).first() is None


# -- thumbnails ----------------------------------------------------------------------------


def test_thumbnails_for_reviewers_only_and_a_switch_that_deletes_them(world: World) -> None:
    w, t = world, world.own
    _, face_id = enroll_astronaut(w, t, "Thumb Subject")
    url = f"/v1/faces/{face_id}/thumbnail"
    shown = w.api.get(url, headers=t.auth(Role.SEARCHER))
    assert shown.status_code == 200 and shown.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(shown.content)).size == (150, 150)
    for role in (Role.ENROLLER, Role.ADMIN, Role.AUDITOR):
        assert w.api.get(url, headers=t.auth(role)).status_code == 403
    assert w.api.get(url, headers=w.foreign.auth(Role.SEARCHER)).status_code == 404
    assert "face.thumbnail" in w.audit_actions(t)
    with w.services.gallery.store.transaction(t.id) as conn:
        sealed = conn.execute(select(schema.face_chips.c.chip_sealed).where(schema.face_chips.c.face_id == face_id)).scalar_one()
    assert b"JFIF" not in bytes(sealed) and shown.content not in bytes(sealed)  # sealed, not a JPEG at rest

    admin = t.auth(Role.ADMIN)
    assert w.api.request("PATCH", "/v1/tenant/settings", headers=t.auth(Role.SEARCHER), json={"thumbnails": False}).status_code == 403
    off = w.api.request("PATCH", "/v1/tenant/settings", headers=admin, json={"thumbnails": False})
    assert off.status_code == 200 and off.json()["thumbnails"] is False and off.json()["thumbnails_deleted"] >= 1
    gone = w.api.get(url, headers=t.auth(Role.SEARCHER))
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "thumbnails_off"
    _, later = enroll_astronaut(w, t, "While Off")
    with w.services.gallery.store.transaction(t.id) as conn:
        assert conn.execute(select(schema.face_chips).where(schema.face_chips.c.tenant_id == t.id)).first() is None
    result = w.api.post("/v1/search", headers=t.auth(Role.SEARCHER), data=FORM, files=upload(w, "probe")).json()
    assert result["thumbnails"] is False
    assert w.api.request("PATCH", "/v1/tenant/settings", headers=admin, json={"thumbnails": True}).json()["thumbnails"] is True
    assert w.api.get(f"/v1/faces/{later}/thumbnail", headers=t.auth(Role.SEARCHER)).status_code == 404  # none was kept
    shown = w.api.get("/v1/tenant/settings", headers=admin).json()
    assert {k: shown[k] for k in ("thumbnails", "thumbnails_deleted")} == {"thumbnails": True, "thumbnails_deleted": 0}
    model = shown["model"]  # the recognizer on record: dlib's ResNet, calibrated by the shipped table
    assert model["model_id"] == "dlib-resnet-v1" and model["licence"].startswith("CC0") and model["calibrated"] is True
    assert model["calibration"]["fmr_resolution"] == 1 / model["calibration"]["impostor_pairs"]

    owner, face_id = enroll_astronaut(w, t, "Erased Soon")
    assert w.api.get(f"/v1/faces/{face_id}/thumbnail", headers=t.auth(Role.SEARCHER)).status_code == 200
    assert w.api.delete(f"/v1/subjects/{owner}", headers=t.auth(Role.ENROLLER)).status_code == 200
    assert w.api.get(f"/v1/faces/{face_id}/thumbnail", headers=t.auth(Role.SEARCHER)).status_code == 404


# -- detection and searching a chosen face -------------------------------------------------


def test_detect_boxes_faces_and_search_uses_the_chosen_one(sqlite_world: World, astronaut: np.ndarray) -> None:
    w, t = sqlite_world, sqlite_world.own
    pair = with_bystander(astronaut)
    buffer = io.BytesIO()
    Image.fromarray(pair).save(buffer, format="JPEG", quality=92)
    photo = {"image": ("pair.jpg", buffer.getvalue(), "image/jpeg")}

    found = w.api.post("/v1/detect", headers=t.auth(Role.SEARCHER), files=photo)
    assert found.status_code == 200, found.text
    body = found.json()
    assert (body["width"], body["height"]) == (pair.shape[1], pair.shape[0])
    # the astronaut at twice the size of the other face, apart from it: she is the subject, the other a bystander
    assert len(body["faces"]) == 2 and body["enrollable"] is True and body["subject"] == 0 and body["searched"] == 0
    assert "1 bystander not enrolled" in body["verdict"]
    twins = np.concatenate([astronaut, astronaut], axis=1)
    buffer2 = io.BytesIO()
    Image.fromarray(twins).save(buffer2, format="JPEG", quality=92)
    same = w.api.post("/v1/detect", headers=t.auth(Role.SEARCHER), files={"image": ("twins.jpg", buffer2.getvalue(), "image/jpeg")}).json()
    assert len(same["faces"]) == 2 and same["enrollable"] is False and same["subject"] is None
    assert "none clearly the subject" in same["verdict"]
    subject = w.new_subject(t, "Pair Photo")
    enrolled = w.api.post(f"/v1/subjects/{subject}/faces", headers=t.auth(Role.ENROLLER), files=photo)
    assert enrolled.status_code == 201, enrolled.text
    assert enrolled.json()["box"] == body["faces"][0]["box"] and enrolled.json()["bystanders"] == [body["faces"][1]["box"]]
    # verify with a photo of several faces warns, and takes a face index as search does
    single = ("a.jpg", upload(w, "astronaut")["image"][1], "image/jpeg")
    largest = w.api.post("/v1/verify", headers=t.auth(Role.SEARCHER), files={"image_a": photo["image"], "image_b": single})
    assert largest.status_code == 200, largest.text
    assert "2 faces in the first image; compared its subject (the most prominent)" in largest.json()["warnings"]
    other = w.api.post("/v1/verify", headers=t.auth(Role.SEARCHER), data={"face_a": "1"},
                       files={"image_a": photo["image"], "image_b": single})
    assert "2 faces in the first image; compared face 2" in other.json()["warnings"]
    against = w.api.post("/v1/verify", headers=t.auth(Role.SEARCHER), data={"subject_id": subject, "face": "0"},
                         files={"image": photo["image"]})
    assert against.status_code == 200 and against.json()["decision"] == "lead"
    assert "2 faces in the image; compared face 1" in against.json()["warnings"]
    beyond = w.api.post("/v1/verify", headers=t.auth(Role.SEARCHER), data={"subject_id": subject, "face": "2"},
                        files={"image": photo["image"]})
    assert beyond.status_code == 422 and beyond.json()["error"]["code"] == "no_such_face"
    assert body["faces"][0]["box"]["right"] <= astronaut.shape[1]  # the largest first
    assert w.api.post("/v1/detect", headers=t.auth(Role.AUDITOR), files=photo).status_code == 403
    assert w.api.post("/v1/detect", headers=t.auth(Role.ENROLLER), files=upload(w, "astronaut")).json()["enrollable"] is True

    chosen = w.api.post("/v1/search", headers=t.auth(Role.SEARCHER), data={**FORM, "face": "1"}, files=photo)
    assert chosen.status_code == 200, chosen.text
    assert chosen.json()["probe_face"]["box"] == body["faces"][1]["box"]
    entry = w.services.audit.entries(t.id, action="search", limit=1000)[-1]
    assert entry.details["face"] == 1 and entry.details["search_id"] == chosen.json()["search_id"]
    missing = w.api.post("/v1/search", headers=t.auth(Role.SEARCHER), data={**FORM, "face": "7"}, files=photo)
    assert missing.status_code == 422 and missing.json()["error"]["code"] == "no_such_face"
    assert w.api.get("/v1/audit/verify", headers=t.auth(Role.AUDITOR)).json()["ok"] is True


def test_search_defaults_to_the_photos_subject_not_a_larger_face_at_the_edge(sqlite_world: World, astronaut: np.ndarray) -> None:
    w, t = sqlite_world, sqlite_world.own
    # The astronaut whole in the top-left corner, and at 0.7x in the middle of a wide frame: the larger face
    # is at the edge, the subject (most prominent: width times centrality) is the centred one.
    side = astronaut.shape[0]
    canvas = np.full((600, 1200, 3), 255, dtype=np.uint8)
    canvas[:side, :side] = astronaut
    small = np.asarray(Image.fromarray(astronaut).resize((side * 7 // 10, side * 7 // 10)))
    top, left = 300 - small.shape[0] // 2, 600 - small.shape[1] // 2
    canvas[top : top + small.shape[0], left : left + small.shape[1]] = small
    buffer = io.BytesIO()
    Image.fromarray(canvas).save(buffer, format="JPEG", quality=92)
    photo = {"image": ("edge.jpg", buffer.getvalue(), "image/jpeg")}
    found = w.api.post("/v1/detect", headers=t.auth(Role.SEARCHER), files=photo).json()
    assert len(found["faces"]) == 2 and found["searched"] == 1  # faces are listed largest first
    assert found["faces"][0]["box"]["right"] <= side
    result = w.api.post("/v1/search", headers=t.auth(Role.SEARCHER), data=FORM, files=photo)
    assert result.status_code == 200, result.text
    assert result.json()["probe_face"]["box"] == found["faces"][1]["box"]
    assert "2 faces in the probe; searched its subject (the most prominent)" in result.json()["warnings"]
    largest = w.api.post("/v1/search", headers=t.auth(Role.SEARCHER), data={**FORM, "face": "0"}, files=photo)
    assert largest.json()["probe_face"]["box"] == found["faces"][0]["box"]


def test_a_photo_on_its_side_is_searched_upright_and_boxed_as_sent(sqlite_world: World, astronaut: np.ndarray) -> None:
    """A scan lying on its side (or upside down), no EXIF orientation: detect, enroll and search find her upright;
    boxes fit the photo as sent."""
    w, t = sqlite_world, sqlite_world.own
    upright = np.ascontiguousarray(astronaut[:, 20:280])  # not square: a turn swaps the axes
    sideways = np.ascontiguousarray(np.rot90(upright, 1))  # turned a quarter counter-clockwise, as a scanner might
    photos = {}
    for name, pixels in (("upright", upright), ("sideways", sideways), ("upside down", np.ascontiguousarray(upright[::-1, ::-1]))):
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="JPEG", quality=92)
        photos[name] = {"image": (f"{name}.jpg", buffer.getvalue(), "image/jpeg")}

    found = w.api.post("/v1/detect", headers=t.auth(Role.SEARCHER), files=photos["sideways"]).json()
    assert (found["width"], found["height"]) == (sideways.shape[1], sideways.shape[0])
    [face] = found["faces"]
    assert face["rotation_cw"] == 90 and found["enrollable"] is True
    [upright_face] = w.api.post("/v1/detect", headers=t.auth(Role.SEARCHER), files=photos["upright"]).json()["faces"]
    assert upright_face["rotation_cw"] == 0
    box, width = upright_face["box"], upright.shape[1]  # the upright box, turned as the photo was (JPEG: +-2 px)
    expected = {"left": box["top"], "top": width - box["right"], "right": box["bottom"], "bottom": width - box["left"]}
    assert all(abs(face["box"][side] - expected[side]) <= 2 for side in expected), (face["box"], expected)

    subject = w.new_subject(t, "Sideways Scan")
    enrolled = w.api.post(f"/v1/subjects/{subject}/faces", headers=t.auth(Role.ENROLLER), files=photos["sideways"])
    assert enrolled.status_code == 201, enrolled.text
    assert enrolled.json()["rotation_cw"] == 90 and enrolled.json()["box"] == face["box"]
    def score_of_subject(photo: str) -> tuple[dict[str, Any], float]:
        # The module's gallery holds the astronaut under other subjects too: find this one among the leads.
        result = w.api.post("/v1/search", headers=t.auth(Role.SEARCHER), data=FORM, files=photos[photo]).json()
        return result, next(c["score"] for c in result["candidates"] if c["subject_id"] == subject)

    result, score = score_of_subject("upright")
    assert score > 0.99 and result["probe_face"]["rotation_cw"] == 0
    turned, score = score_of_subject("sideways")
    assert score > 0.99 and turned["probe_face"]["rotation_cw"] == 90
    assert any("lies on its side" in warning and "90 degrees clockwise" in warning for warning in turned["warnings"])
    flipped, score = score_of_subject("upside down")
    assert score > 0.99 and flipped["probe_face"]["rotation_cw"] == 180
    assert any("is upside down" in warning and "180 degrees" in warning for warning in flipped["warnings"])
