"""The tables. Every row that holds tenant data carries ``tenant_id``; sensitive columns hold sealed bytes.

``faces.seq`` is a store-wide change sequence: in-process indexes follow it to
pick up faces enrolled by other workers, and ``erasures`` records deletions
the same way.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
)

metadata = MetaData()

tenants = Table(
    "tenants",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name_sealed", LargeBinary, nullable=False),
    Column("wrapped_key", LargeBinary, nullable=True),  # NULL once crypto-shredded
    Column("status", String(16), nullable=False, default="active"),
    Column("settings", JSON, nullable=False, default=dict),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

subjects = Table(
    "subjects",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("tenant_id", String(32), ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("display_name_sealed", LargeBinary, nullable=False),
    Column("consent_basis", String(32), nullable=False),
    Column("consent_reference_sealed", LargeBinary, nullable=False),
    Column("consent_given_at", DateTime(timezone=True), nullable=False),
    Column("consent_expires_at", DateTime(timezone=True), nullable=True),
    Column("wrapped_key", LargeBinary, nullable=False),
    # Keyed hash (HMAC under the tenant key) of a caller's own reference, e.g. a folder name,
    # so bulk enrollment can resume without storing the reference in clear.
    Column("external_ref", String(64), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_subjects_tenant", "tenant_id", "created_at"),
    Index("ux_subjects_ref", "tenant_id", "external_ref", unique=True),
)

faces = Table(
    "faces",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("tenant_id", String(32), ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("subject_id", String(32), ForeignKey("subjects.id", ondelete="CASCADE"), nullable=False),
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), nullable=False),
    Column("model_id", String(64), nullable=False),
    Column("template_sealed", LargeBinary, nullable=False),
    Column("quality", JSON, nullable=False),
    Column("image_sha256", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_faces_tenant_seq", "tenant_id", "seq"),
    Index("ix_faces_subject", "subject_id"),
)

# Monotonic sequence shared by faces and erasures (one row, bumped in the writing transaction).
sequence = Table(
    "change_sequence",
    metadata,
    Column("name", String(16), primary_key=True),
    Column("value", BigInteger().with_variant(Integer, "sqlite"), nullable=False),
)

erasures = Table(
    "erasures",
    metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("tenant_id", String(32), ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("subject_id", String(32), nullable=False),
    Column("erased_at", DateTime(timezone=True), nullable=False),
)

TENANT_TABLES = ("subjects", "faces", "erasures")
