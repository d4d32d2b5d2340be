"""What keeps ``tests/unit`` a unit suite: no database, no server, no child process, no face engine.

Every test under ``tests/unit`` runs with the doors below shut. A test that opens one fails
with :class:`OutsideTheUnit`, naming the door; such a test belongs in ``tests/integration`` or
``tests/e2e`` (or should run on a Protocol fake). The error derives from ``BaseException`` so
that code under test which catches ``Exception`` (a readiness probe, a retry loop) cannot
swallow it, and every attempt is also recorded and reported when the test ends.

The doors: SQLite and PostgreSQL connections (``sqlite3.connect``, ``psycopg.connect``, so any
SQLAlchemy engine too), TCP/Unix socket connections (Redis, Milvus, a served app), child
processes (``subprocess``, ``multiprocessing``, process pools) and model sessions (an ONNX
Runtime ``InferenceSession``; dlib's detectors, landmark predictor and descriptor network).
Pure functions of dlib (e.g. ``resize_image`` as a reference) and in-memory ASGI calls stay open.
"""

from __future__ import annotations

import importlib.util
import multiprocessing.process
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest


class OutsideTheUnit(BaseException):
    """A unit test opened a database, a socket, a process or a model: it is not a unit test."""


_DLIB_MODELS = ("shape_predictor", "face_recognition_model_v1", "cnn_face_detection_model_v1", "get_frontal_face_detector")


def _shut(door: str, seen: list[str]) -> Callable[..., Any]:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        seen.append(door)
        raise OutsideTheUnit(f"a unit test opened {door}: move it to tests/integration or give it a Protocol fake")

    return refuse


@contextmanager
def _doors_shut() -> Iterator[list[str]]:
    seen: list[str] = []
    patch = pytest.MonkeyPatch()
    try:
        patch.setattr(sqlite3, "connect", _shut("an SQLite database", seen))
        if importlib.util.find_spec("psycopg") is not None:
            import psycopg

            patch.setattr(psycopg.Connection, "connect", _shut("a PostgreSQL connection", seen))
        patch.setattr(socket.socket, "connect", _shut("a socket connection", seen))
        patch.setattr(socket.socket, "connect_ex", _shut("a socket connection", seen))
        patch.setattr(subprocess.Popen, "__init__", _shut("a child process", seen))
        patch.setattr(multiprocessing.process.BaseProcess, "start", _shut("a child process", seen))
        if importlib.util.find_spec("onnxruntime") is not None:
            import onnxruntime

            patch.setattr(onnxruntime.InferenceSession, "__init__", _shut("an ONNX Runtime session", seen))
        if importlib.util.find_spec("dlib") is not None:
            import dlib

            for name in _DLIB_MODELS:
                patch.setattr(dlib, name, _shut(f"a dlib model ({name})", seen))
        yield seen
    finally:
        patch.undo()


# Hooks, not an autouse fixture: a module- or session-scoped fixture (a detector, a store) is set up
# before any function-scoped fixture, and must meet the shut doors too. Teardown stays open: closing
# what a test was given is not opening anything.
@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    with _doors_shut() as seen:
        outcome = yield
    _report(item, seen, outcome)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    with _doors_shut() as seen:
        outcome = yield
    _report(item, seen, outcome)


def _report(item: pytest.Item, seen: list[str], outcome: Any) -> None:
    if seen and outcome.excinfo is None:  # opened and swallowed somewhere: still outside the unit
        outcome.force_exception(OutsideTheUnit(f"{item.nodeid} tried to open {', '.join(sorted(set(seen)))}"))
