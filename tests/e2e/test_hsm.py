"""The master key in a SoftHSM2 token, end to end: init, serve, enroll, search, back up, restore, rotate online.

Every faceward command runs as its own process, as an operator would run it; the token is a real
PKCS#11 token (SoftHSM2) made by the test.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from faceward.security.crypto import parse_master_key
from faceward.security.pkcs11 import Pkcs11Keyring
from tests.net import free_port
from tests.conftest import jpeg
from tests.softhsm import Token, make_token

CLI = [sys.executable, "-m", "faceward.cli.main"]
WHY = ("--purpose", "HSM end-to-end check", "--case-reference", "TEST-HSM")  # a CLI search states why, as the API's does
pytestmark = pytest.mark.slow
CONSENT = {"basis": "explicit_consent", "reference": "FORM-1", "given_at": "2026-01-02T03:04:05Z"}
FORM = {"purpose": "identify a witness for case review", "case_reference": "CASE-7"}


def environment(home: Path, token: Token | None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FACEWARD_", "SOFTHSM2_"))}
    env.update({"FACEWARD_HOME": str(home), "FACEWARD_ANALYSIS_WORKERS": "0", **(token.env() if token else {}), **extra})
    return env


def cli(env: dict[str, str], *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=180)
    if ok:
        assert done.returncode == 0, done.stdout + done.stderr
    return done


def operator_actions(env: dict[str, str]) -> list[tuple[str, str | None]]:
    """The operator chain's (action, tenant id) pairs, read with the master key (in the token) as the CLI does."""
    done = subprocess.run([sys.executable, "-c", (
        "import json; from faceward.bootstrap import master_keyring; from faceward.settings import load_settings\n"
        "from faceward.security.operator_log import OperatorLog\n"
        "s = load_settings(); log = OperatorLog(s.home / OperatorLog.FILE_NAME, keyring=master_keyring(s))\n"
        "print(json.dumps([[e.action, e.tenant_id] for e in log.entries()]))")],
        env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return [(a, t) for a, t in json.loads(done.stdout)]


@contextmanager
def serving(env: dict[str, str], log: Path) -> Iterator[str]:
    port = free_port()
    with log.open("w") as out:
        process = subprocess.Popen([*CLI, "serve", "--port", str(port)], env=env, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.3)
        yield base
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def key(base: str, admin: str, role: str) -> dict[str, str]:
    made = httpx.post(f"{base}/v1/keys", headers={"Authorization": f"Bearer {admin}"}, json={"role": role, "label": role}, timeout=10)
    assert made.status_code == 201, made.text
    return {"Authorization": f"Bearer {made.json()['secret']}"}


def enroll(base: str, enroller: dict[str, str], name: str, image: bytes) -> str:
    subject = httpx.post(f"{base}/v1/subjects", headers=enroller, json={"display_name": name, "consent": CONSENT}, timeout=10)
    assert subject.status_code == 201, subject.text
    face = httpx.post(f"{base}/v1/subjects/{subject.json()['id']}/faces", headers=enroller,
                      files={"image": ("a.jpg", image, "image/jpeg")}, timeout=60)
    assert face.status_code == 201, face.text
    return str(subject.json()["id"])


def search(base: str, searcher: dict[str, str], probe: bytes) -> list[dict[str, Any]]:
    found = httpx.post(f"{base}/v1/search", headers=searcher, data=FORM, files={"image": ("p.jpg", probe, "image/jpeg")},
                       timeout=60)
    assert found.status_code == 200, found.text
    return list(found.json()["candidates"])


def holds_a_master_key(path: Path) -> bool:
    """Any line of the file that parses as a faceward master key (what a key file holds)."""
    for line in path.read_bytes().splitlines():
        try:
            parse_master_key(line.decode("ascii"), source=str(path))
            return True
        except Exception:
            continue
    return False


def test_init_serve_backup_restore_with_the_master_key_in_the_token(
    tmp_path: Path, astronaut: np.ndarray, astronaut_probe: bytes
) -> None:
    token = make_token(tmp_path / "hsm")
    home = tmp_path / "home"
    env = environment(home, token)
    made = json.loads(cli(env, "init", "--json").stdout)
    assert made["key_created"] and made["key_file"] is None and "faceward-master.1" in made["hsm_key"]
    assert json.loads(cli(env, "init", "--json").stdout)["key_created"] is False  # found by its label
    tenant = json.loads(cli(env, "tenant", "create", "Org", "--json").stdout)

    with serving(env, tmp_path / "serve.log") as base:
        enroller = key(base, tenant["admin_key"], "enroller")
        searcher = key(base, tenant["admin_key"], "searcher")
        subject = enroll(base, enroller, "Eileen Collins", jpeg(astronaut))
        assert [c["subject_id"] for c in search(base, searcher, astronaut_probe)] == [subject]
        backups = tmp_path / "backups"
        info = json.loads(cli(env, "backup", str(backups / "b.fwb"), "--json").stdout)  # online, while serving
        assert info["bytes"] > 0

    # No file in the home or the backup folder holds a master key; there is no key file at all.
    files = [p for p in [*home.rglob("*"), *backups.rglob("*")] if p.is_file()]
    assert files and not (home / "master.key").exists()
    assert not [p for p in files if holds_a_master_key(p)]

    # Restore into a fresh home with the same token: the subject is back and found.
    fresh = environment(tmp_path / "fresh", token, FACEWARD_ERASURE_LEDGER=str(home / "erasure-ledger.jsonl"))
    cli(fresh, "restore", str(backups / "b.fwb"), "--json")
    probe = tmp_path / "probe.jpg"
    probe.write_bytes(astronaut_probe)
    found = json.loads(cli(fresh, "search", str(probe), "--tenant", tenant["tenant_id"], *WHY, "--json").stdout)
    assert [c["subject_id"] for c in found["candidates"]] == [subject]

    # A copy of the home and database without the token opens nothing: not as a key-file home, not
    # with another token holding a key of the same label behind the same PIN, not the backup either.
    stolen = tmp_path / "stolen"
    shutil.copytree(home, stolen)
    plain = cli(environment(stolen, None), "subjects", "list", "--tenant", tenant["tenant_id"], "--json", ok=False)
    assert plain.returncode != 0 and "Eileen" not in plain.stdout + plain.stderr
    thief_token = make_token(tmp_path / "thief", label=token.label)
    thief = environment(stolen, thief_token)
    assert json.loads(cli(thief, "init", "--json").stdout)["key_created"]  # same label, a different key
    listed = cli(thief, "subjects", "list", "--tenant", tenant["tenant_id"], "--json", ok=False)
    assert listed.returncode != 0 and "Eileen" not in listed.stdout + listed.stderr
    restored = cli(environment(tmp_path / "thief-home", thief_token), "restore", str(backups / "b.fwb"),
                   "--without-ledger", ok=False)
    assert restored.returncode != 0 and "does not open with this master key" in restored.stderr


def test_migrate_a_key_file_home_into_the_token(tmp_path: Path, astronaut: np.ndarray, astronaut_probe: bytes) -> None:
    home = tmp_path / "home"
    plain = environment(home, None)
    cli(plain, "init")
    tenant = json.loads(cli(plain, "tenant", "create", "Org", "--json").stdout)
    batch = tmp_path / "batch" / "Eileen"
    batch.mkdir(parents=True)
    (batch / "a.jpg").write_bytes(jpeg(astronaut))
    cli(plain, "enroll", str(batch.parent), "--basis", "explicit_consent", "--reference", "r",
        "--tenant", tenant["tenant_id"])
    token = make_token(tmp_path / "hsm")
    env = environment(home, token)
    moved = json.loads(cli(env, "keys", "migrate", "--to", "pkcs11", "--json").stdout)
    assert moved["rotated"] >= 1 and moved["hsm_key"] == "faceward-master.1"  # the CLI's local tenant too
    again = json.loads(cli(env, "keys", "migrate", "--to", "pkcs11", "--json").stdout)
    assert again["rotated"] == 0 and again["already"] == moved["rotated"]
    (home / "master.key").rename(tmp_path / "offline-master.key")  # moved off the machine
    probe = tmp_path / "probe.jpg"
    probe.write_bytes(astronaut_probe)
    found = json.loads(cli(env, "search", str(probe), "--tenant", tenant["tenant_id"], *WHY, "--json").stdout)
    assert len(found["candidates"]) == 1
    audit = cli(env, "audit", "timeline", "--tenant", tenant["tenant_id"], "--json").stdout
    assert "master_key" not in audit  # the host's act: in the operator chain, not the tenant's
    assert ("master_key.rewrap", tenant["tenant_id"]) in operator_actions(env)


def test_online_rotation_loses_no_request(tmp_path: Path, astronaut: np.ndarray, astronaut_probe: bytes) -> None:
    """Clients keep listing and searching (several tenants, fresh server processes unwrapping on the way)
    while `faceward keys rotate-master` re-wraps every tenant key under a new key in the token."""
    token = make_token(tmp_path / "hsm")
    home = tmp_path / "home"
    # The clients never back off: lift the per-key rate so a fast machine measures rotation, not the limiter.
    env = environment(home, token, FACEWARD_RATE_PER_MINUTE="100000", FACEWARD_RATE_BURST="10000")
    cli(env, "init")
    tenants = [json.loads(cli(env, "tenant", "create", f"Org {n}", "--json").stdout) for n in range(4)]
    results: list[int] = []
    errors: list[str] = []
    stop = threading.Event()

    with serving(env, tmp_path / "serve.log") as base:
        searchers = []
        for n, tenant in enumerate(tenants):
            enroller = key(base, tenant["admin_key"], "enroller")
            if n == 0:
                enroll(base, enroller, "Subject", jpeg(astronaut))
            searchers.append((enroller, key(base, tenant["admin_key"], "searcher")))

        def load(number: int) -> None:
            with httpx.Client(timeout=60) as client:
                i = 0
                while not stop.is_set():
                    enroller, searcher = searchers[(number + i) % len(searchers)]
                    try:
                        if i % 8 == 0:
                            r = client.post(f"{base}/v1/search", headers=searcher, data=FORM,
                                            files={"image": ("p.jpg", astronaut_probe, "image/jpeg")})
                        else:
                            r = client.get(f"{base}/v1/subjects", headers=enroller)
                        results.append(r.status_code)
                        if r.status_code != 200:
                            errors.append(f"{r.status_code} {r.text[:200]}")
                    except httpx.HTTPError as exc:
                        errors.append(repr(exc))
                    i += 1

        workers = [threading.Thread(target=load, args=(n,)) for n in range(4)]
        for w in workers:
            w.start()
        try:
            time.sleep(1.0)
            before = len(results)
            rotated = json.loads(cli(env, "keys", "rotate-master", "--json").stdout)
            during = len(results) - before
            # A second server process started after the rotation unwraps under the new key only.
            with serving(env, tmp_path / "serve2.log") as second:
                enroller, _ = searchers[0]
                assert httpx.get(f"{second}/v1/subjects", headers=enroller, timeout=30).status_code == 200
            time.sleep(0.5)
        finally:
            stop.set()
            for w in workers:
                w.join(timeout=120)

    assert rotated == {"rotated": 4, "already": 0, "shredded": 0, "old_key": "faceward-master.1",
                       "new_key": "faceward-master.2"}
    assert errors == [] and len(results) > 20 and during > 0, (errors[:5], len(results), during)
    # Every tenant key is now wrapped under the new key, and the operator chain (not the tenants') records it.
    import sqlite3

    with sqlite3.connect(home / "faceward.db") as db:
        labels = {Pkcs11Keyring.parse(row[0])[0] for row in db.execute("SELECT wrapped_key FROM tenants")}
    assert labels == {"faceward-master.2"}
    acts = operator_actions(env)
    assert acts[-1] == ("master_key.rotate", None)
    for tenant in tenants:
        assert ("master_key.rewrap", tenant["tenant_id"]) in acts
        timeline = cli(env, "audit", "timeline", "--tenant", tenant["tenant_id"], "--json").stdout
        assert "master_key" not in timeline
