"""JSON log lines for log shippers: one object per line, UTC timestamps, fields from ``extra``.

The request line (logger ``faceward.access``) carries exactly the fields
:data:`ACCESS_FIELDS` names; no code path puts a display name, a purpose, a case reference
or a template into a log record.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timezone
from typing import Any

ACCESS_LOGGER = "faceward.access"
# The only fields a request line may carry (what a log shipper can index on).
ACCESS_FIELDS = ("request_id", "method", "route", "status", "latency_ms", "tenant_id", "actor", "refusal")
_RESERVED = set(vars(logging.makeLogRecord({}))) | {"color_message"}  # uvicorn's ANSI copy of msg


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "msg", ...extra}`` on one line; exceptions as ``exc`` text."""

    def format(self, record: logging.LogRecord) -> str:
        body: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for name, value in vars(record).items():
            if name not in _RESERVED and not name.startswith("_") and name not in body:
                body[name] = value
        if record.exc_info:
            body["exc"] = self.formatException(record.exc_info)
        return json.dumps(body, default=str, ensure_ascii=False, separators=(",", ":"))


def configure_logging(json_lines: bool, level: int = logging.INFO) -> None:
    """Route faceward's and uvicorn's loggers to stderr, as JSON lines or as plain text."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if json_lines else logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    for name in ("faceward", "uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level)
        logger.propagate = False


__all__ = ["ACCESS_FIELDS", "ACCESS_LOGGER", "JsonFormatter", "configure_logging"]
