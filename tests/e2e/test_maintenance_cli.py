"""The maintenance commands end to end: enroll, back up, erase, restore into a fresh home, doctor, retention, purge."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from faceward.cli.main import app
from tests.conftest import jpeg

WHY = ("--purpose", "end-to-end check", "--case-reference", "TEST-1")  # a search states why, as the API's does


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


@pytest.fixture()
def batch(tmp_path: Path, astronaut: np.ndarray, astronaut_probe: bytes) -> Path:
    root = tmp_path / "batch"
    (root / "Eileen").mkdir(parents=True)
    (root / "Pam").mkdir()
    (root / "Eileen" / "a.jpg").write_bytes(jpeg(astronaut))
    (root / "Pam" / "b.jpg").write_bytes(astronaut_probe)
    return root


def subjects() -> dict[str, str]:
    code, out = run("subjects", "list", "--json")
    assert code == 0, out
    return {s["display_name"]: s["id"] for s in json.loads(out)["subjects"]}


def test_backup_erase_restore_into_a_fresh_home(
    home: Path, batch: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, astronaut: np.ndarray
) -> None:
    code, out = run("enroll", str(batch), "--basis", "explicit_consent", "--reference", "r", "--workers", "1", "--json")
    assert code == 0 and json.loads(out)["enrolled"] == 2, out
    ids = subjects()
    archive = tmp_path / "backup.fwb"
    code, out = run("backup", str(archive), "--json")
    assert code == 0 and json.loads(out)["ledger"]["count"] == 0, out
    code, out = run("subjects", "delete", ids["Eileen"], "--yes")
    assert code == 0, out

    # A fresh home; the same master key (environment) and the ledger kept beside it.
    monkeypatch.setenv("FACEWARD_HOME", str(tmp_path / "fresh"))
    monkeypatch.setenv("FACEWARD_ERASURE_LEDGER", str(home / "erasure-ledger.jsonl"))
    code, out = run("restore", str(archive), "--json")
    assert code == 0, out
    assert json.loads(out)["subjects_erased_again"] == 1
    assert subjects() == {"Pam": ids["Pam"]}
    probe = tmp_path / "probe.jpg"
    probe.write_bytes(jpeg(astronaut[:, ::-1]))
    code, out = run("search", str(probe), *WHY, "--json")
    assert code == 0 and [c["subject_id"] for c in json.loads(out)["candidates"]] == [ids["Pam"]], out
    code, out = run("doctor", "--json")
    report = json.loads(out)
    assert code == 0 and report["ok"] and report["checks"]["erasures"]["ledger_entries"] == 2  # its key and the erasure
    assert ids["Eileen"].encode() not in (home / "erasure-ledger.jsonl").read_bytes()

    code, out = run("restore", str(archive))
    assert code != 0 and "fresh home" in out  # never over a store that holds data


def test_doctor_exits_non_zero_until_repaired(home: Path, batch: Path) -> None:
    code, out = run("enroll", str(batch), "--basis", "explicit_consent", "--reference", "r", "--workers", "1", "--json")
    assert code == 0, out
    ids = subjects()
    from faceward.bootstrap import master_keyring
    from faceward.settings import Settings
    from faceward.store.ledger import ErasureLedger

    (tenant,) = {line.strip() for line in (home / "local-tenant").read_text().splitlines()}
    ledger = ErasureLedger(home / "erasure-ledger.jsonl", master_keyring(Settings()))
    ledger.record_subject(tenant, ids["Pam"])  # crash after the ledger write
    code, out = run("doctor", "--json")
    assert code == 1 and json.loads(out)["problems"][0]["problem"] == "subject_still_present"
    code, out = run("doctor", "--repair", "--json")
    assert code == 0 and json.loads(out)["ok"], out
    assert subjects() == {"Eileen": ids["Eileen"]}


def test_retention_and_purge(home: Path, batch: Path) -> None:
    code, out = run("enroll", str(batch), "--basis", "explicit_consent", "--reference", "r", "--workers", "1", "--json")
    assert code == 0, out
    code, out = run("retention", "--json")
    assert code == 0 and json.loads(out)["retention_days"] is None
    code, out = run("retention", "30", "--json")
    assert code == 0 and json.loads(out)["retention_days"] == 30
    code, out = run("retention", "0")
    assert code != 0
    code, out = run("purge", "--json")  # everyone enrolled today: nothing is due
    assert code == 0 and json.loads(out)["purged"] == 0, out
    assert len(subjects()) == 2
