"""The CLI end to end on real lfw-dev photos: enroll a folder, search, verify, erase, and refuse bad input."""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from faceward.cli.main import app

WHY = ("--purpose", "end-to-end check", "--case-reference", "TEST-1")  # a search states why, as the API's does

PEOPLE = ["Angela_Bassett", "Abel_Pacheco", "Anders_Fogh_Rasmussen"]


@pytest.fixture()
def gallery_dir(lfw_dir: Path, tmp_path: Path) -> Path:
    root = tmp_path / "gallery"
    for person in PEOPLE:
        (root / person).mkdir(parents=True)
        for src in sorted((lfw_dir / "images" / person).glob("*.jpg"))[:2]:
            shutil.copy(src, root / person / src.name)
    return root


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def enrolled(home: Path) -> dict[str, int]:
    code, out = run("subjects", "list", "--json")
    assert code == 0, out
    data = json.loads(out)
    return {"subjects": data["total"], "names": len(data["subjects"])}


def hostile_files(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "text.jpg").write_text("this is not a photo")
    (folder / "empty.jpg").write_bytes(b"")
    from PIL import Image

    Image.new("RGB", (8, 8)).save(folder / "anim.gif")

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    (folder / "huge.png").write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")
    )
    return sorted(folder.iterdir())


def test_enroll_search_verify_erase(home: Path, gallery_dir: Path, lfw_dir: Path) -> None:
    code, out = run("enroll", str(gallery_dir), "--workers", "1", "--json")
    assert code != 0 and "consent" in out  # no consent record: refused, nothing stored
    code, out = run("enroll", str(gallery_dir), "--basis", "explicit_consent", "--reference", "batch-7", "--workers", "1", "--json")
    assert code == 0, out
    summary = json.loads(out)
    assert summary["subjects"] == 3 and summary["enrolled"] + len(summary["refused"]) == 6 and summary["enrolled"] >= 4

    # Re-running is a no-op: resumable, every image enrolled once.
    code, out = run("enroll", str(gallery_dir), "--basis", "explicit_consent", "--reference", "batch-7", "--workers", "1", "--json")
    again = json.loads(out)
    assert again["subjects"] == 0 and again["enrolled"] == 0 and again["already_enrolled"] == summary["enrolled"]

    probe = sorted((lfw_dir / "images" / "Angela_Bassett").glob("*.jpg"))[2]
    code, out = run("search", str(probe), *WHY, "--json")
    assert code == 0, out
    result = json.loads(out)
    top = result["candidates"][0]
    assert top["display_name"] == "Angela_Bassett" and top["rank"] == 1
    assert set(top) >= {"subject_id", "display_name", "score", "estimated_fmr", "decision", "rank"}
    assert "lead" in result["notice"].lower()
    code, out = run("search", str(probe), *WHY)  # the table a person reads, not only the JSON
    assert code == 0, out
    assert "Angela" in out and "Candidates (gallery of" in out and "lead" in out.lower()
    code, out = run("subjects", "list")
    assert code == 0 and "Angela" in out and "explicit" in out

    same = sorted((lfw_dir / "images" / "Angela_Bassett").glob("*.jpg"))
    other = sorted((lfw_dir / "images" / "Abel_Pacheco").glob("*.jpg"))
    code, out = run("verify", str(same[0]), str(same[2]), "--json")
    mated = json.loads(out)
    code2, out2 = run("verify", str(same[0]), str(other[0]), "--json")
    nonmated = json.loads(out2)
    assert code == code2 == 0 and mated["score"] > nonmated["score"]
    assert nonmated["decision"] == "below_threshold" and nonmated["estimated_fmr"] > mated["estimated_fmr"]
    for verdict in (mated, nonmated):
        assert verdict["decision"] == ("lead" if verdict["score"] >= verdict["threshold"] else "below_threshold")
    code, out = run("verify", str(probe), "--subject", top["subject_id"], "--json")
    assert code == 0 and json.loads(out)["compared_faces"] >= 1

    code, out = run("subjects", "show", top["subject_id"], "--json")
    assert code == 0 and json.loads(out)["consent_reference"] == "batch-7"
    code, out = run("subjects", "delete", top["subject_id"], "--yes", "--json")
    assert code == 0
    code, out = run("search", str(probe), *WHY, "--json")
    assert all(c["subject_id"] != top["subject_id"] for c in json.loads(out)["candidates"])
    code, out = run("subjects", "show", top["subject_id"])
    assert code != 0 and "no such subject" in out


def test_hostile_files_give_one_line_errors_and_change_nothing(home: Path, gallery_dir: Path, tmp_path: Path) -> None:
    code, _ = run("enroll", str(gallery_dir), "--basis", "explicit_consent", "--reference", "r", "--workers", "1")
    assert code == 0
    before = enrolled(home)
    good = next(gallery_dir.glob("*/*.jpg"))
    for bad in hostile_files(tmp_path / "bad"):
        for args in (("search", str(bad), *WHY), ("verify", str(bad), str(good)), ("verify", str(good), str(bad))):
            code, out = run(*args)
            lines = out.strip().splitlines()
            assert code != 0 and len(lines) == 1 and lines[0].startswith("error:"), (args, out)
            assert "Traceback" not in out
        folder = tmp_path / "enroll-bad" / bad.stem
        folder.mkdir(parents=True)
        shutil.copy(bad, folder / bad.name)
        code, out = run("enroll", str(folder.parent), "--basis", "explicit_consent", "--reference", "r", "--workers", "1")
        errors = [line for line in out.splitlines() if line.startswith("error:")]
        assert code != 0 and len(errors) == 1 and bad.name in errors[0], out
        shutil.rmtree(folder.parent)
    assert enrolled(home) == before


def test_real_process_prints_no_traceback(home: Path, tmp_path: Path) -> None:
    bad = tmp_path / "x.jpg"
    bad.write_text("nope")
    proc = subprocess.run([sys.executable, "-m", "faceward.cli.main", "search", str(bad)], capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().startswith("error:") and len(proc.stderr.strip().splitlines()) == 1


def test_enroll_takes_a_group_photos_subject_and_refuses_an_ambiguous_one(
    home: Path, tmp_path: Path, astronaut: np.ndarray
) -> None:
    """Bulk enrollment embeds only the dominant face (decision 038): the subject beside a bystander is enrolled,
    two equal faces are refused from their boxes, and a search with the group photo finds its subject."""
    from tests.conftest import jpeg, with_bystander

    pair = with_bystander(astronaut)
    folder = tmp_path / "group" / "Eileen"
    folder.mkdir(parents=True)
    (folder / "pair.jpg").write_bytes(jpeg(pair))
    (folder / "twins.jpg").write_bytes(jpeg(np.concatenate([astronaut, astronaut], axis=1)))
    code, out = run("enroll", str(folder.parent), "--basis", "explicit_consent", "--reference", "g-1", "--workers", "1", "--json")
    assert code == 0, out
    summary = json.loads(out)
    assert summary["enrolled"] == 1 and [Path(r["image"]).name for r in summary["refused"]] == ["twins.jpg"]
    assert "none clearly the subject" in summary["refused"][0]["reason"]
    [beside] = summary["bystanders"]  # reported as the API reports them: the enrolled face and who else was there
    assert Path(beside["image"]).name == "pair.jpg" and len(beside["bystanders"]) == 1
    assert beside["box"]["right"] <= astronaut.shape[1] < beside["bystanders"][0]["left"]
    code, out = run("enroll", str(folder.parent), "--basis", "explicit_consent", "--reference", "g-1", "--workers", "1")
    assert code == 0 and "enrolled beside bystanders: 0" in out and "already enrolled: 1" in out  # a re-run is quiet
    (folder.parent / "Eileen Again").mkdir()
    shutil.copy(folder / "pair.jpg", folder.parent / "Eileen Again" / "pair.jpg")
    code, out = run("enroll", str(folder.parent), "--basis", "explicit_consent", "--reference", "g-1", "--workers", "1")
    assert code == 0 and "enrolled beside bystanders: 1" in out, out
    assert re.search(r"Eileen Again/pair\.jpg: enrolled the face at x=\d+ y=\d+ \(\d+ px wide\); 1 bystander not enrolled", out)
    code, out = run("search", str(folder / "pair.jpg"), *WHY, "--json")
    assert code == 0, out
    assert json.loads(out)["candidates"][0]["display_name"] == "Eileen"
