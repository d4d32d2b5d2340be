"""Backup retention: --keep and --max-age delete older faceward backups in the folder, and nothing else."""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from typer.testing import CliRunner

from faceward.cli.main import app
from faceward.errors import InvalidInput
from faceward.security.crypto import Keyring
from faceward.store.backup import backup
from faceward.store.backup_prune import backups_in, prune_backups
from faceward.store.ledger import ErasureLedger
from faceward.store import SqlStore

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)


def make_backups(tmp_path: Path, days_ago: list[int]) -> tuple[Path, list[Path]]:
    url = f"sqlite:///{tmp_path / 'home' / 'faceward.db'}"
    SqlStore.open(url).close()
    keyring = Keyring(os.urandom(32))
    ledger = ErasureLedger(tmp_path / "ledger.jsonl", keyring)
    folder = tmp_path / "backups"
    made = []
    for days in days_ago:
        target = folder / f"b-{days}.fwb"
        backup(url, keyring, ledger, target, scratch=tmp_path, now=NOW - timedelta(days=days))
        made.append(target)
    return folder, made


def test_keep_and_max_age(tmp_path: Path) -> None:
    folder, made = make_backups(tmp_path, [0, 1, 5, 40, 90])
    (folder / "notes.txt").write_text("not a backup")
    assert [b.path for b in backups_in(folder)] == made
    removed = prune_backups(folder, keep=None, max_age=timedelta(days=30), now=NOW, protect=made[0])
    assert sorted(r.path.name for r in removed) == ["b-40.fwb", "b-90.fwb"]
    removed = prune_backups(folder, keep=2, max_age=None, now=NOW, protect=made[0])
    assert [r.path.name for r in removed] == ["b-5.fwb"]
    assert sorted(p.name for p in folder.iterdir()) == ["b-0.fwb", "b-1.fwb", "notes.txt"]
    assert prune_backups(folder, keep=None, max_age=None, now=NOW) == []


def test_the_backup_just_made_is_never_pruned(tmp_path: Path) -> None:
    folder, made = make_backups(tmp_path, [100, 3])
    removed = prune_backups(folder, keep=1, max_age=timedelta(days=1), now=NOW, protect=made[0])
    assert [r.path for r in removed] == [made[1]] and made[0].exists()


def test_bad_policies_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="--keep"):
        prune_backups(tmp_path, keep=0, max_age=None, now=NOW)
    with pytest.raises(InvalidInput, match="--max-age"):
        prune_backups(tmp_path, keep=None, max_age=timedelta(0), now=NOW)


def test_cli_backup_prunes(home: Path, tmp_path: Path) -> None:
    folder = tmp_path / "nightly"
    runner = CliRunner()
    assert runner.invoke(app, ["init"]).exit_code == 0
    for name in ("a.fwb", "b.fwb", "c.fwb"):
        result = runner.invoke(app, ["backup", str(folder / name), "--keep", "2", "--json"])
        assert result.exit_code == 0, result.output
    assert [p["path"] for p in json.loads(result.output)["pruned"]] == [str(folder / "a.fwb")]
    assert sorted(p.name for p in folder.iterdir()) == ["b.fwb", "c.fwb"]
    refused = runner.invoke(app, ["backup", str(folder / "d.fwb"), "--keep", "0"])
    assert refused.exit_code != 0 and "--keep" in refused.output and not (folder / "d.fwb").exists()
