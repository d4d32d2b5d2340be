"""Every CLI act on a gallery is accountable like an API act: audited as the operator, counted, same rules.

And one analysis path: the same photo enrolled through the CLI and through the
API gives byte-identical templates and the same quality verdict.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from faceward.bootstrap import master_keyring
from faceward.cli.main import app
from faceward.security.operator_log import OperatorLog, host_user
from faceward.security.permissions import Role
from faceward.settings import load_settings
from faceward.wiring import Services, build_services

PEOPLE = ["Angela_Bassett", "Abel_Pacheco"]


def run(*args: str, input: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), input=input)
    return result.exit_code, result.output


@pytest.fixture()
def gallery_dir(lfw_dir: Path, tmp_path: Path) -> Path:
    root = tmp_path / "gallery"
    for person in PEOPLE:
        (root / person).mkdir(parents=True)
        for src in sorted((lfw_dir / "images" / person).glob("*.jpg"))[:2]:
            shutil.copy(src, root / person / src.name)
    return root


def services() -> Services:
    return build_services(load_settings(), analysis_workers=False, command="test")


def local_tenant(home: Path) -> str:
    return (home / "local-tenant").read_text().strip()


def operator_entries(s: Services, tenant_id: str) -> list[dict[str, object]]:
    return [e.as_dict() for e in s.audit.entries(tenant_id, actor="operator", limit=1000)]


def test_cli_acts_are_audited_counted_and_ruled_like_the_api(home: Path, gallery_dir: Path, lfw_dir: Path) -> None:
    code, out = run("enroll", str(gallery_dir), "--basis", "explicit_consent", "--reference", "batch-1", "--workers", "1", "--json")
    assert code == 0, out
    assert json.loads(out)["enrolled"] >= 2
    probe = sorted((lfw_dir / "images" / "Angela_Bassett").glob("*.jpg"))[2]

    # A search states why, like POST /v1/search: refused in one line without a purpose or a case reference.
    code, out = run("search", str(probe), "--json")
    assert code != 0 and out.strip().count("\n") == 0 and "purpose" in out
    code, out = run("search", str(probe), "--purpose", "fraud inquiry", "--json")
    assert code != 0 and out.strip().count("\n") == 0 and "case reference" in out
    code, out = run("search", str(probe), "--purpose", "fraud inquiry", "--case-reference", "C-17", "--json")
    assert code == 0, out
    top = json.loads(out)["candidates"][0]
    code, out = run("verify", str(probe), "--subject", top["subject_id"], "--json")
    assert code == 0, out

    # Erasure asks first; --yes confirms.
    code, out = run("subjects", "delete", top["subject_id"], input="n\n")
    assert code != 0
    code, out = run("subjects", "delete", top["subject_id"], "--yes", "--json")
    assert code == 0, out

    s = services()
    tenant_id = local_tenant(home)
    entries = operator_entries(s, tenant_id)
    actions = [e["action"] for e in entries]
    assert actions.count("search") == 1 and actions.count("verify") == 1 and actions.count("subject.erase") == 1
    assert actions.count("face.enroll") >= 2 and actions.count("subject.create") == 2
    search = next(e for e in entries if e["action"] == "search")
    details = search["details"]
    assert isinstance(details, dict)
    assert details["purpose"] == "fraud inquiry" and details["case_reference"] == "C-17"
    assert details["operator"] == {"user": host_user(), "command": "search"}
    assert search["source"] == "cli"
    counted = {(row["key_id"], row["kind"]) for row in s.usage.counts(tenant_id)}
    assert {("operator", "search"), ("operator", "verify"), ("operator", "face.enroll")} <= counted

    code, out = run("audit", "verify", "--tenant", tenant_id, "--json")
    assert code == 0 and json.loads(out)["ok"], out
    s.gallery.store.close()


def test_operator_acts_outlive_the_tenant(home: Path) -> None:
    code, out = run("tenant", "create", "Acme", "--json")
    assert code == 0, out
    tenant_id = json.loads(out)["tenant_id"]
    assert run("tenant", "suspend", tenant_id)[0] == 0
    assert run("tenant", "delete", tenant_id, "--yes")[0] == 0
    log = OperatorLog(home / OperatorLog.FILE_NAME, keyring=master_keyring(load_settings()))
    mine = [(e.action, e.command) for e in log.entries() if e.tenant_id == tenant_id]
    assert mine == [("tenant.create", "tenant create"), ("tenant.suspend", "tenant suspend"),
                    ("tenant.delete", "tenant delete")]
    assert all(e.user == host_user() and e.actor == "operator" for e in log.entries())
    code, out = run("audit", "verify", "--operator", "--json")
    assert code == 0 and json.loads(out)["ok"], out


def test_cli_and_api_enroll_the_same_template(home: Path, gallery_dir: Path) -> None:
    photo = sorted((gallery_dir / PEOPLE[0]).glob("*.jpg"))[0]
    one = gallery_dir.parent / "one"
    (one / PEOPLE[0]).mkdir(parents=True)
    shutil.copy(photo, one / PEOPLE[0] / photo.name)
    code, out = run("enroll", str(one), "--basis", "explicit_consent", "--reference", "r-1", "--workers", "1", "--json")
    assert code == 0 and json.loads(out)["enrolled"] == 1, out

    from faceward.api.app import create_app

    settings = load_settings().model_copy(update={"analysis_workers": 0})
    api = create_app(settings)
    s: Services = api.state.services
    other, _ = s.accounts.create_tenant("API side")
    _, token = s.accounts.create_key(other, Role.ENROLLER, "enroller", None, actor="operator", source="test")
    with TestClient(api) as client:
        auth = {"Authorization": f"Bearer {token}"}
        subject = client.post("/v1/subjects", headers=auth, json={
            "display_name": PEOPLE[0],
            "consent": {"basis": "explicit_consent", "reference": "r-1", "given_at": "2026-01-01T00:00:00Z"}})
        assert subject.status_code == 201, subject.text
        enrolled = client.post(f"/v1/subjects/{subject.json()['id']}/faces", headers=auth,
                               files={"image": (photo.name, photo.read_bytes(), "image/jpeg")})
        assert enrolled.status_code == 201, enrolled.text

    def template_of(tenant_id: str) -> tuple[bytes, dict[str, float]]:
        (face,) = s.gallery.store.faces_since(tenant_id, 0, limit=10)
        subject = s.gallery.store.get_subject(tenant_id, face.subject_id)
        return s.gallery.vault.open_template(subject, face.id, face.template_sealed), face.quality

    cli_template, cli_quality = template_of(local_tenant(home))
    api_template, api_quality = template_of(other)
    assert cli_template == api_template
    assert cli_quality == api_quality
    s.gallery.store.close()
