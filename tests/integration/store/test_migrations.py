"""Alembic migrations on both stores: open migrates to head, the result matches schema.py, old databases upgrade."""

from __future__ import annotations

import time
from datetime import datetime, timezone

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.pool import NullPool

from faceward.store import SqlStore, TenantRecord, make_engine, schema
from faceward.store.migrate import current, head, upgrade
from faceward.store.engine import APP_ROLE


def test_open_migrates_to_head_and_reopening_is_cheap(db_url: str) -> None:
    SqlStore.open(db_url).close()
    engine = make_engine(db_url, poolclass=NullPool)
    with engine.connect() as conn:
        assert current(conn) == head() is not None
    started = time.perf_counter()
    SqlStore.open(db_url).close()
    assert time.perf_counter() - started < 2.0
    engine.dispose()


def test_migrated_schema_matches_the_tables_the_code_uses(db_url: str) -> None:
    SqlStore.open(db_url).close()
    engine = make_engine(db_url, poolclass=NullPool)
    with engine.connect() as conn:
        found = inspect(conn)
        tables = set(found.get_table_names()) - {"alembic_version"}
        assert tables == set(schema.metadata.tables)
        for table in schema.metadata.sorted_tables:
            columns = {c["name"]: c for c in found.get_columns(table.name)}
            assert set(columns) == {c.name for c in table.columns}, table.name
            for column in table.columns:
                assert columns[column.name]["nullable"] == column.nullable, f"{table.name}.{column.name}"
            primary = found.get_pk_constraint(table.name)["constrained_columns"]
            assert sorted(primary) == sorted(c.name for c in table.primary_key), table.name
            indexes = {i["name"] for i in found.get_indexes(table.name)}
            assert {i.name for i in table.indexes} <= indexes, table.name
        assert conn.execute(text("SELECT value FROM change_sequence WHERE name = 'change'")).scalar() == 0
    engine.dispose()


def test_a_database_made_before_migrations_is_stamped_and_upgraded(db_url: str) -> None:
    engine = make_engine(db_url, poolclass=NullPool)
    legacy = [schema.tenants, schema.subjects, schema.faces, schema.sequence, schema.erasures]
    schema.metadata.create_all(engine, tables=legacy)
    with engine.begin() as conn:
        conn.execute(schema.sequence.insert().values(name="change", value=7))
    upgrade(db_url)
    with engine.connect() as conn:
        assert current(conn) == head()
        assert set(schema.metadata.tables) <= set(inspect(conn).get_table_names())
        assert conn.execute(text("SELECT value FROM change_sequence")).scalar() == 7
    engine.dispose()
    store = SqlStore.open(db_url)
    store.add_tenant(TenantRecord("t1", b"n", b"k", "active", datetime.now(timezone.utc), {}))
    assert store.get_tenant("t1").status == "active"
    store.close()


@pytest.mark.postgres
def test_the_login_role_is_kept_only_when_asked(pg_url: str) -> None:
    SqlStore.open(pg_url).close()
    owner = SqlStore.open(pg_url, create=False, role=None)
    app = SqlStore.open(pg_url, create=False)
    with owner.engine.connect() as a, app.engine.connect() as b:
        assert a.execute(text("SELECT current_user")).scalar() != APP_ROLE
        assert b.execute(text("SELECT current_user")).scalar() == APP_ROLE
    owner.close()
    app.close()


def test_templates_gain_the_full_model_hash_and_the_bundled_models_are_backfilled(db_url: str) -> None:
    """Revision 0008: ``faces.model_sha256``; dlib ResNet templates get its pinned hash, older own-model ones stay null."""
    from alembic import command
    from alembic.script import ScriptDirectory

    from faceward.store.migrate import alembic_config
    from faceward.vision.models import MANIFEST, ModelName

    before = ScriptDirectory.from_config(alembic_config()).get_revision("0008").down_revision
    engine = make_engine(db_url, poolclass=NullPool)
    now = datetime.now(timezone.utc)
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), str(before))
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT set_config('app.tenant_id', 't1', true)"))
        conn.execute(text("INSERT INTO tenants (id, name_sealed, wrapped_key, status, settings, created_at) "
                          "VALUES ('t1', :b, :b, 'active', '{}', :now)"), {"b": b"x", "now": now})
        conn.execute(text("INSERT INTO subjects (id, tenant_id, display_name_sealed, consent_basis, "
                          "consent_reference_sealed, consent_given_at, wrapped_key, created_at) "
                          "VALUES ('s1', 't1', :b, 'explicit_consent', :b, :now, :b, :now)"), {"b": b"x", "now": now})
        for seq, (face, model) in enumerate((("f1", "dlib-resnet-v1/flip"), ("f2", "dlib-resnet-v1"),
                                             ("f3", "mobilefacenet-tf-1-7a66e881dc8e")), start=1):
            conn.execute(text("INSERT INTO faces (id, tenant_id, subject_id, seq, model_id, template_sealed, quality, "
                              "image_sha256, created_at) VALUES (:id, 't1', 's1', :seq, :model, :b, '{}', :img, :now)"),
                         {"id": face, "seq": seq, "model": model, "b": b"x", "img": face * 32, "now": now})
    upgrade(db_url)
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT set_config('app.tenant_id', 't1', true)"))
        found = dict(conn.execute(text("SELECT id, model_sha256 FROM faces ORDER BY id")).all())
    dlib = MANIFEST[ModelName.DESCRIPTOR].sha256
    assert found == {"f1": dlib, "f2": dlib, "f3": None}
    engine.dispose()
