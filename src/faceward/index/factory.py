"""One place that turns ``Settings.index_backend`` and its options into a tenant's ``VectorIndex``.

Options are checked by name here, so a misspelt knob in the config file fails
at start-up (``ConfigError``) instead of silently running with a default.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Any

from faceward.errors import ConfigError
from faceward.index.ann import AnnIndex, AnnParams
from faceward.index.base import IndexError_, VectorIndex
from faceward.index.exact import ExactIndex
from faceward.settings import IndexBackend

ANN_OPTIONS = frozenset(f.name for f in dataclasses.fields(AnnParams)) | {"vectors_dir"}
MILVUS_OPTIONS = frozenset({"uri", "token", "prefix", "index_type", "index_params", "search_params"})


def ann_vectors_path(vectors_dir: Path | str, tenant_id: str) -> Path:
    """The tenant's float32 re-rank file; named by a hash so tenant ids never become path components."""
    return Path(vectors_dir) / f"ann-{hashlib.sha256(tenant_id.encode()).hexdigest()[:24]}.f32"


def make_index(
    backend: IndexBackend, *, dim: int = 128, tenant_id: str, options: dict[str, Any] | None = None, generation: int = 0,
) -> VectorIndex:
    """A new, empty index for ``tenant_id`` (Milvus: its collection for the template-transform ``generation``).

    - ``exact``: no options.
    - ``ann``: any :class:`AnnParams` field, and ``vectors_dir`` to keep the
      float32 re-rank rows in a memory-mapped file there (the 10M-face setting).
    - ``milvus``: ``uri`` (required: a milvus-lite file path or
      ``http://host:19530``), ``token``, ``prefix``, ``index_type``,
      ``index_params``, ``search_params``.
    """
    if not tenant_id:
        raise ConfigError("an index belongs to a tenant: tenant_id must not be empty")
    options = dict(options or {})
    backend = IndexBackend(backend)
    if backend is IndexBackend.EXACT:
        _check_names(backend, options, frozenset())
        return ExactIndex(dim)
    if backend is IndexBackend.ANN:
        _check_names(backend, options, ANN_OPTIONS)
        vectors_dir = options.pop("vectors_dir", None)
        path = ann_vectors_path(vectors_dir, tenant_id) if vectors_dir is not None else None
        try:
            return AnnIndex(dim, params=AnnParams(**options), vectors_path=path)
        except IndexError_ as exc:
            raise ConfigError(f"invalid ann index options: {exc}") from exc
    _check_names(backend, options, MILVUS_OPTIONS)
    if not options.get("uri"):
        raise ConfigError("the milvus index backend needs a uri option (a milvus-lite file or http://host:19530)")
    from faceward.index.milvus import MilvusIndex  # pymilvus is optional: import only when chosen

    return MilvusIndex(tenant_id, dim=dim, generation=generation, **options)


def _check_names(backend: IndexBackend, options: dict[str, Any], allowed: frozenset[str]) -> None:
    unknown = sorted(set(options) - allowed)
    if unknown:
        known = ", ".join(sorted(allowed)) or "none"
        raise ConfigError(f"unknown {backend.value} index option(s) {', '.join(unknown)}; known: {known}")


__all__ = ["ANN_OPTIONS", "MILVUS_OPTIONS", "ann_vectors_path", "make_index"]
