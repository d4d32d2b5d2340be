"""PostgreSQL: the non-owner application role, row-level security forced on every tenant table, the tenant directory.

* Role ``faceward_app`` (NOLOGIN, no BYPASSRLS, owns nothing): the service
  drops to it with ``SET ROLE`` on every new connection. It may read and write
  the tables but not alter them; it may add to the audit log but not edit it.
* Every table with a ``tenant_id`` column has RLS enabled *and forced* (so the
  table owner is filtered too) with one policy: ``tenant_id =
  current_setting('app.tenant_id', true)``. A session that has not bound a
  tenant sees no rows and can write none.
* ``api_keys`` has one more, read-only policy: the row whose ``id`` the
  transaction names in ``app.key_id`` (authentication, before the tenant is known).
* ``tenants`` has RLS enabled (the app role sees its bound tenant's row only)
  but not forced, so that ``faceward_tenant_directory()``, a SECURITY DEFINER
  function owned by the migrating role, can list every tenant's id, status and
  creation time (never its sealed name or key) for the operator's commands.

SQLite has no roles or RLS: this revision does nothing there.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

APP_ROLE = "faceward_app"
TENANT_TABLES = ("subjects", "faces", "erasures", "api_keys", "audit_log", "audit_heads", "usage")
FULL = "SELECT, INSERT, UPDATE, DELETE"
GRANTS = {
    "tenants": FULL, "change_sequence": "SELECT, UPDATE", "subjects": FULL, "faces": FULL, "erasures": FULL,
    "api_keys": FULL, "audit_log": "SELECT, INSERT, DELETE", "audit_heads": FULL, "usage": FULL,
}
TENANT = "current_setting('app.tenant_id', true)"


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    quote = bind.dialect.identifier_preparer.quote
    schema = quote(bind.execute(sa.text("SELECT current_schema()")).scalar_one())
    op.execute(
        f"""
        DO $$ BEGIN
            IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
                CREATE ROLE {APP_ROLE} NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS;
            END IF;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
        END $$
        """
    )
    op.execute(f"GRANT USAGE ON SCHEMA {schema} TO {APP_ROLE}")
    for table, privileges in GRANTS.items():
        op.execute(f"GRANT {privileges} ON {schema}.{table} TO {APP_ROLE}")
    # So a service logging in as an unprivileged member of the role can see the schema is current.
    op.execute(f"GRANT SELECT ON {schema}.alembic_version TO {APP_ROLE}")
    for table in TENANT_TABLES:
        op.execute(f"ALTER TABLE {schema}.{table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {schema}.{table} FORCE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY tenant_isolation ON {schema}.{table} "
            f"USING (tenant_id = {TENANT}) WITH CHECK (tenant_id = {TENANT})"
        )
    op.execute(
        f"CREATE POLICY api_keys_lookup ON {schema}.api_keys FOR SELECT "
        "USING (id = current_setting('app.key_id', true))"
    )
    op.execute(f"ALTER TABLE {schema}.tenants ENABLE ROW LEVEL SECURITY")
    op.execute(f"CREATE POLICY tenant_self ON {schema}.tenants USING (id = {TENANT}) WITH CHECK (id = {TENANT})")
    op.execute(
        f"""
        CREATE FUNCTION {schema}.faceward_tenant_directory()
        RETURNS TABLE (id varchar, status varchar, created_at timestamptz)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = {schema}, pg_temp
        AS $$ SELECT t.id, t.status, t.created_at FROM {schema}.tenants t ORDER BY t.created_at, t.id $$
        """
    )
    op.execute(f"REVOKE ALL ON FUNCTION {schema}.faceward_tenant_directory() FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION {schema}.faceward_tenant_directory() TO {APP_ROLE}")


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    op.execute("DROP FUNCTION IF EXISTS faceward_tenant_directory()")
    op.execute("DROP POLICY IF EXISTS tenant_self ON tenants")
    op.execute("ALTER TABLE tenants DISABLE ROW LEVEL SECURITY")
    op.execute("DROP POLICY IF EXISTS api_keys_lookup ON api_keys")
    for table in TENANT_TABLES:
        op.execute(f"DROP POLICY IF EXISTS tenant_isolation ON {table}")
        op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
    for table in GRANTS:
        op.execute(f"REVOKE ALL ON {table} FROM {APP_ROLE}")
