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
    Date,
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
    # The full SHA-256 of the recognizer's weights (model_id holds only 12 hex digits of it); null for
    # templates made before revision 0008 by a model of one's own, whose full hash was never recorded.
    Column("model_sha256", String(64), nullable=True),
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

# API keys: only a keyed hash of the secret; role and label sealed with the tenant key.
api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("tenant_id", String(32), ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("secret_hash", LargeBinary, nullable=False),
    Column("role_sealed", LargeBinary, nullable=False),
    Column("label_sealed", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=True),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    Column("last_used_at", DateTime(timezone=True), nullable=True),
    Index("ix_api_keys_tenant", "tenant_id", "created_at"),
)

# The audit log: per-tenant sequence, sealed payload (actor, action, details, source), HMAC chain.
audit_log = Table(
    "audit_log",
    metadata,
    Column("tenant_id", String(32), ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True),
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("payload_sealed", LargeBinary, nullable=False),
    Column("mac", LargeBinary, nullable=False),
    Index("ix_audit_log_at", "tenant_id", "at"),
)

# The head of each tenant's chain: the row every append locks, and the last (seq, mac) to detect truncation.
audit_heads = Table(
    "audit_heads",
    metadata,
    Column("tenant_id", String(32), ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True),
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), nullable=False),
    Column("mac", LargeBinary, nullable=False),
)

# Usage counters: the owner (key id and kind) appears only as a keyed hash (bucket) and sealed; the count is sealed.
usage = Table(
    "usage",
    metadata,
    Column("tenant_id", String(32), ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True),
    Column("bucket", String(64), primary_key=True),
    Column("day", Date, primary_key=True),
    Column("owner_sealed", LargeBinary, nullable=False),
    Column("count_sealed", LargeBinary, nullable=False),
)

# Examiners' reviews of search candidates (#6): append-only steps. What a step says (search, subject, face,
# reviewer key, outcome) is sealed under the tenant key in ``step_sealed``, padded to one length; the note under
# the subject's key. Steps are found by keyed hashes: of the candidate (search, subject), of the search, and of
# the subject (erasure deletes by it). A reader of the database learns a tenant's number of steps and their
# times, nothing of what they say or whom they are about (#12, revision 0006).
reviews = Table(
    "reviews",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("tenant_id", String(32), ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    # Clear columns of steps stored before revision 0006: NULL in every new row, and in old rows once the
    # service has sealed them (ReviewService.seal_clear_steps). A later revision drops them.
    Column("search_id", String(32), nullable=True),
    Column("subject_id", String(32), ForeignKey("subjects.id", ondelete="CASCADE"), nullable=True),
    Column("face_id", String(32), nullable=True),
    Column("reviewer_key_id", String(32), nullable=True),
    Column("outcome", String(16), nullable=True),
    Column("note_sealed", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("candidate_ref", String(64), nullable=True),
    Column("search_ref", String(64), nullable=True),
    Column("subject_ref", String(64), nullable=True),
    Column("step_sealed", LargeBinary, nullable=True),
    Index("ix_reviews_at", "tenant_id", "created_at"),
    Index("ix_reviews_candidate", "tenant_id", "candidate_ref"),
    Index("ix_reviews_search", "tenant_id", "search_ref"),
    Index("ix_reviews_subject", "tenant_id", "subject_ref"),
)

# Enrolled faces' aligned crops (150 x 150 JPEG), sealed with the subject's key: reviewers' thumbnails (#6).
face_chips = Table(
    "face_chips",
    metadata,
    Column("face_id", String(32), ForeignKey("faces.id", ondelete="CASCADE"), primary_key=True),
    Column("tenant_id", String(32), ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("subject_id", String(32), ForeignKey("subjects.id", ondelete="CASCADE"), nullable=False),
    Column("chip_sealed", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_face_chips_subject", "tenant_id", "subject_id"),
)

# Web console sessions (#6): the id is the SHA-256 of the cookie's secret, never the secret; the key's
# role and validity are read again on every request, so revoking the key ends its sessions.
console_sessions = Table(
    "console_sessions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("tenant_id", String(32), ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("key_id", String(32), ForeignKey("api_keys.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("seen_at", DateTime(timezone=True), nullable=False),
    Index("ix_console_sessions_tenant", "tenant_id", "expires_at"),
)

# OpenID Connect sign-in (decision 021). A tenant's provider connection: the whole configuration (issuer,
# client id and secret, role mapping) sealed with the tenant key; ``login_id`` is the opaque id of the
# tenant's sign-in URL (/console/login/<login_id>), the one thing a browser may name before it signs in.
oidc_connections = Table(
    "oidc_connections",
    metadata,
    Column("tenant_id", String(32), ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True),
    Column("login_id", String(48), nullable=False, unique=True),
    Column("config_sealed", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# A sign-in begun and not yet finished: the SHA-256 of its state (never the state), its nonce and PKCE verifier,
# the SHA-256 of the browser binding cookie. Deleted when the callback uses it, so a state works once.
oidc_pending = Table(
    "oidc_pending",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("tenant_id", String(32), ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("nonce", String(64), nullable=False),
    Column("verifier", String(128), nullable=False),
    Column("binding", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Index("ix_oidc_pending_tenant", "tenant_id", "expires_at"),
)

# People who signed in through the provider: found by a keyed hash of (issuer, subject); the issuer,
# subject, display name and mapped role sealed with the tenant key.
people = Table(
    "people",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("tenant_id", String(32), ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("ident", String(64), nullable=False),
    Column("profile_sealed", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("seen_at", DateTime(timezone=True), nullable=False),
    Index("ux_people_ident", "tenant_id", "ident", unique=True),
)

# A person's console sessions: as console_sessions, for a person instead of a key.
person_sessions = Table(
    "person_sessions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("tenant_id", String(32), ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("person_id", String(32), ForeignKey("people.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("seen_at", DateTime(timezone=True), nullable=False),
    Index("ix_person_sessions_tenant", "tenant_id", "expires_at"),
)

TENANT_TABLES = (
    "subjects", "faces", "erasures", "api_keys", "audit_log", "audit_heads", "usage",
    "reviews", "face_chips", "console_sessions", "oidc_connections", "oidc_pending", "people", "person_sessions",
)
"""Every table whose rows belong to one tenant (a ``tenant_id`` column): PostgreSQL forces RLS on each."""
