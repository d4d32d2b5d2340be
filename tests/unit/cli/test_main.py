"""The top-level command: ``faceward --version``."""

from __future__ import annotations

from pathlib import Path

from pytest import CaptureFixture, MonkeyPatch
from typer.testing import CliRunner

from faceward import __version__
from faceward.cli.main import app


def test_version_prints_and_exits() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"faceward {__version__}"


def test_restore_without_the_master_key_does_not_suggest_a_new_one(tmp_path: Path, monkeypatch: MonkeyPatch) -> None:
    for name in ("FACEWARD_MASTER_KEY", "FACEWARD_MASTER_KEY_FILE", "FACEWARD_CONFIG", "FACEWARD_KMS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FACEWARD_HOME", str(tmp_path / "fresh"))
    result = CliRunner().invoke(app, ["restore", str(tmp_path / "some.fwbackup")])
    assert result.exit_code != 0
    assert "the master key the backup was made under" in result.output and "cannot open it" in result.output


def test_human_output_shows_no_python_reprs(capsys: CaptureFixture[str]) -> None:
    from datetime import datetime, timezone

    from faceward.cli.common import emit_fields

    at = datetime(2026, 12, 1, 5, 30, tzinfo=timezone.utc)
    emit_fields({"created_at": at, "faces": [{"id": "f_1", "created_at": at}], "expires_at": None}, False)
    shown = capsys.readouterr().out
    assert "datetime" not in shown and "+00:00" not in shown
    assert shown.splitlines() == ["created_at: 2026-12-01T05:30:00Z",
                                  'faces: [{"id": "f_1", "created_at": "2026-12-01T05:30:00Z"}]', "expires_at: -"]
