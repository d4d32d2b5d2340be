"""OpenID Connect sign-in (decision 021): provider connections, pending sign-ins, people, their sessions.

Each table gets what revision 0004 gave the console's tables on PostgreSQL: grants to the
application role, row-level security enabled *and forced*, the ``tenant_isolation`` policy.
Before a browser has signed in, the only thing it can name is a sign-in URL's opaque login id: the
``oidc_login_lookup`` policy (like 0003's ``api_keys_lookup``) shows exactly the connection whose login
id the transaction names in ``app.login_id``, and no other.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

APP_ROLE = "faceward_app"
GRANTS = {
    "oidc_connections": "SELECT, INSERT, UPDATE, DELETE",
    "oidc_pending": "SELECT, INSERT, DELETE",
    "people": "SELECT, INSERT, UPDATE, DELETE",
    "person_sessions": "SELECT, INSERT, UPDATE, DELETE",
}
TENANT = "current_setting('app.tenant_id', true)"


def _tenant(**kwargs: object) -> sa.Column[str]:
    return sa.Column("tenant_id", sa.String(32), sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False,
                     **kwargs)  # type: ignore[arg-type]


def _at(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False)


def upgrade() -> None:
    op.create_table(
        "oidc_connections",
        _tenant(primary_key=True),
        sa.Column("login_id", sa.String(48), nullable=False, unique=True),
        sa.Column("config_sealed", sa.LargeBinary, nullable=False),
        _at("created_at"),
        _at("updated_at"),
    )
    op.create_table(
        "oidc_pending",
        sa.Column("id", sa.String(64), primary_key=True),
        _tenant(),
        sa.Column("nonce", sa.String(64), nullable=False),
        sa.Column("verifier", sa.String(128), nullable=False),
        sa.Column("binding", sa.String(64), nullable=False),
        _at("created_at"),
        _at("expires_at"),
    )
    op.create_index("ix_oidc_pending_tenant", "oidc_pending", ["tenant_id", "expires_at"])
    op.create_table(
        "people",
        sa.Column("id", sa.String(32), primary_key=True),
        _tenant(),
        sa.Column("ident", sa.String(64), nullable=False),
        sa.Column("profile_sealed", sa.LargeBinary, nullable=False),
        _at("created_at"),
        _at("seen_at"),
    )
    op.create_index("ux_people_ident", "people", ["tenant_id", "ident"], unique=True)
    op.create_table(
        "person_sessions",
        sa.Column("id", sa.String(64), primary_key=True),
        _tenant(),
        sa.Column("person_id", sa.String(32), sa.ForeignKey("people.id", ondelete="CASCADE"), nullable=False),
        _at("created_at"),
        _at("expires_at"),
        _at("seen_at"),
    )
    op.create_index("ix_person_sessions_tenant", "person_sessions", ["tenant_id", "expires_at"])

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
    op.execute(
        f"CREATE POLICY oidc_login_lookup ON {schema}.oidc_connections FOR SELECT "
        "USING (login_id = current_setting('app.login_id', true))"
    )


def downgrade() -> None:
    for table in ("person_sessions", "people", "oidc_pending", "oidc_connections"):
        op.drop_table(table)
