"""Each template records the full SHA-256 of the recognizer's weights (#15).

``faces.model_id`` holds ``name-version-<12 hex digits>`` for a model of one's own: enough to keep
two models apart, not enough to say which file made a template. The new nullable column holds the
full hash. Templates of the bundled dlib ResNet (``dlib-resnet-v1``, with or without ``/flip``) get
its hash, which the model manifest pins; templates of a model of one's own made before this
revision stay null, since their full hash was never recorded (``faceward reenroll`` replaces them
with templates that carry it).

Revision ID: 0008
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0006"
branch_labels = None
depends_on = None

# faceward.vision.models.MANIFEST[ModelName.DESCRIPTOR].sha256, frozen here as a migration must be.
DLIB_RESNET_SHA256 = "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30"


def upgrade() -> None:
    bind = op.get_bind()
    # A database made before migrations existed was created from the current tables and stamped at 0002.
    if "model_sha256" not in {c["name"] for c in sa.inspect(bind).get_columns("faces")}:
        op.add_column("faces", sa.Column("model_sha256", sa.String(64), nullable=True))
    postgres = bind.dialect.name == "postgresql"
    if postgres:  # forced row-level security would hide the rows from the migrating role
        op.execute("ALTER TABLE faces NO FORCE ROW LEVEL SECURITY")
    op.execute(
        sa.text("UPDATE faces SET model_sha256 = :sha WHERE model_id IN ('dlib-resnet-v1', 'dlib-resnet-v1/flip')")
        .bindparams(sha=DLIB_RESNET_SHA256)
    )
    if postgres:
        op.execute("ALTER TABLE faces FORCE ROW LEVEL SECURITY")


def downgrade() -> None:
    op.drop_column("faces", "model_sha256")
