"""What every command shares: settings, one-line errors, JSON or rich output."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Collection
from datetime import date, datetime
from functools import wraps
from pathlib import Path
from typing import Any, NoReturn, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from faceward.errors import FacewardError
from faceward.settings import Settings, load_settings
from faceward.text import rfc3339

P = ParamSpec("P")
R = TypeVar("R")

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

def command_group(help: str, **options: Any) -> typer.Typer:
    """A group of commands with plain ``--help`` (as ``git`` and ``gh`` print it).

    Typer's rich help panels (``rich_markup_mode="rich"``, its default) print a type after
    every option, flags included (``--json <bool>``), as if a flag took a value; its plain
    formatter, which this selects, prints a type only for options that take a value
    (``--limit <int>``). ``tests/unit/cli/test_main.py`` checks every command's help.
    """
    return typer.Typer(help=help, no_args_is_help=True, rich_markup_mode=None, **options)


JsonOpt = typer.Option("--json", help="Print machine-readable JSON.")
TenantOpt = typer.Option("--tenant", help="Tenant id (default: the home's local tenant).")


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return rfc3339(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(type(value).__name__)


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, default=_default, indent=2) + "\n")


def emit_fields(data: dict[str, Any], as_json: bool) -> None:
    """A flat report: JSON, or one ``key: value`` line per field."""
    if as_json:
        emit_json(data)
        return
    for key, value in data.items():
        out.print(f"{key}: {shown(value)}", markup=False)


def shown(value: Any) -> str:
    """A value as a person reads it: yes/no, moments in RFC 3339 UTC, lists and mappings as JSON, never a repr."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (datetime, date)):
        return str(_default(value))
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, default=_default, ensure_ascii=False)
    return str(value)


def table(headers: list[str], rows: list[list[str]], *, whole: Collection[str] = (), title: str | None = None) -> Table:
    """A table for people, laid out like ``gh`` and ``kubectl`` lay theirs out: no rules, and
    at 80 columns or more nothing that must be copied is split or cut.

    The columns named in ``whole`` (ids, times, scores) are never split: an id stays one piece a
    person can copy. The other columns (names, actors, details) fold onto more lines when the
    terminal is narrow, and keep at least ``FOLDED_MIN`` characters so that none vanishes.
    """
    out_table = Table(title=title, box=None, padding=(0, 2, 0, 0), pad_edge=False, header_style="bold",
                      title_justify="left")
    for i, header in enumerate(headers):
        if header in whole:
            widest = max([len(header), *(len(row[i]) for row in rows)])
            out_table.add_column(header, no_wrap=True, min_width=widest)
        else:
            out_table.add_column(header, overflow="fold", min_width=FOLDED_MIN)
    for row in rows:
        out_table.add_row(*(Text(cell) for cell in row))  # as text: a name is never read as rich markup
    return out_table


FOLDED_MIN = 6  # with the search table's whole columns, this keeps it within 80 columns


def readable(data: dict[str, Any], indent: int = 0) -> list[tuple[str, str]]:
    """A nested report as (label, value) rows: nested mappings become indented sections, lists are
    joined with commas, None is '-', moments are RFC 3339; never a Python repr."""
    rows: list[tuple[str, str]] = []
    for key, value in data.items():
        label = "  " * indent + key.replace("_", " ")
        if isinstance(value, dict):
            rows.append((label, ""))
            rows += readable(value, indent + 1)
        elif isinstance(value, (list, tuple)) and all(not isinstance(v, (dict, list, tuple)) for v in value):
            rows.append((label, ", ".join(shown(v) for v in value) or "-"))
        else:
            rows.append((label, shown(value)))
    return rows


def emit_report(data: dict[str, Any], as_json: bool) -> None:
    """A nested report: JSON, or a two-column table whose values fold at the terminal's width."""
    if as_json:
        emit_json(data)
        return
    grid = Table(box=None, show_header=False, pad_edge=False)
    grid.add_column("field", no_wrap=True)
    grid.add_column("value", overflow="fold")
    for label, value in readable(data):
        grid.add_row(Text(label), Text(value))
    out.print(grid)


def fail(message: str, code: int = 2) -> NoReturn:
    err.print(f"error: {message}", markup=False)
    raise typer.Exit(code)


def friendly(func: Callable[P, R]) -> Callable[P, R]:
    """Turn domain errors into one line on stderr and a non-zero exit; never a traceback."""

    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except FacewardError as exc:
            fail(exc.message)
        except OSError as exc:
            fail(f"{getattr(exc, 'filename', '') or ''} {exc.strerror or exc}".strip())
        raise AssertionError("unreachable")

    return wrapper


def settings(**overrides: Any) -> Settings:
    return load_settings(**overrides)


def local_tenant_file(s: Settings) -> Path:
    return s.home / "local-tenant"
