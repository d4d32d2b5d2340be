"""Every route x every role x own and foreign tenant, on SQLite and PostgreSQL.

Only the cells :data:`ROLE_PERMISSIONS` allows succeed; every other one is a plain 403
and changes nothing. An id of another tenant gives exactly the 404 an unknown id gives.
Routes without an id are run by each tenant's key in turn ("own" = the first tenant's
key, "foreign" = the second's), and their answers must hold nothing of the other tenant.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import pytest
from apiworld import Tenant, World

from faceward.security.permissions import Permission, Role
from faceward.security.policy import ROLE_PERMISSIONS
from tests.oidc_providers import Providers

UNKNOWN_SUBJECT = "s_" + "0" * 28
UNKNOWN_KEY = "0" * 16
FORM = {"purpose": "matrix test", "case_reference": "CASE-1"}


@dataclass(frozen=True)
class Route:
    name: str
    permission: Permission
    targeted: bool  # takes the id of a resource
    call: Callable[[World, Tenant, Role, str], httpx.Response]  # (world, caller, role, resource id or "")
    prepare: Callable[[World, Tenant], str] | None = None  # makes the resource in a tenant, returns its id
    unknown: str = ""
    check: Callable[[World, Tenant, Tenant, str, httpx.Response], None] | None = None  # after success
    unchanged: Callable[[World, Tenant, str], bool] | None = None  # after refusal: nothing happened
    # The code an allowed call is refused with by the act itself in this world (authorization passed):
    # the migration routes, since the matrix's server runs the model its galleries already hold.
    refusal: str | None = None


def _other(w: World, t: Tenant) -> Tenant:
    return w.foreign if t is w.own else w.own


# -- success checks (isolation) ------------------------------------------------------------

def check_sign_in(w: World, caller: Tenant, _t: Tenant, _id: str, r: httpx.Response) -> None:
    provider = r.json()["provider"]
    if provider is not None:  # the sign-in path named is the caller's own, and the secret never comes back
        login_id = provider["login_path"].rsplit("/", 1)[-1]
        assert w.services.signin.store.tenant_of_login(login_id) == caller.id
        assert provider["client_secret"] == "**********"


def check_keys_listed(w: World, caller: Tenant, _t: Tenant, _id: str, r: httpx.Response) -> None:
    ids = {k["id"] for k in r.json()["keys"]}
    assert ids.isdisjoint(_other(w, caller).key_ids.values())
    assert set(caller.key_ids.values()) <= ids


def check_key_created(w: World, caller: Tenant, _t: Tenant, _id: str, r: httpx.Response) -> None:
    key_id = r.json()["key"]["id"]
    assert key_id in {k.id for k in w.services.accounts.list_keys(caller.id)}
    assert r.json()["secret"].startswith(f"fw_{key_id}_")


def check_subjects_listed(w: World, caller: Tenant, _t: Tenant, _id: str, r: httpx.Response) -> None:
    ids = {s["id"] for s in r.json()["subjects"]}
    assert caller.subject_id in ids and _other(w, caller).subject_id not in ids


def check_search(w: World, caller: Tenant, _t: Tenant, _id: str, r: httpx.Response) -> None:
    candidates = r.json()["candidates"]
    ids = {c["subject_id"] for c in candidates}
    assert caller.subject_id in ids and _other(w, caller).subject_id not in ids
    assert all(c["lead_only"] is True for c in candidates)


def check_usage(w: World, caller: Tenant, _t: Tenant, _id: str, r: httpx.Response) -> None:
    body = r.json()
    assert body["tenant_id"] == caller.id
    assert {u["key_id"] for u in body["usage"]}.isdisjoint(_other(w, caller).key_ids.values())


def check_audit(w: World, caller: Tenant, _t: Tenant, _id: str, r: httpx.Response) -> None:
    actors = {e["actor"] for e in r.json()["entries"]}
    assert actors, "the audit log is never empty: tenant creation is in it"
    assert actors.isdisjoint({f"key:{k}" for k in _other(w, caller).key_ids.values()})


def check_subject_created(w: World, caller: Tenant, _t: Tenant, _id: str, r: httpx.Response) -> None:
    w.services.gallery.store.get_subject(caller.id, r.json()["id"])


# -- refusal checks (nothing happened) -----------------------------------------------------

def key_live(w: World, t: Tenant, key_id: str) -> bool:
    return next(k for k in w.services.accounts.list_keys(t.id) if k.id == key_id).revoked_at is None


def subject_kept(w: World, t: Tenant, subject_id: str) -> bool:
    return w.services.gallery.store.get_subject(t.id, subject_id) is not None


def no_face(w: World, t: Tenant, subject_id: str) -> bool:
    return w.services.gallery.store.faces_of(t.id, subject_id) == []


def image(w: World, name: str) -> tuple[str, bytes, str]:
    return (f"{name}.jpg", w.images[name], "image/jpeg")


UNKNOWN_FACE = "f_" + "0" * 28
UNKNOWN_REVIEW = json.dumps({"search_id": "q_" + "0" * 28, "subject_id": UNKNOWN_SUBJECT, "face_id": UNKNOWN_FACE,
                             "review_token": "0" * 64, "outcome": "not_a_match", "note": "matrix"})


def face_with_thumbnail(w: World, t: Tenant) -> str:
    face = w.face
    assert face.descriptor is not None
    digest = hashlib.sha256(uuid.uuid4().bytes).hexdigest()
    return w.services.gallery.admit(t.id, t.subject_id, face.descriptor, face.quality, face.box.as_dict(), digest, 1,
                                    chip=face.chip).id


def review_of(w: World, t: Tenant) -> str:
    """A review step's body for a candidate of a (made-up) search of tenant ``t``, with its valid token."""
    face_id = w.services.gallery.store.faces_of(t.id, t.subject_id)[0].id
    search_id = "q_" + uuid.uuid4().hex[:28]
    token = w.services.console.reviews.token(t.id, search_id, t.subject_id, face_id)
    return json.dumps({"search_id": search_id, "subject_id": t.subject_id, "face_id": face_id, "review_token": token,
                       "outcome": "not_a_match", "note": "matrix"})


def check_review(w: World, caller: Tenant, _t: Tenant, rid: str, r: httpx.Response) -> None:
    assert r.json()["search_id"] == json.loads(rid)["search_id"] and r.json()["status"] == "not_a_match"


def no_review(w: World, t: Tenant, rid: str) -> bool:
    search_id = json.loads(rid)["search_id"]
    return w.services.console.reviews.candidates(t.id, search_id=search_id) == []


def check_reviews_listed(w: World, caller: Tenant, _t: Tenant, _id: str, r: httpx.Response) -> None:
    subjects = {c["subject_id"] for c in r.json()["reviews"]}
    assert _other(w, caller).subject_id not in subjects


def check_chain(w: World, caller: Tenant, _t: Tenant, _id: str, r: httpx.Response) -> None:
    assert r.json()["ok"] is True and r.json()["entries"] > 0


ROUTES = [
    Route("keys.create", Permission.KEYS_MANAGE, False,
          lambda w, c, role, _: w.api.post("/v1/keys", headers=c.auth(role), json={"role": "searcher", "label": "matrix"}),
          check=check_key_created),
    Route("keys.list", Permission.KEYS_MANAGE, False,
          lambda w, c, role, _: w.api.get("/v1/keys", headers=c.auth(role)), check=check_keys_listed),
    Route("keys.revoke", Permission.KEYS_MANAGE, True,
          lambda w, c, role, rid: w.api.delete(f"/v1/keys/{rid}", headers=c.auth(role)),
          prepare=lambda w, t: w.new_key(t)[0], unknown=UNKNOWN_KEY, unchanged=key_live),
    Route("subjects.create", Permission.SUBJECTS_WRITE, False,
          lambda w, c, role, _: w.api.post("/v1/subjects", headers=c.auth(role), json={
              "display_name": "Matrix Person",
              "consent": {"basis": "explicit_consent", "reference": "F-9", "given_at": "2025-01-01T00:00:00Z"}}),
          check=check_subject_created),
    Route("subjects.list", Permission.SUBJECTS_READ, False,
          lambda w, c, role, _: w.api.get("/v1/subjects?limit=500", headers=c.auth(role)), check=check_subjects_listed),
    Route("subjects.get", Permission.SUBJECTS_READ, True,
          lambda w, c, role, rid: w.api.get(f"/v1/subjects/{rid}", headers=c.auth(role)),
          prepare=lambda w, t: t.subject_id, unknown=UNKNOWN_SUBJECT),
    Route("subjects.erase", Permission.SUBJECTS_WRITE, True,
          lambda w, c, role, rid: w.api.delete(f"/v1/subjects/{rid}", headers=c.auth(role)),
          prepare=lambda w, t: w.new_subject(t), unknown=UNKNOWN_SUBJECT, unchanged=subject_kept),
    Route("faces.enroll", Permission.FACES_WRITE, True,
          lambda w, c, role, rid: w.api.post(f"/v1/subjects/{rid}/faces", headers=c.auth(role),
                                             files={"image": image(w, "astronaut")}),
          prepare=lambda w, t: w.new_subject(t), unknown=UNKNOWN_SUBJECT, unchanged=no_face),
    Route("search", Permission.SEARCH, False,
          lambda w, c, role, _: w.api.post("/v1/search", headers=c.auth(role), data=FORM,
                                           files={"image": image(w, "probe")}),
          check=check_search),
    Route("verify.images", Permission.VERIFY, False,
          lambda w, c, role, _: w.api.post("/v1/verify", headers=c.auth(role),
                                           files={"image_a": image(w, "astronaut"), "image_b": image(w, "probe")})),
    Route("verify.subject", Permission.VERIFY, True,
          lambda w, c, role, rid: w.api.post("/v1/verify", headers=c.auth(role), data={"subject_id": rid},
                                             files={"image": image(w, "probe")}),
          prepare=lambda w, t: t.subject_id, unknown=UNKNOWN_SUBJECT),
    Route("usage", Permission.USAGE_READ, False,
          lambda w, c, role, _: w.api.get("/v1/usage", headers=c.auth(role)), check=check_usage),
    Route("audit", Permission.AUDIT_READ, False,
          lambda w, c, role, _: w.api.get("/v1/audit?limit=1000", headers=c.auth(role)), check=check_audit),
    # The web console's routes (#6).
    Route("detect", Permission.DETECT, False,
          lambda w, c, role, _: w.api.post("/v1/detect", headers=c.auth(role), files={"image": image(w, "probe")})),
    Route("reviews.create", Permission.REVIEW_WRITE, False,
          lambda w, c, role, rid: w.api.post("/v1/reviews", headers=c.auth(role), json=json.loads(rid)),
          prepare=lambda w, t: review_of(w, t), unknown=UNKNOWN_REVIEW, check=check_review, unchanged=no_review),
    Route("reviews.list", Permission.REVIEW_READ, False,
          lambda w, c, role, _: w.api.get("/v1/reviews", headers=c.auth(role)), check=check_reviews_listed),
    Route("faces.thumbnail", Permission.REVIEW_READ, True,
          lambda w, c, role, rid: w.api.get(f"/v1/faces/{rid}/thumbnail", headers=c.auth(role)),
          prepare=lambda w, t: face_with_thumbnail(w, t), unknown=UNKNOWN_FACE),
    Route("settings.read", Permission.SETTINGS_MANAGE, False,
          lambda w, c, role, _: w.api.get("/v1/tenant/settings", headers=c.auth(role))),
    Route("settings.update", Permission.SETTINGS_MANAGE, False,
          lambda w, c, role, _: w.api.request("PATCH", "/v1/tenant/settings", headers=c.auth(role), json={"thumbnails": True})),
    # Sign-in through the organisation's OpenID Connect provider (decision 021).
    Route("sign_in.read", Permission.SIGN_IN_MANAGE, False,
          lambda w, c, role, _: w.api.get("/v1/tenant/sign-in", headers=c.auth(role)), check=check_sign_in),
    Route("sign_in.connect", Permission.SIGN_IN_MANAGE, False,
          lambda w, c, role, _: w.api.request("PUT", "/v1/tenant/sign-in", headers=c.auth(role), json={
              "issuer": w.issuer, "client_id": "matrix", "client_secret": "matrix-secret",
              "roles": [{"value": "faceward-searchers", "role": "searcher"}]}), check=check_sign_in),
    Route("sign_in.disconnect", Permission.SIGN_IN_MANAGE, False,
          lambda w, c, role, _: w.api.delete("/v1/tenant/sign-in", headers=c.auth(role))),
    Route("audit.verify", Permission.AUDIT_READ, False,
          lambda w, c, role, _: w.api.get("/v1/audit/verify", headers=c.auth(role)), check=check_chain),
    # faceward reenroll through the API (#15).
    Route("migration.begin", Permission.GALLERY_MIGRATE, False,
          lambda w, c, role, _: w.api.post("/v1/gallery/migration", headers=c.auth(role)), refusal="already_migrated"),
    Route("migration.face", Permission.GALLERY_MIGRATE, True,
          lambda w, c, role, rid: w.api.post(f"/v1/gallery/migration/subjects/{rid}/faces", headers=c.auth(role),
                                             files={"image": image(w, "probe")}),
          prepare=lambda w, t: t.subject_id, unknown=UNKNOWN_SUBJECT, refusal="model_mismatch"),
    Route("migration.finish", Permission.GALLERY_MIGRATE, False,
          lambda w, c, role, _: w.api.post("/v1/gallery/migration/finish", headers=c.auth(role), json={}),
          refusal="model_mismatch"),
]

CELLS = [(r, role, side) for r in ROUTES for role in Role for side in ("own", "foreign")]


@pytest.fixture(scope="module")
def mworld(world: World, oidc_providers: Providers) -> World:
    world.issuer = oidc_providers.main
    return world


def test_the_matrix_covers_every_api_route(mworld: World) -> None:
    paths = mworld.app.openapi()["paths"]
    api_routes = {(method, path) for path, ops in paths.items() for method in ops if path.startswith("/v1/")}
    assert len(api_routes) == 25  # /v1/verify has two modes: 26 matrix rows
    assert len(ROUTES) == 26 and len(CELLS) == 208


def test_policy_is_what_the_issue_asks() -> None:
    assert {r for r, p in ROLE_PERMISSIONS.items() if Permission.USAGE_READ in p} == {Role.ADMIN}
    assert {r for r, p in ROLE_PERMISSIONS.items() if Permission.AUDIT_READ in p} == {Role.ADMIN, Role.AUDITOR}


@pytest.mark.parametrize(("route", "role", "side"), CELLS, ids=[f"{r.name}-{role.value}-{side}" for r, role, side in CELLS])
def test_cell(mworld: World, route: Route, role: Role, side: str) -> None:
    w = mworld
    allowed = route.permission in ROLE_PERMISSIONS[role]
    if route.targeted:
        caller, target = w.own, (w.own if side == "own" else w.foreign)
    else:
        caller = target = w.own if side == "own" else w.foreign
    resource = route.prepare(w, target) if route.prepare else ""
    response = route.call(w, caller, role, resource)

    if not allowed:
        assert response.status_code == 403, response.text
        assert response.json()["error"]["code"] == "forbidden"
        if route.unchanged:
            assert route.unchanged(w, target, resource)
        return
    if route.targeted and side == "foreign":
        unknown = route.call(w, caller, role, route.unknown)
        assert response.status_code == unknown.status_code == 404, response.text
        assert response.json() == unknown.json()
        assert response.content == unknown.content
        if route.unchanged:
            assert route.unchanged(w, target, resource)
        return
    if route.refusal:
        assert response.status_code not in (401, 403, 404), response.text
        assert response.json()["error"]["code"] == route.refusal, response.text
        return
    assert 200 <= response.status_code < 300, response.text
    if route.check:
        route.check(w, caller, target, resource, response)


@pytest.mark.parametrize("route", ROUTES, ids=[r.name for r in ROUTES])
def test_without_a_valid_key_every_route_is_401(mworld: World, route: Route) -> None:
    w = mworld
    revoked_id, revoked = w.new_key(w.own, Role.ADMIN)
    w.services.accounts.revoke_key(w.own.id, revoked_id, actor="operator", source="test")
    resource = route.unknown
    good = w.own.auth(Role.ADMIN)["Authorization"]
    wrong = good[:-1] + ("y" if good.endswith("x") else "x")  # a changed last character (never the key itself)
    bad = [{}, {"Authorization": "Bearer nonsense"}, {"Authorization": f"Bearer {revoked}"},
           {"Authorization": "Basic YWRtaW46YWRtaW4="}, {"Authorization": wrong}]
    for headers in bad:
        response = route.call(w, _Fixed(headers), Role.ADMIN, resource)  # type: ignore[arg-type]
        assert response.status_code == 401, (headers, response.text)
        assert response.json()["error"]["code"] == "unauthenticated"
        assert response.headers["www-authenticate"].startswith("Bearer")


class _Fixed:
    """A stand-in caller whose credentials are whatever headers a test gives."""

    def __init__(self, headers: dict[str, str]) -> None:
        self.headers = headers

    def auth(self, _role: Role) -> dict[str, str]:
        return self.headers
