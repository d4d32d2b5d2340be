"""A newcomer's first requests (#12, section 4): the root leads to the console, lists show faces."""

from __future__ import annotations

from apiworld import World

from faceward.security.permissions import Role


def test_the_root_redirects_to_the_console(sqlite_world: World) -> None:
    response = sqlite_world.api.get("/", follow_redirects=False)
    assert response.status_code == 307 and response.headers["location"] == "/console/"


def test_the_subject_list_shows_each_subjects_faces(sqlite_world: World) -> None:
    w = sqlite_world
    listed = w.api.get("/v1/subjects", headers=w.own.auth(Role.ENROLLER), params={"limit": 500})
    assert listed.status_code == 200
    by_id = {s["id"]: s for s in listed.json()["subjects"]}
    shown = w.api.get(f"/v1/subjects/{w.own.subject_id}", headers=w.own.auth(Role.ENROLLER)).json()
    assert shown["faces"] and by_id[w.own.subject_id]["faces"] == shown["faces"]


def test_the_audit_log_reads_newest_first_on_request(sqlite_world: World) -> None:
    w = sqlite_world
    auditor = w.own.auth(Role.AUDITOR)
    oldest = w.api.get("/v1/audit", headers=auditor, params={"limit": 5}).json()["entries"]
    newest = w.api.get("/v1/audit", headers=auditor, params={"limit": 5, "order": "newest"}).json()["entries"]
    assert [e["seq"] for e in oldest] == sorted(e["seq"] for e in oldest) and oldest[0]["seq"] == 1
    assert [e["seq"] for e in newest] == sorted((e["seq"] for e in newest), reverse=True)
    assert newest[0]["seq"] > oldest[-1]["seq"]
    assert w.api.get("/v1/audit", headers=auditor, params={"order": "sideways"}).status_code == 422
