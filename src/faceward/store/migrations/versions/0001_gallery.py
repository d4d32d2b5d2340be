"""Gallery: tenants, subjects, faces, the change sequence and erasures (the schema before #3).

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

SEQ = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "tenants",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name_sealed", sa.LargeBinary, nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("settings", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "subjects",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("tenant_id", sa.String(32), sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
        sa.Column("display_name_sealed", sa.LargeBinary, nullable=False),
        sa.Column("consent_basis", sa.String(32), nullable=False),
        sa.Column("consent_reference_sealed", sa.LargeBinary, nullable=False),
        sa.Column("consent_given_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("consent_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("wrapped_key", sa.LargeBinary, nullable=False),
        sa.Column("external_ref", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_subjects_tenant", "subjects", ["tenant_id", "created_at"])
    op.create_index("ux_subjects_ref", "subjects", ["tenant_id", "external_ref"], unique=True)
    op.create_table(
        "faces",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("tenant_id", sa.String(32), sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
        sa.Column("subject_id", sa.String(32), sa.ForeignKey("subjects.id", ondelete="CASCADE"), nullable=False),
        sa.Column("seq", SEQ, nullable=False),
        sa.Column("model_id", sa.String(64), nullable=False),
        sa.Column("template_sealed", sa.LargeBinary, nullable=False),
        sa.Column("quality", sa.JSON, nullable=False),
        sa.Column("image_sha256", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_faces_tenant_seq", "faces", ["tenant_id", "seq"])
    op.create_index("ix_faces_subject", "faces", ["subject_id"])
    sequence = op.create_table(
        "change_sequence",
        sa.Column("name", sa.String(16), primary_key=True),
        sa.Column("value", SEQ, nullable=False),
    )
    op.bulk_insert(sequence, [{"name": "change", "value": 0}])
    op.create_table(
        "erasures",
        sa.Column("seq", SEQ, primary_key=True),
        sa.Column("tenant_id", sa.String(32), sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
        sa.Column("subject_id", sa.String(32), nullable=False),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    for table in ("erasures", "change_sequence", "faces", "subjects", "tenants"):
        op.drop_table(table)
