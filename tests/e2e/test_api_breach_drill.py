"""Breach drill through the API: after enrolling and searching over HTTP, the SQLite file and its
WAL hold no tenant or subject name, consent reference, key label, template, probe, search purpose,
review outcome or search id (#12)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
from pathlib import Path

import httpx
import numpy as np
from sqlalchemy import select

from faceward.api.app import create_app
from faceward.settings import Settings
from faceward.store import schema
from faceward.vision import FaceEngine, decode_image
from faceward.vision.embed import to_template

TENANT = "Zebracorp Investigations"
NAME = "Quintessa Marlowe-Yarrow"
CONSENT_REF = "CONSENT-FORM-8837-XQ"
LABEL = "desk-of-inspector-Vimes"
PURPOSE = "locate-missing-person-Hrothgar"
CASE = "CASE-OMEGA-5519"


def database_bytes(home: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(home.glob("faceward.db*")))


def spellings(text: str) -> list[bytes]:
    return [text.encode(), text.encode("utf-16-le"), text.lower().encode(), text.upper().encode()]


def test_breach_drill_through_http(tmp_path: Path, astronaut_jpeg: bytes, astronaut_probe: bytes) -> None:
    home = tmp_path / "home"
    settings = Settings(home=home, master_key=base64.b64encode(os.urandom(32)).decode())
    engine = FaceEngine()
    app = create_app(settings, engine=engine)
    accounts = app.state.services.accounts
    _, admin = accounts.create_tenant(TENANT)

    async def drill() -> tuple[str, str, str]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://drill") as client:
            admin_h = {"Authorization": f"Bearer {admin}"}
            made = {}
            for role in ("enroller", "searcher"):
                r = await client.post("/v1/keys", headers=admin_h, json={"role": role, "label": LABEL})
                assert r.status_code == 201, r.text
                made[role] = {"Authorization": f"Bearer {r.json()['secret']}"}
            r = await client.post("/v1/subjects", headers=made["enroller"], json={
                "display_name": NAME,
                "consent": {"basis": "explicit_consent", "reference": CONSENT_REF, "given_at": "2026-01-01T00:00:00Z"},
            })
            assert r.status_code == 201, r.text
            subject_id = r.json()["id"]
            r = await client.post(f"/v1/subjects/{subject_id}/faces", headers=made["enroller"],
                                  files={"image": ("a.jpg", astronaut_jpeg, "image/jpeg")})
            assert r.status_code == 201, r.text
            r = await client.post("/v1/search", headers=made["searcher"], data={"purpose": PURPOSE, "case_reference": CASE},
                                  files={"image": ("p.jpg", astronaut_probe, "image/jpeg")})
            assert r.status_code == 200, r.text
            found = r.json()
            assert found["candidates"][0]["display_name"] == NAME  # readable through the API
            best = found["candidates"][0]
            r = await client.post("/v1/reviews", headers=made["searcher"], json={
                "search_id": found["search_id"], "subject_id": best["subject_id"], "face_id": best["face_id"],
                "review_token": best["review_token"],
                "outcome": "possible_match", "note": "same scar above the left eye",
            })
            assert r.status_code == 201, r.text
            wrong = admin[:-1] + ("A" if admin[-1] != "A" else "B")
            assert (await client.get("/v1/usage", headers={"Authorization": f"Bearer {wrong}"})).status_code == 401
            return subject_id, made["searcher"]["Authorization"].split()[1], found["search_id"]

    subject_id, searcher_secret, search_id = asyncio.run(drill())
    descriptor = engine.analyze(decode_image(astronaut_jpeg))[0].descriptor
    assert descriptor is not None
    template = to_template(descriptor)

    # A search, an enrollment, a review and an auth failure: the sealed payloads of their audit entries
    # have one length, so a reader of the file cannot count a tenant's searches by size (#12).
    services = app.state.services
    tenant_id = services.accounts.list_tenants()[0]["id"]
    actions = {e.seq: e.action for e in services.audit.entries(tenant_id, limit=1000)}
    assert {"search", "face.enroll", "review", "auth.failure"} <= set(actions.values()), actions
    with services.gallery.store.transaction(tenant_id) as conn:
        rows = conn.execute(select(schema.audit_log.c.seq, schema.audit_log.c.payload_sealed)
                            .where(schema.audit_log.c.tenant_id == tenant_id)).all()
    lengths = {actions[seq]: len(sealed) for seq, sealed in rows}
    assert len(set(lengths.values())) == 1, lengths
    # Names and references of any length up to the bucket are sealed to one length too.
    with services.gallery.store.transaction(tenant_id) as conn:
        sealed = conn.execute(select(schema.subjects.c.display_name_sealed, schema.subjects.c.consent_reference_sealed)).one()
    assert len(sealed[0]) == len(sealed[1]) == 1 + 12 + 256 + 16
    # Data files are the owner's alone.
    assert {p.name: p.stat().st_mode & 0o777 for p in home.glob("faceward.db*")} == {
        p.name: 0o600 for p in home.glob("faceward.db*")}

    for moment in ("while running", "after close"):
        stolen = database_bytes(home)
        assert len(stolen) > 10_000 and subject_id.encode() in stolen  # the drill read the right files
        # The review's outcome and the search it is about are sealed (#12).
        for secret in (TENANT, NAME, CONSENT_REF, LABEL, PURPOSE, CASE, "possible_match", search_id):
            for form in spellings(secret):
                assert form not in stolen, f"{secret!r} found in the database files {moment}"
        assert template not in stolen and template[:16] not in stolen and template[-16:] not in stolen
        assert np.asarray(descriptor, dtype=">f4").tobytes()[:16] not in stolen
        assert astronaut_probe[:64] not in stolen and astronaut_jpeg[:64] not in stolen
        # The enrolled photo's SHA-256 is kept only keyed: holding the photo does not tell whether it is enrolled.
        photo = hashlib.sha256(astronaut_jpeg)
        assert photo.hexdigest().encode() not in stolen and photo.digest() not in stolen
        assert photo.hexdigest().upper().encode() not in stolen
        assert searcher_secret.split("_")[2].encode() not in stolen and admin.split("_")[2].encode() not in stolen
        app.state.services.gallery.store.close()
