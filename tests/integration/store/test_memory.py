"""The malloc arena cap and the SQLite page-cache bound that keep a server's RSS flat."""

from __future__ import annotations

import sys

import pytest
from sqlalchemy import text

from faceward.memory import limit_malloc_arenas
from faceward.store.engine import SQLITE_CACHE_KIB, make_engine


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt is Linux-only")
def test_arena_cap_is_accepted_by_glibc() -> None:
    assert limit_malloc_arenas(2) is True


def test_every_sqlite_connection_gets_the_small_page_cache(tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    with engine.connect() as first, engine.connect() as second:
        for conn in (first, second):
            assert conn.execute(text("PRAGMA cache_size")).scalar() == -SQLITE_CACHE_KIB
    engine.dispose()
