"""The top-level command: ``faceward --version``."""

from __future__ import annotations

from typer.testing import CliRunner

from faceward import __version__
from faceward.cli.main import app


def test_version_prints_and_exits() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"faceward {__version__}"
