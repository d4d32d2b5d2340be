"""Every command's human-readable output (no ``--json``), read as a person reads it, on a small real gallery.

`faceward search` without ``--json`` once crashed because its table read fields of a result that had
changed shape, while every test ran ``--json``. Here each command that makes sense on an embedded home
runs without ``--json``: it must exit as documented, print no traceback, and print the facts a person
needs (names, ids, counts), the same facts its ``--json`` gives.

One home, enrolled once for the module (three lfw-dev people, two photos each), is shared; a test that
erases or tampers does so on a subject or tenant it made for the purpose and leaves the home as it found
it. Master key rotation, ``init`` and a recognizer of one's own run in fresh homes of their own.
Not covered: ``serve`` (a server), ``oidc connect`` (an OpenID provider), ``keys migrate`` and
``keys retire-master`` beyond their refusal on a key file (an HSM), ``enroll --ray`` (Ray).
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import re
import shutil
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import typer
from PIL import Image, ImageFilter
from typer.core import TyperGroup
from typer.testing import CliRunner, Result

from faceward import __version__
from faceward.cli.common import err, out
from faceward.cli.main import app
from tests.conftest import own_model_manifest

PEOPLE = ["Angela_Bassett", "Abel_Pacheco", "Anders_Fogh_Rasmussen"]
WHY = ("--purpose", "human output check", "--case-reference", "TEST-HUMAN-1")
WIDE = 250  # columns: wide enough that no name or id folds, so a fact is one piece of text to look for
KEPT_ENV = {"FACEWARD_HOME", "FACEWARD_MASTER_KEY", "FACEWARD_LFW_DIR", "FACEWARD_PG_URL"}


def invoke(*args: str, width: int = WIDE) -> Result:
    # The consoles' width, as tests/integration/cli/test_operator.py sets it: a terminal of `width` columns.
    saved = out._width, err._width
    out._width = err._width = width
    try:
        result = CliRunner().invoke(app, list(args))
    finally:
        out._width, err._width = saved
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception  # a crash fails the test with its own traceback, not as "exit code 1"
    assert "Traceback" not in result.output, result.output
    return result


def run(*args: str, code: int = 0, width: int = WIDE) -> str:
    """``faceward ARGS`` as a person runs it: what it printed (stdout and stderr), after its exit code is checked."""
    result = invoke(*args, width=width)
    assert result.exit_code == code, (args, result.output)
    return result.output


def data(*args: str, code: int = 0) -> Any:
    """``faceward ARGS --json``: the parsed JSON."""
    result = invoke(*args, "--json")
    assert result.exit_code == code, (args, result.output)
    return json.loads(result.stdout)


def row(output: str, key: str) -> list[str]:
    """The one table row holding ``key`` (names have no spaces here), split into its cells."""
    [line] = [line for line in output.splitlines() if key in line.split()]
    return line.split()


def field(output: str, key: str, value: Any) -> bool:
    """Whether ``output`` has the line ``key: value``, as the flat reports print a field (yes/no for a bool)."""
    text = ("yes" if value else "no") if isinstance(value, bool) else str(value)
    return re.search(rf"^{re.escape(key)}: {re.escape(text)}$", output, re.M) is not None


def subject_id(name: str) -> str:
    ids: dict[str, str] = {s["display_name"]: s["id"] for s in data("subjects", "list")["subjects"]}
    return ids[name]


def one_subject(root: Path, name: str, photo: Path, consent: str | None = None) -> Path:
    """A folder to enroll holding one subject made for a test (erased, purged) with one photo."""
    (root / name).mkdir(parents=True)
    shutil.copy(photo, root / name / photo.name)
    if consent is not None:
        (root / "consent.csv").write_text(consent)
    return root


def lfw_photo(lfw_dir: Path, person: str, index: int = 0) -> Path:
    return sorted((lfw_dir / "images" / person).glob("*.jpg"))[index]


@dataclass(frozen=True)
class Gallery:
    home: Path
    folder: Path
    enrolled: str  # what `faceward enroll` printed
    ids: dict[str, str]  # display name -> subject id
    probe: Path  # a third photo of PEOPLE[0], not enrolled


@pytest.fixture(scope="module")
def gallery(lfw_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gallery]:
    """A fresh home (as the ``home`` fixture makes one, for the whole module) with PEOPLE enrolled, two photos each."""
    root = tmp_path_factory.mktemp("human-output")
    folder = root / "gallery"
    for person in PEOPLE:
        (folder / person).mkdir(parents=True)
        for index in (0, 1):
            shutil.copy(lfw_photo(lfw_dir, person, index), folder / person)
    # A blurred photo is enrolled with a warning (decision 037).
    Image.open(lfw_photo(lfw_dir, PEOPLE[2], 1)).filter(ImageFilter.GaussianBlur(3)).save(folder / PEOPLE[2] / "blurred.jpg")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("FACEWARD_HOME", str(root / "home"))
        env.setenv("FACEWARD_MASTER_KEY", base64.b64encode(os.urandom(32)).decode())
        for name in list(os.environ):
            if name.startswith("FACEWARD_") and name not in KEPT_ENV:
                env.delenv(name)
        enrolled = run("enroll", str(folder), "--basis", "explicit_consent", "--reference", "r", "--workers", "1")
        ids = {s["display_name"]: s["id"] for s in data("subjects", "list")["subjects"]}
        yield Gallery(root / "home", folder, enrolled, ids, lfw_photo(lfw_dir, PEOPLE[0], 2))


# Every command and subcommand `faceward --help` lists, and where this module runs it without --json.
COVERED = {
    "enroll": "the gallery fixture, test_enroll_...", "search": "test_search_...", "verify": "test_verify_...",
    "subjects list": "test_subjects_...", "subjects show": "test_subjects_...", "subjects delete": "test_a_subject_erased_...",
    "info": "test_info_...", "doctor": "test_a_subject_erased_...", "audit verify": "test_audit_...",
    "audit timeline": "test_audit_...", "tenant create": "test_tenants", "tenant list": "test_tenants",
    "tenant suspend": "test_tenants", "tenant resume": "test_tenants", "tenant renew-transform": "test_tenants",
    "tenant admin-key": "test_tenants", "tenant delete": "test_tenants", "retention": "test_retention_and_purge",
    "purge": "test_retention_and_purge", "backup": "test_backup_...", "restore": "test_backup_...",
    "eval pairs": "test_eval_...", "eval ident": "test_eval_...", "oidc show": "test_oidc_...",
    "oidc disconnect": "test_oidc_...", "init": "test_init_...", "keys rotate-master": "test_master_key_rotation_...",
    "keys retire-master": "test_master_key_rotation_... (its refusal: it needs an HSM)",
    "keys migrate": "test_master_key_rotation_... (its refusal: it needs an HSM)",
    "models show": "test_a_model_of_ones_own_...", "models calibrate": "test_a_model_of_ones_own_...",
    "reenroll": "test_a_model_of_ones_own_...",
}
SKIPPED = {
    "serve": "runs a server (tests/e2e/test_serve_process.py)",
    "oidc connect": "needs an OpenID Connect provider (tests/e2e/test_console_oidc.py)",
}


def test_every_command_is_covered_here_or_skipped_for_a_reason() -> None:
    def names(group: TyperGroup, prefix: str = "") -> set[str]:
        found: set[str] = set()
        for name, command in group.commands.items():
            found |= names(command, f"{prefix}{name} ") if isinstance(command, TyperGroup) else {prefix + name}
        return found

    root = typer.main.get_command(app)
    assert isinstance(root, TyperGroup)
    assert names(root) == set(COVERED) | set(SKIPPED)  # a new command: run it here without --json, or say why not


def test_enroll_reports_what_it_stored_and_a_rerun_finds_it_all_there(gallery: Gallery) -> None:
    faces = {name: len(data("subjects", "show", sid)["faces"]) for name, sid in gallery.ids.items()}
    assert sorted(faces) == sorted(PEOPLE)
    assert f"subjects created: 3  faces enrolled: {sum(faces.values())}  already enrolled: 0" in gallery.enrolled
    assert re.search(r"enrolled with a warning: [1-9]", gallery.enrolled)
    assert f"{PEOPLE[2]}/blurred.jpg: enrolled, but face is blurred" in gallery.enrolled
    again = run("enroll", str(gallery.folder), "--basis", "explicit_consent", "--reference", "r", "--workers", "1")
    assert f"subjects created: 0  faces enrolled: 0  already enrolled: {sum(faces.values())}" in again


def test_search_table_names_the_candidates_the_json_names(gallery: Gallery) -> None:
    found = data("search", str(gallery.probe), *WHY)
    table = run("search", str(gallery.probe), *WHY)
    threshold = found["threshold"]
    assert (f"Candidates (gallery of {found['gallery_faces']} faces; threshold {threshold['score']:.3f} "
            f"at FMR {threshold['target_fmr']:g})") in table
    assert len(found["candidates"]) == 3
    for c in found["candidates"]:
        rank, sid, name, score, fmr, decision = row(table, c["subject_id"])
        assert [rank, sid, name, fmr, decision] == [
            str(c["rank"]), c["subject_id"], c["display_name"], f"{c['estimated_fmr']:.2e}", c["decision"]]
        assert abs(float(score) - c["score"]) <= 6e-5  # 4 decimals shown, 5 in the JSON
    assert row(table, gallery.ids[PEOPLE[0]])[0] == "1"  # her third photo finds her first
    for warning in found["warnings"]:
        assert f"warning: {warning}" in table
    assert found["notice"] in table
    narrow = run("search", str(gallery.probe), *WHY, width=80)  # a small terminal folds names, never an id
    assert all(sid in narrow for sid in gallery.ids.values())


def test_verify_prints_the_score_and_decision_the_json_gives(gallery: Gallery, lfw_dir: Path) -> None:
    line = re.compile(r"score (\d\.\d{4})  estimated FMR (\S+)  decision (\w+) \(threshold (\d\.\d{3})\)")
    same = lfw_photo(lfw_dir, PEOPLE[0], 0)
    other = lfw_photo(lfw_dir, PEOPLE[1], 0)
    for args in ((str(gallery.probe), str(same)), (str(gallery.probe), str(other)),
                 (str(gallery.probe), "--subject", gallery.ids[PEOPLE[0]])):
        verdict = data("verify", *args)
        shown = line.search(run("verify", *args))
        assert shown is not None, args
        score, fmr, decision, threshold = shown.groups()
        assert (fmr, decision, threshold) == (f"{verdict['estimated_fmr']:.2e}", verdict["decision"],
                                              f"{verdict['threshold']:.3f}")
        assert abs(float(score) - verdict["score"]) <= 6e-5, args
    assert "decision below_threshold" in run("verify", str(same), str(other))


def test_subjects_list_and_show(gallery: Gallery) -> None:
    listed = data("subjects", "list")
    table = run("subjects", "list")
    assert table.split()[:5] == ["id", "name", "consent", "basis", "created"]
    for s in listed["subjects"]:
        assert row(table, s["id"])[:3] == [s["id"], s["display_name"], "explicit_consent"]
    assert run("subjects", "list", "--ids").split() == [s["id"] for s in listed["subjects"]]
    narrow = run("subjects", "list", width=80)
    assert all(sid in narrow for sid in gallery.ids.values())

    sid = gallery.ids[PEOPLE[1]]
    view = data("subjects", "show", sid)
    shown = run("subjects", "show", sid)
    for key in ("id", "display_name", "consent_basis", "consent_reference"):
        assert field(shown, key, view[key]), key
    assert field(shown, "consent_expires_at", "-")  # none, not "None"
    assert shown.count('"id": "f_') == len(view["faces"]) == 2
    assert "no such subject" in run("subjects", "show", "s_nope", code=2)


def test_info_names_the_version_home_and_model(gallery: Gallery) -> None:
    report = data("info")
    shown = run("info")
    assert row(shown, __version__)[-1] == __version__
    assert str(gallery.home) in shown
    assert row(shown, report["face_engine"]["template_id"])[:2] == ["template", "id"]
    assert f"faceward {__version__}" in run("--version")


def test_a_subject_erased_and_a_doctor_that_finds_and_repairs_a_lost_ledger_entry(
    gallery: Gallery, lfw_dir: Path, tmp_path: Path
) -> None:
    report = data("doctor")
    shown = run("doctor")
    for check, values in report["checks"].items():
        assert f"{check}: " + "  ".join(f"{k}={v}" for k, v in values.items()) in shown
    assert shown.rstrip().endswith("ok")

    folder = one_subject(tmp_path / "erase", "Erase_Me", lfw_photo(lfw_dir, "Abdullah_Gul"))
    run("enroll", str(folder), "--basis", "explicit_consent", "--reference", "r", "--workers", "1")
    sid = subject_id("Erase_Me")
    assert run("subjects", "delete", sid, "--yes") == f"erased {sid} and 1 face(s)\n"
    assert "no such subject" in run("subjects", "show", sid, code=2)
    assert run("subjects", "delete", sid, code=2).startswith("error:")  # no --yes, no terminal: refused

    ledger = gallery.home / "erasure-ledger.jsonl"
    lines = ledger.read_text().splitlines(keepends=True)
    assert sid not in "".join(lines)  # a keyed hash of the id, not the id (decision 007's addendum)
    erased_ref = json.loads(lines[-1])["ref"]
    ledger.write_text("".join(lines[:-1]))  # the ledger loses the erasure's entry
    broken = run("doctor", code=1)  # documented: exit 1 while a problem remains
    tenant = data("tenant", "list")["tenants"][0]["id"]
    assert f"problem: erasures/missing_from_ledger tenant {tenant} subject {sid}: " in broken  # as the JSON names it
    assert data("doctor", code=1)["problems"][0]["subject_id"] == sid
    assert "missing_from_ledger=1" in broken and "problems found" in broken and "--repair" in broken
    repaired = run("doctor", "--repair")
    assert f"repaired: ledger_entry_added ({tenant})" in repaired and repaired.rstrip().endswith("ok")
    assert json.loads(ledger.read_text().splitlines()[-1])["ref"] == erased_ref  # the same subject's hash again


def test_audit_verify_and_timeline(gallery: Gallery) -> None:
    local = data("tenant", "list")["tenants"][0]["id"]
    search_id = data("search", str(gallery.probe), *WHY)["search_id"]
    report = data("audit", "verify", "--tenant", local)
    assert run("audit", "verify", "--tenant", local) == f"{local}: {report['entries']} entries, head {report['head']}: ok\n"
    chain = data("audit", "verify", "--operator")
    assert run("audit", "verify", "--operator").endswith(f": {chain['entries']} entries: ok\n")

    entries = data("audit", "timeline", "--tenant", local)["entries"]
    shown = run("audit", "timeline", "--tenant", local, width=2000)  # details unfolded: one line per entry
    assert shown.splitlines()[0] == f"tenant {local}"
    lines = [tuple(line.split()[:4]) for line in shown.splitlines()[2:]]
    assert lines == [(e["at"][:19] + "Z", str(e["seq"]), e["actor"], e["action"]) for e in entries]
    searches = run("audit", "timeline", "--tenant", local, "--action", "search", width=2000)
    assert f"search_id={search_id}" in searches
    assert "purpose=human output check" in searches and "case_reference=TEST-HUMAN-1" in searches
    assert run("audit", "timeline", "--tenant", local, "--action", "no.such.act") == "no audit entries match\n"

    # A tenant made for it, whose chain an intruder breaks: exit 1 naming it and the entry; deleted afterwards.
    made = data("tenant", "create", "Tampered")["tenant_id"]
    with sqlite3.connect(gallery.home / "faceward.db") as db:
        db.execute("UPDATE audit_log SET mac = zeroblob(32) WHERE tenant_id = ? AND seq = 1", (made,))
    broken = data("audit", "verify", code=1)
    assert (broken["ok"], broken["tenant"], broken["first_bad"]) == (False, made, 1)
    shown = run("audit", "verify", code=1)
    assert f"{local}: " in shown and f"{made}: 2 entries, head 2: BROKEN at entry 1: " in shown
    assert run("tenant", "delete", made, "--yes") == f"{made}: key destroyed, rows deleted\n"
    assert run("audit", "verify").endswith(": ok\n")


def test_tenants(gallery: Gallery) -> None:
    [local] = data("tenant", "list")["tenants"]
    assert row(run("tenant", "list"), local["id"]) == [
        local["id"], "local", "active", local["created_at"][:10], str(local["keys"]), str(local["subjects"])]
    assert local["subjects"] == len(gallery.ids)

    created = run("tenant", "create", "Acme_Police")
    made = re.search(r"^tenant: (t_\w+)$", created, re.M)
    assert made is not None and re.search(r"^admin key: fw_\S+$", created, re.M) and "shown this once" in created
    tenant = made.group(1)
    assert run("tenant", "suspend", tenant) == f"{tenant}: suspended\n"
    assert row(run("tenant", "list"), tenant)[1:3] == ["Acme_Police", "suspended"]
    assert run("tenant", "resume", tenant) == f"{tenant}: active\n"
    assert run("tenant", "renew-transform", tenant) == f"{tenant}: template transform renewed (generation 1)\n"
    assert data("tenant", "renew-transform", tenant)["transform_generation"] == 2
    assert re.fullmatch(r"admin key: fw_\S+\n", run("tenant", "admin-key", tenant))
    assert row(run("tenant", "list"), tenant)[4] == "2"  # its first admin key and the minted one
    assert "--yes" in run("tenant", "delete", tenant, code=2)
    assert run("tenant", "delete", tenant, "--yes") == f"{tenant}: key destroyed, rows deleted\n"
    assert tenant not in run("tenant", "list")


def test_retention_and_purge(gallery: Gallery, lfw_dir: Path, tmp_path: Path) -> None:
    tenant = data("retention")["tenant_id"]
    assert run("retention") == f"tenant {tenant}: no retention period\n"
    assert run("retention", "30") == f"tenant {tenant}: retention 30 days\n"
    assert data("retention")["retention_days"] == 30
    assert run("retention", "--clear") == f"tenant {tenant}: no retention period\n"

    nothing = data("purge")
    assert run("purge") == f"purged 0 subject(s) in {nothing['tenants']} tenant(s) {{}}\n"
    # A subject made for it, whose consent expires two seconds after it is given.
    expires = (datetime.now(timezone.utc) + timedelta(seconds=2)).isoformat()
    folder = one_subject(tmp_path / "expiring", "Expiring", lfw_photo(lfw_dir, "Ai_Sugiyama"),
                         f"subject,basis,reference,expires_at\nExpiring,explicit_consent,form-9,{expires}\n")
    assert "subjects created: 1  faces enrolled: 1" in run("enroll", str(folder), "--workers", "1")
    time.sleep(max(0.0, (datetime.fromisoformat(expires) - datetime.now(timezone.utc)).total_seconds()) + 0.2)
    purged = run("purge")
    assert purged.startswith(f"purged 1 subject(s) in {nothing['tenants']} tenant(s) ") and "consent_expired" in purged
    assert "'" not in purged  # the reasons as a person reads them, not a Python repr
    assert "Expiring" not in run("subjects", "list") and data("purge")["purged"] == 0


def test_backup_then_erase_then_restore_into_a_fresh_home(
    gallery: Gallery, lfw_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = one_subject(tmp_path / "restore", "Erased_Later", lfw_photo(lfw_dir, "Abdullah_Gul", 1))
    run("enroll", str(folder), "--basis", "explicit_consent", "--reference", "r", "--workers", "1")
    sid = subject_id("Erased_Later")
    archive = tmp_path / "backups" / "home.fwb"
    archive.parent.mkdir()
    made = run("backup", str(archive))
    shown = re.search(r"^backup (\w+) of the sqlite store: (\S+) \((\d+) bytes\)$", made, re.M)
    assert shown is not None, made
    backup_id = shown.group(1)
    assert shown.group(2) == str(archive) and int(shown.group(3)) == archive.stat().st_size
    ledger = gallery.home / "erasure-ledger.jsonl"
    assert f"keep {ledger} beside the master key" in made
    run("subjects", "delete", sid, "--yes")

    kept = tmp_path / "kept-ledger.jsonl"
    shutil.copy(ledger, kept)
    monkeypatch.setenv("FACEWARD_HOME", str(tmp_path / "restored"))
    monkeypatch.setenv("FACEWARD_ERASURE_LEDGER", str(kept))
    restored = run("restore", str(archive))
    assert re.search(rf"^restored backup {backup_id} of \S+Z into sqlite:///\S+restored/faceward.db$", restored, re.M)
    assert "erased again from the ledger: 1 subject(s), 0 tenant(s)" in restored
    table = run("subjects", "list")
    assert all(row(table, subject)[1] == name for name, subject in gallery.ids.items()) and sid not in table
    assert run("doctor").rstrip().endswith("ok")


def test_eval_pairs_and_ident(gallery: Gallery, lfw_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "eval"
    photos: dict[str, list[str]] = {}
    for person in PEOPLE:
        (folder / "images" / person).mkdir(parents=True)
        for index in (0, 1, 2):
            source = lfw_photo(lfw_dir, person, index)
            shutil.copy(source, folder / "images" / person)
            photos.setdefault(person, []).append(f"{person}/{source.name}")
    pairs = [(a, b, 1) for person in PEOPLE for a, b in itertools.combinations(photos[person], 2)]
    pairs += [(photos[p][i], photos[q][i], 0) for p, q in itertools.combinations(PEOPLE, 2) for i in (0, 1)]
    (folder / "pairs.csv").write_text("image_a,image_b,same\n" + "".join(f"{a},{b},{s}\n" for a, b, s in pairs))

    report = data("eval", "pairs", str(folder), "--workers", "1")
    shown = run("eval", "pairs", str(folder), "--workers", "1")
    for key in ("variant", "pairs", "images", "accuracy", "tar_at_far_1e-3", "no_face_rate"):
        assert field(shown, key, report[key]), key
    assert report["pairs"] == 15 and report["images"] == 9

    ident = data("eval", "ident", str(folder / "images"), "--workers", "1")
    shown = run("eval", "ident", str(folder / "images"), "--workers", "1")
    for key in ("variant", "gallery", "mated_probes", "rank1"):
        assert field(shown, key, ident[key]), key
    assert ident["gallery"] == 3 and "'" not in shown  # fields as `key: value` lines, not a Python repr

    variants = data("eval", "pairs", str(folder), "--workers", "1", "--all-variants")["variants"]
    shown = run("eval", "pairs", str(folder), "--workers", "1", "--all-variants")
    assert [line for line in shown.splitlines() if line.startswith("variant: ")] == [
        f"variant: {v['variant']}" for v in variants]
    assert "'" not in shown


def test_oidc_show_and_disconnect_without_a_provider(gallery: Gallery) -> None:
    assert data("oidc", "show") == {"connected": False}
    assert run("oidc", "show") == "connected: no\n"
    assert run("oidc", "disconnect") == "disconnected: no\n"


def test_init_names_the_master_key_in_use(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # FACEWARD_MASTER_KEY (the home fixture sets it): no key file is made, and none may be named.
    made = run("init")
    assert f"home: {home}\n" in made
    assert "FACEWARD_MASTER_KEY" in made and "master.key" not in made and not (home / "master.key").exists()
    made = data("init")
    assert made["key_created"] is False and made["key_file"] is None and made["key_from_environment"] is True

    monkeypatch.delenv("FACEWARD_MASTER_KEY")
    monkeypatch.setenv("FACEWARD_HOME", str(home.parent / "keyed"))
    key_file = home.parent / "keyed" / "master.key"
    made = run("init")
    assert f"created master key file {key_file} (mode 0600)" in made and key_file.is_file()
    assert run("init").endswith(f"master key: {key_file}\n")
    made = data("init")
    assert made["key_file"] == str(key_file) and made["key_from_environment"] is False


def test_master_key_rotation_and_the_refusals_that_need_an_hsm(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    created = run("tenant", "create", "Rotating_Org")
    assert "tenant: t_" in created
    new_key = tmp_path / "new.key"
    new_key.write_text(base64.b64encode(os.urandom(32)).decode() + "\n")
    new_key.chmod(0o600)
    rotated = run("keys", "rotate-master", "--new-key-file", str(new_key))
    assert "re-wrapped 1 tenant keys (0 already under the new key)" in rotated and str(new_key) in rotated
    monkeypatch.delenv("FACEWARD_MASTER_KEY")
    monkeypatch.setenv("FACEWARD_MASTER_KEY_FILE", str(new_key))
    assert "Rotating_Org" in run("tenant", "list")  # the new key alone opens it

    for args in (("keys", "rotate-master"), ("keys", "retire-master", "faceward-master.1"),
                 ("keys", "migrate", "--to", "pkcs11")):
        refused = run(*args, code=2).strip().splitlines()
        assert len(refused) == 1 and refused[0].startswith("error: "), args


@pytest.fixture()
def own_model(tmp_path: Path) -> Path:
    """MobileFaceNet's manifest in a folder of its own (its calibration table is written beside it)."""
    return own_model_manifest(tmp_path / "model")


def test_a_model_of_ones_own_uncalibrated_then_calibrated(
    home: Path, own_model: Path, lfw_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from faceward.evaluation.calibration import calibration_identities

    folder = tmp_path / "people"
    for person in PEOPLE[:2]:
        (folder / person).mkdir(parents=True)
        for index in (0, 1):
            shutil.copy(lfw_photo(lfw_dir, person, index), folder / person)
    run("enroll", str(folder), "--basis", "explicit_consent", "--reference", "r", "--workers", "1")
    card = data("models", "show", str(own_model))
    shown = run("models", "show", str(own_model))
    assert field(shown, "model_id", card["model_id"]) and field(shown, "calibrated", False)

    migrated = run("reenroll", str(folder), "--model", str(own_model), "--workers", "1")
    assert f"switched the gallery to {card['template_id']}\n" in migrated
    assert "subjects: 2  with new templates: 2  templates built: 4 (+0 from an earlier run)" in migrated

    monkeypatch.setenv("FACEWARD_RECOGNIZER_MANIFEST", str(own_model))
    probe = lfw_photo(lfw_dir, PEOPLE[0], 2)
    found = data("search", str(probe), *WHY)
    assert found["calibrated"] is False
    table = run("search", str(probe), *WHY)
    title = table.splitlines()[0]
    # No table measured a false match rate for this model: the title must not claim one for its threshold.
    assert f"threshold {found['threshold']['score']:.3f}" in title and "FMR" not in title and "uncalibrated" in title
    assert row(table, found["candidates"][0]["subject_id"])[4] == "-"  # no estimated FMR either

    identities, _ = calibration_identities(lfw_dir)  # identities outside pairs.csv, as models calibrate holds out
    sample = tmp_path / "calibration"
    several = [name for name, files in identities.items() if len(files) >= 2][:30]
    single = [name for name, files in identities.items() if len(files) == 1][:100]
    for name in several + single:
        (sample / name).mkdir(parents=True)
        for image in identities[name][:2]:
            (sample / name / image.name).symlink_to(image)
    calibrated = run("models", "calibrate", str(own_model), str(sample), "--workers", "1")
    table_file = re.search(r"^calibration table: (\S+)$", calibrated, re.M)
    assert table_file is not None and Path(table_file.group(1)).parent == own_model.parent
    measured = data("models", "calibrate", str(own_model), str(sample), "--workers", "1")  # analyses cached
    assert (f"{card['model_id']}: {measured['impostor_pairs']:,} impostor / {measured['genuine_pairs']:,} genuine "
            f"pairs from {measured['images']} images of {measured['identities']} identities") in calibrated
    assert "  target FMR 0.001: score " in calibrated
    assert field(run("models", "show", str(own_model)), "calibrated", True)

    found = data("search", str(probe), *WHY)
    title = run("search", str(probe), *WHY).splitlines()[0]
    assert found["calibrated"] is True
    assert title.endswith(f"threshold {found['threshold']['score']:.3f} at FMR {found['threshold']['target_fmr']:g})")
