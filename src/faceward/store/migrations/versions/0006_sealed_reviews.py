"""Review steps sealed (#12): a reader of the database no longer learns outcomes, reviewers, or which
search and which subject a step is about.

New columns of ``reviews``:

* ``step_sealed`` - search id, subject id, face id, reviewer key id and outcome, sealed under the
  tenant key and padded to one length (:meth:`faceward.security.vault.TenantVault.seal_review_step`);
* ``candidate_ref``, ``search_ref``, ``subject_ref`` - keyed hashes (HMAC under a key derived from
  the tenant's) of (search, subject), the search and the subject: the lookups a step is found by
  (one candidate, one search, and erasure of a subject), without the ids.

The old clear columns (``search_id``, ``subject_id``, ``face_id``, ``reviewer_key_id``, ``outcome``)
become nullable and are NULL in every new row. A migration holds no key, so rows stored before this
revision are sealed by the service: the migration counts them into the named counter
``change_sequence['clear_reviews']``, and the next process that holds the keys (``build_services``:
``faceward serve`` or any CLI command, whoever migrated) seals every tenant's, each replaced by its
sealed form, and sets the counter to 0; ``faceward doctor`` reports any left and ``--repair`` seals
them. A later revision drops the clear columns once no release writes them.

The application role keeps ``SELECT, INSERT, DELETE`` on ``reviews`` (steps stay append-only; a
clear row is replaced by delete and insert, not updated). Row-level security and grants survive the
``ALTER TABLE``; on SQLite the table is rebuilt (batch mode) with its foreign keys.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

CLEAR = {"search_id": 32, "subject_id": 32, "reviewer_key_id": 32, "outcome": 16}
REFS = ("candidate_ref", "search_ref", "subject_ref")


def upgrade() -> None:
    op.drop_index("ix_reviews_candidate", table_name="reviews")
    with op.batch_alter_table("reviews") as batch:
        for ref in REFS:
            batch.add_column(sa.Column(ref, sa.String(64), nullable=True))
        batch.add_column(sa.Column("step_sealed", sa.LargeBinary, nullable=True))
        for name, size in CLEAR.items():
            batch.alter_column(name, existing_type=sa.String(size), existing_nullable=False, nullable=True)
    op.create_index("ix_reviews_candidate", "reviews", ["tenant_id", "candidate_ref"])
    op.create_index("ix_reviews_search", "reviews", ["tenant_id", "search_ref"])
    op.create_index("ix_reviews_subject", "reviews", ["tenant_id", "subject_ref"])
    bind = op.get_bind()
    postgres = bind.dialect.name == "postgresql"
    if postgres:  # forced row-level security would hide every row from the migrating (owning) role
        op.execute("ALTER TABLE reviews NO FORCE ROW LEVEL SECURITY")
    clear = bind.execute(sa.text("SELECT count(*) FROM reviews")).scalar_one()
    if postgres:
        op.execute("ALTER TABLE reviews FORCE ROW LEVEL SECURITY")
    op.execute(sa.text("INSERT INTO change_sequence (name, value) VALUES ('clear_reviews', :n)").bindparams(n=int(clear)))


def downgrade() -> None:
    # The clear columns cannot be refilled without keys: going back is refused once a sealed step exists.
    bind = op.get_bind()
    postgres = bind.dialect.name == "postgresql"
    if postgres:
        op.execute("ALTER TABLE reviews NO FORCE ROW LEVEL SECURITY")
    sealed = bind.execute(sa.text("SELECT count(*) FROM reviews WHERE step_sealed IS NOT NULL")).scalar_one()
    if postgres:
        op.execute("ALTER TABLE reviews FORCE ROW LEVEL SECURITY")
    if sealed:
        raise RuntimeError(f"{sealed} review steps are sealed; revision 0005 cannot hold them")
    op.execute("DELETE FROM change_sequence WHERE name = 'clear_reviews'")
    op.drop_index("ix_reviews_subject", table_name="reviews")
    op.drop_index("ix_reviews_search", table_name="reviews")
    op.drop_index("ix_reviews_candidate", table_name="reviews")
    with op.batch_alter_table("reviews") as batch:
        for name, size in CLEAR.items():
            batch.alter_column(name, existing_type=sa.String(size), existing_nullable=True, nullable=False)
        batch.drop_column("step_sealed")
        for ref in reversed(REFS):
            batch.drop_column(ref)
    op.create_index("ix_reviews_candidate", "reviews", ["tenant_id", "search_id", "subject_id"])
