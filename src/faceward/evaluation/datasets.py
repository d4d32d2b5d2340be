"""Readers for evaluation folders: ``images/<identity>/<file>`` with an LFW-style ``pairs.csv``."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from faceward.errors import InvalidInput
from faceward.vision.decode import EXTENSIONS


@dataclass(frozen=True)
class Pair:
    a: str
    b: str
    same: bool


def read_pairs(folder: Path) -> list[Pair]:
    path = folder / "pairs.csv"
    if not path.is_file():
        raise InvalidInput(f"{folder} has no pairs.csv (columns image_a,image_b,same)")
    pairs = []
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or not {"image_a", "image_b", "same"} <= set(reader.fieldnames):
            raise InvalidInput(f"{path}: the header must be image_a,image_b,same")
        for line, row in enumerate(reader, start=2):
            same = (row.get("same") or "").strip()
            if same not in {"0", "1"} or not row["image_a"] or not row["image_b"]:
                raise InvalidInput(f"{path}:{line}: expected image_a,image_b,same with same 0 or 1")
            for name in (row["image_a"], row["image_b"]):
                if Path(name).is_absolute() or ".." in Path(name).parts:
                    raise InvalidInput(f"{path}:{line}: image paths must stay inside images/")
            pairs.append(Pair(row["image_a"], row["image_b"], same == "1"))
    if not pairs:
        raise InvalidInput(f"{path} lists no pairs")
    return pairs


def identity_folders(folder: Path) -> dict[str, list[Path]]:
    """``identity -> sorted image files``; accepts ``folder`` itself or ``folder/images``."""
    root = folder / "images" if (folder / "images").is_dir() else folder
    if not root.is_dir():
        raise InvalidInput(f"{folder} is not a folder")
    identities = {}
    for sub in sorted(p for p in root.iterdir() if p.is_dir()):
        files = sorted(p for p in sub.iterdir() if p.is_file() and p.suffix.lower() in EXTENSIONS)
        if files:
            identities[sub.name] = files
    return identities
