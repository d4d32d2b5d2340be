"""Accounts: API keys (hash only, sealed role and label), the audit chain and its heads, sealed usage counters.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SEQ = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def _tenant() -> sa.Column[str]:
    return sa.Column("tenant_id", sa.String(32), sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False)


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(32), primary_key=True),
        _tenant(),
        sa.Column("secret_hash", sa.LargeBinary, nullable=False),
        sa.Column("role_sealed", sa.LargeBinary, nullable=False),
        sa.Column("label_sealed", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_api_keys_tenant", "api_keys", ["tenant_id", "created_at"])
    op.create_table(
        "audit_log",
        _tenant(),
        sa.Column("seq", SEQ, nullable=False, autoincrement=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("payload_sealed", sa.LargeBinary, nullable=False),
        sa.Column("mac", sa.LargeBinary, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "seq"),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["tenant_id", "at"])
    op.create_table(
        "audit_heads",
        sa.Column("tenant_id", sa.String(32), sa.ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("seq", SEQ, nullable=False),
        sa.Column("mac", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "usage",
        _tenant(),
        sa.Column("bucket", sa.String(64), nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("owner_sealed", sa.LargeBinary, nullable=False),
        sa.Column("count_sealed", sa.LargeBinary, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "bucket", "day"),
    )


def downgrade() -> None:
    for table in ("usage", "audit_heads", "audit_log", "api_keys"):
        op.drop_table(table)
