"""Schema revisions. Alembic orders them by each file's ``down_revision``, not by its number.

There is no 0007. That number belonged to a change that was withdrawn before it landed, so 0008
follows 0006. A number once used on a branch is never reused, because a database migrated by that
branch would otherwise read a different change as already applied. ``tests/unit/store/test_revisions.py``
checks that the revisions form a single chain.
"""
