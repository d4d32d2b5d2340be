"""What every command shares: settings, one-line errors, JSON or rich output."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import date, datetime
from functools import wraps
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import typer
from rich.console import Console

from faceward.errors import FacewardError
from faceward.settings import Settings, load_settings
from faceward.text import rfc3339

P = ParamSpec("P")
R = TypeVar("R")

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

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
    """A value as a person reads it: moments in RFC 3339 UTC, lists and mappings as JSON, never a repr."""
    if value is None:
        return "-"
    if isinstance(value, (datetime, date)):
        return str(_default(value))
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, default=_default, ensure_ascii=False)
    return str(value)


def fail(message: str, code: int = 2) -> None:
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
