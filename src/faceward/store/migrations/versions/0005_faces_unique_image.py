"""One face per (subject, image, model): a unique index, so that a retried or concurrent enrollment of the
same photo cannot store it twice (#7).

``GalleryService.admit`` checks for the image before it inserts, but two requests for the same
photo (a client retrying after a time-out while the first is still being processed, or two workers)
both pass the check; this index makes the second insert fail, and ``admit`` then answers with the
face already stored. The model is part of the key because a model migration keeps the new model's
template of an image beside the old one. Duplicates made before this revision are removed first,
keeping the oldest (lowest ``seq``) of each; ``faceward doctor`` reports the same condition.

On PostgreSQL row-level security is forced on ``faces``, which would hide the rows from the
migrating (owning) role, so it is relaxed for the clean-up and forced again after.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    postgres = bind.dialect.name == "postgresql"
    if postgres:
        op.execute("ALTER TABLE faces NO FORCE ROW LEVEL SECURITY")
    op.execute(
        sa.text(
            "DELETE FROM faces WHERE EXISTS (SELECT 1 FROM faces AS older WHERE older.tenant_id = faces.tenant_id "
            "AND older.subject_id = faces.subject_id AND older.image_sha256 = faces.image_sha256 "
            "AND older.model_id = faces.model_id AND older.seq < faces.seq)"
        )
    )
    if postgres:
        op.execute("ALTER TABLE faces FORCE ROW LEVEL SECURITY")
    op.create_index("ux_faces_subject_image", "faces", ["tenant_id", "subject_id", "image_sha256", "model_id"], unique=True)


def downgrade() -> None:
    op.drop_index("ux_faces_subject_image", table_name="faces")
