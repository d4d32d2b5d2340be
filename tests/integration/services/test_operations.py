"""The use cases behind the API: rate limit, authorize, quota, act, audit, usage - on SQLite and PostgreSQL."""

from __future__ import annotations

import os
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from faceward.errors import InvalidInput, NotFound
from faceward.security.crypto import Keyring
from faceward.security.errors import Forbidden, RateLimited
from faceward.security.permissions import Role
from faceward.security.policy import Principal
from faceward.services.accounts import AccountService
from faceward.security.audit import AuditLog
from faceward.services.consent import ConsentError
from faceward.services.gallery import GalleryService
from faceward.services.operations import Limits, Operations
from faceward.services.usage import UsageService
from faceward.settings import Settings
from faceward.store import SqlStore, StoreUnavailable
from faceward.vision import FaceEngine
from faceward.vision.errors import ImageError

NOW = datetime(2026, 3, 14, 23, 59, 0, tzinfo=timezone.utc)
SRC = "test:127.0.0.1"
CONSENT = {"basis": "explicit_consent", "reference": "FORM-SECRET-REF", "given_at": NOW - timedelta(days=1), "expires_at": None}


class FlakyAudit:
    """The real audit log, except that appending any action in ``failing`` raises."""

    def __init__(self, real: AuditLog) -> None:
        self.real = real
        self.failing: set[str] = set()

    def append(self, tenant_id: str, **kwargs: Any) -> Any:
        if kwargs["action"] in self.failing:
            raise StoreUnavailable("the audit log is unavailable")
        return self.real.append(tenant_id, **kwargs)

    def entries(self, tenant_id: str, **kwargs: Any) -> Any:
        return self.real.entries(tenant_id, **kwargs)


class Ticker:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def engine() -> FaceEngine:
    return FaceEngine()


class Rig:
    def __init__(self, db_url: str, home: Path, engine: FaceEngine, limits: Limits) -> None:
        settings = Settings(home=home, database_url=db_url)
        self.gallery = GalleryService(
            SqlStore.open(db_url), Keyring(os.urandom(32)), settings,
            engine=engine, clock=lambda: NOW,
        )
        self.audit = FlakyAudit(AuditLog(self.gallery.store, self.gallery.vault.tenant_key, clock=lambda: NOW))
        self.usage = UsageService(self.gallery.store, self.gallery.vault)
        self.accounts = AccountService(self.gallery, self.audit.real)
        self.ticker = Ticker()
        self.ops = Operations(
            self.gallery, self.accounts, self.audit, self.usage,  # type: ignore[arg-type]
            limits=limits, clock=lambda: NOW, monotonic=self.ticker,
        )
        self.tenant, _ = self.accounts.create_tenant("Tenant Name")
        self.principals = {}
        for role in Role:
            view, _ = self.accounts.create_key(self.tenant, role, role.value, None, actor="operator", source=SRC)
            self.principals[role] = Principal(self.tenant, view.id, role)

    def __getitem__(self, role: Role) -> Principal:
        return self.principals[role]

    def last(self, action: str) -> dict[str, Any]:
        entries = [e for e in self.audit.real.entries(self.tenant, limit=1000) if e.action == action]
        assert entries, f"no {action} entry"
        return entries[-1].details

    def subject(self) -> str:
        return self.ops.create_subject(self[Role.ENROLLER], "Ada Lovelace", source=SRC, **CONSENT).id


@pytest.fixture()
def rig(db_url: str, tmp_path: Path, engine: FaceEngine) -> Rig:
    return Rig(db_url, tmp_path, engine, Limits(requests_per_minute=10_000, burst=10_000, searches_per_day=100))


def test_subject_acts_are_audited_with_ids_only(rig: Rig) -> None:
    subject_id = rig.subject()
    created = rig.last("subject.create")
    assert created == {"subject_id": subject_id, "consent_basis": "explicit_consent"}
    assert rig.ops.get_subject(rig[Role.ENROLLER], subject_id, source=SRC).display_name == "Ada Lovelace"
    assert rig.last("subject.read") == {"subject_id": subject_id}
    erased = rig.ops.erase_subject(rig[Role.ENROLLER], subject_id, source=SRC)
    assert erased == []
    assert rig.last("subject.erase") == {"subject_id": subject_id, "face_ids": []}
    text = repr([e.details for e in rig.audit.real.entries(rig.tenant, limit=1000)])
    assert "Ada" not in text and "FORM-SECRET-REF" not in text
    entry = [e for e in rig.audit.real.entries(rig.tenant, limit=1000) if e.action == "subject.erase"][-1]
    assert entry.actor == f"key:{rig[Role.ENROLLER].key_id}" and entry.source == SRC


def test_a_denial_is_a_plain_403_with_its_reason_in_the_audit_log(rig: Rig) -> None:
    with pytest.raises(Forbidden) as caught:
        rig.ops.list_subjects(rig[Role.SEARCHER], limit=10, offset=0, source=SRC)
    assert "lacks" not in caught.value.message  # the client sees no policy details
    denied = rig.last("denied")
    assert denied["act"] == "subject.list" and denied["permission"] == "gallery:subjects:read"
    assert "lacks permission" in denied["reason"]


def test_invalid_consent_creates_nothing(rig: Rig) -> None:
    with pytest.raises(ConsentError):
        rig.ops.create_subject(rig[Role.ENROLLER], "Bob", source=SRC, **{**CONSENT, "basis": "because"})
    with pytest.raises(InvalidInput):
        rig.ops.create_subject(rig[Role.ENROLLER], "Bob", source=SRC, **{**CONSENT, "reference": "  "})
    assert rig.gallery.store.count_subjects(rig.tenant) == 0


@pytest.mark.parametrize("bad", ["s_" + "0" * 28, "nope", "../../etc", "s_" + "0" * 27 + "\x00", ""])
def test_unknown_and_malformed_ids_are_the_same_404(rig: Rig, bad: str) -> None:
    with pytest.raises(NotFound) as caught:
        rig.ops.get_subject(rig[Role.ENROLLER], bad, source=SRC)
    assert caught.value.message == "no such subject"


def test_search_needs_a_purpose_and_a_case_reference(rig: Rig) -> None:
    for purpose, case in (("", "C-1"), ("   ", "C-1"), ("fraud check", ""), ("fraud\x00check", "C-1")):
        with pytest.raises(InvalidInput):
            rig.ops.search(rig[Role.SEARCHER], b"\xff\xd8\xff", purpose=purpose, case_reference=case, source=SRC)


def test_rate_limit_per_key(db_url: str, tmp_path: Path, engine: FaceEngine) -> None:
    rig = Rig(db_url, tmp_path, engine, Limits(requests_per_minute=60, burst=2, searches_per_day=100))
    auditor = rig[Role.AUDITOR]
    for _ in range(2):
        rig.ops.audit_entries(auditor, source=SRC)
    with pytest.raises(RateLimited) as caught:
        rig.ops.audit_entries(auditor, source=SRC)
    assert caught.value.retry_after == 1
    rig.ops.audit_entries(rig[Role.ADMIN], source=SRC)  # another key has its own bucket
    rig.ticker.now += 1.0
    rig.ops.audit_entries(auditor, source=SRC)


def test_daily_search_quota_counts_attempts_and_resets_at_utc_midnight(db_url: str, tmp_path: Path, engine: FaceEngine) -> None:
    rig = Rig(db_url, tmp_path, engine, Limits(requests_per_minute=1000, burst=1000, searches_per_day=2))
    searcher = rig[Role.SEARCHER]
    for _ in range(2):
        with pytest.raises(ImageError):  # counted: the quota limits probing, not only successes
            rig.ops.search(searcher, b"not an image", purpose="p", case_reference="c", source=SRC)
    with pytest.raises(RateLimited) as caught:
        rig.ops.search(searcher, b"not an image", purpose="p", case_reference="c", source=SRC)
    assert caught.value.retry_after == 60  # NOW is 23:59:00 UTC
    counts = {(u["kind"], u["key_id"]): u["count"] for u in rig.usage.counts(rig.tenant)}
    assert counts[("search", searcher.key_id)] == 3
    # Another searcher key of the same tenant has its own quota.
    view, _ = rig.accounts.create_key(rig.tenant, Role.SEARCHER, "second", None, actor="operator", source=SRC)
    with pytest.raises(ImageError):
        rig.ops.search(Principal(rig.tenant, view.id, Role.SEARCHER), b"x", purpose="p", case_reference="c", source=SRC)


def test_usage_is_counted_per_act(rig: Rig) -> None:
    rig.subject()
    rig.ops.list_subjects(rig[Role.ENROLLER], limit=5, offset=0, source=SRC)
    rig.ops.list_subjects(rig[Role.ENROLLER], limit=5, offset=0, source=SRC)
    kinds = {u["kind"]: u["count"] for u in rig.usage.counts(rig.tenant) if u["key_id"] == rig[Role.ENROLLER].key_id}
    assert kinds == {"subject.create": 1, "subject.list": 2}
    assert all(u["day"] == date(2026, 3, 14).isoformat() for u in rig.usage.counts(rig.tenant))


def test_when_the_audit_fails_the_act_fails(rig: Rig) -> None:
    subject_id = rig.subject()
    rig.audit.failing = {"subject.list", "subject.erase", "subject.create"}
    with pytest.raises(StoreUnavailable):
        rig.ops.list_subjects(rig[Role.ENROLLER], limit=5, offset=0, source=SRC)
    with pytest.raises(StoreUnavailable):
        rig.ops.erase_subject(rig[Role.ENROLLER], subject_id, source=SRC)
    assert rig.gallery.store.get_subject(rig.tenant, subject_id)  # written first, so nothing was erased
    with pytest.raises(StoreUnavailable):
        rig.subject()
    assert rig.gallery.store.count_subjects(rig.tenant) == 1  # the unaudited subject was removed


def test_an_unaudited_enrollment_removes_its_face(rig: Rig, astronaut_jpeg: bytes) -> None:
    subject_id = rig.subject()
    rig.gallery.indexes.get(rig.tenant)  # an index exists before: it must not keep the face
    rig.audit.failing = {"face.enroll"}
    with pytest.raises(StoreUnavailable):
        rig.ops.enroll(rig[Role.ENROLLER], subject_id, astronaut_jpeg, source=SRC)
    assert rig.gallery.store.faces_of(rig.tenant, subject_id) == []
    assert len(rig.gallery.indexes.get(rig.tenant).index) == 0
    rig.audit.failing = set()
    face = rig.ops.enroll(rig[Role.ENROLLER], subject_id, astronaut_jpeg, source=SRC)
    assert not face.duplicate
    details = rig.last("face.enroll")
    assert details["face_id"] == face.id and details["subject_id"] == subject_id and len(details["image_sha256"]) == 64
    erased = rig.ops.erase_subject(rig[Role.ENROLLER], subject_id, source=SRC)
    assert rig.last("subject.erase") == {"subject_id": subject_id, "face_ids": erased} and erased == [face.id]
