"""The top-level command: ``faceward --version``, every command's help, and human output (tables, reports)."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


def _commands(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield path
    for name, sub in getattr(command, "commands", {}).items():
        yield from _commands(sub, (*path, name))


def test_help_prints_no_type_after_a_flag() -> None:
    """Every command's --help: a flag is a bare ``--json``, never ``--json <bool>``; options that take a
    value keep their type (#12: typer's rich panels printed ``<bool>`` after every flag)."""
    import typer

    paths = list(_commands(typer.main.get_command(app)))
    assert len(paths) > 25  # every command and group was walked
    for path in paths:
        result = CliRunner().invoke(app, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "<bool>" not in result.output, (path, result.output)
        assert re.search(r"^\s+--help\s+Show this message", result.output, re.M), (path, result.output)
    listed = CliRunner().invoke(app, ["subjects", "list", "--help"]).output
    assert re.search(r"--limit <int>", listed) and re.search(r"^\s+--json\s+Print", listed, re.M)


def test_tables_keep_ids_whole_and_fold_the_rest_at_80_columns() -> None:
    from rich.console import Console

    from faceward.cli.common import table

    ids = [f"s_{n:028x}" for n in (1, 2)]
    names = ["Maximiliana Konstantinopoulou-Featherstonehaugh of the Western Isles", "Bo"]
    console = Console(width=80, file=io.StringIO(), record=True)
    console.print(table(
        ["rank", "subject", "name", "score", "est. FMR", "decision"],
        [[str(i + 1), ids[i], names[i], "0.9312", "1.00e-03", "below_threshold"] for i in range(2)],
        whole={"rank", "subject", "score", "est. FMR", "decision"},
    ))
    text = console.export_text()
    lines = text.splitlines()
    assert max(len(line.rstrip()) for line in lines) <= 80
    for subject in ids:  # each id whole, on one line
        assert sum(subject in line for line in lines) == 1
    assert sum("below_threshold" in line for line in lines) == 2
    # The long name folded onto more lines (not cut, not pushing the ids apart): every piece is there, in order.
    assert len(lines) > 4
    column = lines[0].index("name")
    pieces = "".join(line[column:].split("  ")[0].strip() if i else "" for i, line in enumerate(lines[1:-1], 1))
    assert pieces.replace(" ", "").startswith(names[0].replace(" ", "")[:20]) and "Isles" in text


def test_a_nested_report_reads_as_a_table_not_a_dict(capsys: CaptureFixture[str]) -> None:
    from faceward.cli.common import emit_report

    report = {"version": "1.2.3", "providers": ["CPUExecutionProvider", "CUDAExecutionProvider"], "manifest": None,
              "face_engine": {"model_id": "dlib-resnet-v1", "provenance": {"licence": "CC0 1.0", "sha256": "ab" * 32}}}
    emit_report(report, False)
    human = capsys.readouterr().out
    assert "{" not in human and "[" not in human and "None" not in human and "'" not in human
    rows = [line.rstrip() for line in human.splitlines()]
    assert rows[0].split() == ["version", "1.2.3"] and rows[1].split() == ["providers", "CPUExecutionProvider,", "CUDAExecutionProvider"]
    assert rows[2].split() == ["manifest", "-"] and rows[3].strip() == "face engine"
    assert rows[4].startswith("  model id") and rows[5].startswith("  provenance") and rows[6].startswith("    licence")
    emit_report(report, True)
    assert json.loads(capsys.readouterr().out) == report
