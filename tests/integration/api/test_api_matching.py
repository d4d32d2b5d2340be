"""Enroll, search, verify and erase through HTTP with real photos, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib

from apiworld import World, blank_jpeg

from faceward.security.permissions import Role

FORM = {"purpose": "identify a witness for case review", "case_reference": "CASE-2026-0042"}


def jpeg(name: str, data: bytes) -> tuple[str, bytes, str]:
    return (f"{name}.jpg", data, "image/jpeg")


def test_enroll_search_verify_erase(world: World, astronaut_jpeg: bytes, astronaut_probe: bytes) -> None:
    w = world
    enroller, searcher = w.own.auth(Role.ENROLLER), w.own.auth(Role.SEARCHER)
    created = w.api.post("/v1/subjects", headers=enroller, json={
        "display_name": "Eileen Collins",
        "consent": {"basis": "explicit_consent", "reference": "FORM-77", "given_at": "2026-01-02T03:04:05+01:00",
                    "expires_at": "2999-01-01T00:00:00Z"},
    })
    assert created.status_code == 201, created.text
    subject = created.json()
    assert subject["consent"]["given_at"] == "2026-01-02T02:04:05Z"
    subject_id = subject["id"]

    enrolled = w.api.post(f"/v1/subjects/{subject_id}/faces", headers=enroller, files={"image": jpeg("a", astronaut_jpeg)})
    assert enrolled.status_code == 201, enrolled.text
    face = enrolled.json()
    assert face["subject_id"] == subject_id and not face["duplicate"]
    assert face["image_sha256"] == hashlib.sha256(astronaut_jpeg).hexdigest()
    again = w.api.post(f"/v1/subjects/{subject_id}/faces", headers=enroller, files={"image": jpeg("a", astronaut_jpeg)})
    assert again.status_code == 200 and again.json()["duplicate"] and again.json()["id"] == face["id"]
    shown = w.api.get(f"/v1/subjects/{subject_id}", headers=enroller).json()
    assert [f["id"] for f in shown["faces"]] == [face["id"]]

    found = w.api.post("/v1/search", headers=searcher, data={**FORM, "k": "5"}, files={"image": jpeg("probe", astronaut_probe)})
    assert found.status_code == 200, found.text
    result = found.json()
    mine = next(c for c in result["candidates"] if c["subject_id"] == subject_id)
    assert mine["display_name"] == "Eileen Collins" and mine["decision"] == "lead" and mine["lead_only"] is True
    assert mine["score"] >= result["threshold"]["score"] and 0 <= mine["estimated_fmr"] < 1e-2
    assert [c["rank"] for c in result["candidates"]] == list(range(1, len(result["candidates"]) + 1))
    assert "identification" in result["notice"] and result["faces_in_probe"] == 1
    assert "descriptor" not in found.text and "template" not in found.text and "embedding" not in found.text
    assert len(w.api.post("/v1/search", headers=searcher, data={**FORM, "k": "1"},
                          files={"image": jpeg("probe", astronaut_probe)}).json()["candidates"]) == 1

    audit = [e for e in w.services.audit.entries(w.own.id, limit=1000) if e.action == "search"][-2]
    assert audit.details["purpose"] == FORM["purpose"] and audit.details["case_reference"] == FORM["case_reference"]
    assert audit.details["probe_sha256"] == hashlib.sha256(astronaut_probe).hexdigest()
    assert subject_id in audit.details["candidates"] and audit.actor == f"key:{w.own.key_ids[Role.SEARCHER]}"
    usage = w.api.get("/v1/usage", headers=w.own.auth(Role.ADMIN)).json()
    assert usage["searches"][w.own.key_ids[Role.SEARCHER]]

    pair = w.api.post("/v1/verify", headers=searcher, files={"image_a": jpeg("a", astronaut_jpeg), "image_b": jpeg("b", astronaut_probe)})
    assert pair.status_code == 200 and pair.json()["decision"] == "lead" and pair.json()["compared_faces"] == 1
    one = w.api.post("/v1/verify", headers=searcher, data={"subject_id": subject_id}, files={"image": jpeg("b", astronaut_probe)})
    assert one.status_code == 200 and one.json()["decision"] == "lead"
    assert "identification" in one.json()["notice"]
    verify_audit = [e for e in w.services.audit.entries(w.own.id, limit=1000) if e.action == "verify"][-1]
    assert verify_audit.details == {"mode": "subject", "subject_id": subject_id, "decision": "lead",
                                    "image_sha256": [hashlib.sha256(astronaut_probe).hexdigest()]}

    erased = w.api.delete(f"/v1/subjects/{subject_id}", headers=enroller)
    assert erased.status_code == 200 and erased.json() == {"subject_id": subject_id, "erased": True, "faces_erased": 1}
    after = w.api.post("/v1/search", headers=searcher, data=FORM, files={"image": jpeg("probe", astronaut_probe)}).json()
    assert subject_id not in {c["subject_id"] for c in after["candidates"]}
    assert w.api.get(f"/v1/subjects/{subject_id}", headers=enroller).status_code == 404
    erasure = [e for e in w.services.audit.entries(w.own.id, limit=1000) if e.action == "subject.erase"][-1]
    assert erasure.details == {"subject_id": subject_id, "face_ids": [face["id"]]}


def test_no_face_and_bad_form_fields(sqlite_world: World, astronaut_probe: bytes) -> None:
    w = sqlite_world
    searcher = w.own.auth(Role.SEARCHER)
    blank = w.api.post("/v1/search", headers=searcher, data=FORM, files={"image": jpeg("blank", blank_jpeg())})
    assert blank.status_code == 422 and blank.json()["error"]["code"] == "no_face"
    for data in ({"purpose": "x"}, {"case_reference": "y"}, {**FORM, "purpose": "   "}, {**FORM, "k": "0"},
                 {**FORM, "k": "51"}, {**FORM, "k": "ten"}, {**FORM, "case_reference": "a\x00b"}):
        bad = w.api.post("/v1/search", headers=searcher, data=data, files={"image": jpeg("p", astronaut_probe)})
        assert bad.status_code == 422, (data, bad.text)
        assert bad.json()["error"]["code"] == "invalid_request"
    no_face = w.api.post(
        "/v1/verify", headers=searcher, files={"image_a": jpeg("a", blank_jpeg()), "image_b": jpeg("b", astronaut_probe)}
    )
    assert no_face.status_code == 422 and no_face.json()["error"]["code"] == "no_face"
    assert [e.action for e in w.services.audit.entries(w.own.id, limit=1000)].count("search") == 0


def blurred(jpeg_bytes: bytes, radius: float) -> bytes:
    from io import BytesIO

    from PIL import Image, ImageFilter

    buffer = BytesIO()
    Image.open(BytesIO(jpeg_bytes)).filter(ImageFilter.GaussianBlur(radius)).save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def test_a_blurred_face_is_enrolled_with_what_it_costs_and_a_blurred_probe_is_warned_of(
    sqlite_world: World, astronaut_jpeg: bytes
) -> None:
    """Decision 037: enrollment refuses only what measurably hurts a gallery photo; a blurred face that does not
    is taken, with a warning, while a search with it as the probe still warns (the probe's own limits)."""
    w = sqlite_world
    enroller, searcher = w.own.auth(Role.ENROLLER), w.own.auth(Role.SEARCHER)
    subject_id = w.new_subject(w.own)
    soft = blurred(astronaut_jpeg, 3)
    enrolled = w.api.post(f"/v1/subjects/{subject_id}/faces", headers=enroller, files={"image": jpeg("soft", soft)})
    assert enrolled.status_code == 201, enrolled.text
    face = enrolled.json()
    assert face["quality"]["sharpness"] < 0.38
    [warning] = face["warnings"]
    assert warning.startswith("enrolled, but face is blurred") and "84%" in warning
    sharp = w.api.post(f"/v1/subjects/{subject_id}/faces", headers=enroller, files={"image": jpeg("sharp", astronaut_jpeg)})
    assert sharp.status_code == 201 and sharp.json()["warnings"] == []
    again = w.api.post(f"/v1/subjects/{subject_id}/faces", headers=enroller, files={"image": jpeg("soft", soft)})
    assert again.json()["duplicate"] and again.json()["warnings"] == [warning]
    found = w.api.post("/v1/search", headers=searcher, data=FORM, files={"image": jpeg("probe", soft)}).json()
    assert any(x.startswith("probe quality: face is blurred") and "78%" in x for x in found["warnings"])
