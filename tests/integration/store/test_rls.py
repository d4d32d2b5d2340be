"""PostgreSQL row-level security: forced on every tenant table, and the application role cannot get past it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from faceward.security.crypto import Keyring
from faceward.security.permissions import Role
from faceward.services.accounts import AccountService
from faceward.security.audit import AuditLog
from faceward.services.consent import Consent, LawfulBasis
from faceward.services.gallery import GalleryService
from faceward.services.usage import UsageService
from faceward.settings import Settings
from faceward.store import FaceRecord, SqlStore, make_engine, schema
from faceward.store.reviews import ChipRecord, ReviewRecord, ReviewStore, SessionRecord, SessionStore
from faceward.store.engine import APP_ROLE
from faceward.store.people import ConnectionRecord, OidcStore, PendingRecord, PersonRecord, PersonSessionRecord

pytestmark = pytest.mark.postgres

ALL = ("tenants", *schema.TENANT_TABLES)


@pytest.fixture()
def world(pg_url: str, tmp_path: Path) -> Iterator[tuple[SqlStore, str, str, str]]:
    """Two tenants with a key, a subject, audit entries and a usage counter each."""
    store = SqlStore.open(pg_url)
    gallery = GalleryService(store, Keyring(os.urandom(32)), Settings(home=tmp_path / "home"))
    accounts = AccountService(gallery, AuditLog(store, gallery.vault.tenant_key))
    usage = UsageService(store, gallery.vault)
    ids = []
    for name in ("A", "B"):
        tenant_id, _ = accounts.create_tenant(name)
        view, _ = accounts.create_key(tenant_id, Role.SEARCHER, name, None, actor="operator", source=None)
        kept = gallery.create_subject(tenant_id, f"person {name}", Consent(LawfulBasis.EXPLICIT_CONSENT, "ref", gallery.clock()))
        store.add_face(FaceRecord(f"f_{name}", tenant_id, kept.id, "m", b"sealed", {}, "0" * 64, gallery.clock()))
        gallery.delete_subject(tenant_id, gallery.create_subject(
            tenant_id, "gone", Consent(LawfulBasis.EXPLICIT_CONSENT, "ref", gallery.clock())).id)
        usage.record(tenant_id, view.id, "search", day=date(2026, 11, 1))
        now = gallery.clock()  # the console's tables (#6): a review step, a face chip, a session
        consoled = ReviewStore(store)
        consoled.add_review(ReviewRecord(f"r_{name}", tenant_id, "c" * 64, "q" * 64, "s" * 64, b"step", b"n", now))
        consoled.add_chip(ChipRecord(f"f_{name}", tenant_id, kept.id, b"sealed", now))
        SessionStore(store).add(SessionRecord(f"{name:0>64}", tenant_id, view.id, now, now + timedelta(hours=1), now))
        oidc = OidcStore(store)  # sign-in through the tenant's provider (decision 021)
        oidc.put_connection(ConnectionRecord(tenant_id, f"l_{name:0>32}", b"sealed", now, now))
        oidc.add_pending(PendingRecord(f"{name:1>64}", tenant_id, "n", "v", "b", now, now + timedelta(minutes=10)))
        oidc.add_person(PersonRecord(f"p_{name}", tenant_id, f"{name:2>64}", b"sealed", now, now))
        oidc.add_session(PersonSessionRecord(f"{name:3>64}", tenant_id, f"p_{name}", now, now + timedelta(hours=1), now))
        ids.append(tenant_id)
    a_key = accounts.list_keys(ids[0])[0].id
    yield store, ids[0], ids[1], a_key
    store.close()


def _count(conn: Connection, table: str, where: str = "true") -> int:
    return int(conn.execute(text(f"SELECT count(*) FROM {table} WHERE {where}")).scalar_one())


def _bind(conn: Connection, tenant_id: str) -> None:
    conn.execute(text("SELECT set_config('app.tenant_id', :t, true)"), {"t": tenant_id})


def test_rls_is_enabled_and_forced_on_every_tenant_table(world: tuple[SqlStore, str, str, str], pg_url: str) -> None:
    owner = make_engine(pg_url)
    with owner.connect() as conn:
        with_tenant = set(conn.execute(text(
            "SELECT table_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND column_name = 'tenant_id'"
        )).scalars())
        assert with_tenant == set(schema.TENANT_TABLES)  # a new tenant table must be listed (and so protected)
        flags = dict(
            (name, (rls, forced)) for name, rls, forced in conn.execute(text(
                "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = current_schema() AND c.relkind = 'r'"
            ))
        )
        policies = set(conn.execute(text(
            "SELECT tablename || '.' || policyname FROM pg_policies WHERE schemaname = current_schema()"
        )).scalars())
        role = conn.execute(text(
            "SELECT rolsuper, rolbypassrls, rolcanlogin FROM pg_roles WHERE rolname = :r"), {"r": APP_ROLE}).one()
        owners = set(conn.execute(text(
            "SELECT tableowner FROM pg_tables WHERE schemaname = current_schema()")).scalars())
    owner.dispose()
    for table in schema.TENANT_TABLES:
        assert flags[table] == (True, True), table
        assert f"{table}.tenant_isolation" in policies
    assert flags["tenants"][0] is True and "tenants.tenant_self" in policies
    assert tuple(role) == (False, False, False)
    assert APP_ROLE not in owners


def test_the_store_works_as_the_application_role(world: tuple[SqlStore, str, str, str]) -> None:
    store = world[0]
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT current_user")).scalar() == APP_ROLE
        with pytest.raises(DBAPIError):
            conn.execute(text("ALTER TABLE subjects NO FORCE ROW LEVEL SECURITY"))


def test_no_tenant_bound_sees_nothing(world: tuple[SqlStore, str, str, str]) -> None:
    store = world[0]
    with store.engine.begin() as conn:
        for table in ALL:
            assert _count(conn, table) == 0, table


def test_a_bound_tenant_sees_only_its_own_rows(world: tuple[SqlStore, str, str, str]) -> None:
    store, a, b, _ = world
    with store.engine.begin() as conn:
        _bind(conn, a)
        for table in schema.TENANT_TABLES:
            assert _count(conn, table) > 0, table
            assert _count(conn, table, f"tenant_id <> '{a}'") == 0, table
        assert _count(conn, "tenants") == 1
        # Writes aimed at tenant B touch nothing...
        for table in schema.TENANT_TABLES:
            if table != "audit_log":
                assert conn.execute(text(f"DELETE FROM {table} WHERE tenant_id = :b"), {"b": b}).rowcount == 0
        assert conn.execute(text("UPDATE tenants SET status = 'x' WHERE id = :b"), {"b": b}).rowcount == 0
    with store.engine.begin() as conn:  # ... and B's rows are all still there
        _bind(conn, b)
        for table in schema.TENANT_TABLES:
            assert _count(conn, table) > 0, table


@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO subjects (id, tenant_id, display_name_sealed, consent_basis, consent_reference_sealed, "
        "consent_given_at, wrapped_key, created_at) VALUES ('s_x', :b, '\\x00', 'x', '\\x00', now(), '\\x00', now())",
        "UPDATE subjects SET tenant_id = :b",
        "INSERT INTO audit_heads (tenant_id, seq, mac) VALUES (:b, 0, '\\x00')",
    ],
)
def test_a_bound_tenant_cannot_write_into_another(world: tuple[SqlStore, str, str, str], statement: str) -> None:
    store, a, b, _ = world
    with pytest.raises(DBAPIError, match="row-level security"):
        with store.engine.begin() as conn:
            _bind(conn, a)
            conn.execute(text(statement), {"b": b})


def test_the_application_role_cannot_rewrite_the_audit_log(world: tuple[SqlStore, str, str, str]) -> None:
    store, a, _, _ = world
    with pytest.raises(DBAPIError, match="permission denied"):
        with store.engine.begin() as conn:
            _bind(conn, a)
            conn.execute(text("UPDATE audit_log SET at = now()"))


def test_key_lookup_shows_exactly_the_named_key(world: tuple[SqlStore, str, str, str]) -> None:
    store, a, _, a_key = world
    with store.engine.begin() as conn:
        conn.execute(text("SELECT set_config('app.key_id', :k, true)"), {"k": a_key})
        assert conn.execute(text("SELECT id, tenant_id FROM api_keys")).all() == [(a_key, a)]
        assert conn.execute(text("UPDATE api_keys SET revoked_at = now()")).rowcount == 0  # read-only


def test_login_lookup_shows_exactly_the_named_sign_in_page(world: tuple[SqlStore, str, str, str]) -> None:
    store, a, _, _ = world
    login = f"l_{'A':0>32}"
    with store.engine.begin() as conn:
        conn.execute(text("SELECT set_config('app.login_id', :l, true)"), {"l": login})
        assert conn.execute(text("SELECT login_id, tenant_id FROM oidc_connections")).all() == [(login, a)]
        assert conn.execute(text("DELETE FROM oidc_connections")).rowcount == 0  # read-only
        assert _count(conn, "people") == 0 and _count(conn, "person_sessions") == 0
    assert OidcStore(store).tenant_of_login(login) == a and OidcStore(store).tenant_of_login("l_" + "9" * 32) is None


def test_the_directory_lists_ids_only(world: tuple[SqlStore, str, str, str]) -> None:
    store, a, b, _ = world
    assert [t for t, _, _ in store.tenant_directory()] == [a, b]
    with store.engine.begin() as conn:
        columns = list(conn.execute(text("SELECT * FROM faceward_tenant_directory()")).keys())
    assert columns == ["id", "status", "created_at"]
    assert [t.id for t in store.list_tenants()] == [a, b]


def test_production_login_role_holds_even_after_reset_role(world: tuple[SqlStore, str, str, str], pg_url: str) -> None:
    """The documented deployment: the service logs in as an unprivileged member of faceward_app.

    SET ROLE can be undone by RESET ROLE within the session, so the login role
    itself must have nothing more than faceward_app; then even a session that
    resets its role sees no tenant's rows.
    """
    _, a, _, _ = world
    login = "faceward_test_service"
    with make_engine(pg_url).begin() as conn:
        conn.execute(text(
            f"DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{login}') THEN "
            f"CREATE ROLE {login} LOGIN NOSUPERUSER NOBYPASSRLS IN ROLE {APP_ROLE}; END IF; END $$"
        ))
    url = pg_url.replace("postgres@", f"{login}@", 1)
    service = SqlStore.open(url)  # create=True: the migration check passes as a no-op for this role
    assert [t for t, _, _ in service.tenant_directory()][0] == a
    with service.engine.begin() as conn:
        conn.execute(text("RESET ROLE"))
        assert conn.execute(text("SELECT current_user")).scalar() == login
        for table in ALL:
            assert _count(conn, table) == 0, table
        _bind(conn, a)
        assert _count(conn, "subjects") == 1
    service.close()
