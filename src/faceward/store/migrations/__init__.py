"""Alembic migrations of the gallery database (run by :func:`faceward.store.migrate.upgrade`)."""
