"""Ambiguous or spoofing input (#12, section 3): refused with a 4xx saying why, in words."""

from __future__ import annotations

import pytest
from apiworld import World, blank_jpeg

from faceward.security.permissions import Role

CONSENT = {"basis": "explicit_consent", "reference": "form-1", "given_at": "2026-01-01T00:00:00Z"}


def error_of(response: object, status: int) -> dict[str, str]:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    error: dict[str, str] = response.json()["error"]  # type: ignore[attr-defined]
    return error


@pytest.mark.parametrize("parts", [2, 50])
def test_more_than_one_image_part_is_a_422(sqlite_world: World, parts: int) -> None:
    w = sqlite_world
    files = [("image", (f"{i}.jpg", blank_jpeg(), "image/jpeg")) for i in range(parts)]
    faces_before = w.faces(w.own)
    calls = [
        ("/v1/detect", w.own.auth(Role.SEARCHER), {}),
        ("/v1/search", w.own.auth(Role.SEARCHER), {"purpose": "p", "case_reference": "c"}),
        (f"/v1/subjects/{w.own.subject_id}/faces", w.own.auth(Role.ENROLLER), {}),
    ]
    for path, headers, data in calls:
        error = error_of(w.api.post(path, headers=headers, data=data, files=files), 422)
        assert error["code"] == "invalid_request" and f"not {parts}" in error["message"], error
    assert w.faces(w.own) == faces_before
    # One part is fine, and a repeated text field is refused the same way.
    assert w.api.post("/v1/detect", headers=w.own.auth(Role.SEARCHER), files=files[:1]).status_code == 200
    twice = w.api.post("/v1/search", headers=w.own.auth(Role.SEARCHER), files=files[:1],
                       data={"purpose": ["a", "b"], "case_reference": "c"})
    assert "purpose" in error_of(twice, 422)["message"]


@pytest.mark.parametrize("field, value", [
    ("display_name", "Zoë \u202elive"),  # shows as "Zoë evil"
    ("display_name", "Ann\u200b"),
    ("display_name", "\u2067Ann\u2069"),
    ("reference", "form\u202e1"),
])
def test_bidi_and_format_characters_are_refused_in_names_and_references(sqlite_world: World, field: str,
                                                                          value: str) -> None:
    w = sqlite_world
    body = {"display_name": "Ann", "consent": dict(CONSENT)}
    if field == "display_name":
        body["display_name"] = value
    else:
        body["consent"]["reference"] = value  # type: ignore[index]
    error = error_of(w.api.post("/v1/subjects", headers=w.own.auth(Role.ENROLLER), json=body), 422)
    assert "must not contain invisible formatting or text-direction characters (found U+" in error["message"]
    assert "pattern" not in error["message"] and "\\x" not in error["message"]


def test_search_texts_refuse_direction_characters_too(sqlite_world: World) -> None:
    w = sqlite_world
    response = w.api.post("/v1/search", headers=w.own.auth(Role.SEARCHER),
                          data={"purpose": "lead \u202echeck", "case_reference": "c-1"},
                          files={"image": ("a.jpg", w.images["probe"], "image/jpeg")})
    assert "purpose: must not contain invisible formatting" in error_of(response, 422)["message"]


def test_names_are_stored_in_normal_form_c(sqlite_world: World) -> None:
    w = sqlite_world
    decomposed = "Zoe\u0308 Ha\u0308user"
    created = w.api.post("/v1/subjects", headers=w.own.auth(Role.ENROLLER),
                         json={"display_name": decomposed, "consent": CONSENT})
    assert created.status_code == 201, created.text
    shown = w.api.get(f"/v1/subjects/{created.json()['id']}", headers=w.own.auth(Role.ENROLLER)).json()
    assert shown["display_name"] == "Zoë Häuser" and len(shown["display_name"]) == 10


def test_validation_messages_are_words_not_regexes(sqlite_world: World) -> None:
    w = sqlite_world
    for name, words in (("bad\x07name", "must not contain control characters"), ("   ", "must not be blank")):
        body = {"display_name": name, "consent": CONSENT}
        error = error_of(w.api.post("/v1/subjects", headers=w.own.auth(Role.ENROLLER), json=body), 422)
        assert error["message"] == f"display_name: {words}", error


def test_the_last_active_admin_key_cannot_be_revoked(sqlite_world: World) -> None:
    w = sqlite_world
    admin = w.own.auth(Role.ADMIN)
    own_id = w.own.key_ids[Role.ADMIN]
    error = error_of(w.api.delete(f"/v1/keys/{own_id}", headers=admin), 409)
    assert error["code"] == "last_admin_key" and "create another admin key" in error["message"]
    assert w.api.get("/v1/keys", headers=admin).status_code == 200  # still in
    created = w.api.post("/v1/keys", headers=admin, json={"role": "admin", "label": "second admin"})
    assert created.status_code == 201
    second = {"Authorization": f"Bearer {created.json()['secret']}"}
    assert w.api.delete(f"/v1/keys/{own_id}", headers=second).status_code == 204
    # Now the second is the last one: it cannot revoke itself either.
    second_id = created.json()["key"]["id"]
    assert error_of(w.api.delete(f"/v1/keys/{second_id}", headers=second), 409)["code"] == "last_admin_key"
    # Give the world its admin back for the other tests of this module.
    view, token = w.services.accounts.create_key(w.own.id, Role.ADMIN, "admin again", None, actor="operator", source="test")
    w.own.tokens[Role.ADMIN], w.own.key_ids[Role.ADMIN] = token, view.id
