"""The web console (#6): reviews of search candidates, enrolled faces' thumbnails, console sessions.

* ``reviews`` - one row per review step (possible match, not a match, confirmed) of one
  candidate (search id, subject id) by one key; the note is sealed with the subject's key.
  Append-only: the application role may read, add and delete rows (with their subject or
  tenant), never change one - the same grants as ``audit_log``.
* ``face_chips`` - each enrolled face's aligned crop, JPEG, sealed with the subject's key;
  removed with its face.
* ``console_sessions`` - a console sign-in: SHA-256 of the cookie's secret, the key, expiry.

On PostgreSQL each gets what revision 0003 gave the other tenant tables: grants to the
application role, row-level security enabled *and forced*, and the ``tenant_isolation`` policy.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

APP_ROLE = "faceward_app"
GRANTS = {
    "reviews": "SELECT, INSERT, DELETE",
    "face_chips": "SELECT, INSERT, DELETE",
    "console_sessions": "SELECT, INSERT, UPDATE, DELETE",
}
TENANT = "current_setting('app.tenant_id', true)"


def _tenant() -> sa.Column[str]:
    return sa.Column("tenant_id", sa.String(32), sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False)


def upgrade() -> None:
    op.create_table(
        "reviews",
        sa.Column("id", sa.String(32), primary_key=True),
        _tenant(),
        sa.Column("search_id", sa.String(32), nullable=False),
        sa.Column("subject_id", sa.String(32), sa.ForeignKey("subjects.id", ondelete="CASCADE"), nullable=False),
        sa.Column("face_id", sa.String(32), nullable=True),
        sa.Column("reviewer_key_id", sa.String(32), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("note_sealed", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_reviews_candidate", "reviews", ["tenant_id", "search_id", "subject_id"])
    op.create_index("ix_reviews_at", "reviews", ["tenant_id", "created_at"])
    op.create_table(
        "face_chips",
        sa.Column("face_id", sa.String(32), sa.ForeignKey("faces.id", ondelete="CASCADE"), primary_key=True),
        _tenant(),
        sa.Column("subject_id", sa.String(32), sa.ForeignKey("subjects.id", ondelete="CASCADE"), nullable=False),
        sa.Column("chip_sealed", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_face_chips_subject", "face_chips", ["tenant_id", "subject_id"])
    op.create_table(
        "console_sessions",
        sa.Column("id", sa.String(64), primary_key=True),
        _tenant(),
        sa.Column("key_id", sa.String(32), sa.ForeignKey("api_keys.id", ondelete="CASCADE"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_console_sessions_tenant", "console_sessions", ["tenant_id", "expires_at"])

    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    quote = bind.dialect.identifier_preparer.quote
    schema = quote(bind.execute(sa.text("SELECT current_schema()")).scalar_one())
    for table, privileges in GRANTS.items():
        op.execute(f"GRANT {privileges} ON {schema}.{table} TO {APP_ROLE}")
        op.execute(f"ALTER TABLE {schema}.{table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {schema}.{table} FORCE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY tenant_isolation ON {schema}.{table} "
            f"USING (tenant_id = {TENANT}) WITH CHECK (tenant_id = {TENANT})"
        )


def downgrade() -> None:
    for table in ("console_sessions", "face_chips", "reviews"):
        op.drop_table(table)  # its policies and grants go with it
