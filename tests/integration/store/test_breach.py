"""Breach drill: everything an intruder walks away with (SQLite file and WAL, a pg_dump) holds no clear secrets.

After creating tenants, keys, subjects, faces, erasures, audit entries, review
steps and usage, the stolen bytes must not contain a tenant name, subject name,
consent reference, key label or secret, audit actor or source, a face template,
a review's outcome or the search it is about (#12).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from datetime import date
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest

from faceward.security.crypto import Keyring
from faceward.security.permissions import Role
from faceward.services.accounts import AccountService
from faceward.security.audit import AuditLog
from faceward.services.consent import Consent, LawfulBasis
from faceward.services.gallery import GalleryService, new_id
from faceward.services.reviews import Outcome, ReviewService
from faceward.services.usage import UsageService
from faceward.settings import Settings
from faceward.store import SqlStore
from faceward.vision.embed import to_template
from faceward.vision.types import Quality

TENANTS = ("Quillfeather Constabulary", "Marrowdale Border Agency")
SUBJECTS = ("Zebulon Quartermaine", "Ottoline Vexworth", "Erased Persephone Grue")
CONSENT = "CONSENT-REF-4417-ALPHA"
LABEL = "desk-label-7781"
ACTOR_SOURCE = "198.51.100.77"


def populate(url: str, home: Path) -> tuple[SqlStore, list[bytes]]:
    """Fill a store through the services; return it (open) and every secret an intruder must not find."""
    store = SqlStore.open(url)
    engine = SimpleNamespace(template_id="fake-model", embedding_size=128, manifest=None)
    gallery = GalleryService(store, Keyring(os.urandom(32)), Settings(home=home), engine=engine)  # type: ignore[arg-type]
    accounts = AccountService(gallery, AuditLog(store, gallery.vault.tenant_key))
    usage = UsageService(store, gallery.vault)
    reviews = ReviewService(gallery)
    rng = np.random.default_rng(7)
    secrets: list[bytes] = [CONSENT.encode(), LABEL.encode(), ACTOR_SOURCE.encode()]
    secrets += [o.value.encode() for o in Outcome]  # review outcomes are not readable
    for tenant_name in TENANTS:
        tenant_id, admin = accounts.create_tenant(tenant_name)
        principal = accounts.authenticate(admin, source=ACTOR_SOURCE)
        key, token = accounts.create_key(tenant_id, Role.SEARCHER, LABEL, None, actor=principal.actor, source=ACTOR_SOURCE)
        secrets += [tenant_name.encode(), admin.encode(), token.encode(), admin.split("_")[2].encode()]
        for name in SUBJECTS:
            subject = gallery.create_subject(tenant_id, name, Consent(LawfulBasis.EXPLICIT_CONSENT, CONSENT, gallery.clock()))
            secrets.append(name.encode())
            for _ in range(2):
                vector = rng.standard_normal(128).astype(np.float32)
                vector /= np.linalg.norm(vector)
                template = to_template(vector)
                secrets += [template, template[:32], template[:32].hex().encode()]
                photo = os.urandom(32).hex()  # the enrolled photo's SHA-256: stored only keyed (#12)
                secrets += [photo.encode(), bytes.fromhex(photo)]
                gallery.admit(
                    tenant_id, subject.id, vector, Quality(120, 80.0, 1.0, 0.9), {"left": 0, "top": 0, "right": 9, "bottom": 9},
                    photo, 1,
                )
            accounts.audit.append(tenant_id, actor=principal.actor, action="subject.create",
                                  details={"subject_id": subject.id}, source=ACTOR_SOURCE)
            # Review steps of every outcome: neither the outcome nor the search shows (#12).
            search = new_id("q_")
            secrets.append(search.encode())
            step = {"search_id": search, "subject_id": subject.id, "face_id": None, "note": "ears agree",
                    "token": reviews.token(tenant_id, search, subject.id, None)}
            reviews.record(tenant_id, principal.key_id, outcome=Outcome.POSSIBLE_MATCH.value, **step)
            reviews.record(tenant_id, key.id, outcome=Outcome.CONFIRMED.value, **step)
            reviews.record(tenant_id, key.id, outcome=Outcome.NOT_A_MATCH.value, **step)
            if name.startswith("Erased"):
                gallery.delete_subject(tenant_id, subject.id)
        for _ in range(5):
            usage.record(tenant_id, key.id, "search", day=date(2026, 11, 1))
    secrets += [s.hex().encode() for s in secrets if not s.isascii()]
    return store, secrets


def assert_clean(stolen: bytes, secrets: list[bytes]) -> None:
    assert b"explicit_consent" in stolen  # control: the scan does see row data kept in clear
    leaked = [s[:40] for s in secrets if s in stolen or s.hex().encode() in stolen]
    assert not leaked


def test_sqlite_file_and_wal(tmp_path: Path) -> None:
    path = tmp_path / "faceward.db"
    store, secrets = populate(f"sqlite:///{path}", tmp_path / "home")
    files = [p for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")) if p.exists()]
    assert Path(f"{path}-wal").exists()
    # Inside a 0700 home or not, the data files are the owner's alone (#12).
    assert {p.name: oct(p.stat().st_mode & 0o777) for p in files} == {p.name: "0o600" for p in files}
    assert_clean(b"".join(p.read_bytes() for p in files), secrets)  # copied while the service runs
    store.close()
    assert_clean(path.read_bytes(), secrets)


@pytest.mark.postgres
def test_pg_dump(pg_url: str, tmp_path: Path) -> None:
    pg_dump = shutil.which("pg_dump")
    if pg_dump is None:
        pytest.skip("pg_dump is not installed")
    store, secrets = populate(pg_url, tmp_path / "home")
    parts = urlsplit(pg_url)
    schema = parse_qs(parts.query)["options"][0].split("=", 1)[1]
    dump = subprocess.run(
        [pg_dump, "-h", parts.hostname or "127.0.0.1", "-p", str(parts.port or 5432), "-U", parts.username or "postgres",
         "-n", schema, "--no-owner", parts.path.lstrip("/")],
        check=True, capture_output=True, timeout=120,
    ).stdout
    assert b"COPY " in dump and b"api_keys" in dump
    assert_clean(dump, secrets)
    store.close()
