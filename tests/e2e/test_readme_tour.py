"""The README's tour runs as written, copy-paste, in a fresh home (#12).

The ```bash block under "## A short tour" is read from README.md and each command line is run,
as written, by bash in a folder this test fills with what the README says the folder holds:

* ``photos/``: three lfw-dev identities, two photos each (symlinks, never copies);
* ``probe.jpg``, ``a.jpg``, ``b.jpg``: other photos of the first of them;
* ``people/``: lfw-dev identities outside pairs.csv, about 200 images (what calibration needs);
* ``my-model.json``: the repository's MobileFaceNet manifest, pointing at ``../shared/models``;
* ``../shared/datasets/lfw-dev``: **a 40-pair sample of lfw-dev** (20 same, 20 different, with its
  images) at the path the README names, so that the eval lines run in seconds, not minutes.

Nothing is skipped: every line of the block runs, in order, and must exit 0. The lines that
print JSON are parsed and checked for their main figure.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from faceward.evaluation.calibration import calibration_identities
from faceward.evaluation.datasets import read_pairs
from tests.conftest import REPO

README = REPO / "README.md"
MANIFEST = REPO / "benchmarks" / "models" / "mobilefacenet.json"


def tour_lines() -> list[str]:
    """The command lines of the tour's bash block (comments and comment-only lines dropped)."""
    section = README.read_text().split("## A short tour", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block, "the tour has no bash block"
    lines = []
    for line in block.group(1).splitlines():
        command = re.sub(r"\s+#.*$", "", line).strip()
        if command and not command.startswith("#"):
            lines.append(command)
    return lines


def _link(target: Path, source: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    target.symlink_to(source)


def _sample_lfw(lfw: Path, into: Path) -> None:
    pairs = read_pairs(lfw)
    chosen = [p for p in pairs if p.same][:20] + [p for p in pairs if not p.same][:20]
    with open(into / "pairs.csv", "w") as out:
        out.write("image_a,image_b,same\n")
        for p in chosen:
            out.write(f"{p.a},{p.b},{int(p.same)}\n")
            for name in (p.a, p.b):
                if not (into / "images" / name).exists():
                    _link(into / "images" / name, lfw / "images" / name)


@pytest.fixture(scope="module")
def tour_folder(lfw_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tour")
    work = root / "work"
    work.mkdir()
    sample = root / "shared" / "datasets" / "lfw-dev"  # what ../shared/datasets/lfw-dev means from work/
    sample.mkdir(parents=True)
    _sample_lfw(lfw_dir, sample)
    identities, _ = calibration_identities(lfw_dir)
    several = [name for name, files in identities.items() if len(files) >= 4]
    for name in several[:3]:
        for image in identities[name][:2]:
            _link(work / "photos" / name / image.name, image)
    first = identities[several[0]]
    _link(work / "probe.jpg", first[2])
    _link(work / "a.jpg", first[2])
    _link(work / "b.jpg", first[3])
    people = [n for n, f in identities.items() if len(f) >= 2][3:33] + [n for n, f in identities.items() if len(f) == 1][:110]
    for name in people:
        for image in identities[name][:3]:
            _link(work / "people" / name / image.name, image)
    data = json.loads(MANIFEST.read_text())
    model = (MANIFEST.parent / data["file"]).resolve()
    assert model.is_file(), f"MobileFaceNet is not at {model}"
    (work / "my-model.json").write_text(json.dumps(data | {"file": str(model)}))
    return work


def test_the_tour_block_is_all_commands_a_shell_can_run() -> None:
    lines = tour_lines()
    assert lines[0] == "faceward init" and all(line.startswith("faceward ") for line in lines)
    # No placeholders: every argument is something the folder holds or a real value.
    assert not [line for line in lines if "..." in line or "|" in line or "<" in line or "--ray" in line]


def test_the_readme_tour_runs_as_written_in_a_fresh_home(tour_folder: Path, tmp_path: Path) -> None:
    home = tmp_path / "fresh-home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACEWARD_")}
    env |= {"FACEWARD_HOME": str(home), "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"}
    assert not home.exists()
    outputs: dict[str, str] = {}
    for line in tour_lines():
        started = time.monotonic()
        done = subprocess.run(["bash", "-c", line], cwd=tour_folder, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"{line!r} exited {done.returncode}:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        outputs[line] = done.stdout
        print(f"{time.monotonic() - started:6.1f} s  {line}")  # shown with -s: where the tour's time goes
    by_start = {line.split(" --", 1)[0]: out for line, out in outputs.items()}
    search = json.loads(next(out for line, out in outputs.items() if line.startswith("faceward search")))
    assert search["candidates"] and search["candidates"][0]["decision"] == "lead"
    evals = [json.loads(out) for line, out in outputs.items() if line.startswith("faceward eval pairs")]
    assert len(evals) == 2 and all(0.5 < e["accuracy"] <= 1.0 for e in evals), evals
    ident = json.loads(by_start["faceward eval ident ../shared/datasets/lfw-dev"])
    assert 0.0 < ident["rank1"] <= 1.0, ident
    info = by_start["faceward info"]  # a readable table, not a dict (#12)
    assert re.search(r"^version\s+\S", info, re.M) and "{" not in info and "['" not in info and "None" not in info
    assert (home / "faceward.db").stat().st_mode & 0o777 == 0o600
