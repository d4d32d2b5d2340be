"""Settings from ``FACEWARD_*`` environment variables and an optional TOML file.

Read once at start-up by the CLI or the app factory and passed down; never at
import time. Validation fails loudly with the variable's name.
"""

from __future__ import annotations

import enum
import os
import tomllib
from pathlib import Path
from typing import Any

import platformdirs
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from faceward.errors import ConfigError


class Engine(str, enum.Enum):
    """Which runtime computes descriptors: dlib is the reference, onnx the fast path."""

    DLIB = "dlib"
    ONNX = "onnx"


class Detector(str, enum.Enum):
    """yunet: the shipped CNN (default: fast, turned and small faces, 5 landmarks); hog and mmod: dlib's."""

    YUNET = "yunet"
    HOG = "hog"
    MMOD = "mmod"


class IndexBackend(str, enum.Enum):
    EXACT = "exact"
    ANN = "ann"
    MILVUS = "milvus"


class Kms(str, enum.Enum):
    """Where the master key lives: a 0600 file (or the environment), or a PKCS#11 token (an HSM)."""

    FILE = "file"
    PKCS11 = "pkcs11"


class LogFormat(str, enum.Enum):
    JSON = "json"
    TEXT = "text"


def default_home() -> Path:
    return Path(platformdirs.user_data_dir("faceward", appauthor=False))


class Settings(BaseSettings):
    """Every knob faceward has. Each field is documented in the README's table."""

    model_config = SettingsConfigDict(env_prefix="FACEWARD_", extra="forbid")

    home: Path = Field(default_factory=default_home, description="Data directory (database, key file, caches).")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default: SQLite file faceward.db in FACEWARD_HOME."
    )
    master_key: SecretStr | None = Field(default=None, description="32-byte master key, base64.")
    master_key_file: Path | None = Field(default=None, description="File holding the base64 master key.")
    kms: Kms = Field(
        default=Kms.FILE,
        description="Where the master key lives: file (FACEWARD_MASTER_KEY[_FILE]) or pkcs11 (a non-extractable key "
        "in an HSM token; tenant keys are wrapped inside the token).",
    )
    pkcs11_module: Path | None = Field(default=None, description="The PKCS#11 library of the HSM (FACEWARD_KMS=pkcs11).")
    pkcs11_token: str | None = Field(default=None, description="Label of the PKCS#11 token holding the master key.")
    pkcs11_pin_file: Path | None = Field(default=None, description="File (mode 0600) holding the token's user PIN.")
    pkcs11_key_label: str = Field(
        default="faceward-master", description="Label prefix of the master keys in the token (<label>.<n>, highest wraps).",
    )
    erasure_ledger: Path | None = Field(
        default=None,
        description="Append-only list of erased subjects and tenants (keyed hashes of their ids), kept apart from "
        "the data and its backups and applied on restore; default: erasure-ledger.jsonl in FACEWARD_HOME. "
        "Workers sharing a database must share this file.",
    )

    engine: Engine = Field(default=Engine.ONNX, description="Descriptor runtime: onnx or dlib (reference).")
    detector: Detector = Field(
        default=Detector.YUNET,
        description="Face detector: yunet (shipped CNN, default), hog (dlib, frontal) or mmod (dlib's CNN).",
    )
    upsample: int = Field(
        default=1, ge=0, le=3, description="HOG/MMOD upsampling passes on the working copy; 1 finds faces down to ~40 px."
    )
    detector_fallback: bool = Field(
        default=True, description="With the hog detector: run the MMOD CNN on the working copy when HOG finds no face."
    )
    flip_average: bool = Field(
        default=True, description="Average the descriptors of the chip and its mirror image."
    )
    recognizer_manifest: Path | None = Field(
        default=None,
        description="JSON manifest of your own ONNX face recognizer (file, SHA-256, input, 5-point template, "
        "embedding size, threshold); unset = dlib's ResNet. A gallery keeps the model it was enrolled with: "
        "`faceward reenroll` migrates it.",
    )
    index_backend: IndexBackend = Field(default=IndexBackend.EXACT, description="Vector index kind.")

    max_image_bytes: int = Field(default=15 * 1024 * 1024, gt=0, description="Largest accepted upload.")
    max_image_pixels: int = Field(default=40_000_000, gt=0, description="Largest accepted width x height.")

    min_face_px: int = Field(default=40, ge=0, description="Enrollment refuses faces narrower than this.")
    min_sharpness: float = Field(
        default=0.0, ge=0, le=1,
        description="Enrollment refuses faces blurrier than this (0..1, 1 minus the chip's blur effect). 0: no face "
        "enrolled on lfw-dev was blurred enough to measurably hurt matching; one under 0.38 is enrolled with a warning.",
    )
    min_detector_score: float = Field(default=0.0, description="Enrollment refuses weaker detections.")
    min_frontalness: float = Field(
        default=0.05, ge=0, le=1,
        description="Enrollment refuses heads turned further than this (0..1 from the detector's 5 points; 0.05: where "
        "matching measurably suffers; one under 0.15 is enrolled with a warning).",
    )

    target_fmr: float = Field(default=1e-3, gt=0, lt=1, description="False match rate the decision threshold targets.")

    rate_per_minute: float = Field(default=300.0, gt=0, description="Requests per minute per API key (token bucket).")
    rate_burst: int = Field(default=60, ge=1, description="Burst size of the per-key token bucket.")
    rate_limit_redis: str | None = Field(
        default=None, pattern=r"^rediss?://",
        description="Redis (redis://host:port/db) the replicas share their rate and failed-sign-in buckets and the "
        "failed sign-in digest's windows through; unset, each process limits and digests on its own.",
    )
    searches_per_day: int = Field(default=2000, ge=1, description="Daily search quota per API key.")
    analysis_workers: int = Field(
        default=1, ge=0, le=64,
        description="Processes that analyse faces for `faceward serve` (0: in the API process).",
    )
    analysis_per_tenant: int = Field(
        default=0, ge=0, le=64,
        description="Analyses one tenant may run at once on the analysis workers (0: all workers but one).",
    )
    analysis_queue_per_tenant: int = Field(
        default=8, ge=0, le=1024,
        description="Analyses one tenant may have waiting; past it, 503 with Retry-After. Tenants take turns.",
    )
    max_in_flight: int = Field(
        default=16, ge=1, description="Concurrent API requests per process before fast 503s with Retry-After."
    )
    uploads_per_key: int = Field(
        default=4, ge=1, description="Request bodies one API key may be sending at once; past it, an immediate 503.",
    )
    max_unauthenticated: int = Field(
        default=4, ge=1,
        description="Request bodies read at once from callers not yet authenticated (console sign-in); past it, 503.",
    )
    body_min_rate: float = Field(
        default=8192.0, gt=0,
        description="Bytes per second a request body must average after FACEWARD_BODY_GRACE_S, or it is cut off (408).",
    )
    body_grace_s: float = Field(default=5.0, gt=0, description="Seconds a request body may take before its rate counts.")
    auth_failures_per_minute: float = Field(
        default=10.0, gt=0,
        description="Failed authentications per key id (three times as many per client address) before 429s.",
    )
    purge_every_s: float = Field(
        default=3600.0, gt=0, description="Seconds between the server's consent-expiry and retention purges."
    )
    index_options: dict[str, Any] = Field(
        default_factory=dict, description="Options for the index backend, as JSON (e.g. ANN's expansion_search)."
    )

    metrics_token: SecretStr | None = Field(
        default=None,
        description="Bearer token that opens `GET /metrics` on the API's bind; unset, /metrics there answers 404.",
    )
    metrics_port: int | None = Field(
        default=None, ge=1, le=65535,
        description="Serve /metrics (no token) on a bind of its own at FACEWARD_METRICS_HOST:this port.",
    )
    metrics_host: str = Field(default="127.0.0.1", description="Address the metrics bind (FACEWARD_METRICS_PORT) uses.")
    metrics_tenant_series: bool = Field(
        default=False, description="Add a request counter by opaque tenant id to the metrics (off: no tenant in any series).",
    )
    log_format: LogFormat = Field(
        default=LogFormat.JSON, description="`faceward serve` logs: json (one object per line, for shippers) or text.",
    )

    host: str = Field(default="127.0.0.1", description="Address `faceward serve` binds.")
    port: int = Field(default=8000, ge=1, le=65535, description="Port `faceward serve` binds.")

    @field_validator("home", mode="before")
    @classmethod
    def _expand_home(cls, value: Any) -> Any:
        return Path(value).expanduser() if isinstance(value, (str, Path)) else value

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'faceward.db'}"

    @property
    def erasure_ledger_file(self) -> Path:
        return self.erasure_ledger or self.home / "erasure-ledger.jsonl"

    @property
    def cache_dir(self) -> Path:
        return self.home / "cache"


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Settings from a TOML file (``FACEWARD_CONFIG`` or the argument), then the environment, then overrides."""
    path = config_file or (Path(os.environ["FACEWARD_CONFIG"]) if os.environ.get("FACEWARD_CONFIG") else None)
    file_values: dict[str, Any] = {}
    if path is not None:
        try:
            file_values = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read config file {path}: {exc}") from exc
    env_names = {k[len("FACEWARD_"):].lower() for k in os.environ if k.startswith("FACEWARD_")}
    merged = {k: v for k, v in file_values.items() if k not in env_names}
    merged.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return Settings(**merged)
    except ValidationError as exc:
        problems = "; ".join(
            f"FACEWARD_{'_'.join(str(p) for p in err['loc']).upper()}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"invalid settings: {problems}") from exc
