"""Bulk enrollment killed with SIGKILL part-way, several times, then run to the end: every image enrolled exactly once (#5)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

pytestmark = [pytest.mark.lfw, pytest.mark.slow]

PEOPLE = 8
PER_PERSON = 5
KILL_AFTER = (4, 14, 24)  # faces in the database when each run is killed


@pytest.fixture()
def folder(lfw_dir: Path, tmp_path: Path) -> Path:
    """8 people x 5 photos from lfw-dev (the first people, by name, with at least 5)."""
    root = tmp_path / "batch"
    chosen = 0
    for person in sorted(p for p in (lfw_dir / "images").iterdir() if p.is_dir()):
        photos = sorted(person.glob("*.jpg"))
        if len(photos) < PER_PERSON:
            continue
        (root / person.name).mkdir(parents=True)
        for photo in photos[:PER_PERSON]:
            shutil.copy(photo, root / person.name / photo.name)
        chosen += 1
        if chosen == PEOPLE:
            break
    assert chosen == PEOPLE
    return root


def faces_in(db: Path) -> int:
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    except sqlite3.Error:
        return 0
    try:
        return int(conn.execute("SELECT count(*) FROM faces").fetchone()[0])
    except sqlite3.Error:
        return 0
    finally:
        conn.close()


def command(folder: Path) -> list[str]:
    return [sys.executable, "-m", "faceward.cli.main", "enroll", str(folder), "--basis", "explicit_consent",
            "--reference", "r", "--workers", "1", "--json"]


def test_killed_enrollment_resumes_without_duplicates(folder: Path, home: Path) -> None:
    env = dict(os.environ)
    db = home / "faceward.db"
    for threshold in KILL_AFTER:
        proc = subprocess.Popen(command(folder), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                start_new_session=True)
        deadline = time.monotonic() + 120
        while faces_in(db) < threshold and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert proc.poll() is None, f"the run ended before it was killed: {proc.stderr.read().decode()[-2000:]}"  # type: ignore[union-attr]
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        assert proc.returncode == -signal.SIGKILL
    killed_at = faces_in(db)
    assert killed_at >= KILL_AFTER[-1]

    done = subprocess.run(command(folder), env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout)
    assert summary["already_enrolled"] == killed_at  # what the killed runs stored is recognised, not redone

    refused = {Path(item["image"]).resolve() for item in summary["refused"] + summary["invalid"]}
    expected: Counter[tuple[str, str]] = Counter()
    for image in sorted(folder.glob("*/*.jpg")):
        if image.resolve() not in refused:
            expected[(image.parent.name, hashlib.sha256(image.read_bytes()).hexdigest())] += 1

    from faceward.bootstrap import open_gallery
    from faceward.settings import load_settings

    gallery = open_gallery(load_settings())
    try:
        (tenant,) = [t.id for t in gallery.store.list_tenants()]
        subjects = gallery.list_subjects(tenant, limit=500)
        names = [s.display_name for s in subjects]
        assert len(names) == len(set(names)), "a subject was created twice"
        stored: Counter[tuple[str, str]] = Counter()
        for subject in subjects:
            for face in gallery.store.faces_of(tenant, subject.id):
                stored[(subject.display_name, face.image_sha256)] += 1
        assert max(stored.values()) == 1, "an image was enrolled twice"
        # The store keeps each photo's digest keyed per tenant (a dump cannot be matched against a photo).
        expected = Counter({(name, gallery.vault.image_digest(tenant, sha)): n for (name, sha), n in expected.items()})
        assert stored == expected  # every accepted image exactly once, nothing else
        assert summary["enrolled"] + summary["already_enrolled"] == sum(expected.values())
        assert sum(stored.values()) >= PEOPLE * PER_PERSON - 5
        assert set(names) == {name for name, _ in expected}
        from faceward.services.doctor import doctor

        assert doctor(gallery).ok
    finally:
        gallery.store.close()
