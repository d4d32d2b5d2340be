"""The package type-checks under ``mypy --strict`` (pyproject's settings).

Typed code is a house rule, and the check has caught a real fault: ``faceward search``'s table
read fields of a result type that had changed shape, which only a person reading the table hit.
"""

from __future__ import annotations

from pathlib import Path

from mypy import api

REPO = Path(__file__).resolve().parents[2]


def test_the_package_is_clean_under_strict_mypy(tmp_path: Path) -> None:
    report, errors, status = api.run([str(REPO / "src" / "faceward"), "--cache-dir", str(tmp_path / "cache"),
                                      "--config-file", str(REPO / "pyproject.toml")])
    assert status == 0, report + errors
    assert "Success: no issues found" in report
