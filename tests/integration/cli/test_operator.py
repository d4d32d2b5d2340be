"""Operator commands end to end on the embedded home: tenants, audit verify and timeline, master key rotation."""

from __future__ import annotations

import base64
import json
import os
import sqlite3
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from faceward.cli.common import out
from faceward.cli.keys import keys_app
from faceward.cli.operator import audit_app, tenant_app

app = typer.Typer()
app.add_typer(tenant_app, name="tenant")
app.add_typer(audit_app, name="audit")
app.add_typer(keys_app, name="keys")
runner = CliRunner()


def run(*args: str, code: int = 0) -> dict:  # type: ignore[type-arg]
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    return json.loads(result.stdout) if "--json" in args and result.stdout.strip() else {}


def test_tenant_lifecycle(home: Path) -> None:
    created = run("tenant", "create", "Acme Police", "--json")
    assert set(created) == {"tenant_id", "admin_key"} and created["admin_key"].startswith("fw_")
    other = run("tenant", "create", "Bravo", "--json")["tenant_id"]
    [a, b] = run("tenant", "list", "--json")["tenants"]
    assert (a["id"], a["name"], a["keys"], a["status"]) == (created["tenant_id"], "Acme Police", 1, "active")
    assert run("tenant", "suspend", other, "--json") == {"tenant_id": other, "status": "suspended"}
    assert run("tenant", "list", "--json")["tenants"][1]["status"] == "suspended"
    run("tenant", "resume", other)
    renewed = run("tenant", "renew-transform", other, "--json")
    assert renewed == {"tenant_id": other, "transform_generation": 1}
    assert run("tenant", "renew-transform", other, "--json")["transform_generation"] == 2
    assert "generation 3" in runner.invoke(app, ["tenant", "renew-transform", other]).output
    missing = runner.invoke(app, ["tenant", "renew-transform", "t_nope"])
    assert missing.exit_code == 2 and "no such tenant" in missing.output and "Traceback" not in missing.output
    minted = run("tenant", "admin-key", other, "--json")
    assert minted["admin_key"].startswith("fw_" + minted["key_id"] + "_")
    run("tenant", "delete", other, code=2)  # needs --yes
    assert run("tenant", "delete", other, "--yes", "--json") == {"tenant_id": other, "deleted": True}
    assert [t["id"] for t in run("tenant", "list", "--json")["tenants"]] == [created["tenant_id"]]
    result = runner.invoke(app, ["tenant", "suspend", "t_nope"])
    assert result.exit_code == 2 and "no such tenant" in result.output and "Traceback" not in result.output


def test_audit_verify_and_timeline(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(out, "_width", 250)
    a = run("tenant", "create", "Acme", "--json")["tenant_id"]
    b = run("tenant", "create", "Bravo", "--json")["tenant_id"]
    run("tenant", "suspend", b)
    report = run("audit", "verify", "--json")
    assert (report["ok"], report["entries"], report["first_bad"]) == (True, 5, None)
    assert run("audit", "verify", "--tenant", a, "--json")["entries"] == 2
    timeline = run("audit", "timeline", "--since", "2000-01-01", "--json")["entries"]
    assert [(e["tenant_id"], e["action"]) for e in timeline] == [
        (a, "tenant.create"), (a, "key.create"), (b, "tenant.create"), (b, "key.create"), (b, "tenant.suspend")
    ]
    assert run("audit", "timeline", "--until", "2000-01-01", "--json")["entries"] == []
    assert len(run("audit", "timeline", "--tenant", b, "--action", "tenant.suspend", "--json")["entries"]) == 1
    human = runner.invoke(app, ["audit", "timeline"]).output
    assert "tenant.suspend" in human and "operator" in human
    assert runner.invoke(app, ["audit", "timeline", "--since", "yesterday"]).exit_code == 2

    with sqlite3.connect(home / "faceward.db") as db:  # an intruder deletes B's second entry
        db.execute("DELETE FROM audit_log WHERE tenant_id = ? AND seq = 2", (b,))
    result = runner.invoke(app, ["audit", "verify", "--json"])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert (report["ok"], report["first_bad"], report["tenant"]) == (False, 2, b)
    assert run("audit", "verify", "--tenant", a, "--json")["ok"]


def test_rotate_master(home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    created = run("tenant", "create", "Acme", "--json")
    new_key = os.urandom(32)
    path = tmp_path / "new.key"
    path.write_text(base64.b64encode(new_key).decode())
    path.chmod(0o644)
    assert runner.invoke(app, ["keys", "rotate-master", "--new-key-file", str(path)]).exit_code == 2  # world-readable
    path.chmod(0o600)
    assert runner.invoke(app, ["keys", "rotate-master", "--new-key-file", str(path)]).exit_code == 0
    monkeypatch.setenv("FACEWARD_MASTER_KEY", base64.b64encode(new_key).decode())
    assert run("tenant", "list", "--json")["tenants"][0]["name"] == "Acme"
    assert run("keys", "rotate-master", "--new-key-file", str(path), code=2) == {}  # already the key in use
    # tenant.create and key.create: the rotation is the host's act, in the operator chain, not the tenant's
    assert run("audit", "verify", "--tenant", created["tenant_id"], "--json")["entries"] == 2
    assert run("audit", "verify", "--operator", "--json")["ok"] is True


def test_registered_on_the_faceward_command() -> None:
    from faceward.cli.main import app as main_app

    output = runner.invoke(main_app, ["--help"]).output
    for name in ("tenant", "audit", "keys"):
        assert name in output


def test_rotate_master_online_with_the_key_file(home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert run("keys", "rotate-master", "--online", code=2) == {}  # a key in the environment cannot be followed
    monkeypatch.delenv("FACEWARD_MASTER_KEY")
    from faceward.security.crypto import write_master_key_file

    old = write_master_key_file(home / "master.key")
    created = run("tenant", "create", "Acme", "--json")
    done = run("keys", "rotate-master", "--online", "--json")
    assert done["rotated"] >= 1 and done["key_file"] == str(home / "master.key")
    assert (home / "master.key").read_text() != base64.b64encode(old).decode() + "\n"
    assert Path(done["retired_key_file"]).read_text() == base64.b64encode(old).decode() + "\n"
    assert not (home / "master.key.next").exists()
    assert run("tenant", "list", "--json")["tenants"][0]["name"] == "Acme"  # the new key file alone opens it
    assert run("audit", "verify", "--tenant", created["tenant_id"], "--json")["ok"] is True
    assert run("audit", "verify", "--operator", "--json")["ok"] is True
