"""The README documents every setting."""

from __future__ import annotations

from pathlib import Path

from faceward.settings import Settings

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_every_setting_is_in_the_readme() -> None:
    missing = [name for name in Settings.model_fields if f"`FACEWARD_{name.upper()}`" not in README]
    assert missing == []


def test_quick_start_is_two_commands() -> None:
    quick = README.split("## Quick start", 1)[1].split("## ", 1)[0]
    blocks = [b for b in quick.split("```bash")[1:]]
    commands = [line for b in blocks for line in b.split("```")[0].splitlines() if line and not line.startswith("#")]
    assert len(commands) == 2
    ci = (Path(__file__).resolve().parents[2] / ".ci" / "run").read_text()
    assert commands[1] in ci
